//! The JSON tree the loaders read: parsed from text with bounded nesting and size and with
//! duplicate keys rejected, or converted from a `serde_json::Value` with the same bounds.
//!
//! A separate tree (rather than `serde_json::Value`) lets the loaders tell an integer that does
//! not fit in 64 bits from a fraction, see duplicate keys (which `serde_json::Value` silently
//! collapses to the last one) and meet over-deep input as a marker at a known path instead of a
//! stack overflow. Every tree is at most `max_depth` containers deep, so the recursive code that
//! walks it (the loaders, value comparison, `Drop`) is bounded too.

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json {
    /// `null`
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits in 64 signed bits.
    Int(i64),
    /// An integer that does not fit in 64 signed bits: as written when it fits in a `u64`,
    /// otherwise approximately, in scientific notation.
    BigInt(String),
    /// A number with a fraction or an exponent.
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, its members in the order written; keys are unique.
    Object(Vec<(String, Json)>),
    /// A container nested deeper than the limit (only from [`from_value`]; text that nests too
    /// deep is a [`ParseError`]).
    TooDeep,
}

impl Json {
    /// A short description of the value for "found ..." in messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Json::Null => "`null`".to_owned(),
            Json::Bool(value) => format!("`{value}`"),
            Json::Int(value) => format!("the integer `{value}`"),
            Json::BigInt(text) => format!("the integer `{text}`"),
            Json::Float(value) => format!("the number `{value}`"),
            Json::Str(text) if text.chars().count() <= 40 => format!("the string `{text:?}`"),
            Json::Str(_) => "a string".to_owned(),
            Json::Array(_) => "an array".to_owned(),
            Json::Object(_) => "an object".to_owned(),
            Json::TooDeep => "a value nested too deep".to_owned(),
        }
    }

    /// The member `key` of an object.
    pub(crate) fn member<'a>(members: &'a [(String, Json)], key: &str) -> Option<&'a Json> {
        members
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }
}

/// Bounds on the input.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// The deepest nesting of arrays and objects; the outermost container is at depth 1.
    pub(crate) max_depth: usize,
    /// The most values (of any kind, containers included) in the whole input.
    pub(crate) max_values: usize,
}

/// Why text could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// Not well-formed JSON.
    Syntax {
        message: String,
        line: usize,
        column: usize,
    },
    /// Arrays and objects nested deeper than the limit.
    TooDeep {
        limit: usize,
        line: usize,
        column: usize,
    },
    /// The same key twice in one object.
    DuplicateKey {
        key: String,
        line: usize,
        column: usize,
    },
    /// More values than the limit.
    TooManyValues {
        limit: usize,
        line: usize,
        column: usize,
    },
}

/// What went wrong inside the visitor, beside the message serde_json keeps.
#[derive(Clone, Debug)]
enum Problem {
    TooDeep,
    DuplicateKey(String),
    TooManyValues,
}

struct State {
    limits: Limits,
    values: Cell<usize>,
    problem: Cell<Option<Problem>>,
}

