//! `authz proxy`'s admin plane end to end: the `[admin]` listener answers `/healthz`, `/readyz`,
//! `/metrics` and the policy API apart from traffic; a policy written through it decides the very
//! next request; and a policy set the running proxy could not serve (one that renames the
//! principal type its issuers name, or drops a context field its `[context]` fills) is refused on
//! reload and through the API alike, reported in `/readyz`, while the previous set keeps serving.
//! Every refusal carries the request id, found again in the audit line.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod proxy_support;
mod serve_support;

use std::net::{SocketAddr, TcpListener};

use proxy_support::*;
use serde_json::Value as Json;
use serve_support::{Client, Response};

const ADMIN_TOKEN: &str = "admin-token-0123456789";

/// A free loopback port for the admin listener.
fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn admin_proxy() -> (Proxy, SocketAddr) {
    let admin = free_address();
    let proxy = Proxy::start(Options {
        context: "amount = \"query:amount\"\nmfa = \"header:x-mfa\"".to_string(),
        extra: format!("[admin]\nlisten = \"{admin}\"\nadmin_token = \"{ADMIN_TOKEN}\"\n"),
        ..Options::default()
    });
    (proxy, admin)
}

fn admin(address: SocketAddr, method: &str, path: &str, body: &str) -> Response {
    let authorization = format!("Bearer {ADMIN_TOKEN}");
    Client::new(address).request(
        method,
        path,
        &[("Authorization", &authorization)],
        body.as_bytes(),
    )
}

/// Parses Prometheus text: every sample line is `name{labels} value` with a numeric value.
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
            (name.to_string(), value)
        })
        .collect()
}

fn sample(samples: &[(String, f64)], name: &str) -> f64 {
    samples
        .iter()
        .filter(|(sample, _)| sample == name || sample.starts_with(&format!("{name}{{")))
        .map(|(_, value)| value)
        .sum()
}

