//! `authz proxy` end to end against header tricks: identity headers spoofed in every spelling
//! never reach the upstream (it sees only the proxy's values); `Connection` cannot make the
//! proxy delete its own headers; `X-Forwarded-For` from an untrusted peer is replaced by the real
//! peer and does not fool a policy on `client_ip`, while from a trusted CIDR it is honoured
//! (rightmost untrusted address); `Content-Length` with `Transfer-Encoding` smuggles no second
//! request; oversize headers are refused. The recording upstream never sees a forbidden request.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod proxy_support;
mod serve_support;

use std::time::Duration;

use proxy_support::*;

/// The identity header names of the proxy in the spellings an upstream framework might fold
/// into the same name, each claiming root.
fn spoofed_identity() -> Vec<(&'static str, String)> {
    let root = principal_header("User", "root");
    vec![
        ("X-Authz-Principal", root.clone()),
        ("x_authz_principal", root.clone()),
        ("x.authz.principal", root.clone()),
        ("X_AUTHZ_PRINCIPAL", root.clone()),
        ("x-authz_principal", root),
        ("X-Authz-Issuer", "https://evil.test".to_string()),
        ("x_authz_issuer", "https://evil.test".to_string()),
        ("X-Authz-Auth", "api-key".to_string()),
        ("x.authz.auth", "api-key".to_string()),
        ("X-Authz-Roles", "admin".to_string()),
        ("x_authz_tenant", "acme".to_string()),
    ]
}

