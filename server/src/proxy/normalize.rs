//! Request-target normalization: the first step of the proxy's pipeline. The request target is
//! normalized once; the proxy then routes, decides and forwards that same normalized path, so
//! the upstream sees exactly the path the policy decided on.
//!
//! The rules (the design's "normalize once"):
//!
//! - The target is origin-form (`/a/b?q`) or absolute-form (`http://host/a/b?q`, scheme `http`
//!   or `https`), the latter accepted only when its authority equals the `Host` header (ASCII
//!   case-insensitively; pass HTTP/2's `:authority` as the host) and has no user information.
//!   The `*` target (`OPTIONS *`), authority-form and the `CONNECT` method are rejected.
//! - Raw control characters (C0, DEL and C1) and a raw `#` are rejected anywhere in the target,
//!   and so is a raw space.
//! - The path is split at `/` and each segment percent-decoded once, for checking and routing.
//!   Rejected: an invalid escape (`%` not followed by two hex digits); an encoded slash `%2F`;
//!   a backslash, raw or `%5C`; `%23` (an encoded `#`); an encoded control character such as
//!   `%00`; bytes that are not valid UTF-8 once decoded (which also rejects overlong forms such
//!   as `%C0%AF`); a `;`, raw or `%3B` (see below); and a double-encoded escape, `%25` followed
//!   by two hex digits, which an upstream that decodes twice would read differently. Escapes are
//!   case-insensitive (`%2f` is `%2F`).
//! - Empty segments are dropped, which merges repeated slashes; then dot segments (`.` and `..`,
//!   also when encoded, like `%2e%2E`) are removed as in RFC 3986 section 5.2.4, never climbing
//!   above the root. A trailing slash is kept for the upstream (`/a/b/` stays `/a/b/`, and
//!   `/a/b/..` becomes `/a/`, as in the RFC), but routing sees segments only, as the route
//!   checker defines paths: `/a/` and `/a` route alike.
//! - The path forwarded upstream is the decoded segments re-encoded: unreserved characters,
//!   sub-delimiters and `:` and `@` (the rest of RFC 3986's `pchar`) are kept, every other byte
//!   is percent-encoded with upper-case hex. Normalizing that path again gives the same result.
//! - The query string is forwarded unchanged, after the checks on raw characters above and one
//!   more: `%00` is rejected there too.
//!
//! - A segment that a backend could read as another separator or dot segment is rejected:
//!   one whose NFKC form (Unicode compatibility normalization, as some frameworks and file
//!   systems apply) is `.` or `..` or holds `/`, `\\`, `;`, `%`, `?` or `#` (fullwidth full stops
//!   `%EF%BC%8E`, the one- and two-dot leaders `%E2%80%A4`, `%E2%80%A5`, the small full stop
//!   `%EF%B9%92`, the fullwidth solidus `%EF%BC%8F`); one holding a slash or backslash look-alike
//!   that NFKC keeps (division slash U+2215, fraction slash U+2044, big solidus U+29F8, set minus
//!   U+2216 and their kin); and one that ends in `.` or white space, before or after NFKC (`..%20`,
//!   `admin.`), which Windows-style file systems trim. `.` and `..` themselves are resolved as
//!   above.
//!
//! **Path parameters.** A `;` in the path is rejected, raw or encoded. Servers disagree on it:
//! some (Tomcat, Spring, Jetty) strip `;...` from each segment before routing, so that
//! `/admin;x/users` reaches `/admin/users` while the proxy would have routed the segment
//! `admin;x`; others keep it as text. Refusing it is the only reading that cannot differ.

use thiserror::Error;

