//! `authz serve` refuses to start on a configuration it cannot use, exiting 1 with a message that
//! names the key at fault; and on a policy set that does not compile.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod serve_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serve_support::{authz_binary, Fixture, Server, BROKEN_POLICY, PATIENCE};

/// Runs `authz serve` expecting it to exit by itself; returns its exit code and stderr.
fn refused(fixture: &Fixture, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = fixture.serve_args();
    args.extend(extra.iter().map(|arg| (*arg).to_string()));
    let mut child = Command::new(authz_binary())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "authz serve {args:?} kept running; stdout: {}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn unknown_keys_and_bad_values_are_named() {
    let fixture = Fixture::docs();
    let config = fixture.path("authz.toml");
    for (text, named) in [
        ("[server]\nlisen = \"127.0.0.1:0\"\n", "lisen"),
        ("[servr]\nlisten = \"127.0.0.1:0\"\n", "servr"),
        ("[decision_log]\non_full = \"sometimes\"\n", "on_full"),
        ("[server]\nlisten = \"nowhere\"\n", "listen"),
        ("[server]\nmax_body_bytes = -1\n", "max_body_bytes"),
        ("[server]\nmax_batch = 0\n", "max_batch"),
        ("[server]\nadmin_token = \"short\"\n", "admin_token"),
        ("[policies]\nwatch = \"yes\"\n", "watch"),
        ("[log]\nformat = \"xml\"\n", "format"),
        ("[decision_log]\nbuffer = 0\n", "buffer"),
        ("[server\n", "authz.toml"),
    ] {
        std::fs::write(&config, text).unwrap();
        let (code, stderr) = refused(&fixture, &["-c", config.to_str().unwrap()]);
        assert_eq!(code, Some(1), "{text}: {stderr}");
        assert!(
            stderr.contains(named),
            "{text}: `{named}` not named in\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_missing_configuration_file_is_an_error() {
    let fixture = Fixture::docs();
    let missing = fixture.path("nope.toml");
    let (code, stderr) = refused(&fixture, &["-c", missing.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("nope.toml"), "{stderr}");
}

#[test]
fn a_policy_set_that_does_not_compile_is_not_served() {
    let fixture = Fixture::docs();
    fixture.write_policy("broken.authz", BROKEN_POLICY);
    let (code, stderr) = refused(&fixture, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("broken.authz"), "{stderr}");
}

#[test]
fn flags_override_the_configuration_file() {
    let fixture = Fixture::docs();
    let config = fixture.path("authz.toml");
    // The file's address is taken; `--listen 127.0.0.1:0` (from serve_args) wins over it.
    std::fs::write(
        &config,
        "[server]\nlisten = \"192.0.2.1:1\"\n[policies]\ndir = \"nowhere\"\n",
    )
    .unwrap();
    let server = Server::docs(&fixture, &["-c", config.to_str().unwrap()]);
    assert!(server.address.ip().is_loopback());
    assert_eq!(server.client().get("/readyz").json()["policies"], 16);
}
