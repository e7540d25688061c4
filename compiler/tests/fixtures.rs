//! Snapshot tests of the checker's diagnostics over `.authz` fixtures.
//!
//! Every fixture is checked together with `fixtures/schema.authz`, a small shared schema, as one
//! policy set. `fixtures/err/<construct>/<behavior>.authz` must produce at least one diagnostic;
//! its rendered diagnostics are pinned in `snapshots/fixtures__<construct>__<behavior>.snap`.
//! `fixtures/ok/*.authz` must produce none.

// Test helpers may panic: a panic is a test failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use authz_compiler::{check_sources, Checked};
use authz_lang::SourceFile;
use miette::{GraphicalReportHandler, GraphicalTheme, NamedSource};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

/// The `.authz` files under `dir`, recursively, sorted.
fn authz_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "authz") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Checks a fixture together with the shared schema; the schema is file 0, the fixture file 1.
fn check_fixture(name: &str, text: &str) -> (Vec<SourceFile>, Checked) {
    let schema = std::fs::read_to_string(fixtures_dir().join("schema.authz")).unwrap();
    let sources = vec![
        SourceFile::new("schema.authz", schema),
        SourceFile::new(name, text),
    ];
    let checked = check_sources(&sources);
    (sources, checked)
}

/// Renders every diagnostic as the CLI does, without colors, at width 80.
fn render(sources: &[SourceFile], checked: &Checked) -> String {
    let handler =
        GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(80);
    let mut out = String::new();
    for diagnostic in &checked.diagnostics {
        let source = &sources[diagnostic.file.0 as usize];
        let report = miette::Report::new(diagnostic.clone())
            .with_source_code(NamedSource::new(&source.name, source.text.clone()));
        handler.render_report(&mut out, report.as_ref()).unwrap();
        out.push('\n');
    }
    out
}

fn codes(checked: &Checked) -> Vec<String> {
    use miette::Diagnostic;
    checked
        .diagnostics
        .iter()
        .map(|diagnostic| {
            diagnostic
                .code()
                .map(|code| code.to_string())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn err_fixtures() {
    let root = fixtures_dir().join("err");
    let mut all_codes = BTreeSet::new();
    for path in authz_files(&root) {
        let relative = path.strip_prefix(&root).unwrap().with_extension("");
        let name: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let display_name = format!("{}.authz", name.join("/"));
        let text = std::fs::read_to_string(&path).unwrap();
        let (sources, checked) = check_fixture(&display_name, &text);
        assert!(
            !checked.diagnostics.is_empty(),
            "{display_name} produced no diagnostic"
        );
        for diagnostic in &checked.diagnostics {
            assert_eq!(
                diagnostic.file.0, 1,
                "{display_name}: a diagnostic points into the schema"
            );
        }
        all_codes.extend(codes(&checked));
        let rendered = render(&sources, &checked);
        insta::with_settings!({ description => text.clone(), omit_expression => true }, {
            insta::assert_snapshot!(name.join("__"), rendered);
        });
    }
    let check_codes: Vec<&String> = all_codes
        .iter()
        .filter(|code| code.starts_with("authz::check::"))
        .collect();
    assert!(
        check_codes.len() >= 32,
        "only {} check codes covered: {check_codes:?}",
        check_codes.len()
    );
}

#[test]
fn ok_fixtures() {
    for path in authz_files(&fixtures_dir().join("ok")) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let (sources, checked) = check_fixture(&name, &text);
        assert!(
            checked.diagnostics.is_empty(),
            "{name}:\n{}",
            render(&sources, &checked)
        );
    }
}

#[test]
fn examples_check_clean() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples");
    let Ok(entries) = std::fs::read_dir(&examples) else {
        return;
    };
    let mut dirs: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let sources: Vec<SourceFile> = authz_files(&dir)
            .iter()
            .map(|path| {
                let name = path
                    .strip_prefix(&examples)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                SourceFile::new(name, std::fs::read_to_string(path).unwrap())
            })
            .collect();
        let checked = check_sources(&sources);
        assert!(
            !checked.has_errors(),
            "{}:\n{}",
            dir.display(),
            render(&sources, &checked)
        );
    }
}
