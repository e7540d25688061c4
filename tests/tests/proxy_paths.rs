//! `authz proxy` end to end against path tricks: dot segments (raw and percent-encoded) and
//! repeated slashes are resolved once, before routing, and the upstream receives exactly the
//! path that was routed and decided; encoded slashes and backslashes, `#` and `%23`, `%00`,
//! double encoding, path parameters and absolute-form targets whose host disagrees with `Host`
//! are answered 400. In every case the recording upstream never sees a forbidden request.

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

/// Alice's requests that must be denied 403 after normalization (she owns `d1`, not `d2`, and
/// is no admin), and never forwarded.
fn assert_forbidden(proxy: &Proxy, targets: &[&str]) {
    let token = user_token("alice");
    for target in targets {
        let response = proxy.get_as(&token, target);
        assert_eq!(response.status, 403, "{target}: {}", response.text());
        assert_eq!(response.json()["decision"], "deny", "{target}");
    }
    proxy.upstream.assert_untouched("forbidden paths");
}

/// Alice's requests that must be refused 400 before anything else, and never forwarded.
fn assert_rejected(proxy: &Proxy, targets: &[&str]) {
    let token = user_token("alice");
    for target in targets {
        let response = proxy.get_as(&token, target);
        assert_eq!(response.status, 400, "{target}: {}", response.text());
        assert_clean_error_body(&response, target);
        let body = response.json();
        assert_eq!(body["decision"], "deny", "{target}");
        assert!(
            body["error"]["code"]
                .as_str()
                .unwrap()
                .starts_with("authz::proxy::"),
            "{target}: {body}"
        );
    }
    proxy.upstream.assert_untouched("rejected paths");
}

#[test]
fn dot_segments_are_resolved_before_routing() {
    let proxy = Proxy::standard();
    assert_forbidden(
        &proxy,
        &[
            "/public/../admin/x",
            "/public/x/../../admin/x",
            "/docs/d1/../d2",
            "/public/../docs/d2",
            "/%2e%2e/docs/d2",
            "/public/%2e%2e/docs/d2",
            "/public/%2E%2E/docs/d2",
            "/public/.%2e/docs/d2",
            "/public/%2e./docs/d2",
            "/public/./../docs/d2",
            "/public/%2e/%2e%2e/admin/",
            "/../../../../docs/d2",
            "/docs/d1/%2e%2e/d2",
            "/public/../admin/../admin/users",
            // Encoded letters decode before routing: `%61dmin` is `admin`, `%64%32` is `d2`.
            "/%61dmin/x",
            "/%41dmin/x",
            "/docs/%64%32",
            "/docs/d%32",
        ],
    );
    // Allowed after normalization: the upstream sees the resolved path, never the dots.
    let token = user_token("alice");
    let cases = [
        ("/public/../docs/d1", "/docs/d1"),
        ("/docs/./d1", "/docs/d1"),
        ("/../../docs/d1", "/docs/d1"),
        ("/docs/%2e/d1", "/docs/d1"),
        ("/admin/../docs/d1", "/docs/d1"),
        ("/docs/d2/../d1?q=1", "/docs/d1?q=1"),
        ("/public/a/b/..", "/public/a/"),
        ("/docs/%64%31", "/docs/d1"),
        ("/public/caf%C3%A9%20menu", "/public/caf%C3%A9%20menu"),
    ];
    for (index, (target, canonical)) in cases.iter().enumerate() {
        let response = proxy.get_as(&token, target);
        assert_eq!(response.status, 200, "{target}: {}", response.text());
        let seen = proxy.upstream.seen();
        assert_eq!(seen.len(), index + 1, "{target}");
        assert_eq!(seen[index].target, *canonical, "{target}");
    }
}

#[test]
fn encoded_slashes_and_backslashes_are_rejected() {
    let proxy = Proxy::standard();
    assert_rejected(
        &proxy,
        &[
            "/docs%2Fd2",
            "/docs%2fd2",
            "/docs/d1%2F..%2Fd2",
            "/docs/d1/..%2Fd2",
            "/public/..%2F..%2Fadmin/x",
            "/public/..%5Cadmin",
            "/public/..%5cadmin",
            "/docs/d1%5C..%5Cd2",
            "/public/%252e%252e/admin",
            "/docs/d1%252F..%252Fd2",
            "/admin;/x",
            "/public/..;/admin/x",
            "/public/%3B/x",
            "/public/%c0%ae%c0%ae/admin",
            "/public/%e0%80%ae/admin",
            "/public/%zz",
            "/public/%2",
        ],
    );
    // A raw backslash, which the client library will not send: written by hand.
    for target in ["/public/..\\admin/x", "/docs\\d2"] {
        let raw = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
            proxy.address(),
            bearer(&user_token("alice"))
        );
        let answer = raw_exchange(proxy.address(), raw.as_bytes(), Duration::from_secs(2));
        assert_eq!(statuses(&answer), vec![400], "{target}: {answer}");
    }
    proxy.upstream.assert_untouched("backslashes");
}

