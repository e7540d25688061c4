//! `authz serve`'s policy API end to end: writes need the admin token, a good `PUT` or `DELETE`
//! changes the next decisions and survives a restart, a broken one answers 400 with the
//! compiler's diagnostics and changes nothing, and names that leave the policy directory are
//! refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod serve_support;

use serde_json::json;
use serve_support::{
    dave_reads_roadmap, flip_policy, generation, verdict, Client, Fixture, Response, Server,
    BROKEN_POLICY,
};

const TOKEN: &str = "s3cret-admin-token-0123";

fn with_token(fixture: &Fixture) -> Server {
    let config = fixture.path("authz.toml");
    std::fs::write(&config, format!("[server]\nadmin_token = \"{TOKEN}\"\n")).unwrap();
    Server::docs(fixture, &["-c", config.to_str().unwrap()])
}

fn put(client: &mut Client, name: &str, text: &str, token: Option<&str>) -> Response {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let mut headers = vec![("Content-Type", "text/plain")];
    if let Some(bearer) = &bearer {
        headers.push(("Authorization", bearer));
    }
    client.request(
        "PUT",
        &format!("/v1/policies/{name}"),
        &headers,
        text.as_bytes(),
    )
}

fn delete(client: &mut Client, name: &str, token: Option<&str>) -> Response {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|bearer| ("Authorization", bearer.as_str()))
        .collect();
    client.request("DELETE", &format!("/v1/policies/{name}"), &headers, b"")
}

fn decision(client: &mut Client) -> (String, Vec<String>) {
    verdict(&client.decide(&dave_reads_roadmap()))
}

/// `GET` with the admin token (policy reads take it when one is configured).
fn read(client: &mut Client, path: &str) -> Response {
    let authorization = format!("Bearer {TOKEN}");
    client.request("GET", path, &[("Authorization", &authorization)], b"")
}

