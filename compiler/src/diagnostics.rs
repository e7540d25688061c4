//! The checker's diagnostics: one variant per kind of problem, each with a stable code; and the
//! one error of the passes after checking, [`CompileError::Internal`], which reports a bug in
//! authz (a broken [`Invariant`]) rather than a problem of the policies.
//!
//! These enums are the one place where the codes are documented. Messages follow the Cedar and Oxc
//! style: lower case, names in backticks, no final dot. Every variant labels the span it is
//! about; a `help` says how to fix it where that can be said ("did you mean `x`?", "try ...").
//! Warnings are marked with `severity(Warning)`; everything else is an error.

use authz_lang::{FileId, SourceFile, Span};
use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

use crate::schema::Location;

/// A problem found by the checker in one file.
#[derive(Clone, Debug, Diagnostic, Error, PartialEq, Eq)]
pub enum CheckError {
    // Schema: entity types, attributes and types.
    /// Two `entity` declarations declare the same type.
    #[error("entity type `{name}` is declared more than once")]
    #[diagnostic(code(authz::check::duplicate_entity_type))]
    DuplicateEntityType {
        /// The entity type.
        name: String,
        /// The second declaration's name.
        #[label("declared again here")]
        span: SourceSpan,
        /// The first declaration's name, when it is in the same file.
        #[label("first declared here")]
        previous: Option<SourceSpan>,
        /// Where the first declaration is, when it is in another file.
        #[help]
        help: Option<String>,
    },
    /// An `entity` declaration uses the name of a built-in type.
    #[error("`{name}` is a built-in type and cannot be declared again")]
    #[diagnostic(
        code(authz::check::reserved_type_name),
        help("try another name, such as `{name}Entity`")
    )]
    ReservedTypeName {
        /// The name.
        name: String,
        /// Where it was declared.
        #[label("built-in type")]
        span: SourceSpan,
    },
    /// A name in an entity position (a parent, a scope, an `is` test, an entity literal, an
    /// action's principal or resource types) that no `entity` declaration defines.
    #[error("unknown entity type `{name}`")]
    #[diagnostic(code(authz::check::unknown_entity_type))]
    UnknownEntityType {
        /// The name as written.
        name: String,
        /// Where it was written.
        #[label("not declared by any `entity` declaration")]
        span: SourceSpan,
        /// A suggestion, such as "did you mean `User`?".
        #[help]
        help: Option<String>,
    },
    /// A type in an attribute or context declaration that is neither built in nor an entity type.
    #[error("unknown type `{name}`")]
    #[diagnostic(code(authz::check::unknown_type))]
    UnknownType {
        /// The name as written.
        name: String,
        /// Where it was written.
        #[label("not a built-in type, an entity type or a `type` declaration")]
        span: SourceSpan,
        /// A suggestion, such as "did you mean `String`?".
        #[help]
        help: Option<String>,
    },
    /// A field name repeated in a record type or a record literal.
    #[error("field `{name}` appears more than once in this record")]
    #[diagnostic(code(authz::check::duplicate_field), help("remove one of them"))]
    DuplicateField {
        /// The field name.
        name: String,
        /// The repeated field.
        #[label("repeated here")]
        span: SourceSpan,
        /// The first occurrence.
        #[label("first given here")]
        previous: SourceSpan,
    },

    /// A `type` declaration whose name is already an entity type or another `type` declaration.
    #[error("type `{name}` is declared more than once")]
    #[diagnostic(code(authz::check::duplicate_type))]
    DuplicateType {
        /// The name.
        name: String,
        /// The second declaration's name.
        #[label("declared again here")]
        span: SourceSpan,
        /// The first declaration's name, when it is in the same file.
        #[label("first declared here")]
        previous: Option<SourceSpan>,
        /// Where the first declaration is, when it is in another file.
        #[help]
        help: Option<String>,
    },
    /// `type` declarations that refer to each other in a circle, so that no type can be built
    /// from them.
    #[error("type `{name}` is defined in terms of itself")]
    #[diagnostic(
        code(authz::check::type_cycle),
        help("the cycle is {cycle}; a type cannot contain itself: link recursive data through an entity type")
    )]
    TypeCycle {
        /// The declaration where the cycle was found.
        name: String,
        /// The names around the cycle, in order.
        cycle: String,
        /// The declared name.
        #[label("defined in terms of itself")]
        span: SourceSpan,
    },

    // Schema: actions.
    /// Two `action` declarations declare the same action.
    #[error("action `{name}` is declared more than once")]
    #[diagnostic(code(authz::check::duplicate_action))]
    DuplicateAction {
        /// The action.
        name: String,
        /// The second declaration's name.
        #[label("declared again here")]
        span: SourceSpan,
        /// The first declaration's name, when it is in the same file.
        #[label("first declared here")]
        previous: Option<SourceSpan>,
        /// Where the first declaration is, when it is in another file.
        #[help]
        help: Option<String>,
    },
    /// An action name in a scope, a route or an `Action("...")` literal that no `action`
    /// declaration defines.
    #[error("unknown action `{name}`")]
    #[diagnostic(code(authz::check::unknown_action))]
    UnknownAction {
        /// The name as written.
        name: String,
        /// Where it was written.
        #[label("not declared by any `action` declaration")]
        span: SourceSpan,
        /// A suggestion, such as "did you mean `read`?".
        #[help]
        help: Option<String>,
    },

    /// A name in an action declaration's `in [...]` that is an action with a signature: only
    /// groups (declared without a signature) have members.
    #[error("`{name}` is an action, not an action group")]
    #[diagnostic(
        code(authz::check::not_an_action_group),
        help("a group is declared without a signature, such as `action readActions;`, and actions join it with `action read in readActions: ...`")
    )]
    NotAnActionGroup {
        /// The name as written.
        name: String,
        /// Where it was written.
        #[label("has a signature, so it is not a group")]
        span: SourceSpan,
    },
    /// A name in an action declaration's `in [...]` that no declaration defines.
    #[error("unknown action group `{name}`")]
    #[diagnostic(code(authz::check::unknown_action_group))]
    UnknownActionGroup {
        /// The name as written.
        name: String,
        /// Where it was written.
        #[label("not declared by any `action` declaration")]
        span: SourceSpan,
        /// A suggestion, or how to declare the group.
        #[help]
        help: Option<String>,
    },
    /// Action groups that contain each other in a circle.
    #[error("action group `{name}` is in itself")]
    #[diagnostic(
        code(authz::check::action_group_cycle),
        help("the cycle is {cycle}; remove one of its `in`s")
    )]
    ActionGroupCycle {
        /// The group where the cycle was found.
        name: String,
        /// The names around the cycle, in order.
        cycle: String,
        /// The group's name in its declaration.
        #[label("contains itself")]
        span: SourceSpan,
    },
    /// A policy scope that names an action group without actions: the policy applies to nothing.
    #[error("action group `{name}` has no actions: this policy can never apply")]
    #[diagnostic(
        code(authz::check::empty_action_group),
        severity(Warning),
        help("add actions to the group: `action read in {name}: User -> Doc;`")
    )]
    EmptyActionGroup {
        /// The group.
        name: String,
        /// Where the scope names it.
        #[label("no action is in this group")]
        span: SourceSpan,
    },

    /// An expression whose type depends on the action the policy is checked for, where the
    /// program compiled for the policy needs one type.
    #[error("this expression is a `{first}` for one action and a `{other}` for another")]
    #[diagnostic(
        code(authz::check::type_differs_by_environment),
        help("authz compiles one program per policy: split the policy by action, or make the types agree")
    )]
    TypeDiffersByEnvironment {
        /// Its type in the first environment.
        first: String,
        /// Its type in another.
        other: String,
        /// The expression.
        #[label("types differ between actions")]
        span: SourceSpan,
    },

    /// An action's context named as a type that is not a record.
    #[error("an action's context is a record, not a `{found}`")]
    #[diagnostic(
        code(authz::check::context_not_record),
        help("write `with {{ field: Type, ... }}`, or name a `type` declaration of a record")
    )]
    ContextNotRecord {
        /// The type named.
        found: String,
        /// Where it was named.
        #[label("not a record type")]
        span: SourceSpan,
    },

    // Routes.
    /// A route method other than GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS and ANY.
    #[error("`{name}` is not a route method")]
    #[diagnostic(code(authz::check::invalid_route_method))]
    InvalidRouteMethod {
        /// The method as written.
        name: String,
        /// Where it was written.
        #[label("unknown method")]
        span: SourceSpan,
        /// A suggestion and the list of methods.
        #[help]
        help: Option<String>,
    },
    /// A path template that does not follow the template syntax.
    #[error("invalid path template: {message}")]
    #[diagnostic(
        code(authz::check::invalid_route_template),
        help("a template looks like `/orders/{{id}}/items/*/**`")
    )]
    InvalidRouteTemplate {
        /// What is wrong.
        message: String,
        /// The offending part of the template.
        #[label("here")]
        span: SourceSpan,
    },
    /// A template parameter name used twice in one template.
    #[error("parameter `{name}` appears more than once in this template")]
    #[diagnostic(
        code(authz::check::duplicate_route_param),
        help("give each parameter its own name")
    )]
    DuplicateRouteParam {
        /// The parameter.
        name: String,
        /// The repeated parameter.
        #[label("repeated here")]
        span: SourceSpan,
    },
    /// A route's resource id names a parameter its template does not have.
    #[error("the template has no parameter `{name}`")]
    #[diagnostic(code(authz::check::unknown_route_param))]
    UnknownRouteParam {
        /// The parameter as written.
        name: String,
        /// Where it was written.
        #[label("not a parameter of the template")]
        span: SourceSpan,
        /// A suggestion, or the parameters that exist.
        #[help]
        help: Option<String>,
    },
    /// A route's action does not take the route's resource type.
    #[error("action `{action}` does not take resource type `{resource_type}`")]
    #[diagnostic(code(authz::check::route_resource_mismatch))]
    RouteResourceMismatch {
        /// The action.
        action: String,
        /// The route's resource type.
        resource_type: String,
        /// The resource type in the route.
        #[label("not a resource type of `{action}`")]
        span: SourceSpan,
        /// The resource types the action takes.
        #[help]
        help: Option<String>,
    },
    /// Two routes with the same method and the same path pattern (parameter names aside).
    #[error("routes `{method} {other_path}` and `{method} {path}` match the same requests")]
    #[diagnostic(code(authz::check::duplicate_route))]
    DuplicateRoute {
        /// The method.
        method: String,
        /// The path template.
        path: String,
        /// The first route's path template.
        other_path: String,
        /// The second route's template.
        #[label("declared again here")]
        span: SourceSpan,
        /// The first route's template, when it is in the same file.
        #[label("first declared here")]
        previous: Option<SourceSpan>,
        /// Where the first route is, when it is in another file.
        #[help]
        help: Option<String>,
    },
    /// Two routes that can match the same request, neither more specific than the other.
    #[error("routes `{other_method} {other_path}` and `{method} {path}` are ambiguous")]
    #[diagnostic(code(authz::check::ambiguous_routes))]
    AmbiguousRoutes {
        /// The later route's method.
        method: String,
        /// The later route's template.
        path: String,
        /// The earlier route's method.
        other_method: String,
        /// The earlier route's template.
        other_path: String,
        /// The later route's template.
        #[label("{span_label}")]
        span: SourceSpan,
        /// The label of the later route.
        span_label: String,
        /// The earlier route's template, when it is in the same file.
        #[label("this route matches `{example}`")]
        other: Option<SourceSpan>,
        /// A request path both routes match.
        example: String,
        /// How to resolve it, and where the other route is when it is in another file.
        #[help]
        help: Option<String>,
    },

    // Policy scopes.
    /// A policy names a principal type that one of its actions does not take.
    #[error("action `{action}` does not take principal type `{ty}`")]
    #[diagnostic(code(authz::check::action_principal_mismatch))]
    ActionPrincipalMismatch {
        /// The action.
        action: String,
        /// The principal type of the scope.
        ty: String,
        /// The principal scope.
        #[label("`{action}` takes `{takes}`")]
        span: SourceSpan,
        /// The principal types the action takes.
        takes: String,
    },
    /// A policy names a resource type that one of its actions does not take.
    #[error("action `{action}` does not take resource type `{ty}`")]
    #[diagnostic(code(authz::check::action_resource_mismatch))]
    ActionResourceMismatch {
        /// The action.
        action: String,
        /// The resource type of the scope.
        ty: String,
        /// The resource scope.
        #[label("`{action}` takes `{takes}`")]
        span: SourceSpan,
        /// The resource types the action takes.
        takes: String,
    },
    /// A policy for every action whose principal and resource types no declared action takes.
    #[error("this policy can never apply: no action takes principal `{principal}` and resource `{resource}`")]
    #[diagnostic(
        code(authz::check::scope_never_applies),
        severity(Warning),
        help("check the principal and resource types against the `action` declarations")
    )]
    ScopeNeverApplies {
        /// The principal types of the scope.
        principal: String,
        /// The resource types of the scope.
        resource: String,
        /// The effect keyword of the policy.
        #[label("never applies")]
        span: SourceSpan,
    },
    /// A policy whose condition is the constant `false` (`when false`, `unless true`).
    #[error("this policy can never apply: its condition is always false")]
    #[diagnostic(
        code(authz::check::condition_always_false),
        severity(Warning),
        help("remove the policy, or the condition if the policy should apply")
    )]
    ConditionAlwaysFalse {
        /// The constant condition.
        #[label("this condition never holds")]
        span: SourceSpan,
    },
    /// Two policies with the same `@id`.
    #[error("policy id `{id}` is used more than once")]
    #[diagnostic(code(authz::check::duplicate_policy_id))]
    DuplicatePolicyId {
        /// The id.
        id: String,
        /// The second `@id` annotation.
        #[label("used again here")]
        span: SourceSpan,
        /// The first `@id` annotation, when it is in the same file.
        #[label("first used here")]
        previous: Option<SourceSpan>,
        /// Where the first one is, when it is in another file.
        #[help]
        help: Option<String>,
    },

    // Annotations.
    /// An `@id` or `@reason` annotation without a value.
    #[error("annotation `@{name}` needs a value")]
    #[diagnostic(
        code(authz::check::missing_annotation_value),
        help("try `@{name}(\"...\")`")
    )]
    MissingAnnotationValue {
        /// The annotation name.
        name: String,
        /// The annotation.
        #[label("no value")]
        span: SourceSpan,
    },
    /// An annotation name other than `@id` and `@reason`.
    #[error("unknown annotation `@{name}`")]
    #[diagnostic(code(authz::check::unknown_annotation), severity(Warning))]
    UnknownAnnotation {
        /// The annotation name.
        name: String,
        /// The annotation.
        #[label("ignored")]
        span: SourceSpan,
        /// A suggestion, or the annotations that exist.
        #[help]
        help: Option<String>,
    },
    /// An `@id` or `@reason` annotation on an item other than a policy.
    #[error("annotation `@{name}` has no effect on {item}")]
    #[diagnostic(
        code(authz::check::annotation_ignored),
        severity(Warning),
        help("`@id` and `@reason` are meaningful on policies only")
    )]
    AnnotationIgnored {
        /// The annotation name.
        name: String,
        /// The kind of item, such as "an entity declaration".
        item: String,
        /// The annotation.
        #[label("ignored")]
        span: SourceSpan,
    },
    /// The same annotation twice on one item.
    #[error("annotation `@{name}` is given more than once")]
    #[diagnostic(code(authz::check::duplicate_annotation), help("keep one of them"))]
    DuplicateAnnotation {
        /// The annotation name.
        name: String,
        /// The second annotation.
        #[label("given again here")]
        span: SourceSpan,
        /// The first annotation.
        #[label("first given here")]
        previous: SourceSpan,
    },

    // Expressions.
    /// An attribute that the entity type or record does not have.
    #[error("`{ty}` has no attribute `{attr}`")]
    #[diagnostic(code(authz::check::unknown_attribute))]
    UnknownAttribute {
        /// The attribute as written.
        attr: String,
        /// The type read from.
        ty: String,
        /// The attribute name.
        #[label("unknown attribute")]
        span: SourceSpan,
        /// A suggestion, such as "did you mean `owner`?".
        #[help]
        help: Option<String>,
    },
    /// An attribute read from an entity of several possible types, not all of which have it.
    #[error("attribute `{attr}` is not declared on every type of `{ty}`")]
    #[diagnostic(code(authz::check::attribute_not_on_all_types))]
    AttributeNotOnAllTypes {
        /// The attribute.
        attr: String,
        /// The union read from.
        ty: String,
        /// The attribute name.
        #[label("`{missing}` has no attribute `{attr}`")]
        span: SourceSpan,
        /// The member types that lack it.
        missing: String,
        /// How to narrow the union.
        #[help]
        help: Option<String>,
    },
    /// An attribute read from an entity of several possible types that declare it differently.
    #[error("attribute `{attr}` does not have the same type on every type of `{ty}`")]
    #[diagnostic(code(authz::check::attribute_type_differs))]
    AttributeTypeDiffers {
        /// The attribute.
        attr: String,
        /// The union read from.
        ty: String,
        /// The attribute name.
        #[label("{details}")]
        span: SourceSpan,
        /// The attribute's type on each member, such as "`Long` on `A`, `String` on `B`".
        details: String,
        /// How to narrow the union.
        #[help]
        help: Option<String>,
    },
    /// An optional attribute read without a `has` guard that proves it present.
    #[error("attribute `{attr}` is optional and may be missing here")]
    #[diagnostic(code(authz::check::unguarded_optional_attribute))]
    UnguardedOptionalAttribute {
        /// The attribute.
        attr: String,
        /// The attribute name.
        #[label("read without a `has` guard")]
        span: SourceSpan,
        /// How to guard it, such as "guard it with `principal has suspended && ...`".
        #[help]
        help: Option<String>,
    },
    /// Attribute access or `has` on a value that is neither an entity nor a record.
    #[error("{operation} needs an entity or a record, found `{ty}`")]
    #[diagnostic(code(authz::check::not_a_record))]
    NotARecord {
        /// "attribute access" or "`has`".
        operation: String,
        /// The type found.
        ty: String,
        /// The value.
        #[label("this is a `{ty}`")]
        span: SourceSpan,
    },
    /// An expression of one type where another was required.
    #[error("type mismatch: expected {expected}, found `{found}`")]
    #[diagnostic(code(authz::check::type_mismatch))]
    TypeMismatch {
        /// The type required, quoted as a type (`` `Bool` ``) or described ("an entity").
        expected: String,
        /// The type found.
        found: String,
        /// The expression.
        #[label("{context}")]
        span: SourceSpan,
        /// Why that type is required, such as "`when` needs a `Bool`".
        context: String,
        /// A way out, where one is known.
        #[help]
        help: Option<String>,
    },
    /// A function, method or entity literal called with the wrong number of arguments.
    #[error("`{name}` takes {expected} but {found} {verb} given")]
    #[diagnostic(code(authz::check::wrong_arity))]
    WrongArity {
        /// The callee.
        name: String,
        /// "1 argument", "no arguments", ...
        expected: String,
        /// The number given.
        found: usize,
        /// "was" or "were".
        verb: String,
        /// The call.
        #[label("{found} given")]
        span: SourceSpan,
        /// The signature.
        #[help]
        help: Option<String>,
    },
    /// A call of a function that is neither an entity type nor in the standard library.
    #[error("unknown function `{name}`")]
    #[diagnostic(code(authz::check::unknown_function))]
    UnknownFunction {
        /// The name as written.
        name: String,
        /// Where it was written.
        #[label("not a function or an entity type")]
        span: SourceSpan,
        /// A suggestion, or the functions that exist.
        #[help]
        help: Option<String>,
    },
    /// A method that no type has.
    #[error("`{receiver}` has no method `{name}`")]
    #[diagnostic(code(authz::check::unknown_method))]
    UnknownMethod {
        /// The method as written.
        name: String,
        /// The receiver's type.
        receiver: String,
        /// The method name.
        #[label("unknown method")]
        span: SourceSpan,
        /// A suggestion among the receiver's methods.
        #[help]
        help: Option<String>,
    },
    /// A method called on a receiver of the wrong type.
    #[error("method `{name}` is not defined on `{receiver}`")]
    #[diagnostic(code(authz::check::method_wrong_receiver))]
    MethodWrongReceiver {
        /// The method.
        name: String,
        /// The receiver's type.
        receiver: String,
        /// The receiver.
        #[label("this is a `{receiver}`")]
        span: SourceSpan,
        /// The types the method is defined on.
        #[help]
        help: Option<String>,
    },
    /// `==` or `!=` on values of types that can never be equal.
    #[error("`{op}` compares `{left}` with `{right}`, which can never be equal")]
    #[diagnostic(code(authz::check::incomparable_types))]
    IncomparableTypes {
        /// The operator.
        op: String,
        /// The left operand's type.
        left: String,
        /// The right operand's type.
        right: String,
        /// The comparison.
        #[label("always {outcome}")]
        span: SourceSpan,
        /// "false" for `==`, "true" for `!=`.
        outcome: String,
    },
    /// An ordering comparison on a type that has no order.
    #[error("`{op}` needs `Long`, `Timestamp` or `Duration` operands, found `{ty}`")]
    #[diagnostic(code(authz::check::not_ordered))]
    NotOrdered {
        /// The operator.
        op: String,
        /// The operand type.
        ty: String,
        /// The operand.
        #[label("`{ty}` has no order")]
        span: SourceSpan,
    },
    /// `in` with operands that are neither hierarchy nor set membership.
    #[error("`in` cannot test `{left}` in `{right}`")]
    #[diagnostic(code(authz::check::invalid_in))]
    InvalidIn {
        /// The left operand's type.
        left: String,
        /// The right operand's type.
        right: String,
        /// The `in` expression.
        #[label("{reason}")]
        span: SourceSpan,
        /// What `in` needs here.
        reason: String,
        /// A way out, where one is known.
        #[help]
        help: Option<String>,
    },
    /// `if` branches of types that do not fit together.
    #[error("`if` branches have incompatible types `{then_ty}` and `{else_ty}`")]
    #[diagnostic(
        code(authz::check::if_branch_mismatch),
        help("both branches must have the same type")
    )]
    IfBranchMismatch {
        /// The `then` branch's type.
        then_ty: String,
        /// The `else` branch's type.
        else_ty: String,
        /// The `then` branch.
        #[label("this is a `{then_ty}`")]
        then_span: SourceSpan,
        /// The `else` branch.
        #[label("this is a `{else_ty}`")]
        else_span: SourceSpan,
    },
    /// A set literal whose elements have types that do not fit together.
    #[error("set elements have incompatible types `{first}` and `{found}`")]
    #[diagnostic(
        code(authz::check::mixed_set),
        help("all elements of a set must have the same type")
    )]
    MixedSet {
        /// The type of the elements so far.
        first: String,
        /// The type of the element that does not fit.
        found: String,
        /// The element that does not fit.
        #[label("this is a `{found}`")]
        span: SourceSpan,
    },
    /// An entity literal whose argument is not a single string literal.
    #[error("entity literal `{ty}(...)` needs exactly one string literal")]
    #[diagnostic(
        code(authz::check::bad_entity_literal),
        help("try `{ty}(\"some-id\")`")
    )]
    BadEntityLiteral {
        /// The entity type.
        ty: String,
        /// The literal.
        #[label("{problem}")]
        span: SourceSpan,
        /// What is wrong with the arguments.
        problem: String,
    },
    /// A constant `ip`, `timestamp` or `duration` literal that does not parse.
    #[error("invalid `{function}` literal: {message}")]
    #[diagnostic(code(authz::check::invalid_literal))]
    InvalidLiteral {
        /// The function.
        function: String,
        /// What is wrong.
        message: String,
        /// The string literal.
        #[label("not a valid `{ty}`")]
        span: SourceSpan,
        /// The type the function builds.
        ty: String,
        /// An example of a valid literal.
        #[help]
        help: Option<String>,
    },

    // Limits.
    /// A limit count of 0.
    #[error("a limit must allow at least 1 request")]
    #[diagnostic(
        code(authz::check::limit_count),
        help("to block requests, write a `forbid` policy")
    )]
    LimitCount {
        /// The count.
        #[label("count is 0")]
        span: SourceSpan,
    },
    /// A limit period of no time, or of more than a year (`per 0 seconds`, `per 400 days`).
    #[error("a limit's period must be from 1 second to 366 days")]
    #[diagnostic(code(authz::check::limit_period))]
    LimitPeriod {
        /// The number of units.
        #[label("this many units")]
        span: SourceSpan,
    },
    /// A burst of 0.
    #[error("a limit's burst must allow at least 1 request")]
    #[diagnostic(
        code(authz::check::limit_burst),
        help("leave `burst` out to allow the whole count at once")
    )]
    LimitBurst {
        /// The burst.
        #[label("burst is 0")]
        span: SourceSpan,
    },
    /// A limit period other than `second`, `minute`, `hour` and `day`.
    #[error("`{name}` is not a limit period")]
    #[diagnostic(code(authz::check::limit_unit))]
    LimitUnit {
        /// The unit as written.
        name: String,
        /// Where it was written.
        #[label("expected `second`, `minute`, `hour` or `day` (or their plurals)")]
        span: SourceSpan,
        /// A suggestion.
        #[help]
        help: Option<String>,
    },
    /// A limit key that is not an entity, a `String`, a `Long` or an `Ip`.
    #[error("a limit key must be an entity, a `String`, a `Long` or an `Ip`, found `{ty}`")]
    #[diagnostic(code(authz::check::limit_key))]
    LimitKey {
        /// The key's type.
        ty: String,
        /// The key.
        #[label("this is a `{ty}`")]
        span: SourceSpan,
    },
    /// An `on attempts` limit that reads who makes the request or what it is made on: it is
    /// counted before the credential is checked, when neither is known.
    #[error("an `on attempts` limit cannot read `{var}`")]
    #[diagnostic(
        code(authz::check::attempts_limit_reads_request),
        help(
            "an `on attempts` limit is counted on every attempt, before the credential is checked: \
             it may read `context` and `action` only, e.g. `per context.client_ip`"
        )
    )]
    AttemptsLimitReadsRequest {
        /// `principal` or `resource`.
        var: &'static str,
        /// Where it is read.
        #[label("not known when the attempt is counted")]
        span: SourceSpan,
        /// `on attempts`.
        #[label("counted on every attempt")]
        on_attempts: SourceSpan,
    },
    /// Two limits with the same name.
    #[error("limit `{name}` is declared more than once")]
    #[diagnostic(code(authz::check::duplicate_limit))]
    DuplicateLimit {
        /// The limit name.
        name: String,
        /// The second limit's name.
        #[label("declared again here")]
        span: SourceSpan,
        /// The first limit's name, when it is in the same file.
        #[label("first declared here")]
        previous: Option<SourceSpan>,
        /// Where the first one is, when it is in another file.
        #[help]
        help: Option<String>,
    },
}

