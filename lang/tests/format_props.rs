//! Property tests of the formatter on generated syntax trees of the whole language (see
//! `support/gen.rs`):
//!
//! - formatting a tree gives text that parses without errors back to that tree, modulo spans and
//!   the parentheses the grammar requires;
//! - formatting is idempotent: formatting the parse of formatted text gives the same text;
//! - whitespace between tokens does not change the formatted text;
//! - comments inserted between tokens all survive formatting, in order, the tree parsed from the
//!   formatted text equals the tree parsed from the commented text modulo spans, and formatting
//!   the formatted text changes nothing.

// Test code may panic: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use authz_lang::{format_file, parse};
use proptest::prelude::*;
use support::erase::{erase_spans, erase_spans_and_comments};
use support::gen;
use support::noise::noisy;

/// Cases per property; the four properties together take a few seconds in a debug build.
const CASES: u32 = 512;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Parses `text`, failing the test case on a syntax error.
fn parse_clean(text: &str) -> Result<authz_lang::Parse, TestCaseError> {
    let parsed = parse(text);
    prop_assert!(
        parsed.errors.is_empty(),
        "syntax errors {:?} in:\n{}",
        parsed.errors,
        text
    );
    Ok(parsed)
}

/// A generated file and its formatted text.
fn formatted_file() -> impl Strategy<Value = (authz_lang::ast::File, String)> {
    gen::file().prop_map(|file| {
        let text = format_file(&file, "");
        (file, text)
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn formatted_trees_parse_back_to_themselves((file, text) in formatted_file()) {
        let parsed = parse_clean(&text)?;
        prop_assert_eq!(erase_spans(&parsed.file), gen::parenthesize(&file), "text:\n{}", text);
    }

    #[test]
    fn formatting_is_idempotent((_file, text) in formatted_file()) {
        let parsed = parse_clean(&text)?;
        let again = format_file(&parsed.file, &text);
        prop_assert_eq!(again, text);
    }

    #[test]
    fn whitespace_between_tokens_does_not_change_the_output(
        (text, noisy_text) in formatted_file()
            .prop_flat_map(|(_, text)| (Just(text.clone()), noisy(text, false)))
    ) {
        let parsed = parse_clean(&noisy_text)?;
        let formatted = format_file(&parsed.file, &noisy_text);
        prop_assert_eq!(formatted, text, "input:\n{}", noisy_text);
    }

    #[test]
    fn comments_survive_formatting(
        commented in formatted_file().prop_flat_map(|(_, text)| noisy(text, true))
    ) {
        let parsed = parse_clean(&commented)?;
        let formatted = format_file(&parsed.file, &commented);
        let reparsed = parse_clean(&formatted)?;
        prop_assert_eq!(
            erase_spans_and_comments(&reparsed.file),
            erase_spans_and_comments(&parsed.file),
            "input:\n{}\nformatted:\n{}", commented, formatted
        );
        prop_assert_eq!(
            erase_spans(&reparsed.file).comments,
            erase_spans(&parsed.file).comments,
            "input:\n{}\nformatted:\n{}", commented, formatted
        );
        let again = format_file(&reparsed.file, &formatted);
        prop_assert_eq!(again, formatted, "input:\n{}", commented);
    }
}
