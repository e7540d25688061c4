//! `authz proxy`: loads the configuration, the policy set and the identity providers, starts the
//! demo upstream when asked, and serves connections until SIGTERM, which stops accepting, lets
//! requests in flight finish and flushes the audit log.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use super::admin;
use super::assertion::AssertionSigner;
use super::config::ProxyConfig;
use super::framing::Watched;
use super::headers::HeaderPolicy;
use super::identity::{Authenticator, IDENTITY_HEADERS};
use super::pipeline::{self, Connection, ProxyState};
use super::shared_limits::{OnError, SharedLimits};
use super::upstream_headers::UpstreamHeaders;
use super::workers::Workers;
use crate::cli::ProxyArgs;
use crate::commands::Outcome;
use crate::host::config::{ApiConfig, HostConfig};
use crate::host::{metrics, reload, startup};

/// Runs the proxy until SIGTERM.
pub fn run(args: &ProxyArgs) -> Outcome {
    let (mut config, base) = match ProxyConfig::load(&args.config) {
        Ok(loaded) => loaded,
        Err(message) => {
            eprintln!("error: {message}");
            return Outcome::Failure;
        }
    };
    if let Some(listen) = args.listen {
        config.proxy.listen = listen;
    }
    if let Some(format) = args.log_format {
        config.log.format = format;
    }
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
    runtime.block_on(serve(config, &base))
}

