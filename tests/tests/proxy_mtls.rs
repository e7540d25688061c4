//! `authz proxy` with TLS and client certificates, end to end: the real binary listens with TLS in
//! front of a recording upstream on loopback, and a rustls client presents certificates made in
//! the test with the `openssl` command (a mesh CA, a server certificate for `localhost` and
//! 127.0.0.1, client certificates with the SPIFFE IDs of services `a`, `b` and `c`, one from
//! another CA, an expired one, and two that name no usable principal).
//!
//! Service `a` may call service `b`'s API and service `c` may not, by certificate and by service
//! JWT; a certificate from another CA, an expired one, or none when one is required, ends the
//! handshake; in every refusal the upstream sees nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod proxy_support;
mod serve_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, OnceLock};

use jsonwebtoken::Algorithm;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value as Json};

use proxy_support::{eventually, now, principal_header, secret_key, token, Upstream};
use serve_support::{authz_binary, Response, PATIENCE};

/// The trust domain of the mesh.
const TRUST_DOMAIN: &str = "mesh.test";
/// The issuer and audience of service tokens.
const MESH_ISSUER: &str = "https://mesh.test";
const MESH_AUDIENCE: &str = "services";
/// The HMAC secret of service tokens.
const MESH_SECRET: &[u8] = b"a mesh secret of at least thirty-two bytes";

const SCHEMA: &str = r#"
entity Service;
entity ServiceApi;
action call: Service -> ServiceApi;
"#;

const ROUTES: &str = r#"
route POST "/b/**" => call ServiceApi("b");
route GET "/b/**" => call ServiceApi("b");
route POST "/c/**" => call ServiceApi("c");
"#;

const POLICIES: &str = r#"
@id("a-calls-b")
permit principal == Service("a"), action: call, resource == ServiceApi("b");

@id("b-calls-c")
permit principal == Service("b"), action: call, resource == ServiceApi("c");
"#;

const ENTITIES: &str = r#"[
  {"type": "Service", "id": "a", "attrs": {}, "parents": []},
  {"type": "Service", "id": "b", "attrs": {}, "parents": []},
  {"type": "Service", "id": "c", "attrs": {}, "parents": []},
  {"type": "ServiceApi", "id": "b", "attrs": {}, "parents": []},
  {"type": "ServiceApi", "id": "c", "attrs": {}, "parents": []}
]
"#;

// ---------------------------------------------------------------------------------------------
// Certificates, made once per test binary with the openssl command.

/// The certificates of the tests, in a directory that lives as long as the test binary.
struct Pki {
    dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command runs");
    assert!(
        output.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A P-256 key and a certificate request for `name`.
fn key_and_request(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
}

/// A self-signed CA certificate `name.pem` with its key.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:true",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A certificate `name.pem` signed by `ca`, valid for two days, with the extensions `ext`.
fn issue(dir: &Path, ca: &str, name: &str, ext: &str) {
    key_and_request(dir, name);
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-sha256",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// The extensions of a client certificate for the SPIFFE ID `spiffe://domain/ns/shop/sa/service`.
fn client_ext(domain: &str, service: &str) -> String {
    format!(
        "subjectAltName = URI:spiffe://{domain}/ns/shop/sa/{service}\n\
         extendedKeyUsage = clientAuth\n\
         keyUsage = critical, digitalSignature\n"
    )
}

/// A certificate `name.pem` signed by `ca` that expired in 2020 (`openssl ca` sets the dates).
fn issue_expired(dir: &Path, ca: &str, name: &str, ext: &str) {
    key_and_request(dir, name);
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "1000\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        format!(
            "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = .\n\
             serial = serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n\
             [any]\ncommonName = supplied\n[ext]\n{ext}"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            &format!("{ca}.pem"),
            "-keyfile",
            &format!("{ca}.key"),
            "-in",
            &format!("{name}.csr"),
            "-out",
            &format!("{name}.pem"),
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
            "-extensions",
            "ext",
            "-notext",
        ],
    );
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        make_ca(&dir, "ca");
        make_ca(&dir, "rogue-ca");
        issue(
            &dir,
            "ca",
            "server",
            "subjectAltName = DNS:localhost, IP:127.0.0.1\nextendedKeyUsage = serverAuth\n",
        );
        for service in ["a", "b", "c"] {
            issue(&dir, "ca", service, &client_ext(TRUST_DOMAIN, service));
        }
        // Service `a`'s name, but from a CA the proxy does not trust.
        issue(&dir, "rogue-ca", "rogue-a", &client_ext(TRUST_DOMAIN, "a"));
        issue_expired(&dir, "ca", "expired-a", &client_ext(TRUST_DOMAIN, "a"));
        // Trusted CA, but no principal: another trust domain, and a DNS name only.
        issue(&dir, "ca", "foreign-a", &client_ext("other.test", "a"));
        issue(
            &dir,
            "ca",
            "dns-only",
            "subjectAltName = DNS:a.mesh.test\nextendedKeyUsage = clientAuth\n",
        );
        Pki { dir }
    })
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

