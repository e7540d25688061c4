//! Random syntax trees of the whole language, for property tests.
//!
//! [`file`] generates files with every item kind (annotations included) and every expression
//! form, nested to a bounded depth; identifiers are never keywords, field names are identifiers,
//! keywords or arbitrary strings, and strings mix ASCII, escapes, control characters and other
//! Unicode. Every span is `Span::default()`, expressions are numbered as the parser numbers them
//! ([`File::number_exprs`]), and trees carry no comments: comments exist only in
//! text, so [`text`] prints a generated file and inserts random whitespace and comments between
//! its tokens (see `noise`). Expressions are generated without regard to
//! precedence, so a tree may need parentheses to be printed; [`parenthesize`] adds a `Paren` node
//! exactly where the grammar requires one, giving the tree that the printed text parses to.

use authz_lang::ast::*;
use authz_lang::Span;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

/// The keywords of the language, which identifiers may not be.
pub const KEYWORDS: &[&str] = &[
    "entity",
    "action",
    "route",
    "permit",
    "forbid",
    "when",
    "unless",
    "limit",
    "per",
    "in",
    "has",
    "like",
    "is",
    "if",
    "then",
    "else",
    "true",
    "false",
    "principal",
    "resource",
    "context",
    "with",
];

fn span() -> Span {
    Span::default()
}

fn named(name: impl Into<String>) -> Ident {
    Ident {
        name: name.into(),
        span: span(),
    }
}

/// An identifier that is not a keyword: mostly familiar names, sometimes random ones.
pub fn ident() -> impl Strategy<Value = Ident> {
    let familiar = select(vec![
        "User", "Team", "Order", "Service", "Set", "String", "Long", "read", "list", "x", "_",
        "a1", "GET", "POST", "minute", "ip", "contains", "Action",
    ])
    .prop_map(named);
    let random = "[A-Za-z_][A-Za-z0-9_]{0,10}"
        .prop_filter("identifiers are not keywords", |name| {
            !KEYWORDS.contains(&name.as_str())
        })
        .prop_map(named);
    prop_oneof![2 => familiar, 1 => random]
}

/// One character of a string literal's value.
fn string_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => proptest::char::range('a', 'z'),
        3 => select(vec![
            ' ', '"', '\\', '\n', '\r', '\t', '\0', '\'', '*', '/', '{', '}', 'é', '😀', '中',
            '\u{1}', '\u{1f}', '\u{7f}', '\u{85}', '\u{a0}', '\u{2028}', '\u{feff}',
        ]),
        1 => any::<char>(),
    ]
}

/// A string value, possibly empty; now and then a long one, so that lines must break.
pub fn string_value() -> impl Strategy<Value = String> {
    prop_oneof![
        9 => vec(string_char(), 0..8),
        1 => vec(string_char(), 20..60),
    ]
    .prop_map(String::from_iter)
}

/// A string literal.
pub fn str_lit() -> impl Strategy<Value = StrLit> {
    string_value().prop_map(|value| StrLit {
        value,
        span: span(),
    })
}

/// A field name: an identifier, a keyword or any string.
pub fn field_name() -> impl Strategy<Value = Ident> {
    prop_oneof![
        4 => ident(),
        1 => select(KEYWORDS.to_vec()).prop_map(named),
        1 => string_value().prop_map(named),
    ]
}

fn int() -> impl Strategy<Value = i64> {
    prop_oneof![3 => 0i64..1000, 1 => 0i64..=i64::MAX]
}

/// A type in a record field.
pub fn type_expr() -> impl Strategy<Value = TypeExpr> {
    let leaf = ident().prop_map(TypeExpr::Named);
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_map(|element| TypeExpr::Set(Box::new(element), span())),
            record_type_of(inner).prop_map(TypeExpr::Record),
        ]
    })
}

fn record_type_of(ty: impl Strategy<Value = TypeExpr>) -> impl Strategy<Value = RecordType> {
    vec((field_name(), any::<bool>(), ty), 0..4).prop_map(|fields| RecordType {
        fields: fields
            .into_iter()
            .map(|(name, optional, ty)| FieldType { name, optional, ty })
            .collect(),
        span: span(),
    })
}

/// A record type.
pub fn record_type() -> impl Strategy<Value = RecordType> {
    record_type_of(type_expr())
}

/// An expression with a placeholder id; [`file`] and [`parenthesize`] number finished trees.
fn expr_of(kind: ExprKind) -> Expr {
    Expr {
        id: ExprId(0),
        kind,
        span: span(),
    }
}