fn ready(address: SocketAddr) -> Json {
    let response = Client::new(address).request("GET", "/readyz", &[], b"");
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

#[test]
fn the_admin_listener_serves_health_readiness_metrics_and_the_policy_api() {
    let (proxy, address) = admin_proxy();
    let alice = bearer(&user_token("alice"));

    let health = Client::new(address).request("GET", "/healthz", &[], b"");
    assert_eq!(health.status, 200, "{}", health.text());
    let readiness = ready(address);
    assert_eq!(readiness["stale"], false, "{readiness}");
    assert_eq!(readiness["generation"], 1);

    // Metrics move with traffic and parse as Prometheus text.
    let before = samples(
        &Client::new(address)
            .request("GET", "/metrics", &[], b"")
            .text(),
    );
    // One token, so that the cache verifies it once.
    for _ in 0..5 {
        let response = proxy.request("GET", "/docs/d1", &[("Authorization", &alice)]);
        assert_eq!(response.status, 200);
    }
    let response = proxy.request("GET", "/docs/d2", &[("Authorization", &alice)]);
    assert_eq!(response.status, 403);
    let bob = user_token("bob");
    let pings: Vec<u16> = (0..4).map(|_| proxy.get_as(&bob, "/ping").status).collect();
    assert_eq!(pings, vec![200, 200, 200, 429]);
    let metrics_text = Client::new(address)
        .request("GET", "/metrics", &[], b"")
        .text();
    let after = samples(&metrics_text);
    let moved = |name: &str| sample(&after, name) - sample(&before, name);
    assert!(moved("authz_decisions_total") >= 10.0, "{after:?}");
    assert!(
        moved("authz_decision_duration_seconds_count") >= 6.0,
        "{after:?}"
    );
    assert!(moved("authz_proxy_requests_total") >= 6.0, "{after:?}");
    assert!(
        moved("authz_proxy_upstream_duration_seconds_count") >= 5.0,
        "{after:?}"
    );
    assert!(
        moved("authz_proxy_token_cache_hits_total") >= 4.0,
        "{after:?}"
    );
    let by_route = after
        .iter()
        .find(|(name, _)| {
            name.starts_with("authz_proxy_requests_total{")
                && name.contains("status=\"200\"")
                && name.contains("route=\"GET /docs/{id}\"")
        })
        .unwrap_or_else(|| panic!("no request count for the route: {after:?}"));
    assert!(by_route.1 >= 5.0, "{by_route:?}");
    for name in [
        "authz_proxy_jwks_refreshes_total",
        "authz_proxy_jwks_failures_total",
        "authz_proxy_redis_errors_total",
        "authz_policy_reloads_total",
    ] {
        assert!(
            metrics_text.contains(name),
            "{name} is not exported:\n{metrics_text}"
        );
    }

    // Policy reads take the token when one is configured; traffic never reaches the admin API.
    let open = Client::new(address).request("GET", "/v1/policies", &[], b"");
    assert_eq!(open.status, 401, "{}", open.text());
    let listed = admin(address, "GET", "/v1/policies", "");
    assert_eq!(listed.status, 200, "{}", listed.text());
    let through_traffic = proxy.request("GET", "/v1/policies", &[("Authorization", &alice)]);
    assert_ne!(through_traffic.status, 200);
    assert!(!proxy
        .upstream
        .seen()
        .iter()
        .any(|seen| seen.target.starts_with("/v1/")));

    // A write answers once the set is installed: the very next request is decided by it.
    let written = admin(
        address,
        "PUT",
        "/v1/policies/lock-d1.authz",
        "@id(\"lock-d1\")\nforbid principal: *, action: [read, write], resource == Doc(\"d1\");\n",
    );
    assert_eq!(written.status, 200, "{}", written.text());
    let response = proxy.request("GET", "/docs/d1", &[("Authorization", &alice)]);
    assert_eq!(response.status, 403, "{}", response.text());
    assert_eq!(ready(address)["generation"], 2);
}

#[test]
fn a_set_the_proxy_cannot_serve_is_refused_on_reload_and_through_the_api() {
    let (proxy, address) = admin_proxy();
    let alice = bearer(&user_token("alice"));
    assert_eq!(
        proxy
            .request("GET", "/docs/d1", &[("Authorization", &alice)])
            .status,
        200
    );

    // Through the API: a schema without the refund context the `[context]` fills.
    let schema = SCHEMA.replace(" with { amount: Long, mfa: Bool }", "");
    let refused = admin(address, "PUT", "/v1/policies/schema.authz", &schema);
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.text().contains("context"), "{}", refused.text());
    assert_eq!(ready(address)["generation"], 1);

    // On reload: `User` renamed to `Customer` in every file, consistently, which compiles and
    // loads, but the proxy's issuers name `User` principals.
    let policies = proxy.path("policies");
    for name in ["schema.authz", "routes.authz", "policies.authz"] {
        let path = policies.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("User", "Customer")).unwrap();
    }
    let entities = proxy.path("entities.json");
    let text = std::fs::read_to_string(&entities).unwrap();
    std::fs::write(&entities, text.replace("\"User\"", "\"Customer\"")).unwrap();
    eventually("the reload is refused", || ready(address)["stale"] == true);
    let readiness = ready(address);
    let error = readiness["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("principal_type"), "{readiness}");
    assert_eq!(readiness["generation"], 1);
    assert!(
        proxy.stderr().contains("principal_type"),
        "{}",
        proxy.stderr()
    );
    // The previous set still serves.
    let response = proxy.request("GET", "/docs/d1", &[("Authorization", &alice)]);
    assert_eq!(response.status, 200, "{}", response.text());
}

