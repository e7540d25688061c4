//! The canonical formatter: it prints a syntax tree back to text in the one layout that
//! `authz fmt` produces, keeping every comment of the file.
//!
//! The rules, which hold for every file without syntax errors:
//!
//! - Items start at column 0 and are indented with 4 spaces. Between two items there is at most
//!   one blank line: one is kept where the source had one (or more), none is ever added. The same
//!   holds between comments that stand on their own lines between items. The file has no leading
//!   blank lines, no trailing whitespace and ends with exactly one line break.
//! - Annotations stand each on its own line before their item: `@id("owners-read")`.
//! - `entity User in Team { a: String, b?: Long }` and `entity A in [B, C];`: a single parent is
//!   written without brackets, and an entity with a record has no `;` after it. A record type stays
//!   on one line (with a space inside each brace) when the line fits in 100 columns; otherwise it
//!   has one field per line, each followed by a comma, and the closing brace on its own line.
//!   `action read, list: User | Service -> Order with { mfa: Bool };` and
//!   `route GET "/orders/{id}" => read Order(id);` follow the same rules; routes are not aligned.
//! - A policy's head `permit principal: User, action: read, resource: Order` is one line when it
//!   fits, otherwise one scope part per line, indented. Each `when` or `unless` clause starts its
//!   own line at column 0, and the final `;` ends the last line.
//! - A chain of `&&` or a chain of `||` that does not fit on its line is broken before each of its
//!   operators, the continuation lines indented 4 spaces more than the line that holds the chain's
//!   start. An operand that is itself such a chain (bare or in parentheses) and still too long
//!   breaks the same way, 4 spaces further in than its parent chain's operators:
//!   `(a && b) || c` becomes `(a` / `        && b)` / `    || c`. Set literals, record literals
//!   and argument lists that do not fit put one element per line with a trailing comma. A `limit`
//!   is one line when it fits, otherwise its `per` keys and its `when` clause go on indented lines
//!   of their own. Nothing else breaks, so a line with a long unbreakable operand may pass 100.
//! - Expressions have one space around binary operators and keywords (`has`, `like`, `is`, `in`,
//!   `if`/`then`/`else`), none inside parentheses, brackets and argument lists or after `!` and
//!   `-`, and `{ a: 1 }` spaces inside the braces of a record literal. Strings are re-escaped
//!   canonically: `\"`, `\\`, `\n`, `\r`, `\t`, `\0`, `\u{..}` for other control characters and
//!   everything else literally. A field name (after `.` or `has`, in records, of methods) is
//!   printed as written when it is an identifier or a keyword, otherwise as a string literal.
//! - The author's parentheses ([`ast::ExprKind::Paren`]) are kept. Parentheses are added wherever
//!   the tree could not otherwise be printed so that it parses back to itself (an operand that
//!   binds more loosely than its position allows, such as `(a || b) && c`, `(if a then b else c)
//!   + 1` or `(a == b) == c`), so a tree built by hand is printed as re-parseable text. Trees the
//!   parser cannot produce have no faithful text: a negative [`ast::ExprKind::Int`] is printed as
//!   `-n` (which parses as a negation) and [`ast::ExprKind::Error`] as its source text.
//!
//! Comments: a comment before an item (after the previous item's line) is printed on its own line
//! before it; the first comment after an item on the item's last line stays at the end of that
//! line; comments after the last item stay at the end. A comment inside an item stays between
//! the same names, literals and brackets, though it may trade places with the punctuation next to
//! it: one just after an infix operator or keyword (`&&`, `==`, `in`, `->`, `then`) moves before
//! it, one just before a comma, colon or `;` moves after it. A comment that shared its line with
//! code ends the output line it lands on, and one that stood on its own line gets its own line.
//! Either way the layout breaks after the comment, so a group (a record, a list, an operator
//! chain) that holds a comment is laid out broken, and the code that follows a comment in the
//! middle of a line continues 4 spaces further in. Comments between the last token of an item
//! and its `;` move after the `;`. A comment's text is kept as written, without trailing
//! whitespace. Because the placement depends only on which tokens a comment stands between,
//! formatting formatted text changes nothing.
//!
//! The layout engine is Wadler's pretty printer in the style of Prettier: an item is first turned
//! into a document of text, line breaks and groups; a group is printed flat when it fits in the
//! rest of the line and broken otherwise.

use crate::ast;
use crate::ast::{
    ActionScopeKind, BinaryOp, ConditionKind, Effect, ExprKind, ItemKind, Precedence, RouteArg,
    ScopeKind, UnaryOp,
};
use crate::diagnostics::SyntaxError;

/// The column limit that decides whether a group stays on one line.
const WIDTH: usize = 100;

/// The indentation step.
const INDENT: usize = 4;

/// Parses `text` and formats it canonically, or returns its syntax errors.
pub fn format_source(text: &str) -> Result<String, Vec<SyntaxError>> {
    let parse = crate::parser::parse(text);
    if !parse.errors.is_empty() {
        return Err(parse.errors);
    }
    Ok(format_file(&parse.file, text))
}

