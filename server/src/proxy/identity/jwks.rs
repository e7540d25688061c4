//! JSON Web Key Sets: parsing them without trusting them, and keeping a remote one fresh.
//!
//! Parsing never fails on one bad key: keys of an unknown `kty` or curve, with an unknown or
//! unsuitable `alg`, meant for encryption (`use` other than `sig`), or RSA keys under 2048 bits
//! are skipped and logged, and the rest are used. Only text that is not a JSON object with a
//! `keys` array is an error.
//!
//! A [`RemoteJwks`] is fetched with hyper (rustls with the webpki roots for https; plain http
//! only on loopback). Its keys are refreshed in the background every `refresh` interval, and
//! fetched at once when a token names a `kid` the set does not have, but never more often than
//! once per `min_refetch` interval: a burst of tokens with made-up kids costs at most one fetch
//! per interval. When fetches fail the last keys are served for `stale_for` after the last
//! successful fetch; after that the set is empty and every token is rejected (fail closed).
//!
//! An issuer configured by its URL alone is found by OIDC discovery: each fetch first reads its
//! discovery document (`{issuer}/.well-known/openid-configuration`), which must name exactly the
//! configured issuer, and takes the JWKS URL and the signing algorithms from it; the document is
//! refreshed, and fails closed, with the keys.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::Value;
use tokio::time::Instant;

use super::config::{AlgorithmName, JwksTiming};
use super::keys::{KeyKind, KeySet, VerifyingKey};

/// The largest JWKS document read, in bytes.
pub const MAX_JWKS_BYTES: usize = 1 << 20;

/// The largest OIDC discovery document read, in bytes.
pub const MAX_DISCOVERY_BYTES: usize = 256 * 1024;

/// The most keys taken from one JWKS; the rest are skipped.
pub const MAX_JWKS_KEYS: usize = 100;

/// The smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Base64url with or without padding, as JWKs are written in the wild.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A JWKS document that cannot be read at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The text is not JSON, or not an object with a `keys` array.
    #[error("not a JWKS document (a JSON object with a `keys` array)")]
    NotJwks,
    /// The document is larger than [`MAX_JWKS_BYTES`].
    #[error("the JWKS document is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
}

/// A parsed JWKS: the usable keys and, for the logs, why the others were skipped.
#[derive(Debug)]
pub struct ParsedJwks {
    /// The usable keys.
    pub keys: KeySet,
    /// One line per skipped key, naming it by position and `kid`.
    pub skipped: Vec<String>,
}

/// Parses a JWKS document, skipping the keys it cannot use.
pub fn parse_jwks(text: &[u8]) -> Result<ParsedJwks, JwksError> {
    if text.len() > MAX_JWKS_BYTES {
        return Err(JwksError::TooLarge);
    }
    let document: Value = serde_json::from_slice(text).map_err(|_| JwksError::NotJwks)?;
    let entries = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(JwksError::NotJwks)?;
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let kid = entry.get("kid").and_then(Value::as_str);
        let name = match kid {
            Some(kid) => format!("key {index} (kid {kid:?})"),
            None => format!("key {index}"),
        };
        if index >= MAX_JWKS_KEYS {
            skipped.push(format!("{name}: more than {MAX_JWKS_KEYS} keys"));
            continue;
        }
        match parse_jwk(entry) {
            Ok(key) => keys.push(key),
            Err(reason) => skipped.push(format!("{name}: {reason}")),
        }
    }
    let (keys, duplicates) = KeySet::new(keys);
    skipped.extend(
        duplicates
            .into_iter()
            .map(|kid| format!("kid {kid:?}: a second key with the same kid")),
    );
    Ok(ParsedJwks { keys, skipped })
}

