//! authz itself, behind the same [`Engine`] trait as the peers: the generated `.authz` files
//! compiled once, the entities loaded once, every request prepared once; `decide` times the
//! decision alone.

use authz_lang::SourceFile;
use authz_runtime::decision::Decision;
use authz_runtime::eval::{decide, Scratch};
use authz_runtime::program::Program;
use authz_runtime::request::Request;
use authz_runtime::store::EntityStore;

use crate::peers::workload::Workload;
use crate::peers::Engine;

/// The compiled workload.
pub struct AuthzEngine {
    program: Program,
    store: EntityStore,
    requests: Vec<Request>,
    scratch: Scratch,
    decision: Decision,
    errors: u64,
}

impl AuthzEngine {
    /// Compiles the policy set in `workload.dir` and prepares its requests.
    pub fn new(workload: &Workload) -> Result<AuthzEngine, String> {
        let mut paths: Vec<_> = std::fs::read_dir(&workload.dir)
            .map_err(|error| error.to_string())?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "authz"))
            .collect();
        paths.sort();
        let mut sources = Vec::with_capacity(paths.len());
        for path in &paths {
            let text = std::fs::read_to_string(path).map_err(|error| error.to_string())?;
            sources.push(SourceFile::new(path.display().to_string(), text));
        }
        let compiled = authz_compiler::compile_sources(&sources);
        let program = compiled.program.ok_or_else(|| {
            format!(
                "the workload does not compile: {:?}",
                compiled.checked.diagnostics
            )
        })?;
        let entities = workload.entities_json.to_string();
        let store = authz_runtime::json::load_entities(&program, &entities).map_err(|errors| {
            format!(
                "{} entity errors, first: {:?}",
                errors.len(),
                errors.first()
            )
        })?;
        let requests = workload
            .requests_json
            .iter()
            .map(|json| authz_runtime::json::load_request_value(&program, &store, json))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|errors| format!("bad request: {errors:?}"))?;
        Ok(AuthzEngine {
            program,
            store,
            requests,
            scratch: Scratch::new(),
            decision: Decision::default(),
            errors: 0,
        })
    }
}

impl Engine for AuthzEngine {
    fn decide(&mut self, request_index: usize) -> bool {
        let Some(request) = self.requests.get(request_index) else {
            return false;
        };
        decide(
            &self.program,
            &self.store,
            request,
            &mut self.scratch,
            &mut self.decision,
        );
        if !self.decision.errors.is_empty() {
            self.errors += 1;
        }
        self.decision.allow
    }

    fn errors(&self) -> u64 {
        self.errors
    }
}
