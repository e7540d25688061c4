//! The parser: tokens to a syntax tree, with error recovery.
//!
//! A hand-written recursive-descent parser; expressions use one function per binding level (the
//! table in `docs/language.md`), iterating rather than recursing where an operator repeats, so the
//! stack grows only with real nesting (parentheses, brackets, `if`). Nesting and tree depth are
//! bounded, so no input can overflow the stack, here or in the passes that walk the tree.
//!
//! Recovery: an item that fails to parse reports one error and is left out of the tree; the parser
//! then skips to the next `;` or to the next token that can only start an item, and goes on. A
//! missing `;` before the next item is reported and repaired in place. So one run reports every
//! broken item of a file.
//!
//! Node ids: every expression node gets an [`ExprId`] from one counter per file, in the order its
//! construction finishes (children before their parent), so the ids of a file without errors are
//! `0..n` and the same text always gets the same ids.

use crate::ast::*;
use crate::diagnostics::SyntaxError;
use crate::format::quote;
use crate::lexer::{decode_string, lex, Token, TokenKind};
use crate::span::Span;

/// How many expressions may nest inside one another (parentheses, brackets, arguments, `if`).
pub const MAX_NESTING: usize = 64;
/// How deep an expression tree may be, counting every operator.
pub const MAX_TREE_DEPTH: u32 = 256;

/// The result of parsing a file: a tree, always, and every syntax error found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parse {
    /// The items that parsed, with every comment of the file.
    pub file: File,
    /// Every syntax error, ordered by position.
    pub errors: Vec<SyntaxError>,
}

/// Parses the text of one `.authz` file.
pub fn parse(text: &str) -> Parse {
    let lexed = lex(text);
    let mut parser = Parser {
        text,
        tokens: lexed.tokens,
        pos: 0,
        errors: lexed.errors,
        nesting: 0,
        next_expr_id: 0,
    };
    let items = parser.items();
    let mut errors = parser.errors;
    errors.sort_by_key(|error| (error.span().start, error.span().end));
    errors.dedup();
    Parse {
        file: File {
            items,
            comments: lexed.comments,
        },
        errors,
    }
}

/// Marks an item that failed to parse; its error has already been reported.
struct Recover;

type PResult<T> = Result<T, Recover>;

/// An expression under construction, with the depth of its tree.
struct Node {
    expr: Expr,
    depth: u32,
}

struct Parser<'t> {
    text: &'t str,
    tokens: Vec<Token>,
    pos: usize,
    errors: Vec<SyntaxError>,
    nesting: usize,
    /// The id of the next expression node; one counter per file (see [`ExprId`]).
    next_expr_id: u32,
}

const ITEM_KEYWORDS: [&str; 7] = [
    "entity", "action", "route", "permit", "forbid", "limit", "type",
];

impl<'t> Parser<'t> {
    // ---- Token access ----

    fn token(&self) -> Token {
        self.token_at(self.pos)
    }

    fn token_at(&self, index: usize) -> Token {
        match self.tokens.get(index).or_else(|| self.tokens.last()) {
            Some(token) => token.clone(),
            None => Token {
                kind: TokenKind::Eof,
                span: Span::new(self.text.len(), self.text.len()),
            },
        }
    }

    fn peek(&self) -> TokenKind {
        self.token().kind
    }

    fn at(&self, kind: TokenKind) -> bool {
        self.peek() == kind
    }

    fn bump(&mut self) -> Token {
        let token = self.token();
        if token.kind != TokenKind::Eof {
            self.pos += 1;
        }
        token
    }

    fn eat(&mut self, kind: TokenKind) -> Option<Span> {
        if self.at(kind) {
            Some(self.bump().span)
        } else {
            None
        }
    }

    /// The end of the last token consumed, as an empty span.
    fn after_previous(&self) -> Span {
        match self.pos.checked_sub(1).and_then(|i| self.tokens.get(i)) {
            Some(token) => Span {
                start: token.span.end,
                end: token.span.end,
            },
            None => Span::default(),
        }
    }

    fn span_from(&self, start: Span) -> Span {
        start.to(self.after_previous())
    }

