//! Criterion benchmark of single decisions on the issue-3 workload: every engine, in each of its
//! forms, at N = 10, 100, 1,000 and 10,000 tenant policies, over the 10,000 generated requests.
//!
//! Each engine loads its workload once, outside the measurement (its policies, entities and
//! requests translated into its native form); one iteration decides the next request, round-robin,
//! so criterion's median is the median time of one decision.
//!
//! Run `cargo bench -p authz-tests --bench decisions`. Criterion's filter selects benchmarks by
//! name (`-- cedar-expert`); `AUTHZ_BENCH_POLICIES=10,100` restricts the workload sizes, which saves
//! generating the large ones. Engines are built only for the benchmarks that run.
//! `scripts/bench-decisions.sh` prints the same comparison as one table with memory figures.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../peers/mod.rs"]
mod peers;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use peers::{Engine, EngineKind, Form, Workload};

/// The workload sizes, N tenant policies.
const DEFAULT_POLICIES: [usize; 4] = [10, 100, 1_000, 10_000];
/// Requests per workload.
const REQUESTS: usize = 10_000;

fn policy_counts() -> Vec<usize> {
    match std::env::var("AUTHZ_BENCH_POLICIES") {
        Ok(list) => list
            .split(',')
            .map(|item| item.trim().replace('_', "").parse().unwrap())
            .collect(),
        // `cargo test --benches` runs each benchmark once, without `--bench`: the smallest size
        // is enough to show that it works.
        Err(_) if !std::env::args().any(|arg| arg == "--bench") => vec![DEFAULT_POLICIES[0]],
        Err(_) => DEFAULT_POLICIES.to_vec(),
    }
}

/// Engines whose per-decision cost grows with N: fewer samples at the large sizes.
fn is_slow(engine: EngineKind, form: Form, policies: usize) -> bool {
    form == Form::Literal
        && policies >= 1_000
        && !matches!(engine, EngineKind::Cedar | EngineKind::Authz)
}

fn decisions(c: &mut Criterion) {
    for policies in policy_counts() {
        let workload = Workload::generate(policies, REQUESTS).unwrap();
        let mut group = c.benchmark_group("decisions");
        for kind in EngineKind::ALL {
            for &form in kind.forms() {
                if is_slow(kind, form, policies) {
                    group.sample_size(10);
                    group.measurement_time(Duration::from_secs(10));
                } else {
                    group.sample_size(100);
                    group.measurement_time(Duration::from_secs(5));
                }
                let name = format!("{}-{}", kind.name(), form.name());
                // Built on first use, so that a filtered-out benchmark costs no load.
                let mut built: Option<Box<dyn Engine>> = None;
                let mut next = 0;
                group.bench_function(BenchmarkId::new(name, policies), |b| {
                    let engine = built.get_or_insert_with(|| {
                        peers::build(kind, form, &workload).unwrap_or_else(|err| {
                            panic!("cannot build {} {}: {err}", kind.name(), form.name())
                        })
                    });
                    b.iter(|| {
                        let allow = engine.decide(next);
                        next += 1;
                        if next == workload.requests.len() {
                            next = 0;
                        }
                        black_box(allow)
                    });
                });
            }
        }
        // AUTHZ ENGINE: once `EngineKind::Authz` exists it is benchmarked by the loop above, in the
        // same group and run as the peers, so criterion's report compares them directly.
        group.finish();
    }
}

criterion_group!(benches, decisions);
criterion_main!(benches);
