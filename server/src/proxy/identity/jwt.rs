//! JWT verification for one issuer, and the claim mapping that turns a verified token into a
//! principal.
//!
//! The order of checks is fixed and does not depend on the token: the header's `alg` must be in
//! the issuer's configured list (so `none` never passes, it is not a name the configuration
//! accepts); the key comes from the issuer's own key source, selected by `kid` (the `jku`,
//! `jwk`, `x5u` and `x5c` headers are never read); the key must suit the algorithm (an RSA key
//! never verifies an HMAC token); the signature is verified by jsonwebtoken; then `exp`
//! (required), `nbf` and `iat` are checked with the issuer's leeway, `iss` must equal the
//! issuer and `aud` must name one of its audiences. Only then are claims mapped, each checked
//! against the JSON type its mapping expects.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::config::{
    jwks_uri, AttributeMapping, ClaimType, ConfigError, IssuerConfig, KeySource,
    MIN_HMAC_SECRET_BYTES,
};
use super::error::AuthError;
use super::jwks::{self, FoundKey, LookupError, RemoteJwks};
use super::keys::{KeyKind, KeySet, VerifyingKey};
use super::{principal_entity, Identity};

/// The longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What can be read from a token before its signature is checked: only what is needed to pick
/// the issuer and the key.
#[derive(Debug)]
pub struct UnverifiedToken {
    /// The header's `alg`, as written.
    pub alg: String,
    /// The header's `kid`.
    pub kid: Option<String>,
    /// The payload's `iss`, when it is a string.
    pub iss: Option<String>,
}

/// Reads the header and the `iss` claim of a compact JWS, without trusting either.
pub fn parse_unverified(token: &str) -> Result<UnverifiedToken, AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::Malformed("token too long"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed("not three dot-separated parts"));
    };
    if header.is_empty() || payload.is_empty() {
        return Err(AuthError::Malformed("empty header or payload"));
    }
    let base64url = |part: &str| {
        part.bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    };
    if !base64url(header) || !base64url(payload) || !base64url(signature) {
        return Err(AuthError::Malformed("not base64url"));
    }
    let header = decode_json_object(header).ok_or(AuthError::Malformed("header"))?;
    let payload = decode_json_object(payload).ok_or(AuthError::Malformed("payload"))?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.clone(),
        _ => return Err(AuthError::Malformed("header without a string `alg`")),
    };
    // No header extension is understood here, so a token that marks one critical is refused
    // (RFC 7515, section 4.1.11).
    if header.contains_key("crit") {
        return Err(AuthError::Malformed("`crit` header"));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(AuthError::Malformed("`kid` is not a string")),
    };
    let iss = match payload.get("iss") {
        Some(Value::String(iss)) => Some(iss.clone()),
        _ => None,
    };
    Ok(UnverifiedToken { alg, kid, iss })
}

fn decode_json_object(part: &str) -> Option<Map<String, Value>> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(object) => Some(object),
        _ => None,
    }
}

/// Where one issuer's keys come from.
#[derive(Debug)]
pub enum IssuerKeys {
    /// Keys read once: a JWKS file.
    Fixed(Arc<KeySet>),
    /// One shared HMAC secret; the token's `kid` does not matter.
    Hmac(Arc<VerifyingKey>),
    /// A JWKS URL.
    Remote(Arc<RemoteJwks>),
}

impl IssuerKeys {
    async fn find(&self, kid: Option<&str>) -> Result<FoundKey, AuthError> {
        match self {
            IssuerKeys::Fixed(set) => set
                .select(kid)
                .map(|key| FoundKey {
                    key: Arc::clone(key),
                    generation: 0,
                    discovered_algorithms: None,
                })
                .ok_or(AuthError::UnknownKid),
            IssuerKeys::Hmac(key) => Ok(FoundKey {
                key: Arc::clone(key),
                generation: 0,
                discovered_algorithms: None,
            }),
            IssuerKeys::Remote(remote) => remote.find(kid).await.map_err(|error| match error {
                LookupError::UnknownKid => AuthError::UnknownKid,
                LookupError::Unavailable => AuthError::KeysUnavailable,
            }),
        }
    }

