//! Prometheus metrics, kept with `prometheus-client` (the Prometheus project's Rust client) and
//! rendered as OpenMetrics text on `GET /metrics`: the decision server's counters and decision
//! latency, and the access proxy's requests, upstream latency, limit hits, token cache, JWKS and
//! Redis counters (zero under `authz serve`).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds of the decision latency buckets, in seconds (5 µs to 50 ms).
const DECISION_BUCKETS: [f64; 12] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.05,
];

/// Upper bounds of the upstream latency buckets, in seconds (100 µs to 10 s).
const UPSTREAM_BUCKETS: [f64; 12] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5, 10.0,
];

/// `decision`: `allow` or `deny`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabel {
    decision: &'static str,
}

/// `result`: `ok` or `error`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// One proxied request: its status, verdict, route pattern and upstream (empty when none).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The status answered.
    pub status: u16,
    /// `allow`, `deny` or `limited`.
    pub decision: &'static str,
    /// The route's pattern, such as `GET /orders/{id}`; empty before routing.
    pub route: Arc<str>,
    /// The upstream's name; empty when not forwarded.
    pub upstream: Arc<str>,
}

/// An upstream's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabel {
    /// The `[[upstream]]` name.
    pub upstream: Arc<str>,
}

/// A rate limit's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    /// The `limit` declaration's name.
    pub limit: String,
}

/// An entity provider's fetch: the entity type it serves and how the fetch ended (`found`,
/// `missing`, `error`), or a cache answer (`cached`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabel {
    /// The entity type.
    pub entity_type: Arc<str>,
    /// `found`, `missing`, `error` or `cached`.
    pub result: &'static str,
}

