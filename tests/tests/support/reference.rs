//! A reference evaluator: a direct, small interpreter over the syntax tree (`authz_lang::ast`)
//! and the JSON entities and requests of `docs/language.md`, written to be obviously correct rather than
//! fast. It shares nothing with the engine but the parser: no lowering, no index, no sharing, no
//! interning, no precomputed hierarchy closure.
//!
//! The semantics it implements (binding, `docs/language.md`): a policy applies when its condition is
//! true: scope tests (principal, action, resource), then `when` clauses and negated `unless`
//! clauses, left to right; `&&`/`||` short-circuit left to right and `if` is lazy. Allow iff at
//! least one permit applies and no forbid applies; a permit whose condition errors does not apply,
//! a forbid whose condition errors applies. Errors: reading an attribute of an entity not in the
//! store, reading an absent attribute, `Long` overflow, a bad extension string at run time.
//! `a in b` for an entity `a`: `a == b` or `b` is an ancestor of `a` (transitive parents; an entity
//! missing from the store has no parents); for a set `b`: `a` is in any element. For a non-entity
//! `a`: set membership. `has` on a missing entity is false.
//!
//! Standard library: the string methods (`startsWith`, `endsWith`, `contains`, `toLower`,
//! `toUpper`, `length`) and `ip(...)` with `isInRange`, `isIpv4`, `isIpv6`, `isLoopback`. The
//! time functions are not covered (the generator does not produce them); meeting one is reported
//! as an unsupported construct.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::net::IpAddr;

use authz_lang::ast::{self, BinaryOp, ExprKind, UnaryOp};
use serde_json::Value as Json;

/// An entity identity: type and id.
pub type Uid = (String, String);

/// A value. Sets are ordered sets, records ordered maps: equality is structural.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Val {
    /// `Bool`
    Bool(bool),
    /// `Long`
    Long(i64),
    /// `String`
    Str(String),
    /// An entity reference.
    Entity(Uid),
    /// `Set<T>`
    Set(BTreeSet<Val>),
    /// A record; absent optional fields are not in the map.
    Record(BTreeMap<String, Val>),
    /// An IP address with its prefix length (the network, for ranges).
    Ip(IpAddr, u8),
}

/// Why an expression has no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefError {
    /// Read an attribute of an entity that is not in the store.
    NoEntity(Uid),
    /// Read an attribute that is absent.
    NoAttr(String),
    /// `Long` overflow.
    Overflow,
    /// A bad extension literal at run time.
    Extension(String),
    /// A value of the wrong kind: impossible for a well-typed set (a bug somewhere).
    Type(String),
    /// A construct the reference does not implement.
    Unsupported(String),
}

/// What happened to one policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Its condition is true.
    Applies,
    /// Its condition is false.
    DoesNotApply,
    /// Its condition has no value.
    Error(RefError),
}

/// The reference's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefDecision {
    /// Allow or deny.
    pub allow: bool,
    /// Permits that applied when allowed; forbids that applied (or errored) when denied.
    pub determining: BTreeSet<String>,
    /// Every policy whose condition errored, forbids and permits.
    pub errored: BTreeSet<String>,
    /// The forbids among `errored`.
    pub errored_forbids: BTreeSet<String>,
    /// Every policy with its verdict, in source order.
    pub verdicts: Vec<(String, ast::Effect, Verdict)>,
}

impl RefDecision {
    /// Errors that mean a bug (a type error at run time, or an unsupported construct).
    pub fn bug_errors(&self) -> Vec<(String, RefError)> {
        self.verdicts
            .iter()
            .filter_map(|(id, _, verdict)| match verdict {
                Verdict::Error(error @ (RefError::Type(_) | RefError::Unsupported(_))) => {
                    Some((id.clone(), error.clone()))
                }
                _ => None,
            })
            .collect()
    }
}

struct EntityDef {
    attrs: Vec<ast::FieldType>,
}

struct StoredEntity {
    attrs: BTreeMap<String, Val>,
    parents: Vec<Uid>,
}

struct RefPolicy {
    id: String,
    policy: ast::Policy,
}

/// A policy set, entities and the schema declarations, ready to decide requests.
pub struct Reference {
    entity_types: HashMap<String, EntityDef>,
    contexts: HashMap<String, Option<ast::TypeExpr>>,
    aliases: HashMap<String, ast::TypeExpr>,
    policies: Vec<RefPolicy>,
    store: HashMap<Uid, StoredEntity>,
}

