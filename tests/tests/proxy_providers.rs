//! Entity providers behind `authz proxy`, against a real provider on loopback: a document created
//! in its service a moment ago is decided correctly on its first request through the proxy (its
//! owner is forwarded, someone else is denied), and with the provider down the request fails
//! closed, the answer and the audit line naming the entity and the provider.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod proxy_support;
mod serve_support;

use std::net::TcpListener;

use proxy_support::*;
use serde_json::json;
use serve_support::EntityService;

fn proxy_with_provider(url: &str) -> Proxy {
    Proxy::start(Options {
        extra: format!(
            "[[entity_provider]]\ntype = \"Doc\"\nurl = \"{url}\"\ntimeout_ms = 300\nttl_seconds = 60\n"
        ),
        ..Options::default()
    })
}

#[test]
fn a_document_from_its_service_is_decided_on_its_first_request() {
    let service = EntityService::start("/docs");
    service.hold(
        "d77",
        &json!({"type": "Doc", "id": "d77", "attrs": {"owner": {"type": "User", "id": "alice"}}, "parents": []}),
    );
    let proxy = proxy_with_provider(&format!("http://{}/docs", service.address));

    let owner = proxy.get_as(&user_token("alice"), "/docs/d77");
    assert_eq!(owner.status, 200, "{}", owner.text());
    assert!(proxy
        .upstream
        .seen()
        .iter()
        .any(|seen| seen.target == "/docs/d77"));
    let other = proxy.get_as(&user_token("bob"), "/docs/d77");
    assert_eq!(other.status, 403, "{}", other.text());
    assert_eq!(
        service.hits(),
        1,
        "the second request is answered from the cache"
    );

    // An id the service does not have: the missing entity is the reason given.
    let missing = proxy.get_as(&user_token("alice"), "/docs/d404");
    assert_eq!(missing.status, 403, "{}", missing.text());
    assert_eq!(
        missing.json()["reasons"][0],
        "entity `Doc(\"d404\")` does not exist"
    );
}

#[test]
fn a_provider_that_is_down_fails_the_request_closed_and_names_itself() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = proxy_with_provider(&format!("http://{closed}/docs"));
    let response = proxy.get_as(&user_token("alice"), "/docs/d77");
    assert_eq!(response.status, 503, "{}", response.text());
    assert_eq!(
        response.json()["error"]["code"],
        "authz::proxy::entity_provider"
    );
    assert!(!proxy
        .upstream
        .seen()
        .iter()
        .any(|seen| seen.target == "/docs/d77"));
    // A stored document needs no provider.
    let stored = proxy.get_as(&user_token("alice"), "/docs/d1");
    assert_eq!(stored.status, 200, "{}", stored.text());

    let line = proxy
        .audit()
        .into_iter()
        .find(|line| line["target"] == "/docs/d77")
        .expect("the refusal is audited");
    assert_eq!(line["code"], "authz::proxy::entity_provider");
    let error = &line["errors"][0];
    assert_eq!(error["code"], "authz::provider::failed");
    assert_eq!(error["at"], "entity:Doc(\"d77\")");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains(&format!("http://{closed}/docs/d77")),
        "{line}"
    );
}
