//! The parser never panics and never overflows the stack, whatever the input: arbitrary bytes,
//! arbitrary sequences of the language's tokens, and very deep nesting of every construct that
//! nests. Each test runs on a test thread, whose stack (2 MiB by default) is smaller than a main
//! thread's, so that stack use is checked with a margin.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;

/// Parses `text`; the assertion is that this returns at all. The result is inspected a little,
/// so that the tree is built, walked by `Debug` and dropped.
fn parse(text: &str) -> usize {
    let parse = authz_lang::parse(text);
    parse.file.items.len() + parse.errors.len()
}

/// Tokens of the language, some malformed ones, and characters that are no token at all.
const TOKENS: &[&str] = &[
    "entity",
    "action",
    "route",
    "permit",
    "forbid",
    "when",
    "unless",
    "limit",
    "per",
    "in",
    "has",
    "like",
    "is",
    "if",
    "then",
    "else",
    "true",
    "false",
    "principal",
    "resource",
    "context",
    "with",
    "User",
    "Set",
    "x",
    "_",
    "0",
    "42",
    "9223372036854775807",
    "9223372036854775808",
    "\"s\"",
    "\"\\u{1F600}\"",
    "\"\\q\"",
    "\"open",
    ";",
    ",",
    ":",
    ".",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "<",
    ">",
    "@",
    "|",
    "->",
    "=>",
    "==",
    "!=",
    "<=",
    ">=",
    "&&",
    "||",
    "!",
    "+",
    "-",
    "*",
    "?",
    "=",
    "&",
    "/",
    "//",
    "#",
    "\\",
    "é",
    "\u{0}",
    "\u{feff}",
];

/// What may stand between two tokens.
const SEPARATORS: &[&str] = &[" ", "", "\n", "\t", "// c\n", "\r\n"];

fn token_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        (
            proptest::sample::select(TOKENS),
            proptest::sample::select(SEPARATORS),
        ),
        0..300,
    )
    .prop_map(|pieces| {
        pieces
            .into_iter()
            .flat_map(|(token, separator)| [token, separator])
            .collect()
    })
}

/// A prefix that puts what follows in expression position.
const WHEN: &str = "permit principal: *, action: *, resource: * when ";

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn parse_never_panics_on_arbitrary_strings(text in "\\PC{0,500}") {
        parse(&text);
    }

    #[test]
    fn parse_never_panics_on_token_soup(text in token_soup()) {
        parse(&text);
        parse(&format!("{WHEN}{text}"));
        parse(&format!("entity A {{ x: {text}"));
    }

    #[test]
    fn parse_never_panics_on_nesting_of_any_shape(
        openers in proptest::collection::vec(
            proptest::sample::select(&["(", "[", "{a:", "!", "-", "if true then ", "f(", "x.y(", "if "][..]),
            0..5000,
        ),
        close in any::<bool>(),
    ) {
        let mut text = String::from(WHEN);
        for opener in &openers {
            text.push_str(opener);
        }
        text.push_str("true");
        if close {
            for opener in openers.iter().rev() {
                text.push_str(match *opener {
                    "(" | "f(" | "x.y(" => ")",
                    "[" => "]",
                    "{a:" => "}",
                    "if true then " => " else 1",
                    "if " => " then 1 else 2",
                    _ => "",
                });
            }
        }
        parse(&text);
    }
}

/// How deep the deep-nesting tests go.
const DEEP: usize = 100_000;

/// `prefix`, then `open` `DEEP` times, then `middle`, then `close` `DEEP` times, then `suffix`:
/// parsed both whole and without its closing half.
fn check_deep(prefix: &str, open: &str, middle: &str, close: &str, suffix: &str) {
    let opened = format!("{prefix}{}{middle}", open.repeat(DEEP));
    parse(&opened);
    parse(&format!("{opened}{}{suffix}", close.repeat(DEEP)));
}

#[test]
fn deep_parentheses() {
    check_deep(WHEN, "(", "true", ")", ";");
    check_deep("", "(", "", "", "");
}

#[test]
fn deep_brackets() {
    check_deep(WHEN, "[", "true", "]", ";");
    check_deep("", "[", "", "", "");
}

#[test]
fn deep_record_literals() {
    check_deep(WHEN, "{a: ", "true", "}", ";");
    check_deep("", "{", "", "", "");
}

#[test]
fn deep_prefix_operators() {
    check_deep(WHEN, "!", "true", "", ";");
    check_deep(WHEN, "-", "1", "", ";");
    check_deep(WHEN, "!-", "1", "", ";");
}

#[test]
fn deep_calls_and_methods() {
    check_deep(WHEN, "f(", "1", ")", ";");
    check_deep(WHEN, "context.m(", "1", ")", ";");
}

#[test]
fn deep_if() {
    check_deep(WHEN, "if true then ", "1", " else 2", ";");
    check_deep(WHEN, "if ", "true", " then 1 else 2", ";");
    check_deep(WHEN, "(if true then 1 else ", "2", ")", ";");
}

#[test]
fn long_chains() {
    check_deep(WHEN, "1 + ", "1", "", ";");
    check_deep(WHEN, "true || ", "true", "", ";");
    check_deep(WHEN, "true && ", "true", "", ";");
    check_deep(WHEN, "1 * ", "1", "", ";");
    check_deep(WHEN, "context", ".a", "", ";");
    check_deep(WHEN, "context", ".a()", "", ";");
    check_deep(WHEN, "1 == ", "1", "", ";");
    check_deep(WHEN, "principal is A in ", "principal", "", ";");
}

#[test]
fn deep_types() {
    check_deep("entity A { x: ", "Set<", "Long", ">", " }");
    check_deep("entity A { x: ", "{a: ", "Long", "}", " }");
    check_deep(
        "action a : A -> B with { x: ",
        "Set<{a: ",
        "Long",
        "}>",
        " };",
    );
}

#[test]
fn many_items_and_annotations() {
    check_deep("", "@a(\"x\") ", "entity A;", "", "");
    check_deep("", "entity A; ", "", "", "");
    check_deep("", "permit ", "", "", "");
    check_deep("", ";", "", "", "");
    check_deep("", "}", "", "", "");
    check_deep("", ")", "", "", "");
}