impl State {
    fn count<E: serde::de::Error>(&self) -> Result<(), E> {
        let values = self.values.get().saturating_add(1);
        self.values.set(values);
        if values > self.limits.max_values {
            self.problem.set(Some(Problem::TooManyValues));
            return Err(E::custom("too many values"));
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct Seed<'a> {
    state: &'a State,
    depth: usize,
}

impl Seed<'_> {
    fn enter<E: serde::de::Error>(self) -> Result<Self, E> {
        let depth = self.depth.saturating_add(1);
        if depth > self.state.limits.max_depth {
            self.state.problem.set(Some(Problem::TooDeep));
            return Err(E::custom("nested too deep"));
        }
        Ok(Seed {
            state: self.state,
            depth,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Json;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<Json, E> {
        self.state.count()?;
        Ok(Json::Bool(value))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Json, E> {
        self.state.count()?;
        Ok(Json::Int(value))
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Json, E> {
        self.state.count()?;
        Ok(match i64::try_from(value) {
            Ok(value) => Json::Int(value),
            Err(_) => Json::BigInt(value.to_string()),
        })
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Json, E> {
        self.state.count()?;
        Ok(classify_float(value))
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Json, E> {
        self.state.count()?;
        Ok(Json::Str(value.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Json, E> {
        self.state.count()?;
        Ok(Json::Str(value))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Json, E> {
        self.state.count()?;
        Ok(Json::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Json, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        self.state.count()?;
        let inner = self.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        self.state.count()?;
        let inner = self.enter()?;
        let mut members = Vec::new();
        let mut keys: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key.clone()) {
                let message = format!("duplicate key `{key}`");
                self.state.problem.set(Some(Problem::DuplicateKey(key)));
                return Err(A::Error::custom(message));
            }
            let value = map.next_value_seed(inner)?;
            members.push((key, value));
        }
        Ok(Json::Object(members))
    }
}

/// A float from serde_json: integers beyond 64 bits arrive as floats too, and are told apart
/// here by being whole and out of the `i64` range.
fn classify_float(value: f64) -> Json {
    // `i64::MIN` is -2^63 and exact as a float; `i64::MAX` rounds up to 2^63 as a float.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    let whole = value.is_finite() && value.fract() == 0.0;
    // A whole float equal to `i64::MIN` came from a longer integer: serde_json gives exactly
    // `i64::MIN` as an integer.
    if whole && !(value > -TWO_POW_63 && value < TWO_POW_63) {
        return Json::BigInt(format!("{value:e}"));
    }
    Json::Float(value)
}

/// Parses `text`, which must hold exactly one JSON value.
pub(crate) fn parse(text: &str, limits: Limits) -> Result<Json, ParseError> {
    let state = State {
        limits,
        values: Cell::new(0),
        problem: Cell::new(None),
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let seed = Seed {
        state: &state,
        depth: 0,
    };
    let result = seed
        .deserialize(&mut deserializer)
        .and_then(|json| deserializer.end().map(|()| json));
    let error = match result {
        Ok(json) => return Ok(json),
        Err(error) => error,
    };
    let (line, column) = (error.line(), error.column());
    Err(match state.problem.take() {
        Some(Problem::TooDeep) => ParseError::TooDeep {
            limit: limits.max_depth,
            line,
            column,
        },
        Some(Problem::DuplicateKey(key)) => ParseError::DuplicateKey { key, line, column },
        Some(Problem::TooManyValues) => ParseError::TooManyValues {
            limit: limits.max_values,
            line,
            column,
        },
        None => {
            let message = error.to_string();
            let position = format!(" at line {line} column {column}");
            let message = message.strip_suffix(&position).unwrap_or(&message);
            ParseError::Syntax {
                message: message.to_owned(),
                line,
                column,
            }
        }
    })
}

/// Too many values in a `serde_json::Value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TooManyValues;

/// Converts a parsed value; containers deeper than `limits.max_depth` become [`Json::TooDeep`].
pub(crate) fn from_value(value: &serde_json::Value, limits: Limits) -> Result<Json, TooManyValues> {
    let mut budget = limits.max_values;
    convert(value, 0, limits.max_depth, &mut budget)
}

fn convert(
    value: &serde_json::Value,
    depth: usize,
    max_depth: usize,
    budget: &mut usize,
) -> Result<Json, TooManyValues> {
    *budget = budget.checked_sub(1).ok_or(TooManyValues)?;
    Ok(match value {
        serde_json::Value::Null => Json::Null,
        serde_json::Value::Bool(value) => Json::Bool(*value),
        serde_json::Value::Number(number) => {
            if let Some(value) = number.as_i64() {
                Json::Int(value)
            } else if let Some(value) = number.as_u64() {
                Json::BigInt(value.to_string())
            } else {
                classify_float(number.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(text) => Json::Str(text.clone()),
        serde_json::Value::Array(items) => {
            if depth >= max_depth {
                return Ok(Json::TooDeep);
            }
            let mut converted = Vec::with_capacity(items.len().min(*budget));
            for item in items {
                converted.push(convert(item, depth + 1, max_depth, budget)?);
            }
            Json::Array(converted)
        }
        serde_json::Value::Object(members) => {
            if depth >= max_depth {
                return Ok(Json::TooDeep);
            }
            let mut converted = Vec::with_capacity(members.len().min(*budget));
            for (key, member) in members {
                converted.push((key.clone(), convert(member, depth + 1, max_depth, budget)?));
            }
            Json::Object(converted)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_depth: 4,
        max_values: 20,
    };

    fn check(text: &str, expected: Result<Json, ParseError>) {
        assert_eq!(parse(text, LIMITS), expected);
    }

    #[test]
    fn numbers_keep_their_kind() {
        check("5", Ok(Json::Int(5)));
        check("-9223372036854775808", Ok(Json::Int(i64::MIN)));
        check(
            "9223372036854775808",
            Ok(Json::BigInt("9223372036854775808".into())),
        );
        check("100000000000000000000000", Ok(Json::BigInt("1e23".into())));
        check(
            "-9223372036854775809",
            Ok(Json::BigInt("-9.223372036854776e18".into())),
        );
        check("1.5", Ok(Json::Float(1.5)));
        check("1e3", Ok(Json::Float(1000.0)));
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        check(
            "{\"a\": 1,\n \"a\": 2}",
            Err(ParseError::DuplicateKey {
                key: "a".into(),
                line: 2,
                column: 4,
            }),
        );
    }

    #[test]
    fn nesting_is_bounded() {
        check(
            "[[[[1]]]]",
            Ok(Json::Array(vec![Json::Array(vec![Json::Array(vec![
                Json::Array(vec![Json::Int(1)]),
            ])])])),
        );
        assert!(matches!(
            parse("[[[[[1]]]]]", LIMITS),
            Err(ParseError::TooDeep { limit: 4, .. })
        ));
        let deep = "[".repeat(1_000_000);
        assert!(matches!(
            parse(&deep, LIMITS),
            Err(ParseError::TooDeep { .. })
        ));
    }

    #[test]
    fn size_is_bounded() {
        let many = format!("[{}1]", "1,".repeat(30));
        assert!(matches!(
            parse(&many, LIMITS),
            Err(ParseError::TooManyValues { limit: 20, .. })
        ));
    }

    #[test]
    fn syntax_errors_have_positions_and_no_position_suffix() {
        check(
            "[1,\n 2,",
            Err(ParseError::Syntax {
                message: "EOF while parsing a value".into(),
                line: 2,
                column: 3,
            }),
        );
        assert!(matches!(
            parse("1 2", LIMITS),
            Err(ParseError::Syntax { .. })
        ));
    }

    #[test]
    fn converted_values_mark_deep_containers() {
        let value = serde_json::json!({"a": [[[[1]]]], "b": 18446744073709551615u64});
        let json = from_value(&value, LIMITS).unwrap();
        let Json::Object(members) = json else {
            unreachable!()
        };
        assert_eq!(
            Json::member(&members, "a"),
            Some(&Json::Array(vec![Json::Array(vec![Json::Array(vec![
                Json::TooDeep
            ])])]))
        );
        assert_eq!(
            Json::member(&members, "b"),
            Some(&Json::BigInt("18446744073709551615".into()))
        );
        let many = serde_json::Value::Array(vec![serde_json::Value::Null; 30]);
        assert_eq!(from_value(&many, LIMITS), Err(TooManyValues));
    }
}