/// Formats a parsed file canonically. `source` is the text the tree was parsed from; it is read
/// only to place comments and to keep blank lines, so a tree built by hand may pass `""`.
///
/// The caller formats only files without syntax errors; for others the result keeps the comments
/// but loses the items that failed to parse.
pub fn format_file(file: &ast::File, source: &str) -> String {
    let mut comments: Vec<&ast::Comment> = file.comments.iter().collect();
    comments.sort_by_key(|comment| comment.span.start);
    let mut writer = FileWriter {
        source,
        out: String::new(),
        last_end: None,
    };
    let mut next_comment = 0;
    for (index, item) in file.items.iter().enumerate() {
        while let Some(comment) = comments.get(next_comment) {
            if comment.span.start >= item.span.start {
                break;
            }
            writer.own_line(
                comment_text(comment),
                comment.span.start(),
                comment.span.end(),
            );
            next_comment += 1;
        }
        let interior_start = next_comment;
        while let Some(comment) = comments.get(next_comment) {
            if comment.span.start >= item.span.end {
                break;
            }
            next_comment += 1;
        }
        let interior = comments
            .get(interior_start..next_comment)
            .unwrap_or_default();
        let (text, mut after) = format_item(item, interior, source);
        let mut end = item.span.end();
        let next_item_start = file.items.get(index + 1).map(|next| next.span.start);
        if let Some(comment) = comments.get(next_comment) {
            let before_next = next_item_start.is_none_or(|start| comment.span.start < start);
            let same_line = source
                .get(item.span.end()..comment.span.start())
                .is_some_and(|gap| !gap.contains('\n'));
            if before_next && same_line {
                after.push(comment);
                end = end.max(comment.span.end());
                next_comment += 1;
            }
        }
        writer.item(&text, &after, item.span.start(), end);
    }
    for comment in comments.get(next_comment..).unwrap_or_default() {
        writer.own_line(
            comment_text(comment),
            comment.span.start(),
            comment.span.end(),
        );
    }
    writer.out
}

/// Appends items and top-level comments to the output, one per line, keeping blank lines.
struct FileWriter<'s> {
    source: &'s str,
    out: String,
    /// Where in the source the last written element ended.
    last_end: Option<usize>,
}

impl FileWriter<'_> {
    /// Writes one blank line when the source has one between the last element and `start`.
    fn separate(&mut self, start: usize) {
        let Some(last_end) = self.last_end else {
            return;
        };
        let blank = self
            .source
            .get(last_end..start)
            .is_some_and(|gap| gap.matches('\n').count() >= 2);
        if blank && !self.out.is_empty() {
            self.out.push('\n');
        }
    }

    fn own_line(&mut self, text: &str, start: usize, end: usize) {
        self.separate(start);
        self.out.push_str(text);
        self.out.push('\n');
        self.last_end = Some(end);
    }

    /// Writes an item's text followed by the comments that end its last line: the first on that
    /// line, the others on lines of their own.
    fn item(&mut self, text: &str, after: &[&ast::Comment], start: usize, end: usize) {
        self.separate(start);
        self.out.push_str(text);
        for (index, comment) in after.iter().enumerate() {
            self.out.push(if index == 0 { ' ' } else { '\n' });
            self.out.push_str(comment_text(comment));
        }
        self.out.push('\n');
        self.last_end = Some(end);
    }
}

/// The text of a comment as printed: without trailing whitespace (or a carriage return).
fn comment_text(comment: &ast::Comment) -> &str {
    comment.text.trim_end()
}

/// Formats one item; returns its text and the comments inside it that found no place before
/// its last token, which go after it.
fn format_item<'c>(
    item: &ast::Item,
    comments: &'c [&'c ast::Comment],
    source: &str,
) -> (String, Vec<&'c ast::Comment>) {
    let mut builder = Builder {
        source,
        comments,
        next_comment: 0,
    };
    let doc = builder.item(item);
    let text = print(&doc);
    let rest = comments.get(builder.next_comment..).unwrap_or_default();
    (text, rest.to_vec())
}

// ---- Documents ----

/// A document: text with possible line breaks, as in Wadler's "A prettier printer".
#[derive(Debug)]
enum Doc {
    /// Text without line breaks.
    Text(String),
    /// One space, left out at the start of a line and after a comment.
    Space,
    /// A space when its group is flat, a line break when it is broken.
    Line,
    /// Nothing when its group is flat, a line break when it is broken.
    SoftLine,
    /// Always a line break.
    HardLine,
    /// Text printed only when its group is broken, such as a trailing comma.
    IfBreak(&'static str),
    /// Its contents, with line breaks indented one step further.
    Nest(Vec<Doc>),
    /// Contents printed flat when they fit, broken otherwise; `true` when they hold a forced
    /// break, so can never be flat.
    Group(Vec<Doc>, bool),
    /// A comment that shared its line with code in the source.
    TrailingComment(String),
    /// A comment that stood on its own line in the source.
    OwnLineComment(String),
}

impl Doc {
    /// Whether this document forces a line break.
    fn is_hard(&self) -> bool {
        match self {
            Doc::HardLine | Doc::TrailingComment(_) | Doc::OwnLineComment(_) => true,
            Doc::Nest(docs) => docs.iter().any(Doc::is_hard),
            Doc::Group(_, hard) => *hard,
            Doc::Text(_) | Doc::Space | Doc::Line | Doc::SoftLine | Doc::IfBreak(_) => false,
        }
    }
}

fn group(docs: Vec<Doc>) -> Doc {
    let hard = docs.iter().any(Doc::is_hard);
    Doc::Group(docs, hard)
}

fn text(text: impl Into<String>) -> Doc {
    Doc::Text(text.into())
}

// ---- Building documents ----

/// Turns one item into a document, placing the item's comments between its tokens.
///
/// Every token that has a position in the tree (or takes the position of the node it
/// introduces, like `in` before a parent list) first emits the comments that stand before that
/// position; a line break between list elements or operator-chain operands first emits the
/// comments that shared a line with the code before it, so that they stay at the end of that
/// line.
struct Builder<'c, 's> {
    source: &'s str,
    /// The comments inside the item, by position.
    comments: &'c [&'c ast::Comment],
    next_comment: usize,
}

impl Builder<'_, '_> {
    /// Whether the comment had code before it on its line.
    fn is_trailing(&self, comment: &ast::Comment) -> bool {
        let Some(before) = self.source.get(..comment.span.start()) else {
            return false;
        };
        let line_start = before.rfind('\n').map_or(0, |index| index + 1);
        before
            .get(line_start..)
            .is_some_and(|line| !line.trim().is_empty())
    }

    fn comment_doc(&self, comment: &ast::Comment) -> Doc {
        let text = comment_text(comment).to_string();
        if self.is_trailing(comment) {
            Doc::TrailingComment(text)
        } else {
            Doc::OwnLineComment(text)
        }
    }

