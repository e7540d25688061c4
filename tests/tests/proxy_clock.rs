//! The proxy's clock in a policy: business hours in `Europe/Berlin`, decided right on both sides of
//! both daylight saving changes of 2026 with the proxy's clock (the test fixes it with
//! `[clock] fixed`); a client that sends a time of its own changes nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod proxy_support;
mod serve_support;

use proxy_support::*;

const DOORS: &str = r#"
entity Door;
action open: User -> Door with { now: Timestamp };
route POST "/doors/{id}/open" => open Door(id);

@id("business-hours")
permit principal: User, action: open, resource: Door
when context.now.dayOfWeek("Europe/Berlin") <= 5
  && context.now.timeOfDay("Europe/Berlin") >= duration("9h")
  && context.now.timeOfDay("Europe/Berlin") < duration("17h");
"#;

/// The status of `alice` opening the front door with the proxy's clock at `now`, sending
/// `headers` of her own.
fn open_at(now: &str, headers: &[(&str, &str)]) -> u16 {
    let proxy = Proxy::start(Options {
        context: "now = \"now\"".to_string(),
        extra: format!("[clock]\nfixed = \"{now}\"\n"),
        policy_file: Some(DOORS.to_string()),
        ..Options::default()
    });
    let authorization = bearer(&user_token("alice"));
    let mut all = vec![("Authorization", authorization.as_str())];
    all.extend_from_slice(headers);
    let response = proxy.client().request(
        "POST",
        "/doors/front/open?now=2026-03-30T10:00:00Z",
        &all,
        b"",
    );
    // The audit line records the time the policies saw: the proxy's. The log is written off the
    // request path, moments later.
    let mut line = None;
    serve_support::wait_until("the audit line", || {
        line = proxy.audit().into_iter().find(|line| {
            line["target"]
                .as_str()
                .is_some_and(|target| target.starts_with("/doors/"))
        });
        line.is_some()
    });
    let line = line.unwrap();
    assert_eq!(line["context"]["now"], now, "{line}");
    response.status
}

#[test]
fn business_hours_follow_berlin_time_across_daylight_saving_changes() {
    let cases = [
        // Friday before spring forward: 08:30 UTC is 09:30 CET.
        ("2026-03-27T08:30:00Z", 200),
        ("2026-03-27T07:30:00Z", 403),
        // Sunday of the change: closed all day.
        ("2026-03-29T10:00:00Z", 403),
        // Monday after: 07:30 UTC is already 09:30 CEST; 15:30 UTC is 17:30, closed.
        ("2026-03-30T07:30:00Z", 200),
        ("2026-03-30T15:30:00Z", 403),
        ("2026-03-30T14:59:00Z", 200),
        // Friday before falling back: still CEST.
        ("2026-10-23T07:30:00Z", 200),
        ("2026-10-23T15:30:00Z", 403),
        // Monday after: CET again, 07:30 UTC is 08:30.
        ("2026-10-26T07:30:00Z", 403),
        ("2026-10-26T08:30:00Z", 200),
    ];
    for (now, expected) in cases {
        assert_eq!(open_at(now, &[]), expected, "at {now}");
    }
}

#[test]
fn a_client_cannot_set_the_time() {
    // Closed on a Sunday, whatever the client says the time is.
    assert_eq!(
        open_at(
            "2026-03-29T10:00:00Z",
            &[
                ("now", "2026-03-30T10:00:00Z"),
                ("x-now", "2026-03-30T10:00:00Z")
            ]
        ),
        403
    );
}
