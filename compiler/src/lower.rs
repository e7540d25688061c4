//! Lowering pass: checked syntax trees to the runtime's decision program.
//!
//! Lowering runs only on a policy set without errors, right after checking and on the same trees,
//! so it may trust every name and type: it reads the checker's [`ExprTypes`] wherever the runtime
//! operation depends on a type (`in` as hierarchy or as set membership, set methods against string
//! methods, record layouts). Names become numbers: strings are interned, attributes are
//! attribute ids, entity types [`TypeId`]s, functions `Builtin` pointers. Constant literals are
//! folded into values of the program's pool (`ip("10.0.0.0/8")`, `[1, 2]`, `-5`).
//!
//! A policy's condition is the conjunction, in source order, of the scope tests the index cannot
//! guarantee (`principal == E`, `principal in E`), then its `when` clauses and negated `unless`
//! clauses. Type tests of the scope and the action test are guaranteed by the index's buckets.

use std::collections::HashMap;
use std::sync::Arc;

use authz_lang::{ast, SourceFile};
use authz_runtime::eval::Pools;
use authz_runtime::intern::Interner;
use authz_runtime::program::{self, ArithOp, CmpOp, Effect, Expr, GlobPart, ScopeTest, Var};
use authz_runtime::route::{self as rt_route, ResourceId, RouteSegment, RouteTable};
use authz_runtime::schema::{self as rt, FieldDef, Layout, ValueType};
use authz_runtime::value::{EntityUid, LayoutId, PoolId, TypeId, Value, ValuePool};

use crate::routes::Segment;
use crate::schema::{RouteId, Schema};
use crate::typeck::{CheckedLimit, CheckedPolicy, ExprTypes};
use crate::types::{RecordType, Type, ACTION_TYPE};

/// A lowered policy with what the index needs to know about it.
pub struct LoweredPolicy {
    /// The policy.
    pub policy: program::Policy,
    /// The first test of its first `when` clause, when it compares an attribute path with a
    /// constant: the index may key the policy by it.
    pub value_key: Option<(Expr, Value)>,
}

/// The program's parts before indexing and sharing.
pub struct Lowered {
    /// Strings.
    pub interner: Interner,
    /// The runtime schema.
    pub schema: rt::Schema,
    /// Constants.
    pub pool: ValuePool,
    /// Policies in file and source order.
    pub policies: Vec<LoweredPolicy>,
    /// Limits in file and source order.
    pub limits: Vec<program::Limit>,
}

/// Lowers the checked items of `files` (index = [`authz_lang::FileId`]); `sources` give file
/// names for default policy ids.
pub fn run(
    schema: &Schema,
    files: &[&ast::File],
    sources: &[SourceFile],
    policies: &[CheckedPolicy],
    limits: &[CheckedLimit],
    types: &ExprTypes,
) -> Lowered {
    let mut lowerer = Lowerer {
        schema,
        types,
        interner: Interner::new(),
        rt: rt::Schema::new(),
        pool: ValuePool::default(),
        type_ids: HashMap::new(),
        layouts: HashMap::new(),
    };
    lowerer.declare_schema();
    let mut lowered_policies = Vec::with_capacity(policies.len());
    for checked in policies {
        let item = files
            .get(checked.file.0 as usize)
            .and_then(|file| file.items.get(checked.item));
        let Some(ast::Item {
            kind: ast::ItemKind::Policy(policy),
            annotations,
            span,
        }) = item
        else {
            continue;
        };
        let source = sources.get(checked.file.0 as usize);
        let id = checked.id.clone().unwrap_or_else(|| match source {
            Some(source) => format!("{}:{}", source.name, source.line_col(span.start()).line),
            None => format!("policy{}", lowered_policies.len()),
        });
        let reason = annotations
            .iter()
            .find(|annotation| annotation.name.name == "reason")
            .and_then(|annotation| annotation.value.as_ref())
            .map(|value| value.value.clone());
        lowered_policies.push(lowerer.policy(checked, policy, id, reason));
    }
    let mut lowered_limits = Vec::with_capacity(limits.len());
    for checked in limits {
        let item = files
            .get(checked.file.0 as usize)
            .and_then(|file| file.items.get(checked.item));
        let Some(ast::Item {
            kind: ast::ItemKind::Limit(limit),
            ..
        }) = item
        else {
            continue;
        };
        lowered_limits.push(lowerer.limit(limit));
    }
    Lowered {
        interner: lowerer.interner,
        schema: lowerer.rt,
        pool: lowerer.pool,
        policies: lowered_policies,
        limits: lowered_limits,
    }
}

