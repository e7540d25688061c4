//! The differential property of the proxy's trust boundary: for every request target the proxy
//! would forward, the target the upstream receives routes to the same route and resource that
//! was decided under each reading a backend may apply to it.
//!
//! Targets are generated from pieces chosen to be read differently: dot segments (plain and
//! encoded), percent-encodings (single, double, triple, overlong UTF-8), Unicode look-alikes of
//! `.` and `/`, `\`, `;`, NUL, case, trailing dots and spaces, repeated slashes. The proxy's side is
//! its own code (`normalize::normalize`, the route table, `routes_alike_in_every_reading`); the
//! backend readings are written here independently of it: percent-decoding up to three times,
//! overlong UTF-8 decoded leniently, NFKC, `\` as `/`, `;params` dropped, truncation at NUL,
//! case-insensitive routing, dot segments, `//` collapsed, trailing dots and spaces trimmed, each
//! alone and all together.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use authz_runtime::route::{RouteMatch, RouteTable};
use proptest::prelude::*;

use super::normalize;
use super::pipeline::routes_alike_in_every_reading;

/// The routes: specific ones, a `**` below a public prefix, and a catch-all, so that almost
/// every path routes somewhere and a reading that moves it is caught.
const POLICIES: &str = r#"
entity User;
entity Doc;
entity Console;
action read, write: User -> Doc;
action administer: User -> Console;
route GET "/docs/{id}" => read Doc(id);
route POST "/docs/{id}" => write Doc(id);
route GET "/public/**" => read Doc("public");
route GET "/admin/**" => administer Console("main");
route POST "/admin/**" => administer Console("main");
route GET "/admin/status" => read Doc("status");
route GET "/**" => read Doc("anything");
route POST "/**" => write Doc("anything");
route DELETE "/**" => write Doc("anything");
"#;

fn routes() -> &'static RouteTable {
    static ROUTES: std::sync::OnceLock<RouteTable> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| {
        let source = authz_lang::SourceFile::new("routes.authz", POLICIES);
        authz_compiler::compile_sources(&[source])
            .program
            .expect("the routes compile")
            .routes
    })
}

/// Path pieces that servers read in different ways.
const PIECES: &[&str] = &[
    "docs",
    "d1",
    "D1",
    "public",
    "PUBLIC",
    "Public",
    "admin",
    "ADMIN",
    "users",
    "status",
    "x",
    ".",
    "..",
    "",
    "%2e",
    "%2E%2e",
    ".%2e",
    "%2F",
    "%2f",
    "%252F",
    "%25252F",
    "%255C",
    "%5C",
    "\\",
    ";",
    ";x=1",
    "admin;x",
    "%3B",
    "%00",
    "%2500",
    "a%00b",
    "%C0%AE",
    "%C0%AF",
    "%C0%AE%C0%AE",
    "%E0%80%AE",
    "%EF%BC%8E",
    "%EF%BC%8E%EF%BC%8E",
    "%E2%80%A5",
    "%E2%80%A4",
    "%E2%80%A4%E2%80%A4",
    "%EF%B9%92%EF%B9%92",
    "..%EF%BC%8F",
    "%EF%BC%8F",
    "%E2%88%95",
    "%E2%81%84",
    "%EF%BC%BC",
    "%20",
    "..%20",
    ".%20",
    "admin.",
    "admin%20",
    "admin%2e",
    "a.b",
    "%EF%BD%81dmin",
    "%EF%BD%84ocs",
    "%C3%A9",
    "caf%C3%A9",
    "%25",
    "%",
    "%zz",
    "%u002e",
    "%252e",
    "%252e%252e",
    "%25252e",
    "%2525",
    "%C2%A0",
    "%E2%80%A6",
    "%E2%84%AA",
    "%C4%B0",
    "a%E2%80%8Bb",
    "%CE%91DMIN",
    "admin%EF%BC%8E",
    "~",
    "%7E",
    "@",
    ":",
    "a+b",
];

const QUERIES: &[&str] = &[
    "",
    "?a=1",
    "?a=1&a=2",
    "?_method=DELETE",
    "?x=%00",
    "?q=%2e%2e/",
];

const METHODS: &[&str] = &["GET", "POST", "DELETE"];

// ---- The backend readings, written independently of the proxy's normalization. ----

/// Percent-decodes bytes once; escapes that are not two hex digits stay as they are.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' && index + 2 < bytes.len() {
            let high = (bytes[index + 1] as char).to_digit(16);
            let low = (bytes[index + 2] as char).to_digit(16);
            if let (Some(high), Some(low)) = (high, low) {
                out.push((high * 16 + low) as u8);
                index += 3;
                continue;
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    out
}

