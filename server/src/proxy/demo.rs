//! The demo upstream: a tiny service built into `authz` for the quickstart. It answers every
//! request with a JSON echo of what it received (method, path, query and the identity headers the
//! proxy set), so a user can see exactly what an upstream behind the proxy sees.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;

/// Starts the demo upstream on a free loopback port and returns its address.
pub async fn start(identity_prefix: String) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let prefix = identity_prefix.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let prefix = prefix.clone();
                    async move {
                        let identity: serde_json::Map<String, serde_json::Value> = request
                            .headers()
                            .iter()
                            .filter(|(name, _)| {
                                name.as_str().starts_with(&prefix)
                                    || name.as_str() == "x-forwarded-for"
                            })
                            .map(|(name, value)| {
                                (name.to_string(), json!(value.to_str().unwrap_or("?")))
                            })
                            .collect();
                        let body = json!({
                            "upstream": "authz demo",
                            "method": request.method().as_str(),
                            "path": request.uri().path(),
                            "query": request.uri().query(),
                            "headers": identity,
                        });
                        let mut response =
                            hyper::Response::new(Full::new(Bytes::from(body.to_string() + "\n")));
                        response.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(address)
}
