//! The schema of a policy set: its entity types, actions and routes, built from the `entity`,
//! `action` and `route` declarations of all files together.
//!
//! Declarations may appear in any file and in any order; names resolve across files. The schema
//! always contains the built-in entity type [`ACTION_TYPE`], the type of `action` and of action
//! literals such as `Action("read")`. A declaration with an error is kept as far as it is
//! meaningful (an unknown parent is dropped, an attribute of unknown type gets the error type), so
//! that the policies that use it are still checked.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use authz_lang::ast;
use authz_lang::{FileId, Span};

use crate::diagnostics::{did_you_mean, list_names, CheckError, Reporter};
use authz_runtime::route::Method;

use crate::routes::{self, PathTemplate, Segment};
use crate::types::{EntityUnion, Field, Name, RecordType, Type, ACTION_TYPE};
use authz_runtime::suggest::suggest;

/// Where a declaration was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file.
    pub file: FileId,
    /// The span of the declared name (or of the template, for a route).
    pub span: Span,
}

/// The checked declarations of a policy set.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    /// Every entity type by name, including the built-in [`ACTION_TYPE`].
    pub entity_types: BTreeMap<Name, EntityType>,
    /// Every action by name.
    pub actions: BTreeMap<Name, Action>,
    /// Every valid route, in file order.
    pub routes: Vec<Route>,
    /// The principal types of all actions together.
    pub all_principals: EntityUnion,
    /// The resource types of all actions together.
    pub all_resources: EntityUnion,
}

/// A declared entity type.
#[derive(Clone, Debug)]
pub struct EntityType {
    /// The type name.
    pub name: Name,
    /// The types whose entities may be direct parents of entities of this type.
    pub parents: Vec<Name>,
    /// The attributes.
    pub attrs: Arc<RecordType>,
    /// The declaration, or `None` for the built-in [`ACTION_TYPE`].
    pub location: Option<Location>,
}

/// A declared action.
#[derive(Clone, Debug)]
pub struct Action {
    /// The action name.
    pub name: Name,
    /// The entity types that may be its principal.
    pub principals: EntityUnion,
    /// The entity types that may be its resource.
    pub resources: EntityUnion,
    /// The type of its request context; the empty record when none is declared.
    pub context: Arc<RecordType>,
    /// The declaration.
    pub location: Location,
}

/// A valid route.
#[derive(Clone, Debug)]
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The path template as written.
    pub path: String,
    /// The parsed template.
    pub template: PathTemplate,
    /// The action the request performs.
    pub action: Name,
    /// The resource's entity type.
    pub resource_type: Name,
    /// Where the resource id comes from.
    pub resource_id: RouteId,
    /// The template's location.
    pub location: Location,
}

/// The source of a route's resource id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteId {
    /// The value of this template parameter.
    Param(String),
    /// Always this id.
    Literal(String),
}

/// Names that cannot be entity types because they are built-in types.
const RESERVED_TYPE_NAMES: [&str; 8] = [
    "Bool",
    "Long",
    "String",
    "Ip",
    "Timestamp",
    "Duration",
    "Set",
    ACTION_TYPE,
];

impl Schema {
    /// The entity type with this name.
    pub fn entity_type(&self, name: &str) -> Option<&EntityType> {
        self.entity_types.get(name)
    }

