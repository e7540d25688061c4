//! Loading the entity store from the entities JSON of `docs/language.md` ("Data"):
//! `[{"type": "User", "id": "alice", "attrs": {...}, "parents": [{"type": "Team", "id": "eng"}]}]`.
//!
//! Every entity is validated against the program's schema: its type exists and is not the action
//! type, its attributes are exactly those of its type's layout (optional ones may be left out)
//! with values of the declared types at any depth, its parents have types its type may be in, and
//! no entity is given twice. Every problem is reported (up to [`MAX_ERRORS`]), each naming the
//! entity and the attribute path. The store's interner starts as the program's and grows with the
//! file's strings; the hierarchy closure is computed once everything has loaded.

use std::collections::HashMap;

use miette::Diagnostic;
use thiserror::Error;

use crate::json::reader::{self, entity_ref, Issue, PathIssue, Reader, RefProblem, Symbols};
use crate::json::tree::{self, Json, Limits, ParseError};
use crate::json::MAX_DEPTH;
use crate::program::Program;
use crate::schema::Schema;
use crate::store::EntityStore;
use crate::suggest::{did_you_mean, suggest};
use crate::value::{EntityUid, PoolId, TypeId, ValuePool};

/// At most this many errors are reported; a last [`EntityError::TooManyErrors`] says so.
pub const MAX_ERRORS: usize = 100;

/// Why the entities file, or one entity in it, is invalid.
///
/// `entity` fields name the entity as `` `User("alice")` ``, or by its index in the file when
/// its type or id cannot be read; `path` fields are attribute paths such as `address.zip` or
/// `roles[2]`.
#[derive(Clone, Debug, PartialEq, Eq, Error, Diagnostic)]
pub enum EntityError {
    /// The text is not well-formed JSON.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    #[diagnostic(code(authz::entities::syntax))]
    Syntax {
        /// What the JSON parser said.
        message: String,
        /// The line, from 1.
        line: usize,
        /// The column, from 1.
        column: usize,
    },
    /// Arrays and objects are nested deeper than the limit.
    #[error("JSON nested deeper than {limit} levels at line {line}, column {column}")]
    #[diagnostic(code(authz::entities::too_deep))]
    TooDeep {
        /// The limit, counting the outer array.
        limit: usize,
        /// The line, from 1.
        line: usize,
        /// The column, from 1.
        column: usize,
    },
    /// An object has the same key twice.
    #[error("duplicate key `{key}` at line {line}, column {column}")]
    #[diagnostic(code(authz::entities::duplicate_key))]
    DuplicateKey {
        /// The key.
        key: String,
        /// The line, from 1.
        line: usize,
        /// The column, from 1.
        column: usize,
    },
    /// The file is not a JSON array.
    #[error("the entities file must be a JSON array of entities, found {found}")]
    #[diagnostic(code(authz::entities::not_a_list))]
    NotAList {
        /// What it is instead.
        found: String,
    },
    /// An entity object lacks `type` or `id`, has members of the wrong kind, or unknown members.
    #[error("{entity} is malformed: {message}")]
    #[diagnostic(
        code(authz::entities::malformed),
        help("an entity is written `{{\"type\": \"User\", \"id\": \"alice\", \"attrs\": {{...}}, \"parents\": [...]}}`")
    )]
    Malformed {
        /// The entity.
        entity: String,
        /// What is wrong.
        message: String,
    },
    /// An entity, a parent or an entity reference names a type the schema does not have.
    #[error("unknown entity type `{name}` in {site}")]
    #[diagnostic(code(authz::entities::unknown_type))]
    UnknownType {
        /// Where: the entity, or its parent or attribute.
        site: String,
        /// The type written.
        name: String,
        /// A suggestion.
        #[help]
        help: Option<String>,
    },
    /// An entity of the action type: actions come from the schema.
    #[error("{entity} has the action type `{name}`; actions are declared in the schema, not given as entities")]
    #[diagnostic(code(authz::entities::action_entity))]
    ActionEntity {
        /// The entity.
        entity: String,
        /// The action type's name.
        name: String,
    },
    /// A required attribute is missing.
    #[error("{entity} is missing the required attribute `{path}` of type `{expected}`")]
    #[diagnostic(code(authz::entities::missing_attribute))]
    MissingAttribute {
        /// The entity.
        entity: String,
        /// The attribute's path.
        path: String,
        /// Its type.
        expected: String,
    },
    /// An attribute the entity's type does not declare.
    #[error("{entity} has the attribute `{path}`, which its type does not declare")]
    #[diagnostic(code(authz::entities::unknown_attribute))]
    UnknownAttribute {
        /// The entity.
        entity: String,
        /// The attribute's path.
        path: String,
        /// A suggestion.
        #[help]
        help: Option<String>,
    },
    /// An attribute value of the wrong type.
    #[error("wrong type for attribute `{path}` of {entity}: expected `{expected}`, found {found}")]
    #[diagnostic(code(authz::entities::type_mismatch))]
    TypeMismatch {
        /// The entity.
        entity: String,
        /// The attribute's path.
        path: String,
        /// The declared type.
        expected: String,
        /// What the file has.
        found: String,
        /// How such a value is written.
        #[help]
        help: Option<String>,
    },
    /// An integer that does not fit in a `Long`.
    #[error("attribute `{path}` of {entity} is out of the range of `Long`: `{text}`")]
    #[diagnostic(
        code(authz::entities::long_out_of_range),
        help(
            "a `Long` is a 64-bit signed integer, from -9223372036854775808 to 9223372036854775807"
        )
    )]
    LongOutOfRange {
        /// The entity.
        entity: String,
        /// The attribute's path.
        path: String,
        /// The number as written.
        text: String,
    },
    /// A string that is not a valid extension value.
    #[error("attribute `{path}` of {entity}: `{text}` is not a valid `{ty}`: {message}")]
    #[diagnostic(code(authz::entities::bad_literal))]
    BadLiteral {
        /// The entity.
        entity: String,
        /// The attribute's path.
        path: String,
        /// `Ip`, `Timestamp` or `Duration`.
        ty: String,
        /// The string.
        text: String,
        /// Why it does not parse.
        message: String,
    },
    /// A parent of a type that the entity's type may not be in.
    #[error("{entity} cannot be in `{parent}`: {rule}")]
    #[diagnostic(code(authz::entities::parent_type))]
    ParentType {
        /// The entity.
        entity: String,
        /// The parent, as `Type("id")`.
        parent: String,
        /// What the schema allows, such as "a `User` may only be in `Team` or `Org`".
        rule: String,
    },
    /// The same type and id twice.
    #[error("{entity} is given more than once")]
    #[diagnostic(code(authz::entities::duplicate))]
    Duplicate {
        /// The entity.
        entity: String,
        /// Where it was first given.
        #[help]
        help: Option<String>,
    },
    /// Too many errors; the rest were not reported.
    #[error("too many errors; stopped after {limit}")]
    #[diagnostic(code(authz::entities::too_many_errors))]
    TooManyErrors {
        /// The limit.
        limit: usize,
    },
}