struct Lowerer<'a> {
    schema: &'a Schema,
    types: &'a ExprTypes,
    interner: Interner,
    rt: rt::Schema,
    pool: ValuePool,
    type_ids: HashMap<Arc<str>, TypeId>,
    /// Layouts already made, by the record type's description.
    layouts: HashMap<String, LayoutId>,
}

impl Lowerer<'_> {
    // ---- Schema ----

    fn declare_schema(&mut self) {
        // Types first (attributes may refer to any type), then layouts, parents and actions.
        let action_type = self.rt.action_type;
        let empty = self
            .rt
            .entity_type(action_type)
            .map(|def| def.layout)
            .unwrap_or_default();
        for name in self.schema.entity_types.keys() {
            if &**name == ACTION_TYPE {
                self.type_ids.insert(name.clone(), action_type);
                continue;
            }
            let id = self.rt.add_entity_type(name, empty, Vec::new());
            self.type_ids.insert(name.clone(), id);
        }
        let schema = self.schema;
        for (name, entity_type) in &schema.entity_types {
            if &**name == ACTION_TYPE {
                continue;
            }
            let Some(&id) = self.type_ids.get(name) else {
                continue;
            };
            let layout = self.layout(&entity_type.attrs);
            self.rt.set_entity_layout(id, layout);
            let parents = entity_type
                .parents
                .iter()
                .filter_map(|parent| self.type_ids.get(parent).copied())
                .collect();
            self.rt.set_parents(id, parents);
        }
        for (name, action) in &schema.actions {
            let context = self.layout(&action.context);
            let uid = EntityUid {
                ty: action_type,
                id: self.interner.intern(name),
            };
            let principals = self.type_list(action.principals.members());
            let resources = self.type_list(action.resources.members());
            self.rt.add_action(rt::ActionDef {
                name: name.to_string(),
                uid,
                principals,
                resources,
                context,
            });
        }
    }

    fn type_list(&self, names: &[Arc<str>]) -> Vec<TypeId> {
        names
            .iter()
            .filter_map(|name| self.type_ids.get(name).copied())
            .collect()
    }

    fn type_id(&self, name: &str) -> TypeId {
        self.type_ids
            .get(name)
            .copied()
            .unwrap_or(self.rt.action_type)
    }

    /// The layout of a record type: its fields in name order.
    fn layout(&mut self, record: &RecordType) -> LayoutId {
        let description = format!("{record:?}");
        if let Some(id) = self.layouts.get(&description) {
            return *id;
        }
        let mut fields = Vec::with_capacity(record.fields.len());
        for (name, field) in &record.fields {
            let attr = self.rt.attr(name);
            let ty = self.value_type(&field.ty);
            fields.push(FieldDef {
                attr,
                ty,
                optional: field.optional,
            });
        }
        let id = self.rt.add_layout(Layout::new(fields));
        self.layouts.insert(description, id);
        id
    }

    fn value_type(&mut self, ty: &Type) -> ValueType {
        match ty {
            Type::Bool => ValueType::Bool,
            Type::Long => ValueType::Long,
            Type::String => ValueType::String,
            Type::Ip => ValueType::Ip,
            Type::Timestamp => ValueType::Timestamp,
            Type::Duration => ValueType::Duration,
            Type::Set(element) => ValueType::Set(Box::new(self.value_type(element))),
            Type::Record(record) => ValueType::Record(self.layout(record)),
            Type::Entity(union) => ValueType::Entity(self.type_list(union.members())),
            // Neither can be declared; an empty union accepts no value.
            Type::Never | Type::Error => ValueType::Entity(Vec::new()),
        }
    }

    // ---- Items ----

    fn policy(
        &mut self,
        checked: &CheckedPolicy,
        policy: &ast::Policy,
        id: String,
        reason: Option<String>,
    ) -> LoweredPolicy {
        let actions = checked.actions.as_ref().map(|names| {
            names
                .iter()
                .map(|name| EntityUid {
                    ty: self.rt.action_type,
                    id: self.interner.intern(name),
                })
                .collect()
        });
        let principal = self.scope(&policy.principal);
        let resource = self.scope(&policy.resource);
        let mut conjuncts = Vec::new();
        conjuncts.extend(scope_condition(Var::Principal, &principal));
        conjuncts.extend(scope_condition(Var::Resource, &resource));
        let mut value_key = None;
        for (index, condition) in policy.conditions.iter().enumerate() {
            let expr = self.expr(&condition.expr);
            match condition.kind {
                ast::ConditionKind::When => {
                    if index == 0 {
                        value_key = key_test(&expr);
                    }
                    conjuncts.push(expr);
                }
                ast::ConditionKind::Unless => conjuncts.push(Expr::Not(Box::new(expr))),
            }
        }
        let condition = conjuncts
            .into_iter()
            .reduce(|all, next| Expr::And(Box::new(all), Box::new(next)));
        let effect = match policy.effect {
            ast::Effect::Permit => Effect::Permit,
            ast::Effect::Forbid => Effect::Forbid,
        };
        LoweredPolicy {
            policy: program::Policy {
                id,
                effect,
                actions,
                principal,
                resource,
                condition,
                reason,
            },
            value_key,
        }
    }

    fn scope(&mut self, scope: &ast::Scope) -> ScopeTest {
        match &scope.kind {
            ast::ScopeKind::Any => ScopeTest::Any,
            ast::ScopeKind::Is(ty) => ScopeTest::Is(vec![self.type_id(&ty.name)]),
            ast::ScopeKind::IsIn(ty, entity) => {
                ScopeTest::IsIn(vec![self.type_id(&ty.name)], self.entity_ref(entity))
            }
            ast::ScopeKind::Eq(entity) => ScopeTest::Eq(self.entity_ref(entity)),
            ast::ScopeKind::In(entity) => ScopeTest::In(self.entity_ref(entity)),
        }
    }

    fn entity_ref(&mut self, entity: &ast::EntityRef) -> EntityUid {
        EntityUid {
            ty: self.type_id(&entity.ty.name),
            id: self.interner.intern(&entity.id.value),
        }
    }

    fn limit(&mut self, limit: &ast::LimitDecl) -> program::Limit {
        let period_seconds = match limit.unit.name.as_str() {
            "second" => 1,
            "minute" => 60,
            "hour" => 3_600,
            _ => 86_400,
        };
        program::Limit {
            name: limit.name.value.clone(),
            count: u64::try_from(limit.count.value).unwrap_or(1),
            period_seconds,
            keys: limit.keys.iter().map(|key| self.expr(key)).collect(),
            condition: limit
                .condition
                .as_ref()
                .map(|condition| self.expr(condition)),
        }
    }

    // ---- Expressions ----

    fn type_of(&self, expr: &ast::Expr) -> Option<&Type> {
        self.types.get(expr)
    }

    fn expr(&mut self, expr: &ast::Expr) -> Expr {
        match &expr.kind {
            ast::ExprKind::Bool(value) => Expr::Lit(Value::Bool(*value)),
            ast::ExprKind::Int(value) => Expr::Lit(Value::Long(*value)),
            ast::ExprKind::Str(text) => Expr::Lit(Value::Str(self.interner.intern(text))),
            ast::ExprKind::Var(var) => Expr::Var(match var {
                ast::Var::Principal => Var::Principal,
                ast::Var::Action => Var::Action,
                ast::Var::Resource => Var::Resource,
                ast::Var::Context => Var::Context,
            }),
            ast::ExprKind::Call { callee, args } => self.call(callee, args),
            ast::ExprKind::Attr { base, attr } => {
                let attr = self.rt.attr(&attr.name);
                Expr::Attr(Box::new(self.expr(base)), attr)
            }
            ast::ExprKind::MethodCall {
                receiver,
                method,
                args,
            } => self.method(receiver, method, args),
            ast::ExprKind::Has { base, attr } => {
                let attr = self.rt.attr(&attr.name);
                Expr::Has(Box::new(self.expr(base)), attr)
            }
            ast::ExprKind::Like { base, pattern } => {
                Expr::Like(Box::new(self.expr(base)), glob(&pattern.value))
            }
            ast::ExprKind::Is { base, ty, in_expr } => {
                let is = Expr::Is(Box::new(self.expr(base)), self.type_id(&ty.name));
                match in_expr {
                    None => is,
                    Some(target) => {
                        let within = Expr::InHierarchy(
                            Box::new(self.expr(base)),
                            Box::new(self.expr(target)),
                        );
                        Expr::And(Box::new(is), Box::new(within))
                    }
                }
            }
            ast::ExprKind::Unary {
                op: ast::UnaryOp::Not,
                operand,
            } => Expr::Not(Box::new(self.expr(operand))),
            ast::ExprKind::Unary {
                op: ast::UnaryOp::Neg,
                operand,
            } => match self.expr(operand) {
                Expr::Lit(Value::Long(value)) if value.checked_neg().is_some() => {
                    Expr::Lit(Value::Long(-value))
                }
                operand => Expr::Neg(Box::new(operand)),
            },
            ast::ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs),
            ast::ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => Expr::If(
                Box::new(self.expr(cond)),
                Box::new(self.expr(then_branch)),
                Box::new(self.expr(else_branch)),
            ),
            ast::ExprKind::Set(elements) => {
                let elements: Vec<Expr> =
                    elements.iter().map(|element| self.expr(element)).collect();
                self.set_literal(elements)
            }
            ast::ExprKind::Record(entries) => self.record_literal(expr, entries),
            ast::ExprKind::Paren(inner) => self.expr(inner),
            // Trees with errors are never lowered; this keeps the function total.
            ast::ExprKind::Error => Expr::Lit(Value::Bool(false)),
        }
    }

    fn call(&mut self, callee: &ast::Ident, args: &[ast::Expr]) -> Expr {
        if self.schema.entity_types.contains_key(callee.name.as_str()) {
            let id = match args.first().map(|arg| &arg.kind) {
                Some(ast::ExprKind::Str(id)) => id.as_str(),
                _ => "",
            };
            let uid = EntityUid {
                ty: self.type_id(&callee.name),
                id: self.interner.intern(id),
            };
            return Expr::Lit(Value::Entity(uid));
        }
        if let [ast::Expr {
            kind: ast::ExprKind::Str(text),
            ..
        }] = args
        {
            if let Some(value) = self.constant_extension(&callee.name, text) {
                return Expr::Lit(value);
            }
        }
        let args: Vec<Expr> = args.iter().map(|arg| self.expr(arg)).collect();
        match authz_stdlib::builtins::function(&callee.name) {
            Some(function) => Expr::Call(function, args.into_boxed_slice()),
            None => Expr::Lit(Value::Bool(false)),
        }
    }

    /// The value of `ip("...")`, `timestamp("...")` or `duration("...")` with a literal argument.
    fn constant_extension(&mut self, function: &str, text: &str) -> Option<Value> {
        match function {
            "ip" => {
                let ip = authz_stdlib::ip::parse_ip(text).ok()?;
                let ip = authz_runtime::value::IpNet {
                    addr: ip.addr,
                    prefix: ip.prefix,
                };
                Some(Value::Ip(self.pool.push_ip(PoolId::Program, ip)))
            }
            "timestamp" => authz_stdlib::timestamp::parse_timestamp(text)
                .ok()
                .map(Value::Timestamp),
            "duration" => authz_stdlib::duration::parse_duration(text)
                .ok()
                .map(Value::Duration),
            _ => None,
        }
    }

    fn method(&mut self, receiver: &ast::Expr, method: &ast::Ident, args: &[ast::Expr]) -> Expr {
        let receiver_type = self.type_of(receiver).cloned();
        let lowered_receiver = self.expr(receiver);
        let mut lowered_args: Vec<Expr> = args.iter().map(|arg| self.expr(arg)).collect();
        if let Some(Type::Set(_)) = receiver_type {
            let receiver = Box::new(lowered_receiver);
            let mut argument = || {
                lowered_args
                    .pop()
                    .map_or(Box::new(Expr::Lit(Value::Absent)), Box::new)
            };
            return match method.name.as_str() {
                "contains" => Expr::Contains(receiver, argument()),
                "containsAll" => Expr::ContainsAll(receiver, argument()),
                "containsAny" => Expr::ContainsAny(receiver, argument()),
                _ => Expr::IsEmpty(receiver),
            };
        }
        let builtin = receiver_type
            .as_ref()
            .and_then(Type::as_stdlib)
            .and_then(|ty| authz_stdlib::builtins::method(ty, &method.name));
        let Some(builtin) = builtin else {
            return Expr::Lit(Value::Bool(false));
        };
        let mut all = Vec::with_capacity(lowered_args.len() + 1);
        all.push(lowered_receiver);
        all.extend(lowered_args);
        Expr::Call(builtin, all.into_boxed_slice())
    }

    fn binary(&mut self, op: ast::BinaryOp, lhs: &ast::Expr, rhs: &ast::Expr) -> Expr {
        let lhs_is_entity = matches!(self.type_of(lhs), Some(Type::Entity(_)));
        let left = Box::new(self.expr(lhs));
        let right = Box::new(self.expr(rhs));
        match op {
            ast::BinaryOp::Or => Expr::Or(left, right),
            ast::BinaryOp::And => Expr::And(left, right),
            ast::BinaryOp::Eq => Expr::Eq(left, right),
            ast::BinaryOp::Ne => Expr::Not(Box::new(Expr::Eq(left, right))),
            ast::BinaryOp::Lt => Expr::Cmp(CmpOp::Lt, left, right),
            ast::BinaryOp::Le => Expr::Cmp(CmpOp::Le, left, right),
            ast::BinaryOp::Gt => Expr::Cmp(CmpOp::Gt, left, right),
            ast::BinaryOp::Ge => Expr::Cmp(CmpOp::Ge, left, right),
            ast::BinaryOp::In if lhs_is_entity => Expr::InHierarchy(left, right),
            ast::BinaryOp::In => Expr::Contains(right, left),
            ast::BinaryOp::Add => Expr::Arith(ArithOp::Add, left, right),
            ast::BinaryOp::Sub => Expr::Arith(ArithOp::Sub, left, right),
            ast::BinaryOp::Mul => Expr::Arith(ArithOp::Mul, left, right),
        }
    }

    fn set_literal(&mut self, elements: Vec<Expr>) -> Expr {
        let constants: Option<Vec<Value>> = elements
            .iter()
            .map(|element| match element {
                Expr::Lit(value) => Some(*value),
                _ => None,
            })
            .collect();
        let Some(mut values) = constants else {
            return Expr::SetLit(elements.into_boxed_slice());
        };
        let pools = ProgramPools {
            pool: &self.pool,
            schema: &self.rt,
        };
        values.sort_by(|a, b| authz_runtime::eval::compare(&pools, *a, *b));
        values.dedup_by(|a, b| authz_runtime::eval::compare(&pools, *a, *b).is_eq());
        Expr::Lit(Value::Set(self.pool.push_set(PoolId::Program, &values)))
    }

    fn record_literal(&mut self, expr: &ast::Expr, entries: &[(ast::Ident, ast::Expr)]) -> Expr {
        let Some(Type::Record(record)) = self.type_of(expr).cloned() else {
            return Expr::Lit(Value::Bool(false));
        };
        let layout = self.layout(&record);
        let mut fields = Vec::with_capacity(record.fields.len());
        for name in record.fields.keys() {
            let value = entries
                .iter()
                .find(|(field, _)| field.name == **name)
                .map(|(_, value)| value);
            fields.push(match value {
                Some(value) => self.expr(value),
                None => Expr::Lit(Value::Absent),
            });
        }
        let constants: Option<Vec<Value>> = fields
            .iter()
            .map(|field| match field {
                Expr::Lit(value) => Some(*value),
                _ => None,
            })
            .collect();
        match constants {
            Some(values) => Expr::Lit(Value::Record(self.pool.push_record(
                PoolId::Program,
                layout,
                &values,
            ))),
            None => Expr::RecordLit(layout, fields.into_boxed_slice()),
        }
    }
}

