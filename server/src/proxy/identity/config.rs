//! The identity section of the proxy's configuration: JWT issuers, API keys and the token cache.
//!
//! The structures deserialize from TOML (or any serde format) and refuse unknown keys, so that a
//! misspelt key is an error rather than a silently ignored setting. [`IdentityConfig::validate`]
//! checks what serde cannot: an issuer has exactly one key source, an HMAC issuer allows only
//! HMAC algorithms and an asymmetric issuer only asymmetric ones (which rules out HS/RS key
//! confusion), audiences are not empty, and the timings are sensible.
//!
//! ```toml
//! [identity]
//! token_cache_size = 10000
//!
//! [[identity.jwt]]
//! issuer = "https://login.example.com/"
//! audiences = ["orders-api"]
//! algorithms = ["RS256", "ES256"]
//! jwks_url = "https://login.example.com/.well-known/jwks.json"
//! principal_type = "User"
//! id_claim = "sub"
//! attributes = { email = "email", roles = { claim = "roles", type = "Set<String>" } }
//!
//! [identity.api_keys]
//! file = "api-keys.toml"
//! header = "x-api-key"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde::de::{self, Deserializer};
use serde::Deserialize;

/// The default number of verified tokens kept in the cache.
pub const DEFAULT_TOKEN_CACHE_SIZE: usize = 10_000;

/// The default clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;

/// The default interval between two scheduled JWKS refreshes, in seconds.
pub const DEFAULT_JWKS_REFRESH_SECONDS: f64 = 300.0;

/// The default shortest interval between two JWKS fetches caused by unknown `kid`s, in seconds.
pub const DEFAULT_JWKS_MIN_REFETCH_SECONDS: f64 = 30.0;

/// The default time keys stay usable after the last successful JWKS fetch, in seconds.
pub const DEFAULT_JWKS_STALE_SECONDS: f64 = 3600.0;

/// The default time allowed for one JWKS fetch, in seconds.
pub const DEFAULT_JWKS_TIMEOUT_SECONDS: f64 = 5.0;

/// The shortest HMAC secret accepted, in bytes (the output size of SHA-256).
pub const MIN_HMAC_SECRET_BYTES: usize = 32;

/// The `[identity]` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// The JWT issuers that are trusted, each with its keys and claim mapping.
    #[serde(default)]
    pub jwt: Vec<IssuerConfig>,
    /// API keys, when they are accepted.
    #[serde(default)]
    pub api_keys: Option<ApiKeysConfig>,
    /// How many verified tokens the cache keeps (0 turns the cache off).
    #[serde(default = "default_token_cache_size")]
    pub token_cache_size: usize,
    /// How verified mTLS client certificates name their principal (see [`super::mtls`]).
    #[serde(default)]
    pub mtls: Option<super::mtls::MtlsConfig>,
}

fn default_token_cache_size() -> usize {
    DEFAULT_TOKEN_CACHE_SIZE
}

/// One trusted JWT issuer.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The exact value the `iss` claim must have.
    pub issuer: String,
    /// The audiences this proxy accepts; a token's `aud` must name at least one of them.
    pub audiences: Vec<String>,
    /// The algorithms accepted from this issuer. The token's header must name one of them; the
    /// header never widens this list, and `none` cannot be written here. May be left out for an
    /// issuer found by OIDC discovery: then the asymmetric algorithms its discovery document
    /// lists (`id_token_signing_alg_values_supported`) are accepted.
    #[serde(default)]
    pub algorithms: Vec<AlgorithmName>,
    /// A JWKS file holding the issuer's public keys.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// A JWKS URL (https, or http on loopback) serving the issuer's public keys.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The HMAC secret shared with the issuer, for the HS algorithms.
    #[serde(default)]
    pub hmac_secret: Option<Secret>,
    /// A file holding the HMAC secret (its bytes, a trailing newline removed).
    #[serde(default)]
    pub hmac_secret_file: Option<PathBuf>,
    /// The seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Seconds between scheduled refreshes of a JWKS URL.
    #[serde(default = "default_refresh")]
    pub jwks_refresh_seconds: f64,
    /// The shortest interval, in seconds, between two fetches of a JWKS URL caused by tokens
    /// whose `kid` is unknown.
    #[serde(default = "default_min_refetch")]
    pub jwks_min_refetch_seconds: f64,
    /// How long, in seconds after the last successful fetch, the keys of a JWKS URL are still
    /// used while the endpoint fails. After that every token of the issuer is rejected.
    #[serde(default = "default_stale")]
    pub jwks_stale_seconds: f64,
    /// The time allowed for one fetch of a JWKS URL, in seconds.
    #[serde(default = "default_timeout")]
    pub jwks_timeout_seconds: f64,
    /// The entity type of the principals this issuer's tokens name.
    pub principal_type: String,
    /// Whether the verified token is forwarded upstream (in `Authorization`); by default it is
    /// removed, so that no upstream learns the callers' credentials.
    #[serde(default)]
    pub forward_credentials: bool,
    /// The claim that gives the principal's id (a string).
    #[serde(default = "default_id_claim")]
    pub id_claim: String,
    /// The principal's attributes: attribute name to the claim that gives its value.
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeMapping>,
}

