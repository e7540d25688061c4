//! Reading typed values: a JSON tree checked against a [`ValueType`] of the schema becomes a
//! [`Value`], its sets, records and IP ranges written into one [`ValuePool`].
//!
//! The reader keeps the path of the value it is reading (`address.zip`, `roles[2]`) and records
//! every problem with it as an [`Issue`], going on with the siblings, so that one pass reports
//! all of them. The entities and request loaders turn issues into their own errors. Sets are
//! sorted and deduplicated with [`eval::compare`], as the evaluator expects.

use std::cmp::Ordering;
use std::fmt::Write as _;

use crate::eval::{self, Pools};
use crate::ext;
use crate::intern::{Interner, Sym};
use crate::json::tree::Json;
use crate::request::RequestStrings;
use crate::schema::{FieldDef, Schema, ValueType};
use crate::suggest::suggest;
use crate::value::{EntityUid, LayoutId, PoolId, Value, ValuePool};

/// What is wrong with the value at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Issue {
    /// A required field is missing; `expected` is its type.
    Missing { expected: String },
    /// The field is not in the layout.
    Unknown { suggestion: Option<String> },
    /// The value has the wrong kind.
    Mismatch {
        expected: String,
        found: String,
        help: Option<String>,
    },
    /// An integer beyond 64 bits where a `Long` is expected.
    OutOfRange { text: String },
    /// A string that does not parse as the extension type.
    BadLiteral {
        ty: &'static str,
        text: String,
        message: String,
    },
    /// An entity reference names a type the schema does not have.
    UnknownEntityType {
        name: String,
        suggestion: Option<String>,
    },
    /// A container nested deeper than the limit.
    TooDeep,
}

/// An issue and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PathIssue {
    /// The path, such as `context.address.zip` or `roles[2]`.
    pub(crate) path: String,
    /// What is wrong there.
    pub(crate) issue: Issue,
}

/// Makes symbols for strings read from JSON.
pub(crate) trait Symbols {
    /// The symbol of `text`.
    fn sym(&mut self, text: &str) -> Sym;
}

impl<T: Symbols + ?Sized> Symbols for &mut T {
    fn sym(&mut self, text: &str) -> Sym {
        (**self).sym(text)
    }
}

impl Symbols for Interner {
    fn sym(&mut self, text: &str) -> Sym {
        self.intern(text)
    }
}

/// The symbols of a request: interned ones where the table has them, request-local ones
/// otherwise; the shared table never grows.
pub(crate) struct RequestSymbols<'a> {
    pub(crate) interner: &'a Interner,
    pub(crate) strings: &'a mut RequestStrings,
}

impl Symbols for RequestSymbols<'_> {
    fn sym(&mut self, text: &str) -> Sym {
        self.strings.sym(self.interner, text)
    }
}

/// One pool seen as all pools: values being read refer only to the pool they are read into.
struct OnePool<'a> {
    pool: &'a ValuePool,
    schema: &'a Schema,
}

impl Pools for OnePool<'_> {
    fn pool(&self, _pool: PoolId) -> &ValuePool {
        self.pool
    }

    fn layout_attrs(&self, layout: LayoutId) -> &[FieldDef] {
        self.schema
            .layout(layout)
            .map_or(&[], |layout| &layout.fields)
    }
}

/// How an entity reference is malformed: the member it concerns (`type` or `id`), if any, and
/// the issue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RefProblem {
    pub(crate) member: Option<&'static str>,
    pub(crate) issue: Issue,
}

/// The help line shown with a malformed entity reference.
pub(crate) const REF_HELP: &str =
    "an entity reference is written `{\"type\": \"User\", \"id\": \"alice\"}`";

/// The argument of Cedar's extension form `{"__extn": {"fn": F, "arg": "..."}}` when `F` makes
/// a value of type `ty`, as authz writes that value: a Cedar date alone (`"2024-01-31"`) is
/// midnight UTC, and an offset `+hhmm` is `+hh:mm`.
fn cedar_extension(json: &Json, ty: &ValueType) -> Option<Json> {
    let Json::Object(members) = json else {
        return None;
    };
    let [(key, Json::Object(extension))] = members.as_slice() else {
        return None;
    };
    if key != "__extn" {
        return None;
    }
    let function = match Json::member(extension, "fn") {
        Some(Json::Str(function)) => function.as_str(),
        _ => return None,
    };
    let Some(Json::Str(arg)) = Json::member(extension, "arg") else {
        return None;
    };
    match (ty, function) {
        (ValueType::Ip, "ip" | "ipaddr") | (ValueType::Duration, "duration") => {
            Some(Json::Str(arg.clone()))
        }
        (ValueType::Timestamp, "datetime") => Some(Json::Str(super::cedar_datetime(arg))),
        _ => None,
    }
}

