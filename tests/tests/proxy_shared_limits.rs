//! `authz proxy` with `[limits] redis_url`: replicas share their rate limit counts through a real
//! Redis on loopback (`redis-server`, started by the test on a free port): a budget spent on one
//! replica is spent on the other. When Redis goes away, requests that carry a limit are refused
//! (503, `Retry-After`) and never forwarded, requests without limits pass, and the limits work
//! again once Redis is back; with `on_error = "allow"` they pass uncounted; a proxy does not
//! start against a Redis it cannot reach. A limit `on attempts` counts every attempt before the
//! credential is checked, so that a client sending bad tokens is slowed, in memory and in Redis.
//!
//! `redis-server` comes from Debian's `redis-server` package, which `.ci/run` installs. Outside
//! CI, without it, these tests say so and pass; with `CI` set they fail.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod proxy_support;
mod serve_support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proxy_support::*;
use serve_support::{authz_binary, PATIENCE};

/// The `redis-server` binary, or `None` (and a note) when it is missing outside CI.
fn redis_server() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
            .map(|dir| dir.join("redis-server"))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server is missing; .ci/run installs it (apt-get install redis-server)"
        );
        eprintln!("skipped: redis-server is not installed (apt-get install redis-server)");
    }
    found
}

/// A `redis-server` on a loopback port, without persistence, killed when dropped.
struct Redis {
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start(binary: PathBuf) -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Redis {
            binary,
            port,
            child: None,
            _dir: tempfile::tempdir().unwrap(),
        };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port and waits until it answers `PING`.
    fn restart(&mut self) {
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self._dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < PATIENCE {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not answer on port {}", self.port);
    }

    fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        if stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
            return false;
        }
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).is_ok() && line == "+PONG\r\n"
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn proxy_with_redis(url: &str, more: &str) -> Proxy {
    Proxy::start(Options {
        extra: format!("[limits]\nredis_url = \"{url}\"\ntimeout_ms = 300\n{more}"),
        ..Options::default()
    })
}

fn ping(proxy: &Proxy, user: &str) -> serve_support::Response {
    proxy.request(
        "GET",
        "/ping",
        &[("Authorization", &bearer(&user_token(user)))],
    )
}

#[test]
fn replicas_share_their_counts_through_redis() {
    let Some(binary) = redis_server() else { return };
    let redis = Redis::start(binary);
    let a = proxy_with_redis(&redis.url(), "");
    let b = proxy_with_redis(&redis.url(), "");
    // `limit "pings" 3 per minute per principal`: three calls over both replicas...
    let mut remaining = Vec::new();
    for replica in [&a, &b, &a] {
        let response = ping(replica, "alice");
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.header("ratelimit-limit"), Some("3"));
        remaining.push(response.header("ratelimit-remaining").unwrap().to_string());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    // ...spend the budget on both.
    for replica in [&b, &a] {
        let response = ping(replica, "alice");
        assert_eq!(response.status, 429, "{}", response.text());
        let retry: u64 = response.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=20).contains(&retry), "Retry-After {retry}");
    }
    assert_eq!(a.upstream.count() + b.upstream.count(), 3);
    // Each key has its own budget.
    assert_eq!(ping(&b, "bob").status, 200);
    // The audit log names the limit.
    let limited = b
        .audit()
        .into_iter()
        .filter(|line| line["status"] == 429)
        .count();
    assert_eq!(limited, 1);
}

#[test]
fn when_redis_fails_limited_requests_are_refused_then_limits_come_back() {
    let Some(binary) = redis_server() else { return };
    let mut redis = Redis::start(binary);
    let mut strict = proxy_with_redis(&redis.url(), "");
    let lenient = proxy_with_redis(&redis.url(), "on_error = \"allow\"\n");
    assert_eq!(ping(&strict, "alice").status, 200);
    assert_eq!(ping(&lenient, "bob").status, 200);

    redis.stop();
    let before = strict.upstream.count();
    let started = Instant::now();
    let response = ping(&strict, "alice");
    assert_eq!(response.status, 503, "{}", response.text());
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_clean_error_body(&response, "redis down");
    assert_eq!(strict.upstream.count(), before, "forwarded while unlimited");
    // Requests without limits do not need Redis.
    let docs = strict.request(
        "GET",
        "/docs/d1",
        &[("Authorization", &bearer(&user_token("alice")))],
    );
    assert_eq!(docs.status, 200, "{}", docs.text());
    // `on_error = "allow"` lets them through uncounted.
    for _ in 0..4 {
        assert_eq!(ping(&lenient, "bob").status, 200);
    }
    // A proxy does not start against a Redis it cannot reach (unless failures allow).
    let output = Command::new(authz_binary())
        .args(["proxy", "-c"])
        .arg(strict.path("proxy.toml"))
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`limits.redis_url`"), "{stderr}");

    // Back: the same proxies count again, on fresh connections.
    redis.restart();
    // (The restarted Redis starts empty: alice has her whole budget again.)
    eventually("limits come back with Redis", || {
        ping(&strict, "alice").status == 200
    });
    assert_eq!(ping(&strict, "alice").status, 200);
    assert_eq!(ping(&strict, "alice").status, 200);
    assert_eq!(ping(&strict, "alice").status, 429);
    assert!(strict.server.alive());
}

