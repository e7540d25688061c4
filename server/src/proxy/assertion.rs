//! The signed identity assertion: a short-lived JWT the proxy adds to every request it lets
//! through, for upstreams that want proof rather than trust in the network.
//!
//! The identity headers (`x-authz-principal`, …) are only as good as the path between the
//! proxy and the upstream: anything else that can reach the upstream can set them. An upstream
//! that verifies the assertion with the proxy's public key knows the request passed the proxy,
//! for whom, and for what: the token names the principal, the action and resource the route
//! gave, the determining policies, the method and normalized path, and the upstream it was
//! minted for (`aud`), and it expires after `ttl_seconds`. Incoming headers of the same name, in
//! every spelling, are removed like the other identity headers. With `scope = "identity"` it
//! names only the principal and the audience, and one signature serves many requests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::header::{HeaderName, HeaderValue};
use jsonwebtoken::{EncodingKey, Header};
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use super::headers::{name_starts_with, same_name, HOP_BY_HOP};
use super::identity::IDENTITY_HEADERS;

/// `[assertion]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionConfig {
    /// The JWS algorithm: `ES256`, `ES384`, `EdDSA`, `RS256`…`PS512`, or `HS256`…`HS512`.
    pub algorithm: String,
    /// The private key as PEM, or the HMAC secret.
    pub key_file: PathBuf,
    /// The `kid` of the token header, so that upstreams can pick the key from a JWKS.
    #[serde(default)]
    pub kid: Option<String>,
    /// The `iss` claim.
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// The `aud` claim; by default the name of the upstream the request goes to. Required in
    /// `ext_authz` mode, where the proxy does not know the upstream.
    #[serde(default)]
    pub audience: Option<String>,
    /// How long the assertion is valid, in seconds (1 to 3600).
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u64,
    /// The header that carries it; by default the identity header prefix followed by
    /// `assertion` (`x-authz-assertion`).
    #[serde(default)]
    pub header: Option<String>,
    /// What one assertion vouches for: `request` (default) or `identity`.
    #[serde(default)]
    pub scope: Scope,
}

/// What one assertion vouches for.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// This request: who, the action, resource and policies, method, path and query, and a
    /// fresh `jti`. One signature per request.
    #[default]
    Request,
    /// Who, for whom (`aud`), until `exp`: the same assertion serves every request of that
    /// principal to that upstream until half its lifetime is over (as Oathkeeper's `id_token`
    /// mutator caches), so signing leaves the hot path.
    Identity,
}

/// How many identity-scoped assertions are cached before the cache starts over.
const MAX_CACHED: usize = 10_000;

fn default_issuer() -> String {
    "authz-proxy".to_string()
}

fn default_ttl() -> u64 {
    60
}

impl AssertionConfig {
    /// Resolves a relative key path against the configuration file's directory.
    pub fn resolve(&mut self, base: &Path) {
        if self.key_file.is_relative() {
            self.key_file = base.join(&self.key_file);
        }
    }

    /// Checks what can be checked without reading the key. `taken` are header names the proxy
    /// reads or sets for other purposes (the API-key header), which the assertion must not
    /// reuse.
    pub fn validate(&self, taken: &[&str]) -> Result<(), String> {
        crate::signing::algorithm(&self.algorithm)
            .map_err(|message| format!("`assertion.algorithm`: {message}"))?;
        if !(1..=3600).contains(&self.ttl_seconds) {
            return Err("`assertion.ttl_seconds` must be between 1 and 3600".to_string());
        }
        if let Some(header) = &self.header {
            let valid = HeaderName::from_bytes(header.as_bytes()).is_ok();
            if !valid || reserved_header_name(header, taken) {
                return Err(format!(
                    "`assertion.header`: `{header}` cannot carry the assertion (it is not a \
                     header name, or HTTP or the proxy already uses it)"
                ));
            }
        }
        Ok(())
    }
}

/// Whether a header name means something else to HTTP, to the proxy or to the gateways around
/// it (or is one of `taken`), in any spelling: such a name cannot carry a value the proxy sets
/// upstream.
pub fn reserved_header_name(header: &str, taken: &[&str]) -> bool {
    HOP_BY_HOP
        .iter()
        .chain(RESERVED_HEADERS)
        .chain(IDENTITY_HEADERS)
        .chain(taken)
        .any(|name| same_name(header, name))
        || RESERVED_PREFIXES
            .iter()
            .any(|prefix| name_starts_with(header, prefix))
}

