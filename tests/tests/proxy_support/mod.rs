//! Shared by the `proxy_*` tests: a small policy set written into a temporary directory, keys of
//! every family generated in the test (RSA 2048, EC P-256, Ed25519, an HMAC secret) with their
//! JWKS, tokens signed with jsonwebtoken (or hand-made headers for attacks), a recording upstream
//! and a JWKS server on loopback, and the real `authz proxy` started in front of the upstream.
//!
//! The recording upstream is a plain HTTP/1.1 server on threads: it records every request it
//! receives (method, target, headers, body) before answering 200, so a test can assert that a
//! forbidden request never reached it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaPublicKeyComponents, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value as Json};

use crate::serve_support::{Client, Response, Server, PATIENCE};

// ---------------------------------------------------------------------------------------------
// The policy set.

/// The schema: users and services, documents, the admin console and two APIs.
pub const SCHEMA: &str = r#"
entity User { roles: Set<String> }
entity Service { team: String }
entity Doc { owner: User }
entity Console;
entity Api;

action read: User | Service -> Doc;
action write: User -> Doc;
action administer: User -> Console with { ip: Ip };
action ping: User -> Api;
action charge: Service -> Api;
action refund: User -> Doc with { amount: Long, mfa: Bool };
"#;

/// The routes.
pub const ROUTES: &str = r#"
route GET "/docs/{id}" => read Doc(id);
route POST "/docs/{id}" => write Doc(id);
route GET "/public/**" => read Doc("public");
route ANY "/admin/**" => administer Console("main");
route GET "/ping" => ping Api("ping");
route POST "/billing/charges" => charge Api("billing");
route POST "/docs/{id}/refunds" => refund Doc(id);
"#;

/// The policies.
pub const POLICIES: &str = r#"
@id("owners")
permit principal: User, action: [read, write], resource: Doc
when resource.owner == principal;

@id("public-docs")
permit principal: *, action: read, resource == Doc("public");

@id("frozen")
@reason("this document is frozen")
forbid principal: User, action: write, resource == Doc("frozen");

@id("admins-from-the-office")
permit principal: User, action: administer, resource: Console
when "admin" in principal.roles && context.ip.isInRange(ip("10.0.0.0/8"));

@id("pings")
permit principal: User, action: ping, resource: Api;

@id("orders-charges")
permit principal == Service("orders"), action: charge, resource == Api("billing");

@id("owners-refund")
permit principal: User, action: refund, resource: Doc
when resource.owner == principal && (context.amount <= 100 || context.mfa);

limit "pings" 3 per minute per principal when action == Action("ping");
"#;

/// The entities.
pub const ENTITIES: &str = r#"[
  {"type": "User", "id": "alice", "attrs": {"roles": []}, "parents": []},
  {"type": "User", "id": "bob", "attrs": {"roles": []}, "parents": []},
  {"type": "User", "id": "root", "attrs": {"roles": ["admin"]}, "parents": []},
  {"type": "User", "id": "anonymous", "attrs": {"roles": []}, "parents": []},
  {"type": "User", "id": "orders", "attrs": {"roles": []}, "parents": []},
  {"type": "Service", "id": "orders", "attrs": {"team": "shop"}, "parents": []},
  {"type": "Service", "id": "reports", "attrs": {"team": "bi"}, "parents": []},
  {"type": "Doc", "id": "d1", "attrs": {"owner": {"type": "User", "id": "alice"}}, "parents": []},
  {"type": "Doc", "id": "d2", "attrs": {"owner": {"type": "User", "id": "bob"}}, "parents": []},
  {"type": "Doc", "id": "frozen", "attrs": {"owner": {"type": "User", "id": "alice"}}, "parents": []},
  {"type": "Doc", "id": "public", "attrs": {"owner": {"type": "User", "id": "root"}}, "parents": []},
  {"type": "Console", "id": "main", "attrs": {}, "parents": []},
  {"type": "Api", "id": "ping", "attrs": {}, "parents": []},
  {"type": "Api", "id": "billing", "attrs": {}, "parents": []}
]
"#;