/// A route whose limit has a window of seconds and a burst.
const WINDOWED: &str = r#"
action poll: User -> Api;
route GET "/poll" => poll Api("ping");
permit principal: User, action: poll, resource: Api;
limit "polls" 5 per 10 seconds burst 5 per principal when action == Action("poll");
"#;

/// The statuses of `n` polls by `user` in a row.
fn polls(proxy: &Proxy, user: &str, n: usize) -> Vec<u16> {
    let token = user_token(user);
    (0..n)
        .map(|_| proxy.get_as(&token, "/poll").status)
        .collect()
}

#[test]
fn a_window_of_seconds_with_a_burst_is_enforced_in_memory_and_in_redis() {
    let in_memory = Proxy::start(Options {
        policy_file: Some(WINDOWED.to_string()),
        ..Options::default()
    });
    assert_eq!(
        polls(&in_memory, "alice", 6),
        [200, 200, 200, 200, 200, 429]
    );
    let limited = in_memory.get_as(&user_token("alice"), "/poll");
    assert_eq!(limited.status, 429);
    // One request every 2 seconds comes back: the window is 10 seconds for 5.
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    assert_eq!(polls(&in_memory, "bob", 5), [200; 5]);

    let Some(binary) = redis_server() else { return };
    let redis = Redis::start(binary);
    let shared = Proxy::start(Options {
        extra: format!(
            "[limits]\nredis_url = \"{}\"\ntimeout_ms = 300\n",
            redis.url()
        ),
        policy_file: Some(WINDOWED.to_string()),
        ..Options::default()
    });
    assert_eq!(polls(&shared, "alice", 6), [200, 200, 200, 200, 200, 429]);
}

/// A login route with a limit on attempts keyed by the client's address.
const LOGINS: &str = r#"
entity Login;
action login: User -> Login with { ip: Ip };
route POST "/login" => login Login("main");
permit principal: User, action: login, resource: Login;
limit "login-attempts" 3 per minute on attempts per context.ip when action == Action("login");
"#;

/// A login attempt with `token`: its status.
fn login(proxy: &Proxy, token: &str) -> u16 {
    proxy
        .request("POST", "/login", &[("Authorization", &bearer(token))])
        .status
}

/// A token whose signature does not verify: one character of the signature changed.
fn forged_token() -> String {
    let token = user_token("alice");
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut signature = signature.as_bytes().to_vec();
    let middle = signature.len() / 2;
    signature[middle] = if signature[middle] == b'A' {
        b'B'
    } else {
        b'A'
    };
    format!("{signed}.{}", String::from_utf8(signature).unwrap())
}

#[test]
fn a_limit_on_attempts_slows_a_client_sending_bad_tokens_in_memory_and_in_redis() {
    let in_memory = Proxy::start(Options {
        policy_file: Some(LOGINS.to_string()),
        ..Options::default()
    });
    let (good, bad) = (user_token("alice"), forged_token());
    // Every attempt counts, allowed or refused: a good login, then two bad tokens...
    assert_eq!(
        [
            login(&in_memory, &good),
            login(&in_memory, &bad),
            login(&in_memory, &bad)
        ],
        [200, 401, 401]
    );
    // ...and the client's address has spent its budget, whatever it sends next.
    let limited = in_memory.request("POST", "/login", &[("Authorization", &bearer(&bad))]);
    assert_eq!(limited.status, 429, "{}", limited.text());
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "retry-after {retry}");
    assert_eq!(limited.header("ratelimit-limit"), Some("3"));
    assert_eq!(login(&in_memory, &good), 429);
    assert_eq!(
        in_memory.upstream.count(),
        1,
        "only the good login went through"
    );
    // Other routes are not counted.
    assert_eq!(in_memory.get_as(&good, "/ping").status, 200);
    // The audit line says `limited`, before any principal was known.
    let audit = in_memory.audit();
    let limited_lines: Vec<&serde_json::Value> =
        audit.iter().filter(|line| line["status"] == 429).collect();
    assert_eq!(limited_lines.len(), 2, "{audit:?}");
    for line in limited_lines {
        assert_eq!(line["decision"], "limited", "{line}");
        assert!(line["principal"].is_null(), "{line}");
        assert_eq!(line["action"], "login", "{line}");
    }

    let Some(binary) = redis_server() else { return };
    let redis = Redis::start(binary);
    let replica = || {
        Proxy::start(Options {
            extra: format!(
                "[limits]\nredis_url = \"{}\"\ntimeout_ms = 300\n",
                redis.url()
            ),
            policy_file: Some(LOGINS.to_string()),
            ..Options::default()
        })
    };
    let (a, b) = (replica(), replica());
    // Bad tokens spread over both replicas spend one budget.
    assert_eq!(
        [login(&a, &bad), login(&b, &bad), login(&a, &bad)],
        [401, 401, 401]
    );
    assert_eq!(login(&b, &good), 429);
    assert_eq!(login(&a, &good), 429);
    assert_eq!(a.upstream.count() + b.upstream.count(), 0);
}
