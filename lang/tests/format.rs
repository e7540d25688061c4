//! Snapshot tests of the canonical formatter: each `fixtures/fmt/*.authz` file is messy input
//! (odd spacing, long conditions, comments everywhere), and its snapshot is the formatted text.
//! Every fixture must parse without errors, format to text that keeps all its comments, and
//! format to the same text a second time.

// Test code may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;

use authz_lang::{format_source, parse};

/// Formats one fixture, checks the laws every output obeys, and returns the output.
fn check(name: &str, input: &str) -> String {
    let output = match format_source(input) {
        Ok(output) => output,
        Err(errors) => panic!("{name}: the fixture has syntax errors: {errors:?}"),
    };
    let reformatted = format_source(&output)
        .unwrap_or_else(|errors| panic!("{name}: the output has syntax errors: {errors:?}"));
    assert_eq!(reformatted, output, "{name}: formatting is not idempotent");
    let comments = |text: &str| -> Vec<String> {
        parse(text)
            .file
            .comments
            .iter()
            .map(|comment| comment.text.trim_end().to_string())
            .collect()
    };
    assert_eq!(
        comments(&output),
        comments(input),
        "{name}: comments changed"
    );
    for line in output.lines() {
        assert_eq!(line.trim_end(), line, "{name}: trailing whitespace");
    }
    output
}

#[test]
fn fixtures_format_to_their_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fmt");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "authz"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no fixtures in {}", dir.display());
    for path in paths {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let input = std::fs::read_to_string(&path).unwrap();
        let output = check(&name, &input);
        insta::with_settings!({
            input_file => &path,
            description => "the formatted text of the fixture",
            omit_expression => true,
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(format!("format@{name}"), output);
        });
    }
}