fn boxed(e: Expr) -> Box<Expr> {
    Box::new(e)
}

fn var() -> impl Strategy<Value = Var> {
    select(vec![
        Var::Principal,
        Var::Action,
        Var::Resource,
        Var::Context,
    ])
}

fn binary_op() -> impl Strategy<Value = BinaryOp> {
    select(vec![
        BinaryOp::Or,
        BinaryOp::And,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
        BinaryOp::In,
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
    ])
}

/// An expression of any form, at most a few levels deep, without regard to precedence.
pub fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(ExprKind::Bool),
        int().prop_map(ExprKind::Int),
        string_value().prop_map(ExprKind::Str),
        var().prop_map(ExprKind::Var),
        ident().prop_map(|callee| ExprKind::Call {
            callee,
            args: Vec::new()
        }),
    ]
    .prop_map(expr_of);
    leaf.prop_recursive(4, 32, 4, |inner| {
        let args = vec(inner.clone(), 0..4);
        prop_oneof![
            1 => (ident(), args.clone()).prop_map(|(callee, args)| ExprKind::Call { callee, args }),
            1 => (inner.clone(), field_name()).prop_map(|(base, attr)| ExprKind::Attr {
                base: boxed(base),
                attr
            }),
            1 => (inner.clone(), field_name(), args.clone()).prop_map(|(receiver, method, args)| {
                ExprKind::MethodCall {
                    receiver: boxed(receiver),
                    method,
                    args,
                }
            }),
            1 => (inner.clone(), field_name()).prop_map(|(base, attr)| ExprKind::Has {
                base: boxed(base),
                attr
            }),
            1 => (inner.clone(), str_lit()).prop_map(|(base, pattern)| ExprKind::Like {
                base: boxed(base),
                pattern
            }),
            1 => (inner.clone(), ident(), option::of(inner.clone())).prop_map(|(base, ty, in_expr)| {
                ExprKind::Is {
                    base: boxed(base),
                    ty,
                    in_expr: in_expr.map(boxed),
                }
            }),
            1 => (select(vec![UnaryOp::Not, UnaryOp::Neg]), inner.clone()).prop_map(
                |(op, operand)| ExprKind::Unary {
                    op,
                    operand: boxed(operand)
                }
            ),
            3 => (binary_op(), inner.clone(), inner.clone()).prop_map(|(op, lhs, rhs)| {
                ExprKind::Binary {
                    op,
                    lhs: boxed(lhs),
                    rhs: boxed(rhs),
                }
            }),
            1 => (inner.clone(), inner.clone(), inner.clone()).prop_map(
                |(cond, then_branch, else_branch)| ExprKind::If {
                    cond: boxed(cond),
                    then_branch: boxed(then_branch),
                    else_branch: boxed(else_branch),
                }
            ),
            1 => args.prop_map(ExprKind::Set),
            1 => vec((field_name(), inner.clone()), 0..4).prop_map(ExprKind::Record),
            1 => inner.prop_map(|inner| ExprKind::Paren(boxed(inner))),
        ]
        .prop_map(expr_of)
    })
}

fn annotation() -> impl Strategy<Value = Annotation> {
    let name = prop_oneof![
        4 => select(vec!["id", "reason", "deprecated"]).prop_map(named),
        2 => ident(),
        1 => select(KEYWORDS.to_vec()).prop_map(named),
    ];
    (name, option::of(str_lit())).prop_map(|(name, value)| Annotation {
        name,
        value,
        span: span(),
    })
}

fn entity_ref() -> impl Strategy<Value = EntityRef> {
    (ident(), str_lit()).prop_map(|(ty, id)| EntityRef {
        ty,
        id,
        span: span(),
    })
}

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        Just(ScopeKind::Any),
        ident().prop_map(ScopeKind::Is),
        (ident(), entity_ref()).prop_map(|(ty, entity)| ScopeKind::IsIn(ty, entity)),
        entity_ref().prop_map(ScopeKind::Eq),
        entity_ref().prop_map(ScopeKind::In),
    ]
    .prop_map(|kind| Scope { kind, span: span() })
}

fn action_scope() -> impl Strategy<Value = ActionScope> {
    prop_oneof![
        Just(ActionScopeKind::Any),
        ident().prop_map(ActionScopeKind::One),
        vec(ident(), 1..4).prop_map(ActionScopeKind::AnyOf),
    ]
    .prop_map(|kind| ActionScope { kind, span: span() })
}

