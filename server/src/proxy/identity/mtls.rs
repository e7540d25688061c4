//! Service identity from mTLS client certificates.
//!
//! The TLS listener (`proxy::tls`) verifies a client certificate against the configured CAs
//! during the handshake; this module reads the verified certificate's subjectAltName extension
//! and maps one of its names to a principal, as `[identity.mtls]` says:
//!
//! ```toml
//! [identity.mtls]
//! principal_type = "Service"
//! id_from = "spiffe"            # or "uri" or "dns"
//! spiffe_id = "last_segment"    # or "uri": the whole SPIFFE ID is the principal's id
//! trust_domains = ["prod.example"]
//! ```
//!
//! - `spiffe`: the certificate must carry exactly one URI name, and it must be a SPIFFE ID
//!   (`spiffe://trust-domain/path`, lower-case trust domain, non-empty path segments of
//!   letters, digits, `.`, `-` and `_`, no `.` or `..` segment, no query, fragment, port or
//!   user). The id is the last path segment (`spiffe://prod.example/ns/shop/sa/billing` gives
//!   `billing`), or the whole ID with `spiffe_id = "uri"`. When `trust_domains` is not empty the
//!   trust domain must be one of them.
//! - `uri`: the certificate must carry exactly one URI name; the id is that URI.
//! - `dns`: the certificate must carry exactly one DNS name, not a wildcard; the id is that
//!   name in lower case.
//!
//! Several candidate names are refused rather than one of them chosen: which name a principal
//! comes from must never depend on the order a CA wrote them in.
//!
//! rustls-webpki does not expose URI names, so [`subject_alt_names`] walks the DER of the
//! certificate itself. It reads only what it needs (the extensions of the TBS certificate and,
//! in the subjectAltName extension, the `dNSName` and `uniformResourceIdentifier` choices),
//! checks every length against the bytes that remain, accepts only definite DER lengths of at
//! most four bytes, and answers an error, never a panic, for any input.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Map;

use super::config::ConfigError;
use super::{principal_entity, Identity};

/// The value of `x-authz-auth` for a principal from a client certificate.
pub const MTLS_METHOD: &str = "mtls";

/// The most names read from one subjectAltName extension; more is a malformed certificate.
const MAX_NAMES: usize = 256;

/// The `[identity.mtls]` section: how a verified client certificate names its principal.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtlsConfig {
    /// The entity type of the principals certificates name.
    #[serde(default = "default_principal_type")]
    pub principal_type: String,
    /// Which subjectAltName gives the id.
    #[serde(default)]
    pub id_from: IdFrom,
    /// With `id_from = "spiffe"`: the last path segment or the whole SPIFFE ID.
    #[serde(default)]
    pub spiffe_id: SpiffeIdPart,
    /// With `id_from = "spiffe"`: the trust domains accepted (empty: any the CAs vouch for).
    #[serde(default)]
    pub trust_domains: Vec<String>,
}

fn default_principal_type() -> String {
    "Service".to_string()
}

/// `identity.mtls.id_from`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IdFrom {
    /// The one URI name, which must be a SPIFFE ID.
    #[default]
    Spiffe,
    /// The one URI name, whatever its scheme.
    Uri,
    /// The one DNS name.
    Dns,
}

/// `identity.mtls.spiffe_id`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SpiffeIdPart {
    /// The last path segment: `spiffe://td/ns/x/sa/billing` gives `billing`.
    #[default]
    LastSegment,
    /// The whole SPIFFE ID.
    Uri,
}

impl MtlsConfig {
    /// Checks what serde cannot; errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.principal_type.is_empty() {
            return Err(ConfigError::new(
                "identity.mtls.principal_type",
                "must not be empty",
            ));
        }
        for (index, domain) in self.trust_domains.iter().enumerate() {
            if !valid_trust_domain(domain) {
                return Err(ConfigError::new(
                    format!("identity.mtls.trust_domains[{index}]"),
                    "a trust domain is lower-case letters, digits, `.`, `-` and `_`, such as \
                     `prod.example`",
                ));
            }
        }
        if self.id_from != IdFrom::Spiffe && !self.trust_domains.is_empty() {
            return Err(ConfigError::new(
                "identity.mtls.trust_domains",
                "applies only with `id_from = \"spiffe\"`",
            ));
        }
        if self.id_from != IdFrom::Spiffe && self.spiffe_id != SpiffeIdPart::LastSegment {
            return Err(ConfigError::new(
                "identity.mtls.spiffe_id",
                "applies only with `id_from = \"spiffe\"`",
            ));
        }
        Ok(())
    }
}

