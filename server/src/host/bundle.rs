//! Bundles: a policy set and its entities in one signed file, built once and pulled by every
//! replica from any static HTTP(S) server (S3-compatible storage included).
//!
//! A bundle is JSON: `{"format": "authz-bundle-1", "manifest": "<text>", "files": {name: text},
//! "signature": {"algorithm": "Ed25519", "value": "<base64>"}}`. The manifest is kept as text, so
//! that the signature covers exactly its bytes: `{"revision": …, "files": [{"name", "sha256"}],
//! "entities": name-or-null}`. Verifying checks, in order, the format, the Ed25519 signature of the
//! manifest with the configured public key (an unsigned bundle is refused), every file's SHA-256
//! against the manifest, that no file is missing or added, and that names are plain relative
//! paths. Only then is the set compiled and installed, through the same install path as every other
//! change (the host's checks included): a bad, unsigned or tampered bundle never replaces a good
//! one.
//!
//! [`BundleSource`] polls its URL with `If-None-Match`: a `304` costs one request and no
//! compilation; a bundle of the revision being served is not compiled again either.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authz_lang::SourceFile;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::state::{self, AppState, LoadError, Snapshot};

/// The format tag of this version of bundles.
pub const FORMAT: &str = "authz-bundle-1";

/// The largest bundle accepted, in bytes.
const MAX_BUNDLE_BYTES: usize = 64 << 20;

/// `[bundle]`
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BundleConfig {
    /// Where the bundle is served (`https://…`; plain `http` on loopback only).
    pub url: String,
    /// The Ed25519 public key bundles must be signed with: 32 bytes, base64.
    pub public_key: String,
    /// Seconds between polls.
    #[serde(default = "default_poll_seconds")]
    pub poll_seconds: u64,
    /// How long one fetch may take, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_poll_seconds() -> u64 {
    30
}
fn default_timeout_ms() -> u64 {
    10_000
}

/// Why a bundle was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bundle refused: {0}")]
pub struct BundleError(pub String);

fn refuse(message: impl Into<String>) -> BundleError {
    BundleError(message.into())
}

/// The manifest: what the signature vouches for.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The revision, as its builder named it.
    pub revision: String,
    /// Every file, with its SHA-256 (hex).
    pub files: Vec<ManifestFile>,
    /// The name of the entities file among `files`, if any.
    pub entities: Option<String>,
}

/// One file of the manifest.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// Its name, a relative path with `/`.
    pub name: String,
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
}

/// A bundle whose signature and hashes were checked.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The manifest's revision.
    pub revision: String,
    /// The policy files.
    pub policies: Vec<SourceFile>,
    /// The entities file.
    pub entities: Option<SourceFile>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A plain relative name: `/`-separated parts, none empty, `.` or `..`, no backslash.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\\')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// Builds the (unsigned) bundle of the policy set in `dir` (every `.authz` file beneath it) and
/// the entities file `entities`, as revision `revision`.
pub fn build(
    dir: &std::path::Path,
    entities: Option<&std::path::Path>,
    revision: &str,
) -> Result<String, String> {
    let paths = crate::sources::authz_files(dir).map_err(|error| error.to_string())?;
    if paths.is_empty() {
        return Err(format!("no `.authz` files beneath `{}`", dir.display()));
    }
    let mut files = BTreeMap::new();
    for path in &paths {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        files.insert(state::relative_name(dir, path), text);
    }
    let entities_name = match entities {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            let name = "entities.json".to_string();
            if files.insert(name.clone(), text).is_some() {
                return Err("a policy file is named `entities.json`".to_string());
            }
            Some(name)
        }
    };
    let manifest = Manifest {
        revision: revision.to_string(),
        files: files
            .iter()
            .map(|(name, text)| ManifestFile {
                name: name.clone(),
                sha256: sha256_hex(text.as_bytes()),
            })
            .collect(),
        entities: entities_name,
    };
    let manifest = serde_json::to_string(&manifest).map_err(|error| error.to_string())?;
    let bundle = serde_json::json!({
        "format": FORMAT,
        "manifest": manifest,
        "files": files,
    });
    serde_json::to_string_pretty(&bundle).map_err(|error| error.to_string())
}

