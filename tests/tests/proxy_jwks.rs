//! `authz proxy` end to end with keys from a JWKS URL served on loopback by the test: a key
//! rotated at the URL is picked up without restarting the proxy (and the retired key stops
//! working), unknown `kid`s refetch at most once per interval, and while the endpoint fails the
//! last keys are served for `jwks_stale_seconds`, after which every token of the issuer is
//! refused (fail closed) until the endpoint is back. An issuer configured by its URL alone is
//! found by OIDC discovery against a loopback provider: its discovery document gives the JWKS
//! URL and the algorithms, a document that names another issuer is refused (fail closed), and
//! `/readyz` shows what was discovered.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod proxy_support;
mod serve_support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use proxy_support::*;

const ISSUER: &str = "https://rotating.test";
const STALE_SECONDS: f64 = 2.5;

fn rotating_proxy(jwks_server: &JwksServer) -> Proxy {
    Proxy::start(Options {
        extra: format!(
            r#"
[[identity.jwt]]
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
algorithms = ["ES256", "RS256"]
jwks_url = "{url}"
jwks_refresh_seconds = 600
jwks_min_refetch_seconds = 0.3
jwks_stale_seconds = {STALE_SECONDS}
jwks_timeout_seconds = 2
principal_type = "User"
"#,
            url = jwks_server.url()
        ),
        ..Options::default()
    })
}

fn signed(key: &TestKey, algorithm: Algorithm, sub: &str) -> String {
    token(
        algorithm,
        Some(&key.kid),
        &key.encoding,
        &claims(ISSUER, sub),
    )
}

#[test]
fn a_rotated_key_is_picked_up_without_restart() {
    let first = ec_key("rot-1");
    let second = rsa_key("rot-2");
    let jwks_server = JwksServer::start(Some(jwks(&[&first])));
    let proxy = rotating_proxy(&jwks_server);
    let pid = proxy.server.pid();
    assert_eq!(jwks_server.request_count(), 1, "fetched once at startup");

    let old = signed(&first, Algorithm::ES256, "alice");
    assert_eq!(proxy.get_as(&old, "/docs/d1").status, 200);
    let new = signed(&second, Algorithm::RS256, "alice");
    // Not published yet.
    std::thread::sleep(Duration::from_millis(350));
    assert_unauthorized(&proxy.get_as(&new, "/docs/d1"), "unpublished key");

    // The issuer rotates: the new key only.
    jwks_server.set(Some(jwks(&[&second])));
    std::thread::sleep(Duration::from_millis(350));
    let response = proxy.get_as(&new, "/docs/d1");
    assert_eq!(response.status, 200, "{}", response.text());
    // The retired key no longer verifies, even for a token verified (and cached) before.
    assert_unauthorized(&proxy.get_as(&old, "/docs/d1"), "retired key, cached token");
    assert_unauthorized(
        &proxy.get_as(&signed(&first, Algorithm::ES256, "bob"), "/docs/d2"),
        "retired key, fresh token",
    );
    assert_eq!(proxy.server.pid(), pid);
    let seen = proxy.upstream.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .all(|request| request.header("x-authz-issuer") == Some(ISSUER)));

    // A burst of made-up kids costs at most one fetch per interval, not one per token.
    std::thread::sleep(Duration::from_millis(350));
    let before = jwks_server.request_count();
    let attacker = ec_key("x");
    let mut client = proxy.client();
    let started = Instant::now();
    for n in 0..30 {
        let kid = format!("made-up-{n}");
        let token = token(
            Algorithm::ES256,
            Some(&kid),
            &attacker.encoding,
            &claims(ISSUER, "root"),
        );
        let authorization = bearer(&token);
        let response = client.request("GET", "/docs/d1", &[("Authorization", &authorization)], b"");
        assert_unauthorized(&response, "made-up kid");
    }
    let fetches = jwks_server.request_count() - before;
    let intervals = (started.elapsed().as_secs_f64() / 0.3).ceil() as u64;
    assert!(
        fetches >= 1 && fetches <= intervals + 1,
        "{fetches} fetches in {:?}",
        started.elapsed()
    );
    assert_eq!(proxy.upstream.count(), 2);
}