/// The audience every issuer's tokens must name.
pub const AUDIENCE: &str = "mini-api";
/// The RS256 issuer (a JWKS file with the RSA key `rs-1`).
pub const RS_ISSUER: &str = "https://rs.test";
/// The ES256 issuer (a JWKS file with the P-256 key `es-1`).
pub const ES_ISSUER: &str = "https://es.test";
/// The EdDSA issuer (a JWKS file with the Ed25519 key `ed-1`).
pub const ED_ISSUER: &str = "https://ed.test";
/// The HS256 issuer (a shared secret file).
pub const HS_ISSUER: &str = "https://hs.test";
/// The issuer of service tokens: principal type `Service`, id from `client_id`.
pub const MESH_ISSUER: &str = "https://mesh.test";
/// The audience of service tokens.
pub const MESH_AUDIENCE: &str = "billing";

// ---------------------------------------------------------------------------------------------
// Keys.

/// A signing key with its public JWK.
pub struct TestKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub jwk: Json,
    /// The public key as PEM (RSA only): the bytes an HS/RS confusion attack signs with.
    pub public_pem: Option<String>,
}

/// DER bytes as PEM text with `label`.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// An RSA 2048 key.
pub fn rsa_key(kid: &str) -> TestKey {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let private: Pkcs8V1Der = pair.as_der().unwrap();
    let encoding =
        EncodingKey::from_rsa_pem(pem("PRIVATE KEY", private.as_ref()).as_bytes()).unwrap();
    let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    let public: PublicKeyX509Der = pair.public_key().as_der().unwrap();
    TestKey {
        kid: kid.to_string(),
        encoding,
        jwk: json!({
            "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(&components.n),
            "e": URL_SAFE_NO_PAD.encode(&components.e),
        }),
        public_pem: Some(pem("PUBLIC KEY", public.as_ref())),
    }
}

/// An EC P-256 key.
pub fn ec_key(kid: &str) -> TestKey {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let pkcs8 = pair.to_pkcs8v1().unwrap();
    let point = pair.public_key().as_ref().to_vec();
    assert_eq!(point.len(), 65);
    TestKey {
        kid: kid.to_string(),
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({
            "kty": "EC", "kid": kid, "crv": "P-256", "alg": "ES256", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }),
        public_pem: None,
    }
}

/// An Ed25519 key.
pub fn ed_key(kid: &str) -> TestKey {
    let pair = Ed25519KeyPair::generate().unwrap();
    let pkcs8 = pair.to_pkcs8().unwrap();
    TestKey {
        kid: kid.to_string(),
        encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
        jwk: json!({
            "kty": "OKP", "kid": kid, "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        }),
        public_pem: None,
    }
}

/// The issuers' keys, generated once per test binary (RSA generation takes a moment), and keys
/// of an attacker that no issuer publishes.
pub struct Keys {
    pub rsa: TestKey,
    pub ec: TestKey,
    pub ed: TestKey,
    pub mesh: TestKey,
    /// The HMAC secret of the HS256 issuer: 64 random hex characters.
    pub hmac_secret: String,
    pub hmac: EncodingKey,
    /// An attacker's P-256 key that claims the issuer's `kid`.
    pub attacker_ec: TestKey,
    /// An attacker's RSA key that claims the issuer's `kid`.
    pub attacker_rsa: TestKey,
}

/// The keys of this test binary.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut random = [0u8; 32];
        aws_lc_rs::rand::fill(&mut random).unwrap();
        let hmac_secret: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
        Keys {
            rsa: rsa_key("rs-1"),
            ec: ec_key("es-1"),
            ed: ed_key("ed-1"),
            mesh: ed_key("mesh-1"),
            hmac: secret_key(hmac_secret.as_bytes()),
            hmac_secret,
            attacker_ec: ec_key("es-1"),
            attacker_rsa: rsa_key("rs-1"),
        }
    })
}