fn default_leeway() -> u64 {
    DEFAULT_LEEWAY_SECONDS
}

fn default_refresh() -> f64 {
    DEFAULT_JWKS_REFRESH_SECONDS
}

fn default_min_refetch() -> f64 {
    DEFAULT_JWKS_MIN_REFETCH_SECONDS
}

fn default_stale() -> f64 {
    DEFAULT_JWKS_STALE_SECONDS
}

fn default_timeout() -> f64 {
    DEFAULT_JWKS_TIMEOUT_SECONDS
}

fn default_id_claim() -> String {
    "sub".to_string()
}

/// A secret from the configuration; its `Debug` form never shows it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// An algorithm name from the configuration; only the names jsonwebtoken verifies are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlgorithmName(pub Algorithm);

impl AlgorithmName {
    /// The algorithm for a JOSE `alg` name, or `None` (always for `none`).
    pub fn parse(name: &str) -> Option<Algorithm> {
        Some(match name {
            "HS256" => Algorithm::HS256,
            "HS384" => Algorithm::HS384,
            "HS512" => Algorithm::HS512,
            "RS256" => Algorithm::RS256,
            "RS384" => Algorithm::RS384,
            "RS512" => Algorithm::RS512,
            "PS256" => Algorithm::PS256,
            "PS384" => Algorithm::PS384,
            "PS512" => Algorithm::PS512,
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            "EdDSA" => Algorithm::EdDSA,
            _ => return None,
        })
    }
}

impl<'de> Deserialize<'de> for AlgorithmName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        match AlgorithmName::parse(&name) {
            Some(algorithm) => Ok(AlgorithmName(algorithm)),
            None => Err(de::Error::custom(format!(
                "unsupported algorithm `{name}`; expected one of RS256, RS384, RS512, PS256, \
                 PS384, PS512, ES256, ES384, EdDSA, HS256, HS384, HS512"
            ))),
        }
    }
}

/// Where an attribute's value comes from: a claim name, or a claim with its expected type.
///
/// The short form `email = "email"` accepts any claim value that is a string, number, boolean
/// or an array of those (the proxy narrows it with the schema's type when it loads); the long
/// form `roles = { claim = "roles", type = "Set<String>", optional = true }` checks the type
/// itself. A required claim that is missing rejects the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeMapping {
    /// The claim's name, exactly as in the token (no path syntax).
    pub claim: String,
    /// The type the claim must have, when known.
    pub claim_type: Option<ClaimType>,
    /// Whether a token may leave the claim out.
    pub optional: bool,
}

impl<'de> Deserialize<'de> for AttributeMapping {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            claim: String,
            #[serde(default, rename = "type")]
            claim_type: Option<ClaimType>,
            #[serde(default)]
            optional: bool,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Short(String),
            Long(Long),
        }
        match Form::deserialize(deserializer) {
            Ok(Form::Short(claim)) => Ok(AttributeMapping {
                claim,
                claim_type: None,
                optional: false,
            }),
            Ok(Form::Long(long)) => Ok(AttributeMapping {
                claim: long.claim,
                claim_type: long.claim_type,
                optional: long.optional,
            }),
            Err(_) => Err(de::Error::custom(
                "expected a claim name or a table `{ claim = \"...\", type = \"...\", \
                 optional = false }` with the types String, Long, Bool, Set<String>, Set<Long> \
                 and Set<Bool>",
            )),
        }
    }
}

/// The JSON type a mapped claim must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum ClaimType {
    /// A JSON string.
    String,
    /// A JSON integer that fits in 64 bits.
    Long,
    /// A JSON boolean.
    Bool,
    /// A JSON array of strings.
    #[serde(rename = "Set<String>")]
    SetOfString,
    /// A JSON array of integers.
    #[serde(rename = "Set<Long>")]
    SetOfLong,
    /// A JSON array of booleans.
    #[serde(rename = "Set<Bool>")]
    SetOfBool,
}