    /// The generation of the keys while they are usable.
    pub fn current_generation(&self) -> Option<u64> {
        match self {
            IssuerKeys::Fixed(_) | IssuerKeys::Hmac(_) => Some(0),
            IssuerKeys::Remote(remote) => remote.current_generation(),
        }
    }
}

/// Keys served at `url` (the setting `name` of the issuer at `prefix`): a JWKS, or the discovery
/// document of `discover`.
fn remote_keys(
    config: &IssuerConfig,
    prefix: &str,
    name: &str,
    url: &str,
    discover: Option<String>,
) -> Result<IssuerKeys, ConfigError> {
    let key = format!("{prefix}.{name}");
    let uri = jwks_uri(url).map_err(|message| ConfigError::new(&key, message))?;
    let client = jwks::http_client().map_err(|message| ConfigError::new(&key, message))?;
    let timing = config.jwks_timing(prefix)?;
    Ok(IssuerKeys::Remote(Arc::new(match discover {
        None => RemoteJwks::new(uri, timing, client),
        Some(issuer) => RemoteJwks::discovered(uri, issuer, timing, client),
    })))
}

/// One trusted issuer, ready to verify its tokens.
#[derive(Debug)]
pub struct Issuer {
    /// The `iss` value.
    pub name: String,
    algorithms: Vec<Algorithm>,
    audiences: HashSet<String>,
    leeway: i64,
    principal_type: String,
    forward_credentials: bool,
    id_claim: String,
    attributes: Vec<(String, AttributeMapping)>,
    /// The issuer's keys.
    pub keys: IssuerKeys,
}

/// What a successful verification gives.
#[derive(Debug)]
pub struct Verified {
    /// The identity the token establishes.
    pub identity: Identity,
    /// The token's `exp`, in seconds since the epoch.
    pub expires_at: u64,
    /// The generation of the key set that verified it.
    pub generation: u64,
}

impl Issuer {
    /// Builds an issuer from its configuration; relative paths are taken from `base_dir`.
    /// `prefix` names the issuer's key in errors, such as `identity.jwt[0]`.
    pub fn from_config(
        config: &IssuerConfig,
        prefix: &str,
        base_dir: &Path,
    ) -> Result<Self, ConfigError> {
        config.validate(prefix)?;
        let keys = match config.key_source(prefix)? {
            KeySource::JwksFile(path) => {
                let path = base_dir.join(path);
                let key = format!("{prefix}.jwks_file");
                let text = std::fs::read(&path).map_err(|error| {
                    ConfigError::new(&key, format!("cannot read {}: {error}", path.display()))
                })?;
                let parsed = jwks::parse_jwks(&text).map_err(|error| {
                    ConfigError::new(&key, format!("{}: {error}", path.display()))
                })?;
                for reason in &parsed.skipped {
                    tracing::warn!(file = %path.display(), "JWKS key skipped: {reason}");
                }
                if parsed.keys.is_empty() {
                    return Err(ConfigError::new(
                        &key,
                        format!("{} has no usable key", path.display()),
                    ));
                }
                IssuerKeys::Fixed(Arc::new(parsed.keys))
            }
            KeySource::JwksUrl(url) => remote_keys(config, prefix, "jwks_url", &url, None)?,
            KeySource::Discovery(url) => {
                remote_keys(config, prefix, "issuer", &url, Some(config.issuer.clone()))?
            }
            KeySource::HmacSecret(secret) => hmac_key(secret.0.as_bytes(), prefix, "hmac_secret")?,
            KeySource::HmacSecretFile(path) => {
                let path = base_dir.join(path);
                let key = format!("{prefix}.hmac_secret_file");
                let mut bytes = std::fs::read(&path).map_err(|error| {
                    ConfigError::new(&key, format!("cannot read {}: {error}", path.display()))
                })?;
                if bytes.ends_with(b"\n") {
                    bytes.pop();
                    if bytes.ends_with(b"\r") {
                        bytes.pop();
                    }
                }
                hmac_key(&bytes, prefix, "hmac_secret_file")?
            }
        };
        Ok(Issuer {
            name: config.issuer.clone(),
            algorithms: config.algorithms.iter().map(|name| name.0).collect(),
            audiences: config.audiences.iter().cloned().collect(),
            leeway: i64::try_from(config.leeway_seconds).unwrap_or(i64::MAX),
            principal_type: config.principal_type.clone(),
            forward_credentials: config.forward_credentials,
            id_claim: config.id_claim.clone(),
            attributes: config
                .attributes
                .iter()
                .map(|(name, mapping)| (name.clone(), mapping.clone()))
                .collect(),
            keys,
        })
    }

