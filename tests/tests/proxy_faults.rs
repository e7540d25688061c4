//! `authz proxy` end to end on everything but credentials and headers: a request no route
//! matches is 403 and not forwarded; a policy denial is 403 with its reasons; a rate limit is 429
//! with `Retry-After` and `RateLimit-*`; an upstream that is down, drops the connection or is too
//! slow is 502/504 quickly with a small body that leaks nothing; `mode = "ext_authz"` answers
//! 200 with identity headers or 401/403 (every refusal, limits included; never 5xx) and believes
//! `X-Forwarded-Uri`/`X-Forwarded-Method` only from trusted peers; the audit log has one JSON line
//! per verdict, complete after SIGTERM.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod proxy_support;
mod serve_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use proxy_support::*;
use serde_json::{json, Value as Json};

/// A request (method, target, headers) and the status it must get.
type Case<'a, V> = (&'a str, &'a str, Vec<(&'a str, V)>, u16);

#[test]
fn a_request_no_route_matches_is_denied_and_not_forwarded() {
    let proxy = Proxy::standard();
    let token = user_token("alice");
    let authorization = bearer(&token);
    for (method, target) in [
        ("GET", "/"),
        ("GET", "/nowhere"),
        ("GET", "/docs"),
        ("GET", "/docs/d1/extra"),
        ("DELETE", "/docs/d1"),
        ("PUT", "/docs/d1"),
        ("GET", "/billing/charges"),
        ("OPTIONS", "/docs/d1"),
        // Methods are case-sensitive: an upstream that reads `get` as GET never gets it.
        ("get", "/docs/d1"),
        ("Get", "/public/x"),
    ] {
        let response = proxy.request(method, target, &[("Authorization", &authorization)]);
        assert_eq!(response.status, 403, "{method} {target}");
        assert_eq!(
            response.json()["error"]["code"],
            "authz::proxy::no_route",
            "{method} {target}"
        );
    }
    proxy.upstream.assert_untouched("no route");
}

#[test]
fn a_policy_denial_is_403_with_reasons() {
    let proxy = Proxy::standard();
    let authorization = bearer(&user_token("alice"));
    let response = proxy.client().request(
        "POST",
        "/docs/frozen",
        &[("Authorization", &authorization)],
        b"{}",
    );
    assert_eq!(response.status, 403, "{}", response.text());
    assert_eq!(
        without_request_id(&response),
        json!({ "decision": "deny", "reasons": ["this document is frozen"] })
    );
    // No permit applies: a denial without a reason.
    let response = proxy.request("GET", "/docs/d2", &[("Authorization", &authorization)]);
    assert_eq!(response.status, 403);
    assert_eq!(
        without_request_id(&response),
        json!({ "decision": "deny", "reasons": [] })
    );
    proxy.upstream.assert_untouched("denied by policy");
    // Alice may read her frozen document.
    assert_eq!(
        proxy.get_as(&user_token("alice"), "/docs/frozen").status,
        200
    );
}

#[test]
fn rate_limits_answer_429_with_retry_after_and_ratelimit_headers() {
    let proxy = Proxy::standard();
    let alice = user_token("alice");
    for remaining in ["2", "1", "0"] {
        let response = proxy.get_as(&alice, "/ping");
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.header("ratelimit-limit"), Some("3"));
        assert_eq!(response.header("ratelimit-remaining"), Some(remaining));
        assert!(response.header("ratelimit-reset").is_some());
        assert_eq!(response.header("retry-after"), None);
    }
    assert_eq!(proxy.upstream.count(), 3);
    for _ in 0..3 {
        let response = proxy.get_as(&alice, "/ping");
        assert_eq!(response.status, 429, "{}", response.text());
        let retry: u64 = response.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        assert_eq!(response.header("ratelimit-limit"), Some("3"));
        assert_eq!(response.header("ratelimit-remaining"), Some("0"));
        let reset: u64 = response.header("ratelimit-reset").unwrap().parse().unwrap();
        assert!(reset <= 60, "RateLimit-Reset {reset}");
        assert_eq!(
            without_request_id(&response),
            json!({ "decision": "deny", "reasons": ["rate limit `pings` exceeded"] })
        );
    }
    assert_eq!(proxy.upstream.count(), 3, "a limited request was forwarded");
    // Another principal has a budget of its own.
    assert_eq!(proxy.get_as(&user_token("bob"), "/ping").status, 200);
    assert_eq!(proxy.upstream.count(), 4);
}