/// An HMAC signing key.
pub fn secret_key(secret: &[u8]) -> EncodingKey {
    EncodingKey::from_secret(secret).unwrap()
}

/// A JWKS document holding these keys.
pub fn jwks(keys: &[&TestKey]) -> String {
    json!({ "keys": keys.iter().map(|key| key.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

// ---------------------------------------------------------------------------------------------
// Tokens.

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Good claims for a user token of `issuer`.
pub fn claims(issuer: &str, sub: &str) -> Json {
    json!({
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": sub,
        "exp": now() + 600,
        "iat": now(),
    })
}

/// `claims` with one claim set (or replaced).
pub fn with(mut claims: Json, name: &str, value: Json) -> Json {
    claims[name] = value;
    claims
}

/// `claims` without one claim.
pub fn without(mut claims: Json, name: &str) -> Json {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

/// A token signed with jsonwebtoken's `encode`.
pub fn token(algorithm: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Json) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// A token with a hand-made header, signed over its exact signing input.
pub fn raw_token(header: &Json, claims: &Json, key: &EncodingKey, algorithm: Algorithm) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key, algorithm).unwrap();
    format!("{input}.{signature}")
}

/// A token with a hand-made header and a given signature part (such as empty, for `alg: none`).
pub fn unsigned_token(header: &Json, claims: &Json, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// A good ES256 token of the ES issuer for `sub`.
pub fn user_token(sub: &str) -> String {
    token(
        Algorithm::ES256,
        Some("es-1"),
        &keys().ec.encoding,
        &claims(ES_ISSUER, sub),
    )
}

/// The `Authorization` header value for a token.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

// ---------------------------------------------------------------------------------------------
// The recording upstream.

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    /// The first value of a header (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a header.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The header names as sent, lower-cased.
    pub fn names(&self) -> Vec<String> {
        self.headers
            .iter()
            .map(|(name, _)| name.to_ascii_lowercase())
            .collect()
    }
}

/// A loopback HTTP/1.1 server that records each request and answers 200 with a small JSON body.
/// Requests whose path starts with `/public/slow` are answered after `slow_ms`.
pub struct Upstream {
    pub address: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Bytes that could not be read as a request, per connection.
    garbage: Arc<Mutex<Vec<Vec<u8>>>>,
    pub slow_ms: Arc<AtomicU64>,
}

impl Upstream {
    /// Starts the upstream on a free loopback port.
    pub fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let upstream = Upstream {
            address,
            seen: Arc::default(),
            garbage: Arc::default(),
            slow_ms: Arc::new(AtomicU64::new(3000)),
        };
        let seen = upstream.seen.clone();
        let garbage = upstream.garbage.clone();
        let slow = upstream.slow_ms.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (seen, garbage, slow) = (seen.clone(), garbage.clone(), slow.clone());
                std::thread::spawn(move || serve_upstream(stream, &seen, &garbage, &slow));
            }
        });
        upstream
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests were received so far.
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Bytes that arrived but did not form a request.
    pub fn garbage(&self) -> Vec<Vec<u8>> {
        self.garbage.lock().unwrap().clone()
    }

    /// The only request received, asserting there was exactly one.
    pub fn only(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "the upstream saw {seen:#?}");
        seen.into_iter().next().unwrap()
    }

    /// Asserts the upstream received nothing at all (no request, no stray bytes).
    pub fn assert_untouched(&self, what: &str) {
        let seen = self.seen();
        assert!(seen.is_empty(), "{what}: the upstream saw {seen:#?}");
        let garbage = self.garbage();
        assert!(
            garbage.is_empty(),
            "{what}: the upstream got bytes {garbage:?}"
        );
    }
}