/// Loads and validates the entities file `json` for `program`.
///
/// The store's interner starts as a clone of the program's; its hierarchy closure is computed.
/// On failure, every error found (up to [`MAX_ERRORS`], then [`EntityError::TooManyErrors`]).
pub fn load_entities(program: &Program, json: &str) -> Result<EntityStore, Vec<EntityError>> {
    let limits = Limits {
        // The outer array is one more level.
        max_depth: MAX_DEPTH + 1,
        max_values: usize::MAX,
    };
    let tree = match tree::parse(json, limits) {
        Ok(tree) => tree,
        Err(error) => return Err(vec![parse_error(error)]),
    };
    let Json::Array(items) = tree else {
        return Err(vec![EntityError::NotAList {
            found: tree.describe(),
        }]);
    };
    let mut store = EntityStore::new(program.interner.clone());
    let mut loader = Loader::new(
        &program.schema,
        &mut store.pool,
        EntityStore::POOL,
        &mut store.interner,
        MAX_ERRORS,
    );
    loader.entities(&items);
    let Loader {
        entities,
        problems,
        truncated,
        ..
    } = loader;
    let mut errors: Vec<EntityError> = problems.into_iter().map(entity_error).collect();
    if truncated {
        errors.push(EntityError::TooManyErrors { limit: MAX_ERRORS });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for entity in entities {
        // The loader refused duplicates, so insertion cannot fail.
        let _ = store.insert(
            entity.uid,
            entity.attrs_start,
            entity.attrs_len,
            entity.parents,
        );
    }
    store.finish();
    Ok(store)
}

fn parse_error(error: ParseError) -> EntityError {
    match error {
        ParseError::Syntax {
            message,
            line,
            column,
        } => EntityError::Syntax {
            message,
            line,
            column,
        },
        ParseError::TooDeep {
            limit,
            line,
            column,
        } => EntityError::TooDeep {
            limit,
            line,
            column,
        },
        ParseError::DuplicateKey { key, line, column } => {
            EntityError::DuplicateKey { key, line, column }
        }
        // Entity files have no value limit; keep the position anyway.
        ParseError::TooManyValues {
            limit,
            line,
            column,
        } => EntityError::Syntax {
            message: format!("more than {limit} values"),
            line,
            column,
        },
    }
}

/// What kind of JSON value a member of an entity object must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `type` and `id`.
    String,
    /// `attrs`.
    Object,
    /// `parents`.
    Array,
}

/// What is wrong with one entity, before it is worded for the entities file ([`EntityError`])
/// or for a request (`RequestError`, naming the field as `entities[3].attrs.age`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The entity is not a JSON object; `found` describes what it is.
    NotAnObject { found: String },
    /// A member other than `type`, `id`, `attrs` and `parents`.
    UnknownMember {
        key: String,
        suggestion: Option<String>,
    },
    /// `type`, `id`, `attrs` or `parents` has the wrong kind.
    MemberKind {
        member: &'static str,
        expected: Kind,
        found: String,
    },
    /// `type` or `id` is missing.
    MissingMember { member: &'static str },
    /// The entity's type is not in the schema.
    UnknownType {
        name: String,
        suggestion: Option<String>,
    },
    /// The entity has the action type.
    ActionEntity { name: String },
    /// The same type and id were given before, at index `first`.
    Duplicate { first: usize },
    /// An attribute is wrong; its path is relative to `attrs`.
    Attribute(PathIssue),
    /// The pool would outgrow its 32-bit offsets.
    TooLarge,
    /// Parent `index` is not a well-formed entity reference.
    ParentRef { index: usize, problem: RefProblem },
    /// Parent `index` names a type the schema does not have.
    ParentUnknownType {
        index: usize,
        name: String,
        suggestion: Option<String>,
    },
    /// Parent `index`, written `parent`, has a type the entity's type may not be in; `rule`
    /// says what the schema allows.
    ParentType {
        index: usize,
        parent: String,
        rule: String,
    },
}

