//! Loading a decision request from the JSON of `docs/language.md` ("Data"):
//! `{"principal": {"type": "User", "id": "alice"}, "action": "read",
//! "resource": {"type": "Order", "id": "o1"}, "context": {...}}`.
//!
//! The request is validated against the program's schema: the principal's and the resource's
//! types exist, the action exists and takes those types, and the context has exactly the fields
//! of the action's context layout with values of their types. Every error names the JSON field
//! it concerns (`principal.type`, `context.amount`), so that the decision API can answer 400
//! naming it. An `explain` member (a boolean) is accepted and left to the caller; `context` may
//! be left out when the action's context has no required field.
//!
//! An `entities` member, in the form of the entities file, brings entities for this request only:
//! they are validated exactly as that file's (by the same loader), their errors named as
//! `entities[3].attrs.age`, and they become the request's [`Overlay`] over the store. A request
//! without entities (or with an empty list) has none, and is decided as before.
//!
//! Requests come from the network, so their size is bounded: at most [`MAX_REQUEST_BYTES`] of
//! text, [`MAX_REQUEST_VALUES`] JSON values and [`MAX_DEPTH`] levels of nesting. Strings become
//! the store's symbols where it has them and request-local ones otherwise (the shared interner
//! never grows); sets, records and IP ranges, also those of the request's entities, go into the
//! request's own pool.

use std::fmt;

use miette::Diagnostic;

use crate::json::entities::{EntityProblem, Kind, Loader, Problem};
use crate::json::reader::{self, entity_ref, Issue, PathIssue, Reader, RequestSymbols};
use crate::json::tree::{self, Json, Limits, ParseError};
use crate::json::MAX_DEPTH;
use crate::overlay::OverlayEntity;
use crate::program::Program;
use crate::request::Request;
use crate::request_builder::{applicability, RequestBuilder};
use crate::schema::{ActionDef, ValueType};
use crate::store::EntityStore;
use crate::suggest::{did_you_mean, suggest};
use crate::value::{EntityUid, RecordRef, Value};

/// The longest request text accepted, in bytes.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// The most JSON values (containers included) in one request.
pub const MAX_REQUEST_VALUES: usize = 10_000;

/// At most this many errors are reported for one request.
pub const MAX_REQUEST_ERRORS: usize = 20;

/// The kinds of request errors, each with a stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestErrorKind {
    /// The text is not well-formed JSON.
    Syntax,
    /// The request is larger than the limits.
    TooLarge,
    /// Arrays and objects nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// An object has the same key twice.
    DuplicateKey,
    /// A required member is missing (`principal`, `action`, `resource`, `principal.id`, ...).
    MissingField,
    /// A member that the request or the action's context does not have.
    UnknownField,
    /// A value of the wrong kind or type.
    TypeMismatch,
    /// An entity type the schema does not have.
    UnknownType,
    /// An action the schema does not have.
    UnknownAction,
    /// The action does not take the principal's or the resource's type.
    NotApplicable,
    /// An integer that does not fit in a `Long`.
    LongOutOfRange,
    /// A string that is not a valid `Ip`, `Timestamp` or `Duration`.
    BadLiteral,
    /// The request gives the same entity twice in `entities`.
    DuplicateEntity,
    /// An entity in `entities` has a parent of a type its type may not be in.
    ParentType,
}

impl RequestErrorKind {
    /// The stable code, such as `authz::request::unknown_action`.
    pub fn code(self) -> &'static str {
        match self {
            RequestErrorKind::Syntax => "authz::request::syntax",
            RequestErrorKind::TooLarge => "authz::request::too_large",
            RequestErrorKind::TooDeep => "authz::request::too_deep",
            RequestErrorKind::DuplicateKey => "authz::request::duplicate_key",
            RequestErrorKind::MissingField => "authz::request::missing_field",
            RequestErrorKind::UnknownField => "authz::request::unknown_field",
            RequestErrorKind::TypeMismatch => "authz::request::type_mismatch",
            RequestErrorKind::UnknownType => "authz::request::unknown_type",
            RequestErrorKind::UnknownAction => "authz::request::unknown_action",
            RequestErrorKind::NotApplicable => "authz::request::not_applicable",
            RequestErrorKind::LongOutOfRange => "authz::request::long_out_of_range",
            RequestErrorKind::BadLiteral => "authz::request::bad_literal",
            RequestErrorKind::DuplicateEntity => "authz::request::duplicate_entity",
            RequestErrorKind::ParentType => "authz::request::parent_type",
        }
    }
}

/// Why a request is invalid, naming the JSON field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestError {
    /// The kind, which gives the code.
    pub kind: RequestErrorKind,
    /// The field as a path from the request's root, such as `principal.type`, `action` or
    /// `context.address.zip`; empty when the error concerns the whole text (malformed JSON).
    pub field: String,
    /// What is wrong, lower-case, without the field.
    pub message: String,
    /// A suggestion, such as "did you mean `read`?".
    pub help: Option<String>,
}

impl RequestError {
    /// An error of `kind` at `field`.
    pub fn new(
        kind: RequestErrorKind,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        RequestError {
            kind,
            field: field.into(),
            message: message.into(),
            help: None,
        }
    }