/// Decodes UTF-8 leniently, reading overlong two- and three-byte forms as the characters they
/// spell (as old decoders did); other invalid bytes become U+FFFD.
fn lenient_utf8(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let continuation = |offset: usize| {
            bytes
                .get(index + offset)
                .filter(|next| **next & 0xC0 == 0x80)
                .map(|next| u32::from(*next & 0x3F))
        };
        let (code, width) = if byte < 0x80 {
            (Some(u32::from(byte)), 1)
        } else if byte & 0xE0 == 0xC0 {
            match continuation(1) {
                Some(low) => (Some((u32::from(byte & 0x1F) << 6) | low), 2),
                None => (None, 1),
            }
        } else if byte & 0xF0 == 0xE0 {
            match (continuation(1), continuation(2)) {
                (Some(mid), Some(low)) => {
                    (Some((u32::from(byte & 0x0F) << 12) | (mid << 6) | low), 3)
                }
                _ => (None, 1),
            }
        } else if byte & 0xF8 == 0xF0 {
            match (continuation(1), continuation(2), continuation(3)) {
                (Some(a), Some(b), Some(c)) => (
                    Some((u32::from(byte & 0x07) << 18) | (a << 12) | (b << 6) | c),
                    4,
                ),
                _ => (None, 1),
            }
        } else {
            (None, 1)
        };
        out.push(code.and_then(char::from_u32).unwrap_or('\u{FFFD}'));
        index += width;
    }
    out
}

/// What a backend does to the path it receives.
#[derive(Clone, Copy, Debug, Default)]
struct Reading {
    decodes: u8,
    overlong: bool,
    nul_truncates: bool,
    backslash_is_slash: bool,
    nfkc: bool,
    drops_params: bool,
    trims_dots_and_spaces: bool,
    case_insensitive: bool,
}

impl Reading {
    /// Every reading: each transformation alone and all together, after one, two or three
    /// rounds of percent-decoding.
    fn all() -> Vec<Reading> {
        let mut readings = Vec::new();
        for decodes in 1..=3 {
            let base = Reading {
                decodes,
                ..Reading::default()
            };
            readings.push(base);
            readings.push(Reading {
                overlong: true,
                ..base
            });
            readings.push(Reading {
                nul_truncates: true,
                ..base
            });
            readings.push(Reading {
                backslash_is_slash: true,
                ..base
            });
            readings.push(Reading { nfkc: true, ..base });
            readings.push(Reading {
                drops_params: true,
                ..base
            });
            readings.push(Reading {
                trims_dots_and_spaces: true,
                ..base
            });
            readings.push(Reading {
                case_insensitive: true,
                ..base
            });
            readings.push(Reading {
                decodes,
                overlong: true,
                nul_truncates: true,
                backslash_is_slash: true,
                nfkc: true,
                drops_params: true,
                trims_dots_and_spaces: true,
                case_insensitive: true,
            });
        }
        readings
    }

    /// The path segments this backend routes by, from the path the proxy forwarded.
    fn segments(self, forwarded_path: &str) -> Vec<String> {
        let mut bytes = forwarded_path.as_bytes().to_vec();
        for _ in 0..self.decodes {
            bytes = percent_decode(&bytes);
        }
        if self.nul_truncates {
            if let Some(nul) = bytes.iter().position(|byte| *byte == 0) {
                bytes.truncate(nul);
            }
        }
        let mut text = if self.overlong {
            lenient_utf8(&bytes)
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        if self.backslash_is_slash {
            text = text.replace('\\', "/");
        }
        if self.nfkc {
            text = unicode_normalization::UnicodeNormalization::nfkc(text.as_str()).collect();
        }
        let mut segments: Vec<String> = Vec::new();
        for raw in text.split('/') {
            let mut segment = raw.to_string();
            if self.drops_params {
                if let Some(semicolon) = segment.find(';') {
                    segment.truncate(semicolon);
                }
            }
            if self.trims_dots_and_spaces && segment != "." && segment != ".." {
                segment = segment.trim_end_matches(['.', ' ']).to_string();
            }
            match segment.as_str() {
                "" | "." => {}
                ".." => {
                    segments.pop();
                }
                _ => segments.push(segment),
            }
        }
        segments
    }

    fn route<'a>(
        self,
        routes: &'a RouteTable,
        method: &str,
        segments: &'a [&'a str],
    ) -> Option<RouteMatch<'a>> {
        if self.case_insensitive {
            routes.find_ignoring_case(method, segments)
        } else {
            routes.find(method, segments)
        }
    }
}

/// The proxy's decision on a target: the route, the resource id and the forwarded target, or
/// `None` when it refuses (400 or no route).
fn admitted(method: &str, target: &str) -> Option<(usize, String, String, String)> {
    let normalized = normalize::normalize(method, target, Some("good")).ok()?;
    if normalized.method_override_parameter().is_some() {
        return None;
    }
    let segments = normalized.segments();
    let table = routes();
    let chosen = table.find(method, &segments)?;
    if !routes_alike_in_every_reading(table, method, &normalized, chosen) {
        return None;
    }
    let index = table
        .routes()
        .iter()
        .position(|route| std::ptr::eq(route, chosen.route))?;
    Some((
        index,
        chosen.resource_id.to_string(),
        normalized.path().to_string(),
        normalized.path_and_query(),
    ))
}