// ---------------------------------------------------------------------------------------------
// The proxy.

/// A running `authz proxy` with TLS in front of a recording upstream.
struct TlsProxy {
    child: Child,
    address: SocketAddr,
    upstream: Upstream,
    dir: tempfile::TempDir,
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the policy set and configuration and starts the proxy; `client_auth` is `required`
/// or `optional`.
fn start_proxy(client_auth: &str) -> TlsProxy {
    start_proxy_with(client_auth, "")
}

/// `start_proxy` with more lines in `[proxy.tls]`.
fn start_proxy_with(client_auth: &str, tls_extra: &str) -> TlsProxy {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("schema.authz"), SCHEMA).unwrap();
    std::fs::write(policies.join("routes.authz"), ROUTES).unwrap();
    std::fs::write(policies.join("policies.authz"), POLICIES).unwrap();
    std::fs::write(dir.path().join("entities.json"), ENTITIES).unwrap();
    std::fs::write(dir.path().join("mesh.secret"), MESH_SECRET).unwrap();
    // Relative paths are taken from the configuration file's directory.
    for name in ["server.pem", "server.key", "ca.pem"] {
        std::fs::copy(pki.path(name), dir.path().join(name)).unwrap();
    }
    let upstream = Upstream::start();
    let config = format!(
        r#"
[proxy]
listen = "127.0.0.1:0"

[proxy.tls]
cert = "server.pem"
key = "server.key"
client_ca = "ca.pem"
client_auth = "{client_auth}"
{tls_extra}

[identity.mtls]
principal_type = "Service"
id_from = "spiffe"
trust_domains = ["{TRUST_DOMAIN}"]

[[identity.jwt]]
issuer = "{MESH_ISSUER}"
audiences = ["{MESH_AUDIENCE}"]
algorithms = ["HS256"]
hmac_secret_file = "mesh.secret"
principal_type = "Service"
id_claim = "client_id"

[policies]
dir = "policies"
entities = "entities.json"

[decision_log]
path = "audit.log"

[[upstream]]
name = "mesh"
url = "http://{upstream}"
prefix = "/"
"#,
        upstream = upstream.address
    );
    let config_path = dir.path().join("proxy.toml");
    std::fs::write(&config_path, config).unwrap();
    let stderr = std::fs::File::create(dir.path().join("proxy.log")).unwrap();
    let mut child = Command::new(authz_binary())
        .args(["proxy", "-c"])
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("start authz proxy");
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok);
        let _ = sender.send(first);
        for _ in lines {}
    });
    let line = receiver.recv_timeout(PATIENCE).ok().flatten();
    let address = line
        .as_deref()
        .and_then(|line| line.strip_prefix("listening on https://"))
        .and_then(|address| address.trim().parse().ok());
    let Some(address) = address else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "authz proxy did not come up with TLS (first line {line:?}); its stderr:\n{}",
            std::fs::read_to_string(dir.path().join("proxy.log")).unwrap_or_default()
        );
    };
    TlsProxy {
        child,
        address,
        upstream,
        dir,
    }
}