/// The type name and id of an entity reference `{"type": "User", "id": "alice"}`, also in
/// Cedar's wrapped form `{"__entity": {"type": "User", "id": "alice"}}`.
pub(crate) fn entity_ref(json: &Json) -> Result<(&str, &str), RefProblem> {
    if let Json::Object(members) = json {
        if let [(key, inner @ Json::Object(_))] = members.as_slice() {
            if key == "__entity" {
                return entity_ref(inner);
            }
        }
    }
    let Json::Object(members) = json else {
        return Err(RefProblem {
            member: None,
            issue: Issue::Mismatch {
                expected: "{\"type\": ..., \"id\": ...}".to_owned(),
                found: json.describe(),
                help: Some(REF_HELP.to_owned()),
            },
        });
    };
    for (key, _) in members {
        if key != "type" && key != "id" {
            return Err(RefProblem {
                member: None,
                issue: Issue::Mismatch {
                    expected: "{\"type\": ..., \"id\": ...}".to_owned(),
                    found: format!("an object with the member `{key}`"),
                    help: Some(REF_HELP.to_owned()),
                },
            });
        }
    }
    let ty = ref_member(members, "type")?;
    let id = ref_member(members, "id")?;
    Ok((ty, id))
}

fn ref_member<'a>(
    members: &'a [(String, Json)],
    name: &'static str,
) -> Result<&'a str, RefProblem> {
    match Json::member(members, name) {
        Some(Json::Str(text)) => Ok(text),
        Some(other) => Err(RefProblem {
            member: Some(name),
            issue: Issue::Mismatch {
                expected: "String".to_owned(),
                found: other.describe(),
                help: None,
            },
        }),
        None => Err(RefProblem {
            member: Some(name),
            issue: Issue::Missing {
                expected: "String".to_owned(),
            },
        }),
    }
}

/// The entity types other than the action type, for suggestions.
pub(crate) fn entity_type_names(schema: &Schema) -> impl Iterator<Item = &str> {
    schema
        .entity_types
        .iter()
        .enumerate()
        .filter(move |(index, _)| *index != schema.action_type.0 as usize)
        .map(|(_, def)| def.name.as_str())
}

/// Reads values of one schema into one pool.
pub(crate) struct Reader<'a, S> {
    schema: &'a Schema,
    pool: &'a mut ValuePool,
    pool_id: PoolId,
    symbols: S,
    path: String,
    issues: Vec<PathIssue>,
}