/// Parses one JWK, or says why it cannot be used.
fn parse_jwk(entry: &Value) -> Result<VerifyingKey, String> {
    let object = entry.as_object().ok_or("not a JSON object")?;
    let text = |name: &str| -> Result<Option<&str>, String> {
        match object.get(name) {
            None => Ok(None),
            Some(Value::String(value)) => Ok(Some(value.as_str())),
            Some(_) => Err(format!("`{name}` is not a string")),
        }
    };
    let bytes = |name: &str| -> Result<Vec<u8>, String> {
        let value = text(name)?.ok_or_else(|| format!("`{name}` is missing"))?;
        BASE64URL
            .decode(value)
            .map_err(|_| format!("`{name}` is not base64url"))
    };
    let kid = text("kid")?.map(str::to_string);
    if let Some(usage) = text("use")? {
        if usage != "sig" {
            return Err(format!("`use` is {usage:?}, not \"sig\""));
        }
    }
    if let Some(operations) = object.get("key_ops") {
        let verifies = operations
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return Err("`key_ops` does not include \"verify\"".to_string());
        }
    }
    let algorithm = match text("alg")? {
        None => None,
        Some(name) => {
            Some(AlgorithmName::parse(name).ok_or_else(|| format!("unsupported `alg` {name:?}"))?)
        }
    };
    let kty = text("kty")?.ok_or("`kty` is missing")?;
    let (kind, key) = match kty {
        "RSA" => {
            let n = bytes("n")?;
            let e = bytes("e")?;
            let significant = n.iter().skip_while(|&&byte| byte == 0).count();
            if significant < MIN_RSA_MODULUS_BYTES {
                return Err("RSA modulus shorter than 2048 bits".to_string());
            }
            if e.is_empty() || e.len() > 8 {
                return Err("RSA exponent of a bad size".to_string());
            }
            (KeyKind::Rsa, DecodingKey::from_rsa_raw_components(&n, &e))
        }
        "EC" => {
            let (kind, size) = match text("crv")? {
                Some("P-256") => (KeyKind::EcP256, 32),
                Some("P-384") => (KeyKind::EcP384, 48),
                Some(curve) => return Err(format!("unsupported curve {curve:?}")),
                None => return Err("`crv` is missing".to_string()),
            };
            let x = bytes("x")?;
            let y = bytes("y")?;
            if x.len() != size || y.len() != size {
                return Err("EC coordinates of the wrong length for the curve".to_string());
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (kind, DecodingKey::from_ec_der(&point))
        }
        "OKP" => {
            match text("crv")? {
                Some("Ed25519") => {}
                Some(curve) => return Err(format!("unsupported curve {curve:?}")),
                None => return Err("`crv` is missing".to_string()),
            }
            let x = bytes("x")?;
            if x.len() != 32 {
                return Err("Ed25519 key of the wrong length".to_string());
            }
            (KeyKind::Ed25519, DecodingKey::from_ed_der(&x))
        }
        // Symmetric keys have no place in a set of public keys: accepting one would let an
        // asymmetric issuer verify HMAC tokens.
        "oct" => return Err("symmetric (`oct`) keys are not used from a JWKS".to_string()),
        other => return Err(format!("unsupported `kty` {other:?}")),
    };
    if let Some(algorithm) = algorithm {
        if !kind.suits(algorithm) {
            return Err(format!("`alg` {algorithm:?} does not suit a {kind:?} key"));
        }
    }
    Ok(VerifyingKey {
        kid,
        kind,
        algorithm,
        key,
    })
}

/// The keys of a remote JWKS at one time.
#[derive(Debug)]
struct Snapshot {
    keys: Arc<KeySet>,
    /// When the keys were fetched; `None` before the first successful fetch.
    fetched_at: Option<Instant>,
    /// Changes whenever the fetched document changes, so that cached tokens are verified again.
    generation: u64,
    /// A digest of the document, to tell a changed document from the same one fetched again.
    digest: Option<[u8; 32]>,
    /// What discovery found, for an issuer found by OIDC discovery.
    discovered: Option<Arc<Discovered>>,
}

/// What an OIDC discovery document says of an issuer.
#[derive(Debug, PartialEq, Eq)]
pub struct Discovered {
    /// Where its keys are.
    pub jwks_uri: hyper::Uri,
    /// The asymmetric signing algorithms it uses (`id_token_signing_alg_values_supported`).
    pub algorithms: Vec<Algorithm>,
}

