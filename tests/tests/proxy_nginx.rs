//! `authz proxy` in `mode = "ext_authz"` behind a real nginx `auth_request`, the way
//! `docs/proxy.md` shows it: nginx asks the proxy about every request and forwards the allowed
//! ones to a recording upstream. Every refusal must reach the client as the 401 or 403 the proxy
//! decided (nginx turns any other status of the check into a 500), and nothing refused or
//! spoofed may reach the upstream.
//!
//! nginx runs as the test's own process (`daemon off; master_process off;`) from a temporary
//! prefix, on a free loopback port. Where nginx is not installed the test says so and passes,
//! except under CI (`CI` set), where `.ci/run` installs it and its absence is a failure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod proxy_support;
mod serve_support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proxy_support::*;
use serve_support::{Client, Response, PATIENCE};

/// The nginx binary, where Debian installs it or on `PATH`.
fn nginx_binary() -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/sbin/nginx");
    if debian.is_file() {
        return Some(debian);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nginx"))
            .find(|candidate| candidate.is_file())
    })
}

/// A running nginx, stopped on drop.
struct Nginx {
    child: Child,
    address: SocketAddr,
    _prefix: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx on a free loopback port: every location is checked by `auth_request` against
    /// the proxy at `authz` and forwarded to `backend`.
    fn start(binary: &Path, authz: SocketAddr, backend: SocketAddr) -> Nginx {
        let prefix = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = prefix.path().display().to_string();
        let config = format!(
            r#"
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            auth_request /_authz;
            proxy_pass http://{backend};
        }}
        location = /_authz {{
            internal;
            proxy_pass http://{authz}/_authz;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
        }}
    }}
}}
"#
        );
        let config_path = prefix.path().join("nginx.conf");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(prefix.path())
            .arg("-e")
            .arg(prefix.path().join("error.log"))
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx starts");
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let nginx = Nginx {
            child,
            address,
            _prefix: prefix,
        };
        let started = Instant::now();
        while TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_err() {
            assert!(
                started.elapsed() < PATIENCE,
                "nginx did not start listening: {}",
                std::fs::read_to_string(nginx._prefix.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    fn request(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Response {
        Client::new(self.address).request(method, target, headers, b"")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a case is, its target, its headers and the status the client must see.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, u16);

#[test]
fn behind_nginx_auth_request_every_refusal_is_401_or_403_and_nothing_refused_is_forwarded() {
    let Some(binary) = nginx_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "nginx is required under CI (.ci/run installs it)"
        );
        eprintln!("nginx is not installed: the auth_request test is skipped");
        return;
    };
    let proxy = Proxy::start(Options {
        proxy: "mode = \"ext_authz\"\ntrusted_proxies = [\"127.0.0.1/32\"]".to_string(),
        ..Options::default()
    });
    let backend = Upstream::start();
    let nginx = Nginx::start(&binary, proxy.address(), backend.address);
    let alice = bearer(&user_token("alice"));

    // Allowed: forwarded by nginx, as requested.
    let response = nginx.request("GET", "/docs/d1?x=1", &[("Authorization", &alice)]);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(backend.only().target, "/docs/d1?x=1");

    // Each refusal is what the proxy decided, never a 500 made by nginx.
    let root_claim = principal_header("User", "root");
    let cases: &[Case] = &[
        ("no credential", "/docs/d1", vec![], 401),
        (
            "a bad token",
            "/docs/d1",
            vec![("Authorization", "Bearer x.y.z")],
            401,
        ),
        ("a denial", "/docs/d2", vec![("Authorization", &alice)], 403),
        ("no route", "/nowhere", vec![("Authorization", &alice)], 403),
        // Dot segments: decided on the normalized path.
        (
            "dot segments",
            "/public/../docs/d2",
            vec![("Authorization", &alice)],
            403,
        ),
        // Refused targets (400 from the proxy in front of a service) are 403 to the gateway.
        (
            "an encoded slash",
            "/docs%2Fd1",
            vec![("Authorization", &alice)],
            403,
        ),
        (
            "a backslash",
            "/docs%5Cd1",
            vec![("Authorization", &alice)],
            403,
        ),
        (
            "a look-alike dot",
            "/public/%EF%BC%8E%EF%BC%8E/docs/d2",
            vec![("Authorization", &alice)],
            403,
        ),
        (
            "a trailing dot",
            "/docs/d1.",
            vec![("Authorization", &alice)],
            403,
        ),
        (
            "a method override",
            "/docs/d1?_method=POST",
            vec![("Authorization", &alice)],
            403,
        ),
        // Headers nginx passes on to the upstream that the proxy cannot remove there.
        (
            "a method-override header",
            "/docs/d1",
            vec![
                ("Authorization", &alice),
                ("X-HTTP-Method-Override", "DELETE"),
            ],
            403,
        ),
        (
            "a rewrite header",
            "/public/x",
            vec![("Authorization", &alice), ("X-Original-URL", "/docs/d2")],
            403,
        ),
        (
            "a spoofed identity header",
            "/docs/d1",
            vec![("Authorization", &alice), ("X-Remote-User", "root")],
            403,
        ),
        (
            "a spoofed principal header",
            "/docs/d1",
            vec![
                ("Authorization", &alice),
                ("X-Authz-Principal", &root_claim),
            ],
            403,
        ),
        // A client naming another original request in the other gateway family's headers.
        (
            "a spoofed forwarded URI",
            "/docs/d2",
            vec![("Authorization", &alice), ("X-Forwarded-Uri", "/docs/d1")],
            403,
        ),
    ];
    for (what, target, headers, status) in cases {
        let response = nginx.request("GET", target, headers);
        assert_eq!(
            response.status,
            *status,
            "{what}: {target}: {}",
            response.text()
        );
    }
    // An exhausted limit is a 403 as well.
    let bob = bearer(&user_token("bob"));
    let statuses: Vec<u16> = (0..4)
        .map(|_| {
            nginx
                .request("GET", "/ping", &[("Authorization", &bob)])
                .status
        })
        .collect();
    assert_eq!(statuses, vec![200, 200, 200, 403]);

    let seen: Vec<String> = backend.seen().into_iter().map(|seen| seen.target).collect();
    assert_eq!(seen, vec!["/docs/d1?x=1", "/ping", "/ping", "/ping"]);

    // The audit line keeps the precise code of a refused target.
    let audit = proxy.audit();
    let slash = audit
        .iter()
        .find(|line| line["target"] == "/docs%2Fd1")
        .unwrap_or_else(|| panic!("no audit line for the encoded slash: {audit:#?}"));
    assert_eq!(slash["code"], "authz::proxy::encoded_slash");
    assert_eq!(slash["status"], 403);
}
