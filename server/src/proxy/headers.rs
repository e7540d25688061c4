//! Header hygiene: what the proxy removes from a request before it adds its own headers.
//!
//! - Hop-by-hop headers (RFC 9110 7.6.1), and every header named in `Connection`, are removed: they
//!   describe one connection, not the request, and a client could name `Authorization` or an
//!   identity header there to make a naive proxy delete it after checking it.
//! - Every identity header the proxy sets is removed from the incoming request in all its
//!   spellings (`X-Authz-Principal`, `x_authz_principal`, `x.authz.principal`, any case), so an
//!   upstream sees only the values the proxy set from verified identity.
//! - `X-Forwarded-*` headers are kept only from trusted peers (configured CIDRs); the proxy then
//!   appends the real peer address to `X-Forwarded-For`. From anyone else they are replaced.

use std::net::IpAddr;

use authz_runtime::value::IpNet;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};

/// The hop-by-hop headers of RFC 9110, plus the common non-standard `proxy-connection`.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes the hop-by-hop headers and every header that `Connection` names, in every spelling
/// (`transfer_encoding`, `keep.alive`), and `content-length` spelt with `_` or `.`: an upstream
/// that folds `_` and `.` into `-`, as CGI-style gateways do, would otherwise frame the body by a
/// header the proxy did not, and read what follows it as a request of its own.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<&str> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect();
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            HOP_BY_HOP.iter().any(|hop| same_name(name, hop))
                || named.iter().any(|named| same_name(name, named))
                || (name != "content-length" && same_name(name, "content-length"))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// Whether two header names are the same once `_` and `.` read as `-` and case is ignored, as
/// upstream frameworks that fold them see it; without allocating, since this runs for every
/// header of every request.
pub fn same_name(name: &str, other: &str) -> bool {
    name.len() == other.len() && name_starts_with(name, other)
}

/// Whether a header name starts with `prefix`, folded as in [`same_name`].
pub fn name_starts_with(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len()
        && name
            .bytes()
            .zip(prefix.bytes())
            .all(|(a, b)| fold(a) == fold(b))
}

/// Removes every header whose canonical name starts with `prefix` (such as `x-authz-`) or equals
/// one of `exact` (such as `x-forwarded-user`); an empty prefix matches nothing.
pub fn strip_identity_headers<S: AsRef<str>>(headers: &mut HeaderMap, prefix: &str, exact: &[S]) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            (!prefix.is_empty() && name_starts_with(name, prefix))
                || exact.iter().any(|exact| same_name(name, exact.as_ref()))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// A header name byte with `_` and `.` read as `-`, lower-case.
fn fold(byte: u8) -> u8 {
    match byte {
        b'_' | b'.' => b'-',
        other => other.to_ascii_lowercase(),
    }
}

/// Whether `address` lies in one of `ranges`.
pub fn is_trusted(address: IpAddr, ranges: &[IpNet]) -> bool {
    ranges.iter().any(|range| contains(range, address))
}

