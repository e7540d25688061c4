//! The evaluator: decides requests against a program, an entity store and a request.
//!
//! Semantics (binding, see `docs/language.md`): a policy applies when its condition (scope tests,
//! then `when` and `unless` clauses, left to right, `&&`/`||` short-circuiting) is true. Allow iff
//! some permit applies and no forbid applies. A permit whose condition errors does not apply; a
//! forbid whose condition errors applies. Every error met is reported in the decision; permits are
//! evaluated only when no forbid applies, so a denial by a forbid reports no permit errors.
//!
//! Entities are looked up in the request's overlay first when the request brought entities (see
//! [`crate::overlay`]), in the store otherwise.
//!
//! Only the policies the index proposes are evaluated. Values are `Copy`; sub-expressions shared
//! across policies are memoized per decision in [`Scratch`], whose buffers are reused, so a
//! decision allocates nothing once the request is built (non-constant set and record literals and
//! string-producing functions are the exceptions: they write into the scratch pools).

use std::borrow::Cow;
use std::cell::Cell;
use std::cmp::Ordering;
use std::fmt;

use crate::decision::{Decision, ErrorSite, Obligation};
use crate::index::{PolicyGroup, PolicyIdx};
use crate::intern::Sym;
use crate::program::{ArithOp, CmpOp, Effect, Expr, GlobPart, Limit, Program, Var};
use crate::request::Request;
use crate::store::EntityStore;
use crate::value::{AttrId, EntityUid, IpNet, PoolId, RecordRef, SetRef, Value, ValuePool};

/// Why an expression could not be evaluated. Small and `Copy`: errors allocate nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalError {
    /// The entity is neither in the store nor among the request's entities.
    EntityNotFound(EntityUid),
    /// The entity or record has no such attribute (an optional attribute read without `has`
    /// cannot type-check, so this means data that disagrees with a guard, or a missing entity).
    AttributeAbsent(AttrId),
    /// Arithmetic left the 64-bit range; says which operation on which operands.
    Overflow(Overflow),
    /// A standard-library function failed, with its reason.
    Extension(&'static str),
    /// A value of the wrong kind; impossible for programs that type-check.
    WrongType(&'static str),
}

/// An operation whose result does not fit in 64 bits, with its operands (timestamps and
/// durations in milliseconds), so that the error can say what overflowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// `a + b` on `Long`s.
    Add(i64, i64),
    /// `a - b` on `Long`s.
    Sub(i64, i64),
    /// `a * b` on `Long`s.
    Mul(i64, i64),
    /// `-a` on a `Long`.
    Neg(i64),
    /// `t.offset(d)`: a timestamp moved by a duration.
    Offset(i64, i64),
    /// `t.durationSince(u)`: the distance between two timestamps.
    DurationSince(i64, i64),
    /// A timestamp outside the calendar's range (`toDate`, the local-time functions).
    Calendar(i64),
    /// A string longer than a `Long` can count.
    Length,
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Overflow::Add(a, b) => write!(f, "integer overflow: `{a} + {b}` does not fit in a `Long`"),
            Overflow::Sub(a, b) => write!(f, "integer overflow: `{a} - {b}` does not fit in a `Long`"),
            Overflow::Mul(a, b) => write!(f, "integer overflow: `{a} * {b}` does not fit in a `Long`"),
            Overflow::Neg(a) => write!(f, "integer overflow: `-({a})` does not fit in a `Long`"),
            Overflow::Offset(t, d) => write!(
                f,
                "timestamp overflow: `offset` of the timestamp {t} ms by {d} ms leaves the timestamp range"
            ),
            Overflow::DurationSince(t, u) => write!(
                f,
                "duration overflow: `durationSince` from {u} ms to {t} ms does not fit in a duration"
            ),
            Overflow::Calendar(t) => write!(
                f,
                "timestamp overflow: the timestamp {t} ms is outside the calendar's range"
            ),
            Overflow::Length => f.write_str("integer overflow: the string's length does not fit in a `Long`"),
        }
    }
}

impl EvalError {
    /// The stable code of this kind of error, such as `authz::eval::entity_not_found`.
    pub fn code(&self) -> &'static str {
        match self {
            EvalError::EntityNotFound(_) => "authz::eval::entity_not_found",
            EvalError::AttributeAbsent(_) => "authz::eval::attribute_absent",
            EvalError::Overflow(_) => "authz::eval::overflow",
            EvalError::Extension(_) => "authz::eval::extension",
            EvalError::WrongType(_) => "authz::eval::wrong_type",
        }
    }
}

