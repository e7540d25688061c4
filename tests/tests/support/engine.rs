//! The engine, end to end as `authz eval` runs it: compile, load entities, load the request,
//! decide; the decision with policy ids instead of numbers.

use std::cell::RefCell;
use std::collections::BTreeSet;

use authz_lang::SourceFile;
use authz_runtime::decision::{Decision, ErrorSite};
use authz_runtime::eval::{decide, EvalError, Scratch};
use authz_runtime::explain::Namer;
use authz_runtime::program::{Effect, Program};
use authz_runtime::store::EntityStore;

/// One decision of the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineDecision {
    /// Allow or deny.
    pub allow: bool,
    /// The determining policies, in the engine's order (duplicates kept, to be checked).
    pub determining: Vec<String>,
    /// `(policy id, is a forbid, message)` of every error, in the engine's order.
    pub errors: Vec<(String, bool, String)>,
    /// Whether any error was a type error.
    pub wrong_type: bool,
}

impl EngineDecision {
    /// The determining ids as a set.
    pub fn determining_set(&self) -> BTreeSet<String> {
        self.determining.iter().cloned().collect()
    }

    /// Ids of erroring policies of one effect.
    pub fn errored(&self, forbids: bool) -> BTreeSet<String> {
        self.errors
            .iter()
            .filter(|(_, forbid, _)| *forbid == forbids)
            .map(|(id, _, _)| id.clone())
            .collect()
    }

    /// Whether a forbid determined the decision (so the engine skipped the permits).
    pub fn denied_by_forbid(&self) -> bool {
        !self.allow && !self.determining.is_empty()
    }
}

/// A compiled policy set with its entities.
pub struct Engine {
    /// The program.
    pub program: Program,
    /// The entities.
    pub store: EntityStore,
    /// Buffers reused across decisions, as the server reuses them (memo generations and all).
    scratch: RefCell<(Scratch, Decision)>,
}

impl Engine {
    /// Compiles `files` and loads `entities`; the error text lists every diagnostic.
    pub fn new(files: &[(String, String)], entities: &str) -> Result<Engine, String> {
        let sources: Vec<SourceFile> = files
            .iter()
            .map(|(name, text)| SourceFile::new(name.clone(), text.clone()))
            .collect();
        let compiled = authz_compiler::compile_sources(&sources);
        let Some(program) = compiled.program else {
            let diagnostics: Vec<String> = compiled
                .checked
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(|d| format!("{}: {d} ({:?})", sources[d.file.0 as usize].name, d.kind))
                .collect();
            return Err(format!(
                "the generated set does not compile:\n{}",
                diagnostics.join("\n")
            ));
        };
        let store = authz_runtime::json::load_entities(&program, entities)
            .map_err(|errors| format!("the generated entities do not load: {errors:?}"))?;
        Ok(Engine {
            program,
            store,
            scratch: RefCell::new((Scratch::new(), Decision::default())),
        })
    }

    /// Decides one request given as JSON text.
    pub fn decide(&self, request: &str) -> Result<EngineDecision, String> {
        let request = authz_runtime::json::load_request(&self.program, &self.store, request)
            .map_err(|errors| format!("the generated request does not load: {errors:?}"))?;
        let mut buffers = self.scratch.borrow_mut();
        let (scratch, decision) = &mut *buffers;
        decide(&self.program, &self.store, &request, scratch, decision);
        let namer = Namer {
            program: &self.program,
            store: &self.store,
            request: &request,
        };
        let policy = |index: u32| &self.program.policies[index as usize];
        Ok(EngineDecision {
            allow: decision.allow,
            determining: decision
                .determining
                .iter()
                .map(|&index| policy(index).id.clone())
                .collect(),
            errors: decision
                .errors
                .iter()
                .map(|(site, error)| match site {
                    ErrorSite::Policy(index) => (
                        policy(*index).id.clone(),
                        policy(*index).effect == Effect::Forbid,
                        namer.error(error),
                    ),
                    ErrorSite::Limit(index) => {
                        (format!("limit {index}"), false, namer.error(error))
                    }
                })
                .collect(),
            wrong_type: decision
                .errors
                .iter()
                .any(|(_, error)| matches!(error, EvalError::WrongType(_))),
        })
    }
}