/// Reads an OIDC discovery document of `issuer`: it must name exactly that issuer (OpenID
/// Connect Discovery 1.0, section 4.3), a JWKS URL the server may call, and at least one
/// asymmetric signing algorithm authz verifies. HMAC algorithms are never taken from it: the
/// keys of a JWKS are public.
pub fn parse_discovery(text: &[u8], issuer: &str) -> Result<Discovered, String> {
    if text.len() > MAX_DISCOVERY_BYTES {
        return Err(format!(
            "the discovery document is larger than {MAX_DISCOVERY_BYTES} bytes"
        ));
    }
    let document: Value = serde_json::from_slice(text)
        .map_err(|_| "the discovery document is not JSON".to_string())?;
    let named = document.get("issuer").and_then(Value::as_str);
    if named != Some(issuer) {
        return Err(match named {
            Some(named) => {
                format!("the discovery document names the issuer `{named}`, not `{issuer}`")
            }
            None => "the discovery document names no `issuer`".to_string(),
        });
    }
    let jwks_uri = document
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or("the discovery document has no `jwks_uri`")?;
    let jwks_uri = crate::outbound::checked_url(jwks_uri)
        .map_err(|reason| format!("its `jwks_uri` `{jwks_uri}`: {reason}"))?;
    let algorithms: Vec<Algorithm> = document
        .get("id_token_signing_alg_values_supported")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .filter_map(super::config::AlgorithmName::parse)
                .filter(|algorithm| algorithm.family() != AlgorithmFamily::Hmac)
                .collect()
        })
        .unwrap_or_default();
    if algorithms.is_empty() {
        return Err(
            "the discovery document lists no asymmetric signing algorithm authz verifies \
             (`id_token_signing_alg_values_supported`)"
                .to_string(),
        );
    }
    Ok(Discovered {
        jwks_uri,
        algorithms,
    })
}

/// The keys a lookup found, with the generation of the set they came from.
#[derive(Clone, Debug)]
pub struct FoundKey {
    /// The key.
    pub key: Arc<VerifyingKey>,
    /// The generation of the key set.
    pub generation: u64,
    /// The algorithms the issuer's discovery document lists, for an issuer found by discovery.
    pub discovered_algorithms: Option<Arc<Discovered>>,
}

/// Why no key was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupError {
    /// The set has no key for the `kid` (or the token has none and the set has several keys).
    UnknownKid,
    /// The set is empty: never fetched, or stale beyond the bound.
    Unavailable,
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A JWKS served at a URL, fetched and cached.
pub struct RemoteJwks {
    /// The JWKS URL, or the discovery document's.
    uri: hyper::Uri,
    /// The issuer to discover, when `uri` is its discovery document.
    discover: Option<String>,
    timing: JwksTiming,
    client: HttpClient,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Serializes fetches; holds when the last one started.
    fetch_gate: tokio::sync::Mutex<Option<Instant>>,
    /// Whether a background refresh is under way.
    refreshing: AtomicBool,
    /// How many fetches were started (for tests and metrics).
    fetches: AtomicU64,
    /// Where fetches are counted (succeeded, failed), once the metrics exist.
    counters: std::sync::OnceLock<(
        prometheus_client::metrics::counter::Counter,
        prometheus_client::metrics::counter::Counter,
    )>,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("uri", &self.uri)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    /// A JWKS at `uri`, not fetched yet.
    pub fn new(uri: hyper::Uri, timing: JwksTiming, client: HttpClient) -> Self {
        Self::with_discovery(uri, None, timing, client)
    }

    /// The keys of `issuer`, found through its OIDC discovery document at `uri`, not fetched yet.
    pub fn discovered(
        uri: hyper::Uri,
        issuer: String,
        timing: JwksTiming,
        client: HttpClient,
    ) -> Self {
        Self::with_discovery(uri, Some(issuer), timing, client)
    }

    fn with_discovery(
        uri: hyper::Uri,
        discover: Option<String>,
        timing: JwksTiming,
        client: HttpClient,
    ) -> Self {
        RemoteJwks {
            uri,
            discover,
            timing,
            client,
            snapshot: RwLock::new(Arc::new(Snapshot {
                keys: Arc::new(KeySet::default()),
                fetched_at: None,
                generation: 0,
                digest: None,
                discovered: None,
            })),
            fetch_gate: tokio::sync::Mutex::new(None),
            refreshing: AtomicBool::new(false),
            fetches: AtomicU64::new(0),
            counters: std::sync::OnceLock::new(),
        }
    }

