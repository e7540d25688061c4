//! Comparing syntax trees modulo spans: [`erase_spans`] returns a copy of a file with every span
//! zeroed (and comments trimmed of trailing whitespace, as the formatter prints them), so that two
//! trees parsed from differently laid-out texts compare equal when they say the same thing.
//! Expression ids are kept (tree equality ignores them anyway); [`expr_ids`] lists them, for
//! tests of the numbering itself.

use authz_lang::ast::*;
use authz_lang::Span;

/// A copy of `file` with every span set to `Span::default()` and every comment's trailing
/// whitespace removed.
pub fn erase_spans(file: &File) -> File {
    File {
        items: file.items.iter().map(item).collect(),
        comments: file
            .comments
            .iter()
            .map(|comment| Comment {
                text: comment.text.trim_end().to_string(),
                span: Span::default(),
            })
            .collect(),
    }
}

/// A copy of `file` with every span zeroed and without its comments.
pub fn erase_spans_and_comments(file: &File) -> File {
    File {
        items: file.items.iter().map(item).collect(),
        comments: Vec::new(),
    }
}

fn ident(ident: &Ident) -> Ident {
    Ident {
        name: ident.name.clone(),
        span: Span::default(),
    }
}

fn idents(idents: &[Ident]) -> Vec<Ident> {
    idents.iter().map(ident).collect()
}

fn str_lit(literal: &StrLit) -> StrLit {
    StrLit {
        value: literal.value.clone(),
        span: Span::default(),
    }
}

fn item(item: &Item) -> Item {
    Item {
        annotations: item
            .annotations
            .iter()
            .map(|annotation| Annotation {
                name: ident(&annotation.name),
                value: annotation.value.as_ref().map(str_lit),
                span: Span::default(),
            })
            .collect(),
        kind: match &item.kind {
            ItemKind::Entity(entity) => ItemKind::Entity(EntityDecl {
                name: ident(&entity.name),
                parents: idents(&entity.parents),
                attrs: entity.attrs.as_ref().map(record_type),
            }),
            ItemKind::Action(action) => ItemKind::Action(ActionDecl {
                names: idents(&action.names),
                groups: idents(&action.groups),
                signature: action.signature.as_ref().map(|signature| ActionSignature {
                    principals: idents(&signature.principals),
                    resources: idents(&signature.resources),
                    context: signature.context.as_ref().map(type_expr),
                }),
            }),
            ItemKind::TypeAlias(alias) => ItemKind::TypeAlias(TypeAliasDecl {
                name: ident(&alias.name),
                ty: type_expr(&alias.ty),
            }),
            ItemKind::Route(route) => ItemKind::Route(RouteDecl {
                method: ident(&route.method),
                path: str_lit(&route.path),
                action: ident(&route.action),
                resource_type: ident(&route.resource_type),
                resource_id: match &route.resource_id {
                    RouteArg::Param(param) => RouteArg::Param(ident(param)),
                    RouteArg::Literal(literal) => RouteArg::Literal(str_lit(literal)),
                },
            }),
            ItemKind::Policy(policy) => ItemKind::Policy(Policy {
                effect: policy.effect,
                effect_span: Span::default(),
                principal: scope(&policy.principal),
                action: ActionScope {
                    kind: match &policy.action.kind {
                        ActionScopeKind::Any => ActionScopeKind::Any,
                        ActionScopeKind::One(action) => ActionScopeKind::One(ident(action)),
                        ActionScopeKind::AnyOf(actions) => ActionScopeKind::AnyOf(idents(actions)),
                    },
                    span: Span::default(),
                },
                resource: scope(&policy.resource),
                conditions: policy
                    .conditions
                    .iter()
                    .map(|condition| Condition {
                        kind: condition.kind,
                        keyword_span: Span::default(),
                        expr: expr(&condition.expr),
                    })
                    .collect(),
            }),
            ItemKind::Limit(limit) => ItemKind::Limit(LimitDecl {
                name: str_lit(&limit.name),
                count: IntLit {
                    value: limit.count.value,
                    span: Span::default(),
                },
                period: limit.period.as_ref().map(|period| IntLit {
                    value: period.value,
                    span: Span::default(),
                }),
                unit: ident(&limit.unit),
                burst: limit.burst.as_ref().map(|burst| IntLit {
                    value: burst.value,
                    span: Span::default(),
                }),
                on_attempts: limit.on_attempts.map(|_| Span::default()),
                keys: limit.keys.iter().map(expr).collect(),
                condition: limit.condition.as_ref().map(expr),
            }),
        },
        span: Span::default(),
    }
}

