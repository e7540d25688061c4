//! `authz fmt`: rewrite, print or check the canonical formatting of `.authz` files.

use std::io::Read;
use std::path::{Path, PathBuf};

use authz_lang::SourceFile;

use super::Outcome;
use crate::cli::FmtArgs;
use crate::report::Reporter;
use crate::sources;

/// Formats every file named on the command line.
pub fn run(args: &FmtArgs) -> Outcome {
    let mut reporter = Reporter::new(&args.output);
    if args.paths.iter().any(|path| path == Path::new("-")) {
        return format_stdin(args, &mut reporter);
    }
    let files = match files_to_format(&args.paths) {
        Ok(files) => files,
        Err(error) => {
            reporter.plain_diagnostic(&error);
            return Outcome::Failure;
        }
    };
    let mut unformatted = Vec::new();
    for path in &files {
        let source = match sources::read_files(std::slice::from_ref(path)) {
            Ok(mut read) => match read.pop() {
                Some(source) => source,
                None => continue,
            },
            Err(error) => {
                reporter.plain_diagnostic(&error);
                continue;
            }
        };
        let Some(formatted) = format_or_report(&source, &mut reporter) else {
            continue;
        };
        if args.stdout {
            print!("{formatted}");
        } else if formatted != source.text {
            if args.check {
                println!("{}", source.name);
            } else if let Err(error) = write_atomically(path, &formatted) {
                reporter.plain_diagnostic(&sources::SourceError::Unreadable {
                    path: source.name.clone(),
                    message: error.to_string(),
                });
                continue;
            }
            unformatted.push(source.name);
        }
    }
    if args.check && !unformatted.is_empty() {
        let count = unformatted.len();
        let files_word = if count == 1 { "file" } else { "files" };
        eprintln!("{count} {files_word} would be reformatted; run `authz fmt` to fix");
        return Outcome::Failure;
    }
    if !args.check && !args.stdout && !unformatted.is_empty() {
        let count = unformatted.len();
        eprintln!(
            "reformatted {count} {}",
            if count == 1 { "file" } else { "files" }
        );
    }
    if reporter.errors > 0 {
        Outcome::Failure
    } else {
        Outcome::Success
    }
}

fn format_stdin(args: &FmtArgs, reporter: &mut Reporter) -> Outcome {
    let mut text = String::new();
    if let Err(error) = std::io::stdin().read_to_string(&mut text) {
        reporter.plain_diagnostic(&sources::SourceError::Unreadable {
            path: "<stdin>".to_string(),
            message: error.to_string(),
        });
        return Outcome::Failure;
    }
    let source = SourceFile::new("<stdin>", text);
    let Some(formatted) = format_or_report(&source, reporter) else {
        return Outcome::Failure;
    };
    if args.check {
        return if formatted == source.text {
            Outcome::Success
        } else {
            Outcome::Failure
        };
    }
    print!("{formatted}");
    Outcome::Success
}

/// The canonical text of a file, or `None` after reporting its syntax errors.
fn format_or_report(source: &SourceFile, reporter: &mut Reporter) -> Option<String> {
    match authz_lang::format_source(&source.text) {
        Ok(formatted) => Some(formatted),
        Err(errors) => {
            for error in &errors {
                reporter.source_diagnostic(source, error);
            }
            None
        }
    }
}

fn files_to_format(paths: &[PathBuf]) -> Result<Vec<PathBuf>, sources::SourceError> {
    let default = [PathBuf::from(".")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(sources::authz_files(path)?);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Replaces a file's contents through a temporary file and a rename, so that an interrupted run
/// never leaves a half-written policy.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".authz-fmt.tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, text)?;
    if let Ok(metadata) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&temporary, metadata.permissions());
    }
    std::fs::rename(&temporary, path)
}
