//! Checks the proxy's configuration against the policies' schema, and derives what the proxy
//! serves a set with ([`ProxyPlan`]: its context plan and rate limiters), whenever a policy set
//! is installed: at start, and on every reload and policy write ([`ProxyFit::install`]), so that a
//! set the proxy could not serve is refused like a set that fails to compile and the previous one
//! keeps serving.
//!
//! Every principal type (of JWT issuers, API keys, mTLS, `anonymous`) must be an entity type, and
//! every claim mapped to an attribute must exist on that type with a type a claim can carry.
//! Mappings written in the short form get the schema's type, so a claim of the wrong JSON type
//! rejects the token instead of failing the decision later. `[upstream_headers]` attributes
//! must exist, and every `[context]` field must be a field of some action's context that its
//! source can fill.

use std::collections::BTreeMap;
use std::sync::Arc;

use authz_runtime::schema::{Schema, ValueType};

use super::context_plan::ContextPlan;
use super::limits::Limiters;
use super::shared_limits::Declared;
use crate::host::state::Snapshot;

use super::identity::config::{AttributeMapping, ClaimType};
use super::identity::IdentityConfig;
use super::upstream_headers::UpstreamHeaders;

/// What the proxy derives from a policy set when it installs it, held with the set's snapshot.
pub struct ProxyPlan {
    /// How each action's context is filled from the HTTP request.
    pub context: ContextPlan,
    /// The set's rate limits, counting on from the previous set's for limits of the same name.
    pub limiters: Arc<Limiters>,
}

/// What of the proxy's configuration depends on the schema, kept to check every new set.
pub struct ProxyFit {
    /// The identity configuration as written (completed afresh against each schema).
    identity: IdentityConfig,
    /// The claim types the running authenticator verifies tokens with, per issuer.
    claim_types: Vec<BTreeMap<String, Option<ClaimType>>>,
    /// The principal types of API keys.
    api_key_types: Vec<String>,
    /// The `anonymous` principal's type.
    anonymous: Option<String>,
    /// Every principal type the identity sources produce.
    principal_types: Vec<String>,
    upstream_headers: UpstreamHeaders,
    /// `[context]`: field (or `record.field`) to source.
    context: BTreeMap<String, String>,
}

impl ProxyFit {
    /// `written` is the identity configuration as read; `in_use` the one completed against the
    /// first set, which the authenticator was built from.
    pub fn new(
        written: IdentityConfig,
        in_use: &IdentityConfig,
        api_key_types: Vec<String>,
        anonymous: Option<String>,
        upstream_headers: UpstreamHeaders,
        context: BTreeMap<String, String>,
    ) -> ProxyFit {
        let mut principal_types: Vec<String> = in_use
            .jwt
            .iter()
            .map(|issuer| issuer.principal_type.clone())
            .chain(api_key_types.iter().cloned())
            .chain(in_use.mtls.iter().map(|mtls| mtls.principal_type.clone()))
            .chain(anonymous.iter().cloned())
            .collect();
        principal_types.sort_unstable();
        principal_types.dedup();
        ProxyFit {
            identity: written,
            claim_types: claim_types(in_use),
            api_key_types,
            anonymous,
            principal_types,
            upstream_headers,
            context,
        }
    }

    /// What the proxy serves `snapshot` with, when it can serve it; `previous` is the set being
    /// served (`None` at start), whose limiters keep counting. The error names the key of the
    /// configuration that does not fit.
    pub fn install(
        &self,
        snapshot: &Snapshot,
        previous: Option<&Snapshot>,
    ) -> Result<ProxyPlan, String> {
        let schema = &snapshot.program.schema;
        self.check(schema)?;
        let context = ContextPlan::derive(&self.context, schema)?;
        let declared: Vec<Declared<'_>> =
            snapshot.program.limits.iter().map(Declared::of).collect();
        let previous_limiters = previous
            .and_then(Snapshot::derived::<ProxyPlan>)
            .map(|plan| &*plan.limiters);
        Ok(ProxyPlan {
            context,
            limiters: Arc::new(Limiters::new(&declared, previous_limiters)),
        })
    }

