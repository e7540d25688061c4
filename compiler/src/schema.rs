//! The schema of a policy set: its entity types, type declarations, actions, action groups and
//! routes, built from the `entity`, `type`, `action` and `route` declarations of all files
//! together.
//!
//! Declarations may appear in any file and in any order; names resolve across files. The schema
//! always contains the built-in entity type [`ACTION_TYPE`], the type of `action` and of action
//! literals such as `Action("read")`. A declaration with an error is kept as far as it is
//! meaningful (an unknown parent is dropped, an attribute of unknown type gets the error type), so
//! that the policies that use it are still checked.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// Every `type` declaration by name, with the type it stands for.
    pub type_aliases: BTreeMap<Name, TypeAlias>,
    /// Every action by name.
    pub actions: BTreeMap<Name, Action>,
    /// Every action group (an `action` declared without a signature) by name.
    pub action_groups: BTreeMap<Name, ActionGroup>,
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

/// A `type` declaration.
#[derive(Clone, Debug)]
pub struct TypeAlias {
    /// The type it stands for (the error type when it cannot be built).
    pub ty: Type,
    /// The declaration.
    pub location: Location,
}

/// An action group: a name for a set of actions, declared as an action without a signature.
#[derive(Clone, Debug)]
pub struct ActionGroup {
    /// The group's name.
    pub name: Name,
    /// The groups it belongs to, directly and through them.
    pub ancestors: BTreeSet<Name>,
    /// The actions in it, directly or through the groups in it.
    pub actions: BTreeSet<Name>,
    /// The declaration.
    pub location: Location,
}

/// A declared action.
#[derive(Clone, Debug)]
pub struct Action {
    /// The action name.
    pub name: Name,
    /// The groups it belongs to, directly and through them.
    pub ancestors: BTreeSet<Name>,
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

    /// Whether an entity of type `ty` can be in an entity of type `ancestor`: it is of that type,
    /// or `ancestor` is among the parent types of its type, transitively.
    pub(crate) fn can_be_in(&self, ty: &str, ancestor: &str) -> bool {
        let mut seen: Vec<&str> = vec![ty];
        let mut pending = vec![ty];
        while let Some(next) = pending.pop() {
            if next == ancestor {
                return true;
            }
            for parent in self
                .entity_types
                .get(next)
                .into_iter()
                .flat_map(|t| &t.parents)
            {
                if !seen.contains(&&**parent) {
                    seen.push(parent);
                    pending.push(parent);
                }
            }
        }
        false
    }

    /// The closest entity type name to a misspelled one.
    pub(crate) fn suggest_entity_type(&self, name: &str) -> Option<String> {
        suggest(name, self.entity_types.keys().map(|name| &**name))
    }

    /// The closest action name to a misspelled one.
    pub(crate) fn suggest_action(&self, name: &str) -> Option<String> {
        suggest(name, self.actions.keys().map(|name| &**name))
    }

    /// The closest action or group name to a misspelled one.
    pub(crate) fn suggest_action_or_group(&self, name: &str) -> Option<String> {
        let names = self.actions.keys().chain(self.action_groups.keys());
        suggest(name, names.map(|name| &**name))
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
        let help = if self.action_groups.contains_key(ident.name.as_str()) {
            Some(format!(
                "`{}` is an action group; name one of its actions here",
                ident.name
            ))
        } else {
            did_you_mean(self.suggest_action(&ident.name))
        };
        reporter.report(
            file,
            CheckError::UnknownAction {
                name: ident.name.clone(),
                span: ident.span.into(),
                help,
            },
        );
        None
    }