/// A problem found while building the decision program of a set that checked clean.
#[derive(Clone, Debug, Diagnostic, Error, PartialEq, Eq)]
pub enum CompileError {
    /// A broken invariant of the compiler: building the program found the checked trees and
    /// what the checker recorded about them in disagreement (a bug in authz, not in the
    /// policies). The set is refused rather than compiled into a program that could decide
    /// otherwise than the policies say.
    #[error("internal error: {problem}")]
    #[diagnostic(
        code(authz::compile::internal),
        help("this is a bug in authz, not in the policies; please report it with the policy set")
    )]
    Internal {
        /// What was missing or inconsistent, and where.
        problem: Invariant,
        /// The expression or declaration concerned, when there is one.
        #[label("here")]
        span: Option<SourceSpan>,
    },
}

/// The invariants whose breach [`CompileError::Internal`] reports; `at` names a place as
/// `file:line:column` (or a byte offset when the file's text is not at hand).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum Invariant {
    /// The checker recorded no type for an expression that lowering needs the type of.
    #[error("no type recorded for the expression at {at}")]
    NoType {
        /// Where the expression is.
        at: String,
    },
    /// The type recorded under the expression's id belongs to another expression: the tree
    /// lowered is not the tree checked.
    #[error(
        "the type recorded for the expression at {at} belongs to another expression, at {other}"
    )]
    TypeOfOtherExpr {
        /// Where the expression is.
        at: String,
        /// Where the expression the type was recorded for is.
        other: String,
    },
    /// A recorded type that lowering cannot use where it stands.
    #[error("the expression at {at} has type `{found}` where lowering needs {needed}")]
    WrongType {
        /// Where the expression is.
        at: String,
        /// The type recorded.
        found: String,
        /// What lowering needs there.
        needed: &'static str,
    },
    /// A name that checking resolved but the program being built does not have.
    #[error("{kind} `{name}` at {at} has no counterpart in the program")]
    Unresolved {
        /// What the name names: "entity type", "function", ...
        kind: &'static str,
        /// The name.
        name: String,
        /// Where it is used.
        at: String,
    },
    /// A construct that a set without errors cannot contain.
    #[error("{what} at {at}")]
    Unexpected {
        /// What was found, such as "an expression that failed to parse".
        what: String,
        /// Where.
        at: String,
    },
    /// A checked policy or limit that is not at the place the checker recorded.
    #[error("no {kind} is item {item} of file {file}")]
    MissingItem {
        /// "policy" or "limit".
        kind: &'static str,
        /// The item's index among the items of its file.
        item: usize,
        /// The file's number.
        file: u32,
    },
    /// More of something than the program can number.
    #[error("too many {what} to number")]
    TooMany {
        /// What there are too many of.
        what: &'static str,
    },
}