/// Why a verified certificate names no principal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The certificate's DER (or its subjectAltName extension) cannot be read.
    #[error("malformed client certificate: {0}")]
    Malformed(&'static str),
    /// The certificate has no name of the configured kind.
    #[error("the client certificate has no {0} name")]
    NoName(&'static str),
    /// The certificate has several names of the configured kind.
    #[error("the client certificate has several {0} names")]
    SeveralNames(&'static str),
    /// The URI name is not a valid SPIFFE ID.
    #[error("the client certificate's URI name is not a SPIFFE ID")]
    NotSpiffe,
    /// The SPIFFE ID's trust domain is not one of `trust_domains`.
    #[error("the client certificate's trust domain is not accepted")]
    UntrustedDomain,
    /// The DNS name is a wildcard, which names no single service.
    #[error("the client certificate's DNS name is a wildcard")]
    Wildcard,
}

impl CertError {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            CertError::Malformed(_) => "malformed_certificate",
            CertError::NoName(_) => "no_certificate_name",
            CertError::SeveralNames(_) => "several_certificate_names",
            CertError::NotSpiffe => "not_spiffe",
            CertError::UntrustedDomain => "untrusted_trust_domain",
            CertError::Wildcard => "wildcard_name",
        }
    }
}

/// The verified client certificate of one connection, as the pipeline uses it.
#[derive(Clone, Debug)]
pub struct PeerCertificate {
    /// The name the audit line records: the name the identity came from, else the first URI
    /// or DNS name, else `None`.
    pub name: Option<String>,
    /// The principal the certificate names; `None` when no `[identity.mtls]` maps certificates
    /// to principals (the certificate then only admits the connection).
    pub identity: Option<Result<Arc<Identity>, CertError>>,
}

impl PeerCertificate {
    /// The identity of a request that carries no credential of its own: `Ok(None)` when
    /// certificates are not mapped to principals, the reason when this one names none.
    pub fn request_identity(&self) -> Result<Option<Arc<Identity>>, CertError> {
        match &self.identity {
            None => Ok(None),
            Some(Ok(identity)) => Ok(Some(Arc::clone(identity))),
            Some(Err(error)) => Err(*error),
        }
    }
}

/// Maps verified certificates to principals.
#[derive(Clone, Debug)]
pub struct CertificateMapper {
    config: Option<MtlsConfig>,
}

impl CertificateMapper {
    /// A mapper for `[identity.mtls]`, or one that maps nothing when it is absent.
    pub fn new(config: Option<MtlsConfig>) -> Self {
        CertificateMapper { config }
    }

    /// What the end-entity certificate `der` (already verified by the TLS handshake) says.
    pub fn map(&self, der: &[u8]) -> PeerCertificate {
        let names = subject_alt_names(der);
        let fallback = names.as_ref().ok().and_then(|names| {
            names
                .uris
                .first()
                .or_else(|| names.dns.first())
                .map(|name| audit_safe(name))
        });
        let Some(config) = &self.config else {
            return PeerCertificate {
                name: fallback,
                identity: None,
            };
        };
        match names.and_then(|names| identify(config, &names)) {
            Ok((name, identity)) => PeerCertificate {
                name: Some(audit_safe(&name)),
                identity: Some(Ok(Arc::new(identity))),
            },
            Err(error) => PeerCertificate {
                name: fallback,
                identity: Some(Err(error)),
            },
        }
    }
}

