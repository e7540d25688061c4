//! The context plan: which fields of each action's context the proxy fills, from which part of
//! the HTTP request, with which type. It is derived from `[context]` and the schema when a
//! policy set is installed (at start, on every reload and policy write), with every source parsed
//! once into a [`Source`]; per request, the plan reads its sources and hands typed values to the
//! runtime's [`RequestBuilder`], so no JSON is written to be parsed back.
//!
//! A field is filled only when the configuration maps it (`field`, or `record.field` inside a
//! record); a record none of whose fields are filled is left absent. A value that does not read
//! as its field's type (`amount=ten` for a `Long`) fails the request, as a required field left
//! unfilled does: the decision is never made on a guess. A source the request answers in more
//! than one way (a repeated header or query parameter, see [`query_value`]) refuses it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use authz_runtime::json::{RequestError, RequestErrorKind};
use authz_runtime::request_builder::{Part, RequestBuilder};
use authz_runtime::schema::{Schema, ValueType};
use authz_runtime::value::{LayoutId, RecordRef, Value};
use hyper::header::HeaderValue;

use super::headers;
use crate::host::clock::Clock;

/// Where a context field's value comes from, parsed once from the configuration's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `client_ip`: the client's address (behind trusted proxies, the forwarded one).
    ClientIp,
    /// `method`: the request's method.
    Method,
    /// `path`: the normalized path.
    Path,
    /// `header:NAME`: the one value of a header.
    Header(String),
    /// `query:NAME`: the one value of a query parameter.
    Query(String),
    /// `now`: the proxy's clock, for a `Timestamp` field; never anything the client sends.
    Now,
}

impl Source {
    /// Parses a source as written in `[context]`.
    pub fn parse(text: &str) -> Result<Source, String> {
        match text {
            "client_ip" => Ok(Source::ClientIp),
            "method" => Ok(Source::Method),
            "path" => Ok(Source::Path),
            "now" => Ok(Source::Now),
            other => {
                if let Some(name) = other.strip_prefix("header:").filter(|n| !n.is_empty()) {
                    if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        return Err(format!("`{name}` is not a valid header name"));
                    }
                    Ok(Source::Header(name.to_ascii_lowercase()))
                } else if let Some(name) = other.strip_prefix("query:").filter(|n| !n.is_empty()) {
                    Ok(Source::Query(name.to_string()))
                } else {
                    Err(format!(
                        "unknown source `{other}`; expected `client_ip`, `method`, `path`, \
                         `now`, `header:NAME` or `query:NAME`"
                    ))
                }
            }
        }
    }
}

/// A scalar type a source can fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scalar {
    Bool,
    Long,
    String,
    Ip,
    Timestamp,
    Duration,
}

impl Scalar {
    fn of(ty: &ValueType) -> Option<Scalar> {
        Some(match ty {
            ValueType::Bool => Scalar::Bool,
            ValueType::Long => Scalar::Long,
            ValueType::String => Scalar::String,
            ValueType::Ip => Scalar::Ip,
            ValueType::Timestamp => Scalar::Timestamp,
            ValueType::Duration => Scalar::Duration,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Scalar::Bool => "Bool",
            Scalar::Long => "Long",
            Scalar::String => "String",
            Scalar::Ip => "Ip",
            Scalar::Timestamp => "Timestamp",
            Scalar::Duration => "Duration",
        }
    }

    /// Reads a header or query value exactly as sent (no trimming), so that the upstream's parser
    /// reads the same value or none; `None` when it is not of this type.
    fn read(self, text: &str) -> Option<Part<'_>> {
        match self {
            Scalar::Long => {
                let digits = text.strip_prefix('-').unwrap_or(text);
                if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                    return None;
                }
                text.parse::<i64>().ok().map(Part::Long)
            }
            Scalar::Bool => match text {
                "true" | "1" => Some(Part::Bool(true)),
                "false" | "0" => Some(Part::Bool(false)),
                _ => None,
            },
            Scalar::String => Some(Part::Str(text)),
            Scalar::Ip => authz_runtime::ext::parse_ip(text).ok().map(Part::Ip),
            Scalar::Timestamp => authz_runtime::ext::parse_timestamp(text)
                .ok()
                .map(Part::Timestamp),
            Scalar::Duration => authz_runtime::ext::parse_duration(text)
                .ok()
                .map(Part::Duration),
        }
    }
}