/// Headers that mean something else to HTTP, to the proxy or to the gateways around it.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-length",
    "content-type",
    "cookie",
    "expect",
    "forwarded",
    "x-real-ip",
    "x-request-id",
    "retry-after",
];

/// Families of headers the proxy reads or sets.
const RESERVED_PREFIXES: &[&str] = &["x-forwarded-", "x-original-", "ratelimit-"];

/// What one assertion states about the request it travels with.
pub struct Asserted<'a> {
    /// `{"type", "id"}` of the principal.
    pub principal: &'a Json,
    /// The kind of credential (`jwt`, `api-key`, `mtls`), or `None` for the anonymous principal.
    pub auth: Option<&'a str>,
    /// The action the route gave.
    pub action: &'a str,
    /// `{"type", "id"}` of the resource the route gave.
    pub resource: &'a Json,
    /// The determining policies of the decision.
    pub policies: &'a Json,
    /// The request's method.
    pub method: &'a str,
    /// The normalized path, as forwarded.
    pub path: &'a str,
    /// The query string, as forwarded (without `?`; empty when there is none).
    pub query: &'a str,
    /// The upstream's name, the default audience.
    pub upstream: Option<&'a str>,
}

/// Signs assertions with the configured key.
pub struct AssertionSigner {
    header_name: HeaderName,
    jws_header: Header,
    key: EncodingKey,
    issuer: String,
    audience: Option<String>,
    ttl_seconds: u64,
    scope: Scope,
    /// Identity-scoped assertions by audience, auth and principal: the header value and when
    /// it was signed.
    cache: Mutex<HashMap<String, (HeaderValue, u64)>>,
}

impl AssertionSigner {
    /// Loads the key and signs one assertion to prove it works, so that a bad key stops the
    /// proxy at start rather than failing requests.
    pub fn new(config: &AssertionConfig, identity_prefix: &str) -> Result<AssertionSigner, String> {
        let algorithm = crate::signing::algorithm(&config.algorithm)
            .map_err(|message| format!("`assertion.algorithm`: {message}"))?;
        let key = crate::signing::encoding_key(algorithm, &config.key_file)
            .map_err(|message| format!("`assertion.key_file`: {message}"))?;
        let name = config
            .header
            .clone()
            .unwrap_or_else(|| format!("{identity_prefix}assertion"))
            .to_ascii_lowercase();
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`assertion.header`: `{name}` is not a header name"))?;
        let mut jws_header = Header::new(algorithm);
        jws_header.kid = config.kid.clone();
        let signer = AssertionSigner {
            header_name,
            jws_header,
            key,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl_seconds: config.ttl_seconds,
            scope: config.scope,
            cache: Mutex::new(HashMap::new()),
        };
        let probe = Asserted {
            principal: &json!({ "type": "Probe", "id": "startup" }),
            auth: None,
            action: "probe",
            resource: &json!({ "type": "Probe", "id": "startup" }),
            policies: &json!([]),
            method: "GET",
            path: "/",
            query: "",
            upstream: Some("probe"),
        };
        signer
            .sign(&probe)
            .map_err(|message| format!("`assertion.key_file`: cannot sign with it: {message}"))?;
        Ok(signer)
    }

    /// The header that carries the assertion.
    pub fn header_name(&self) -> &HeaderName {
        &self.header_name
    }

