//! Hot reload of `authz serve` under load: while client threads send decisions without pause, the
//! policy directory changes 50 times (good sets that flip a decision, and broken ones). No request
//! fails, every answer matches the policy set it names, a good set is served as soon as it is
//! loaded, a broken one never replaces the last good one and is reported by `/readyz` and
//! `/metrics`. Also SIGHUP with `--no-watch`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod serve_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use serve_support::{
    dave_reads_roadmap, flip_policy, generation, metric, readyz, verdict, wait_until, Client,
    Fixture, Server, BROKEN_POLICY,
};

const RELOADS: usize = 50;

/// Reload `index` is broken when `index % 5 == 3`; the others alternate permit (even) and
/// forbid (odd), each with the policy id `flip-<index>`.
fn is_broken(index: usize) -> bool {
    index % 5 == 3
}

/// The flip index named by a decision on `dave_reads_roadmap`, checked against its outcome.
fn flip_index(decision: &str, policies: &[String]) -> Result<usize, String> {
    let [id] = policies else {
        return Err(format!("expected one determining policy, got {policies:?}"));
    };
    let index: usize = id
        .strip_prefix("flip-")
        .and_then(|index| index.parse().ok())
        .ok_or_else(|| format!("unexpected policy {id}"))?;
    let expected = if index.is_multiple_of(2) {
        "allow"
    } else {
        "deny"
    };
    if decision != expected || is_broken(index) {
        return Err(format!("{decision} by {id}"));
    }
    Ok(index)
}

/// What one load thread saw.
#[derive(Debug, Default)]
struct Tally {
    decisions: u64,
    failures: Vec<String>,
}