/// How one field of a record is filled.
#[derive(Debug)]
enum Fill {
    /// From a source, read as a scalar type.
    Scalar(Scalar, usize),
    /// A record of its own plan.
    Record(RecordPlan),
}

#[derive(Debug)]
struct FieldPlan {
    /// The field's slot in its record.
    slot: usize,
    /// `context.client.ip`, for errors.
    path: String,
    fill: Fill,
}

/// The filled fields of one record layout.
#[derive(Debug)]
struct RecordPlan {
    layout: LayoutId,
    /// The number of fields of the layout.
    len: usize,
    fields: Vec<FieldPlan>,
}

/// Records are followed this deep into a context.
const MAX_DEPTH: usize = 4;

/// For each action of a schema (by its index), how its context is filled.
#[derive(Debug)]
pub struct ContextPlan {
    sources: Vec<Source>,
    by_action: Vec<RecordPlan>,
}

/// Why a context could not be built.
#[derive(Debug)]
pub enum ContextError {
    /// A source the request answers in more than one way.
    Ambiguous(Ambiguous),
    /// A value not of its field's type, or a required field left unfilled.
    Invalid(RequestError),
    /// The plan does not fit the set it was derived for: an internal error.
    Internal(&'static str),
}

impl ContextPlan {
    /// The plan of `[context]` (field or `record.field` to source) for `schema`; an error names
    /// the mapping that no action's context can take.
    pub fn derive(
        mapping: &BTreeMap<String, String>,
        schema: &Schema,
    ) -> Result<ContextPlan, String> {
        let mut sources = Vec::with_capacity(mapping.len());
        let mut index = BTreeMap::new();
        for (field, text) in mapping {
            let source = Source::parse(text)
                .map_err(|problem| format!("`context.\"{field}\"`: {problem}"))?;
            index.insert(field.as_str(), sources.len());
            sources.push(source);
        }
        let by_action = schema
            .actions
            .iter()
            .map(|action| record_plan(schema, action.context, ("", "context"), &index, &sources, 0))
            .collect::<Result<_, _>>()?;
        Ok(ContextPlan { sources, by_action })
    }

    /// The context of the action at `action_index` of the schema, built into `builder` from the
    /// request's `inputs`.
    pub fn build(
        &self,
        action_index: usize,
        builder: &mut RequestBuilder<'_>,
        inputs: &Inputs<'_>,
    ) -> Result<RecordRef, ContextError> {
        let Some(plan) = self.by_action.get(action_index) else {
            return Err(ContextError::Internal(
                "the context plan has no entry for this action",
            ));
        };
        let mut read = Vec::with_capacity(self.sources.len());
        read.resize_with(self.sources.len(), || None);
        let values = self.fill(plan, builder, inputs, &mut read)?;
        builder
            .record(plan.layout, &values, "context")
            .map_err(ContextError::Invalid)
    }

