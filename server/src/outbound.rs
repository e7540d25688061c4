//! Calls out of the server: JWKS URLs, entity providers and bundles. One HTTP client setup (https
//! with the webpki roots, through rustls on aws-lc-rs; HTTP/1.1, pooled) and one rule for the URLs
//! it may call: `https://`, or plain `http://` on a loopback host only (tests and sidecars).

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A pooled client for https URLs and loopback http ones.
pub fn client<B>() -> Result<Client<HttpsConnector<HttpConnector>, B>, String>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(provider)
        .map_err(|error| format!("cannot set up TLS: {error}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector))
}

/// What a call out answered.
pub struct Answer {
    /// The status.
    pub status: hyper::StatusCode,
    /// The headers.
    pub headers: hyper::HeaderMap,
    /// The body, whole.
    pub body: bytes::Bytes,
}

/// Sends `request` with `client` and reads the whole answer, at most `max_bytes` of body, all
/// within `timeout`; the error says which of these failed.
pub async fn call(
    client: &Client<HttpsConnector<HttpConnector>, http_body_util::Empty<bytes::Bytes>>,
    request: hyper::Request<http_body_util::Empty<bytes::Bytes>>,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Answer, String> {
    use http_body_util::BodyExt as _;
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|error| format!("request failed: {error}"))?;
        let (parts, body) = response.into_parts();
        let body = http_body_util::Limited::new(body, max_bytes)
            .collect()
            .await
            .map_err(|error| format!("reading the answer failed: {error}"))?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {} ms", timeout.as_millis()))?
}

/// `url` when the server may call it: `https://` with a host, or `http://` on a loopback host.
pub fn checked_url(url: &str) -> Result<hyper::Uri, String> {
    let uri: hyper::Uri = url.parse().map_err(|_| "not a valid URL".to_string())?;
    let host = uri.host().unwrap_or_default();
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(uri),
        Some("http") if is_loopback(host) => Ok(uri),
        Some("http") => {
            Err("plain http is accepted only on a loopback host; use https".to_string())
        }
        _ => Err("expected an https:// URL".to_string()),
    }
}

/// Whether a host names the loopback interface.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_called() {
        for good in [
            "https://keys.example/jwks",
            "http://127.0.0.1:8080/x",
            "http://[::1]/x",
            "http://localhost/x",
        ] {
            assert!(checked_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://keys.example/jwks",
            "ftp://127.0.0.1/x",
            "https:///x",
            "not a url",
        ] {
            assert!(checked_url(bad).is_err(), "{bad}");
        }
    }
}