    /// Verifies a token whose unverified `iss` named this issuer; `now` is in seconds since
    /// the epoch.
    pub async fn verify(
        &self,
        token: &str,
        unverified: &UnverifiedToken,
        now: i64,
    ) -> Result<Verified, AuthError> {
        // The configured algorithms, else (for an issuer found by discovery without them) the
        // ones its discovery document lists.
        let algorithm = super::config::AlgorithmName::parse(&unverified.alg)
            .filter(|algorithm| self.algorithms.is_empty() || self.algorithms.contains(algorithm))
            .ok_or(AuthError::DisallowedAlgorithm)?;
        let found = self.keys.find(unverified.kid.as_deref()).await?;
        let allowed = !self.algorithms.is_empty()
            || found
                .discovered_algorithms
                .as_ref()
                .is_some_and(|discovered| discovered.algorithms.contains(&algorithm));
        if !allowed || !found.key.accepts(algorithm) {
            return Err(AuthError::DisallowedAlgorithm);
        }
        let claims = verify_signature(token, &found.key.key, algorithm)?;
        let expires_at = self.check_claims(&claims, now)?;
        let entity = self.map_claims(&claims)?;
        let mut identity = Identity::new(entity, "jwt", Some(&self.name));
        identity.forward_credential = self.forward_credentials;
        identity.claims = Some(Arc::new(claims));
        Ok(Verified {
            identity,
            expires_at,
            generation: found.generation,
        })
    }

    /// Checks the registered claims; gives `exp`.
    fn check_claims(&self, claims: &Map<String, Value>, now: i64) -> Result<u64, AuthError> {
        let exp = numeric_date(claims, "exp")?.ok_or(AuthError::MissingClaim("exp".into()))?;
        if now > exp.saturating_add(self.leeway) {
            return Err(AuthError::Expired);
        }
        for name in ["nbf", "iat"] {
            if let Some(time) = numeric_date(claims, name)? {
                if time > now.saturating_add(self.leeway) {
                    return Err(AuthError::NotYetValid);
                }
            }
        }
        match claims.get("iss") {
            Some(Value::String(iss)) if *iss == self.name => {}
            _ => return Err(AuthError::WrongIssuer),
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => self.audiences.contains(aud),
            Some(Value::Array(auds)) => {
                if !auds.iter().all(Value::is_string) {
                    return Err(AuthError::WrongClaimType("aud".into()));
                }
                auds.iter()
                    .filter_map(Value::as_str)
                    .any(|aud| self.audiences.contains(aud))
            }
            Some(_) => return Err(AuthError::WrongClaimType("aud".into())),
            None => false,
        };
        if !audience_ok {
            return Err(AuthError::WrongAudience);
        }
        Ok(u64::try_from(exp).unwrap_or(0))
    }

