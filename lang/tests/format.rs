//! Snapshot tests of the canonical formatter: each `fixtures/fmt/*.authz` file is messy input
//! (odd spacing, long conditions, comments everywhere), and its snapshot is the formatted text.
//! Every fixture must parse without errors, format to text that keeps all its comments and its
//! syntax tree (modulo spans), and format to the same text a second time. The example policy sets
//! under `examples/` obey the same laws (without snapshots: they belong to their authors).

// Test code may panic: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::{Path, PathBuf};

use authz_lang::{format_source, parse};
use support::erase::erase_spans_and_comments;

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
    assert_eq!(
        erase_spans_and_comments(&parse(&output).file),
        erase_spans_and_comments(&parse(input).file),
        "{name}: the syntax tree changed"
    );
    for line in output.lines() {
        assert_eq!(line.trim_end(), line, "{name}: trailing whitespace");
    }
    output
}

/// The `.authz` files under `dir`, recursively, sorted.
fn authz_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "authz") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn fixtures_format_to_their_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fmt");
    let paths = authz_files(&dir);
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

#[test]
fn examples_format_idempotently_and_keep_their_meaning() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for path in authz_files(&dir) {
        let input = std::fs::read_to_string(&path).unwrap();
        check(&path.display().to_string(), &input);
    }
}

#[test]
fn the_deepest_expressions_the_parser_allows_format() {
    let scope = "permit principal: *, action: *, resource: *";
    let nots = format!("{scope}\nwhen {}true;\n", "!".repeat(250));
    let parens = format!("{scope}\nwhen {}true{};\n", "(".repeat(60), ")".repeat(60));
    let sums = format!("{scope}\nwhen 0{} == 1;\n", " + 1".repeat(200));
    for (name, input) in [("nots", nots), ("parens", parens), ("sums", sums)] {
        assert_eq!(check(name, &input), input);
    }
}

#[test]
fn a_large_policy_set_formats_quickly() {
    let policy = "@id(\"p\")\npermit principal: User, action: read, resource: Order\nwhen resource.owner == principal && principal.tier != \"free\"; // why\n";
    let input = policy.repeat(10_000);
    let start = std::time::Instant::now();
    let output = format_source(&input).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(output, input);
    assert!(elapsed.as_secs() < 10, "formatting took {elapsed:?}");
    eprintln!("formatted 10,000 policies in {elapsed:?}");
}