/// The condition a scope contributes beyond what the index's buckets guarantee.
fn scope_condition(var: Var, scope: &ScopeTest) -> Option<Expr> {
    let variable = Box::new(Expr::Var(var));
    match scope {
        ScopeTest::Any | ScopeTest::Is(_) => None,
        ScopeTest::Eq(uid) => Some(Expr::Eq(variable, Box::new(Expr::Lit(Value::Entity(*uid))))),
        ScopeTest::In(uid) | ScopeTest::IsIn(_, uid) => Some(Expr::InHierarchy(
            variable,
            Box::new(Expr::Lit(Value::Entity(*uid))),
        )),
    }
}

/// The leftmost test of a condition, when it is `path == constant` (either way round) with a
/// scalar constant and a path of attributes from a request variable.
fn key_test(condition: &Expr) -> Option<(Expr, Value)> {
    let mut first = condition;
    while let Expr::And(lhs, _) = first {
        first = lhs;
    }
    let Expr::Eq(lhs, rhs) = first else {
        return None;
    };
    let (path, constant) = match (&**lhs, &**rhs) {
        (path, Expr::Lit(value)) | (Expr::Lit(value), path) => (path, *value),
        _ => return None,
    };
    let scalar = matches!(
        constant,
        Value::Bool(_) | Value::Long(_) | Value::Str(_) | Value::Entity(_)
    );
    (scalar && is_path(path)).then(|| (path.clone(), constant))
}