#[test]
fn every_refusal_carries_the_request_id_found_again_in_the_audit_line() {
    let proxy = Proxy::standard();
    let alice = bearer(&user_token("alice"));
    // The client's id is kept, returned and forwarded.
    let response = proxy.request(
        "GET",
        "/docs/d1",
        &[("Authorization", &alice), ("X-Request-Id", "client-7")],
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-request-id"), Some("client-7"));
    assert_eq!(
        proxy.upstream.only().header("x-request-id"),
        Some("client-7")
    );

    // Without one, the proxy makes one; every refusal carries it in its body.
    let refusals: Vec<Response> = vec![
        proxy.request("GET", "/docs/d1", &[]),
        proxy.request("GET", "/docs/d2", &[("Authorization", &alice)]),
        proxy.request("GET", "/docs%2Fd1", &[("Authorization", &alice)]),
        proxy.request("GET", "/nowhere", &[("Authorization", &alice)]),
    ];
    let mut ids = Vec::new();
    for response in &refusals {
        let id = response.header("x-request-id").expect("an id").to_string();
        assert_eq!(id.len(), 28, "{id}");
        assert_eq!(
            response.json()["request_id"],
            id.as_str(),
            "{}",
            response.text()
        );
        ids.push(id);
    }
    // A token without `sub`: the client reads a fixed sentence, the audit line the precise
    // failure.
    let no_subject = token(
        jsonwebtoken::Algorithm::ES256,
        Some("es-1"),
        &keys().ec.encoding,
        &without(claims(ES_ISSUER, "alice"), "sub"),
    );
    let response = proxy.get_as(&no_subject, "/docs/d1");
    assert_eq!(response.status, 401);
    assert!(!response.text().contains("sub"), "{}", response.text());
    let no_subject_id = response.header("x-request-id").unwrap().to_string();

    eventually("the audit lines are written", || proxy.audit().len() >= 6);
    let audit = proxy.audit();
    for (id, response) in ids.iter().zip(&refusals) {
        let line = audit
            .iter()
            .find(|line| line["request_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no audit line with {id}: {audit:#?}"));
        assert_eq!(line["status"], response.status);
    }
    let line = audit
        .iter()
        .find(|line| line["request_id"] == no_subject_id.as_str())
        .unwrap();
    assert_eq!(line["reason"], "missing claim `sub`", "{line}");
}

#[test]
fn readiness_reports_each_jwks_source() {
    let keys = keys();
    let jwks_server = JwksServer::start(Some(jwks(&[&keys.rsa])));
    let admin_address = free_address();
    let _proxy = Proxy::start(Options {
        extra: format!(
            "[[identity.jwt]]\nissuer = \"https://remote.test\"\naudiences = [\"{AUDIENCE}\"]\n\
             algorithms = [\"RS256\"]\njwks_url = \"{}\"\nprincipal_type = \"User\"\n\n\
             [admin]\nlisten = \"{admin_address}\"\n",
            jwks_server.url()
        ),
        ..Options::default()
    });
    let readiness = ready(admin_address);
    let sources = readiness["jwks"].as_array().expect("a jwks list");
    assert_eq!(sources.len(), 1, "{readiness}");
    assert_eq!(sources[0]["url"], jwks_server.url());
    assert_eq!(sources[0]["usable"], true, "{readiness}");
    assert_eq!(sources[0]["keys"], 1);
    assert!(sources[0]["age_seconds"].is_u64(), "{readiness}");
    assert!(readiness.get("redis").is_none(), "{readiness}");
}

#[test]
fn an_entity_written_through_the_admin_api_decides_the_very_next_request() {
    let (proxy, address) = admin_proxy();
    let alice = bearer(&user_token("alice"));
    let before = proxy.request("GET", "/docs/d9", &[("Authorization", &alice)]);
    assert_eq!(before.status, 403, "{}", before.text());

    let written = admin(
        address,
        "POST",
        "/v1/entities",
        r#"[{"type": "Doc", "id": "d9", "attrs": {"owner": {"type": "User", "id": "alice"}}, "parents": []}]"#,
    );
    assert_eq!(written.status, 200, "{}", written.text());
    let after = proxy.request("GET", "/docs/d9", &[("Authorization", &alice)]);
    assert_eq!(after.status, 200, "{}", after.text());
    assert!(proxy
        .upstream
        .seen()
        .iter()
        .any(|seen| seen.target == "/docs/d9"));

    // A batch the schema refuses changes nothing, and names the attribute.
    let refused = admin(
        address,
        "POST",
        "/v1/entities",
        r#"[{"type": "Doc", "id": "d10", "attrs": {"owner": "alice"}, "parents": []}]"#,
    );
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.text().contains("owner"), "{}", refused.text());
    let still = proxy.request("GET", "/docs/d10", &[("Authorization", &alice)]);
    assert_eq!(still.status, 403, "{}", still.text());
}
