//! `authz import cedar` held to Cedar itself: each Cedar application is imported (schema,
//! policies, entities in Cedar's JSON form), and on at least 10,000 seeded requests per
//! application, written in Cedar's request shape and imported too, the imported authz set must
//! give Cedar's decision with Cedar's determining policies wherever Cedar reports no error.
//!
//! Each request is also given to the decision loader in Cedar's own shape (`__entity` wrappers, the
//! action as an entity), which must decide alike.
//!
//! The applications: the project's own Cedar examples (`tests/peers/cedar_examples/docs` and
//! `github`), whose request generators are in `peers/examples.rs`; and Cedar's published sample
//! applications `sales_orgs` and `hotel_chains` (`tests/peers/cedar_samples/`, Apache-2.0, see
//! its README), whose requests are drawn from their schema by [`SchemaRequests`]: an action, a
//! principal and a resource of types it applies to (an entity of the file, or now and then one
//! that does not exist), and a context of its declared type with values from the data.
//! `document_cloud` is there too but its published entities do not conform to its schema (Cedar
//! refuses them as well), so it is imported and checked but not replayed. The figures (requests,
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
use peers::rng::SplitMix64;

/// Generated requests per application.
const REQUESTS: usize = 10_000;
/// The seed of the request generator.
const SEED: u64 = 20_261_207;

/// The imported set, compiled, with its imported entities.
struct Imported {
    program: authz_runtime::program::Program,
    store: authz_runtime::store::EntityStore,
}

/// Compiles an import and loads its entities; any diagnostic fails the test with the texts.
fn compile(name: &str, imported: &authz_import::cedar::Imported) -> Imported {
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
            "{name}: the imported set does not compile:\n{}\n--- schema\n{}\n--- policies\n{}",
            diagnostics.join("\n"),
            imported.schema,
            imported.policies
        );
    };
    let entities = imported.entities.as_deref().unwrap_or("[]");
    let store = authz_runtime::json::load_entities(&program, entities)
        .unwrap_or_else(|errors| panic!("{name}: imported entities: {errors:?}"));
    Imported { program, store }
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
    compile(example.name, &imported)
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
        let direct =
            authz_runtime::json::load_request_value(&imported.program, &imported.store, &wrapped)
                .unwrap_or_else(|errors| {
                    panic!("authz rejects Cedar's shape {wrapped}: {errors:?}")
                });
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

/// A Cedar application as published: schema, policies and entities read by Cedar itself.
struct Sample {
    schema: cedar_policy::Schema,
    schema_json: Value,
    policies: cedar_policy::PolicySet,
    entities: cedar_policy::Entities,
    entities_json: Value,
    texts: (String, String, String),
}

fn sample(name: &'static str) -> Sample {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("peers/cedar_samples")
        .join(name);
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap();
    let (schema_text, policies_text, entities_text) = (
        read("schema.cedarschema"),
        read("policies.cedar"),
        read("entities.json"),
    );
    let (schema, _) = cedar_policy::Schema::from_cedarschema_str(&schema_text).unwrap();
    let (fragment, _) = cedar_policy::SchemaFragment::from_cedarschema_str(&schema_text).unwrap();
    let policies: cedar_policy::PolicySet = policies_text.parse().unwrap();
    let entities = cedar_policy::Entities::from_json_str(&entities_text, Some(&schema))
        .unwrap_or_else(|error| panic!("{name}: Cedar refuses the entities: {error}"));
    Sample {
        schema,
        schema_json: fragment.to_json_value().unwrap(),
        policies,
        entities_json: serde_json::from_str(&entities_text).unwrap(),
        entities,
        texts: (schema_text, policies_text, entities_text),
    }
}

/// Requests drawn from a Cedar schema (JSON form) over an entities file.
struct SchemaRequests<'s> {
    schema: &'s Value,
    /// Entity ids by type, from the entities file.
    ids: std::collections::BTreeMap<String, Vec<String>>,
    /// Strings seen in the data and the policies, for `String` values.
    strings: Vec<String>,
    rng: SplitMix64,
}

