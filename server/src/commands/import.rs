//! `authz import cedar`: translate a Cedar application into an authz policy set, write it, and
//! check what was written.

use std::path::{Path, PathBuf};

use authz_import::cedar::{import, CedarInput};
use authz_lang::SourceFile;

use super::Outcome;
use crate::cli::{ImportArgs, ImportSource};
use crate::report::Reporter;

/// Runs `authz import`.
pub fn run(args: &ImportArgs) -> Outcome {
    match &args.from {
        ImportSource::Cedar {
            schema,
            policies,
            entities,
            out,
            force,
            output,
        } => {
            let mut reporter = Reporter::new(output);
            let outcome = cedar(
                &mut reporter,
                schema,
                policies,
                entities.as_deref(),
                out,
                *force,
            );
            if let Err(message) = &outcome {
                eprintln!("error: {message}");
            }
            match outcome {
                Ok(true) => Outcome::Success,
                _ => Outcome::Failure,
            }
        }
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read `{}`: {error}", path.display()))
}

/// Imports, writes and checks; `Ok(false)` when problems were reported.
fn cedar(
    reporter: &mut Reporter,
    schema: &Path,
    policies: &Path,
    entities: Option<&Path>,
    out: &Path,
    force: bool,
) -> Result<bool, String> {
    let schema_text = read(schema)?;
    let policies_text = read(policies)?;
    let entities_text = entities.map(read).transpose()?;
    let imported = match import(CedarInput {
        schema: &schema_text,
        policies: &policies_text,
        entities: entities_text.as_deref(),
    }) {
        Ok(imported) => imported,
        Err(errors) => {
            for error in &errors {
                reporter.plain_diagnostic(error);
            }
            reporter.summary("nothing was written: the Cedar input has no authz translation");
            return Ok(false);
        }
    };
    let mut files: Vec<(PathBuf, &str)> = vec![
        (out.join("schema.authz"), &imported.schema),
        (out.join("policies.authz"), &imported.policies),
    ];
    if let Some(entities) = &imported.entities {
        files.push((out.join("entities.json"), entities));
    }
    if !force {
        if let Some((existing, _)) = files.iter().find(|(path, _)| path.exists()) {
            return Err(format!(
                "`{}` exists; pass --force to overwrite it",
                existing.display()
            ));
        }
    }
    std::fs::create_dir_all(out)
        .map_err(|error| format!("cannot create `{}`: {error}", out.display()))?;
    for (path, text) in &files {
        std::fs::write(path, text)
            .map_err(|error| format!("cannot write `{}`: {error}", path.display()))?;
    }
    // What was written must check: the translation is held to the same checker as any set.
    let sources = vec![
        SourceFile::new(
            out.join("schema.authz").display().to_string(),
            imported.schema.clone(),
        ),
        SourceFile::new(
            out.join("policies.authz").display().to_string(),
            imported.policies.clone(),
        ),
    ];
    let checked = authz_compiler::check_sources(&sources);
    for diagnostic in &checked.diagnostics {
        match sources.get(diagnostic.file.0 as usize) {
            Some(source) => reporter.source_diagnostic(source, diagnostic),
            None => reporter.plain_diagnostic(diagnostic),
        }
    }
    reporter.summary(&format!(
        "imported {} policies into `{}` and checked them",
        imported.policy_count,
        out.display()
    ));
    Ok(reporter.errors == 0)
}