/// A problem with the entity at `index` of the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EntityProblem {
    /// The entity's index in the list.
    pub(crate) index: usize,
    /// The entity as `` `User("alice")` ``, or `the entity at index 3` when its type or id is
    /// not known yet.
    pub(crate) label: String,
    /// What is wrong.
    pub(crate) problem: Problem,
}

/// An entity that passed validation; its attributes are in the loader's pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoadedEntity {
    pub(crate) uid: EntityUid,
    pub(crate) attrs_start: u32,
    pub(crate) attrs_len: u32,
    pub(crate) parents: Vec<EntityUid>,
}

/// Validates entity objects against the schema, writing their attribute values into one pool
/// and their strings through one symbol table: the store's (for the entities file) or the
/// request's (for entities that come with a request).
pub(crate) struct Loader<'a, S> {
    schema: &'a Schema,
    pool: &'a mut ValuePool,
    pool_id: PoolId,
    symbols: S,
    max_problems: usize,
    first_index: HashMap<EntityUid, usize>,
    /// The valid entities, in the order given.
    pub(crate) entities: Vec<LoadedEntity>,
    /// The problems found, at most `max_problems`.
    pub(crate) problems: Vec<EntityProblem>,
    /// Whether problems were left out.
    pub(crate) truncated: bool,
}

/// The members an entity object may have.
const ENTITY_MEMBERS: [&str; 4] = ["type", "id", "attrs", "parents"];

impl<'a, S: Symbols> Loader<'a, S> {
    /// A loader writing into `pool` (whose id is `pool_id`) and naming strings with `symbols`;
    /// it keeps at most `max_problems` problems.
    pub(crate) fn new(
        schema: &'a Schema,
        pool: &'a mut ValuePool,
        pool_id: PoolId,
        symbols: S,
        max_problems: usize,
    ) -> Loader<'a, S> {
        Loader {
            schema,
            pool,
            pool_id,
            symbols,
            max_problems,
            first_index: HashMap::new(),
            entities: Vec::new(),
            problems: Vec::new(),
            truncated: false,
        }
    }

    fn report(&mut self, index: usize, label: &str, problem: Problem) {
        if self.problems.len() >= self.max_problems {
            self.truncated = true;
            return;
        }
        self.problems.push(EntityProblem {
            index,
            label: label.to_owned(),
            problem,
        });
    }

    /// Validates every entity of a list in order, stopping once the error limit is reached.
    pub(crate) fn entities(&mut self, items: &[Json]) {
        for (index, item) in items.iter().enumerate() {
            if self.truncated {
                break;
            }
            self.entity(index, item);
        }
    }

    /// Validates the entity at `index` and keeps it when it is valid.
    pub(crate) fn entity(&mut self, index: usize, item: &Json) {
        let position = format!("the entity at index {index}");
        let Json::Object(members) = item else {
            let found = item.describe();
            return self.report(index, &position, Problem::NotAnObject { found });
        };
        let mut shape_ok = true;
        for (key, _) in members {
            if !ENTITY_MEMBERS.contains(&key.as_str()) {
                let suggestion = suggest(key, ENTITY_MEMBERS);
                let key = key.clone();
                self.report(index, &position, Problem::UnknownMember { key, suggestion });
                shape_ok = false;
            }
        }
        let type_name = self.string_member(index, &position, members, "type");
        let id = self.string_member(index, &position, members, "id");
        let (Some(type_name), Some(id)) = (type_name, id) else {
            return;
        };
        let schema = self.schema;
        let Some(ty) = schema.type_id(type_name) else {
            let suggestion = suggest(type_name, reader::entity_type_names(schema));
            let name = type_name.to_owned();
            return self.report(index, &position, Problem::UnknownType { name, suggestion });
        };
        let label = entity_label(type_name, id);
        if ty == schema.action_type {
            let name = type_name.to_owned();
            return self.report(index, &label, Problem::ActionEntity { name });
        }
        let uid = EntityUid {
            ty,
            id: self.symbols.sym(id),
        };
        if let Some(&first) = self.first_index.get(&uid) {
            return self.report(index, &label, Problem::Duplicate { first });
        }
        self.first_index.insert(uid, index);

        let attrs = self.attributes(index, &label, ty, members);
        let parents = self.parents(index, &label, ty, members);
        let (Some((attrs_start, attrs_len)), Some(parents), true) = (attrs, parents, shape_ok)
        else {
            return;
        };
        if self.pool.values.len() > u32::MAX as usize {
            return self.report(index, &label, Problem::TooLarge);
        }
        self.entities.push(LoadedEntity {
            uid,
            attrs_start,
            attrs_len,
            parents,
        });
    }

    /// A member that must be a string.
    fn string_member<'j>(
        &mut self,
        index: usize,
        label: &str,
        members: &'j [(String, Json)],
        member: &'static str,
    ) -> Option<&'j str> {
        match Json::member(members, member) {
            Some(Json::Str(text)) => Some(text),
            Some(other) => {
                let problem = Problem::MemberKind {
                    member,
                    expected: Kind::String,
                    found: other.describe(),
                };
                self.report(index, label, problem);
                None
            }
            None => {
                self.report(index, label, Problem::MissingMember { member });
                None
            }
        }
    }

    /// Reads `attrs` into the pool: the offset and number of attribute slots.
    fn attributes(
        &mut self,
        index: usize,
        label: &str,
        ty: TypeId,
        members: &[(String, Json)],
    ) -> Option<(u32, u32)> {
        let schema = self.schema;
        let layout = schema.entity_type(ty)?.layout;
        let empty = Vec::new();
        let attrs = match Json::member(members, "attrs") {
            None => &empty,
            Some(Json::Object(attrs)) => attrs,
            Some(other) => {
                let problem = Problem::MemberKind {
                    member: "attrs",
                    expected: Kind::Object,
                    found: other.describe(),
                };
                self.report(index, label, problem);
                return None;
            }
        };
        let mut reader = Reader::new(schema, self.pool, self.pool_id, &mut self.symbols, "");
        let fields = reader.fields(layout, attrs);
        let issues = reader.into_issues();
        for issue in issues {
            self.report(index, label, Problem::Attribute(issue));
        }
        let fields = fields?;
        let record = self.pool.push_record(self.pool_id, layout, &fields);
        Some((record.start, u32::try_from(fields.len()).ok()?))
    }

    /// Reads `parents`, checking their types against the schema.
    fn parents(
        &mut self,
        index: usize,
        label: &str,
        ty: TypeId,
        members: &[(String, Json)],
    ) -> Option<Vec<EntityUid>> {
        let items = match Json::member(members, "parents") {
            None => return Some(Vec::new()),
            Some(Json::Array(items)) => items,
            Some(other) => {
                let problem = Problem::MemberKind {
                    member: "parents",
                    expected: Kind::Array,
                    found: other.describe(),
                };
                self.report(index, label, problem);
                return None;
            }
        };
        let schema = self.schema;
        let allowed: &[TypeId] = schema.entity_type(ty).map_or(&[], |def| &def.parents);
        let mut parents = Vec::with_capacity(items.len());
        let mut ok = true;
        for (parent, item) in items.iter().enumerate() {
            let (parent_type, parent_id) = match entity_ref(item) {
                Ok(parts) => parts,
                Err(problem) => {
                    let problem = Problem::ParentRef {
                        index: parent,
                        problem,
                    };
                    self.report(index, label, problem);
                    ok = false;
                    continue;
                }
            };
            let Some(parent_ty) = schema.type_id(parent_type) else {
                let suggestion = suggest(parent_type, reader::entity_type_names(schema));
                let problem = Problem::ParentUnknownType {
                    index: parent,
                    name: parent_type.to_owned(),
                    suggestion,
                };
                self.report(index, label, problem);
                ok = false;
                continue;
            };
            if !allowed.contains(&parent_ty) {
                let type_name = schema.type_name(ty);
                let rule = if allowed.is_empty() {
                    format!("a `{type_name}` cannot be in any entity")
                } else {
                    let names: Vec<String> = allowed
                        .iter()
                        .map(|ty| format!("`{}`", schema.type_name(*ty)))
                        .collect();
                    format!("a `{type_name}` may only be in {}", or_list(&names))
                };
                let problem = Problem::ParentType {
                    index: parent,
                    parent: format!("{parent_type}({parent_id:?})"),
                    rule,
                };
                self.report(index, label, problem);
                ok = false;
                continue;
            }
            let uid = EntityUid {
                ty: parent_ty,
                id: self.symbols.sym(parent_id),
            };
            if !parents.contains(&uid) {
                parents.push(uid);
            }
        }
        ok.then_some(parents)
    }
}

