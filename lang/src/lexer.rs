//! The lexer: text to tokens.
//!
//! Tokens are produced by a [`logos`] state machine. Whitespace is skipped; `//` comments are
//! collected on the side for the formatter. String literals are decoded here, so that the parser
//! sees their values; a malformed literal still becomes a token (with what could be decoded) and
//! a diagnostic, so that parsing goes on.

use logos::Logos;

use crate::ast::Comment;
use crate::diagnostics::SyntaxError;
use crate::span::Span;

/// The kinds of tokens.
#[derive(Logos, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[logos(skip r"[ \t\r\n]+")]
pub enum TokenKind {
    /// `// ...` up to the end of the line.
    #[regex(r"//[^\n]*", allow_greedy = true)]
    Comment,

    /// `entity`
    #[token("entity")]
    Entity,
    /// `action`
    #[token("action")]
    Action,
    /// `route`
    #[token("route")]
    Route,
    /// `permit`
    #[token("permit")]
    Permit,
    /// `forbid`
    #[token("forbid")]
    Forbid,
    /// `when`
    #[token("when")]
    When,
    /// `unless`
    #[token("unless")]
    Unless,
    /// `limit`
    #[token("limit")]
    Limit,
    /// `per`
    #[token("per")]
    Per,
    /// `in`
    #[token("in")]
    In,
    /// `has`
    #[token("has")]
    Has,
    /// `like`
    #[token("like")]
    Like,
    /// `is`
    #[token("is")]
    Is,
    /// `if`
    #[token("if")]
    If,
    /// `then`
    #[token("then")]
    Then,
    /// `else`
    #[token("else")]
    Else,
    /// `true`
    #[token("true")]
    True,
    /// `false`
    #[token("false")]
    False,
    /// `principal`
    #[token("principal")]
    Principal,
    /// `resource`
    #[token("resource")]
    Resource,
    /// `context`
    #[token("context")]
    Context,
    /// `with`
    #[token("with")]
    With,

    /// An identifier that is not a keyword.
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*")]
    Ident,
    /// A run of decimal digits.
    #[regex(r"[0-9]+")]
    Int,
    /// A complete string literal on one line.
    #[regex(r#""([^"\\\n]|\\[^\n])*""#)]
    Str,
    /// A string literal that reaches the end of the line without its closing quote. It is
    /// reported when lexed and then parsed like a string, so that one error is reported once.
    #[regex(r#""([^"\\\n]|\\[^\n])*\\?"#)]
    UnterminatedStr,

    /// `;`
    #[token(";")]
    Semi,
    /// `,`
    #[token(",")]
    Comma,
    /// `:`
    #[token(":")]
    Colon,
    /// `.`
    #[token(".")]
    Dot,
    /// `(`
    #[token("(")]
    LParen,
    /// `)`
    #[token(")")]
    RParen,
    /// `[`
    #[token("[")]
    LBracket,
    /// `]`
    #[token("]")]
    RBracket,
    /// `{`
    #[token("{")]
    LBrace,
    /// `}`
    #[token("}")]
    RBrace,
    /// `<`
    #[token("<")]
    Lt,
    /// `>`
    #[token(">")]
    Gt,
    /// `<=`
    #[token("<=")]
    Le,
    /// `>=`
    #[token(">=")]
    Ge,
    /// `==`
    #[token("==")]
    EqEq,
    /// `!=`
    #[token("!=")]
    NotEq,
    /// `=`, never valid; lexed to give a helpful error.
    #[token("=")]
    Assign,
    /// `@`
    #[token("@")]
    At,
    /// `|`
    #[token("|")]
    Pipe,
    /// `||`
    #[token("||")]
    OrOr,
    /// `&`, never valid; lexed to give a helpful error.
    #[token("&")]
    Amp,
    /// `&&`
    #[token("&&")]
    AndAnd,
    /// `!`
    #[token("!")]
    Bang,
    /// `+`
    #[token("+")]
    Plus,
    /// `-`
    #[token("-")]
    Minus,
    /// `*`
    #[token("*")]
    Star,
    /// `?`
    #[token("?")]
    Question,
    /// `->`
    #[token("->")]
    Arrow,
    /// `=>`
    #[token("=>")]
    FatArrow,