    fn slice(&self, span: Span) -> &'t str {
        self.text.get(span.start()..span.end()).unwrap_or("")
    }

    /// Whether the current token can only start an item, so recovery may stop before it.
    fn at_item_start(&self) -> bool {
        match self.peek() {
            TokenKind::Entity
            | TokenKind::Route
            | TokenKind::Permit
            | TokenKind::Forbid
            | TokenKind::Limit
            | TokenKind::At
            | TokenKind::Eof => true,
            // `action` also starts a policy's action scope, which follows a comma on the same line
            // or the next; an item `action` is the first token of its line after a `;` or `}`.
            TokenKind::Action => self.action_starts_item(),
            TokenKind::Ident => self.at_type_alias() && self.action_starts_item(),
            _ => false,
        }
    }

    fn action_starts_item(&self) -> bool {
        let previous = self.pos.checked_sub(1).map(|i| self.token_at(i));
        match previous {
            None => true,
            Some(previous) => matches!(previous.kind, TokenKind::Semi | TokenKind::RBrace),
        }
    }

    // ---- Errors ----

    fn describe_found(&self, token: &Token) -> String {
        match token.kind {
            TokenKind::Ident => format!("identifier `{}`", self.slice(token.span)),
            TokenKind::Int => format!("integer `{}`", self.slice(token.span)),
            kind => kind.describe().to_string(),
        }
    }

    fn report(&mut self, error: SyntaxError) -> Recover {
        self.errors.push(error);
        Recover
    }

    /// Reports that `expected` was needed where the current token stands.
    fn unexpected(&mut self, expected: &str) -> Recover {
        let token = self.token();
        let help = match token.kind {
            TokenKind::Assign => Some("use `==` to compare values".to_string()),
            TokenKind::Amp => Some("use `&&` for \"and\"".to_string()),
            TokenKind::Pipe => Some("use `||` for \"or\"".to_string()),
            _ => None,
        };
        let error = if token.kind == TokenKind::Eof {
            SyntaxError::UnexpectedEnd {
                expected: expected.to_string(),
                span: token.span,
                help,
            }
        } else {
            SyntaxError::UnexpectedToken {
                expected: expected.to_string(),
                found: self.describe_found(&token),
                span: token.span,
                help,
            }
        };
        self.report(error)
    }

    fn expect(&mut self, kind: TokenKind) -> PResult<Span> {
        match self.eat(kind) {
            Some(span) => Ok(span),
            None => Err(self.unexpected(kind.describe())),
        }
    }

    /// Expects the `;` that ends an item. When the next token starts another item, the `;` is
    /// reported missing and parsing goes on as if it were there.
    fn expect_semi(&mut self, item: &'static str) -> PResult<()> {
        if self.eat(TokenKind::Semi).is_some() {
            return Ok(());
        }
        let previous = self.pos.checked_sub(1).map(|i| self.token_at(i).kind);
        if self.at_item_start() || self.at(TokenKind::Action) {
            // An unterminated string has swallowed the rest of its line, `;` included, and has
            // been reported already.
            if previous != Some(TokenKind::UnterminatedStr) {
                let span = self.after_previous();
                self.errors
                    .push(SyntaxError::MissingSemicolon { item, span });
            }
            return Ok(());
        }
        let expected = match self.peek() {
            TokenKind::Assign => "`==`",
            TokenKind::Amp => "`&&`",
            TokenKind::Pipe => "`||`",
            _ => "`;`",
        };
        Err(self.unexpected(expected))
    }

    /// Skips to just after the next `;`, or to the next token that can only start an item.
    fn recover(&mut self) {
        loop {
            if self.at_item_start() {
                return;
            }
            if self.bump().kind == TokenKind::Semi {
                return;
            }
        }
    }

    // ---- Items ----

    fn items(&mut self) -> Vec<Item> {
        let mut items = Vec::new();
        while !self.at(TokenKind::Eof) {
            let start = self.pos;
            match self.item() {
                Ok(Some(item)) => items.push(item),
                Ok(None) => {}
                Err(Recover) => {
                    if self.pos == start {
                        self.bump();
                    }
                    self.recover();
                }
            }
        }
        items
    }

    fn item(&mut self) -> PResult<Option<Item>> {
        let start = self.token().span;
        let mut annotations = Vec::new();
        while self.at(TokenKind::At) {
            annotations.push(self.annotation()?);
        }
        let kind = match self.peek() {
            TokenKind::Entity => ItemKind::Entity(self.entity_decl()?),
            TokenKind::Action => ItemKind::Action(self.action_decl()?),
            TokenKind::Route => ItemKind::Route(self.route_decl()?),
            TokenKind::Permit | TokenKind::Forbid => ItemKind::Policy(self.policy()?),
            TokenKind::Limit => ItemKind::Limit(self.limit_decl()?),
            TokenKind::Ident if self.at_type_alias() => ItemKind::TypeAlias(self.type_alias()?),
            TokenKind::Eof if !annotations.is_empty() => {
                let span = self.span_from(start);
                self.errors.push(SyntaxError::DanglingAnnotation { span });
                return Ok(None);
            }
            _ => return Err(self.expected_item()),
        };
        Ok(Some(Item {
            annotations,
            kind,
            span: self.span_from(start),
        }))
    }

    fn expected_item(&mut self) -> Recover {
        let token = self.token();
        let text = self.slice(token.span);
        let help = if token.kind == TokenKind::Ident {
            closest_item_keyword(text).map(|keyword| format!("did you mean `{keyword}`?"))
        } else {
            None
        };
        let found = self.describe_found(&token);
        self.report(SyntaxError::ExpectedItem {
            found,
            span: token.span,
            help,
        })
    }

    fn annotation(&mut self) -> PResult<Annotation> {
        let start = self.expect(TokenKind::At)?;
        let name = self.word("an annotation name")?;
        let mut value = None;
        if let Some(open) = self.eat(TokenKind::LParen) {
            value = Some(self.string()?);
            self.close(TokenKind::RParen, open)?;
        }
        Ok(Annotation {
            name,
            value,
            span: self.span_from(start),
        })
    }

    fn entity_decl(&mut self) -> PResult<EntityDecl> {
        self.expect(TokenKind::Entity)?;
        let name = self.ident()?;
        let mut parents = Vec::new();
        if self.eat(TokenKind::In).is_some() {
            parents = self.type_list()?;
        }
        let mut attrs = None;
        if self.at(TokenKind::LBrace) {
            attrs = Some(self.record_type()?);
            self.eat(TokenKind::Semi);
        } else {
            self.expect_semi("entity declaration")?;
        }
        Ok(EntityDecl {
            name,
            parents,
            attrs,
        })
    }

    /// `Name` or `[Name, Name]`.
    fn type_list(&mut self) -> PResult<Vec<Ident>> {
        let Some(open) = self.eat(TokenKind::LBracket) else {
            return Ok(vec![self.ident()?]);
        };
        let mut names = vec![self.ident()?];
        while self.eat(TokenKind::Comma).is_some() {
            if self.at(TokenKind::RBracket) {
                break;
            }
            names.push(self.ident()?);
        }
        self.close(TokenKind::RBracket, open)?;
        Ok(names)
    }

    fn record_type(&mut self) -> PResult<RecordType> {
        let open = self.expect(TokenKind::LBrace)?;
        let mut fields = Vec::new();
        while !self.at(TokenKind::RBrace) {
            let name = self.field_name()?;
            let optional = self.eat(TokenKind::Question).is_some();
            self.expect(TokenKind::Colon)?;
            let ty = self.type_expr()?;
            fields.push(FieldType { name, optional, ty });
            if self.eat(TokenKind::Comma).is_none() {
                break;
            }
        }
        self.close(TokenKind::RBrace, open)?;
        Ok(RecordType {
            fields,
            span: self.span_from(open),
        })
    }

    /// A type; types nest (`Set<Set<T>>`, records in records) within the same bound as
    /// expressions, so that no input can overflow the stack.
    fn type_expr(&mut self) -> PResult<TypeExpr> {
        if self.nesting >= MAX_NESTING {
            let span = self.token().span;
            return Err(self.report(SyntaxError::NestingTooDeep {
                limit: MAX_NESTING,
                span,
            }));
        }
        self.nesting += 1;
        let result = self.unbounded_type_expr();
        self.nesting -= 1;
        result
    }

    fn unbounded_type_expr(&mut self) -> PResult<TypeExpr> {
        if self.at(TokenKind::LBrace) {
            return Ok(TypeExpr::Record(self.record_type()?));
        }
        let name = self.ident_expecting("a type")?;
        if name.name == "Set" && self.eat(TokenKind::Lt).is_some() {
            let element = self.type_expr()?;
            self.expect(TokenKind::Gt)?;
            let span = self.span_from(name.span);
            return Ok(TypeExpr::Set(Box::new(element), span));
        }
        Ok(TypeExpr::Named(name))
    }

    fn action_decl(&mut self) -> PResult<ActionDecl> {
        self.expect(TokenKind::Action)?;
        let mut names = vec![self.ident()?];
        while self.eat(TokenKind::Comma).is_some() {
            names.push(self.ident()?);
        }
        let mut groups = Vec::new();
        if self.eat(TokenKind::In).is_some() {
            groups = self.type_list()?;
        }
        // Without a signature, the declaration declares groups.
        if self.at(TokenKind::Semi) {
            self.bump();
            return Ok(ActionDecl {
                names,
                groups,
                signature: None,
            });
        }
        if !self.at(TokenKind::Colon) {
            return Err(self.unexpected("`:` and the principal types, or `;` for a group"));
        }
        self.bump();
        let principals = self.type_union()?;
        self.expect(TokenKind::Arrow)?;
        let resources = self.type_union()?;
        let mut context = None;
        if self.eat(TokenKind::With).is_some() {
            context = Some(if self.at(TokenKind::Ident) {
                TypeExpr::Named(self.ident()?)
            } else {
                TypeExpr::Record(self.record_type()?)
            });
        }
        self.expect_semi("action declaration")?;
        Ok(ActionDecl {
            names,
            groups,
            signature: Some(ActionSignature {
                principals,
                resources,
                context,
            }),
        })
    }

    /// `type Name = Type;`, after checking that the current word is `type`.
    fn type_alias(&mut self) -> PResult<TypeAliasDecl> {
        self.bump();
        let name = self.ident_expecting("the name of the type")?;
        self.expect(TokenKind::Assign)?;
        let ty = self.type_expr()?;
        self.expect_semi("type declaration")?;
        Ok(TypeAliasDecl { name, ty })
    }

    /// Whether the current token is the word `type` starting a type declaration: `type` is a
    /// word of that declaration only, not a keyword.
    fn at_type_alias(&self) -> bool {
        let token = self.token();
        token.kind == TokenKind::Ident
            && self.slice(token.span) == "type"
            && self.token_at(self.pos + 1).kind == TokenKind::Ident
    }

    /// `A | B | C`.
    fn type_union(&mut self) -> PResult<Vec<Ident>> {
        let mut names = vec![self.ident_expecting("an entity type")?];
        while self.eat(TokenKind::Pipe).is_some() {
            names.push(self.ident_expecting("an entity type")?);
        }
        Ok(names)
    }

    fn route_decl(&mut self) -> PResult<RouteDecl> {
        self.expect(TokenKind::Route)?;
        let method = self.ident_expecting("an HTTP method such as `GET`")?;
        let path = self.string()?;
        self.expect(TokenKind::FatArrow)?;
        let action = self.ident_expecting("an action")?;
        let resource_type = self.ident_expecting("the resource's entity type")?;
        let open = self.expect(TokenKind::LParen)?;
        let resource_id = match self.peek() {
            TokenKind::Ident => RouteArg::Param(self.ident()?),
            TokenKind::Str | TokenKind::UnterminatedStr => RouteArg::Literal(self.string()?),
            _ => return Err(self.unexpected("a path parameter name or a string")),
        };
        self.close(TokenKind::RParen, open)?;
        self.expect_semi("route")?;
        Ok(RouteDecl {
            method,
            path,
            action,
            resource_type,
            resource_id,
        })
    }

    fn policy(&mut self) -> PResult<Policy> {
        let effect_token = self.bump();
        let effect = if effect_token.kind == TokenKind::Forbid {
            Effect::Forbid
        } else {
            Effect::Permit
        };
        let principal = self.var_scope(TokenKind::Principal, "`principal`")?;
        self.scope_comma("`action`")?;
        let action = self.action_scope()?;
        self.scope_comma("`resource`")?;
        let resource = self.var_scope(TokenKind::Resource, "`resource`")?;
        let mut conditions = Vec::new();
        loop {
            let kind = match self.peek() {
                TokenKind::When => ConditionKind::When,
                TokenKind::Unless => ConditionKind::Unless,
                _ => break,
            };
            let keyword_span = self.bump().span;
            let expr = self.expr()?.expr;
            conditions.push(Condition {
                kind,
                keyword_span,
                expr,
            });
        }
        self.expect_semi("policy")?;
        Ok(Policy {
            effect,
            effect_span: effect_token.span,
            principal,
            action,
            resource,
            conditions,
        })
    }

    fn incomplete_scope(&mut self, missing: &'static str) -> Recover {
        let span = self.after_previous();
        let hint = "principal: User, action: read, resource: *";
        self.report(SyntaxError::IncompleteScope {
            span,
            missing,
            hint,
        })
    }

    fn scope_comma(&mut self, next: &'static str) -> PResult<()> {
        if self.eat(TokenKind::Comma).is_some() {
            return Ok(());
        }
        if matches!(
            self.peek(),
            TokenKind::Semi | TokenKind::When | TokenKind::Unless | TokenKind::Eof
        ) {
            return Err(self.incomplete_scope(next));
        }
        Err(self.unexpected("`,`"))
    }

    fn var_scope(&mut self, keyword: TokenKind, name: &'static str) -> PResult<Scope> {
        let Some(start) = self.eat(keyword) else {
            return Err(self.incomplete_scope(name));
        };
        let kind = match self.peek() {
            TokenKind::Colon => {
                self.bump();
                if self.eat(TokenKind::Star).is_some() {
                    ScopeKind::Any
                } else {
                    let ty = self.ident_expecting("an entity type or `*`")?;
                    if self.eat(TokenKind::In).is_some() {
                        ScopeKind::IsIn(ty, self.entity_ref()?)
                    } else {
                        ScopeKind::Is(ty)
                    }
                }
            }
            TokenKind::EqEq => {
                self.bump();
                ScopeKind::Eq(self.entity_ref()?)
            }
            TokenKind::In => {
                self.bump();
                ScopeKind::In(self.entity_ref()?)
            }
            _ => return Err(self.unexpected("`:`, `==` or `in`")),
        };
        Ok(Scope {
            kind,
            span: self.span_from(start),
        })
    }

    fn entity_ref(&mut self) -> PResult<EntityRef> {
        let ty = self.ident_expecting("an entity such as `Team(\"eng\")`")?;
        let open = self.expect(TokenKind::LParen)?;
        let id = self.string()?;
        self.close(TokenKind::RParen, open)?;
        Ok(EntityRef {
            span: self.span_from(ty.span),
            ty,
            id,
        })
    }

    fn action_scope(&mut self) -> PResult<ActionScope> {
        let Some(start) = self.eat(TokenKind::Action) else {
            return Err(self.incomplete_scope("`action`"));
        };
        let colon = self.eat(TokenKind::Colon).is_some();
        if !colon && self.eat(TokenKind::In).is_none() {
            let token = self.token();
            let found = self.describe_found(&token);
            return Err(self.report(SyntaxError::UnexpectedToken {
                expected: "`:` or `in`".to_string(),
                found,
                span: token.span,
                help: Some(
                    "write `action: read`, `action: [read, list]`, `action in readActions` or `action: *`".to_string(),
                ),
            }));
        }
        let kind = if colon && self.eat(TokenKind::Star).is_some() {
            ActionScopeKind::Any
        } else if self.at(TokenKind::LBracket) {
            ActionScopeKind::AnyOf(self.type_list()?)
        } else {
            let expected = if colon {
                "an action, a group, a list of them or `*`"
            } else {
                "an action, a group or a list of them"
            };
            ActionScopeKind::One(self.ident_expecting(expected)?)
        };
        Ok(ActionScope {
            kind,
            span: self.span_from(start),
        })
    }

    fn limit_decl(&mut self) -> PResult<LimitDecl> {
        self.expect(TokenKind::Limit)?;
        let name = self.string()?;
        let count = self.int()?;
        self.expect(TokenKind::Per)?;
        let period = if self.at(TokenKind::Int) {
            Some(self.int()?)
        } else {
            None
        };
        let unit = self.ident_expecting("a period: `second`, `minute`, `hour` or `day`")?;
        let burst = if self.at(TokenKind::Ident) && self.slice(self.token().span) == "burst" {
            self.bump();
            Some(self.int()?)
        } else {
            None
        };
        let on_attempts = if self.at(TokenKind::Ident) && self.slice(self.token().span) == "on" {
            let start = self.token().span;
            self.bump();
            if !(self.at(TokenKind::Ident) && self.slice(self.token().span) == "attempts") {
                return Err(self.unexpected("`attempts` (a limit counted `on attempts`)"));
            }
            self.bump();
            Some(self.span_from(start))
        } else {
            None
        };
        let mut keys = Vec::new();
        if self.eat(TokenKind::Per).is_some() {
            keys.push(self.expr()?.expr);
            while self.eat(TokenKind::Comma).is_some() {
                keys.push(self.expr()?.expr);
            }
        }
        let mut condition = None;
        if self.eat(TokenKind::When).is_some() {
            condition = Some(self.expr()?.expr);
        }
        self.expect_semi("limit")?;
        Ok(LimitDecl {
            name,
            count,
            period,
            unit,
            burst,
            on_attempts,
            keys,
            condition,
        })
    }

    // ---- Names and literals ----

    fn ident(&mut self) -> PResult<Ident> {
        self.ident_expecting("a name")
    }

    fn ident_expecting(&mut self, expected: &str) -> PResult<Ident> {
        let token = self.token();
        if token.kind == TokenKind::Ident {
            self.bump();
            let ident = Ident {
                name: self.slice(token.span).to_string(),
                span: token.span,
            };
            self.refuse_cedar_path(&ident)?;
            return Ok(ident);
        }
        if let Some(keyword) = token.kind.keyword_text() {
            self.bump();
            return Err(self.report(SyntaxError::KeywordAsName {
                keyword,
                span: token.span,
            }));
        }
        Err(self.unexpected(expected))
    }

    /// An identifier or a keyword.
    fn word(&mut self, expected: &str) -> PResult<Ident> {
        let token = self.token();
        if token.kind == TokenKind::Ident || token.kind.is_keyword() {
            self.bump();
            return Ok(Ident {
                name: self.slice(token.span).to_string(),
                span: token.span,
            });
        }
        Err(self.unexpected(expected))
    }

    /// An identifier, a keyword or a string literal, as a field name.
    fn field_name(&mut self) -> PResult<Ident> {
        if matches!(self.peek(), TokenKind::Str | TokenKind::UnterminatedStr) {
            let literal = self.string()?;
            return Ok(Ident {
                name: literal.value,
                span: literal.span,
            });
        }
        self.word("a field name")
    }

    fn string(&mut self) -> PResult<StrLit> {
        let token = self.token();
        if !matches!(token.kind, TokenKind::Str | TokenKind::UnterminatedStr) {
            return Err(self.unexpected("a string literal"));
        }
        self.bump();
        let raw = self.slice(token.span);
        let value = decode_string(raw, token.span.start(), &mut self.errors);
        Ok(StrLit {
            value,
            span: token.span,
        })
    }

    fn int(&mut self) -> PResult<IntLit> {
        let token = self.token();
        if token.kind != TokenKind::Int {
            return Err(self.unexpected("an integer"));
        }
        self.bump();
        let value = match self.slice(token.span).parse::<i64>() {
            Ok(value) => value,
            Err(_) => {
                self.errors
                    .push(SyntaxError::IntegerTooLarge { span: token.span });
                0
            }
        };
        Ok(IntLit {
            value,
            span: token.span,
        })
    }

    /// Expects the closing bracket of `open`, reporting an unclosed bracket where the item ends.
    fn close(&mut self, closing: TokenKind, open: Span) -> PResult<Span> {
        if let Some(span) = self.eat(closing) {
            return Ok(span);
        }
        if self.at_item_start() || self.at(TokenKind::Semi) {
            let (delimiter, closing) = match closing {
                TokenKind::RParen => ('(', ')'),
                TokenKind::RBracket => ('[', ']'),
                _ => ('{', '}'),
            };
            let span = self.token().span;
            return Err(self.report(SyntaxError::UnclosedDelimiter {
                delimiter,
                open,
                span,
                closing,
            }));
        }
        let expected = format!("`,` or {}", closing.describe());
        Err(self.unexpected(&expected))
    }

    // ---- Expressions ----

    fn node(&mut self, kind: ExprKind, span: Span, child_depth: u32) -> PResult<Node> {
        let depth = child_depth + 1;
        if depth > MAX_TREE_DEPTH {
            return Err(self.report(SyntaxError::NestingTooDeep {
                limit: MAX_TREE_DEPTH as usize,
                span,
            }));
        }
        let id = ExprId(self.next_expr_id);
        // A node consumes at least one token of its own and offsets are `u32`, so this never
        // saturates on a real file.
        self.next_expr_id = self.next_expr_id.saturating_add(1);
        Ok(Node {
            expr: Expr { id, kind, span },
            depth,
        })
    }

    /// A full expression, `if` included.
    fn expr(&mut self) -> PResult<Node> {
        if self.nesting >= MAX_NESTING {
            let span = self.token().span;
            return Err(self.report(SyntaxError::NestingTooDeep {
                limit: MAX_NESTING,
                span,
            }));
        }
        self.nesting += 1;
        let result = if self.at(TokenKind::If) {
            self.if_expr()
        } else {
            self.or_expr()
        };
        self.nesting -= 1;
        result
    }

    fn if_expr(&mut self) -> PResult<Node> {
        let start = self.expect(TokenKind::If)?;
        let cond = self.expr()?;
        self.expect(TokenKind::Then)?;
        let then_branch = self.expr()?;
        self.expect(TokenKind::Else)?;
        let else_branch = self.expr()?;
        let depth = cond.depth.max(then_branch.depth).max(else_branch.depth);
        let span = self.span_from(start);
        let kind = ExprKind::If {
            cond: Box::new(cond.expr),
            then_branch: Box::new(then_branch.expr),
            else_branch: Box::new(else_branch.expr),
        };
        self.node(kind, span, depth)
    }

    /// A left-associative chain of the operators `ops` over operands parsed by `operand`.
    fn chain(
        &mut self,
        operand: fn(&mut Self) -> PResult<Node>,
        op_of: fn(TokenKind) -> Option<BinaryOp>,
    ) -> PResult<Node> {
        let mut lhs = operand(self)?;
        while let Some(op) = op_of(self.peek()) {
            self.bump();
            let rhs = operand(self)?;
            let span = lhs.expr.span.to(rhs.expr.span);
            let depth = lhs.depth.max(rhs.depth);
            let kind = ExprKind::Binary {
                op,
                lhs: Box::new(lhs.expr),
                rhs: Box::new(rhs.expr),
            };
            lhs = self.node(kind, span, depth)?;
        }
        Ok(lhs)
    }

    fn or_expr(&mut self) -> PResult<Node> {
        self.chain(Self::and_expr, |kind| {
            (kind == TokenKind::OrOr).then_some(BinaryOp::Or)
        })
    }

    fn and_expr(&mut self) -> PResult<Node> {
        self.chain(Self::compare_expr, |kind| {
            (kind == TokenKind::AndAnd).then_some(BinaryOp::And)
        })
    }

    fn compare_expr(&mut self) -> PResult<Node> {
        let lhs = self.sum_expr()?;
        let node = match self.peek() {
            TokenKind::Has => {
                self.bump();
                let attr = self.field_name()?;
                let span = lhs.expr.span.to(attr.span);
                self.node(
                    ExprKind::Has {
                        base: Box::new(lhs.expr),
                        attr,
                    },
                    span,
                    lhs.depth,
                )?
            }
            TokenKind::Like => {
                self.bump();
                let pattern = self.string()?;
                let span = lhs.expr.span.to(pattern.span);
                self.node(
                    ExprKind::Like {
                        base: Box::new(lhs.expr),
                        pattern,
                    },
                    span,
                    lhs.depth,
                )?
            }
            TokenKind::Is => {
                self.bump();
                let ty = self.ident_expecting("an entity type")?;
                let mut depth = lhs.depth;
                let mut in_expr = None;
                if self.eat(TokenKind::In).is_some() {
                    let target = self.sum_expr()?;
                    depth = depth.max(target.depth);
                    in_expr = Some(Box::new(target.expr));
                }
                let span = self.span_from(lhs.expr.span);
                self.node(
                    ExprKind::Is {
                        base: Box::new(lhs.expr),
                        ty,
                        in_expr,
                    },
                    span,
                    depth,
                )?
            }
            kind => match comparison_op(kind) {
                Some(op) => {
                    self.bump();
                    let rhs = self.sum_expr()?;
                    let span = lhs.expr.span.to(rhs.expr.span);
                    let depth = lhs.depth.max(rhs.depth);
                    let kind = ExprKind::Binary {
                        op,
                        lhs: Box::new(lhs.expr),
                        rhs: Box::new(rhs.expr),
                    };
                    self.node(kind, span, depth)?
                }
                None => return Ok(lhs),
            },
        };
        let next = self.peek();
        if comparison_op(next).is_some()
            || matches!(next, TokenKind::Has | TokenKind::Like | TokenKind::Is)
        {
            let second = self.token().span;
            return Err(self.report(SyntaxError::ChainedComparison {
                first: node.expr.span,
                second,
            }));
        }
        Ok(node)
    }

    fn sum_expr(&mut self) -> PResult<Node> {
        self.chain(Self::product_expr, |kind| match kind {
            TokenKind::Plus => Some(BinaryOp::Add),
            TokenKind::Minus => Some(BinaryOp::Sub),
            _ => None,
        })
    }

    fn product_expr(&mut self) -> PResult<Node> {
        self.chain(Self::unary_expr, |kind| {
            (kind == TokenKind::Star).then_some(BinaryOp::Mul)
        })
    }

    fn unary_expr(&mut self) -> PResult<Node> {
        let mut ops = Vec::new();
        loop {
            let op = match self.peek() {
                TokenKind::Bang => UnaryOp::Not,
                TokenKind::Minus => UnaryOp::Neg,
                _ => break,
            };
            ops.push((op, self.bump().span));
            if ops.len() > MAX_TREE_DEPTH as usize {
                let span = self.token().span;
                return Err(self.report(SyntaxError::NestingTooDeep {
                    limit: MAX_TREE_DEPTH as usize,
                    span,
                }));
            }
        }
        let mut node = self.postfix_expr()?;
        while let Some((op, op_span)) = ops.pop() {
            let span = op_span.to(node.expr.span);
            node = self.node(
                ExprKind::Unary {
                    op,
                    operand: Box::new(node.expr),
                },
                span,
                node.depth,
            )?;
        }
        Ok(node)
    }

    fn postfix_expr(&mut self) -> PResult<Node> {
        let mut node = self.primary()?;
        while self.eat(TokenKind::Dot).is_some() {
            let name = self.field_name()?;
            if self.at(TokenKind::LParen) {
                let (args, depth) = self.args(TokenKind::LParen, TokenKind::RParen)?;
                let span = self.span_from(node.expr.span);
                let kind = ExprKind::MethodCall {
                    receiver: Box::new(node.expr),
                    method: name,
                    args,
                };
                node = self.node(kind, span, node.depth.max(depth))?;
            } else {
                let span = node.expr.span.to(name.span);
                node = self.node(
                    ExprKind::Attr {
                        base: Box::new(node.expr),
                        attr: name,
                    },
                    span,
                    node.depth,
                )?;
            }
        }
        Ok(node)
    }

    /// A bracketed, comma-separated list of expressions; returns them and their greatest depth.
    fn args(&mut self, open: TokenKind, closing: TokenKind) -> PResult<(Vec<Expr>, u32)> {
        let open_span = self.expect(open)?;
        let mut args = Vec::new();
        let mut depth = 0;
        while !self.at(closing) {
            let arg = self.expr()?;
            depth = depth.max(arg.depth);
            args.push(arg.expr);
            if self.eat(TokenKind::Comma).is_none() {
                break;
            }
        }
        self.close(closing, open_span)?;
        Ok((args, depth))
    }

    fn primary(&mut self) -> PResult<Node> {
        let token = self.token();
        let span = token.span;
        match token.kind {
            TokenKind::True | TokenKind::False => {
                self.bump();
                self.node(ExprKind::Bool(token.kind == TokenKind::True), span, 0)
            }
            TokenKind::Int => {
                let literal = self.int()?;
                self.node(ExprKind::Int(literal.value), span, 0)
            }
            TokenKind::Str | TokenKind::UnterminatedStr => {
                let literal = self.string()?;
                self.node(ExprKind::Str(literal.value), span, 0)
            }
            TokenKind::Principal | TokenKind::Action | TokenKind::Resource | TokenKind::Context => {
                self.bump();
                let var = match token.kind {
                    TokenKind::Principal => Var::Principal,
                    TokenKind::Action => Var::Action,
                    TokenKind::Resource => Var::Resource,
                    _ => Var::Context,
                };
                self.node(ExprKind::Var(var), span, 0)
            }
            TokenKind::Ident => {
                let callee = self.ident()?;
                if !self.at(TokenKind::LParen) {
                    let found = format!("identifier `{}`", callee.name);
                    let help = format!(
                        "a bare name is not a value: the request is `principal`, `action`, `resource` and `context`; write `\"{}\"` for a string or `{}(\"id\")` for an entity",
                        callee.name, callee.name
                    );
                    return Err(self.report(SyntaxError::UnexpectedToken {
                        expected: "an expression".to_string(),
                        found,
                        span,
                        help: Some(help),
                    }));
                }
                let (args, depth) = self.args(TokenKind::LParen, TokenKind::RParen)?;
                let span = self.span_from(span);
                self.node(ExprKind::Call { callee, args }, span, depth)
            }
            TokenKind::LBracket => {
                let (elements, depth) = self.args(TokenKind::LBracket, TokenKind::RBracket)?;
                let span = self.span_from(span);
                self.node(ExprKind::Set(elements), span, depth)
            }
            TokenKind::LBrace => self.record_literal(),
            TokenKind::LParen => {
                self.bump();
                let inner = self.expr()?;
                self.close(TokenKind::RParen, span)?;
                let outer = self.span_from(span);
                self.node(ExprKind::Paren(Box::new(inner.expr)), outer, inner.depth)
            }
            TokenKind::If => Err(self.report(SyntaxError::UnparenthesizedIf { span })),
            _ => Err(self.unexpected("an expression")),
        }
    }

    /// After the name `first` (every identifier is read through here): when `::` follows (Cedar's `User::"alice"`, `App::User::"alice"`,
    /// `Action::"read"`), consumes the whole path and reports how authz writes it.
    fn refuse_cedar_path(&mut self, first: &Ident) -> PResult<()> {
        let double_colon = |parser: &Self, at: usize| {
            let (a, b) = (parser.token_at(at), parser.token_at(at + 1));
            a.kind == TokenKind::Colon && b.kind == TokenKind::Colon && a.span.end == b.span.start
        };
        if !double_colon(self, self.pos) {
            return Ok(());
        }
        let mut names = vec![first.name.clone()];
        let mut id = None;
        while double_colon(self, self.pos) {
            self.bump();
            self.bump();
            match self.peek() {
                TokenKind::Ident => names.push(self.bump_text()),
                TokenKind::Str => {
                    id = Some(self.string()?.value);
                    break;
                }
                _ => break,
            }
        }
        let span = self.span_from(first.span);
        let written = self.slice(span).to_string();
        let last = names.last().cloned().unwrap_or_default();
        let namespaced = names.len() > 1;
        let (suggestion, mut help) = match id {
            Some(id) if last == "Action" => (
                format!("Action({})", quote(&id)),
                format!(
                    "authz writes an entity as `Type(\"id\")`; in a scope, name the action: `action: {id}`"
                ),
            ),
            Some(id) => (
                format!("{last}({})", quote(&id)),
                "authz writes an entity as `Type(\"id\")`".to_string(),
            ),
            None => (
                last.clone(),
                "authz names a type by its name alone".to_string(),
            ),
        };
        if namespaced {
            help.push_str("; authz has no namespaces, so a type is named without its path");
        }
        Err(self.report(SyntaxError::CedarPath {
            written,
            help,
            span,
            suggestion,
        }))
    }

    /// Consumes the current token and gives its text.
    fn bump_text(&mut self) -> String {
        let token = self.bump();
        self.slice(token.span).to_string()
    }

    fn record_literal(&mut self) -> PResult<Node> {
        let open = self.expect(TokenKind::LBrace)?;
        let mut fields = Vec::new();
        let mut depth = 0;
        while !self.at(TokenKind::RBrace) {
            let name = self.field_name()?;
            self.expect(TokenKind::Colon)?;
            let value = self.expr()?;
            depth = depth.max(value.depth);
            fields.push((name, value.expr));
            if self.eat(TokenKind::Comma).is_none() {
                break;
            }
        }
        self.close(TokenKind::RBrace, open)?;
        let span = self.span_from(open);
        self.node(ExprKind::Record(fields), span, depth)
    }
}