/// The identity a certificate's names give under `config`, with the name it came from.
fn identify(config: &MtlsConfig, names: &SubjectAltNames) -> Result<(String, Identity), CertError> {
    let (name, id) = match config.id_from {
        IdFrom::Spiffe => {
            let uri = only(&names.uris, "URI")?;
            let (domain, last) = parse_spiffe_id(uri).ok_or(CertError::NotSpiffe)?;
            if !config.trust_domains.is_empty()
                && !config.trust_domains.iter().any(|trusted| trusted == domain)
            {
                return Err(CertError::UntrustedDomain);
            }
            let id = match config.spiffe_id {
                SpiffeIdPart::LastSegment => last.to_string(),
                SpiffeIdPart::Uri => uri.to_string(),
            };
            (uri.to_string(), id)
        }
        IdFrom::Uri => {
            let uri = only(&names.uris, "URI")?;
            (uri.to_string(), uri.to_string())
        }
        IdFrom::Dns => {
            let dns = only(&names.dns, "DNS")?;
            if dns.contains('*') {
                return Err(CertError::Wildcard);
            }
            let id = dns.trim_end_matches('.').to_ascii_lowercase();
            if id.is_empty() {
                return Err(CertError::NoName("DNS"));
            }
            (dns.to_string(), id)
        }
    };
    let entity = principal_entity(&config.principal_type, &id, Map::new());
    Ok((name, Identity::new(entity, MTLS_METHOD, None)))
}

fn only<'a>(names: &'a [String], kind: &'static str) -> Result<&'a str, CertError> {
    match names {
        [] => Err(CertError::NoName(kind)),
        [one] => Ok(one.as_str()),
        _ => Err(CertError::SeveralNames(kind)),
    }
}

/// A name for the audit line: at most 256 characters (the names are already printable ASCII).
fn audit_safe(name: &str) -> String {
    name.chars().take(256).collect()
}

/// Whether `domain` is a SPIFFE trust domain name.
fn valid_trust_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 255
        && domain.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'.' | b'-' | b'_')
        })
}

/// A SPIFFE ID's trust domain and last path segment, or `None` when `uri` is not a SPIFFE ID
/// of a workload (one with a path).
pub fn parse_spiffe_id(uri: &str) -> Option<(&str, &str)> {
    if uri.len() > 2048 {
        return None;
    }
    let rest = uri.strip_prefix("spiffe://")?;
    let (domain, path) = rest.split_once('/')?;
    if !valid_trust_domain(domain) {
        return None;
    }
    let mut last = None;
    for segment in path.split('/') {
        let valid = !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_'));
        if !valid {
            return None;
        }
        last = Some(segment);
    }
    Some((domain, last?))
}

/// The DNS and URI names of a certificate's subjectAltName extension.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectAltNames {
    /// `dNSName` entries, in order.
    pub dns: Vec<String>,
    /// `uniformResourceIdentifier` entries, in order.
    pub uris: Vec<String>,
}

/// The object identifier of subjectAltName, 2.5.29.17, as DER content bytes.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
/// `[3] EXPLICIT Extensions` in the TBS certificate.
const EXTENSIONS: u8 = 0xa3;
/// `dNSName [2] IA5String`, implicitly tagged.
const DNS_NAME: u8 = 0x82;
/// `uniformResourceIdentifier [6] IA5String`, implicitly tagged.
const URI_NAME: u8 = 0x86;

/// Reads the DNS and URI names of a DER certificate. A certificate without the extension has
/// none; one whose DER cannot be read, that has the extension twice, or whose names are not
/// printable ASCII is an error.
pub fn subject_alt_names(der: &[u8]) -> Result<SubjectAltNames, CertError> {
    let (certificate, rest) = expect(der, SEQUENCE, "certificate")?;
    if !rest.is_empty() {
        return Err(CertError::Malformed("bytes after the certificate"));
    }
    let (tbs, _) = expect(certificate, SEQUENCE, "TBS certificate")?;
    let mut names = SubjectAltNames::default();
    let mut elements = tbs;
    let mut extensions = None;
    while !elements.is_empty() {
        let (tag, value, rest) = tlv(elements)?;
        if tag == EXTENSIONS {
            if extensions.is_some() {
                return Err(CertError::Malformed("extensions given twice"));
            }
            extensions = Some(value);
        }
        elements = rest;
    }
    let Some(extensions) = extensions else {
        return Ok(names);
    };
    let (mut list, rest) = expect(extensions, SEQUENCE, "extensions")?;
    if !rest.is_empty() {
        return Err(CertError::Malformed("bytes after the extensions"));
    }
    let mut seen = false;
    while !list.is_empty() {
        let (extension, rest) = expect(list, SEQUENCE, "extension")?;
        list = rest;
        let (oid, mut fields) = expect(extension, OID, "extension id")?;
        if oid != SUBJECT_ALT_NAME {
            continue;
        }
        if seen {
            return Err(CertError::Malformed("subjectAltName given twice"));
        }
        seen = true;
        if let Ok((BOOLEAN, _, rest)) = tlv(fields) {
            fields = rest;
        }
        let (value, rest) = expect(fields, OCTET_STRING, "extension value")?;
        if !rest.is_empty() {
            return Err(CertError::Malformed("bytes after the extension value"));
        }
        read_general_names(value, &mut names)?;
    }
    Ok(names)
}

