//! `authz replay`: re-decides every request of an audit log against a policy set and lists the
//! decisions that would change, so that the impact of a policy change on real traffic is known
//! before it ships.
//!
//! A line is replayed when the policies decided it: it names the principal, action and resource,
//! carries the decision's `context` (and the `principal_entity` a credential defined, if any),
//! and no refusal `code` (a request refused before or without a decision says nothing about the
//! policies). A logged request that no longer fits the new schema counts as denied, as the proxy
//! would deny it (fail closed). Limited requests were allowed by the policies.

use std::io::Read;

use authz_runtime::decision::Decision;
use authz_runtime::eval::{decide, Scratch};
use authz_runtime::explain::Namer;
use serde_json::{json, Value as Json};

use super::Outcome;
use crate::cli::ReplayArgs;
use crate::policy_set;
use crate::report::Reporter;

/// One replayable line of the log.
struct Logged<'a> {
    entry: &'a Json,
    allowed: bool,
    request: Json,
}

impl<'a> Logged<'a> {
    fn read(entry: &'a Json) -> Option<Logged<'a>> {
        let field = |name: &str| entry.get(name).filter(|value| !value.is_null());
        let (principal, action, resource) =
            (field("principal")?, field("action")?, field("resource")?);
        let context = field("context")?;
        if field("code").is_some() {
            return None;
        }
        let allowed = match entry.get("decision").and_then(Json::as_str)? {
            "allow" | "limited" => true,
            "deny" => false,
            _ => return None,
        };
        let mut request = json!({
            "principal": principal,
            "action": action,
            "resource": resource,
            "context": context,
        });
        if let (Some(entity), Some(members)) = (field("principal_entity"), request.as_object_mut())
        {
            members.insert("entities".to_string(), json!([entity]));
        }
        Some(Logged {
            entry,
            allowed,
            request,
        })
    }

    /// How the line names the request: method and target when the proxy logged them, and the
    /// principal, action and resource.
    fn describe(&self) -> String {
        let text = |name: &str| match self.entry.get(name) {
            Some(Json::String(text)) => text.clone(),
            Some(Json::Object(entity)) => format!(
                "{}::{:?}",
                entity.get("type").and_then(Json::as_str).unwrap_or("?"),
                entity.get("id").and_then(Json::as_str).unwrap_or("?")
            ),
            _ => String::new(),
        };
        let request = [text("method"), text("target")].join(" ");
        format!(
            "{}{} {} on {}",
            if request.trim().is_empty() {
                String::new()
            } else {
                format!("{} ", request.trim())
            },
            text("principal"),
            text("action"),
            text("resource")
        )
    }
}

/// What the new policies say of one logged request.
struct Replayed {
    allowed: bool,
    policies: Json,
    errors: Json,
}

pub fn run(args: &ReplayArgs) -> Outcome {
    let mut reporter = Reporter::new(&args.output);
    let Some((program, store)) =
        policy_set::load(&args.policies, args.entities.as_deref(), &mut reporter)
    else {
        return Outcome::Failure;
    };
    let name = args.log.display().to_string();
    let text = if name == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map(|_| text)
            .map_err(|error| error.to_string())
    } else {
        std::fs::read_to_string(&args.log).map_err(|error| error.to_string())
    };
    let text = match text {
        Ok(text) => text,
        Err(error) => {
            eprintln!("error: cannot read `{name}`: {error}");
            return Outcome::Failure;
        }
    };

    let (mut replayed, mut changed, mut skipped, mut malformed) = (0usize, 0usize, 0usize, 0usize);
    let mut scratch = Scratch::new();
    let mut decision = Decision::default();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Ok(entry) = serde_json::from_str::<Json>(line) else {
            malformed += 1;
            eprintln!("warning: {name}:{}: not a JSON line; skipped", index + 1);
            continue;
        };
        let Some(logged) = Logged::read(&entry) else {
            skipped += 1;
            continue;
        };
        replayed += 1;
        let now = match authz_runtime::json::load_request_value(&program, &store, &logged.request) {
            Ok(request) => {
                decide(&program, &store, &request, &mut scratch, &mut decision);
                let mut explained = Namer {
                    program: &program,
                    store: &store,
                    request: &request,
                }
                .decision_json(&decision);
                Replayed {
                    allowed: decision.allow,
                    policies: explained
                        .get_mut("policies")
                        .map(Json::take)
                        .unwrap_or(Json::Null),
                    errors: explained
                        .get_mut("errors")
                        .map(Json::take)
                        .unwrap_or(Json::Null),
                }
            }
            Err(errors) => Replayed {
                allowed: false,
                policies: json!([]),
                errors: json!(errors.iter().map(ToString::to_string).collect::<Vec<_>>()),
            },
        };
        if now.allowed == logged.allowed {
            continue;
        }
        changed += 1;
        let word = |allowed: bool| if allowed { "allow" } else { "deny" };
        if args.json {
            println!(
                "{}",
                json!({
                    "line": index + 1,
                    "request_id": entry.get("request_id"),
                    "time": entry.get("time"),
                    "method": entry.get("method"),
                    "target": entry.get("target"),
                    "principal": logged.request.get("principal"),
                    "action": logged.request.get("action"),
                    "resource": logged.request.get("resource"),
                    "was": word(logged.allowed),
                    "now": word(now.allowed),
                    "policies": now.policies,
                    "errors": now.errors,
                })
            );
        } else {
            let id = entry
                .get("request_id")
                .and_then(Json::as_str)
                .map(|id| format!(" [{id}]"))
                .unwrap_or_default();
            let why = match (&now.policies, &now.errors) {
                (Json::Array(policies), _) if !policies.is_empty() => {
                    let ids: Vec<&str> = policies.iter().filter_map(Json::as_str).collect();
                    format!(" (policies: {})", ids.join(", "))
                }
                (_, Json::Array(errors)) if !errors.is_empty() => {
                    let texts: Vec<&str> = errors.iter().filter_map(Json::as_str).collect();
                    format!(" ({})", texts.join("; "))
                }
                _ => String::new(),
            };
            println!(
                "{name}:{}{id}: {}: {} -> {}{why}",
                index + 1,
                logged.describe(),
                word(logged.allowed),
                word(now.allowed),
            );
        }
    }
    eprintln!(
        "replayed {replayed} decision{} from {name}: {changed} would change; {skipped} line{} \
         not decided by the policies skipped{}",
        if replayed == 1 { "" } else { "s" },
        if skipped == 1 { "" } else { "s" },
        if malformed > 0 {
            format!(", {malformed} malformed")
        } else {
            String::new()
        }
    );
    if args.exit_code && changed > 0 {
        Outcome::Changed
    } else {
        Outcome::Success
    }
}