impl<'a, S: Symbols> Reader<'a, S> {
    /// A reader whose paths start with `root` (empty for none).
    pub(crate) fn new(
        schema: &'a Schema,
        pool: &'a mut ValuePool,
        pool_id: PoolId,
        symbols: S,
        root: &str,
    ) -> Reader<'a, S> {
        Reader {
            schema,
            pool,
            pool_id,
            symbols,
            path: root.to_owned(),
            issues: Vec::new(),
        }
    }

    /// The issues found so far.
    pub(crate) fn into_issues(self) -> Vec<PathIssue> {
        self.issues
    }

    /// Reads the members of an object as the fields of `layout`: one value per field, in layout
    /// order, [`Value::Absent`] for missing optional fields; `None` after recording issues.
    pub(crate) fn fields(
        &mut self,
        layout: LayoutId,
        members: &[(String, Json)],
    ) -> Option<Vec<Value>> {
        let schema = self.schema;
        let fields: &[FieldDef] = schema.layout(layout).map_or(&[], |layout| &layout.fields);
        let mut values = vec![Value::Absent; fields.len()];
        let mut given = vec![false; fields.len()];
        let mut ok = true;
        for (key, member) in members {
            let slot = schema
                .attr_id(key)
                .and_then(|attr| schema.layout(layout)?.slot(attr));
            let length = self.enter_field(key);
            match slot.and_then(|slot| Some((slot, fields.get(slot)?))) {
                None => {
                    let names = fields.iter().map(|field| schema.attr_name(field.attr));
                    let suggestion = suggest(key, names);
                    self.report(Issue::Unknown { suggestion });
                    ok = false;
                }
                Some((slot, field)) => {
                    if let Some(entry) = given.get_mut(slot) {
                        *entry = true;
                    }
                    match self.value(member, &field.ty) {
                        Some(value) => {
                            if let Some(entry) = values.get_mut(slot) {
                                *entry = value;
                            }
                        }
                        None => ok = false,
                    }
                }
            }
            self.path.truncate(length);
        }
        for (field, given) in fields.iter().zip(&given) {
            if field.optional || *given {
                continue;
            }
            let length = self.enter_field(schema.attr_name(field.attr));
            let expected = type_text(schema, &field.ty);
            self.report(Issue::Missing { expected });
            self.path.truncate(length);
            ok = false;
        }
        ok.then_some(values)
    }

    /// Reads one value of type `ty`; `None` after recording issues. Cedar's extension form
    /// `{"__extn": {"fn": "ip", "arg": "10.0.0.1"}}` is read as its argument.
    pub(crate) fn value(&mut self, json: &Json, ty: &ValueType) -> Option<Value> {
        if let Some(arg) = cedar_extension(json, ty) {
            return self.value(&arg, ty);
        }
        match (ty, json) {
            (_, Json::TooDeep) => self.fail(Issue::TooDeep),
            (ValueType::Bool, Json::Bool(value)) => Some(Value::Bool(*value)),
            (ValueType::Long, Json::Int(value)) => Some(Value::Long(*value)),
            (ValueType::Long, Json::BigInt(text)) => {
                self.fail(Issue::OutOfRange { text: text.clone() })
            }
            (ValueType::String, Json::Str(text)) => Some(Value::Str(self.symbols.sym(text))),
            (ValueType::Set(element), Json::Array(items)) => self.set(element, items),
            (ValueType::Record(layout), Json::Object(members)) => {
                let fields = self.fields(*layout, members)?;
                let record = self.pool.push_record(self.pool_id, *layout, &fields);
                Some(Value::Record(record))
            }
            (ValueType::Entity(types), _) => self.entity(json, types),
            (ValueType::Ip, Json::Str(text)) => match ext::parse_ip(text) {
                Ok(ip) => Some(Value::Ip(self.pool.push_ip(self.pool_id, ip))),
                Err(error) => self.bad_literal("Ip", text, error.to_string()),
            },
            (ValueType::Timestamp, Json::Str(text)) => match ext::parse_timestamp(text) {
                Ok(millis) => Some(Value::Timestamp(millis)),
                Err(error) => self.bad_literal("Timestamp", text, error.to_string()),
            },
            (ValueType::Duration, Json::Str(text)) => match ext::parse_duration(text) {
                Ok(millis) => Some(Value::Duration(millis)),
                Err(error) => self.bad_literal("Duration", text, error.to_string()),
            },
            (_, _) => {
                let help = match ty {
                    ValueType::Ip => Some("an `Ip` is written as a string such as `\"10.0.0.1\"` or `\"10.0.0.0/8\"`"),
                    ValueType::Timestamp => Some("a `Timestamp` is written as an RFC 3339 string such as `\"2024-01-31T12:00:00Z\"`"),
                    ValueType::Duration => Some("a `Duration` is written as a string such as `\"1h30m\"`"),
                    ValueType::Set(_) => Some("a set is written as a JSON array"),
                    ValueType::Record(_) => Some("a record is written as a JSON object"),
                    ValueType::Long if matches!(json, Json::Float(_)) => Some("a `Long` is a whole number"),
                    _ => None,
                };
                self.fail(Issue::Mismatch {
                    expected: type_text(self.schema, ty),
                    found: json.describe(),
                    help: help.map(str::to_owned),
                })
            }
        }
    }

    fn set(&mut self, element: &ValueType, items: &[Json]) -> Option<Value> {
        let mut values = Vec::with_capacity(items.len());
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            let length = self.path.len();
            // Writing to a `String` cannot fail.
            let _ = write!(self.path, "[{index}]");
            match self.value(item, element) {
                Some(value) => values.push(value),
                None => ok = false,
            }
            self.path.truncate(length);
        }
        if !ok {
            return None;
        }
        let pools = OnePool {
            pool: self.pool,
            schema: self.schema,
        };
        values.sort_by(|a, b| eval::compare(&pools, *a, *b));
        values.dedup_by(|a, b| eval::compare(&pools, *a, *b) == Ordering::Equal);
        Some(Value::Set(self.pool.push_set(self.pool_id, &values)))
    }

    fn entity(&mut self, json: &Json, types: &[crate::value::TypeId]) -> Option<Value> {
        let (type_name, id) = match entity_ref(json) {
            Ok(parts) => parts,
            Err(problem) => {
                let length = match problem.member {
                    Some(member) => self.enter_field(member),
                    None => self.path.len(),
                };
                self.report(problem.issue);
                self.path.truncate(length);
                return None;
            }
        };
        let schema = self.schema;
        let Some(ty) = schema.type_id(type_name) else {
            let length = self.enter_field("type");
            let suggestion = suggest(type_name, entity_type_names(schema));
            self.report(Issue::UnknownEntityType {
                name: type_name.to_owned(),
                suggestion,
            });
            self.path.truncate(length);
            return None;
        };
        if !types.contains(&ty) {
            return self.fail(Issue::Mismatch {
                expected: entity_types_text(schema, types),
                found: format!("an entity of type `{type_name}`"),
                help: None,
            });
        }
        let id = self.symbols.sym(id);
        Some(Value::Entity(EntityUid { ty, id }))
    }

    fn bad_literal(&mut self, ty: &'static str, text: &str, message: String) -> Option<Value> {
        self.fail(Issue::BadLiteral {
            ty,
            text: text.to_owned(),
            message,
        })
    }

    /// Appends `.name` (or `name` at the root) to the path and returns the old length.
    fn enter_field(&mut self, name: &str) -> usize {
        let length = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(name);
        length
    }

    fn report(&mut self, issue: Issue) {
        self.issues.push(PathIssue {
            path: self.path.clone(),
            issue,
        });
    }

    fn fail(&mut self, issue: Issue) -> Option<Value> {
        self.report(issue);
        None
    }
}

