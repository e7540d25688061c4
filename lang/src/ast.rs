//! The syntax tree of one `.authz` file.
//!
//! The tree mirrors the surface syntax: every node carries the [`Span`] of the text it came from,
//! parentheses are kept as [`ExprKind::Paren`] so that formatting preserves the author's grouping,
//! and a construct that failed to parse is represented by [`ExprKind::Error`] (or is left out, for
//! whole items) so that a tree always exists, even for a broken file. Names are not resolved here:
//! `Team("eng")` and `ip("10.0.0.1")` are both [`ExprKind::Call`]; the compiler decides which is an
//! entity literal and which a function.
//!
//! Every expression also carries an [`ExprId`], unique within its file, so that later passes can
//! keep facts about expressions (the compiler's types) in side tables keyed by id rather than by
//! the address of a node. Ids are identity, not content: tree equality ignores them.

use crate::span::Span;

/// A parsed file: its items in source order, and its comments for the formatter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct File {
    /// Declarations and policies in source order.
    pub items: Vec<Item>,
    /// Every `//` comment in the file, in source order.
    pub comments: Vec<Comment>,
}

impl File {
    /// Gives every expression of the file a fresh [`ExprId`], numbering from 0 in the order the
    /// parser does (children before their parent, left to right): for trees built or edited by
    /// hand, such as generated test trees. On the tree of a parse without errors it changes
    /// nothing.
    pub fn number_exprs(&mut self) {
        let mut next = 0;
        for item in &mut self.items {
            match &mut item.kind {
                ItemKind::Policy(policy) => {
                    for condition in &mut policy.conditions {
                        condition.expr.number(&mut next);
                    }
                }
                ItemKind::Limit(limit) => {
                    for key in &mut limit.keys {
                        key.number(&mut next);
                    }
                    if let Some(condition) = &mut limit.condition {
                        condition.number(&mut next);
                    }
                }
                ItemKind::Entity(_)
                | ItemKind::Action(_)
                | ItemKind::Route(_)
                | ItemKind::TypeAlias(_) => {}
            }
        }
    }
}

/// A `//` comment; `text` includes the slashes and excludes the line break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    /// The comment text, starting with `//`.
    pub text: String,
    /// Where the comment stands.
    pub span: Span,
}

/// A name written in the source: an entity type, an action, an attribute, a function, ...
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ident {
    /// The name as written.
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

/// A string literal, with escapes already decoded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StrLit {
    /// The decoded value.
    pub value: String,
    /// The span of the literal including its quotes.
    pub span: Span,
}

/// An integer literal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IntLit {
    /// The value.
    pub value: i64,
    /// Where it was written.
    pub span: Span,
}

/// A top-level item with its annotations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// `@name("value")` annotations written before the item.
    pub annotations: Vec<Annotation>,
    /// What the item declares.
    pub kind: ItemKind,
    /// The span from the first annotation (or keyword) to the closing `;` or `}`.
    pub span: Span,
}

/// The kinds of top-level items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// `entity User in Team { ... }`
    Entity(EntityDecl),
    /// `action read, list : User | Service -> Order with { ... };`
    Action(ActionDecl),
    /// `route GET "/orders/{id}" => read Order(id);`
    Route(RouteDecl),
    /// `permit ...;` or `forbid ...;`
    Policy(Policy),
    /// `limit "name" 100 per minute per principal when ...;`
    Limit(LimitDecl),
    /// `type Shift = { start: Long, end: Long };`
    TypeAlias(TypeAliasDecl),
}

/// `type Name = Type;`: a name for a type, usable wherever a type is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeAliasDecl {
    /// The name being declared.
    pub name: Ident,
    /// The type it stands for.
    pub ty: TypeExpr,
}

/// `@name` or `@name("value")`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    /// The annotation name, without `@`.
    pub name: Ident,
    /// The value, when one is given.
    pub value: Option<StrLit>,
    /// From `@` to the closing parenthesis.
    pub span: Span,
}

/// `entity Name [in Parent | in [P1, P2]] [{ attrs }]`, ended by `;` or by the record's `}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityDecl {
    /// The entity type being declared.
    pub name: Ident,
    /// Types whose entities may be parents of this one in the hierarchy.
    pub parents: Vec<Ident>,
    /// The attributes, when a record is given.
    pub attrs: Option<RecordType>,
}

/// `{ name: Type, optional?: Type }` in a type position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordType {
    /// Fields in source order.
    pub fields: Vec<FieldType>,
    /// From `{` to `}`.
    pub span: Span,
}

