//! `authz serve`'s entity data API end to end: an upsert changes the very next decision, a batch
//! with one invalid entity changes nothing and names the entity and attribute, a delete takes an
//! entity away, `PUT` replaces them all, writes need the admin token, and accepted writes survive
//! a restart.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod serve_support;

use serde_json::{json, Value as Json};
use serve_support::{generation, request, verdict, Client, Fixture, Response, Server};

const TOKEN: &str = "entities-admin-token-42";

fn with_token(fixture: &Fixture) -> Server {
    let config = fixture.path("authz.toml");
    std::fs::write(&config, format!("[server]\nadmin_token = \"{TOKEN}\"\n")).unwrap();
    Server::docs(fixture, &["-c", config.to_str().unwrap()])
}

fn send(
    client: &mut Client,
    method: &str,
    path: &str,
    body: Option<&Json>,
    token: bool,
) -> Response {
    let bearer = format!("Bearer {TOKEN}");
    let mut headers = vec![("Content-Type", "application/json")];
    if token {
        headers.push(("Authorization", bearer.as_str()));
    }
    let body = body.map(Json::to_string).unwrap_or_default();
    client.request(method, path, &headers, body.as_bytes())
}

/// `Document("notes")`, owned by dave, in his tenant, readable at his clearance.
fn dave_notes(id: &str) -> Json {
    json!({
        "type": "Document", "id": id,
        "attrs": {
            "tenant": {"type": "Tenant", "id": "acme"},
            "owner": {"type": "User", "id": "dave"},
            "classification": 1, "labels": [], "requiredTrainings": [],
            "readers": {"type": "Group", "id": "acme-roadmap-readers"}
        },
        "parents": [{"type": "Folder", "id": "acme-eng"}]
    })
}

fn dave_reads(client: &mut Client, document: &str) -> (String, Vec<String>) {
    verdict(&client.decide(&request("dave", "read", ("Document", document))))
}

#[test]
fn an_upsert_changes_the_next_decision_and_survives_a_restart() {
    let fixture = Fixture::docs();
    let mut server = with_token(&fixture);
    let mut client = server.client();
    assert_eq!(dave_reads(&mut client, "notes").0, "deny");

    // Writes and reads take the token.
    let refused = send(
        &mut client,
        "POST",
        "/v1/entities",
        Some(&json!([dave_notes("notes")])),
        false,
    );
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert_eq!(
        send(&mut client, "GET", "/v1/entities", None, false).status,
        401
    );

    let before = generation(&mut client);
    let response = send(
        &mut client,
        "POST",
        "/v1/entities",
        Some(&json!([dave_notes("notes")])),
        true,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let answer = response.json();
    assert_eq!(answer["result"], "upserted");
    assert_eq!(answer["count"], 1);
    assert!(answer["generation"].as_u64().unwrap() > before);
    let (decision, policies) = dave_reads(&mut client, "notes");
    assert_eq!(decision, "allow");
    assert_eq!(policies, ["owners"]);

    // One entity reads back as written.
    let one = send(
        &mut client,
        "GET",
        "/v1/entities/Document/notes",
        None,
        true,
    );
    assert_eq!(one.status, 200, "{}", one.text());
    assert_eq!(one.json()["entity"]["attrs"]["owner"]["id"], "dave");
    let none = send(
        &mut client,
        "GET",
        "/v1/entities/Document/nothing",
        None,
        true,
    );
    assert_eq!(none.status, 404);
    assert_eq!(none.json()["error"]["code"], "authz::api::no_such_entity");

    // Upserting the same entity again replaces it: now someone else's, in another tenant.
    let mut moved = dave_notes("notes");
    moved["attrs"]["owner"]["id"] = json!("alice");
    moved["attrs"]["tenant"]["id"] = json!("globex");
    let response = send(
        &mut client,
        "POST",
        "/v1/entities",
        Some(&json!([moved])),
        true,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(dave_reads(&mut client, "notes").0, "deny");
    let response = send(
        &mut client,
        "POST",
        "/v1/entities",
        Some(&json!([dave_notes("notes")])),
        true,
    );
    assert_eq!(response.status, 200, "{}", response.text());

    // The write is in the entities file: a restart serves it.
    server.signal("TERM");
    server.wait_exit();
    let server = with_token(&fixture);
    let mut client = server.client();
    assert_eq!(dave_reads(&mut client, "notes").0, "allow");
}

#[test]
fn a_batch_with_one_invalid_entity_changes_nothing_and_names_it() {
    let fixture = Fixture::docs();
    let server = with_token(&fixture);
    let mut client = server.client();
    let before = generation(&mut client);
    let file_before = std::fs::read_to_string(&fixture.entities).unwrap();

    let mut bad = dave_notes("bad");
    bad["attrs"]["classification"] = json!("high");
    let batch = json!([dave_notes("good"), bad]);
    let response = send(&mut client, "POST", "/v1/entities", Some(&batch), true);
    assert_eq!(response.status, 400, "{}", response.text());
    let error = &response.json()["error"];
    assert_eq!(error["code"], "authz::api::entities_rejected");
    assert_eq!(
        error["message"],
        "wrong type for attribute `classification` of `Document(\"bad\")`: expected `Long`, found the string `\"high\"`"
    );
    assert_eq!(
        error["details"][0]["code"],
        "authz::entities::type_mismatch"
    );

    // Nothing changed: not the good entity, not the generation, not the file.
    assert_eq!(dave_reads(&mut client, "good").0, "deny");
    assert_eq!(
        send(&mut client, "GET", "/v1/entities/Document/good", None, true).status,
        404
    );
    assert_eq!(generation(&mut client), before);
    assert_eq!(
        std::fs::read_to_string(&fixture.entities).unwrap(),
        file_before
    );

    // Malformed JSON and a body that is not a list are refused the same way.
    for body in ["{", "{\"type\": \"User\"}"] {
        let response = client.request(
            "POST",
            "/v1/entities",
            &[("Authorization", &format!("Bearer {TOKEN}"))],
            body.as_bytes(),
        );
        assert_eq!(response.status, 400, "{body}: {}", response.text());
    }
}

#[test]
fn delete_and_replace_change_what_is_served() {
    let fixture = Fixture::docs();
    let server = with_token(&fixture);
    let mut client = server.client();
    let response = send(
        &mut client,
        "POST",
        "/v1/entities",
        Some(&json!([dave_notes("notes")])),
        true,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(dave_reads(&mut client, "notes").0, "allow");

    let response = send(
        &mut client,
        "DELETE",
        "/v1/entities/Document/notes",
        None,
        true,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["result"], "deleted");
    assert_eq!(dave_reads(&mut client, "notes").0, "deny");
    let again = send(
        &mut client,
        "DELETE",
        "/v1/entities/Document/notes",
        None,
        true,
    );
    assert_eq!(again.status, 404);

    // `PUT` serves exactly the list given: everything served, plus one.
    let all = send(&mut client, "GET", "/v1/entities", None, true).json();
    let mut entities = all["entities"].as_array().unwrap().clone();
    let served = entities.len();
    entities.push(dave_notes("replaced"));
    let response = send(
        &mut client,
        "PUT",
        "/v1/entities",
        Some(&Json::Array(entities)),
        true,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["entities"], served + 1);
    assert_eq!(dave_reads(&mut client, "replaced").0, "allow");
    // Alice's roadmap is still there.
    assert_eq!(
        send(
            &mut client,
            "GET",
            "/v1/entities/Document/roadmap",
            None,
            true
        )
        .status,
        200
    );
}
