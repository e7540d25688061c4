//! Syntax fixtures: every file under `fixtures/ok` parses without errors, and every file under
//! `fixtures/err/<construct>/` is rendered with its diagnostics into an insta snapshot.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use authz_lang::parse;

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "authz") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Renders diagnostics the way users see them, without color, at a fixed width.
fn render(name: &str, text: &str) -> String {
    let parsed = parse(text);
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(80)
            .with_links(false);
    let mut out = String::new();
    for error in parsed.errors {
        let report = miette::Report::new(error)
            .with_source_code(miette::NamedSource::new(name, text.to_string()));
        handler.render_report(&mut out, report.as_ref()).unwrap();
    }
    out
}

#[test]
fn ok_fixtures_parse_cleanly() {
    let files = fixtures("ok");
    assert!(!files.is_empty());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = parse(&text);
        assert!(
            parsed.errors.is_empty(),
            "{}: {:?}",
            path.display(),
            parsed.errors
        );
        assert!(!parsed.file.items.is_empty(), "{}", path.display());
    }
}

#[test]
fn err_fixtures_snapshot() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/err");
    let files = fixtures("err");
    assert!(
        files.len() >= 15,
        "only {} syntax error fixtures",
        files.len()
    );
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let relative = path.strip_prefix(&root).unwrap().with_extension("");
        let name = relative.to_string_lossy().replace('/', "__");
        let rendered = render(&relative.with_extension("authz").to_string_lossy(), &text);
        assert!(!rendered.is_empty(), "{} reports no error", path.display());
        insta::with_settings!({ snapshot_path => "snapshots/syntax", prepend_module_to_snapshot => false, omit_expression => true, description => text.clone() }, {
            insta::assert_snapshot!(name, rendered);
        });
    }
}

#[test]
fn five_independent_errors_are_all_reported() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/err/item/five_independent_errors.authz"),
    )
    .unwrap();
    let parsed = parse(&text);
    let lines: Vec<usize> = parsed
        .errors
        .iter()
        .map(|e| text[..e.span().start()].matches('\n').count() + 1)
        .collect();
    assert_eq!(lines, vec![2, 4, 5, 6, 7]);
    // The valid items around the broken ones are kept.
    assert_eq!(parsed.file.items.len(), 3);
}

/// The ids of the expressions of `file`, children before their parent, left to right.
fn expr_ids(file: &authz_lang::ast::File) -> Vec<u32> {
    fn walk(expr: &authz_lang::ast::Expr, ids: &mut Vec<u32>) {
        for child in expr.children() {
            walk(child, ids);
        }
        ids.push(expr.id.0);
    }
    let mut ids = Vec::new();
    for item in &file.items {
        match &item.kind {
            authz_lang::ast::ItemKind::Policy(policy) => {
                for condition in &policy.conditions {
                    walk(&condition.expr, &mut ids);
                }
            }
            authz_lang::ast::ItemKind::Limit(limit) => {
                for expr in limit.keys.iter().chain(&limit.condition) {
                    walk(expr, &mut ids);
                }
            }
            _ => {}
        }
    }
    ids
}

#[test]
fn expressions_are_numbered_densely_children_first() {
    for path in fixtures("ok") {
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = parse(&text);
        let ids = expr_ids(&parsed.file);
        assert!(!ids.is_empty(), "{}", path.display());
        let dense: Vec<u32> = (0..u32::try_from(ids.len()).unwrap()).collect();
        assert_eq!(ids, dense, "{}", path.display());
        // Numbering by hand agrees with the parser, and parsing again gives the same ids.
        let mut renumbered = parsed.file.clone();
        renumbered.number_exprs();
        assert_eq!(expr_ids(&renumbered), ids, "{}", path.display());
        assert_eq!(expr_ids(&parse(&text).file), ids, "{}", path.display());
    }
}
