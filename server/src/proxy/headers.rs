//! Header hygiene: what the proxy removes from (or refuses in) a request before it adds its own
//! headers. The rule behind every list here: an upstream must never read, from a header the
//! client wrote, something that only the proxy may say (who is calling, where from, which method
//! or path was meant).
//!
//! - Hop-by-hop headers (RFC 9110 7.6.1), and every header named in `Connection`, are removed: they
//!   describe one connection, not the request, and a client could name `Authorization` or an
//!   identity header there to make a naive proxy delete it after checking it.
//! - Every identity header the proxy sets is removed from the incoming request in all its
//!   spellings (`X-Authz-Principal`, `x_authz_principal`, `x.authz.principal`, any case), so an
//!   upstream sees only the values the proxy set from verified identity; so are the identity
//!   headers other gateways and auth proxies set ([`WELL_KNOWN_IDENTITY`]), and any configured in
//!   `strip_headers`.
//! - Forwarding headers: from an untrusted peer every `X-Forwarded-*` and `Forwarded` header (and
//!   the client-address headers of other proxies, [`CLIENT_ADDRESS`]) is removed in every
//!   spelling; from a trusted peer only `X-Forwarded-For`, `-Proto`, `-Host`, `-Port` and
//!   `Forwarded`, spelt canonically, are kept. The proxy then sets its own `X-Forwarded-For`,
//!   `-Proto` (true to the listener) and `-Host`.
//! - Method-override and rewrite headers ([`METHOD_OVERRIDE`], [`REWRITE`]) are honoured nowhere:
//!   removed, or the request refused, by `proxy.method_override`.

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

/// Identity headers that other gateways, auth proxies and platforms set for their upstreams
/// (oauth2-proxy, nginx `auth_request` setups, Apache, Kong, cloud load balancers): a client
/// that sends one is claiming an identity nobody verified. Names ending in `-` are prefixes.
pub const WELL_KNOWN_IDENTITY: &[&str] = &[
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-forwarded-access-token",
    "x-user",
    "x-user-id",
    "x-user-email",
    "x-user-name",
    "x-user-roles",
    "x-user-groups",
    "x-username",
    "x-email",
    "x-remote-user",
    "x-remote-group",
    "remote-user",
    "x-auth-user",
    "x-authenticated-user",
    "x-authenticated-userid",
    "x-auth-request-",
    "x-consumer-id",
    "x-consumer-username",
    "x-consumer-custom-id",
    "x-credential-identifier",
    "x-jwt-payload",
    "x-jwt-claim-",
    "x-ms-client-principal",
    "x-ms-client-principal-",
    "x-goog-authenticated-user-",
    "x-amzn-oidc-",
    "x-ssl-client-",
    "ssl-client-",
    "x-client-cert",
    "x-client-dn",
    "x-client-verify",
    "x-forwarded-client-cert",
];

/// Headers with which frameworks let a request claim another method (a `GET`, decided as a
/// read, becomes a `DELETE` where they are honoured).
pub const METHOD_OVERRIDE: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Headers with which servers (IIS, Symfony, Zend, Envoy) let a request claim another path or
/// method than the one in its request line.
pub const REWRITE: &[&str] = &[
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-original-method",
    "x-original-path",
    "x-envoy-original-path",
    "x-envoy-original-url",
    "x-envoy-original-method",
];

/// Headers in which other proxies and CDNs pass on the client's address; an upstream that reads
/// one for an allow list must get it only from the proxy. Removed from untrusted peers.
pub const CLIENT_ADDRESS: &[&str] = &[
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
];

/// The forwarding headers kept from a trusted peer (canonical spelling only).
const TRUSTED_FORWARDING: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "forwarded",
    "x-real-ip",
];

/// What to do with method-override and rewrite headers (`proxy.method_override`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodOverride {
    /// Remove them; the upstream sees the method and path that were decided.
    #[default]
    Strip,
    /// Refuse the request (400, `authz::proxy::method_override`).
    Refuse,
}

/// The names a request's headers are checked against, folded once when the proxy starts.
#[derive(Clone, Debug)]
pub struct HeaderPolicy {
    /// Removed in every spelling: exact names.
    strip_exact: Vec<String>,
    /// Removed in every spelling: name prefixes (ending in `-`).
    strip_prefixes: Vec<String>,
    /// What to do with method-override and rewrite headers.
    method_override: MethodOverride,
    /// Whether any name checked in [`HeaderPolicy::clean`] starts with this byte (folded): most
    /// headers of a request (`host`, `accept`, `authorization`, `user-agent`) are passed over
    /// on their first byte.
    first_bytes: [bool; 256],
}

