//! Forwarding: the allowed request, with its normalized path and cleaned headers, to its upstream
//! over a pooled HTTP/1.1 client; bodies stream both ways. An upstream that refuses or drops the
//! connection is a 502, one that does not answer in time a 504; neither leaks internal details.
//! An upstream that falls silent in the middle of its body for as long is cut off, and the
//! client's connection closed, rather than held open for ever.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The body type of every response the proxy gives.
pub type ProxyBody = BoxBody<Bytes, BodyError>;

/// Why a response body broke off.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

type HyperClient = Client<HttpConnector, Incoming>;

/// The upstream client: pooled HTTP/1.1 connections, one pool per thread, so that a request and
/// the upstream connection it uses are served by the same thread (see [`super::workers`]); a
/// pool shared by the threads handed connections driven on one thread to requests on another.
#[derive(Clone, Debug)]
pub struct UpstreamClient {
    connect_timeout: Duration,
}

thread_local! {
    static POOL: RefCell<Option<(Duration, HyperClient)>> = const { RefCell::new(None) };
}

impl UpstreamClient {
    /// This thread's pool (a cheap handle), created on first use.
    fn local(&self) -> HyperClient {
        POOL.with(|cell| {
            let mut slot = cell.borrow_mut();
            match &*slot {
                Some((timeout, client)) if *timeout == self.connect_timeout => client.clone(),
                _ => {
                    let client = pooled(self.connect_timeout);
                    *slot = Some((self.connect_timeout, client.clone()));
                    client
                }
            }
        })
    }
}

/// A client with the given connect timeout.
pub fn client(connect_timeout: Duration) -> UpstreamClient {
    UpstreamClient { connect_timeout }
}

fn pooled(connect_timeout: Duration) -> HyperClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build(connector)
}

/// Why forwarding failed.
#[derive(Debug)]
pub enum ForwardError {
    /// No connection, or it broke before a response: 502.
    Unavailable(String),
    /// No response headers in time: 504.
    Timeout,
}

/// Sends `request` (already rewritten for the upstream) and returns the upstream's response with
/// its hop-by-hop headers removed.
pub async fn forward(
    client: &UpstreamClient,
    request: hyper::Request<Incoming>,
    timeout: Duration,
) -> Result<hyper::Response<ProxyBody>, ForwardError> {
    let response = match tokio::time::timeout(timeout, client.local().request(request)).await {
        Err(_) => return Err(ForwardError::Timeout),
        Ok(Err(error)) => return Err(ForwardError::Unavailable(error.to_string())),
        Ok(Ok(response)) => response,
    };
    let (mut parts, body) = response.into_parts();
    super::headers::remove_hop_by_hop(&mut parts.headers);
    let body = IdleTimeout {
        inner: body,
        idle: timeout,
        deadline: Box::pin(tokio::time::sleep(timeout)),
        waiting: false,
    };
    Ok(hyper::Response::from_parts(parts, body.boxed()))
}

/// An upstream's response body that fails when nothing arrives for `idle`: the client's
/// connection is then closed (its response visibly cut short) instead of waiting for ever. Only
/// time spent waiting for the upstream counts, not time the client takes to read.
struct IdleTimeout {
    inner: Incoming,
    idle: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// Whether the deadline runs: from the first poll after a frame until the next frame.
    waiting: bool,
}

/// The upstream sent nothing for the idle timeout in the middle of a body.
#[derive(Debug, thiserror::Error)]
#[error("the upstream stalled in the middle of its response body")]
struct Stalled;

impl Body for IdleTimeout {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if !self.waiting {
            let next = tokio::time::Instant::now() + self.idle;
            self.deadline.as_mut().reset(next);
            self.waiting = true;
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                self.waiting = false;
                Poll::Ready(frame.map(|frame| frame.map_err(BodyError::from)))
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    tracing::warn!("upstream stalled in its response body; connection closed");
                    Poll::Ready(Some(Err(Box::new(Stalled))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
