//! Conformance of the parser to the normative grammar.
//!
//! `lang/grammar/authz.pest` is the specification of the syntax; `authz_lang::parse` is the
//! implementation. This test holds, for every input it tries, that the grammar accepts the whole
//! input exactly when the parser reports no syntax error. The inputs are:
//!
//! - every `.authz` file under `examples/`, `lang/tests/fixtures/` and `compiler/tests/fixtures/`,
//!   the ```authz blocks of docs/language.md, and the hand-written cases of `conformance/cases.rs`;
//! - programs generated from the grammar (`conformance/generator.rs`), with random whitespace and
//!   comments between their tokens;
//! - mutants of those programs: tokens and characters deleted, duplicated, swapped or inserted.
//!
//! A mismatch is shrunk to a small input that still disagrees the same way, and reported with
//! the side that accepted it. The run is deterministic: `AUTHZ_CONFORMANCE_SEED` (default 1)
//! picks the programs and `AUTHZ_CONFORMANCE_CASES` (default 5000) how many are generated; each
//! gives three mutants. For a long run:
//! `AUTHZ_CONFORMANCE_CASES=100000 AUTHZ_CONFORMANCE_SEED=$RANDOM cargo test -p authz-lang --test conformance`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use authz_lang::SyntaxError;

#[path = "conformance/cases.rs"]
mod cases;
#[path = "conformance/generator.rs"]
mod generator;
#[path = "conformance/grammar.rs"]
mod grammar;
#[path = "conformance/shrink.rs"]
mod shrink;

/// How many mismatches are shrunk and shown; the others are only counted.
const MAX_SHOWN: usize = 12;

/// What each side said of one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Verdict {
    /// Whether the grammar accepts the whole input.
    grammar: bool,
    /// Whether the parser reports no syntax error; `None` when it panicked.
    parser: Option<bool>,
    /// Whether every error the parser reports is an implementation limit (nesting too deep),
    /// which the grammar does not express.
    beyond_limits: bool,
}

impl Verdict {
    fn of(text: &str) -> Verdict {
        let errors = std::panic::catch_unwind(|| authz_lang::parse(text).errors).ok();
        let beyond_limits = errors.as_ref().is_some_and(|errors| {
            !errors.is_empty()
                && errors
                    .iter()
                    .all(|error| matches!(error, SyntaxError::NestingTooDeep { .. }))
        });
        Verdict {
            grammar: grammar::accepts(text),
            parser: errors.map(|errors| errors.is_empty()),
            beyond_limits,
        }
    }

    /// Whether both sides agree, or the grammar accepts what only the parser's nesting limits
    /// reject (docs/language.md, "Limits").
    fn agrees(self) -> bool {
        self.parser == Some(self.grammar) || self.grammar && self.beyond_limits
    }

    fn describe(self) -> &'static str {
        match (self.grammar, self.parser) {
            (_, None) => "the parser panics",
            (true, Some(false)) => "the grammar accepts it, the parser rejects it",
            (false, Some(true)) => "the parser accepts it, the grammar rejects it",
            _ => "both agree",
        }
    }
}

/// Runs inputs through both sides, counting verdicts and keeping the mismatches.
#[derive(Default)]
struct Conformance {
    inputs: usize,
    accepted: usize,
    beyond_limits: usize,
    mismatches: Vec<(String, String, Verdict)>,
}

impl Conformance {
    fn check(&mut self, origin: &str, text: &str) -> Verdict {
        let verdict = Verdict::of(text);
        self.inputs += 1;
        if verdict.agrees() && verdict.grammar {
            if verdict.beyond_limits {
                self.beyond_limits += 1;
            } else {
                self.accepted += 1;
            }
        }
        if !verdict.agrees() {
            self.mismatches
                .push((origin.to_string(), text.to_string(), verdict));
        }
        verdict
    }

    fn rejected(&self) -> usize {
        self.inputs - self.accepted - self.beyond_limits - self.mismatches.len()
    }