fn serve_upstream(
    stream: TcpStream,
    seen: &Mutex<Vec<Seen>>,
    garbage: &Mutex<Vec<Vec<u8>>>,
    slow: &AtomicU64,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        match read_request(&mut reader) {
            Ok(None) => return,
            Ok(Some(request)) => {
                let slow_path = request.target.starts_with("/public/slow");
                let body = json!({ "upstream": "ok", "path": request.target }).to_string();
                seen.lock().unwrap().push(request);
                if slow_path {
                    std::thread::sleep(Duration::from_millis(slow.load(Ordering::Relaxed)));
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if writer.write_all(response.as_bytes()).is_err() {
                    return;
                }
            }
            Err(bytes) => {
                if !bytes.is_empty() {
                    garbage.lock().unwrap().push(bytes);
                }
                return;
            }
        }
    }
}

/// Reads one request: `Ok(None)` at a clean end of the connection, `Err(bytes)` with what was
/// read when the bytes are not a request this server understands.
fn read_request(reader: &mut BufReader<TcpStream>) -> Result<Option<Seen>, Vec<u8>> {
    let mut raw = Vec::new();
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(_) => return Ok(None),
    }
    raw.extend_from_slice(line.as_bytes());
    let mut parts = line.trim_end().split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(raw);
    };
    if !version.starts_with("HTTP/1.") {
        return Err(raw);
    }
    let (method, target) = (method.to_string(), target.to_string());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(|_| raw.clone())? == 0 {
            return Err(raw);
        }
        raw.extend_from_slice(line.as_bytes());
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(raw);
        };
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|value| value.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).map_err(|_| raw.clone())?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| raw.clone())?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).map_err(|_| raw.clone())?;
            chunk.truncate(size);
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk);
        }
    } else if let Some(length) = header("content-length") {
        let length: usize = length.parse().map_err(|_| raw.clone())?;
        body = vec![0; length];
        reader.read_exact(&mut body).map_err(|_| raw.clone())?;
    }
    Ok(Some(Seen {
        method,
        target,
        headers,
        body,
    }))
}

// ---------------------------------------------------------------------------------------------
// The JWKS server.

/// A loopback HTTP server for `/jwks.json`: serves the current document, or 503 while down.
pub struct JwksServer {
    pub address: SocketAddr,
    document: Arc<Mutex<Option<String>>>,
    /// When each successful (200) answer was sent.
    served: Arc<Mutex<Vec<Instant>>>,
    /// How many requests arrived, answered or not.
    pub requests: Arc<AtomicU64>,
}