/// A header that makes the proxy refuse a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedHeader {
    /// The header's name as the client spelt it (lower-case).
    pub name: String,
    /// `true` for a method-override or rewrite header, `false` for an identity header.
    pub overrides: bool,
}

impl RefusedHeader {
    /// The error code of the refusal (without the `authz::proxy::` prefix).
    pub fn code(&self) -> &'static str {
        if self.overrides {
            "method_override"
        } else {
            "identity_header"
        }
    }

    /// The message of the refusal.
    pub fn message(&self) -> String {
        if self.overrides {
            format!(
                "the header `{}` (a method override or rewrite) is not accepted",
                self.name
            )
        } else {
            format!(
                "the header `{}` (an identity header only the proxy may set) is not accepted",
                self.name
            )
        }
    }
}

impl HeaderPolicy {
    /// The policy for a proxy whose identity headers start with `identity_prefix`, which also
    /// sets the headers in `own` (the assertion, the upstream header mapping), strips the
    /// configured `extra` names (a trailing `-` or `*` makes a prefix) and treats
    /// method-override headers as `method_override` says.
    pub fn new(
        identity_prefix: &str,
        own: &[String],
        extra: &[String],
        method_override: MethodOverride,
    ) -> HeaderPolicy {
        let mut strip_exact = Vec::new();
        let mut strip_prefixes = vec![identity_prefix.to_ascii_lowercase()];
        let names = WELL_KNOWN_IDENTITY
            .iter()
            .map(|name| (*name).to_string())
            .chain(own.iter().cloned())
            .chain(extra.iter().cloned());
        for name in names {
            let name = name.to_ascii_lowercase();
            if let Some(prefix) = name.strip_suffix('*') {
                strip_prefixes.push(prefix.to_string());
            } else if name.ends_with('-') {
                strip_prefixes.push(name);
            } else {
                strip_exact.push(name);
            }
        }
        strip_prefixes.retain(|prefix| !prefix.is_empty());
        let mut first_bytes = [false; 256];
        let checked = strip_exact
            .iter()
            .chain(&strip_prefixes)
            .map(String::as_str)
            .chain(METHOD_OVERRIDE.iter().copied())
            .chain(REWRITE.iter().copied())
            .chain(CLIENT_ADDRESS.iter().copied())
            .chain(["x-forwarded-"]);
        for name in checked {
            if let Some(&first) = name.as_bytes().first() {
                if let Some(slot) = first_bytes.get_mut(usize::from(fold(first))) {
                    *slot = true;
                }
            }
        }
        HeaderPolicy {
            strip_exact,
            strip_prefixes,
            method_override,
            first_bytes,
        }
    }