    /// Fails the test with every mismatch, the first ones shrunk, or prints the counts.
    fn finish(self, what: &str) {
        let rejected = self.rejected();
        eprintln!(
            "{what}: {} inputs, {} accepted by both, {rejected} rejected by both, \
             {} beyond the parser's nesting limits, {} mismatches",
            self.inputs,
            self.accepted,
            self.beyond_limits,
            self.mismatches.len()
        );
        if self.mismatches.is_empty() {
            return;
        }
        let mut report = String::new();
        let mut shown: Vec<String> = Vec::new();
        let mut shown_per_kind: Vec<(&str, usize)> = Vec::new();
        for (origin, text, verdict) in &self.mismatches {
            // A few of each kind, so that one frequent cause does not hide the others.
            let kind = verdict.describe();
            let count = match shown_per_kind.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, count)) => count,
                None => {
                    shown_per_kind.push((kind, 0));
                    &mut shown_per_kind.last_mut().unwrap().1
                }
            };
            if *count >= MAX_SHOWN / 2 {
                continue;
            }
            *count += 1;
            let minimal = shrink::shrink(text, |candidate| Verdict::of(candidate) == *verdict);
            if shown.contains(&minimal) {
                continue;
            }
            report.push_str(&format!(
                "\n{}: {minimal:?}\n    (from {origin}: {text:?})\n",
                verdict.describe()
            ));
            if let Some(error) = grammar::error(&minimal) {
                let position = error.lines().next().unwrap_or("").trim();
                let expected = error.lines().last().unwrap_or("").trim();
                report.push_str(&format!("    grammar: {position} {expected}\n"));
            }
            if let Ok(parse) = std::panic::catch_unwind(|| authz_lang::parse(&minimal)) {
                for error in parse.errors.iter().take(3) {
                    report.push_str(&format!("    parser: {error}\n"));
                }
            }
            shown.push(minimal);
        }
        panic!(
            "{what}: the grammar and the parser disagree on {} of {} inputs; minimal cases:\n{report}",
            self.mismatches.len(),
            self.inputs
        );
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}")),
        Err(_) => default,
    }
}

fn seed() -> u64 {
    env_number("AUTHZ_CONFORMANCE_SEED", 1)
}

fn cases() -> usize {
    env_number("AUTHZ_CONFORMANCE_CASES", 5000) as usize
}

fn collect_authz_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_authz_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "authz") {
            files.push(path);
        }
    }
}

/// The ```authz code blocks of docs/language.md.
fn doc_examples(root: &Path) -> Vec<String> {
    let doc = std::fs::read_to_string(root.join("docs/language.md")).unwrap();
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
fn files_and_hand_written_cases_conform() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["examples", "lang/tests/fixtures", "compiler/tests/fixtures"] {
        collect_authz_files(&root.join(dir), &mut files);
    }
    files.sort();
    let mut conformance = Conformance::default();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let origin = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        conformance.check(&origin, &text);
    }
    for (index, example) in doc_examples(&root).iter().enumerate() {
        conformance.check(&format!("docs/language.md block {index}"), example);
    }
    for case in cases::VALID.iter().chain(cases::INVALID) {
        conformance.check("conformance/cases.rs", case);
    }
    eprintln!("{} .authz files", files.len());
    conformance.finish("files and hand-written cases");
}

#[test]
fn generated_programs_conform() {
    let seed = seed();
    let mut generator = generator::Generator::new(seed);
    let mut conformance = Conformance::default();
    let mut rejected_by_grammar = Vec::new();
    for index in 0..cases() {
        let tokens = generator.file();
        let text = generator::render(&tokens, generator.rng());
        let verdict = conformance.check(&format!("seed {seed}, program {index}"), &text);
        if !verdict.grammar && rejected_by_grammar.len() < 3 {
            rejected_by_grammar.push(text);
        }
    }
    // The generator follows the grammar, so the grammar must accept all it writes.
    assert!(
        rejected_by_grammar.is_empty(),
        "the grammar rejects generated programs (a generator or grammar bug): {rejected_by_grammar:#?}"
    );
    conformance.finish("generated programs");
}

#[test]
fn mutated_programs_conform() {
    let seed = seed();
    // A different stream from the generated programs' test, so that both explore.
    let mut generator = generator::Generator::new(seed ^ 0x6d75_7461_6e74);
    let mut conformance = Conformance::default();
    for index in 0..cases() {
        let tokens = generator.file();
        let origin = format!("seed {seed}, mutant of program {index}");

        // One token-level mutation.
        let mut mutant = tokens.clone();
        generator::mutate_tokens(&mut mutant, generator.rng());
        let text = generator::render(&mutant, generator.rng());
        conformance.check(&origin, &text);

        // One character-level mutation.
        let text = generator::render(&tokens, generator.rng());
        let text = generator::mutate_chars(&text, generator.rng());
        conformance.check(&origin, &text);

        // Several of both.
        let mut mutant = tokens;
        for _ in 0..1 + generator.rng().below(3) {
            generator::mutate_tokens(&mut mutant, generator.rng());
        }
        let mut text = generator::render(&mutant, generator.rng());
        for _ in 0..generator.rng().below(3) {
            text = generator::mutate_chars(&text, generator.rng());
        }
        conformance.check(&origin, &text);
    }
    let rejected = conformance.rejected();
    assert!(
        rejected * 2 >= conformance.inputs,
        "only {rejected} of {} mutants are rejected: the mutations are too mild",
        conformance.inputs
    );
    conformance.finish("mutated programs");
}
