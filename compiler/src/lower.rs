//! Lowering pass: checked syntax trees to the runtime's decision program.
//!
//! Lowering runs only on a policy set without errors, right after checking and on the same trees.
//! It reads the checker's [`ExprTypes`], keyed by file and [`ast::ExprId`], wherever the runtime
//! operation depends on a type (`in` as hierarchy or as set membership, set methods against string
//! methods, record layouts). Names become numbers: strings are interned, attributes are
//! attribute ids, entity types [`TypeId`]s, functions `Builtin` pointers. Constant literals are
//! folded into values of the program's pool (`ip("10.0.0.0/8")`, `[1, 2]`, `-5`).
//!
//! Lowering never invents a value. Where the checked trees and what the checker recorded should
//! agree (a type for every expression whose lowering depends on it, a declared type for every
//! entity type name, a built-in for every function and method, no error nodes, every checked
//! item where it was recorded) and do not, it stops with an [`Internal`] error, which
//! [`crate::compile_sources`] reports as `authz::compile::internal` instead of building a
//! program. A stand-in value there (`false` for a condition, another operator) could make a
//! `forbid` never fire: the compiler fails closed on its own bugs.
//!
//! A policy's condition is the conjunction, in source order, of the scope tests the index cannot
//! guarantee (`principal == E`, `principal in E`), then its `when` clauses and negated `unless`
//! clauses. Type tests of the scope and the action test are guaranteed by the index's buckets.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use authz_lang::{ast, SourceFile, Span};
use authz_runtime::eval::Pools;
use authz_runtime::intern::Interner;
use authz_runtime::program::{self, ArithOp, CmpOp, Effect, Expr, GlobPart, ScopeTest, Var};
use authz_runtime::route::{self as rt_route, ResourceId, RouteSegment, RouteTable};
use authz_runtime::schema::{self as rt, FieldDef, Layout, ValueType};
use authz_runtime::value::{EntityUid, LayoutId, PoolId, TypeId, Value, ValuePool};

use authz_lang::FileId;

use crate::diagnostics::{place, Internal, Invariant};
use crate::routes::Segment;
use crate::schema::{Location, RouteId, Schema};
use crate::typeck::{CheckedLimit, CheckedPolicy, ExprTypes, TypeMiss};
use crate::types::{RecordType, Type, ACTION_TYPE};

/// The result of a lowering step.
type Lowering<T> = Result<T, Internal>;

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
/// names for default policy ids and for the places named by internal errors.
///
/// Fails with an [`Internal`] error, and lowers nothing, when the trees and the checker's records
/// disagree (see the module documentation).
pub fn run(
    schema: &Schema,
    files: &[&ast::File],
    sources: &[SourceFile],
    policies: &[CheckedPolicy],
    limits: &[CheckedLimit],
    types: &ExprTypes,
) -> Result<Lowered, Internal> {
    let mut lowerer = Lowerer {
        schema,
        types,
        sources,
        file: FileId(0),
        interner: Interner::new(),
        rt: rt::Schema::new(),
        pool: ValuePool::default(),
        type_ids: HashMap::new(),
        layouts: HashMap::new(),
    };
    lowerer.declare_schema()?;
    let mut lowered_policies = Vec::with_capacity(policies.len());
    for checked in policies {
        lowerer.file = checked.file;
        let missing = || {
            Internal::nowhere(Invariant::MissingItem {
                kind: "policy",
                item: checked.item,
                file: checked.file.0,
            })
        };
        let Some(ast::Item {
            kind: ast::ItemKind::Policy(policy),
            annotations,
            span,
        }) = item(files, checked.file, checked.item)
        else {
            return Err(missing());
        };
        if checked.has_errors {
            return Err(lowerer.fail(*span, |at| Invariant::Unexpected {
                what: "a policy with errors".to_owned(),
                at,
            }));
        }
        let id = match &checked.id {
            Some(id) => id.clone(),
            None => {
                let Some(source) = sources.get(checked.file.0 as usize) else {
                    return Err(lowerer.fail(*span, |at| Invariant::Unexpected {
                        what: "a policy without the source file its default id names".to_owned(),
                        at,
                    }));
                };
                format!("{}:{}", source.name, source.line_col(span.start()).line)
            }
        };
        let reason = annotations
            .iter()
            .find(|annotation| annotation.name.name == "reason")
            .and_then(|annotation| annotation.value.as_ref())
            .map(|value| value.value.clone());
        lowered_policies.push(lowerer.policy(checked, policy, id, reason)?);
    }
    let mut lowered_limits = Vec::with_capacity(limits.len());
    for checked in limits {
        lowerer.file = checked.file;
        let Some(ast::Item {
            kind: ast::ItemKind::Limit(limit),
            span,
            ..
        }) = item(files, checked.file, checked.item)
        else {
            return Err(Internal::nowhere(Invariant::MissingItem {
                kind: "limit",
                item: checked.item,
                file: checked.file.0,
            }));
        };
        if checked.has_errors {
            return Err(lowerer.fail(*span, |at| Invariant::Unexpected {
                what: "a limit with errors".to_owned(),
                at,
            }));
        }
        lowered_limits.push(lowerer.limit(limit)?);
    }
    Ok(Lowered {
        interner: lowerer.interner,
        schema: lowerer.rt,
        pool: lowerer.pool,
        policies: lowered_policies,
        limits: lowered_limits,
    })
}