/// Per-thread buffers for evaluation, reused across decisions.
#[derive(Debug, Default)]
pub struct Scratch {
    generation: u32,
    memo: Vec<(u32, Result<Value, EvalError>)>,
    pool: ValuePool,
    strings: Vec<Box<str>>,
    strings_base: u32,
}

impl Scratch {
    /// Empty buffers.
    pub fn new() -> Scratch {
        Scratch::default()
    }

    fn begin(&mut self, shared: usize, strings_base: u32) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // After 2^32 decisions the generations wrap: forget every memo entry once.
            self.memo.clear();
            self.generation = 1;
        }
        if self.memo.len() < shared {
            self.memo.resize(shared, (0, Ok(Value::Absent)));
        }
        self.pool.values.clear();
        self.pool.ips.clear();
        self.strings.clear();
        self.strings_base = strings_base;
    }
}

/// Decides `request`, writing the result into `out` (cleared first).
///
/// `store` must have been built for `program` (its interner extends the program's).
pub fn decide(
    program: &Program,
    store: &EntityStore,
    request: &Request,
    scratch: &mut Scratch,
    out: &mut Decision,
) {
    out.clear();
    scratch.begin(program.shared.len(), request.strings.end());
    let mut evaluator = Evaluator {
        program,
        store,
        request,
        scratch,
        principal_attrs: Cell::new(Cached::Unknown),
        resource_attrs: Cell::new(Cached::Unknown),
    };
    if let Some(bucket) = bucket(program, request) {
        evaluator.visit_group(&bucket.forbids, &mut |evaluator, policy| {
            evaluator.consider(policy, Effect::Forbid, out);
        });
        if out.determining.is_empty() {
            evaluator.visit_group(&bucket.permits, &mut |evaluator, policy| {
                evaluator.consider(policy, Effect::Permit, out);
            });
            out.allow = !out.determining.is_empty();
        }
    }
    // An allowed request carries every limit that applies; a denied one the `on attempts`
    // limits only, which count every attempt whatever its decision.
    if out.allow {
        evaluator.obligations(out, |_| true);
    } else if program.has_attempt_limits() {
        evaluator.obligations(out, |limit| limit.on_attempts);
    }
}

/// The `on attempts` limits that apply to `attempt`, counted before its principal is known,
/// written into `out` (cleared first; it allows nothing): what a server counts for every
/// request before checking its credential. Such limits read only `action` and `context` (the
/// checker refuses any other read), so `attempt` needs only those: build it with
/// [`crate::request_builder::RequestBuilder::finish_attempt`].
pub fn attempt_obligations(
    program: &Program,
    store: &EntityStore,
    attempt: &Request,
    scratch: &mut Scratch,
    out: &mut Decision,
) {
    out.clear();
    if !program.has_attempt_limits() {
        return;
    }
    let mut evaluator = Evaluator::new(program, store, attempt, scratch);
    evaluator.obligations(out, |limit| limit.on_attempts);
}

/// The index's bucket for the request's action, principal type and resource type.
fn bucket<'p>(program: &'p Program, request: &Request) -> Option<&'p crate::index::Bucket> {
    let action = program.schema.action_index(request.action.id)?;
    let action = u32::try_from(action).ok()?;
    program
        .index
        .bucket(action, request.principal.ty, request.resource.ty)
}

/// The permits the index proposes for `request` (its candidates, before their conditions), in
/// the order a decision considers them.
pub fn candidate_permits(
    program: &Program,
    store: &EntityStore,
    request: &Request,
    scratch: &mut Scratch,
) -> Vec<PolicyIdx> {
    let mut candidates = Vec::new();
    if let Some(bucket) = bucket(program, request) {
        let mut evaluator = Evaluator::new(program, store, request, scratch);
        evaluator.visit_group(&bucket.permits, &mut |_, policy| {
            if !candidates.contains(&policy) {
                candidates.push(policy);
            }
        });
    }
    candidates
}