/// Header names as an upstream that folds `_` and `.` into `-` would read them.
fn folded(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

#[test]
fn identity_headers_are_stripped_in_every_spelling() {
    let proxy = Proxy::standard();
    let authorization = bearer(&user_token("alice"));
    let spoofed = spoofed_identity();
    let mut headers: Vec<(&str, &str)> = spoofed
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    headers.push(("Authorization", &authorization));

    // The policy sees alice, not the claimed root: the admin console stays closed.
    let response = proxy.request("GET", "/admin/x", &headers);
    assert_eq!(response.status, 403, "{}", response.text());
    proxy.upstream.assert_untouched("spoofed admin");

    let response = proxy.request("GET", "/docs/d1", &headers);
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = proxy.upstream.only();
    let identity: Vec<(String, String)> = seen
        .headers
        .iter()
        .filter(|(name, _)| folded(name).starts_with("x-authz-"))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .collect();
    let mut expected = vec![
        (
            "x-authz-principal".to_string(),
            principal_header("User", "alice"),
        ),
        ("x-authz-auth".to_string(), "jwt".to_string()),
        ("x-authz-issuer".to_string(), ES_ISSUER.to_string()),
    ];
    let mut identity_sorted = identity.clone();
    identity_sorted.sort();
    expected.sort();
    assert_eq!(identity_sorted, expected, "the upstream saw {identity:?}");

    // Without credentials nothing is forwarded, spoofed headers or not.
    let anonymous: Vec<(&str, &str)> = spoofed
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let response = proxy.request("GET", "/docs/d1", &anonymous);
    assert_unauthorized(&response, "spoofed identity without credentials");
    assert_eq!(proxy.upstream.count(), 1);
}

#[test]
fn anonymous_requests_carry_no_identity_headers_at_all() {
    let proxy = Proxy::start(Options {
        proxy: r#"anonymous = { type = "User", id = "anonymous" }"#.to_string(),
        ..Options::default()
    });
    let spoofed = spoofed_identity();
    let headers: Vec<(&str, &str)> = spoofed
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    // The anonymous principal may read the public document, nothing else.
    for target in ["/docs/d1", "/admin/x"] {
        let response = proxy.request("GET", target, &headers);
        assert_eq!(response.status, 403, "{target}: {}", response.text());
    }
    proxy
        .upstream
        .assert_untouched("anonymous with spoofed identity");
    let response = proxy.request("GET", "/public/readme", &headers);
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = proxy.upstream.only();
    let leaked: Vec<&(String, String)> = seen
        .headers
        .iter()
        .filter(|(name, _)| folded(name).starts_with("x-authz-"))
        .collect();
    assert!(leaked.is_empty(), "the upstream saw {leaked:?}");
}

#[test]
fn connection_cannot_delete_the_proxys_own_headers() {
    let proxy = Proxy::standard();
    let authorization = bearer(&user_token("alice"));
    let root = principal_header("User", "root");

    // Naming the identity header in `Connection` removes the client's copy, never the proxy's.
    for connection in [
        "x-authz-principal",
        "X-Authz-Principal, x-authz-issuer, x-authz-auth",
        "keep-alive, x_authz_principal",
        "x-forwarded-for",
        "x-forwarded-for, x-forwarded-host, x-forwarded-proto",
    ] {
        let before = proxy.upstream.count();
        let response = proxy.request(
            "GET",
            "/docs/d1",
            &[
                ("Authorization", &authorization),
                ("Connection", connection),
                ("X-Authz-Principal", &root),
                ("X-Forwarded-For", "10.1.2.3"),
            ],
        );
        assert_eq!(response.status, 200, "{connection}: {}", response.text());
        let seen = proxy.upstream.seen();
        assert_eq!(seen.len(), before + 1, "{connection}");
        let seen = &seen[before];
        assert_eq!(
            seen.all("x-authz-principal"),
            vec![principal_header("User", "alice")],
            "{connection}: {seen:#?}"
        );
        assert_eq!(
            seen.header("x-authz-issuer"),
            Some(ES_ISSUER),
            "{connection}"
        );
        assert_eq!(seen.header("x-authz-auth"), Some("jwt"), "{connection}");
        assert_eq!(
            seen.all("x-forwarded-for"),
            vec!["127.0.0.1"],
            "{connection}"
        );
        for value in seen.all("connection") {
            assert!(
                !value.to_ascii_lowercase().contains("x-"),
                "{connection}: the upstream got Connection: {value}"
            );
        }
    }

    // Naming `Authorization` removes the credential before it is read: nothing passes
    // unauthenticated (or, if a proxy read it first, the upstream would see verified identity).
    for connection in ["authorization", "Authorization, keep-alive"] {
        let before = proxy.upstream.count();
        let response = proxy.request(
            "GET",
            "/docs/d1",
            &[
                ("Authorization", &authorization),
                ("Connection", connection),
                ("X-Authz-Principal", &root),
            ],
        );
        match response.status {
            401 => assert_eq!(proxy.upstream.count(), before, "{connection}"),
            200 => {
                let seen = proxy.upstream.seen();
                assert_eq!(
                    seen[before].all("x-authz-principal"),
                    vec![principal_header("User", "alice")]
                );
            }
            other => panic!("{connection}: {other} {}", response.text()),
        }
    }

    // Naming `Content-Length` does not cut or lose the body.
    let before = proxy.upstream.count();
    let body = b"0123456789abcdef";
    let response = proxy.client().request(
        "POST",
        "/docs/d1",
        &[
            ("Authorization", &authorization),
            ("Connection", "content-length"),
        ],
        body,
    );
    if response.status == 200 {
        let seen = proxy.upstream.seen();
        assert_eq!(seen.len(), before + 1);
        assert_eq!(seen[before].body, body);
    } else {
        assert_eq!(response.status, 400, "{}", response.text());
        assert_eq!(proxy.upstream.count(), before);
    }
    assert!(proxy.upstream.garbage().is_empty());
}

#[test]
fn forwarded_for_from_an_untrusted_peer_is_replaced() {
    let proxy = Proxy::standard();
    let root = bearer(&user_token("root"));
    // The admin console needs an office address; claiming one from outside does not work.
    for (name, value) in [
        ("X-Forwarded-For", "10.1.2.3"),
        ("X-Forwarded-For", "10.1.2.3, 10.9.9.9"),
        ("x_forwarded_for", "10.1.2.3"),
        ("X-Real-IP", "10.1.2.3"),
        ("Forwarded", "for=10.1.2.3"),
        ("True-Client-IP", "10.1.2.3"),
    ] {
        let response = proxy.request(
            "GET",
            "/admin/x",
            &[("Authorization", &root), (name, value)],
        );
        assert_eq!(response.status, 403, "{name}: {}", response.text());
    }
    proxy.upstream.assert_untouched("spoofed office address");

    let alice = bearer(&user_token("alice"));
    let response = proxy.request(
        "GET",
        "/docs/d1",
        &[
            ("Authorization", &alice),
            ("X-Forwarded-For", "10.1.2.3"),
            ("X-Forwarded-Host", "evil.test"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Port", "443"),
            ("X-Real-IP", "10.1.2.3"),
            ("Forwarded", "for=10.1.2.3;host=evil.test"),
        ],
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = proxy.upstream.only();
    assert_eq!(seen.all("x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(
        seen.all("x-forwarded-host"),
        vec![proxy.address().to_string()]
    );
    assert_eq!(seen.all("x-forwarded-proto"), vec!["http"]);
    for name in ["x-real-ip", "forwarded", "x-forwarded-port"] {
        assert_eq!(seen.header(name), None, "{name} reached the upstream");
    }
}

#[test]
fn forwarded_for_from_a_trusted_peer_is_honoured() {
    let proxy = Proxy::start(Options {
        proxy: r#"trusted_proxies = ["127.0.0.0/8"]"#.to_string(),
        ..Options::default()
    });
    let root = bearer(&user_token("root"));
    let get = |forwarded: Option<&str>| {
        let mut headers = vec![("Authorization", root.as_str())];
        if let Some(forwarded) = forwarded {
            headers.push(("X-Forwarded-For", forwarded));
        }
        proxy.request("GET", "/admin/x", &headers)
    };
    // The loopback peer itself is not in the office.
    assert_eq!(get(None).status, 403);
    // The client the trusted proxy saw is the rightmost untrusted address: an attacker's own
    // prefix to the chain does not count.
    assert_eq!(get(Some("10.1.2.3, 203.0.113.9")).status, 403);
    proxy.upstream.assert_untouched("outside the office");
    let response = get(Some("10.1.2.3"));
    assert_eq!(response.status, 200, "{}", response.text());
    let response = get(Some("203.0.113.9, 10.1.2.3, 127.0.0.5"));
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = proxy.upstream.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].all("x-forwarded-for"), vec!["10.1.2.3, 127.0.0.1"]);
    assert_eq!(
        seen[1].all("x-forwarded-for"),
        vec!["203.0.113.9, 10.1.2.3, 127.0.0.5, 127.0.0.1"]
    );
}

/// Sends raw bytes that carry a smuggled second request for `/docs/d2` (bob's document) and
/// checks that the upstream saw at most the one legitimate request, in one piece.
fn assert_no_smuggling(proxy: &Proxy, what: &str, message: &str) {
    let before = proxy.upstream.count();
    let answer = raw_exchange(
        proxy.address(),
        message.as_bytes(),
        Duration::from_millis(700),
    );
    let seen = proxy.upstream.seen();
    let new = &seen[before..];
    assert!(
        new.len() <= 1,
        "{what}: the upstream saw {new:#?}\nanswer: {answer}"
    );
    for request in new {
        assert_eq!(request.target, "/docs/d1", "{what}: {request:#?}");
        assert!(
            !(request.header("content-length").is_some()
                && request.header("transfer-encoding").is_some()),
            "{what}: forwarded with both framings: {request:#?}"
        );
        // One framing, and the body the upstream read is exactly what that framing declares:
        // had the upstream been handed a length that disagrees, it would read the rest of the
        // body as a request of its own.
        if let Some(length) = request.header("content-length") {
            assert_eq!(
                length.parse::<usize>().unwrap(),
                request.body.len(),
                "{what}: {request:#?}"
            );
        }
        // A framing header in another spelling (`Transfer_Encoding`) must not ride along: an
        // upstream that folds `_` and `.` into `-` (as CGI-style gateways do) would frame the
        // body by it, and read what follows the chunked terminator as a request of its own.
        for (name, value) in &request.headers {
            let folded = folded(name);
            let lookalike = (folded == "transfer-encoding" || folded == "content-length")
                && !name.eq_ignore_ascii_case(&folded);
            assert!(!lookalike, "{what}: forwarded `{name}: {value}`");
        }
    }
    assert!(
        proxy.upstream.garbage().is_empty(),
        "{what}: the upstream got bytes outside any request: {:?}",
        proxy.upstream.garbage()
    );
    // Whatever the proxy did with the second request, it was never allowed.
    for status in statuses(&answer).iter().skip(1) {
        assert_ne!(
            *status, 200,
            "{what}: a second request was allowed: {answer}"
        );
    }
}

#[test]
fn content_length_with_transfer_encoding_smuggles_nothing() {
    let proxy = Proxy::standard();
    let host = proxy.address();
    let alice = bearer(&user_token("alice"));
    let smuggled = format!("GET /docs/d2 HTTP/1.1\r\nHost: {host}\r\nX-Smuggled: 1\r\n\r\n");
    let smuggled_as_alice =
        format!("GET /docs/d2 HTTP/1.1\r\nHost: {host}\r\nAuthorization: {alice}\r\n\r\n");

    // CL.TE: a front end reading Content-Length forwards the whole; a back end reading chunked
    // would see a second request.
    let body = format!("0\r\n\r\n{smuggled}");
    assert_no_smuggling(
        &proxy,
        "CL.TE",
        &format!(
            "POST /docs/d1 HTTP/1.1\r\nHost: {host}\r\nAuthorization: {alice}\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{body}",
            body.len()
        ),
    );
    // TE.CL: the chunk holds the smuggled request; a back end reading Content-Length stops early.
    let chunk = &smuggled_as_alice;
    assert_no_smuggling(
        &proxy,
        "TE.CL",
        &format!(
            "POST /docs/d1 HTTP/1.1\r\nHost: {host}\r\nAuthorization: {alice}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
            chunk.len()
        ),
    );
    // Content-Length first, then Transfer-Encoding; and obfuscated Transfer-Encodings.
    for transfer_encoding in [
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: xchunked",
        "Transfer-Encoding: chunked, identity",
        "Transfer-Encoding: identity",
        "Transfer-Encoding:\tchunked",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity",
        "Transfer-Encoding: CHUNKED",
        "Transfer-Encoding: gzip, chunked",
        "Transfer-Encoding : chunked",
        " Transfer-Encoding: chunked",
        "Transfer_Encoding: chunked",
    ] {
        let body = format!("0\r\n\r\n{smuggled}");
        assert_no_smuggling(
            &proxy,
            transfer_encoding,
            &format!(
                "POST /docs/d1 HTTP/1.1\r\nHost: {host}\r\nAuthorization: {alice}\r\nContent-Length: {}\r\n{transfer_encoding}\r\n\r\n{body}",
                body.len()
            ),
        );
    }
    // A lookalike Content-Length next to chunked framing.
    for lookalike in ["Content_Length: 0", "content.length: 0"] {
        assert_no_smuggling(
            &proxy,
            lookalike,
            &format!(
                "POST /docs/d1 HTTP/1.1\r\nHost: {host}\r\nAuthorization: {alice}\r\nTransfer-Encoding: chunked\r\n{lookalike}\r\n\r\n{:x}\r\n{smuggled}\r\n0\r\n\r\n",
                smuggled.len()
            ),
        );
    }
    // Two different Content-Lengths.
    let body = format!("xx{smuggled}");
    for lengths in [
        format!("Content-Length: 2\r\nContent-Length: {}", body.len()),
        format!("Content-Length: 2, {}", body.len()),
    ] {
        assert_no_smuggling(
            &proxy,
            &lengths,
            &format!(
                "POST /docs/d1 HTTP/1.1\r\nHost: {host}\r\nAuthorization: {alice}\r\n{lengths}\r\n\r\n{body}"
            ),
        );
    }
    // Chunked alone is fine: the upstream gets the body, framed once.
    let before = proxy.upstream.count();
    let answer = raw_exchange(
        host,
        format!(
            "POST /docs/d1 HTTP/1.1\r\nHost: {host}\r\nAuthorization: {alice}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
        Duration::from_secs(2),
    );
    assert_eq!(statuses(&answer), vec![200], "{answer}");
    let seen = proxy.upstream.seen();
    assert_eq!(seen.len(), before + 1);
    assert_eq!(seen[before].body, b"hello");
    assert!(seen.iter().all(|request| request.target == "/docs/d1"));
}

#[test]
fn oversize_headers_are_refused() {
    let proxy = Proxy::standard();
    let host = proxy.address();
    let alice = bearer(&user_token("alice"));
    let big = "a".repeat(64 * 1024);
    let many: String = (0..200).map(|n| format!("X-Filler-{n}: {n}\r\n")).collect();
    let long_target = format!("/docs/d1?{}", "q".repeat(64 * 1024));
    for (what, message) in [
        (
            "one 64 KiB header",
            format!("GET /docs/d1 HTTP/1.1\r\nHost: {host}\r\nAuthorization: {alice}\r\nX-Big: {big}\r\n\r\n"),
        ),
        (
            "200 headers",
            format!("GET /docs/d1 HTTP/1.1\r\nHost: {host}\r\nAuthorization: {alice}\r\n{many}\r\n"),
        ),
        (
            "a 64 KiB request target",
            format!("GET {long_target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {alice}\r\n\r\n"),
        ),
    ] {
        let answer = raw_exchange(host, message.as_bytes(), Duration::from_secs(2));
        let status = statuses(&answer);
        assert!(
            status == vec![431] || status == vec![400] || status == vec![414],
            "{what}: {}",
            answer.chars().take(300).collect::<String>()
        );
    }
    proxy.upstream.assert_untouched("oversize headers");
    // Still serving.
    assert_eq!(proxy.get_as(&user_token("alice"), "/docs/d1").status, 200);
}

/// The proxy's assertion key (Ed25519) as a PEM file, and its public JWK.
fn assertion_key(dir: &std::path::Path) -> (std::path::PathBuf, jsonwebtoken::jwk::Jwk) {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use base64::Engine;
    let pair = Ed25519KeyPair::generate().unwrap();
    let pkcs8 = pair.to_pkcs8().unwrap();
    let path = dir.join("assertion.pem");
    std::fs::write(&path, pem("PRIVATE KEY", pkcs8.as_ref())).unwrap();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    let jwk = serde_json::from_value(serde_json::json!({
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": "proxy-1", "x": x,
    }))
    .unwrap();
    (path, jwk)
}

/// Verifies an assertion as an upstream would: signature, `iss`, `aud`, `exp`.
fn verify_assertion(
    token: &str,
    jwk: &jsonwebtoken::jwk::Jwk,
    audience: &str,
) -> jsonwebtoken::TokenData<serde_json::Value> {
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&["authz-proxy"]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode(token, &key, &validation).unwrap()
}

#[test]
fn a_signed_identity_assertion_vouches_for_each_forwarded_request() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (key_path, jwk) = assertion_key(keys_dir.path());
    let proxy = Proxy::start(Options {
        extra: format!(
            "[assertion]\nalgorithm = \"EdDSA\"\nkey_file = {:?}\nkid = \"proxy-1\"\nttl_seconds = 30\n",
            key_path.display().to_string()
        ),
        ..Options::default()
    });
    let alice = bearer(&user_token("alice"));
    // Forged assertions in every spelling never reach the upstream.
    let response = proxy.request(
        "GET",
        "/docs/./d1",
        &[
            ("Authorization", &alice),
            ("X-Authz-Assertion", "forged"),
            ("x_authz_assertion", "forged"),
            ("x.authz.assertion", "forged"),
        ],
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let response = proxy.request("GET", "/docs/d1", &[("Authorization", &alice)]);
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = proxy.upstream.seen();
    assert_eq!(seen.len(), 2);
    let mut ids = Vec::new();
    for request in &seen {
        let names = request.names();
        assert_eq!(
            names
                .iter()
                .filter(|name| name.contains("assertion"))
                .count(),
            1,
            "{names:?}"
        );
        let token = request.header("x-authz-assertion").unwrap();
        let verified = verify_assertion(token, &jwk, "app");
        assert_eq!(verified.header.kid.as_deref(), Some("proxy-1"));
        let claims = verified.claims;
        assert_eq!(claims["sub"], r#"User::"alice""#);
        assert_eq!(
            claims["principal"],
            serde_json::json!({"type": "User", "id": "alice"})
        );
        assert_eq!(claims["auth"], "jwt");
        assert_eq!(claims["method"], "GET");
        // The path as forwarded, after normalization.
        assert_eq!(claims["path"], "/docs/d1");
        assert_eq!(claims["path"].as_str(), Some(request.target.as_str()));
        assert!(claims["action"].is_string() && claims["resource"]["id"] == "d1");
        assert!(!claims["policies"].as_array().unwrap().is_empty());
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            30
        );
        ids.push(claims["jti"].as_str().unwrap().to_string());
    }
    assert_ne!(ids[0], ids[1], "each assertion has its own jti");
    // Minted for this upstream, a verifier expecting another audience refuses it.
    let token = seen[0].header("x-authz-assertion").unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["billing"]);
    let error = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).unwrap_err();
    assert_eq!(
        error.kind(),
        &jsonwebtoken::errors::ErrorKind::InvalidAudience
    );

    // Denied requests carry nothing upstream, assertion or otherwise.
    let before = proxy.upstream.count();
    let response = proxy.request("GET", "/docs/d1", &[("X-Authz-Assertion", "forged")]);
    assert_eq!(response.status, 401, "{}", response.text());
    assert_eq!(proxy.upstream.count(), before);
}

#[test]
fn in_ext_authz_mode_the_assertion_comes_back_with_the_allow() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (key_path, jwk) = assertion_key(keys_dir.path());
    let proxy = Proxy::start(Options {
        proxy: "mode = \"ext_authz\"".to_string(),
        extra: format!(
            "[assertion]\nalgorithm = \"EdDSA\"\nkey_file = {:?}\naudience = \"orders\"\n",
            key_path.display().to_string()
        ),
        ..Options::default()
    });
    let alice = bearer(&user_token("alice"));
    // A client's own assertion header would reach the upstream next to the gateway's: refused.
    let response = proxy.request(
        "GET",
        "/docs/d1",
        &[("Authorization", &alice), ("x_authz_assertion", "forged")],
    );
    assert_eq!(response.status, 403, "{}", response.text());
    let response = proxy.request("GET", "/docs/d1", &[("Authorization", &alice)]);
    assert_eq!(response.status, 200, "{}", response.text());
    let assertions: Vec<&str> = response
        .headers
        .iter()
        .filter(|(name, _)| name.to_ascii_lowercase().contains("assertion"))
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(assertions.len(), 1, "{:?}", response.headers);
    let claims = verify_assertion(assertions[0], &jwk, "orders").claims;
    assert_eq!(claims["principal"]["id"], "alice");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        60
    );
    // Refusals carry no assertion: a policy denial and an exhausted limit (both 403 for the
    // gateway).
    let response = proxy.request("GET", "/docs/d2", &[("Authorization", &alice)]);
    assert_eq!(response.status, 403, "{}", response.text());
    assert_eq!(response.header("x-authz-assertion"), None);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = proxy.request("GET", "/ping", &[("Authorization", &alice)]);
        if response.status == 200 {
            assert!(response.header("x-authz-assertion").is_some());
        } else {
            assert_eq!(response.header("x-authz-assertion"), None);
        }
        statuses.push(response.status);
    }
    assert_eq!(statuses, vec![200, 200, 200, 403]);
    proxy
        .upstream
        .assert_untouched("ext_authz with an assertion");
}

