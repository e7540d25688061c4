//! The laws of the decision engine (issue 3), held by property tests over generated well-typed
//! policy sets, entity stores and requests (`support/gen.rs`):
//!
//! - **agreement**: the engine (compile, load entities, load request, decide) and the reference
//!   evaluator (`support/reference.rs`, a direct interpreter of the syntax tree and the JSON)
//!   agree on the decision, the determining policies and the erroring policies;
//! - **order independence**: shuffling policies within and across files, and the files, never
//!   changes a decision;
//! - **deny overrides**: adding a forbid that applies to a request makes it deny;
//! - **default deny**: a set without permits denies everything;
//! - **fail closed**: a forbid whose condition errors denies and its error is reported; a permit
//!   whose condition errors does not allow;
//! - **typed means no type errors**: no decision of a well-typed set reports `WrongType`.
//!
//! Runs are deterministic: the seed is fixed unless `AUTHZ_LAW_SEED` is set, and
//! `AUTHZ_LAW_CASES` sets the number of policy sets of the agreement law (default 2,000, with 50
//! requests each: 100,000 pairs, about 20 s for the whole file in a debug build on 2 cores); the
//! other laws scale with it. Longer runs done: `AUTHZ_LAW_SEED=11 AUTHZ_LAW_CASES=10000` and
//! `AUTHZ_LAW_SEED=12 AUTHZ_LAW_CASES=10000` (500,000 pairs each, 2 to 3 minutes), all laws held.
//! On a failure, proptest shrinks the case and the message shows the policy set, the entities,
//! the request and both results.
//!
//! Errors compared: the reference evaluates every policy; the engine evaluates every candidate
//! forbid and, only when no forbid applies, the candidate permits (a denial by a forbid does not
//! need them). So the erroring forbids must be the same, and the erroring permits too unless a
//! forbid decided.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use serde_json::Value as Json;

use support::engine::{Engine, EngineDecision};
use support::gen::{self, PolicySet};
use support::reference::{RefDecision, Reference};

/// Policy sets of the agreement law, unless `AUTHZ_LAW_CASES` says otherwise.
const DEFAULT_CASES: u32 = 2_000;
/// Requests per policy set in the agreement law.
const REQUESTS_PER_SET: usize = 50;