#[test]
fn a_failing_endpoint_serves_stale_keys_then_fails_closed() {
    let key = ec_key("stale-1");
    let jwks_server = JwksServer::start(Some(jwks(&[&key])));
    let proxy = rotating_proxy(&jwks_server);
    let cached = signed(&key, Algorithm::ES256, "alice");
    assert_eq!(proxy.get_as(&cached, "/docs/d1").status, 200);
    let fetched = jwks_server.last_served().unwrap();

    // The endpoint goes down.
    jwks_server.set(None);
    std::thread::sleep(Duration::from_millis(400));
    // Within the stale bound: cached and freshly presented tokens of the known key still pass.
    assert_eq!(proxy.get_as(&cached, "/docs/d1").status, 200);
    let fresh = signed(&key, Algorithm::ES256, "alice");
    assert_eq!(proxy.get_as(&fresh, "/docs/d1").status, 200);
    // A key the proxy never saw cannot be fetched now.
    let unseen = signed(&ec_key("stale-2"), Algorithm::ES256, "alice");
    assert_unauthorized(&proxy.get_as(&unseen, "/docs/d1"), "unseen kid while down");
    assert!(
        fetched.elapsed() < Duration::from_secs_f64(STALE_SECONDS - 0.5),
        "the machine is too slow for this test's timing ({:?})",
        fetched.elapsed()
    );
    assert_eq!(proxy.upstream.count(), 3);

    // Past the bound: every token of the issuer is refused, cached or not.
    let deadline = fetched + Duration::from_secs_f64(STALE_SECONDS + 0.4);
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    let response = proxy.get_as(&cached, "/docs/d1");
    assert_unauthorized(&response, "stale keys, cached token");
    assert_eq!(response.json()["error"]["message"], "invalid token");
    let another = signed(&key, Algorithm::ES256, "bob");
    assert_unauthorized(
        &proxy.get_as(&another, "/docs/d2"),
        "stale keys, fresh token",
    );
    assert_eq!(proxy.upstream.count(), 3, "nothing passed after the bound");
    // Other issuers are unaffected.
    assert_eq!(proxy.get_as(&user_token("alice"), "/docs/d1").status, 200);
    assert!(proxy.stderr().contains("JWKS fetch failed"));

    // The endpoint comes back: the keys are fetched again and tokens pass, without a restart.
    jwks_server.set(Some(jwks(&[&key])));
    std::thread::sleep(Duration::from_millis(350));
    let response = proxy.get_as(&cached, "/docs/d1");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(proxy.upstream.count(), 5);
}