#[test]
fn an_assertion_under_its_own_header_name_is_stripped_from_clients_too() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (key_path, jwk) = assertion_key(keys_dir.path());
    let proxy = Proxy::start(Options {
        extra: format!(
            "[assertion]\nalgorithm = \"EdDSA\"\nkey_file = {:?}\nheader = \"X-Proof\"\n",
            key_path.display().to_string()
        ),
        ..Options::default()
    });
    let alice = bearer(&user_token("alice"));
    let response = proxy.request(
        "GET",
        "/docs/d1?full=1",
        &[
            ("Authorization", &alice),
            ("X_Proof", "forged"),
            ("x.proof", "forged"),
            ("x-proof", "forged"),
        ],
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = proxy.upstream.only();
    let proofs: Vec<&str> = seen
        .headers
        .iter()
        .filter(|(name, _)| name.to_ascii_lowercase().replace(['_', '.'], "-") == "x-proof")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(proofs.len(), 1, "{:?}", seen.headers);
    assert_eq!(seen.header("x-authz-assertion"), None);
    let claims = verify_assertion(proofs[0], &jwk, "app").claims;
    assert_eq!(claims["path"], "/docs/d1");
    assert_eq!(claims["query"], "full=1");
}

#[test]
fn an_identity_scoped_assertion_is_signed_once_per_principal() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (key_path, jwk) = assertion_key(keys_dir.path());
    let proxy = Proxy::start(Options {
        extra: format!(
            "[assertion]\nalgorithm = \"EdDSA\"\nkey_file = {:?}\nscope = \"identity\"\n",
            key_path.display().to_string()
        ),
        ..Options::default()
    });
    let alice = bearer(&user_token("alice"));
    let bob = bearer(&user_token("bob"));
    for (authorization, target) in [
        (&alice, "/docs/d1"),
        (&alice, "/public/readme"),
        (&bob, "/public/readme"),
    ] {
        let response = proxy.request("GET", target, &[("Authorization", authorization)]);
        assert_eq!(response.status, 200, "{target}: {}", response.text());
    }
    let seen = proxy.upstream.seen();
    let tokens: Vec<&str> = seen
        .iter()
        .map(|request| request.header("x-authz-assertion").unwrap())
        .collect();
    assert_eq!(tokens[0], tokens[1], "alice's assertion is reused");
    assert_ne!(tokens[1], tokens[2], "bob gets his own");
    let claims = verify_assertion(tokens[2], &jwk, "app").claims;
    assert_eq!(claims["principal"]["id"], "bob");
    assert!(claims.get("path").is_none() && claims.get("jti").is_none());
}