    fn with_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    /// The stable code, such as `authz::request::unknown_action`.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "`{}`: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for RequestError {}

impl Diagnostic for RequestError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.kind.code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn fmt::Display + 'a>)
    }
}

/// Loads and validates a request from its JSON text. `store` must be the entity store the
/// request will be decided against: request strings become its symbols.
pub fn load_request(
    program: &Program,
    store: &EntityStore,
    json: &str,
) -> Result<Request, Vec<RequestError>> {
    load_request_within(program, store, json, MAX_REQUEST_BYTES)
}

/// [`load_request`] for a caller that bounds the text itself (a server with its own body limit):
/// at most `max_bytes` of text, and the same limits on values and nesting.
pub fn load_request_within(
    program: &Program,
    store: &EntityStore,
    json: &str,
    max_bytes: usize,
) -> Result<Request, Vec<RequestError>> {
    if json.len() > max_bytes {
        return Err(vec![RequestError::new(
            RequestErrorKind::TooLarge,
            "",
            format!("the request is longer than {max_bytes} bytes"),
        )]);
    }
    let limits = Limits {
        max_depth: MAX_DEPTH,
        max_values: MAX_REQUEST_VALUES,
    };
    match tree::parse(json, limits) {
        Ok(tree) => Builder::new(program, store).request(&tree),
        Err(error) => Err(vec![parse_error(error)]),
    }
}

/// Loads and validates a request that the caller already parsed (one element of a batch, say).
/// The same limits apply: at most [`MAX_REQUEST_VALUES`] values and [`MAX_DEPTH`] levels.
pub fn load_request_value(
    program: &Program,
    store: &EntityStore,
    json: &serde_json::Value,
) -> Result<Request, Vec<RequestError>> {
    let limits = Limits {
        max_depth: MAX_DEPTH,
        max_values: MAX_REQUEST_VALUES,
    };
    match tree::from_value(json, limits) {
        Ok(tree) => Builder::new(program, store).request(&tree),
        Err(tree::TooManyValues) => Err(vec![RequestError::new(
            RequestErrorKind::TooLarge,
            "",
            format!("the request has more than {MAX_REQUEST_VALUES} values"),
        )]),
    }
}

/// Entities parsed and bounded once, to come with many requests (the principal a credential
/// defines, say): [`RequestBuilder::entities`] validates them against each request's schema
/// without reading JSON again.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedEntities {
    items: Vec<Json>,
}

impl PreparedEntities {
    /// The entities of `json`, an array in the entities format, within the request limits.
    pub fn from_value(json: &serde_json::Value) -> Result<PreparedEntities, RequestError> {
        let limits = Limits {
            max_depth: MAX_DEPTH,
            max_values: MAX_REQUEST_VALUES,
        };
        match tree::from_value(json, limits) {
            Ok(Json::Array(items)) => Ok(PreparedEntities { items }),
            Ok(other) => Err(RequestError::new(
                RequestErrorKind::TypeMismatch,
                "entities",
                format!("expected an array of entities, found {}", other.describe()),
            )),
            Err(tree::TooManyValues) => Err(RequestError::new(
                RequestErrorKind::TooLarge,
                "entities",
                format!("the entities have more than {MAX_REQUEST_VALUES} values"),
            )),
        }
    }

    pub(crate) fn items(&self) -> &[Json] {
        &self.items
    }
}

/// Validates a request's entities like the entities file, into `parts`' pool and strings;
/// `reported` errors were already found in the request, which bounds how many more are kept.
pub(crate) fn load_entities_into(
    parts: &mut RequestBuilder<'_>,
    items: &[Json],
    reported: usize,
) -> Result<Vec<OverlayEntity>, Vec<RequestError>> {
    let room = MAX_REQUEST_ERRORS.saturating_sub(reported);
    let mut loader = Loader::new(
        &parts.program.schema,
        &mut parts.pool,
        Request::POOL,
        RequestSymbols {
            interner: &parts.store.interner,
            strings: &mut parts.strings,
        },
        room,
    );
    loader.entities(items);
    let Loader {
        entities,
        problems,
        truncated,
        ..
    } = loader;
    if problems.is_empty() && !truncated {
        return Ok(entities
            .into_iter()
            .map(|entity| OverlayEntity {
                uid: entity.uid,
                attrs_start: entity.attrs_start,
                attrs_len: entity.attrs_len,
                parents: entity.parents.into_boxed_slice(),
            })
            .collect());
    }
    let mut errors: Vec<RequestError> = problems.into_iter().map(entity_problem_error).collect();
    if errors.is_empty() {
        errors.push(RequestError::new(
            RequestErrorKind::TooLarge,
            "entities",
            "the request's entities have too many problems to list",
        ));
    }
    Err(errors)
}

