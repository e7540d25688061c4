//! The type checker for policies and limits.
//!
//! Each policy is checked in an environment built from its scope: the types of `principal`,
//! `resource` and `context` follow from the actions it names (see [`check_policy`]). Each
//! expression gets a [`Type`]; an expression that is already wrong gets [`Type::Error`], which
//! fits everywhere, so that one mistake is reported once and checking goes on.
//!
//! Facts: checking an expression also yields the facts that hold when it evaluates to `true`:
//! that an access path (such as `principal.manager`) has an attribute (from `has`), or that it is
//! an entity of certain types (from `is`). Facts flow left to right through `&&`, survive `||`
//! when both sides establish them, reach the `then` branch of `if` from its condition, and are
//! lost under `!`. Facts of a `when` clause hold in the clauses after it. An optional attribute
//! may be read only where a fact proves it present, and an `is` fact narrows the path's type.
//!
//! Types for lowering: every expression checked has its type recorded in [`ExprTypes`], a side
//! table keyed by the expression's file and [`ast::ExprId`] (never by its address), with the span
//! it was recorded for, so that lowering can tell a missing or foreign entry from a real one and
//! fail instead of guessing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use authz_lang::ast;
use authz_lang::{FileId, Span};

use crate::diagnostics::{did_you_mean, list_names, CheckError, Reporter};
use crate::schema::{Action, Schema};
use crate::types::{is_identifier, EntityUnion, Field, Name, RecordType, Type, ACTION_TYPE};
use authz_runtime::suggest::suggest;

/// The types of the request variables while checking one policy or limit.
#[derive(Clone, Debug, PartialEq)]
pub struct Environment {
    /// The type of `principal`.
    pub principal: Type,
    /// The type of `resource`.
    pub resource: Type,
    /// The type of `context`: a record, or the error type when the actions are unknown.
    pub context: Type,
}

/// What the checker learned about one policy, for lowering.
#[derive(Clone, Debug)]
pub struct CheckedPolicy {
    /// The file of the policy.
    pub file: FileId,
    /// The index of the policy among the items of its file.
    pub item: usize,
    /// The value of its `@id` annotation, if any.
    pub id: Option<String>,
    /// `permit` or `forbid`.
    pub effect: ast::Effect,
    /// The actions it applies to; `None` for `action: *`.
    pub actions: Option<Vec<Name>>,
    /// The environment its conditions were checked in.
    pub environment: Environment,
    /// Whether any error was reported for it; such a policy must not be lowered.
    pub has_errors: bool,
}

/// What the checker learned about one limit, for lowering.
#[derive(Clone, Debug)]
pub struct CheckedLimit {
    /// The file of the limit.
    pub file: FileId,
    /// The index of the limit among the items of its file.
    pub item: usize,
    /// The limit's name.
    pub name: String,
    /// Whether any error was reported for it.
    pub has_errors: bool,
}

/// The periods a limit may count over.
const LIMIT_UNITS: [&str; 8] = [
    "second", "minute", "hour", "day", "seconds", "minutes", "hours", "days",
];

/// The seconds in a limit's unit, singular or plural.
pub(crate) fn unit_seconds(unit: &str) -> Option<u64> {
    match unit {
        "second" | "seconds" => Some(1),
        "minute" | "minutes" => Some(60),
        "hour" | "hours" => Some(3_600),
        "day" | "days" => Some(86_400),
        _ => None,
    }
}

/// The longest period a limit may have: a year of seconds.
pub(crate) const MAX_LIMIT_PERIOD_SECONDS: u64 = 366 * 86_400;

/// The generic methods of sets.
const SET_METHODS: [&str; 4] = ["contains", "containsAll", "containsAny", "isEmpty"];

/// The type of every expression the checker saw: a side table keyed by node id, in the style of
/// an arena map (`ArenaMap<ExprId, Type>`), never by the address of a node.
///
/// The key is the expression's file and its [`ast::ExprId`]: the parser numbers the expressions
/// of each file on its own, so ids repeat across the files of a set, and the [`FileId`] the
/// checker was given tells them apart. (Numbering across the whole set instead would make a
/// file's tree depend on which files were parsed before it.) Each entry also keeps the span of
/// the expression it was recorded for, so that a lookup with an expression of another tree
/// (another parse, an edited tree) is detected instead of answered with a stranger's type.
#[derive(Debug, Default)]
pub struct ExprTypes {
    /// By file: the parser numbers a file's expressions densely, and an item's expressions take
    /// consecutive numbers, so each file's table is a window of slots by id (a table of one
    /// policy's environment is as small as that policy).
    files: Vec<TypeWindow>,
}

/// The types of a run of consecutive expression ids of one file.
#[derive(Debug, Default)]
struct TypeWindow {
    /// The id of the first slot.
    base: u32,
    slots: Vec<Option<Recorded>>,
}

impl TypeWindow {
    fn get(&self, id: ast::ExprId) -> Option<&Recorded> {
        let index = id.0.checked_sub(self.base)?;
        self.slots.get(index as usize)?.as_ref()
    }

    /// The slot of `id`, the window grown to hold it.
    fn slot(&mut self, id: ast::ExprId) -> Option<&mut Option<Recorded>> {
        if self.slots.is_empty() {
            self.base = id.0;
        }
        if id.0 < self.base {
            let extra = (self.base - id.0) as usize;
            self.slots
                .splice(0..0, std::iter::repeat_with(|| None).take(extra));
            self.base = id.0;
        }
        let index = (id.0 - self.base) as usize;
        if index >= self.slots.len() {
            self.slots.resize_with(index + 1, || None);
        }
        self.slots.get_mut(index)
    }

    fn into_entries(self) -> impl Iterator<Item = (ast::ExprId, Recorded)> {
        let base = self.base;
        self.slots
            .into_iter()
            .zip(base..)
            .filter_map(|(recorded, id)| Some((ast::ExprId(id), recorded?)))
    }
}

/// One entry of [`ExprTypes`].
#[derive(Debug)]
struct Recorded {
    span: Span,
    ty: Type,
    /// Whether the expression is a record literal, whose type lowering builds the record from.
    record_literal: bool,
}

/// Why [`ExprTypes::lookup`] has no type for an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeMiss {
    /// Nothing was recorded under the expression's id.
    NotRecorded,
    /// The type under its id was recorded for another expression, at this span: the tree is not
    /// the one that was checked.
    OtherExpr(Span),
}

impl ExprTypes {
    /// The type the checker gave `expr` of `file` (with the `is` and `has` facts in force at
    /// that point), or why there is none.
    pub fn lookup(&self, file: FileId, expr: &ast::Expr) -> Result<&Type, TypeMiss> {
        match self.recorded(file, expr.id) {
            Some(recorded) if recorded.span == expr.span => Ok(&recorded.ty),
            Some(recorded) => Err(TypeMiss::OtherExpr(recorded.span)),
            None => Err(TypeMiss::NotRecorded),
        }
    }

    /// The type the checker gave `expr` of `file`, when it was recorded for that expression.
    pub fn get(&self, file: FileId, expr: &ast::Expr) -> Option<&Type> {
        self.lookup(file, expr).ok()
    }

    fn recorded(&self, file: FileId, id: ast::ExprId) -> Option<&Recorded> {
        self.files.get(file.0 as usize)?.get(id)
    }

    /// The slot of an expression, the table grown to hold it.
    fn slot(&mut self, file: FileId, id: ast::ExprId) -> Option<&mut Option<Recorded>> {
        let file = file.0 as usize;
        if file >= self.files.len() {
            self.files.resize_with(file + 1, TypeWindow::default);
        }
        self.files.get_mut(file)?.slot(id)
    }

    /// Every entry, file by file.
    fn into_entries(self) -> impl Iterator<Item = (FileId, ast::ExprId, Recorded)> {
        self.files.into_iter().zip(0..).flat_map(|(window, file)| {
            window
                .into_entries()
                .map(move |(id, recorded)| (FileId(file), id, recorded))
        })
    }