/// The type name of actions.
const ACTION: &str = "Action";

impl Reference {
    /// Parses `files` (name, text) and reads `entities` (the entities JSON). The files must be
    /// free of syntax errors, and the entities valid for their schema.
    pub fn new(files: &[(String, String)], entities: &Json) -> Result<Reference, String> {
        let mut reference = Reference {
            entity_types: HashMap::new(),
            contexts: HashMap::new(),
            aliases: HashMap::new(),
            policies: Vec::new(),
            store: HashMap::new(),
        };
        for (name, text) in files {
            let parse = authz_lang::parse(text);
            if !parse.errors.is_empty() {
                return Err(format!("syntax errors in {name}: {:?}", parse.errors));
            }
            for item in parse.file.items {
                match item.kind {
                    ast::ItemKind::Entity(decl) => {
                        let attrs = decl.attrs.map(|r| r.fields).unwrap_or_default();
                        reference
                            .entity_types
                            .insert(decl.name.name.clone(), EntityDef { attrs });
                    }
                    ast::ItemKind::Action(decl) => {
                        // Actions and groups are entities of the type `Action` whose parents
                        // are their groups.
                        let parents: Vec<Uid> = decl
                            .groups
                            .iter()
                            .map(|group| (ACTION.to_owned(), group.name.clone()))
                            .collect();
                        for action in &decl.names {
                            if let Some(signature) = &decl.signature {
                                reference
                                    .contexts
                                    .insert(action.name.clone(), signature.context.clone());
                            }
                            reference.store.insert(
                                (ACTION.to_owned(), action.name.clone()),
                                StoredEntity {
                                    attrs: BTreeMap::new(),
                                    parents: parents.clone(),
                                },
                            );
                        }
                    }
                    ast::ItemKind::TypeAlias(decl) => {
                        reference.aliases.insert(decl.name.name.clone(), decl.ty);
                    }
                    ast::ItemKind::Policy(policy) => {
                        let id = item
                            .annotations
                            .iter()
                            .find(|a| a.name.name == "id")
                            .and_then(|a| a.value.as_ref())
                            .map(|v| v.value.clone())
                            .unwrap_or_else(|| {
                                let offset = item.span.start();
                                let line = text[..offset].matches('\n').count() + 1;
                                format!("{name}:{line}")
                            });
                        reference.policies.push(RefPolicy { id, policy });
                    }
                    ast::ItemKind::Route(_) | ast::ItemKind::Limit(_) => {}
                }
            }
        }
        let list = entities.as_array().ok_or("entities must be an array")?;
        for entity in list {
            let uid = json_uid(entity)?;
            let def = reference
                .entity_types
                .get(&uid.0)
                .ok_or_else(|| format!("unknown type {}", uid.0))?;
            let mut attrs = BTreeMap::new();
            if let Some(Json::Object(given)) = entity.get("attrs") {
                for field in &def.attrs {
                    if let Some(value) = given.get(&field.name.name) {
                        attrs.insert(
                            field.name.name.clone(),
                            reference.value_from_json(value, &field.ty)?,
                        );
                    }
                }
            }
            let mut parents = Vec::new();
            if let Some(Json::Array(given)) = entity.get("parents") {
                for parent in given {
                    parents.push(json_uid(parent)?);
                }
            }
            reference.store.insert(uid, StoredEntity { attrs, parents });
        }
        Ok(reference)
    }

    /// A JSON value of the given declared type.
    fn value_from_json(&self, json: &Json, ty: &ast::TypeExpr) -> Result<Val, String> {
        Ok(match ty {
            ast::TypeExpr::Named(name) => match name.name.as_str() {
                "Bool" => Val::Bool(json.as_bool().ok_or("expected Bool")?),
                "Long" => Val::Long(json.as_i64().ok_or("expected Long")?),
                "String" => Val::Str(json.as_str().ok_or("expected String")?.to_owned()),
                "Ip" => {
                    parse_ip(json.as_str().ok_or("expected Ip")?).map_err(|e| format!("{e:?}"))?
                }
                alias if self.aliases.contains_key(alias) => {
                    let ty = self.aliases.get(alias).ok_or("an alias")?;
                    self.value_from_json(json, ty)?
                }
                _ => Val::Entity(json_uid(json)?),
            },
            ast::TypeExpr::Set(element, _) => {
                let mut set = BTreeSet::new();
                for item in json.as_array().ok_or("expected a set")? {
                    set.insert(self.value_from_json(item, element)?);
                }
                Val::Set(set)
            }
            ast::TypeExpr::Record(record) => self.record_value_from_json(json, Some(record))?,
        })
    }

