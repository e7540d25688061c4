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
        namer.decision_json(&decision)
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