/// One field of a record type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldType {
    /// The field name.
    pub name: Ident,
    /// Whether it was written `name?: Type`.
    pub optional: bool,
    /// The field's type.
    pub ty: TypeExpr,
}

/// A type as written in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeExpr {
    /// `String`, `Long`, `Bool`, `Ip`, `Timestamp`, `Duration` or an entity type name.
    Named(Ident),
    /// `Set<T>`; the span covers the whole type.
    Set(Box<TypeExpr>, Span),
    /// `{ ... }`
    Record(RecordType),
}

impl TypeExpr {
    /// Where the type was written.
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Named(ident) => ident.span,
            TypeExpr::Set(_, span) => *span,
            TypeExpr::Record(record) => record.span,
        }
    }
}

/// `action a, b [in [g1, g2]] : P1 | P2 -> R1 | R2 [with { context }];`, or an action group
/// `action g [in [g0]];`: a declaration without a signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionDecl {
    /// The actions (or groups) declared; they share their groups and signature.
    pub names: Vec<Ident>,
    /// The groups they belong to (`in readActions`, `in [readActions, all]`).
    pub groups: Vec<Ident>,
    /// What the actions apply to; `None` declares groups.
    pub signature: Option<ActionSignature>,
}

/// `: P1 | P2 -> R1 | R2 [with { context }]`: what an action applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionSignature {
    /// Entity types that may be the principal.
    pub principals: Vec<Ident>,
    /// Entity types that may be the resource.
    pub resources: Vec<Ident>,
    /// The type of the request context, when one is given: a record type, or the name of a
    /// `type` declaration that is one.
    pub context: Option<TypeExpr>,
}

/// `route METHOD "template" => action Type(arg);`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteDecl {
    /// The HTTP method, such as `GET`, or `ANY`.
    pub method: Ident,
    /// The path template, such as `"/orders/{id}/**"`.
    pub path: StrLit,
    /// The action the request performs.
    pub action: Ident,
    /// The resource's entity type.
    pub resource_type: Ident,
    /// Where the resource id comes from.
    pub resource_id: RouteArg,
}

/// The resource id of a route: a template parameter or a fixed string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteArg {
    /// `Order(id)`: the value of the template parameter `{id}`.
    Param(Ident),
    /// `Shop("main")`: always this id.
    Literal(StrLit),
}

/// Whether a policy allows or denies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    /// `permit`
    Permit,
    /// `forbid`
    Forbid,
}

/// `permit|forbid principal ..., action ..., resource ... [when e] [unless e] ...;`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `permit` or `forbid`.
    pub effect: Effect,
    /// The span of the effect keyword.
    pub effect_span: Span,
    /// The principal part of the scope.
    pub principal: Scope,
    /// The action part of the scope.
    pub action: ActionScope,
    /// The resource part of the scope.
    pub resource: Scope,
    /// `when` and `unless` clauses, in source order.
    pub conditions: Vec<Condition>,
}

/// The principal or resource part of a policy scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// The constraint.
    pub kind: ScopeKind,
    /// From the variable keyword to the end of the constraint.
    pub span: Span,
}

/// Constraints on the principal or the resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeKind {
    /// `principal: *`
    Any,
    /// `principal: User`
    Is(Ident),
    /// `principal: User in Team("eng")`
    IsIn(Ident, EntityRef),
    /// `principal == User("alice")`
    Eq(EntityRef),
    /// `principal in Team("eng")`
    In(EntityRef),
}

/// `Type("id")` in a policy scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityRef {
    /// The entity type.
    pub ty: Ident,
    /// The entity id.
    pub id: StrLit,
    /// From the type name to the closing parenthesis.
    pub span: Span,
}

/// The action part of a policy scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionScope {
    /// The constraint.
    pub kind: ActionScopeKind,
    /// From `action` to the end of the constraint.
    pub span: Span,
}

/// Constraints on the action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionScopeKind {
    /// `action: *`
    Any,
    /// `action: read`, also written `action in read`; a group stands for its actions.
    One(Ident),
    /// `action: [read, list]`, also written `action in [read, list]`.
    AnyOf(Vec<Ident>),
}

/// Whether a condition must hold or must not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionKind {
    /// `when e`: the policy applies only if `e` is true.
    When,
    /// `unless e`: the policy applies only if `e` is false.
    Unless,
}

/// One `when` or `unless` clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// `when` or `unless`.
    pub kind: ConditionKind,
    /// The span of the keyword.
    pub keyword_span: Span,
    /// The condition.
    pub expr: Expr,
}