fn condition() -> impl Strategy<Value = Condition> {
    (
        select(vec![ConditionKind::When, ConditionKind::Unless]),
        expr(),
    )
        .prop_map(|(kind, expr)| Condition {
            kind,
            keyword_span: span(),
            expr,
        })
}

fn item_kind() -> impl Strategy<Value = ItemKind> {
    let entity = (ident(), vec(ident(), 0..3), option::of(record_type())).prop_map(
        |(name, parents, attrs)| {
            ItemKind::Entity(EntityDecl {
                name,
                parents,
                attrs,
            })
        },
    );
    let context = prop_oneof![
        record_type().prop_map(TypeExpr::Record),
        ident().prop_map(TypeExpr::Named),
    ];
    let signature = (vec(ident(), 1..4), vec(ident(), 1..4), option::of(context)).prop_map(
        |(principals, resources, context)| ActionSignature {
            principals,
            resources,
            context,
        },
    );
    let action = (
        vec(ident(), 1..4),
        vec(ident(), 0..3),
        option::weighted(0.75, signature),
    )
        .prop_map(|(names, groups, signature)| {
            ItemKind::Action(ActionDecl {
                names,
                groups,
                signature,
            })
        });
    let type_alias = (ident(), type_expr())
        .prop_map(|(name, ty)| ItemKind::TypeAlias(TypeAliasDecl { name, ty }));
    let method = prop_oneof![
        select(vec![
            "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"
        ])
        .prop_map(named),
        ident(),
    ];
    let route_arg = prop_oneof![
        ident().prop_map(RouteArg::Param),
        str_lit().prop_map(RouteArg::Literal),
    ];
    let route = (method, str_lit(), ident(), ident(), route_arg).prop_map(
        |(method, path, action, resource_type, resource_id)| {
            ItemKind::Route(RouteDecl {
                method,
                path,
                action,
                resource_type,
                resource_id,
            })
        },
    );
    let policy = (
        select(vec![Effect::Permit, Effect::Forbid]),
        scope(),
        action_scope(),
        scope(),
        vec(condition(), 0..3),
    )
        .prop_map(|(effect, principal, action, resource, conditions)| {
            ItemKind::Policy(Policy {
                effect,
                effect_span: span(),
                principal,
                action,
                resource,
                conditions,
            })
        });
    let limit = (
        str_lit(),
        int(),
        prop_oneof![
            select(vec!["second", "minute", "hour", "day"]).prop_map(named),
            ident()
        ],
        vec(expr(), 0..3),
        option::of(expr()),
        (option::of(int()), option::of(int()), any::<bool>()),
    )
        .prop_map(
            |(name, count, unit, keys, condition, (period, burst, on_attempts))| {
                let literal = |value| IntLit {
                    value,
                    span: span(),
                };
                ItemKind::Limit(LimitDecl {
                    name,
                    count: literal(count),
                    period: period.map(literal),
                    unit,
                    burst: burst.map(literal),
                    on_attempts: on_attempts.then(span),
                    keys,
                    condition,
                })
            },
        );
    prop_oneof![1 => entity, 1 => action, 1 => route, 3 => policy, 1 => limit, 1 => type_alias]
}

/// An item with up to three annotations.
pub fn item() -> impl Strategy<Value = Item> {
    (vec(annotation(), 0..3), item_kind()).prop_map(|(annotations, kind)| Item {
        annotations,
        kind,
        span: span(),
    })
}

/// A file of up to five items, without comments.
pub fn file() -> impl Strategy<Value = File> {
    vec(item(), 0..6).prop_map(|items| {
        let mut file = File {
            items,
            comments: Vec::new(),
        };
        file.number_exprs();
        file
    })
}

/// The text of a generated file, in canonical layout or, with `noise`, with random whitespace
/// between its tokens and, with `comments` too, random comments: always a valid file.
pub fn text(noise: bool, comments: bool) -> impl Strategy<Value = String> {
    file().prop_flat_map(move |file| {
        let text = authz_lang::format_file(&file, "");
        if noise {
            super::noise::noisy(text, comments).boxed()
        } else {
            Just(text).boxed()
        }
    })
}

// ---- The parentheses the grammar requires ----