/// A broken invariant as a pass after checking reports it; [`crate::compile_sources`] turns it into
/// a [`CompileError::Internal`] diagnostic and builds no program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Internal {
    /// The file concerned, when there is one.
    pub file: Option<FileId>,
    /// The span concerned in that file, when there is one.
    pub span: Option<Span>,
    /// What is wrong.
    pub problem: Invariant,
}

impl Internal {
    /// A breach that concerns no place in particular.
    pub fn nowhere(problem: Invariant) -> Internal {
        Internal {
            file: None,
            span: None,
            problem,
        }
    }

    /// The diagnostic that reports it; one that concerns no file is reported against the first.
    pub fn into_diagnostic(self) -> crate::Diagnostic {
        crate::Diagnostic {
            file: self.file.unwrap_or(FileId(0)),
            kind: crate::DiagnosticKind::Compile(CompileError::Internal {
                problem: self.problem,
                span: self.span.map(SourceSpan::from),
            }),
            environment: None,
        }
    }
}

/// `file:line:column` for a place in `sources` (the files by [`FileId`] index), or the file's
/// number and a byte offset when its text is not among them.
pub(crate) fn place(sources: &[SourceFile], file: FileId, span: Span) -> String {
    let index = usize::try_from(file.0).unwrap_or(usize::MAX);
    match sources.get(index) {
        Some(source) => {
            let line_col = source.line_col(span.start());
            format!("{}:{}:{}", source.name, line_col.line, line_col.column)
        }
        None => format!("file {}, byte {}", file.0, span.start),
    }
}