/// The error of the entities file for a problem with one of its entities.
fn entity_error(problem: EntityProblem) -> EntityError {
    let EntityProblem { label, problem, .. } = problem;
    let malformed = |entity: String, message: String| EntityError::Malformed { entity, message };
    match problem {
        Problem::NotAnObject { found } => {
            malformed(label, format!("expected an object, found {found}"))
        }
        Problem::UnknownMember { key, suggestion } => {
            let mut message = format!(
                "unknown member `{key}`; an entity has `type`, `id`, `attrs` and `parents`"
            );
            if let Some(name) = suggestion {
                message.push_str(&format!(" (did you mean `{name}`?)"));
            }
            malformed(label, message)
        }
        Problem::MemberKind {
            member,
            expected,
            found,
        } => {
            let expected = match expected {
                Kind::String => "a string",
                Kind::Object => "an object",
                Kind::Array => "an array",
            };
            malformed(
                label,
                format!("`{member}` must be {expected}, found {found}"),
            )
        }
        Problem::MissingMember { member } => malformed(label, format!("`{member}` is missing")),
        Problem::UnknownType { name, suggestion } => EntityError::UnknownType {
            site: label,
            name,
            help: did_you_mean(suggestion),
        },
        Problem::ActionEntity { name } => EntityError::ActionEntity {
            entity: label,
            name,
        },
        Problem::Duplicate { first } => EntityError::Duplicate {
            entity: label,
            help: Some(format!("it is first given at index {first}")),
        },
        Problem::Attribute(issue) => attribute_error(&label, issue),
        Problem::TooLarge => malformed(label, "the entities file is too large".to_owned()),
        Problem::ParentRef { index, problem } => {
            let at = match problem.member {
                Some(member) => format!("parents[{index}].{member}"),
                None => format!("parents[{index}]"),
            };
            let what = match problem.issue {
                Issue::Missing { .. } => "is missing".to_owned(),
                Issue::Mismatch {
                    expected, found, ..
                } => format!("expected `{expected}`, found {found}"),
                other => format!("{other:?}"),
            };
            malformed(label, format!("`{at}` {what}"))
        }
        Problem::ParentUnknownType {
            index,
            name,
            suggestion,
        } => EntityError::UnknownType {
            site: format!("`parents[{index}]` of {label}"),
            name,
            help: did_you_mean(suggestion),
        },
        Problem::ParentType { parent, rule, .. } => EntityError::ParentType {
            entity: label,
            parent,
            rule,
        },
    }
}