/// Why a request target is refused; the proxy answers 400 with the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum NormalizeError {
    /// The `CONNECT` method.
    #[error("CONNECT requests are not accepted")]
    Connect,
    /// The `*` request target of `OPTIONS *`.
    #[error("the `*` request target is not accepted")]
    AsteriskForm,
    /// A target that is neither a path nor an absolute `http(s)` URL.
    #[error("the request target must be a path starting with `/` or an absolute http(s) URL")]
    UnsupportedTarget,
    /// An absolute-form target whose authority is not the `Host` header.
    #[error("the host of the absolute request target does not match the Host header")]
    HostMismatch,
    /// User information (`user@`) in an absolute-form target.
    #[error("user information (`user@`) in the request target is not accepted")]
    UserInfo,
    /// A raw space.
    #[error("a space in the request target is not accepted")]
    Space,
    /// A raw control character, or an encoded one in the path (`%00`, `%0A`), or `%00` in the
    /// query.
    #[error("control characters (raw or encoded, such as `%00`) are not accepted")]
    ControlCharacter,
    /// A raw `#` anywhere, or `%23` in the path.
    #[error("a fragment marker (`#` or `%23`) is not accepted in the request target")]
    Fragment,
    /// `%2F` in the path.
    #[error("an encoded slash (`%2F`) in the path is not accepted")]
    EncodedSlash,
    /// A backslash in the path, raw or `%5C`.
    #[error("a backslash (`\\` or `%5C`) in the path is not accepted")]
    Backslash,
    /// A `;` in the path, raw or `%3B`.
    #[error("path parameters (`;` or `%3B`) are not accepted")]
    PathParameter,
    /// `%` not followed by two hex digits in the path.
    #[error("an invalid percent escape in the path: `%` must be followed by two hex digits")]
    InvalidEscape,
    /// `%25` followed by two hex digits (or `u` and four) in the path.
    #[error("a double-encoded escape (`%25` followed by two hex digits, or by `u` and four) is not accepted")]
    DoubleEncoding,
    /// No `Host` header.
    #[error("the Host header is required")]
    MissingHost,
    /// More than one `Host` header.
    #[error("more than one Host header is not accepted")]
    RepeatedHost,
    /// An empty `Host` header.
    #[error("an empty Host header is not accepted")]
    EmptyHost,
    /// A `Host` with user information (`user@host`).
    #[error("user information (`user@`) in the Host header is not accepted")]
    HostUserInfo,
    /// A `Host` that is not `host[:port]`.
    #[error("the Host header must be a host name or address with an optional port")]
    InvalidHost,
    /// Decoded path bytes that are not UTF-8, overlong forms included.
    #[error("the decoded path is not valid UTF-8")]
    InvalidUtf8,
    /// A segment that Unicode normalization turns into `.` or `..`.
    #[error(
        "a path segment that normalizes to `.` or `..` (such as fullwidth dots) is not accepted"
    )]
    LookalikeDotSegment,
    /// A segment holding a character that reads as `/`, `\`, `;`, `%`, `?` or `#` after Unicode
    /// normalization, or a slash look-alike.
    #[error(
        "a path segment holding a look-alike of `/`, `\\` or another delimiter is not accepted"
    )]
    LookalikeDelimiter,
    /// A segment ending in `.` or white space (other than `.` and `..`).
    #[error("a path segment ending in `.` or white space is not accepted")]
    TrailingDotOrSpace,
}