    /// The end of the input.
    Eof,
}

impl TokenKind {
    /// Whether this token is a keyword.
    pub fn is_keyword(self) -> bool {
        self.keyword_text().is_some()
    }

    /// The text of a keyword token.
    pub fn keyword_text(self) -> Option<&'static str> {
        use TokenKind::*;
        Some(match self {
            Entity => "entity",
            Action => "action",
            Route => "route",
            Permit => "permit",
            Forbid => "forbid",
            When => "when",
            Unless => "unless",
            Limit => "limit",
            Per => "per",
            In => "in",
            Has => "has",
            Like => "like",
            Is => "is",
            If => "if",
            Then => "then",
            Else => "else",
            True => "true",
            False => "false",
            Principal => "principal",
            Resource => "resource",
            Context => "context",
            With => "with",
            _ => return None,
        })
    }

    /// How the token is named in a diagnostic: "`;`", "identifier", "end of file".
    pub fn describe(self) -> &'static str {
        use TokenKind::*;
        if let Some(keyword) = self.keyword_text() {
            return match keyword {
                "entity" => "`entity`",
                "action" => "`action`",
                "route" => "`route`",
                "permit" => "`permit`",
                "forbid" => "`forbid`",
                "when" => "`when`",
                "unless" => "`unless`",
                "limit" => "`limit`",
                "per" => "`per`",
                "in" => "`in`",
                "has" => "`has`",
                "like" => "`like`",
                "is" => "`is`",
                "if" => "`if`",
                "then" => "`then`",
                "else" => "`else`",
                "true" => "`true`",
                "false" => "`false`",
                "principal" => "`principal`",
                "resource" => "`resource`",
                "context" => "`context`",
                _ => "`with`",
            };
        }
        match self {
            Comment => "comment",
            Ident => "identifier",
            Int => "integer",
            Str | UnterminatedStr => "string literal",
            Semi => "`;`",
            Comma => "`,`",
            Colon => "`:`",
            Dot => "`.`",
            LParen => "`(`",
            RParen => "`)`",
            LBracket => "`[`",
            RBracket => "`]`",
            LBrace => "`{`",
            RBrace => "`}`",
            Lt => "`<`",
            Gt => "`>`",
            Le => "`<=`",
            Ge => "`>=`",
            EqEq => "`==`",
            NotEq => "`!=`",
            Assign => "`=`",
            At => "`@`",
            Pipe => "`|`",
            OrOr => "`||`",
            Amp => "`&`",
            AndAnd => "`&&`",
            Bang => "`!`",
            Plus => "`+`",
            Minus => "`-`",
            Star => "`*`",
            Question => "`?`",
            Arrow => "`->`",
            FatArrow => "`=>`",
            _ => "end of file",
        }
    }
}

/// A token: its kind, its span and, for identifiers, numbers and strings, its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// What kind of token it is.
    pub kind: TokenKind,
    /// Where it stands.
    pub span: Span,
}

/// The result of lexing a whole file.
#[derive(Debug, Default)]
pub struct Lexed {
    /// The tokens, ending with one [`TokenKind::Eof`].
    pub tokens: Vec<Token>,
    /// The comments, in order.
    pub comments: Vec<Comment>,
    /// Lexical errors: unexpected characters and unterminated strings.
    pub errors: Vec<SyntaxError>,
}

/// Splits `text` into tokens, collecting comments and lexical errors on the side.
pub fn lex(text: &str) -> Lexed {
    let mut lexed = Lexed::default();
    let mut lexer = TokenKind::lexer(text);
    while let Some(result) = lexer.next() {
        let range = lexer.span();
        let span = Span::new(range.start, range.end);
        match result {
            Ok(TokenKind::Comment) => lexed.comments.push(Comment {
                text: lexer.slice().to_string(),
                span,
            }),
            Ok(TokenKind::UnterminatedStr) => {
                lexed.errors.push(SyntaxError::UnterminatedString { span });
                lexed.tokens.push(Token {
                    kind: TokenKind::UnterminatedStr,
                    span,
                });
            }
            Ok(kind) => lexed.tokens.push(Token { kind, span }),
            Err(()) => {
                let found = lexer.slice().chars().next().unwrap_or('\u{fffd}');
                lexed
                    .errors
                    .push(SyntaxError::UnexpectedCharacter { found, span });
            }
        }
    }
    let end = Span::new(text.len(), text.len());
    lexed.tokens.push(Token {
        kind: TokenKind::Eof,
        span: end,
    });
    lexed
}

