//! Syntax diagnostics: every error the lexer and the parser can report.
//!
//! Each variant is one kind of error with a stable code (`authz::syntax::*`), a lower-case message
//! and a label on the offending text. This enum is the one place where syntax error codes are
//! listed; `docs/diagnostics.md` is generated from the same list.

use miette::Diagnostic;
use thiserror::Error;

use crate::span::Span;

/// A syntax error in one file. The span points into that file's text.
#[derive(Clone, Debug, Error, Diagnostic, PartialEq, Eq)]
pub enum SyntaxError {
    /// A character that starts no token, such as `$` or `#`.
    #[error("unexpected character `{found}`")]
    #[diagnostic(code(authz::syntax::unexpected_character))]
    UnexpectedCharacter {
        /// The character found.
        found: char,
        /// Where.
        #[label("not valid here")]
        span: Span,
    },

    /// A string literal without its closing quote on the same line.
    #[error("unterminated string literal")]
    #[diagnostic(
        code(authz::syntax::unterminated_string),
        help("close the string with `\"` on the same line; write a line break as `\\n`")
    )]
    UnterminatedString {
        /// The literal up to the end of the line.
        #[label("this string is never closed")]
        span: Span,
    },

    /// A backslash sequence that strings do not allow.
    #[error("invalid escape sequence `{escape}`")]
    #[diagnostic(
        code(authz::syntax::invalid_escape),
        help("valid escapes are `\\n`, `\\r`, `\\t`, `\\0`, `\\\\`, `\\\"`, `\\'` and `\\u{{1F600}}`")
    )]
    InvalidEscape {
        /// The escape as written.
        escape: String,
        /// Where.
        #[label("unknown escape")]
        span: Span,
    },

    /// An integer literal beyond the range of `Long`.
    #[error("integer literal is too large")]
    #[diagnostic(
        code(authz::syntax::integer_too_large),
        help("integers range up to 9223372036854775807")
    )]
    IntegerTooLarge {
        /// The literal.
        #[label("does not fit in a `Long`")]
        span: Span,
    },

    /// A token other than the one the grammar needs here.
    #[error("expected {expected}, found {found}")]
    #[diagnostic(code(authz::syntax::unexpected_token))]
    UnexpectedToken {
        /// What would have been valid.
        expected: String,
        /// What was found.
        found: String,
        /// Where.
        #[label("expected {expected}")]
        span: Span,
        /// A hint, when one applies.
        #[help]
        help: Option<String>,
    },

    /// The file ended in the middle of an item.
    #[error("unexpected end of file, expected {expected}")]
    #[diagnostic(code(authz::syntax::unexpected_end))]
    UnexpectedEnd {
        /// What would have been valid.
        expected: String,
        /// The end of the file.
        #[label("the file ends here")]
        span: Span,
        /// A hint, when one applies.
        #[help]
        help: Option<String>,
    },

    /// A statement that is not followed by `;`.
    #[error("expected `;` after {item}")]
    #[diagnostic(
        code(authz::syntax::missing_semicolon),
        help("end each {item} with `;`")
    )]
    MissingSemicolon {
        /// The kind of item, such as "policy".
        item: &'static str,
        /// The point just after the item.
        #[label("add `;` here")]
        span: Span,
    },

    /// Something at the top level that starts no item.
    #[error("expected an item, found {found}")]
    #[diagnostic(code(authz::syntax::expected_item))]
    ExpectedItem {
        /// What was found.
        found: String,
        /// Where.
        #[label(
            "items start with `entity`, `action`, `route`, `permit`, `forbid`, `limit` or `@`"
        )]
        span: Span,
        /// A hint, when one applies.
        #[help]
        help: Option<String>,
    },

    /// A keyword where a name is needed.
    #[error("`{keyword}` is a keyword and cannot be used as a name")]
    #[diagnostic(
        code(authz::syntax::keyword_as_name),
        help("choose another name, such as `{keyword}_`")
    )]
    KeywordAsName {
        /// The keyword.
        keyword: &'static str,
        /// Where.
        #[label("a name is needed here")]
        span: Span,
    },

    /// Comparisons written one after the other, as in `a < b < c`.
    #[error("comparison operators cannot be chained")]
    #[diagnostic(
        code(authz::syntax::chained_comparison),
        help("split it with `&&`, as in `a < b && b < c`, or add parentheses")
    )]
    ChainedComparison {
        /// The first comparison.
        #[label("this comparison")]
        first: Span,
        /// The operator that follows it.
        #[label("cannot be followed by this one")]
        second: Span,
    },

    /// A bracket that is never closed.
    #[error("unclosed `{delimiter}`")]
    #[diagnostic(code(authz::syntax::unclosed_delimiter))]
    UnclosedDelimiter {
        /// The opening bracket.
        delimiter: char,
        /// The opening bracket's position.
        #[label("opened here")]
        open: Span,
        /// Where the closing bracket was expected.
        #[label("expected `{closing}` here")]
        span: Span,
        /// The closing bracket.
        closing: char,
    },

    /// `if` as the operand of an operator, without parentheses.
    #[error("`if` expression needs parentheses here")]
    #[diagnostic(
        code(authz::syntax::unparenthesized_if),
        help("wrap it in parentheses: `(if ... then ... else ...)`")
    )]
    UnparenthesizedIf {
        /// The `if` keyword.
        #[label("`if` used as an operand")]
        span: Span,
    },

    /// Annotations at the end of the file, with no item to annotate.
    #[error("annotation is not followed by an item")]
    #[diagnostic(
        code(authz::syntax::dangling_annotation),
        help("annotations such as `@id(\"...\")` stand right before a policy")
    )]
    DanglingAnnotation {
        /// The annotation.
        #[label("annotates nothing")]
        span: Span,
    },

    /// A policy scope with a part missing, such as `permit principal: User;`.
    #[error("policy scope needs `principal`, `action` and `resource`, in that order")]
    #[diagnostic(
        code(authz::syntax::incomplete_scope),
        help("a whole scope reads `{hint}`")
    )]
    IncompleteScope {
        /// Where the missing part should be.
        #[label("expected {missing} here")]
        span: Span,
        /// The part that is missing, in backticks.
        missing: &'static str,
        /// A full scope to copy.
        hint: &'static str,
    },

    /// Cedar's `Type::"id"` entity syntax or a `::` path, which authz writes `Type("id")`.
    #[error("`{written}` is Cedar syntax, not authz")]
    #[diagnostic(code(authz::syntax::cedar_path), help("{help}"))]
    CedarPath {
        /// The path as written, such as `User::"alice"`.
        written: String,
        /// How authz writes it.
        help: String,
        /// The whole path.
        #[label("write `{suggestion}`")]
        span: Span,
        /// The authz spelling of the path.
        suggestion: String,
    },

    /// Expressions nested deeper than the parser allows.
    #[error("expression is nested too deeply")]
    #[diagnostic(
        code(authz::syntax::nesting_too_deep),
        help("the limit is {limit} levels; split the condition")
    )]
    NestingTooDeep {
        /// The limit.
        limit: usize,
        /// Where the limit was reached.
        #[label("nesting limit reached here")]
        span: Span,
    },
}

impl SyntaxError {
    /// The primary span of the error.
    pub fn span(&self) -> Span {
        match self {
            SyntaxError::UnexpectedCharacter { span, .. }
            | SyntaxError::UnterminatedString { span }
            | SyntaxError::InvalidEscape { span, .. }
            | SyntaxError::IntegerTooLarge { span }
            | SyntaxError::UnexpectedToken { span, .. }
            | SyntaxError::UnexpectedEnd { span, .. }
            | SyntaxError::MissingSemicolon { span, .. }
            | SyntaxError::ExpectedItem { span, .. }
            | SyntaxError::KeywordAsName { span, .. }
            | SyntaxError::UnclosedDelimiter { span, .. }
            | SyntaxError::UnparenthesizedIf { span }
            | SyntaxError::DanglingAnnotation { span }
            | SyntaxError::IncompleteScope { span, .. }
            | SyntaxError::CedarPath { span, .. }
            | SyntaxError::NestingTooDeep { span, .. } => *span,
            SyntaxError::ChainedComparison { second, .. } => *second,
        }
    }
}
