//! Durations: `duration("1h30m")`, `duration("250ms")`, `duration("-2d")`.
//!
//! The literal parser lives in the runtime's value model (`authz_runtime::ext::duration`); it is
//! re-exported here so that stdlib paths keep working.

pub use authz_runtime::ext::duration::{parse_duration, DurationError};
