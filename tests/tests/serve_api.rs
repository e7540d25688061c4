//! `authz serve`'s decision API end to end: decisions, batches, every kind of bad input answered
//! with a JSON error that names the field, the health endpoints and the metrics, against the real
//! binary on a loopback port.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod serve_support;

use serde_json::{json, Value as Json};
use serve_support::{metric, request, verdict, Fixture, Server};

#[test]
fn allow_names_the_permits_and_carries_obligations() {
    let fixture = Fixture::docs();
    let server = Server::docs(&fixture, &["--no-watch"]);
    let mut client = server.client();
    let response = client.decide(&request("bob", "read", ("Document", "roadmap")));
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{response:?}"
    );
    let body = response.json();
    assert_eq!(body["decision"], "allow", "{body}");
    assert_eq!(
        body["policies"],
        json!(["shared-read", "viewers-read"]),
        "{body}"
    );
    assert_eq!(body["errors"], json!([]), "{body}");
    assert_eq!(body["obligations"][0]["limit"], "tenant-api", "{body}");
}

#[test]
fn deny_names_the_forbids_and_their_reasons() {
    let fixture = Fixture::docs();
    let server = Server::docs(&fixture, &["--no-watch"]);
    let mut client = server.client();
    let mut erin = request("erin", "read", ("Document", "roadmap"));
    erin["explain"] = json!(true);
    let body = client.decide(&erin).json();
    assert_eq!(body["decision"], "deny", "{body}");
    assert_eq!(body["policies"], json!(["suspended-users"]), "{body}");
    assert_eq!(
        body["reasons"],
        json!(["this account is suspended"]),
        "{body}"
    );

    // Context is checked and used: request 10 of the example.
    let mut export = request("alice", "export", ("Document", "roadmap"));
    export["context"] = json!({"format": "html"});
    let (decision, policies) = verdict(&client.decide(&export));
    assert_eq!(
        (decision.as_str(), policies),
        ("deny", vec!["export-formats".to_string()])
    );
    export["context"] = json!({"format": "pdf"});
    assert_eq!(verdict(&client.decide(&export)).0, "allow");

    // An unknown entity is not bad input: the policies that read it fail closed.
    let body = client
        .decide(&request("nobody", "read", ("Document", "roadmap")))
        .json();
    assert_eq!(body["decision"], "deny", "{body}");
    assert!(!body["errors"].as_array().unwrap().is_empty(), "{body}");
    assert!(body.get("candidates").is_none(), "only asked for: {body}");

    // With `"explain": true`, a default deny names each candidate permit and where it fell short;
    // in a batch too.
    let mut dave = request("dave", "read", ("Document", "roadmap"));
    dave["explain"] = json!(true);
    let body = client.decide(&dave).json();
    let owners = body["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|candidate| candidate["policy"] == "owners")
        .cloned()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(owners["outcome"], "false");
    assert_eq!(owners["condition"], "when resource.owner == principal");
    assert!(
        owners["at"]
            .as_str()
            .unwrap()
            .ends_with("ownership.authz:6:1"),
        "{owners}"
    );
    let batch = client
        .post_json("/v1/decide/batch", &json!({ "requests": [dave] }))
        .json();
    assert_eq!(batch["results"][0]["candidates"], body["candidates"]);
}

#[test]
fn batch_answers_each_request_in_order() {
    let fixture = Fixture::docs();
    let server = Server::docs(&fixture, &["--no-watch"]);
    let mut client = server.client();
    let requests = json!({"requests": [
        request("bob", "read", ("Document", "roadmap")),
        request("dave", "read", ("Document", "roadmap")),
        request("dave", "read", ("Document", "budget-2025")),
        request("frank", "read", ("Document", "roadmap")),
    ]});
    let response = client.post_json("/v1/decide/batch", &requests);
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    let decisions: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| result["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["allow", "deny", "allow", "deny"]);
    assert_eq!(body["results"][3]["policies"], json!(["tenant-isolation"]));

    // An empty batch is fine; a bad member refuses the whole batch, naming its index.
    let body = client
        .post_json("/v1/decide/batch", &json!({"requests": []}))
        .json();
    assert_eq!(body, json!({"results": []}));
    let bad = json!({"requests": [
        request("bob", "read", ("Document", "roadmap")),
        request("bob", "raed", ("Document", "roadmap")),
    ]});
    let response = client.post_json("/v1/decide/batch", &bad);
    assert_eq!(response.status, 400, "{}", response.text());
    assert_eq!(response.json()["error"]["field"], "requests[1].action");
}

/// One bad input: what is sent, the status and the field the error must name.
struct BadInput {
    what: &'static str,
    path: &'static str,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    field: &'static str,
}

fn bad_inputs() -> Vec<BadInput> {
    let bob = request("bob", "read", ("Document", "roadmap"));
    let with = |edit: &dyn Fn(&mut Json)| {
        let mut body = bob.clone();
        edit(&mut body);
        body.to_string().into_bytes()
    };
    let mut export = request("alice", "export", ("Document", "roadmap"));
    export["context"] = json!({"format": 3});
    let very_deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    vec![
        BadInput {
            what: "malformed JSON",
            path: "/v1/decide",
            body: br#"{"principal": {"type": "User", "id": "bob"}, "action": "read""#.to_vec(),
            status: 400,
            code: "authz::request::syntax",
            field: "",
        },
        BadInput {
            what: "not UTF-8",
            path: "/v1/decide",
            body: b"{\"action\": \"\xff\xfe\"}".to_vec(),
            status: 400,
            code: "authz::request::syntax",
            field: "",
        },
        BadInput {
            what: "not an object",
            path: "/v1/decide",
            body: b"[1, 2]".to_vec(),
            status: 400,
            code: "authz::request::type_mismatch",
            field: "",
        },
        BadInput {
            what: "unknown entity type",
            path: "/v1/decide",
            body: with(&|body| body["principal"]["type"] = json!("Usr")),
            status: 400,
            code: "authz::request::unknown_type",
            field: "principal.type",
        },
        BadInput {
            what: "unknown action",
            path: "/v1/decide",
            body: with(&|body| body["action"] = json!("reed")),
            status: 400,
            code: "authz::request::unknown_action",
            field: "action",
        },
        BadInput {
            what: "action that does not take the resource type",
            path: "/v1/decide",
            body: with(&|body| body["action"] = json!("list")),
            status: 400,
            code: "authz::request::not_applicable",
            field: "resource.type",
        },
        BadInput {
            what: "wrong context type",
            path: "/v1/decide",
            body: export.to_string().into_bytes(),
            status: 400,
            code: "authz::request::type_mismatch",
            field: "context.format",
        },
        BadInput {
            what: "missing context field",
            path: "/v1/decide",
            body: {
                let mut body = export.clone();
                body["context"] = json!({});
                body.to_string().into_bytes()
            },
            status: 400,
            code: "authz::request::missing_field",
            field: "context.format",
        },
        BadInput {
            what: "missing field",
            path: "/v1/decide",
            body: with(&|body| {
                body.as_object_mut().unwrap().remove("resource");
            }),
            status: 400,
            code: "authz::request::missing_field",
            field: "resource",
        },
        BadInput {
            what: "missing id",
            path: "/v1/decide",
            body: with(&|body| {
                body["principal"].as_object_mut().unwrap().remove("id");
            }),
            status: 400,
            code: "authz::request::missing_field",
            field: "principal.id",
        },
        BadInput {
            what: "unknown field",
            path: "/v1/decide",
            body: with(&|body| body["actor"] = json!("bob")),
            status: 400,
            code: "authz::request::unknown_field",
            field: "actor",
        },
        BadInput {
            what: "unknown context field",
            path: "/v1/decide",
            body: with(&|body| body["context"] = json!({"x": 1})),
            status: 400,
            code: "authz::request::unknown_field",
            field: "context.x",
        },
        BadInput {
            what: "nesting too deep for any parser",
            path: "/v1/decide",
            body: very_deep.clone().into_bytes(),
            status: 400,
            code: "authz::request::too_deep",
            field: "",
        },
        BadInput {
            what: "duplicate key",
            path: "/v1/decide",
            body: br#"{"principal": {"type": "User", "id": "dave"}, "principal": {"type": "User", "id": "bob"}, "action": "read", "resource": {"type": "Document", "id": "roadmap"}}"#.to_vec(),
            status: 400,
            code: "authz::request::duplicate_key",
            field: "",
        },
        BadInput {
            what: "body over the size limit",
            path: "/v1/decide",
            body: format!("{{\"action\": \"{}\"}}", "a".repeat(2 << 20)).into_bytes(),
            status: 413,
            code: "authz::api::too_large",
            field: "",
        },
        BadInput {
            what: "batch without requests",
            path: "/v1/decide/batch",
            body: bob.to_string().into_bytes(),
            status: 400,
            code: "authz::request::missing_field",
            field: "requests",
        },
        BadInput {
            what: "batch with an unknown member",
            path: "/v1/decide/batch",
            body: json!({"requests": [], "explain": true}).to_string().into_bytes(),
            status: 400,
            code: "authz::request::unknown_field",
            field: "explain",
        },
        BadInput {
            what: "batch with a bad member",
            path: "/v1/decide/batch",
            body: json!({"requests": [bob, export]}).to_string().into_bytes(),
            status: 400,
            code: "authz::request::type_mismatch",
            field: "requests[1].context.format",
        },
        BadInput {
            what: "batch nested too deep",
            path: "/v1/decide/batch",
            body: format!("{{\"requests\": [{very_deep}]}}").into_bytes(),
            status: 400,
            code: "authz::request::too_deep",
            field: "",
        },
    ]
}

#[test]
fn bad_input_is_answered_with_an_error_naming_the_field() {
    let fixture = Fixture::docs();
    let mut server = Server::docs(&fixture, &["--no-watch"]);
    let mut client = server.client();
    let mut failures = Vec::new();
    let cases = bad_inputs();
    for case in &cases {
        let response = client.request("POST", case.path, &[], &case.body);
        let body: Json = serde_json::from_slice(&response.body).unwrap_or(Json::Null);
        let error = &body["error"];
        if response.status != case.status
            || error["code"] != case.code
            || error["field"] != case.field
            || !error["message"].is_string()
        {
            failures.push(format!(
                "{}: expected {} {} naming `{}`, got {} {}",
                case.what,
                case.status,
                case.code,
                case.field,
                response.status,
                response.text()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing panicked: the same process still answers, and counted every refusal.
    assert!(server.alive());
    let (decision, _) = verdict(&client.decide(&request("bob", "read", ("Document", "roadmap"))));
    assert_eq!(decision, "allow");
    let metrics = client.get("/metrics").text();
    assert_eq!(
        metric(&metrics, "authz_bad_requests_total"),
        cases.len() as f64
    );
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
    // Logs that go to a file carry no terminal colors.
    assert!(!server.stderr().contains('\x1b'), "{}", server.stderr());
}

#[test]
fn a_body_longer_than_declared_or_chunked_is_bounded_too() {
    let fixture = Fixture::docs();
    let config = fixture.path("authz.toml");
    std::fs::write(&config, "[server]\nmax_body_bytes = 1000\n").unwrap();
    let mut server = Server::docs(&fixture, &["--no-watch", "-c", config.to_str().unwrap()]);
    let mut client = server.client();
    // Chunked, with no length announced: the limit applies while reading.
    let chunk = "x".repeat(600);
    let message = format!(
        "POST /v1/decide HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len(),
        chunk.len()
    );
    let response = client.send_raw(message.as_bytes()).unwrap();
    assert_eq!(response.status, 413, "{}", response.text());
    let mut client = server.client();
    let response = client.request("POST", "/v1/decide", &[], &vec![b' '; 1001]);
    assert_eq!(response.status, 413, "{}", response.text());
    // A client that waits for `100 Continue` is refused at once and never invited to send.
    let mut client = server.client();
    let started = std::time::Instant::now();
    let response = client
        .send_raw(b"POST /v1/decide HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    assert_eq!(response.status, 413, "{}", response.text());
    assert!(started.elapsed() < std::time::Duration::from_millis(900));
    let mut client = server.client();
    let ok = request("bob", "read", ("Document", "roadmap"));
    assert_eq!(verdict(&client.decide(&ok)).0, "allow");
    assert!(server.alive());
}

#[test]
fn unknown_routes_and_methods() {
    let fixture = Fixture::docs();
    let server = Server::docs(&fixture, &["--no-watch"]);
    let mut client = server.client();
    for (method, path, status) in [
        ("GET", "/", 404),
        ("GET", "/v2/decide", 404),
        ("POST", "/v1/decide/", 404),
        ("GET", "/v1/decide", 405),
        ("DELETE", "/v1/decide/batch", 405),
        ("POST", "/healthz", 405),
        ("PUT", "/metrics", 405),
        ("POST", "/v1/policies", 405),
        ("POST", "/v1/policies/roles.authz", 405),
        ("GET", "/v1/policies/nope.authz", 404),
    ] {
        let response = client.request(method, path, &[], b"");
        assert_eq!(
            response.status,
            status,
            "{method} {path}: {}",
            response.text()
        );
        assert!(
            response.json()["error"]["code"].is_string(),
            "{method} {path}"
        );
    }
}

#[test]
fn health_readiness_and_metrics() {
    let fixture = Fixture::docs();
    let server = Server::docs(&fixture, &["--no-watch"]);
    let mut client = server.client();
    let health = client.get("/healthz");
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );
    let ready = client.get("/readyz");
    assert_eq!(ready.status, 200);
    let ready = ready.json();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["stale"], false, "{ready}");
    assert_eq!(ready["generation"], 1, "{ready}");
    assert_eq!(ready["policies"], 16, "{ready}");

    for _ in 0..3 {
        assert_eq!(
            verdict(&client.decide(&request("bob", "read", ("Document", "roadmap")))).0,
            "allow"
        );
    }
    for _ in 0..2 {
        assert_eq!(
            verdict(&client.decide(&request("dave", "read", ("Document", "roadmap")))).0,
            "deny"
        );
    }
    let batch = json!({"requests": [request("alice", "read", ("Document", "roadmap"))]});
    assert_eq!(client.post_json("/v1/decide/batch", &batch).status, 200);
    let response = client.get("/metrics");
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{response:?}"
    );
    let text = response.text();
    assert_eq!(
        metric(&text, r#"authz_decisions_total{decision="allow"}"#),
        4.0
    );
    assert_eq!(
        metric(&text, r#"authz_decisions_total{decision="deny"}"#),
        2.0
    );
    assert_eq!(metric(&text, "authz_decision_duration_seconds_count"), 6.0);
    assert_eq!(
        metric(
            &text,
            r#"authz_decision_duration_seconds_bucket{le="+Inf"}"#
        ),
        6.0
    );
    assert!(metric(&text, "authz_decision_duration_seconds_sum") > 0.0);
    assert_eq!(
        metric(&text, r#"authz_policy_reloads_total{result="ok"}"#),
        1.0
    );
    assert_eq!(
        metric(&text, r#"authz_policy_reloads_total{result="error"}"#),
        0.0
    );
    assert_eq!(metric(&text, "authz_policies_loaded"), 16.0);
    assert!(
        text.contains("# TYPE authz_decision_duration_seconds histogram"),
        "{text}"
    );
    // Histogram buckets are cumulative.
    let buckets: Vec<f64> = text
        .lines()
        .filter(|line| line.starts_with("authz_decision_duration_seconds_bucket"))
        .map(|line| line.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    assert!(buckets.windows(2).all(|pair| pair[0] <= pair[1]), "{text}");
}

#[test]
fn entities_sent_with_a_request_count_for_that_request_only() {
    let fixture = Fixture::docs();
    let server = Server::docs(&fixture, &["--no-watch"]);
    let mut client = server.client();
    let zed = json!({
        "type": "User", "id": "zed",
        "attrs": {"tenant": {"type": "Tenant", "id": "acme"}, "email": "z@acme.example", "clearance": 2, "trainings": []},
        "parents": [{"type": "Role", "id": "acme-viewers"}],
    });
    let mut with_entities = request("zed", "read", ("Document", "roadmap"));
    with_entities["entities"] = json!([zed]);
    let body = client.decide(&with_entities).json();
    assert_eq!(body["decision"], "allow", "{body}");
    assert_eq!(body["policies"], json!(["viewers-read"]), "{body}");
    // The next request does not see zed: the store was not changed.
    let body = client
        .decide(&request("zed", "read", ("Document", "roadmap")))
        .json();
    assert_eq!(body["decision"], "deny", "{body}");
    assert!(
        body["errors"].to_string().contains("does not exist"),
        "{body}"
    );
    // Request entities are validated like the entities file, naming the field.
    let mut bad = request("zed", "read", ("Document", "roadmap"));
    bad["entities"] =
        json!([{"type": "User", "id": "zed", "attrs": {"clearance": "high"}, "parents": []}]);
    let response = client.decide(&bad);
    assert_eq!(response.status, 400, "{response:?}");
    assert_eq!(
        response.json()["error"]["field"],
        "entities[0].attrs.clearance"
    );
}

#[test]
fn a_single_request_may_be_as_large_as_the_configured_limit() {
    let fixture = Fixture::docs();
    let config = fixture.path("authz.toml");
    std::fs::write(&config, "[server]\nmax_body_bytes = 4000000\n").unwrap();
    let mut server = Server::docs(&fixture, &["--no-watch", "-c", config.to_str().unwrap()]);
    let mut client = server.client();
    // 1.5 MB, over the runtime's 1 MiB text parser: whitespace around a request bob may make.
    let body = format!(
        "{}{}",
        request("bob", "read", ("Document", "roadmap")),
        " ".repeat(1_500_000)
    );
    let response = client.request("POST", "/v1/decide", &[], body.as_bytes());
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(verdict(&response).0, "allow");
    // Its errors name the field, as for any request.
    let body = format!("{{\"actor\": 1}}{}", " ".repeat(1_500_000));
    let response = client.request("POST", "/v1/decide", &[], body.as_bytes());
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(server.alive());
}