fn file_names(client: &mut Client) -> Vec<String> {
    let response = read(client, "/v1/policies");
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn put_and_delete_change_the_next_decisions_and_survive_a_restart() {
    let fixture = Fixture::docs();
    let server = with_token(&fixture);
    let mut client = server.client();
    assert_eq!(decision(&mut client).0, "deny");

    let response = put(
        &mut client,
        "flip.authz",
        &flip_policy("flip-1", true),
        Some(TOKEN),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["result"], "written");
    // The very next decision sees it: no waiting for a watcher.
    assert_eq!(
        decision(&mut client),
        ("allow".to_string(), vec!["flip-1".to_string()])
    );
    assert!(file_names(&mut client).contains(&"flip.authz".to_string()));
    let listed = read(&mut client, "/v1/policies").json();
    let flip = listed["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|file| file["name"] == "flip.authz")
        .unwrap()
        .clone();
    assert_eq!(flip["policies"], json!(["flip-1"]), "{listed}");
    let text = read(&mut client, "/v1/policies/flip.authz");
    assert_eq!(
        (text.status, text.text()),
        (200, flip_policy("flip-1", true))
    );
    assert_eq!(
        std::fs::read_to_string(fixture.policies.join("flip.authz")).unwrap(),
        flip_policy("flip-1", true)
    );

    // Replacing it, in a subdirectory too.
    let response = put(
        &mut client,
        "team/extra.authz",
        &flip_policy("extra", false),
        Some(TOKEN),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let (outcome, policies) = decision(&mut client);
    assert_eq!(
        (outcome.as_str(), policies),
        ("deny", vec!["extra".to_string()])
    );
    assert!(fixture.policies.join("team/extra.authz").is_file());

    // A restart on the same directory keeps both writes.
    drop(server);
    let server = with_token(&fixture);
    let mut client = server.client();
    assert_eq!(decision(&mut client).1, ["extra"]);

    // DELETE removes a file, from the set and from disk.
    let response = delete(&mut client, "team/extra.authz", Some(TOKEN));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["result"], "deleted");
    assert_eq!(
        decision(&mut client),
        ("allow".to_string(), vec!["flip-1".to_string()])
    );
    assert!(!fixture.policies.join("team/extra.authz").exists());
    assert_eq!(
        delete(&mut client, "team/extra.authz", Some(TOKEN)).status,
        404
    );
    drop(server);
    let server = with_token(&fixture);
    let mut client = server.client();
    assert_eq!(decision(&mut client).1, ["flip-1"]);
}

#[test]
fn a_broken_write_answers_diagnostics_and_changes_nothing() {
    let fixture = Fixture::docs();
    let server = with_token(&fixture);
    let mut client = server.client();
    assert_eq!(
        put(
            &mut client,
            "flip.authz",
            &flip_policy("flip-1", true),
            Some(TOKEN)
        )
        .status,
        200
    );
    let before_generation = generation(&mut client);
    let before_files = file_names(&mut client);

    for (name, text, file) in [
        // A syntax error.
        ("flip.authz", BROKEN_POLICY, "flip.authz"),
        // A type error in a new file.
        (
            "typo.authz",
            "permit principal: User, action: read, resource: Document when principal.clearence > 1;\n",
            "typo.authz",
        ),
    ] {
        let response = put(&mut client, name, text, Some(TOKEN));
        assert_eq!(response.status, 400, "{}", response.text());
        let error = response.json()["error"].clone();
        assert_eq!(error["code"], "authz::api::policy_rejected", "{error}");
        assert!(!error["message"].as_str().unwrap().is_empty(), "{error}");
        let details = error["details"].as_array().unwrap();
        assert!(!details.is_empty(), "{error}");
        let first = &details[0];
        assert!(first["code"].as_str().unwrap().starts_with("authz::"), "{error}");
        let shown = first.to_string();
        assert!(shown.contains(file), "no file in {first}");
        assert!(shown.contains("\"line\""), "no line in {first}");
    }
    // Deleting the schema would break every other file.
    let response = delete(&mut client, "schema.authz", Some(TOKEN));
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(!response.json()["error"]["details"]
        .as_array()
        .unwrap()
        .is_empty());

    assert_eq!(
        decision(&mut client),
        ("allow".to_string(), vec!["flip-1".to_string()])
    );
    assert_eq!(generation(&mut client), before_generation);
    assert_eq!(file_names(&mut client), before_files);
    assert_eq!(
        std::fs::read_to_string(fixture.policies.join("flip.authz")).unwrap(),
        flip_policy("flip-1", true)
    );
    assert!(!fixture.policies.join("typo.authz").exists());
    assert!(fixture.policies.join("schema.authz").exists());
}

#[test]
fn writes_need_the_admin_token() {
    let fixture = Fixture::docs();
    let server = with_token(&fixture);
    let mut client = server.client();
    let text = flip_policy("flip-1", true);
    for token in [
        None,
        Some("wrong-token-but-long-enough"),
        Some(&TOKEN[1..]),
        Some(""),
    ] {
        let response = put(&mut client, "flip.authz", &text, token);
        assert_eq!(response.status, 401, "{token:?}: {}", response.text());
        assert_eq!(response.json()["error"]["code"], "authz::api::unauthorized");
        assert_eq!(
            delete(&mut client, "roles.authz", token).status,
            401,
            "{token:?}"
        );
    }
    // Not a bearer token.
    let response = client.request(
        "PUT",
        "/v1/policies/flip.authz",
        &[("Authorization", &format!("Basic {TOKEN}"))],
        text.as_bytes(),
    );
    assert_eq!(response.status, 401);
    assert_eq!(decision(&mut client).0, "deny");
    assert!(!fixture.policies.join("flip.authz").exists());
    assert!(fixture.policies.join("roles.authz").exists());
    // Reading needs the token too: policy text is sensitive.
    assert_eq!(client.get("/v1/policies").status, 401);
    assert_eq!(client.get("/v1/policies/roles.authz").status, 401);
    assert_eq!(read(&mut client, "/v1/policies").status, 200);
}

#[test]
fn without_a_configured_token_writes_are_off() {
    let fixture = Fixture::docs();
    let server = Server::docs(&fixture, &[]);
    let mut client = server.client();
    let text = flip_policy("flip-1", true);
    for token in [None, Some(TOKEN)] {
        let response = put(&mut client, "flip.authz", &text, token);
        assert_eq!(response.status, 403, "{}", response.text());
        assert_eq!(
            response.json()["error"]["code"],
            "authz::api::writes_disabled"
        );
        assert_eq!(delete(&mut client, "roles.authz", token).status, 403);
    }
    assert_eq!(decision(&mut client).0, "deny");
    assert!(!fixture.policies.join("flip.authz").exists());
}

#[test]
fn names_outside_the_policy_directory_are_refused() {
    let fixture = Fixture::docs();
    let server = with_token(&fixture);
    let mut client = server.client();
    let text = flip_policy("flip-1", true);
    for name in [
        "../x.authz",
        "team/../../x.authz",
        "%2e%2e/x.authz",
        "..%2Fx.authz",
        "/x.authz",
        "./x.authz",
        ".hidden.authz",
        "x.txt",
        "x.authz/",
        "a//x.authz",
        "x\\..\\y.authz",
    ] {
        let response = put(&mut client, name, &text, Some(TOKEN));
        assert_eq!(response.status, 400, "{name}: {}", response.text());
        assert_eq!(response.json()["error"]["field"], "name", "{name}");
        let response = delete(&mut client, name, Some(TOKEN));
        assert!(
            matches!(response.status, 400 | 404),
            "{name}: {}",
            response.text()
        );
    }
    assert!(!fixture.temp.path().join("x.authz").exists());
    assert!(!fixture.policies.join("x.authz").exists());
    assert_eq!(decision(&mut client).0, "deny");
}