    /// Emits every pending comment that starts before `anchor`.
    fn comments_before(&mut self, out: &mut Vec<Doc>, anchor: u32) {
        while let Some(comment) = self.comments.get(self.next_comment) {
            if comment.span.start >= anchor {
                return;
            }
            out.push(self.comment_doc(comment));
            self.next_comment += 1;
        }
    }

    /// Emits the next pending comment when it starts before `anchor` and shared its line with
    /// code, so that it stays at the end of the current line. Only one can: the comments after it
    /// stood on lines of their own, whatever preceded them there.
    fn trailing_comment_before(&mut self, out: &mut Vec<Doc>, anchor: u32) {
        let Some(comment) = self.comments.get(self.next_comment) else {
            return;
        };
        if comment.span.start >= anchor || !self.is_trailing(comment) {
            return;
        }
        out.push(Doc::TrailingComment(comment_text(comment).to_string()));
        self.next_comment += 1;
    }

    /// Emits the pending comments before a closing bracket at `anchor`, inside the bracket's
    /// indentation: the first stays at the end of the line when it shared its line with code,
    /// and every other gets a line of its own there.
    fn comments_before_closer(&mut self, out: &mut Vec<Doc>, anchor: u32) {
        self.trailing_comment_before(out, anchor);
        while let Some(comment) = self.comments.get(self.next_comment) {
            if comment.span.start >= anchor {
                return;
            }
            out.push(Doc::HardLine);
            out.push(Doc::OwnLineComment(comment_text(comment).to_string()));
            self.next_comment += 1;
        }
    }

    /// A token standing at (or introducing the node at) `anchor`.
    fn token(&mut self, out: &mut Vec<Doc>, anchor: u32, token: impl Into<String>) {
        self.comments_before(out, anchor);
        out.push(text(token));
    }

    /// A line break before the node at `next`.
    fn line_before(&mut self, out: &mut Vec<Doc>, next: u32, line: Doc) {
        self.trailing_comment_before(out, next);
        out.push(line);
    }

    // ---- Items ----

    fn item(&mut self, item: &ast::Item) -> Vec<Doc> {
        let mut out = Vec::new();
        let keyword_anchor = keyword_anchor(item);
        for (index, annotation) in item.annotations.iter().enumerate() {
            self.token(
                &mut out,
                annotation.span.start,
                format!("@{}", annotation.name.name),
            );
            if let Some(value) = &annotation.value {
                out.push(text("("));
                self.token(&mut out, value.span.start, quote(&value.value));
                out.push(text(")"));
            }
            let next = item
                .annotations
                .get(index + 1)
                .map_or(keyword_anchor, |next| next.span.start);
            self.line_before(&mut out, next, Doc::HardLine);
        }
        // Comments before the keyword stand outside every group, so that they break none: formatted
        // again, those before an item without annotations are outside the item.
        self.comments_before(&mut out, keyword_anchor);
        match &item.kind {
            ItemKind::Entity(entity) => self.entity(&mut out, entity, keyword_anchor),
            ItemKind::Action(action) => self.action(&mut out, action, keyword_anchor),
            ItemKind::Route(route) => self.route(&mut out, route, keyword_anchor),
            ItemKind::Policy(policy) => self.policy(&mut out, policy),
            ItemKind::Limit(limit) => self.limit(&mut out, limit, keyword_anchor),
            ItemKind::TypeAlias(alias) => self.type_alias(&mut out, alias, keyword_anchor),
        }
        out
    }

    fn entity(&mut self, out: &mut Vec<Doc>, entity: &ast::EntityDecl, keyword_anchor: u32) {
        let mut head = Vec::new();
        self.token(&mut head, keyword_anchor, "entity");
        head.push(Doc::Space);
        self.ident(&mut head, &entity.name);
        self.parents(&mut head, &entity.parents);
        out.extend(head);
        match &entity.attrs {
            Some(record) => {
                out.push(Doc::Space);
                self.record_type(out, record);
            }
            None => out.push(text(";")),
        }
    }

    fn action(&mut self, out: &mut Vec<Doc>, action: &ast::ActionDecl, keyword_anchor: u32) {
        let mut head = Vec::new();
        self.token(&mut head, keyword_anchor, "action");
        head.push(Doc::Space);
        self.separated(&mut head, &action.names, ",");
        self.parents(&mut head, &action.groups);
        let Some(signature) = &action.signature else {
            out.extend(head);
            out.push(text(";"));
            return;
        };
        head.push(text(":"));
        head.push(Doc::Space);
        self.separated(&mut head, &signature.principals, " |");
        head.push(Doc::Space);
        self.token(&mut head, first_start(&signature.resources), "->");
        head.push(Doc::Space);
        self.separated(&mut head, &signature.resources, " |");
        if let Some(context) = &signature.context {
            head.push(Doc::Space);
            self.token(&mut head, context.span().start, "with");
        }
        out.extend(head);
        if let Some(context) = &signature.context {
            out.push(Doc::Space);
            self.type_expr(out, context);
        }
        out.push(text(";"));
    }

    /// ` in Parent` or ` in [P1, P2]`; nothing for no parents.
    fn parents(&mut self, out: &mut Vec<Doc>, parents: &[ast::Ident]) {
        let Some(first) = parents.first() else {
            return;
        };
        out.push(Doc::Space);
        self.token(out, first.span.start, "in");
        out.push(Doc::Space);
        if parents.len() == 1 {
            self.ident(out, first);
        } else {
            self.token(out, first.span.start, "[");
            self.separated(out, parents, ",");
            out.push(text("]"));
        }
    }

    fn type_alias(&mut self, out: &mut Vec<Doc>, alias: &ast::TypeAliasDecl, keyword_anchor: u32) {
        self.token(out, keyword_anchor, "type");
        out.push(Doc::Space);
        self.ident(out, &alias.name);
        out.push(Doc::Space);
        self.token(out, alias.ty.span().start, "=");
        out.push(Doc::Space);
        self.type_expr(out, &alias.ty);
        out.push(text(";"));
    }

