//! `authz test`: run policy test files against a policy set.
//!
//! A test file is TOML, named `*.test.toml`, anywhere beneath the policy directory:
//!
//! ```toml
//! entities = "entities.json"   # optional, relative to this file; default: the set's entities.json
//!
//! [[test]]
//! name = "owners read their documents"
//! principal = { type = "User", id = "alice" }
//! action = "read"
//! resource = { type = "Document", id = "d1" }
//! context = {}                 # optional
//! now = "2026-03-30T07:30:00Z" # optional: the context field `now` (as `--now` does)
//! entities = [                 # optional: entities of this test only, over the file's
//!   { type = "User", id = "zed", attrs = { tier = "free" }, parents = [] },
//! ]                            # (or a JSON file of them: entities = "zed.json")
//! decision = "allow"           # or "deny"
//! policies = ["owners-read"]   # optional: exactly these determine the decision
//! reasons = []                 # optional: exactly these reasons are returned
//! obligations = [{ limit = "free-tier", key = "User(\"zed\")" }]  # optional: exactly these
//! ```
//!
//! A failure prints what was expected next to what happened, and always the actual decision, its
//! policies, reasons, obligations and errors. At the end, the policies that no test saw determine a
//! decision are listed, since an untested policy is an unguarded one; `--deny-uncovered` makes
//! that a failure.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use authz_runtime::decision::Decision;
use authz_runtime::eval::{decide, Scratch};
use authz_runtime::explain::Namer;
use authz_runtime::program::Program;
use authz_runtime::store::EntityStore;
use serde::Deserialize;

use super::Outcome;
use crate::cli::TestArgs;
use crate::policy_set;
use crate::report::Reporter;
use crate::sources::{self, SourceError};

/// One test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    entities: Option<String>,
    #[serde(default, rename = "test")]
    tests: Vec<TestCase>,
}

/// One test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestCase {
    name: toml::Spanned<String>,
    principal: toml::Value,
    action: toml::Value,
    resource: toml::Value,
    #[serde(default)]
    context: Option<toml::Value>,
    /// The test's own entities: an array of them, or a JSON file's path relative to the test
    /// file.
    #[serde(default)]
    entities: Option<toml::Value>,
    /// The time the context field `now` holds.
    #[serde(default)]
    now: Option<String>,
    decision: Expected,
    policies: Option<Vec<String>>,
    reasons: Option<Vec<String>>,
    obligations: Option<Vec<ExpectedObligation>>,
}

/// A limit expected to apply: its name and, optionally, the key it counts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedObligation {
    limit: String,
    key: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Expected {
    Allow,
    Deny,
}

/// Runs every test file beneath the policy directory.
pub fn run(args: &TestArgs) -> Outcome {
    let mut reporter = Reporter::new(&args.output);
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let Some(program) = policy_set::compile(&dir, &mut reporter) else {
        return Outcome::Failure;
    };
    let files = match test_files(&dir) {
        Ok(files) if files.is_empty() => {
            eprintln!("error: no `*.test.toml` files beneath `{}`", dir.display());
            return Outcome::Failure;
        }
        Ok(files) => files,
        Err(error) => {
            reporter.plain_diagnostic(&error);
            return Outcome::Failure;
        }
    };
    let now = match args
        .now
        .as_deref()
        .map(authz_runtime::ext::parse_timestamp)
        .transpose()
    {
        Ok(now) => now,
        Err(error) => {
            eprintln!("error: --now: {error}");
            return Outcome::Failure;
        }
    };
    let mut runner = Runner {
        program: &program,
        dir: &dir,
        now,
        stores: HashMap::new(),
        exercised: BTreeSet::new(),
        passed: 0,
        failed: 0,
    };
    for file in &files {
        runner.file(file, &mut reporter);
    }
    let unexercised: Vec<&str> = program
        .policies
        .iter()
        .enumerate()
        .filter(|(index, _)| !runner.exercised.contains(index))
        .map(|(_, policy)| policy.id.as_str())
        .collect();
    if !unexercised.is_empty() {
        println!(
            "\npolicies no test saw determine a decision ({}):",
            unexercised.len()
        );
        for id in &unexercised {
            println!("    {id}");
        }
    }
    println!("\n{} passed, {} failed", runner.passed, runner.failed);
    if args.deny_uncovered && !unexercised.is_empty() {
        eprintln!(
            "error: {} policies are not covered by any test (--deny-uncovered)",
            unexercised.len()
        );
        return Outcome::Failure;
    }
    if runner.failed > 0 || reporter.errors > 0 {
        Outcome::Failure
    } else {
        Outcome::Success
    }
}