    /// The field values of one record, in layout order.
    fn fill(
        &self,
        plan: &RecordPlan,
        builder: &mut RequestBuilder<'_>,
        inputs: &Inputs<'_>,
        read: &mut Vec<Option<Option<String>>>,
    ) -> Result<Vec<Value>, ContextError> {
        let mut values = vec![Value::Absent; plan.len];
        for field in &plan.fields {
            let value = match &field.fill {
                Fill::Scalar(Scalar::Timestamp, source)
                    if self.sources.get(*source) == Some(&Source::Now) =>
                {
                    builder.value(Part::Timestamp(inputs.clock.now_millis()))
                }
                Fill::Scalar(scalar, source) => {
                    let text = match read.get_mut(*source) {
                        Some(Some(text)) => text.as_deref(),
                        Some(slot) => {
                            let text = match self.sources.get(*source) {
                                Some(source) => {
                                    inputs.read(source).map_err(ContextError::Ambiguous)?
                                }
                                None => None,
                            };
                            slot.insert(text).as_deref()
                        }
                        None => None,
                    };
                    match text {
                        None => Value::Absent,
                        Some(text) => match scalar.read(text) {
                            Some(part) => builder.value(part),
                            None => {
                                return Err(ContextError::Invalid(RequestError::new(
                                    RequestErrorKind::BadLiteral,
                                    field.path.as_str(),
                                    format!("`{text}` is not a valid `{}`", scalar.name()),
                                )))
                            }
                        },
                    }
                }
                Fill::Record(inner) => {
                    let inner_values = self.fill(inner, builder, inputs, read)?;
                    if inner_values.iter().all(|value| *value == Value::Absent) {
                        Value::Absent
                    } else {
                        let record = builder
                            .record(inner.layout, &inner_values, &field.path)
                            .map_err(ContextError::Invalid)?;
                        Value::Record(record)
                    }
                }
            };
            if let Some(slot) = values.get_mut(field.slot) {
                *slot = value;
            }
        }
        Ok(values)
    }
}

/// The plan of one record layout: its fields that `index` (dotted key to source) maps, under the
/// dotted `prefix`. A field the source `now` fills must be a `Timestamp`.
fn record_plan(
    schema: &Schema,
    layout: LayoutId,
    (prefix, path): (&str, &str),
    index: &BTreeMap<&str, usize>,
    sources: &[Source],
    depth: usize,
) -> Result<RecordPlan, String> {
    let fields_def = schema
        .layout(layout)
        .map_or(&[][..], |layout| &layout.fields);
    let mut fields = Vec::new();
    for (slot, field) in fields_def.iter().enumerate() {
        let name = schema.attr_name(field.attr);
        let key = format!("{prefix}{name}");
        let field_path = format!("{path}.{name}");
        let fill = match &field.ty {
            ValueType::Record(inner) if depth < MAX_DEPTH => {
                let plan = record_plan(
                    schema,
                    *inner,
                    (&format!("{key}."), &field_path),
                    index,
                    sources,
                    depth + 1,
                )?;
                (!plan.fields.is_empty()).then_some(Fill::Record(plan))
            }
            ty => match (Scalar::of(ty), index.get(key.as_str())) {
                (Some(scalar), Some(&source)) => {
                    if sources.get(source) == Some(&Source::Now) && scalar != Scalar::Timestamp {
                        return Err(format!(
                            "`context.\"{key}\"`: the source `now` fills only a `Timestamp` field, and this one is a `{}`",
                            scalar.name()
                        ));
                    }
                    Some(Fill::Scalar(scalar, source))
                }
                _ => None,
            },
        };
        if let Some(fill) = fill {
            fields.push(FieldPlan {
                slot,
                path: field_path,
                fill,
            });
        }
    }
    Ok(RecordPlan {
        layout,
        len: fields_def.len(),
        fields,
    })
}

/// What the context sources read: the request as normalized and cleaned.
pub struct Inputs<'a> {
    /// The method authorized.
    pub method: &'a str,
    /// The normalized path.
    pub path: &'a str,
    /// The query, as sent.
    pub query: Option<&'a str>,
    /// The headers, cleaned.
    pub headers: &'a hyper::HeaderMap,
    /// The client's address.
    pub client_ip: IpAddr,
    /// The proxy's clock, for `now`.
    pub clock: Clock,
}

/// A context source that the request answers in more than one way.
#[derive(Debug, thiserror::Error)]
pub enum Ambiguous {
    /// A query parameter the policy reads, repeated or spelt so that servers read it apart.
    #[error("the query parameter `{0}` is repeated or ambiguous (read by the policy)")]
    Query(String),
    /// A header the policy reads, repeated or spelt so that servers read it apart.
    #[error("the header `{0}` is repeated or ambiguous (read by the policy)")]
    Header(String),
}

impl Ambiguous {
    /// The error code.
    pub fn code(&self) -> &'static str {
        match self {
            Ambiguous::Query(_) => "authz::proxy::ambiguous_query",
            Ambiguous::Header(_) => "authz::proxy::ambiguous_header",
        }
    }
}