    /// The assertion for one request: signed now, or with `scope = "identity"`, taken from the
    /// cache while less than half its lifetime has passed.
    pub fn sign(&self, asserted: &Asserted) -> Result<HeaderValue, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|error| error.to_string())?
            .as_secs();
        if self.scope == Scope::Request {
            return self.sign_now(asserted, now);
        }
        let key = format!(
            "{}\n{}\n{}",
            self.audience.as_deref().or(asserted.upstream).unwrap_or(""),
            asserted.auth.unwrap_or(""),
            asserted.principal
        );
        let fresh = |signed: u64| now.saturating_sub(signed).saturating_mul(2) < self.ttl_seconds;
        if let Ok(cache) = self.cache.lock() {
            if let Some((value, signed)) = cache.get(&key) {
                if fresh(*signed) {
                    return Ok(value.clone());
                }
            }
        }
        let value = self.sign_now(asserted, now)?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(key, (value.clone(), now));
        }
        Ok(value)
    }

    fn sign_now(&self, asserted: &Asserted, now: u64) -> Result<HeaderValue, String> {
        let mut claims = Map::new();
        claims.insert("iss".to_string(), json!(self.issuer));
        claims.insert("sub".to_string(), json!(subject(asserted.principal)));
        if let Some(audience) = self.audience.as_deref().or(asserted.upstream) {
            claims.insert("aud".to_string(), json!(audience));
        }
        claims.insert("iat".to_string(), json!(now));
        claims.insert("nbf".to_string(), json!(now));
        claims.insert(
            "exp".to_string(),
            json!(now.saturating_add(self.ttl_seconds)),
        );
        claims.insert("principal".to_string(), asserted.principal.clone());
        claims.insert(
            "auth".to_string(),
            json!(asserted.auth.unwrap_or("anonymous")),
        );
        if self.scope == Scope::Request {
            claims.insert("jti".to_string(), json!(token_id()?));
            claims.insert("action".to_string(), json!(asserted.action));
            claims.insert("resource".to_string(), asserted.resource.clone());
            claims.insert("policies".to_string(), asserted.policies.clone());
            claims.insert("method".to_string(), json!(asserted.method));
            claims.insert("path".to_string(), json!(asserted.path));
            claims.insert("query".to_string(), json!(asserted.query));
        }
        let token = jsonwebtoken::encode(&self.jws_header, &Json::Object(claims), &self.key)
            .map_err(|error| error.to_string())?;
        HeaderValue::from_str(&token).map_err(|error| error.to_string())
    }
}

/// `User::"alice"`: the principal as the policy language writes an entity.
fn subject(principal: &Json) -> String {
    let ty = principal.get("type").and_then(Json::as_str).unwrap_or("");
    let id = principal.get("id").and_then(Json::as_str).unwrap_or("");
    format!("{ty}::{}", Json::from(id))
}

