//! The proxy's admin listener (`[admin]`): `/healthz`, `/readyz`, `/metrics` and the policy API,
//! the same endpoints as `authz serve`, on an address separate from traffic so that operators
//! and probes never go through the pipeline (where they would be routed and authorized like any
//! request).

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::host::startup;
use crate::host::state::AppState;
use crate::serve::http;

/// Serves the admin endpoints on `listener` until the process ends (admin requests are short;
/// they are not drained on SIGTERM).
pub async fn serve(listener: TcpListener, app: Arc<AppState>) {
    loop {
        let (stream, _) = startup::accept(&listener).await;
        let app = app.clone();
        let service = service_fn(move |request| http::handle(app.clone(), request));
        let connection = http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "admin connection ended with an error");
            }
        });
    }
}