impl Inputs<'_> {
    /// What `source` reads from the request: `None` when absent.
    pub fn read(&self, source: &Source) -> Result<Option<String>, Ambiguous> {
        Ok(match source {
            Source::ClientIp => Some(headers::canonical_ip(self.client_ip).to_string()),
            Source::Method => Some(self.method.to_string()),
            Source::Path => Some(self.path.to_string()),
            Source::Header(name) => header_value(self.headers, name)?,
            Source::Query(name) => match self.query {
                Some(query) => query_value(query, name)?,
                None => None,
            },
            // Filled as a timestamp by the plan itself, never from text.
            Source::Now => None,
        })
    }
}

/// The one value of header `name`: `None` when absent; ambiguous when it is repeated, or sent
/// only in a spelling (`x_mfa`, `X.Mfa`) that servers folding `_` and `.` read as `name`.
fn header_value(headers: &hyper::HeaderMap, name: &str) -> Result<Option<String>, Ambiguous> {
    let ambiguous = || Ambiguous::Header(name.to_string());
    let mut found: Option<&HeaderValue> = None;
    let mut count = 0usize;
    for (header, value) in headers {
        if !headers::same_name(header.as_str(), name) {
            continue;
        }
        count += 1;
        if !header.as_str().eq_ignore_ascii_case(name) || count > 1 {
            return Err(ambiguous());
        }
        found = Some(value);
    }
    match found {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|text| Some(text.to_string()))
            .map_err(|_| ambiguous()),
    }
}

/// The one value of query parameter `name`, decoded as `application/x-www-form-urlencoded`.
/// `None` when absent. Ambiguous when a server could read another value or several: the name
/// appears more than once however spelt (decoded up to three times, in any case, with PHP's `.`
/// and space for `_` and a `[]` suffix), appears only in such another spelling, the query uses
/// `;` as a separator (which some servers split on), or the value still holds a percent escape
/// once decoded (which a server decoding twice reads differently).
fn query_value(query: &str, name: &str) -> Result<Option<String>, Ambiguous> {
    let ambiguous = || Ambiguous::Query(name.to_string());
    if query.contains(';') {
        return Err(ambiguous());
    }
    let wanted = fold_parameter(name);
    let mut found: Option<String> = None;
    let mut count = 0usize;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let mut spelling = key.into_owned();
        let mut matched = None;
        for level in 0..3 {
            if fold_parameter(&spelling) == wanted {
                matched = Some(level == 0 && spelling == name);
                break;
            }
            let decoded = percent_decode(&spelling);
            if decoded == spelling {
                break;
            }
            spelling = decoded;
        }
        let Some(exact) = matched else {
            continue;
        };
        count += 1;
        if !exact || count > 1 || has_escape(&value) {
            return Err(ambiguous());
        }
        found = Some(value.into_owned());
    }
    Ok(found)
}