fn parse_error(error: ParseError) -> RequestError {
    match error {
        ParseError::Syntax {
            message,
            line,
            column,
        } => RequestError::new(
            RequestErrorKind::Syntax,
            "",
            format!("malformed JSON at line {line}, column {column}: {message}"),
        ),
        ParseError::TooDeep {
            limit,
            line,
            column,
        } => RequestError::new(
            RequestErrorKind::TooDeep,
            "",
            format!("JSON nested deeper than {limit} levels at line {line}, column {column}"),
        ),
        ParseError::DuplicateKey { key, line, column } => RequestError::new(
            RequestErrorKind::DuplicateKey,
            "",
            format!("duplicate key `{key}` at line {line}, column {column}"),
        ),
        ParseError::TooManyValues {
            limit,
            line,
            column,
        } => RequestError::new(
            RequestErrorKind::TooLarge,
            "",
            format!("more than {limit} values, at line {line}, column {column}"),
        ),
    }
}

/// The members a request may have.
const REQUEST_MEMBERS: [&str; 6] = [
    "principal",
    "action",
    "resource",
    "context",
    "entities",
    "explain",
];

/// Reads a request's JSON into a [`RequestBuilder`], collecting every error.
struct Builder<'a> {
    program: &'a Program,
    store: &'a EntityStore,
    parts: RequestBuilder<'a>,
    errors: Vec<RequestError>,
}

impl<'a> Builder<'a> {
    fn new(program: &'a Program, store: &'a EntityStore) -> Builder<'a> {
        Builder {
            program,
            store,
            parts: RequestBuilder::new(program, store),
            errors: Vec::new(),
        }
    }

    fn report(&mut self, error: RequestError) {
        if self.errors.len() < MAX_REQUEST_ERRORS {
            self.errors.push(error);
        }
    }

    fn request(mut self, tree: &Json) -> Result<Request, Vec<RequestError>> {
        let Json::Object(members) = tree else {
            self.report(RequestError::new(
                RequestErrorKind::TypeMismatch,
                "",
                format!("a request must be a JSON object, found {}", tree.describe()),
            ));
            return Err(self.errors);
        };
        for (key, _) in members {
            if !REQUEST_MEMBERS.contains(&key.as_str()) {
                let help = did_you_mean(suggest(key, REQUEST_MEMBERS));
                self.report(
                    RequestError::new(
                        RequestErrorKind::UnknownField,
                        key.as_str(),
                        "unknown member; a request has `principal`, `action`, `resource`, `context`, `entities` and `explain`",
                    )
                    .with_help(help),
                );
            }
        }
        if let Some(explain) = Json::member(members, "explain") {
            if !matches!(explain, Json::Bool(_)) {
                self.report(RequestError::new(
                    RequestErrorKind::TypeMismatch,
                    "explain",
                    format!("expected `Bool`, found {}", explain.describe()),
                ));
            }
        }
        let principal = self.entity(members, "principal");
        let resource = self.entity(members, "resource");
        let action = self.action(members);
        let context = match action {
            Some(action) => {
                self.applicable(action, principal, resource);
                self.context(members, action)
            }
            None => None,
        };
        let entities = self.entities(members);
        match (principal, action, resource, context, entities) {
            (Some(principal), Some(action), Some(resource), Some(context), Some(entities))
                if self.errors.is_empty() =>
            {
                Ok(self
                    .parts
                    .assemble(principal, action, resource, context, entities))
            }
            _ => Err(self.errors),
        }
    }

    /// The request's entities, validated like the entities file; empty when there are none,
    /// `None` after reporting errors.
    fn entities(&mut self, members: &[(String, Json)]) -> Option<Vec<OverlayEntity>> {
        let items = match Json::member(members, "entities") {
            None => return Some(Vec::new()),
            Some(Json::Array(items)) => items,
            Some(other) => {
                self.report(
                    RequestError::new(
                        RequestErrorKind::TypeMismatch,
                        "entities",
                        format!("expected an array of entities, found {}", other.describe()),
                    )
                    .with_help(Some(ENTITY_HELP.to_owned())),
                );
                return None;
            }
        };
        match load_entities_into(&mut self.parts, items, self.errors.len()) {
            Ok(entities) => Some(entities),
            Err(errors) => {
                for error in errors {
                    self.report(error);
                }
                None
            }
        }
    }

    /// The principal or the resource.
    fn entity(&mut self, members: &[(String, Json)], field: &str) -> Option<EntityUid> {
        let Some(json) = Json::member(members, field) else {
            self.report(RequestError::new(
                RequestErrorKind::MissingField,
                field,
                "missing; give it as `{\"type\": ..., \"id\": ...}`",
            ));
            return None;
        };
        let (type_name, id) = match entity_ref(json) {
            Ok(parts) => parts,
            Err(problem) => {
                let at = match problem.member {
                    Some(member) => format!("{field}.{member}"),
                    None => field.to_owned(),
                };
                let error = issue_error(PathIssue {
                    path: at,
                    issue: problem.issue,
                });
                self.report(error);
                return None;
            }
        };
        let schema = &self.program.schema;
        let ty = match schema.type_id(type_name) {
            Some(ty) if ty == schema.action_type => {
                self.report(RequestError::new(
                    RequestErrorKind::TypeMismatch,
                    format!("{field}.type"),
                    format!("`{type_name}` is the type of actions; the {field} must be an entity of a declared type"),
                ));
                return None;
            }
            Some(ty) => ty,
            None => {
                let help = did_you_mean(suggest(type_name, reader::entity_type_names(schema)));
                self.report(
                    RequestError::new(
                        RequestErrorKind::UnknownType,
                        format!("{field}.type"),
                        format!("unknown entity type `{type_name}`"),
                    )
                    .with_help(help),
                );
                return None;
            }
        };
        Some(self.parts.entity(ty, id))
    }

    fn action(&mut self, members: &[(String, Json)]) -> Option<&'a ActionDef> {
        let program = self.program;
        let schema = &program.schema;
        let name = match Json::member(members, "action") {
            Some(Json::Str(name)) => name.as_str(),
            // The entity form, `{"type": "Action", "id": "read"}`, is accepted too.
            Some(json @ Json::Object(_)) => match entity_ref(json) {
                Ok((type_name, id)) if schema.type_id(type_name) == Some(schema.action_type) => id,
                Ok((type_name, _)) => {
                    self.report(RequestError::new(
                        RequestErrorKind::TypeMismatch,
                        "action.type",
                        format!(
                            "expected `{}`, found `{type_name}`",
                            schema.type_name(schema.action_type)
                        ),
                    ));
                    return None;
                }
                Err(problem) => {
                    let at = match problem.member {
                        Some(member) => format!("action.{member}"),
                        None => "action".to_owned(),
                    };
                    let error = issue_error(PathIssue {
                        path: at,
                        issue: problem.issue,
                    });
                    self.report(error);
                    return None;
                }
            },
            Some(other) => {
                self.report(RequestError::new(
                    RequestErrorKind::TypeMismatch,
                    "action",
                    format!(
                        "expected the action's name as a string, found {}",
                        other.describe()
                    ),
                ));
                return None;
            }
            None => {
                self.report(RequestError::new(
                    RequestErrorKind::MissingField,
                    "action",
                    "missing; give the action's name, such as `\"read\"`",
                ));
                return None;
            }
        };
        let action = program
            .interner
            .get(name)
            .and_then(|sym| schema.action(sym));
        if action.is_none() {
            let names = schema.actions.iter().map(|action| action.name.as_str());
            let help = did_you_mean(suggest(name, names));
            self.report(
                RequestError::new(
                    RequestErrorKind::UnknownAction,
                    "action",
                    format!("unknown action `{name}`"),
                )
                .with_help(help),
            );
        }
        action
    }

    /// Whether the action takes the principal's and the resource's types.
    fn applicable(
        &mut self,
        action: &ActionDef,
        principal: Option<EntityUid>,
        resource: Option<EntityUid>,
    ) {
        for error in applicability(self.program, action, principal, resource) {
            self.report(error);
        }
    }

    fn context(&mut self, members: &[(String, Json)], action: &ActionDef) -> Option<RecordRef> {
        let empty = Json::Object(Vec::new());
        let json = Json::member(members, "context").unwrap_or(&empty);
        let program = self.program;
        let layout = action.context;
        let mut reader = Reader::new(
            &program.schema,
            &mut self.parts.pool,
            Request::POOL,
            RequestSymbols {
                interner: &self.store.interner,
                strings: &mut self.parts.strings,
            },
            "context",
        );
        let value = reader.value(json, &ValueType::Record(layout));
        let issues = reader.into_issues();
        for issue in issues {
            let error = issue_error(issue);
            self.report(error);
        }
        match value {
            Some(Value::Record(record)) => Some(record),
            _ => None,
        }
    }
}