/// Sends decisions until `stop`, on one keep-alive connection, in batches of `batch` (0: single
/// requests). Each answer must name a flip policy no older than the one before.
fn load(server: std::net::SocketAddr, stop: Arc<AtomicBool>, batch: usize) -> Tally {
    let mut client = Client::new(server);
    let mut tally = Tally::default();
    let mut newest = 0;
    while !stop.load(Ordering::Relaxed) && tally.failures.len() < 10 {
        let answers = if batch == 0 {
            match client.try_request(
                "POST",
                "/v1/decide",
                &[],
                dave_reads_roadmap().to_string().as_bytes(),
            ) {
                Ok(response) if response.status == 200 => vec![response.json()],
                Ok(response) => {
                    tally
                        .failures
                        .push(format!("{} {}", response.status, response.text()));
                    continue;
                }
                Err(error) => {
                    tally.failures.push(format!("transport: {error}"));
                    continue;
                }
            }
        } else {
            let body = json!({"requests": vec![dave_reads_roadmap(); batch]});
            match client.try_request("POST", "/v1/decide/batch", &[], body.to_string().as_bytes()) {
                Ok(response) if response.status == 200 => response.json()["results"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                Ok(response) => {
                    tally
                        .failures
                        .push(format!("{} {}", response.status, response.text()));
                    continue;
                }
                Err(error) => {
                    tally.failures.push(format!("transport: {error}"));
                    continue;
                }
            }
        };
        if batch != 0 && answers.len() != batch {
            tally
                .failures
                .push(format!("batch of {batch} answered {}", answers.len()));
        }
        let mut indexes = Vec::new();
        for answer in &answers {
            let decision = answer["decision"].as_str().unwrap_or("").to_string();
            let policies: Vec<String> = answer["policies"]
                .as_array()
                .map(|ids| {
                    ids.iter()
                        .filter_map(|id| id.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            match flip_index(&decision, &policies) {
                Ok(index) => indexes.push(index),
                Err(error) => tally.failures.push(error),
            }
            tally.decisions += 1;
        }
        // A batch is decided against one snapshot.
        if indexes.windows(2).any(|pair| pair[0] != pair[1]) {
            tally
                .failures
                .push(format!("one batch saw several sets: {indexes:?}"));
        }
        for index in indexes {
            if index < newest {
                tally
                    .failures
                    .push(format!("went back from flip-{newest} to flip-{index}"));
            }
            newest = newest.max(index);
        }
    }
    tally
}

#[test]
fn fifty_reloads_under_load_fail_no_request() {
    let fixture = Fixture::docs();
    fixture.write_policy("flip.authz", &flip_policy("flip-0", true));
    let server = Server::docs(&fixture, &[]);
    let mut control = server.client();
    assert_eq!(
        verdict(&control.decide(&dave_reads_roadmap())),
        ("allow".to_string(), vec!["flip-0".to_string()])
    );

    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = [0, 0, 8]
        .into_iter()
        .map(|batch| {
            let stop = stop.clone();
            let address = server.address;
            std::thread::spawn(move || load(address, stop, batch))
        })
        .collect();

    let started = Instant::now();
    let mut last_good = 0;
    let mut broken = 0.0;
    for index in 1..=RELOADS {
        let before = generation(&mut control);
        if is_broken(index) {
            fixture.write_policy("flip.authz", BROKEN_POLICY);
            broken += 1.0;
            wait_until("the broken set to be reported", || {
                let metrics = control.get("/metrics").text();
                metric(&metrics, r#"authz_policy_reloads_total{result="error"}"#) >= broken
            });
            let ready = readyz(&mut control);
            assert_eq!(ready["ready"], true, "{ready}");
            assert_eq!(ready["stale"], true, "{ready}");
            assert_eq!(ready["generation"], before, "{ready}");
            let error = ready["last_error"].as_str().unwrap_or_default();
            assert!(error.contains("flip.authz"), "{ready}");
        } else {
            fixture.write_policy(
                "flip.authz",
                &flip_policy(&format!("flip-{index}"), index.is_multiple_of(2)),
            );
            wait_until("the new set to be served", || {
                generation(&mut control) > before
            });
            let ready = readyz(&mut control);
            assert_eq!(ready["stale"], false, "{ready}");
            assert_eq!(ready["last_error"], serde_json::Value::Null, "{ready}");
            last_good = index;
        }
        // From here on every decision follows the last good set.
        let (decision, policies) = verdict(&control.decide(&dave_reads_roadmap()));
        assert_eq!(
            flip_index(&decision, &policies),
            Ok(last_good),
            "after reload {index}: {decision} {policies:?}"
        );
    }
    let reloading = started.elapsed();
    // Let the load run a little on the final set before stopping it.
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let tallies: Vec<Tally> = threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .collect();
    let decisions: u64 = tallies.iter().map(|tally| tally.decisions).sum();
    let failures: Vec<&String> = tallies.iter().flat_map(|tally| &tally.failures).collect();
    eprintln!(
        "{RELOADS} reloads ({broken} broken) in {reloading:?}; {decisions} decisions under load, {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        decisions > RELOADS as u64,
        "the load threads barely ran: {decisions}"
    );

    let metrics = control.get("/metrics").text();
    assert_eq!(
        metric(&metrics, r#"authz_policy_reloads_total{result="error"}"#),
        broken
    );
    // The watcher may coalesce or repeat events, so good reloads are at least one per change.
    assert!(
        metric(&metrics, r#"authz_policy_reloads_total{result="ok"}"#)
            >= 1.0 + RELOADS as f64 - broken,
        "{metrics}"
    );
    assert_eq!(metric(&metrics, "authz_policies_loaded"), 17.0);
}

#[test]
fn sighup_reloads_when_watching_is_off() {
    let fixture = Fixture::docs();
    fixture.write_policy("flip.authz", &flip_policy("flip-0", true));
    let server = Server::docs(&fixture, &["--no-watch"]);
    let mut client = server.client();
    assert_eq!(verdict(&client.decide(&dave_reads_roadmap())).0, "allow");

    fixture.write_policy("flip.authz", &flip_policy("flip-1", false));
    // Not watching: the change is not picked up by itself.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(generation(&mut client), 1);
    assert_eq!(verdict(&client.decide(&dave_reads_roadmap())).0, "allow");

    server.signal("HUP");
    wait_until("the SIGHUP reload", || generation(&mut client) == 2);
    assert_eq!(
        verdict(&client.decide(&dave_reads_roadmap())),
        ("deny".to_string(), vec!["flip-1".to_string()])
    );

    // A broken set on SIGHUP keeps the old one and says so.
    fixture.write_policy("flip.authz", BROKEN_POLICY);
    server.signal("HUP");
    wait_until("the failed reload", || readyz(&mut client)["stale"] == true);
    assert_eq!(generation(&mut client), 2);
    assert_eq!(verdict(&client.decide(&dave_reads_roadmap())).1, ["flip-1"]);
    let metrics = client.get("/metrics").text();
    assert_eq!(
        metric(&metrics, r#"authz_policy_reloads_total{result="error"}"#),
        1.0
    );
    assert_eq!(
        metric(&metrics, r#"authz_policy_reloads_total{result="ok"}"#),
        2.0
    );
}

#[test]
fn a_changed_entities_file_is_reloaded() {
    let fixture = Fixture::docs();
    let server = Server::docs(&fixture, &[]);
    let mut client = server.client();
    // Dave is an auditor; make him an acme viewer too, and the roadmap becomes readable.
    let text = std::fs::read_to_string(&fixture.entities).unwrap();
    let changed = text.replace(
        r#"[{"type": "Role", "id": "acme-auditors"}]"#,
        r#"[{"type": "Role", "id": "acme-auditors"}, {"type": "Role", "id": "acme-viewers"}]"#,
    );
    assert_ne!(text, changed);
    let temporary = fixture.path("entities.json.partial");
    std::fs::write(&temporary, changed).unwrap();
    std::fs::rename(&temporary, &fixture.entities).unwrap();
    wait_until("the entities reload", || generation(&mut client) > 1);
    assert_eq!(
        verdict(&client.decide(&dave_reads_roadmap())),
        ("allow".to_string(), vec!["viewers-read".to_string()])
    );
}