async fn serve(mut config: ProxyConfig, base: &Path) -> Outcome {
    let Some((mut initial, bundle)) =
        startup::load_first(&config.policies, config.bundle.as_ref()).await
    else {
        return Outcome::Failure;
    };
    let clock = match crate::host::clock::Clock::from_config(&config.clock) {
        Ok(clock) => clock,
        Err(message) => {
            eprintln!("error: invalid configuration: {message}");
            return Outcome::Failure;
        }
    };
    if config.clock.field.is_some() {
        eprintln!(
            "error: invalid configuration: `clock.field` is for `authz serve`; map a context field to the source `now` in `[context]`"
        );
        return Outcome::Failure;
    }
    let written_identity = config.identity.clone();
    if let Err(message) = super::schema_check::check(&mut config.identity, &initial.program.schema)
    {
        eprintln!("error: invalid configuration: {message}");
        return Outcome::Failure;
    }
    let mut authenticator = match Authenticator::from_config(&config.identity, base) {
        Ok(authenticator) => authenticator,
        Err(error) => {
            eprintln!("error: invalid configuration: {error}");
            return Outcome::Failure;
        }
    };
    let metrics = Arc::new(metrics::Metrics::default());
    authenticator.report_to(&metrics);
    let assertion = match &config.assertion {
        None => None,
        Some(settings) => {
            match AssertionSigner::new(settings, &config.proxy.identity_header_prefix) {
                Ok(signer) => Some(signer),
                Err(message) => {
                    eprintln!("error: invalid configuration: {message}");
                    return Outcome::Failure;
                }
            }
        }
    };
    let shared_limits = match &config.limits {
        None => None,
        Some(settings) => match SharedLimits::new(settings) {
            Ok(shared) => {
                if let Err(message) = shared.probe().await {
                    if settings.on_error == OnError::Deny {
                        eprintln!("error: {message}");
                        return Outcome::Failure;
                    }
                    tracing::warn!(%message, "starting anyway: `limits.on_error = \"allow\"`");
                }
                let mut shared = shared;
                shared.report_to(&metrics);
                Some(shared)
            }
            Err(message) => {
                eprintln!("error: invalid configuration: {message}");
                return Outcome::Failure;
            }
        },
    };
    let tls = match &config.proxy.tls {
        None => None,
        Some(settings) => {
            match super::tls::TlsListener::from_config(settings, config.identity.mtls.as_ref()) {
                Ok(listener) => Some(Arc::new(listener)),
                Err(message) => {
                    eprintln!("error: invalid configuration: {message}");
                    return Outcome::Failure;
                }
            }
        }
    };
    let upstream_headers = match UpstreamHeaders::new(&config.upstream_headers) {
        Ok(mapping) => mapping,
        Err(message) => {
            eprintln!("error: invalid configuration: {message}");
            return Outcome::Failure;
        }
    };
    // What the proxy checks of every policy set it installs, this first one included.
    let fit = super::schema_check::ProxyFit::new(
        written_identity,
        &config.identity,
        authenticator.api_key_types(),
        config
            .proxy
            .anonymous
            .as_ref()
            .map(|anonymous| anonymous.ty.clone()),
        upstream_headers.clone(),
        config.context.clone(),
    );
    match fit.install(&initial, None) {
        Ok(plan) => initial.derived = Some(Arc::new(plan)),
        Err(message) => {
            eprintln!("error: invalid configuration: {message}");
            return Outcome::Failure;
        }
    }
    // Fetch every JWKS now rather than on the first request.
    authenticator.refresh_keys().await;
    let trusted = match config.trusted() {
        Ok(trusted) => trusted,
        Err(message) => {
            eprintln!("error: invalid configuration: {message}");
            return Outcome::Failure;
        }
    };
    let mut upstreams = Vec::new();
    for upstream in &config.upstreams {
        let base_url = if upstream.url == "demo" {
            match super::demo::start(config.proxy.identity_header_prefix.clone()).await {
                Ok(address) => {
                    println!("demo upstream on http://{address}");
                    format!("http://{address}")
                }
                Err(error) => {
                    eprintln!("error: cannot start the demo upstream: {error}");
                    return Outcome::Failure;
                }
            }
        } else {
            upstream.url.trim_end_matches('/').to_string()
        };
        upstreams.push((
            upstream.prefix.clone(),
            base_url,
            Arc::<str>::from(upstream.name.as_str()),
        ));
    }
    upstreams.sort_by_key(|(prefix, _, _)| std::cmp::Reverse(prefix.len()));

    let Some(decision_log) = startup::decision_log(&config.decision_log, &metrics) else {
        return Outcome::Failure;
    };
    let listener = match tokio::net::TcpListener::bind(config.proxy.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {}: {error}", config.proxy.listen);
            return Outcome::Failure;
        }
    };
    let admin_listener = match &config.admin {
        None => None,
        Some(admin) => match tokio::net::TcpListener::bind(admin.listen).await {
            Ok(listener) => Some(listener),
            Err(error) => {
                eprintln!("error: cannot listen on {} (admin): {error}", admin.listen);
                return Outcome::Failure;
            }
        },
    };
    let host_config = HostConfig {
        policies: config.policies.clone(),
        api: ApiConfig {
            admin_token: config
                .admin
                .as_ref()
                .and_then(|admin| admin.admin_token.clone()),
            clock,
            ..ApiConfig::default()
        },
    };
    let install_check: crate::host::state::InstallCheck = Box::new(move |snapshot, previous| {
        let plan = fit.install(snapshot, previous)?;
        Ok(Some(Arc::new(plan) as crate::host::state::Derived))
    });
    let remote_keys = authenticator.remote_keys();
    let redis = shared_limits
        .as_ref()
        .map(|shared| (shared.address(), shared.failing()));
    let readiness: crate::host::state::Readiness = Box::new(move || {
        let mut members = serde_json::Map::new();
        members.insert(
            "jwks".to_string(),
            remote_keys
                .iter()
                .map(|remote| remote.readiness())
                .collect(),
        );
        if let Some((address, failing)) = &redis {
            members.insert(
                "redis".to_string(),
                serde_json::json!({
                    "address": address,
                    "available": !failing.load(std::sync::atomic::Ordering::Relaxed),
                }),
            );
        }
        members
    });
    let Some(providers) = startup::providers(&config.entity_provider, &metrics, &initial) else {
        return Outcome::Failure;
    };
    let app = startup::app_state(
        host_config,
        initial,
        metrics,
        decision_log,
        startup::Extensions {
            install_check: Some(install_check),
            readiness: Some(readiness),
            providers,
            bundle: bundle.clone(),
        },
    );
    if let Some(bundle) = bundle {
        bundle.start(app.clone());
    }
    let _watcher = reload::start(app.clone());
    let max_header_bytes = config.proxy.max_header_bytes.max(8192);
    let identity_header_prefix = config.proxy.identity_header_prefix.clone();
    let strip_headers = config.proxy.strip_headers.clone();
    let method_override = config.proxy.method_override;
    let own_headers: Vec<String> = IDENTITY_HEADERS
        .iter()
        .map(|name| (*name).to_string())
        .chain(
            assertion
                .as_ref()
                .map(|signer| signer.header_name().as_str().to_string()),
        )
        .chain(upstream_headers.names().map(str::to_string))
        .collect();
    config.upstreams.clear();
    let proxy = Arc::new(ProxyState {
        app: app.clone(),
        client: super::forward::client(Duration::from_millis(config.proxy.connect_timeout_ms)),
        config,
        trusted,
        authenticator,
        header_policy: HeaderPolicy::new(
            &identity_header_prefix,
            &own_headers,
            &strip_headers,
            method_override,
        ),
        upstream_headers,
        assertion,
        upstreams,
        shared_limits,
        clock,
    });
    // Idle limiter keys are forgotten once a minute, bounding memory.
    let sweeper = proxy.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            let snapshot = sweeper.app.snapshot.load();
            if let Some(plan) = snapshot.derived::<super::schema_check::ProxyPlan>() {
                plan.limiters.retain_recent();
            }
        }
    });
    let address = listener
        .local_addr()
        .map_or_else(|_| proxy.config.proxy.listen.to_string(), |a| a.to_string());
    tracing::info!(%address, "proxy listening");
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{address}");
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    if let Some(listener) = admin_listener {
        let address = listener
            .local_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string());
        tracing::info!(%address, "admin listening");
        println!("admin listening on http://{address}");
        tokio::spawn(admin::serve(listener, app.clone()));
    }

    let workers = match Workers::start(Workers::default_count()) {
        Ok(workers) => workers,
        Err(error) => {
            eprintln!("error: cannot start the proxy workers: {error}");
            return Outcome::Failure;
        }
    };
    let mut shutdown = std::pin::pin!(crate::serve::shutdown_signal());
    loop {
        tokio::select! {
            (stream, peer) = startup::accept(&listener) => {
                // The worker registers the socket with its own reactor: the connection, its
                // requests and their upstream connections then stay on that worker's thread.
                let stream = match stream.into_std() {
                    Ok(stream) => stream,
                    Err(error) => {
                        tracing::debug!(%error, %peer, "cannot hand the connection to a worker");
                        continue;
                    }
                };
                let proxy = proxy.clone();
                let (tls, watcher) = (tls.clone(), graceful.watcher());
                workers.spawn(move || async move {
                    let stream = match tokio::net::TcpStream::from_std(stream) {
                        Ok(stream) => stream,
                        Err(error) => {
                            tracing::debug!(%error, %peer, "cannot register the connection");
                            return;
                        }
                    };
                    if let Some(tls) = tls {
                        // The handshake runs in the connection's task, under its own timeout.
                        let (stream, cert) = match tls.accept(stream).await {
                            Ok(accepted) => accepted,
                            Err(error) => {
                                tracing::debug!(%error, %peer, "TLS handshake failed");
                                return;
                            }
                        };
                        let (stream, framing) = Watched::new(stream, max_header_bytes);
                        let connection = Connection { peer, client_cert: cert, framing, scheme: "https" };
                        let service = service_fn(move |request| pipeline::handle(proxy.clone(), connection.clone(), request));
                        let connection = http1_builder(max_header_bytes).serve_connection(TokioIo::new(stream), service);
                        if let Err(error) = watcher.watch(connection).await {
                            tracing::debug!(%error, "connection ended with an error");
                        }
                        return;
                    }
                    let (stream, framing) = Watched::new(stream, max_header_bytes);
                    let connection = Connection { peer, client_cert: None, framing, scheme: "http" };
                    let service = service_fn(move |request| pipeline::handle(proxy.clone(), connection.clone(), request));
                    let connection = http1_builder(max_header_bytes).serve_connection(TokioIo::new(stream), service);
                    if let Err(error) = watcher.watch(connection).await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    startup::drain(graceful, &app).await;
    Outcome::Success
}

/// The HTTP/1.1 settings of every client connection, plain or TLS.
fn http1_builder(max_header_bytes: usize) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_header_size(max_header_bytes)
        .max_buf_size(max_header_bytes.max(64 * 1024));
    builder
}