    /// The principal entity the claims describe.
    fn map_claims(&self, claims: &Map<String, Value>) -> Result<Value, AuthError> {
        let id = match claims.get(&self.id_claim) {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            Some(_) => return Err(AuthError::WrongClaimType(self.id_claim.clone())),
            None => return Err(AuthError::MissingClaim(self.id_claim.clone())),
        };
        let mut attributes = Map::new();
        for (attribute, mapping) in &self.attributes {
            match claims.get(&mapping.claim) {
                None if mapping.optional => {}
                None => return Err(AuthError::MissingClaim(mapping.claim.clone())),
                Some(value) => {
                    if !claim_has_type(value, mapping.claim_type) {
                        return Err(AuthError::WrongClaimType(mapping.claim.clone()));
                    }
                    attributes.insert(attribute.clone(), value.clone());
                }
            }
        }
        Ok(principal_entity(&self.principal_type, &id, attributes))
    }
}

fn hmac_key(secret: &[u8], prefix: &str, name: &str) -> Result<IssuerKeys, ConfigError> {
    let key = format!("{prefix}.{name}");
    if secret.len() < MIN_HMAC_SECRET_BYTES {
        return Err(ConfigError::new(
            key,
            format!("the secret must be at least {MIN_HMAC_SECRET_BYTES} bytes long"),
        ));
    }
    let decoding = DecodingKey::from_secret(secret)
        .map_err(|_| ConfigError::new(key, "the secret cannot be used"))?;
    Ok(IssuerKeys::Hmac(Arc::new(VerifyingKey {
        kid: None,
        kind: KeyKind::Hmac,
        algorithm: None,
        key: decoding,
    })))
}

/// Verifies the signature with jsonwebtoken and gives the claims; the registered claims are
/// checked by the caller.
fn verify_signature(
    token: &str,
    key: &DecodingKey,
    algorithm: Algorithm,
) -> Result<Map<String, Value>, AuthError> {
    let mut validation = Validation::new(algorithm);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(error) => Err(match error.kind() {
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::MissingAlgorithm => AuthError::DisallowedAlgorithm,
            ErrorKind::InvalidToken
            | ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_) => AuthError::Malformed("token"),
            // A bad signature, and a key the verifier cannot use, both mean the token is not
            // proven to come from the issuer.
            _ => AuthError::BadSignature,
        }),
    }
}

/// A NumericDate claim (RFC 7519): a JSON number of seconds, fractions allowed.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(number)) => {
            if let Some(seconds) = number.as_i64() {
                Ok(Some(seconds))
            } else if number.as_u64().is_some() {
                Ok(Some(i64::MAX))
            } else {
                match number.as_f64() {
                    // The cast saturates, which is what a date beyond the range should do.
                    Some(seconds) if seconds.is_finite() => Ok(Some(seconds.floor() as i64)),
                    _ => Err(AuthError::WrongClaimType(name.to_string())),
                }
            }
        }
        Some(_) => Err(AuthError::WrongClaimType(name.to_string())),
    }
}

/// Whether a claim value has the type its mapping expects; without a type, any string,
/// number, boolean or array of those.
fn claim_has_type(value: &Value, expected: Option<ClaimType>) -> bool {
    let all = |check: fn(&Value) -> bool| {
        value
            .as_array()
            .is_some_and(|items| items.iter().all(check))
    };
    match expected {
        Some(ClaimType::String) => value.is_string(),
        Some(ClaimType::Long) => value.is_i64(),
        Some(ClaimType::Bool) => value.is_boolean(),
        Some(ClaimType::SetOfString) => all(Value::is_string),
        Some(ClaimType::SetOfLong) => all(Value::is_i64),
        Some(ClaimType::SetOfBool) => all(Value::is_boolean),
        None => {
            let scalar = |item: &Value| item.is_string() || item.is_number() || item.is_boolean();
            scalar(value)
                || value
                    .as_array()
                    .is_some_and(|items| items.iter().all(scalar))
        }
    }
}
