//! The pest parser derived from the normative grammar `lang/grammar/authz.pest`.

/// The parser pest derives from `lang/grammar/authz.pest`.
#[derive(pest_derive::Parser)]
#[grammar = "grammar/authz.pest"]
pub struct AuthzGrammar;

/// Whether the normative grammar accepts the whole of `text` as a file.
pub fn accepts(text: &str) -> bool {
    use pest::Parser;
    AuthzGrammar::parse(Rule::file, text).is_ok()
}

/// The grammar's error message for `text`, or `None` when it accepts it.
pub fn error(text: &str) -> Option<String> {
    use pest::Parser;
    AuthzGrammar::parse(Rule::file, text)
        .err()
        .map(|e| e.to_string())
}