fn cases() -> u32 {
    std::env::var("AUTHZ_LAW_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// A deterministic runner; `salt` keeps the laws' streams apart.
fn runner(cases: u32, salt: u8) -> TestRunner {
    let seed: u64 = std::env::var("AUTHZ_LAW_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8] = salt;
    let config = Config {
        cases,
        max_shrink_iters: 2_000,
        max_shrink_time: 60_000,
        failure_persistence: None,
        max_local_rejects: 1_000_000,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Runs a law over `cases` cases and panics with the shrunk failure.
fn check<T: Debug + Clone>(
    name: &str,
    cases: u32,
    salt: u8,
    strategy: impl Strategy<Value = T>,
    test: impl Fn(T) -> Result<(), TestCaseError>,
) {
    let start = Instant::now();
    let result = runner(cases, salt).run(&strategy, test);
    eprintln!("{name}: {cases} cases in {:.1?}", start.elapsed());
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, _)) => panic!("{name} fails (shrunk case):\n{reason}"),
        Err(TestError::Abort(reason)) => panic!("{name} aborted: {reason}"),
    }
}

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

fn show_case(set: &PolicySet, entities: &Json, request: &Json) -> String {
    format!(
        "policies:\n{}\nentities: {}\nrequest: {}",
        set.show(),
        entities,
        request
    )
}

fn engine(set: &PolicySet, entities: &Json) -> Result<Engine, TestCaseError> {
    Engine::new(&set.sources(), &entities.to_string())
        .map_err(|error| fail(format!("{error}\n{}", set.show())))
}

fn reference(set: &PolicySet, entities: &Json) -> Result<Reference, TestCaseError> {
    Reference::new(&set.sources(), entities).map_err(fail)
}

fn engine_decide(engine: &Engine, request: &Json) -> Result<EngineDecision, TestCaseError> {
    let decision = engine.decide(&request.to_string()).map_err(fail)?;
    if decision.wrong_type {
        return Err(fail(format!(
            "a well-typed set raised a type error at run time: {decision:?}"
        )));
    }
    let mut seen = BTreeSet::new();
    for id in &decision.determining {
        if !seen.insert(id) {
            return Err(fail(format!(
                "policy {id} is reported twice among the determining policies: {decision:?}"
            )));
        }
    }
    Ok(decision)
}

fn reference_decide(reference: &Reference, request: &Json) -> Result<RefDecision, TestCaseError> {
    let decision = reference.decide(request).map_err(fail)?;
    let bugs = decision.bug_errors();
    if !bugs.is_empty() {
        return Err(fail(format!(
            "the reference met a type error or an unsupported construct: {bugs:?}"
        )));
    }
    Ok(decision)
}

/// The differences between the engine's and the reference's decisions, if any.
fn disagreement(engine: &EngineDecision, reference: &RefDecision) -> Option<String> {
    let mut problems = Vec::new();
    if engine.allow != reference.allow {
        problems.push("decision differs");
    }
    if engine.determining_set() != reference.determining {
        problems.push("determining policies differ");
    }
    let reference_forbids = reference.errored_forbids.clone();
    let reference_permits: BTreeSet<String> = reference
        .errored
        .difference(&reference.errored_forbids)
        .cloned()
        .collect();
    if engine.errored(true) != reference_forbids {
        problems.push("erroring forbids differ");
    }
    let engine_permits = engine.errored(false);
    if engine.denied_by_forbid() {
        if !engine_permits.is_subset(&reference_permits) {
            problems.push("erroring permits are not among the reference's");
        }
    } else if engine_permits != reference_permits {
        problems.push("erroring permits differ");
    }
    if problems.is_empty() {
        return None;
    }
    Some(format!(
        "{}\nengine:    {engine:?}\nreference: allow={} determining={:?} errored={:?}\nverdicts:  {:?}",
        problems.join("; "),
        reference.allow,
        reference.determining,
        reference.errored,
        reference.verdicts,
    ))
}

static PAIRS: AtomicUsize = AtomicUsize::new(0);
static ALLOWS: AtomicUsize = AtomicUsize::new(0);
static FORBID_DENIES: AtomicUsize = AtomicUsize::new(0);
static WITH_ERRORS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn engine_agrees_with_the_reference() {
    let strategy = (
        gen::policy_set(1..=8),
        gen::entities(),
        proptest::collection::vec(gen::request(), REQUESTS_PER_SET),
    );
    let cases = cases();
    check(
        "agreement",
        cases,
        1,
        strategy,
        |(set, entities, requests)| {
            let engine = engine(&set, &entities)?;
            let reference = reference(&set, &entities)?;
            if std::env::var_os("AUTHZ_LAW_SHOW").is_some() {
                eprintln!("{}\nentities: {entities}", set.show());
            }
            for request in &requests {
                let ours = engine_decide(&engine, request)?;
                let theirs = reference_decide(&reference, request)?;
                ALLOWS.fetch_add(usize::from(ours.allow), Ordering::Relaxed);
                FORBID_DENIES.fetch_add(usize::from(ours.denied_by_forbid()), Ordering::Relaxed);
                WITH_ERRORS.fetch_add(usize::from(!theirs.errored.is_empty()), Ordering::Relaxed);
                if let Some(problem) = disagreement(&ours, &theirs) {
                    return Err(fail(format!(
                        "{problem}\n{}",
                        show_case(&set, &entities, request)
                    )));
                }
                PAIRS.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        },
    );
    let pairs = PAIRS.load(Ordering::Relaxed);
    eprintln!(
        "agreement: {pairs} (policy set, request) pairs: {} allowed, {} denied by a forbid, {} with errors",
        ALLOWS.load(Ordering::Relaxed),
        FORBID_DENIES.load(Ordering::Relaxed),
        WITH_ERRORS.load(Ordering::Relaxed),
    );
    assert!(pairs >= cases as usize * REQUESTS_PER_SET);
}

/// A permutation of `0..n` drawn from `seed` (Fisher-Yates over a small LCG).
fn permutation(n: usize, seed: &mut u64) -> Vec<usize> {
    let mut items: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = ((*seed >> 33) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
    items
}

/// Every policy named, so that ids do not depend on positions.
fn named(mut set: PolicySet) -> PolicySet {
    for (n, policy) in set.policies.iter_mut().enumerate() {
        policy.id = Some(format!("p{n}"));
    }
    set
}

/// The decision with sets instead of sequences.
fn summary(decision: &EngineDecision) -> (bool, BTreeSet<String>, BTreeSet<(String, String)>) {
    (
        decision.allow,
        decision.determining_set(),
        decision
            .errors
            .iter()
            .map(|(id, _, message)| (id.clone(), message.clone()))
            .collect(),
    )
}

#[test]
fn order_of_policies_and_files_does_not_matter() {
    let strategy = (
        gen::policy_set(2..=10).prop_map(named),
        gen::entities(),
        proptest::collection::vec(gen::request(), 20),
        any::<u64>(),
    );
    check(
        "order independence",
        (cases() / 8).max(1),
        2,
        strategy,
        |(set, entities, requests, mut seed)| {
            let original = engine(&set, &entities)?;
            // Policies shuffled, moved across files, and the files (schema too) reordered.
            let mut shuffled = set.clone();
            shuffled.files = set.files.max(2);
            let order = permutation(set.policies.len(), &mut seed);
            shuffled.policies = order.iter().map(|&i| set.policies[i].clone()).collect();
            for policy in &mut shuffled.policies {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                policy.file = ((seed >> 33) % shuffled.files as u64) as usize;
            }
            let sources = shuffled.sources();
            let file_order = permutation(sources.len(), &mut seed);
            let sources: Vec<(String, String)> =
                file_order.iter().map(|&i| sources[i].clone()).collect();
            let other = Engine::new(&sources, &entities.to_string()).map_err(fail)?;
            for request in &requests {
                let a = engine_decide(&original, request)?;
                let b = engine_decide(&other, request)?;
                if summary(&a) != summary(&b) {
                    return Err(fail(format!(
                        "the order changed the decision\noriginal: {a:?}\nshuffled: {b:?}\nshuffled files: {sources:?}\n{}",
                        show_case(&set, &entities, request)
                    )));
                }
            }
            Ok(())
        },
    );
}

/// A request with a forbid that applies to it: `principal == P, action: [a], resource == R`
/// with a random condition `|| true` (which applies, or errors and so applies too).
fn request_with_forbid() -> BoxedStrategy<(Json, String)> {
    gen::request()
        .prop_flat_map(|request| {
            let name =
                |field: &str| gen::static_name(request[field]["type"].as_str().unwrap()).unwrap();
            let principal = name("principal");
            let resource = name("resource");
            let action = gen::static_name(request["action"].as_str().unwrap()).unwrap();
            let env = gen::exact_env(principal, action, resource);
            let scope = format!(
                "principal == {principal}({}), action: [{action}], resource == {resource}({})",
                request["principal"]["id"], request["resource"]["id"]
            );
            gen::condition(env, 2).prop_map(move |condition| {
                (
                    request.clone(),
                    format!("{scope}\nwhen ({condition}) || true"),
                )
            })
        })
        .boxed()
}

#[test]
fn an_applicable_forbid_overrides() {
    let strategy = (
        gen::policy_set(1..=8),
        gen::entities(),
        proptest::collection::vec(request_with_forbid(), 10),
    );
    check(
        "deny overrides",
        (cases() / 8).max(1),
        3,
        strategy,
        |(set, entities, requests)| {
            let before = engine(&set, &entities)?;
            for (request, forbid) in &requests {
                let mut with = set.clone();
                with.policies.push(gen::GenPolicy {
                    id: Some("added".to_owned()),
                    permit: false,
                    body: forbid.clone(),
                    file: 0,
                });
                let after = engine(&with, &entities)?;
                let old = engine_decide(&before, request)?;
                let new = engine_decide(&after, request)?;
                let old_forbids: BTreeSet<String> = if old.allow {
                    BTreeSet::new()
                } else {
                    old.determining_set()
                };
                if new.allow
                    || !new.determining.iter().any(|id| id == "added")
                    || !old_forbids.is_subset(&new.determining_set())
                {
                    return Err(fail(format!(
                        "adding an applicable forbid did not deny (or lost a forbid)\nbefore: {old:?}\nafter:  {new:?}\n{}",
                        show_case(&with, &entities, request)
                    )));
                }
            }
            Ok(())
        },
    );
}

#[test]
fn without_permits_everything_is_denied() {
    let strategy = (
        gen::policy_set(0..=8),
        gen::entities(),
        proptest::collection::vec(gen::request(), 20),
    );
    check(
        "default deny",
        (cases() / 8).max(1),
        4,
        strategy,
        |(mut set, entities, requests)| {
            set.policies.retain(|policy| !policy.permit);
            let engine = engine(&set, &entities)?;
            for request in &requests {
                let decision = engine_decide(&engine, request)?;
                if decision.allow {
                    return Err(fail(format!(
                        "a set without permits allowed: {decision:?}\n{}",
                        show_case(&set, &entities, request)
                    )));
                }
            }
            Ok(())
        },
    );
}

/// Conditions that error for every request: a missing entity's attribute, overflow, a bad
/// extension string at run time.
const ERRORS: [&str; 5] = [
    "User(\"ghost\").level > 0",
    "Doc(\"ghost\").readers.isEmpty()",
    "(9223372036854775807 + 1) > 0",
    "(-(-9223372036854775807 - 1)) > 0",
    "ip(\"bad\".toLower()).isIpv4()",
];

#[test]
fn erroring_policies_fail_closed() {
    let strategy = (
        gen::policy_set(0..=8),
        gen::entities(),
        proptest::collection::vec(gen::request(), 20),
        proptest::sample::select(ERRORS.to_vec()),
        any::<bool>(),
    );
    check(
        "fail closed",
        (cases() / 8).max(1),
        5,
        strategy,
        |(set, entities, requests, error, forbid)| {
            let mut with = set.clone();
            let (id, effect) = if forbid {
                ("bad-forbid", "forbid")
            } else {
                ("bad-permit", "permit")
            };
            with.policies.push(gen::GenPolicy {
                id: Some(id.to_owned()),
                permit: !forbid,
                body: format!("principal: *, action: *, resource: *\nwhen true\nwhen {error}"),
                file: 0,
            });
            let before = engine(&set, &entities)?;
            let after = engine(&with, &entities)?;
            for request in &requests {
                let old = engine_decide(&before, request)?;
                let new = engine_decide(&after, request)?;
                let reported = new.errors.iter().any(|(policy, _, _)| policy == id);
                let wrong = if forbid {
                    // Denies, determined by it, with its error reported.
                    new.allow || !new.determining.iter().any(|p| p == id) || !reported
                } else {
                    // Changes nothing, and its error is reported when the permits ran.
                    summary_without(&new, id) != summary_without(&old, id)
                        || (!new.denied_by_forbid() && !reported)
                };
                if wrong {
                    return Err(fail(format!(
                        "an erroring {effect} did not fail closed\nwithout it: {old:?}\nwith it:    {new:?}\n{}",
                        show_case(&with, &entities, request)
                    )));
                }
            }
            Ok(())
        },
    );
}

/// The decision and determining policies, ignoring the errors of policy `id`.
fn summary_without(decision: &EngineDecision, id: &str) -> (bool, BTreeSet<String>) {
    let mut determining = decision.determining_set();
    determining.remove(id);
    (decision.allow, determining)
}

#[test]
fn well_typed_sets_raise_no_type_errors() {
    let strategy = (
        gen::policy_set(1..=12),
        gen::entities(),
        proptest::collection::vec(gen::request(), 10),
    );
    check(
        "typed means no type errors",
        (cases() / 4).max(1),
        6,
        strategy,
        |(set, entities, requests)| {
            let engine = engine(&set, &entities)?;
            for request in &requests {
                // `engine_decide` fails the case on any `WrongType`.
                engine_decide(&engine, request)?;
            }
            Ok(())
        },
    );
}
