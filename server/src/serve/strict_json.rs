//! Request bodies parsed as JSON the way the runtime's loaders read files: an object with the
//! same key twice is refused rather than silently collapsed to its last value, and nesting deeper
//! than the parser's recursion limit is reported as such, not as a syntax error.
//!
//! A duplicate key is a parser differential waiting to happen: a gateway that logs the first
//! `principal` and a server that decides on the last one disagree about who asked.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};

use super::api_error::ApiError;

/// Parses a request body.
pub fn parse(body: &[u8]) -> Result<Json, ApiError> {
    match serde_json::from_slice::<Strict>(body) {
        Ok(Strict(json)) => Ok(json),
        Err(error) => {
            let message = error.to_string();
            let code = if message.starts_with("recursion limit exceeded") {
                "authz::request::too_deep"
            } else if message.starts_with(DUPLICATE) {
                "authz::request::duplicate_key"
            } else {
                "authz::request::syntax"
            };
            Err(ApiError::bad(code, "", format!("invalid JSON: {message}")))
        }
    }
}

const DUPLICATE: &str = "duplicate key";

/// A JSON value whose objects have distinct keys.
struct Strict(Json);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Strict, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Json;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Json, E> {
        Ok(Json::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Json, E> {
        Ok(Json::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Json, E> {
        Ok(Json::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Json, E> {
        Ok(serde_json::Number::from_f64(value).map_or(Json::Null, Json::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Json, E> {
        Ok(Json::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Json, E> {
        Ok(Json::String(value))
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Json, A::Error> {
        let mut values = Vec::new();
        while let Some(Strict(value)) = items.next_element()? {
            values.push(value);
        }
        Ok(Json::Array(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Json, A::Error> {
        let mut members = Map::new();
        while let Some(key) = entries.next_key::<String>()? {
            if members.contains_key(&key) {
                return Err(de::Error::custom(format!("{DUPLICATE} `{key}`")));
            }
            let Strict(value) = entries.next_value()?;
            members.insert(key, value);
        }
        Ok(Json::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &str) -> String {
        match parse(body.as_bytes()) {
            Ok(_) => "ok".to_string(),
            Err(ApiError::BadRequest { code, .. }) => code,
            Err(other) => format!("{other:?}"),
        }
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert_eq!(code(r#"{"a": 1, "a": 2}"#), "authz::request::duplicate_key");
        assert_eq!(
            code(r#"[{"b": {"a": 1, "a": 1}}]"#),
            "authz::request::duplicate_key"
        );
        assert_eq!(
            code(r#"{"a": {"a": 1}, "b": [1, 1.5, null, true, "x"]}"#),
            "ok"
        );
    }

    #[test]
    fn deep_nesting_is_too_deep_not_a_syntax_error() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(code(&deep), "authz::request::too_deep");
        assert_eq!(code("{"), "authz::request::syntax");
    }

    #[test]
    fn numbers_keep_their_kind() {
        let json = parse(br#"[-1, 18446744073709551615, 0.5]"#).unwrap();
        assert_eq!(json, serde_json::json!([-1, 18446744073709551615u64, 0.5]));
    }
}
