//! Loading a decision request from the JSON of `DESIGN.md`:
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
//! Requests come from the network, so their size is bounded: at most [`MAX_REQUEST_BYTES`] of
//! text, [`MAX_REQUEST_VALUES`] JSON values and [`MAX_DEPTH`] levels of nesting. Strings become
//! the store's symbols where it has them and request-local ones otherwise (the shared interner
//! never grows); sets, records and IP ranges go into the request's own pool.

use std::fmt;

use miette::Diagnostic;

use crate::json::reader::{self, entity_ref, Issue, PathIssue, Reader, RequestSymbols};
use crate::json::suggest::{did_you_mean, suggest};
use crate::json::tree::{self, Json, Limits, ParseError};
use crate::json::MAX_DEPTH;
use crate::program::Program;
use crate::request::{Request, RequestStrings};
use crate::schema::{ActionDef, ValueType};
use crate::store::EntityStore;
use crate::value::{EntityUid, RecordRef, Value, ValuePool};

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
    fn new(kind: RequestErrorKind, field: impl Into<String>, message: impl Into<String>) -> Self {
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
    if json.len() > MAX_REQUEST_BYTES {
        return Err(vec![RequestError::new(
            RequestErrorKind::TooLarge,
            "",
            format!("the request is longer than {MAX_REQUEST_BYTES} bytes"),
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
const REQUEST_MEMBERS: [&str; 5] = ["principal", "action", "resource", "context", "explain"];

struct Builder<'a> {
    program: &'a Program,
    store: &'a EntityStore,
    strings: RequestStrings,
    pool: ValuePool,
    errors: Vec<RequestError>,
}

impl<'a> Builder<'a> {
    fn new(program: &'a Program, store: &'a EntityStore) -> Builder<'a> {
        Builder {
            program,
            store,
            strings: RequestStrings::after(&store.interner),
            pool: ValuePool::default(),
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
                        "unknown member; a request has `principal`, `action`, `resource`, `context` and `explain`",
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
        match (principal, action, resource, context) {
            (Some(principal), Some(action), Some(resource), Some(context))
                if self.errors.is_empty() =>
            {
                Ok(Request {
                    principal,
                    action: action.uid,
                    resource,
                    context,
                    pool: self.pool,
                    strings: self.strings,
                })
            }
            _ => Err(self.errors),
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
            Some(ty) if ty != schema.action_type => ty,
            _ => {
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
        let id = self.strings.sym(&self.store.interner, id);
        Some(EntityUid { ty, id })
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
        let checks = [
            ("principal", principal, &action.principals),
            ("resource", resource, &action.resources),
        ];
        for (field, uid, allowed) in checks {
            let Some(uid) = uid else {
                continue;
            };
            if allowed.contains(&uid.ty) {
                continue;
            }
            let schema = &self.program.schema;
            let takes = if allowed.is_empty() {
                "none".to_owned()
            } else {
                reader::entity_types_text(schema, allowed)
            };
            self.report(RequestError::new(
                RequestErrorKind::NotApplicable,
                format!("{field}.type"),
                format!(
                    "action `{}` does not take a {field} of type `{}`; it takes `{takes}`",
                    action.name,
                    schema.type_name(uid.ty)
                ),
            ));
        }
    }

    fn context(&mut self, members: &[(String, Json)], action: &ActionDef) -> Option<RecordRef> {
        let empty = Json::Object(Vec::new());
        let json = Json::member(members, "context").unwrap_or(&empty);
        let program = self.program;
        let layout = action.context;
        let mut reader = Reader::new(
            &program.schema,
            &mut self.pool,
            Request::POOL,
            RequestSymbols {
                interner: &self.store.interner,
                strings: &mut self.strings,
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
