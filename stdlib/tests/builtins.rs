//! The standard-library builtins called through a real evaluator: every entry of the signature
//! table, the edge cases of each family (CIDR boundaries, loopback and multicast ranges, negative
//! timestamps and leap years, overflow, Unicode), and laws over the whole table.

// Test helpers may panic: a panic is a test failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::IpAddr;

use authz_runtime::eval::{EvalError, Evaluator, Overflow, Scratch};
use authz_runtime::intern::Sym;
use authz_runtime::program::Program;
use authz_runtime::request::{Request, RequestStrings};
use authz_runtime::store::EntityStore;
use authz_runtime::value::{
    EntityUid, IpNet, LayoutId, PoolId, RecordRef, TypeId, Value, ValuePool,
};
use authz_stdlib::builtins;
use authz_stdlib::{Function, Method, Type, FUNCTIONS, METHODS};
use proptest::prelude::*;

/// A string of the program's interner.
const PROGRAM_TEXT: &str = "Program Text";
/// A string that arrived with the request.
const REQUEST_TEXT: &str = "Request Text";

const DAY: i64 = 86_400_000;

/// An empty program, store and request: enough for an evaluator to read strings and IP ranges.
struct World {
    program: Program,
    store: EntityStore,
    request: Request,
}

impl World {
    fn new() -> World {
        let mut program = Program::default();
        program.interner.intern(PROGRAM_TEXT);
        let store = EntityStore::new(program.interner.clone());
        let mut strings = RequestStrings::after(&store.interner);
        strings.sym(&store.interner, REQUEST_TEXT);
        let nobody = EntityUid {
            ty: TypeId(0),
            id: Sym(0),
        };
        let request = Request {
            principal: nobody,
            action: nobody,
            resource: nobody,
            context: RecordRef {
                pool: PoolId::Request,
                layout: LayoutId(0),
                start: 0,
            },
            pool: ValuePool::default(),
            strings,
            entities: None,
        };
        World {
            program,
            store,
            request,
        }
    }
}

/// Runs `test` with calls through a fresh evaluator.
fn with_calls<R>(test: impl FnOnce(&mut Calls<'_>) -> R) -> R {
    let world = World::new();
    let mut scratch = Scratch::new();
    let evaluator = Evaluator::new(&world.program, &world.store, &world.request, &mut scratch);
    test(&mut Calls { evaluator })
}

/// The single place that calls builtins: by name, as the compiler binds them.
struct Calls<'a> {
    evaluator: Evaluator<'a>,
}

impl Calls<'_> {
    fn function(&mut self, name: &str, args: &[Value]) -> Result<Value, EvalError> {
        let builtin = builtins::function(name).unwrap_or_else(|| panic!("no function `{name}`"));
        builtin(&mut self.evaluator, args)
    }

    fn method(&mut self, receiver: Type, name: &str, args: &[Value]) -> Result<Value, EvalError> {
        let builtin = builtins::method(receiver, name)
            .unwrap_or_else(|| panic!("no method `{receiver}.{name}`"));
        builtin(&mut self.evaluator, args)
    }

    /// A string made at run time, as a non-constant argument would be.
    fn string(&mut self, text: &str) -> Value {
        self.evaluator.make_string(text)
    }

    fn text(&self, value: Value) -> String {
        self.evaluator.text(value).unwrap().to_owned()
    }

    fn ip(&mut self, text: &str) -> Value {
        let text = self.string(text);
        self.function("ip", &[text]).unwrap()
    }

    fn ip_test(&mut self, name: &str, text: &str) -> bool {
        let ip = self.ip(text);
        match self.method(Type::Ip, name, &[ip]) {
            Ok(Value::Bool(result)) => result,
            other => panic!("`ip({text:?}).{name}()` gave {other:?}"),
        }
    }

    fn in_range(&mut self, ip: &str, range: &str) -> bool {
        let ip = self.ip(ip);
        let range = self.ip(range);
        match self.method(Type::Ip, "isInRange", &[ip, range]) {
            Ok(Value::Bool(result)) => result,
            other => panic!("`isInRange` gave {other:?}"),
        }
    }

    fn string_method(&mut self, name: &str, receiver: &str, args: &[&str]) -> Value {
        let mut values = vec![self.string(receiver)];
        for arg in args {
            values.push(self.string(arg));
        }
        self.method(Type::String, name, &values).unwrap()
    }

    fn timestamp(&mut self, text: &str) -> i64 {
        let text = self.string(text);
        match self.function("timestamp", &[text]) {
            Ok(Value::Timestamp(millis)) => millis,
            other => panic!("`timestamp` gave {other:?}"),
        }
    }

    fn duration(&mut self, text: &str) -> i64 {
        let text = self.string(text);
        match self.function("duration", &[text]) {
            Ok(Value::Duration(millis)) => millis,
            other => panic!("`duration` gave {other:?}"),
        }
    }

    fn timestamp_method(&mut self, name: &str, args: &[Value]) -> Result<Value, EvalError> {
        self.method(Type::Timestamp, name, args)
    }

    fn duration_in(&mut self, name: &str, millis: i64) -> i64 {
        match self.method(Type::Duration, name, &[Value::Duration(millis)]) {
            Ok(Value::Long(count)) => count,
            other => panic!("`{name}` gave {other:?}"),
        }
    }
}

