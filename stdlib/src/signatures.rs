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
    /// Its semantics with the edge cases, for the reference page (`docs/stdlib.md`).
    pub semantics: &'static str,
    /// An expression using it that evaluates to `true` (the reference page's test decides it).
    pub example: &'static str,
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
    /// Its semantics with the edge cases, for the reference page (`docs/stdlib.md`).
    pub semantics: &'static str,
    /// An expression using it that evaluates to `true` (the reference page's test decides it).
    pub example: &'static str,
}

/// Every standard-library function.
pub const FUNCTIONS: &[Function] = &[
    Function {
        name: "ip",
        params: &[Type::String],
        ret: Type::Ip,
        doc: "an IP address or CIDR range such as `10.0.0.1` or `10.0.0.0/8`",
        semantics: "An IPv4 or IPv6 address, or a CIDR range (`10.0.0.0/8`, `2001:db8::/32`). An \
            address is the range of that one address (`/32`, `/128`). Host bits written after the \
            prefix are kept but ignored by every method (`10.0.0.7/8` is the range `10.0.0.0/8`). \
            An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) stays an IPv6 value: there are no \
            implicit conversions. Zone indexes (`fe80::1%eth0`) and leading zeros in IPv4 octets \
            are refused. A constant argument is checked when the set is compiled \
            (`authz::check::invalid_literal`); a computed one that does not parse is an \
            evaluation error.",
        example: r#"ip("10.0.0.7/8").isInRange(ip("10.0.0.0/8"))"#,
    },
    Function {
        name: "timestamp",
        params: &[Type::String],
        ret: Type::Timestamp,
        doc: "an RFC 3339 timestamp such as `2024-01-31T12:00:00Z`",
        semantics: "An RFC 3339 date and time with `Z` or a UTC offset: \
            `YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)`. Stored as milliseconds since \
            1970-01-01T00:00:00Z; digits of a fraction beyond milliseconds are dropped. Leap \
            seconds (`:60`) and impossible dates (February 30) are refused. Timestamps compare \
            with `<`, `<=`, `>`, `>=` and `==` as instants, whatever offset they were written \
            with.",
        example: r#"timestamp("2024-01-31T13:00:00+01:00") == timestamp("2024-01-31T12:00:00Z")"#,
    },
    Function {
        name: "duration",
        params: &[Type::String],
        ret: Type::Duration,
        doc: "a duration such as `1h30m`, `250ms` or `2d`",
        semantics: "An optional `-`, then one or more `<digits><unit>` parts with the units `d` \
            (24 hours), `h`, `m`, `s` and `ms`, each at most once and from largest to smallest \
            (`1h30m`, not `30m1h`). Stored as milliseconds; a total beyond the 64-bit range is \
            refused. Durations compare with `<`, `<=`, `>`, `>=` and `==`.",
        example: r#"duration("1h30m") == duration("90m")"#,
    },
];

#[allow(clippy::too_many_arguments)]
const fn method(
    receiver: Type,
    name: &'static str,
    params: &'static [Type],
    ret: Type,
    semantics: &'static str,
    example: &'static str,
) -> Method {
    Method {
        receiver,
        name,
        params,
        ret,
        semantics,
        example,
    }
}