/// Signs a bundle's manifest with an Ed25519 private key (PKCS#8, PEM or DER); the signature
/// replaces any previous one.
pub fn sign(bundle: &str, private_key: &[u8]) -> Result<String, String> {
    let der = pem_or_der(private_key)?;
    let pair = Ed25519KeyPair::from_pkcs8(&der)
        .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der))
        .map_err(|error| format!("not an Ed25519 private key (PKCS#8): {error}"))?;
    let mut json: Json =
        serde_json::from_str(bundle).map_err(|error| format!("not a bundle: {error}"))?;
    let manifest = json
        .get("manifest")
        .and_then(Json::as_str)
        .ok_or("not a bundle: no manifest")?
        .to_string();
    let signature = pair.sign(manifest.as_bytes());
    let value = base64::engine::general_purpose::STANDARD.encode(signature.as_ref());
    let members = json.as_object_mut().ok_or("not a bundle")?;
    members.insert(
        "signature".to_string(),
        serde_json::json!({ "algorithm": "Ed25519", "value": value }),
    );
    serde_json::to_string_pretty(&json).map_err(|error| error.to_string())
}

/// A new Ed25519 key pair: the private key as PKCS#8 PEM, and the public key as base64.
pub fn keygen() -> Result<(String, String), String> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let document =
        Ed25519KeyPair::generate_pkcs8(&rng).map_err(|error| format!("key generation: {error}"))?;
    let pair = Ed25519KeyPair::from_pkcs8(document.as_ref())
        .map_err(|error| format!("key generation: {error}"))?;
    let engine = base64::engine::general_purpose::STANDARD;
    let body = engine.encode(document.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or(""));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    Ok((pem, engine.encode(pair.public_key().as_ref())))
}

fn pem_or_der(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(bytes.to_vec());
    };
    if !text.contains("-----BEGIN") {
        return Ok(bytes.to_vec());
    }
    let body: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|error| format!("bad PEM: {error}"))
}

/// The raw public key of `[bundle] public_key`.
pub fn public_key(base64_key: &str) -> Result<Vec<u8>, String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(base64_key.trim())
        .map_err(|error| format!("`bundle.public_key`: not base64: {error}"))?;
    if key.len() != 32 {
        return Err("`bundle.public_key`: an Ed25519 public key is 32 bytes".to_string());
    }
    Ok(key)
}

/// Checks a bundle's format, signature, hashes and names; see the module's documentation.
pub fn verify(bundle: &[u8], public_key: &[u8]) -> Result<Verified, BundleError> {
    let json: Json =
        serde_json::from_slice(bundle).map_err(|error| refuse(format!("not JSON: {error}")))?;
    if json.get("format").and_then(Json::as_str) != Some(FORMAT) {
        return Err(refuse(format!("not a bundle of format `{FORMAT}`")));
    }
    let manifest_text = json
        .get("manifest")
        .and_then(Json::as_str)
        .ok_or_else(|| refuse("no manifest"))?;
    let signature = json
        .get("signature")
        .ok_or_else(|| refuse("unsigned (sign it with `authz bundle sign`)"))?;
    if signature.get("algorithm").and_then(Json::as_str) != Some("Ed25519") {
        return Err(refuse("the signature is not Ed25519"));
    }
    let value = signature
        .get("value")
        .and_then(Json::as_str)
        .and_then(|value| base64::engine::general_purpose::STANDARD.decode(value).ok())
        .ok_or_else(|| refuse("the signature is not base64"))?;
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(manifest_text.as_bytes(), &value)
        .map_err(|_| refuse("the signature does not verify with the configured public key"))?;
    let manifest: Manifest = serde_json::from_str(manifest_text)
        .map_err(|error| refuse(format!("the manifest is malformed: {error}")))?;
    let files = json
        .get("files")
        .and_then(Json::as_object)
        .ok_or_else(|| refuse("no files"))?;
    if files.len() != manifest.files.len() {
        return Err(refuse("the files are not those of the manifest"));
    }
    let mut policies = Vec::new();
    let mut entities = None;
    for listed in &manifest.files {
        if !plain_name(&listed.name) {
            return Err(refuse(format!(
                "`{}` is not a plain relative name",
                listed.name
            )));
        }
        let text = files
            .get(&listed.name)
            .and_then(Json::as_str)
            .ok_or_else(|| refuse(format!("`{}` is missing", listed.name)))?;
        if sha256_hex(text.as_bytes()) != listed.sha256 {
            return Err(refuse(format!(
                "`{}` does not match its SHA-256 in the manifest",
                listed.name
            )));
        }
        let file = SourceFile::new(listed.name.clone(), text.to_string());
        if manifest.entities.as_deref() == Some(listed.name.as_str()) {
            entities = Some(file);
        } else if listed.name.ends_with(".authz") {
            policies.push(file);
        } else {
            return Err(refuse(format!(
                "`{}` is neither a policy file nor the entities file",
                listed.name
            )));
        }
    }
    if policies.is_empty() {
        return Err(refuse("no policy files"));
    }
    if manifest.entities.is_some() && entities.is_none() {
        return Err(refuse("the entities file named by the manifest is missing"));
    }
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Verified {
        revision: manifest.revision,
        policies,
        entities,
    })
}