    /// Whether the proxy, as configured and running, can serve a set with `schema`; the error
    /// names the key that does not fit.
    pub fn check(&self, schema: &Schema) -> Result<(), String> {
        let mut identity = self.identity.clone();
        check(&mut identity, schema)?;
        if claim_types(&identity) != self.claim_types {
            return Err(
                "`identity.jwt[].attributes`: the set changes the type of an attribute that                  tokens carry; restart the proxy to verify tokens with the new types"
                    .to_string(),
            );
        }
        let is_entity_type = |name: &str| {
            schema
                .type_id(name)
                .is_some_and(|ty| ty != schema.action_type)
        };
        if let Some(missing) = self.api_key_types.iter().find(|ty| !is_entity_type(ty)) {
            return Err(format!(
                "`identity.api_keys`: keys name principals of type `{missing}`, which is not an \
                 entity type of the policies"
            ));
        }
        if let Some(anonymous) = self.anonymous.as_deref().filter(|ty| !is_entity_type(ty)) {
            return Err(format!(
                "`proxy.anonymous.type`: `{anonymous}` is not an entity type of the policies"
            ));
        }
        self.upstream_headers.check(schema, &self.principal_types)?;
        for (field, source) in &self.context {
            check_context_field(schema, field, source)?;
        }
        Ok(())
    }
}

/// The claim type of every mapped attribute, per issuer.
fn claim_types(identity: &IdentityConfig) -> Vec<BTreeMap<String, Option<ClaimType>>> {
    identity
        .jwt
        .iter()
        .map(|issuer| {
            issuer
                .attributes
                .iter()
                .map(|(name, mapping)| (name.clone(), mapping.claim_type))
                .collect()
        })
        .collect()
}

/// A `[context]` field must be a field (`record.field` inside a record) of at least one
/// action's context, of a type its source can fill: a mapping that fills nothing is a mistake
/// that would deny every request of the actions that need it.
fn check_context_field(schema: &Schema, field: &str, source: &str) -> Result<(), String> {
    let key = format!("`context.\"{field}\"`");
    let mut found: Option<&ValueType> = None;
    'actions: for action in &schema.actions {
        let mut layout = schema.layout(action.context);
        let mut parts = field.split('.').peekable();
        while let (Some(part), Some(current)) = (parts.next(), layout) {
            let Some(def) = schema
                .attr_id(part)
                .and_then(|attr| current.slot(attr))
                .and_then(|slot| current.fields.get(slot))
            else {
                continue 'actions;
            };
            if parts.peek().is_none() {
                found = Some(&def.ty);
                break 'actions;
            }
            layout = match &def.ty {
                ValueType::Record(inner) => schema.layout(*inner),
                _ => None,
            };
        }
    }
    let Some(ty) = found else {
        return Err(format!(
            "{key}: no action's context has a field `{field}` (mapped to `{source}`)"
        ));
    };
    match ty {
        ValueType::Long
        | ValueType::Bool
        | ValueType::String
        | ValueType::Ip
        | ValueType::Timestamp
        | ValueType::Duration => Ok(()),
        _ => Err(format!(
            "{key}: the field is a set, record or entity, which `{source}` cannot fill"
        )),
    }
}

