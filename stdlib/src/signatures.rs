//! The signature table: every standard-library function and method with its parameter and return
//! types.

use crate::types::Type;
use crate::{duration, ip, timestamp};

/// A free function such as `ip("10.0.0.1")`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    /// The name the function is called by.
    pub name: &'static str,
    /// The parameter types, in order.
    pub params: &'static [Type],
    /// The result type.
    pub ret: Type,
    /// One line saying what the function does, for help texts.
    pub doc: &'static str,
}

/// A method such as `"abc".startsWith("a")`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Method {
    /// The type the method is called on.
    pub receiver: Type,
    /// The method name.
    pub name: &'static str,
    /// The parameter types after the receiver, in order.
    pub params: &'static [Type],
    /// The result type.
    pub ret: Type,
}

/// Every standard-library function.
pub const FUNCTIONS: &[Function] = &[
    Function {
        name: "ip",
        params: &[Type::String],
        ret: Type::Ip,
        doc: "an IP address or CIDR range such as `10.0.0.1` or `10.0.0.0/8`",
    },
    Function {
        name: "timestamp",
        params: &[Type::String],
        ret: Type::Timestamp,
        doc: "an RFC 3339 timestamp such as `2024-01-31T12:00:00Z`",
    },
    Function {
        name: "duration",
        params: &[Type::String],
        ret: Type::Duration,
        doc: "a duration such as `1h30m`, `250ms` or `2d`",
    },
];

const fn method(receiver: Type, name: &'static str, params: &'static [Type], ret: Type) -> Method {
    Method {
        receiver,
        name,
        params,
        ret,
    }
}

/// Every standard-library method, grouped by receiver type.
pub const METHODS: &[Method] = &[
    method(Type::Ip, "isIpv4", &[], Type::Bool),
    method(Type::Ip, "isIpv6", &[], Type::Bool),
    method(Type::Ip, "isLoopback", &[], Type::Bool),
    method(Type::Ip, "isMulticast", &[], Type::Bool),
    method(Type::Ip, "isInRange", &[Type::Ip], Type::Bool),
    method(Type::String, "startsWith", &[Type::String], Type::Bool),
    method(Type::String, "endsWith", &[Type::String], Type::Bool),
    method(Type::String, "contains", &[Type::String], Type::Bool),
    method(Type::String, "toLower", &[], Type::String),
    method(Type::String, "toUpper", &[], Type::String),
    method(Type::String, "length", &[], Type::Long),
    method(
        Type::Timestamp,
        "offset",
        &[Type::Duration],
        Type::Timestamp,
    ),
    method(
        Type::Timestamp,
        "durationSince",
        &[Type::Timestamp],
        Type::Duration,
    ),
    method(Type::Timestamp, "toDate", &[], Type::Timestamp),
    method(Type::Timestamp, "toTime", &[], Type::Duration),
    method(Type::Timestamp, "dayOfWeek", &[Type::String], Type::Long),
    method(
        Type::Timestamp,
        "timeOfDay",
        &[Type::String],
        Type::Duration,
    ),
    method(Type::Timestamp, "date", &[Type::String], Type::String),
    method(Type::Duration, "toDays", &[], Type::Long),
    method(Type::Duration, "toHours", &[], Type::Long),
    method(Type::Duration, "toMinutes", &[], Type::Long),
    method(Type::Duration, "toSeconds", &[], Type::Long),
    method(Type::Duration, "toMilliseconds", &[], Type::Long),
];

/// The function with this name.
pub fn function(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|function| function.name == name)
}

/// The method with this name on this receiver type.
pub fn method_of(receiver: Type, name: &str) -> Option<&'static Method> {
    METHODS
        .iter()
        .find(|method| method.receiver == receiver && method.name == name)
}

/// Every method with this name, whatever its receiver.
pub fn methods_named(name: &str) -> impl Iterator<Item = &'static Method> + '_ {
    METHODS.iter().filter(move |method| method.name == name)
}

/// The methods of one receiver type.
pub fn methods_of(receiver: Type) -> impl Iterator<Item = &'static Method> {
    METHODS
        .iter()
        .filter(move |method| method.receiver == receiver)
}

/// Why a constant extension literal is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiteralError {
    /// A bad `ip(...)` literal.
    Ip(ip::IpError),
    /// A bad `timestamp(...)` literal.
    Timestamp(timestamp::TimestampError),
    /// A bad `duration(...)` literal.
    Duration(duration::DurationError),
}

impl std::fmt::Display for LiteralError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LiteralError::Ip(err) => err.fmt(f),
            LiteralError::Timestamp(err) => err.fmt(f),
            LiteralError::Duration(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for LiteralError {}

/// Validates the string argument of a constant call of `function`; functions that parse no
/// literal accept everything.
pub fn validate_literal(function: &Function, text: &str) -> Result<(), LiteralError> {
    match function.ret {
        Type::Ip => ip::parse_ip(text).map(drop).map_err(LiteralError::Ip),
        Type::Timestamp => timestamp::parse_timestamp(text)
            .map(drop)
            .map_err(LiteralError::Timestamp),
        Type::Duration => duration::parse_duration(text)
            .map(drop)
            .map_err(LiteralError::Duration),
        Type::Bool | Type::Long | Type::String => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_name_is_unique_per_receiver() {
        for (i, a) in METHODS.iter().enumerate() {
            for b in &METHODS[i + 1..] {
                assert!(
                    !(a.receiver == b.receiver && a.name == b.name),
                    "{}",
                    a.name
                );
            }
        }
    }

    #[test]
    fn lookups_find_what_the_table_holds() {
        assert_eq!(function("ip").map(|f| f.ret), Some(Type::Ip));
        assert_eq!(
            method_of(Type::String, "length").map(|m| m.ret),
            Some(Type::Long)
        );
        assert!(method_of(Type::Long, "length").is_none());
        assert_eq!(methods_named("contains").count(), 1);
    }

    #[test]
    fn literals_are_validated_by_return_type() {
        let ip = function("ip").unwrap();
        assert!(validate_literal(ip, "10.0.0.0/8").is_ok());
        assert!(validate_literal(ip, "300.1.1.1").is_err());
        let duration = function("duration").unwrap();
        assert!(validate_literal(duration, "1h").is_ok());
        assert!(validate_literal(duration, "1 hour").is_err());
    }
}