/// A loopback port with nothing listening.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback server that accepts connections and then, per `behaviour`, closes them at once
/// (`"close"`), holds them without a word (`"silent"`), or answers the head of a response and
/// stalls in its body (`"stall-body"`).
fn misbehaving_upstream(behaviour: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            match behaviour {
                "silent" => held.push(stream),
                "stall-body" => {
                    // Reads the request head, sends the response head and a tenth of the body,
                    // then holds the connection.
                    let mut stream = stream;
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => break,
                        }
                    }
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789");
                    held.push(stream);
                }
                _ => {}
            }
        }
    });
    format!("http://{address}")
}

/// A bounded request that must end in `status` within `within`, with a clean small body.
fn assert_fails_fast(proxy: &Proxy, target: &str, status: u16, within: Duration) {
    let started = Instant::now();
    let response = proxy.get_as(&user_token("alice"), target);
    let elapsed = started.elapsed();
    assert_eq!(response.status, status, "{target}: {}", response.text());
    assert!(elapsed < within, "{target}: answered after {elapsed:?}");
    assert_clean_error_body(&response, target);
    assert_eq!(
        response.json()["error"]["code"]
            .as_str()
            .map(|code| code.starts_with("authz::proxy::upstream")),
        Some(true)
    );
}

#[test]
fn an_upstream_that_is_down_is_502_and_one_too_slow_is_504() {
    // Nothing listens: connection refused.
    let down = Proxy::start(Options {
        upstream_url: Some(format!("http://127.0.0.1:{}", closed_port())),
        ..Options::default()
    });
    for _ in 0..3 {
        assert_fails_fast(&down, "/docs/d1", 502, Duration::from_secs(3));
    }
    // Accepts, then hangs up without an answer.
    let rude = Proxy::start(Options {
        upstream_url: Some(misbehaving_upstream("close")),
        ..Options::default()
    });
    assert_fails_fast(&rude, "/docs/d1", 502, Duration::from_secs(3));
    // Accepts and never says a word.
    let silent = Proxy::start(Options {
        proxy: "upstream_timeout_ms = 300".to_string(),
        upstream_url: Some(misbehaving_upstream("silent")),
        ..Options::default()
    });
    assert_fails_fast(&silent, "/docs/d1", 504, Duration::from_secs(3));
    // Answers, but after the timeout.
    let slow = Proxy::start(Options {
        proxy: "upstream_timeout_ms = 300".to_string(),
        ..Options::default()
    });
    assert_fails_fast(&slow, "/public/slow", 504, Duration::from_secs(3));
    assert_eq!(slow.upstream.only().target, "/public/slow");
    // The proxy is unharmed: a fast request still passes.
    assert_eq!(slow.get_as(&user_token("alice"), "/docs/d1").status, 200);
    // A denial never depends on the upstream: still 403, not 502.
    assert_eq!(down.get_as(&user_token("alice"), "/docs/d2").status, 403);
    for proxy in [&down, &rude, &silent, &slow] {
        assert!(
            proxy.server.stderr().contains("upstream"),
            "the reason is logged"
        );
    }
}