/// 128 random bits, hex: the `jti` that lets an upstream refuse a replayed assertion.
fn token_id() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "no randomness".to_string())?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(header: Option<&str>, ttl_seconds: u64) -> AssertionConfig {
        AssertionConfig {
            algorithm: "HS256".to_string(),
            key_file: PathBuf::from("unused"),
            kid: None,
            issuer: default_issuer(),
            audience: None,
            ttl_seconds,
            header: header.map(str::to_string),
            scope: Scope::Request,
        }
    }

    #[test]
    fn reserved_headers_and_silly_lifetimes_are_refused() {
        assert!(config(None, 60).validate(&[]).is_ok());
        assert!(config(Some("x-proof"), 60).validate(&[]).is_ok());
        for header in [
            "Authorization",
            "connection",
            "Host",
            "bad header",
            "content_length",
            "Transfer.Encoding",
            "x_authz_principal",
            "X-Forwarded-Proto",
            "x-original-uri",
            "RateLimit-Remaining",
            "x_api_key",
        ] {
            let error = config(Some(header), 60)
                .validate(&["x-api-key"])
                .unwrap_err();
            assert!(error.contains("assertion.header"), "{error}");
        }
        for ttl in [0, 3601] {
            let error = config(None, ttl).validate(&[]).unwrap_err();
            assert!(error.contains("ttl_seconds"), "{error}");
        }
    }

    #[test]
    fn a_key_that_cannot_sign_stops_the_proxy_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = config(None, 60);
        settings.key_file = dir.path().join("missing.pem");
        let error = AssertionSigner::new(&settings, "x-authz-").err().unwrap();
        assert!(error.contains("`assertion.key_file`"), "{error}");
        std::fs::write(dir.path().join("not-ec.pem"), "not a key").unwrap();
        settings.algorithm = "ES256".to_string();
        settings.key_file = dir.path().join("not-ec.pem");
        let error = AssertionSigner::new(&settings, "x-authz-").err().unwrap();
        assert!(error.contains("`assertion.key_file`"), "{error}");
        // A P-384 key reads as an EC key, but cannot sign ES256: the probe finds out.
        let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
            &aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        )
        .unwrap();
        let der = pair.to_pkcs8v1().unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der.as_ref())
        );
        std::fs::write(dir.path().join("p384.pem"), pem).unwrap();
        settings.key_file = dir.path().join("p384.pem");
        let error = AssertionSigner::new(&settings, "x-authz-").err().unwrap();
        assert!(error.contains("cannot sign with it"), "{error}");
        settings.algorithm = "none".to_string();
        let error = AssertionSigner::new(&settings, "x-authz-").err().unwrap();
        assert!(error.contains("`assertion.algorithm`"), "{error}");
    }

    #[test]
    fn an_assertion_verifies_with_the_key_and_states_the_request() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("secret"),
            "0123456789abcdef0123456789abcdef\n",
        )
        .unwrap();
        let mut settings = config(Some("X-Proof"), 120);
        settings.key_file = dir.path().join("secret");
        settings.audience = Some("orders".to_string());
        let signer = AssertionSigner::new(&settings, "x-authz-").unwrap();
        assert_eq!(signer.header_name().as_str(), "x-proof");
        let principal = json!({ "type": "User", "id": "alice" });
        let resource = json!({ "type": "Order", "id": "o1" });
        let policies = json!(["owner-reads"]);
        let value = signer
            .sign(&Asserted {
                principal: &principal,
                auth: Some("api-key"),
                action: "read",
                resource: &resource,
                policies: &policies,
                method: "GET",
                path: "/orders/o1",
                query: "full=1",
                upstream: Some("ignored-when-audience-is-set"),
            })
            .unwrap();
        let key =
            jsonwebtoken::DecodingKey::from_secret(b"0123456789abcdef0123456789abcdef").unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_audience(&["orders"]);
        validation.set_issuer(&["authz-proxy"]);
        let claims = jsonwebtoken::decode::<Json>(value.to_str().unwrap(), &key, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims["sub"], r#"User::"alice""#);
        assert_eq!(claims["auth"], "api-key");
        assert_eq!(claims["action"], "read");
        assert_eq!(claims["resource"], resource);
        assert_eq!(claims["policies"], policies);
        assert_eq!(claims["path"], "/orders/o1");
        assert_eq!(claims["query"], "full=1");
        assert_eq!(claims["method"], "GET");
        assert_eq!(claims["principal"], principal);
        assert_eq!(claims["nbf"], claims["iat"]);
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            120
        );
        assert_eq!(claims["jti"].as_str().unwrap().len(), 32);
    }

    #[test]
    fn identity_scoped_assertions_are_reused_per_principal_and_audience() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("secret"),
            "0123456789abcdef0123456789abcdef",
        )
        .unwrap();
        let mut settings = config(None, 120);
        settings.key_file = dir.path().join("secret");
        settings.scope = Scope::Identity;
        let signer = AssertionSigner::new(&settings, "x-authz-").unwrap();
        let alice = json!({ "type": "User", "id": "alice" });
        let bob = json!({ "type": "User", "id": "bob" });
        let nothing = json!(null);
        let asserted = |principal, path, upstream| Asserted {
            principal,
            auth: Some("jwt"),
            action: "read",
            resource: &nothing,
            policies: &nothing,
            method: "GET",
            path,
            query: "",
            upstream: Some(upstream),
        };
        let first = signer.sign(&asserted(&alice, "/a", "orders")).unwrap();
        assert_eq!(
            signer.sign(&asserted(&alice, "/b", "orders")).unwrap(),
            first
        );
        assert_ne!(signer.sign(&asserted(&bob, "/a", "orders")).unwrap(), first);
        assert_ne!(
            signer.sign(&asserted(&alice, "/a", "billing")).unwrap(),
            first
        );
        let key =
            jsonwebtoken::DecodingKey::from_secret(b"0123456789abcdef0123456789abcdef").unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_audience(&["orders"]);
        let claims = jsonwebtoken::decode::<Json>(first.to_str().unwrap(), &key, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims["principal"], alice);
        assert_eq!(claims["auth"], "jwt");
        for request_claim in ["jti", "path", "method", "action", "resource", "policies"] {
            assert!(claims.get(request_claim).is_none(), "{request_claim}");
        }
    }

    #[test]
    fn the_subject_is_written_as_an_entity() {
        assert_eq!(
            subject(&json!({"type": "User", "id": "al\"ice"})),
            r#"User::"al\"ice""#
        );
    }
}
