//! `authz replay` end to end on the shop example: the real proxy serves a handful of requests
//! with real ES256 tokens minted from the example's development key and writes its audit log;
//! a policy edit then changes some of those decisions, and `authz replay` must list exactly those
//! (and nothing when the policies are unchanged). Requests refused before a decision (no token,
//! an encoded slash) say nothing about the policies and are skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod proxy_support;
mod serve_support;

use std::path::Path;
use std::process::Command;

use proxy_support::{bearer, Upstream};
use serde_json::Value as Json;
use serve_support::{authz_binary, Server};

/// Copies the shop example (policies, entities, development keys) into `to`.
fn copy_shop(to: &Path) {
    let shop = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop");
    for entry in std::fs::read_dir(&shop).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        if path.is_dir() {
            std::fs::create_dir_all(to.join(name)).unwrap();
            for inner in std::fs::read_dir(&path).unwrap() {
                let inner = inner.unwrap().path();
                std::fs::copy(&inner, to.join(name).join(inner.file_name().unwrap())).unwrap();
            }
        } else if path
            .extension()
            .is_some_and(|ext| ext == "authz" || ext == "json")
        {
            std::fs::copy(&path, to.join(name)).unwrap();
        }
    }
}

fn token(dir: &Path, sub: &str) -> String {
    let output = Command::new(authz_binary())
        .args(["token", "--key"])
        .arg(dir.join("dev/dev-es256.pem"))
        .args([
            "--kid",
            "shop-dev-1",
            "--iss",
            "https://auth.shop.example",
            "--aud",
            "shop-api",
            "--sub",
            sub,
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// Runs `authz replay LOG -p DIR -e ENTITIES --json`: the changed decisions and the summary.
fn replay(dir: &Path, log: &Path) -> (Vec<Json>, String) {
    let output = Command::new(authz_binary())
        .arg("replay")
        .arg(log)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("entities.json"))
        .args(["--json", "--exit-code"])
        .output()
        .unwrap();
    let changed: Vec<Json> = String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let expected = if changed.is_empty() { 0 } else { 3 };
    assert_eq!(output.status.code(), Some(expected), "{output:?}");
    (changed, String::from_utf8(output.stderr.clone()).unwrap())
}

#[test]
fn replay_lists_exactly_the_logged_decisions_a_policy_edit_changes() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    copy_shop(dir);
    let upstream = Upstream::start();
    let log = dir.join("audit.log");
    let config = format!(
        r#"
[proxy]
mode = "forward"

[policies]
dir = "."
entities = "entities.json"

[decision_log]
path = "audit.log"

[[upstream]]
name = "shop"
url = "http://{upstream}"
prefix = "/"

[[identity.jwt]]
issuer = "https://auth.shop.example"
audiences = ["shop-api"]
algorithms = ["ES256"]
jwks_file = "dev/jwks.json"
principal_type = "User"

[context]
mfa = "header:x-mfa"
amount = "query:amount"
"client.ip" = "client_ip"
"client.userAgent" = "header:user-agent"
"#,
        upstream = upstream.address
    );
    std::fs::write(dir.join("proxy.toml"), config).unwrap();
    let mut server = Server::start(
        &[
            "proxy".to_string(),
            "-c".to_string(),
            dir.join("proxy.toml").display().to_string(),
            "--listen".to_string(),
            "127.0.0.1:0".to_string(),
        ],
        &dir.join("proxy.err"),
    );
    let (alice, bob, carol) = (
        bearer(&token(dir, "alice")),
        bearer(&token(dir, "bob")),
        bearer(&token(dir, "carol")),
    );
    let requests: &[(&str, &str, Option<&str>, u16)] = &[
        ("alice", "/orders/o-100", Some(&alice), 200),
        ("alice", "/orders/o-101", Some(&alice), 403),
        ("carol", "/orders/o-101", Some(&carol), 200),
        ("bob", "/orders/o-101", Some(&bob), 200),
        ("alice", "/orders/o-102", Some(&alice), 200),
        ("nobody", "/orders/o-100", None, 401),
        ("alice", "/orders%2Fo-101", Some(&alice), 400),
    ];
    for (who, target, authorization, status) in requests {
        let id = format!("{who}-{}", target.replace('/', "_"));
        let mut headers = vec![("X-Request-Id", id.as_str())];
        if let Some(authorization) = authorization {
            headers.push(("Authorization", authorization));
        }
        let response = server.client().request("GET", target, &headers, b"");
        assert_eq!(
            response.status,
            *status,
            "{who} {target}: {}",
            response.text()
        );
    }
    server.signal("TERM");
    assert!(server.wait_exit().success());

    // The same policies: nothing changes; two lines were not decided by the policies.
    let (changed, summary) = replay(dir, &log);
    assert!(changed.is_empty(), "{changed:#?}");
    assert!(summary.contains("replayed 5 decisions"), "{summary}");
    assert!(summary.contains("2 lines not decided"), "{summary}");

    // The edit: support may no longer read delivered orders, nobody reads shipped ones, and
    // alice may read o-101.
    std::fs::write(
        dir.join("edit.authz"),
        r#"
@id("support-not-delivered")
forbid principal: User, action: readOrder, resource: Order
when resource.status == "delivered" && principal.roles.contains("support");

@id("shipped-sealed")
forbid principal: User, action: readOrder, resource: Order
when resource.status == "shipped";

@id("alice-reads-o-101")
permit principal == User("alice"), action: readOrder, resource == Order("o-101");
"#,
    )
    .unwrap();
    let (changed, summary) = replay(dir, &log);
    let list: Vec<(String, String, String)> = changed
        .iter()
        .map(|line| {
            (
                line["request_id"].as_str().unwrap().to_string(),
                line["was"].as_str().unwrap().to_string(),
                line["now"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        list,
        vec![
            (
                "alice-_orders_o-101".to_string(),
                "deny".to_string(),
                "allow".to_string()
            ),
            (
                "carol-_orders_o-101".to_string(),
                "allow".to_string(),
                "deny".to_string()
            ),
            (
                "alice-_orders_o-102".to_string(),
                "allow".to_string(),
                "deny".to_string()
            ),
        ],
        "{changed:#?}"
    );
    assert!(summary.contains("3 would change"), "{summary}");
    let carol_line = &changed[1];
    assert_eq!(carol_line["target"], "/orders/o-101");
    assert!(
        carol_line["policies"]
            .to_string()
            .contains("support-not-delivered"),
        "{carol_line}"
    );
}