    fn record_value_from_json(
        &self,
        json: &Json,
        record: Option<&ast::RecordType>,
    ) -> Result<Val, String> {
        let mut fields = BTreeMap::new();
        if let Some(record) = record {
            for field in &record.fields {
                if let Some(value) = json.get(&field.name.name) {
                    fields.insert(
                        field.name.name.clone(),
                        self.value_from_json(value, &field.ty)?,
                    );
                }
            }
        }
        Ok(Val::Record(fields))
    }

    /// The ancestors of `uid`: its parents, their parents, and so on. An entity that is not in
    /// the store has no parents.
    fn ancestors(&self, uid: &Uid) -> HashSet<Uid> {
        let mut seen = HashSet::new();
        let mut queue: VecDeque<Uid> = VecDeque::new();
        queue.push_back(uid.clone());
        while let Some(next) = queue.pop_front() {
            if let Some(entity) = self.store.get(&next) {
                for parent in &entity.parents {
                    if seen.insert(parent.clone()) {
                        queue.push_back(parent.clone());
                    }
                }
            }
        }
        seen
    }

    /// `a in b` over the hierarchy.
    fn in_entity(&self, a: &Uid, b: &Uid) -> bool {
        a == b || self.ancestors(a).contains(b)
    }

    /// Decides a request given as the JSON of the decision API.
    pub fn decide(&self, request: &Json) -> Result<RefDecision, String> {
        let principal = json_uid(request.get("principal").ok_or("no principal")?)?;
        let resource = json_uid(request.get("resource").ok_or("no resource")?)?;
        let action = request
            .get("action")
            .and_then(Json::as_str)
            .ok_or("no action")?
            .to_owned();
        let context_type = self
            .contexts
            .get(&action)
            .ok_or_else(|| format!("unknown action {action}"))?;
        let empty = Json::Object(serde_json::Map::new());
        let context = match context_type {
            Some(ty) => self.value_from_json(request.get("context").unwrap_or(&empty), ty)?,
            None => self.record_value_from_json(request.get("context").unwrap_or(&empty), None)?,
        };
        let env = Env {
            principal,
            action: (ACTION.to_owned(), action),
            resource,
            context,
        };
        let mut decision = RefDecision {
            allow: false,
            determining: BTreeSet::new(),
            errored: BTreeSet::new(),
            errored_forbids: BTreeSet::new(),
            verdicts: Vec::new(),
        };
        let mut permits = BTreeSet::new();
        let mut forbids = BTreeSet::new();
        for policy in &self.policies {
            let verdict = match self.condition(&policy.policy, &env) {
                Ok(true) => Verdict::Applies,
                Ok(false) => Verdict::DoesNotApply,
                Err(error) => Verdict::Error(error),
            };
            let forbid = policy.policy.effect == ast::Effect::Forbid;
            let errored = matches!(verdict, Verdict::Error(_));
            if errored {
                decision.errored.insert(policy.id.clone());
                if forbid {
                    decision.errored_forbids.insert(policy.id.clone());
                }
            }
            // Fail closed: an erroring forbid applies, an erroring permit does not.
            let applies = verdict == Verdict::Applies || (forbid && errored);
            if applies {
                if forbid {
                    forbids.insert(policy.id.clone());
                } else {
                    permits.insert(policy.id.clone());
                }
            }
            decision
                .verdicts
                .push((policy.id.clone(), policy.policy.effect, verdict));
        }
        decision.allow = !permits.is_empty() && forbids.is_empty();
        decision.determining = if decision.allow { permits } else { forbids };
        Ok(decision)
    }