#[test]
fn ext_authz_answers_without_forwarding() {
    let proxy = Proxy::start(Options {
        proxy: "mode = \"ext_authz\"".to_string(),
        ..Options::default()
    });
    let alice = bearer(&user_token("alice"));
    let root_spoof = principal_header("User", "root");

    // A client's own identity header would reach the upstream next to the gateway's: refused.
    let response = proxy.request(
        "GET",
        "/docs/d1",
        &[
            ("Authorization", &alice),
            ("x_authz_principal", &root_spoof),
        ],
    );
    assert_eq!(response.status, 403, "{}", response.text());
    assert_eq!(
        response.json()["error"]["code"],
        "authz::proxy::identity_header"
    );

    // Allowed: 200 with the identity headers the proxy sets.
    let response = proxy.request("GET", "/docs/d1", &[("Authorization", &alice)]);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.header("x-authz-principal"),
        Some(principal_header("User", "alice").as_str())
    );
    assert_eq!(response.header("x-authz-issuer"), Some(ES_ISSUER));
    assert_eq!(response.header("x-authz-auth"), Some("jwt"));
    assert!(!response
        .headers
        .iter()
        .any(|(name, value)| name.contains('_') || value.contains("root")));

    // Denials: small JSON bodies, never 5xx.
    let cases: Vec<Case<'_, String>> = vec![
        ("GET", "/docs/d1", vec![], 401),
        (
            "GET",
            "/docs/d1",
            vec![("Authorization", bearer("x.y.z"))],
            401,
        ),
        (
            "GET",
            "/docs/d1",
            vec![(
                "Authorization",
                bearer(&token(
                    jsonwebtoken::Algorithm::ES256,
                    Some("es-1"),
                    &keys().ec.encoding,
                    &with(claims(ES_ISSUER, "alice"), "exp", json!(now() - 600)),
                )),
            )],
            401,
        ),
        (
            "GET",
            "/docs/d2",
            vec![("Authorization", alice.clone())],
            403,
        ),
        (
            "POST",
            "/docs/frozen",
            vec![("Authorization", alice.clone())],
            403,
        ),
        (
            "GET",
            "/nowhere",
            vec![("Authorization", alice.clone())],
            403,
        ),
        (
            "GET",
            "/admin/x",
            vec![("Authorization", alice.clone())],
            403,
        ),
        // Refused targets and exhausted limits are 403 too: gateways understand only 2xx, 401
        // and 403 (nginx answers 500 for anything else).
        (
            "GET",
            "/docs%2Fd2",
            vec![("Authorization", alice.clone())],
            403,
        ),
    ];
    for (method, target, headers, status) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = proxy.request(method, target, &headers);
        assert_eq!(
            response.status,
            *status,
            "{method} {target}: {}",
            response.text()
        );
        assert_eq!(response.json()["decision"], "deny");
        assert!(response.body.len() < 256, "{}", response.text());
        assert!(response.header("x-authz-principal").is_none());
    }
    let bob = user_token("bob");
    let responses: Vec<_> = (0..4).map(|_| proxy.get_as(&bob, "/ping")).collect();
    let statuses: Vec<u16> = responses.iter().map(|response| response.status).collect();
    assert_eq!(statuses, vec![200, 200, 200, 403]);
    assert_eq!(
        responses[3].json()["reasons"],
        json!(["rate limit `pings` exceeded"]),
        "{}",
        responses[3].text()
    );
    let limited = proxy.get_as(&bob, "/ping");
    assert_eq!(limited.status, 403);
    assert!(limited.header("retry-after").is_some());
    assert_eq!(limited.json()["decision"], "deny");

    // From an untrusted peer the forwarded method and URI are ignored: the request itself is
    // what is authorized.
    let response = proxy.request(
        "GET",
        "/docs/d1",
        &[
            ("Authorization", &alice),
            ("X-Forwarded-Uri", "/docs/d2"),
            ("X-Forwarded-Method", "POST"),
        ],
    );
    assert_eq!(response.status, 200, "{}", response.text());
    // A rewrite header from an untrusted client would reach the upstream through the gateway,
    // where IIS- or Symfony-style backends honour it: refused.
    let response = proxy.request(
        "GET",
        "/docs/d1",
        &[("Authorization", &alice), ("X-Original-URI", "/admin/x")],
    );
    assert_eq!(response.status, 403, "{}", response.text());
    assert_eq!(
        response.json()["error"]["code"],
        "authz::proxy::method_override"
    );
    let response = proxy.request(
        "GET",
        "/docs/d2",
        &[("Authorization", &alice), ("X-Forwarded-Uri", "/docs/d1")],
    );
    assert_eq!(response.status, 403, "{}", response.text());
    proxy.upstream.assert_untouched("ext_authz");
}

