//! Loading entities and requests from JSON, validated against the program's schema.
//!
//! [`load_entities`] reads the entities file into an [`EntityStore`](crate::store::EntityStore);
//! [`load_request`] and [`load_request_value`] read a decision request into a
//! [`Request`](crate::request::Request); [`entities_to_json`] writes a store back. Both check every value against the schema's types (sets
//! as arrays, records as objects, `Long` as integers, entity references as
//! `{"type": ..., "id": ...}`, `Ip`, `Timestamp` and `Duration` as strings), report every problem
//! they find with the entity, attribute or field it concerns, and never panic: nesting is bounded
//! by [`MAX_DEPTH`], requests also in size, and duplicate keys are rejected rather than silently
//! collapsed.

pub mod entities;
pub(crate) mod reader;
pub mod request;
mod tree;
pub mod write;

#[cfg(test)]
pub(crate) mod fixture;

pub use entities::{load_entities, EntityError};
pub use request::{
    load_request, load_request_value, load_request_within, PreparedEntities, RequestError,
    RequestErrorKind,
};
pub use write::{entities_to_json, value_to_json};

/// The deepest nesting of arrays and objects in a request, or in one entity of an entities file
/// (the file's outer array not counted).
pub const MAX_DEPTH: usize = 32;

/// A Cedar `datetime` string (`"2024-01-31"`, `"2024-01-31T09:00:00+0100"`, ...) in the RFC 3339
/// form authz reads: a date alone is midnight UTC, and an offset `+hhmm` is `+hh:mm`. Anything
/// else is returned as it is, for the timestamp parser to accept or refuse.
pub fn cedar_datetime(text: &str) -> String {
    if text.len() == 10 {
        return format!("{text}T00:00:00Z");
    }
    let n = text.len();
    let offset = n
        .checked_sub(5)
        .and_then(|start| text.get(start..))
        .filter(|tail| {
            tail.starts_with(['+', '-']) && tail.bytes().skip(1).all(|b| b.is_ascii_digit())
        });
    match (
        offset,
        n.checked_sub(2).and_then(|cut| text.get(..cut)),
        n.checked_sub(2).and_then(|cut| text.get(cut..)),
    ) {
        (Some(_), Some(head), Some(minutes)) => format!("{head}:{minutes}"),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::cedar_datetime;

    #[test]
    fn cedar_datetimes_read_as_rfc_3339() {
        assert_eq!(cedar_datetime("2024-01-31"), "2024-01-31T00:00:00Z");
        assert_eq!(
            cedar_datetime("2024-01-31T09:30:00+0100"),
            "2024-01-31T09:30:00+01:00"
        );
        assert_eq!(
            cedar_datetime("2024-01-31T09:30:00.250-0530"),
            "2024-01-31T09:30:00.250-05:30"
        );
        assert_eq!(
            cedar_datetime("2024-01-31T09:30:00Z"),
            "2024-01-31T09:30:00Z"
        );
        assert_eq!(cedar_datetime("garbage"), "garbage");
    }
}