/// Reads `GeneralNames ::= SEQUENCE OF GeneralName`, keeping the DNS and URI names.
fn read_general_names(value: &[u8], names: &mut SubjectAltNames) -> Result<(), CertError> {
    let (mut list, rest) = expect(value, SEQUENCE, "subjectAltName")?;
    if !rest.is_empty() {
        return Err(CertError::Malformed("bytes after the subjectAltName"));
    }
    let mut count = 0usize;
    while !list.is_empty() {
        let (tag, content, rest) = tlv(list)?;
        list = rest;
        count += 1;
        if count > MAX_NAMES {
            return Err(CertError::Malformed("too many names"));
        }
        let target = match tag {
            DNS_NAME => &mut names.dns,
            URI_NAME => &mut names.uris,
            _ => continue,
        };
        if content.is_empty() || !content.iter().all(|byte| byte.is_ascii_graphic()) {
            return Err(CertError::Malformed("a name is not printable ASCII"));
        }
        let text = std::str::from_utf8(content)
            .map_err(|_| CertError::Malformed("a name is not printable ASCII"))?;
        target.push(text.to_string());
    }
    Ok(())
}

/// One element with the tag `tag`: its content and the bytes after it.
fn expect<'a>(
    input: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), CertError> {
    let (found, value, rest) = tlv(input)?;
    if found != tag {
        return Err(CertError::Malformed(what));
    }
    Ok((value, rest))
}

