//! `authz serve`: the decision server.
//!
//! Startup loads and compiles the policy set (exiting 1 with its diagnostics when it fails), then
//! listens. Each connection is served by hyper in its own task. SIGTERM or Ctrl-C stop accepting,
//! let requests in flight finish, flush the decision log and exit 0.

pub mod api_error;
pub mod config;
pub mod entities;
pub mod http;
pub mod policies;
pub mod strict_json;

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use self::config::Config;
use crate::cli::ServeArgs;
use crate::commands::Outcome;
use crate::host::{metrics, reload, startup};

/// Runs the server until SIGTERM.
pub fn run(args: &ServeArgs) -> Outcome {
    let config = match settings(args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return Outcome::Failure;
        }
    };
    startup::init_logging(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return Outcome::Failure;
        }
    };
    runtime.block_on(serve(config))
}

/// The configuration file (if any) with the command-line flags applied over it.
fn settings(args: &ServeArgs) -> Result<Config, String> {
    let mut config = match &args.config {
        Some(path) => Config::load(path).map_err(|error| error.to_string())?,
        None => Config::default(),
    };
    if let Some(dir) = &args.policies {
        config.policies.dir = Some(dir.clone());
    }
    if let Some(entities) = &args.entities {
        config.policies.entities = Some(entities.clone());
    }
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(format) = args.log_format {
        config.log.format = format;
    }
    if let Some(path) = &args.decision_log {
        config.decision_log.path = Some(path.clone());
    }
    if args.no_watch {
        config.policies.watch = false;
    }
    if config.policies.dir.is_none() && config.bundle.is_none() {
        return Err("no policy directory: pass `--policies DIR` or set `policies.dir`".to_string());
    }
    Ok(config)
}

async fn serve(config: Config) -> Outcome {
    let Some((initial, bundle)) =
        startup::load_first(&config.policies, config.bundle.as_ref()).await
    else {
        return Outcome::Failure;
    };
    let metrics = Arc::new(metrics::Metrics::default());
    let Some(decision_log) = startup::decision_log(&config.decision_log, &metrics) else {
        return Outcome::Failure;
    };
    let listener = match tokio::net::TcpListener::bind(config.server.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {}: {error}", config.server.listen);
            return Outcome::Failure;
        }
    };
    let Some(providers) = startup::providers(&config.entity_provider, &metrics, &initial) else {
        return Outcome::Failure;
    };
    let policies = initial.program.policies.len();
    let host = match config.host() {
        Ok(host) => host,
        Err(message) => {
            eprintln!("error: invalid configuration: {message}");
            return Outcome::Failure;
        }
    };
    let state = startup::app_state(
        host,
        initial,
        metrics,
        decision_log,
        startup::Extensions {
            install_check: None,
            readiness: None,
            providers,
            bundle: bundle.clone(),
        },
    );
    if let Some(bundle) = bundle {
        bundle.start(state.clone());
    }
    let _watcher = reload::start(state.clone());
    let address = listener
        .local_addr()
        .map_or_else(|_| config.server.listen.to_string(), |a| a.to_string());
    tracing::info!(%address, policies, "listening");
    // The one line scripts and tests wait for.
    println!("listening on http://{address}");

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            (stream, _) = startup::accept(&listener) => {
                let state = state.clone();
                let service = service_fn(move |request| http::handle(state.clone(), request));
                let connection = http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    startup::drain(graceful, &state).await;
    Outcome::Success
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