/// Decodes the string literal whose source text (quotes included) is `raw` and starts at byte
/// `offset`. Malformed escapes are reported and dropped from the value.
pub fn decode_string(raw: &str, offset: usize, errors: &mut Vec<SyntaxError>) -> String {
    let inner = raw.strip_prefix('"').unwrap_or(raw);
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    let mut value = String::with_capacity(inner.len());
    let mut chars = inner.char_indices().peekable();
    while let Some((index, ch)) = chars.next() {
        if ch != '\\' {
            value.push(ch);
            continue;
        }
        let escape_start = offset + 1 + index;
        let decoded = match chars.next() {
            Some((_, 'n')) => Some('\n'),
            Some((_, 'r')) => Some('\r'),
            Some((_, 't')) => Some('\t'),
            Some((_, '0')) => Some('\0'),
            Some((_, '\\')) => Some('\\'),
            Some((_, '"')) => Some('"'),
            Some((_, '\'')) => Some('\''),
            Some((_, 'u')) => decode_unicode_escape(&mut chars),
            _ => None,
        };
        match decoded {
            Some(ch) => value.push(ch),
            None => {
                let escape_end = chars
                    .peek()
                    .map_or(offset + 1 + inner.len(), |(i, _)| offset + 1 + i);
                let text = raw
                    .get(escape_start - offset..escape_end - offset)
                    .unwrap_or("\\")
                    .to_string();
                errors.push(SyntaxError::InvalidEscape {
                    escape: text,
                    span: Span::new(escape_start, escape_end),
                });
            }
        }
    }
    value
}

/// Decodes the `{1F600}` part of a `\u{1F600}` escape; `None` when it is malformed.
fn decode_unicode_escape(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Option<char> {
    chars.next_if(|(_, c)| *c == '{')?;
    let mut code: u32 = 0;
    let mut digits = 0;
    while let Some((_, c)) = chars.next_if(|(_, c)| c.is_ascii_hexdigit()) {
        code = code * 16 + c.to_digit(16).unwrap_or(0);
        digits += 1;
        if digits > 6 {
            return None;
        }
    }
    if digits == 0 || chars.next_if(|(_, c)| *c == '}').is_none() {
        return None;
    }
    char::from_u32(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        lex(text).tokens.into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn keywords_need_word_boundaries() {
        use TokenKind::*;
        assert_eq!(
            kinds("permit permits in_x in"),
            vec![Permit, Ident, Ident, In, Eof]
        );
    }

    #[test]
    fn comments_are_collected_not_tokens() {
        let lexed = lex("entity A; // trailing\n// own line\n");
        assert_eq!(lexed.tokens.len(), 4);
        let texts: Vec<_> = lexed.comments.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, vec!["// trailing", "// own line"]);
    }

    #[test]
    fn unterminated_string_is_reported() {
        let lexed = lex("\"abc\nentity");
        assert_eq!(lexed.errors.len(), 1);
        assert_eq!(
            lexed.tokens.first().map(|t| t.kind),
            Some(TokenKind::UnterminatedStr)
        );
    }

    #[test]
    fn escapes_decode() {
        let mut errors = Vec::new();
        let value = decode_string(r#""a\n\t\"\\\u{1F600}\0""#, 0, &mut errors);
        assert_eq!(value, "a\n\t\"\\\u{1F600}\0");
        assert!(errors.is_empty());
    }

    #[test]
    fn bad_escapes_are_reported_with_their_span() {
        let mut errors = Vec::new();
        let value = decode_string(r#""a\qb\u{110000}""#, 10, &mut errors);
        assert_eq!(value, "ab");
        let spans: Vec<_> = errors
            .iter()
            .map(|e| (e.span().start, e.span().end))
            .collect();
        assert_eq!(spans, vec![(12, 14), (15, 25)]);
    }
}