/// The signature type of a value.
fn type_of(value: Value) -> Option<Type> {
    Some(match value {
        Value::Bool(_) => Type::Bool,
        Value::Long(_) => Type::Long,
        Value::Str(_) => Type::String,
        Value::Ip(_) => Type::Ip,
        Value::Timestamp(_) => Type::Timestamp,
        Value::Duration(_) => Type::Duration,
        _ => return None,
    })
}

// ---- IP addresses and ranges ----

#[test]
fn ip_makes_addresses_and_ranges() {
    with_calls(|calls| {
        let range = calls.ip("10.0.0.7/8");
        assert_eq!(
            calls.evaluator.ip(range),
            Ok(IpNet {
                addr: IpAddr::from([10, 0, 0, 7]),
                prefix: 8
            })
        );
        let address = calls.ip("::1");
        assert_eq!(
            calls.evaluator.ip(address),
            Ok(IpNet {
                addr: IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1u16]),
                prefix: 128
            })
        );
    });
}

#[test]
fn ip_of_a_bad_runtime_string_is_an_extension_error() {
    with_calls(|calls| {
        for text in [
            "",
            "300.1.1.1",
            "10.0.0.0/33",
            "::/129",
            " 10.0.0.1",
            "10.0.0.0/",
            "::g",
        ] {
            let value = calls.string(text);
            assert!(
                matches!(calls.function("ip", &[value]), Err(EvalError::Extension(_))),
                "{text:?}"
            );
        }
    });
}

#[test]
fn ip_families() {
    with_calls(|calls| {
        for (text, v4) in [
            ("10.0.0.1", true),
            ("0.0.0.0/0", true),
            ("::1", false),
            ("::/0", false),
            ("::ffff:10.0.0.1", false),
        ] {
            assert_eq!(calls.ip_test("isIpv4", text), v4, "{text}");
            assert_eq!(calls.ip_test("isIpv6", text), !v4, "{text}");
        }
    });
}

