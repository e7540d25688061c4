//! Loading what decisions need: a compiled policy set and the entity store built for it.

use std::path::Path;

use authz_runtime::program::Program;
use authz_runtime::store::EntityStore;

use crate::report::Reporter;
use crate::sources;

/// Reads and compiles the policy set in `dir` (every `.authz` file beneath it, or the file
/// itself), printing every diagnostic. `None` when it has errors.
pub fn compile(path: &Path, reporter: &mut Reporter) -> Option<Program> {
    let files = if path.is_dir() {
        match sources::authz_files(path) {
            Ok(files) if files.is_empty() => {
                reporter.plain_diagnostic(&sources::SourceError::NoPolicies {
                    path: path.display().to_string(),
                });
                return None;
            }
            Ok(files) => files,
            Err(error) => {
                reporter.plain_diagnostic(&error);
                return None;
            }
        }
    } else {
        vec![path.to_path_buf()]
    };
    let sources = match sources::read_files(&files) {
        Ok(sources) => sources,
        Err(error) => {
            reporter.plain_diagnostic(&error);
            return None;
        }
    };
    let compiled = authz_compiler::compile_sources(&sources);
    for diagnostic in &compiled.checked.diagnostics {
        match sources.get(diagnostic.file.0 as usize) {
            Some(source) => reporter.source_diagnostic(source, diagnostic),
            None => reporter.plain_diagnostic(diagnostic),
        }
    }
    compiled.program
}

/// Compiles the policy set at `path` and loads its entities file (or none), printing errors.
pub fn load(
    path: &Path,
    entities_file: Option<&Path>,
    reporter: &mut Reporter,
) -> Option<(Program, EntityStore)> {
    let program = compile(path, reporter)?;
    let store = entities(&program, entities_file, reporter)?;
    Some((program, store))
}

/// Loads the entities file for `program`, or an empty store without one, printing errors.
pub fn entities(
    program: &Program,
    path: Option<&Path>,
    reporter: &mut Reporter,
) -> Option<EntityStore> {
    let Some(path) = path else {
        let mut store = EntityStore::new(program.interner.clone());
        store.finish();
        return Some(store);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            reporter.plain_diagnostic(&sources::SourceError::Unreadable {
                path: path.display().to_string(),
                message: error.to_string(),
            });
            return None;
        }
    };
    match authz_runtime::json::load_entities(program, &text) {
        Ok(store) => Some(store),
        Err(errors) => {
            let source = authz_lang::SourceFile::new(sources::display(path), text);
            for error in &errors {
                reporter.source_diagnostic(&source, error);
            }
            None
        }
    }
}