    /// Resolves a name in a policy's action scope: an action stands for itself, a group for its
    /// actions. Reports an unknown name, and a group without actions.
    pub(crate) fn resolve_action_scope(
        &self,
        file: FileId,
        ident: &ast::Ident,
        reporter: &mut Reporter<'_>,
    ) -> Vec<&Action> {
        if let Some(action) = self.actions.get(ident.name.as_str()) {
            return vec![action];
        }
        if let Some(group) = self.action_groups.get(ident.name.as_str()) {
            if group.actions.is_empty() {
                reporter.report(
                    file,
                    CheckError::EmptyActionGroup {
                        name: ident.name.clone(),
                        span: ident.span.into(),
                    },
                );
            }
            return group
                .actions
                .iter()
                .filter_map(|name| self.actions.get(name))
                .collect();
        }
        reporter.report(
            file,
            CheckError::UnknownAction {
                name: ident.name.clone(),
                span: ident.span.into(),
                help: did_you_mean(self.suggest_action_or_group(&ident.name)),
            },
        );
        Vec::new()
    }

    /// Whether `name` is an action or an action group, as `Action("name")` may name either.
    pub(crate) fn is_action_or_group(&self, name: &str) -> bool {
        self.actions.contains_key(name) || self.action_groups.contains_key(name)
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
        // Type declarations next: they may name entity types and each other.
        let mut alias_decls = BTreeMap::new();
        for &(file, tree) in files {
            for item in &tree.items {
                if let ast::ItemKind::TypeAlias(decl) = &item.kind {
                    schema.declare_type_alias(file, decl, &mut alias_decls, reporter);
                }
            }
        }
        let mut visiting = Vec::new();
        for name in alias_decls.keys() {
            schema.resolve_type_alias(name, &alias_decls, &mut visiting, reporter);
        }
        for (file, decl) in entity_decls {
            schema.define_entity_type(file, decl, reporter);
        }
        let mut memberships = Vec::new();
        for &(file, tree) in files {
            for item in &tree.items {
                if let ast::ItemKind::Action(decl) = &item.kind {
                    schema.declare_actions(file, decl, &mut memberships, reporter);
                }
            }
        }
        schema.resolve_action_groups(&memberships, reporter);
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

    /// Declares the actions, or the groups, of one `action` declaration; their `in` lists are
    /// kept in `memberships` to be resolved once every name is known.
    fn declare_actions<'d>(
        &mut self,
        file: FileId,
        decl: &'d ast::ActionDecl,
        memberships: &mut Vec<(FileId, Name, &'d [ast::Ident])>,
        reporter: &mut Reporter<'_>,
    ) {
        let signature = decl.signature.as_ref().map(|signature| {
            let principals = self.resolve_union(file, &signature.principals, reporter);
            let resources = self.resolve_union(file, &signature.resources, reporter);
            let context = Arc::new(match &signature.context {
                Some(ast::TypeExpr::Record(record)) => self.resolve_record(file, record, reporter),
                Some(other) => match self.resolve_type(file, other, reporter) {
                    Type::Record(record) => RecordType::clone(&record),
                    Type::Error => RecordType::default(),
                    found => {
                        reporter.report(
                            file,
                            CheckError::ContextNotRecord {
                                found: found.to_string(),
                                span: other.span().into(),
                            },
                        );
                        RecordType::default()
                    }
                },
                None => RecordType::default(),
            });
            (principals, resources, context)
        });
        for ident in &decl.names {
            let location = Location {
                file,
                span: ident.span,
            };
            let existing = self
                .actions
                .get(ident.name.as_str())
                .map(|action| action.location)
                .or_else(|| {
                    self.action_groups
                        .get(ident.name.as_str())
                        .map(|group| group.location)
                });
            if let Some(existing) = existing {
                let (previous, help) = reporter.first_declared(file, existing);
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
            memberships.push((file, name.clone(), &decl.groups));
            match &signature {
                Some((principals, resources, context)) => {
                    self.actions.insert(
                        name.clone(),
                        Action {
                            name,
                            ancestors: BTreeSet::new(),
                            principals: principals.clone(),
                            resources: resources.clone(),
                            context: context.clone(),
                            location,
                        },
                    );
                }
                None => {
                    self.action_groups.insert(
                        name.clone(),
                        ActionGroup {
                            name,
                            ancestors: BTreeSet::new(),
                            actions: BTreeSet::new(),
                            location,
                        },
                    );
                }
            }
        }
    }

    /// Resolves the `in` lists of the action declarations: every name must be a group, and no
    /// group may contain itself. Then gives every action and group its ancestors and every group
    /// its actions.
    fn resolve_action_groups(
        &mut self,
        memberships: &[(FileId, Name, &[ast::Ident])],
        reporter: &mut Reporter<'_>,
    ) {
        let mut parents: BTreeMap<Name, Vec<Name>> = BTreeMap::new();
        for (file, name, groups) in memberships {
            let mut direct = Vec::new();
            for group in *groups {
                if let Some((group_name, _)) = self.action_groups.get_key_value(group.name.as_str())
                {
                    if !direct.contains(group_name) {
                        direct.push(group_name.clone());
                    }
                } else if self.actions.contains_key(group.name.as_str()) {
                    reporter.report(
                        *file,
                        CheckError::NotAnActionGroup {
                            name: group.name.clone(),
                            span: group.span.into(),
                        },
                    );
                } else {
                    let help = did_you_mean(suggest(
                        &group.name,
                        self.action_groups.keys().map(|name| &**name),
                    ))
                    .or_else(|| Some(format!("declare the group with `action {};`", group.name)));
                    reporter.report(
                        *file,
                        CheckError::UnknownActionGroup {
                            name: group.name.clone(),
                            span: group.span.into(),
                            help,
                        },
                    );
                }
            }
            parents.insert(name.clone(), direct);
        }
        // A cycle is reported once, at the group where the walk closes it.
        let mut reported = BTreeSet::new();
        for group in self.action_groups.values() {
            let mut path = vec![group.name.clone()];
            if let Some(cycle) = find_cycle(&parents, &mut path, &mut BTreeSet::new()) {
                if cycle.iter().all(|name| !reported.contains(name)) {
                    reported.extend(cycle.iter().cloned());
                    let shown: Vec<String> = cycle.iter().map(|name| format!("`{name}`")).collect();
                    reporter.report(
                        group.location.file,
                        CheckError::ActionGroupCycle {
                            name: group.name.to_string(),
                            cycle: shown.join(" → "),
                            span: group.location.span.into(),
                        },
                    );
                }
            }
        }
        let ancestors_of = |name: &Name| {
            let mut ancestors = BTreeSet::new();
            let mut pending: Vec<&Name> = parents.get(name).into_iter().flatten().collect();
            while let Some(next) = pending.pop() {
                if ancestors.insert(next.clone()) {
                    pending.extend(parents.get(next).into_iter().flatten());
                }
            }
            ancestors
        };
        for group in self.action_groups.values_mut() {
            group.ancestors = ancestors_of(&group.name);
        }
        for action in self.actions.values_mut() {
            action.ancestors = ancestors_of(&action.name);
            for ancestor in &action.ancestors {
                if let Some(group) = self.action_groups.get_mut(ancestor) {
                    group.actions.insert(action.name.clone());
                }
            }
        }
    }

    /// Records a `type` declaration in `decls`, unless its name is taken.
    fn declare_type_alias<'d>(
        &mut self,
        file: FileId,
        decl: &'d ast::TypeAliasDecl,
        decls: &mut BTreeMap<Name, (FileId, &'d ast::TypeAliasDecl)>,
        reporter: &mut Reporter<'_>,
    ) {
        let name = decl.name.name.as_str();
        if RESERVED_TYPE_NAMES.contains(&name) {
            reporter.report(
                file,
                CheckError::ReservedTypeName {
                    name: name.to_owned(),
                    span: decl.name.span.into(),
                },
            );
            return;
        }
        let existing = match (self.entity_types.get(name), decls.get(name)) {
            (Some(entity_type), _) => entity_type.location,
            (None, Some((other_file, other))) => Some(Location {
                file: *other_file,
                span: other.name.span,
            }),
            (None, None) => None,
        };
        if let Some(existing) = existing {
            let (previous, help) = reporter.first_declared(file, existing);
            reporter.report(
                file,
                CheckError::DuplicateType {
                    name: name.to_owned(),
                    span: decl.name.span.into(),
                    previous,
                    help,
                },
            );
            return;
        }
        decls.insert(Name::from(name), (file, decl));
    }

    /// Resolves the `type` declaration `name` after those it names; a declaration met again
    /// while it is being resolved closes a cycle and gets the error type.
    fn resolve_type_alias(
        &mut self,
        name: &Name,
        decls: &BTreeMap<Name, (FileId, &ast::TypeAliasDecl)>,
        visiting: &mut Vec<Name>,
        reporter: &mut Reporter<'_>,
    ) {
        if self.type_aliases.contains_key(name) {
            return;
        }
        let Some(&(file, decl)) = decls.get(name) else {
            return;
        };
        let location = Location {
            file,
            span: decl.name.span,
        };
        if let Some(start) = visiting.iter().position(|other| other == name) {
            let mut cycle: Vec<String> = visiting
                .get(start..)
                .unwrap_or_default()
                .iter()
                .map(|name| format!("`{name}`"))
                .collect();
            cycle.push(format!("`{name}`"));
            reporter.report(
                file,
                CheckError::TypeCycle {
                    name: name.to_string(),
                    cycle: cycle.join(" → "),
                    span: decl.name.span.into(),
                },
            );
            self.type_aliases.insert(
                name.clone(),
                TypeAlias {
                    ty: Type::Error,
                    location,
                },
            );
            return;
        }
        visiting.push(name.clone());
        let mut named = Vec::new();
        named_types(&decl.ty, &mut named);
        for used in named {
            if let Some((used, _)) = decls.get_key_value(used.name.as_str()) {
                self.resolve_type_alias(used, decls, visiting, reporter);
            }
        }
        visiting.pop();
        if self.type_aliases.contains_key(name) {
            return;
        }
        let ty = self.resolve_type(file, &decl.ty, reporter);
        self.type_aliases
            .insert(name.clone(), TypeAlias { ty, location });
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
                if let Some(alias) = self.type_aliases.get(ident.name.as_str()) {
                    return alias.ty.clone();
                }
                let candidates = authz_stdlib::Type::ALL
                    .iter()
                    .map(|ty| ty.name())
                    .chain(self.entity_types.keys().map(|name| &**name))
                    .chain(self.type_aliases.keys().map(|name| &**name));
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
/// The names written in a type, in order.
fn named_types<'t>(ty: &'t ast::TypeExpr, out: &mut Vec<&'t ast::Ident>) {
    match ty {
        ast::TypeExpr::Named(ident) => out.push(ident),
        ast::TypeExpr::Set(element, _) => named_types(element, out),
        ast::TypeExpr::Record(record) => {
            for field in &record.fields {
                named_types(&field.ty, out);
            }
        }
    }
}

/// A cycle through the first name of `path`, following `parents`: the names around it, the
/// first repeated at the end. `done` holds names already known to lead to no such cycle.
fn find_cycle(
    parents: &BTreeMap<Name, Vec<Name>>,
    path: &mut Vec<Name>,
    done: &mut BTreeSet<Name>,
) -> Option<Vec<Name>> {
    let current = path.last()?.clone();
    for parent in parents.get(&current).into_iter().flatten() {
        if path.first() == Some(parent) {
            let mut cycle = path.clone();
            cycle.push(parent.clone());
            return Some(cycle);
        }
        if path.contains(parent) || done.contains(parent) {
            continue;
        }
        path.push(parent.clone());
        if let Some(cycle) = find_cycle(parents, path, done) {
            return Some(cycle);
        }
        path.pop();
        done.insert(parent.clone());
    }
    None
}

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