    /// Removes identity, forwarding, method-override and rewrite headers the client may not
    /// set (see the module documentation); `from_trusted` says whether the peer is a trusted
    /// proxy. With `method_override = "refuse"`, a method-override or rewrite header refuses the
    /// request instead. `answer_only` is `ext_authz` mode, where the gateway forwards the
    /// client's own headers and nothing removed here would leave them: there identity,
    /// method-override and rewrite headers refuse the request.
    pub fn clean(
        &self,
        headers: &mut HeaderMap,
        from_trusted: bool,
        answer_only: bool,
    ) -> Result<(), RefusedHeader> {
        let mut doomed: Vec<HeaderName> = Vec::new();
        for name in headers.keys() {
            let text = name.as_str();
            let first = text.as_bytes().first().map_or(0, |&byte| fold(byte));
            if !self
                .first_bytes
                .get(usize::from(first))
                .is_some_and(|&checked| checked)
            {
                continue;
            }
            let overrides = METHOD_OVERRIDE
                .iter()
                .chain(REWRITE)
                .any(|known| same_name(text, known));
            if overrides {
                if answer_only || self.method_override == MethodOverride::Refuse {
                    return Err(RefusedHeader {
                        name: text.to_string(),
                        overrides: true,
                    });
                }
                doomed.push(name.clone());
                continue;
            }
            let identity = self.strip_exact.iter().any(|exact| same_name(text, exact))
                || self
                    .strip_prefixes
                    .iter()
                    .any(|prefix| name_starts_with(text, prefix));
            let forwarding = name_starts_with(text, "x-forwarded-")
                || CLIENT_ADDRESS.iter().any(|known| same_name(text, known));
            let kept_forwarding = from_trusted && TRUSTED_FORWARDING.contains(&text);
            if identity && answer_only {
                return Err(RefusedHeader {
                    name: text.to_string(),
                    overrides: false,
                });
            }
            if identity || (forwarding && !kept_forwarding) {
                doomed.push(name.clone());
            }
        }
        for name in doomed {
            headers.remove(name);
        }
        Ok(())
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
/// `X-Forwarded-For` chain. `scheme` is the listener's (`http` or `https`). Run after
/// [`HeaderPolicy::clean`], which has removed every forwarding header an untrusted peer sent.
pub fn forwarded(
    headers: &mut HeaderMap,
    peer: IpAddr,
    trusted: &[IpNet],
    host: Option<&str>,
    scheme: &'static str,
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
        for name in TRUSTED_FORWARDING {
            headers.remove(*name);
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
    let single = |headers: &HeaderMap, name: &str| headers.get_all(name).iter().count() == 1;
    if !from_trusted || !single(headers, "x-forwarded-proto") {
        headers.insert("x-forwarded-proto", HeaderValue::from_static(scheme));
    }
    if let Some(host) = host.and_then(|host| HeaderValue::from_str(host).ok()) {
        if !from_trusted || !single(headers, "x-forwarded-host") {
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
        policy().clean(&mut headers, false, false).unwrap();
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, vec!["accept", "x-authzprincipal"]);
    }

    fn policy() -> HeaderPolicy {
        HeaderPolicy::new(
            "x-authz-",
            &["x-user-id".to_string()],
            &["x-tenant".to_string(), "x-internal-*".to_string()],
            MethodOverride::Strip,
        )
    }

    #[test]
    fn forwarding_identity_and_override_headers_are_removed_from_untrusted_peers() {
        let mut headers = map(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("X_Forwarded_Host", "evil"),
            ("x.forwarded.proto", "https"),
            ("x-forwarded-prefix", "/admin"),
            ("forwarded", "for=1.2.3.4"),
            ("x-real-ip", "10.0.0.1"),
            ("true-client-ip", "10.0.0.1"),
            ("x-remote-user", "root"),
            ("remote_user", "root"),
            ("x-auth-request-email", "root@example.com"),
            ("x-user-id", "root"),
            ("x-tenant", "acme"),
            ("x-internal-debug", "1"),
            ("x-http-method-override", "DELETE"),
            ("x_original_url", "/admin"),
            ("accept", "*/*"),
        ]);
        policy().clean(&mut headers, false, false).unwrap();
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, vec!["accept"]);
    }

    #[test]
    fn trusted_peers_keep_canonical_forwarding_headers_only() {
        let mut headers = map(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
            ("x_forwarded_for", "6.6.6.6"),
            ("x-forwarded-user", "root"),
            ("x-forwarded-uri", "/admin"),
        ]);
        policy().clean(&mut headers, true, false).unwrap();
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, vec!["x-forwarded-for", "x-forwarded-proto"]);
    }

    #[test]
    fn method_override_can_refuse() {
        let policy = HeaderPolicy::new("x-authz-", &[], &[], MethodOverride::Refuse);
        let mut headers = map(&[("X-HTTP-Method-Override", "DELETE")]);
        assert_eq!(
            policy.clean(&mut headers, false, false),
            Err(RefusedHeader {
                name: "x-http-method-override".to_string(),
                overrides: true,
            })
        );
        let mut headers = map(&[("x.rewrite.url", "/admin")]);
        assert!(policy.clean(&mut headers, true, false).is_err());
        // In ext_authz mode nothing can be removed from what the gateway forwards.
        let mut headers = map(&[("x_remote_user", "root")]);
        let refused = HeaderPolicy::new("x-authz-", &[], &[], MethodOverride::Strip)
            .clean(&mut headers, true, true)
            .unwrap_err();
        assert_eq!(refused.code(), "identity_header");
    }

    #[test]
    fn forwarded_for_from_untrusted_peers_is_replaced() {
        let mut headers = map(&[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-host", "evil")]);
        let client = forwarded(
            &mut headers,
            "203.0.113.9".parse().unwrap(),
            &[net("10.0.0.0/8")],
            Some("good"),
            "http",
        );
        assert_eq!(client, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(headers["x-forwarded-for"], "203.0.113.9");
        assert_eq!(headers["x-forwarded-host"], "good");
        assert_eq!(headers["x-forwarded-proto"], "http");
    }

    #[test]
    fn forwarded_for_from_trusted_peers_is_extended() {
        let mut headers = map(&[("x-forwarded-for", "198.51.100.7, 10.1.1.1")]);
        let client = forwarded(
            &mut headers,
            "10.0.0.2".parse().unwrap(),
            &[net("10.0.0.0/8")],
            None,
            "https",
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
