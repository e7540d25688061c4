//! Extension values written as strings: IP addresses and CIDR ranges, RFC 3339 timestamps and
//! durations. Their parsers belong to the value model, because the same text appears in policy
//! literals (`ip("10.0.0.0/8")`, checked by the compiler), in entity attributes and in request
//! contexts (checked when they load).

pub mod duration;
pub mod ip;
pub mod timestamp;

pub use duration::{format_duration, parse_duration, DurationError};
pub use ip::{parse_ip, IpError};
pub use timestamp::{format_timestamp, format_timestamp_millis, parse_timestamp, TimestampError};