impl<'s> SchemaRequests<'s> {
    fn new(schema: &'s Value, entities: &Value, policies: &str, seed: u64) -> Self {
        let mut ids: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for entity in entities.as_array().into_iter().flatten() {
            let uid = &entity["uid"];
            let uid = uid.get("__entity").unwrap_or(uid);
            if let (Some(ty), Some(id)) = (uid["type"].as_str(), uid["id"].as_str()) {
                ids.entry(ty.to_owned()).or_default().push(id.to_owned());
            }
        }
        let mut strings: Vec<String> = policies
            .split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        strings.sort();
        strings.dedup();
        strings.push(String::new());
        SchemaRequests {
            schema,
            ids,
            strings,
            rng: SplitMix64::new(seed),
        }
    }

    fn actions(&self) -> Vec<(&'s String, &'s Value)> {
        let mut actions = Vec::new();
        for namespace in self
            .schema
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, ns)| ns)
        {
            for (name, action) in namespace["actions"].as_object().into_iter().flatten() {
                let applies = &action["appliesTo"];
                if applies["principalTypes"]
                    .as_array()
                    .is_some_and(|t| !t.is_empty())
                    && applies["resourceTypes"]
                        .as_array()
                        .is_some_and(|t| !t.is_empty())
                {
                    actions.push((name, applies));
                }
            }
        }
        actions
    }

    fn entity(&mut self, ty: &str) -> Value {
        let known = self.ids.get(ty).cloned().unwrap_or_default();
        let id = match self.rng.pick(&known) {
            Some(id) if !self.rng.percent(5) => id.clone(),
            _ => format!("unknown-{}", self.rng.below(3)),
        };
        json!({"type": ty, "id": id})
    }

    fn value(&mut self, ty: &Value) -> Value {
        let kind = ty["type"].as_str().unwrap_or_default();
        let name = ty["name"].as_str().unwrap_or_default();
        match (kind, name) {
            ("Boolean", _) | (_, "Bool" | "Boolean") => json!(self.rng.percent(50)),
            ("Long", _) | (_, "Long") => json!(self.rng.below(10)),
            ("String", _) | (_, "String") => {
                let strings = self.strings.clone();
                json!(self.rng.pick(&strings).cloned().unwrap_or_default())
            }
            ("Set", _) => {
                let count = self.rng.below(3);
                Value::Array((0..count).map(|_| self.value(&ty["element"])).collect())
            }
            ("Record", _) => self.record(ty),
            (_, entity) => json!({"__entity": self.entity(entity)}),
        }
    }

    fn record(&mut self, ty: &Value) -> Value {
        let mut fields = serde_json::Map::new();
        for (name, attribute) in ty["attributes"].as_object().into_iter().flatten() {
            let optional = attribute["required"].as_bool() == Some(false);
            if optional && self.rng.percent(40) {
                continue;
            }
            fields.insert(name.clone(), self.value(attribute));
        }
        Value::Object(fields)
    }

    /// One request in Cedar's JSON shape.
    fn next(&mut self) -> Value {
        let actions = self.actions();
        let (name, applies) = *self.rng.pick(&actions).unwrap();
        let pick_type = |rng: &mut SplitMix64, key: &str| {
            let types: Vec<String> = applies[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect();
            rng.pick(&types).cloned().unwrap()
        };
        let principal_type = pick_type(&mut self.rng, "principalTypes");
        let resource_type = pick_type(&mut self.rng, "resourceTypes");
        let principal = self.entity(&principal_type);
        let resource = self.entity(&resource_type);
        let context = match applies.get("context") {
            Some(context) => self.record(context),
            None => json!({}),
        };
        json!({
            "principal": principal,
            "action": {"type": "Action", "id": name},
            "resource": resource,
            "context": context,
        })
    }
}