/// Item `index` of file `file`.
fn item<'t>(files: &[&'t ast::File], file: FileId, index: usize) -> Option<&'t ast::Item> {
    files
        .get(usize::try_from(file.0).ok()?)
        .and_then(|tree| tree.items.get(index))
}

struct Lowerer<'a> {
    schema: &'a Schema,
    types: &'a ExprTypes,
    /// The files by [`FileId`] index, to name places in internal errors.
    sources: &'a [SourceFile],
    /// The file of the item being lowered.
    file: FileId,
    interner: Interner,
    rt: rt::Schema,
    pool: ValuePool,
    type_ids: HashMap<Arc<str>, TypeId>,
    /// Layouts already made, by the record type's description.
    layouts: HashMap<String, LayoutId>,
}

impl Lowerer<'_> {
    // ---- Internal errors ----

    /// An internal error about `span` in the current file; `problem` gets the place as text.
    fn fail(&self, span: Span, problem: impl FnOnce(String) -> Invariant) -> Internal {
        self.fail_at(
            Some(Location {
                file: self.file,
                span,
            }),
            problem,
        )
    }

    /// An internal error about a declaration at `location` (none for built-in declarations).
    fn fail_at(
        &self,
        location: Option<Location>,
        problem: impl FnOnce(String) -> Invariant,
    ) -> Internal {
        match location {
            Some(location) => Internal {
                file: Some(location.file),
                span: Some(location.span),
                problem: problem(place(self.sources, location.file, location.span)),
            },
            None => Internal::nowhere(problem("a built-in declaration".to_owned())),
        }
    }

    // ---- Schema ----

    fn declare_schema(&mut self) -> Lowering<()> {
        // Types first (attributes may refer to any type), then layouts, parents and actions.
        let action_type = self.rt.action_type;
        let Some(empty) = self.rt.entity_type(action_type).map(|def| def.layout) else {
            return Err(Internal::nowhere(Invariant::Unresolved {
                kind: "entity type",
                name: ACTION_TYPE.to_owned(),
                at: "the runtime schema".to_owned(),
            }));
        };
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
            let location = entity_type.location;
            let id = self.declared_type_id(name, location)?;
            let layout = self.layout(&entity_type.attrs, location)?;
            self.rt.set_entity_layout(id, layout);
            let parents = self.type_list(&entity_type.parents, location)?;
            self.rt.set_parents(id, parents);
        }
        for (name, action) in &schema.actions {
            let location = Some(action.location);
            let context = self.layout(&action.context, location)?;
            let uid = EntityUid {
                ty: action_type,
                id: self.interner.intern(name),
            };
            let principals = self.type_list(action.principals.members(), location)?;
            let resources = self.type_list(action.resources.members(), location)?;
            self.rt.add_action(rt::ActionDef {
                name: name.to_string(),
                uid,
                principals,
                resources,
                context,
            });
            let groups = self.action_group_syms(&action.ancestors);
            self.rt.set_action_groups(uid.id, groups);
        }
        for (name, group) in &schema.action_groups {
            let groups = self.action_group_syms(&group.ancestors);
            let name = self.interner.intern(name);
            self.rt.set_action_groups(name, groups);
        }
        Ok(())
    }

    /// The interned names of action groups.
    fn action_group_syms(
        &mut self,
        groups: &BTreeSet<Arc<str>>,
    ) -> Vec<authz_runtime::intern::Sym> {
        groups
            .iter()
            .map(|group| self.interner.intern(group))
            .collect()
    }

    /// The number of the entity type `name`, used by the declaration at `location`.
    fn declared_type_id(&self, name: &str, location: Option<Location>) -> Lowering<TypeId> {
        match self.type_ids.get(name) {
            Some(id) => Ok(*id),
            None => Err(self.fail_at(location, |at| Invariant::Unresolved {
                kind: "entity type",
                name: name.to_owned(),
                at,
            })),
        }
    }

    fn type_list(&self, names: &[Arc<str>], location: Option<Location>) -> Lowering<Vec<TypeId>> {
        names
            .iter()
            .map(|name| self.declared_type_id(name, location))
            .collect()
    }

    /// The number of the entity type named in the current file at `name`.
    fn type_id(&self, name: &ast::Ident) -> Lowering<TypeId> {
        self.declared_type_id(
            &name.name,
            Some(Location {
                file: self.file,
                span: name.span,
            }),
        )
    }

    /// The layout of a record type: its fields in name order. `location` is where the type was
    /// declared or written, for internal errors.
    fn layout(&mut self, record: &RecordType, location: Option<Location>) -> Lowering<LayoutId> {
        let description = format!("{record:?}");
        if let Some(id) = self.layouts.get(&description) {
            return Ok(*id);
        }
        let mut fields = Vec::with_capacity(record.fields.len());
        for (name, field) in &record.fields {
            let attr = self.rt.attr(name);
            let ty = self.value_type(&field.ty, location)?;
            fields.push(FieldDef {
                attr,
                ty,
                optional: field.optional,
            });
        }
        let id = self.rt.add_layout(Layout::new(fields));
        self.layouts.insert(description, id);
        Ok(id)
    }

    fn value_type(&mut self, ty: &Type, location: Option<Location>) -> Lowering<ValueType> {
        Ok(match ty {
            Type::Bool => ValueType::Bool,
            Type::Long => ValueType::Long,
            Type::String => ValueType::String,
            Type::Ip => ValueType::Ip,
            Type::Timestamp => ValueType::Timestamp,
            Type::Duration => ValueType::Duration,
            Type::Set(element) => ValueType::Set(Box::new(self.value_type(element, location)?)),
            Type::Record(record) => ValueType::Record(self.layout(record, location)?),
            Type::Entity(union) => ValueType::Entity(self.type_list(union.members(), location)?),
            // The element type of the empty set literal `[]` (in a record literal such as
            // `{ tags: [] }`); no value has it, and an empty union accepts no value.
            Type::Never => ValueType::Entity(Vec::new()),
            Type::Error => {
                return Err(self.fail_at(location, |at| Invariant::WrongType {
                    at,
                    found: Type::Error.to_string(),
                    needed: "a declarable type",
                }))
            }
        })
    }

    // ---- Items ----

    fn policy(
        &mut self,
        checked: &CheckedPolicy,
        policy: &ast::Policy,
        id: String,
        reason: Option<String>,
    ) -> Lowering<LoweredPolicy> {
        let actions = checked.actions.as_ref().map(|names| {
            names
                .iter()
                .map(|name| EntityUid {
                    ty: self.rt.action_type,
                    id: self.interner.intern(name),
                })
                .collect()
        });
        let principal = self.scope(&policy.principal)?;
        let resource = self.scope(&policy.resource)?;
        let mut conjuncts = Vec::new();
        let mut parts = Vec::new();
        for (var, scope, written) in [
            (Var::Principal, &principal, &policy.principal),
            (Var::Resource, &resource, &policy.resource),
        ] {
            if let Some(test) = scope_condition(var, scope) {
                conjuncts.push(test);
                parts.push(self.part(written.span, written.span));
            }
        }
        let mut value_key = None;
        for (index, condition) in policy.conditions.iter().enumerate() {
            let expr = self.expr(&condition.expr)?;
            parts.push(self.part(condition.keyword_span, condition.expr.span));
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
        Ok(LoweredPolicy {
            policy: program::Policy {
                id,
                effect,
                actions,
                principal,
                resource,
                condition,
                reason,
                parts,
            },
            value_key,
        })
    }

    /// The source of one conjunct, from `first` to the end of `last`, in the current file.
    fn part(&self, first: Span, last: Span) -> program::ConditionPart {
        let Some(source) = self.sources.get(self.file.0 as usize) else {
            return program::ConditionPart {
                text: String::new(),
                at: String::new(),
            };
        };
        let (start, end) = (first.start as usize, last.end as usize);
        let text = source.text.get(start..end).unwrap_or("");
        // One line, however the clause was laid out.
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let position = source.line_col(start);
        program::ConditionPart {
            text,
            at: format!("{}:{}:{}", source.name, position.line, position.column),
        }
    }

    fn scope(&mut self, scope: &ast::Scope) -> Lowering<ScopeTest> {
        Ok(match &scope.kind {
            ast::ScopeKind::Any => ScopeTest::Any,
            ast::ScopeKind::Is(ty) => ScopeTest::Is(vec![self.type_id(ty)?]),
            ast::ScopeKind::IsIn(ty, entity) => {
                ScopeTest::IsIn(vec![self.type_id(ty)?], self.entity_ref(entity)?)
            }
            ast::ScopeKind::Eq(entity) => ScopeTest::Eq(self.entity_ref(entity)?),
            ast::ScopeKind::In(entity) => ScopeTest::In(self.entity_ref(entity)?),
        })
    }

    fn entity_ref(&mut self, entity: &ast::EntityRef) -> Lowering<EntityUid> {
        Ok(EntityUid {
            ty: self.type_id(&entity.ty)?,
            id: self.interner.intern(&entity.id.value),
        })
    }

    fn limit(&mut self, limit: &ast::LimitDecl) -> Lowering<program::Limit> {
        let Some(unit) = crate::typeck::unit_seconds(&limit.unit.name) else {
            return Err(self.fail(limit.unit.span, |at| Invariant::Unexpected {
                what: format!("a limit period `{}`", limit.unit.name),
                at,
            }));
        };
        let units = match &limit.period {
            None => Some(1),
            Some(period) => u64::try_from(period.value).ok().filter(|units| *units >= 1),
        };
        let period_seconds = match units.and_then(|units| units.checked_mul(unit)) {
            Some(seconds) if seconds <= crate::typeck::MAX_LIMIT_PERIOD_SECONDS => seconds,
            _ => {
                let span = limit
                    .period
                    .as_ref()
                    .map_or(limit.unit.span, |period| period.span);
                return Err(self.fail(span, |at| Invariant::Unexpected {
                    what: "a limit period out of range".to_string(),
                    at,
                }));
            }
        };
        let count = match u64::try_from(limit.count.value) {
            Ok(count) if count >= 1 => count,
            _ => {
                return Err(self.fail(limit.count.span, |at| Invariant::Unexpected {
                    what: format!("a limit count of {}", limit.count.value),
                    at,
                }))
            }
        };
        let burst = match &limit.burst {
            None => count,
            Some(burst) => match u64::try_from(burst.value) {
                Ok(burst) if burst >= 1 => burst,
                _ => {
                    return Err(self.fail(burst.span, |at| Invariant::Unexpected {
                        what: format!("a limit burst of {}", burst.value),
                        at,
                    }))
                }
            },
        };
        let mut keys = Vec::with_capacity(limit.keys.len());
        for key in &limit.keys {
            keys.push(self.expr(key)?);
        }
        let condition = match &limit.condition {
            Some(condition) => Some(self.expr(condition)?),
            None => None,
        };
        Ok(program::Limit {
            name: limit.name.value.clone(),
            count,
            period_seconds,
            burst,
            on_attempts: limit.on_attempts.is_some(),
            keys,
            condition,
        })
    }

    // ---- Expressions ----

    /// The type the checker recorded for `expr`; an internal error when there is none, or when
    /// the one under its id was recorded for another expression.
    fn type_of(&self, expr: &ast::Expr) -> Lowering<&Type> {
        self.types
            .lookup(self.file, expr)
            .map_err(|miss| match miss {
                TypeMiss::NotRecorded => self.fail(expr.span, |at| Invariant::NoType { at }),
                TypeMiss::OtherExpr(other) => {
                    let other = place(self.sources, self.file, other);
                    self.fail(expr.span, |at| Invariant::TypeOfOtherExpr { at, other })
                }
            })
    }

    fn exprs(&mut self, exprs: &[ast::Expr]) -> Lowering<Vec<Expr>> {
        exprs.iter().map(|expr| self.expr(expr)).collect()
    }

    fn boxed(&mut self, expr: &ast::Expr) -> Lowering<Box<Expr>> {
        Ok(Box::new(self.expr(expr)?))
    }

    fn expr(&mut self, expr: &ast::Expr) -> Lowering<Expr> {
        Ok(match &expr.kind {
            ast::ExprKind::Bool(value) => Expr::Lit(Value::Bool(*value)),
            ast::ExprKind::Int(value) => Expr::Lit(Value::Long(*value)),
            ast::ExprKind::Str(text) => Expr::Lit(Value::Str(self.interner.intern(text))),
            ast::ExprKind::Var(var) => Expr::Var(match var {
                ast::Var::Principal => Var::Principal,
                ast::Var::Action => Var::Action,
                ast::Var::Resource => Var::Resource,
                ast::Var::Context => Var::Context,
            }),
            ast::ExprKind::Call { callee, args } => self.call(expr, callee, args)?,
            ast::ExprKind::Attr { base, attr } => {
                let attr = self.rt.attr(&attr.name);
                Expr::Attr(self.boxed(base)?, attr)
            }
            ast::ExprKind::MethodCall {
                receiver,
                method,
                args,
            } => self.method(receiver, method, args)?,
            ast::ExprKind::Has { base, attr } => {
                let attr = self.rt.attr(&attr.name);
                Expr::Has(self.boxed(base)?, attr)
            }
            ast::ExprKind::Like { base, pattern } => {
                Expr::Like(self.boxed(base)?, glob(&pattern.value))
            }
            ast::ExprKind::Is { base, ty, in_expr } => {
                let is = Expr::Is(self.boxed(base)?, self.type_id(ty)?);
                match in_expr {
                    None => is,
                    Some(target) => {
                        let within = Expr::InHierarchy(self.boxed(base)?, self.boxed(target)?);
                        Expr::And(Box::new(is), Box::new(within))
                    }
                }
            }
            ast::ExprKind::Unary {
                op: ast::UnaryOp::Not,
                operand,
            } => Expr::Not(self.boxed(operand)?),
            ast::ExprKind::Unary {
                op: ast::UnaryOp::Neg,
                operand,
            } => match self.expr(operand)? {
                Expr::Lit(Value::Long(value)) if value.checked_neg().is_some() => {
                    Expr::Lit(Value::Long(-value))
                }
                operand => Expr::Neg(Box::new(operand)),
            },
            ast::ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs)?,
            ast::ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => Expr::If(
                self.boxed(cond)?,
                self.boxed(then_branch)?,
                self.boxed(else_branch)?,
            ),
            ast::ExprKind::Set(elements) => {
                let elements = self.exprs(elements)?;
                self.set_literal(elements)
            }
            ast::ExprKind::Record(entries) => self.record_literal(expr, entries)?,
            ast::ExprKind::Paren(inner) => self.expr(inner)?,
            ast::ExprKind::Error => {
                return Err(self.fail(expr.span, |at| Invariant::Unexpected {
                    what: "an expression that failed to parse".to_owned(),
                    at,
                }))
            }
        })
    }

    fn call(
        &mut self,
        expr: &ast::Expr,
        callee: &ast::Ident,
        args: &[ast::Expr],
    ) -> Lowering<Expr> {
        if self.schema.entity_types.contains_key(callee.name.as_str()) {
            let [ast::Expr {
                kind: ast::ExprKind::Str(id),
                ..
            }] = args
            else {
                return Err(self.fail(expr.span, |at| Invariant::Unexpected {
                    what: "an entity literal without exactly one string id".to_owned(),
                    at,
                }));
            };
            let uid = EntityUid {
                ty: self.type_id(callee)?,
                id: self.interner.intern(id),
            };
            return Ok(Expr::Lit(Value::Entity(uid)));
        }
        if let [ast::Expr {
            kind: ast::ExprKind::Str(text),
            ..
        }] = args
        {
            if let Some(value) = self.constant_extension(&callee.name, text) {
                return Ok(Expr::Lit(value));
            }
        }
        let Some(function) = authz_stdlib::builtins::function(&callee.name) else {
            return Err(self.fail(callee.span, |at| Invariant::Unresolved {
                kind: "function",
                name: callee.name.clone(),
                at,
            }));
        };
        let args = self.exprs(args)?;
        Ok(Expr::Call(function, args.into_boxed_slice()))
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

    fn method(
        &mut self,
        receiver: &ast::Expr,
        method: &ast::Ident,
        args: &[ast::Expr],
    ) -> Lowering<Expr> {
        let receiver_type = self.type_of(receiver)?.clone();
        let lowered_receiver = self.expr(receiver)?;
        let lowered_args = self.exprs(args)?;
        if let Type::Set(_) = receiver_type {
            let receiver = Box::new(lowered_receiver);
            let name = method.name.as_str();
            if name == "isEmpty" {
                if lowered_args.is_empty() {
                    return Ok(Expr::IsEmpty(receiver));
                }
            } else if let Ok([argument]) = <[Expr; 1]>::try_from(lowered_args) {
                let argument = Box::new(argument);
                match name {
                    "contains" => return Ok(Expr::Contains(receiver, argument)),
                    "containsAll" => return Ok(Expr::ContainsAll(receiver, argument)),
                    "containsAny" => return Ok(Expr::ContainsAny(receiver, argument)),
                    _ => {}
                }
            }
            return Err(self.fail(method.span, |at| Invariant::Unresolved {
                kind: "set method",
                name: format!("{name}/{}", args.len()),
                at,
            }));
        }
        let builtin = receiver_type
            .as_stdlib()
            .and_then(|ty| authz_stdlib::builtins::method(ty, &method.name));
        let Some(builtin) = builtin else {
            return Err(self.fail(method.span, |at| Invariant::Unresolved {
                kind: "method",
                name: format!("{receiver_type}.{}", method.name),
                at,
            }));
        };
        let mut all = Vec::with_capacity(lowered_args.len() + 1);
        all.push(lowered_receiver);
        all.extend(lowered_args);
        Ok(Expr::Call(builtin, all.into_boxed_slice()))
    }

    fn binary(&mut self, op: ast::BinaryOp, lhs: &ast::Expr, rhs: &ast::Expr) -> Lowering<Expr> {
        // Only `in` depends on a type: hierarchy membership for an entity on the left, element
        // membership otherwise.
        let lhs_is_entity = match op {
            ast::BinaryOp::In => matches!(self.type_of(lhs)?, Type::Entity(_)),
            _ => false,
        };
        let left = self.boxed(lhs)?;
        let right = self.boxed(rhs)?;
        Ok(match op {
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
        })
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

    fn record_literal(
        &mut self,
        expr: &ast::Expr,
        entries: &[(ast::Ident, ast::Expr)],
    ) -> Lowering<Expr> {
        let record = match self.type_of(expr)? {
            Type::Record(record) => record.clone(),
            other => {
                let found = other.to_string();
                return Err(self.fail(expr.span, |at| Invariant::WrongType {
                    at,
                    found,
                    needed: "a record type",
                }));
            }
        };
        let location = Some(Location {
            file: self.file,
            span: expr.span,
        });
        let layout = self.layout(&record, location)?;
        let mut fields = Vec::with_capacity(record.fields.len());
        for name in record.fields.keys() {
            let value = entries
                .iter()
                .find(|(field, _)| field.name == **name)
                .map(|(_, value)| value);
            let Some(value) = value else {
                return Err(self.fail(expr.span, |at| Invariant::Unexpected {
                    what: format!("a record literal without the field `{name}` of its type"),
                    at,
                }));
            };
            fields.push(self.expr(value)?);
        }
        let constants: Option<Vec<Value>> = fields
            .iter()
            .map(|field| match field {
                Expr::Lit(value) => Some(*value),
                _ => None,
            })
            .collect();
        Ok(match constants {
            Some(values) => Expr::Lit(Value::Record(self.pool.push_record(
                PoolId::Program,
                layout,
                &values,
            ))),
            None => Expr::RecordLit(layout, fields.into_boxed_slice()),
        })
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
/// one whose names do not resolve (impossible after a clean check) is an internal error rather
/// than a route left out. `sources` name the route's place in that error.
pub fn routes(
    schema: &Schema,
    rt: &rt::Schema,
    interner: &mut Interner,
    sources: &[SourceFile],
) -> Result<RouteTable, Internal> {
    let fail = |location: Location, problem: &dyn Fn(String) -> Invariant| Internal {
        file: Some(location.file),
        span: Some(location.span),
        problem: problem(place(sources, location.file, location.span)),
    };
    let mut table = Vec::with_capacity(schema.routes.len());
    for route in &schema.routes {
        let Some(resource_type) = rt.type_id(&route.resource_type) else {
            return Err(fail(route.location, &|at| Invariant::Unresolved {
                kind: "entity type",
                name: route.resource_type.to_string(),
                at,
            }));
        };
        let resource_id = match &route.resource_id {
            RouteId::Literal(text) => ResourceId::Literal {
                sym: interner.intern(text),
                text: text.as_str().into(),
            },
            RouteId::Param(name) => {
                let Some(index) = route.template.params().position(|param| param == name) else {
                    return Err(fail(route.location, &|at| Invariant::Unresolved {
                        kind: "route parameter",
                        name: name.clone(),
                        at,
                    }));
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
    Ok(RouteTable::new(table))
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
    use crate::diagnostics::Invariant;

    const SCHEMA: &str = "entity User;
entity Doc { viewers: Set<User>, tags: Set<String> }
action read : User -> Doc;
";

    const POLICY: &str = "forbid principal: User, action: read, resource: Doc
when principal in resource.viewers;
";

    /// Two files, the schema and `policies`, parsed.
    fn parse_set(policies: &str) -> (Vec<SourceFile>, Vec<ast::File>) {
        let sources = vec![
            SourceFile::new("schema.authz", SCHEMA),
            SourceFile::new("policies.authz", policies),
        ];
        let trees = sources
            .iter()
            .map(|source| {
                let parse = authz_lang::parse(&source.text);
                assert!(parse.errors.is_empty(), "{:?}", parse.errors);
                parse.file
            })
            .collect();
        (sources, trees)
    }

    fn check(trees: &[ast::File]) -> crate::Checked {
        let files: Vec<(FileId, &ast::File)> = trees
            .iter()
            .enumerate()
            .map(|(index, tree)| (FileId(u32::try_from(index).unwrap()), tree))
            .collect();
        let checked = crate::check(&files);
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        checked
    }

    fn lower(
        checked: &crate::Checked,
        trees: &[ast::File],
        sources: &[SourceFile],
    ) -> Result<Lowered, Internal> {
        let trees: Vec<&ast::File> = trees.iter().collect();
        run(
            &checked.schema,
            &trees,
            sources,
            &checked.policies,
            &checked.limits,
            &checked.types,
        )
    }

    /// The condition of the first policy of the second file.
    fn condition(trees: &[ast::File]) -> &ast::Expr {
        match &trees[1].items[0].kind {
            ast::ItemKind::Policy(policy) => &policy.conditions[0].expr,
            other => panic!("not a policy: {other:?}"),
        }
    }

    #[test]
    fn in_is_lowered_by_the_type_of_its_left_operand() {
        let (sources, trees) = parse_set(POLICY);
        let checked = check(&trees);
        let lowered = lower(&checked, &trees, &sources).unwrap();
        let condition = lowered.policies[0].policy.condition.as_ref().unwrap();
        assert!(matches!(condition, Expr::InHierarchy(..)), "{condition:?}");
    }

    #[test]
    fn a_missing_type_is_an_internal_error_not_a_guess() {
        let (sources, trees) = parse_set(POLICY);
        let mut checked = check(&trees);
        let ast::ExprKind::Binary { lhs, .. } = &condition(&trees).kind else {
            panic!("not a binary expression");
        };
        // Without the type of `principal`, `in` could be hierarchy or set membership: the old
        // lowering picked set membership, turning this forbid into one that never fires.
        checked.types.forget(FileId(1), lhs);
        let error = lower(&checked, &trees, &sources).err().unwrap();
        assert_eq!(
            error,
            Internal {
                file: Some(FileId(1)),
                span: Some(lhs.span),
                problem: Invariant::NoType {
                    at: "policies.authz:2:6".to_owned()
                },
            }
        );
        let diagnostic = error.into_diagnostic();
        let inner = diagnostic.inner();
        assert_eq!(
            inner.code().unwrap().to_string(),
            "authz::compile::internal"
        );
        assert_eq!(
            diagnostic.to_string(),
            "internal error: no type recorded for the expression at policies.authz:2:6"
        );
        assert!(diagnostic.is_error());
    }

    #[test]
    fn no_types_at_all_is_an_internal_error() {
        let (sources, trees) = parse_set(
            "permit principal: User, action: read, resource: Doc
when resource.tags.contains(\"x\");
",
        );
        let mut checked = check(&trees);
        checked.types = ExprTypes::default();
        let error = lower(&checked, &trees, &sources).err().unwrap();
        assert!(
            matches!(&error.problem, Invariant::NoType { at } if at == "policies.authz:2:6"),
            "{error:?}"
        );
    }

    #[test]
    fn types_of_another_tree_are_an_internal_error() {
        let (sources, trees) = parse_set(POLICY);
        let checked = check(&trees);
        // The same policy with parentheses: its ids are numbered differently, so the id of the
        // left operand of `in` is that of another expression of the checked tree.
        let (other_sources, other_trees) = parse_set(
            "forbid principal: User, action: read, resource: Doc
when (principal) in resource.viewers;
",
        );
        let error = lower(&checked, &other_trees, &other_sources).err().unwrap();
        assert!(
            matches!(
                &error.problem,
                Invariant::TypeOfOtherExpr { at, other }
                    if at == "policies.authz:2:6" && other == "policies.authz:2:19"
            ),
            "{error:?}"
        );
        // Parsing the same text again gives the same ids: the types still apply.
        let (_, same_trees) = parse_set(POLICY);
        assert!(lower(&checked, &same_trees, &sources).is_ok());
    }

    #[test]
    fn an_error_node_is_an_internal_error_not_false() {
        let (sources, mut trees) = parse_set(POLICY);
        let checked = check(&trees);
        if let ast::ItemKind::Policy(policy) = &mut trees[1].items[0].kind {
            policy.conditions[0].expr.kind = ast::ExprKind::Error;
        }
        let error = lower(&checked, &trees, &sources).err().unwrap();
        assert!(
            matches!(&error.problem, Invariant::Unexpected { what, .. } if what == "an expression that failed to parse"),
            "{error:?}"
        );
    }

    #[test]
    fn a_checked_policy_that_is_not_there_is_an_internal_error() {
        let (sources, mut trees) = parse_set(POLICY);
        let checked = check(&trees);
        trees[1].items.clear();
        let error = lower(&checked, &trees, &sources).err().unwrap();
        assert_eq!(
            error.problem,
            Invariant::MissingItem {
                kind: "policy",
                item: 0,
                file: 1
            }
        );
    }

    #[test]
    fn expression_ids_repeat_across_files_without_mixing_their_types() {
        // The same ids in two files, on expressions of different types: keyed by id alone, the
        // second file's types would overwrite the first's.
        let (mut sources, mut trees) = parse_set(POLICY);
        let second = "permit principal: User, action: read, resource: Doc
when resource.tags.contains(\"x\");
";
        sources.push(SourceFile::new("more.authz", second));
        trees.push(authz_lang::parse(second).file);
        let checked = check(&trees);
        let lowered = lower(&checked, &trees, &sources).unwrap();
        let conditions: Vec<&Expr> = lowered
            .policies
            .iter()
            .map(|lowered| lowered.policy.condition.as_ref().unwrap())
            .collect();
        assert!(
            matches!(conditions[0], Expr::InHierarchy(..)),
            "{conditions:?}"
        );
        assert!(
            matches!(conditions[1], Expr::Contains(..)),
            "{conditions:?}"
        );
    }

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
