//! Loading the entity store from the entities JSON of `DESIGN.md`:
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

use crate::json::reader::{self, entity_ref, Issue, PathIssue, Reader};
use crate::json::suggest::{did_you_mean, suggest};
use crate::json::tree::{self, Json, Limits, ParseError};
use crate::json::MAX_DEPTH;
use crate::program::Program;
use crate::schema::Schema;
use crate::store::EntityStore;
use crate::value::{EntityUid, TypeId};

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
    let mut loader = Loader {
        schema: &program.schema,
        store: EntityStore::new(program.interner.clone()),
        first_index: HashMap::new(),
        errors: Vec::new(),
        truncated: false,
    };
    for (index, item) in items.iter().enumerate() {
        if loader.truncated {
            break;
        }
        loader.entity(index, item);
    }
    let Loader {
        mut store,
        mut errors,
        truncated,
        ..
    } = loader;
    if truncated {
        errors.push(EntityError::TooManyErrors { limit: MAX_ERRORS });
    }
    if !errors.is_empty() {
        return Err(errors);
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

struct Loader<'a> {
    schema: &'a Schema,
    store: EntityStore,
    first_index: HashMap<EntityUid, usize>,
    errors: Vec<EntityError>,
    truncated: bool,
}

/// The members an entity object may have.
const ENTITY_MEMBERS: [&str; 4] = ["type", "id", "attrs", "parents"];

impl Loader<'_> {
    fn report(&mut self, error: EntityError) {
        if self.errors.len() >= MAX_ERRORS {
            self.truncated = true;
            return;
        }
        self.errors.push(error);
    }

    fn malformed(&mut self, entity: &str, message: String) {
        self.report(EntityError::Malformed {
            entity: entity.to_owned(),
            message,
        });
    }

    /// Validates and adds the entity at `index`.
    fn entity(&mut self, index: usize, item: &Json) {
        let position = format!("the entity at index {index}");
        let Json::Object(members) = item else {
            let message = format!("expected an object, found {}", item.describe());
            return self.malformed(&position, message);
        };
        let mut shape_ok = true;
        for (key, _) in members {
            if !ENTITY_MEMBERS.contains(&key.as_str()) {
                let mut message = format!(
                    "unknown member `{key}`; an entity has `type`, `id`, `attrs` and `parents`"
                );
                if let Some(name) = suggest(key, ENTITY_MEMBERS) {
                    message.push_str(&format!(" (did you mean `{name}`?)"));
                }
                self.malformed(&position, message);
                shape_ok = false;
            }
        }
        let type_name = self.string_member(&position, members, "type");
        let id = self.string_member(&position, members, "id");
        let (Some(type_name), Some(id)) = (type_name, id) else {
            return;
        };
        let schema = self.schema;
        let Some(ty) = schema.type_id(type_name) else {
            let help = did_you_mean(suggest(type_name, reader::entity_type_names(schema)));
            return self.report(EntityError::UnknownType {
                site: position,
                name: type_name.to_owned(),
                help,
            });
        };
        let label = entity_label(type_name, id);
        if ty == schema.action_type {
            return self.report(EntityError::ActionEntity {
                entity: label,
                name: type_name.to_owned(),
            });
        }
        let uid = EntityUid {
            ty,
            id: self.store.interner.intern(id),
        };
        if let Some(first) = self.first_index.get(&uid) {
            let help = Some(format!("it is first given at index {first}"));
            return self.report(EntityError::Duplicate {
                entity: label,
                help,
            });
        }
        self.first_index.insert(uid, index);

        let attrs = self.attributes(&label, ty, members);
        let parents = self.parents(&label, ty, members);
        let (Some((attrs_start, attrs_len)), Some(parents), true) = (attrs, parents, shape_ok)
        else {
            return;
        };
        if self.store.pool.values.len() > u32::MAX as usize {
            return self.malformed(&label, "the entities file is too large".to_owned());
        }
        // Duplicates were refused above, so insertion cannot fail.
        let _ = self.store.insert(uid, attrs_start, attrs_len, parents);
    }

    /// A member that must be a string.
    fn string_member<'j>(
        &mut self,
        entity: &str,
        members: &'j [(String, Json)],
        name: &str,
    ) -> Option<&'j str> {
        match Json::member(members, name) {
            Some(Json::Str(text)) => Some(text),
            Some(other) => {
                let message = format!("`{name}` must be a string, found {}", other.describe());
                self.malformed(entity, message);
                None
            }
            None => {
                self.malformed(entity, format!("`{name}` is missing"));
                None
            }
        }
    }

    /// Reads `attrs` into the store's pool: the offset and number of attribute slots.
    fn attributes(
        &mut self,
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
                let message = format!("`attrs` must be an object, found {}", other.describe());
                self.malformed(label, message);
                return None;
            }
        };
        let store = &mut self.store;
        let mut reader = Reader::new(
            schema,
            &mut store.pool,
            EntityStore::POOL,
            &mut store.interner,
            "",
        );
        let fields = reader.fields(layout, attrs);
        let issues = reader.into_issues();
        for issue in issues {
            let error = attribute_error(label, issue);
            self.report(error);
        }
        let fields = fields?;
        let record = self
            .store
            .pool
            .push_record(EntityStore::POOL, layout, &fields);
        Some((record.start, u32::try_from(fields.len()).ok()?))
    }

    /// Reads `parents`, checking their types against the schema.
    fn parents(
        &mut self,
        label: &str,
        ty: TypeId,
        members: &[(String, Json)],
    ) -> Option<Vec<EntityUid>> {
        let items = match Json::member(members, "parents") {
            None => return Some(Vec::new()),
            Some(Json::Array(items)) => items,
            Some(other) => {
                let message = format!("`parents` must be an array, found {}", other.describe());
                self.malformed(label, message);
                return None;
            }
        };
        let schema = self.schema;
        let allowed: &[TypeId] = schema.entity_type(ty).map_or(&[], |def| &def.parents);
        let mut parents = Vec::with_capacity(items.len());
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            let (parent_type, parent_id) = match entity_ref(item) {
                Ok(parts) => parts,
                Err(problem) => {
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
                    self.malformed(label, format!("`{at}` {what}"));
                    ok = false;
                    continue;
                }
            };
            let Some(parent_ty) = schema.type_id(parent_type) else {
                let help = did_you_mean(suggest(parent_type, reader::entity_type_names(schema)));
                self.report(EntityError::UnknownType {
                    site: format!("`parents[{index}]` of {label}"),
                    name: parent_type.to_owned(),
                    help,
                });
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
                self.report(EntityError::ParentType {
                    entity: label.to_owned(),
                    parent: format!("{parent_type}({parent_id:?})"),
                    rule,
                });
                ok = false;
                continue;
            }
            let uid = EntityUid {
                ty: parent_ty,
                id: self.store.interner.intern(parent_id),
            };
            if !parents.contains(&uid) {
                parents.push(uid);
            }
        }
        ok.then_some(parents)
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