/// Checks and completes `config`; the error names the key.
pub fn check(config: &mut IdentityConfig, schema: &Schema) -> Result<(), String> {
    for (index, issuer) in config.jwt.iter_mut().enumerate() {
        let key = format!("identity.jwt[{index}]");
        let Some(ty) = schema
            .type_id(&issuer.principal_type)
            .filter(|ty| *ty != schema.action_type)
        else {
            return Err(format!(
                "`{key}.principal_type`: `{}` is not an entity type of the policies",
                issuer.principal_type
            ));
        };
        if issuer.attributes.is_empty() {
            continue;
        }
        let layout = schema
            .entity_type(ty)
            .and_then(|def| schema.layout(def.layout));
        let Some(layout) = layout else { continue };
        for (name, mapping) in issuer.attributes.iter_mut() {
            let field = schema
                .attr_id(name)
                .and_then(|attr| layout.slot(attr))
                .and_then(|slot| layout.fields.get(slot));
            let Some(field) = field else {
                return Err(format!(
                    "`{key}.attributes.{name}`: `{}` has no attribute `{name}`",
                    issuer.principal_type
                ));
            };
            complete(mapping, &field.ty, field.optional)
                .map_err(|message| format!("`{key}.attributes.{name}`: {message}"))?;
        }
        let missing: Vec<&str> = layout
            .fields
            .iter()
            .filter(|field| !field.optional)
            .map(|field| schema.attr_name(field.attr))
            .filter(|name| !issuer.attributes.contains_key(*name))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "`{key}.attributes`: a token that carries attributes defines the whole `{}`, but the required attributes {} are not mapped",
                issuer.principal_type,
                missing.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if let Some(mtls) = &config.mtls {
        if schema
            .type_id(&mtls.principal_type)
            .filter(|ty| *ty != schema.action_type)
            .is_none()
        {
            return Err(format!(
                "`identity.mtls.principal_type`: `{}` is not an entity type of the policies",
                mtls.principal_type
            ));
        }
    }
    Ok(())
}

/// Gives a mapping the claim type the schema's attribute type needs, or says why none can.
fn complete(mapping: &mut AttributeMapping, ty: &ValueType, optional: bool) -> Result<(), String> {
    let needed = match ty {
        ValueType::String | ValueType::Ip | ValueType::Timestamp | ValueType::Duration => {
            ClaimType::String
        }
        ValueType::Long => ClaimType::Long,
        ValueType::Bool => ClaimType::Bool,
        ValueType::Set(element) => match **element {
            ValueType::String => ClaimType::SetOfString,
            ValueType::Long => ClaimType::SetOfLong,
            ValueType::Bool => ClaimType::SetOfBool,
            _ => {
                return Err("sets of entities, records or sets cannot come from a claim".to_string())
            }
        },
        ValueType::Entity(_) | ValueType::Record(_) => {
            return Err("entity and record attributes cannot come from a claim".to_string())
        }
    };
    match mapping.claim_type {
        Some(declared) if declared != needed => {
            return Err(format!(
                "the claim is declared `{declared:?}` but the attribute needs `{needed:?}`"
            ))
        }
        _ => mapping.claim_type = Some(needed),
    }
    if mapping.optional && !optional {
        return Err("the attribute is required, so its claim cannot be optional".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        let source = authz_lang::SourceFile::new(
            "s.authz",
            "entity User { tier: String, level: Long, roles: Set<String>, nick?: String }\n\
             action read: User -> User;\n",
        );
        authz_compiler::compile_sources(&[source])
            .program
            .unwrap()
            .schema
    }

    fn identity(attributes: &str) -> IdentityConfig {
        let text = format!(
            "[[jwt]]\nissuer = \"i\"\naudiences = [\"a\"]\nalgorithms = [\"ES256\"]\njwks_file = \"j.json\"\n\
             principal_type = \"User\"\nattributes = {{ {attributes} }}\n"
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn short_mappings_get_the_schema_type() {
        let mut config = identity("tier = \"tier\", level = \"lvl\", roles = \"roles\"");
        check(&mut config, &schema()).unwrap();
        let attributes = &config.jwt[0].attributes;
        assert_eq!(attributes["level"].claim_type, Some(ClaimType::Long));
        assert_eq!(attributes["roles"].claim_type, Some(ClaimType::SetOfString));
    }

    #[test]
    fn mistakes_name_the_key() {
        let schema = schema();
        let cases = [
            (
                "tier = \"tier\", level = \"l\", roles = \"r\", colour = \"c\"",
                "attributes.colour",
            ),
            ("tier = \"tier\", roles = \"r\"", "`level`"),
            (
                "tier = { claim = \"t\", type = \"Long\" }, level = \"l\", roles = \"r\"",
                "attributes.tier",
            ),
        ];
        for (attributes, expected) in cases {
            let error = check(&mut identity(attributes), &schema).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
        let mut unknown = identity("");
        unknown.jwt[0].principal_type = "Robot".to_string();
        assert!(check(&mut unknown, &schema)
            .unwrap_err()
            .contains("principal_type"));
    }
}