    /// The action with this name.
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.get(name)
    }

    /// The closest entity type name to a misspelled one.
    pub(crate) fn suggest_entity_type(&self, name: &str) -> Option<String> {
        suggest(name, self.entity_types.keys().map(|name| &**name))
    }

    /// The closest action name to a misspelled one.
    pub(crate) fn suggest_action(&self, name: &str) -> Option<String> {
        suggest(name, self.actions.keys().map(|name| &**name))
    }

    /// Resolves an entity type name, reporting it when unknown.
    pub(crate) fn resolve_entity_type(
        &self,
        file: FileId,
        ident: &ast::Ident,
        reporter: &mut Reporter<'_>,
    ) -> Option<Name> {
        if let Some((name, _)) = self.entity_types.get_key_value(ident.name.as_str()) {
            return Some(name.clone());
        }
        reporter.report(
            file,
            CheckError::UnknownEntityType {
                name: ident.name.clone(),
                span: ident.span.into(),
                help: did_you_mean(self.suggest_entity_type(&ident.name)),
            },
        );
        None
    }

    /// Resolves an action name, reporting it when unknown.
    pub(crate) fn resolve_action(
        &self,
        file: FileId,
        ident: &ast::Ident,
        reporter: &mut Reporter<'_>,
    ) -> Option<&Action> {
        if let Some(action) = self.actions.get(ident.name.as_str()) {
            return Some(action);
        }
        reporter.report(
            file,
            CheckError::UnknownAction {
                name: ident.name.clone(),
                span: ident.span.into(),
                help: did_you_mean(self.suggest_action(&ident.name)),
            },
        );
        None
    }

    /// Builds the schema from the declarations of all files, reporting every problem.
    pub(crate) fn build(files: &[(FileId, &ast::File)], reporter: &mut Reporter<'_>) -> Schema {
        let mut schema = Schema::default();
        let action_type = Name::from(ACTION_TYPE);
        schema.entity_types.insert(
            action_type.clone(),
            EntityType {
                name: action_type,
                parents: Vec::new(),
                attrs: Arc::default(),
                location: None,
            },
        );
        // Entity names come first: attributes, parents and actions may mention any of them.
        let mut entity_decls = Vec::new();
        for &(file, tree) in files {
            for item in &tree.items {
                if let ast::ItemKind::Entity(decl) = &item.kind {
                    if schema.declare_entity_type(file, decl, reporter) {
                        entity_decls.push((file, decl));
                    }
                }
            }
        }
        for (file, decl) in entity_decls {
            schema.define_entity_type(file, decl, reporter);
        }
        for &(file, tree) in files {
            for item in &tree.items {
                if let ast::ItemKind::Action(decl) = &item.kind {
                    schema.declare_actions(file, decl, reporter);
                }
            }
        }
        for action in schema.actions.values() {
            schema.all_principals = schema.all_principals.union(&action.principals);
            schema.all_resources = schema.all_resources.union(&action.resources);
        }
        let mut route_shapes: HashMap<(Method, String), (Location, String)> = HashMap::new();
        for &(file, tree) in files {
            for item in &tree.items {
                if let ast::ItemKind::Route(decl) = &item.kind {
                    if let Some(route) = schema.check_route(file, decl, reporter) {
                        let key = (route.method, route.template.shape());
                        if let Some((previous, other_path)) = route_shapes.get(&key) {
                            let other_path = other_path.clone();
                            let (previous, help) = reporter.first_declared(file, *previous);
                            reporter.report(
                                file,
                                CheckError::DuplicateRoute {
                                    method: route.method.name().to_owned(),
                                    path: route.path.clone(),
                                    other_path,
                                    span: route.location.span.into(),
                                    previous,
                                    help,
                                },
                            );
                            continue;
                        }
                        route_shapes.insert(key, (route.location, route.path.clone()));
                        schema.routes.push(route);
                    }
                }
            }
        }
        check_ambiguous_routes(&schema.routes, reporter);
        schema
    }

    /// Records an entity type name; false when it is reserved or already declared.
    fn declare_entity_type(
        &mut self,
        file: FileId,
        decl: &ast::EntityDecl,
        reporter: &mut Reporter<'_>,
    ) -> bool {
        let name = decl.name.name.as_str();
        let location = Location {
            file,
            span: decl.name.span,
        };
        if RESERVED_TYPE_NAMES.contains(&name) {
            reporter.report(
                file,
                CheckError::ReservedTypeName {
                    name: name.to_owned(),
                    span: location.span.into(),
                },
            );
            return false;
        }
        if let Some(existing) = self.entity_types.get(name) {
            let Some(existing_location) = existing.location else {
                return false;
            };
            let (previous, help) = reporter.first_declared(file, existing_location);
            reporter.report(
                file,
                CheckError::DuplicateEntityType {
                    name: name.to_owned(),
                    span: location.span.into(),
                    previous,
                    help,
                },
            );
            return false;
        }
        let name = Name::from(name);
        self.entity_types.insert(
            name.clone(),
            EntityType {
                name,
                parents: Vec::new(),
                attrs: Arc::default(),
                location: Some(location),
            },
        );
        true
    }

    /// Resolves the parents and attributes of a declared entity type.
    fn define_entity_type(
        &mut self,
        file: FileId,
        decl: &ast::EntityDecl,
        reporter: &mut Reporter<'_>,
    ) {
        let mut parents: Vec<Name> = Vec::new();
        for parent in &decl.parents {
            if let Some(name) = self.resolve_entity_type(file, parent, reporter) {
                if !parents.contains(&name) {
                    parents.push(name);
                }
            }
        }
        let attrs = match &decl.attrs {
            Some(record) => self.resolve_record(file, record, reporter),
            None => RecordType::default(),
        };
        if let Some(entity_type) = self.entity_types.get_mut(decl.name.name.as_str()) {
            entity_type.parents = parents;
            entity_type.attrs = Arc::new(attrs);
        }
    }

    /// Declares the actions of one `action` declaration.
    fn declare_actions(
        &mut self,
        file: FileId,
        decl: &ast::ActionDecl,
        reporter: &mut Reporter<'_>,
    ) {
        let principals = self.resolve_union(file, &decl.principals, reporter);
        let resources = self.resolve_union(file, &decl.resources, reporter);
        let context = Arc::new(match &decl.context {
            Some(record) => self.resolve_record(file, record, reporter),
            None => RecordType::default(),
        });
        for ident in &decl.names {
            let location = Location {
                file,
                span: ident.span,
            };
            if let Some(existing) = self.actions.get(ident.name.as_str()) {
                let (previous, help) = reporter.first_declared(file, existing.location);
                reporter.report(
                    file,
                    CheckError::DuplicateAction {
                        name: ident.name.clone(),
                        span: ident.span.into(),
                        previous,
                        help,
                    },
                );
                continue;
            }
            let name = Name::from(ident.name.as_str());
            self.actions.insert(
                name.clone(),
                Action {
                    name,
                    principals: principals.clone(),
                    resources: resources.clone(),
                    context: context.clone(),
                    location,
                },
            );
        }
    }

    fn resolve_union(
        &self,
        file: FileId,
        idents: &[ast::Ident],
        reporter: &mut Reporter<'_>,
    ) -> EntityUnion {
        EntityUnion::new(
            idents
                .iter()
                .filter_map(|ident| self.resolve_entity_type(file, ident, reporter)),
        )
    }

    /// Resolves a record type, reporting repeated fields (the first one counts).
    pub(crate) fn resolve_record(
        &self,
        file: FileId,
        record: &ast::RecordType,
        reporter: &mut Reporter<'_>,
    ) -> RecordType {
        let mut fields = BTreeMap::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for field in &record.fields {
            if let Some(previous) = seen.get(field.name.name.as_str()) {
                reporter.report(
                    file,
                    CheckError::DuplicateField {
                        name: field.name.name.clone(),
                        span: field.name.span.into(),
                        previous: (*previous).into(),
                    },
                );
                continue;
            }
            seen.insert(&field.name.name, field.name.span);
            let ty = self.resolve_type(file, &field.ty, reporter);
            fields.insert(
                Name::from(field.name.name.as_str()),
                Field {
                    ty,
                    optional: field.optional,
                },
            );
        }
        RecordType { fields }
    }

    /// Resolves a type written in a declaration.
    fn resolve_type(&self, file: FileId, ty: &ast::TypeExpr, reporter: &mut Reporter<'_>) -> Type {
        match ty {
            ast::TypeExpr::Named(ident) => {
                if let Some(builtin) = authz_stdlib::Type::from_name(&ident.name) {
                    return Type::from_stdlib(builtin);
                }
                if let Some((name, _)) = self.entity_types.get_key_value(ident.name.as_str()) {
                    return Type::entity(name.clone());
                }
                let candidates = authz_stdlib::Type::ALL
                    .iter()
                    .map(|ty| ty.name())
                    .chain(self.entity_types.keys().map(|name| &**name));
                reporter.report(
                    file,
                    CheckError::UnknownType {
                        name: ident.name.clone(),
                        span: ident.span.into(),
                        help: did_you_mean(suggest(&ident.name, candidates)),
                    },
                );
                Type::Error
            }
            ast::TypeExpr::Set(element, _) => {
                Type::Set(Box::new(self.resolve_type(file, element, reporter)))
            }
            ast::TypeExpr::Record(record) => {
                Type::Record(Arc::new(self.resolve_record(file, record, reporter)))
            }
        }
    }

    /// Checks one route declaration; the route is returned when it is valid.
    fn check_route(
        &self,
        file: FileId,
        decl: &ast::RouteDecl,
        reporter: &mut Reporter<'_>,
    ) -> Option<Route> {
        let mut valid = true;
        let method = Method::from_name(&decl.method.name);
        if method.is_none() {
            let names = Method::ALL.map(Method::name);
            let suggestion = suggest(&decl.method.name, names);
            let list = format!("the methods are {}", list_names(&names));
            let help = match suggestion {
                Some(name) => format!("did you mean `{name}`? {list}"),
                None => list,
            };
            reporter.report(
                file,
                CheckError::InvalidRouteMethod {
                    name: decl.method.name.clone(),
                    span: decl.method.span.into(),
                    help: Some(help),
                },
            );
            valid = false;
        }
        let template = match routes::parse_template(&decl.path.value) {
            Ok(template) => Some(template),
            Err(err) => {
                reporter.report(
                    file,
                    CheckError::InvalidRouteTemplate {
                        message: err.kind.to_string(),
                        span: template_span(&decl.path, err.offset, err.len).into(),
                    },
                );
                None
            }
        };
        if let Some(template) = &template {
            let mut seen: Vec<&str> = Vec::new();
            for param in template.params() {
                if seen.contains(&param) {
                    let span = match param_offset(&decl.path.value, param, 1) {
                        Some(offset) => template_span(&decl.path, offset, param.len() + 2),
                        None => decl.path.span,
                    };
                    reporter.report(
                        file,
                        CheckError::DuplicateRouteParam {
                            name: param.to_owned(),
                            span: span.into(),
                        },
                    );
                    valid = false;
                }
                seen.push(param);
            }
        }
        let action = self.resolve_action(file, &decl.action, reporter);
        let resource_type = self.resolve_entity_type(file, &decl.resource_type, reporter);
        if let (Some(action), Some(resource_type)) = (action, &resource_type) {
            if !action.resources.contains(resource_type) {
                reporter.report(
                    file,
                    CheckError::RouteResourceMismatch {
                        action: action.name.to_string(),
                        resource_type: resource_type.to_string(),
                        span: decl.resource_type.span.into(),
                        help: Some(format!(
                            "`{}` takes the resource types `{}`",
                            action.name, action.resources
                        )),
                    },
                );
                valid = false;
            }
        }
        let resource_id = match &decl.resource_id {
            ast::RouteArg::Literal(lit) => RouteId::Literal(lit.value.clone()),
            ast::RouteArg::Param(ident) => {
                if let Some(template) = &template {
                    if !template.params().any(|param| param == ident.name) {
                        let params: Vec<&str> = template.params().collect();
                        let help = match suggest(&ident.name, params.iter().copied()) {
                            Some(name) => Some(format!("did you mean `{name}`?")),
                            None if params.is_empty() => Some(format!(
                                "the template has no parameters; try `{{{}}}` in the path or a fixed id such as `{}(\"main\")`",
                                ident.name, decl.resource_type.name
                            )),
                            None => Some(format!("the parameters are {}", list_names(&params))),
                        };
                        reporter.report(
                            file,
                            CheckError::UnknownRouteParam {
                                name: ident.name.clone(),
                                span: ident.span.into(),
                                help,
                            },
                        );
                        valid = false;
                    }
                }
                RouteId::Param(ident.name.clone())
            }
        };
        let (Some(method), Some(template), Some(action), Some(resource_type)) =
            (method, template, action, resource_type)
        else {
            return None;
        };
        if !valid {
            return None;
        }
        Some(Route {
            method,
            path: decl.path.value.clone(),
            template,
            action: action.name.clone(),
            resource_type,
            resource_id,
            location: Location {
                file,
                span: decl.path.span,
            },
        })
    }
}