/// "did you mean `x`?" for a suggestion.
pub(crate) fn did_you_mean(suggestion: Option<String>) -> Option<String> {
    suggestion.map(|name| format!("did you mean `{name}`?"))
}

/// A list of names in backticks: "`a`, `b` and `c`".
pub(crate) fn list_names<S: AsRef<str>>(names: &[S]) -> String {
    let quoted: Vec<String> = names
        .iter()
        .map(|name| format!("`{}`", name.as_ref()))
        .collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// Collects diagnostics and describes locations in other files.
pub(crate) struct Reporter<'a> {
    /// Everything reported so far.
    pub(crate) diagnostics: Vec<crate::Diagnostic>,
    /// The files by [`FileId`] index, when the caller has their names and texts.
    sources: Option<&'a [SourceFile]>,
    /// How many errors (not warnings) were reported.
    pub(crate) n_errors: usize,
}

impl<'a> Reporter<'a> {
    /// A reporter that describes locations with the help of `sources`, when given.
    pub(crate) fn new(sources: Option<&'a [SourceFile]>) -> Reporter<'a> {
        Reporter {
            diagnostics: Vec::new(),
            sources,
            n_errors: 0,
        }
    }

    /// Records a problem found in `file`.
    pub(crate) fn report(&mut self, file: FileId, error: CheckError) {
        self.report_in(file, error, None);
    }

    /// Records a problem found in `file` in some of the environments a policy is checked in.
    pub(crate) fn report_in(
        &mut self,
        file: FileId,
        error: CheckError,
        environment: Option<String>,
    ) {
        if !matches!(
            miette::Diagnostic::severity(&error),
            Some(miette::Severity::Warning)
        ) {
            self.n_errors += 1;
        }
        self.diagnostics.push(crate::Diagnostic {
            file,
            kind: crate::DiagnosticKind::Check(error),
            environment,
        });
    }

    /// An empty reporter that describes locations like this one, to collect the problems of one
    /// environment before they are reported.
    pub(crate) fn child(&self) -> Reporter<'a> {
        Reporter::new(self.sources)
    }

