//! Startup and shutdown shared by `authz serve` and `authz proxy`: the first policy load, the
//! decision log, the shared state they both serve from, and the drain on SIGTERM. Each function prints its own error and returns `None`,
//! so a caller stops with exit status 1.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::config::{DecisionLogConfig, HostConfig, LogConfig, LogFormat, PoliciesConfig};
use super::decision_log::DecisionLog;
use super::metrics::Metrics;
use super::state::{self, AppState, Snapshot};

/// Sets up the diagnostic log on stderr, for `authz serve` and `authz proxy` alike: the level
/// filter and format of `log`, with colours only when stderr is a terminal (log files and
/// journald get plain text).
pub fn init_logging(log: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The first set: from the bundle when one is configured (with the source that keeps polling
/// it), else from the policy directory; `None` after printing why it does not load.
pub async fn load_first(
    policies: &PoliciesConfig,
    bundle: Option<&crate::host::bundle::BundleConfig>,
) -> Option<(Snapshot, Option<Arc<crate::host::bundle::BundleSource>>)> {
    let Some(config) = bundle else {
        return load_initial(policies)
            .await
            .map(|snapshot| (snapshot, None));
    };
    let source = match crate::host::bundle::BundleSource::new(config) {
        Ok(source) => Arc::new(source),
        Err(message) => {
            eprintln!("error: invalid configuration: {message}");
            return None;
        }
    };
    match source.initial().await {
        Ok(snapshot) => Some((snapshot, Some(source))),
        Err(message) => {
            eprint!("{message}");
            eprintln!(
                "\nerror: the bundle at `{}` does not load; not starting",
                config.url
            );
            None
        }
    }
}

/// Compiles the policy set and loads its entities, printing the diagnostics when they fail.
pub async fn load_initial(policies: &PoliciesConfig) -> Option<Snapshot> {
    let Some(dir) = policies.dir.clone() else {
        eprintln!("error: no policy directory");
        return None;
    };
    let entities = policies.entities.clone();
    match tokio::task::spawn_blocking(move || state::load(&dir, entities.as_deref())).await {
        Ok(Ok(snapshot)) => Some(snapshot),
        Ok(Err(error)) => {
            eprint!("{}", error.message);
            eprintln!("error: the policy set does not load; not starting");
            None
        }
        Err(error) => {
            eprintln!("error: {error}");
            None
        }
    }
}

/// Starts the decision log when one is configured; `Some(None)` when none is.
pub fn decision_log(
    config: &DecisionLogConfig,
    metrics: &Arc<Metrics>,
) -> Option<Option<DecisionLog>> {
    let Some(path) = &config.path else {
        return Some(None);
    };
    match DecisionLog::start(path, config.buffer, config.on_full, metrics.clone()) {
        Ok(log) => Some(Some(log)),
        Err(error) => {
            eprintln!(
                "error: cannot open the decision log `{}`: {error}",
                path.display()
            );
            None
        }
    }
}

/// The entity providers of `configs`, checked against the first set; `None` after printing why
/// they cannot be used.
pub fn providers(
    configs: &[crate::host::providers::ProviderConfig],
    metrics: &Arc<Metrics>,
    initial: &Snapshot,
) -> Option<Arc<crate::host::providers::Providers>> {
    let checked =
        crate::host::providers::Providers::new(configs, metrics.clone()).and_then(|providers| {
            providers.check(&initial.program.schema)?;
            Ok(providers)
        });
    match checked {
        Ok(providers) => Some(Arc::new(providers)),
        Err(message) => {
            eprintln!("error: invalid configuration: {message}");
            None
        }
    }
}

/// What a server adds to the shared state beyond its settings, first set, metrics and log.
pub struct Extensions {
    /// The per-mode install check (the proxy's).
    pub install_check: Option<state::InstallCheck>,
    /// More of `/readyz` (the proxy's JWKS and Redis).
    pub readiness: Option<state::Readiness>,
    /// Entity providers.
    pub providers: Arc<crate::host::providers::Providers>,
    /// The bundle the set comes from, when it does.
    pub bundle: Option<Arc<crate::host::bundle::BundleSource>>,
}

/// The shared state, serving `initial` as the first generation.
pub fn app_state(
    config: HostConfig,
    mut initial: Snapshot,
    metrics: Arc<Metrics>,
    decision_log: Option<DecisionLog>,
    extensions: Extensions,
) -> Arc<AppState> {
    let Extensions {
        install_check,
        readiness,
        providers,
        bundle,
    } = extensions;
    initial.generation = 1;
    metrics.reloads_ok.inc();
    metrics
        .policies_loaded
        .set(i64::try_from(initial.program.policies.len()).unwrap_or(i64::MAX));
    Arc::new(AppState {
        config,
        snapshot: ArcSwap::from_pointee(initial),
        status: Mutex::new(state::LoadStatus::default()),
        metrics,
        decision_log,
        reload_lock: tokio::sync::Mutex::new(()),
        install_check,
        readiness,
        providers,
        bundle,
    })
}

/// The next connection, with Nagle's algorithm off. A failed accept (out of file descriptors,
/// say) is logged and retried a moment later rather than ending the server.
pub async fn accept(
    listener: &tokio::net::TcpListener,
) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return (stream, peer);
            }
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// Shuts down after the listener is closed: lets requests in flight finish (30 s at most), then
/// writes and flushes every queued decision log line.
pub async fn drain(graceful: hyper_util::server::graceful::GracefulShutdown, state: &AppState) {
    tracing::info!("shutting down: finishing requests in flight");
    if tokio::time::timeout(std::time::Duration::from_secs(30), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after 30 s; closing them");
    }
    if let Some(log) = &state.decision_log {
        log.close().await;
    }
    tracing::info!("stopped");
}