/// A parameter name as lenient servers compare it: trimmed, lower-case, `.` and space as `_`,
/// without a trailing `[...]`.
fn fold_parameter(name: &str) -> String {
    let name = match name.find('[') {
        Some(start) if name.ends_with(']') => name.get(..start).unwrap_or(name),
        _ => name,
    };
    name.trim()
        .chars()
        .map(|c| match c {
            '.' | ' ' => '_',
            other => other,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// Percent-decodes text once (invalid escapes stay as they are; invalid UTF-8 is replaced).
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether text holds `%` followed by two hex digits.
fn has_escape(text: &str) -> bool {
    text.as_bytes().windows(3).any(
        |window| matches!(window, [b'%', high, low] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit()),
    )
}

#[cfg(test)]
mod tests {
    use authz_runtime::explain::Namer;
    use authz_runtime::request::Request;

    use crate::host::state::{self, Snapshot};

    fn shop() -> Snapshot {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop");
        state::load(&dir, Some(&dir.join("entities.json"))).unwrap()
    }

    fn mapping() -> BTreeMap<String, String> {
        [
            ("mfa", "header:x-mfa"),
            ("amount", "query:amount"),
            ("client.ip", "client_ip"),
            ("client.userAgent", "header:user-agent"),
        ]
        .into_iter()
        .map(|(field, source)| (field.to_string(), source.to_string()))
        .collect()
    }

    /// The context of `action` for a request with `headers` and `query`, as JSON text, or the
    /// error's code and field.
    fn context_of(
        action: &str,
        headers: &[(&str, &str)],
        query: Option<&str>,
    ) -> Result<String, String> {
        let snapshot = shop();
        let schema = &snapshot.program.schema;
        let plan = ContextPlan::derive(&mapping(), schema).unwrap();
        let index = schema
            .actions
            .iter()
            .position(|a| a.name == action)
            .unwrap();
        let mut map = hyper::HeaderMap::new();
        for (name, value) in headers {
            map.append(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let inputs = Inputs {
            method: "POST",
            path: "/orders/o-1/refunds",
            query,
            headers: &map,
            client_ip: "192.0.2.7".parse().unwrap(),
            clock: Clock::System,
        };
        let mut builder = RequestBuilder::new(&snapshot.program, &snapshot.store);
        let carol = builder.entity(schema.type_id("User").unwrap(), "carol");
        let order = builder.entity(schema.type_id("Order").unwrap(), "o-100");
        let context = match plan.build(index, &mut builder, &inputs) {
            Ok(context) => context,
            Err(ContextError::Ambiguous(ambiguous)) => return Err(ambiguous.code().to_string()),
            Err(ContextError::Invalid(error)) => {
                return Err(format!(
                    "{} at {}: {}",
                    error.code(),
                    error.field,
                    error.message
                ))
            }
            Err(ContextError::Internal(detail)) => return Err(detail.to_string()),
        };
        let request: Request = builder
            .finish(carol, &schema.actions[index], order, context, Vec::new())
            .map_err(|errors| format!("{errors:?}"))?;
        let mut out = String::new();
        Namer {
            program: &snapshot.program,
            store: &snapshot.store,
            request: &request,
        }
        .write_json(
            &mut out,
            authz_runtime::value::Value::Record(request.context),
        );
        Ok(out)
    }

    /// A set whose `open` action's context has a `Timestamp` and a `Long`, compiled in a
    /// temporary directory.
    fn clocked() -> (tempfile::TempDir, Snapshot) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("schema.authz"),
            "entity User;\nentity Door;\naction open: User -> Door with { now: Timestamp, floor: Long };\n\
             permit principal: User, action: open, resource: Door\n\
             when context.now.timeOfDay(\"Europe/Berlin\") >= duration(\"9h\");\n",
        )
        .unwrap();
        let snapshot = state::load(dir.path(), None).unwrap();
        (dir, snapshot)
    }

    #[test]
    fn now_is_the_proxys_clock_and_only_for_a_timestamp() {
        let (_dir, snapshot) = clocked();
        let schema = &snapshot.program.schema;
        let mapping: BTreeMap<String, String> = [("now".to_string(), "now".to_string())].into();
        let plan = ContextPlan::derive(&mapping, schema).unwrap();
        let index = schema
            .actions
            .iter()
            .position(|a| a.name == "open")
            .unwrap();
        // The client's header of the same name is no source of the time.
        let mut sent = hyper::HeaderMap::new();
        sent.insert("now", HeaderValue::from_static("2020-01-01T00:00:00Z"));
        let inputs = Inputs {
            method: "POST",
            path: "/doors/d1",
            query: Some("now=2020-01-01T00:00:00Z"),
            headers: &sent,
            client_ip: "192.0.2.7".parse().unwrap(),
            clock: Clock::Fixed(1_774_767_600_000),
        };
        let mut builder = RequestBuilder::new(&snapshot.program, &snapshot.store);
        let values = plan.fill(
            &plan.by_action[index],
            &mut builder,
            &inputs,
            &mut vec![None],
        );
        let values = values.unwrap();
        assert!(values.contains(&authz_runtime::value::Value::Timestamp(1_774_767_600_000)));

        let mapping: BTreeMap<String, String> = [("floor".to_string(), "now".to_string())].into();
        let error = ContextPlan::derive(&mapping, schema).unwrap_err();
        assert!(error.contains("only a `Timestamp`"), "{error}");
    }

    #[test]
    fn sources_parse_once_into_their_kind() {
        assert_eq!(Source::parse("client_ip"), Ok(Source::ClientIp));
        assert_eq!(
            Source::parse("header:X-MFA"),
            Ok(Source::Header("x-mfa".to_string()))
        );
        assert_eq!(
            Source::parse("query:amount"),
            Ok(Source::Query("amount".to_string()))
        );
        assert!(Source::parse("header:").is_err());
        assert!(Source::parse("header:bad name").is_err());
        assert!(Source::parse("cookie:session").is_err());
    }

    #[test]
    fn the_context_is_filled_typed_from_its_sources() {
        let context = context_of(
            "refundOrder",
            &[("x-mfa", "true"), ("user-agent", "curl/8")],
            Some("amount=100"),
        );
        assert_eq!(
            context.as_deref(),
            Ok(r#"{"amount":100,"client":{"ip":"192.0.2.7","userAgent":"curl/8"},"mfa":true}"#)
        );
        // An action without context fields takes none of them.
        assert_eq!(
            context_of("readOrder", &[("x-mfa", "true")], None).as_deref(),
            Ok("{}")
        );
    }

    #[test]
    fn a_value_not_of_its_type_or_a_missing_field_fails_the_request() {
        let headers = [("x-mfa", "true"), ("user-agent", "curl/8")];
        assert_eq!(
            context_of("refundOrder", &headers, Some("amount=ten")),
            Err(
                "authz::request::bad_literal at context.amount: `ten` is not a valid `Long`"
                    .to_string()
            )
        );
        assert_eq!(
            context_of(
                "refundOrder",
                &[("x-mfa", "yes"), ("user-agent", "curl/8")],
                Some("amount=1")
            ),
            Err(
                "authz::request::bad_literal at context.mfa: `yes` is not a valid `Bool`"
                    .to_string()
            )
        );
        assert_eq!(
            context_of("refundOrder", &headers, None),
            Err(
                "authz::request::missing_field at context.amount: missing; expected `Long`"
                    .to_string()
            )
        );
    }

    #[test]
    fn a_source_read_two_ways_refuses_the_request() {
        let headers = [("x-mfa", "true"), ("user-agent", "curl/8")];
        assert_eq!(
            context_of("refundOrder", &headers, Some("amount=100&amount=40000000")),
            Err("authz::proxy::ambiguous_query".to_string())
        );
        assert_eq!(
            context_of(
                "refundOrder",
                &[("x-mfa", "true"), ("x-mfa", "false"), ("user-agent", "a")],
                Some("amount=1")
            ),
            Err("authz::proxy::ambiguous_header".to_string())
        );
    }

    #[test]
    fn a_mapping_no_source_can_read_is_refused_at_install() {
        let snapshot = shop();
        let mut mapping = mapping();
        mapping.insert("coupon".to_string(), "cookie:coupon".to_string());
        let error = ContextPlan::derive(&mapping, &snapshot.program.schema).unwrap_err();
        assert!(error.contains("`context.\"coupon\"`"), "{error}");
    }
    use super::*;

    fn query(query: &str) -> Result<Option<String>, String> {
        query_value(query, "amount").map_err(|ambiguous| ambiguous.code().to_string())
    }

    #[test]
    fn a_query_parameter_is_read_once_decoded() {
        assert_eq!(query("amount=100"), Ok(Some("100".to_string())));
        assert_eq!(query("amou%6Et=100"), Ok(Some("100".to_string())));
        assert_eq!(query("amount=1%30"), Ok(Some("10".to_string())));
        assert_eq!(query("tag=a&tag=b"), Ok(None));
        assert_eq!(query(""), Ok(None));
    }

    #[test]
    fn a_query_parameter_a_server_could_read_otherwise_is_ambiguous() {
        for text in [
            "amount=100&amount=40000000",
            "amount=100&AMOUNT=4",
            "amount=100&amount[]=4",
            "amount=100&amount%5B%5D=4",
            "amount=100&amou%256Et=4",
            "AMOUNT=100",
            "amount=100;amount=4",
            "amount=1%2530",
            "amount=1&%20amount=2",
            "amount=1&amount+=2",
        ] {
            assert_eq!(
                query(text),
                Err("authz::proxy::ambiguous_query".to_string()),
                "{text}"
            );
        }
    }
}
