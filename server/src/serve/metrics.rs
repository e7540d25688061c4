//! Prometheus metrics: counters and one latency histogram, kept in atomics and rendered as the
//! Prometheus text format on `GET /metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the decision latency buckets, in microseconds.
const LATENCY_BUCKETS_US: [u64; 12] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000,
];

/// Every metric the server exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Decisions that allowed.
    pub allowed: AtomicU64,
    /// Decisions that denied.
    pub denied: AtomicU64,
    /// Decisions that met at least one evaluation error.
    pub decisions_with_errors: AtomicU64,
    /// Requests answered 400 (bad input).
    pub bad_requests: AtomicU64,
    /// Policy loads that succeeded (the first load included).
    pub reloads_ok: AtomicU64,
    /// Policy loads that failed and kept the previous set.
    pub reloads_failed: AtomicU64,
    /// Policies in the set being served.
    pub policies_loaded: AtomicU64,
    /// Decision log lines dropped because the writer could not keep up (`on_full = "drop"`).
    pub log_dropped: AtomicU64,
    /// Decision log lines written.
    pub log_written: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_US.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl Metrics {
    /// Records one decision's latency.
    pub fn observe_latency(&self, micros: u64) {
        for (bound, bucket) in LATENCY_BUCKETS_US.iter().zip(&self.latency_buckets) {
            if micros <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(micros, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut out = String::with_capacity(2048);
        let _ = writeln!(out, "# HELP authz_decisions_total Decisions by outcome.");
        let _ = writeln!(out, "# TYPE authz_decisions_total counter");
        let _ = writeln!(
            out,
            "authz_decisions_total{{decision=\"allow\"}} {}",
            get(&self.allowed)
        );
        let _ = writeln!(
            out,
            "authz_decisions_total{{decision=\"deny\"}} {}",
            get(&self.denied)
        );
        let _ = writeln!(
            out,
            "# HELP authz_decision_errors_total Decisions that met evaluation errors."
        );
        let _ = writeln!(out, "# TYPE authz_decision_errors_total counter");
        let _ = writeln!(
            out,
            "authz_decision_errors_total {}",
            get(&self.decisions_with_errors)
        );
        let _ = writeln!(
            out,
            "# HELP authz_bad_requests_total Requests answered 400."
        );
        let _ = writeln!(out, "# TYPE authz_bad_requests_total counter");
        let _ = writeln!(out, "authz_bad_requests_total {}", get(&self.bad_requests));
        let _ = writeln!(
            out,
            "# HELP authz_decision_duration_seconds Time to decide one request."
        );
        let _ = writeln!(out, "# TYPE authz_decision_duration_seconds histogram");
        for (bound, bucket) in LATENCY_BUCKETS_US.iter().zip(&self.latency_buckets) {
            let seconds = *bound as f64 / 1e6;
            let _ = writeln!(
                out,
                "authz_decision_duration_seconds_bucket{{le=\"{seconds}\"}} {}",
                get(bucket)
            );
        }
        let count = get(&self.latency_count);
        let _ = writeln!(
            out,
            "authz_decision_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "authz_decision_duration_seconds_sum {}",
            get(&self.latency_sum_us) as f64 / 1e6
        );
        let _ = writeln!(out, "authz_decision_duration_seconds_count {count}");
        let _ = writeln!(
            out,
            "# HELP authz_policy_reloads_total Policy loads by result."
        );
        let _ = writeln!(out, "# TYPE authz_policy_reloads_total counter");
        let _ = writeln!(
            out,
            "authz_policy_reloads_total{{result=\"ok\"}} {}",
            get(&self.reloads_ok)
        );
        let _ = writeln!(
            out,
            "authz_policy_reloads_total{{result=\"error\"}} {}",
            get(&self.reloads_failed)
        );
        let _ = writeln!(
            out,
            "# HELP authz_policies_loaded Policies in the set being served."
        );
        let _ = writeln!(out, "# TYPE authz_policies_loaded gauge");
        let _ = writeln!(out, "authz_policies_loaded {}", get(&self.policies_loaded));
        let _ = writeln!(
            out,
            "# HELP authz_decision_log_written_total Decision log lines written."
        );
        let _ = writeln!(out, "# TYPE authz_decision_log_written_total counter");
        let _ = writeln!(
            out,
            "authz_decision_log_written_total {}",
            get(&self.log_written)
        );
        let _ = writeln!(
            out,
            "# HELP authz_decision_log_dropped_total Decision log lines dropped."
        );
        let _ = writeln!(out, "# TYPE authz_decision_log_dropped_total counter");
        let _ = writeln!(
            out,
            "authz_decision_log_dropped_total {}",
            get(&self.log_dropped)
        );
        out
    }
}