#[test]
fn ext_authz_believes_forwarded_uri_only_from_trusted_peers() {
    let proxy = Proxy::start(Options {
        proxy: "mode = \"ext_authz\"\ntrusted_proxies = [\"127.0.0.1/32\"]".to_string(),
        ..Options::default()
    });
    let alice = bearer(&user_token("alice"));
    let check = |headers: &[(&str, &str)]| {
        let mut all = vec![("Authorization", alice.as_str())];
        all.extend_from_slice(headers);
        proxy.request("GET", "/auth", &all)
    };
    // Traefik ForwardAuth.
    let response = check(&[
        ("X-Forwarded-Method", "GET"),
        ("X-Forwarded-Uri", "/docs/d1"),
    ]);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.header("x-authz-principal"),
        Some(principal_header("User", "alice").as_str())
    );
    let response = check(&[
        ("X-Forwarded-Method", "GET"),
        ("X-Forwarded-Uri", "/docs/d2"),
    ]);
    assert_eq!(response.status, 403, "{}", response.text());
    let response = check(&[
        ("X-Forwarded-Method", "POST"),
        ("X-Forwarded-Uri", "/docs/frozen"),
    ]);
    assert_eq!(response.status, 403);
    assert_eq!(
        response.json()["reasons"],
        json!(["this document is frozen"])
    );
    // nginx auth_request.
    let response = check(&[
        ("X-Original-Method", "GET"),
        ("X-Original-URI", "/docs/d1?x=1"),
    ]);
    assert_eq!(response.status, 200, "{}", response.text());
    // The forwarded URI is normalized like any target.
    let response = check(&[("X-Forwarded-Uri", "/public/../docs/d2")]);
    assert_eq!(response.status, 403);
    // A refused target is 403 for the gateway (which understands only 2xx, 401 and 403), with
    // the precise code in the body.
    let response = check(&[("X-Forwarded-Uri", "/docs%2Fd2")]);
    assert_eq!(response.status, 403);
    assert_eq!(
        response.json()["error"]["code"],
        "authz::proxy::encoded_slash"
    );
    // Without a forwarded URI, the request's own target (no route here).
    assert_eq!(check(&[]).status, 403);
    proxy
        .upstream
        .assert_untouched("ext_authz behind a trusted peer");
}

