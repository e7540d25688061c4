//! The authz standard library: the built-in functions and extension types (IP addresses and CIDR
//! ranges, globs, strings, sets, timestamps and durations), each with its type signature and its
//! implementation.
//!
//! The compiler reads [`signatures`] to type-check calls and methods, and uses the literal parsers
//! ([`ip::parse_ip`], [`timestamp::parse_timestamp`], [`duration::parse_duration`]) to reject bad
//! constant extension literals such as `ip("300.1.1.1")` at compile time. Set methods (`contains`,
//! `containsAll`, `containsAny`, `isEmpty`) are generic over the element type and are typed by the
//! checker itself, not listed here.

pub mod builtins;
pub mod duration;
pub mod ip;
pub mod signatures;
pub mod timestamp;
pub mod types;

pub use signatures::{Function, Method, FUNCTIONS, METHODS};
pub use types::Type;
