//! Property tests of the formatter on generated syntax trees of the whole language (see
//! `support/gen.rs`):
//!
//! - formatting a tree gives text that parses without errors back to that tree, modulo spans and
//!   the parentheses the grammar requires, with its expressions numbered `0..n` in the order of
//!   `File::number_exprs`;
//! - formatting is idempotent: formatting the parse of formatted text gives the same text;
//! - whitespace between tokens does not change the formatted text;
//! - comments inserted between tokens all survive formatting, in order, the tree parsed from the
//!   formatted text equals the tree parsed from the commented text modulo spans, and formatting
//!   the formatted text changes nothing;
//! - formatting never panics, whatever the tree (even one parsed from broken text) and whatever
//!   source text comes with it, and every comment of the tree appears in the output even when
//!   its span points anywhere.

// Test code may panic: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use authz_lang::ast::ExprId;
use authz_lang::{format_file, parse};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use support::erase::{erase_spans, erase_spans_and_comments, expr_ids};
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

/// Text made of the language's tokens in random order, with comments, broken strings and other
/// characters among them: mostly not a valid file.
fn token_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        4 => select(vec![
            "permit", "forbid", "entity", "action", "route", "limit", "when", "unless", "principal",
            "resource", "context", "in", "has", "like", "is", "if", "then", "else", "per", "with",
            "User", "x", "1", "\"s\"", "\"a\\nb", "(", ")", "[", "]", "{", "}", ",", ";", ":",
            ".", "==", "&&", "||", "!", "-", "+", "*", "<", ">=", "->", "=>", "@id", "?", "//c\n",
            "\n", "\n\n",
        ])
        .prop_map(str::to_string),
        1 => any::<String>(),
    ];
    vec(token, 0..40).prop_map(|tokens| tokens.join(" "))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn formatted_trees_parse_back_to_themselves((file, text) in formatted_file()) {
        let parsed = parse_clean(&text)?;
        let expected = gen::parenthesize(&file);
        prop_assert_eq!(erase_spans(&parsed.file), expected.clone(), "text:\n{}", text);
        // The parser numbers expressions as `number_exprs` does: 0, 1, ... children first.
        let ids = expr_ids(&parsed.file);
        prop_assert_eq!(&ids, &expr_ids(&expected), "text:\n{}", text);
        let dense: Vec<ExprId> = (0..u32::try_from(ids.len()).unwrap()).map(ExprId).collect();
        prop_assert_eq!(ids, dense, "text:\n{}", text);
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
        commented in gen::text(true, true)
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

    #[test]
    fn formatting_never_panics(text in token_soup(), other_source in any::<String>()) {
        let parsed = parse(&text);
        let _ = format_file(&parsed.file, &text);
        let _ = format_file(&parsed.file, &other_source);
        let _ = format_file(&parsed.file, "");
    }

    #[test]
    fn every_comment_appears_whatever_its_span(
        text in gen::text(true, true),
        extra in vec((0u32..400, "[a-z ]{0,8}"), 0..6),
    ) {
        let mut file = parse(&text).file;
        for (start, words) in extra {
            let comment_text = format!("//extra {words}");
            let end = start + u32::try_from(comment_text.len()).unwrap();
            file.comments.push(authz_lang::ast::Comment {
                text: comment_text,
                span: authz_lang::Span { start, end },
            });
        }
        let formatted = format_file(&file, &text);
        let mut rest = formatted.as_str();
        let mut comments: Vec<_> = file.comments.iter().collect();
        comments.sort_by_key(|comment| comment.span.start);
        for comment in comments {
            let wanted = comment.text.trim_end();
            let found = rest.find(wanted);
            prop_assert!(found.is_some(), "`{}` is missing from:\n{}", wanted, formatted);
            rest = &rest[found.unwrap_or(0) + wanted.len()..];
        }
    }
}