/// Checks one target; `Err` describes the first reading that routes elsewhere.
fn check(method: &str, target: &str) -> Result<bool, String> {
    let Some((route, resource, path, forwarded)) = admitted(method, target) else {
        return Ok(false);
    };
    // The proxy reads its own output the same way.
    let again = admitted(method, &forwarded);
    if again.as_ref().map(|(r, id, p, _)| (r, id, p)) != Some((&route, &resource, &path)) {
        return Err(format!(
            "{method} {target}: forwarded as {forwarded}, which the proxy itself reads as {again:?}"
        ));
    }
    let table = routes();
    for reading in Reading::all() {
        let owned = reading.segments(&path);
        let segments: Vec<&str> = owned.iter().map(String::as_str).collect();
        let found = reading.route(table, method, &segments);
        let same = found.is_some_and(|found| {
            let index = table
                .routes()
                .iter()
                .position(|other| std::ptr::eq(other, found.route));
            let same_id = if reading.case_insensitive {
                found.resource_id.to_lowercase() == resource.to_lowercase()
            } else {
                found.resource_id == resource
            };
            index == Some(route) && same_id
        });
        if !same {
            return Err(format!(
                "{method} {target}: decided as route {} `{resource}`, forwarded as {forwarded}; \
                 a backend reading it with {reading:?} sees {owned:?}, which routes to {:?}",
                table.routes()[route].path,
                found.map(|found| (found.route.path.to_string(), found.resource_id.to_string()))
            ));
        }
    }
    Ok(true)
}

/// How many generated targets each run checks.
const CASES: u32 = 100_000;

/// How many of `PIECES`, from the start, are plain words that every reading agrees on.
const PLAIN_PIECES: usize = 11;

/// A piece, plain words twice as likely as the rest so that a fair share of targets is forwarded
/// and the readings are compared on them, not only on refusals.
fn piece() -> impl Strategy<Value = usize> {
    prop_oneof![2 => 0..PLAIN_PIECES, 1 => 0..PIECES.len()]
}

fn target() -> impl Strategy<Value = (String, String)> {
    (
        0..METHODS.len(),
        prop::collection::vec((piece(), prop::bool::weighted(0.1)), 0..7),
        prop_oneof![1 => Just(0), 1 => 0..QUERIES.len()],
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(method, pieces, query, absolute, trailing)| {
            let mut path = String::new();
            for (piece, double_slash) in pieces {
                path.push('/');
                if double_slash {
                    path.push('/');
                }
                path.push_str(PIECES[piece]);
            }
            if path.is_empty() || trailing {
                path.push('/');
            }
            let prefix = if absolute { "http://good" } else { "" };
            (
                METHODS[method].to_string(),
                format!("{prefix}{path}{}", QUERIES[query]),
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_reading_of_a_forwarded_target_routes_as_decided((method, target) in target()) {
        if let Err(problem) = check(&method, &target) {
            prop_assert!(false, "{}", problem);
        }
    }
}

#[test]
fn the_generator_reaches_both_outcomes_and_the_known_attacks_are_refused() {
    for (method, target) in [
        ("GET", "/public/%EF%BC%8E%EF%BC%8E/admin/users"),
        ("GET", "/public/%E2%80%A5/admin/users"),
        ("GET", "/public/..%EF%BC%8F..%EF%BC%8Fadmin"),
        ("GET", "/public/..%20/admin/users"),
        ("GET", "/%EF%BD%81dmin/users"),
        ("GET", "/x/../ADMIN/users"),
        ("GET", "/public/%252e%252e/admin"),
        ("GET", "/public/admin;x/../../admin"),
        ("GET", "/docs/%EF%BD%84%EF%BC%91"),
    ] {
        assert_eq!(check(method, target), Ok(false), "{method} {target}");
    }
    for (method, target) in [
        ("GET", "/docs/d1"),
        ("GET", "/public/caf%C3%A9/a.b"),
        ("POST", "/docs//d1/"),
        ("GET", "/admin/status"),
        ("POST", "/admin/x/../users"),
    ] {
        assert_eq!(check(method, target), Ok(true), "{method} {target}");
    }
}

/// The generator is only useful if it produces both forwarded and refused targets in
/// meaningful numbers; a generator that only produced refusals would pass vacuously.
#[test]
fn the_generator_produces_forwarded_and_refused_targets() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = target();
    let (mut forwarded, mut refused) = (0u32, 0u32);
    for _ in 0..5_000 {
        let (method, target) = strategy.new_tree(&mut runner).unwrap().current();
        match check(&method, &target) {
            Ok(true) => forwarded += 1,
            Ok(false) => refused += 1,
            Err(problem) => panic!("{problem}"),
        }
    }
    eprintln!("{forwarded} of 5000 generated targets forwarded, {refused} refused");
    assert!(
        forwarded >= 500,
        "only {forwarded} of 5000 targets forwarded"
    );
    assert!(refused >= 500, "only {refused} of 5000 targets refused");
}