    fn route(&mut self, out: &mut Vec<Doc>, route: &ast::RouteDecl, keyword_anchor: u32) {
        let mut docs = Vec::new();
        self.token(&mut docs, keyword_anchor, "route");
        docs.push(Doc::Space);
        self.ident(&mut docs, &route.method);
        docs.push(Doc::Space);
        self.token(&mut docs, route.path.span.start, quote(&route.path.value));
        docs.push(Doc::Space);
        self.token(&mut docs, route.action.span.start, "=>");
        docs.push(Doc::Space);
        self.ident(&mut docs, &route.action);
        docs.push(Doc::Space);
        self.ident(&mut docs, &route.resource_type);
        docs.push(text("("));
        match &route.resource_id {
            RouteArg::Param(param) => self.ident(&mut docs, param),
            RouteArg::Literal(literal) => {
                self.token(&mut docs, literal.span.start, quote(&literal.value));
            }
        }
        docs.push(text(")"));
        out.extend(docs);
        out.push(text(";"));
    }

    fn policy(&mut self, out: &mut Vec<Doc>, policy: &ast::Policy) {
        let mut head = Vec::new();
        let effect = match policy.effect {
            Effect::Permit => "permit",
            Effect::Forbid => "forbid",
        };
        self.token(&mut head, policy.effect_span.start, effect);
        head.push(Doc::Space);
        self.scope(&mut head, &policy.principal, "principal");
        head.push(text(","));
        let mut scope = Vec::new();
        self.line_before(&mut scope, policy.action.span.start, Doc::Line);
        self.action_scope(&mut scope, &policy.action);
        scope.push(text(","));
        self.line_before(&mut scope, policy.resource.span.start, Doc::Line);
        self.scope(&mut scope, &policy.resource, "resource");
        head.push(Doc::Nest(scope));
        out.push(group(head));
        for condition in &policy.conditions {
            self.line_before(out, condition.keyword_span.start, Doc::HardLine);
            let keyword = match condition.kind {
                ConditionKind::When => "when",
                ConditionKind::Unless => "unless",
            };
            self.token(out, condition.keyword_span.start, keyword);
            out.push(Doc::Space);
            // Comments after the keyword go here, outside the condition's groups.
            self.comments_before(out, condition.expr.span.start);
            self.expr(out, &condition.expr);
        }
        out.push(text(";"));
    }

    fn scope(&mut self, out: &mut Vec<Doc>, scope: &ast::Scope, keyword: &str) {
        self.token(out, scope.span.start, keyword);
        match &scope.kind {
            ScopeKind::Any => {
                out.push(text(":"));
                out.push(Doc::Space);
                self.token(out, scope.span.end.saturating_sub(1), "*");
            }
            ScopeKind::Is(ty) => {
                out.push(text(":"));
                out.push(Doc::Space);
                self.ident(out, ty);
            }
            ScopeKind::IsIn(ty, entity) => {
                out.push(text(":"));
                out.push(Doc::Space);
                self.ident(out, ty);
                out.push(Doc::Space);
                self.token(out, entity.span.start, "in");
                out.push(Doc::Space);
                self.entity_ref(out, entity);
            }
            ScopeKind::Eq(entity) => {
                out.push(Doc::Space);
                self.token(out, entity.span.start, "==");
                out.push(Doc::Space);
                self.entity_ref(out, entity);
            }
            ScopeKind::In(entity) => {
                out.push(Doc::Space);
                self.token(out, entity.span.start, "in");
                out.push(Doc::Space);
                self.entity_ref(out, entity);
            }
        }
    }

    fn entity_ref(&mut self, out: &mut Vec<Doc>, entity: &ast::EntityRef) {
        self.ident(out, &entity.ty);
        out.push(text("("));
        self.token(out, entity.id.span.start, quote(&entity.id.value));
        out.push(text(")"));
    }

    fn action_scope(&mut self, out: &mut Vec<Doc>, scope: &ast::ActionScope) {
        self.token(out, scope.span.start, "action");
        out.push(text(":"));
        out.push(Doc::Space);
        match &scope.kind {
            ActionScopeKind::Any => self.token(out, scope.span.end.saturating_sub(1), "*"),
            ActionScopeKind::One(action) => self.ident(out, action),
            ActionScopeKind::AnyOf(actions) => {
                self.token(out, first_start(actions), "[");
                self.separated(out, actions, ",");
                out.push(text("]"));
            }
        }
    }

    fn limit(&mut self, out: &mut Vec<Doc>, limit: &ast::LimitDecl, keyword_anchor: u32) {
        let mut docs = Vec::new();
        self.token(&mut docs, keyword_anchor, "limit");
        docs.push(Doc::Space);
        self.token(&mut docs, limit.name.span.start, quote(&limit.name.value));
        docs.push(Doc::Space);
        self.token(
            &mut docs,
            limit.count.span.start,
            limit.count.value.to_string(),
        );
        docs.push(Doc::Space);
        self.token(&mut docs, limit.unit.span.start, "per");
        docs.push(Doc::Space);
        if let Some(period) = &limit.period {
            self.token(&mut docs, period.span.start, period.value.to_string());
            docs.push(Doc::Space);
        }
        self.ident(&mut docs, &limit.unit);
        if let Some(burst) = &limit.burst {
            docs.push(Doc::Space);
            self.token(&mut docs, burst.span.start, "burst");
            docs.push(Doc::Space);
            self.token(&mut docs, burst.span.start, burst.value.to_string());
        }
        if let Some(on_attempts) = &limit.on_attempts {
            docs.push(Doc::Space);
            self.token(&mut docs, on_attempts.start, "on attempts");
        }
        let mut rest = Vec::new();
        if let Some(first) = limit.keys.first() {
            self.line_before(&mut rest, first.span.start, Doc::Line);
            self.token(&mut rest, first.span.start, "per");
            rest.push(Doc::Space);
            for (index, key) in limit.keys.iter().enumerate() {
                if index > 0 {
                    rest.push(text(","));
                    rest.push(Doc::Space);
                }
                self.expr(&mut rest, key);
            }
        }
        if let Some(condition) = &limit.condition {
            self.line_before(&mut rest, condition.span.start, Doc::Line);
            self.token(&mut rest, condition.span.start, "when");
            rest.push(Doc::Space);
            self.expr(&mut rest, condition);
        }
        docs.push(Doc::Nest(rest));
        docs.push(text(";"));
        out.push(group(docs));
    }

