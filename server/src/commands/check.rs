//! `authz check`: type-check policy sets and report every diagnostic.

use authz_lang::SourceFile;

use super::Outcome;
use crate::cli::CheckArgs;
use crate::report::Reporter;
use crate::sources;

/// Checks every policy set named on the command line.
pub fn run(args: &CheckArgs) -> Outcome {
    let mut reporter = Reporter::new(&args.output);
    let sets = match sources::policy_sets(&args.paths) {
        Ok(sets) => sets,
        Err(error) => {
            reporter.plain_diagnostic(&error);
            return Outcome::Failure;
        }
    };
    let mut files_checked = 0;
    for set in &sets {
        let files: Vec<SourceFile> = match sources::read_files(&set.files) {
            Ok(files) => files,
            Err(error) => {
                reporter.plain_diagnostic(&error);
                continue;
            }
        };
        files_checked += files.len();
        let checked = authz_compiler::check_sources(&files);
        for diagnostic in &checked.diagnostics {
            match files.get(diagnostic.file.0 as usize) {
                Some(source) => reporter.source_diagnostic(source, diagnostic),
                None => reporter.plain_diagnostic(diagnostic),
            }
        }
    }
    let sets_word = if sets.len() == 1 {
        "policy set"
    } else {
        "policy sets"
    };
    let files_word = if files_checked == 1 { "file" } else { "files" };
    reporter.summary(&format!(
        "checked {} {sets_word} ({files_checked} {files_word})",
        sets.len()
    ));
    let failed = reporter.errors > 0 || (args.deny_warnings && reporter.warnings > 0);
    if failed {
        Outcome::Failure
    } else {
        Outcome::Success
    }
}
