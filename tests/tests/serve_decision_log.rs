//! `authz serve`'s decision log end to end: every decision answered leaves exactly one JSON line,
//! SIGTERM flushes them all and exits 0, also with requests in flight; with `on_full = "drop"`
//! every line that could not be written is counted.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod serve_support;

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};
use serve_support::{metric, request, Client, Fixture, Server};

/// The request of number `n`: a mix of allows and denies.
fn nth_request(n: usize) -> Json {
    match n % 3 {
        0 => request("bob", "read", ("Document", "roadmap")),
        1 => request("dave", "read", ("Document", "roadmap")),
        _ => request("erin", "read", ("Document", "roadmap")),
    }
}

fn log_lines(path: &std::path::Path) -> Vec<Json> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a partial last line"
    );
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect()
}

#[test]
fn n_decisions_then_sigterm_leave_n_lines() {
    const THREADS: usize = 4;
    const SINGLE_PER_THREAD: usize = 400;
    const BATCHES: usize = 40;
    const BATCH: usize = 10;
    const N: usize = THREADS * SINGLE_PER_THREAD + BATCHES * BATCH;

    let fixture = Fixture::docs();
    let log = fixture.path("decisions.log");
    let mut server = Server::docs(
        &fixture,
        &["--no-watch", "--decision-log", log.to_str().unwrap()],
    );
    let address = server.address;
    let mut threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            std::thread::spawn(move || {
                let mut client = Client::new(address);
                for n in 0..SINGLE_PER_THREAD {
                    let id = format!("t{thread}-{n}");
                    let response = client.request(
                        "POST",
                        "/v1/decide",
                        &[("X-Request-Id", &id)],
                        nth_request(n).to_string().as_bytes(),
                    );
                    assert_eq!(response.status, 200, "{}", response.text());
                }
            })
        })
        .collect();
    threads.push(std::thread::spawn(move || {
        let mut client = Client::new(address);
        for batch in 0..BATCHES {
            let requests: Vec<Json> = (0..BATCH).map(nth_request).collect();
            let response = client.request(
                "POST",
                "/v1/decide/batch",
                &[("X-Request-Id", &format!("b{batch}"))],
                json!({ "requests": requests }).to_string().as_bytes(),
            );
            assert_eq!(response.status, 200, "{}", response.text());
        }
    }));
    for thread in threads {
        thread.join().unwrap();
    }
    // Bad input is not a decision and leaves no line.
    let mut client = server.client();
    assert_eq!(client.request("POST", "/v1/decide", &[], b"{").status, 400);

    server.signal("TERM");
    let status = server.wait_exit();
    assert!(
        status.success(),
        "exit status {status:?}; stderr:\n{}",
        server.stderr()
    );

    let lines = log_lines(&log);
    assert_eq!(lines.len(), N);
    let mut ids = HashSet::new();
    for line in &lines {
        for field in [
            "time",
            "request_id",
            "principal",
            "action",
            "resource",
            "decision",
            "policies",
            "errors",
            "latency_us",
        ] {
            assert!(
                line.get(field).is_some_and(|value| !value.is_null()),
                "no `{field}` in {line}"
            );
        }
        let time = line["time"].as_str().unwrap();
        assert!(
            time.starts_with("20") && time.ends_with('Z') && time.len() == 24,
            "{line}"
        );
        assert!(
            matches!(line["decision"].as_str(), Some("allow" | "deny")),
            "{line}"
        );
        assert!(
            line["policies"].is_array() && line["errors"].is_array(),
            "{line}"
        );
        assert!(
            ids.insert(line["request_id"].as_str().unwrap().to_string()),
            "{line}"
        );
    }
    assert!(
        ids.contains("t3-399") && ids.contains("b39.9"),
        "request ids are kept"
    );
    let bob = lines
        .iter()
        .find(|line| line["request_id"] == "t0-0")
        .unwrap();
    assert_eq!(bob["principal"], json!({"type": "User", "id": "bob"}));
    assert_eq!(bob["action"], "read");
    assert_eq!(
        bob["resource"],
        json!({"type": "Document", "id": "roadmap"})
    );
    assert_eq!(bob["decision"], "allow");
    assert_eq!(bob["policies"], json!(["shared-read", "viewers-read"]));
    let erin = lines
        .iter()
        .find(|line| line["request_id"] == "t0-2")
        .unwrap();
    assert_eq!(
        (erin["decision"].clone(), erin["policies"].clone()),
        (json!("deny"), json!(["suspended-users"]))
    );
}