/// Every `*.test.toml` beneath `dir`, sorted.
fn test_files(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|error| SourceError::Unreadable {
            path: dir.display().to_string(),
            message: error.to_string(),
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() && !name.starts_with('.') {
                pending.push(path);
            } else if name.ends_with(".test.toml") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

struct Runner<'a> {
    program: &'a Program,
    dir: &'a Path,
    /// `--now`, in milliseconds.
    now: Option<i64>,
    stores: HashMap<PathBuf, Option<EntityStore>>,
    exercised: BTreeSet<usize>,
    passed: usize,
    failed: usize,
}

impl Runner<'_> {
    fn file(&mut self, path: &Path, reporter: &mut Reporter) {
        let name = sources::display(path);
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                reporter.plain_diagnostic(&SourceError::Unreadable {
                    path: name,
                    message: error.to_string(),
                });
                self.failed += 1;
                return;
            }
        };
        let file: TestFile = match toml::from_str(&text) {
            Ok(file) => file,
            Err(error) => {
                eprintln!("error: {name}: {}", error.to_string().trim_end());
                self.failed += 1;
                return;
            }
        };
        let entities = match &file.entities {
            Some(relative) => Some(path.parent().unwrap_or(Path::new(".")).join(relative)),
            None => Some(self.dir.join("entities.json")).filter(|default| default.is_file()),
        };
        let key = entities.clone().unwrap_or_default();
        if !self.stores.contains_key(&key) {
            let store = policy_set::entities(self.program, entities.as_deref(), reporter);
            self.stores.insert(key.clone(), store);
        }
        let Some(Some(store)) = self.stores.get(&key) else {
            self.failed += file.tests.len().max(1);
            return;
        };
        let mut scratch = Scratch::new();
        let mut decision = Decision::default();
        for test in &file.tests {
            let line = text
                .get(..test.name.span().start)
                .map_or(0, |before| before.matches('\n').count() + 1);
            let label = format!("{name}:{line}: {}", test.name.get_ref());
            let failures = run_test(
                self.program,
                store,
                (test, path, self.now),
                &mut scratch,
                &mut decision,
                &mut self.exercised,
            );
            if failures.is_empty() {
                self.passed += 1;
                println!("ok   {label}");
            } else {
                self.failed += 1;
                println!("FAIL {label}");
                for failure in failures {
                    println!("    {failure}");
                }
            }
        }
    }
}