    #[cfg(test)]
    /// How many fetches were started so far.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn current(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// What `/readyz` says of this source: its URL, whether its keys are usable, how many it
    /// holds and how old they are (`null` before the first successful fetch).
    pub fn readiness(&self) -> serde_json::Value {
        let snapshot = self.current();
        let now = Instant::now();
        serde_json::json!({
            "url": self.uri.to_string(),
            "discovery": self.discover.is_some(),
            "jwks_uri": snapshot.discovered.as_ref().map(|found| found.jwks_uri.to_string()),
            "usable": self.usable(&snapshot, now),
            "keys": snapshot.keys.len(),
            "age_seconds": snapshot
                .fetched_at
                .map(|at| now.saturating_duration_since(at).as_secs()),
        })
    }

    fn usable(&self, snapshot: &Snapshot, now: Instant) -> bool {
        snapshot
            .fetched_at
            .is_some_and(|at| now.saturating_duration_since(at) <= self.timing.stale_for)
    }

    /// The key for `kid`, fetching the set first when it was never fetched, is stale, or lacks
    /// the `kid` (each fetch subject to the refetch interval).
    pub async fn find(self: &Arc<Self>, kid: Option<&str>) -> Result<FoundKey, LookupError> {
        let now = Instant::now();
        let mut snapshot = self.current();
        if !self.usable(&snapshot, now) {
            self.fetch_gated().await;
            snapshot = self.current();
        } else {
            self.refresh_if_due(&snapshot, now);
        }
        if !self.usable(&snapshot, Instant::now()) {
            return Err(LookupError::Unavailable);
        }
        if let Some(key) = snapshot.keys.select(kid) {
            return Ok(FoundKey {
                key: Arc::clone(key),
                generation: snapshot.generation,
                discovered_algorithms: snapshot.discovered.clone(),
            });
        }
        if kid.is_none() {
            return Err(LookupError::UnknownKid);
        }
        // An unknown kid may mean the issuer rotated its keys: look once more, rate limited.
        self.fetch_gated().await;
        let snapshot = self.current();
        if !self.usable(&snapshot, Instant::now()) {
            return Err(LookupError::Unavailable);
        }
        snapshot
            .keys
            .select(kid)
            .map(|key| FoundKey {
                key: Arc::clone(key),
                generation: snapshot.generation,
                discovered_algorithms: snapshot.discovered.clone(),
            })
            .ok_or(LookupError::UnknownKid)
    }

    /// The generation of the keys if they are still usable (scheduling a refresh when one is
    /// due); a cached token is good only while this equals the generation it was verified at.
    pub fn current_generation(self: &Arc<Self>) -> Option<u64> {
        let now = Instant::now();
        let snapshot = self.current();
        if !self.usable(&snapshot, now) {
            return None;
        }
        self.refresh_if_due(&snapshot, now);
        Some(snapshot.generation)
    }