/// The `[identity.api_keys]` section.
///
/// The file is TOML; each key is stored as the SHA-256 digest of its text, never in plain:
///
/// ```toml
/// [[keys]]
/// sha256 = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
/// type = "Service"
/// id = "billing"
/// attributes = { team = "payments" }
/// ```
///
/// `printf %s "$KEY" | sha256sum` prints the digest of a key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeysConfig {
    /// The TOML file of key digests.
    pub file: PathBuf,
    /// The header the key is presented in (`Authorization: ApiKey <key>` is always accepted).
    #[serde(default = "default_api_key_header")]
    pub header: String,
    /// Whether the verified key is forwarded upstream; by default it is removed.
    #[serde(default)]
    pub forward_credentials: bool,
}

fn default_api_key_header() -> String {
    "x-api-key".to_string()
}

/// Where an issuer's verification keys come from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// A JWKS file, read when the configuration loads.
    JwksFile(PathBuf),
    /// A JWKS URL, fetched and refreshed.
    JwksUrl(String),
    /// A shared HMAC secret given inline.
    HmacSecret(Secret),
    /// A shared HMAC secret read from a file.
    HmacSecretFile(PathBuf),
    /// OIDC discovery: the issuer's discovery document at this URL names its JWKS and
    /// algorithms; both are fetched and refreshed.
    Discovery(String),
}

/// The discovery document of an OIDC issuer: `{issuer}/.well-known/openid-configuration`, the
/// issuer's trailing `/` left out (OpenID Connect Discovery 1.0, section 4).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// The timings of a JWKS URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JwksTiming {
    /// The interval between scheduled refreshes.
    pub refresh: Duration,
    /// The shortest interval between two fetches caused by unknown `kid`s (or by a refresh).
    pub min_refetch: Duration,
    /// How long keys stay usable after the last successful fetch.
    pub stale_for: Duration,
    /// The time allowed for one fetch.
    pub timeout: Duration,
}

/// A configuration that cannot be used, naming the key at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct ConfigError {
    /// The key, as a path such as `identity.jwt[0].algorithms`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error about `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl IdentityConfig {
    /// Checks the rules serde cannot express; every error names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for (index, issuer) in self.jwt.iter().enumerate() {
            let prefix = format!("identity.jwt[{index}]");
            issuer.validate(&prefix)?;
            if !seen.insert(issuer.issuer.as_str()) {
                return Err(ConfigError::new(
                    format!("{prefix}.issuer"),
                    format!("the issuer `{}` is configured twice", issuer.issuer),
                ));
            }
        }
        if let Some(api_keys) = &self.api_keys {
            if hyper::header::HeaderName::from_bytes(api_keys.header.as_bytes()).is_err() {
                return Err(ConfigError::new(
                    "identity.api_keys.header",
                    "not a valid header name",
                ));
            }
        }
        if let Some(mtls) = &self.mtls {
            mtls.validate()?;
        }
        Ok(())
    }
}