impl NormalizeError {
    /// A short stable name for logs, metrics and JSON bodies.
    pub fn code(self) -> &'static str {
        match self {
            NormalizeError::Connect => "connect",
            NormalizeError::AsteriskForm => "asterisk_form",
            NormalizeError::UnsupportedTarget => "unsupported_target",
            NormalizeError::HostMismatch => "host_mismatch",
            NormalizeError::UserInfo => "user_info",
            NormalizeError::Space => "space",
            NormalizeError::ControlCharacter => "control_character",
            NormalizeError::Fragment => "fragment",
            NormalizeError::EncodedSlash => "encoded_slash",
            NormalizeError::Backslash => "backslash",
            NormalizeError::PathParameter => "path_parameter",
            NormalizeError::InvalidEscape => "invalid_escape",
            NormalizeError::DoubleEncoding => "double_encoding",
            NormalizeError::InvalidUtf8 => "invalid_utf8",
            NormalizeError::MissingHost => "missing_host",
            NormalizeError::RepeatedHost => "repeated_host",
            NormalizeError::EmptyHost => "empty_host",
            NormalizeError::HostUserInfo => "host_user_info",
            NormalizeError::InvalidHost => "invalid_host",
            NormalizeError::LookalikeDotSegment => "lookalike_dot_segment",
            NormalizeError::LookalikeDelimiter => "lookalike_delimiter",
            NormalizeError::TrailingDotOrSpace => "trailing_dot_or_space",
        }
    }
}

/// A normalized request target, made by [`normalize`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Normalized {
    /// The decoded segments.
    segments: Vec<String>,
    /// The canonical path to forward.
    path: String,
    /// The query after `?`, unchanged.
    query: Option<String>,
}

impl Normalized {
    /// The decoded path segments to route by, as [`authz_runtime::route::RouteTable::find`]
    /// takes them: never empty, never `.` or `..`, never containing `/`. The root path has none.
    pub fn segments(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }

    #[cfg(test)]
    /// The decoded path: `/` and the decoded segments, for logs (no trailing slash).
    pub fn decoded_path(&self) -> String {
        if self.segments.is_empty() {
            return "/".to_owned();
        }
        let mut path = String::new();
        for segment in &self.segments {
            path.push('/');
            path.push_str(segment);
        }
        path
    }

    /// The segments as a server applying Unicode compatibility normalization (NFKC) reads them,
    /// when that differs from [`Normalized::segments`].
    pub fn nfkc_segments(&self) -> Option<Vec<String>> {
        if self.segments.iter().all(|segment| segment.is_ascii()) {
            return None;
        }
        let reading: Vec<String> = self
            .segments
            .iter()
            .map(|segment| {
                unicode_normalization::UnicodeNormalization::nfkc(segment.as_str()).collect()
            })
            .collect();
        (reading != self.segments).then_some(reading)
    }

    /// The name of a query parameter with which frameworks (Rails, Laravel, Symfony) let a
    /// request claim another method, `_method`, when the query has one.
    pub fn method_override_parameter(&self) -> Option<String> {
        let query = self.query.as_deref()?;
        form_urlencoded::parse(query.as_bytes())
            .map(|(key, _)| key)
            .find(|key| key.trim().eq_ignore_ascii_case("_method"))
            .map(|key| key.into_owned())
    }

    /// The canonical, percent-encoded path to forward upstream.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query string (after `?`, without it), unchanged; `None` when the target had no `?`.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The origin-form target to forward upstream: the canonical path and the query.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        }
    }
}

/// The request's one `Host`: refused when missing, repeated, empty, carrying user information,
/// or not `host[:port]` (a registered name of letters, digits, `-`, `.` and `_`, an IPv4
/// address, or an IPv6 address in brackets; the port all digits).
pub fn host(headers: &hyper::HeaderMap) -> Result<&str, NormalizeError> {
    let mut values = headers.get_all(hyper::header::HOST).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(if headers.contains_key(hyper::header::HOST) {
            NormalizeError::RepeatedHost
        } else {
            NormalizeError::MissingHost
        });
    };
    let host = value.to_str().map_err(|_| NormalizeError::InvalidHost)?;
    if host.is_empty() {
        return Err(NormalizeError::EmptyHost);
    }
    if host.contains('@') {
        return Err(NormalizeError::HostUserInfo);
    }
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => {
            let (address, after) = rest.split_once(']').ok_or(NormalizeError::InvalidHost)?;
            if address.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(NormalizeError::InvalidHost);
            }
            match after {
                "" => ("", None),
                other => (
                    "",
                    Some(other.strip_prefix(':').ok_or(NormalizeError::InvalidHost)?),
                ),
            }
        }
        None => match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    let name_ok = host.starts_with('[')
        || (!name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_')));
    let port_ok = port.is_none_or(|port| {
        !port.is_empty() && port.len() <= 5 && port.bytes().all(|byte| byte.is_ascii_digit())
    });
    if !name_ok || !port_ok {
        return Err(NormalizeError::InvalidHost);
    }
    Ok(host)
}

