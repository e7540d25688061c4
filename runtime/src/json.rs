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