#[test]
fn in_range_at_cidr_boundaries() {
    with_calls(|calls| {
        let cases = [
            // Prefix 0 holds every address and range of its family, and nothing of the other.
            ("0.0.0.0", "0.0.0.0/0", true),
            ("255.255.255.255", "0.0.0.0/0", true),
            ("10.0.0.0/8", "0.0.0.0/0", true),
            ("0.0.0.0/0", "0.0.0.0/0", true),
            ("::", "::/0", true),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0", true),
            ("::1", "0.0.0.0/0", false),
            ("10.0.0.1", "::/0", false),
            ("::ffff:10.0.0.1", "10.0.0.0/8", false),
            ("::ffff:10.0.0.1", "::ffff:0:0/96", true),
            // Full prefixes hold exactly one address.
            ("10.0.0.1", "10.0.0.1/32", true),
            ("10.0.0.1", "10.0.0.1", true),
            ("10.0.0.2", "10.0.0.1/32", false),
            ("2001:db8::1", "2001:db8::1/128", true),
            ("2001:db8::2", "2001:db8::1/128", false),
            ("::1", "::1", true),
            // The first and last address of a range, and their neighbours outside it.
            ("10.0.0.0", "10.0.0.0/24", true),
            ("10.0.0.255", "10.0.0.0/24", true),
            ("10.0.1.0", "10.0.0.0/24", false),
            ("9.255.255.255", "10.0.0.0/24", false),
            ("2001:db8::", "2001:db8::/32", true),
            (
                "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
                "2001:db8::/32",
                true,
            ),
            ("2001:db9::", "2001:db8::/32", false),
            (
                "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
                "2001:db8::/32",
                false,
            ),
            // Prefixes that do not fall on a byte or group boundary.
            ("10.0.0.1", "10.0.0.0/31", true),
            ("10.0.0.2", "10.0.0.0/31", false),
            ("2001:db8::", "2001:db9::/31", true),
            ("2001:dba::", "2001:db9::/31", false),
            // Host bits of the range are ignored.
            ("10.0.0.200", "10.0.0.7/24", true),
            // A range is in a range when it lies wholly inside it.
            ("10.1.0.0/16", "10.0.0.0/8", true),
            ("10.1.2.3/16", "10.0.0.0/8", true),
            ("10.0.0.0/8", "10.0.0.0/8", true),
            ("10.0.0.0/8", "10.1.0.0/16", false),
            ("10.0.0.0/7", "10.0.0.0/8", false),
            ("fe80::/10", "fe80::/9", true),
            ("fe80::/9", "fe80::/10", false),
        ];
        for (ip, range, expected) in cases {
            assert_eq!(calls.in_range(ip, range), expected, "{ip} in {range}");
        }
    });
}

#[test]
fn loopback_is_127_0_0_0_slash_8_and_ipv6_one() {
    with_calls(|calls| {
        let cases = [
            ("127.0.0.1", true),
            ("127.0.0.0", true),
            ("127.255.255.255", true),
            ("127.0.0.0/8", true),
            ("127.1.0.0/16", true),
            ("127.0.0.0/7", false),
            ("126.255.255.255", false),
            ("128.0.0.0", false),
            ("0.0.0.0/0", false),
            ("::1", true),
            ("::1/128", true),
            ("::1/127", false),
            ("::", false),
            ("::2", false),
            ("::ffff:127.0.0.1", false),
        ];
        for (text, expected) in cases {
            assert_eq!(calls.ip_test("isLoopback", text), expected, "{text}");
        }
    });
}

#[test]
fn multicast_is_224_0_0_0_slash_4_and_ff00_slash_8() {
    with_calls(|calls| {
        let cases = [
            ("224.0.0.1", true),
            ("224.0.0.0", true),
            ("239.255.255.255", true),
            ("224.0.0.0/4", true),
            ("239.0.0.0/8", true),
            ("224.0.0.0/3", false),
            ("223.255.255.255", false),
            ("240.0.0.0", false),
            ("ff02::1", true),
            ("ff00::", true),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("ff00::/8", true),
            ("ff00::/7", false),
            ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("fe80::1", false),
            ("::ffff:224.0.0.1", false),
        ];
        for (text, expected) in cases {
            assert_eq!(calls.ip_test("isMulticast", text), expected, "{text}");
        }
    });
}

// ---- Strings ----

