//! `authz eval`: decide one request and print the decision as JSON.

use authz_runtime::decision::Decision;
use authz_runtime::eval::{decide, Scratch};
use authz_runtime::explain::Namer;
use serde_json::json;

use super::Outcome;
use crate::cli::EvalArgs;
use crate::policy_set;
use crate::report::Reporter;
use crate::sources::SourceError;

/// Decides the request; exits 0 on allow, 2 on deny, 1 on any error.
pub fn run(args: &EvalArgs) -> Outcome {
    let mut reporter = Reporter::new(&args.output);
    let Some((program, store)) =
        policy_set::load(&args.policies, args.entities.as_deref(), &mut reporter)
    else {
        return Outcome::Failure;
    };
    let (name, text) = match args.request.strip_prefix('@') {
        Some("-") => {
            let mut text = String::new();
            if let Err(error) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
                reporter.plain_diagnostic(&SourceError::Unreadable {
                    path: "<stdin>".to_string(),
                    message: error.to_string(),
                });
                return Outcome::Failure;
            }
            ("<stdin>".to_string(), text)
        }
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => (path.to_string(), text),
            Err(error) => {
                reporter.plain_diagnostic(&SourceError::Unreadable {
                    path: path.to_string(),
                    message: error.to_string(),
                });
                return Outcome::Failure;
            }
        },
        None => ("<request>".to_string(), args.request.clone()),
    };
    let (name, text) = match &args.now {
        None => (name, text),
        Some(now) => match with_now(&program, &text, now) {
            Ok(text) => (format!("{name} (with --now)"), text),
            Err(message) => {
                eprintln!("error: {message}");
                return Outcome::Failure;
            }
        },
    };
    let request = match authz_runtime::json::load_request(&program, &store, &text) {
        Ok(request) => request,
        Err(errors) => {
            let source = authz_lang::SourceFile::new(name, text);
            for error in &errors {
                reporter.source_diagnostic(&source, error);
            }
            return Outcome::Failure;
        }
    };
    let mut decision = Decision::default();
    decide(
        &program,
        &store,
        &request,
        &mut Scratch::new(),
        &mut decision,
    );
    let namer = Namer {
        program: &program,
        store: &store,
        request: &request,
    };
    let output = if args.explain {
        let mut output = namer.decision_json(&decision);
        if !decision.allow {
            let candidates =
                authz_runtime::explain::candidates(&program, &store, &request, &mut Scratch::new());
            let listed = namer.candidates_json(&candidates);
            eprint!("{}", readable(&output, &listed));
            if let Some(members) = output.as_object_mut() {
                members.insert("candidates".to_string(), listed);
            }
        }
        output
    } else {
        json!({ "decision": if decision.allow { "allow" } else { "deny" } })
    };
    println!("{output}");
    if decision.allow {
        Outcome::Success
    } else {
        Outcome::Deny
    }
}

/// The request text with `context.now` set to `now` when its action takes it.
fn with_now(
    program: &authz_runtime::program::Program,
    text: &str,
    now: &str,
) -> Result<String, String> {
    let millis =
        authz_runtime::ext::parse_timestamp(now).map_err(|error| format!("--now: {error}"))?;
    let mut json: serde_json::Value = match serde_json::from_str(text) {
        Ok(json) => json,
        // The loader reports malformed JSON with its line and column.
        Err(_) => return Ok(text.to_string()),
    };
    crate::host::clock::stamp(program, &mut json, "now", millis)
        .map_err(|message| format!("--now: {message}"))?;
    Ok(json.to_string())
}

/// A denial's explanation for people: who denied it, or why each candidate permit did not apply.
fn readable(decision: &serde_json::Value, candidates: &serde_json::Value) -> String {
    use std::fmt::Write as _;
    let text = |value: &serde_json::Value, key: &str| {
        value
            .get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut out = String::new();
    let denied_by: Vec<&str> = decision
        .get("policies")
        .and_then(serde_json::Value::as_array)
        .map(|policies| {
            policies
                .iter()
                .filter_map(serde_json::Value::as_str)
                .collect()
        })
        .unwrap_or_default();
    if denied_by.is_empty() {
        let _ = writeln!(out, "deny: no permit applied (default deny)");
    } else {
        let _ = writeln!(out, "deny: forbidden by {}", denied_by.join(", "));
    }
    let candidates = candidates.as_array().map_or(&[][..], Vec::as_slice);
    if candidates.is_empty() {
        let _ = writeln!(
            out,
            "  no permit is written for this principal, action and resource"
        );
    }
    for candidate in candidates {
        let policy = text(candidate, "policy");
        let condition = text(candidate, "condition");
        let at = text(candidate, "at");
        let _ = match text(candidate, "outcome").as_str() {
            "false" => writeln!(out, "  permit `{policy}`: `{condition}` is false ({at})"),
            "error" => writeln!(
                out,
                "  permit `{policy}`: `{condition}` failed: {} ({at})",
                text(candidate, "message")
            ),
            _ => writeln!(out, "  permit `{policy}`: applies, but a forbid wins"),
        };
    }
    out
}
