//! The decision program: lowered policies, limits, shared sub-expressions and the policy index.
//!
//! The compiler produces a [`Program`]; the runtime only evaluates it. Expressions are trees of
//! [`Expr`] whose names are already resolved: attributes are [`AttrId`]s, entity types
//! [`TypeId`]s, constants [`Value`]s in the program's pool, functions plain function pointers
//! into the standard library. A sub-expression that occurs more than once across the program is
//! stored once in [`Program::shared`] and referenced by [`Expr::Shared`]; it is evaluated at most
//! once per decision.

use crate::eval::{EvalError, Evaluator};
use crate::index::Index;
use crate::intern::Interner;
use crate::route::RouteTable;
use crate::schema::Schema;
use crate::value::{AttrId, EntityUid, LayoutId, TypeId, Value, ValuePool};

/// A standard-library function: it receives the evaluator (to read strings and pools) and the
/// evaluated arguments, receiver first for methods.
pub type Builtin = fn(&mut Evaluator<'_>, &[Value]) -> Result<Value, EvalError>;

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

/// Comparison operators on `Long`, `Timestamp` and `Duration`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// Checked arithmetic on `Long`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
}

/// One piece of a `like` pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GlobPart {
    /// Matches exactly this text.
    Literal(Box<str>),
    /// `*`: matches any run of characters, also none.
    Star,
}

/// An expression of the decision program.
#[derive(Clone, Debug)]
pub enum Expr {
    /// A constant.
    Lit(Value),
    /// A request variable.
    Var(Var),
    /// `e.attr` on an entity or a record; an absent attribute or a missing entity is an error.
    Attr(Box<Expr>, AttrId),
    /// `e has attr`; false for a missing entity.
    Has(Box<Expr>, AttrId),
    /// `!e`
    Not(Box<Expr>),
    /// `-e`, checked.
    Neg(Box<Expr>),
    /// `a && b`, short-circuit.
    And(Box<Expr>, Box<Expr>),
    /// `a || b`, short-circuit.
    Or(Box<Expr>, Box<Expr>),
    /// `if c then a else b`
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `a == b`, deep.
    Eq(Box<Expr>, Box<Expr>),
    /// `a < b` and friends.
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `a + b` and friends.
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    /// `a in b` for an entity `a`: `b` is an entity or a set of entities, and `a` equals it or
    /// descends from it.
    InHierarchy(Box<Expr>, Box<Expr>),
    /// `set.contains(x)`, and `x in set` for elements that are not entities.
    Contains(Box<Expr>, Box<Expr>),
    /// `a.containsAll(b)`
    ContainsAll(Box<Expr>, Box<Expr>),
    /// `a.containsAny(b)`
    ContainsAny(Box<Expr>, Box<Expr>),
    /// `a.isEmpty()`
    IsEmpty(Box<Expr>),
    /// `e like "pattern"`
    Like(Box<Expr>, Box<[GlobPart]>),
    /// `e is T`
    Is(Box<Expr>, TypeId),
    /// A standard-library function or method.
    Call(Builtin, Box<[Expr]>),
    /// `[a, b]` with elements that are not all constant.
    SetLit(Box<[Expr]>),
    /// `{a: x}` with fields that are not all constant, in layout order.
    RecordLit(LayoutId, Box<[Expr]>),
    /// A sub-expression shared across the program: `Program::shared[index]`.
    Shared(u32),
}

/// Whether a policy allows or denies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    /// `permit`
    Permit,
    /// `forbid`
    Forbid,
}

/// A test on the principal or the resource from a policy's scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ScopeTest {
    /// Any entity of the types the actions take.
    Any,
    /// An entity of one of these types.
    Is(Vec<TypeId>),
    /// Exactly this entity.
    Eq(EntityUid),
    /// This entity or a descendant of it.
    In(EntityUid),
    /// An entity of one of these types that is this entity or descends from it.
    IsIn(Vec<TypeId>, EntityUid),
}

/// A lowered policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The `@id`, or `file:line`.
    pub id: String,
    /// Permit or forbid.
    pub effect: Effect,
    /// The actions it names; `None` for `action: *`.
    pub actions: Option<Vec<EntityUid>>,
    /// The principal part of its scope.
    pub principal: ScopeTest,
    /// The resource part of its scope.
    pub resource: ScopeTest,
    /// The conjunction of its scope tests and `when`/`unless` clauses, in source order; `None`
    /// when it is always true.
    pub condition: Option<Expr>,
    /// The `@reason`, returned with a denial.
    pub reason: Option<String>,
    /// Where each conjunct of `condition` was written, in order: for explanations.
    pub parts: Vec<ConditionPart>,
}

/// One conjunct of a policy's condition as it was written: a scope test the index does not
/// settle, a `when` or an `unless` clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionPart {
    /// The source text, such as `when { resource.owner == principal }`.
    pub text: String,
    /// `file:line:column`.
    pub at: String,
}

/// A lowered `limit`.
#[derive(Clone, Debug)]
pub struct Limit {
    /// Its name.
    pub name: String,
    /// Requests allowed per period.
    pub count: u64,
    /// The period in seconds.
    pub period_seconds: u64,
    /// How many requests may come at once (the bucket's size); `count` unless given.
    pub burst: u64,
    /// `on attempts`: counted on every request, whatever its decision, before its principal is
    /// known (see [`crate::eval::attempt_obligations`]); the checker lets such a limit read only
    /// `action` and `context`.
    pub on_attempts: bool,
    /// The key expressions; none for one global counter.
    pub keys: Vec<Expr>,
    /// When it applies; `None` for always.
    pub condition: Option<Expr>,
}

/// A compiled policy set.
#[derive(Clone, Debug, Default)]
pub struct Program {
    /// Strings of the policies and of the schema.
    pub interner: Interner,
    /// Entity types, layouts and actions.
    pub schema: Schema,
    /// Constant sets, records and IP ranges.
    pub pool: ValuePool,
    /// Every policy; indices are policy numbers.
    pub policies: Vec<Policy>,
    /// Every limit.
    pub limits: Vec<Limit>,
    /// Sub-expressions shared across the program.
    pub shared: Vec<Expr>,
    /// Which policies can apply to which request.
    pub index: Index,
    /// The routes by which the proxy turns HTTP requests into actions on resources.
    pub routes: RouteTable,
}

impl Program {
    /// Whether a limit counts `on attempts`.
    pub fn has_attempt_limits(&self) -> bool {
        self.limits.iter().any(|limit| limit.on_attempts)
    }
}
