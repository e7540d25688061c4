//! Cedar to authz: `authz import cedar --schema S --policies P [--entities E]`.
//!
//! Cedar's own parser reads the inputs (the `cedar-policy` crate: the schema as its JSON form, each
//! policy as its JSON form, the EST), so that whatever Cedar accepts is read exactly as Cedar reads
//! it; this module only translates. The parts:
//!
//! - [`schema`]: entity types, common types (as `type` declarations), actions (with their groups);
//! - [`policies`]: each policy with its `@id` (or Cedar's own id, `policy0`, `policy1`, ...) and
//!   the comments before it;
//! - [`entities`]: the entities JSON (`uid`, `__entity`, `__extn`) as authz entities JSON, and a
//!   Cedar request as an authz decision request.
//!
//! Namespaces are dropped (authz has none): `Shop::User` becomes `User`, and two names that would
//! become one are refused ([`ImportError::NameClash`]).

pub mod entities;
pub mod policies;
pub mod schema;

use crate::ImportError;

/// The Cedar texts to import.
#[derive(Clone, Copy, Debug)]
pub struct CedarInput<'a> {
    /// The schema, in Cedar's human-readable format (`.cedarschema`).
    pub schema: &'a str,
    /// The policies (`.cedar`).
    pub policies: &'a str,
    /// The entities JSON, when there is one.
    pub entities: Option<&'a str>,
}

/// The authz translation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    /// `schema.authz`: type declarations, entity types and actions.
    pub schema: String,
    /// `policies.authz`: the policies, in the order of the Cedar file.
    pub policies: String,
    /// How many policies were translated.
    pub policy_count: usize,
    /// `entities.json`, when entities were given.
    pub entities: Option<String>,
}

/// Translates a Cedar schema, policies and entities; every problem found is reported, not only
/// the first.
pub fn import(input: CedarInput<'_>) -> Result<Imported, Vec<ImportError>> {
    let mut errors = Vec::new();
    let schema = schema::translate(input.schema);
    let (schema_text, names) = match schema {
        Ok(translated) => (translated.text, Some(translated.names)),
        Err(mut found) => {
            errors.append(&mut found);
            (String::new(), None)
        }
    };
    let (policies, policy_count) = match &names {
        Some(names) => match policies::translate(input.policies, names) {
            Ok(translated) => translated,
            Err(mut found) => {
                errors.append(&mut found);
                (String::new(), 0)
            }
        },
        None => (String::new(), 0),
    };
    let entities = match input.entities {
        Some(text) => match entities::translate_entities(text) {
            Ok(json) => Some(json),
            Err(mut found) => {
                errors.append(&mut found);
                None
            }
        },
        None => None,
    };
    if errors.is_empty() {
        Ok(Imported {
            schema: schema_text,
            policies,
            policy_count,
            entities,
        })
    } else {
        Err(errors)
    }
}

/// A Cedar name without its namespace: `Shop::User` is `User`.
pub(crate) fn base_name(name: &str) -> &str {
    name.rsplit("::").next().unwrap_or(name)
}

/// Whether `name` can be written bare in authz: one identifier token, not a keyword.
pub(crate) fn is_authz_identifier(name: &str) -> bool {
    let lexed = authz_lang::lexer::lex(name);
    matches!(
        lexed.tokens.as_slice(),
        [ident, eof]
            if ident.kind == authz_lang::lexer::TokenKind::Ident
                && ident.span.len() == name.len()
                && eof.kind == authz_lang::lexer::TokenKind::Eof
    ) && lexed.errors.is_empty()
}

#[cfg(test)]
mod tests;