fn comparison_op(kind: TokenKind) -> Option<BinaryOp> {
    Some(match kind {
        TokenKind::EqEq => BinaryOp::Eq,
        TokenKind::NotEq => BinaryOp::Ne,
        TokenKind::Lt => BinaryOp::Lt,
        TokenKind::Le => BinaryOp::Le,
        TokenKind::Gt => BinaryOp::Gt,
        TokenKind::Ge => BinaryOp::Ge,
        TokenKind::In => BinaryOp::In,
        _ => return None,
    })
}

/// The item keyword a misspelled word most likely meant: same letters in another case, or at most
/// two edits away.
fn closest_item_keyword(word: &str) -> Option<&'static str> {
    let lower = word.to_ascii_lowercase();
    ITEM_KEYWORDS
        .iter()
        .map(|keyword| (edit_distance(&lower, keyword), *keyword))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, keyword)| keyword)
        .or(match lower.as_str() {
            "allow" => Some("permit"),
            "deny" => Some("forbid"),
            _ => None,
        })
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = i;
        let mut next = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let above = row.get(j + 1).copied().unwrap_or(usize::MAX);
            let left = next.last().copied().unwrap_or(usize::MAX);
            let substitute = diagonal + usize::from(ca != *cb);
            next.push(
                substitute
                    .min(above.saturating_add(1))
                    .min(left.saturating_add(1)),
            );
            diagonal = above;
        }
        row = next;
    }
    row.last().copied().unwrap_or(0)
}
