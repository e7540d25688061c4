//! Finding and reading `.authz` files.

use std::path::{Path, PathBuf};

use authz_lang::SourceFile;

/// A policy set to load: its files.
#[derive(Debug)]
pub struct SetPaths {
    /// The `.authz` files, sorted.
    pub files: Vec<PathBuf>,
}

/// A file that could not be read or found.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SourceError {
    /// The path does not exist or cannot be read.
    #[error("cannot read `{path}`: {message}")]
    #[diagnostic(code(authz::io::unreadable))]
    Unreadable {
        /// The path.
        path: String,
        /// What the operating system said.
        message: String,
    },
    /// A directory without any `.authz` file.
    #[error("no `.authz` files in `{path}`")]
    #[diagnostic(code(authz::io::no_policies), help("policy files end in `.authz`"))]
    NoPolicies {
        /// The directory.
        path: String,
    },
}

/// Groups the command-line paths into policy sets: one per directory, one for all loose files.
/// With no paths, the current directory is the one set.
pub fn policy_sets(paths: &[PathBuf]) -> Result<Vec<SetPaths>, SourceError> {
    let default = [PathBuf::from(".")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut sets = Vec::new();
    let mut loose = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).map_err(|error| unreadable(path, &error))?;
        if metadata.is_dir() {
            let files = authz_files(path)?;
            if files.is_empty() {
                return Err(SourceError::NoPolicies {
                    path: path.display().to_string(),
                });
            }
            sets.push(SetPaths { files });
        } else {
            loose.push(path.clone());
        }
    }
    if !loose.is_empty() {
        sets.push(SetPaths { files: loose });
    }
    Ok(sets)
}

/// Every `.authz` file beneath `dir`, sorted by path; hidden directories are skipped.
pub fn authz_files(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|error| unreadable(&dir, &error))?;
        for entry in entries {
            let entry = entry.map_err(|error| unreadable(&dir, &error))?;
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            let file_type = entry
                .file_type()
                .map_err(|error| unreadable(&path, &error))?;
            if file_type.is_dir() && !hidden {
                pending.push(path);
            } else if file_type.is_file() && path.extension().is_some_and(|ext| ext == "authz") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Reads the files of a set.
pub fn read_files(paths: &[PathBuf]) -> Result<Vec<SourceFile>, SourceError> {
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(|error| unreadable(path, &error))?;
            Ok(SourceFile::new(display(path), text))
        })
        .collect()
}

/// The path as shown in diagnostics: relative paths without a leading `./`.
pub fn display(path: &Path) -> String {
    let shown = path.strip_prefix(".").unwrap_or(path);
    shown.display().to_string()
}

fn unreadable(path: &Path, error: &std::io::Error) -> SourceError {
    SourceError::Unreadable {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}