fn is_path(expr: &Expr) -> bool {
    match expr {
        Expr::Var(_) => true,
        Expr::Attr(base, _) => is_path(base),
        _ => false,
    }
}

/// Splits a `like` pattern into literal runs and stars; `\*` is a literal star and `\\` a
/// backslash.
fn glob(pattern: &str) -> Box<[GlobPart]> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = pattern.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '*' => {
                if !literal.is_empty() {
                    parts.push(GlobPart::Literal(std::mem::take(&mut literal).into()));
                }
                if parts.last() != Some(&GlobPart::Star) {
                    parts.push(GlobPart::Star);
                }
            }
            '\\' => match chars.next() {
                Some(escaped @ ('*' | '\\')) => literal.push(escaped),
                Some(other) => {
                    literal.push('\\');
                    literal.push(other);
                }
                None => literal.push('\\'),
            },
            other => literal.push(other),
        }
    }
    if !literal.is_empty() {
        parts.push(GlobPart::Literal(literal.into()));
    }
    parts.into_boxed_slice()
}

/// Lowers the checked routes of `schema` into the program's route table. Type and action names
/// resolve in the lowered schema `rt`; a literal resource id is interned, so that the proxy can
/// name the resource without looking the text up. Routes are valid and unambiguous once checked;
/// one whose names do not resolve (impossible after a clean check) is left out.
pub fn routes(schema: &Schema, rt: &rt::Schema, interner: &mut Interner) -> RouteTable {
    let mut table = Vec::with_capacity(schema.routes.len());
    for route in &schema.routes {
        let Some(resource_type) = rt.type_id(&route.resource_type) else {
            continue;
        };
        let resource_id = match &route.resource_id {
            RouteId::Literal(text) => ResourceId::Literal {
                sym: interner.intern(text),
                text: text.as_str().into(),
            },
            RouteId::Param(name) => {
                let Some(index) = route.template.params().position(|param| param == name) else {
                    continue;
                };
                ResourceId::Param(index)
            }
        };
        table.push(rt_route::Route {
            method: route.method,
            path: route.path.as_str().into(),
            segments: route.template.segments.iter().map(route_segment).collect(),
            action: EntityUid {
                ty: rt.action_type,
                id: interner.intern(&route.action),
            },
            resource_type,
            resource_id,
        });
    }
    RouteTable::new(table)
}