    // ---- Names and types ----

    fn ident(&mut self, out: &mut Vec<Doc>, ident: &ast::Ident) {
        self.token(out, ident.span.start, ident.name.as_str());
    }

    /// Names separated by `separator` and a space, on one line.
    fn separated(&mut self, out: &mut Vec<Doc>, names: &[ast::Ident], separator: &str) {
        for (index, name) in names.iter().enumerate() {
            if index > 0 {
                out.push(text(separator));
                out.push(Doc::Space);
            }
            self.ident(out, name);
        }
    }

    fn record_type(&mut self, out: &mut Vec<Doc>, record: &ast::RecordType) {
        let close = record.span.end.saturating_sub(1);
        self.delimited(
            out,
            ("{", record.span.start, "}", close),
            true,
            &record.fields,
            |field| field.name.span.start,
            |builder, out, field| {
                builder.token(out, field.name.span.start, field_name(&field.name.name));
                if field.optional {
                    out.push(text("?"));
                }
                out.push(text(":"));
                out.push(Doc::Space);
                builder.type_expr(out, &field.ty);
            },
        );
    }

    fn type_expr(&mut self, out: &mut Vec<Doc>, ty: &ast::TypeExpr) {
        match ty {
            ast::TypeExpr::Named(name) => self.ident(out, name),
            ast::TypeExpr::Set(element, span) => {
                self.token(out, span.start, "Set");
                out.push(text("<"));
                self.type_expr(out, element);
                out.push(text(">"));
            }
            ast::TypeExpr::Record(record) => self.record_type(out, record),
        }
    }

    /// A bracketed, comma-separated list that is one line when it fits and one element per line,
    /// each with a comma, otherwise. `brackets` holds the opening bracket and its position and the
    /// closing bracket and its position; `padded` puts spaces inside the brackets on one line.
    fn delimited<T>(
        &mut self,
        out: &mut Vec<Doc>,
        brackets: (&str, u32, &str, u32),
        padded: bool,
        elements: &[T],
        start_of: impl Fn(&T) -> u32,
        mut element: impl FnMut(&mut Self, &mut Vec<Doc>, &T),
    ) {
        let (open, open_at, close, close_at) = brackets;
        let mut docs = Vec::new();
        self.token(&mut docs, open_at, open);
        let line = || if padded { Doc::Line } else { Doc::SoftLine };
        let mut inner = Vec::new();
        for (index, item) in elements.iter().enumerate() {
            if index > 0 {
                inner.push(text(","));
            }
            let separator = if index == 0 { line() } else { Doc::Line };
            self.line_before(&mut inner, start_of(item), separator);
            element(self, &mut inner, item);
        }
        if !elements.is_empty() {
            inner.push(Doc::IfBreak(","));
        }
        self.comments_before_closer(&mut inner, close_at);
        docs.push(Doc::Nest(inner));
        docs.push(if elements.is_empty() {
            Doc::SoftLine
        } else {
            line()
        });
        docs.push(text(close));
        out.push(group(docs));
    }

    // ---- Expressions ----

    /// An expression in a position that takes any expression.
    fn expr(&mut self, out: &mut Vec<Doc>, expr: &ast::Expr) {
        let start = expr.span.start;
        let close = expr.span.end.saturating_sub(1);
        match &expr.kind {
            ExprKind::Bool(value) => self.token(out, start, if *value { "true" } else { "false" }),
            ExprKind::Int(value) => self.token(out, start, value.to_string()),
            ExprKind::Str(value) => self.token(out, start, quote(value)),
            ExprKind::Var(var) => self.token(out, start, var.keyword()),
            ExprKind::Call { callee, args } => {
                self.ident(out, callee);
                self.arguments(out, args, close);
            }
            ExprKind::Attr { base, attr } => {
                self.operand(out, base, Precedence::Postfix);
                self.token(out, attr.span.start, ".");
                out.push(text(field_name(&attr.name)));
            }
            ExprKind::MethodCall {
                receiver,
                method,
                args,
            } => {
                self.operand(out, receiver, Precedence::Postfix);
                self.token(out, method.span.start, ".");
                out.push(text(field_name(&method.name)));
                self.arguments(out, args, close);
            }
            ExprKind::Has { base, attr } => {
                self.operand(out, base, Precedence::Sum);
                out.push(Doc::Space);
                self.token(out, attr.span.start, "has");
                out.push(Doc::Space);
                out.push(text(field_name(&attr.name)));
            }
            ExprKind::Like { base, pattern } => {
                self.operand(out, base, Precedence::Sum);
                out.push(Doc::Space);
                self.token(out, pattern.span.start, "like");
                out.push(Doc::Space);
                out.push(text(quote(&pattern.value)));
            }
            ExprKind::Is { base, ty, in_expr } => {
                self.operand(out, base, Precedence::Sum);
                out.push(Doc::Space);
                self.token(out, ty.span.start, "is");
                out.push(Doc::Space);
                out.push(text(ty.name.as_str()));
                if let Some(in_expr) = in_expr {
                    out.push(Doc::Space);
                    self.token(out, in_expr.span.start, "in");
                    out.push(Doc::Space);
                    self.operand(out, in_expr, Precedence::Sum);
                }
            }
            ExprKind::Unary { op, operand } => {
                let symbol = match op {
                    UnaryOp::Not => "!",
                    UnaryOp::Neg => "-",
                };
                self.token(out, start, symbol);
                self.operand(out, operand, Precedence::Unary);
            }
            ExprKind::Binary {
                op: op @ (BinaryOp::And | BinaryOp::Or),
                ..
            } => self.chain(out, expr, *op),
            ExprKind::Binary { op, lhs, rhs } => {
                let level = op.precedence();
                let (lhs_min, rhs_min) = if level == Precedence::Compare {
                    (Precedence::Sum, Precedence::Sum)
                } else {
                    (level, tighter(level))
                };
                self.operand(out, lhs, lhs_min);
                out.push(Doc::Space);
                self.token(out, rhs.span.start, op.symbol());
                out.push(Doc::Space);
                self.operand(out, rhs, rhs_min);
            }
            ExprKind::If { .. } => {
                let mut chain = Vec::new();
                self.if_chain(&mut chain, expr);
                out.push(group(chain));
            }
            ExprKind::Set(elements) => self.delimited(
                out,
                ("[", start, "]", close),
                false,
                elements,
                |element| element.span.start,
                |builder, out, element| builder.expr(out, element),
            ),
            ExprKind::Record(fields) => self.delimited(
                out,
                ("{", start, "}", close),
                true,
                fields,
                |(name, _)| name.span.start,
                |builder, out, (name, value)| {
                    builder.token(out, name.span.start, field_name(&name.name));
                    out.push(text(":"));
                    out.push(Doc::Space);
                    builder.expr(out, value);
                },
            ),
            ExprKind::Paren(inner) if breakable(inner) => {
                // `(` and `)` on lines of their own, the contents indented, when they do not fit.
                let mut docs = Vec::new();
                self.token(&mut docs, start, "(");
                let mut contents = Vec::new();
                self.line_before(&mut contents, inner.span.start, Doc::SoftLine);
                self.expr(&mut contents, inner);
                self.comments_before_closer(&mut contents, close);
                docs.push(Doc::Nest(contents));
                docs.push(Doc::SoftLine);
                docs.push(text(")"));
                out.push(group(docs));
            }
            ExprKind::Paren(inner) => {
                self.token(out, start, "(");
                self.expr(out, inner);
                self.comments_before_closer(out, close);
                out.push(text(")"));
            }
            ExprKind::Error => {
                let source = self.source.get(expr.span.start()..expr.span.end());
                out.push(text(source.unwrap_or_default()));
            }
        }
    }

