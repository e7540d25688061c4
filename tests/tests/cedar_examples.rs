//! The Cedar side of issue 3's conformance law: `examples/docs` and `examples/github` are also
//! written in Cedar (`tests/peers/cedar_examples/<name>/`), and for at least 10,000 seeded requests
//! per example Cedar and authz must give the same decision.
//!
//! The Cedar policies validate against their schema in strict mode and decide every request of
//! the example's README table as the README says (with the same determining policies); on 10,000
//! generated requests per example, Cedar raises no error, both outcomes are well represented, and
//! authz gives the same decision with the same determining policies as Cedar on every request.
//!
//! Where the two languages differ: authz denies when a `forbid` errors (fail closed) and Cedar
//! skips an erroring policy; authz requires `has` guards, so well-typed policies err only on
//! missing entities or overflow. The generated requests name existing entities only, so no policy
//! errs in either language (this test asserts it of Cedar) and the decisions must agree exactly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../peers/mod.rs"]
mod peers;

use std::collections::BTreeMap;

use serde_json::{json, Value};

use peers::cedar::CedarApp;
use peers::examples::{Example, DOCS, GITHUB};

/// Generated requests per example.
const REQUESTS: usize = 10_000;
/// The seed of the request generator.
const SEED: u64 = 20_240_601;

/// The authz side: the example's `.authz` files compiled, its entities loaded.
struct AuthzApp {
    program: authz_runtime::program::Program,
    store: authz_runtime::store::EntityStore,
}

impl AuthzApp {
    fn load(example: &Example) -> AuthzApp {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(example.name);
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "authz"))
            .collect();
        paths.sort();
        let sources: Vec<_> = paths
            .iter()
            .map(|path| {
                authz_lang::SourceFile::new(
                    path.display().to_string(),
                    std::fs::read_to_string(path).unwrap(),
                )
            })
            .collect();
        let program = authz_compiler::compile_sources(&sources)
            .program
            .expect("the example compiles");
        let entities = std::fs::read_to_string(dir.join("entities.json")).unwrap();
        let store = authz_runtime::json::load_entities(&program, &entities).unwrap();
        AuthzApp { program, store }
    }

    /// The decision and the sorted ids of the determining policies.
    fn decide(&self, request: &Value) -> (bool, Vec<String>) {
        let loaded = authz_runtime::json::load_request_value(&self.program, &self.store, request)
            .unwrap_or_else(|errors| panic!("authz rejects {request}: {errors:?}"));
        let mut decision = authz_runtime::decision::Decision::default();
        let mut scratch = authz_runtime::eval::Scratch::new();
        authz_runtime::eval::decide(
            &self.program,
            &self.store,
            &loaded,
            &mut scratch,
            &mut decision,
        );
        assert!(
            decision.errors.is_empty(),
            "authz errors on {request}: {:?}",
            decision.errors
        );
        let mut ids: Vec<String> = decision
            .determining
            .iter()
            .map(|&index| self.program.policies[index as usize].id.clone())
            .collect();
        ids.sort();
        (decision.allow, ids)
    }
}

/// One row of an example README's table of requests.
struct Case {
    principal: (&'static str, &'static str),
    action: &'static str,
    resource: (&'static str, &'static str),
    context: Value,
    allow: bool,
    determining: &'static [&'static str],
}

fn case(
    principal: (&'static str, &'static str),
    action: &'static str,
    resource: (&'static str, &'static str),
    context: Value,
    allow: bool,
    determining: &'static [&'static str],
) -> Case {
    Case {
        principal,
        action,
        resource,
        context,
        allow,
        determining,
    }
}

fn load(example: &Example) -> CedarApp {
    let entities = example.entities_json().unwrap();
    CedarApp::load(&example.cedar_dir(), &entities)
        .unwrap_or_else(|err| panic!("cannot load the Cedar {} example: {err}", example.name))
}