fn replay_sample(name: &'static str) {
    let sample = sample(name);
    let imported = import(CedarInput {
        schema: &sample.texts.0,
        policies: &sample.texts.1,
        entities: Some(&sample.texts.2),
    })
    .unwrap_or_else(|errors| panic!("{name}: the import refuses: {errors:?}"));
    let Imported { program, store } = compile(name, &imported);
    let mut requests = SchemaRequests::new(
        &sample.schema_json,
        &sample.entities_json,
        &sample.texts.1,
        SEED,
    );
    let authorizer = cedar_policy::Authorizer::new();
    let mut scratch = authz_runtime::eval::Scratch::new();
    let mut decision = authz_runtime::decision::Decision::default();
    let (mut compared, mut cedar_errors, mut allows, mut refused) = (0, 0, 0, 0);
    let mut mismatches = Vec::new();
    // Requests are drawn until 10,000 are compared (Cedar raising no error), at most 40,000.
    let mut drawn = 0;
    while compared < REQUESTS && drawn < 4 * REQUESTS {
        drawn += 1;
        let request = requests.next();
        let uid = |value: &Value| -> cedar_policy::EntityUid {
            cedar_policy::EntityUid::from_json(value.clone()).unwrap()
        };
        let action = uid(&request["action"]);
        let context = cedar_policy::Context::from_json_value(
            request["context"].clone(),
            Some((&sample.schema, &action)),
        )
        .unwrap();
        let cedar_request = cedar_policy::Request::new(
            uid(&request["principal"]),
            action,
            uid(&request["resource"]),
            context,
            Some(&sample.schema),
        );
        let Ok(cedar_request) = cedar_request else {
            refused += 1;
            continue;
        };
        let response = authorizer.is_authorized(&cedar_request, &sample.policies, &sample.entities);
        if response.diagnostics().errors().next().is_some() {
            cedar_errors += 1;
            continue;
        }
        let cedar_allow = response.decision() == cedar_policy::Decision::Allow;
        let mut cedar_determining: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| {
                sample
                    .policies
                    .policy(id)
                    .and_then(|policy| policy.annotation("id"))
                    .map_or_else(|| id.to_string(), str::to_owned)
            })
            .collect();
        cedar_determining.sort();
        let authz_request = translate_request(&request).unwrap();
        let loaded = authz_runtime::json::load_request_value(&program, &store, &authz_request)
            .unwrap_or_else(|errors| panic!("{name}: authz rejects {authz_request}: {errors:?}"));
        authz_runtime::eval::decide(&program, &store, &loaded, &mut scratch, &mut decision);
        let mut determining: Vec<String> = decision
            .determining
            .iter()
            .map(|&index| program.policies[index as usize].id.clone())
            .collect();
        determining.sort();
        compared += 1;
        allows += usize::from(cedar_allow);
        if decision.allow != cedar_allow || determining != cedar_determining {
            mismatches.push(format!(
                "{request}\n  Cedar: {cedar_allow} {cedar_determining:?}\n  authz: {} {determining:?} errors {:?}",
                decision.allow, decision.errors
            ));
        }
    }
    println!(
        "{name}: {drawn} requests, {compared} compared ({allows} allow), {cedar_errors} with a Cedar error, {refused} refused by Cedar's request validation, {} mismatches",
        mismatches.len()
    );
    assert!(
        compared >= REQUESTS * 3 / 4,
        "{name}: too few requests compared: {compared}"
    );
    assert!(
        allows > 0 && allows < compared,
        "{name}: one outcome only: {allows} of {compared}"
    );
    assert!(
        mismatches.is_empty(),
        "{name}: {} mismatches, e.g.\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(5)].join("\n")
    );
}

#[test]
fn imported_sales_orgs_agrees_with_cedar() {
    replay_sample("sales_orgs");
}

#[test]
fn imported_hotel_chains_agrees_with_cedar() {
    replay_sample("hotel_chains");
}

#[test]
fn document_cloud_imports_and_checks() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/cedar_samples/document_cloud");
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap();
    let imported = import(CedarInput {
        schema: &read("schema.cedarschema"),
        policies: &read("policies.cedar"),
        entities: None,
    })
    .unwrap();
    compile("document_cloud", &imported);
    assert!(imported.policy_count > 0);
}