#[test]
fn prefix_suffix_and_substring_tests() {
    with_calls(|calls| {
        let cases = [
            ("startsWith", "abc", "a", true),
            ("startsWith", "abc", "abc", true),
            ("startsWith", "abc", "", true),
            ("startsWith", "", "", true),
            ("startsWith", "ab", "abc", false),
            ("startsWith", "abc", "A", false),
            ("startsWith", "", "a", false),
            ("endsWith", "abc", "bc", true),
            ("endsWith", "abc", "", true),
            ("endsWith", "", "", true),
            ("endsWith", "abc", "ab", false),
            ("endsWith", "bc", "abc", false),
            ("contains", "abc", "b", true),
            ("contains", "abc", "abc", true),
            ("contains", "abc", "", true),
            ("contains", "", "", true),
            ("contains", "", "a", false),
            ("contains", "abc", "ac", false),
            ("contains", "naïve", "ï", true),
            ("startsWith", "é", "e", false),
            ("startsWith", "e\u{301}", "e", true),
        ];
        for (name, receiver, arg, expected) in cases {
            assert_eq!(
                calls.string_method(name, receiver, &[arg]),
                Value::Bool(expected),
                "{receiver:?}.{name}({arg:?})"
            );
        }
    });
}

#[test]
fn strings_from_every_source_are_read() {
    with_calls(|calls| {
        // The program's interner, the request's strings and the evaluator's scratch strings.
        let program = calls.string(PROGRAM_TEXT);
        let request = calls.string(REQUEST_TEXT);
        let scratch = calls.string("Scratch Text");
        let text = calls.string("Text");
        for receiver in [program, request, scratch] {
            assert_eq!(
                calls.method(Type::String, "endsWith", &[receiver, text]),
                Ok(Value::Bool(true))
            );
            let lowered = calls.method(Type::String, "toLower", &[receiver]).unwrap();
            assert_eq!(calls.text(lowered), calls.text(receiver).to_lowercase());
        }
    });
}

#[test]
fn case_mapping() {
    with_calls(|calls| {
        let cases = [
            ("toLower", "Hello, World", "hello, world"),
            ("toUpper", "Hello, World", "HELLO, WORLD"),
            ("toLower", "", ""),
            ("toUpper", "", ""),
            ("toLower", "ÀÉÎ", "àéî"),
            ("toUpper", "straße", "STRASSE"),
            ("toUpper", "ωμέγα", "ΩΜΈΓΑ"),
            ("toLower", "İ", "i\u{307}"),
            ("toUpper", "日本語", "日本語"),
            ("toLower", "123 _-", "123 _-"),
        ];
        for (name, text, expected) in cases {
            let result = calls.string_method(name, text, &[]);
            assert_eq!(calls.text(result), expected, "{text:?}.{name}()");
        }
    });
}

#[test]
fn case_mapping_keeps_the_symbol_of_an_unchanged_string() {
    with_calls(|calls| {
        let lower = calls.string("already lower é");
        assert_eq!(calls.method(Type::String, "toLower", &[lower]), Ok(lower));
        let upper = calls.string("ALREADY UPPER É");
        assert_eq!(calls.method(Type::String, "toUpper", &[upper]), Ok(upper));
        // A changed string that exists already gets that string's symbol, so equality holds.
        let hello = calls.string("hello");
        let raised = calls.string("HELLO");
        assert_eq!(calls.method(Type::String, "toLower", &[raised]), Ok(hello));
    });
}

#[test]
fn length_counts_characters() {
    with_calls(|calls| {
        let cases = [
            ("", 0),
            ("abc", 3),
            ("héllo", 5),
            ("日本語", 3),
            ("e\u{301}", 2),
            ("👍🏽", 2),
            ("straße", 6),
        ];
        for (text, expected) in cases {
            assert_eq!(
                calls.string_method("length", text, &[]),
                Value::Long(expected),
                "{text:?}"
            );
        }
        let raised = calls.string_method("toUpper", "straße", &[]);
        assert_eq!(
            calls.method(Type::String, "length", &[raised]),
            Ok(Value::Long(7))
        );
    });
}

// ---- Timestamps and durations ----

