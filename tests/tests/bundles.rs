//! Bundles end to end: `authz bundle keygen|build|sign` make a signed bundle of the docs example; a
//! static HTTP server on loopback (with `ETag` and `304 Not Modified`) serves it to two `authz serve`
//! replicas, which both pick up a new revision, both refuse a tampered or unsigned one and keep
//! serving the revision they have, and answer a `304` without compiling anything.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod serve_support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serve_support::{
    authz_binary, dave_reads_roadmap, flip_policy, metric, readyz, verdict, wait_until, Fixture,
    Server,
};

/// A static file server: `GET /bundle` answers the current bytes with a strong `ETag`, or `304`
/// when `If-None-Match` names it. It counts the `304`s.
struct StaticServer {
    address: SocketAddr,
    body: Arc<Mutex<Vec<u8>>>,
    not_modified: Arc<AtomicUsize>,
}

impl StaticServer {
    fn start(body: Vec<u8>) -> StaticServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let body = Arc::new(Mutex::new(body));
        let not_modified = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (body.clone(), not_modified.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (served, counted) = (served.clone(), counted.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut if_none_match = None;
                    let mut line = String::new();
                    let _ = reader.read_line(&mut line);
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            if name.eq_ignore_ascii_case("if-none-match") {
                                if_none_match = Some(value.trim().to_string());
                            }
                        }
                    }
                    let body = served.lock().unwrap().clone();
                    let etag = format!("\"{:x}\"", md5ish(&body));
                    if if_none_match.as_deref() == Some(etag.as_str()) {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let _ = write!(
                            stream,
                            "HTTP/1.1 304 Not Modified\r\netag: {etag}\r\nconnection: close\r\n\r\n"
                        );
                        return;
                    }
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\netag: {etag}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(&body);
                });
            }
        });
        StaticServer {
            address,
            body,
            not_modified,
        }
    }

    fn serve(&self, body: Vec<u8>) {
        *self.body.lock().unwrap() = body;
    }
}

/// A content hash for the ETag (FNV-1a; any stable digest of the bytes will do).
fn md5ish(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn authz(args: &[&str]) -> String {
    let output = Command::new(authz_binary()).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "authz {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Builds and signs the fixture's set as `revision`; returns the bundle's bytes.
fn bundle(fixture: &Fixture, key: &Path, revision: &str) -> Vec<u8> {
    let out = fixture.path(&format!("{revision}.bundle"));
    let (policies, entities, out_text) = (
        fixture.policies.to_str().unwrap().to_string(),
        fixture.entities.to_str().unwrap().to_string(),
        out.to_str().unwrap().to_string(),
    );
    authz(&[
        "bundle",
        "build",
        &policies,
        "-e",
        &entities,
        "-o",
        &out_text,
        "--revision",
        revision,
    ]);
    authz(&["bundle", "sign", &out_text, "--key", key.to_str().unwrap()]);
    std::fs::read(out).unwrap()
}

fn replica(fixture: &Fixture, name: &str, url: &str, public_key: &str) -> Server {
    let config = fixture.path(&format!("{name}.toml"));
    std::fs::write(
        &config,
        format!("[bundle]\nurl = \"{url}\"\npublic_key = \"{public_key}\"\npoll_seconds = 1\n"),
    )
    .unwrap();
    Server::serve(
        &["-c", config.to_str().unwrap()],
        &fixture.path(&format!("{name}.stderr")),
    )
}

fn revision(server: &Server) -> Option<String> {
    readyz(&mut server.client())["bundle"]["revision"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn replicas_pull_new_revisions_and_refuse_tampered_bundles() {
    let fixture = Fixture::docs();
    let key = fixture.path("bundle.key");
    let public_key = authz(&["bundle", "keygen", "--out", key.to_str().unwrap()])
        .trim()
        .to_string();
    let first = bundle(&fixture, &key, "r1");
    authz(&[
        "bundle",
        "verify",
        fixture.path("r1.bundle").to_str().unwrap(),
        "--public-key",
        &public_key,
    ]);
    let server = StaticServer::start(first);
    let url = format!("http://{}/bundle", server.address);
    let replicas = [
        replica(&fixture, "a", &url, &public_key),
        replica(&fixture, "b", &url, &public_key),
    ];
    for replica in &replicas {
        assert_eq!(revision(replica).as_deref(), Some("r1"));
        assert_eq!(
            verdict(&replica.client().decide(&dave_reads_roadmap())).0,
            "deny"
        );
    }

    // Polls of an unchanged bundle are answered 304 and compile nothing.
    let before = metric(
        &replicas[0].client().get("/metrics").text(),
        "authz_policy_reloads_total{result=\"ok\"}",
    );
    wait_until("a few 304s", || {
        server.not_modified.load(Ordering::SeqCst) >= 4
    });
    let after = metric(
        &replicas[0].client().get("/metrics").text(),
        "authz_policy_reloads_total{result=\"ok\"}",
    );
    assert_eq!(before, after, "a 304 installed something");

    // A new revision reaches both replicas.
    fixture.write_policy("flip.authz", &flip_policy("let-dave-read", true));
    server.serve(bundle(&fixture, &key, "r2"));
    for replica in &replicas {
        wait_until("revision r2", || revision(replica).as_deref() == Some("r2"));
        let (decision, policies) = verdict(&replica.client().decide(&dave_reads_roadmap()));
        assert_eq!(
            (decision.as_str(), policies),
            ("allow", vec!["let-dave-read".to_string()])
        );
    }

    // A tampered bundle (a file changed after signing) and an unsigned one are refused: both
    // replicas keep r2, and say why.
    let signed = String::from_utf8(bundle(&fixture, &key, "r3")).unwrap();
    let tampered = signed.replace("permit principal == User", "forbid principal == User");
    assert_ne!(tampered, signed);
    let unsigned_path = fixture.path("r4.bundle");
    authz(&[
        "bundle",
        "build",
        fixture.policies.to_str().unwrap(),
        "-o",
        unsigned_path.to_str().unwrap(),
        "--revision",
        "r4",
    ]);
    for (bad, why) in [
        (tampered.into_bytes(), "SHA-256"),
        (std::fs::read(&unsigned_path).unwrap(), "unsigned"),
    ] {
        server.serve(bad);
        for replica in &replicas {
            wait_until("the refusal", || {
                readyz(&mut replica.client())["bundle"]["last_error"]
                    .as_str()
                    .is_some_and(|error| error.contains(why))
            });
            assert_eq!(revision(replica).as_deref(), Some("r2"));
            assert_eq!(
                verdict(&replica.client().decide(&dave_reads_roadmap())).0,
                "allow"
            );
            assert_eq!(readyz(&mut replica.client())["stale"], true);
        }
    }
}