impl IssuerConfig {
    /// Checks one issuer; `prefix` is its key path, such as `identity.jwt[0]`.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let key = |name: &str| format!("{prefix}.{name}");
        if self.issuer.is_empty() {
            return Err(ConfigError::new(key("issuer"), "must not be empty"));
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(ConfigError::new(
                key("audiences"),
                "name at least one audience (a token for another service must not be accepted \
                 here), none of them empty",
            ));
        }
        let source = self.key_source(prefix)?;
        if self.algorithms.is_empty() && !matches!(source, KeySource::Discovery(_)) {
            return Err(ConfigError::new(
                key("algorithms"),
                "name at least one algorithm (only an issuer found by OIDC discovery may leave \
                 them to its discovery document)",
            ));
        }
        if self.principal_type.is_empty() {
            return Err(ConfigError::new(key("principal_type"), "must not be empty"));
        }
        if self.id_claim.is_empty() {
            return Err(ConfigError::new(key("id_claim"), "must not be empty"));
        }
        for (attribute, mapping) in &self.attributes {
            if attribute.is_empty() || mapping.claim.is_empty() {
                return Err(ConfigError::new(
                    key("attributes"),
                    "attribute and claim names must not be empty",
                ));
            }
        }
        let hmac = matches!(
            source,
            KeySource::HmacSecret(_) | KeySource::HmacSecretFile(_)
        );
        for algorithm in &self.algorithms {
            let is_hmac = algorithm.0.family() == AlgorithmFamily::Hmac;
            if hmac && !is_hmac {
                return Err(ConfigError::new(
                    key("algorithms"),
                    format!(
                        "{:?} needs a public key, but this issuer has an HMAC secret; an issuer \
                         is either HMAC or asymmetric, never both",
                        algorithm.0
                    ),
                ));
            }
            if !hmac && is_hmac {
                return Err(ConfigError::new(
                    key("algorithms"),
                    format!(
                        "{:?} needs an HMAC secret, but this issuer has public keys; an issuer \
                         is either HMAC or asymmetric, never both",
                        algorithm.0
                    ),
                ));
            }
        }
        if let KeySource::HmacSecret(secret) = &source {
            if secret.0.len() < MIN_HMAC_SECRET_BYTES {
                return Err(ConfigError::new(
                    key("hmac_secret"),
                    format!("must be at least {MIN_HMAC_SECRET_BYTES} bytes long"),
                ));
            }
        }
        if let KeySource::JwksUrl(url) = &source {
            check_jwks_url(url).map_err(|message| ConfigError::new(key("jwks_url"), message))?;
        }
        if let KeySource::Discovery(url) = &source {
            check_jwks_url(url).map_err(|message| ConfigError::new(key("issuer"), message))?;
        }
        self.jwks_timing(prefix)?;
        Ok(())
    }

    /// The one key source of the issuer.
    pub fn key_source(&self, prefix: &str) -> Result<KeySource, ConfigError> {
        let mut sources = Vec::new();
        if let Some(path) = &self.jwks_file {
            sources.push(KeySource::JwksFile(path.clone()));
        }
        if let Some(url) = &self.jwks_url {
            sources.push(KeySource::JwksUrl(url.clone()));
        }
        if let Some(secret) = &self.hmac_secret {
            sources.push(KeySource::HmacSecret(secret.clone()));
        }
        if let Some(path) = &self.hmac_secret_file {
            sources.push(KeySource::HmacSecretFile(path.clone()));
        }
        let mut sources = sources.into_iter();
        match (sources.next(), sources.next()) {
            (Some(source), None) => Ok(source),
            // An issuer named by its URL alone is found by OIDC discovery.
            (None, _) if check_jwks_url(&self.issuer).is_ok() => {
                Ok(KeySource::Discovery(discovery_url(&self.issuer)))
            }
            (None, _) => Err(ConfigError::new(
                prefix,
                "give one key source: `jwks_file`, `jwks_url`, `hmac_secret` or \
                 `hmac_secret_file`, or an `issuer` URL (https, or http on loopback) to find \
                 its keys by OIDC discovery",
            )),
            (Some(_), Some(_)) => Err(ConfigError::new(
                prefix,
                "give only one key source of `jwks_file`, `jwks_url`, `hmac_secret` and \
                 `hmac_secret_file`",
            )),
        }
    }

    /// The JWKS timings as durations.
    pub fn jwks_timing(&self, prefix: &str) -> Result<JwksTiming, ConfigError> {
        let seconds = |name: &str, value: f64, positive: bool| {
            let duration = Duration::try_from_secs_f64(value)
                .ok()
                .filter(|duration| !positive || !duration.is_zero())
                .filter(|duration| duration.as_secs() <= 366 * 24 * 3600);
            duration.ok_or_else(|| {
                ConfigError::new(
                    format!("{prefix}.{name}"),
                    if positive {
                        "must be a positive number of seconds, at most a year"
                    } else {
                        "must be a non-negative number of seconds, at most a year"
                    },
                )
            })
        };
        Ok(JwksTiming {
            refresh: seconds("jwks_refresh_seconds", self.jwks_refresh_seconds, true)?,
            min_refetch: seconds(
                "jwks_min_refetch_seconds",
                self.jwks_min_refetch_seconds,
                false,
            )?,
            stale_for: seconds("jwks_stale_seconds", self.jwks_stale_seconds, false)?,
            timeout: seconds("jwks_timeout_seconds", self.jwks_timeout_seconds, true)?,
        })
    }
}

/// Accepts `https://` URLs, and `http://` ones only on a loopback host (for tests and sidecars).
fn check_jwks_url(url: &str) -> Result<hyper::Uri, String> {
    crate::outbound::checked_url(url)
}

/// The URL of a JWKS source, checked as at validation.
pub(crate) fn jwks_uri(url: &str) -> Result<hyper::Uri, String> {
    check_jwks_url(url)
}