#[test]
fn timestamp_and_duration_parse_runtime_strings() {
    with_calls(|calls| {
        assert_eq!(calls.timestamp("1970-01-01T00:00:00Z"), 0);
        assert_eq!(calls.timestamp("2024-01-31T12:00:00Z"), 1_706_702_400_000);
        assert_eq!(calls.timestamp("1969-12-31T23:59:59.999Z"), -1);
        assert_eq!(calls.duration("1h30m"), 5_400_000);
        assert_eq!(calls.duration("-2d"), -2 * DAY);
        assert_eq!(calls.duration("0s"), 0);
        for (name, text) in [
            ("timestamp", ""),
            ("timestamp", "2023-02-29T00:00:00Z"),
            ("timestamp", "2024-01-31"),
            ("timestamp", "yesterday"),
            ("duration", ""),
            ("duration", "1w"),
            ("duration", "1 hour"),
            ("duration", "99999999999999999999ms"),
        ] {
            let value = calls.string(text);
            assert!(
                matches!(calls.function(name, &[value]), Err(EvalError::Extension(_))),
                "{name}({text:?})"
            );
        }
    });
}

#[test]
fn offset_and_duration_since() {
    with_calls(|calls| {
        let noon = Value::Timestamp(calls.timestamp("2024-01-31T12:00:00Z"));
        let next_day = Value::Timestamp(calls.timestamp("2024-02-01T01:30:00Z"));
        let span = Value::Duration(calls.duration("13h30m"));
        let back = Value::Duration(calls.duration("-13h30m"));
        assert_eq!(
            calls.timestamp_method("offset", &[noon, span]),
            Ok(next_day)
        );
        assert_eq!(
            calls.timestamp_method("offset", &[next_day, back]),
            Ok(noon)
        );
        assert_eq!(
            calls.timestamp_method("durationSince", &[next_day, noon]),
            Ok(span)
        );
        assert_eq!(
            calls.timestamp_method("durationSince", &[noon, next_day]),
            Ok(back)
        );
        assert_eq!(
            calls.timestamp_method("durationSince", &[noon, noon]),
            Ok(Value::Duration(0))
        );
    });
}

#[test]
fn timestamp_arithmetic_overflow_is_an_error() {
    with_calls(|calls| {
        let cases = [
            ("offset", Value::Timestamp(i64::MAX), Value::Duration(1)),
            ("offset", Value::Timestamp(i64::MIN), Value::Duration(-1)),
            ("offset", Value::Timestamp(1), Value::Duration(i64::MAX)),
            (
                "durationSince",
                Value::Timestamp(i64::MAX),
                Value::Timestamp(-1),
            ),
            (
                "durationSince",
                Value::Timestamp(i64::MIN),
                Value::Timestamp(1),
            ),
        ];
        for (name, receiver, arg) in cases {
            let (Value::Timestamp(millis), Value::Timestamp(other) | Value::Duration(other)) =
                (receiver, arg)
            else {
                panic!("{receiver:?} {arg:?}")
            };
            let expected = match name {
                "offset" => Overflow::Offset(millis, other),
                _ => Overflow::DurationSince(millis, other),
            };
            assert_eq!(
                calls.timestamp_method(name, &[receiver, arg]),
                Err(EvalError::Overflow(expected)),
                "{receiver:?}.{name}({arg:?})"
            );
        }
        assert_eq!(
            calls.timestamp_method("offset", &[Value::Timestamp(i64::MAX), Value::Duration(0)]),
            Ok(Value::Timestamp(i64::MAX))
        );
        assert_eq!(
            calls.timestamp_method("toDate", &[Value::Timestamp(i64::MIN)]),
            Err(EvalError::Overflow(Overflow::Calendar(i64::MIN)))
        );
    });
}