impl JwksServer {
    pub fn start(document: Option<String>) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = JwksServer {
            address,
            document: Arc::new(Mutex::new(document)),
            served: Arc::default(),
            requests: Arc::default(),
        };
        let (document, served, requests) = (
            server.document.clone(),
            server.served.clone(),
            server.requests.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (document, served, requests) =
                    (document.clone(), served.clone(), requests.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    let mut writer = stream.try_clone().unwrap();
                    let mut reader = BufReader::new(stream);
                    while let Ok(Some(_request)) = read_request(&mut reader) {
                        requests.fetch_add(1, Ordering::SeqCst);
                        let current = document.lock().unwrap().clone();
                        let response = match current {
                            Some(body) => {
                                served.lock().unwrap().push(Instant::now());
                                format!(
                                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                                    body.len()
                                )
                            }
                            None => "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
                                .to_string(),
                        };
                        if writer.write_all(response.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        server
    }

    /// `http://ADDR/jwks.json`.
    pub fn url(&self) -> String {
        format!("http://{}/jwks.json", self.address)
    }

    /// Serves this document from now on (`None`: answer 503).
    pub fn set(&self, document: Option<String>) {
        *self.document.lock().unwrap() = document;
    }

    /// When the document was last served successfully.
    pub fn last_served(&self) -> Option<Instant> {
        self.served.lock().unwrap().last().copied()
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------------------
// The proxy.

/// What a test changes in the standard configuration.
#[derive(Default)]
pub struct Options {
    /// More lines of the `[proxy]` table, such as `mode = "ext_authz"`.
    pub proxy: String,
    /// Tables appended to the configuration, such as another `[[identity.jwt]]`.
    pub extra: String,
    /// The upstream URL instead of the recording upstream's.
    pub upstream_url: Option<String>,
    /// More lines of the `[context]` table, such as `amount = "query:amount"`.
    pub context: String,
    /// One more policy file, `extra.authz`: declarations, routes and policies of a test's own.
    pub policy_file: Option<String>,
}

/// A running proxy in front of a recording upstream, with its directory and audit log.
pub struct Proxy {
    pub server: Server,
    pub upstream: Upstream,
    pub dir: tempfile::TempDir,
}

impl Proxy {
    /// Writes the policy set, keys and configuration into a fresh directory and starts the
    /// proxy in front of a fresh upstream.
    pub fn start(options: Options) -> Proxy {
        let keys = keys();
        let dir = tempfile::tempdir().unwrap();
        let policies = dir.path().join("policies");
        std::fs::create_dir(&policies).unwrap();
        std::fs::write(policies.join("schema.authz"), SCHEMA).unwrap();
        std::fs::write(policies.join("routes.authz"), ROUTES).unwrap();
        std::fs::write(policies.join("policies.authz"), POLICIES).unwrap();
        if let Some(text) = &options.policy_file {
            std::fs::write(policies.join("extra.authz"), text).unwrap();
        }
        std::fs::write(dir.path().join("entities.json"), ENTITIES).unwrap();
        std::fs::write(dir.path().join("rs.jwks"), jwks(&[&keys.rsa])).unwrap();
        std::fs::write(dir.path().join("es.jwks"), jwks(&[&keys.ec])).unwrap();
        std::fs::write(dir.path().join("ed.jwks"), jwks(&[&keys.ed])).unwrap();
        std::fs::write(dir.path().join("mesh.jwks"), jwks(&[&keys.mesh])).unwrap();
        std::fs::write(dir.path().join("hs.secret"), &keys.hmac_secret).unwrap();
        let upstream = Upstream::start();
        let upstream_url = options
            .upstream_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", upstream.address));
        let config = format!(
            r#"
[proxy]
listen = "127.0.0.1:0"
{timeouts}
{proxy}

[policies]
dir = "policies"
entities = "entities.json"

[decision_log]
path = "audit.log"

[log]
level = "info"

[[upstream]]
name = "app"
url = "{upstream_url}"
prefix = "/"

[[identity.jwt]]
issuer = "{RS_ISSUER}"
audiences = ["{AUDIENCE}"]
algorithms = ["RS256"]
jwks_file = "rs.jwks"
principal_type = "User"

[[identity.jwt]]
issuer = "{ES_ISSUER}"
audiences = ["{AUDIENCE}"]
algorithms = ["ES256"]
jwks_file = "es.jwks"
principal_type = "User"

[[identity.jwt]]
issuer = "{ED_ISSUER}"
audiences = ["{AUDIENCE}"]
algorithms = ["EdDSA"]
jwks_file = "ed.jwks"
principal_type = "User"

[[identity.jwt]]
issuer = "{HS_ISSUER}"
audiences = ["{AUDIENCE}"]
algorithms = ["HS256"]
hmac_secret_file = "hs.secret"
principal_type = "User"

[[identity.jwt]]
issuer = "{MESH_ISSUER}"
audiences = ["{MESH_AUDIENCE}"]
algorithms = ["EdDSA"]
jwks_file = "mesh.jwks"
principal_type = "Service"
id_claim = "client_id"

[context]
ip = "client_ip"
{context}

{extra}
"#,
            timeouts = if options.proxy.contains("upstream_timeout_ms") {
                "connect_timeout_ms = 1000"
            } else {
                "upstream_timeout_ms = 2000\nconnect_timeout_ms = 1000"
            },
            proxy = options.proxy,
            context = options.context,
            extra = options.extra,
        );
        let config_path = dir.path().join("proxy.toml");
        std::fs::write(&config_path, config).unwrap();
        let args = vec![
            "proxy".to_string(),
            "-c".to_string(),
            config_path.display().to_string(),
            "--listen".to_string(),
            "127.0.0.1:0".to_string(),
        ];
        let server = Server::start(&args, &dir.path().join("proxy.log"));
        Proxy {
            server,
            upstream,
            dir,
        }
    }

    /// The standard proxy.
    pub fn standard() -> Proxy {
        Proxy::start(Options::default())
    }

    pub fn address(&self) -> SocketAddr {
        self.server.address
    }

    /// A fresh client of the proxy.
    pub fn client(&self) -> Client {
        Client::new(self.server.address)
    }

    /// One request on a fresh connection.
    pub fn request(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Response {
        self.client().request(method, target, headers, b"")
    }

    /// `GET target` with a bearer token.
    pub fn get_as(&self, token: &str, target: &str) -> Response {
        let authorization = bearer(token);
        self.request("GET", target, &[("Authorization", &authorization)])
    }

    /// The audit log's lines.
    pub fn audit(&self) -> Vec<Json> {
        let text = std::fs::read_to_string(self.dir.path().join("audit.log")).unwrap_or_default();
        text.lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}"))
            })
            .collect()
    }

    /// The proxy's diagnostic log.
    pub fn stderr(&self) -> String {
        self.server.stderr()
    }

    /// A path in the proxy's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Asserts a 401 with the proxy's small JSON body, whose message is one of the fixed sentences.
/// The JSON body of one of the proxy's own answers without its `request_id`, which must be there
/// and match the `x-request-id` header.
pub fn without_request_id(response: &Response) -> Json {
    let mut body = response.json();
    let id = body
        .as_object_mut()
        .and_then(|members| members.remove("request_id"))
        .unwrap_or_else(|| panic!("no request_id in {}", response.text()));
    assert_eq!(
        Some(id.as_str().unwrap_or_default()),
        response.header("x-request-id")
    );
    body
}

pub fn assert_unauthorized(response: &Response, what: &str) {
    assert_eq!(response.status, 401, "{what}: {}", response.text());
    let body = response.json();
    assert_eq!(body["decision"], "deny", "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        [
            "malformed credentials",
            "the token has expired",
            "the token is not valid yet",
            "invalid API key",
            "invalid token",
            "credentials are required",
        ]
        .contains(&message),
        "{what}: unexpected message in {body}"
    );
}

/// Asserts the body is a small JSON object that names no internal detail.
pub fn assert_clean_error_body(response: &Response, what: &str) {
    let text = response.text();
    assert!(text.len() < 512, "{what}: a large error body: {text}");
    let _: Json = response.json();
    let lower = text.to_ascii_lowercase();
    for leak in [
        "hyper",
        "tcp",
        "os error",
        "connection refused",
        "127.0.0.1",
        "panicked",
        "backtrace",
        "src/",
        "tokio",
        "elapsed",
        "error trying",
    ] {
        assert!(!lower.contains(leak), "{what}: `{leak}` leaks in {text}");
    }
}

/// Writes raw bytes on a fresh connection and reads whatever comes back until the proxy closes
/// the connection or stays silent for `quiet`.
pub fn raw_exchange(address: SocketAddr, bytes: &[u8], quiet: Duration) -> String {
    let mut stream = TcpStream::connect_timeout(&address, PATIENCE).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream.set_read_timeout(Some(quiet)).unwrap();
    // A proxy may refuse and close before the whole message is written.
    let _ = stream.write_all(bytes);
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    while started.elapsed() < PATIENCE {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// The status codes of the HTTP/1.1 responses in raw text, in order.
pub fn statuses(raw: &str) -> Vec<u16> {
    raw.match_indices("HTTP/1.1 ")
        .filter_map(|(at, prefix)| raw.get(at + prefix.len()..at + prefix.len() + 3))
        .filter_map(|code| code.parse().ok())
        .collect()
}

/// Waits (bounded) for `condition`.
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The principal header the proxy sets for a user or service.
pub fn principal_header(kind: &str, id: &str) -> String {
    format!("{{\"type\":\"{kind}\",\"id\":\"{id}\"}}")
}
