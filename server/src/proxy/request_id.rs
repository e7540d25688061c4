//! Request ids: every request through the proxy has one, the client's `x-request-id` when it
//! sent a usable one (1 to 128 visible ASCII characters), else one the proxy makes. The id is
//! forwarded upstream, returned in the response's `x-request-id`, written in the audit line and
//! in every JSON body the proxy answers with, so that a refusal a client reports can be found in
//! the log.
//!
//! A made id is 28 lowercase hex digits: the time in milliseconds (12 digits, so that ids sort by
//! time), then a per-process random start plus a counter (16 digits, unique within the process
//! and unlikely to collide across replicas).

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::header::{HeaderMap, HeaderValue};

/// The header.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    /// The id of the request the current task answers.
    pub static CURRENT: String;
}

/// The request's id: the client's when usable, else a new one, which replaces whatever the
/// client sent so that the upstream sees the same id as the log.
pub fn of(headers: &mut HeaderMap) -> String {
    let mut sent = headers.get_all(HEADER).iter();
    let usable = match (sent.next(), sent.next()) {
        (Some(value), None) => value
            .to_str()
            .ok()
            .filter(|text| usable(text))
            .map(str::to_string),
        _ => None,
    };
    if let Some(id) = usable {
        return id;
    }
    let id = make();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(HEADER, value);
    }
    id
}

fn usable(text: &str) -> bool {
    (1..=128).contains(&text.len()) && text.bytes().all(|byte| byte.is_ascii_graphic())
}

/// A new time-ordered id.
pub fn make() -> String {
    static NEXT: OnceLock<AtomicU64> = OnceLock::new();
    let next = NEXT.get_or_init(|| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        AtomicU64::new(hasher.finish())
    });
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64);
    let sequence = next.fetch_add(1, Ordering::Relaxed);
    format!("{:012x}{sequence:016x}", millis & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usable_client_id_is_kept_and_any_other_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_static("req-1"));
        assert_eq!(of(&mut headers), "req-1");

        for bad in ["", "has space", &"x".repeat(129)] {
            let mut headers = HeaderMap::new();
            headers.insert(HEADER, HeaderValue::from_str(bad).unwrap());
            let id = of(&mut headers);
            assert_eq!(id.len(), 28, "{bad:?}");
            assert_eq!(headers.get(HEADER).unwrap(), id.as_str());
        }
        let mut twice = HeaderMap::new();
        twice.append(HEADER, HeaderValue::from_static("a"));
        twice.append(HEADER, HeaderValue::from_static("b"));
        let id = of(&mut twice);
        assert_eq!(twice.get_all(HEADER).iter().count(), 1);
        assert_eq!(twice.get(HEADER).unwrap(), id.as_str());
    }

    #[test]
    fn made_ids_are_unique_and_sort_by_time() {
        let first = make();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = make();
        assert_ne!(first, second);
        assert!(first[..12] < second[..12], "{first} {second}");
        assert!(first.bytes().all(|byte| byte.is_ascii_hexdigit()));
    }
}