#[test]
fn to_date_is_midnight_utc_also_before_1970_and_on_leap_days() {
    with_calls(|calls| {
        let cases = [
            ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
            ("1970-01-01T23:59:59.999Z", "1970-01-01T00:00:00Z"),
            ("1969-12-31T23:59:59.999Z", "1969-12-31T00:00:00Z"),
            ("1969-12-31T00:00:00Z", "1969-12-31T00:00:00Z"),
            ("1969-12-31T00:00:00.001Z", "1969-12-31T00:00:00Z"),
            ("1900-03-01T12:00:00Z", "1900-03-01T00:00:00Z"),
            ("1600-02-29T06:00:00Z", "1600-02-29T00:00:00Z"),
            ("0001-01-01T00:00:01Z", "0001-01-01T00:00:00Z"),
            ("2000-02-29T23:59:59.999Z", "2000-02-29T00:00:00Z"),
            ("2024-02-29T13:45:10.123Z", "2024-02-29T00:00:00Z"),
            ("2024-03-01T00:00:00Z", "2024-03-01T00:00:00Z"),
            ("2023-12-31T23:59:59Z", "2023-12-31T00:00:00Z"),
            ("2024-01-01T01:00:00+02:00", "2023-12-31T00:00:00Z"),
            ("9999-12-31T23:59:59.999Z", "9999-12-31T00:00:00Z"),
        ];
        for (instant, midnight) in cases {
            let instant_value = Value::Timestamp(calls.timestamp(instant));
            let midnight_value = Value::Timestamp(calls.timestamp(midnight));
            assert_eq!(
                calls.timestamp_method("toDate", &[instant_value]),
                Ok(midnight_value),
                "{instant}"
            );
        }
    });
}

#[test]
fn to_time_is_the_duration_since_midnight() {
    with_calls(|calls| {
        let cases = [
            ("1970-01-01T00:00:00Z", "0ms"),
            ("2024-01-31T12:00:00Z", "12h"),
            ("2024-02-29T13:45:10.123Z", "13h45m10s123ms"),
            ("1969-12-31T23:59:59.999Z", "23h59m59s999ms"),
            ("1969-12-31T00:00:00Z", "0s"),
            ("1900-01-01T06:00:00Z", "6h"),
        ];
        for (instant, time) in cases {
            let instant_value = Value::Timestamp(calls.timestamp(instant));
            let time_value = Value::Duration(calls.duration(time));
            assert_eq!(
                calls.timestamp_method("toTime", &[instant_value]),
                Ok(time_value),
                "{instant}"
            );
        }
        assert_eq!(
            calls.timestamp_method("toTime", &[Value::Timestamp(i64::MIN)]),
            Ok(Value::Duration(i64::MIN.rem_euclid(DAY)))
        );
    });
}

#[test]
fn duration_conversions_truncate_toward_zero() {
    with_calls(|calls| {
        let long = calls.duration("1d2h3m4s5ms");
        assert_eq!(calls.duration_in("toDays", long), 1);
        assert_eq!(calls.duration_in("toHours", long), 26);
        assert_eq!(calls.duration_in("toMinutes", long), 1563);
        assert_eq!(calls.duration_in("toSeconds", long), 93_784);
        assert_eq!(calls.duration_in("toMilliseconds", long), 93_784_005);
        let negative = calls.duration("-90m");
        assert_eq!(calls.duration_in("toHours", negative), -1);
        assert_eq!(calls.duration_in("toDays", negative), 0);
        assert_eq!(calls.duration_in("toMinutes", negative), -90);
        assert_eq!(calls.duration_in("toSeconds", -1), 0);
        assert_eq!(calls.duration_in("toDays", 0), 0);
        assert_eq!(calls.duration_in("toMilliseconds", i64::MIN), i64::MIN);
        assert_eq!(calls.duration_in("toDays", i64::MIN), i64::MIN / DAY);
        assert_eq!(calls.duration_in("toSeconds", i64::MAX), i64::MAX / 1000);
    });
}

