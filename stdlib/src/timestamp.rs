//! RFC 3339 timestamps: `timestamp("2024-01-31T12:00:00Z")`.
//!
//! The literal parser lives in the runtime's value model (`authz_runtime::ext::timestamp`); it is
//! re-exported here so that stdlib paths keep working.

pub use authz_runtime::ext::timestamp::{parse_timestamp, TimestampError};