    /// An expression in a position that takes expressions binding at least as tightly as `min`;
    /// a looser one is put in parentheses.
    fn operand(&mut self, out: &mut Vec<Doc>, expr: &ast::Expr, min: Precedence) {
        if precedence(expr) >= min {
            self.expr(out, expr);
            return;
        }
        if breakable(expr) {
            // As `ExprKind::Paren` lays out a conditional, so that parentheses the formatter adds
            // look like parentheses written in the source.
            let mut contents = vec![Doc::SoftLine];
            self.expr(&mut contents, expr);
            out.push(group(vec![
                text("("),
                Doc::Nest(contents),
                Doc::SoftLine,
                text(")"),
            ]));
            return;
        }
        out.push(text("("));
        self.expr(out, expr);
        out.push(text(")"));
    }

    /// `(args)`: one line when it fits, one argument per line otherwise. The `(` has no position
    /// in the tree, so comments before it go after it.
    fn arguments(&mut self, out: &mut Vec<Doc>, args: &[ast::Expr], close: u32) {
        self.delimited(
            out,
            ("(", 0, ")", close),
            false,
            args,
            |arg| arg.span.start,
            |builder, out, arg| builder.expr(out, arg),
        );
    }

    /// `if c then a else if d then b else e` on one line when it fits, else one branch per line,
    /// each `else if` starting a line of its own:
    ///
    /// ```text
    /// if c then
    ///     a
    /// else if d then
    ///     b
    /// else
    ///     e
    /// ```
    fn if_chain(&mut self, out: &mut Vec<Doc>, expr: &ast::Expr) {
        let ExprKind::If {
            cond,
            then_branch,
            else_branch,
        } = &expr.kind
        else {
            self.expr(out, expr);
            return;
        };
        self.token(out, expr.span.start, "if");
        out.push(Doc::Space);
        self.expr(out, cond);
        out.push(Doc::Space);
        self.token(out, then_branch.span.start, "then");
        let mut then_docs = Vec::new();
        then_docs.push(Doc::Line);
        self.expr(&mut then_docs, then_branch);
        out.push(Doc::Nest(then_docs));
        self.line_before(out, else_branch.span.start, Doc::Line);
        self.token(out, else_branch.span.start, "else");
        if matches!(else_branch.kind, ExprKind::If { .. }) {
            out.push(Doc::Space);
            self.if_chain(out, else_branch);
        } else {
            let mut else_docs = Vec::new();
            else_docs.push(Doc::Line);
            self.expr(&mut else_docs, else_branch);
            out.push(Doc::Nest(else_docs));
        }
    }

    /// A left-associative chain of `&&` or of `||`, broken before each operator when it does not
    /// fit. The operands after the first go one step in, and so do line breaks inside the first
    /// operand, whose own operator chains thereby break one step further in than this chain.
    fn chain(&mut self, out: &mut Vec<Doc>, expr: &ast::Expr, op: BinaryOp) {
        let mut rights = Vec::new();
        let mut first = expr;
        while let ExprKind::Binary {
            op: this_op,
            lhs,
            rhs,
        } = &first.kind
        {
            if *this_op != op {
                break;
            }
            rights.push(rhs.as_ref());
            first = lhs.as_ref();
        }
        let level = op.precedence();
        let mut first_docs = Vec::new();
        self.operand(&mut first_docs, first, level);
        let mut rest = Vec::new();
        for rhs in rights.into_iter().rev() {
            self.line_before(&mut rest, rhs.span.start, Doc::Line);
            self.token(&mut rest, rhs.span.start, op.symbol());
            rest.push(Doc::Space);
            self.operand(&mut rest, rhs, tighter(level));
        }
        out.push(group(vec![Doc::Nest(first_docs), Doc::Nest(rest)]));
    }
}

