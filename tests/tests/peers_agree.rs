//! The peers agree with the workload generator's oracle (`expected.json`) on every request, in
//! both forms: Cedar, Rego (regorus) and casbin on a 100-policy workload with 2,000 requests.
//!
//! casbin's single-matcher model expresses every rule of the workload (see `peers/casbin.rs`), so
//! its lower bound is total agreement too; should a rule ever be out of its reach, lower
//! [`CASBIN_MIN_AGREEMENT`] to the measured rate and say which rule in a comment.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../peers/mod.rs"]
mod peers;

use peers::{EngineKind, Form, Workload};

/// Tenant policies of the agreement workload (50 tenants).
const POLICIES: usize = 100;
/// Requests of the agreement workload.
const REQUESTS: usize = 2_000;
/// The least fraction of requests on which casbin must agree with the oracle.
const CASBIN_MIN_AGREEMENT: f64 = 1.0;

/// Runs `engine` in `form` over every request and returns the indices where it disagrees.
fn disagreements(workload: &Workload, engine: EngineKind, form: Form) -> Vec<usize> {
    let mut built = peers::build(engine, form, workload)
        .unwrap_or_else(|err| panic!("cannot build {} {}: {err}", engine.name(), form.name()));
    let wrong: Vec<usize> = (0..workload.requests.len())
        .filter(|&index| built.decide(index) != workload.expected(index))
        .collect();
    assert_eq!(
        built.errors(),
        0,
        "{} {} raised evaluation errors",
        engine.name(),
        form.name()
    );
    wrong
}

fn check_exact(engine: EngineKind) {
    let workload = Workload::generate(POLICIES, REQUESTS).unwrap();
    let allows = workload.expected_allows();
    assert!(
        allows > REQUESTS / 10 && allows < REQUESTS * 9 / 10,
        "the workload should mix allows and denies, got {allows} allows"
    );
    for &form in engine.forms() {
        let wrong = disagreements(&workload, engine, form);
        let shown: Vec<String> = wrong
            .iter()
            .take(5)
            .map(|&index| {
                format!(
                    "{} (expected {})",
                    workload.requests_json[index], workload.expected[index]
                )
            })
            .collect();
        assert!(
            wrong.is_empty(),
            "{} {} disagrees with expected.json on {} of {} requests, e.g.\n{}",
            engine.name(),
            form.name(),
            wrong.len(),
            REQUESTS,
            shown.join("\n")
        );
    }
}

#[test]
fn authz_agrees_with_the_oracle() {
    check_exact(EngineKind::Authz);
}

#[test]
fn cedar_agrees_with_the_oracle() {
    check_exact(EngineKind::Cedar);
}

#[test]
fn rego_agrees_with_the_oracle() {
    check_exact(EngineKind::Rego);
}

#[test]
fn casbin_agrees_with_the_oracle_at_least_as_documented() {
    let workload = Workload::generate(POLICIES, REQUESTS).unwrap();
    for form in Form::ALL {
        let wrong = disagreements(&workload, EngineKind::Casbin, form);
        let rate = 1.0 - wrong.len() as f64 / REQUESTS as f64;
        println!(
            "casbin {}: agrees on {} of {} requests ({:.2}%)",
            form.name(),
            REQUESTS - wrong.len(),
            REQUESTS,
            rate * 100.0
        );
        assert!(
            rate >= CASBIN_MIN_AGREEMENT,
            "casbin {} agrees on {:.2}% of requests, below the documented {:.2}%",
            form.name(),
            rate * 100.0,
            CASBIN_MIN_AGREEMENT * 100.0
        );
    }
}
