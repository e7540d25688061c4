//! `authz proxy` end to end at its trust boundary: for every request it forwards, every
//! reasonable reading of it by the upstream must mean the request that was authorized, and
//! anything ambiguous is refused. One test per class of parser differential: forwarding and
//! identity headers from clients, method-override and rewrite headers, repeated or oddly spelt
//! query parameters and headers that a policy reads, Unicode look-alikes of `.` and `/`, framing
//! and `Host`, and credentials. The real binary runs in front of a recording upstream on
//! loopback, with real signed tokens; the upstream must never see the ambiguous or spoofed
//! request.

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

/// A header name as an upstream that folds `_` and `.` into `-` reads it.
fn folded(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// Asserts a 400 refusal with the error code `authz::proxy::{code}`.
fn assert_refused(response: &serve_support::Response, code: &str, what: &str) {
    assert_eq!(response.status, 400, "{what}: {}", response.text());
    assert_eq!(
        response.json()["error"]["code"],
        format!("authz::proxy::{code}"),
        "{what}: {}",
        response.text()
    );
}

/// The refund route reads `amount` from the query and `mfa` from a header.
fn refund_proxy(proxy: &str) -> Proxy {
    Proxy::start(Options {
        proxy: proxy.to_string(),
        context: "amount = \"query:amount\"\nmfa = \"header:x-mfa\"".to_string(),
        ..Options::default()
    })
}

#[test]
fn forwarding_and_identity_headers_from_clients_never_reach_the_upstream() {
    let proxy = Proxy::start(Options {
        proxy: "strip_headers = [\"x-tenant\", \"x-internal-*\"]".to_string(),
        ..Options::default()
    });
    let authorization = bearer(&user_token("alice"));
    let spoofed: &[(&str, &str)] = &[
        ("X-Forwarded-User", "root"),
        ("X-Forwarded-Email", "root@example.com"),
        ("X-Forwarded-Groups", "admin"),
        ("X-Forwarded-Prefix", "/admin"),
        ("X-Forwarded-Uri", "/admin/users"),
        ("X-Forwarded-Method", "DELETE"),
        ("X-Forwarded-For", "10.0.0.1"),
        ("x_forwarded_for", "10.0.0.2"),
        ("x.forwarded.host", "admin.internal"),
        ("X_Forwarded_Proto", "https"),
        ("Forwarded", "for=10.0.0.1;proto=https"),
        ("X-Real-IP", "10.0.0.1"),
        ("True-Client-IP", "10.0.0.1"),
        ("X-User", "root"),
        ("X-Remote-User", "root"),
        ("Remote-User", "root"),
        ("remote_user", "root"),
        ("X-Auth-Request-User", "root"),
        ("X-Auth-Request-Email", "root@example.com"),
        ("x_auth_request_groups", "admin"),
        ("X-Tenant", "acme"),
        ("x.internal.debug", "1"),
    ];
    let mut headers = spoofed.to_vec();
    headers.push(("Authorization", &authorization));
    let response = proxy.request("GET", "/docs/d1", &headers);
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = proxy.upstream.only();
    for (name, _) in spoofed {
        let folded_name = folded(name);
        let kept = ["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"];
        if kept.contains(&folded_name.as_str()) {
            continue;
        }
        assert!(
            !seen.names().iter().any(|seen| folded(seen) == folded_name),
            "{name} reached the upstream: {seen:#?}"
        );
    }
    // Only the proxy's own forwarding headers, once each, in their canonical spelling.
    assert_eq!(seen.all("x-forwarded-for"), vec!["127.0.0.1"], "{seen:#?}");
    assert_eq!(seen.all("x-forwarded-proto"), vec!["http"], "{seen:#?}");
    assert_eq!(seen.all("x-forwarded-host").len(), 1, "{seen:#?}");
    assert_ne!(seen.header("x-forwarded-host"), Some("admin.internal"));
    for name in seen.names() {
        assert!(
            !name.contains('_') && !name.contains('.'),
            "a folded spelling reached the upstream: {name}"
        );
    }
}

#[test]
fn method_override_and_rewrite_headers_are_stripped_or_refused() {
    let overrides: &[(&str, &str)] = &[
        ("X-HTTP-Method-Override", "DELETE"),
        ("X-HTTP-Method", "DELETE"),
        ("X-Method-Override", "DELETE"),
        ("x_http_method_override", "DELETE"),
        ("X-Original-URL", "/admin/users"),
        ("X-Rewrite-URL", "/admin/users"),
        ("x.original.url", "/admin/users"),
    ];
    let authorization = bearer(&user_token("alice"));

    // By default they are removed: the upstream sees the method and path that were decided.
    let proxy = Proxy::standard();
    let mut headers = overrides.to_vec();
    headers.push(("Authorization", &authorization));
    let response = proxy.request("GET", "/docs/d1", &headers);
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = proxy.upstream.only();
    assert_eq!(
        (seen.method.as_str(), seen.target.as_str()),
        ("GET", "/docs/d1")
    );
    for (name, _) in overrides {
        assert!(
            !seen.names().iter().any(|seen| folded(seen) == folded(name)),
            "{name} reached the upstream: {seen:#?}"
        );
    }
    // The `_method` query parameter is refused in either mode.
    let response = proxy.request(
        "POST",
        "/docs/d1?_method=DELETE",
        &[("Authorization", &authorization)],
    );
    assert_refused(&response, "method_override", "_method");
    assert_eq!(proxy.upstream.count(), 1);

    // With `method_override = "refuse"`, each one is a 400 and nothing is forwarded.
    let strict = Proxy::start(Options {
        proxy: "method_override = \"refuse\"".to_string(),
        ..Options::default()
    });
    for header in overrides {
        let response = strict.request(
            "GET",
            "/docs/d1",
            &[*header, ("Authorization", &authorization)],
        );
        assert_refused(&response, "method_override", header.0);
    }
    strict.upstream.assert_untouched("method overrides refused");
}

#[test]
fn repeated_or_ambiguous_query_parameters_that_the_policy_reads_are_refused() {
    let proxy = refund_proxy("");
    let authorization = bearer(&user_token("alice"));
    let refund = |query: &str, mfa: &[(&str, &str)]| {
        let mut headers = vec![("Authorization", authorization.as_str())];
        headers.extend_from_slice(mfa);
        proxy.request("POST", &format!("/docs/d1/refunds?{query}"), &headers)
    };
    let no_mfa = [("x-mfa", "false")];

    // The plain readings decide as the policy says.
    let response = refund("amount=100", &no_mfa);
    assert_eq!(response.status, 200, "{}", response.text());
    let response = refund("amount=40000000", &no_mfa);
    assert_eq!(response.status, 403, "{}", response.text());
    let response = refund("amou%6Et=100", &no_mfa);
    assert_eq!(
        response.status,
        200,
        "one decoding, read alike: {}",
        response.text()
    );
    assert_eq!(proxy.upstream.count(), 2);

    // Every query in which a server could read another amount is refused.
    for query in [
        "amount=100&amount=40000000",
        "amount=40000000&amount=100",
        "amount=100&AMOUNT=40000000",
        "amount=100&amount[]=40000000",
        "amount=100&amount%5B%5D=40000000",
        "amount=100&amou%256Et=40000000",
        "AMOUNT=100",
        "amount=100;amount=40000000",
        "x=1;amount=100",
        "amount=1%2530",
    ] {
        let response = refund(query, &no_mfa);
        assert_refused(&response, "ambiguous_query", query);
        assert!(response.text().contains("`amount`"), "{}", response.text());
    }
    // A parameter the policy does not read may repeat.
    let response = refund("amount=100&tag=a&tag=b", &no_mfa);
    assert_eq!(response.status, 200, "{}", response.text());

    // Headers the policy reads: repeated, or only in a spelling that folding servers merge.
    for headers in [
        vec![("x-mfa", "false"), ("x-mfa", "true")],
        vec![("x-mfa", "false"), ("x_mfa", "true")],
        vec![("X.Mfa", "true")],
    ] {
        let response = refund("amount=40000000", &headers);
        assert_refused(&response, "ambiguous_header", &format!("{headers:?}"));
    }
    assert_eq!(proxy.upstream.count(), 3, "{:#?}", proxy.upstream.seen());
    let line = proxy
        .audit()
        .into_iter()
        .find(|line| line["code"] == "authz::proxy::ambiguous_query")
        .expect("an audit line for the refusal");
    assert_eq!(line["status"], 400, "{line}");
}

#[test]
fn unicode_look_alikes_of_dots_and_slashes_are_refused() {
    let proxy = Proxy::standard();
    let authorization = bearer(&user_token("alice"));
    let cases: &[(&str, &str)] = &[
        (
            "/public/%EF%BC%8E%EF%BC%8E/admin/users",
            "lookalike_dot_segment",
        ),
        ("/public/%E2%80%A5/admin/users", "lookalike_dot_segment"),
        (
            "/public/%E2%80%A4%E2%80%A4/admin/users",
            "lookalike_dot_segment",
        ),
        (
            "/public/%EF%B9%92%EF%B9%92/admin/users",
            "lookalike_dot_segment",
        ),
        ("/public/%EF%BC%8E/admin", "lookalike_dot_segment"),
        ("/public/..%EF%BC%8F..%EF%BC%8Fadmin", "lookalike_delimiter"),
        ("/public/a%E2%88%95..%E2%88%95admin", "lookalike_delimiter"),
        ("/public/a%E2%81%84b", "lookalike_delimiter"),
        ("/public/..%20/admin", "trailing_dot_or_space"),
        ("/public/...%2F", "encoded_slash"),
        ("/public/admin./x", "trailing_dot_or_space"),
        ("/public/x%C2%A0", "trailing_dot_or_space"),
        ("/public/%E2%80%A6/admin", "trailing_dot_or_space"),
    ];
    for (target, code) in cases {
        let response = proxy.request("GET", target, &[("Authorization", &authorization)]);
        assert_refused(&response, code, target);
    }
    // A path that routes elsewhere once NFKC-normalized or case-folded is refused too:
    // `/ｐｕｂｌｉｃ/x` is `/public/x` to a normalizing server, `/ADMIN/x` is `/admin/x` to a
    // case-insensitive one.
    for target in ["/docs/%EF%BD%84%EF%BC%91", "/Public/x"] {
        let response = proxy.request("GET", target, &[("Authorization", &authorization)]);
        assert!(
            response.status == 400 || response.status == 403,
            "{target}: {}",
            response.text()
        );
    }
    proxy.upstream.assert_untouched("look-alikes");
    // Ordinary non-ASCII and dotted names pass.
    let response = proxy.request(
        "GET",
        "/public/caf%C3%A9/v1.2/file.txt",
        &[("Authorization", &authorization)],
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        proxy.upstream.only().target,
        "/public/caf%C3%A9/v1.2/file.txt"
    );
}

#[test]
fn invalid_framing_and_host_are_refused_and_never_forwarded() {
    let proxy = Proxy::standard();
    let token = user_token("alice");
    let quiet = Duration::from_millis(600);
    let with_token = |head: &str| head.replace("{auth}", &format!("Authorization: Bearer {token}"));
    let cases: &[(&str, &str)] = &[
        (
            "invalid chunk size",
            "GET /docs/d1 HTTP/1.1\r\nHost: a\r\n{auth}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "0x chunk size",
            "GET /docs/d1 HTTP/1.1\r\nHost: a\r\n{auth}\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "2^80 chunk size",
            "GET /docs/d1 HTTP/1.1\r\nHost: a\r\n{auth}\r\nTransfer-Encoding: chunked\r\n\r\n100000000000000000000\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "Content-Length with Transfer-Encoding",
            "POST /docs/d1 HTTP/1.1\r\nHost: a\r\n{auth}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "Transfer-Encoding then Content-Length",
            "POST /docs/d1 HTTP/1.1\r\nHost: a\r\n{auth}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        ),
        ("no Host", "GET /docs/d1 HTTP/1.1\r\n{auth}\r\n\r\n"),
        (
            "two Hosts",
            "GET /docs/d1 HTTP/1.1\r\nHost: a\r\nHost: evil\r\n{auth}\r\n\r\n",
        ),
        ("empty Host", "GET /docs/d1 HTTP/1.1\r\nHost:\r\n{auth}\r\n\r\n"),
        (
            "Host with userinfo",
            "GET /docs/d1 HTTP/1.1\r\nHost: a@evil\r\n{auth}\r\n\r\n",
        ),
        (
            "Host with a path",
            "GET /docs/d1 HTTP/1.1\r\nHost: a/admin\r\n{auth}\r\n\r\n",
        ),
    ];
    for (what, head) in cases {
        // A second, allowed request follows on the same connection: it must not be served
        // either, since the first one's framing cannot be trusted.
        let raw = format!(
            "{}GET /docs/d1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\n\r\n",
            with_token(head)
        );
        let answer = raw_exchange(proxy.address(), raw.as_bytes(), quiet);
        let statuses = statuses(&answer);
        assert!(
            statuses.first().is_some_and(|status| *status == 400),
            "{what}: {answer}"
        );
        assert_eq!(
            statuses.len(),
            1,
            "{what}: the connection stays open: {answer}"
        );
    }
    proxy.upstream.assert_untouched("bad framing");

    // The header-size limit is exact however the bytes arrive: in one write here.
    let small = Proxy::start(Options {
        proxy: "max_header_bytes = 9000".to_string(),
        ..Options::default()
    });
    let padding = "p".repeat(9100);
    let raw = format!(
        "GET /docs/d1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\nX-Pad: {padding}\r\n\r\n"
    );
    let answer = raw_exchange(small.address(), raw.as_bytes(), quiet);
    assert_eq!(statuses(&answer), vec![431], "{answer}");
    let padding = "p".repeat(7000);
    let raw = format!(
        "GET /docs/d1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\nX-Pad: {padding}\r\n\r\n"
    );
    let answer = raw_exchange(small.address(), raw.as_bytes(), quiet);
    assert_eq!(statuses(&answer), vec![200], "{answer}");

    // A valid chunked body is forwarded whole, framed by its length.
    let raw = format!(
        "POST /docs/d1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    );
    let answer = raw_exchange(proxy.address(), raw.as_bytes(), quiet);
    assert_eq!(statuses(&answer), vec![200], "{answer}");
    let seen = proxy.upstream.only();
    assert_eq!(seen.body, b"hello world");
    assert_eq!(seen.header("content-length"), Some("11"), "{seen:#?}");
    assert_eq!(seen.header("transfer-encoding"), None, "{seen:#?}");
}

#[test]
fn verified_credentials_stay_at_the_proxy_and_identity_is_mapped_into_headers() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("api-keys.toml");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"reports-key-1");
    let hex: String = digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    std::fs::write(
        &key_file,
        format!("[[keys]]\nsha256 = \"{hex}\"\ntype = \"Service\"\nid = \"reports\"\n"),
    )
    .unwrap();
    let extra = format!(
        "[identity.api_keys]\nfile = \"{}\"\n\n[upstream_headers]\n\"x-user-id\" = \"principal.id\"\n\"x-user-type\" = \"principal.type\"\n\"x-user-roles\" = \"principal.roles\"\n\"x-user-subject\" = \"claim.sub\"\n",
        key_file.display()
    );
    let proxy = Proxy::start(Options {
        extra,
        ..Options::default()
    });
    let root_token = user_token("root");
    let authorization = bearer(&root_token);
    let response = proxy.request(
        "GET",
        "/docs/d1",
        &[
            ("Authorization", &authorization),
            ("X-User-Id", "alice"),
            ("x_user_roles", "none"),
        ],
    );
    assert_eq!(
        response.status,
        403,
        "root does not own d1: {}",
        response.text()
    );
    let response = proxy.request(
        "GET",
        "/public/x",
        &[
            ("Authorization", &authorization),
            ("X-User-Id", "alice"),
            ("x_user_roles", "none"),
        ],
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = proxy.upstream.only();
    assert_eq!(
        seen.header("authorization"),
        None,
        "the token was forwarded"
    );
    assert!(!seen
        .headers
        .iter()
        .any(|(_, value)| value.contains(&root_token)));
    assert_eq!(seen.all("x-user-id"), vec!["root"], "{seen:#?}");
    assert_eq!(seen.header("x-user-type"), Some("User"));
    assert_eq!(seen.header("x-user-roles"), Some("admin"));
    assert_eq!(seen.header("x-user-subject"), Some("root"));
    assert!(!seen.names().contains(&"x_user_roles".to_string()));

    // The API key goes no further either, in either header.
    for header in [
        ("x-api-key", "reports-key-1"),
        ("Authorization", "ApiKey reports-key-1"),
    ] {
        let response = proxy.request("GET", "/docs/public", &[header]);
        assert_eq!(response.status, 200, "{}", response.text());
    }
    for seen in proxy.upstream.seen().iter().skip(1) {
        assert!(
            !seen
                .headers
                .iter()
                .any(|(_, value)| value.contains("reports-key-1")),
            "{seen:#?}"
        );
        assert_eq!(seen.header("x-user-id"), Some("reports"));
        assert_eq!(seen.header("x-user-type"), Some("Service"));
        assert_eq!(seen.header("x-user-roles"), None, "services have no roles");
    }

    // `forward_credentials = true` keeps the token for an upstream that needs it.
    let keeping = Proxy::start(Options {
        extra: format!(
            "[[identity.jwt]]\nissuer = \"https://keep.test\"\naudiences = [\"{AUDIENCE}\"]\n\
             algorithms = [\"HS256\"]\nhmac_secret_file = \"hs.secret\"\n\
             principal_type = \"User\"\nforward_credentials = true\n"
        ),
        ..Options::default()
    });
    let kept = token(
        jsonwebtoken::Algorithm::HS256,
        None,
        &keys().hmac,
        &claims("https://keep.test", "alice"),
    );
    let response = keeping.request("GET", "/docs/d1", &[("Authorization", &bearer(&kept))]);
    assert_eq!(response.status, 200, "{}", response.text());
    let response = keeping.get_as(&user_token("alice"), "/docs/d1");
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = keeping.upstream.seen();
    assert_eq!(
        seen[0].header("authorization"),
        Some(bearer(&kept).as_str())
    );
    assert_eq!(seen[1].header("authorization"), None);
}