/// Evaluates expressions of one program for one request.
pub struct Evaluator<'a> {
    /// The program.
    pub program: &'a Program,
    /// The entities.
    pub store: &'a EntityStore,
    /// The request.
    pub request: &'a Request,
    scratch: &'a mut Scratch,
    /// The attribute slots of the request's principal and of its resource, looked up once per
    /// decision: policies read them over and over.
    principal_attrs: Cell<Cached<'a>>,
    resource_attrs: Cell<Cached<'a>>,
}

/// An entity's attribute slots, once looked up.
#[derive(Clone, Copy)]
enum Cached<'a> {
    Unknown,
    Known(Option<&'a [Value]>),
}

impl<'a> Evaluator<'a> {
    /// An evaluator for one request; `scratch` must not be in use by another evaluator.
    pub fn new(
        program: &'a Program,
        store: &'a EntityStore,
        request: &'a Request,
        scratch: &'a mut Scratch,
    ) -> Evaluator<'a> {
        scratch.begin(program.shared.len(), request.strings.end());
        Evaluator {
            program,
            store,
            request,
            scratch,
            principal_attrs: Cell::new(Cached::Unknown),
            resource_attrs: Cell::new(Cached::Unknown),
        }
    }

    /// Calls `visit` for every policy of `group` the index proposes for this request: the
    /// unkeyed ones, those keyed by the principal, the resource or one of their ancestors, and
    /// those keyed by a value the request has (all of a key's when the key fails).
    fn visit_group(&mut self, group: &PolicyGroup, visit: &mut impl FnMut(&mut Self, PolicyIdx)) {
        for &policy in &group.unkeyed {
            visit(self, policy);
        }
        if !group.by_principal.is_empty() {
            let principal = self.request.principal;
            self.visit_entity_keys(&group.by_principal, principal, visit);
        }
        if !group.by_resource.is_empty() {
            let resource = self.request.resource;
            self.visit_entity_keys(&group.by_resource, resource, visit);
        }
        for key in &group.by_value {
            match self.eval(&key.key) {
                Ok(value) => {
                    if let Some(policies) = key.policies.get(&value) {
                        for &policy in policies {
                            visit(self, policy);
                        }
                    }
                }
                // The key itself failed: every policy of this key meets the same error.
                Err(_) => {
                    for &policy in &key.all {
                        visit(self, policy);
                    }
                }
            }
        }
    }

    fn visit_entity_keys(
        &mut self,
        map: &crate::intern::FxHashMap<EntityUid, Vec<PolicyIdx>>,
        uid: EntityUid,
        visit: &mut impl FnMut(&mut Self, PolicyIdx),
    ) {
        if let Some(policies) = map.get(&uid) {
            for &policy in policies {
                visit(self, policy);
            }
        }
        let ancestors = self.ancestors(uid);
        for ancestor in ancestors.iter() {
            if let Some(policies) = map.get(ancestor) {
                for &policy in policies {
                    visit(self, policy);
                }
            }
        }
    }

    /// Evaluates one policy and records it if it applies (or errors, for a forbid).
    fn consider(&mut self, index: PolicyIdx, effect: Effect, out: &mut Decision) {
        let program = self.program;
        let Some(policy) = program.policies.get(index as usize) else {
            return;
        };
        let applies = match &policy.condition {
            None => true,
            Some(condition) => match self.eval(condition) {
                Ok(Value::Bool(value)) => value,
                Ok(other) => {
                    out.errors.push((
                        ErrorSite::Policy(index),
                        EvalError::WrongType(other.kind_name()),
                    ));
                    effect == Effect::Forbid
                }
                Err(error) => {
                    out.errors.push((ErrorSite::Policy(index), error));
                    effect == Effect::Forbid
                }
            },
        };
        if applies {
            out.determining.push(index);
        }
    }

    /// Appends the obligations of the limits `counted` selects whose condition holds (or fails).
    fn obligations(&mut self, out: &mut Decision, counted: impl Fn(&Limit) -> bool) {
        let program = self.program;
        for (number, limit) in program.limits.iter().enumerate() {
            if !counted(limit) {
                continue;
            }
            let number = u32::try_from(number).unwrap_or(u32::MAX);
            let applies = match &limit.condition {
                None => true,
                Some(condition) => match self.eval(condition) {
                    Ok(Value::Bool(value)) => value,
                    Ok(other) => {
                        out.errors.push((
                            ErrorSite::Limit(number),
                            EvalError::WrongType(other.kind_name()),
                        ));
                        true
                    }
                    // A limit whose condition fails still applies: limits fail closed too.
                    Err(error) => {
                        out.errors.push((ErrorSite::Limit(number), error));
                        true
                    }
                },
            };
            if !applies {
                continue;
            }
            let keys_start = u32::try_from(out.key_values.len()).unwrap_or(u32::MAX);
            for key in &limit.keys {
                let value = match self.eval(key) {
                    Ok(value) => value,
                    Err(error) => {
                        out.errors.push((ErrorSite::Limit(number), error));
                        Value::Absent
                    }
                };
                out.key_values.push(value);
            }
            let keys_len = u32::try_from(limit.keys.len()).unwrap_or(u32::MAX);
            out.obligations.push(Obligation {
                limit: number,
                keys_start,
                keys_len,
            });
        }
    }

    // ---- Reading values ----

    /// The pool a reference points into.
    #[inline]
    pub fn pool(&self, pool: PoolId) -> &ValuePool {
        match pool {
            PoolId::Program => &self.program.pool,
            PoolId::Store => &self.store.pool,
            PoolId::Request => &self.request.pool,
            PoolId::Scratch => &self.scratch.pool,
        }
    }

    /// The elements of a set.
    #[inline]
    pub fn set(&self, set: SetRef) -> &[Value] {
        self.pool(set.pool).slice(set.start, set.len as usize)
    }

    /// An IP range.
    pub fn ip(&self, value: Value) -> Result<IpNet, EvalError> {
        match value {
            Value::Ip(ip) => self
                .pool(ip.pool)
                .ip(ip.index)
                .copied()
                .ok_or(EvalError::WrongType("Ip")),
            other => Err(EvalError::WrongType(other.kind_name())),
        }
    }

    /// The text of a string value.
    pub fn text(&self, value: Value) -> Result<&str, EvalError> {
        match value {
            Value::Str(sym) => Ok(self.resolve(sym)),
            other => Err(EvalError::WrongType(other.kind_name())),
        }
    }

    /// The text of a symbol, wherever it was made.
    pub fn resolve(&self, sym: Sym) -> &str {
        if let Some(text) = self.store.interner.resolve(sym) {
            return text;
        }
        if let Some(text) = self.request.strings.resolve(sym) {
            return text;
        }
        let index = sym.0.saturating_sub(self.scratch.strings_base) as usize;
        self.scratch.strings.get(index).map_or("", |s| &**s)
    }

    /// A string value for `text`, made during evaluation (by `toLower`, say).
    pub fn make_string(&mut self, text: &str) -> Value {
        if let Some(sym) = self.store.interner.get(text) {
            return Value::Str(sym);
        }
        let base = self.request.strings.end();
        for sym in self.store.interner.len()..base {
            if self.request.strings.resolve(Sym(sym)) == Some(text) {
                return Value::Str(Sym(sym));
            }
        }
        if let Some(index) = self.scratch.strings.iter().position(|s| &**s == text) {
            return Value::Str(Sym(base + u32::try_from(index).unwrap_or(0)));
        }
        let sym = Sym(base + u32::try_from(self.scratch.strings.len()).unwrap_or(0));
        self.scratch.strings.push(text.into());
        Value::Str(sym)
    }

    /// An IP value made during evaluation.
    pub fn make_ip(&mut self, ip: IpNet) -> Value {
        Value::Ip(self.scratch.pool.push_ip(PoolId::Scratch, ip))
    }

    // ---- Entities, as the request sees them ----

    /// The attribute slots of an entity: the request's entity when it brought one with this
    /// identity, the store's otherwise; `None` when neither has it.
    #[inline]
    pub fn entity_attrs(&self, uid: EntityUid) -> Option<&'a [Value]> {
        let cache = if uid == self.request.principal {
            &self.principal_attrs
        } else if uid == self.request.resource {
            &self.resource_attrs
        } else {
            return self.look_up_attrs(uid);
        };
        match cache.get() {
            Cached::Known(attrs) => attrs,
            Cached::Unknown => {
                let attrs = self.look_up_attrs(uid);
                cache.set(Cached::Known(attrs));
                attrs
            }
        }
    }

    /// [`Evaluator::entity_attrs`] without the cache.
    #[inline]
    fn look_up_attrs(&self, uid: EntityUid) -> Option<&'a [Value]> {
        let request = self.request;
        if let Some(overlay) = request.entities.as_deref() {
            if let Some(entity) = overlay.get(uid) {
                return Some(
                    request
                        .pool
                        .slice(entity.attrs_start, entity.attrs_len as usize),
                );
            }
        }
        let store = self.store;
        store.get(uid).map(|entity| store.attrs(entity))
    }

    /// The ancestors of an entity, sorted, through the request's entities when it brought any.
    #[inline]
    pub fn ancestors(&self, uid: EntityUid) -> Cow<'a, [EntityUid]> {
        let store = self.store;
        if uid.ty == self.program.schema.action_type {
            // Actions are not in the store: their groups come with the program.
            return Cow::Borrowed(self.program.schema.action_groups(uid.id));
        }
        match self.request.entities.as_deref() {
            None => Cow::Borrowed(store.ancestors(uid)),
            Some(overlay) => overlay.ancestors(store, uid),
        }
    }

    /// Whether `ancestor` is a proper ancestor of `uid`, through the request's entities when it
    /// brought any.
    #[inline]
    pub fn is_ancestor(&self, uid: EntityUid, ancestor: EntityUid) -> bool {
        let schema = &self.program.schema;
        if uid.ty == schema.action_type {
            // Actions are not in the store: their groups come with the program.
            return schema
                .action_groups(uid.id)
                .binary_search(&ancestor)
                .is_ok();
        }
        match self.request.entities.as_deref() {
            None => self.store.is_ancestor(uid, ancestor),
            Some(overlay) => overlay.is_ancestor(self.store, uid, ancestor),
        }
    }

    /// The value of attribute `attr` of an entity or record; `Ok(None)` when absent.
    fn attribute(&self, base: Value, attr: AttrId) -> Result<Option<Value>, EvalError> {
        match base {
            Value::Entity(uid) => {
                let attrs = self
                    .entity_attrs(uid)
                    .ok_or(EvalError::EntityNotFound(uid))?;
                let schema = &self.program.schema;
                let layout = schema
                    .entity_type(uid.ty)
                    .and_then(|def| schema.layout(def.layout));
                let Some(slot) = layout.and_then(|layout| layout.slot(attr)) else {
                    return Ok(None);
                };
                Ok(attrs.get(slot).copied().filter(|v| *v != Value::Absent))
            }
            Value::Record(record) => Ok(self.field(record, attr)),
            other => Err(EvalError::WrongType(other.kind_name())),
        }
    }

    fn field(&self, record: RecordRef, attr: AttrId) -> Option<Value> {
        let layout = self.program.schema.layout(record.layout)?;
        let slot = layout.slot(attr)?;
        let value = self
            .pool(record.pool)
            .slice(record.start + u32::try_from(slot).ok()?, 1)
            .first()
            .copied()?;
        (value != Value::Absent).then_some(value)
    }

    // ---- Evaluation ----

    /// Evaluates an expression.
    pub fn eval(&mut self, expr: &Expr) -> Result<Value, EvalError> {
        match expr {
            Expr::Lit(value) => Ok(*value),
            Expr::Var(var) => Ok(match var {
                Var::Principal => Value::Entity(self.request.principal),
                Var::Action => Value::Entity(self.request.action),
                Var::Resource => Value::Entity(self.request.resource),
                Var::Context => Value::Record(self.request.context),
            }),
            Expr::Attr(base, attr) => {
                let base = self.eval(base)?;
                self.attribute(base, *attr)?
                    .ok_or(EvalError::AttributeAbsent(*attr))
            }
            Expr::Has(base, attr) => {
                let base = self.eval(base)?;
                match self.attribute(base, *attr) {
                    Ok(value) => Ok(Value::Bool(value.is_some())),
                    Err(EvalError::EntityNotFound(_)) => Ok(Value::Bool(false)),
                    Err(error) => Err(error),
                }
            }
            Expr::Not(operand) => Ok(Value::Bool(!self.eval_bool(operand)?)),
            Expr::Neg(operand) => {
                let value = self.eval_long(operand)?;
                value
                    .checked_neg()
                    .map(Value::Long)
                    .ok_or(EvalError::Overflow(Overflow::Neg(value)))
            }
            Expr::And(lhs, rhs) => Ok(Value::Bool(self.eval_bool(lhs)? && self.eval_bool(rhs)?)),
            Expr::Or(lhs, rhs) => Ok(Value::Bool(self.eval_bool(lhs)? || self.eval_bool(rhs)?)),
            Expr::If(cond, then_branch, else_branch) => {
                if self.eval_bool(cond)? {
                    self.eval(then_branch)
                } else {
                    self.eval(else_branch)
                }
            }
            Expr::Eq(lhs, rhs) => {
                let lhs = self.eval(lhs)?;
                let rhs = self.eval(rhs)?;
                Ok(Value::Bool(self.equal(lhs, rhs)))
            }
            Expr::Cmp(op, lhs, rhs) => {
                let lhs = self.eval(lhs)?;
                let rhs = self.eval(rhs)?;
                let ordering = match (lhs, rhs) {
                    (Value::Long(a), Value::Long(b))
                    | (Value::Timestamp(a), Value::Timestamp(b))
                    | (Value::Duration(a), Value::Duration(b)) => a.cmp(&b),
                    (other, _) => return Err(EvalError::WrongType(other.kind_name())),
                };
                Ok(Value::Bool(match op {
                    CmpOp::Lt => ordering == Ordering::Less,
                    CmpOp::Le => ordering != Ordering::Greater,
                    CmpOp::Gt => ordering == Ordering::Greater,
                    CmpOp::Ge => ordering != Ordering::Less,
                }))
            }
            Expr::Arith(op, lhs, rhs) => {
                let lhs = self.eval_long(lhs)?;
                let rhs = self.eval_long(rhs)?;
                let (result, overflow) = match op {
                    ArithOp::Add => (lhs.checked_add(rhs), Overflow::Add(lhs, rhs)),
                    ArithOp::Sub => (lhs.checked_sub(rhs), Overflow::Sub(lhs, rhs)),
                    ArithOp::Mul => (lhs.checked_mul(rhs), Overflow::Mul(lhs, rhs)),
                };
                result.map(Value::Long).ok_or(EvalError::Overflow(overflow))
            }
            Expr::InHierarchy(lhs, rhs) => {
                let lhs = self.eval(lhs)?;
                let rhs = self.eval(rhs)?;
                let Value::Entity(uid) = lhs else {
                    return Err(EvalError::WrongType(lhs.kind_name()));
                };
                match rhs {
                    Value::Entity(target) => {
                        Ok(Value::Bool(uid == target || self.is_ancestor(uid, target)))
                    }
                    Value::Set(set) => {
                        let elements = self.set(set);
                        let found = self.set_has(elements, Value::Entity(uid))
                            || self
                                .ancestors(uid)
                                .iter()
                                .any(|a| self.set_has(elements, Value::Entity(*a)));
                        Ok(Value::Bool(found))
                    }
                    other => Err(EvalError::WrongType(other.kind_name())),
                }
            }
            Expr::Contains(set, element) => {
                let set = self.eval_set(set)?;
                let element = self.eval(element)?;
                Ok(Value::Bool(self.set_has(self.set(set), element)))
            }
            Expr::ContainsAll(lhs, rhs) => {
                let lhs = self.eval_set(lhs)?;
                let rhs = self.eval_set(rhs)?;
                let haystack = self.set(lhs);
                Ok(Value::Bool(
                    self.set(rhs).iter().all(|v| self.set_has(haystack, *v)),
                ))
            }
            Expr::ContainsAny(lhs, rhs) => {
                let lhs = self.eval_set(lhs)?;
                let rhs = self.eval_set(rhs)?;
                let haystack = self.set(lhs);
                Ok(Value::Bool(
                    self.set(rhs).iter().any(|v| self.set_has(haystack, *v)),
                ))
            }
            Expr::IsEmpty(set) => {
                let set = self.eval_set(set)?;
                Ok(Value::Bool(set.len == 0))
            }
            Expr::Like(base, pattern) => {
                let value = self.eval(base)?;
                let text = self.text(value)?;
                Ok(Value::Bool(glob_match(pattern, text)))
            }
            Expr::Is(base, ty) => match self.eval(base)? {
                Value::Entity(uid) => Ok(Value::Bool(uid.ty == *ty)),
                other => Err(EvalError::WrongType(other.kind_name())),
            },
            Expr::Call(function, args) => {
                let mut values = [Value::Absent; 4];
                if args.len() > values.len() {
                    return Err(EvalError::WrongType("too many arguments"));
                }
                for (slot, arg) in values.iter_mut().zip(args.iter()) {
                    *slot = self.eval(arg)?;
                }
                let values = values.get(..args.len()).unwrap_or(&[]);
                function(self, values)
            }
            Expr::SetLit(elements) => {
                let mut values = Vec::with_capacity(elements.len());
                for element in elements.iter() {
                    values.push(self.eval(element)?);
                }
                values.sort_by(|a, b| compare(self, *a, *b));
                values.dedup_by(|a, b| compare(self, *a, *b) == Ordering::Equal);
                Ok(Value::Set(
                    self.scratch.pool.push_set(PoolId::Scratch, &values),
                ))
            }
            Expr::RecordLit(layout, fields) => {
                let mut values = Vec::with_capacity(fields.len());
                for field in fields.iter() {
                    values.push(self.eval(field)?);
                }
                Ok(Value::Record(self.scratch.pool.push_record(
                    PoolId::Scratch,
                    *layout,
                    &values,
                )))
            }
            Expr::Shared(index) => {
                let generation = self.scratch.generation;
                if let Some((seen, result)) = self.scratch.memo.get(*index as usize) {
                    if *seen == generation {
                        return *result;
                    }
                }
                let program = self.program;
                let Some(shared) = program.shared.get(*index as usize) else {
                    return Err(EvalError::WrongType("shared expression"));
                };
                let result = self.eval(shared);
                if let Some(entry) = self.scratch.memo.get_mut(*index as usize) {
                    *entry = (generation, result);
                }
                result
            }
        }
    }

    fn eval_bool(&mut self, expr: &Expr) -> Result<bool, EvalError> {
        match self.eval(expr)? {
            Value::Bool(value) => Ok(value),
            other => Err(EvalError::WrongType(other.kind_name())),
        }
    }

    fn eval_long(&mut self, expr: &Expr) -> Result<i64, EvalError> {
        match self.eval(expr)? {
            Value::Long(value) => Ok(value),
            other => Err(EvalError::WrongType(other.kind_name())),
        }
    }

    fn eval_set(&mut self, expr: &Expr) -> Result<SetRef, EvalError> {
        match self.eval(expr)? {
            Value::Set(set) => Ok(set),
            other => Err(EvalError::WrongType(other.kind_name())),
        }
    }

    /// Whether the sorted `elements` contain `value`.
    fn set_has(&self, elements: &[Value], value: Value) -> bool {
        elements
            .binary_search_by(|probe| compare(self, *probe, value))
            .is_ok()
    }

    /// Deep equality.
    pub fn equal(&self, a: Value, b: Value) -> bool {
        compare(self, a, b) == Ordering::Equal
    }
}

