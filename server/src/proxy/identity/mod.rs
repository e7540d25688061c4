//! Identify: who is calling, established from a verified credential.
//!
//! Two kinds of credentials are read from the request headers:
//! - a JWT in `Authorization: Bearer <token>`, verified against the issuer its `iss` names
//!   ([`jwt`]), with keys from a JWKS file or URL ([`jwks`]) or a shared HMAC secret;
//! - an API key in `x-api-key` (the header is configurable) or `Authorization: ApiKey <key>`,
//!   looked up by its SHA-256 digest ([`api_keys`]).
//!
//! [`Authenticator::authenticate`] gives `Ok(None)` when no credential is presented (whether
//! anonymous calls are allowed is the proxy's decision), the [`Identity`] when one verifies, and
//! an [`AuthError`] otherwise. Presenting two credentials at once is an error rather than a
//! choice. A verified mTLS client certificate ([`mtls`]) is read per connection by the TLS
//! listener, not from the headers; the pipeline uses it when the request carries no credential. Verified tokens are cached ([`token_cache`]) so that a token seen again skips the
//! signature check, for no longer than its `exp` and its issuer's keys allow.
//!
//! The identity carries the principal as `{"type", "id"}`, the principal as an entity in the
//! entities JSON form of `docs/language.md` ("Data") (attributes from the mapped claims, no parents), for a
//! decision request's request-scoped `entities`, and the identity headers to send upstream
//! ([`IDENTITY_HEADERS`] lists their names, which the proxy strips from incoming requests).

pub mod api_keys;
pub mod config;
pub mod error;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod mtls;
pub mod token_cache;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use hyper::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use serde_json::{json, Map, Value};

pub use self::config::{ConfigError, IdentityConfig};
pub use self::error::AuthError;

use self::api_keys::{ApiKeyStore, MAX_API_KEY_BYTES};
use self::jwt::{Issuer, MAX_TOKEN_BYTES};
use self::token_cache::{CachedToken, TokenCache};

/// The header naming the principal as JSON, `{"type":"User","id":"alice"}` (non-ASCII escaped).
pub const PRINCIPAL_HEADER: &str = "x-authz-principal";

/// The header naming the JWT issuer that vouched for the principal.
pub const ISSUER_HEADER: &str = "x-authz-issuer";

/// The header naming the kind of credential: `jwt`, `api-key` or `mtls`.
pub const AUTH_METHOD_HEADER: &str = "x-authz-auth";

/// Every identity header this module sets; the proxy removes them (and their `_` and `.`
/// spellings) from incoming requests, so that only verified values reach the upstream.
pub const IDENTITY_HEADERS: &[&str] = &[PRINCIPAL_HEADER, ISSUER_HEADER, AUTH_METHOD_HEADER];

/// Who is calling, as established by a verified credential.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// The principal: `{"type": "User", "id": "alice"}`.
    pub principal: Value,
    /// The principal as an entity: `{"type", "id", "attrs": {...}, "parents": []}`.
    pub entity: Value,
    /// The identity headers to send upstream, ready to insert (names lower-case, values
    /// header-safe whatever the principal's id holds).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The kind of credential: `jwt`, `api-key` or `mtls`.
    pub method: &'static str,
    /// The verified token's claims (JWT only), for the upstream header mapping.
    pub claims: Option<Arc<Map<String, Value>>>,
    /// Whether the credential that established this identity is forwarded upstream.
    pub forward_credential: bool,
    /// The principal's type, as named in the configuration.
    pub principal_type: Box<str>,
    /// The principal's id.
    pub principal_id: Box<str>,
    /// The principal entity, parsed once for the decisions it takes part in, when the
    /// credential carries attributes (it then defines the principal for the request; without
    /// attributes the principal is a stored entity).
    pub prepared_entity: Option<authz_runtime::json::PreparedEntities>,
}

impl Identity {
    /// The identity of a principal entity; `method` is `jwt`, `api-key` or `mtls`, `issuer`
    /// the JWT issuer.
    pub fn new(entity: Value, method: &'static str, issuer: Option<&str>) -> Self {
        let principal_type = entity.get("type").cloned().unwrap_or(Value::Null);
        let id = entity.get("id").cloned().unwrap_or(Value::Null);
        // Written by hand so that `type` comes first whatever order serde_json keeps.
        let header = ascii_json(&format!("{{\"type\":{principal_type},\"id\":{id}}}"));
        let principal = json!({ "type": principal_type, "id": id });
        let mut texts = vec![
            (PRINCIPAL_HEADER, header),
            (AUTH_METHOD_HEADER, method.to_string()),
        ];
        if let Some(issuer) = issuer {
            texts.push((ISSUER_HEADER, header_safe(issuer)));
        }
        // Both are made header-safe above, so neither conversion fails.
        let headers = texts
            .into_iter()
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_static(name),
                    HeaderValue::from_str(&value).ok()?,
                ))
            })
            .collect();
        let carries_attributes = entity
            .get("attrs")
            .and_then(Value::as_object)
            .is_some_and(|attrs| !attrs.is_empty());
        // An entity that does not fit the request limits is left to fail the decision: the
        // request then names the principal but cannot define it, and is denied.
        let prepared_entity = carries_attributes
            .then(|| {
                authz_runtime::json::PreparedEntities::from_value(&Value::Array(vec![
                    entity.clone()
                ]))
                .ok()
            })
            .flatten();
        Identity {
            principal_type: principal_type.as_str().unwrap_or_default().into(),
            principal_id: id.as_str().unwrap_or_default().into(),
            principal,
            entity,
            headers,
            method,
            claims: None,
            forward_credential: false,
            prepared_entity,
        }
    }

    /// The value of one of the identity headers, as text.
    #[cfg(test)]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.as_str() == name)
            .and_then(|(_, value)| value.to_str().ok())
    }
}