#[test]
fn repeated_slashes_are_merged() {
    let proxy = Proxy::standard();
    assert_forbidden(
        &proxy,
        &[
            "/docs//d2",
            "/docs///d2",
            "/public//..//admin/x",
            "/admin//x",
            "/public/..//docs/d2",
        ],
    );
    let token = user_token("alice");
    let cases = [
        ("/docs//d1", "/docs/d1"),
        ("/docs/d1//", "/docs/d1/"),
        ("/public///a//b", "/public/a/b"),
    ];
    for (index, (target, canonical)) in cases.iter().enumerate() {
        let response = proxy.get_as(&token, target);
        assert_eq!(response.status, 200, "{target}: {}", response.text());
        let seen = proxy.upstream.seen();
        assert_eq!(seen.len(), index + 1, "{target}");
        assert_eq!(seen[index].target, *canonical, "{target}");
    }
    // A target that starts with `//` must not be read as a network path to another host.
    let raw = format!(
        "GET //evil.test/docs/d2 HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        proxy.address(),
        bearer(&token)
    );
    let answer = raw_exchange(proxy.address(), raw.as_bytes(), Duration::from_secs(2));
    let status = statuses(&answer);
    assert!(
        status == vec![400] || status == vec![403],
        "//evil.test: {answer}"
    );
    assert_eq!(proxy.upstream.count(), cases.len());
}

#[test]
fn fragments_and_nul_bytes_are_rejected() {
    let proxy = Proxy::standard();
    assert_rejected(
        &proxy,
        &[
            "/docs/d2%23",
            "/docs/d2%23/../d1",
            "/docs/d1%00",
            "/docs/d1%00/../d2",
            "/docs/d2%00.html",
            "/docs/d1?x=%00",
            "/public/%0a/admin",
            "/public/%0d%0aX-Authz-Principal:%20root",
            "/public/%7f",
        ],
    );
    // A raw `#` cannot reach the proxy's normalization: the HTTP parser (the `http` crate) cuts
    // the target at `#` as a fragment. What matters is that the decision and the upstream both
    // see the path before it: a fragment never makes the decided path and the forwarded one
    // differ. `/docs/d2#/../d1` resolved naively would be alice's `d1`; it must not pass.
    let send = |target: &str| {
        let raw = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
            proxy.address(),
            bearer(&user_token("alice"))
        );
        raw_exchange(proxy.address(), raw.as_bytes(), Duration::from_secs(2))
    };
    for target in ["/docs/d2#/../d1", "/docs/d2#", "/admin/x#/../../docs/d1"] {
        let answer = send(target);
        let status = statuses(&answer);
        assert!(
            status == vec![400] || status == vec![403],
            "{target}: {answer}"
        );
    }
    proxy.upstream.assert_untouched("fragments");
    for (target, decided) in [
        ("/docs/d1#/../d2", "/docs/d1"),
        ("/public/#/../../admin/x", "/public/"),
    ] {
        let before = proxy.upstream.count();
        let answer = send(target);
        let status = statuses(&answer);
        assert!(
            status == vec![400] || status == vec![200],
            "{target}: {answer}"
        );
        if status == vec![200] {
            let seen = proxy.upstream.seen();
            assert_eq!(seen.len(), before + 1, "{target}");
            assert_eq!(seen[before].target, decided, "{target}");
        }
    }
    let forwarded = proxy.upstream.count();
    let raw = format!(
        "GET /docs/d1\0/../d2 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        proxy.address()
    );
    let answer = raw_exchange(proxy.address(), raw.as_bytes(), Duration::from_secs(2));
    assert!(
        statuses(&answer).iter().all(|status| *status == 400),
        "raw NUL: {answer}"
    );
    assert_eq!(proxy.upstream.count(), forwarded, "raw NUL forwarded");
    assert!(proxy.upstream.garbage().is_empty());
}

#[test]
fn absolute_form_targets_must_name_the_host() {
    let proxy = Proxy::standard();
    let token = bearer(&user_token("alice"));
    let host = proxy.address().to_string();
    let send = |target: &str, host_header: &str| {
        let raw = format!(
            "GET {target} HTTP/1.1\r\nHost: {host_header}\r\nAuthorization: {token}\r\nConnection: close\r\n\r\n"
        );
        raw_exchange(proxy.address(), raw.as_bytes(), Duration::from_secs(2))
    };
    let refused = [
        ("http://evil.test/docs/d1".to_string(), host.clone()),
        ("http://evil.test/docs/d2".to_string(), host.clone()),
        (format!("http://{host}/docs/d1"), "evil.test".to_string()),
        ("https://evil.test:443/docs/d1".to_string(), host.clone()),
        (format!("http://alice@{host}/docs/d1"), host.clone()),
        (format!("http://{host}@evil.test/docs/d1"), host.clone()),
        (format!("ftp://{host}/docs/d1"), host.clone()),
        (format!("http://{host}/docs/d1%2F..%2Fd2"), host.clone()),
        ("evil.test:80".to_string(), host.clone()),
        ("*".to_string(), host.clone()),
    ];
    for (target, host_header) in &refused {
        let answer = send(target, host_header);
        assert_eq!(
            statuses(&answer),
            vec![400],
            "{target} with Host {host_header}: {answer}"
        );
    }
    proxy.upstream.assert_untouched("absolute-form targets");

    // The right host in absolute form is routed like the path, and forwarded in origin form.
    let answer = send(&format!("http://{host}/public/../docs/d1?a=b"), &host);
    assert_eq!(statuses(&answer), vec![200], "{answer}");
    assert_eq!(proxy.upstream.only().target, "/docs/d1?a=b");
    let answer = send(&format!("http://{host}/docs/d2"), &host);
    assert_eq!(statuses(&answer), vec![403], "{answer}");
    assert_eq!(proxy.upstream.count(), 1);
}