fn contains(range: &IpNet, address: IpAddr) -> bool {
    let address = canonical_ip(address);
    match (range.addr, address) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            prefix_match(&net.octets(), &ip.octets(), range.prefix)
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            prefix_match(&net.octets(), &ip.octets(), range.prefix)
        }
        _ => false,
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
pub fn canonical_ip(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_match(net: &[u8], ip: &[u8], prefix: u8) -> bool {
    let mut remaining = u32::from(prefix);
    for (a, b) in net.iter().zip(ip) {
        if remaining == 0 {
            return true;
        }
        let bits = remaining.min(8);
        let mask = if bits == 8 { 0xff } else { !(0xffu8 >> bits) };
        if a & mask != b & mask {
            return false;
        }
        remaining -= bits;
    }
    true
}

/// Sets `X-Forwarded-For`, `-Proto` and `-Host` for the upstream and returns the client address
/// the proxy believes: the peer's, or, from a trusted peer, the rightmost untrusted address of its
/// `X-Forwarded-For` chain.
pub fn forwarded(
    headers: &mut HeaderMap,
    peer: IpAddr,
    trusted: &[IpNet],
    host: Option<&str>,
) -> IpAddr {
    let peer = canonical_ip(peer);
    let from_trusted = is_trusted(peer, trusted);
    let mut chain: Vec<String> = Vec::new();
    if from_trusted {
        chain = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|part| part.trim().to_string())
            .filter(|part| !part.is_empty())
            .collect();
    } else {
        for name in [
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "x-forwarded-port",
            "forwarded",
            "x-real-ip",
        ] {
            headers.remove(name);
        }
    }
    let client = chain
        .iter()
        .rev()
        .filter_map(|part| part.parse::<IpAddr>().ok().map(canonical_ip))
        .find(|address| !is_trusted(*address, trusted))
        .unwrap_or(peer);
    chain.push(peer.to_string());
    if let Ok(value) = HeaderValue::from_str(&chain.join(", ")) {
        headers.insert("x-forwarded-for", value);
    }
    if !from_trusted || !headers.contains_key("x-forwarded-proto") {
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    }
    if let Some(host) = host.and_then(|host| HeaderValue::from_str(host).ok()) {
        if !from_trusted || !headers.contains_key("x-forwarded-host") {
            headers.insert("x-forwarded-host", host);
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn net(text: &str) -> IpNet {
        authz_runtime::ext::parse_ip(text).unwrap()
    }

    #[test]
    fn connection_named_headers_are_removed() {
        let mut headers = map(&[
            ("connection", "keep-alive, Authorization, X-Keep"),
            ("authorization", "Bearer t"),
            ("x-keep", "1"),
            ("te", "trailers"),
            ("accept", "*/*"),
        ]);
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("accept"));
    }

    #[test]
    fn framing_headers_are_removed_in_every_spelling() {
        let mut headers = map(&[
            ("transfer_encoding", "chunked"),
            ("Transfer.Encoding", "chunked"),
            ("content_length", "0"),
            ("content-length", "5"),
            ("connection", "x_keep"),
            ("x-keep", "1"),
            ("keep_alive", "timeout=5"),
        ]);
        remove_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, vec!["content-length"]);
    }

    #[test]
    fn identity_headers_are_stripped_in_every_spelling() {
        let mut headers = map(&[
            ("x-authz-principal", "User::admin"),
            ("X_Authz_Principal", "User::admin"),
            ("x.authz.principal", "User::admin"),
            ("X-AUTHZ-CLAIMS", "{}"),
            ("x-forwarded-user", "admin"),
            ("x-authzprincipal", "kept: not the prefix"),
            ("accept", "*/*"),
        ]);
        strip_identity_headers(&mut headers, "x-authz-", &["x-forwarded-user"]);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, vec!["accept", "x-authzprincipal"]);
    }

    #[test]
    fn forwarded_for_from_untrusted_peers_is_replaced() {
        let mut headers = map(&[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-host", "evil")]);
        let client = forwarded(
            &mut headers,
            "203.0.113.9".parse().unwrap(),
            &[net("10.0.0.0/8")],
            Some("good"),
        );
        assert_eq!(client, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(headers["x-forwarded-for"], "203.0.113.9");
        assert_eq!(headers["x-forwarded-host"], "good");
    }

    #[test]
    fn forwarded_for_from_trusted_peers_is_extended() {
        let mut headers = map(&[("x-forwarded-for", "198.51.100.7, 10.1.1.1")]);
        let client = forwarded(
            &mut headers,
            "10.0.0.2".parse().unwrap(),
            &[net("10.0.0.0/8")],
            None,
        );
        assert_eq!(client, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!(
            headers["x-forwarded-for"],
            "198.51.100.7, 10.1.1.1, 10.0.0.2"
        );
    }

    #[test]
    fn mapped_addresses_count_as_ipv4() {
        assert!(is_trusted(
            "::ffff:10.0.0.1".parse().unwrap(),
            &[net("10.0.0.0/8")]
        ));
        assert!(!is_trusted(
            "11.0.0.1".parse().unwrap(),
            &[net("10.0.0.0/8")]
        ));
        assert!(is_trusted(
            "2001:db8::1".parse().unwrap(),
            &[net("2001:db8::/32")]
        ));
    }
}