/// Every metric `authz serve` and `authz proxy` export.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Decisions that allowed.
    pub allowed: Counter,
    /// Decisions that denied.
    pub denied: Counter,
    /// Decisions that met at least one evaluation error.
    pub decisions_with_errors: Counter,
    /// Requests answered 400 (bad input) by the decision API.
    pub bad_requests: Counter,
    /// Policy loads that succeeded (the first load included).
    pub reloads_ok: Counter,
    /// Policy loads that failed and kept the previous set.
    pub reloads_failed: Counter,
    /// Policies in the set being served.
    pub policies_loaded: Gauge,
    /// Decision log lines dropped because the writer could not keep up (`on_full = "drop"`).
    pub log_dropped: Counter,
    /// Decision log lines written.
    pub log_written: Counter,
    decision_duration: Histogram,
    /// Proxied requests by status, decision, route and upstream.
    pub proxy_requests: Family<RequestLabels, Counter>,
    /// Time from forwarding a request to the upstream's response head, by upstream.
    pub upstream_duration: Family<UpstreamLabel, Histogram>,
    /// Requests refused by a rate limit, by limit.
    pub limit_hits: Family<LimitLabel, Counter>,
    /// Tokens found verified in the cache.
    pub token_cache_hits: Counter,
    /// Tokens verified (not found in the cache).
    pub token_cache_misses: Counter,
    /// JWKS fetches that succeeded.
    pub jwks_refreshes: Counter,
    /// JWKS fetches that failed (the cached keys keep serving until they are stale).
    pub jwks_failures: Counter,
    /// Redis commands of the shared limits that failed.
    pub redis_errors: Counter,
    /// Entity provider lookups by entity type and result.
    pub provider_lookups: Family<ProviderLabel, Counter>,
    /// Bundle polls by result.
    bundle_fetches: Family<ResultLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::default();
        let decisions = Family::<DecisionLabel, Counter>::default();
        registry.register("authz_decisions", "Decisions by outcome", decisions.clone());
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "authz_policy_reloads",
            "Policy loads by result",
            reloads.clone(),
        );
        let metric = |registry: &mut Registry, name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let decisions_with_errors = metric(
            &mut registry,
            "authz_decision_errors",
            "Decisions that met evaluation errors",
        );
        let bad_requests = metric(&mut registry, "authz_bad_requests", "Requests answered 400");
        let log_written = metric(
            &mut registry,
            "authz_decision_log_written",
            "Decision log lines written",
        );
        let log_dropped = metric(
            &mut registry,
            "authz_decision_log_dropped",
            "Decision log lines dropped",
        );
        let policies_loaded = Gauge::default();
        registry.register(
            "authz_policies_loaded",
            "Policies in the set being served",
            policies_loaded.clone(),
        );
        let decision_duration = Histogram::new(DECISION_BUCKETS);
        registry.register(
            "authz_decision_duration_seconds",
            "Time to decide one request",
            decision_duration.clone(),
        );
        let proxy_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "authz_proxy_requests",
            "Requests through the proxy by status, decision, route and upstream",
            proxy_requests.clone(),
        );
        let upstream_duration = Family::<UpstreamLabel, Histogram>::new_with_constructor(
            upstream_histogram as fn() -> Histogram,
        );
        registry.register(
            "authz_proxy_upstream_duration_seconds",
            "Time from forwarding a request to the upstream's response head",
            upstream_duration.clone(),
        );
        let limit_hits = Family::<LimitLabel, Counter>::default();
        registry.register(
            "authz_proxy_limit_hits",
            "Requests refused by a rate limit",
            limit_hits.clone(),
        );
        let token_cache_hits = metric(
            &mut registry,
            "authz_proxy_token_cache_hits",
            "Tokens found verified in the cache",
        );
        let token_cache_misses = metric(
            &mut registry,
            "authz_proxy_token_cache_misses",
            "Tokens verified because the cache did not hold them",
        );
        let jwks_refreshes = metric(
            &mut registry,
            "authz_proxy_jwks_refreshes",
            "JWKS fetches that succeeded",
        );
        let jwks_failures = metric(
            &mut registry,
            "authz_proxy_jwks_failures",
            "JWKS fetches that failed",
        );
        let redis_errors = metric(
            &mut registry,
            "authz_proxy_redis_errors",
            "Shared limit commands to Redis that failed",
        );
        let provider_lookups = Family::<ProviderLabel, Counter>::default();
        registry.register(
            "authz_entity_provider_lookups",
            "Entity provider lookups by entity type and result (found, missing, error, cached)",
            provider_lookups.clone(),
        );
        let bundle_fetches = Family::<ResultLabel, Counter>::default();
        registry.register(
            "authz_bundle_fetches",
            "Bundle polls by result (installed, not_modified, unchanged, rejected, error)",
            bundle_fetches.clone(),
        );
        let allowed = decisions.get_or_create_owned(&DecisionLabel { decision: "allow" });
        let denied = decisions.get_or_create_owned(&DecisionLabel { decision: "deny" });
        let reloads_ok = reloads.get_or_create_owned(&ResultLabel { result: "ok" });
        let reloads_failed = reloads.get_or_create_owned(&ResultLabel { result: "error" });
        Metrics {
            allowed,
            denied,
            reloads_ok,
            reloads_failed,
            registry,
            decisions_with_errors,
            bad_requests,
            policies_loaded,
            log_dropped,
            log_written,
            decision_duration,
            proxy_requests,
            upstream_duration,
            limit_hits,
            token_cache_hits,
            token_cache_misses,
            jwks_refreshes,
            jwks_failures,
            redis_errors,
            provider_lookups,
            bundle_fetches,
        }
    }
}

fn upstream_histogram() -> Histogram {
    Histogram::new(UPSTREAM_BUCKETS)
}

impl Metrics {
    /// Counts one bundle poll by how it ended.
    pub fn count_bundle(&self, result: &'static str) {
        self.bundle_fetches
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Records one decision's latency.
    pub fn observe_latency(&self, micros: u64) {
        self.decision_duration.observe(micros as f64 / 1e6);
    }

    /// The OpenMetrics text exposition (which Prometheus scrapes).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric_and_moves() {
        let metrics = Metrics::default();
        metrics.allowed.inc();
        metrics.observe_latency(30);
        metrics
            .proxy_requests
            .get_or_create(&RequestLabels {
                status: 200,
                decision: "allow",
                route: Arc::from("GET /docs/{id}"),
                upstream: Arc::from("docs"),
            })
            .inc();
        let text = metrics.render();
        for expected in [
            "authz_decisions_total{decision=\"allow\"} 1",
            "authz_decision_duration_seconds_count 1",
            "authz_proxy_requests_total{status=\"200\",decision=\"allow\",route=\"GET /docs/{id}\",upstream=\"docs\"} 1",
            "# TYPE authz_proxy_token_cache_hits counter",
            "# EOF",
        ] {
            assert!(text.contains(expected), "{expected}\n{text}");
        }
    }
}
