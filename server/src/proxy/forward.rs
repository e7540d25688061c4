//! Forwarding: the allowed request, with its normalized path and cleaned headers, to its upstream
//! over a pooled HTTP/1.1 client; bodies stream both ways. An upstream that refuses or drops the
//! connection is a 502, one that does not answer in time a 504; neither leaks internal details.
//! An upstream that falls silent in the middle of its body for as long is cut off, and the
//! client's connection closed, rather than held open for ever; likewise a client that falls
//! silent in the middle of the body it sends is answered 408 and the upstream request abandoned.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
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

type HyperClient = Client<HttpConnector, ClientBody>;

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
    /// The client stopped sending its body for the timeout: 408.
    ClientStalled,
    /// The client's body is not validly framed (a bad chunk size, a body shorter than its
    /// length): 400, and the connection closed.
    InvalidBody(String),
}

/// How much of a client's body is read before the upstream is contacted. A body that ends
/// within it is checked whole (its framing included) and forwarded with a `Content-Length`;
/// a longer one streams on (chunked), and a framing error later in it abandons the upstream
/// request mid-body.
pub const PREFETCH_BYTES: usize = 64 * 1024;

/// Sends `request` (already rewritten for the upstream) and returns the upstream's response with
/// its hop-by-hop headers removed. `timeout` bounds each wait: for the next piece of the client's
/// body (408 when it does not come), and, once the client has sent everything, for the
/// upstream's response headers (504) and then for each piece of its body. A client uploading
/// slowly but steadily is therefore never cut off, however long its body.
pub async fn forward(
    client: &UpstreamClient,
    request: hyper::Request<Incoming>,
    timeout: Duration,
) -> Result<hyper::Response<ProxyBody>, ForwardError> {
    let (mut parts, body) = request.into_parts();
    let upload = Arc::new(Upload::default());
    let body = prefetch(body, timeout, &upload, &mut parts.headers).await?;
    let request = hyper::Request::from_parts(parts, body);
    let sending = client.local().request(request);
    tokio::pin!(sending);
    let result = loop {
        let deadline = upload.last_progress() + timeout;
        match tokio::time::timeout_at(deadline, &mut sending).await {
            Ok(result) => break result,
            // The client sent more (or began to be waited for) since the deadline was set.
            Err(_) if upload.last_progress() + timeout > tokio::time::Instant::now() => {}
            // Waiting for the client's next piece all this time: the client is late.
            Err(_) if upload.waiting_on_client() => return Err(ForwardError::ClientStalled),
            // Everything sent, or the upstream not reading it: the upstream is late.
            Err(_) => return Err(ForwardError::Timeout),
        }
    };
    let response = match result {
        Err(error) if caused_by_stalled_client(&error) => return Err(ForwardError::ClientStalled),
        Err(error) if caused_by_invalid_body(&error) => {
            return Err(ForwardError::InvalidBody(error.to_string()))
        }
        Err(error) => return Err(ForwardError::Unavailable(error.to_string())),
        Ok(response) => response,
    };
    let (mut parts, body) = response.into_parts();
    super::headers::remove_hop_by_hop(&mut parts.headers);
    let body = IdleTimeout::new(body, timeout, Side::Upstream);
    Ok(hyper::Response::from_parts(parts, body.boxed()))
}