/// Whether parentheses around an expression may go on lines of their own: around a conditional,
/// which then often fits on one line between them. (An `&&`/`||` chain breaks well inside its
/// parentheses as it is.)
fn breakable(expr: &ast::Expr) -> bool {
    matches!(expr.kind, ExprKind::If { .. })
}

/// The position that the item's keyword takes for placing comments: that of the first node
/// after it, so that a comment between an annotation and the keyword comes before the keyword.
fn keyword_anchor(item: &ast::Item) -> u32 {
    match &item.kind {
        ItemKind::Entity(entity) => entity.name.span.start,
        ItemKind::Action(action) => first_start(&action.names),
        ItemKind::Route(route) => route.method.span.start,
        ItemKind::Policy(policy) => policy.effect_span.start,
        ItemKind::Limit(limit) => limit.name.span.start,
        ItemKind::TypeAlias(alias) => alias.name.span.start,
    }
}

/// Where the first name of a list starts; 0 (before every comment) for an empty list.
fn first_start(names: &[ast::Ident]) -> u32 {
    names.first().map_or(0, |name| name.span.start)
}

/// How tightly an expression binds as printed.
fn precedence(expr: &ast::Expr) -> Precedence {
    match &expr.kind {
        ExprKind::If { .. } => Precedence::If,
        ExprKind::Binary { op, .. } => op.precedence(),
        ExprKind::Has { .. } | ExprKind::Like { .. } | ExprKind::Is { .. } => Precedence::Compare,
        ExprKind::Unary { .. } => Precedence::Unary,
        ExprKind::Int(value) if *value < 0 => Precedence::Unary,
        ExprKind::Attr { .. } | ExprKind::MethodCall { .. } => Precedence::Postfix,
        ExprKind::Bool(_)
        | ExprKind::Int(_)
        | ExprKind::Str(_)
        | ExprKind::Var(_)
        | ExprKind::Call { .. }
        | ExprKind::Set(_)
        | ExprKind::Record(_)
        | ExprKind::Paren(_)
        | ExprKind::Error => Precedence::Primary,
    }
}

/// The next tighter binding level.
fn tighter(level: Precedence) -> Precedence {
    match level {
        Precedence::If => Precedence::Or,
        Precedence::Or => Precedence::And,
        Precedence::And => Precedence::Compare,
        Precedence::Compare => Precedence::Sum,
        Precedence::Sum => Precedence::Product,
        Precedence::Product => Precedence::Unary,
        Precedence::Unary => Precedence::Postfix,
        Precedence::Postfix | Precedence::Primary => Precedence::Primary,
    }
}

/// A string literal with canonical escapes.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A field name as printed: bare when it is an identifier or a keyword, quoted otherwise.
pub fn field_name(name: &str) -> String {
    let mut chars = name.chars();
    let bare = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if bare {
        name.to_string()
    } else {
        quote(name)
    }
}

// ---- Printing documents ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Flat,
    Break,
}

/// The state of the output while a document is printed.
#[derive(Default)]
struct Printer {
    out: String,
    /// Characters on the current line.
    column: usize,
    /// Whether the current line holds anything but indentation.
    line_has_content: bool,
    /// After a comment: the line must break before the next text, which goes at this indentation.
    pending: Option<usize>,
}

impl Printer {
    fn trim_trailing_spaces(&mut self) {
        while self.out.ends_with(' ') {
            self.out.pop();
            self.column = self.column.saturating_sub(1);
        }
    }

    fn newline(&mut self, indent: usize) {
        self.trim_trailing_spaces();
        self.out.push('\n');
        self.out.extend(std::iter::repeat_n(' ', indent));
        self.column = indent;
        self.line_has_content = false;
        self.pending = None;
    }

    fn resolve_pending(&mut self) {
        if let Some(indent) = self.pending {
            self.newline(indent);
        }
    }

    fn text(&mut self, text: &str) {
        self.resolve_pending();
        self.out.push_str(text);
        self.column += text.chars().count();
        if !text.trim().is_empty() {
            self.line_has_content = true;
        }
    }

    fn space(&mut self) {
        if self.pending.is_none() && self.line_has_content {
            self.out.push(' ');
            self.column += 1;
        }
    }

    /// Writes a comment; `own_line` asks for a line of its own. The next text goes on a new line.
    fn comment(&mut self, text: &str, indent: usize, own_line: bool) {
        let next_indent = if let Some(pending) = self.pending {
            self.newline(pending);
            pending
        } else if !self.line_has_content {
            self.column
        } else if own_line {
            self.newline(indent + INDENT);
            indent + INDENT
        } else {
            self.trim_trailing_spaces();
            self.out.push(' ');
            self.column += 1;
            indent + INDENT
        };
        self.out.push_str(text);
        self.column += text.chars().count();
        self.line_has_content = true;
        self.pending = Some(next_indent);
    }

    /// The columns left on the current line (or on the line a pending break starts).
    fn remaining(&self) -> usize {
        WIDTH.saturating_sub(self.pending.unwrap_or(self.column))
    }
}

/// Prints a document.
fn print(docs: &[Doc]) -> String {
    let mut printer = Printer::default();
    let mut commands: Vec<(usize, Mode, &Doc)> =
        docs.iter().rev().map(|doc| (0, Mode::Break, doc)).collect();
    while let Some((indent, mode, doc)) = commands.pop() {
        match doc {
            Doc::Text(text) => printer.text(text),
            Doc::Space => printer.space(),
            Doc::Line | Doc::SoftLine => match mode {
                Mode::Break => printer.newline(indent),
                Mode::Flat if printer.pending.is_some() => printer.resolve_pending(),
                Mode::Flat if matches!(doc, Doc::Line) => printer.text(" "),
                Mode::Flat => {}
            },
            Doc::HardLine => printer.newline(indent),
            Doc::IfBreak(text) => {
                if mode == Mode::Break {
                    printer.text(text);
                }
            }
            Doc::Nest(docs) => {
                commands.extend(docs.iter().rev().map(|doc| (indent + INDENT, mode, doc)));
            }
            Doc::Group(docs, hard) => {
                let group_mode = if mode == Mode::Flat
                    || (!hard && fits(docs, &commands, printer.remaining()))
                {
                    Mode::Flat
                } else {
                    Mode::Break
                };
                commands.extend(docs.iter().rev().map(|doc| (indent, group_mode, doc)));
            }
            Doc::TrailingComment(text) => printer.comment(text, indent, false),
            Doc::OwnLineComment(text) => printer.comment(text, indent, true),
        }
    }
    printer.trim_trailing_spaces();
    printer.out
}

