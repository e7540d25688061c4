//! Seeded request generators for the example policy sets that are also written in Cedar
//! (`tests/peers/cedar_examples/<name>/`), for the conformance law of issue 3: authz and Cedar give
//! the same decision on at least 10,000 generated requests per example.
//!
//! A request is drawn over the example's own entities (`examples/<name>/entities.json`): an action
//! uniformly from the schema's actions, a principal type and a resource type allowed by the
//! action's declaration, an entity of each type uniformly, and a context of the action's declared
//! type with values chosen to reach both sides of every condition (protected and unprotected
//! branches, allowed and refused export formats, enough and too few approvals, ...). Requests are
//! written in the decision-request JSON form of docs/language.md, so the same list feeds both engines.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::peers::rng::SplitMix64;

/// The type of an action's request context, with its generator.
#[derive(Clone, Copy, Debug)]
pub enum ContextKind {
    /// `{}`.
    Empty,
    /// `{ format: String }` (docs `export`).
    ExportFormat,
    /// `{ branch: String, force: Bool }` (github `push`).
    Push,
    /// `{ approvals: Long, checks: { passed: Set<String>, failed: Set<String> } }` (github `merge`).
    Merge,
}

/// One action of an example's schema: who may ask it of what, with which context.
#[derive(Clone, Copy, Debug)]
pub struct ActionSpec {
    pub name: &'static str,
    pub principals: &'static [&'static str],
    pub resources: &'static [&'static str],
    pub context: ContextKind,
}

/// An example policy set that also exists in Cedar.
#[derive(Clone, Copy, Debug)]
pub struct Example {
    /// The directory name under `examples/` and `tests/peers/cedar_examples/`.
    pub name: &'static str,
    /// The actions of its schema, as declared in `schema.authz`.
    pub actions: &'static [ActionSpec],
}

const fn action(
    name: &'static str,
    principals: &'static [&'static str],
    resources: &'static [&'static str],
    context: ContextKind,
) -> ActionSpec {
    ActionSpec {
        name,
        principals,
        resources,
        context,
    }
}

const USER: &[&str] = &["User"];
const USER_OR_APP: &[&str] = &["User", "App"];

/// `examples/docs`: the multi-tenant document service.
pub const DOCS: Example = Example {
    name: "docs",
    actions: &[
        action("read", USER, &["Document"], ContextKind::Empty),
        action("write", USER, &["Document"], ContextKind::Empty),
        action("delete", USER, &["Document"], ContextKind::Empty),
        action("share", USER, &["Document"], ContextKind::Empty),
        action("export", USER, &["Document"], ContextKind::ExportFormat),
        action("list", USER, &["Folder"], ContextKind::Empty),
        action("create", USER, &["Folder"], ContextKind::Empty),
    ],
};

/// `examples/github`: the GitHub-like code host.
pub const GITHUB: Example = Example {
    name: "github",
    actions: &[
        action("readRepo", USER_OR_APP, &["Repo"], ContextKind::Empty),
        action("clone", USER_OR_APP, &["Repo"], ContextKind::Empty),
        action("push", USER_OR_APP, &["Repo"], ContextKind::Push),
        action("changeSettings", USER, &["Repo"], ContextKind::Empty),
        action("deleteRepo", USER, &["Repo"], ContextKind::Empty),
        action("openIssue", USER_OR_APP, &["Repo"], ContextKind::Empty),
        action("readIssue", USER_OR_APP, &["Issue"], ContextKind::Empty),
        action("comment", USER_OR_APP, &["Issue"], ContextKind::Empty),
        action("label", USER_OR_APP, &["Issue"], ContextKind::Empty),
        action("close", USER_OR_APP, &["Issue"], ContextKind::Empty),
        action("reopen", USER_OR_APP, &["Issue"], ContextKind::Empty),
        action("merge", USER_OR_APP, &["PullRequest"], ContextKind::Merge),
        action("manageTeam", USER, &["Team"], ContextKind::Empty),
    ],
};

/// The examples written in Cedar.
pub const ALL: [Example; 2] = [DOCS, GITHUB];

impl Example {
    /// `examples/<name>`.
    pub fn authz_dir(&self) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("examples")
            .join(self.name)
    }

    /// `tests/peers/cedar_examples/<name>`.
    pub fn cedar_dir(&self) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("peers")
            .join("cedar_examples")
            .join(self.name)
    }

    /// The example's `entities.json`.
    pub fn entities_json(&self) -> Result<Value, String> {
        let path = self.authz_dir().join("entities.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|err| format!("cannot read `{}`: {err}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|err| format!("cannot parse `{}`: {err}", path.display()))
    }

    /// `count` requests drawn from the stream seeded with `seed`, over `entities`.
    pub fn generate_requests(&self, entities: &Value, seed: u64, count: usize) -> Vec<Value> {
        let mut ids_by_type: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for entity in entities.as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let kind = entity.get("type").and_then(Value::as_str);
            let id = entity.get("id").and_then(Value::as_str);
            if let (Some(kind), Some(id)) = (kind, id) {
                ids_by_type.entry(kind).or_default().push(id);
            }
        }
        let mut rng = SplitMix64::new(seed);
        let mut requests = Vec::with_capacity(count);
        while requests.len() < count {
            let Some(spec) = rng.pick(self.actions) else {
                break;
            };
            let principal = pick_entity(&mut rng, spec.principals, &ids_by_type);
            let resource = pick_entity(&mut rng, spec.resources, &ids_by_type);
            let (Some(principal), Some(resource)) = (principal, resource) else {
                continue;
            };
            let context = generate_context(&mut rng, spec.context);
            requests.push(json!({
                "principal": principal,
                "action": spec.name,
                "resource": resource,
                "context": context,
            }));
        }
        requests
    }
}

/// An entity reference of one of `types`, uniformly among the entities of the chosen type.
fn pick_entity(
    rng: &mut SplitMix64,
    types: &[&str],
    ids_by_type: &BTreeMap<&str, Vec<&str>>,
) -> Option<Value> {
    let kind = *rng.pick(types)?;
    let id = *rng.pick(ids_by_type.get(kind)?)?;
    Some(json!({"type": kind, "id": id}))
}

fn generate_context(rng: &mut SplitMix64, kind: ContextKind) -> Value {
    match kind {
        ContextKind::Empty => json!({}),
        ContextKind::ExportFormat => {
            let format = rng
                .pick(&["pdf", "docx", "txt", "pdf", "html", "csv"])
                .copied()
                .unwrap_or("pdf");
            json!({ "format": format })
        }
        ContextKind::Push => {
            let branch = rng
                .pick(&[
                    "main",
                    "production",
                    "release/2.0",
                    "release/3.1",
                    "feature/login",
                    "fix-dns",
                    "deploy/2024-06",
                ])
                .copied()
                .unwrap_or("main");
            json!({ "branch": branch, "force": rng.percent(25) })
        }
        ContextKind::Merge => {
            let checks = ["build", "test", "plan", "ci", "lint"];
            let passed: Vec<&str> = rng.subset(&checks, 75);
            let others: Vec<&str> = checks
                .iter()
                .filter(|check| !passed.contains(check))
                .copied()
                .collect();
            let failed: Vec<&str> = if rng.percent(70) {
                Vec::new()
            } else {
                rng.subset(&others, 60)
            };
            json!({
                "approvals": rng.below(4),
                "checks": { "passed": passed, "failed": failed },
            })
        }
    }
}