/// A type as written in the language, such as `Set<String>` or `{ zip: Long, city?: String }`.
pub(crate) fn type_text(schema: &Schema, ty: &ValueType) -> String {
    let mut out = String::new();
    write_type(schema, ty, 0, &mut out);
    out
}

/// Record types are spelled out to this depth (layouts may be recursive).
const MAX_TYPE_TEXT_DEPTH: usize = 3;

fn write_type(schema: &Schema, ty: &ValueType, depth: usize, out: &mut String) {
    match ty {
        ValueType::Bool => out.push_str("Bool"),
        ValueType::Long => out.push_str("Long"),
        ValueType::String => out.push_str("String"),
        ValueType::Ip => out.push_str("Ip"),
        ValueType::Timestamp => out.push_str("Timestamp"),
        ValueType::Duration => out.push_str("Duration"),
        ValueType::Set(element) => {
            out.push_str("Set<");
            write_type(schema, element, depth, out);
            out.push('>');
        }
        ValueType::Entity(types) => {
            for (index, ty) in types.iter().enumerate() {
                if index > 0 {
                    out.push_str(" | ");
                }
                out.push_str(schema.type_name(*ty));
            }
        }
        ValueType::Record(layout) => {
            let fields: &[FieldDef] = schema.layout(*layout).map_or(&[], |layout| &layout.fields);
            if fields.is_empty() {
                out.push_str("{}");
                return;
            }
            if depth >= MAX_TYPE_TEXT_DEPTH {
                out.push_str("{ ... }");
                return;
            }
            out.push_str("{ ");
            for (index, field) in fields.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                out.push_str(schema.attr_name(field.attr));
                out.push_str(if field.optional { "?: " } else { ": " });
                write_type(schema, &field.ty, depth + 1, out);
            }
            out.push_str(" }");
        }
    }
}

/// Entity types as a list for messages: `User`, or `User | Service`.
pub(crate) fn entity_types_text(schema: &Schema, types: &[crate::value::TypeId]) -> String {
    type_text(schema, &ValueType::Entity(types.to_vec()))
}