/// Normalizes the target of a request with this method and `Host` header (see the module
/// documentation for the rules).
pub fn normalize(
    method: &str,
    target: &str,
    host: Option<&str>,
) -> Result<Normalized, NormalizeError> {
    if method.eq_ignore_ascii_case("CONNECT") {
        return Err(NormalizeError::Connect);
    }
    if target == "*" {
        return Err(NormalizeError::AsteriskForm);
    }
    for c in target.chars() {
        if c.is_control() {
            return Err(NormalizeError::ControlCharacter);
        }
        match c {
            '#' => return Err(NormalizeError::Fragment),
            ' ' => return Err(NormalizeError::Space),
            _ => {}
        }
    }
    let path_and_query = if target.starts_with('/') {
        target
    } else {
        absolute_path(target, host)?
    };
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    if let Some(query) = query {
        if contains_encoded_nul(query) {
            return Err(NormalizeError::ControlCharacter);
        }
    }
    let (segments, trailing_slash) = path_segments(path)?;
    let mut canonical = String::with_capacity(path.len() + 8);
    for segment in &segments {
        canonical.push('/');
        encode_segment(segment, &mut canonical);
    }
    if canonical.is_empty() || trailing_slash {
        canonical.push('/');
    }
    Ok(Normalized {
        segments,
        path: canonical,
        query: query.map(str::to_owned),
    })
}

/// The path and query of an absolute-form target, when its authority is `host`.
fn absolute_path<'t>(target: &'t str, host: Option<&str>) -> Result<&'t str, NormalizeError> {
    let rest = strip_prefix_ignore_case(target, "http://")
        .or_else(|| strip_prefix_ignore_case(target, "https://"))
        .ok_or(NormalizeError::UnsupportedTarget)?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(end);
    if authority.contains('@') {
        return Err(NormalizeError::UserInfo);
    }
    let matches_host =
        host.is_some_and(|host| !host.is_empty() && host.eq_ignore_ascii_case(authority));
    if authority.is_empty() || !matches_host {
        return Err(NormalizeError::HostMismatch);
    }
    if path_and_query.starts_with('/') {
        Ok(path_and_query)
    } else {
        // `http://host` and `http://host?q` have the empty path, which is `/`.
        Ok(match path_and_query {
            "" => "/",
            query => query,
        })
    }
}

fn strip_prefix_ignore_case<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let head = text.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        text.get(prefix.len()..)
    } else {
        None
    }
}

fn contains_encoded_nul(query: &str) -> bool {
    query.as_bytes().windows(3).any(|window| window == b"%00")
}

/// The decoded segments of a raw path, empty and dot segments resolved, and whether the
/// canonical path keeps a trailing slash. `path` is empty or starts with `/`.
fn path_segments(path: &str) -> Result<(Vec<String>, bool), NormalizeError> {
    let mut segments: Vec<String> = Vec::new();
    let mut trailing_slash = false;
    // The empty path of `/?q` after an absolute-form authority reads as `/`.
    let path = path.strip_prefix('/').unwrap_or(path);
    for raw in path.split('/') {
        let segment = decode_segment(raw)?;
        trailing_slash = true;
        match segment.as_str() {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => {
                segments.push(segment);
                trailing_slash = false;
            }
        }
    }
    let trailing_slash = trailing_slash && !segments.is_empty();
    Ok((segments, trailing_slash))
}