/// The span of `len` bytes at `offset` in the value of a string literal; the whole literal when
/// escapes make offsets in the value differ from offsets in the source.
fn template_span(lit: &ast::StrLit, offset: usize, len: usize) -> Span {
    if lit.span.len() != lit.value.len() + 2 {
        return lit.span;
    }
    let start = lit.span.start() + 1 + offset;
    Span::new(start, start + len)
}

/// The byte offset of the `nth` (counting from 0) occurrence of `{param}` in a template.
fn param_offset(template: &str, param: &str, nth: usize) -> Option<usize> {
    let needle = format!("{{{param}}}");
    template
        .match_indices(&needle)
        .nth(nth)
        .map(|(offset, _)| offset)
}

/// Reports every pair of ambiguous routes, on the later route of the pair.
fn check_ambiguous_routes(routes: &[Route], reporter: &mut Reporter<'_>) {
    for (index, route) in routes.iter().enumerate() {
        for other in routes.iter().take(index) {
            let this_key: (Method, &[Segment]) = (route.method, &route.template.segments);
            let other_key: (Method, &[Segment]) = (other.method, &other.template.segments);
            if !routes::are_ambiguous(this_key, other_key) {
                continue;
            }
            let example = routes::common_path(&route.template.segments, &other.template.segments)
                .unwrap_or_else(|| "/".to_owned());
            let (other_span, elsewhere) = reporter.elsewhere(route.location.file, other.location);
            let span_label = match elsewhere {
                Some(elsewhere) => {
                    format!("this route and the route in {elsewhere} both match `{example}`")
                }
                None => "and so does this one".to_owned(),
            };
            reporter.report(
                route.location.file,
                CheckError::AmbiguousRoutes {
                    method: route.method.name().to_owned(),
                    path: route.path.clone(),
                    other_method: other.method.name().to_owned(),
                    other_path: other.path.clone(),
                    span: route.location.span.into(),
                    span_label,
                    other: other_span,
                    example,
                    help: Some(
                        "make one route strictly more specific, for example with a literal segment, or merge them"
                            .to_owned(),
                    ),
                },
            );
        }
    }
}