/// `limit "name" COUNT per [N] UNIT [burst B] [on attempts] [per KEY, KEY...] [when e];`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitDecl {
    /// The limit's name, reported with the obligation.
    pub name: StrLit,
    /// How many requests are allowed per period.
    pub count: IntLit,
    /// How many units make the period: the `10` of `per 10 seconds`; none for one.
    pub period: Option<IntLit>,
    /// The unit of the period: `second`, `minute`, `hour` or `day`, or their plurals.
    pub unit: Ident,
    /// `burst B`: how many requests may come at once; none for `count`.
    pub burst: Option<IntLit>,
    /// `on attempts`: the limit counts every attempt, denied and unauthenticated ones included,
    /// before the principal is known; the span of the two words.
    pub on_attempts: Option<Span>,
    /// Expressions whose values together key the counter; none means one global counter.
    pub keys: Vec<Expr>,
    /// The condition under which the limit applies; none means always.
    pub condition: Option<Expr>,
}

/// The identity of one expression node within its file: a key for the compiler's side tables
/// (such as the type of every expression), in the style of an arena index.
///
/// The parser numbers the expressions of a file from 0, one counter per file, in the order it
/// finishes building them (children before their parent); so the ids of a parsed file are
/// distinct and dense, and parsing the same text always gives the same ids. Ids are unique
/// within one file only: tables over a policy set key by the file as well. Every node consumes at
/// least one token of its own and spans limit a file to `u32` offsets, so the counter cannot
/// overflow on a parsed file.
///
/// An id is identity, not content: [`Expr`]'s equality ignores it (see there). Cloning an
/// expression copies its ids; a tree built or edited by hand (tests, generators) can be given
/// fresh ones with [`File::number_exprs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExprId(pub u32);

impl ExprId {
    /// The id as an index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl std::fmt::Display for ExprId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// An expression with its span and its node id.
///
/// Equality compares what the expression says and where (kind and span, recursively) and ignores
/// [`Expr::id`]: two parses of texts that say the same thing, or a generated tree and the parse
/// of its printed text, are equal whatever order their nodes were numbered in.
#[derive(Clone, Debug)]
pub struct Expr {
    /// The node's id, unique within its file (see [`ExprId`]).
    pub id: ExprId,
    /// What the expression is.
    pub kind: ExprKind,
    /// Where it was written.
    pub span: Span,
}

impl PartialEq for Expr {
    fn eq(&self, other: &Expr) -> bool {
        self.kind == other.kind && self.span == other.span
    }
}

impl Eq for Expr {}

impl Expr {
    /// The direct sub-expressions, left to right.
    pub fn children(&self) -> Vec<&Expr> {
        match &self.kind {
            ExprKind::Bool(_)
            | ExprKind::Int(_)
            | ExprKind::Str(_)
            | ExprKind::Var(_)
            | ExprKind::Error => Vec::new(),
            ExprKind::Call { args, .. } | ExprKind::Set(args) => args.iter().collect(),
            ExprKind::Attr { base, .. }
            | ExprKind::Has { base, .. }
            | ExprKind::Like { base, .. }
            | ExprKind::Unary { operand: base, .. }
            | ExprKind::Paren(base) => vec![base],
            ExprKind::MethodCall { receiver, args, .. } => {
                std::iter::once(&**receiver).chain(args).collect()
            }
            ExprKind::Is { base, in_expr, .. } => {
                std::iter::once(&**base).chain(in_expr.as_deref()).collect()
            }
            ExprKind::Binary { lhs, rhs, .. } => vec![lhs, rhs],
            ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => vec![cond, then_branch, else_branch],
            ExprKind::Record(fields) => fields.iter().map(|(_, value)| value).collect(),
        }
    }

    /// The direct sub-expressions, left to right, for changing them.
    pub fn children_mut(&mut self) -> Vec<&mut Expr> {
        match &mut self.kind {
            ExprKind::Bool(_)
            | ExprKind::Int(_)
            | ExprKind::Str(_)
            | ExprKind::Var(_)
            | ExprKind::Error => Vec::new(),
            ExprKind::Call { args, .. } | ExprKind::Set(args) => args.iter_mut().collect(),
            ExprKind::Attr { base, .. }
            | ExprKind::Has { base, .. }
            | ExprKind::Like { base, .. }
            | ExprKind::Unary { operand: base, .. }
            | ExprKind::Paren(base) => vec![&mut **base],
            ExprKind::MethodCall { receiver, args, .. } => {
                std::iter::once(&mut **receiver).chain(args).collect()
            }
            ExprKind::Is { base, in_expr, .. } => std::iter::once(&mut **base)
                .chain(in_expr.as_deref_mut())
                .collect(),
            ExprKind::Binary { lhs, rhs, .. } => vec![&mut **lhs, &mut **rhs],
            ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => vec![&mut **cond, &mut **then_branch, &mut **else_branch],
            ExprKind::Record(fields) => fields.iter_mut().map(|(_, value)| value).collect(),
        }
    }

