//! The upstream header mapping (`[upstream_headers]`): headers the proxy sets on each allowed
//! request from verified identity, so that upstreams need neither the caller's token nor JSON
//! parsing to know who is calling.
//!
//! ```toml
//! [upstream_headers]
//! "x-user-id" = "principal.id"          # the principal's id, plain
//! "x-user-type" = "principal.type"      # its entity type
//! "x-user-roles" = "principal.roles"    # an attribute, as the decision saw it
//! "x-user-email" = "claim.email"        # a claim of the verified JWT
//! "x-auth-issuer" = "issuer"            # the JWT issuer
//! "x-auth-method" = "auth"              # jwt, api-key or mtls
//! ```
//!
//! Values are encoded so that every upstream reads them the same way: each byte outside printable
//! ASCII, and `%` and `,`, is percent-encoded (`%XX`, upper-case); a set (or a JSON array claim)
//! becomes its elements so encoded, joined by `,`. A source without a value for the request
//! (no such attribute, claim or issuer) sets no header. The names are removed from every incoming
//! request in every spelling, like the proxy's own identity headers.

use authz_runtime::explain::Namer;
use authz_runtime::value::EntityUid;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value as Json;

use super::identity::Identity;

/// Where one mapped header takes its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `principal.id`
    PrincipalId,
    /// `principal.type`
    PrincipalType,
    /// `principal.NAME`: an attribute of the principal entity as the decision saw it.
    PrincipalAttribute(String),
    /// `claim.NAME`: a claim of the verified JWT.
    Claim(String),
    /// `issuer`: the JWT issuer.
    Issuer,
    /// `auth`: the kind of credential.
    Auth,
}

impl Source {
    /// Parses a source as written in the configuration.
    pub fn parse(text: &str) -> Result<Source, String> {
        let source = match text {
            "principal.id" => Source::PrincipalId,
            "principal.type" => Source::PrincipalType,
            "issuer" => Source::Issuer,
            "auth" => Source::Auth,
            other => {
                if let Some(name) = other.strip_prefix("principal.") {
                    Source::PrincipalAttribute(name.to_string())
                } else if let Some(name) = other.strip_prefix("claim.") {
                    Source::Claim(name.to_string())
                } else {
                    return Err(format!(
                        "unknown source `{other}`; use `principal.id`, `principal.type`, \
                         `principal.ATTRIBUTE`, `claim.NAME`, `issuer` or `auth`"
                    ));
                }
            }
        };
        match &source {
            Source::PrincipalAttribute(name) | Source::Claim(name) if name.is_empty() => {
                Err(format!("`{text}` names no attribute or claim"))
            }
            _ => Ok(source),
        }
    }
}

/// The parsed mapping, in configuration order.
#[derive(Clone, Debug, Default)]
pub struct UpstreamHeaders {
    headers: Vec<(HeaderName, Source)>,
}

impl UpstreamHeaders {
    /// Parses the `[upstream_headers]` table.
    pub fn new<'a>(
        table: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Result<UpstreamHeaders, String> {
        let mut headers = Vec::new();
        for (name, source) in table {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`upstream_headers.\"{name}\"`: not a header name"))?;
            let source = Source::parse(source)
                .map_err(|message| format!("`upstream_headers.\"{name}\"`: {message}"))?;
            headers.push((header, source));
        }
        Ok(UpstreamHeaders { headers })
    }

    /// The header names, for stripping them from incoming requests.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().map(|(name, _)| name.as_str())
    }

    /// Checks every `principal.ATTRIBUTE` against the schema: the attribute must exist on at
    /// least one of the principal types the identity sources can produce.
    pub fn check(
        &self,
        schema: &authz_runtime::schema::Schema,
        principal_types: &[String],
    ) -> Result<(), String> {
        for (name, source) in &self.headers {
            let Source::PrincipalAttribute(attribute) = source else {
                continue;
            };
            let known = schema.attr_id(attribute).is_some_and(|attr| {
                principal_types.iter().any(|ty| {
                    schema
                        .type_id(ty)
                        .and_then(|id| schema.entity_type(id))
                        .and_then(|def| schema.layout(def.layout))
                        .and_then(|layout| layout.slot(attr))
                        .is_some()
                })
            });
            if !known {
                return Err(format!(
                    "`upstream_headers.\"{name}\"`: no principal type ({}) has an attribute \
                     `{attribute}`",
                    principal_types.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Sets the mapped headers for an allowed request of `principal`, replacing any value.
    pub fn apply(
        &self,
        headers: &mut HeaderMap,
        identity: Option<&Identity>,
        namer: &Namer<'_>,
        principal: EntityUid,
    ) {
        for (name, source) in &self.headers {
            let parts: Option<Vec<String>> = match source {
                Source::PrincipalId => Some(vec![namer.text(principal.id).to_string()]),
                Source::PrincipalType => Some(vec![namer
                    .program
                    .schema
                    .type_name(principal.ty)
                    .to_string()]),
                Source::PrincipalAttribute(attribute) => namer
                    .attribute(principal, attribute)
                    .and_then(|value| namer.plain_texts(value)),
                Source::Claim(claim) => identity
                    .and_then(|identity| identity.claims.as_ref())
                    .and_then(|claims| claims.get(claim))
                    .and_then(claim_texts),
                Source::Issuer => identity
                    .and_then(|identity| identity.claims.as_ref())
                    .and_then(|claims| claims.get("iss"))
                    .and_then(Json::as_str)
                    .map(|issuer| vec![issuer.to_string()]),
                Source::Auth => identity.map(|identity| vec![identity.method.to_string()]),
            };
            match parts.and_then(|parts| HeaderValue::from_str(&encode(&parts)).ok()) {
                Some(value) => {
                    headers.insert(name.clone(), value);
                }
                None => {
                    headers.remove(name);
                }
            }
        }
    }
}

/// A claim as plain texts: a string, number or boolean, or an array of them.
fn claim_texts(claim: &Json) -> Option<Vec<String>> {
    let scalar = |value: &Json| match value {
        Json::String(text) => Some(text.clone()),
        Json::Number(number) => Some(number.to_string()),
        Json::Bool(flag) => Some(flag.to_string()),
        _ => None,
    };
    match claim {
        Json::Array(items) => items.iter().map(scalar).collect(),
        other => scalar(other).map(|text| vec![text]),
    }
}

/// The header value of some parts: each percent-encoded outside printable ASCII and at `%` and
/// `,`, joined by `,`.
pub fn encode(parts: &[String]) -> String {
    let mut out = String::new();
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        for &byte in part.as_bytes() {
            if byte.is_ascii_graphic() && byte != b'%' && byte != b',' {
                out.push(char::from(byte));
            } else {
                super::normalize::push_escape(&mut out, byte);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_encoded_one_way() {
        assert_eq!(encode(&["alice".to_string()]), "alice");
        assert_eq!(
            encode(&["a,b".to_string(), "ü %".to_string(), "x\r\ny".to_string()]),
            "a%2Cb,%C3%BC%20%25,x%0D%0Ay"
        );
        assert_eq!(encode(&[]), "");
    }

    #[test]
    fn sources_parse_or_say_what_is_expected() {
        assert_eq!(Source::parse("principal.id"), Ok(Source::PrincipalId));
        assert_eq!(
            Source::parse("principal.roles"),
            Ok(Source::PrincipalAttribute("roles".to_string()))
        );
        assert_eq!(
            Source::parse("claim.email"),
            Ok(Source::Claim("email".to_string()))
        );
        assert!(Source::parse("claim.").is_err());
        assert!(Source::parse("token").unwrap_err().contains("principal.id"));
    }
}
