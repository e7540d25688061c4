//! Checks the identity configuration against the policies' schema when the proxy loads: every
//! principal type must be an entity type, and every claim mapped to an attribute must exist on that
//! type with a type a claim can carry. Mappings written in the short form get the schema's type,
//! so a claim of the wrong JSON type rejects the token instead of failing the decision later.

use authz_runtime::schema::{Schema, ValueType};

use super::identity::config::{AttributeMapping, ClaimType};
use super::identity::IdentityConfig;

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