/// A template segment of the checker as the runtime's.
pub fn route_segment(segment: &Segment) -> RouteSegment {
    match segment {
        Segment::Literal(text) => RouteSegment::Literal(text.as_str().into()),
        Segment::Param(name) => RouteSegment::Param(name.as_str().into()),
        Segment::Star => RouteSegment::Star,
        Segment::Rest => RouteSegment::Rest,
    }
}

/// The program's pool, for sorting constant sets at compile time.
struct ProgramPools<'a> {
    pool: &'a ValuePool,
    schema: &'a rt::Schema,
}

static EMPTY_POOL: std::sync::LazyLock<ValuePool> = std::sync::LazyLock::new(ValuePool::default);

impl Pools for ProgramPools<'_> {
    fn pool(&self, pool: PoolId) -> &ValuePool {
        match pool {
            PoolId::Program => self.pool,
            _ => &EMPTY_POOL,
        }
    }

    fn layout_attrs(&self, layout: LayoutId) -> &[FieldDef] {
        self.schema
            .layout(layout)
            .map_or(&[], |layout| &layout.fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_splits_stars_and_escapes() {
        let parts = glob("release/*");
        assert_eq!(
            &*parts,
            &[GlobPart::Literal("release/".into()), GlobPart::Star]
        );
        let parts = glob(r"a\*b**");
        assert_eq!(&*parts, &[GlobPart::Literal("a*b".into()), GlobPart::Star]);
    }
}