    /// Where `location` is, for a message: "`orders.authz` at line 3, column 8".
    pub(crate) fn describe(&self, location: Location) -> String {
        let index = usize::try_from(location.file.0).unwrap_or(usize::MAX);
        match self.sources.and_then(|sources| sources.get(index)) {
            Some(source) => {
                let line_col = source.line_col(location.span.start());
                format!(
                    "`{}` at line {}, column {}",
                    source.name, line_col.line, line_col.column
                )
            }
            None => format!("file {} at byte {}", location.file.0, location.span.start),
        }
    }

    /// For a reference from `here` to `there`: a secondary label when both are in the same file,
    /// or else a description of `there` for a help line.
    pub(crate) fn elsewhere(
        &self,
        here: FileId,
        there: Location,
    ) -> (Option<SourceSpan>, Option<String>) {
        if here == there.file {
            return (Some(there.span.into()), None);
        }
        (None, Some(self.describe(there)))
    }

    /// Like [`Reporter::elsewhere`], with the help line "first declared in ...".
    pub(crate) fn first_declared(
        &self,
        here: FileId,
        there: Location,
    ) -> (Option<SourceSpan>, Option<String>) {
        let (label, description) = self.elsewhere(here, there);
        (
            label,
            description.map(|description| format!("first declared in {description}")),
        )
    }
}
