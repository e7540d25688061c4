//! How compiling a policy set grows with its size: the per-tenant form of the issue-3 workload
//! (two policies per tenant, `principal in Role("t7-editor")`, `resource.tenant == Tenant("t7")`)
//! at N = 1,000 to 100,000 policies, compiled from source (parse, check, lower, index, share) by
//! `authz_compiler::compile_sources`, as `authz serve` and `authz proxy` do on every load and
//! reload.
//!
//! For each N the harness writes the set with `gen-workload` (with few entities: they are not
//! compiled), reads its files, compiles them `RUNS` times and prints the median wall time, the
//! time per 1,000 policies and the ratio to N = 10,000: a linear compiler keeps the time per
//! 1,000 policies flat and the ratio near N / 10,000.
//!
//! Run `cargo bench -p authz-tests --bench compile_scaling` (or `scripts/bench-compile.sh`);
//! `AUTHZ_BENCH_POLICIES=10000,40000` picks the sizes. Without `--bench` (as `cargo test
//! --benches` runs it) it compiles the smallest size once, to show that it works.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use authz_lang::SourceFile;

/// The sizes compiled by default, N tenant policies.
const DEFAULT_POLICIES: [usize; 5] = [1_000, 10_000, 20_000, 40_000, 100_000];

fn policy_counts(benching: bool) -> Vec<usize> {
    match std::env::var("AUTHZ_BENCH_POLICIES") {
        Ok(list) => list
            .split(',')
            .map(|item| item.trim().replace('_', "").parse().unwrap())
            .collect(),
        Err(_) if !benching => vec![DEFAULT_POLICIES[0]],
        Err(_) => DEFAULT_POLICIES.to_vec(),
    }
}

/// Writes the per-tenant set of `policies` policies into `dir`.
fn write_set(dir: &Path, policies: usize) {
    let output = Command::new(env!("CARGO_BIN_EXE_gen-workload"))
        .args(["--policies", &policies.to_string()])
        .args(["--users", "100", "--documents", "200", "--requests", "1"])
        .arg("--out")
        .arg(dir)
        .output()
        .expect("gen-workload runs");
    assert!(
        output.status.success(),
        "gen-workload failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The `.authz` files of `dir`, by name.
fn read_set(dir: &Path) -> Vec<SourceFile> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "authz"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            SourceFile::new(
                path.file_name().unwrap().to_string_lossy(),
                std::fs::read_to_string(path).unwrap(),
            )
        })
        .collect()
}

/// The median of `runs` compilations of `sources`.
fn median_compile(sources: &[SourceFile], runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            let compiled = authz_compiler::compile_sources(sources);
            let elapsed = started.elapsed();
            assert!(
                compiled.program.is_some(),
                "the generated set does not compile: {:?}",
                compiled.checked.diagnostics.first()
            );
            drop(std::hint::black_box(compiled));
            elapsed
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let benching = std::env::args().any(|arg| arg == "--bench");
    let runs: usize = if benching { 5 } else { 1 };
    let temp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut rows = Vec::new();
    for policies in policy_counts(benching) {
        let dir = temp.path().join(format!("p{policies}"));
        write_set(&dir, policies);
        let sources = read_set(&dir);
        let median = median_compile(&sources, runs);
        eprintln!("compile_scaling: {policies} policies in {median:?} (median of {runs})");
        rows.push((policies, median));
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let base = rows
        .iter()
        .find(|(policies, _)| *policies == 10_000)
        .map(|(_, time)| *time);
    println!();
    println!("| policies | median compile ms | ms per 1,000 policies | × N = 10,000 |");
    println!("|---:|---:|---:|---:|");
    for (policies, time) in rows {
        let ms = time.as_secs_f64() * 1e3;
        let per_thousand = ms / (policies as f64 / 1_000.0);
        let ratio = base.map_or("-".to_string(), |base| {
            format!("{:.2}", time.as_secs_f64() / base.as_secs_f64())
        });
        println!("| {policies} | {ms:.0} | {per_thousand:.1} | {ratio} |");
    }
}