/// Whether `docs` printed flat, followed by the rest of the document up to its next line break,
/// fits in `width` columns.
fn fits(docs: &[Doc], rest: &[(usize, Mode, &Doc)], width: usize) -> bool {
    let mut width = isize::try_from(width).unwrap_or(isize::MAX);
    let mut stack: Vec<(Mode, &Doc)> = docs.iter().rev().map(|doc| (Mode::Flat, doc)).collect();
    let mut rest_index = rest.len();
    loop {
        let (mode, doc) = match stack.pop() {
            Some(next) => next,
            None => {
                let Some(index) = rest_index.checked_sub(1) else {
                    return true;
                };
                rest_index = index;
                match rest.get(index) {
                    Some((_, mode, doc)) => (*mode, *doc),
                    None => return true,
                }
            }
        };
        let used = match doc {
            Doc::Text(text) => text.chars().count(),
            Doc::Space => 1,
            Doc::Line | Doc::SoftLine if mode == Mode::Break => return true,
            Doc::Line => 1,
            Doc::SoftLine => 0,
            Doc::HardLine | Doc::TrailingComment(_) | Doc::OwnLineComment(_) => return true,
            Doc::IfBreak(text) if mode == Mode::Break => text.len(),
            Doc::IfBreak(_) => 0,
            Doc::Nest(docs) => {
                stack.extend(docs.iter().rev().map(|doc| (mode, doc)));
                0
            }
            Doc::Group(docs, hard) => {
                let mode = if *hard { Mode::Break } else { mode };
                stack.extend(docs.iter().rev().map(|doc| (mode, doc)));
                0
            }
        };
        width -= isize::try_from(used).unwrap_or(isize::MAX);
        if width < 0 {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Span;

    fn expr(kind: ExprKind) -> ast::Expr {
        // A placeholder id; `condition_text` numbers the finished tree.
        ast::Expr {
            id: ast::ExprId(0),
            kind,
            span: Span::default(),
        }
    }

    fn var(var: ast::Var) -> ast::Expr {
        expr(ExprKind::Var(var))
    }

    fn binary(op: BinaryOp, lhs: ast::Expr, rhs: ast::Expr) -> ast::Expr {
        expr(ExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        })
    }

    /// Formats a policy with the one condition `condition`, built by hand, and returns the
    /// condition's text.
    fn condition_text(condition: ast::Expr) -> String {
        let scope = |kind| ast::Scope {
            kind,
            span: Span::default(),
        };
        let policy = ast::Policy {
            effect: Effect::Permit,
            effect_span: Span::default(),
            principal: scope(ScopeKind::Any),
            action: ast::ActionScope {
                kind: ActionScopeKind::Any,
                span: Span::default(),
            },
            resource: scope(ScopeKind::Any),
            conditions: vec![ast::Condition {
                kind: ConditionKind::When,
                keyword_span: Span::default(),
                expr: condition,
            }],
        };
        let mut file = ast::File {
            items: vec![ast::Item {
                annotations: Vec::new(),
                kind: ItemKind::Policy(policy),
                span: Span::default(),
            }],
            comments: Vec::new(),
        };
        file.number_exprs();
        let text = format_file(&file, "");
        let condition = text.split_once("\nwhen ").map_or("", |(_, rest)| rest);
        condition.trim_end().trim_end_matches(';').to_string()
    }

    #[test]
    fn parentheses_are_added_where_the_tree_needs_them() {
        use ast::Var::{Action, Context, Principal, Resource};
        let or = binary(BinaryOp::Or, var(Principal), var(Resource));
        let text = condition_text(binary(BinaryOp::And, or.clone(), var(Context)));
        assert_eq!(text, "(principal || resource) && context");
        let text = condition_text(binary(BinaryOp::Or, var(Action), or));
        assert_eq!(text, "action || (principal || resource)");
        let eq = binary(BinaryOp::Eq, var(Principal), var(Resource));
        let text = condition_text(binary(BinaryOp::Eq, eq, var(Context)));
        assert_eq!(text, "(principal == resource) == context");
        let negated = expr(ExprKind::Unary {
            op: UnaryOp::Neg,
            operand: Box::new(var(Principal)),
        });
        let attr = expr(ExprKind::Attr {
            base: Box::new(negated),
            attr: ast::Ident {
                name: "a b".to_string(),
                span: Span::default(),
            },
        });
        assert_eq!(condition_text(attr), "(-principal).\"a b\"");
    }

    #[test]
    fn strings_are_escaped_canonically() {
        assert_eq!(quote("a\"b\\c\n\r\t\0'é😀"), r#""a\"b\\c\n\r\t\0'é😀""#);
        assert_eq!(quote("\u{1}\u{7f}\u{85}"), r#""\u{1}\u{7f}\u{85}""#);
    }

    #[test]
    fn field_names_are_bare_only_when_they_can_be() {
        assert_eq!(field_name("tier"), "tier");
        assert_eq!(field_name("if"), "if");
        assert_eq!(field_name("_x1"), "_x1");
        assert_eq!(field_name("x-y"), "\"x-y\"");
        assert_eq!(field_name("1x"), "\"1x\"");
        assert_eq!(field_name(""), "\"\"");
    }
}