#[test]
fn sigterm_under_load_loses_no_answered_decision() {
    let fixture = Fixture::docs();
    let log = fixture.path("decisions.log");
    let mut server = Server::docs(
        &fixture,
        &["--no-watch", "--decision-log", log.to_str().unwrap()],
    );
    let address = server.address;
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..3)
        .map(|thread| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut client = Client::new(address);
                let mut answered = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) && n < 20_000 {
                    let id = format!("t{thread}-{n}");
                    let body = nth_request(n).to_string();
                    match client.try_request(
                        "POST",
                        "/v1/decide",
                        &[("X-Request-Id", &id)],
                        body.as_bytes(),
                    ) {
                        Ok(response) if response.status == 200 => answered.push(id),
                        Ok(response) => panic!("{} {}", response.status, response.text()),
                        // The server stopped accepting or closed the connection: stop too.
                        Err(_) => break,
                    }
                    n += 1;
                }
                answered
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    server.signal("TERM");
    let status = server.wait_exit();
    stop.store(true, Ordering::Relaxed);
    assert!(
        status.success(),
        "exit status {status:?}; stderr:\n{}",
        server.stderr()
    );
    let answered: Vec<String> = threads
        .into_iter()
        .flat_map(|thread| thread.join().unwrap())
        .collect();
    let logged: Vec<String> = log_lines(&log)
        .iter()
        .map(|line| line["request_id"].as_str().unwrap().to_string())
        .collect();
    let logged_set: HashSet<&String> = logged.iter().collect();
    assert_eq!(
        logged_set.len(),
        logged.len(),
        "a decision was logged twice"
    );
    let missing: Vec<&String> = answered
        .iter()
        .filter(|id| !logged_set.contains(id))
        .collect();
    eprintln!(
        "{} decisions answered before SIGTERM, {} lines logged",
        answered.len(),
        logged.len()
    );
    assert!(
        answered.len() > 100,
        "the load barely ran: {}",
        answered.len()
    );
    assert!(
        missing.is_empty(),
        "{} answered decisions are not in the log: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    // At most one decision per connection can have been made but not answered.
    assert!(
        logged.len() <= answered.len() + 3,
        "{} logged, {} answered",
        logged.len(),
        answered.len()
    );
}

/// Opens a FIFO for reading without blocking (Linux: O_RDWR never blocks on a FIFO), so that
/// the server can open it, and nothing reads it until the test says so.
#[cfg(target_os = "linux")]
fn fifo(path: &std::path::Path) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo failed");
    const O_NONBLOCK: i32 = 0o4000;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_log_with_on_full_drop_counts_every_dropped_line() {
    const BATCHES: usize = 4;
    const BATCH: usize = 1_000;
    const N: f64 = (BATCHES * BATCH) as f64;
    let fixture = Fixture::docs();
    let log = fixture.path("decisions.fifo");
    // Nobody reads the FIFO: once the pipe and the writer's buffer are full, the writer blocks
    // and every further line must be dropped and counted, never waited for.
    let mut reader = fifo(&log);
    let config = fixture.path("authz.toml");
    std::fs::write(
        &config,
        format!(
            "[decision_log]\npath = \"{}\"\non_full = \"drop\"\nbuffer = 1\n",
            log.display()
        ),
    )
    .unwrap();
    let mut server = Server::docs(&fixture, &["--no-watch", "-c", config.to_str().unwrap()]);
    let mut client = server.client();
    for _ in 0..BATCHES {
        let requests: Vec<Json> = (0..BATCH).map(nth_request).collect();
        let response = client.post_json("/v1/decide/batch", &json!({ "requests": requests }));
        assert_eq!(response.status, 200, "{}", response.text());
    }
    let metrics = client.get("/metrics").text();
    let dropped = metric(&metrics, "authz_decision_log_dropped_total");
    let written = metric(&metrics, "authz_decision_log_written_total");
    // A pipe holds 64 KiB and the writer buffers 64 KiB: far fewer than 4,000 lines of ~300 bytes.
    assert!(dropped >= N / 2.0, "dropped {dropped}, written {written}");
    // Every line is written, dropped, or still on its way (one queued, one being written).
    assert!(
        N - (dropped + written) <= 2.0,
        "dropped {dropped}, written {written}"
    );

    // Drain the FIFO: the server then shuts down cleanly, and what it wrote is what it counted.
    let drained = std::thread::spawn(move || {
        let mut text = Vec::new();
        let mut quiet = 0;
        let mut buffer = [0u8; 65_536];
        while quiet < 50 {
            match reader.read(&mut buffer) {
                Ok(read) if read > 0 => {
                    text.extend_from_slice(&buffer[..read]);
                    quiet = 0;
                }
                _ => {
                    quiet += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        text
    });
    std::thread::sleep(Duration::from_millis(100));
    server.signal("TERM");
    let status = server.wait_exit();
    assert!(
        status.success(),
        "exit status {status:?}; stderr:\n{}",
        server.stderr()
    );
    let text = drained.join().unwrap();
    let lines = text
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .count();
    assert_eq!(
        lines as f64 + dropped,
        N,
        "{lines} lines written, {dropped} dropped"
    );
}