impl TlsProxy {
    /// One request on a fresh TLS connection, presenting the client certificate `cert` (a name
    /// of the PKI such as `a`) or none.
    fn call(
        &self,
        cert: Option<&str>,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response, String> {
        https(self.address, cert, method, target, headers)
    }

    /// Like `call`, for a request that must get an answer.
    fn ok_call(
        &self,
        cert: Option<&str>,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Response {
        self.call(cert, method, target, headers)
            .unwrap_or_else(|error| {
                panic!("{method} {target} as {cert:?}: {error}\n{}", self.stderr())
            })
    }

    fn audit(&self) -> Vec<Json> {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Waits for the audit line of `target` number `nth` (from 0) and returns it.
    fn audit_line(&self, target: &str, nth: usize) -> Json {
        let mut found = None;
        eventually(&format!("the audit line of {target}"), || {
            found = self
                .audit()
                .into_iter()
                .filter(|line| line["target"] == target)
                .nth(nth);
            found.is_some()
        });
        found.unwrap()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }
}

/// The rustls client configuration: trusts the mesh CA, presents `cert` if any.
fn client_config(cert: Option<&str>) -> rustls::ClientConfig {
    let pki = pki();
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(pki.path("ca.pem")).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match cert {
        None => builder.with_no_client_auth(),
        Some(name) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_file_iter(pki.path(&format!("{name}.pem")))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
            let key = PrivateKeyDer::from_pem_file(pki.path(&format!("{name}.key"))).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// One HTTP/1.1 request over TLS; the error is the TLS or I/O failure in words.
fn https(
    address: SocketAddr,
    cert: Option<&str>,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Result<Response, String> {
    let connection = rustls::ClientConnection::new(
        Arc::new(client_config(cert)),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let socket = TcpStream::connect_timeout(&address, PATIENCE).map_err(|e| e.to_string())?;
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket.set_write_timeout(Some(PATIENCE)).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, socket);
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|error| format!("write: {error}"))?;
    if stream.conn.alpn_protocol() != Some(b"http/1.1".as_slice()) {
        return Err(format!(
            "ALPN: the server chose {:?}",
            stream.conn.alpn_protocol()
        ));
    }
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(response) = parse_response(&received) {
            return Ok(response);
        }
        match stream.read(&mut buffer) {
            Ok(0) => return Err(format!("closed after {} bytes", received.len())),
            Ok(count) => received.extend_from_slice(&buffer[..count]),
            Err(error) => return Err(format!("read: {error}")),
        }
    }
}

/// A complete response with a `Content-Length` body, or `None` while bytes are missing.
fn parse_response(bytes: &[u8]) -> Option<Response> {
    let end = bytes.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse().ok())?;
    let body = bytes.get(end + 4..end + 4 + length)?.to_vec();
    Some(Response {
        status,
        headers,
        body,
    })
}

/// A service token for `client_id`.
fn service_token(client_id: &str) -> String {
    let claims = json!({
        "iss": MESH_ISSUER,
        "aud": MESH_AUDIENCE,
        "sub": client_id,
        "client_id": client_id,
        "exp": now() + 600,
        "iat": now(),
    });
    format!(
        "Bearer {}",
        token(Algorithm::HS256, None, &secret_key(MESH_SECRET), &claims)
    )
}

fn spiffe(service: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/ns/shop/sa/{service}")
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn service_a_may_call_b_by_certificate_and_c_may_not() {
    let proxy = start_proxy("required");

    let response = proxy.ok_call(Some("a"), "POST", "/b/orders/42", &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = proxy.upstream.only();
    assert_eq!(
        (seen.method.as_str(), seen.target.as_str()),
        ("POST", "/b/orders/42")
    );
    assert_eq!(
        seen.header("x-authz-principal"),
        Some(principal_header("Service", "a").as_str())
    );
    assert_eq!(seen.header("x-authz-auth"), Some("mtls"));
    let line = proxy.audit_line("/b/orders/42", 0);
    assert_eq!(line["decision"], "allow", "{line}");
    assert_eq!(
        line["principal"],
        json!({"type": "Service", "id": "a"}),
        "{line}"
    );
    assert_eq!(line["client_cert"], json!(spiffe("a")), "{line}");

    // Service `c` is denied, even when it claims to be `a` in the identity headers.
    for headers in [
        vec![],
        vec![
            ("x-authz-principal", r#"{"type":"Service","id":"a"}"#),
            ("x-authz-auth", "mtls"),
        ],
    ] {
        let response = proxy.ok_call(Some("c"), "POST", "/b/orders/42", &headers);
        assert_eq!(response.status, 403, "{}", response.text());
        assert_eq!(response.json()["decision"], "deny");
    }
    let line = proxy.audit_line("/b/orders/42", 1);
    assert_eq!(line["decision"], "deny", "{line}");
    assert_eq!(
        line["principal"],
        json!({"type": "Service", "id": "c"}),
        "{line}"
    );
    assert_eq!(line["client_cert"], json!(spiffe("c")), "{line}");

    // `a` may not call `c`'s API; `b` may.
    let response = proxy.ok_call(Some("a"), "POST", "/c/jobs", &[]);
    assert_eq!(response.status, 403, "{}", response.text());
    assert_eq!(proxy.upstream.count(), 1, "{:#?}", proxy.upstream.seen());
    let response = proxy.ok_call(Some("b"), "POST", "/c/jobs", &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        proxy.upstream.seen()[1].header("x-authz-principal"),
        Some(principal_header("Service", "b").as_str())
    );
}

#[test]
fn the_tls_listener_tells_the_upstream_https_whatever_the_client_claims() {
    let proxy = start_proxy("required");
    let response = proxy.ok_call(
        Some("a"),
        "POST",
        "/b/orders/42",
        &[("x-forwarded-proto", "http"), ("X_Forwarded_Proto", "http")],
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = proxy.upstream.only();
    assert_eq!(seen.all("x-forwarded-proto"), vec!["https"], "{seen:#?}");
    assert!(
        !seen.names().iter().any(|name| name == "x_forwarded_proto"),
        "{seen:#?}"
    );
}

#[test]
fn service_a_may_call_b_by_service_token_and_c_may_not() {
    let proxy = start_proxy("optional");

    let token_a = service_token("a");
    let response = proxy.ok_call(None, "POST", "/b/orders", &[("Authorization", &token_a)]);
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = proxy.upstream.only();
    assert_eq!(
        seen.header("x-authz-principal"),
        Some(principal_header("Service", "a").as_str())
    );
    assert_eq!(seen.header("x-authz-auth"), Some("jwt"));

    let token_c = service_token("c");
    let response = proxy.ok_call(None, "POST", "/b/orders", &[("Authorization", &token_c)]);
    assert_eq!(response.status, 403, "{}", response.text());
    assert_eq!(proxy.upstream.count(), 1);

    // Without a certificate or a token there is no principal.
    let response = proxy.ok_call(None, "POST", "/b/orders", &[]);
    assert_eq!(response.status, 401, "{}", response.text());
    assert_eq!(proxy.upstream.count(), 1);
}

#[test]
fn a_token_in_the_request_wins_over_the_certificate_which_the_audit_records() {
    let proxy = start_proxy("optional");

    // `c`'s connection carrying `a`'s token acts as `a` (a service calling on behalf of another
    // identity); the audit line names both.
    let token_a = service_token("a");
    let response = proxy.ok_call(Some("c"), "POST", "/b/x", &[("Authorization", &token_a)]);
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = proxy.upstream.only();
    assert_eq!(
        seen.header("x-authz-principal"),
        Some(principal_header("Service", "a").as_str())
    );
    assert_eq!(seen.header("x-authz-auth"), Some("jwt"));
    let line = proxy.audit_line("/b/x", 0);
    assert_eq!(
        line["principal"],
        json!({"type": "Service", "id": "a"}),
        "{line}"
    );
    assert_eq!(line["client_cert"], json!(spiffe("c")), "{line}");

    // And `a`'s connection carrying `c`'s token acts as `c`: denied.
    let token_c = service_token("c");
    let response = proxy.ok_call(Some("a"), "POST", "/b/y", &[("Authorization", &token_c)]);
    assert_eq!(response.status, 403, "{}", response.text());
    // A bad token is refused even on a connection with a good certificate.
    let response = proxy.ok_call(
        Some("a"),
        "POST",
        "/b/z",
        &[("Authorization", "Bearer x.y.z")],
    );
    assert_eq!(response.status, 401, "{}", response.text());
    assert_eq!(proxy.upstream.count(), 1);
}

#[test]
fn handshakes_without_a_current_certificate_from_the_ca_fail() {
    let proxy = start_proxy("required");
    let cases = [
        (None, "CertificateRequired"),
        (Some("rogue-a"), "UnknownCA"),
        (Some("expired-a"), "CertificateExpired"),
    ];
    for (cert, alert) in cases {
        let error = proxy
            .call(cert, "POST", "/b/orders", &[])
            .map(|response| response.status)
            .expect_err(&format!("{cert:?} was answered"));
        assert!(error.contains(alert), "{cert:?}: {error}");
    }
    // In optional mode a certificate that does not verify still ends the handshake.
    let optional = start_proxy("optional");
    for (cert, alert) in [
        (Some("rogue-a"), "UnknownCA"),
        (Some("expired-a"), "CertificateExpired"),
    ] {
        let error = optional
            .call(cert, "POST", "/b/orders", &[])
            .map(|response| response.status)
            .expect_err(&format!("{cert:?} was answered"));
        assert!(error.contains(alert), "{cert:?}: {error}");
    }
    proxy.upstream.assert_untouched("refused handshakes");
    optional.upstream.assert_untouched("refused handshakes");
    assert!(proxy.audit().is_empty(), "{:?}", proxy.audit());

    // The proxy still serves a good client afterwards.
    let response = proxy.ok_call(Some("a"), "GET", "/b/health", &[]);
    assert_eq!(response.status, 200, "{}", response.text());
}

#[test]
fn certificates_that_name_no_principal_are_refused() {
    let proxy = start_proxy("required");
    for (cert, name) in [
        ("foreign-a", "spiffe://other.test/ns/shop/sa/a"),
        ("dns-only", "a.mesh.test"),
    ] {
        let response = proxy.ok_call(Some(cert), "POST", "/b/orders", &[]);
        assert_eq!(response.status, 401, "{cert}: {}", response.text());
        let body = response.json();
        assert_eq!(
            body["error"]["code"], "authz::proxy::client_certificate",
            "{body}"
        );
        let line = proxy.audit_line("/b/orders", if cert == "dns-only" { 1 } else { 0 });
        assert_eq!(line["client_cert"], json!(name), "{line}");
        assert_eq!(line["status"], 401, "{line}");
    }
    proxy
        .upstream
        .assert_untouched("certificates without a principal");
}

#[test]
fn tls_configuration_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("schema.authz"), SCHEMA).unwrap();
    std::fs::write(policies.join("routes.authz"), ROUTES).unwrap();
    std::fs::write(policies.join("policies.authz"), POLICIES).unwrap();
    std::fs::copy(pki().path("server.pem"), dir.path().join("server.pem")).unwrap();
    std::fs::copy(pki().path("a.key"), dir.path().join("wrong.key")).unwrap();
    let base = "[policies]\ndir = \"policies\"\n[[upstream]]\nname = \"u\"\nurl = \"http://127.0.0.1:9\"\n";
    let cases = [
        (
            "[proxy.tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nciphers = []\n",
            "ciphers",
        ),
        (
            "[proxy.tls]\ncert = \"missing.pem\"\nkey = \"server.key\"\n",
            "`proxy.tls.cert`",
        ),
        (
            "[proxy.tls]\ncert = \"server.pem\"\nkey = \"wrong.key\"\n",
            "`proxy.tls.key`",
        ),
        (
            "[proxy.tls]\ncert = \"server.pem\"\nkey = \"wrong.key\"\nclient_auth = \"required\"\n",
            "`proxy.tls.client_auth`",
        ),
        (
            "[identity.mtls]\nprincipal_type = \"Service\"\n",
            "`identity.mtls`",
        ),
    ];
    for (text, key) in cases {
        let path = dir.path().join("proxy.toml");
        std::fs::write(&path, format!("{base}{text}")).unwrap();
        let output = Command::new(authz_binary())
            .args(["proxy", "-c"])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{text}: started");
        assert!(stderr.contains(key), "{text}: {stderr}");
    }
}

#[test]
fn a_client_that_stalls_the_handshake_is_dropped_and_holds_up_no_one() {
    let proxy = start_proxy_with("required", "handshake_timeout_ms = 300");
    let mut stalled = TcpStream::connect(proxy.address).unwrap();
    stalled.set_read_timeout(Some(PATIENCE)).unwrap();
    let started = std::time::Instant::now();
    // Others are served while the stalled handshake waits.
    let response = proxy.ok_call(Some("a"), "GET", "/b/health", &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    let mut buffer = [0u8; 64];
    let closed = matches!(stalled.read(&mut buffer), Ok(0) | Err(_));
    assert!(closed, "the stalled connection got bytes");
    let waited = started.elapsed();
    assert!(
        waited < std::time::Duration::from_secs(5),
        "the stalled connection was kept {waited:?}"
    );
}
