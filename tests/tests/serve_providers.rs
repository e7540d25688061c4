//! Entity providers end to end, against a real provider on loopback: an entity the store lacks is
//! fetched and decided on its first request, served from the cache within its lifetime (the
//! provider's hits are counted), a `404` names the missing entity as the cause of the denial, and
//! a provider that is slow, down or answers something else fails the request closed, naming the
//! entity and the provider.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod serve_support;

use std::net::TcpListener;

use serde_json::{json, Value as Json};
use serve_support::{request, Client, EntityService, Fixture, Server};

/// `Document(id)`, owned by `owner`, in acme.
fn document(id: &str, owner: &str) -> Json {
    json!({
        "type": "Document", "id": id,
        "attrs": {
            "tenant": {"type": "Tenant", "id": "acme"},
            "owner": {"type": "User", "id": owner},
            "classification": 1, "labels": [], "requiredTrainings": [],
            "readers": {"type": "Group", "id": "acme-roadmap-readers"}
        },
        "parents": [{"type": "Folder", "id": "acme-eng"}]
    })
}

fn serve_with_provider(fixture: &Fixture, service: &EntityService, url: Option<String>) -> Server {
    let url = url.unwrap_or_else(|| format!("http://{}/documents", service.address));
    let config = fixture.path("authz.toml");
    std::fs::write(
        &config,
        format!(
            "[[entity_provider]]\ntype = \"Document\"\nurl = \"{url}\"\ntimeout_ms = 300\nttl_seconds = 60\nnegative_ttl_seconds = 60\n"
        ),
    )
    .unwrap();
    Server::docs(fixture, &["-c", config.to_str().unwrap()])
}

fn reads(client: &mut Client, principal: &str, document: &str) -> Json {
    let response = client.decide(&request(principal, "read", ("Document", document)));
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

#[test]
fn an_entity_from_its_provider_is_decided_on_its_first_request_and_cached() {
    let service = EntityService::start("/documents");
    service.hold("notes", &document("notes", "dave"));
    let fixture = Fixture::docs();
    let server = serve_with_provider(&fixture, &service, None);
    let mut client = server.client();

    // The owner is allowed, someone else in the tenant is not: the provider's data decides.
    let owner = reads(&mut client, "dave", "notes");
    assert_eq!(owner["decision"], "allow", "{owner}");
    assert_eq!(owner["policies"], json!(["owners"]));
    assert_eq!(service.hits(), 1);
    let other = reads(&mut client, "frank", "notes");
    assert_eq!(other["decision"], "deny", "{other}");
    // Both decisions, and more, within the lifetime: one fetch.
    for _ in 0..5 {
        assert_eq!(reads(&mut client, "dave", "notes")["decision"], "allow");
    }
    assert_eq!(service.hits(), 1);

    // An entity the store has is never asked for.
    let stored = reads(&mut client, "alice", "roadmap");
    assert_eq!(stored["decision"], "allow", "{stored}");
    assert_eq!(service.hits(), 1);

    // A 404: the missing entity is the cause, and the answer is remembered.
    let ghost = reads(&mut client, "dave", "ghost");
    assert_eq!(ghost["decision"], "deny");
    assert_eq!(
        ghost["reasons"][0], "entity `Document(\"ghost\")` does not exist",
        "{ghost}"
    );
    reads(&mut client, "dave", "ghost");
    assert_eq!(service.hits(), 2);

    // Concurrent requests for an entity not yet cached share one fetch.
    service.hold("busy", &document("busy", "dave"));
    let before = service.hits();
    let address = server.address;
    let deciders: Vec<_> = (0..6)
        .map(|_| {
            std::thread::spawn(move || {
                let mut client = Client::new(address);
                reads(&mut client, "dave", "busy")["decision"].clone()
            })
        })
        .collect();
    for decider in deciders {
        assert_eq!(decider.join().unwrap(), "allow");
    }
    assert_eq!(service.hits(), before + 1);

    let metrics = client.get("/metrics").text();
    assert!(
        metrics.contains(
            "authz_entity_provider_lookups_total{entity_type=\"Document\",result=\"found\"} 2"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "authz_entity_provider_lookups_total{entity_type=\"Document\",result=\"cached\"}"
        ),
        "{metrics}"
    );
}

#[test]
fn a_provider_that_fails_denies_naming_the_entity_and_the_provider() {
    let service = EntityService::start("/documents");
    let mut wrong = document("wrong", "dave");
    wrong["attrs"]["classification"] = json!("high");
    service.hold("wrong", &wrong);
    service.hold("other", &document("someone-else", "dave"));
    let fixture = Fixture::docs();
    let server = serve_with_provider(&fixture, &service, None);
    let mut client = server.client();

    for (id, problem) in [
        ("slow", "no answer within 300 ms"),
        ("wrong", "does not fit the schema"),
        ("other", "not the entity asked for"),
    ] {
        let answer = reads(&mut client, "dave", id);
        assert_eq!(answer["decision"], "deny", "{answer}");
        let error = &answer["errors"][0];
        assert_eq!(error["code"], "authz::provider::failed", "{answer}");
        assert_eq!(error["entity"], format!("Document({id:?})"));
        assert_eq!(
            error["provider"],
            format!("http://{}/documents/{id}", service.address)
        );
        assert!(
            error["message"].as_str().unwrap().contains(problem),
            "{id}: {answer}"
        );
    }

    // A provider that is down fails closed too.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let fixture = Fixture::docs();
    let server = serve_with_provider(
        &fixture,
        &service,
        Some(format!("http://{closed}/documents")),
    );
    let mut client = server.client();
    let answer = reads(&mut client, "dave", "notes");
    assert_eq!(answer["decision"], "deny", "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("request failed"),
        "{answer}"
    );
}
