//! `authz serve`'s clock: with `[clock] field = "now"`, the decision API fills `context.now` of
//! every request whose action takes it with the server's clock (fixed here by `[clock] fixed`),
//! and refuses a request that sends its own.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod serve_support;

use serde_json::json;
use serve_support::Server;

const DOORS: &str = r#"
entity User;
entity Guard;
entity Door;
action read: User -> Door;
action open: Guard -> Door with { now: Timestamp };

@id("business-hours")
permit principal: Guard, action: open, resource: Door
when context.now.dayOfWeek("Europe/Berlin") <= 5
  && context.now.timeOfDay("Europe/Berlin") >= duration("9h")
  && context.now.timeOfDay("Europe/Berlin") < duration("17h");
"#;

fn serve_at(now: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("doors.authz"), DOORS).unwrap();
    let config = dir.path().join("authz.toml");
    std::fs::write(
        &config,
        format!("[clock]\nfixed = \"{now}\"\nfield = \"now\"\n"),
    )
    .unwrap();
    let server = Server::serve(
        &[
            "-p",
            policies.to_str().unwrap(),
            "-c",
            config.to_str().unwrap(),
        ],
        &dir.path().join("stderr"),
    );
    (dir, server)
}

fn open() -> serde_json::Value {
    json!({
        "principal": {"type": "Guard", "id": "g1"},
        "action": "open",
        "resource": {"type": "Door", "id": "front"},
    })
}

#[test]
fn the_server_clock_decides_business_hours_across_a_daylight_saving_change() {
    // Monday after Berlin's spring change: 07:30 UTC is 09:30 local (open), 06:30 UTC 08:30.
    for (now, expected) in [
        ("2026-03-30T07:30:00Z", "allow"),
        ("2026-03-30T06:30:00Z", "deny"),
        ("2026-03-27T07:30:00Z", "deny"),
        ("2026-03-27T08:30:00Z", "allow"),
    ] {
        let (_fixture, server) = serve_at(now);
        let mut client = server.client();
        let response = client.decide(&open());
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.json()["decision"], expected, "at {now}");
        // Batches are stamped too.
        let batch = client.post_json("/v1/decide/batch", &json!({ "requests": [open()] }));
        assert_eq!(batch.json()["results"][0]["decision"], expected, "at {now}");
    }
}

#[test]
fn a_request_cannot_bring_its_own_time() {
    let (_fixture, server) = serve_at("2026-03-29T10:00:00Z");
    let mut client = server.client();
    let mut request = open();
    request["context"] = json!({ "now": "2026-03-30T10:00:00Z" });
    let response = client.decide(&request);
    assert_eq!(response.status, 400, "{}", response.text());
    let error = &response.json()["error"];
    assert_eq!(error["code"], "authz::request::reserved_field");
    assert_eq!(error["field"], "context.now");
    // Actions without the field are untouched.
    let read = client.decide(&json!({
        "principal": {"type": "User", "id": "u"},
        "action": "read",
        "resource": {"type": "Door", "id": "front"},
    }));
    assert_eq!(read.status, 200, "{}", read.text());
}