/// Runs one test; returns what did not match, empty when it passed.
fn run_test(
    program: &Program,
    store: &EntityStore,
    (test, path, now): (&TestCase, &Path, Option<i64>),
    scratch: &mut Scratch,
    decision: &mut Decision,
    exercised: &mut BTreeSet<usize>,
) -> Vec<String> {
    let mut request_json = serde_json::json!({
        "principal": toml_to_json(&test.principal),
        "action": toml_to_json(&test.action),
        "resource": toml_to_json(&test.resource),
        "context": test.context.as_ref().map_or(serde_json::json!({}), toml_to_json),
    });
    match test_entities(test, path) {
        Ok(Some(entities)) => {
            if let Some(members) = request_json.as_object_mut() {
                members.insert("entities".to_string(), entities);
            }
        }
        Ok(None) => {}
        Err(message) => return vec![message],
    }
    let now = match test.now.as_deref().map(authz_runtime::ext::parse_timestamp) {
        Some(Ok(millis)) => Some(millis),
        Some(Err(error)) => return vec![format!("now: {error}")],
        None => now,
    };
    if let Some(now) = now {
        if let Err(message) = crate::host::clock::stamp(program, &mut request_json, "now", now) {
            return vec![format!("now: {message}")];
        }
    }
    let request = match authz_runtime::json::load_request_value(program, store, &request_json) {
        Ok(request) => request,
        Err(errors) => {
            return errors
                .iter()
                .map(|error| format!("invalid request: {error}"))
                .collect()
        }
    };
    decide(program, store, &request, scratch, decision);
    exercised.extend(decision.determining.iter().map(|&index| index as usize));
    let namer = Namer {
        program,
        store,
        request: &request,
    };
    let explained = namer.decision_json(decision);
    let strings = |field: &str| -> Vec<String> {
        explained
            .get(field)
            .and_then(serde_json::Value::as_array)
            .map_or_else(Vec::new, |items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_string))
                    .collect()
            })
    };
    let mut failures = Vec::new();
    let got = if decision.allow {
        Expected::Allow
    } else {
        Expected::Deny
    };
    if got != test.decision {
        failures.push(format!(
            "decision: expected {}, got {}",
            word(test.decision),
            word(got)
        ));
    }
    if let Some(expected) = &test.policies {
        compare_sets("policies", expected, &strings("policies"), &mut failures);
    }
    if let Some(expected) = &test.reasons {
        compare_sets("reasons", expected, &strings("reasons"), &mut failures);
    }
    let obligations: Vec<(String, String)> = namer
        .obligations(decision)
        .map(|(limit, key)| (limit.name.clone(), key))
        .collect();
    if let Some(expected) = &test.obligations {
        // An expected obligation without a key matches its limit with any key.
        let shown = |(limit, key): &(String, String)| format!("{limit}[{key}]");
        let expected_texts: Vec<String> = expected
            .iter()
            .map(|expected| {
                let key = expected.key.clone().unwrap_or_else(|| {
                    obligations
                        .iter()
                        .find(|(limit, _)| *limit == expected.limit)
                        .map_or_else(|| "*".to_string(), |(_, key)| key.clone())
                });
                shown(&(expected.limit.clone(), key))
            })
            .collect();
        let got_texts: Vec<String> = obligations.iter().map(shown).collect();
        compare_sets("obligations", &expected_texts, &got_texts, &mut failures);
    }
    if !failures.is_empty() {
        // What happened, whole, whatever the test asked about.
        failures.push(format!(
            "got: {}, policies {}, reasons {}, obligations [{}]",
            word(got),
            list(&strings("policies").iter().map(String::as_str).collect()),
            list(&strings("reasons").iter().map(String::as_str).collect()),
            obligations
                .iter()
                .map(|(limit, key)| format!("{limit}[{key}]"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for (origin, error) in namer.errors(decision) {
            let site = match origin {
                authz_runtime::explain::ErrorOrigin::Policy(id) => format!("policy `{id}`"),
                authz_runtime::explain::ErrorOrigin::Limit(name) => format!("limit `{name}`"),
            };
            failures.push(format!("error in {site}: {}", namer.error(error)));
        }
    }
    failures
}

/// A test's own entities as the request's `entities`: an inline array, or a JSON file named
/// relative to the test file.
fn test_entities(test: &TestCase, path: &Path) -> Result<Option<serde_json::Value>, String> {
    match &test.entities {
        None => Ok(None),
        Some(toml::Value::Array(items)) => Ok(Some(serde_json::Value::Array(
            items.iter().map(toml_to_json).collect(),
        ))),
        Some(toml::Value::String(file)) => {
            let file = path.parent().unwrap_or(Path::new(".")).join(file);
            let text = std::fs::read_to_string(&file)
                .map_err(|error| format!("entities: cannot read {}: {error}", file.display()))?;
            serde_json::from_str(&text)
                .map(Some)
                .map_err(|error| format!("entities: {}: {error}", file.display()))
        }
        Some(_) => Err("entities: expected an array of entities or a JSON file's name".to_string()),
    }
}

fn compare_sets(what: &str, expected: &[String], got: &[String], failures: &mut Vec<String>) {
    let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    let got: BTreeSet<&str> = got.iter().map(String::as_str).collect();
    if expected == got {
        return;
    }
    failures.push(format!(
        "{what}: expected {}, got {}",
        list(&expected),
        list(&got)
    ));
    let missing: Vec<&str> = expected.difference(&got).copied().collect();
    let unexpected: Vec<&str> = got.difference(&expected).copied().collect();
    if !missing.is_empty() {
        failures.push(format!("    missing: {}", missing.join(", ")));
    }
    if !unexpected.is_empty() {
        failures.push(format!("    unexpected: {}", unexpected.join(", ")));
    }
}

fn list(items: &BTreeSet<&str>) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("{item:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

fn word(expected: Expected) -> &'static str {
    match expected {
        Expected::Allow => "allow",
        Expected::Deny => "deny",
    }
}

/// TOML and JSON agree on everything a request holds (no dates are used).
fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    match value {
        toml::Value::String(text) => serde_json::Value::String(text.clone()),
        toml::Value::Integer(n) => serde_json::Value::from(*n),
        toml::Value::Float(x) => serde_json::Value::from(*x),
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(datetime) => serde_json::Value::String(datetime.to_string()),
        toml::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(toml_to_json).collect())
        }
        toml::Value::Table(table) => serde_json::Value::Object(
            table
                .iter()
                .map(|(key, value)| (key.clone(), toml_to_json(value)))
                .collect(),
        ),
    }
}