/// Compiles a verified bundle into a snapshot.
pub fn snapshot(verified: &Verified) -> Result<Snapshot, LoadError> {
    state::load_with_entities(verified.policies.clone(), verified.entities.as_ref())
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// What a fetch found.
enum Fetched {
    /// `304 Not Modified`.
    Unchanged,
    /// A bundle, and its `ETag`.
    Bundle(Bytes, Option<String>),
}

/// Where bundles come from, and how the last fetches went (for `/readyz`).
pub struct BundleSource {
    url: hyper::Uri,
    public_key: Vec<u8>,
    poll: Duration,
    timeout: Duration,
    client: HttpClient,
    status: Mutex<BundleStatus>,
}

/// The state `/readyz` reports.
#[derive(Clone, Debug, Default)]
struct BundleStatus {
    revision: Option<String>,
    etag: Option<String>,
    last_error: Option<String>,
}

impl BundleSource {
    /// The source `config` describes; the error names the key.
    pub fn new(config: &BundleConfig) -> Result<BundleSource, String> {
        let url = crate::outbound::checked_url(&config.url)
            .map_err(|problem| format!("`bundle.url`: {problem}"))?;
        let public_key = public_key(&config.public_key)?;
        Ok(BundleSource {
            url,
            public_key,
            poll: Duration::from_secs(config.poll_seconds.max(1)),
            timeout: Duration::from_millis(config.timeout_ms.max(1)),
            client: crate::outbound::client().map_err(|problem| format!("bundles: {problem}"))?,
            status: Mutex::new(BundleStatus::default()),
        })
    }

    fn status(&self) -> std::sync::MutexGuard<'_, BundleStatus> {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn fetch(&self) -> Result<Fetched, String> {
        let etag = self.status().etag.clone();
        let mut request = hyper::Request::get(self.url.clone());
        if let Some(etag) = &etag {
            request = request.header(hyper::header::IF_NONE_MATCH, etag.as_str());
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|error| error.to_string())?;
        let answer =
            crate::outbound::call(&self.client, request, self.timeout, MAX_BUNDLE_BYTES).await?;
        if answer.status == hyper::StatusCode::NOT_MODIFIED {
            return Ok(Fetched::Unchanged);
        }
        if answer.status != hyper::StatusCode::OK {
            return Err(format!("status {}", answer.status));
        }
        let etag = answer
            .headers
            .get(hyper::header::ETAG)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        Ok(Fetched::Bundle(answer.body, etag))
    }

    /// The first set, fetched, verified and compiled; the error says why not.
    pub async fn initial(&self) -> Result<Snapshot, String> {
        let (body, etag) = match self.fetch().await? {
            Fetched::Bundle(body, etag) => (body, etag),
            Fetched::Unchanged => {
                return Err("the server answered 304 to a first fetch".to_string())
            }
        };
        let verified = verify(&body, &self.public_key).map_err(|error| error.to_string())?;
        let snapshot = snapshot(&verified).map_err(|error| error.message)?;
        let mut status = self.status();
        status.revision = Some(verified.revision);
        status.etag = etag;
        Ok(snapshot)
    }

    /// One poll: a changed, valid bundle is installed; anything else keeps the set served.
    async fn poll_once(&self, state: &Arc<AppState>) {
        let result = self.fetch().await;
        let (body, etag) = match result {
            Ok(Fetched::Unchanged) => {
                state.metrics.count_bundle("not_modified");
                return;
            }
            Ok(Fetched::Bundle(body, etag)) => (body, etag),
            Err(error) => {
                state.metrics.count_bundle("error");
                tracing::warn!(url = %self.url, %error, "bundle fetch failed; still serving the previous set");
                self.status().last_error = Some(error);
                return;
            }
        };
        let verified = match verify(&body, &self.public_key) {
            Ok(verified) => verified,
            Err(error) => {
                state.metrics.count_bundle("rejected");
                let message = error.to_string();
                state.record_failure(&LoadError {
                    message: message.clone(),
                    diagnostics: vec![serde_json::json!({
                        "code": "authz::bundle::refused",
                        "severity": "error",
                        "message": message,
                    })],
                });
                self.status().last_error = Some(error.to_string());
                return;
            }
        };
        if self.status().revision.as_deref() == Some(verified.revision.as_str()) {
            // The same revision under another ETag: nothing to compile.
            state.metrics.count_bundle("unchanged");
            self.status().etag = etag;
            return;
        }
        let _guard = state.reload_lock.lock().await;
        let built = tokio::task::spawn_blocking({
            let verified = verified.clone();
            move || snapshot(&verified)
        })
        .await;
        let installed = match built {
            Ok(Ok(mut snapshot)) => state
                .check_install(&mut snapshot)
                .map(|()| state.install(snapshot)),
            Ok(Err(error)) => Err(error),
            Err(error) => Err(LoadError {
                message: error.to_string(),
                diagnostics: Vec::new(),
            }),
        };
        match installed {
            Ok(()) => {
                state.metrics.count_bundle("installed");
                tracing::info!(revision = %verified.revision, "bundle installed");
                let mut status = self.status();
                status.revision = Some(verified.revision);
                status.etag = etag;
                status.last_error = None;
            }
            Err(error) => {
                state.metrics.count_bundle("rejected");
                state.record_failure(&error);
                self.status().last_error = Some(error.message);
            }
        }
    }

    /// Polls every `poll_seconds`, forever.
    pub fn start(self: Arc<Self>, state: Arc<AppState>) {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(self.poll).await;
                self.poll_once(&state).await;
            }
        });
    }

    /// What `/readyz` reports of the bundle.
    pub fn readiness(&self) -> Json {
        let status = self.status().clone();
        serde_json::json!({
            "url": self.url.to_string(),
            "revision": status.revision,
            "etag": status.etag,
            "last_error": status.last_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(dir: &std::path::Path) {
        std::fs::write(
            dir.join("policies.authz"),
            "entity User;\nentity Doc;\naction read: User -> Doc;\n@id(\"all\")\npermit principal: User, action: read, resource: Doc;\n",
        )
        .unwrap();
    }

    #[test]
    fn a_signed_bundle_verifies_and_any_change_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        set(dir.path());
        let entities = dir.path().join("entities.json");
        std::fs::write(&entities, "[]").unwrap();
        let unsigned = build(dir.path(), Some(&entities), "r1").unwrap();
        let (private, public) = keygen().unwrap();
        let public = public_key(&public).unwrap();
        assert_eq!(
            verify(unsigned.as_bytes(), &public).unwrap_err(),
            refuse("unsigned (sign it with `authz bundle sign`)")
        );
        let signed = sign(&unsigned, private.as_bytes()).unwrap();
        let verified = verify(signed.as_bytes(), &public).unwrap();
        assert_eq!(verified.revision, "r1");
        assert_eq!(verified.policies.len(), 1);
        assert!(verified.entities.is_some());
        assert!(snapshot(&verified).is_ok());

        // A changed file, a changed manifest, another key, an added file: all refused.
        let tampered = signed.replace("permit principal", "forbid principal");
        assert!(verify(tampered.as_bytes(), &public)
            .unwrap_err()
            .0
            .contains("SHA-256"));
        let mut json: Json = serde_json::from_str(&signed).unwrap();
        json["manifest"] = Json::String(
            json["manifest"]
                .as_str()
                .unwrap()
                .replace("\"r1\"", "\"r2\""),
        );
        assert!(verify(json.to_string().as_bytes(), &public)
            .unwrap_err()
            .0
            .contains("signature"));
        let (other_private, _) = keygen().unwrap();
        let resigned = sign(&unsigned, other_private.as_bytes()).unwrap();
        assert!(verify(resigned.as_bytes(), &public).is_err());
        let mut added: Json = serde_json::from_str(&signed).unwrap();
        added["files"]["extra.authz"] = Json::String("entity X;".to_string());
        assert!(verify(added.to_string().as_bytes(), &public).is_err());
    }

    #[test]
    fn names_that_leave_the_bundle_are_refused() {
        for name in [
            "../x.authz",
            "/etc/x.authz",
            "a//b.authz",
            "a\\b.authz",
            "./a.authz",
        ] {
            assert!(!plain_name(name), "{name}");
        }
        assert!(plain_name("teams/eng.authz"));
    }
}