/// An entity as the language writes it, in backticks: `` `User("alice")` ``.
fn entity_label(type_name: &str, id: &str) -> String {
    format!("`{type_name}({id:?})`")
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn attribute_error(entity: &str, issue: PathIssue) -> EntityError {
    let entity = entity.to_owned();
    let path = issue.path;
    match issue.issue {
        Issue::Missing { expected } => EntityError::MissingAttribute {
            entity,
            path,
            expected,
        },
        Issue::Unknown { suggestion } => EntityError::UnknownAttribute {
            entity,
            path,
            help: did_you_mean(suggestion),
        },
        Issue::Mismatch {
            expected,
            found,
            help,
        } => EntityError::TypeMismatch {
            entity,
            path,
            expected,
            found,
            help,
        },
        Issue::OutOfRange { text } => EntityError::LongOutOfRange { entity, path, text },
        Issue::BadLiteral { ty, text, message } => EntityError::BadLiteral {
            entity,
            path,
            ty: ty.to_owned(),
            text,
            message,
        },
        Issue::UnknownEntityType { name, suggestion } => EntityError::UnknownType {
            site: format!("attribute `{path}` of {entity}"),
            name,
            help: did_you_mean(suggestion),
        },
        // Text input cannot hold the marker: over-deep text is a syntax error.
        Issue::TooDeep => EntityError::TypeMismatch {
            entity,
            path,
            expected: "a shallower value".to_owned(),
            found: "a value nested too deep".to_owned(),
            help: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use miette::Diagnostic;

    use super::*;
    use crate::json::fixture;
    use crate::json::write::entities_to_json;
    use crate::value::Value;

    const DOCS_ENTITIES: &str = include_str!("../../../examples/docs/entities.json");

    /// Loads `json` and returns the error messages, with codes and help lines.
    fn errors(json: &str) -> Vec<String> {
        let program = fixture::program();
        match load_entities(&program, json) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(render).collect(),
        }
    }

    fn render(error: &EntityError) -> String {
        let code = error
            .code()
            .map(|code| code.to_string())
            .unwrap_or_default();
        match error.help() {
            Some(help) => format!("[{code}] {error} (help: {help})"),
            None => format!("[{code}] {error}"),
        }
    }

    fn check(json: &str, expected: &[&str]) {
        assert_eq!(errors(json), expected);
    }

    fn user(id: &str, attrs: &str) -> String {
        format!(r#"[{{"type": "User", "id": "{id}", "attrs": {attrs}}}]"#)
    }

    const ALICE: &str = r#"{"tenant": {"type": "Tenant", "id": "acme"}, "email": "a@x", "clearance": 3, "trainings": []}"#;

    fn device(attrs: &str) -> String {
        let base = r#""ip": "10.0.0.1", "seen": "2024-01-31T12:00:00Z", "ttl": "1h30m", "address": {"zip": 12345}, "grid": []"#;
        let attrs = if attrs.is_empty() {
            base.to_owned()
        } else {
            format!("{base}, {attrs}")
        };
        format!(r#"[{{"type": "Device", "id": "d1", "attrs": {{{attrs}}}}}]"#)
    }

    fn parse(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap()
    }

    /// Sorts every array by its text, so that sets compare whatever their order.
    fn normalize(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Array(items) => {
                let mut items: Vec<_> = items.into_iter().map(normalize).collect();
                items.sort_by_key(|item| item.to_string());
                serde_json::Value::Array(items)
            }
            serde_json::Value::Object(members) => serde_json::Value::Object(
                members
                    .into_iter()
                    .map(|(key, value)| (key, normalize(value)))
                    .collect(),
            ),
            other => other,
        }
    }

    fn uid(program: &Program, store: &EntityStore, ty: &str, id: &str) -> EntityUid {
        EntityUid {
            ty: program.schema.type_id(ty).unwrap(),
            id: store.interner.get(id).unwrap(),
        }
    }

    #[test]
    fn docs_example_round_trips() {
        let program = fixture::program();
        let store = load_entities(&program, DOCS_ENTITIES).unwrap();
        assert_eq!(store.len(), 32);
        let written = entities_to_json(&program, &store);
        assert_eq!(normalize(written), normalize(parse(DOCS_ENTITIES)));
    }

    #[test]
    fn hierarchy_closure_is_transitive() {
        let program = fixture::program();
        let store = load_entities(&program, DOCS_ENTITIES).unwrap();
        let alice = uid(&program, &store, "User", "alice");
        let frank = uid(&program, &store, "User", "frank");
        let acme = uid(&program, &store, "Tenant", "acme");
        let viewers = uid(&program, &store, "Role", "acme-viewers");
        let roadmap_readers = uid(&program, &store, "Group", "acme-roadmap-readers");
        assert!(store.is_ancestor(alice, viewers));
        assert!(store.is_ancestor(alice, acme));
        assert!(store.is_ancestor(frank, roadmap_readers));
        assert!(store.is_ancestor(frank, acme));
        assert!(!store.is_ancestor(acme, alice));
        let salaries = uid(&program, &store, "Document", "salaries");
        let names: Vec<String> = store
            .ancestors(salaries)
            .iter()
            .map(|a| store.interner.resolve(a.id).unwrap().to_owned())
            .collect();
        assert_eq!(names.len(), 3);
        for name in ["acme-finance", "acme-root", "acme"] {
            assert!(names.contains(&name.to_owned()), "{name}");
        }
    }

    #[test]
    fn store_interner_extends_the_programs() {
        let program = fixture::program();
        let store = load_entities(&program, &user("alice", ALICE)).unwrap();
        let n = program.interner.len();
        assert!(store.interner.len() > n);
        for sym in 0..n {
            let sym = crate::intern::Sym(sym);
            assert_eq!(store.interner.resolve(sym), program.interner.resolve(sym));
        }
    }

    #[test]
    fn sets_are_sorted_and_deduplicated() {
        let program = fixture::program();
        let json = device(r#""grid": [[3, 1, 3], [1, 3], [2], []]"#).replace(r#", "grid": []"#, "");
        let store = load_entities(&program, &json).unwrap();
        let device = store.iter().next().unwrap();
        let layout = program
            .schema
            .layout(program.schema.entity_type(device.uid.ty).unwrap().layout)
            .unwrap();
        let slot = layout
            .slot(program.schema.attr_id("grid").unwrap())
            .unwrap();
        let Value::Set(grid) = store.attrs(device)[slot] else {
            panic!("grid is not a set");
        };
        let written = crate::json::write::value_to_json(&program, &store, Value::Set(grid));
        assert_eq!(written, parse("[[], [1, 3], [2]]"));
    }

    #[test]
    fn extension_values_load() {
        let program = fixture::program();
        let json = device(
            r#""sites": [{"zip": 2, "city": "Oslo"}, {"zip": 1}], "owner": {"type": "Group", "id": "g"}"#,
        );
        let store = load_entities(&program, &json).unwrap();
        let written = entities_to_json(&program, &store);
        let expected = parse(
            r#"[{"type": "Device", "id": "d1", "parents": [], "attrs": {
                "ip": "10.0.0.1", "seen": "2024-01-31T12:00:00Z", "ttl": "1h30m",
                "address": {"zip": 12345}, "grid": [],
                "sites": [{"zip": 1}, {"zip": 2, "city": "Oslo"}],
                "owner": {"type": "Group", "id": "g"}}}]"#,
        );
        assert_eq!(normalize(written), normalize(expected));
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        check(
            "[\n  {\"type\": \"User\",, }\n]",
            &["[authz::entities::syntax] malformed JSON at line 2, column 19: key must be a string"],
        );
        check(
            "",
            &["[authz::entities::syntax] malformed JSON at line 1, column 0: EOF while parsing a value"],
        );
    }

    #[test]
    fn the_file_must_be_an_array() {
        check(
            r#"{"type": "User"}"#,
            &["[authz::entities::not_a_list] the entities file must be a JSON array of entities, found an object"],
        );
    }

    #[test]
    fn unknown_entity_type_suggests_a_name() {
        check(
            r#"[{"type": "Usr", "id": "alice"}]"#,
            &["[authz::entities::unknown_type] unknown entity type `Usr` in the entity at index 0 (help: did you mean `User`?)"],
        );
    }

    #[test]
    fn actions_are_not_data() {
        check(
            r#"[{"type": "Action", "id": "read"}]"#,
            &["[authz::entities::action_entity] `Action(\"read\")` has the action type `Action`; actions are declared in the schema, not given as entities"],
        );
    }

    #[test]
    fn missing_required_attributes_are_named() {
        check(
            &user("alice", r#"{"email": "a@x", "address": 1}"#)
                .replace(r#""address": 1"#, r#""clearance": 1"#),
            &[
                "[authz::entities::missing_attribute] `User(\"alice\")` is missing the required attribute `tenant` of type `Tenant`",
                "[authz::entities::missing_attribute] `User(\"alice\")` is missing the required attribute `trainings` of type `Set<String>`",
            ],
        );
        check(
            &device("").replace(r#"{"zip": 12345}"#, r#"{"city": "Oslo"}"#),
            &["[authz::entities::missing_attribute] `Device(\"d1\")` is missing the required attribute `address.zip` of type `Long`"],
        );
        // Optional attributes may be left out, and `attrs` and `parents` too when nothing is required.
        check(&user("alice", ALICE), &[]);
        check(
            r#"[{"type": "Tenant", "id": "t", "attrs": {"name": "T", "plan": "free", "viewers": {"type": "Role", "id": "v"}, "editors": {"type": "Role", "id": "e"}, "admins": {"type": "Role", "id": "a"}}}]"#,
            &[],
        );
    }

    #[test]
    fn unknown_attributes_are_named_with_suggestions() {
        check(
            &user("alice", &ALICE.replace(r#""clearance""#, r#""clearence""#)),
            &[
                "[authz::entities::unknown_attribute] `User(\"alice\")` has the attribute `clearence`, which its type does not declare (help: did you mean `clearance`?)",
                "[authz::entities::missing_attribute] `User(\"alice\")` is missing the required attribute `clearance` of type `Long`",
            ],
        );
        check(
            &device("").replace(r#"{"zip": 12345}"#, r#"{"zip": 1, "cty": "Oslo"}"#),
            &["[authz::entities::unknown_attribute] `Device(\"d1\")` has the attribute `address.cty`, which its type does not declare (help: did you mean `city`?)"],
        );
    }

    #[test]
    fn wrong_types_are_named_at_any_depth() {
        check(
            &device(r#""sites": [{"zip": 1}, {"zip": "2"}]"#)
                .replace(r#""grid": []"#, r#""grid": [[1], [2, true]]"#)
                .replace(r#""ttl": "1h30m""#, r#""ttl": 5400"#),
            &[
                "[authz::entities::type_mismatch] wrong type for attribute `ttl` of `Device(\"d1\")`: expected `Duration`, found the integer `5400` (help: a `Duration` is written as a string such as `\"1h30m\"`)",
                "[authz::entities::type_mismatch] wrong type for attribute `grid[1][1]` of `Device(\"d1\")`: expected `Long`, found `true`",
                "[authz::entities::type_mismatch] wrong type for attribute `sites[1].zip` of `Device(\"d1\")`: expected `Long`, found the string `\"2\"`",
            ],
        );
        check(
            &user("alice", &ALICE.replace(r#""trainings": []"#, r#""trainings": "pii""#)),
            &["[authz::entities::type_mismatch] wrong type for attribute `trainings` of `User(\"alice\")`: expected `Set<String>`, found the string `\"pii\"` (help: a set is written as a JSON array)"],
        );
        check(
            &device("").replace(r#"{"zip": 12345}"#, "null"),
            &["[authz::entities::type_mismatch] wrong type for attribute `address` of `Device(\"d1\")`: expected `{ zip: Long, city?: String }`, found `null` (help: a record is written as a JSON object)"],
        );
    }

    #[test]
    fn floats_and_huge_integers_are_not_longs() {
        check(
            &user("alice", &ALICE.replace("3", "3.5")),
            &["[authz::entities::type_mismatch] wrong type for attribute `clearance` of `User(\"alice\")`: expected `Long`, found the number `3.5` (help: a `Long` is a whole number)"],
        );
        check(
            &user("alice", &ALICE.replace("3", "3.0")),
            &["[authz::entities::type_mismatch] wrong type for attribute `clearance` of `User(\"alice\")`: expected `Long`, found the number `3` (help: a `Long` is a whole number)"],
        );
        check(
            &user("alice", &ALICE.replace("3", "9223372036854775808")),
            &["[authz::entities::long_out_of_range] attribute `clearance` of `User(\"alice\")` is out of the range of `Long`: `9223372036854775808` (help: a `Long` is a 64-bit signed integer, from -9223372036854775808 to 9223372036854775807)"],
        );
        check(
            &user("alice", &ALICE.replace("3", &"9".repeat(400))),
            &["[authz::entities::syntax] malformed JSON at line 1, column 516: number out of range"],
        );
        check(
            &user("alice", &ALICE.replace("3", "-9223372036854775808")),
            &[],
        );
    }

    #[test]
    fn bad_extension_literals_are_rejected() {
        check(
            &device("")
                .replace("10.0.0.1", "10.0.0.0/33")
                .replace("2024-01-31T12:00:00Z", "2024-02-30T00:00:00Z")
                .replace("1h30m", "30m1h"),
            &[
                "[authz::entities::bad_literal] attribute `ip` of `Device(\"d1\")`: `10.0.0.0/33` is not a valid `Ip`: prefix length 33 is longer than 32",
                "[authz::entities::bad_literal] attribute `seen` of `Device(\"d1\")`: `2024-02-30T00:00:00Z` is not a valid `Timestamp`: day 30 is out of range",
                "[authz::entities::bad_literal] attribute `ttl` of `Device(\"d1\")`: `30m1h` is not a valid `Duration`: unit `h` is repeated or out of order; write units from `d` down to `ms`",
            ],
        );
    }

    #[test]
    fn entity_references_are_checked() {
        check(
            &user("alice", &ALICE.replace(r#""type": "Tenant""#, r#""type": "Team""#)),
            &["[authz::entities::unknown_type] unknown entity type `Team` in attribute `tenant.type` of `User(\"alice\")`"],
        );
        check(
            &user("alice", &ALICE.replace(r#""type": "Tenant""#, r#""type": "Role""#)),
            &["[authz::entities::type_mismatch] wrong type for attribute `tenant` of `User(\"alice\")`: expected `Tenant`, found an entity of type `Role`"],
        );
        check(
            &user("alice", &ALICE.replace(r#"{"type": "Tenant", "id": "acme"}"#, r#""acme""#)),
            &["[authz::entities::type_mismatch] wrong type for attribute `tenant` of `User(\"alice\")`: expected `{\"type\": ..., \"id\": ...}`, found the string `\"acme\"` (help: an entity reference is written `{\"type\": \"User\", \"id\": \"alice\"}`)"],
        );
        check(
            &user("alice", &ALICE.replace(r#""id": "acme""#, r#""id": 7"#)),
            &["[authz::entities::type_mismatch] wrong type for attribute `tenant.id` of `User(\"alice\")`: expected `String`, found the integer `7`"],
        );
        check(
            &device(r#""owner": {"type": "Tenant", "id": "acme"}"#),
            &["[authz::entities::type_mismatch] wrong type for attribute `owner` of `Device(\"d1\")`: expected `User | Group`, found an entity of type `Tenant`"],
        );
    }

    #[test]
    fn parents_must_have_allowed_types() {
        check(
            r#"[{"type": "Document", "id": "d", "parents": [{"type": "Tenant", "id": "acme"}, {"type": "Foldr", "id": "f"}, "x"],
                "attrs": {"tenant": {"type": "Tenant", "id": "acme"}, "owner": {"type": "User", "id": "a"}, "classification": 1, "labels": [], "requiredTrainings": [], "readers": {"type": "Group", "id": "g"}}}]"#,
            &[
                "[authz::entities::parent_type] `Document(\"d\")` cannot be in `Tenant(\"acme\")`: a `Document` may only be in `Folder`",
                "[authz::entities::unknown_type] unknown entity type `Foldr` in `parents[1]` of `Document(\"d\")` (help: did you mean `Folder`?)",
                "[authz::entities::malformed] `Document(\"d\")` is malformed: `parents[2]` expected `{\"type\": ..., \"id\": ...}`, found the string `\"x\"` (help: an entity is written `{\"type\": \"User\", \"id\": \"alice\", \"attrs\": {...}, \"parents\": [...]}`)",
            ],
        );
        check(
            r#"[{"type": "Tenant", "id": "t", "parents": [{"type": "Tenant", "id": "u"}], "attrs": {"name": "T", "plan": "free", "viewers": {"type": "Role", "id": "v"}, "editors": {"type": "Role", "id": "e"}, "admins": {"type": "Role", "id": "a"}}}]"#,
            &["[authz::entities::parent_type] `Tenant(\"t\")` cannot be in `Tenant(\"u\")`: a `Tenant` cannot be in any entity"],
        );
    }

    #[test]
    fn duplicate_entities_are_rejected() {
        let json = format!(
            "[{}, {}]",
            user("alice", ALICE).trim_matches(['[', ']']),
            user("alice", ALICE).trim_matches(['[', ']'])
        );
        check(
            &json,
            &["[authz::entities::duplicate] `User(\"alice\")` is given more than once (help: it is first given at index 0)"],
        );
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        check(
            &user(
                "alice",
                &ALICE.replace(r#""clearance": 3"#, r#""clearance": 3, "clearance": 4"#),
            ),
            &["[authz::entities::duplicate_key] duplicate key `clearance` at line 1, column 130"],
        );
    }

    #[test]
    fn malformed_entity_objects_are_named() {
        check(
            r#"[{"type": "User", "id": 7}, {"id": "x"}, {"type": "User", "id": "bob", "atrs": {}, "parents": {}}, 5]"#,
            &[
                "[authz::entities::malformed] the entity at index 0 is malformed: `id` must be a string, found the integer `7` (help: an entity is written `{\"type\": \"User\", \"id\": \"alice\", \"attrs\": {...}, \"parents\": [...]}`)",
                "[authz::entities::malformed] the entity at index 1 is malformed: `type` is missing (help: an entity is written `{\"type\": \"User\", \"id\": \"alice\", \"attrs\": {...}, \"parents\": [...]}`)",
                "[authz::entities::malformed] the entity at index 2 is malformed: unknown member `atrs`; an entity has `type`, `id`, `attrs` and `parents` (did you mean `attrs`?) (help: an entity is written `{\"type\": \"User\", \"id\": \"alice\", \"attrs\": {...}, \"parents\": [...]}`)",
                "[authz::entities::missing_attribute] `User(\"bob\")` is missing the required attribute `tenant` of type `Tenant`",
                "[authz::entities::missing_attribute] `User(\"bob\")` is missing the required attribute `email` of type `String`",
                "[authz::entities::missing_attribute] `User(\"bob\")` is missing the required attribute `clearance` of type `Long`",
                "[authz::entities::missing_attribute] `User(\"bob\")` is missing the required attribute `trainings` of type `Set<String>`",
                "[authz::entities::malformed] `User(\"bob\")` is malformed: `parents` must be an array, found an object (help: an entity is written `{\"type\": \"User\", \"id\": \"alice\", \"attrs\": {...}, \"parents\": [...]}`)",
                "[authz::entities::malformed] the entity at index 3 is malformed: expected an object, found the integer `5` (help: an entity is written `{\"type\": \"User\", \"id\": \"alice\", \"attrs\": {...}, \"parents\": [...]}`)",
            ],
        );
    }

    #[test]
    fn errors_are_collected_and_bounded() {
        let one = r#"{"type": "Nope", "id": "x"}"#;
        let json = format!("[{}]", vec![one; 150].join(","));
        let errors = errors(&json);
        assert_eq!(errors.len(), MAX_ERRORS + 1);
        assert_eq!(
            errors.last().unwrap(),
            "[authz::entities::too_many_errors] too many errors; stopped after 100"
        );
    }

    #[test]
    fn mutated_files_never_panic() {
        let program = fixture::program();
        let mut rng = fixture::Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..300 {
            let mutant = fixture::mutate(&mut rng, DOCS_ENTITIES);
            if let Err(errors) = load_entities(&program, &mutant) {
                assert!(!errors.is_empty());
                assert!(errors.len() <= MAX_ERRORS + 1);
            }
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(200_000);
        check(
            &deep,
            &["[authz::entities::too_deep] JSON nested deeper than 33 levels at line 1, column 34"],
        );
        let grid = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let found = errors(&device(&format!(r#""grid": {grid}"#)).replace(r#""grid": [], "#, ""));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("[authz::entities::too_deep]"),
            "{found:?}"
        );
        // Nesting within the limit is checked against the type as usual.
        let grid = format!("{}1{}", "[".repeat(30), "]".repeat(30));
        let found = errors(&device(&format!(r#""grid": {grid}"#)).replace(r#""grid": [], "#, ""));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].contains("`grid[0][0]` of `Device(\"d1\")`: expected `Long`, found an array"),
            "{found:?}"
        );
    }
}
