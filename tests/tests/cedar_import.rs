//! `authz import cedar` held to Cedar itself: each Cedar application is imported (schema,
//! policies, entities in Cedar's JSON form), and on at least 10,000 seeded requests per
//! application, written in Cedar's request shape and imported too, the imported authz set must
//! give Cedar's decision with Cedar's determining policies wherever Cedar reports no error.
//!
//! Each request is also given to the decision loader in Cedar's own shape (`__entity` wrappers, the
//! action as an entity), which must decide alike.
//!
//! The applications: the project's own Cedar examples (`tests/peers/cedar_examples/docs` and
//! `github`), whose request generators are in `peers/examples.rs`. The figures (requests,
//! decisions, mismatches) are printed; run with `--nocapture` to see them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../peers/mod.rs"]
mod peers;

use authz_import::cedar::{entities::translate_request, import, CedarInput};
use serde_json::{json, Value};

use peers::cedar::{entities_from_authz_json, CedarApp};
use peers::examples::{Example, DOCS, GITHUB};

/// Generated requests per application.
const REQUESTS: usize = 10_000;
/// The seed of the request generator.
const SEED: u64 = 20_261_207;

/// The imported set, compiled, with its imported entities.
struct Imported {
    program: authz_runtime::program::Program,
    store: authz_runtime::store::EntityStore,
}

fn import_example(example: &Example, app: &CedarApp) -> Imported {
    let dir = example.cedar_dir();
    let schema = std::fs::read_to_string(dir.join("schema.cedarschema")).unwrap();
    let policies = std::fs::read_to_string(dir.join("policies.cedar")).unwrap();
    // The entities in Cedar's own JSON (`uid`, `__entity`), as Cedar writes them.
    let cedar_entities = app.entities.to_json_value().unwrap().to_string();
    let imported = import(CedarInput {
        schema: &schema,
        policies: &policies,
        entities: Some(&cedar_entities),
    })
    .unwrap_or_else(|errors| panic!("{}: the import refuses: {errors:?}", example.name));
    let sources = vec![
        authz_lang::SourceFile::new("schema.authz", imported.schema.clone()),
        authz_lang::SourceFile::new("policies.authz", imported.policies.clone()),
    ];
    let compiled = authz_compiler::compile_sources(&sources);
    let Some(program) = compiled.program else {
        let diagnostics: Vec<String> = compiled
            .checked
            .diagnostics
            .iter()
            .map(|d| format!("{d} {:?}", d.kind))
            .collect();
        panic!(
            "{}: the imported set does not compile:\n{}\n--- schema\n{}\n--- policies\n{}",
            example.name,
            diagnostics.join("\n"),
            imported.schema,
            imported.policies
        );
    };
    let store = authz_runtime::json::load_entities(&program, imported.entities.as_deref().unwrap())
        .unwrap_or_else(|errors| panic!("{}: imported entities: {errors:?}", example.name));
    Imported { program, store }
}

/// Cedar's request shape for a generated request: entity references for all three, the action
/// of the type `Action`.
fn cedar_request(request: &Value) -> Value {
    json!({
        "principal": request["principal"],
        "action": {"type": "Action", "id": request["action"]},
        "resource": request["resource"],
        "context": request.get("context").cloned().unwrap_or(json!({})),
    })
}

fn agree(example: &Example) {
    let entities = example.entities_json().unwrap();
    let app = CedarApp::load(&example.cedar_dir(), &entities).unwrap();
    // The entities Cedar holds must be the ones the requests are drawn over.
    entities_from_authz_json(&entities, &app.schema).unwrap();
    let imported = import_example(example, &app);
    let requests = example.generate_requests(&entities, SEED, REQUESTS);
    let (mut compared, mut cedar_errors, mut allows) = (0, 0, 0);
    let mut mismatches = Vec::new();
    let mut scratch = authz_runtime::eval::Scratch::new();
    let mut decision = authz_runtime::decision::Decision::default();
    for request in &requests {
        let cedar = app.decide(request).unwrap();
        if !cedar.errors.is_empty() {
            cedar_errors += 1;
            continue;
        }
        let cedar_shaped = cedar_request(request);
        let authz_request = translate_request(&cedar_shaped).unwrap();
        // The decision API reads Cedar's shape as it is, `__entity` wrappers included.
        let wrapped = json!({
            "principal": {"__entity": cedar_shaped["principal"]},
            "action": {"__entity": cedar_shaped["action"]},
            "resource": {"__entity": cedar_shaped["resource"]},
            "context": cedar_shaped["context"],
        });
        let direct = authz_runtime::json::load_request_value(
            &imported.program,
            &imported.store,
            &wrapped,
        )
        .unwrap_or_else(|errors| panic!("authz rejects Cedar's shape {wrapped}: {errors:?}"));
        authz_runtime::eval::decide(
            &imported.program,
            &imported.store,
            &direct,
            &mut scratch,
            &mut decision,
        );
        let direct_allow = decision.allow;
        let loaded = authz_runtime::json::load_request_value(
            &imported.program,
            &imported.store,
            &authz_request,
        )
        .unwrap_or_else(|errors| panic!("authz rejects {authz_request}: {errors:?}"));
        authz_runtime::eval::decide(
            &imported.program,
            &imported.store,
            &loaded,
            &mut scratch,
            &mut decision,
        );
        let mut determining: Vec<String> = decision
            .determining
            .iter()
            .map(|&index| imported.program.policies[index as usize].id.clone())
            .collect();
        determining.sort();
        compared += 1;
        allows += usize::from(cedar.allow);
        if decision.allow != cedar.allow
            || direct_allow != cedar.allow
            || determining != cedar.determining
        {
            mismatches.push(format!(
                "{request}\n  Cedar: {} {:?}\n  authz: {} {determining:?}",
                cedar.allow, cedar.determining, decision.allow
            ));
        }
    }
    println!(
        "{}: {} requests, {compared} compared ({allows} allow), {cedar_errors} with a Cedar error, {} mismatches",
        example.name,
        requests.len(),
        mismatches.len()
    );
    assert_eq!(requests.len(), REQUESTS);
    assert!(
        mismatches.is_empty(),
        "{}: {} mismatches, e.g.\n{}",
        example.name,
        mismatches.len(),
        mismatches[..mismatches.len().min(5)].join("\n")
    );
}

#[test]
fn imported_docs_agrees_with_cedar() {
    agree(&DOCS);
}

#[test]
fn imported_github_agrees_with_cedar() {
    agree(&GITHUB);
}