fn record_type(record: &RecordType) -> RecordType {
    RecordType {
        fields: record
            .fields
            .iter()
            .map(|field| FieldType {
                name: ident(&field.name),
                optional: field.optional,
                ty: type_expr(&field.ty),
            })
            .collect(),
        span: Span::default(),
    }
}

fn type_expr(ty: &TypeExpr) -> TypeExpr {
    match ty {
        TypeExpr::Named(name) => TypeExpr::Named(ident(name)),
        TypeExpr::Set(element, _) => TypeExpr::Set(Box::new(type_expr(element)), Span::default()),
        TypeExpr::Record(record) => TypeExpr::Record(record_type(record)),
    }
}

fn scope(scope: &Scope) -> Scope {
    Scope {
        kind: match &scope.kind {
            ScopeKind::Any => ScopeKind::Any,
            ScopeKind::Is(ty) => ScopeKind::Is(ident(ty)),
            ScopeKind::IsIn(ty, entity) => ScopeKind::IsIn(ident(ty), entity_ref(entity)),
            ScopeKind::Eq(entity) => ScopeKind::Eq(entity_ref(entity)),
            ScopeKind::In(entity) => ScopeKind::In(entity_ref(entity)),
        },
        span: Span::default(),
    }
}

fn entity_ref(entity: &EntityRef) -> EntityRef {
    EntityRef {
        ty: ident(&entity.ty),
        id: str_lit(&entity.id),
        span: Span::default(),
    }
}

fn boxed(e: &Expr) -> Box<Expr> {
    Box::new(expr(e))
}

/// A copy of an expression with every span zeroed.
pub fn expr(e: &Expr) -> Expr {
    let kind = match &e.kind {
        ExprKind::Bool(value) => ExprKind::Bool(*value),
        ExprKind::Int(value) => ExprKind::Int(*value),
        ExprKind::Str(value) => ExprKind::Str(value.clone()),
        ExprKind::Var(var) => ExprKind::Var(*var),
        ExprKind::Call { callee, args } => ExprKind::Call {
            callee: ident(callee),
            args: args.iter().map(expr).collect(),
        },
        ExprKind::Attr { base, attr } => ExprKind::Attr {
            base: boxed(base),
            attr: ident(attr),
        },
        ExprKind::MethodCall {
            receiver,
            method,
            args,
        } => ExprKind::MethodCall {
            receiver: boxed(receiver),
            method: ident(method),
            args: args.iter().map(expr).collect(),
        },
        ExprKind::Has { base, attr } => ExprKind::Has {
            base: boxed(base),
            attr: ident(attr),
        },
        ExprKind::Like { base, pattern } => ExprKind::Like {
            base: boxed(base),
            pattern: str_lit(pattern),
        },
        ExprKind::Is { base, ty, in_expr } => ExprKind::Is {
            base: boxed(base),
            ty: ident(ty),
            in_expr: in_expr.as_deref().map(boxed),
        },
        ExprKind::Unary { op, operand } => ExprKind::Unary {
            op: *op,
            operand: boxed(operand),
        },
        ExprKind::Binary { op, lhs, rhs } => ExprKind::Binary {
            op: *op,
            lhs: boxed(lhs),
            rhs: boxed(rhs),
        },
        ExprKind::If {
            cond,
            then_branch,
            else_branch,
        } => ExprKind::If {
            cond: boxed(cond),
            then_branch: boxed(then_branch),
            else_branch: boxed(else_branch),
        },
        ExprKind::Set(elements) => ExprKind::Set(elements.iter().map(expr).collect()),
        ExprKind::Record(fields) => ExprKind::Record(
            fields
                .iter()
                .map(|(name, value)| (ident(name), expr(value)))
                .collect(),
        ),
        ExprKind::Paren(inner) => ExprKind::Paren(boxed(inner)),
        ExprKind::Error => ExprKind::Error,
    };
    Expr {
        id: e.id,
        kind,
        span: Span::default(),
    }
}

/// The ids of every expression of `file`, children before their parent, left to right: the
/// order in which the parser numbers them.
pub fn expr_ids(file: &File) -> Vec<ExprId> {
    fn walk(e: &Expr, ids: &mut Vec<ExprId>) {
        for child in e.children() {
            walk(child, ids);
        }
        ids.push(e.id);
    }
    let mut ids = Vec::new();
    for item in &file.items {
        match &item.kind {
            ItemKind::Policy(policy) => {
                for condition in &policy.conditions {
                    walk(&condition.expr, &mut ids);
                }
            }
            ItemKind::Limit(limit) => {
                for e in limit.keys.iter().chain(&limit.condition) {
                    walk(e, &mut ids);
                }
            }
            ItemKind::Entity(_)
            | ItemKind::Action(_)
            | ItemKind::Route(_)
            | ItemKind::TypeAlias(_) => {}
        }
    }
    ids
}