#[test]
fn the_audit_log_has_one_line_per_verdict_and_is_complete_after_sigterm() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 60;
    let mut proxy = Proxy::standard();
    let alice = bearer(&user_token("alice"));
    // One of each verdict first, in order.
    let singles: Vec<Case<'_, &str>> = vec![
        (
            "GET",
            "/docs/d1",
            vec![("Authorization", &alice), ("X-Request-Id", "req-1")],
            200,
        ),
        ("GET", "/docs/d2", vec![("Authorization", &alice)], 403),
        ("GET", "/docs/d1", vec![], 401),
        ("GET", "/docs%2Fd1", vec![("Authorization", &alice)], 400),
        ("GET", "/nowhere", vec![("Authorization", &alice)], 403),
        ("GET", "/ping", vec![("Authorization", &alice)], 200),
        ("GET", "/ping", vec![("Authorization", &alice)], 200),
        ("GET", "/ping", vec![("Authorization", &alice)], 200),
        ("GET", "/ping", vec![("Authorization", &alice)], 429),
    ];
    for (method, target, headers, status) in &singles {
        let response = proxy.request(method, target, headers);
        assert_eq!(response.status, *status, "{method} {target}");
    }
    // Then load from several connections, ending just before SIGTERM.
    let address = proxy.address();
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let alice = alice.clone();
            std::thread::spawn(move || {
                let mut client = serve_support::Client::new(address);
                for n in 0..PER_THREAD {
                    let target = if (thread + n) % 2 == 0 {
                        "/docs/d1"
                    } else {
                        "/docs/d2"
                    };
                    let response = client.request("GET", target, &[("Authorization", &alice)], b"");
                    assert!(response.status == 200 || response.status == 403);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    proxy.server.signal("TERM");
    let status = proxy.server.wait_exit();
    assert!(status.success(), "exit status {status:?}");

    let lines = proxy.audit();
    assert_eq!(lines.len(), singles.len() + THREADS * PER_THREAD);
    let statuses: Vec<u64> = lines[..singles.len()]
        .iter()
        .map(|line| line["status"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = singles
        .iter()
        .map(|(.., status)| u64::from(*status))
        .collect();
    assert_eq!(statuses, expected);
    let first = &lines[0];
    assert_eq!(first["decision"], "allow");
    assert_eq!(first["request_id"], "req-1");
    assert_eq!(first["client"], "127.0.0.1");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["target"], "/docs/d1");
    assert_eq!(first["principal"], json!({ "type": "User", "id": "alice" }));
    assert_eq!(first["action"], "read");
    assert_eq!(first["resource"], json!({ "type": "Doc", "id": "d1" }));
    assert_eq!(first["policies"], json!(["owners"]));
    assert!(
        first["latency_us"].is_u64()
            && first["time"]
                .as_str()
                .is_some_and(|time| time.len() == 24 && time.ends_with('Z'))
    );
    assert_eq!(lines[1]["decision"], "deny");
    assert_eq!(lines[2]["decision"], "deny");
    assert_eq!(lines[2]["principal"], Json::Null);
    assert!(lines[3]["reason"].as_str().unwrap().contains("%2F"));
    assert_eq!(lines[8]["decision"], "limited");
    let allowed = lines[singles.len()..]
        .iter()
        .filter(|line| line["status"] == 200)
        .count();
    assert_eq!(allowed, THREADS * PER_THREAD / 2);
    assert_eq!(
        proxy.upstream.count(),
        1 + 3 + THREADS * PER_THREAD / 2,
        "what was allowed was forwarded, nothing else"
    );
}

#[test]
fn an_upstream_that_stalls_in_its_body_does_not_hold_the_client_forever() {
    let proxy = Proxy::start(Options {
        proxy: "upstream_timeout_ms = 300".to_string(),
        upstream_url: Some(misbehaving_upstream("stall-body")),
        ..Options::default()
    });
    let mut stream = TcpStream::connect(proxy.address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = format!(
        "GET /docs/d1 HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\r\n",
        proxy.address(),
        bearer(&user_token("alice"))
    );
    stream.write_all(request.as_bytes()).unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    let ended = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break true,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        ended && started.elapsed() < Duration::from_secs(3),
        "the connection was still open after {:?}: {text}",
        started.elapsed()
    );
}

/// Sends the head of a request, then `pieces` of its body with `pause` between them, and reads
/// the response until the proxy closes the connection (the request asks it to).
fn trickle(proxy: &Proxy, length: usize, pieces: &[&[u8]], pause: Duration) -> (String, Duration) {
    let alice = bearer(&user_token("alice"));
    let mut stream = TcpStream::connect(proxy.address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST /docs/d1 HTTP/1.1\r\nHost: {}\r\nAuthorization: {alice}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n",
        proxy.address()
    );
    stream.write_all(head.as_bytes()).unwrap();
    for piece in pieces {
        std::thread::sleep(pause);
        stream.write_all(piece).unwrap();
    }
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_client_that_stalls_its_body_gets_408_and_a_slow_steady_one_gets_through() {
    let proxy = Proxy::start(Options {
        proxy: "upstream_timeout_ms = 400".to_string(),
        ..Options::default()
    });
    // Announces 100 bytes, sends 5, then nothing: 408 about 400 ms later, not a hang.
    let (answer, waited) = trickle(&proxy, 100, &[b"hello"], Duration::ZERO);
    assert_eq!(statuses(&answer), vec![408], "{answer}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert!(answer.contains("authz::proxy::request_timeout"), "{answer}");
    // Ten bytes 150 ms apart: 1.5 s in all, far over the timeout, but never silent that long.
    let digits: Vec<[u8; 1]> = (b'0'..=b'9').map(|digit| [digit]).collect();
    let pieces: Vec<&[u8]> = digits.iter().map(|digit| &digit[..]).collect();
    let (answer, _) = trickle(&proxy, 10, &pieces, Duration::from_millis(150));
    assert_eq!(statuses(&answer), vec![200], "{answer}");
    let seen = proxy.upstream.seen();
    assert_eq!(seen.last().unwrap().body, b"0123456789");
    let audit = proxy.audit();
    assert!(audit.iter().any(|line| line["status"] == 408));
    assert_eq!(proxy.get_as(&user_token("alice"), "/docs/d1").status, 200);
}