/// Binding levels as in `docs/language.md`, loosest first.
fn level(e: &Expr) -> Precedence {
    match &e.kind {
        ExprKind::If { .. } => Precedence::If,
        ExprKind::Binary { op, .. } => match op {
            BinaryOp::Or => Precedence::Or,
            BinaryOp::And => Precedence::And,
            BinaryOp::Add | BinaryOp::Sub => Precedence::Sum,
            BinaryOp::Mul => Precedence::Product,
            _ => Precedence::Compare,
        },
        ExprKind::Has { .. } | ExprKind::Like { .. } | ExprKind::Is { .. } => Precedence::Compare,
        ExprKind::Unary { .. } => Precedence::Unary,
        ExprKind::Attr { .. } | ExprKind::MethodCall { .. } => Precedence::Postfix,
        _ => Precedence::Primary,
    }
}

/// `e`, put in parentheses when it binds more loosely than `min`, after doing the same inside it.
fn operand(e: &Expr, min: Precedence) -> Box<Expr> {
    let inner = paren_expr(e);
    if level(&inner) >= min {
        return Box::new(inner);
    }
    Box::new(expr_of(ExprKind::Paren(Box::new(inner))))
}

/// A copy of an expression with a `Paren` node wherever the grammar needs one.
pub fn paren_expr(e: &Expr) -> Expr {
    use Precedence as P;
    let any = |e: &Expr| paren_expr(e);
    let kind = match &e.kind {
        ExprKind::Call { callee, args } => ExprKind::Call {
            callee: callee.clone(),
            args: args.iter().map(any).collect(),
        },
        ExprKind::Attr { base, attr } => ExprKind::Attr {
            base: operand(base, P::Postfix),
            attr: attr.clone(),
        },
        ExprKind::MethodCall {
            receiver,
            method,
            args,
        } => ExprKind::MethodCall {
            receiver: operand(receiver, P::Postfix),
            method: method.clone(),
            args: args.iter().map(any).collect(),
        },
        ExprKind::Has { base, attr } => ExprKind::Has {
            base: operand(base, P::Sum),
            attr: attr.clone(),
        },
        ExprKind::Like { base, pattern } => ExprKind::Like {
            base: operand(base, P::Sum),
            pattern: pattern.clone(),
        },
        ExprKind::Is { base, ty, in_expr } => ExprKind::Is {
            base: operand(base, P::Sum),
            ty: ty.clone(),
            in_expr: in_expr.as_deref().map(|e| operand(e, P::Sum)),
        },
        ExprKind::Unary { op, operand: inner } => ExprKind::Unary {
            op: *op,
            operand: operand(inner, P::Unary),
        },
        ExprKind::Binary { op, lhs, rhs } => {
            let (lhs_min, rhs_min) = match op {
                BinaryOp::Or => (P::Or, P::And),
                BinaryOp::And => (P::And, P::Compare),
                BinaryOp::Add | BinaryOp::Sub => (P::Sum, P::Product),
                BinaryOp::Mul => (P::Product, P::Unary),
                _ => (P::Sum, P::Sum),
            };
            ExprKind::Binary {
                op: *op,
                lhs: operand(lhs, lhs_min),
                rhs: operand(rhs, rhs_min),
            }
        }
        ExprKind::If {
            cond,
            then_branch,
            else_branch,
        } => ExprKind::If {
            cond: Box::new(any(cond)),
            then_branch: Box::new(any(then_branch)),
            else_branch: Box::new(any(else_branch)),
        },
        ExprKind::Set(elements) => ExprKind::Set(elements.iter().map(any).collect()),
        ExprKind::Record(fields) => ExprKind::Record(
            fields
                .iter()
                .map(|(name, value)| (name.clone(), any(value)))
                .collect(),
        ),
        ExprKind::Paren(inner) => ExprKind::Paren(Box::new(any(inner))),
        kind => kind.clone(),
    };
    Expr {
        id: e.id,
        kind,
        span: e.span,
    }
}

/// A copy of a file with a `Paren` node wherever the grammar needs one: the tree that the
/// formatted text of `file` parses to.
pub fn parenthesize(file: &File) -> File {
    let mut file = file.clone();
    for item in &mut file.items {
        match &mut item.kind {
            ItemKind::Policy(policy) => {
                for condition in &mut policy.conditions {
                    condition.expr = paren_expr(&condition.expr);
                }
            }
            ItemKind::Limit(limit) => {
                for key in &mut limit.keys {
                    *key = paren_expr(key);
                }
                if let Some(condition) = &mut limit.condition {
                    *condition = paren_expr(condition);
                }
            }
            ItemKind::Entity(_)
            | ItemKind::Action(_)
            | ItemKind::Route(_)
            | ItemKind::TypeAlias(_) => {}
        }
    }
    file.number_exprs();
    file
}