    /// Adds the types of `other`, checked in another environment of the same policy, to these:
    /// entity types join, a type found in only one environment (the rest being the error type)
    /// is kept, records keep the fields both have. A type that cannot be joined is left as it
    /// was and listed in `conflicts` with the expression's span.
    pub(crate) fn merge(&mut self, other: ExprTypes, conflicts: &mut Vec<(Span, Type, Type)>) {
        for (file, id, recorded) in other.into_entries() {
            let Some(slot) = self.slot(file, id) else {
                continue;
            };
            match slot {
                None => *slot = Some(recorded),
                Some(existing) => {
                    let merged = merge_environment_types(&existing.ty, &recorded.ty)
                        // A record literal is built from its type: it must keep every field.
                        .filter(|ty| !recorded.record_literal || same_shape(ty, &recorded.ty));
                    match merged {
                        Some(ty) => existing.ty = ty,
                        None => {
                            if !conflicts.iter().any(|(span, _, _)| *span == recorded.span) {
                                conflicts.push((recorded.span, existing.ty.clone(), recorded.ty));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds every type of `other`, replacing any recorded for the same expression.
    pub(crate) fn absorb(&mut self, other: ExprTypes) {
        for (file, id, recorded) in other.into_entries() {
            if let Some(slot) = self.slot(file, id) {
                *slot = Some(recorded);
            }
        }
    }

    /// How many expressions have a type.
    pub fn len(&self) -> usize {
        self.files
            .iter()
            .map(|window| window.slots.iter().flatten().count())
            .sum()
    }

    /// Whether no expression has a type.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn record(&mut self, file: FileId, expr: &ast::Expr, ty: &Type) {
        let recorded = Recorded {
            span: expr.span,
            ty: ty.clone(),
            record_literal: matches!(expr.kind, ast::ExprKind::Record(_)),
        };
        if let Some(slot) = self.slot(file, expr.id) {
            *slot = Some(recorded);
        }
    }

    /// Forgets the type of one expression, to test that lowering refuses to guess it.
    #[cfg(test)]
    pub(crate) fn forget(&mut self, file: FileId, expr: &ast::Expr) {
        if let Some(slot) = self.slot(file, expr.id) {
            *slot = None;
        }
    }
}

/// Whether two types have the same record fields at every depth (entity unions may differ).
fn same_shape(a: &Type, b: &Type) -> bool {
    match (a, b) {
        (Type::Record(a), Type::Record(b)) => {
            a.fields.len() == b.fields.len()
                && a.fields.iter().all(|(name, field)| {
                    b.fields
                        .get(name)
                        .is_some_and(|other| same_shape(&field.ty, &other.ty))
                })
        }
        (Type::Set(a), Type::Set(b)) => same_shape(a, b),
        _ => true,
    }
}

/// The type of an expression over two environments of a policy, where the first had type `a`
/// and the second `b`; `None` when one program cannot serve both.
fn merge_environment_types(a: &Type, b: &Type) -> Option<Type> {
    Some(match (a, b) {
        (Type::Error, other) | (other, Type::Error) => other.clone(),
        (Type::Never, other) | (other, Type::Never) => other.clone(),
        (Type::Entity(a), Type::Entity(b)) => Type::Entity(a.union(b)),
        (Type::Set(a), Type::Set(b)) => Type::Set(Box::new(merge_environment_types(a, b)?)),
        // Records keep the fields both have with types that merge (a context); a record
        // literal that loses a field this way is a conflict (see `ExprTypes::merge`).
        (Type::Record(a), Type::Record(b)) => {
            let mut fields = BTreeMap::new();
            for (name, field) in &a.fields {
                let Some(other) = b.fields.get(name) else {
                    continue;
                };
                if let Some(ty) = merge_environment_types(&field.ty, &other.ty) {
                    let optional = field.optional || other.optional;
                    fields.insert(name.clone(), Field { ty, optional });
                }
            }
            Type::Record(Arc::new(RecordType { fields }))
        }
        _ if a == b => a.clone(),
        _ => return None,
    })
}

/// Checks one policy: its scope against the schema and each condition.
pub(crate) fn check_policy(
    schema: &Schema,
    reporter: &mut Reporter<'_>,
    types: &mut ExprTypes,
    file: FileId,
    item: usize,
    policy: &ast::Policy,
    id: Option<String>,
) -> CheckedPolicy {
    let errors_before = reporter.n_errors;
    let actions: Option<Vec<&Action>> = match &policy.action.kind {
        ast::ActionScopeKind::Any => None,
        ast::ActionScopeKind::One(ident) => {
            Some(schema.resolve_action_scope(file, ident, reporter))
        }
        ast::ActionScopeKind::AnyOf(idents) => {
            // A group and one of its actions both named: each action once, in schema order.
            let mut actions: Vec<&Action> = idents
                .iter()
                .flat_map(|ident| schema.resolve_action_scope(file, ident, reporter))
                .collect();
            actions.sort_by(|a, b| a.name.cmp(&b.name));
            actions.dedup_by(|a, b| a.name == b.name);
            Some(actions)
        }
    };
    let principal_scope = resolve_scope(schema, reporter, file, &policy.principal);
    let resource_scope = resolve_scope(schema, reporter, file, &policy.resource);
    let some_action_unknown = reporter.n_errors > errors_before;

    // An action named through a group that does not take the scope's principal or resource type
    // can never meet this policy in a valid request: it is left out, as Cedar's validator leaves
    // out the environments that cannot occur. An action named directly must fit.
    let named_directly = |action: &Action| match &policy.action.kind {
        ast::ActionScopeKind::Any => false,
        ast::ActionScopeKind::One(ident) => ident.name == *action.name,
        ast::ActionScopeKind::AnyOf(idents) => {
            idents.iter().any(|ident| ident.name == *action.name)
        }
    };
    let fits = |action: &Action| {
        let principal_fits = match &principal_scope {
            ScopeTypes::Exactly(ty) => action.principals.contains(ty),
            _ => true,
        };
        let resource_fits = match &resource_scope {
            ScopeTypes::Exactly(ty) => action.resources.contains(ty),
            _ => true,
        };
        principal_fits && resource_fits
    };
    let actions = actions.map(|actions| {
        let through_groups_fit = actions
            .iter()
            .any(|action| !named_directly(action) && fits(action));
        actions
            .into_iter()
            .filter(|action| named_directly(action) || !through_groups_fit || fits(action))
            .collect::<Vec<_>>()
    });

    if let Some(actions) = &actions {
        for action in actions {
            if let ScopeTypes::Exactly(ty) = &principal_scope {
                if !action.principals.contains(ty) {
                    reporter.report(
                        file,
                        CheckError::ActionPrincipalMismatch {
                            action: action.name.to_string(),
                            ty: ty.to_string(),
                            span: policy.principal.span.into(),
                            takes: action.principals.to_string(),
                        },
                    );
                }
            }
            if let ScopeTypes::Exactly(ty) = &resource_scope {
                if !action.resources.contains(ty) {
                    reporter.report(
                        file,
                        CheckError::ActionResourceMismatch {
                            action: action.name.to_string(),
                            ty: ty.to_string(),
                            span: policy.resource.span.into(),
                            takes: action.resources.to_string(),
                        },
                    );
                }
            }
        }
    }

    // The union of the environments: the types the policy's variables may have at all.
    let environment = match &actions {
        Some(actions) => {
            let principals = EntityUnion::new(
                actions
                    .iter()
                    .flat_map(|action| action.principals.members().iter().cloned()),
            );
            let resources = EntityUnion::new(
                actions
                    .iter()
                    .flat_map(|action| action.resources.members().iter().cloned()),
            );
            let context = if actions.is_empty() && some_action_unknown {
                Type::Error
            } else {
                Type::Record(Arc::new(common_context(actions)))
            };
            Environment {
                principal: principal_scope.to_type(&principals),
                resource: resource_scope.to_type(&resources),
                context,
            }
        }
        None => {
            let principal = principal_scope.to_type(&schema.all_principals);
            let resource = resource_scope.to_type(&schema.all_resources);
            if let (Type::Entity(principals), Type::Entity(resources)) = (&principal, &resource) {
                let fits = schema.actions.values().any(|action| {
                    action.principals.overlaps(principals) && action.resources.overlaps(resources)
                });
                if !fits {
                    reporter.report(
                        file,
                        CheckError::ScopeNeverApplies {
                            principal: principals.to_string(),
                            resource: resources.to_string(),
                            span: policy.effect_span.into(),
                        },
                    );
                }
            }
            let all: Vec<&Action> = schema.actions.values().collect();
            Environment {
                principal,
                resource,
                context: Type::Record(Arc::new(common_context(&all))),
            }
        }
    };

    // The environments, as Cedar's validator builds them: one per action the policy can apply
    // to, with the principal and resource types that action takes and the scope allows
    // (`principal in Team("x")` allows the types that can be in a `Team`), and that action's
    // own context.
    let principal_in = scope_ancestor(&policy.principal);
    let resource_in = scope_ancestor(&policy.resource);
    let cases: Vec<Case<'_>> = scope_actions(schema, &actions)
        .into_iter()
        .filter_map(|action| {
            let principal = principal_scope.narrow(schema, &action.principals, principal_in)?;
            let resource = resource_scope.narrow(schema, &action.resources, resource_in)?;
            Some(Case {
                action,
                environment: Environment {
                    principal,
                    resource,
                    context: Type::Record(action.context.clone()),
                },
            })
        })
        .collect();

    match cases.as_slice() {
        // No action can meet the scope (reported above): the conditions are still checked, in the
        // union of the environments.
        [] => {
            // Each variable narrowed by its own scope where that leaves any type.
            let narrowed =
                |scope: &ScopeTypes, ancestor, union: &Type, takes: fn(&Action) -> &EntityUnion| {
                    let types: Vec<Type> = scope_actions(schema, &actions)
                        .into_iter()
                        .filter_map(|action| scope.narrow(schema, takes(action), ancestor))
                        .collect();
                    types
                        .into_iter()
                        .reduce(|a, b| a.join(&b).unwrap_or(Type::Error))
                        .unwrap_or_else(|| union.clone())
                };
            let fallback = Environment {
                principal: narrowed(
                    &principal_scope,
                    principal_in,
                    &environment.principal,
                    |a| &a.principals,
                ),
                resource: narrowed(&resource_scope, resource_in, &environment.resource, |a| {
                    &a.resources
                }),
                context: environment.context.clone(),
            };
            let mut checker = ExprChecker::new(schema, reporter, types, file, &fallback);
            checker.origin = Origin::Policy(actions.as_deref());
            check_conditions(&mut checker, policy);
            checker.report_unreachable_problems();
        }
        [case] => {
            let mut checker = ExprChecker::new(schema, reporter, types, file, &case.environment);
            checker.origin = Origin::Policy(Some(std::slice::from_ref(&case.action)));
            checker.action = Some(case.action);
            check_conditions(&mut checker, policy);
            checker.report_unreachable_problems();
        }
        cases => {
            let reads_action = policy
                .conditions
                .iter()
                .any(|condition| reads_action(&condition.expr));
            check_cases(
                schema,
                reporter,
                types,
                file,
                cases,
                reads_action,
                &|checker| {
                    check_conditions(checker, policy);
                },
            );
        }
    }
    CheckedPolicy {
        file,
        item,
        id,
        effect: policy.effect,
        actions: actions.map(|actions| actions.iter().map(|action| action.name.clone()).collect()),
        environment,
        has_errors: reporter.n_errors > errors_before,
    }
}

/// The actions a policy's scope names (`None`: every action).
fn scope_actions<'s>(schema: &'s Schema, actions: &Option<Vec<&'s Action>>) -> Vec<&'s Action> {
    match actions {
        Some(actions) => actions.clone(),
        None => schema.actions.values().collect(),
    }
}

/// One environment a policy is checked in.
struct Case<'s> {
    /// The action of the environment.
    action: &'s Action,
    /// The types of the variables in it.
    environment: Environment,
}

/// The cases in groups that type the code alike: the same principal, resource and context types,
/// when the code does not read `action` (which the environments would decide apart); each case
/// alone otherwise. Groups are in the order of their first case.
fn alike_cases(cases: &[Case<'_>], reads_action: bool) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let alike = |group: &&mut Vec<usize>| {
            group
                .first()
                .and_then(|first| cases.get(*first))
                .is_some_and(|first| first.environment == case.environment)
        };
        match groups.iter_mut().find(alike).filter(|_| !reads_action) {
            Some(group) => group.push(index),
            None => groups.push(vec![index]),
        }
    }
    groups
}

/// Whether `expr` reads `action`.
fn reads_action(expr: &ast::Expr) -> bool {
    let mut stack = vec![expr];
    while let Some(expr) = stack.pop() {
        if matches!(expr.kind, ast::ExprKind::Var(ast::Var::Action)) {
            return true;
        }
        stack.extend(expr.children());
    }
    false
}

/// Some environments as a diagnostic names them: "actions `list` and `read` with principal `User`
/// and resource `Order`", the actions grouped by their principal and resource types.
fn describe_cases(cases: &[&Case<'_>]) -> String {
    let mut groups: Vec<(String, String, Vec<&str>)> = Vec::new();
    for case in cases {
        let principal = case.environment.principal.to_string();
        let resource = case.environment.resource.to_string();
        match groups
            .iter_mut()
            .find(|(p, r, _)| *p == principal && *r == resource)
        {
            Some((_, _, actions)) => actions.push(&case.action.name),
            None => groups.push((principal, resource, vec![&case.action.name])),
        }
    }
    let described: Vec<String> = groups
        .into_iter()
        .map(|(principal, resource, actions)| {
            let noun = if actions.len() == 1 {
                "action"
            } else {
                "actions"
            };
            format!(
                "{noun} {} with principal `{principal}` and resource `{resource}`",
                list_names(&actions)
            )
        })
        .collect();
    described.join("; ")
}

/// Checks the conditions of a policy in the checker's environment.
fn check_conditions(checker: &mut ExprChecker<'_, '_, '_>, policy: &ast::Policy) {
    let mut facts = Facts::default();
    for condition in &policy.conditions {
        let (keyword, never) = match condition.kind {
            ast::ConditionKind::When => ("when", false),
            ast::ConditionKind::Unless => ("unless", true),
        };
        let context = format!("`{keyword}` needs a `Bool`");
        let typed = checker.expect(&condition.expr, &facts, &Type::Bool, &context);
        if matches!(strip_parens(&condition.expr).kind, ast::ExprKind::Bool(value) if value == never)
        {
            checker.report(CheckError::ConditionAlwaysFalse {
                span: condition.keyword_span.to(condition.expr.span).into(),
            });
        }
        if condition.kind == ast::ConditionKind::When {
            facts = facts.and(&typed.facts);
        }
        // A clause that never holds for this environment's action makes the rest unreachable.
        let holds = checker
            .action_test(&condition.expr)
            .map(|value| value != never);
        if holds == Some(false) {
            // The rest of the clauses: the region stays open to the end of the policy.
            checker.muted.push(condition.expr.id);
            checker.muted_roots.push(condition.expr.id);
        }
    }
}

/// Checks a policy or a limit (`check`) in each of its environments and reports each problem
/// once: plainly when it arises in every environment, and naming the environments otherwise.
/// The types recorded for lowering are those of all environments together.
fn check_cases(
    schema: &Schema,
    reporter: &mut Reporter<'_>,
    types: &mut ExprTypes,
    file: FileId,
    cases: &[Case<'_>],
    reads_action: bool,
    check: &dyn Fn(&mut ExprChecker<'_, '_, '_>),
) {
    let groups = alike_cases(cases, reads_action);
    let group_actions = |group: &[usize]| -> Vec<&Action> {
        group
            .iter()
            .filter_map(|index| cases.get(*index))
            .map(|case| case.action)
            .collect()
    };
    if let [group] = groups.as_slice() {
        // Every environment types the code alike: check it once, as for a single action.
        let Some(case) = group.first().and_then(|index| cases.get(*index)) else {
            return;
        };
        let actions = group_actions(group);
        let mut checker = ExprChecker::new(schema, reporter, types, file, &case.environment);
        checker.origin = Origin::Policy(Some(&actions));
        checker.action = Some(case.action);
        check(&mut checker);
        checker.report_unreachable_problems();
        return;
    }
    // Each distinct problem with the cases it arose in.
    let mut problems: Vec<(CheckError, Vec<usize>)> = Vec::new();
    let mut merged = ExprTypes::default();
    let mut conflicts = Vec::new();
    let mut muted_counts: HashMap<ast::ExprId, usize> = HashMap::new();
    let mut muted_problems: Vec<(Vec<ast::ExprId>, CheckError, bool, &[usize])> = Vec::new();
    let mut everywhere_only: Vec<(CheckError, usize)> = Vec::new();
    for group in &groups {
        let Some(case) = group.first().and_then(|index| cases.get(*index)) else {
            continue;
        };
        let actions = group_actions(group);
        let mut sub = reporter.child();
        let mut case_types = ExprTypes::default();
        let mut checker =
            ExprChecker::new(schema, &mut sub, &mut case_types, file, &case.environment);
        checker.origin = Origin::Policy(Some(&actions));
        checker.action = Some(case.action);
        check(&mut checker);
        for root in std::mem::take(&mut checker.muted_roots) {
            *muted_counts.entry(root).or_default() += group.len();
        }
        for (regions, error, everywhere) in std::mem::take(&mut checker.muted_problems) {
            muted_problems.push((regions, error, everywhere, group));
        }
        for error in std::mem::take(&mut checker.everywhere_only) {
            match everywhere_only.iter_mut().find(|(seen, _)| *seen == error) {
                Some((_, count)) => *count += group.len(),
                None => everywhere_only.push((error, group.len())),
            }
        }
        for diagnostic in sub.diagnostics {
            let crate::DiagnosticKind::Check(error) = diagnostic.kind else {
                continue;
            };
            match problems.iter_mut().find(|(seen, _)| *seen == error) {
                Some((_, seen_in)) => seen_in.extend_from_slice(group),
                None => problems.push((error, group.clone())),
            }
        }
        merged.merge(case_types, &mut conflicts);
    }
    // A region that no environment can reach is checked like any other code.
    // A problem met in regions some environment reaches is that environment's to report.
    for (regions, error, everywhere, group) in muted_problems {
        let dead_everywhere = regions
            .iter()
            .all(|root| muted_counts.get(root) == Some(&cases.len()));
        if !dead_everywhere {
            continue;
        }
        if everywhere {
            match everywhere_only.iter_mut().find(|(seen, _)| *seen == error) {
                Some((_, count)) => *count += group.len(),
                None => everywhere_only.push((error, group.len())),
            }
            continue;
        }
        match problems.iter_mut().find(|(seen, _)| *seen == error) {
            Some((_, seen_in)) => seen_in.extend_from_slice(group),
            None => problems.push((error, group.to_vec())),
        }
    }
    for (error, count) in everywhere_only {
        if count == cases.len() {
            reporter.report(file, error);
        }
    }
    for (error, seen_in) in problems {
        let environment = (seen_in.len() < cases.len()).then(|| {
            let named: Vec<&Case<'_>> = seen_in
                .iter()
                .filter_map(|index| cases.get(*index))
                .collect();
            describe_cases(&named)
        });
        reporter.report_in(file, error, environment);
    }
    // Only the innermost conflicts: an expression built from one that conflicts conflicts too.
    let inner: Vec<(Span, Type, Type)> = conflicts
        .iter()
        .filter(|(span, _, _)| {
            !conflicts.iter().any(|(other, _, _)| {
                other != span && span.start() <= other.start() && other.end() <= span.end()
            })
        })
        .cloned()
        .collect();
    for (span, first, other) in inner {
        reporter.report(
            file,
            CheckError::TypeDiffersByEnvironment {
                first: first.to_string(),
                other: other.to_string(),
                span: span.into(),
            },
        );
    }
    types.absorb(merged);
}

/// Checks one limit: its count, unit, condition and keys.
pub(crate) fn check_limit(
    schema: &Schema,
    reporter: &mut Reporter<'_>,
    types: &mut ExprTypes,
    file: FileId,
    item: usize,
    limit: &ast::LimitDecl,
) -> CheckedLimit {
    let errors_before = reporter.n_errors;
    if limit.count.value < 1 {
        reporter.report(
            file,
            CheckError::LimitCount {
                span: limit.count.span.into(),
            },
        );
    }
    if let Some(period) = &limit.period {
        let seconds = u64::try_from(period.value)
            .ok()
            .zip(unit_seconds(&limit.unit.name))
            .and_then(|(count, unit)| count.checked_mul(unit));
        if period.value < 1 || seconds.is_some_and(|seconds| seconds > MAX_LIMIT_PERIOD_SECONDS) {
            reporter.report(
                file,
                CheckError::LimitPeriod {
                    span: period.span.into(),
                },
            );
        }
    }
    if let Some(burst) = &limit.burst {
        if burst.value < 1 {
            reporter.report(
                file,
                CheckError::LimitBurst {
                    span: burst.span.into(),
                },
            );
        }
    }
    if !LIMIT_UNITS.contains(&limit.unit.name.as_str()) {
        reporter.report(
            file,
            CheckError::LimitUnit {
                name: limit.unit.name.clone(),
                span: limit.unit.span.into(),
                help: did_you_mean(suggest(&limit.unit.name, LIMIT_UNITS)),
            },
        );
    }
    if let Some(on_attempts) = limit.on_attempts {
        let exprs = limit.keys.iter().chain(limit.condition.as_ref());
        for (var, span) in exprs.flat_map(identity_reads) {
            reporter.report(
                file,
                CheckError::AttemptsLimitReadsRequest {
                    var,
                    span: span.into(),
                    on_attempts: on_attempts.into(),
                },
            );
        }
    }
    // A limit applies to every action: it is checked once per action, in that action's
    // environment (its principal and resource types, its own context), as a policy for
    // `action: *` is; a condition that rules an action out (`action == Action("login")`,
    // `context has ip`) leaves the keys unchecked there.
    let cases: Vec<Case<'_>> = schema
        .actions
        .values()
        .map(|action| Case {
            action,
            environment: Environment {
                principal: Type::Entity(action.principals.clone()),
                resource: Type::Entity(action.resources.clone()),
                context: Type::Record(action.context.clone()),
            },
        })
        .collect();
    if cases.is_empty() {
        let environment = Environment {
            principal: Type::Entity(schema.all_principals.clone()),
            resource: Type::Entity(schema.all_resources.clone()),
            context: Type::Record(Arc::new(RecordType::default())),
        };
        let mut checker = ExprChecker::new(schema, reporter, types, file, &environment);
        check_limit_exprs(&mut checker, limit);
        checker.report_unreachable_problems();
    } else {
        let reads_action = limit
            .keys
            .iter()
            .chain(limit.condition.as_ref())
            .any(reads_action);
        check_cases(
            schema,
            reporter,
            types,
            file,
            &cases,
            reads_action,
            &|checker| {
                checker.origin = Origin::Limit;
                check_limit_exprs(checker, limit);
            },
        );
    }
    CheckedLimit {
        file,
        item,
        name: limit.name.value.clone(),
        has_errors: reporter.n_errors > errors_before,
    }
}

/// Checks a limit's condition and keys in the checker's environment: the keys are computed only
/// when the condition holds, so its facts hold for them, and they are unreachable where the
/// environment decides the condition is false.
fn check_limit_exprs(checker: &mut ExprChecker<'_, '_, '_>, limit: &ast::LimitDecl) {
    let facts = match &limit.condition {
        Some(condition) => {
            let facts = checker
                .expect(
                    condition,
                    &Facts::default(),
                    &Type::Bool,
                    "`when` needs a `Bool`",
                )
                .facts;
            if checker.action_test(condition) == Some(false) {
                checker.muted.push(condition.id);
                checker.muted_roots.push(condition.id);
            }
            facts
        }
        None => Facts::default(),
    };
    for key in &limit.keys {
        let typed = checker.check(key, &facts);
        let valid = matches!(
            typed.ty,
            Type::Entity(_) | Type::String | Type::Long | Type::Ip | Type::Error
        );
        if !valid {
            checker.report(CheckError::LimitKey {
                ty: typed.ty.to_string(),
                span: key.span.into(),
            });
        }
    }
}

/// Where `expr` reads `principal` or `resource`, in source order.
fn identity_reads(expr: &ast::Expr) -> Vec<(&'static str, Span)> {
    let mut found = Vec::new();
    let mut stack = vec![expr];
    while let Some(expr) = stack.pop() {
        match &expr.kind {
            ast::ExprKind::Var(ast::Var::Principal) => found.push(("principal", expr.span)),
            ast::ExprKind::Var(ast::Var::Resource) => found.push(("resource", expr.span)),
            _ => stack.extend(expr.children()),
        }
    }
    found.sort_by_key(|(_, span)| span.start);
    found
}

/// The fields that the contexts of all the actions share with the same type.
fn common_context(actions: &[&Action]) -> RecordType {
    let Some((first, rest)) = actions.split_first() else {
        return RecordType::default();
    };
    let mut fields = BTreeMap::new();
    for (name, field) in &first.context.fields {
        let mut optional = field.optional;
        let shared = rest.iter().all(|action| match action.context.field(name) {
            Some(other) if other.ty == field.ty => {
                optional |= other.optional;
                true
            }
            _ => false,
        });
        if shared {
            fields.insert(
                name.clone(),
                Field {
                    ty: field.ty.clone(),
                    optional,
                },
            );
        }
    }
    RecordType { fields }
}

/// The entity types a principal or resource scope allows.
enum ScopeTypes {
    /// Whatever the actions take.
    Any,
    /// Exactly this type.
    Exactly(Name),
    /// The scope names an unknown type.
    Error,
}

/// The entity a scope's `in` names (`principal in Team("x")`, `principal: User in Team("x")`).
fn scope_ancestor(scope: &ast::Scope) -> Option<&str> {
    match &scope.kind {
        ast::ScopeKind::In(entity) | ast::ScopeKind::IsIn(_, entity) => Some(&entity.ty.name),
        _ => None,
    }
}

impl ScopeTypes {
    /// The type of the variable in the environment of an action that takes `takes`: the types
    /// the scope allows among them (with `in E(..)`, those that can be in an `E`); `None` when
    /// there are none, so that the action is no environment of the policy.
    fn narrow(&self, schema: &Schema, takes: &EntityUnion, ancestor: Option<&str>) -> Option<Type> {
        let can_be_in = |ty: &Name| ancestor.is_none_or(|ancestor| schema.can_be_in(ty, ancestor));
        match self {
            ScopeTypes::Error => Some(Type::Error),
            ScopeTypes::Exactly(name) => {
                (takes.contains(name) && can_be_in(name)).then(|| Type::entity(name.clone()))
            }
            ScopeTypes::Any => {
                let types =
                    EntityUnion::new(takes.members().iter().filter(|ty| can_be_in(ty)).cloned());
                (!types.is_empty()).then_some(Type::Entity(types))
            }
        }
    }

    fn to_type(&self, from_actions: &EntityUnion) -> Type {
        match self {
            ScopeTypes::Any => Type::Entity(from_actions.clone()),
            ScopeTypes::Exactly(name) => Type::entity(name.clone()),
            ScopeTypes::Error => Type::Error,
        }
    }
}

fn resolve_scope(
    schema: &Schema,
    reporter: &mut Reporter<'_>,
    file: FileId,
    scope: &ast::Scope,
) -> ScopeTypes {
    let mut resolve = |ident: &ast::Ident| schema.resolve_entity_type(file, ident, reporter);
    match &scope.kind {
        ast::ScopeKind::Any => ScopeTypes::Any,
        ast::ScopeKind::In(entity) => {
            resolve(&entity.ty);
            ScopeTypes::Any
        }
        ast::ScopeKind::Is(ty) => resolve(ty).map_or(ScopeTypes::Error, ScopeTypes::Exactly),
        ast::ScopeKind::IsIn(ty, entity) => {
            let name = resolve(ty);
            resolve(&entity.ty);
            name.map_or(ScopeTypes::Error, ScopeTypes::Exactly)
        }
        ast::ScopeKind::Eq(entity) => {
            resolve(&entity.ty).map_or(ScopeTypes::Error, ScopeTypes::Exactly)
        }
    }
}

/// The expression inside any parentheses.
fn strip_parens(mut expr: &ast::Expr) -> &ast::Expr {
    while let ast::ExprKind::Paren(inner) = &expr.kind {
        expr = inner;
    }
    expr
}

/// The access path of an expression, such as `principal.manager`, when it is one; it names the
/// subject of `has` and `is` facts.
fn access_path(expr: &ast::Expr) -> Option<String> {
    match &expr.kind {
        ast::ExprKind::Var(var) => Some(var.keyword().to_owned()),
        ast::ExprKind::Attr { base, attr } => {
            let mut path = access_path(base)?;
            path.push('.');
            if is_identifier(&attr.name) {
                path.push_str(&attr.name);
            } else {
                path.push_str(&format!("{:?}", attr.name));
            }
            Some(path)
        }
        ast::ExprKind::Paren(inner) => access_path(inner),
        _ => None,
    }
}

/// What is known to hold when an expression is true.
#[derive(Clone, Debug, Default)]
struct Facts {
    /// `(path, attribute)`: the path has the attribute.
    has: Vec<(String, String)>,
    /// `(path, types)`: the path is an entity of one of the types.
    is: Vec<(String, EntityUnion)>,
}

impl Facts {
    /// The facts of both.
    fn and(&self, other: &Facts) -> Facts {
        if other.has.is_empty() && other.is.is_empty() {
            return self.clone();
        }
        let mut facts = self.clone();
        facts.has.extend(other.has.iter().cloned());
        facts.is.extend(other.is.iter().cloned());
        facts
    }

    /// The facts that hold whichever of the two holds.
    fn or(&self, other: &Facts) -> Facts {
        let has = self
            .has
            .iter()
            .filter(|fact| other.has.contains(fact))
            .cloned()
            .collect();
        let mut is = Vec::new();
        for (path, _) in &self.is {
            if is
                .iter()
                .any(|(seen, _): &(String, EntityUnion)| seen == path)
            {
                continue;
            }
            if let (Some(left), Some(right)) = (self.narrowing(path), other.narrowing(path)) {
                is.push((path.clone(), left.union(&right)));
            }
        }
        Facts { has, is }
    }

    fn has_attr(&self, path: &str, attr: &str) -> bool {
        self.has.iter().any(|(p, a)| p == path && a == attr)
    }

    /// The types a path is known to have, when an `is` fact narrows it.
    fn narrowing(&self, path: &str) -> Option<EntityUnion> {
        let mut result: Option<EntityUnion> = None;
        for (p, union) in &self.is {
            if p == path {
                result = Some(match result {
                    Some(current) => current.intersection(union),
                    None => union.clone(),
                });
            }
        }
        result
    }
}

/// The type of an expression and the facts that hold when it is true.
struct Typed {
    ty: Type,
    facts: Facts,
}

impl Typed {
    fn plain(ty: Type) -> Typed {
        Typed {
            ty,
            facts: Facts::default(),
        }
    }
}

/// Checks the expressions of one policy or limit.
struct ExprChecker<'s, 'r, 'a> {
    schema: &'s Schema,
    reporter: &'r mut Reporter<'a>,
    file: FileId,
    environment: &'s Environment,
    origin: Origin<'s>,
    types: &'r mut ExprTypes,
    /// The action of the environment, when it has one.
    action: Option<&'s Action>,
    /// The regions being checked that this environment cannot reach (the right of `false &&
    /// ...` once `action == Action("x")` is known false here), innermost last: their problems
    /// are held back, and reported only if no environment reaches them.
    muted: Vec<ast::ExprId>,
    /// Every region muted in this environment.
    muted_roots: Vec<ast::ExprId>,
    /// The problems held back, by region, and whether each is one only if it arises in every
    /// environment.
    muted_problems: Vec<(Vec<ast::ExprId>, CheckError, bool)>,
    /// Problems that are problems only if they arise in every environment of the policy: a
    /// `has` test of an attribute this environment's types lack (false here, as in Cedar), a
    /// comparison that is always false here.
    everywhere_only: Vec<CheckError>,
}

impl<'s, 'r, 'a> ExprChecker<'s, 'r, 'a> {
    fn new(
        schema: &'s Schema,
        reporter: &'r mut Reporter<'a>,
        types: &'r mut ExprTypes,
        file: FileId,
        environment: &'s Environment,
    ) -> ExprChecker<'s, 'r, 'a> {
        ExprChecker {
            schema,
            reporter,
            file,
            environment,
            origin: Origin::Limit,
            types,
            action: None,
            muted: Vec::new(),
            muted_roots: Vec::new(),
            muted_problems: Vec::new(),
            everywhere_only: Vec::new(),
        }
    }
}

/// What the expressions being checked belong to, for help texts.
enum Origin<'s> {
    /// A policy, with its actions (`None` for `action: *`).
    Policy(Option<&'s [&'s Action]>),
    /// A limit.
    Limit,
}

impl ExprChecker<'_, '_, '_> {
    fn report(&mut self, error: CheckError) {
        if self.muted.is_empty() {
            self.reporter.report(self.file, error);
        } else {
            self.muted_problems.push((self.muted.clone(), error, false));
        }
    }

    /// Reports a problem that is one only if it arises in every environment of the policy.
    fn report_everywhere_only(&mut self, error: CheckError) {
        if !self.muted.is_empty() {
            self.muted_problems.push((self.muted.clone(), error, true));
        } else if self.action.is_some() {
            self.everywhere_only.push(error);
        } else {
            self.report(error);
        }
    }

    /// With a single environment: the problems held back are reported after all, since it is
    /// every environment there is.
    fn report_unreachable_problems(&mut self) {
        for (_, error, _) in std::mem::take(&mut self.muted_problems) {
            self.reporter.report(self.file, error);
        }
        for error in std::mem::take(&mut self.everywhere_only) {
            self.reporter.report(self.file, error);
        }
    }

    /// Checks `expr` as a region this environment's action cannot reach, unless one is being
    /// checked already.
    fn check_unreachable(
        &mut self,
        expr: &ast::Expr,
        facts: &Facts,
        expected: &Type,
        context: &str,
    ) -> Typed {
        // Regions nest: a problem belongs to the innermost, which is dead everywhere only if
        // every environment mutes it.
        self.muted.push(expr.id);
        self.muted_roots.push(expr.id);
        let typed = self.expect(expr, facts, expected, context);
        self.muted.pop();
        typed
    }

    /// The entity types of `principal` or `resource` in this environment, when `expr` is one of
    /// them.
    fn variable_types(&self, expr: &ast::Expr) -> Option<&EntityUnion> {
        let ty = match strip_parens(expr).kind {
            ast::ExprKind::Var(ast::Var::Principal) => &self.environment.principal,
            ast::ExprKind::Var(ast::Var::Resource) => &self.environment.resource,
            _ => return None,
        };
        match ty {
            Type::Entity(union) if !union.is_empty() => Some(union),
            _ => None,
        }
    }

    /// Whether `base` is `context`, checked for one action, and some other action's context
    /// declares `attr`.
    fn context_field_elsewhere(&self, base: &ast::Expr, attr: &ast::Ident) -> bool {
        self.action.is_some()
            && matches!(
                strip_parens(base).kind,
                ast::ExprKind::Var(ast::Var::Context)
            )
            && self
                .schema
                .actions
                .values()
                .any(|action| action.context.field(&attr.name).is_some())
    }

    /// [`ExprChecker::check`] of a branch this environment's action cannot reach.
    fn check_unreachable_branch(&mut self, expr: &ast::Expr, facts: &Facts) -> Typed {
        self.muted.push(expr.id);
        self.muted_roots.push(expr.id);
        let typed = self.check(expr, facts);
        self.muted.pop();
        typed
    }

    /// The value of `expr` when it depends only on the action and the environment has one
    /// action: `action == Action("x")`, `action in Action("g")`, `action in [..]`, and `!`, `&&`,
    /// `||` of those.
    fn action_test(&self, expr: &ast::Expr) -> Option<bool> {
        let action = self.action?;
        let literal = |expr: &ast::Expr| match &strip_parens(expr).kind {
            ast::ExprKind::Call { callee, args } if callee.name == ACTION_TYPE => {
                match args.as_slice() {
                    [ast::Expr {
                        kind: ast::ExprKind::Str(id),
                        ..
                    }] => Some(id.clone()),
                    _ => None,
                }
            }
            _ => None,
        };
        let is_action = |expr: &ast::Expr| {
            matches!(
                strip_parens(expr).kind,
                ast::ExprKind::Var(ast::Var::Action)
            )
        };
        let within = |id: &str| *action.name == *id || action.ancestors.contains(id);
        match &strip_parens(expr).kind {
            ast::ExprKind::Bool(value) => Some(*value),
            // `principal is T`, `resource is T`: known when the environment's types decide it.
            ast::ExprKind::Is {
                base,
                ty,
                in_expr: None,
            } => {
                let union = self.variable_types(base)?;
                if !union.contains(&ty.name) {
                    Some(false)
                } else if union.members().len() == 1 {
                    Some(true)
                } else {
                    None
                }
            }
            // `principal has a` where none of the environment's types declares `a`.
            ast::ExprKind::Has { base, attr } if self.variable_types(base).is_some() => {
                let union = self.variable_types(base)?;
                let declared = union.members().iter().any(|member| {
                    self.schema
                        .entity_type(member)
                        .is_some_and(|ty| ty.attrs.field(&attr.name).is_some())
                });
                (!declared).then_some(false)
            }
            // `context has f` where this action's context has no `f`.
            ast::ExprKind::Has { base, attr }
                if matches!(
                    strip_parens(base).kind,
                    ast::ExprKind::Var(ast::Var::Context)
                ) =>
            {
                match &self.environment.context {
                    Type::Record(record) if record.field(&attr.name).is_none() => Some(false),
                    _ => None,
                }
            }
            ast::ExprKind::Unary {
                op: ast::UnaryOp::Not,
                operand,
            } => self.action_test(operand).map(|value| !value),
            ast::ExprKind::Binary { op, lhs, rhs } => match op {
                ast::BinaryOp::And => match (self.action_test(lhs), self.action_test(rhs)) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                },
                ast::BinaryOp::Or => match (self.action_test(lhs), self.action_test(rhs)) {
                    (Some(true), _) | (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                },
                ast::BinaryOp::Eq | ast::BinaryOp::Ne => {
                    let id = if is_action(lhs) {
                        literal(rhs)
                    } else if is_action(rhs) {
                        literal(lhs)
                    } else {
                        None
                    }?;
                    let equal = *action.name == *id;
                    Some(if *op == ast::BinaryOp::Eq {
                        equal
                    } else {
                        !equal
                    })
                }
                ast::BinaryOp::In if is_action(lhs) => match &strip_parens(rhs).kind {
                    ast::ExprKind::Set(elements) => {
                        let ids: Option<Vec<String>> = elements.iter().map(literal).collect();
                        Some(ids?.iter().any(|id| within(id)))
                    }
                    _ => literal(rhs).map(|id| within(&id)),
                },
                _ => None,
            },
            _ => None,
        }
    }

    /// Checks `expr` and reports it when its type does not fit `expected`; `context` says why
    /// that type is needed.
    fn expect(&mut self, expr: &ast::Expr, facts: &Facts, expected: &Type, context: &str) -> Typed {
        let typed = self.check(expr, facts);
        if !typed.ty.fits(expected) {
            self.report(CheckError::TypeMismatch {
                expected: format!("`{expected}`"),
                found: typed.ty.to_string(),
                span: expr.span.into(),
                context: context.to_owned(),
                help: None,
            });
            return Typed::plain(Type::Error);
        }
        typed
    }

    /// Narrows the type of an access path by the `is` facts about it.
    fn narrow(&self, expr: &ast::Expr, ty: Type, facts: &Facts) -> Type {
        let Type::Entity(union) = &ty else {
            return ty;
        };
        match access_path(expr).and_then(|path| facts.narrowing(&path)) {
            Some(narrowing) => Type::Entity(union.intersection(&narrowing)),
            None => ty,
        }
    }

    /// Checks `expr` and records its type for lowering.
    fn check(&mut self, expr: &ast::Expr, facts: &Facts) -> Typed {
        let typed = self.check_kind(expr, facts);
        self.types.record(self.file, expr, &typed.ty);
        typed
    }

    fn check_kind(&mut self, expr: &ast::Expr, facts: &Facts) -> Typed {
        match &expr.kind {
            ast::ExprKind::Bool(_) => Typed::plain(Type::Bool),
            ast::ExprKind::Int(_) => Typed::plain(Type::Long),
            ast::ExprKind::Str(_) => Typed::plain(Type::String),
            ast::ExprKind::Var(var) => {
                let ty = match var {
                    ast::Var::Principal => self.environment.principal.clone(),
                    ast::Var::Resource => self.environment.resource.clone(),
                    ast::Var::Context => self.environment.context.clone(),
                    ast::Var::Action => Type::entity(Name::from(ACTION_TYPE)),
                };
                Typed::plain(self.narrow(expr, ty, facts))
            }
            ast::ExprKind::Call { callee, args } => self.check_call(expr, callee, args, facts),
            ast::ExprKind::Attr { base, attr } => {
                let ty = self.check_attr(base, attr, facts);
                Typed::plain(self.narrow(expr, ty, facts))
            }
            ast::ExprKind::MethodCall {
                receiver,
                method,
                args,
            } => Typed::plain(self.check_method(receiver, method, args, facts)),
            ast::ExprKind::Has { base, attr } => self.check_has(base, attr, facts),
            ast::ExprKind::Like { base, pattern: _ } => {
                self.expect(base, facts, &Type::String, "`like` needs a `String`");
                Typed::plain(Type::Bool)
            }
            ast::ExprKind::Is { base, ty, in_expr } => {
                self.check_is(base, ty, in_expr.as_deref(), facts)
            }
            ast::ExprKind::Unary { op, operand } => {
                let (expected, context) = match op {
                    ast::UnaryOp::Not => (Type::Bool, "`!` needs a `Bool`"),
                    ast::UnaryOp::Neg => (Type::Long, "`-` needs a `Long`"),
                };
                self.expect(operand, facts, &expected, context);
                Typed::plain(expected)
            }
            ast::ExprKind::Binary { op, lhs, rhs } => self.check_binary(expr, *op, lhs, rhs, facts),
            ast::ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => {
                let known = self.action_test(cond);
                let cond = self.expect(cond, facts, &Type::Bool, "`if` needs a `Bool` condition");
                let then_facts = facts.and(&cond.facts);
                let then_typed = match known {
                    Some(false) => self.check_unreachable_branch(then_branch, &then_facts),
                    _ => self.check(then_branch, &then_facts),
                };
                let else_typed = match known {
                    Some(true) => self.check_unreachable_branch(else_branch, facts),
                    _ => self.check(else_branch, facts),
                };
                let ty = match then_typed.ty.join(&else_typed.ty) {
                    Some(ty) => ty,
                    None => {
                        self.report(CheckError::IfBranchMismatch {
                            then_ty: then_typed.ty.to_string(),
                            else_ty: else_typed.ty.to_string(),
                            then_span: then_branch.span.into(),
                            else_span: else_branch.span.into(),
                        });
                        Type::Error
                    }
                };
                let facts = cond.facts.and(&then_typed.facts).or(&else_typed.facts);
                Typed { ty, facts }
            }
            ast::ExprKind::Set(elements) => {
                let mut element_ty = Type::Never;
                for element in elements {
                    let typed = self.check(element, facts);
                    match element_ty.join(&typed.ty) {
                        Some(joined) => element_ty = joined,
                        None => self.report(CheckError::MixedSet {
                            first: element_ty.to_string(),
                            found: typed.ty.to_string(),
                            span: element.span.into(),
                        }),
                    }
                }
                Typed::plain(Type::Set(Box::new(element_ty)))
            }
            ast::ExprKind::Record(entries) => {
                let mut fields = BTreeMap::new();
                let mut seen: Vec<(&str, Span)> = Vec::new();
                for (name, value) in entries {
                    let ty = self.check(value, facts).ty;
                    if let Some((_, previous)) = seen.iter().find(|(seen, _)| *seen == name.name) {
                        self.report(CheckError::DuplicateField {
                            name: name.name.clone(),
                            span: name.span.into(),
                            previous: (*previous).into(),
                        });
                        continue;
                    }
                    seen.push((&name.name, name.span));
                    fields.insert(
                        Name::from(name.name.as_str()),
                        Field {
                            ty,
                            optional: false,
                        },
                    );
                }
                Typed::plain(Type::Record(Arc::new(RecordType { fields })))
            }
            ast::ExprKind::Paren(inner) => self.check(inner, facts),
            ast::ExprKind::Error => Typed::plain(Type::Error),
        }
    }

    fn check_call(
        &mut self,
        expr: &ast::Expr,
        callee: &ast::Ident,
        args: &[ast::Expr],
        facts: &Facts,
    ) -> Typed {
        if let Some((name, _)) = self.schema.entity_types.get_key_value(callee.name.as_str()) {
            let name = name.clone();
            self.check_entity_literal(expr, &name, args, facts);
            return Typed::plain(Type::entity(name));
        }
        let Some(function) = authz_stdlib::signatures::function(&callee.name) else {
            for arg in args {
                self.check(arg, facts);
            }
            // Functions are lower case and entity types capitalized: a capitalized callee is
            // most likely a misspelled entity type.
            if callee.name.starts_with(|c: char| c.is_ascii_uppercase()) {
                self.report(CheckError::UnknownEntityType {
                    name: callee.name.clone(),
                    span: callee.span.into(),
                    help: did_you_mean(self.schema.suggest_entity_type(&callee.name)),
                });
                return Typed::plain(Type::Error);
            }
            let candidates = authz_stdlib::FUNCTIONS
                .iter()
                .map(|function| function.name)
                .chain(self.schema.entity_types.keys().map(|name| &**name));
            let help = match suggest(&callee.name, candidates) {
                Some(name) => Some(format!("did you mean `{name}`?")),
                None => {
                    let names: Vec<&str> = authz_stdlib::FUNCTIONS
                        .iter()
                        .map(|function| function.name)
                        .collect();
                    Some(format!(
                        "the functions are {}; an entity literal needs a declared entity type",
                        list_names(&names)
                    ))
                }
            };
            self.report(CheckError::UnknownFunction {
                name: callee.name.clone(),
                span: callee.span.into(),
                help,
            });
            return Typed::plain(Type::Error);
        };
        let ret = Type::from_stdlib(function.ret);
        let signature = format!(
            "the signature is `{}({}) -> {}`",
            function.name,
            function
                .params
                .iter()
                .map(|ty| ty.name())
                .collect::<Vec<_>>()
                .join(", "),
            function.ret
        );
        if !self.check_arity(
            function.name,
            function.params.len(),
            args.len(),
            expr.span,
            Some(signature),
        ) {
            for arg in args {
                self.check(arg, facts);
            }
            return Typed::plain(ret);
        }
        let mut all_valid = true;
        for (arg, param) in args.iter().zip(function.params) {
            let context = format!("`{}` needs a `{}`", function.name, param.name());
            let typed = self.expect(arg, facts, &Type::from_stdlib(*param), &context);
            all_valid &= !typed.ty.is_error();
        }
        if let ([arg], true) = (args, all_valid) {
            if let ast::ExprKind::Str(text) = &strip_parens(arg).kind {
                if let Err(err) = authz_stdlib::signatures::validate_literal(function, text) {
                    self.report(CheckError::InvalidLiteral {
                        function: function.name.to_owned(),
                        message: err.to_string(),
                        span: arg.span.into(),
                        ty: function.ret.name().to_owned(),
                        help: Some(format!("`{}` takes {}", function.name, function.doc)),
                    });
                }
            }
        }
        Typed::plain(ret)
    }

    fn check_entity_literal(
        &mut self,
        expr: &ast::Expr,
        ty: &Name,
        args: &[ast::Expr],
        facts: &Facts,
    ) {
        let problem = match args {
            [] => "no id given".to_owned(),
            [arg] => match &arg.kind {
                ast::ExprKind::Str(id) => {
                    if &**ty == ACTION_TYPE && !self.schema.is_action_or_group(id) {
                        self.report(CheckError::UnknownAction {
                            name: id.clone(),
                            span: arg.span.into(),
                            help: did_you_mean(self.schema.suggest_action_or_group(id)),
                        });
                    }
                    return;
                }
                _ => {
                    self.check(arg, facts);
                    "the id is not a string literal".to_owned()
                }
            },
            _ => {
                for arg in args {
                    self.check(arg, facts);
                }
                format!("{} arguments given", args.len())
            }
        };
        self.report(CheckError::BadEntityLiteral {
            ty: ty.to_string(),
            span: expr.span.into(),
            problem,
        });
    }

    /// Reports a wrong number of arguments; true when the number is right.
    fn check_arity(
        &mut self,
        name: &str,
        expected: usize,
        found: usize,
        span: Span,
        help: Option<String>,
    ) -> bool {
        if expected == found {
            return true;
        }
        let expected = match expected {
            0 => "no arguments".to_owned(),
            1 => "1 argument".to_owned(),
            n => format!("{n} arguments"),
        };
        self.report(CheckError::WrongArity {
            name: name.to_owned(),
            expected,
            found,
            verb: if found == 1 { "was" } else { "were" }.to_owned(),
            span: span.into(),
            help,
        });
        false
    }

    /// The type of `base.attr`.
    fn check_attr(&mut self, base: &ast::Expr, attr: &ast::Ident, facts: &Facts) -> Type {
        let base_ty = self.check(base, facts).ty;
        let path = access_path(base);
        let field = match &base_ty {
            Type::Error => return Type::Error,
            Type::Entity(union) => match self.entity_attribute(union, attr, path.as_deref()) {
                Some(field) => field,
                None => return Type::Error,
            },
            Type::Record(record) => match record.field(&attr.name) {
                Some(field) => field.clone(),
                None => {
                    self.unknown_record_field(record, &base_ty, attr, path.as_deref());
                    return Type::Error;
                }
            },
            other => {
                self.report(CheckError::NotARecord {
                    operation: "attribute access".to_owned(),
                    ty: other.to_string(),
                    span: base.span.into(),
                });
                return Type::Error;
            }
        };
        if field.optional
            && !path
                .as_deref()
                .is_some_and(|path| facts.has_attr(path, &attr.name))
        {
            let help = match &path {
                Some(path) => format!(
                    "guard it with `{path} has {} && ...`",
                    shown_field(&attr.name)
                ),
                None => "read it from a variable or an attribute path that a `has` test can guard"
                    .to_owned(),
            };
            self.report(CheckError::UnguardedOptionalAttribute {
                attr: attr.name.clone(),
                span: attr.span.into(),
                help: Some(help),
            });
        }
        field.ty
    }

    fn unknown_record_field(
        &mut self,
        record: &RecordType,
        base_ty: &Type,
        attr: &ast::Ident,
        path: Option<&str>,
    ) {
        let ty = match path {
            Some(path) => path.to_owned(),
            None => base_ty.to_string(),
        };
        let mut help = did_you_mean(suggest(
            &attr.name,
            record.fields.keys().map(|name| &**name),
        ));
        if help.is_none() && path == Some("context") {
            help = self.context_help(&attr.name);
        }
        self.report(CheckError::UnknownAttribute {
            attr: attr.name.clone(),
            ty,
            span: attr.span.into(),
            help,
        });
    }

    /// Why `context` lacks a field, from where the context type came.
    fn context_help(&self, attr: &str) -> Option<String> {
        match &self.origin {
            Origin::Limit => Some(format!(
                "a limit applies to every action: read `{attr}` where the action has it, under `when context has {attr}` or `when action == Action(\"...\")`"
            )),
            Origin::Policy(None) => Some(
                "a policy for `action: *` has an empty context; name its actions to use the fields they declare `with`"
                    .to_owned(),
            ),
            Origin::Policy(Some(actions)) => {
                let (with, without): (Vec<&Action>, Vec<&Action>) =
                    actions.iter().partition(|action| action.context.field(attr).is_some());
                if with.is_empty() {
                    return None;
                }
                let with: Vec<&str> = with.iter().map(|action| &*action.name).collect();
                let without: Vec<&str> = without.iter().map(|action| &*action.name).collect();
                let verb = if with.len() == 1 { "declares" } else { "declare" };
                if without.is_empty() {
                    return Some(format!(
                        "{} {verb} `{attr}` with different types; a policy's context has the fields its actions declare alike",
                        list_names(&with)
                    ));
                }
                Some(format!(
                    "{} {verb} `{attr}` but {} {}; a policy's context has only the fields all its actions declare",
                    list_names(&with),
                    list_names(&without),
                    if without.len() == 1 { "does not" } else { "do not" }
                ))
            }
        }
    }

    /// The attribute `attr` of an entity of one of the types of `union`; reported and `None`
    /// when some type lacks it or the types disagree.
    fn entity_attribute(
        &mut self,
        union: &EntityUnion,
        attr: &ast::Ident,
        path: Option<&str>,
    ) -> Option<Field> {
        let mut found: Vec<(&Name, &Field)> = Vec::new();
        let mut missing: Vec<&Name> = Vec::new();
        for member in union.members() {
            match self
                .schema
                .entity_type(member)
                .and_then(|ty| ty.attrs.field(&attr.name))
            {
                Some(field) => found.push((member, field)),
                None => missing.push(member),
            }
        }
        let Some(((_, first), rest)) = found.split_first() else {
            if union.is_empty() {
                return None;
            }
            let candidates = union
                .members()
                .iter()
                .filter_map(|member| self.schema.entity_type(member))
                .flat_map(|ty| ty.attrs.fields.keys().map(|name| &**name));
            let help = did_you_mean(suggest(&attr.name, candidates));
            self.report(CheckError::UnknownAttribute {
                attr: attr.name.clone(),
                ty: union.to_string(),
                span: attr.span.into(),
                help,
            });
            return None;
        };
        let having: Vec<&str> = found.iter().map(|(name, _)| &***name).collect();
        let narrow_help = |having: &[&str]| match path {
            Some(path) => {
                let tests: Vec<String> = having
                    .iter()
                    .map(|name| format!("`{path} is {name}`"))
                    .collect();
                Some(format!("narrow it with {}", tests.join(" or ")))
            }
            None => Some("narrow the type with an `is` test".to_owned()),
        };
        if !missing.is_empty() {
            self.report(CheckError::AttributeNotOnAllTypes {
                attr: attr.name.clone(),
                ty: union.to_string(),
                span: attr.span.into(),
                missing: EntityUnion::new(missing.into_iter().cloned()).to_string(),
                help: narrow_help(&having),
            });
            return None;
        }
        if rest.iter().any(|(_, field)| field.ty != first.ty) {
            let details: Vec<String> = found
                .iter()
                .map(|(name, field)| format!("`{}` on `{name}`", field.ty))
                .collect();
            self.report(CheckError::AttributeTypeDiffers {
                attr: attr.name.clone(),
                ty: union.to_string(),
                span: attr.span.into(),
                details: details.join(", "),
                help: narrow_help(&having),
            });
            return None;
        }
        let optional = found.iter().any(|(_, field)| field.optional);
        Some(Field {
            ty: first.ty.clone(),
            optional,
        })
    }

    fn check_has(&mut self, base: &ast::Expr, attr: &ast::Ident, facts: &Facts) -> Typed {
        let base_ty = self.check(base, facts).ty;
        let path = access_path(base);
        match &base_ty {
            Type::Error => {}
            Type::Entity(union) => {
                let declared = union.is_empty()
                    || union.members().iter().any(|member| {
                        self.schema
                            .entity_type(member)
                            .is_some_and(|ty| ty.attrs.field(&attr.name).is_some())
                    });
                if !declared {
                    let candidates = union
                        .members()
                        .iter()
                        .filter_map(|member| self.schema.entity_type(member))
                        .flat_map(|ty| ty.attrs.fields.keys().map(|name| &**name));
                    let help = did_you_mean(suggest(&attr.name, candidates));
                    self.report_everywhere_only(CheckError::UnknownAttribute {
                        attr: attr.name.clone(),
                        ty: union.to_string(),
                        span: attr.span.into(),
                        help,
                    });
                }
            }
            Type::Record(record) => {
                // `context has f` for a field another action declares is false here, as in
                // Cedar: the test is how a policy for several actions reads their own fields.
                if record.field(&attr.name).is_none() && !self.context_field_elsewhere(base, attr) {
                    self.unknown_record_field(record, &base_ty, attr, path.as_deref());
                }
            }
            other => {
                self.report(CheckError::NotARecord {
                    operation: "`has`".to_owned(),
                    ty: other.to_string(),
                    span: base.span.into(),
                });
            }
        }
        let mut result = Facts::default();
        if let Some(path) = path {
            // An entity that has the attribute is of a type that declares it: `principal has
            // blocked` narrows `User | Public` to `User`, as an `is` test would.
            if let Type::Entity(union) = &base_ty {
                let declaring = EntityUnion::new(
                    union
                        .members()
                        .iter()
                        .filter(|member| {
                            self.schema
                                .entity_type(member)
                                .is_some_and(|ty| ty.attrs.field(&attr.name).is_some())
                        })
                        .cloned(),
                );
                if !declaring.is_empty() && declaring.members().len() < union.members().len() {
                    result.is.push((path.clone(), declaring));
                }
            }
            result.has.push((path, attr.name.clone()));
        }
        Typed {
            ty: Type::Bool,
            facts: result,
        }
    }

    fn check_is(
        &mut self,
        base: &ast::Expr,
        ty: &ast::Ident,
        in_expr: Option<&ast::Expr>,
        facts: &Facts,
    ) -> Typed {
        let base_ty = self.check(base, facts).ty;
        if !matches!(base_ty, Type::Entity(_) | Type::Error) {
            self.report(CheckError::TypeMismatch {
                expected: "an entity".to_owned(),
                found: base_ty.to_string(),
                span: base.span.into(),
                context: "`is` tests the type of an entity".to_owned(),
                help: None,
            });
        }
        let name = self
            .schema
            .resolve_entity_type(self.file, ty, self.reporter);
        if let Some(in_expr) = in_expr {
            let in_ty = self.check(in_expr, facts).ty;
            let valid = match &in_ty {
                Type::Entity(_) | Type::Error => true,
                Type::Set(element) => {
                    matches!(**element, Type::Entity(_) | Type::Never | Type::Error)
                }
                _ => false,
            };
            if !valid {
                self.report(CheckError::TypeMismatch {
                    expected: "an entity or a set of entities".to_owned(),
                    found: in_ty.to_string(),
                    span: in_expr.span.into(),
                    context: "`is ... in` tests hierarchy membership".to_owned(),
                    help: None,
                });
            }
        }
        let mut result = Facts::default();
        if let (Some(path), Some(name)) = (access_path(base), name) {
            result.is.push((path, EntityUnion::single(name)));
        }
        Typed {
            ty: Type::Bool,
            facts: result,
        }
    }

    fn check_method(
        &mut self,
        receiver: &ast::Expr,
        method: &ast::Ident,
        args: &[ast::Expr],
        facts: &Facts,
    ) -> Type {
        let receiver_ty = self.check(receiver, facts).ty;
        let name = method.name.as_str();
        let span = method
            .span
            .to(args.last().map_or(method.span, |arg| arg.span));
        match &receiver_ty {
            Type::Error => {
                for arg in args {
                    self.check(arg, facts);
                }
                return Type::Error;
            }
            Type::Set(element) if SET_METHODS.contains(&name) => {
                return self.check_set_method(name, element, args, span, facts);
            }
            _ => {}
        }
        if let Some(stdlib_ty) = receiver_ty.as_stdlib() {
            if let Some(signature) = authz_stdlib::signatures::method_of(stdlib_ty, name) {
                let ret = Type::from_stdlib(signature.ret);
                let params: Vec<&str> = signature.params.iter().map(|ty| ty.name()).collect();
                let help = Some(format!(
                    "the signature is `{}.{name}({}) -> {}`",
                    signature.receiver,
                    params.join(", "),
                    signature.ret
                ));
                if self.check_arity(name, signature.params.len(), args.len(), span, help) {
                    for (arg, param) in args.iter().zip(signature.params) {
                        let context = format!("`{name}` needs a `{}`", param.name());
                        self.expect(arg, facts, &Type::from_stdlib(*param), &context);
                    }
                } else {
                    for arg in args {
                        self.check(arg, facts);
                    }
                }
                return ret;
            }
        }
        for arg in args {
            self.check(arg, facts);
        }
        let mut receivers: Vec<String> = authz_stdlib::signatures::methods_named(name)
            .map(|method| format!("`{}`", method.receiver))
            .collect();
        if SET_METHODS.contains(&name) {
            receivers.push("sets".to_owned());
        }
        if !receivers.is_empty() {
            self.report(CheckError::MethodWrongReceiver {
                name: name.to_owned(),
                receiver: receiver_ty.to_string(),
                span: receiver.span.into(),
                help: Some(format!(
                    "`{name}` is a method of {}",
                    receivers.join(" and ")
                )),
            });
            return Type::Error;
        }
        let own_methods: Vec<&str> = match (&receiver_ty, receiver_ty.as_stdlib()) {
            (Type::Set(_), _) => SET_METHODS.to_vec(),
            (_, Some(stdlib_ty)) => authz_stdlib::signatures::methods_of(stdlib_ty)
                .map(|method| method.name)
                .collect(),
            _ => Vec::new(),
        };
        let help = match suggest(name, own_methods.iter().copied()) {
            Some(suggestion) => Some(format!("did you mean `{suggestion}`?")),
            None if own_methods.is_empty() => Some(format!("`{receiver_ty}` has no methods")),
            None => Some(format!(
                "the methods of `{receiver_ty}` are {}",
                list_names(&own_methods)
            )),
        };
        self.report(CheckError::UnknownMethod {
            name: name.to_owned(),
            receiver: receiver_ty.to_string(),
            span: method.span.into(),
            help,
        });
        Type::Error
    }

    fn check_set_method(
        &mut self,
        name: &str,
        element: &Type,
        args: &[ast::Expr],
        span: Span,
        facts: &Facts,
    ) -> Type {
        let n_params = usize::from(name != "isEmpty");
        let param = match name {
            "isEmpty" => String::new(),
            "contains" => element.to_string(),
            _ => format!("Set<{element}>"),
        };
        let help = Some(format!(
            "the signature is `Set<{element}>.{name}({param}) -> Bool`"
        ));
        if !self.check_arity(name, n_params, args.len(), span, help) {
            for arg in args {
                self.check(arg, facts);
            }
            return Type::Bool;
        }
        let Some(arg) = args.first() else {
            return Type::Bool;
        };
        let typed = self.check(arg, facts);
        let (expected, fits) = if name == "contains" {
            (element.clone(), typed.ty.is_comparable(element))
        } else {
            let set = Type::Set(Box::new(element.clone()));
            let fits =
                matches!(typed.ty, Type::Set(_) | Type::Error) && typed.ty.is_comparable(&set);
            (set, fits)
        };
        if !fits {
            self.report(CheckError::TypeMismatch {
                expected: format!("`{expected}`"),
                found: typed.ty.to_string(),
                span: arg.span.into(),
                context: format!("`{name}` on a `Set<{element}>` needs a `{expected}`"),
                help: None,
            });
        }
        Type::Bool
    }

    fn check_binary(
        &mut self,
        expr: &ast::Expr,
        op: ast::BinaryOp,
        lhs: &ast::Expr,
        rhs: &ast::Expr,
        facts: &Facts,
    ) -> Typed {
        let symbol = op.symbol();
        match op {
            ast::BinaryOp::And => {
                let context = "`&&` needs `Bool` operands";
                let left = self.expect(lhs, facts, &Type::Bool, context);
                let right_facts = facts.and(&left.facts);
                let right = if self.action_test(lhs) == Some(false) {
                    self.check_unreachable(rhs, &right_facts, &Type::Bool, context)
                } else {
                    self.expect(rhs, &right_facts, &Type::Bool, context)
                };
                Typed {
                    ty: Type::Bool,
                    facts: left.facts.and(&right.facts),
                }
            }
            ast::BinaryOp::Or => {
                let context = "`||` needs `Bool` operands";
                let left = self.expect(lhs, facts, &Type::Bool, context);
                let right = if self.action_test(lhs) == Some(true) {
                    self.check_unreachable(rhs, facts, &Type::Bool, context)
                } else {
                    self.expect(rhs, facts, &Type::Bool, context)
                };
                Typed {
                    ty: Type::Bool,
                    facts: left.facts.or(&right.facts),
                }
            }
            ast::BinaryOp::Eq | ast::BinaryOp::Ne => {
                let left = self.check(lhs, facts).ty;
                let right = self.check(rhs, facts).ty;
                if !left.is_comparable(&right) {
                    self.report_everywhere_only(CheckError::IncomparableTypes {
                        op: symbol.to_owned(),
                        left: left.to_string(),
                        right: right.to_string(),
                        span: expr.span.into(),
                        outcome: if op == ast::BinaryOp::Eq {
                            "false"
                        } else {
                            "true"
                        }
                        .to_owned(),
                    });
                }
                Typed::plain(Type::Bool)
            }
            ast::BinaryOp::Lt | ast::BinaryOp::Le | ast::BinaryOp::Gt | ast::BinaryOp::Ge => {
                let left = self.check(lhs, facts).ty;
                let right = self.check(rhs, facts).ty;
                let ordered = |ty: &Type| {
                    matches!(
                        ty,
                        Type::Long | Type::Timestamp | Type::Duration | Type::Error
                    )
                };
                // One unordered operand is reported; the other is most likely of the same type.
                let unordered = [(&left, lhs), (&right, rhs)]
                    .into_iter()
                    .find(|(ty, _)| !ordered(ty));
                if let Some((ty, operand)) = unordered {
                    self.report(CheckError::NotOrdered {
                        op: symbol.to_owned(),
                        ty: ty.to_string(),
                        span: operand.span.into(),
                    });
                } else if !left.is_comparable(&right) {
                    self.report(CheckError::TypeMismatch {
                        expected: format!("`{left}`"),
                        found: right.to_string(),
                        span: rhs.span.into(),
                        context: format!("`{symbol}` needs operands of the same type"),
                        help: None,
                    });
                }
                Typed::plain(Type::Bool)
            }
            ast::BinaryOp::In => {
                let left = self.check(lhs, facts).ty;
                let right = self.check(rhs, facts).ty;
                self.check_in(expr, &left, &right);
                Typed::plain(Type::Bool)
            }
            ast::BinaryOp::Add | ast::BinaryOp::Sub | ast::BinaryOp::Mul => {
                let context = format!("`{symbol}` needs `Long` operands");
                self.expect(lhs, facts, &Type::Long, &context);
                self.expect(rhs, facts, &Type::Long, &context);
                Typed::plain(Type::Long)
            }
        }
    }

    /// Checks `left in right`: hierarchy membership (an entity in an entity or in a set of
    /// entities) or element membership (a `T` in a `Set<T>`).
    fn check_in(&mut self, expr: &ast::Expr, left: &Type, right: &Type) {
        let problem: Option<(String, Option<String>)> = match (left, right) {
            (Type::Error, _) | (_, Type::Error) => None,
            (Type::Entity(_), Type::Entity(_)) => None,
            (_, Type::Entity(_)) => Some(("only an entity can be in an entity".to_owned(), None)),
            (Type::Entity(_), Type::Set(element))
                if matches!(**element, Type::Entity(_) | Type::Never) =>
            {
                None
            }
            (_, Type::Set(element)) if left.is_comparable(element) => None,
            (_, Type::Set(element)) => {
                Some((format!("a `{right}` holds `{element}` values"), None))
            }
            (Type::String, Type::String) => Some((
                "`in` needs an entity or a set on the right".to_owned(),
                Some("to test for a substring, try `haystack.contains(needle)`".to_owned()),
            )),
            _ => Some((
                "`in` needs an entity or a set on the right".to_owned(),
                None,
            )),
        };
        if let Some((reason, help)) = problem {
            self.report(CheckError::InvalidIn {
                left: left.to_string(),
                right: right.to_string(),
                span: expr.span.into(),
                reason,
                help,
            });
        }
    }
}

/// A field name as it would be written after `.` or `has`.
fn shown_field(name: &str) -> String {
    if is_identifier(name) {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}