    /// Starts a background refresh when the keys are older than the refresh interval.
    fn refresh_if_due(self: &Arc<Self>, snapshot: &Snapshot, now: Instant) {
        let due = snapshot
            .fetched_at
            .is_none_or(|at| now.saturating_duration_since(at) >= self.timing.refresh);
        if !due || self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.refreshing.store(false, Ordering::Release);
            return;
        };
        let this = Arc::clone(self);
        runtime.spawn(async move {
            this.fetch_gated().await;
            this.refreshing.store(false, Ordering::Release);
        });
    }

    /// Fetches the set unless a fetch started less than `min_refetch` ago. Callers that arrive
    /// while a fetch is under way wait for it and then use its result.
    pub async fn fetch_gated(&self) {
        let mut last_start = self.fetch_gate.lock().await;
        let now = Instant::now();
        if let Some(start) = *last_start {
            if now.saturating_duration_since(start) < self.timing.min_refetch {
                return;
            }
        }
        *last_start = Some(now);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let failed = |counters: &Self| {
            if let Some((_, failed)) = counters.counters.get() {
                failed.inc();
            }
        };
        match tokio::time::timeout(self.timing.timeout, self.fetch_once()).await {
            Ok(Ok((parsed, digest, discovered))) => {
                self.store(parsed, digest, discovered, now);
                if let Some((refreshed, _)) = self.counters.get() {
                    refreshed.inc();
                }
            }
            Ok(Err(reason)) => {
                failed(self);
                tracing::warn!(url = %self.uri, "JWKS fetch failed: {reason}");
            }
            Err(_) => {
                failed(self);
                tracing::warn!(url = %self.uri, "JWKS fetch timed out");
            }
        }
    }

    /// Counts this source's fetches in `metrics` from now on.
    pub fn report_to(&self, metrics: &crate::host::metrics::Metrics) {
        let _ = self.counters.set((
            metrics.jwks_refreshes.clone(),
            metrics.jwks_failures.clone(),
        ));
    }

    /// Keeps freshly fetched keys. The same document fetched again keeps its generation (so
    /// cached tokens stay good) and is not logged again.
    fn store(
        &self,
        parsed: ParsedJwks,
        digest: [u8; 32],
        discovered: Option<Discovered>,
        fetched_at: Instant,
    ) {
        let mut guard = match self.snapshot.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let previous = Arc::clone(&guard);
        let (keys, generation) = if previous.digest == Some(digest) {
            (Arc::clone(&previous.keys), previous.generation)
        } else {
            for reason in &parsed.skipped {
                tracing::warn!(url = %self.uri, "JWKS key skipped: {reason}");
            }
            tracing::info!(url = %self.uri, keys = parsed.keys.len(), "JWKS keys loaded");
            (Arc::new(parsed.keys), previous.generation.wrapping_add(1))
        };
        let discovered = match (discovered, &previous.discovered) {
            (Some(found), Some(previous)) if **previous == found => Some(Arc::clone(previous)),
            (found, _) => found.map(Arc::new),
        };
        *guard = Arc::new(Snapshot {
            keys,
            fetched_at: Some(fetched_at),
            generation,
            digest: Some(digest),
            discovered,
        });
    }

    /// Fetches the keys (after the discovery document, for an issuer found by discovery). The
    /// digest covers both documents, so that a change in either is a new generation.
    async fn fetch_once(&self) -> Result<(ParsedJwks, [u8; 32], Option<Discovered>), String> {
        let (jwks_uri, discovered, mut digested) = match &self.discover {
            None => (self.uri.clone(), None, Vec::new()),
            Some(issuer) => {
                let body = self
                    .get(&self.uri, MAX_DISCOVERY_BYTES)
                    .await
                    .map_err(|reason| format!("discovery: {reason}"))?;
                let discovered = parse_discovery(&body, issuer)?;
                (discovered.jwks_uri.clone(), Some(discovered), body.to_vec())
            }
        };
        let body = self.get(&jwks_uri, MAX_JWKS_BYTES).await?;
        digested.extend_from_slice(&body);
        let digest = super::sha256(&digested);
        let parsed = parse_jwks(&body).map_err(|error| error.to_string())?;
        if parsed.keys.is_empty() {
            for reason in &parsed.skipped {
                tracing::warn!(url = %jwks_uri, "JWKS key skipped: {reason}");
            }
            return Err("the JWKS has no usable key".to_string());
        }
        Ok((parsed, digest, discovered))
    }

    /// The body of a `GET uri` answered 200, at most `max_bytes` long.
    async fn get(&self, uri: &hyper::Uri, max_bytes: usize) -> Result<Bytes, String> {
        let request = hyper::Request::get(uri.clone())
            .header(hyper::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|error| format!("cannot build the request: {error}"))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|error| format!("request failed: {error}"))?;
        if response.status() != hyper::StatusCode::OK {
            return Err(format!("status {}", response.status()));
        }
        Ok(Limited::new(response.into_body(), max_bytes)
            .collect()
            .await
            .map_err(|error| format!("reading the body failed: {error}"))?
            .to_bytes())
    }
}

/// An HTTP client for JWKS URLs: https with the webpki roots, or plain http (which the
/// configuration allows only on loopback).
pub fn http_client() -> Result<HttpClient, String> {
    crate::outbound::client()
}