/// How an entity is written, for help lines.
const ENTITY_HELP: &str = "an entity is written `{\"type\": \"User\", \"id\": \"alice\", \"attrs\": {...}, \"parents\": [...]}`";

/// `prefix` followed by a path relative to it: `prefix.path`, `prefix[2]`, or `prefix`.
fn join(prefix: &str, path: &str) -> String {
    if path.is_empty() {
        prefix.to_owned()
    } else if path.starts_with('[') {
        format!("{prefix}{path}")
    } else {
        format!("{prefix}.{path}")
    }
}

/// A request error for a problem with one of the request's entities, naming the field as
/// `entities[3].attrs.age`.
fn entity_problem_error(problem: EntityProblem) -> RequestError {
    let EntityProblem {
        index,
        label,
        problem,
    } = problem;
    let at = format!("entities[{index}]");
    match problem {
        Problem::NotAnObject { found } => RequestError::new(
            RequestErrorKind::TypeMismatch,
            at,
            format!("expected an entity object, found {found}"),
        )
        .with_help(Some(ENTITY_HELP.to_owned())),
        Problem::UnknownMember { key, suggestion } => RequestError::new(
            RequestErrorKind::UnknownField,
            join(&at, &key),
            "unknown member; an entity has `type`, `id`, `attrs` and `parents`",
        )
        .with_help(did_you_mean(suggestion)),
        Problem::MemberKind {
            member,
            expected,
            found,
        } => {
            let expected = match expected {
                Kind::String => "`String`",
                Kind::Object => "an object",
                Kind::Array => "an array",
            };
            RequestError::new(
                RequestErrorKind::TypeMismatch,
                join(&at, member),
                format!("expected {expected}, found {found}"),
            )
        }
        Problem::MissingMember { member } => RequestError::new(
            RequestErrorKind::MissingField,
            join(&at, member),
            "missing; expected `String`",
        ),
        Problem::UnknownType { name, suggestion } => RequestError::new(
            RequestErrorKind::UnknownType,
            join(&at, "type"),
            format!("unknown entity type `{name}`"),
        )
        .with_help(did_you_mean(suggestion)),
        Problem::ActionEntity { name } => RequestError::new(
            RequestErrorKind::TypeMismatch,
            join(&at, "type"),
            format!("`{name}` is the type of actions; actions are declared in the schema, not given as entities"),
        ),
        Problem::Duplicate { first } => RequestError::new(
            RequestErrorKind::DuplicateEntity,
            at,
            format!("{label} is given more than once"),
        )
        .with_help(Some(format!("it is first given at `entities[{first}]`"))),
        Problem::Attribute(issue) => issue_error(PathIssue {
            path: join(&join(&at, "attrs"), &issue.path),
            issue: issue.issue,
        }),
        Problem::TooLarge => RequestError::new(
            RequestErrorKind::TooLarge,
            at,
            "the request's entities are too large",
        ),
        Problem::ParentRef {
            index: parent,
            problem,
        } => {
            let parent = format!("{at}.parents[{parent}]");
            let path = match problem.member {
                Some(member) => join(&parent, member),
                None => parent,
            };
            issue_error(PathIssue {
                path,
                issue: problem.issue,
            })
        }
        Problem::ParentUnknownType {
            index: parent,
            name,
            suggestion,
        } => RequestError::new(
            RequestErrorKind::UnknownType,
            format!("{at}.parents[{parent}].type"),
            format!("unknown entity type `{name}`"),
        )
        .with_help(did_you_mean(suggestion)),
        Problem::ParentType {
            index: parent,
            parent: written,
            rule,
        } => RequestError::new(
            RequestErrorKind::ParentType,
            format!("{at}.parents[{parent}]"),
            format!("{label} cannot be in `{written}`: {rule}"),
        ),
    }
}

