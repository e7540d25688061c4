//! The server's clock, the one trusted source of the time a policy may read: a `now` context
//! field is filled from it by the server or the proxy, never by the client.
//!
//! `[clock] fixed = "2026-03-29T07:00:00Z"` stops it at one instant, for tests and for replaying
//! traffic as of a moment; without it the clock is the system's.

use serde::Deserialize;

/// `[clock]`
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClockConfig {
    /// An RFC 3339 instant the clock stays at.
    pub fixed: Option<String>,
    /// `authz serve` only: the context field the server fills with the time (the proxy maps a
    /// field to the source `now` in `[context]` instead).
    pub field: Option<String>,
}

/// Where the time comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The system's clock.
    System,
    /// One instant, in milliseconds since 1970-01-01T00:00:00Z.
    Fixed(i64),
}

impl Clock {
    /// The clock `config` describes; the error names the key.
    pub fn from_config(config: &ClockConfig) -> Result<Clock, String> {
        match &config.fixed {
            None => Ok(Clock::System),
            Some(text) => authz_runtime::ext::parse_timestamp(text)
                .map(Clock::Fixed)
                .map_err(|error| format!("`clock.fixed`: {error}")),
        }
    }

    /// Now, in milliseconds since 1970-01-01T00:00:00Z.
    pub fn now_millis(self) -> i64 {
        match self {
            Clock::Fixed(millis) => millis,
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| {
                    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
                }),
        }
    }
}

/// Sets `context.<field>` of a JSON decision request to `now` (as RFC 3339 text) when the
/// request's action has that field, so that the time a policy reads is the server's. A request
/// that sets the field itself is refused: the error names it.
pub fn stamp(
    program: &authz_runtime::program::Program,
    request: &mut serde_json::Value,
    field: &str,
    now: i64,
) -> Result<(), String> {
    use serde_json::Value as Json;
    let action = match request.get("action") {
        Some(Json::String(name)) => Some(name.as_str()),
        Some(object @ Json::Object(_)) => object.get("id").and_then(Json::as_str),
        _ => None,
    };
    let schema = &program.schema;
    let takes_it = action
        .and_then(|name| program.interner.get(name))
        .and_then(|sym| schema.action(sym))
        .and_then(|action| schema.layout(action.context))
        .zip(schema.attr_id(field))
        .is_some_and(|(layout, attr)| layout.slot(attr).is_some());
    if !takes_it {
        return Ok(());
    }
    let Some(members) = request.as_object_mut() else {
        return Ok(());
    };
    let context = members
        .entry("context")
        .or_insert_with(|| Json::Object(serde_json::Map::new()));
    let Some(context) = context.as_object_mut() else {
        return Ok(());
    };
    if context.contains_key(field) {
        return Err(format!(
            "`context.{field}` is the server's clock and cannot be given in a request"
        ));
    }
    context.insert(
        field.to_string(),
        Json::String(authz_runtime::ext::format_timestamp(now)),
    );
    Ok(())
}
