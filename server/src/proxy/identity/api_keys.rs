//! API keys, stored as SHA-256 digests and mapped to principals.
//!
//! The key file is TOML:
//!
//! ```toml
//! [[keys]]
//! sha256 = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
//! type = "Service"
//! id = "billing"
//! attributes = { team = "payments", tier = 2 }
//! ```
//!
//! `printf %s "$KEY" | sha256sum` prints the digest of a key. The plaintext of a key is never
//! stored: a presented key is hashed and the digest looked up in a hash map, so the time the
//! lookup takes depends on the digest, never on how many leading characters of a real key the
//! caller guessed. Attributes are TOML values; they become the JSON attributes of the principal
//! entity (a TOML date-time becomes its string form).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::config::ConfigError;
use super::{principal_entity, Identity};

/// The longest API key accepted, in bytes.
pub const MAX_API_KEY_BYTES: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(default)]
    keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    sha256: String,
    #[serde(rename = "type")]
    principal_type: String,
    id: String,
    #[serde(default)]
    attributes: toml::Table,
}

/// The principals of the API keys, by the digest of the key.
#[derive(Debug, Default)]
pub struct ApiKeyStore {
    by_digest: HashMap<[u8; 32], Arc<Identity>>,
}

impl ApiKeyStore {
    /// Reads a key file; errors name the file and the entry.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let key = "identity.api_keys.file";
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigError::new(key, format!("cannot read {}: {error}", path.display()))
        })?;
        Self::parse(&text)
            .map_err(|message| ConfigError::new(key, format!("in {}: {message}", path.display())))
    }

    /// Parses the text of a key file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: KeyFile = toml::from_str(text).map_err(|error| error.message().to_string())?;
        let mut by_digest = HashMap::new();
        for (index, entry) in file.keys.into_iter().enumerate() {
            let digest = parse_digest(&entry.sha256).ok_or_else(|| {
                format!("keys[{index}].sha256: expected 64 hexadecimal digits (a SHA-256 digest)")
            })?;
            if entry.principal_type.is_empty() || entry.id.is_empty() {
                return Err(format!("keys[{index}]: `type` and `id` must not be empty"));
            }
            let attributes = entry
                .attributes
                .into_iter()
                .map(|(name, value)| (name, toml_to_json(value)))
                .collect();
            let identity = Identity::new(
                principal_entity(&entry.principal_type, &entry.id, attributes),
                "api-key",
                None,
            );
            if by_digest.insert(digest, Arc::new(identity)).is_some() {
                return Err(format!(
                    "keys[{index}].sha256: the same key is listed twice"
                ));
            }
        }
        Ok(ApiKeyStore { by_digest })
    }

    /// The entity types of the keys' principals.
    pub fn principal_types(&self) -> impl Iterator<Item = String> + '_ {
        self.by_digest.values().filter_map(|identity| {
            identity
                .principal
                .get("type")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        })
    }

    /// Whether the keys, once verified, are forwarded upstream (`forward_credentials`): set
    /// once, when the store is built.
    pub fn forward_credentials(&mut self, forward: bool) {
        for identity in self.by_digest.values_mut() {
            Arc::make_mut(identity).forward_credential = forward;
        }
    }

    /// The principal of a presented key, if the key is known.
    pub fn lookup(&self, presented: &str) -> Option<Arc<Identity>> {
        let digest = super::sha256(presented.as_bytes());
        self.by_digest.get(&digest).cloned()
    }

    #[cfg(test)]
    /// How many keys the store has.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(text.chunks_exact(2)) {
        let [high, low] = pair else { return None };
        *byte = hex_value(*high)? << 4 | hex_value(*low)?;
    }
    Some(digest)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(text) => Value::String(text),
        toml::Value::Integer(number) => Value::from(number),
        toml::Value::Float(number) => Value::from(number),
        toml::Value::Boolean(flag) => Value::Bool(flag),
        toml::Value::Datetime(datetime) => Value::String(datetime.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .into_iter()
                .map(|(name, value)| (name, toml_to_json(value)))
                .collect(),
        ),
    }
}