/// Percent-decodes one raw segment and checks it.
fn decode_segment(raw: &str) -> Result<String, NormalizeError> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut input = raw.bytes();
    while let Some(byte) = input.next() {
        let byte = match byte {
            b'\\' => return Err(NormalizeError::Backslash),
            b';' => return Err(NormalizeError::PathParameter),
            b'%' => {
                let high = input.next().and_then(hex_value);
                let low = input.next().and_then(hex_value);
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(NormalizeError::InvalidEscape);
                };
                let decoded = (high << 4) | low;
                match decoded {
                    b'/' => return Err(NormalizeError::EncodedSlash),
                    b'\\' => return Err(NormalizeError::Backslash),
                    b'#' => return Err(NormalizeError::Fragment),
                    b';' => return Err(NormalizeError::PathParameter),
                    _ => decoded,
                }
            }
            _ => byte,
        };
        bytes.push(byte);
    }
    let text = String::from_utf8(bytes).map_err(|_| NormalizeError::InvalidUtf8)?;
    if text.chars().any(char::is_control) {
        return Err(NormalizeError::ControlCharacter);
    }
    // `%XX`, or IIS's `%uXXXX`, left after one decoding: a server decoding again reads it.
    let double_encoded = text.as_bytes().windows(3).any(
        |window| matches!(window, [b'%', high, low] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit()),
    ) || text.as_bytes().windows(6).any(|window| {
        matches!(window, [b'%', b'u' | b'U', digits @ ..] if digits.iter().all(u8::is_ascii_hexdigit))
    });
    if double_encoded {
        return Err(NormalizeError::DoubleEncoding);
    }
    check_lookalikes(&text)?;
    Ok(text)
}

/// Characters that read as a slash or backslash but that NFKC keeps as they are.
const SLASH_LOOKALIKES: &[char] = &[
    '\u{2044}', // fraction slash
    '\u{2215}', // division slash
    '\u{2216}', // set minus
    '\u{2571}', // box drawings light diagonal
    '\u{2572}', // box drawings light diagonal, the other way
    '\u{29F5}', // reverse solidus operator
    '\u{29F8}', // big solidus
    '\u{29F9}', // big reverse solidus
    '\u{3033}', // vertical kana repeat mark upper half
    '\u{1735}', // philippine single punctuation
    '\u{FE68}', // small reverse solidus
    '\u{FF0F}', // fullwidth solidus
    '\u{FF3C}', // fullwidth reverse solidus
];

/// Refuses a decoded segment that a backend applying Unicode normalization or trimming could
/// read as a dot segment or as holding a delimiter (see the module documentation).
fn check_lookalikes(segment: &str) -> Result<(), NormalizeError> {
    if segment == "." || segment == ".." {
        return Ok(());
    }
    let ends_badly = |text: &str| text.ends_with('.') || text.ends_with(char::is_whitespace);
    if ends_badly(segment) {
        return Err(NormalizeError::TrailingDotOrSpace);
    }
    if segment.is_ascii() {
        return Ok(());
    }
    if segment.contains(SLASH_LOOKALIKES) {
        return Err(NormalizeError::LookalikeDelimiter);
    }
    let normalized: String = unicode_normalization::UnicodeNormalization::nfkc(segment).collect();
    if normalized == "." || normalized == ".." {
        return Err(NormalizeError::LookalikeDotSegment);
    }
    if normalized.contains(['/', '\\', ';', '%', '?', '#']) || normalized.contains(SLASH_LOOKALIKES)
    {
        return Err(NormalizeError::LookalikeDelimiter);
    }
    if normalized.chars().any(char::is_control) {
        return Err(NormalizeError::ControlCharacter);
    }
    if ends_badly(&normalized) {
        return Err(NormalizeError::TrailingDotOrSpace);
    }
    Ok(())
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Appends a decoded segment percent-encoded: `pchar` characters other than `%` stay as they
/// are, every other byte becomes `%XX`.
fn encode_segment(segment: &str, out: &mut String) {
    for &byte in segment.as_bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
            );
        if keep {
            out.push(char::from(byte));
        } else {
            push_escape(out, byte);
        }
    }
}