proptest! {
    #[test]
    fn date_and_time_split_an_instant(millis in any::<i64>()) {
        with_calls(|calls| {
            let instant = Value::Timestamp(millis);
            let time = calls.timestamp_method("toTime", &[instant]).unwrap();
            let Value::Duration(since_midnight) = time else { panic!("{time:?}") };
            prop_assert!((0..DAY).contains(&since_midnight));
            match calls.timestamp_method("toDate", &[instant]) {
                Ok(date) => {
                    let Value::Timestamp(midnight) = date else { panic!("{date:?}") };
                    prop_assert_eq!(midnight.rem_euclid(DAY), 0);
                    prop_assert_eq!(calls.timestamp_method("offset", &[date, time]), Ok(instant));
                    prop_assert_eq!(calls.timestamp_method("durationSince", &[instant, date]), Ok(time));
                }
                // Only the first day of the range has its midnight out of range.
                Err(error) => {
                    prop_assert_eq!(error, EvalError::Overflow(Overflow::Calendar(millis)));
                    prop_assert!(millis < i64::MIN + DAY);
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn offset_and_duration_since_are_inverse(start in any::<i64>(), span in any::<i64>()) {
        with_calls(|calls| {
            let start_value = Value::Timestamp(start);
            match calls.timestamp_method("offset", &[start_value, Value::Duration(span)]) {
                Ok(end) => prop_assert_eq!(
                    calls.timestamp_method("durationSince", &[end, start_value]),
                    Ok(Value::Duration(span))
                ),
                Err(error) => {
                    prop_assert_eq!(error, EvalError::Overflow(Overflow::Offset(start, span)));
                    prop_assert!(start.checked_add(span).is_none());
                }
            }
            Ok(())
        })?;
    }
}

// ---- The whole table ----

/// One entry of the signature table.
#[derive(Clone, Copy, Debug)]
enum Entry {
    Function(&'static Function),
    Method(&'static Method),
}

/// Every entry of the signature table.
fn table() -> Vec<Entry> {
    let functions = FUNCTIONS.iter().map(Entry::Function);
    functions.chain(METHODS.iter().map(Entry::Method)).collect()
}

impl Entry {
    fn name(self) -> String {
        match self {
            Entry::Function(function) => function.name.to_owned(),
            Entry::Method(method) => format!("{}.{}", method.receiver, method.name),
        }
    }

    /// The parameter types, the receiver first for methods.
    fn params(self) -> Vec<Type> {
        match self {
            Entry::Function(function) => function.params.to_vec(),
            Entry::Method(method) => {
                let mut params = vec![method.receiver];
                params.extend_from_slice(method.params);
                params
            }
        }
    }

    fn ret(self) -> Type {
        match self {
            Entry::Function(function) => function.ret,
            Entry::Method(method) => method.ret,
        }
    }

    fn call(self, calls: &mut Calls<'_>, args: &[Value]) -> Result<Value, EvalError> {
        match self {
            Entry::Function(function) => calls.function(function.name, args),
            Entry::Method(method) => calls.method(method.receiver, method.name, args),
        }
    }
}

/// Sample values of a signature type, valid and edge alike.
fn samples(calls: &mut Calls<'_>, ty: Type) -> Vec<Value> {
    match ty {
        Type::Bool => vec![Value::Bool(true), Value::Bool(false)],
        Type::Long => vec![Value::Long(0), Value::Long(i64::MIN)],
        Type::String => [
            "",
            "10.0.0.1",
            "::1/64",
            "2024-02-29T12:00:00Z",
            "-1h30m",
            "Straße",
            "Europe/Berlin",
        ]
        .iter()
        .map(|text| calls.string(text))
        .collect(),
        Type::Ip => ["10.0.0.1", "0.0.0.0/0", "::1", "ff00::/8"]
            .iter()
            .map(|text| calls.ip(text))
            .collect(),
        Type::Timestamp => [0, -1, i64::MIN, i64::MAX]
            .into_iter()
            .map(Value::Timestamp)
            .collect(),
        Type::Duration => [0, -1, DAY, i64::MIN, i64::MAX]
            .into_iter()
            .map(Value::Duration)
            .collect(),
    }
}

/// Every list of sample arguments for these parameter types.
fn argument_lists(calls: &mut Calls<'_>, params: &[Type]) -> Vec<Vec<Value>> {
    let mut lists = vec![Vec::new()];
    for param in params {
        let values = samples(calls, *param);
        lists = lists
            .iter()
            .flat_map(|list| {
                values.iter().map(move |value| {
                    let mut longer = list.clone();
                    longer.push(*value);
                    longer
                })
            })
            .collect();
    }
    lists
}

#[test]
fn well_typed_calls_return_the_declared_type() {
    with_calls(|calls| {
        for entry in table() {
            let mut n_ok = 0;
            for args in argument_lists(calls, &entry.params()) {
                match entry.call(calls, &args) {
                    Ok(value) => {
                        assert_eq!(
                            type_of(value),
                            Some(entry.ret()),
                            "{}{args:?}",
                            entry.name()
                        );
                        n_ok += 1;
                    }
                    Err(EvalError::WrongType(kind)) => {
                        panic!("{}{args:?}: wrong type {kind}", entry.name())
                    }
                    Err(_) => {}
                }
            }
            assert!(n_ok > 0, "{} never succeeded", entry.name());
        }
    });
}

#[test]
fn ill_typed_calls_are_type_errors() {
    with_calls(|calls| {
        let entity = Value::Entity(EntityUid {
            ty: TypeId(0),
            id: Sym(0),
        });
        for entry in table() {
            let arity = entry.params().len();
            let absent = vec![Value::Absent; arity + 1];
            let ill_typed = [
                ("too few arguments", &absent[..arity - 1]),
                ("too many arguments", &absent[..]),
                ("absent arguments", &absent[..arity]),
                ("entity arguments", &vec![entity; arity][..]),
            ];
            for (what, args) in ill_typed {
                assert!(
                    matches!(entry.call(calls, args), Err(EvalError::WrongType(_))),
                    "{} with {what}",
                    entry.name()
                );
            }
        }
    });
}

/// `t.method(zone)` for a timestamp given as RFC 3339 text.
fn local(
    calls: &mut Calls<'_>,
    method: &str,
    instant: &str,
    zone: &str,
) -> Result<Value, EvalError> {
    let instant = Value::Timestamp(calls.timestamp(instant));
    let zone = calls.string(zone);
    calls.timestamp_method(method, &[instant, zone])
}

#[test]
fn local_time_follows_daylight_saving_changes() {
    with_calls(|calls| {
        // Berlin springs forward on 2026-03-29 at 01:00 UTC (02:00 local becomes 03:00) and falls
        // back on 2026-10-25 at 01:00 UTC (03:00 local becomes 02:00).
        let cases = [
            ("2026-03-29T00:59:59Z", "1h59m59s"),
            ("2026-03-29T01:00:00Z", "3h"),
            ("2026-03-29T07:00:00Z", "9h"),
            ("2026-03-28T08:00:00Z", "9h"),
            ("2026-10-25T00:59:00Z", "2h59m"),
            ("2026-10-25T01:00:00Z", "2h"),
            ("2026-10-25T08:00:00Z", "9h"),
            ("2026-10-24T07:00:00Z", "9h"),
        ];
        for (instant, wall) in cases {
            let expected = Value::Duration(calls.duration(wall));
            assert_eq!(
                local(calls, "timeOfDay", instant, "Europe/Berlin"),
                Ok(expected),
                "{instant}"
            );
        }
        // The same instant is another day and date on either side of the date line.
        assert_eq!(
            local(calls, "dayOfWeek", "2026-12-06T23:30:00Z", "UTC"),
            Ok(Value::Long(7))
        );
        assert_eq!(
            local(
                calls,
                "dayOfWeek",
                "2026-12-06T23:30:00Z",
                "Pacific/Auckland"
            ),
            Ok(Value::Long(1))
        );
        assert_eq!(
            local(
                calls,
                "dayOfWeek",
                "2026-12-06T23:30:00Z",
                "America/Los_Angeles"
            ),
            Ok(Value::Long(7))
        );
        let date = local(calls, "date", "2026-12-06T23:30:00Z", "Pacific/Auckland").unwrap();
        assert_eq!(calls.text(date), "2026-12-07");
        let date = local(calls, "date", "2026-03-29T00:30:00Z", "Europe/Berlin").unwrap();
        assert_eq!(calls.text(date), "2026-03-29");
        assert_eq!(
            local(calls, "timeOfDay", "2026-01-01T00:00:00Z", "Mars/Olympus"),
            Err(EvalError::Extension("unknown time zone"))
        );
    });
}