    /// Numbers this tree from `next`, children before their parent.
    fn number(&mut self, next: &mut u32) {
        for child in self.children_mut() {
            child.number(next);
        }
        self.id = ExprId(*next);
        *next = next.saturating_add(1);
    }
}

/// The request variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Var {
    /// `principal`
    Principal,
    /// `action`
    Action,
    /// `resource`
    Resource,
    /// `context`
    Context,
}

impl Var {
    /// The keyword that spells the variable.
    pub fn keyword(self) -> &'static str {
        match self {
            Var::Principal => "principal",
            Var::Action => "action",
            Var::Resource => "resource",
            Var::Context => "context",
        }
    }
}

/// Prefix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `!e`
    Not,
    /// `-e`
    Neg,
}

/// Infix operators, from loosest to tightest binding: `||`; `&&`; comparisons and `in`; `+ -`; `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `||`
    Or,
    /// `&&`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in`: hierarchy membership for entities, element membership for sets
    In,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
}

impl BinaryOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "in",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
        }
    }

    /// Binding strength: higher binds tighter. Comparisons (including `has`, `like`, `is`) share
    /// [`Precedence::Compare`] and do not chain.
    pub fn precedence(self) -> Precedence {
        match self {
            BinaryOp::Or => Precedence::Or,
            BinaryOp::And => Precedence::And,
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge
            | BinaryOp::In => Precedence::Compare,
            BinaryOp::Add | BinaryOp::Sub => Precedence::Sum,
            BinaryOp::Mul => Precedence::Product,
        }
    }
}

/// Expression binding levels, loosest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Precedence {
    /// `if c then a else b`
    If,
    /// `||`
    Or,
    /// `&&`
    And,
    /// `== != < <= > >= in has like is`, non-associative
    Compare,
    /// `+ -`, left-associative
    Sum,
    /// `*`, left-associative
    Product,
    /// `! -` prefix
    Unary,
    /// `.attr`, `.method()`
    Postfix,
    /// literals, variables, calls, parentheses
    Primary,
}

/// The kinds of expressions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExprKind {
    /// `true` or `false`
    Bool(bool),
    /// `42`
    Int(i64),
    /// `"text"`
    Str(String),
    /// `principal`, `action`, `resource` or `context`
    Var(Var),
    /// `Name(args)`: an entity literal such as `Team("eng")` or a function such as `ip("::1")`.
    Call {
        /// The entity type or function name.
        callee: Ident,
        /// The arguments.
        args: Vec<Expr>,
    },
    /// `e.attr`
    Attr {
        /// The record or entity read from.
        base: Box<Expr>,
        /// The attribute.
        attr: Ident,
    },
    /// `e.method(args)`
    MethodCall {
        /// The receiver.
        receiver: Box<Expr>,
        /// The method name.
        method: Ident,
        /// The arguments.
        args: Vec<Expr>,
    },
    /// `e has attr`
    Has {
        /// The record or entity tested.
        base: Box<Expr>,
        /// The attribute.
        attr: Ident,
    },
    /// `e like "glob*"`
    Like {
        /// The string matched.
        base: Box<Expr>,
        /// The glob pattern; `*` matches any run of characters, `\*` a literal star.
        pattern: StrLit,
    },
    /// `e is Type` or `e is Type in e2`
    Is {
        /// The entity tested.
        base: Box<Expr>,
        /// The entity type.
        ty: Ident,
        /// The `in` operand, when given.
        in_expr: Option<Box<Expr>>,
    },
    /// `!e`, `-e`
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        operand: Box<Expr>,
    },
    /// `a op b`
    Binary {
        /// The operator.
        op: BinaryOp,
        /// The left operand.
        lhs: Box<Expr>,
        /// The right operand.
        rhs: Box<Expr>,
    },
    /// `if c then a else b`
    If {
        /// The condition.
        cond: Box<Expr>,
        /// The value when the condition holds.
        then_branch: Box<Expr>,
        /// The value otherwise.
        else_branch: Box<Expr>,
    },
    /// `[a, b, c]`
    Set(Vec<Expr>),
    /// `{ name: e, "other name": e }`
    Record(Vec<(Ident, Expr)>),
    /// `(e)`, kept so that formatting preserves the author's grouping.
    Paren(Box<Expr>),
    /// Stands where an expression failed to parse; a syntax error was reported for it.
    Error,
}