/// A loopback OpenID provider: documents by path (a discovery document, a JWKS), replaceable,
/// with a count of requests per path; other paths are 404.
struct OidcServer {
    address: SocketAddr,
    documents: Arc<Mutex<HashMap<String, String>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl OidcServer {
    fn start() -> OidcServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = OidcServer {
            address: listener.local_addr().unwrap(),
            documents: Arc::default(),
            hits: Arc::default(),
        };
        let (documents, hits) = (server.documents.clone(), server.hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (documents, hits) = (documents.clone(), hits.clone());
                std::thread::spawn(move || {
                    let mut writer = stream.try_clone().unwrap();
                    let mut reader = BufReader::new(stream);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split(' ').nth(1).unwrap_or("").to_string();
                        loop {
                            let mut header = String::new();
                            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                                return;
                            }
                            if header == "\r\n" {
                                break;
                            }
                        }
                        *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                        let answer = match documents.lock().unwrap().get(&path) {
                            Some(body) => format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            ),
                            None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_string(),
                        };
                        if writer.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        server
    }

    /// The issuer URL of the realm `name`.
    fn issuer(&self, name: &str) -> String {
        format!("http://{}/{name}", self.address)
    }

    /// Publishes the realm `name`: a discovery document naming `named_issuer`, the JWKS of
    /// `keys` and the `algorithms`.
    fn publish(&self, name: &str, named_issuer: &str, keys: &[&TestKey], algorithms: &[&str]) {
        let discovery = serde_json::json!({
            "issuer": named_issuer,
            "jwks_uri": format!("http://{}/{name}/keys", self.address),
            "id_token_signing_alg_values_supported": algorithms,
            "authorization_endpoint": format!("http://{}/{name}/auth", self.address),
        });
        let mut documents = self.documents.lock().unwrap();
        documents.insert(
            format!("/{name}/.well-known/openid-configuration"),
            discovery.to_string(),
        );
        documents.insert(format!("/{name}/keys"), jwks(keys));
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn discovering_proxy(issuer: &str, admin: SocketAddr) -> Proxy {
    Proxy::start(Options {
        extra: format!(
            r#"
[[identity.jwt]]
issuer = "{issuer}"
audiences = ["{AUDIENCE}"]
principal_type = "User"
jwks_min_refetch_seconds = 0.2

[admin]
listen = "{admin}"
"#
        ),
        ..Options::default()
    })
}

fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn jwks_readiness(admin: SocketAddr) -> serde_json::Value {
    let response = serve_support::Client::new(admin).request("GET", "/readyz", &[], b"");
    response.json()["jwks"][0].clone()
}

#[test]
fn an_issuer_url_alone_is_found_by_oidc_discovery() {
    let provider = OidcServer::start();
    let (ec, rsa) = (ec_key("disc-ec"), rsa_key("disc-rsa"));
    let issuer = provider.issuer("realm");
    // The provider signs with ES256 only, though its JWKS also holds an RSA key.
    provider.publish("realm", &issuer, &[&ec, &rsa], &["ES256"]);
    let admin = free_address();
    let proxy = discovering_proxy(&issuer, admin);
    assert_eq!(provider.hits("/realm/.well-known/openid-configuration"), 1);
    assert_eq!(provider.hits("/realm/keys"), 1);

    let sign = |key: &TestKey, algorithm: Algorithm| {
        token(
            algorithm,
            Some(&key.kid),
            &key.encoding,
            &claims(&issuer, "alice"),
        )
    };
    let response = proxy.get_as(&sign(&ec, Algorithm::ES256), "/docs/d1");
    assert_eq!(response.status, 200, "{}", response.text());
    // An algorithm the discovery document does not list is refused, whatever the JWKS holds.
    assert_unauthorized(
        &proxy.get_as(&sign(&rsa, Algorithm::RS256), "/docs/d1"),
        "RS256 is not among the discovered algorithms",
    );
    let ready = jwks_readiness(admin);
    assert_eq!(ready["discovery"], true, "{ready}");
    assert_eq!(ready["usable"], true, "{ready}");
    assert_eq!(
        ready["jwks_uri"],
        format!("http://{}/realm/keys", provider.address)
    );

    // A provider whose discovery document names another issuer is not trusted: no key of it
    // is ever used.
    let impostor = provider.issuer("impostor");
    provider.publish("impostor", "https://login.example.com", &[&ec], &["ES256"]);
    let admin = free_address();
    let refused = discovering_proxy(&impostor, admin);
    let token = token(
        Algorithm::ES256,
        Some(&ec.kid),
        &ec.encoding,
        &claims(&impostor, "alice"),
    );
    assert_unauthorized(
        &refused.get_as(&token, "/docs/d1"),
        "the issuer does not match",
    );
    assert_eq!(
        provider.hits("/impostor/keys"),
        0,
        "keys fetched for an impostor"
    );
    let ready = jwks_readiness(admin);
    assert_eq!(ready["usable"], false, "{ready}");
    assert!(ready["jwks_uri"].is_null(), "{ready}");
}