/// One DER element: its tag, its content and the bytes after it. Only single-byte tags and
/// definite lengths of at most four length bytes, in their shortest form, are accepted.
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), CertError> {
    let truncated = CertError::Malformed("truncated DER");
    let (&tag, after_tag) = input.split_first().ok_or(truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(CertError::Malformed("multi-byte DER tag"));
    }
    let (&first, mut after_length) = after_tag.split_first().ok_or(truncated)?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return Err(CertError::Malformed("unsupported DER length"));
        }
        let bytes = after_length.get(..count).ok_or(truncated)?;
        after_length = after_length.get(count..).ok_or(truncated)?;
        if bytes.first() == Some(&0) {
            return Err(CertError::Malformed("non-minimal DER length"));
        }
        let length = bytes
            .iter()
            .fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
        if length < 0x80 {
            return Err(CertError::Malformed("non-minimal DER length"));
        }
        length
    };
    let value = after_length.get(..length).ok_or(truncated)?;
    let rest = after_length.get(length..).ok_or(truncated)?;
    Ok((tag, value, rest))
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A DER element with a correct length.
    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let length = content.len();
        if length < 0x80 {
            out.push(length as u8);
        } else if length < 0x100 {
            out.extend([0x81, length as u8]);
        } else {
            out.extend([0x82, (length >> 8) as u8, length as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    /// A certificate shaped like X.509 (the signature is not checked here) whose
    /// subjectAltName holds `names` (tag, text).
    fn certificate(names: &[(u8, &str)]) -> Vec<u8> {
        let general: Vec<Vec<u8>> = names
            .iter()
            .map(|(tag, text)| der(*tag, text.as_bytes()))
            .collect();
        let san = der(SEQUENCE, &cat(&general));
        certificate_with_extensions(&[extension(SUBJECT_ALT_NAME, false, &san)])
    }

    fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
        let mut parts = vec![der(OID, oid)];
        if critical {
            parts.push(der(BOOLEAN, &[0xff]));
        }
        parts.push(der(OCTET_STRING, value));
        der(SEQUENCE, &cat(&parts))
    }

    fn certificate_with_extensions(extensions: &[Vec<u8>]) -> Vec<u8> {
        let algorithm = der(
            SEQUENCE,
            &der(OID, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
        );
        let name = der(SEQUENCE, &[]);
        let tbs = der(
            SEQUENCE,
            &cat(&[
                der(0xa0, &der(0x02, &[2])),
                der(0x02, &[1]),
                algorithm.clone(),
                name.clone(),
                der(SEQUENCE, &[]),
                name,
                der(SEQUENCE, &[]),
                der(EXTENSIONS, &der(SEQUENCE, &cat(extensions))),
            ]),
        );
        der(SEQUENCE, &cat(&[tbs, algorithm, der(0x03, &[0, 1, 2])]))
    }

    fn mapper(id_from: IdFrom, spiffe_id: SpiffeIdPart, domains: &[&str]) -> CertificateMapper {
        CertificateMapper::new(Some(MtlsConfig {
            principal_type: "Service".to_string(),
            id_from,
            spiffe_id,
            trust_domains: domains.iter().map(|d| (*d).to_string()).collect(),
        }))
    }

    fn principal(peer: &PeerCertificate) -> Result<serde_json::Value, CertError> {
        match &peer.identity {
            Some(Ok(identity)) => Ok(identity.principal.clone()),
            Some(Err(error)) => Err(*error),
            None => panic!("not mapped"),
        }
    }

    #[test]
    fn reads_dns_and_uri_names_and_skips_the_others() {
        let cert = certificate(&[
            (0x81, "ops@example.com"),
            (DNS_NAME, "billing.internal"),
            (0x87, "\u{7f}\0\0\u{1}"),
            (URI_NAME, "spiffe://prod.example/ns/shop/sa/billing"),
        ]);
        let names = subject_alt_names(&cert).unwrap();
        assert_eq!(names.dns, vec!["billing.internal"]);
        assert_eq!(names.uris, vec!["spiffe://prod.example/ns/shop/sa/billing"]);
    }

    #[test]
    fn a_critical_extension_and_other_extensions_are_read_past() {
        let san = der(SEQUENCE, &der(URI_NAME, b"spiffe://td/a"));
        let cert = certificate_with_extensions(&[
            extension(&[0x55, 0x1d, 0x13], true, &der(SEQUENCE, &[])),
            extension(SUBJECT_ALT_NAME, true, &san),
        ]);
        assert_eq!(
            subject_alt_names(&cert).unwrap().uris,
            vec!["spiffe://td/a"]
        );
    }

    #[test]
    fn no_extensions_means_no_names() {
        let algorithm = der(SEQUENCE, &der(OID, &[0x2a]));
        let tbs = der(SEQUENCE, &cat(&[der(0x02, &[1]), algorithm.clone()]));
        let cert = der(SEQUENCE, &cat(&[tbs, algorithm, der(0x03, &[0])]));
        assert_eq!(
            subject_alt_names(&cert).unwrap(),
            SubjectAltNames::default()
        );
    }

    #[test]
    fn spiffe_ids_map_to_their_last_segment_or_the_whole_id() {
        let cert = certificate(&[(URI_NAME, "spiffe://prod.example/ns/shop/sa/billing")]);
        let peer = mapper(IdFrom::Spiffe, SpiffeIdPart::LastSegment, &[]).map(&cert);
        assert_eq!(
            principal(&peer).unwrap(),
            serde_json::json!({"type": "Service", "id": "billing"})
        );
        assert_eq!(
            peer.name.as_deref(),
            Some("spiffe://prod.example/ns/shop/sa/billing")
        );
        let identity = peer.identity.unwrap().unwrap();
        assert_eq!(identity.header("x-authz-auth"), Some("mtls"));
        let whole = mapper(IdFrom::Spiffe, SpiffeIdPart::Uri, &["prod.example"]).map(&cert);
        assert_eq!(
            principal(&whole).unwrap()["id"],
            "spiffe://prod.example/ns/shop/sa/billing"
        );
    }

    #[test]
    fn spiffe_rules() {
        let bad = [
            "spiffe://prod.example",
            "spiffe://prod.example/",
            "spiffe://prod.example/a//b",
            "spiffe://prod.example/a/",
            "spiffe://prod.example/a/..",
            "spiffe://prod.example/./a",
            "spiffe://Prod.example/a",
            "spiffe://prod.example:443/a",
            "spiffe://user@prod.example/a",
            "spiffe://prod.example/a?x=1",
            "spiffe://prod.example/a#b",
            "spiffe://prod.example/a%2Fb",
            "SPIFFE://prod.example/a",
            "https://prod.example/a",
            "spiffe:///a",
        ];
        for uri in bad {
            assert_eq!(parse_spiffe_id(uri), None, "{uri}");
            let peer = mapper(IdFrom::Spiffe, SpiffeIdPart::LastSegment, &[])
                .map(&certificate(&[(URI_NAME, uri)]));
            assert_eq!(principal(&peer), Err(CertError::NotSpiffe), "{uri}");
        }
        assert_eq!(
            parse_spiffe_id("spiffe://td_1.example-x/A.b-c_d"),
            Some(("td_1.example-x", "A.b-c_d"))
        );
    }

    #[test]
    fn trust_domains_restrict_spiffe_ids() {
        let cert = certificate(&[(URI_NAME, "spiffe://staging.example/sa/billing")]);
        let peer = mapper(IdFrom::Spiffe, SpiffeIdPart::LastSegment, &["prod.example"]).map(&cert);
        assert_eq!(principal(&peer), Err(CertError::UntrustedDomain));
        // The audit line still names the certificate.
        assert_eq!(
            peer.name.as_deref(),
            Some("spiffe://staging.example/sa/billing")
        );
    }

    #[test]
    fn several_or_no_candidate_names_are_refused() {
        let two = certificate(&[
            (URI_NAME, "spiffe://td/sa/a"),
            (URI_NAME, "spiffe://td/sa/b"),
        ]);
        let spiffe = mapper(IdFrom::Spiffe, SpiffeIdPart::LastSegment, &[]);
        assert_eq!(
            principal(&spiffe.map(&two)),
            Err(CertError::SeveralNames("URI"))
        );
        let dns_only = certificate(&[(DNS_NAME, "billing.internal")]);
        assert_eq!(
            principal(&spiffe.map(&dns_only)),
            Err(CertError::NoName("URI"))
        );
        let dns = mapper(IdFrom::Dns, SpiffeIdPart::LastSegment, &[]);
        assert_eq!(
            principal(&dns.map(&dns_only)).unwrap()["id"],
            "billing.internal"
        );
        assert_eq!(
            principal(&dns.map(&certificate(&[(DNS_NAME, "*.internal")]))),
            Err(CertError::Wildcard)
        );
        assert_eq!(
            principal(&dns.map(&certificate(&[(DNS_NAME, "A.internal"), (DNS_NAME, "b")]))),
            Err(CertError::SeveralNames("DNS"))
        );
        let uri = mapper(IdFrom::Uri, SpiffeIdPart::LastSegment, &[]);
        assert_eq!(
            principal(&uri.map(&certificate(&[(URI_NAME, "urn:svc:billing")]))).unwrap()["id"],
            "urn:svc:billing"
        );
    }

    #[test]
    fn without_a_mapping_the_certificate_is_only_named() {
        let cert = certificate(&[(URI_NAME, "spiffe://td/sa/a")]);
        let peer = CertificateMapper::new(None).map(&cert);
        assert!(peer.identity.is_none());
        assert_eq!(peer.name.as_deref(), Some("spiffe://td/sa/a"));
    }

    #[test]
    fn malformed_certificates_are_errors() {
        let good = certificate(&[(URI_NAME, "spiffe://td/sa/a")]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("one byte", vec![0x30]),
            ("indefinite length", vec![0x30, 0x80, 0, 0]),
            ("five length bytes", vec![0x30, 0x85, 0, 0, 0, 0, 1, 0]),
            ("non-minimal length", vec![0x30, 0x81, 0x01, 0x00]),
            ("leading zero length", vec![0x30, 0x82, 0x00, 0x81]),
            (
                "length past the end",
                vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff],
            ),
            ("multi-byte tag", vec![0x3f, 0x01, 0x00]),
            ("not a sequence", vec![0x31, 0x00]),
            ("trailing bytes", cat(&[good.clone(), vec![0]])),
            ("truncated", good[..good.len() - 1].to_vec()),
            (
                "SAN twice",
                certificate_with_extensions(&[
                    extension(SUBJECT_ALT_NAME, false, &der(SEQUENCE, &[])),
                    extension(SUBJECT_ALT_NAME, false, &der(SEQUENCE, &[])),
                ]),
            ),
            (
                "SAN value not a sequence",
                certificate_with_extensions(&[extension(SUBJECT_ALT_NAME, false, &[0x04, 0x00])]),
            ),
            (
                "a name past its sequence",
                certificate_with_extensions(&[extension(
                    SUBJECT_ALT_NAME,
                    false,
                    &[0x30, 0x03, 0x86, 0x05, b'a'],
                )]),
            ),
            (
                "non-ASCII name",
                certificate(&[(URI_NAME, "spiffe://td/sa/é")]),
            ),
            ("control character", certificate(&[(DNS_NAME, "a\nb")])),
            ("empty name", certificate(&[(DNS_NAME, "")])),
        ];
        for (what, bytes) in cases {
            assert!(
                matches!(subject_alt_names(&bytes), Err(CertError::Malformed(_))),
                "{what}: {:?}",
                subject_alt_names(&bytes)
            );
            let peer = mapper(IdFrom::Spiffe, SpiffeIdPart::LastSegment, &[]).map(&bytes);
            assert!(
                matches!(peer.identity, Some(Err(CertError::Malformed(_)))),
                "{what}"
            );
        }
    }

    #[test]
    fn too_many_names_are_refused() {
        let names: Vec<(u8, &str)> = (0..=MAX_NAMES).map(|_| (DNS_NAME, "a")).collect();
        assert_eq!(
            subject_alt_names(&certificate(&names)),
            Err(CertError::Malformed("too many names"))
        );
    }

    #[test]
    fn config_validation_names_the_key() {
        let config = |text: &str| toml::from_str::<MtlsConfig>(text);
        assert!(config("id_from = \"spiffe\"\nextra = 1").is_err());
        assert!(config("id_from = \"email\"").is_err());
        let error = config("id_from = \"dns\"\ntrust_domains = [\"td\"]")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(error.key, "identity.mtls.trust_domains");
        let error = config("trust_domains = [\"Bad Domain\"]")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(error.key, "identity.mtls.trust_domains[0]");
        let defaults = config("").unwrap();
        assert_eq!(defaults.principal_type, "Service");
        assert_eq!(defaults.id_from, IdFrom::Spiffe);
        assert!(defaults.validate().is_ok());
    }

    proptest! {
        /// Any bytes: an answer, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = subject_alt_names(&bytes);
            let _ = mapper(IdFrom::Spiffe, SpiffeIdPart::LastSegment, &[]).map(&bytes);
        }

        /// A well-formed certificate with bytes changed, cut or inserted: an answer, never a
        /// panic.
        #[test]
        fn mutated_certificates_never_panic(
            edits in proptest::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 1..8),
        ) {
            let mut bytes = certificate(&[
                (DNS_NAME, "billing.internal"),
                (URI_NAME, "spiffe://prod.example/ns/shop/sa/billing"),
            ]);
            for (position, byte, kind) in edits {
                let index = usize::from(position) % (bytes.len() + 1);
                match kind {
                    0 if index < bytes.len() => bytes[index] = byte,
                    1 => bytes.insert(index, byte),
                    _ => bytes.truncate(index),
                }
            }
            let _ = subject_alt_names(&bytes);
            let _ = mapper(IdFrom::Dns, SpiffeIdPart::LastSegment, &[]).map(&bytes);
        }
    }
}