/// Access to the pools that values point into, for comparing and sorting values.
pub trait Pools {
    /// The pool with this id.
    fn pool(&self, pool: PoolId) -> &ValuePool;
    /// The layout fields' attribute ids, to compare records of different layouts.
    fn layout_attrs(&self, layout: crate::value::LayoutId) -> &[crate::schema::FieldDef];
}

impl Pools for Evaluator<'_> {
    fn pool(&self, pool: PoolId) -> &ValuePool {
        Evaluator::pool(self, pool)
    }
    fn layout_attrs(&self, layout: crate::value::LayoutId) -> &[crate::schema::FieldDef] {
        self.program
            .schema
            .layout(layout)
            .map_or(&[], |layout| &layout.fields)
    }
}

/// The total order of values: by kind, then by content; sets and records compare deeply. Strings
/// order by symbol, which is consistent within one program, store and request.
pub fn compare(pools: &impl Pools, a: Value, b: Value) -> Ordering {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(&y),
        (Value::Long(x), Value::Long(y)) => x.cmp(&y),
        (Value::Str(x), Value::Str(y)) => x.cmp(&y),
        (Value::Entity(x), Value::Entity(y)) => x.cmp(&y),
        (Value::Timestamp(x), Value::Timestamp(y)) => x.cmp(&y),
        (Value::Duration(x), Value::Duration(y)) => x.cmp(&y),
        (Value::Ip(x), Value::Ip(y)) => {
            let x = pools.pool(x.pool).ip(x.index);
            let y = pools.pool(y.pool).ip(y.index);
            x.cmp(&y)
        }
        (Value::Set(x), Value::Set(y)) => {
            let xs = pools.pool(x.pool).slice(x.start, x.len as usize);
            let ys = pools.pool(y.pool).slice(y.start, y.len as usize);
            for (p, q) in xs.iter().zip(ys) {
                let ordering = compare(pools, *p, *q);
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            xs.len().cmp(&ys.len())
        }
        (Value::Record(x), Value::Record(y)) => compare_records(pools, x, y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Records compare field by field in attribute order, whatever their layouts.
fn compare_records(pools: &impl Pools, x: RecordRef, y: RecordRef) -> Ordering {
    let fields = |record: RecordRef| {
        let attrs = pools.layout_attrs(record.layout);
        let values = pools.pool(record.pool).slice(record.start, attrs.len());
        let mut pairs: Vec<(AttrId, Value)> = attrs
            .iter()
            .zip(values)
            .filter(|(_, v)| **v != Value::Absent)
            .map(|(f, v)| (f.attr, *v))
            .collect();
        pairs.sort_by_key(|(attr, _)| *attr);
        pairs
    };
    if x.layout == y.layout && x.pool == y.pool && x.start == y.start {
        return Ordering::Equal;
    }
    let xs = fields(x);
    let ys = fields(y);
    for ((xa, xv), (ya, yv)) in xs.iter().zip(&ys) {
        let ordering = xa.cmp(ya).then_with(|| compare(pools, *xv, *yv));
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    xs.len().cmp(&ys.len())
}

fn rank(value: Value) -> u8 {
    match value {
        Value::Bool(_) => 0,
        Value::Long(_) => 1,
        Value::Str(_) => 2,
        Value::Entity(_) => 3,
        Value::Set(_) => 4,
        Value::Record(_) => 5,
        Value::Ip(_) => 6,
        Value::Timestamp(_) => 7,
        Value::Duration(_) => 8,
        Value::Absent => 9,
    }
}

/// Whether `text` matches a glob: literal pieces in order, `*` matching any run of characters.
pub fn glob_match(pattern: &[GlobPart], text: &str) -> bool {
    let mut rest = text;
    let mut anchored = true;
    let count = pattern.len();
    for (position, part) in pattern.iter().enumerate() {
        match part {
            GlobPart::Star => anchored = false,
            GlobPart::Literal(literal) => {
                let last = position + 1 == count;
                if anchored {
                    let Some(after) = rest.strip_prefix(&**literal) else {
                        return false;
                    };
                    rest = after;
                } else if last {
                    // The last literal after a star must end the text.
                    return rest.ends_with(&**literal);
                } else {
                    let Some(found) = rest.find(&**literal) else {
                        return false;
                    };
                    rest = rest.get(found + literal.len()..).unwrap_or("");
                }
                anchored = true;
            }
        }
    }
    !anchored || rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(parts: &[&str]) -> Vec<GlobPart> {
        parts
            .iter()
            .map(|p| {
                if *p == "*" {
                    GlobPart::Star
                } else {
                    GlobPart::Literal((*p).into())
                }
            })
            .collect()
    }

    #[test]
    fn glob_matches_like_a_shell() {
        assert!(glob_match(&glob(&["release/", "*"]), "release/1.2"));
        assert!(!glob_match(&glob(&["release/", "*"]), "main"));
        assert!(glob_match(&glob(&["*", ".md"]), "README.md"));
        assert!(!glob_match(&glob(&["*", ".md"]), "README.mdx"));
        assert!(glob_match(&glob(&["a", "*", "b", "*", "c"]), "axxbyyc"));
        assert!(glob_match(&glob(&["a", "*", "a"]), "aa"));
        assert!(!glob_match(&glob(&["a", "*", "a"]), "a"));
        assert!(glob_match(&glob(&["exact"]), "exact"));
        assert!(!glob_match(&glob(&["exact"]), "exactly"));
        assert!(glob_match(&glob(&["*"]), ""));
        assert!(glob_match(&glob(&[]), ""));
        assert!(!glob_match(&glob(&[]), "x"));
    }
}
