//! The normative grammar `lang/grammar/authz.pest` on its own: it accepts the programs that
//! docs/language.md shows or allows, and rejects the ones the reference rules out.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "conformance/cases.rs"]
mod cases;
#[path = "conformance/grammar.rs"]
mod grammar;

/// The ```authz code blocks of docs/language.md.
fn doc_examples() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/language.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let mut examples = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```authz") => current = Some(String::new()),
            (Some(block), "```") => {
                examples.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    examples
}

#[test]
fn grammar_accepts_the_examples_of_the_reference() {
    let examples = doc_examples();
    assert!(
        !examples.is_empty(),
        "docs/language.md has no ```authz block"
    );
    for example in examples {
        if let Some(error) = grammar::error(&example) {
            panic!("the grammar rejects an example of docs/language.md:\n{example}\n{error}");
        }
    }
}

#[test]
fn grammar_accepts_valid_programs() {
    let failures: Vec<String> = cases::VALID
        .iter()
        .filter_map(|text| grammar::error(text).map(|error| format!("{text:?}\n{error}")))
        .collect();
    assert!(
        failures.is_empty(),
        "the grammar rejects valid programs:\n\n{}",
        failures.join("\n\n")
    );
}

#[test]
fn grammar_rejects_invalid_programs() {
    let failures: Vec<&str> = cases::INVALID
        .iter()
        .copied()
        .filter(|text| grammar::accepts(text))
        .collect();
    assert!(
        failures.is_empty(),
        "the grammar accepts invalid programs:\n{failures:#?}"
    );
}

#[path = "conformance/generator.rs"]
#[allow(dead_code)]
mod generator;

#[test]
fn grammar_accepts_generated_programs() {
    let mut generator = generator::Generator::new(7);
    for _ in 0..2_000 {
        let tokens = generator.file();
        let text = generator::render(&tokens, generator.rng());
        if let Some(error) = grammar::error(&text) {
            panic!("the grammar rejects a generated program:\n{text}\n{error}");
        }
    }
}

#[test]
fn generated_programs_reach_every_rule() {
    use pest::Parser;
    let mut seen = std::collections::HashSet::new();
    let mut generator = generator::Generator::new(7);
    for _ in 0..2_000 {
        let tokens = generator.file();
        let text = generator::render(&tokens, generator.rng());
        let pairs = grammar::AuthzGrammar::parse(grammar::Rule::file, &text).unwrap();
        seen.extend(pairs.flatten().map(|pair| pair.as_rule()));
    }
    // Silent rules (`_{ ... }`) never show in a parse tree.
    use grammar::Rule;
    let silent = [
        Rule::WHITESPACE,
        Rule::COMMENT,
        Rule::word_start,
        Rule::word_char,
        Rule::keyword,
        Rule::int_in_range,
        Rule::i64_max_19_digits,
        Rule::string_char,
        Rule::escape,
        Rule::unicode_escape,
        Rule::above_10ffff,
        Rule::surrogate,
    ];
    let missed: Vec<_> = Rule::all_rules()
        .iter()
        .filter(|rule| !seen.contains(rule) && !silent.contains(rule))
        .collect();
    assert!(missed.is_empty(), "no generated program uses {missed:?}");
}
