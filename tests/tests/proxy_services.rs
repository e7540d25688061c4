//! `authz proxy` end to end for service-to-service calls by service JWT: an issuer whose tokens
//! name `Service` principals (by `client_id`, or by `sub`) lets service A call service B's route
//! while service C is denied, and the upstream sees the calling service as the proxy's identity.
//! The principal's type comes from the issuer's configuration, never from the token.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod proxy_support;
mod serve_support;

use jsonwebtoken::Algorithm;
use proxy_support::*;
use serde_json::{json, Value as Json};

/// Good claims of a mesh service token for `client_id`.
fn service_claims(client_id: &str) -> Json {
    json!({
        "iss": MESH_ISSUER,
        "aud": MESH_AUDIENCE,
        "sub": format!("svc-{client_id}"),
        "client_id": client_id,
        "exp": now() + 600,
        "iat": now(),
    })
}

fn service_token(claims: &Json) -> String {
    token(
        Algorithm::EdDSA,
        Some("mesh-1"),
        &keys().mesh.encoding,
        claims,
    )
}

fn charge(proxy: &Proxy, token: &str) -> serve_support::Response {
    let authorization = bearer(token);
    proxy.client().request(
        "POST",
        "/billing/charges",
        &[("Authorization", &authorization)],
        br#"{"amount":100}"#,
    )
}

#[test]
fn service_a_may_call_service_b_and_service_c_may_not() {
    let proxy = Proxy::standard();

    // C (reports) is a known service, but no policy lets it charge.
    let response = charge(&proxy, &service_token(&service_claims("reports")));
    assert_eq!(response.status, 403, "{}", response.text());
    // A user whose id is the service's name is a User, not the service.
    let response = charge(&proxy, &user_token("orders"));
    assert_eq!(response.status, 403, "{}", response.text());
    // An unknown service.
    let response = charge(&proxy, &service_token(&service_claims("ghost")));
    assert_eq!(response.status, 403, "{}", response.text());
    // A service may not do what only users may (reading documents is User | Service, but no
    // permit names services).
    let response = proxy.get_as(&service_token(&service_claims("orders")), "/docs/d1");
    assert_eq!(response.status, 403, "{}", response.text());
    proxy
        .upstream
        .assert_untouched("services that may not charge");

    // Refused tokens of the mesh issuer: for another audience, without or with a bad id claim,
    // or signed by a key the mesh does not publish.
    let refused = [
        (
            "audience of the user API",
            service_token(&with(service_claims("orders"), "aud", json!(AUDIENCE))),
        ),
        (
            "no client_id",
            service_token(&without(service_claims("orders"), "client_id")),
        ),
        (
            "client_id not a string",
            service_token(&with(service_claims("orders"), "client_id", json!(7))),
        ),
        (
            "client_id as a list",
            service_token(&with(
                service_claims("orders"),
                "client_id",
                json!(["orders"]),
            )),
        ),
        (
            "key of another issuer",
            token(
                Algorithm::EdDSA,
                Some("mesh-1"),
                &keys().ed.encoding,
                &service_claims("orders"),
            ),
        ),
    ];
    for (what, token) in &refused {
        let response = charge(&proxy, token);
        assert_unauthorized(&response, what);
    }
    proxy.upstream.assert_untouched("refused service tokens");

    // A (orders) may charge: the upstream sees the service as the proxy's identity.
    let response = charge(&proxy, &service_token(&service_claims("orders")));
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = proxy.upstream.only();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/billing/charges");
    assert_eq!(seen.body, br#"{"amount":100}"#);
    assert_eq!(
        seen.all("x-authz-principal"),
        vec![principal_header("Service", "orders")]
    );
    assert_eq!(seen.header("x-authz-issuer"), Some(MESH_ISSUER));

    // The audit log names the service (it is written off the request path: wait for it).
    eventually("ten audit lines", || proxy.audit().len() == 10);
    let audit = proxy.audit();
    let allowed: Vec<&Json> = audit.iter().filter(|line| line["status"] == 200).collect();
    assert_eq!(allowed.len(), 1);
    assert_eq!(
        allowed[0]["principal"],
        json!({ "type": "Service", "id": "orders" })
    );
    assert_eq!(allowed[0]["policies"], json!(["orders-charges"]));
}

#[test]
fn service_identity_by_sub_with_a_shared_secret() {
    let secret = "mesh-shared-secret-of-at-least-32-bytes-0123";
    let proxy = Proxy::start(Options {
        extra: format!(
            r#"
[[identity.jwt]]
issuer = "https://mesh-hs.test"
audiences = ["billing"]
algorithms = ["HS256"]
hmac_secret = "{secret}"
principal_type = "Service"
id_claim = "sub"
"#
        ),
        ..Options::default()
    });
    let key = secret_key(secret.as_bytes());
    let claims = |sub: &str| {
        json!({
            "iss": "https://mesh-hs.test",
            "aud": "billing",
            "sub": sub,
            "exp": now() + 600,
        })
    };
    let response = charge(
        &proxy,
        &token(Algorithm::HS256, None, &key, &claims("reports")),
    );
    assert_eq!(response.status, 403, "{}", response.text());
    let wrong_secret = secret_key(b"not-the-mesh-secret-but-32-bytes-long!!");
    let response = charge(
        &proxy,
        &token(Algorithm::HS256, None, &wrong_secret, &claims("orders")),
    );
    assert_unauthorized(&response, "wrong secret");
    proxy.upstream.assert_untouched("service by sub");
    let response = charge(
        &proxy,
        &token(Algorithm::HS256, None, &key, &claims("orders")),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        proxy.upstream.only().all("x-authz-principal"),
        vec![principal_header("Service", "orders")]
    );
}