/// Appends `byte` as `%XX`, upper-case hex.
pub fn push_escape(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    for nibble in [byte >> 4, byte & 0x0f] {
        if let Some(&digit) = HEX.get(usize::from(nibble)) {
            out.push(char::from(digit));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use NormalizeError as E;

    /// Normalizes an origin-form GET with `Host: good`; the result as (segments, forwarded
    /// path and query).
    fn norm(target: &str) -> Result<(Vec<String>, String), NormalizeError> {
        normalize("GET", target, Some("good")).map(|n| (n.segments.clone(), n.path_and_query()))
    }

    fn ok(segments: &[&str], forwarded: &str) -> Result<(Vec<String>, String), NormalizeError> {
        Ok((
            segments.iter().map(|s| (*s).to_owned()).collect(),
            forwarded.to_owned(),
        ))
    }

    #[test]
    fn accepted_targets_normalize_to_canonical_paths() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("/", &[], "/"),
            ("/orders/o-100", &["orders", "o-100"], "/orders/o-100"),
            (
                "/orders/o-100?x=1&y",
                &["orders", "o-100"],
                "/orders/o-100?x=1&y",
            ),
            ("/?q", &[], "/?q"),
            ("/a?", &["a"], "/a?"),
            // Repeated slashes merge; a trailing slash stays for the upstream.
            ("//admin", &["admin"], "/admin"),
            ("/a//b///c", &["a", "b", "c"], "/a/b/c"),
            ("/a/b/", &["a", "b"], "/a/b/"),
            ("///", &[], "/"),
            // Dot segments, plain and encoded, never above the root.
            ("/./admin", &["admin"], "/admin"),
            ("/admin/../orders", &["orders"], "/orders"),
            ("/%2e%2e/admin", &["admin"], "/admin"),
            ("/a/%2E%2e/b", &["b"], "/b"),
            ("/a/.%2e/b", &["b"], "/b"),
            ("/a/%2e/b", &["a", "b"], "/a/b"),
            ("/../../../etc/passwd", &["etc", "passwd"], "/etc/passwd"),
            ("/a/b/..", &["a"], "/a/"),
            ("/a/b/.", &["a", "b"], "/a/b/"),
            ("/a//../b", &["b"], "/b"),
            ("/..", &[], "/"),
            ("/a/..b/c.d", &["a", "..b", "c.d"], "/a/..b/c.d"),
            // Escapes decode once, either case; the forwarded path re-encodes canonically.
            ("/%41%62c", &["Abc"], "/Abc"),
            ("/caf%C3%A9", &["café"], "/caf%C3%A9"),
            ("/caf%c3%a9", &["café"], "/caf%C3%A9"),
            ("/café", &["café"], "/caf%C3%A9"),
            ("/a%20b", &["a b"], "/a%20b"),
            ("/a%3fb?c", &["a?b"], "/a%3Fb?c"),
            ("/100%25", &["100%"], "/100%25"),
            ("/%25zz", &["%zz"], "/%25zz"),
            ("/a%2Cb,c", &["a,b,c"], "/a,b,c"),
            (
                "/user:alice@x/+$!*'()=&",
                &["user:alice@x", "+$!*'()=&"],
                "/user:alice@x/+$!*'()=&",
            ),
            ("/{x}|\"<>^`", &["{x}|\"<>^`"], "/%7Bx%7D%7C%22%3C%3E%5E%60"),
            // The query is not decoded: `%23`, `%2F` and a raw `/` or `?` stay as they are.
            ("/a?b=%23&c=%2F/x?y", &["a"], "/a?b=%23&c=%2F/x?y"),
            ("/a?q=%0A", &["a"], "/a?q=%0A"),
        ];
        for (target, segments, forwarded) in cases {
            assert_eq!(norm(target), ok(segments, forwarded), "{target}");
        }
    }

    #[test]
    fn ambiguous_targets_are_rejected() {
        let cases: &[(&str, NormalizeError)] = &[
            ("/admin%2Fx", E::EncodedSlash),
            ("/admin%2fx", E::EncodedSlash),
            ("/a/%2F../admin", E::EncodedSlash),
            ("/admin%5Cx", E::Backslash),
            ("/admin%5cx", E::Backslash),
            ("/admin\\x", E::Backslash),
            ("/..\\admin", E::Backslash),
            ("/admin#x", E::Fragment),
            ("/admin?x#y", E::Fragment),
            ("/admin%23x", E::Fragment),
            ("/admin%00", E::ControlCharacter),
            ("/admin%0a", E::ControlCharacter),
            ("/admin%0D%0AX-Injected:%201", E::ControlCharacter),
            ("/admin%7F", E::ControlCharacter),
            ("/admin%C2%85", E::ControlCharacter),
            ("/admin\u{0}", E::ControlCharacter),
            ("/admin\r\n", E::ControlCharacter),
            ("/admin\t", E::ControlCharacter),
            ("/a?x=\u{1}", E::ControlCharacter),
            ("/a?x=%00", E::ControlCharacter),
            ("/admin x", E::Space),
            ("/a/.../b", E::TrailingDotOrSpace),
            ("/a/..b/c.", E::TrailingDotOrSpace),
            ("/admin;x", E::PathParameter),
            ("/admin;jsessionid=1/users", E::PathParameter),
            ("/admin%3Bx", E::PathParameter),
            ("/admin%3bx", E::PathParameter),
            ("/%c0%af", E::InvalidUtf8),
            ("/%c0%ae%c0%ae/admin", E::InvalidUtf8),
            ("/%e0%80%af", E::InvalidUtf8),
            ("/%ed%a0%80", E::InvalidUtf8),
            ("/%ff", E::InvalidUtf8),
            ("/caf%C3", E::InvalidUtf8),
            ("/a%", E::InvalidEscape),
            ("/a%2", E::InvalidEscape),
            ("/a%zz", E::InvalidEscape),
            ("/a%g0", E::InvalidEscape),
            ("/a%%32%46", E::InvalidEscape),
            ("/a%252F..%252Fadmin", E::DoubleEncoding),
            ("/%252e%252e/admin", E::DoubleEncoding),
            ("*", E::AsteriskForm),
            ("", E::UnsupportedTarget),
            ("admin", E::UnsupportedTarget),
            ("good:443", E::UnsupportedTarget),
            ("ftp://good/a", E::UnsupportedTarget),
            ("http://evil/admin", E::HostMismatch),
            ("http://good.evil/admin", E::HostMismatch),
            ("http:///admin", E::HostMismatch),
            ("http://good@evil/admin", E::UserInfo),
            ("http://evil@good/admin", E::UserInfo),
        ];
        for (target, error) in cases {
            assert_eq!(norm(target), Err(*error), "{target:?}");
        }
    }

    #[test]
    fn absolute_form_must_agree_with_host() {
        let n = normalize("GET", "http://good/a/../b?q", Some("good")).unwrap();
        assert_eq!((n.path(), n.query()), ("/b", Some("q")));
        let n = normalize("GET", "HTTPS://GOOD:8443/x", Some("good:8443")).unwrap();
        assert_eq!(n.path_and_query(), "/x");
        let n = normalize("GET", "http://good", Some("good")).unwrap();
        assert_eq!(n.path_and_query(), "/");
        let n = normalize("GET", "http://good?q=1", Some("good")).unwrap();
        assert_eq!(n.path_and_query(), "/?q=1");
        let mismatch = Err(E::HostMismatch);
        assert_eq!(
            normalize("GET", "http://evil/admin", Some("good")),
            mismatch
        );
        assert_eq!(normalize("GET", "http://good/admin", None), mismatch);
        assert_eq!(normalize("GET", "http://good/admin", Some("")), mismatch);
        assert_eq!(
            normalize("GET", "http://good:80/admin", Some("good")),
            mismatch
        );
        // An origin-form target does not consult the host.
        assert!(normalize("GET", "/admin", None).is_ok());
    }

    #[test]
    fn connect_and_asterisk_are_rejected() {
        assert_eq!(
            normalize("CONNECT", "good:443", Some("good")),
            Err(E::Connect)
        );
        assert_eq!(normalize("CONNECT", "/a", Some("good")), Err(E::Connect));
        assert_eq!(
            normalize("OPTIONS", "*", Some("good")),
            Err(E::AsteriskForm)
        );
        assert!(normalize("OPTIONS", "/a", Some("good")).is_ok());
    }

    #[test]
    fn accessors_agree() {
        let n = normalize("GET", "/a/caf%c3%a9//b/?q=%20", None).unwrap();
        assert_eq!(n.segments(), vec!["a", "café", "b"]);
        assert_eq!(n.decoded_path(), "/a/café/b");
        assert_eq!(n.path(), "/a/caf%C3%A9/b/");
        assert_eq!(n.query(), Some("q=%20"));
        let root = normalize("GET", "/", None).unwrap();
        assert!(root.segments().is_empty());
        assert_eq!(root.decoded_path(), "/");
        assert_eq!(root.query(), None);
    }

    #[test]
    fn errors_have_codes_and_readable_reasons() {
        let error = norm("/admin%2Fx").unwrap_err();
        assert_eq!(error.code(), "encoded_slash");
        assert_eq!(
            error.to_string(),
            "an encoded slash (`%2F`) in the path is not accepted"
        );
    }

    /// Targets built from the characters that matter to normalization.
    fn hostile_target() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("/"),
            Just("."),
            Just(".."),
            Just("%"),
            Just("%2e"),
            Just("%2E"),
            Just("%2f"),
            Just("%25"),
            Just("%41"),
            Just("%c3%a9"),
            Just("%c0"),
            Just("%00"),
            Just("a"),
            Just("B"),
            Just("2"),
            Just("f"),
            Just("?"),
            Just("#"),
            Just(";"),
            Just("\\"),
            Just(" "),
            Just("é"),
            Just(":"),
            Just("@"),
            Just("{"),
            Just("\u{0}"),
            Just("http://good"),
        ];
        prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    fn check_canonical(n: &Normalized) -> Result<(), TestCaseError> {
        let again = normalize("GET", &n.path_and_query(), Some("good"));
        prop_assert_eq!(again.as_ref(), Ok(n));
        let path = n.path();
        prop_assert!(path.starts_with('/'));
        prop_assert!(!path.contains("//"));
        for segment in path.split('/').skip(1) {
            prop_assert!(segment != "." && segment != "..");
        }
        for segment in n.segments() {
            prop_assert!(!segment.is_empty() && segment != "." && segment != "..");
            prop_assert!(!segment.contains('/'));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Normalizing the forwarded target again changes nothing, and never panics.
        #[test]
        fn normalization_is_idempotent(target in hostile_target()) {
            for target in [target.clone(), format!("/{target}")] {
                if let Ok(n) = normalize("GET", &target, Some("good")) {
                    check_canonical(&n)?;
                }
            }
        }

        /// Arbitrary text never panics; what is accepted is canonical.
        #[test]
        fn arbitrary_input_never_panics(target in any::<String>(), host in any::<Option<String>>()) {
            for target in [target.clone(), format!("/{target}")] {
                if let Ok(n) = normalize("GET", &target, host.as_deref()) {
                    check_canonical(&n)?;
                }
            }
        }
    }
}
