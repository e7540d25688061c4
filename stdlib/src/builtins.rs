//! The implementations of the standard library: one [`Builtin`] per function and method of the
//! signature table ([`crate::signatures`]), and the lookups the compiler binds calls with.
//!
//! A builtin receives the evaluated arguments, the receiver first for methods. For programs that
//! type-check the arguments always have the kinds the table promises; any other kind, or another
//! number of arguments, is [`EvalError::WrongType`]. A string that is not a valid IP address,
//! timestamp or duration (possible only for non-constant arguments, since the compiler rejects bad
//! constant literals) is [`EvalError::Extension`] with a short reason, and timestamp arithmetic
//! that leaves the 64-bit millisecond range is [`EvalError::Overflow`]. No builtin panics.
//!
//! The families live in their own files: `ip.rs` (addresses and ranges), `string.rs` and
//! `time.rs` (timestamps and durations).

mod ip;
mod string;
mod time;

use authz_runtime::eval::EvalError;
use authz_runtime::program::Builtin;
use authz_runtime::value::Value;

use crate::types::Type;

/// The implementation of the free function `name`, such as `ip`.
pub fn function(name: &str) -> Option<Builtin> {
    let builtin: Builtin = match name {
        "ip" => ip::ip,
        "timestamp" => time::timestamp,
        "duration" => time::duration,
        _ => return None,
    };
    Some(builtin)
}

/// The implementation of method `name` on values of type `receiver`, such as `isInRange` on
/// [`Type::Ip`].
pub fn method(receiver: Type, name: &str) -> Option<Builtin> {
    let builtin: Builtin = match (receiver, name) {
        (Type::Ip, "isIpv4") => ip::is_ipv4,
        (Type::Ip, "isIpv6") => ip::is_ipv6,
        (Type::Ip, "isLoopback") => ip::is_loopback,
        (Type::Ip, "isMulticast") => ip::is_multicast,
        (Type::Ip, "isInRange") => ip::is_in_range,
        (Type::String, "startsWith") => string::starts_with,
        (Type::String, "endsWith") => string::ends_with,
        (Type::String, "contains") => string::contains,
        (Type::String, "toLower") => string::to_lower,
        (Type::String, "toUpper") => string::to_upper,
        (Type::String, "length") => string::length,
        (Type::Timestamp, "offset") => time::offset,
        (Type::Timestamp, "durationSince") => time::duration_since,
        (Type::Timestamp, "toDate") => time::to_date,
        (Type::Timestamp, "toTime") => time::to_time,
        (Type::Timestamp, "dayOfWeek") => time::day_of_week,
        (Type::Timestamp, "timeOfDay") => time::time_of_day,
        (Type::Timestamp, "date") => time::date,
        (Type::Duration, "toDays") => time::to_days,
        (Type::Duration, "toHours") => time::to_hours,
        (Type::Duration, "toMinutes") => time::to_minutes,
        (Type::Duration, "toSeconds") => time::to_seconds,
        (Type::Duration, "toMilliseconds") => time::to_milliseconds,
        _ => return None,
    };
    Some(builtin)
}

/// The arguments as an array of exactly `N` values.
fn arguments<const N: usize>(args: &[Value]) -> Result<[Value; N], EvalError> {
    <[Value; N]>::try_from(args).map_err(|_| EvalError::WrongType("wrong number of arguments"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signatures::{FUNCTIONS, METHODS};

    #[test]
    fn every_function_of_the_table_is_implemented() {
        for function_sig in FUNCTIONS {
            assert!(
                function(function_sig.name).is_some(),
                "{}",
                function_sig.name
            );
        }
    }

    #[test]
    fn every_method_of_the_table_is_implemented() {
        for method_sig in METHODS {
            assert!(
                method(method_sig.receiver, method_sig.name).is_some(),
                "{}.{}",
                method_sig.receiver,
                method_sig.name
            );
        }
    }

    #[test]
    fn nothing_outside_the_table_is_implemented() {
        for receiver in Type::ALL {
            for method_sig in METHODS {
                let in_table = crate::signatures::method_of(receiver, method_sig.name).is_some();
                assert_eq!(
                    method(receiver, method_sig.name).is_some(),
                    in_table,
                    "{receiver}.{}",
                    method_sig.name
                );
            }
        }
        assert!(function("length").is_none());
        assert!(function("Ip").is_none());
    }
}