/// A request error for an issue found by the reader.
fn issue_error(issue: PathIssue) -> RequestError {
    let field = issue.path;
    match issue.issue {
        Issue::Missing { expected } => RequestError::new(
            RequestErrorKind::MissingField,
            field,
            format!("missing; expected `{expected}`"),
        ),
        Issue::Unknown { suggestion } => {
            RequestError::new(RequestErrorKind::UnknownField, field, "unknown field")
                .with_help(did_you_mean(suggestion))
        }
        Issue::Mismatch {
            expected,
            found,
            help,
        } => RequestError::new(
            RequestErrorKind::TypeMismatch,
            field,
            format!("expected `{expected}`, found {found}"),
        )
        .with_help(help),
        Issue::OutOfRange { text } => RequestError::new(
            RequestErrorKind::LongOutOfRange,
            field,
            format!("`{text}` is out of the range of `Long`"),
        )
        .with_help(Some(
            "a `Long` is a 64-bit signed integer, from -9223372036854775808 to 9223372036854775807"
                .to_owned(),
        )),
        Issue::BadLiteral { ty, text, message } => RequestError::new(
            RequestErrorKind::BadLiteral,
            field,
            format!("`{text}` is not a valid `{ty}`: {message}"),
        ),
        Issue::UnknownEntityType { name, suggestion } => RequestError::new(
            RequestErrorKind::UnknownType,
            field,
            format!("unknown entity type `{name}`"),
        )
        .with_help(did_you_mean(suggestion)),
        Issue::TooDeep => RequestError::new(
            RequestErrorKind::TooDeep,
            field,
            format!("nested deeper than {MAX_DEPTH} levels"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use miette::Diagnostic;

    use super::*;
    use crate::eval::{Evaluator, Scratch};
    use crate::json::fixture;
    use crate::program::{Expr, Var};

    fn setup() -> (Program, EntityStore) {
        let program = fixture::program();
        let store = fixture::store(&program);
        (program, store)
    }

    /// A refund request with `context` members spliced in after the required ones.
    fn refund(context: &str) -> String {
        let extra = if context.is_empty() {
            String::new()
        } else {
            format!(", {context}")
        };
        format!(
            r#"{{"principal": {{"type": "User", "id": "alice"}}, "action": "refund", "resource": {{"type": "Document", "id": "d1"}}, "context": {{"amount": 5, "mfa": true{extra}}}}}"#
        )
    }

    /// Loads `json` and returns the errors as `field: message [code] (help)`.
    fn errors(json: &str) -> Vec<String> {
        let (program, store) = setup();
        match load_request(&program, &store, json) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(render).collect(),
        }
    }

    fn render(error: &RequestError) -> String {
        let code = Diagnostic::code(error)
            .map(|code| code.to_string())
            .unwrap_or_default();
        let mut text = format!("{}: {} [{code}]", error.field, error.message);
        if let Some(help) = &error.help {
            text.push_str(&format!(" ({help})"));
        }
        text
    }

    fn check(json: &str, expected: &[&str]) {
        assert_eq!(errors(json), expected);
    }

    fn context_value(
        program: &Program,
        store: &EntityStore,
        request: &Request,
        name: &str,
    ) -> Value {
        let mut scratch = Scratch::new();
        let mut evaluator = Evaluator::new(program, store, request, &mut scratch);
        let attr = program.schema.attr_id(name).unwrap();
        evaluator
            .eval(&Expr::Attr(Box::new(Expr::Var(Var::Context)), attr))
            .unwrap()
    }

    #[test]
    fn a_valid_request_loads() {
        let (program, store) = setup();
        let json = refund(
            r#""origin": "10.1.2.3", "at": "2024-01-31T12:00:00Z", "window": "1h", "tags": ["vip", "pdf", "vip"], "shipping": {"zip": 7}, "approver": {"type": "User", "id": "alice"}"#,
        );
        let request = load_request(&program, &store, &json).unwrap();
        let alice = store.interner.get("alice").unwrap();
        assert_eq!(request.principal.id, alice);
        assert_eq!(
            request.principal.ty,
            program.schema.type_id("User").unwrap()
        );
        let refund = program.interner.get("refund").unwrap();
        assert_eq!(request.action, program.schema.action(refund).unwrap().uid);
        // `d1` is in no table: it gets a request-local symbol.
        assert!(request.resource.id.0 >= store.interner.len());
        assert_eq!(request.strings.resolve(request.resource.id), Some("d1"));

        assert_eq!(
            context_value(&program, &store, &request, "amount"),
            Value::Long(5)
        );
        assert_eq!(
            context_value(&program, &store, &request, "mfa"),
            Value::Bool(true)
        );
        assert_eq!(
            context_value(&program, &store, &request, "at"),
            Value::Timestamp(1_706_702_400_000)
        );
        assert_eq!(
            context_value(&program, &store, &request, "window"),
            Value::Duration(3_600_000)
        );
        assert_eq!(
            context_value(&program, &store, &request, "approver"),
            Value::Entity(request.principal)
        );
        let Value::Set(tags) = context_value(&program, &store, &request, "tags") else {
            panic!("tags is not a set");
        };
        assert_eq!(tags.len, 2);
        // The set is sorted as the evaluator's binary search expects.
        let mut scratch = Scratch::new();
        let mut evaluator = Evaluator::new(&program, &store, &request, &mut scratch);
        let tags_attr = program.schema.attr_id("tags").unwrap();
        let tags_expr = Expr::Attr(Box::new(Expr::Var(Var::Context)), tags_attr);
        let pdf = Value::Str(program.interner.get("pdf").unwrap());
        let contains = Expr::Contains(Box::new(tags_expr.clone()), Box::new(Expr::Lit(pdf)));
        assert_eq!(evaluator.eval(&contains), Ok(Value::Bool(true)));
        let origin = context_value(&program, &store, &request, "origin");
        let net = evaluator.ip(origin).unwrap();
        assert_eq!(net.to_owned().prefix, 32);
        let shipping = program.schema.attr_id("shipping").unwrap();
        let zip = program.schema.attr_id("zip").unwrap();
        let zip_expr = Expr::Attr(
            Box::new(Expr::Attr(Box::new(Expr::Var(Var::Context)), shipping)),
            zip,
        );
        assert_eq!(evaluator.eval(&zip_expr), Ok(Value::Long(7)));
        // Absent optional fields read as absent.
        let absent = program.schema.attr_id("city").unwrap();
        let city = Expr::Has(
            Box::new(Expr::Attr(Box::new(Expr::Var(Var::Context)), shipping)),
            absent,
        );
        assert_eq!(evaluator.eval(&city), Ok(Value::Bool(false)));
    }

    #[test]
    fn request_strings_are_shared_without_growing_the_interner() {
        let (program, store) = setup();
        let before = store.interner.len();
        let json = refund(r#""tags": ["acme", "new", "newer"]"#)
            .replace(r#""id": "d1""#, r#""id": "new""#);
        let request = load_request(&program, &store, &json).unwrap();
        assert_eq!(store.interner.len(), before);
        // The same text gets the same symbol, whether in an id or in the context.
        let new = request.resource.id;
        assert_eq!(request.strings.resolve(new), Some("new"));
        assert_eq!(request.strings.end(), before + 2);
        let Value::Set(tags) = context_value(&program, &store, &request, "tags") else {
            panic!("tags is not a set");
        };
        let elements = request.pool.slice(tags.start, tags.len as usize);
        let acme = store.interner.get("acme").unwrap();
        assert!(elements.contains(&Value::Str(acme)));
        assert!(elements.contains(&Value::Str(new)));
    }

    #[test]
    fn parsed_values_load_like_text() {
        let (program, store) = setup();
        let json = refund(r#""tags": ["b", "a"]"#);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let from_value = load_request_value(&program, &store, &value).unwrap();
        let from_text = load_request(&program, &store, &json).unwrap();
        assert_eq!(from_value.principal, from_text.principal);
        assert_eq!(from_value.context, from_text.context);
        assert_eq!(from_value.pool.values, from_text.pool.values);
    }

    #[test]
    fn context_may_be_left_out_when_nothing_is_required() {
        check(
            r#"{"principal": {"type": "User", "id": "alice"}, "action": "read", "resource": {"type": "Document", "id": "d1"}, "explain": true}"#,
            &[],
        );
        check(
            r#"{"principal": {"type": "User", "id": "alice"}, "action": "export", "resource": {"type": "Document", "id": "d1"}}"#,
            &["context.format: missing; expected `String` [authz::request::missing_field]"],
        );
    }

    #[test]
    fn missing_members_are_named() {
        check(
            "{}",
            &[
                "principal: missing; give it as `{\"type\": ..., \"id\": ...}` [authz::request::missing_field]",
                "resource: missing; give it as `{\"type\": ..., \"id\": ...}` [authz::request::missing_field]",
                "action: missing; give the action's name, such as `\"read\"` [authz::request::missing_field]",
            ],
        );
        check(
            r#"{"principal": {"type": "User"}, "action": "read", "resource": {"id": "d1"}}"#,
            &[
                "principal.id: missing; expected `String` [authz::request::missing_field]",
                "resource.type: missing; expected `String` [authz::request::missing_field]",
            ],
        );
    }

    #[test]
    fn unknown_types_and_actions_suggest_names() {
        check(
            &refund("")
                .replace(r#""type": "User""#, r#""type": "Usr""#)
                .replace(r#""refund""#, r#""refnud""#),
            &[
                "principal.type: unknown entity type `Usr` [authz::request::unknown_type] (did you mean `User`?)",
                "action: unknown action `refnud` [authz::request::unknown_action] (did you mean `refund`?)",
            ],
        );
        check(
            &refund("").replace(r#""type": "User""#, r#""type": "Action""#),
            &["principal.type: `Action` is the type of actions; the principal must be an entity of a declared type [authz::request::type_mismatch]"],
        );
    }

    #[test]
    fn the_action_must_take_the_principal_and_resource_types() {
        check(
            &refund("")
                .replace(r#""type": "Document""#, r#""type": "Folder""#)
                .replace(r#""type": "User""#, r#""type": "Tenant""#),
            &[
                "principal.type: action `refund` does not take a principal of type `Tenant`; it takes `User | Device` [authz::request::not_applicable]",
                "resource.type: action `refund` does not take a resource of type `Folder`; it takes `Document` [authz::request::not_applicable]",
            ],
        );
    }

    #[test]
    fn the_action_may_be_given_as_an_entity() {
        check(
            &refund("").replace(r#""refund""#, r#"{"type": "Action", "id": "refund"}"#),
            &[],
        );
        check(
            &refund("").replace(r#""refund""#, r#"{"type": "User", "id": "refund"}"#),
            &["action.type: expected `Action`, found `User` [authz::request::type_mismatch]"],
        );
        check(
            &refund("").replace(r#""refund""#, "7"),
            &["action: expected the action's name as a string, found the integer `7` [authz::request::type_mismatch]"],
        );
    }

    #[test]
    fn context_errors_name_the_field() {
        check(
            &refund(r#""amout": 1, "shipping": {"zip": "x"}, "tags": ["a", 1], "origin": "10.0.0.256""#)
                .replace(r#""amount": 5, "#, ""),
            &[
                "context.amout: unknown field [authz::request::unknown_field] (did you mean `amount`?)",
                "context.shipping.zip: expected `Long`, found the string `\"x\"` [authz::request::type_mismatch]",
                "context.tags[1]: expected `String`, found the integer `1` [authz::request::type_mismatch]",
                "context.origin: `10.0.0.256` is not a valid `Ip`: `10.0.0.256` is not an IPv4 or IPv6 address [authz::request::bad_literal]",
                "context.amount: missing; expected `Long` [authz::request::missing_field]",
            ],
        );
        check(
            &refund("").replace(r#""context": {"amount": 5, "mfa": true}"#, r#""context": []"#),
            &["context: expected `{ amount: Long, mfa: Bool, origin?: Ip, at?: Timestamp, window?: Duration, tags?: Set<String>, shipping?: { zip: Long, city?: String }, approver?: User }`, found an array [authz::request::type_mismatch] (a record is written as a JSON object)"],
        );
        check(
            &refund(r#""approver": {"type": "Document", "id": "d1"}"#),
            &["context.approver: expected `User`, found an entity of type `Document` [authz::request::type_mismatch]"],
        );
    }

    #[test]
    fn unknown_request_members_are_rejected() {
        check(
            &refund("").replace(r#""context""#, r#""contxt""#),
            &["contxt: unknown member; a request has `principal`, `action`, `resource`, `context`, `entities` and `explain` [authz::request::unknown_field] (did you mean `context`?)",
              "context.amount: missing; expected `Long` [authz::request::missing_field]",
              "context.mfa: missing; expected `Bool` [authz::request::missing_field]"],
        );
        check(
            &refund("").replacen('{', r#"{"explain": "yes", "#, 1),
            &["explain: expected `Bool`, found the string `\"yes\"` [authz::request::type_mismatch]"],
        );
    }

    #[test]
    fn hostile_numbers_are_rejected() {
        check(
            &refund("").replace(r#""amount": 5"#, r#""amount": 18446744073709551616"#),
            &["context.amount: `1.8446744073709552e19` is out of the range of `Long` [authz::request::long_out_of_range] (a `Long` is a 64-bit signed integer, from -9223372036854775808 to 9223372036854775807)"],
        );
        check(
            &refund("").replace(r#""amount": 5"#, r#""amount": -0.5"#),
            &["context.amount: expected `Long`, found the number `-0.5` [authz::request::type_mismatch] (a `Long` is a whole number)"],
        );
        check(
            &refund("").replace(r#""amount": 5"#, r#""amount": 1e999"#),
            &[": malformed JSON at line 1, column 140: number out of range [authz::request::syntax]"],
        );
    }

    #[test]
    fn non_string_ids_are_rejected() {
        check(
            &refund("").replace(r#""id": "alice""#, r#""id": 42"#),
            &["principal.id: expected `String`, found the integer `42` [authz::request::type_mismatch]"],
        );
        check(
            &refund("").replace(r#"{"type": "User", "id": "alice"}"#, r#""alice""#),
            &["principal: expected `{\"type\": ..., \"id\": ...}`, found the string `\"alice\"` [authz::request::type_mismatch] (an entity reference is written `{\"type\": \"User\", \"id\": \"alice\"}`)"],
        );
    }

    #[test]
    fn malformed_and_duplicate_keys_are_rejected() {
        check(
            r#"{"principal": {"type": "User", "id": "alice", "id": "bob"}}"#,
            &[": duplicate key `id` at line 1, column 50 [authz::request::duplicate_key]"],
        );
        check(
            "{\"principal\":\n",
            &[": malformed JSON at line 2, column 0: EOF while parsing a value [authz::request::syntax]"],
        );
        check(
            "[]",
            &[": a request must be a JSON object, found an array [authz::request::type_mismatch]"],
        );
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        check(
            &refund(&format!(r#""tags": {deep}"#)),
            &[": JSON nested deeper than 32 levels at line 1, column 190 [authz::request::too_deep]"],
        );
        // A parsed value nested too deep names the field where the limit is reached.
        let (program, store) = setup();
        let mut value: serde_json::Value = serde_json::from_str(&refund("")).unwrap();
        let mut nested = serde_json::json!(1);
        for _ in 0..40 {
            nested = serde_json::json!({"zip": nested});
        }
        value["context"]["shipping"] = nested;
        let errors = load_request_value(&program, &store, &value).unwrap_err();
        let rendered: Vec<String> = errors.iter().map(render).collect();
        assert_eq!(
            rendered,
            ["context.shipping.zip: expected `Long`, found an object [authz::request::type_mismatch]"]
        );
        let mut nested = serde_json::json!(1);
        for _ in 0..40 {
            nested = serde_json::json!([nested]);
        }
        value["context"]["shipping"] = serde_json::json!({"zip": 1});
        value["context"]["tags"] = nested;
        let errors = load_request_value(&program, &store, &value).unwrap_err();
        let rendered: Vec<String> = errors.iter().map(render).collect();
        assert_eq!(rendered.len(), 1);
        assert!(
            rendered[0].starts_with("context.tags[0]: expected `String`"),
            "{rendered:?}"
        );
    }

    #[test]
    fn size_is_bounded() {
        let many = vec!["\"x\""; MAX_REQUEST_VALUES].join(",");
        let errors = errors(&refund(&format!(r#""tags": [{many}]"#)));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].ends_with("[authz::request::too_large]"),
            "{errors:?}"
        );
        let huge = format!(r#""{}""#, "x".repeat(MAX_REQUEST_BYTES));
        check(
            &refund(&format!(r#""tags": [{huge}]"#)),
            &[": the request is longer than 1048576 bytes [authz::request::too_large]"],
        );
        let (program, store) = setup();
        let value = serde_json::Value::Array(vec![serde_json::Value::Null; MAX_REQUEST_VALUES + 1]);
        let errors = load_request_value(&program, &store, &value).unwrap_err();
        assert_eq!(errors[0].kind, RequestErrorKind::TooLarge);
    }

    #[test]
    fn many_distinct_strings_load_quickly() {
        let strings: Vec<String> = (0..MAX_REQUEST_VALUES - 20)
            .map(|n| format!("\"s{n}\""))
            .collect();
        let json = refund(&format!(r#""tags": [{}]"#, strings.join(",")));
        let started = std::time::Instant::now();
        assert_eq!(errors(&json), Vec::<String>::new());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn mutated_requests_never_panic() {
        let (program, store) = setup();
        let json = refund(
            r#""origin": "10.1.2.3", "at": "2024-01-31T12:00:00Z", "window": "1h", "tags": ["vip"], "shipping": {"zip": 7}, "approver": {"type": "User", "id": "alice"}"#,
        );
        let mut rng = fixture::Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..5_000 {
            let mutant = fixture::mutate(&mut rng, &json);
            if let Err(errors) = load_request(&program, &store, &mutant) {
                assert!(!errors.is_empty());
                assert!(errors.len() <= MAX_REQUEST_ERRORS);
            }
        }
    }

    #[test]
    fn errors_display_with_their_field() {
        let error = RequestError::new(
            RequestErrorKind::UnknownAction,
            "action",
            "unknown action `x`",
        );
        assert_eq!(error.to_string(), "`action`: unknown action `x`");
        assert_eq!(error.code(), "authz::request::unknown_action");
    }
}