/// A principal entity in the entities JSON form.
pub fn principal_entity(principal_type: &str, id: &str, attributes: Map<String, Value>) -> Value {
    json!({
        "type": principal_type,
        "id": id,
        "attrs": attributes,
        "parents": [],
    })
}

/// JSON text with every character outside printable ASCII escaped, so it is a valid header
/// value whatever the id holds.
fn ascii_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        if character == ' ' || character.is_ascii_graphic() {
            out.push(character);
        } else {
            let mut units = [0u16; 2];
            for unit in character.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// Text percent-encoded outside printable ASCII (and `%` itself).
fn header_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (byte == b' ' || byte.is_ascii_graphic()) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The SHA-256 digest of some bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    for (slot, byte) in out.iter_mut().zip(digest.as_ref()) {
        *slot = *byte;
    }
    out
}

/// The seconds since the Unix epoch.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A credential found in the headers.
enum Credential<'a> {
    Bearer(&'a str),
    ApiKey(&'a str),
}

/// Verifies the credentials of requests.
#[derive(Debug)]
pub struct Authenticator {
    issuers: Vec<Issuer>,
    by_name: HashMap<String, usize>,
    api_keys: Option<(ApiKeyStore, HeaderName, bool)>,
    cache: TokenCache,
    /// Token cache hits and misses (detached counters until [`Authenticator::report_to`]).
    cache_hits: prometheus_client::metrics::counter::Counter,
    cache_misses: prometheus_client::metrics::counter::Counter,
}

impl Authenticator {
    /// Builds the authenticator: validates the configuration, reads JWKS files, HMAC secret
    /// files and the API key file (relative paths from `base_dir`). JWKS URLs are fetched on
    /// first use, or by [`Authenticator::refresh_keys`] at startup.
    pub fn from_config(config: &IdentityConfig, base_dir: &Path) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut issuers = Vec::with_capacity(config.jwt.len());
        let mut by_name = HashMap::new();
        for (index, issuer_config) in config.jwt.iter().enumerate() {
            let issuer =
                Issuer::from_config(issuer_config, &format!("identity.jwt[{index}]"), base_dir)?;
            by_name.insert(issuer.name.clone(), index);
            issuers.push(issuer);
        }
        let api_keys = match &config.api_keys {
            Some(api_keys) => {
                let mut store = ApiKeyStore::load(&base_dir.join(&api_keys.file))?;
                store.forward_credentials(api_keys.forward_credentials);
                let header = HeaderName::from_bytes(api_keys.header.as_bytes()).map_err(|_| {
                    ConfigError::new("identity.api_keys.header", "not a valid header name")
                })?;
                Some((store, header, api_keys.forward_credentials))
            }
            None => None,
        };
        Ok(Authenticator {
            issuers,
            by_name,
            api_keys,
            cache: TokenCache::new(config.token_cache_size),
            cache_hits: prometheus_client::metrics::counter::Counter::default(),
            cache_misses: prometheus_client::metrics::counter::Counter::default(),
        })
    }

    /// Counts token cache hits and misses and JWKS fetches in `metrics` from now on.
    pub fn report_to(&mut self, metrics: &crate::host::metrics::Metrics) {
        self.cache_hits = metrics.token_cache_hits.clone();
        self.cache_misses = metrics.token_cache_misses.clone();
        for issuer in &self.issuers {
            if let jwt::IssuerKeys::Remote(remote) = &issuer.keys {
                remote.report_to(metrics);
            }
        }
    }

    /// The JWKS endpoints the issuers fetch their keys from.
    pub fn remote_keys(&self) -> Vec<Arc<jwks::RemoteJwks>> {
        self.issuers
            .iter()
            .filter_map(|issuer| match &issuer.keys {
                jwt::IssuerKeys::Remote(remote) => Some(Arc::clone(remote)),
                _ => None,
            })
            .collect()
    }

    /// The principal types API keys name.
    pub fn api_key_types(&self) -> Vec<String> {
        self.api_keys
            .as_ref()
            .map(|(store, _, _)| store.principal_types().collect())
            .unwrap_or_default()
    }

    /// The header API keys are presented in, besides `Authorization: ApiKey`.
    pub fn api_key_header(&self) -> Option<&HeaderName> {
        self.api_keys.as_ref().map(|(_, header, _)| header)
    }

    /// Fetches every JWKS URL now (subject to each one's refetch interval), so that the first
    /// requests do not wait for it.
    pub async fn refresh_keys(&self) {
        for issuer in &self.issuers {
            if let jwt::IssuerKeys::Remote(remote) = &issuer.keys {
                remote.fetch_gated().await;
            }
        }
    }

    /// Establishes who is calling: `Ok(None)` without a credential, the identity when the
    /// credential verifies, the reason otherwise.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<Arc<Identity>>, AuthError> {
        match self.credential(headers)? {
            None => Ok(None),
            Some(Credential::Bearer(token)) => self.verify_token(token).await.map(Some),
            Some(Credential::ApiKey(key)) => self.verify_api_key(key).map(Some),
        }
    }

    /// Finds the one credential in the headers.
    fn credential<'a>(&self, headers: &'a HeaderMap) -> Result<Option<Credential<'a>>, AuthError> {
        let mut authorization = headers.get_all(AUTHORIZATION).iter();
        let from_authorization = match (authorization.next(), authorization.next()) {
            (None, _) => None,
            (Some(_), Some(_)) => {
                return Err(AuthError::Malformed("several Authorization headers"))
            }
            (Some(value), None) => {
                let value = value
                    .to_str()
                    .map_err(|_| AuthError::Malformed("Authorization is not visible ASCII"))?;
                let value = value.trim_matches(|c| c == ' ' || c == '\t');
                let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
                let rest = rest.trim_matches(|c| c == ' ' || c == '\t');
                if scheme.eq_ignore_ascii_case("bearer") {
                    if rest.is_empty() {
                        return Err(AuthError::Malformed("empty bearer token"));
                    }
                    Some(Credential::Bearer(rest))
                } else if scheme.eq_ignore_ascii_case("apikey") && self.api_keys.is_some() {
                    if rest.is_empty() {
                        return Err(AuthError::Malformed("empty API key"));
                    }
                    Some(Credential::ApiKey(rest))
                } else {
                    return Err(AuthError::UnsupportedScheme);
                }
            }
        };
        let from_header = match &self.api_keys {
            None => None,
            Some((_, name, _)) => {
                let mut values = headers.get_all(name).iter();
                match (values.next(), values.next()) {
                    (None, _) => None,
                    (Some(_), Some(_)) => {
                        return Err(AuthError::Malformed("several API key headers"))
                    }
                    (Some(value), None) => {
                        let key = value
                            .to_str()
                            .map_err(|_| AuthError::Malformed("API key is not visible ASCII"))?
                            .trim_matches(|c| c == ' ' || c == '\t');
                        if key.is_empty() {
                            return Err(AuthError::Malformed("empty API key"));
                        }
                        Some(Credential::ApiKey(key))
                    }
                }
            }
        };
        match (from_authorization, from_header) {
            (Some(_), Some(_)) => Err(AuthError::MultipleCredentials),
            (credential, None) | (None, credential) => Ok(credential),
        }
    }

    fn verify_api_key(&self, key: &str) -> Result<Arc<Identity>, AuthError> {
        let Some((store, _, _)) = &self.api_keys else {
            return Err(AuthError::UnsupportedScheme);
        };
        if key.len() > MAX_API_KEY_BYTES {
            return Err(AuthError::Malformed("API key too long"));
        }
        store.lookup(key).ok_or(AuthError::UnknownApiKey)
    }

    async fn verify_token(&self, token: &str) -> Result<Arc<Identity>, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed("token too long"));
        }
        let now = unix_now();
        let now_unsigned = u64::try_from(now).unwrap_or(0);
        let digest = sha256(token.as_bytes());
        if let Some(cached) = self.cache.get(&digest, now_unsigned) {
            let current = self
                .issuers
                .get(cached.issuer)
                .and_then(|issuer| issuer.keys.current_generation());
            if current == Some(cached.generation) {
                self.cache_hits.inc();
                return Ok(Arc::clone(&cached.identity));
            }
            self.cache.remove(&digest);
        }
        self.cache_misses.inc();
        let unverified = jwt::parse_unverified(token)?;
        let index = unverified
            .iss
            .as_ref()
            .and_then(|iss| self.by_name.get(iss))
            .copied()
            .ok_or(AuthError::WrongIssuer)?;
        let issuer = self.issuers.get(index).ok_or(AuthError::WrongIssuer)?;
        let verified = issuer.verify(token, &unverified, now).await?;
        let identity = Arc::new(verified.identity);
        self.cache.insert(
            digest,
            CachedToken {
                identity: Arc::clone(&identity),
                issuer: index,
                generation: verified.generation,
                expires_at: verified.expires_at,
            },
            now_unsigned,
        );
        Ok(identity)
    }

    #[cfg(test)]
    /// How many tokens the cache holds (for tests and metrics).
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    #[cfg(test)]
    /// How many JWKS fetches the issuer `iss` has started (for tests and metrics); `None` for
    /// an issuer without a JWKS URL.
    pub fn jwks_fetches(&self, iss: &str) -> Option<u64> {
        let issuer = self.issuers.get(*self.by_name.get(iss)?)?;
        match &issuer.keys {
            jwt::IssuerKeys::Remote(remote) => Some(remote.fetch_count()),
            _ => None,
        }
    }
}