    /// The condition of a policy: scope, then `when` and `unless` clauses, left to right.
    fn condition(&self, policy: &ast::Policy, env: &Env) -> Result<bool, RefError> {
        if !self.scope(&policy.principal, &env.principal) {
            return Ok(false);
        }
        // A name in the action scope is an action or a group: the request's action is it or in it.
        let action_in = |name: &ast::Ident| {
            self.in_entity(&env.action, &(ACTION.to_owned(), name.name.clone()))
        };
        let action_ok = match &policy.action.kind {
            ast::ActionScopeKind::Any => true,
            ast::ActionScopeKind::One(name) => action_in(name),
            ast::ActionScopeKind::AnyOf(names) => names.iter().any(action_in),
        };
        if !action_ok {
            return Ok(false);
        }
        if !self.scope(&policy.resource, &env.resource) {
            return Ok(false);
        }
        for condition in &policy.conditions {
            let value = as_bool(self.eval(&condition.expr, env)?)?;
            let holds = match condition.kind {
                ast::ConditionKind::When => value,
                ast::ConditionKind::Unless => !value,
            };
            if !holds {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn scope(&self, scope: &ast::Scope, var: &Uid) -> bool {
        let uid = |r: &ast::EntityRef| (r.ty.name.clone(), r.id.value.clone());
        match &scope.kind {
            ast::ScopeKind::Any => true,
            ast::ScopeKind::Is(ty) => var.0 == ty.name,
            ast::ScopeKind::IsIn(ty, target) => {
                var.0 == ty.name && self.in_entity(var, &uid(target))
            }
            ast::ScopeKind::Eq(target) => *var == uid(target),
            ast::ScopeKind::In(target) => self.in_entity(var, &uid(target)),
        }
    }

    /// Evaluates an expression.
    fn eval(&self, expr: &ast::Expr, env: &Env) -> Result<Val, RefError> {
        match &expr.kind {
            ExprKind::Bool(b) => Ok(Val::Bool(*b)),
            ExprKind::Int(n) => Ok(Val::Long(*n)),
            ExprKind::Str(s) => Ok(Val::Str(s.clone())),
            ExprKind::Var(var) => Ok(match var {
                ast::Var::Principal => Val::Entity(env.principal.clone()),
                ast::Var::Action => Val::Entity(env.action.clone()),
                ast::Var::Resource => Val::Entity(env.resource.clone()),
                ast::Var::Context => env.context.clone(),
            }),
            ExprKind::Call { callee, args } => {
                if callee.name == ACTION || self.entity_types.contains_key(&callee.name) {
                    return match args.as_slice() {
                        [ast::Expr {
                            kind: ExprKind::Str(id),
                            ..
                        }] => Ok(Val::Entity((callee.name.clone(), id.clone()))),
                        _ => Err(RefError::Type("entity literal".into())),
                    };
                }
                let mut values = Vec::new();
                for arg in args {
                    values.push(self.eval(arg, env)?);
                }
                match (callee.name.as_str(), values.as_slice()) {
                    ("ip", [Val::Str(text)]) => parse_ip(text),
                    (name, _) => Err(RefError::Unsupported(format!("function {name}"))),
                }
            }
            ExprKind::Attr { base, attr } => {
                let base = self.eval(base, env)?;
                match self.attribute(&base, &attr.name)? {
                    Some(value) => Ok(value),
                    None => Err(RefError::NoAttr(attr.name.clone())),
                }
            }
            ExprKind::Has { base, attr } => {
                let base = self.eval(base, env)?;
                match self.attribute(&base, &attr.name) {
                    Ok(value) => Ok(Val::Bool(value.is_some())),
                    Err(RefError::NoEntity(_)) => Ok(Val::Bool(false)),
                    Err(error) => Err(error),
                }
            }
            ExprKind::MethodCall {
                receiver,
                method,
                args,
            } => {
                let receiver = self.eval(receiver, env)?;
                let mut values = Vec::new();
                for arg in args {
                    values.push(self.eval(arg, env)?);
                }
                method_call(&receiver, &method.name, &values)
            }
            ExprKind::Like { base, pattern } => {
                let Val::Str(text) = self.eval(base, env)? else {
                    return Err(RefError::Type("like on a non-string".into()));
                };
                let chars: Vec<char> = text.chars().collect();
                Ok(Val::Bool(glob(&glob_pattern(&pattern.value), &chars)))
            }
            ExprKind::Is { base, ty, in_expr } => {
                let Val::Entity(uid) = self.eval(base, env)? else {
                    return Err(RefError::Type("is on a non-entity".into()));
                };
                if uid.0 != ty.name {
                    return Ok(Val::Bool(false));
                }
                match in_expr {
                    None => Ok(Val::Bool(true)),
                    Some(target) => {
                        let target = self.eval(target, env)?;
                        self.in_op(&Val::Entity(uid), &target)
                    }
                }
            }
            ExprKind::Unary { op, operand } => {
                let value = self.eval(operand, env)?;
                match (op, value) {
                    (UnaryOp::Not, Val::Bool(b)) => Ok(Val::Bool(!b)),
                    (UnaryOp::Neg, Val::Long(n)) => {
                        n.checked_neg().map(Val::Long).ok_or(RefError::Overflow)
                    }
                    (op, value) => Err(RefError::Type(format!("{op:?} on {value:?}"))),
                }
            }
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, env),
            ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => {
                if as_bool(self.eval(cond, env)?)? {
                    self.eval(then_branch, env)
                } else {
                    self.eval(else_branch, env)
                }
            }
            ExprKind::Set(elements) => {
                let mut set = BTreeSet::new();
                for element in elements {
                    set.insert(self.eval(element, env)?);
                }
                Ok(Val::Set(set))
            }
            ExprKind::Record(entries) => {
                let mut record = BTreeMap::new();
                for (name, value) in entries {
                    record.insert(name.name.clone(), self.eval(value, env)?);
                }
                Ok(Val::Record(record))
            }
            ExprKind::Paren(inner) => self.eval(inner, env),
            ExprKind::Error => Err(RefError::Type("error node".into())),
        }
    }

    /// The attribute of an entity or a record: `Ok(None)` when absent, an error for an entity
    /// that is not in the store.
    fn attribute(&self, base: &Val, name: &str) -> Result<Option<Val>, RefError> {
        match base {
            Val::Entity(uid) => match self.store.get(uid) {
                Some(entity) => Ok(entity.attrs.get(name).cloned()),
                None => Err(RefError::NoEntity(uid.clone())),
            },
            Val::Record(fields) => Ok(fields.get(name).cloned()),
            other => Err(RefError::Type(format!("attribute of {other:?}"))),
        }
    }

    fn binary(
        &self,
        op: BinaryOp,
        lhs: &ast::Expr,
        rhs: &ast::Expr,
        env: &Env,
    ) -> Result<Val, RefError> {
        match op {
            BinaryOp::And => {
                if !as_bool(self.eval(lhs, env)?)? {
                    return Ok(Val::Bool(false));
                }
                Ok(Val::Bool(as_bool(self.eval(rhs, env)?)?))
            }
            BinaryOp::Or => {
                if as_bool(self.eval(lhs, env)?)? {
                    return Ok(Val::Bool(true));
                }
                Ok(Val::Bool(as_bool(self.eval(rhs, env)?)?))
            }
            _ => {
                let a = self.eval(lhs, env)?;
                let b = self.eval(rhs, env)?;
                match op {
                    BinaryOp::Eq => Ok(Val::Bool(a == b)),
                    BinaryOp::Ne => Ok(Val::Bool(a != b)),
                    BinaryOp::Lt => Ok(Val::Bool(as_long(a)? < as_long(b)?)),
                    BinaryOp::Le => Ok(Val::Bool(as_long(a)? <= as_long(b)?)),
                    BinaryOp::Gt => Ok(Val::Bool(as_long(a)? > as_long(b)?)),
                    BinaryOp::Ge => Ok(Val::Bool(as_long(a)? >= as_long(b)?)),
                    BinaryOp::In => self.in_op(&a, &b),
                    BinaryOp::Add => as_long(a)?
                        .checked_add(as_long(b)?)
                        .map(Val::Long)
                        .ok_or(RefError::Overflow),
                    BinaryOp::Sub => as_long(a)?
                        .checked_sub(as_long(b)?)
                        .map(Val::Long)
                        .ok_or(RefError::Overflow),
                    BinaryOp::Mul => as_long(a)?
                        .checked_mul(as_long(b)?)
                        .map(Val::Long)
                        .ok_or(RefError::Overflow),
                    BinaryOp::And | BinaryOp::Or => unreachable!(),
                }
            }
        }
    }

    /// `a in b`.
    fn in_op(&self, a: &Val, b: &Val) -> Result<Val, RefError> {
        match (a, b) {
            (Val::Entity(a), Val::Entity(b)) => Ok(Val::Bool(self.in_entity(a, b))),
            (Val::Entity(a), Val::Set(set)) => {
                let mut found = false;
                for element in set {
                    match element {
                        Val::Entity(b) => found |= self.in_entity(a, b),
                        other => return Err(RefError::Type(format!("entity in {other:?}"))),
                    }
                }
                Ok(Val::Bool(found))
            }
            (a, Val::Set(set)) => Ok(Val::Bool(set.contains(a))),
            (a, b) => Err(RefError::Type(format!("{a:?} in {b:?}"))),
        }
    }
}

/// The request variables.
struct Env {
    principal: Uid,
    action: Uid,
    resource: Uid,
    context: Val,
}

fn json_uid(json: &Json) -> Result<Uid, String> {
    let ty = json.get("type").and_then(Json::as_str);
    let id = json.get("id").and_then(Json::as_str);
    match (ty, id) {
        (Some(ty), Some(id)) => Ok((ty.to_owned(), id.to_owned())),
        _ => Err(format!("not an entity reference: {json}")),
    }
}

fn as_bool(value: Val) -> Result<bool, RefError> {
    match value {
        Val::Bool(b) => Ok(b),
        other => Err(RefError::Type(format!("expected Bool, found {other:?}"))),
    }
}

fn as_long(value: Val) -> Result<i64, RefError> {
    match value {
        Val::Long(n) => Ok(n),
        other => Err(RefError::Type(format!("expected Long, found {other:?}"))),
    }
}

fn method_call(receiver: &Val, method: &str, args: &[Val]) -> Result<Val, RefError> {
    let bool = |b: bool| Ok(Val::Bool(b));
    match (receiver, method, args) {
        (Val::Set(set), "contains", [element]) => bool(set.contains(element)),
        (Val::Set(set), "containsAll", [Val::Set(other)]) => bool(other.is_subset(set)),
        (Val::Set(set), "containsAny", [Val::Set(other)]) => {
            bool(other.iter().any(|v| set.contains(v)))
        }
        (Val::Set(set), "isEmpty", []) => bool(set.is_empty()),
        (Val::Str(s), "startsWith", [Val::Str(p)]) => bool(s.starts_with(p.as_str())),
        (Val::Str(s), "endsWith", [Val::Str(p)]) => bool(s.ends_with(p.as_str())),
        (Val::Str(s), "contains", [Val::Str(p)]) => bool(s.contains(p.as_str())),
        (Val::Str(s), "toLower", []) => Ok(Val::Str(s.to_lowercase())),
        (Val::Str(s), "toUpper", []) => Ok(Val::Str(s.to_uppercase())),
        (Val::Str(s), "length", []) => Ok(Val::Long(s.chars().count() as i64)),
        (Val::Ip(addr, _), "isIpv4", []) => bool(addr.is_ipv4()),
        (Val::Ip(addr, _), "isIpv6", []) => bool(addr.is_ipv6()),
        (Val::Ip(addr, _), "isLoopback", []) => bool(addr.is_loopback()),
        (Val::Ip(addr, prefix), "isInRange", [Val::Ip(range, range_prefix)]) => {
            bool(in_range(*addr, *prefix, *range, *range_prefix))
        }
        _ => Err(RefError::Unsupported(format!(
            "method {method} on {receiver:?} with {args:?}"
        ))),
    }
}

/// `ip("a.b.c.d")`, `ip("a.b.c.d/n")` and the IPv6 forms; the address of a range is its
/// network (host bits cleared).
fn parse_ip(text: &str) -> Result<Val, RefError> {
    let bad = || RefError::Extension(format!("bad ip {text:?}"));
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let full: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => full,
        Some(p) => {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 3 {
                return Err(bad());
            }
            let p: u8 = p.parse().map_err(|_| bad())?;
            if p > full {
                return Err(bad());
            }
            p
        }
    };
    Ok(Val::Ip(mask(addr, prefix), prefix))
}

fn bits(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    let (value, width) = bits(addr);
    let host = width - prefix;
    let masked = if host >= 128 {
        0
    } else {
        (value >> host) << host
    };
    match addr {
        IpAddr::V4(_) => IpAddr::V4((masked as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(masked.into()),
    }
}

/// Whether the range `addr/prefix` lies within `range/range_prefix` (same family only).
fn in_range(addr: IpAddr, prefix: u8, range: IpAddr, range_prefix: u8) -> bool {
    addr.is_ipv4() == range.is_ipv4() && prefix >= range_prefix && mask(addr, range_prefix) == range
}

/// A `like` pattern as characters, `None` standing for `*`. `\*` is a literal star, `\\` a
/// backslash; any other backslash stands for itself.
fn glob_pattern(pattern: &str) -> Vec<Option<char>> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push(None),
            '\\' => match chars.peek() {
                Some(&next @ ('*' | '\\')) => {
                    chars.next();
                    out.push(Some(next));
                }
                _ => out.push(Some('\\')),
            },
            other => out.push(Some(other)),
        }
    }
    out
}

/// Whether `text` matches `pattern`, by plain recursion.
fn glob(pattern: &[Option<char>], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((None, rest)) => (0..=text.len()).any(|skip| glob(rest, &text[skip..])),
        Some((Some(c), rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}