/// Every standard-library method, grouped by receiver type.
pub const METHODS: &[Method] = &[
    method(
        Type::Ip,
        "isIpv4",
        &[],
        Type::Bool,
        "Whether the value is an IPv4 address or range. An IPv4-mapped IPv6 address \
         (`::ffff:10.0.0.1`) is not.",
        r#"ip("10.0.0.1").isIpv4() && !ip("::ffff:10.0.0.1").isIpv4()"#,
    ),
    method(
        Type::Ip,
        "isIpv6",
        &[],
        Type::Bool,
        "Whether the value is an IPv6 address or range, IPv4-mapped ones included.",
        r#"ip("::ffff:10.0.0.1").isIpv6() && !ip("10.0.0.1").isIpv6()"#,
    ),
    method(
        Type::Ip,
        "isLoopback",
        &[],
        Type::Bool,
        "Whether the value lies wholly in `127.0.0.0/8` or is `::1`. A range counts only when \
         all of it is loopback (`ip(\"0.0.0.0/0\").isLoopback()` is false); \
         `::ffff:127.0.0.1` is not loopback.",
        r#"ip("127.0.0.0/8").isLoopback() && !ip("::ffff:127.0.0.1").isLoopback()"#,
    ),
    method(
        Type::Ip,
        "isMulticast",
        &[],
        Type::Bool,
        "Whether the value lies wholly in `224.0.0.0/4` or `ff00::/8`.",
        r#"ip("239.1.2.3").isMulticast() && ip("ff02::1").isMulticast()"#,
    ),
    method(
        Type::Ip,
        "isInRange",
        &[Type::Ip],
        Type::Bool,
        "Whether the receiver (an address, or a whole range) lies inside the argument's range: \
         same family, a prefix at least as long, and the first prefix bits equal. An IPv4 value \
         is never in an IPv6 range nor the reverse, so an IPv4-mapped address is in \
         `::ffff:0:0/96` and not in `10.0.0.0/8`.",
        r#"ip("::ffff:10.0.0.1").isInRange(ip("::ffff:0:0/96")) && !ip("::ffff:10.0.0.1").isInRange(ip("10.0.0.0/8"))"#,
    ),
    method(
        Type::String,
        "startsWith",
        &[Type::String],
        Type::Bool,
        "Whether the receiver begins with the argument, compared by Unicode scalar values \
         without normalization. Every string starts with `\"\"`.",
        r#""release/1.2".startsWith("release/") && "x".startsWith("")"#,
    ),
    method(
        Type::String,
        "endsWith",
        &[Type::String],
        Type::Bool,
        "Whether the receiver ends with the argument, compared by Unicode scalar values.",
        r#""report.pdf".endsWith(".pdf")"#,
    ),
    method(
        Type::String,
        "contains",
        &[Type::String],
        Type::Bool,
        "Whether the argument occurs in the receiver (a substring test; for set membership use \
         `x in set` or `set.contains(x)`).",
        r#""a-team-b".contains("team")"#,
    ),
    method(
        Type::String,
        "toLower",
        &[],
        Type::String,
        "The receiver in lower case, by Unicode's full, locale-independent mapping; the result \
         may be longer than the input.",
        r#""ÀB".toLower() == "àb""#,
    ),
    method(
        Type::String,
        "toUpper",
        &[],
        Type::String,
        "The receiver in upper case, by Unicode's full mapping (`\"ß\".toUpper()` is `\"SS\"`).",
        r#""straße".toUpper() == "STRASSE""#,
    ),
    method(
        Type::String,
        "length",
        &[],
        Type::Long,
        "The number of Unicode scalar values: not bytes, not grapheme clusters.",
        r#""héllo".length() == 5"#,
    ),
    method(
        Type::Timestamp,
        "offset",
        &[Type::Duration],
        Type::Timestamp,
        "The instant the duration later (earlier for a negative duration). Leaving the 64-bit \
         millisecond range is an evaluation error that names both operands.",
        r#"timestamp("2024-01-31T12:00:00Z").offset(duration("-1d")) == timestamp("2024-01-30T12:00:00Z")"#,
    ),
    method(
        Type::Timestamp,
        "durationSince",
        &[Type::Timestamp],
        Type::Duration,
        "The duration from the argument to the receiver, negative when the argument is later.",
        r#"timestamp("2024-01-31T12:00:00Z").durationSince(timestamp("2024-01-31T10:30:00Z")) == duration("1h30m")"#,
    ),
    method(
        Type::Timestamp,
        "toDate",
        &[],
        Type::Timestamp,
        "Midnight UTC of the day the instant falls in (also before 1970).",
        r#"timestamp("2024-01-31T23:59:59Z").toDate() == timestamp("2024-01-31T00:00:00Z")"#,
    ),
    method(
        Type::Timestamp,
        "toTime",
        &[],
        Type::Duration,
        "The duration since midnight UTC of the instant's day, from `0ms` to just under `1d`.",
        r#"timestamp("2024-01-31T07:30:00Z").toTime() == duration("7h30m")"#,
    ),
    method(
        Type::Timestamp,
        "dayOfWeek",
        &[Type::String],
        Type::Long,
        "The day of the week in the IANA time zone named by the argument (`\"Europe/Berlin\"`, \
         `\"UTC\"`): 1 for Monday to 7 for Sunday. The zone database is built in; an unknown \
         zone is an evaluation error.",
        r#"timestamp("2024-03-31T23:30:00Z").dayOfWeek("Europe/Berlin") == 1 && timestamp("2024-03-31T23:30:00Z").dayOfWeek("UTC") == 7"#,
    ),
    method(
        Type::Timestamp,
        "timeOfDay",
        &[Type::String],
        Type::Duration,
        "The wall-clock time in the zone, as the duration a clock shows since midnight; \
         daylight-saving changes included (on the morning clocks go forward, 03:00 follows \
         01:59).",
        r#"timestamp("2024-03-31T01:30:00Z").timeOfDay("Europe/Berlin") == duration("3h30m") && timestamp("2024-01-31T08:30:00Z").timeOfDay("Europe/Berlin") == duration("9h30m")"#,
    ),
    method(
        Type::Timestamp,
        "date",
        &[Type::String],
        Type::String,
        "The date in the zone as `YYYY-MM-DD`.",
        r#"timestamp("2024-12-31T23:30:00Z").date("Europe/Berlin") == "2025-01-01""#,
    ),
    method(
        Type::Duration,
        "toDays",
        &[],
        Type::Long,
        "Whole days (24 hours), truncated toward zero.",
        r#"duration("47h").toDays() == 1 && duration("-47h").toDays() == -1"#,
    ),
    method(
        Type::Duration,
        "toHours",
        &[],
        Type::Long,
        "Whole hours, truncated toward zero.",
        r#"duration("1h59m").toHours() == 1"#,
    ),
    method(
        Type::Duration,
        "toMinutes",
        &[],
        Type::Long,
        "Whole minutes, truncated toward zero.",
        r#"duration("1h30m").toMinutes() == 90"#,
    ),
    method(
        Type::Duration,
        "toSeconds",
        &[],
        Type::Long,
        "Whole seconds, truncated toward zero.",
        r#"duration("1500ms").toSeconds() == 1"#,
    ),
    method(
        Type::Duration,
        "toMilliseconds",
        &[],
        Type::Long,
        "The duration in milliseconds.",
        r#"duration("1s250ms").toMilliseconds() == 1250"#,
    ),
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