/// Checks the README table of `example` against Cedar: decision and determining policies.
fn check_readme(example: &Example, cases: &[Case]) {
    let app = load(example);
    let mut failures = Vec::new();
    for (number, case) in cases.iter().enumerate() {
        let request = json!({
            "principal": {"type": case.principal.0, "id": case.principal.1},
            "action": case.action,
            "resource": {"type": case.resource.0, "id": case.resource.1},
            "context": case.context,
        });
        let decision = app.decide(&request).unwrap();
        let mut expected: Vec<String> = case.determining.iter().map(|id| id.to_string()).collect();
        expected.sort();
        if decision.allow != case.allow
            || decision.determining != expected
            || !decision.errors.is_empty()
        {
            failures.push(format!(
                "#{}: {request}\n  expected {} {expected:?}, Cedar says {} {:?} (errors {:?})",
                number + 1,
                if case.allow { "allow" } else { "deny" },
                if decision.allow { "allow" } else { "deny" },
                decision.determining,
                decision.errors
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "the Cedar {} example disagrees with its README:\n{}",
        example.name,
        failures.join("\n")
    );
}

/// Runs Cedar on the example's generated requests: no errors, both outcomes well represented.
fn check_generated(example: &Example) {
    let app = load(example);
    let authz = AuthzApp::load(example);
    let mut disagreements = Vec::new();
    let entities = example.entities_json().unwrap();
    let requests = example.generate_requests(&entities, SEED, REQUESTS);
    assert_eq!(requests.len(), REQUESTS);
    let mut allows = 0;
    let mut errors = Vec::new();
    // Per action: (allows, denies).
    let mut by_action: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for request in &requests {
        let decision = app.decide(request).unwrap();
        if !decision.errors.is_empty() {
            errors.push(format!("{request}: {:?}", decision.errors));
        }
        let action = request["action"].as_str().unwrap_or_default().to_string();
        let counts = by_action.entry(action).or_default();
        if decision.allow {
            allows += 1;
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
        let (authz_allow, authz_determining) = authz.decide(request);
        let mut cedar_determining = decision.determining.clone();
        cedar_determining.sort();
        if authz_allow != decision.allow || authz_determining != cedar_determining {
            disagreements.push(format!(
                "{request}\n  Cedar: {} {cedar_determining:?}\n  authz: {} {authz_determining:?}",
                if decision.allow { "allow" } else { "deny" },
                if authz_allow { "allow" } else { "deny" },
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{}: authz and Cedar disagree on {} of {REQUESTS} requests, e.g.\n{}",
        example.name,
        disagreements.len(),
        disagreements
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let denies = REQUESTS - allows;
    println!(
        "{}: {REQUESTS} generated requests, {allows} allow ({:.1}%), {denies} deny ({:.1}%)",
        example.name,
        allows as f64 * 100.0 / REQUESTS as f64,
        denies as f64 * 100.0 / REQUESTS as f64
    );
    for (action, (allow, deny)) in &by_action {
        println!("  {action:>15}: {allow:>5} allow, {deny:>5} deny");
    }
    assert!(
        errors.is_empty(),
        "Cedar raised errors on {} of the {} requests, e.g.\n{}",
        errors.len(),
        example.name,
        errors[..errors.len().min(5)].join("\n")
    );
    assert!(
        allows >= REQUESTS / 10 && denies >= REQUESTS / 10,
        "the {} generator should give both outcomes at least 10% of the time: {allows} allow, {denies} deny",
        example.name
    );
}

#[test]
fn docs_cedar_agrees_with_the_readme() {
    let none: &[&str] = &[];
    let empty = json!({});
    // One README row per line, in the README's order.
    #[rustfmt::skip]
    let cases = [
        case(("User", "bob"), "read", ("Document", "roadmap"), empty.clone(), true, &["viewers-read", "shared-read"]),
        case(("User", "bob"), "write", ("Document", "budget-2025"), empty.clone(), false, &["clearance", "required-trainings"]),
        case(("User", "carol"), "read", ("Document", "budget-2025"), empty.clone(), false, &["required-trainings"]),
        case(("User", "dave"), "read", ("Document", "budget-2025"), empty.clone(), true, &["acme-finance-auditors"]),
        case(("User", "dave"), "read", ("Document", "roadmap"), empty.clone(), false, none),
        case(("User", "erin"), "read", ("Document", "roadmap"), empty.clone(), false, &["suspended-users"]),
        case(("User", "frank"), "read", ("Document", "roadmap"), empty.clone(), false, &["tenant-isolation"]),
        case(("User", "alice"), "export", ("Document", "salaries"), json!({"format": "pdf"}), false, &["no-regulated-export"]),
        case(("User", "alice"), "delete", ("Document", "salaries"), empty.clone(), false, &["legal-hold"]),
        case(("User", "alice"), "export", ("Document", "roadmap"), json!({"format": "html"}), false, &["export-formats"]),
        case(("User", "alice"), "export", ("Document", "roadmap"), json!({"format": "pdf"}), true, &["owners", "editors-write"]),
        case(("User", "bob"), "list", ("Folder", "acme-eng"), empty.clone(), true, &["viewers-list", "folder-owners"]),
        case(("User", "frank"), "read", ("Document", "globex-plan"), empty.clone(), true, &["viewers-read", "owners"]),
        case(("User", "carol"), "read", ("Document", "salaries"), empty, false, &["clearance", "required-trainings"]),
    ];
    check_readme(&DOCS, &cases);
}

#[test]
fn github_cedar_agrees_with_the_readme() {
    let none: &[&str] = &[];
    let empty = json!({});
    let push = |branch: &str, force: bool| json!({"branch": branch, "force": force});
    let merge = |passed: &[&str], failed: &[&str]| json!({"approvals": 1, "checks": {"passed": passed, "failed": failed}});
    // One README row per line, in the README's order.
    #[rustfmt::skip]
    let cases = [
        case(("User", "carol"), "readRepo", ("Repo", "web"), empty.clone(), true, &["org-base-read"]),
        case(("User", "eve"), "readRepo", ("Repo", "web"), empty.clone(), false, none),
        case(("User", "eve"), "clone", ("Repo", "lib"), empty.clone(), true, &["public-read"]),
        case(("User", "alice"), "push", ("Repo", "web"), push("feature/login", false), true, &["writers-push"]),
        case(("User", "alice"), "push", ("Repo", "web"), push("main", false), false, &["protected-branches"]),
        case(("User", "alice"), "push", ("Repo", "web"), push("release/2.0", false), false, &["protected-branches"]),
        case(("User", "octocat"), "push", ("Repo", "web"), push("main", false), true, &["writers-push", "org-owners"]),
        case(("User", "octocat"), "push", ("Repo", "web"), push("main", true), false, &["protected-branches"]),
        case(("User", "dan"), "readRepo", ("Repo", "infra"), empty.clone(), true, &["repo-readers"]),
        case(("User", "dan"), "push", ("Repo", "infra"), push("fix-dns", false), false, none),
        case(("User", "alice"), "merge", ("PullRequest", "web-pr-10"), merge(&["build", "test"], &[]), true, &["merge"]),
        case(("User", "alice"), "merge", ("PullRequest", "web-pr-10"), merge(&["build"], &["test"]), false, &["failed-checks"]),
        case(("User", "alice"), "merge", ("PullRequest", "web-pr-11"), merge(&["build", "test"], &[]), false, none),
        case(("User", "carol"), "comment", ("Issue", "web-2"), empty.clone(), false, &["locked-conversations"]),
        case(("User", "bob"), "comment", ("Issue", "web-2"), empty.clone(), true, &["issue-readers"]),
        case(("User", "carol"), "readIssue", ("Issue", "web-3"), empty.clone(), false, &["security-issues"]),
        case(("User", "bob"), "readIssue", ("Issue", "web-3"), empty.clone(), true, &["issue-readers"]),
        case(("App", "ci-bot"), "clone", ("Repo", "web"), empty.clone(), true, &["apps-read"]),
        case(("App", "ci-bot"), "push", ("Repo", "web"), push("feature", false), false, none),
        case(("App", "deploy-bot"), "push", ("Repo", "web"), push("main", false), false, &["protected-branches"]),
        case(("App", "deploy-bot"), "push", ("Repo", "web"), push("deploy/2024-06", false), true, &["apps-push"]),
        case(("User", "staff"), "readRepo", ("Repo", "infra"), empty.clone(), true, &["site-admins-read"]),
        case(("User", "eve"), "openIssue", ("Repo", "lib"), empty.clone(), true, &["open-issues"]),
        case(("User", "octocat"), "openIssue", ("Repo", "old-site"), empty.clone(), false, &["archived-repos"]),
        case(("User", "maya"), "manageTeam", ("Team", "oss-maintainers"), empty.clone(), true, &["team-maintainers"]),
        case(("User", "alice"), "manageTeam", ("Team", "acme-sre"), empty.clone(), false, none),
        case(("User", "octocat"), "deleteRepo", ("Repo", "infra"), empty, true, &["repo-admins", "org-owners"]),
    ];
    check_readme(&GITHUB, &cases);
}

#[test]
fn docs_authz_and_cedar_agree_on_generated_requests() {
    check_generated(&DOCS);
}

#[test]
fn github_authz_and_cedar_agree_on_generated_requests() {
    check_generated(&GITHUB);
}

#[test]
fn request_generator_is_deterministic() {
    let entities = DOCS.entities_json().unwrap();
    let first = DOCS.generate_requests(&entities, SEED, 100);
    let second = DOCS.generate_requests(&entities, SEED, 100);
    assert_eq!(first, second);
    assert_ne!(first, DOCS.generate_requests(&entities, SEED + 1, 100));
}