/// Reads the client's body up to [`PREFETCH_BYTES`] before anything is sent upstream (see
/// there); each piece must come within `timeout`.
async fn prefetch(
    mut body: Incoming,
    timeout: Duration,
    upload: &Arc<Upload>,
    headers: &mut hyper::HeaderMap,
) -> Result<ClientBody, ForwardError> {
    let mut frames = std::collections::VecDeque::new();
    let mut length = 0usize;
    let mut trailers = false;
    while !body.is_end_stream() {
        if length >= PREFETCH_BYTES {
            let rest = IdleTimeout::new(body, timeout, Side::Client).reporting_to(upload.clone());
            return Ok(ClientBody {
                frames,
                rest: Some(rest),
                length: None,
            });
        }
        let frame = match tokio::time::timeout(timeout, body.frame()).await {
            Err(_) => return Err(ForwardError::ClientStalled),
            Ok(None) => break,
            Ok(Some(Err(error))) => return Err(ForwardError::InvalidBody(error.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        match frame.data_ref() {
            Some(data) => length += data.len(),
            None => trailers = true,
        }
        frames.push_back(frame);
    }
    upload.finish();
    let declared = headers.contains_key(hyper::header::CONTENT_LENGTH) || length > 0;
    if !trailers && declared {
        headers.insert(
            hyper::header::CONTENT_LENGTH,
            hyper::header::HeaderValue::from(length),
        );
    }
    Ok(ClientBody {
        frames,
        rest: None,
        length: (!trailers).then_some(length as u64),
    })
}

/// The client's body as forwarded: the frames read ahead, then the rest as it comes.
pub struct ClientBody {
    frames: std::collections::VecDeque<Frame<Bytes>>,
    rest: Option<IdleTimeout>,
    /// The exact length, when the whole body (without trailers) was read ahead.
    length: Option<u64>,
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if let Some(frame) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        match &mut self.rest {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && self.rest.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(length) => SizeHint::with_exact(length),
            None => SizeHint::default(),
        }
    }
}

/// Whether a forwarding error comes from the client's body being invalidly framed.
fn caused_by_invalid_body(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.downcast_ref::<InvalidClientBody>().is_some() {
            return true;
        }
        current = error.source();
    }
    false
}

/// The client's body broke off in the middle (bad framing, or the connection closed).
#[derive(Debug, thiserror::Error)]
#[error("the client's body is not validly framed: {0}")]
struct InvalidClientBody(String);

/// How far the client's body has come: when a piece last arrived (or the wait for the next one
/// began), whether the proxy is waiting for the client, and whether the body is complete.
struct Upload {
    started: tokio::time::Instant,
    /// Milliseconds from `started` to the last progress.
    last_ms: AtomicU64,
    waiting: AtomicBool,
    finished: AtomicBool,
}

impl Default for Upload {
    fn default() -> Upload {
        Upload {
            started: tokio::time::Instant::now(),
            last_ms: AtomicU64::new(0),
            waiting: AtomicBool::new(false),
            finished: AtomicBool::new(false),
        }
    }
}

impl Upload {
    fn progressed(&self) {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(elapsed, Ordering::Relaxed);
    }

    fn last_progress(&self) -> tokio::time::Instant {
        self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    fn finish(&self) {
        self.progressed();
        self.finished.store(true, Ordering::Relaxed);
    }

    fn waiting_on_client(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) && !self.finished.load(Ordering::Relaxed)
    }
}

/// Whether a forwarding error comes from the client's request body stalling.
fn caused_by_stalled_client(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error
            .downcast_ref::<Stalled>()
            .is_some_and(|stalled| stalled.0 == Side::Client)
        {
            return true;
        }
        current = error.source();
    }
    false
}

/// Whose body it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The request body the client sends.
    Client,
    /// The response body the upstream sends.
    Upstream,
}

/// A body that fails when nothing arrives for `idle`. On an upstream's response, the client's
/// connection is then closed (its response visibly cut short) instead of waiting for ever; on a
/// client's request, the upstream request is abandoned. Only time spent waiting for the sender
/// counts, not time the receiver takes to read.
pub struct IdleTimeout {
    inner: Incoming,
    idle: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// Whether the deadline runs: from the first poll after a frame until the next frame.
    waiting: bool,
    side: Side,
    /// Told of every piece and of the end, for a client's body.
    upload: Option<Arc<Upload>>,
}

impl IdleTimeout {
    fn new(inner: Incoming, idle: Duration, side: Side) -> IdleTimeout {
        IdleTimeout {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            waiting: false,
            side,
            upload: None,
        }
    }

    fn reporting_to(mut self, upload: Arc<Upload>) -> IdleTimeout {
        if self.inner.is_end_stream() {
            upload.finish();
        }
        self.upload = Some(upload);
        self
    }
}

/// A body's sender sent nothing for the idle timeout in the middle of it.
#[derive(Debug, thiserror::Error)]
#[error("{} stalled in the middle of its body", match .0 { Side::Client => "the client", Side::Upstream => "the upstream" })]
struct Stalled(Side);

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
                if let Some(upload) = &self.upload {
                    upload.waiting.store(false, Ordering::Relaxed);
                    if frame.is_none() || self.inner.is_end_stream() {
                        upload.finish();
                    } else {
                        upload.progressed();
                    }
                }
                let side = self.side;
                Poll::Ready(frame.map(|frame| {
                    frame.map_err(|error| match side {
                        Side::Client => Box::new(InvalidClientBody(error.to_string())) as BodyError,
                        Side::Upstream => BodyError::from(error),
                    })
                }))
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    match self.side {
                        Side::Upstream => tracing::warn!(
                            "upstream stalled in its response body; connection closed"
                        ),
                        Side::Client => tracing::info!(
                            "client stalled in its request body; upstream request abandoned"
                        ),
                    }
                    Poll::Ready(Some(Err(Box::new(Stalled(self.side)))))
                }
                Poll::Pending => {
                    if let Some(upload) = &self.upload {
                        if !upload.waiting.swap(true, Ordering::Relaxed) {
                            upload.progressed();
                        }
                    }
                    Poll::Pending
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if let (true, Some(upload)) = (end, &self.upload) {
            upload.finish();
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
