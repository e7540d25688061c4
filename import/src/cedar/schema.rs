//! The Cedar schema as authz declarations: `type` for common types, `entity` for entity types,
//! `action` for actions, and action groups for the actions others are `in`.
//!
//! Cedar's parser turns the `.cedarschema` text into its JSON form, which this module reads. An
//! action that other actions are members of becomes an authz action group, which has no signature:
//! such an action must not `appliesTo` anything itself, or the import is refused.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{base_name, is_authz_identifier};
use crate::ImportError;
use authz_lang::field_name;

/// The names a translated schema declares, which the policies' translation needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    /// The action groups (actions that have members).
    pub groups: BTreeSet<String>,
    /// The actions with a signature.
    pub actions: BTreeSet<String>,
}

/// A translated schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translated {
    /// The authz declarations.
    pub text: String,
    /// The names declared.
    pub names: Names,
}

/// Translates a schema in Cedar's human-readable format.
pub fn translate(cedarschema: &str) -> Result<Translated, Vec<ImportError>> {
    let (fragment, _warnings) = cedar_policy::SchemaFragment::from_cedarschema_str(cedarschema)
        .map_err(|error| {
            vec![ImportError::SchemaSyntax {
                message: error.to_string(),
            }]
        })?;
    let json = fragment.to_json_value().map_err(|error| {
        vec![ImportError::SchemaSyntax {
            message: error.to_string(),
        }]
    })?;
    translate_json(&json)
}

/// Translates a schema in Cedar's JSON format.
pub fn translate_json(json: &Value) -> Result<Translated, Vec<ImportError>> {
    let mut out = Translator::default();
    let Some(namespaces) = json.as_object() else {
        return Err(vec![ImportError::SchemaSyntax {
            message: "the schema is not a JSON object of namespaces".to_owned(),
        }]);
    };
    // Names first, so that clashes across namespaces are found before any text is written.
    for (namespace, body) in namespaces {
        for section in ["commonTypes", "entityTypes"] {
            for name in keys(body, section) {
                out.claim(&qualified(namespace, name));
            }
        }
    }
    for body in namespaces.values() {
        for (name, ty) in entries(body, "commonTypes") {
            out.common_type(name, ty);
        }
    }
    for body in namespaces.values() {
        for (name, decl) in entries(body, "entityTypes") {
            out.entity_type(name, decl);
        }
    }
    // Actions: those another action is a member of are groups.
    let mut members_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut group_names = BTreeSet::new();
    for body in namespaces.values() {
        for (name, decl) in entries(body, "actions") {
            let parents: Vec<String> = decl
                .get("memberOf")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|parent| parent.get("id").and_then(Value::as_str))
                .map(str::to_owned)
                .collect();
            group_names.extend(parents.iter().cloned());
            members_of.insert(name.to_owned(), parents);
        }
    }
    for body in namespaces.values() {
        for (name, decl) in entries(body, "actions") {
            let parents = members_of.get(name).cloned().unwrap_or_default();
            out.action(name, decl, &parents, group_names.contains(name));
        }
    }
    // A group no action declares is declared here, so that `in` finds it.
    for group in &group_names {
        if !members_of.contains_key(group) {
            out.action(group, &Value::Null, &[], true);
        }
    }
    if out.errors.is_empty() {
        Ok(Translated {
            text: out.text,
            names: out.names,
        })
    } else {
        Err(out.errors)
    }
}

#[derive(Default)]
struct Translator {
    text: String,
    names: Names,
    errors: Vec<ImportError>,
    /// Every declared authz name, with the Cedar name it came from.
    claimed: BTreeMap<String, String>,
    /// The common types, for contexts written as a common type.
    common: BTreeMap<String, Value>,
}

impl Translator {
    fn claim(&mut self, cedar: &str) {
        let name = base_name(cedar).to_owned();
        if let Some(first) = self.claimed.get(&name) {
            if first != cedar {
                self.errors.push(ImportError::NameClash {
                    name,
                    first: first.clone(),
                    second: cedar.to_owned(),
                });
            }
            return;
        }
        self.claimed.insert(name, cedar.to_owned());
    }

    fn unsupported(&mut self, place: String, construct: &str, help: &str) {
        self.errors.push(ImportError::Unsupported {
            place,
            construct: construct.to_owned(),
            help: help.to_owned(),
        });
    }

    fn common_type(&mut self, name: &str, ty: &Value) {
        self.common.insert(name.to_owned(), ty.clone());
        let place = format!("common type `{name}`");
        if let Some(text) = self.ty(ty, &place) {
            self.text
                .push_str(&format!("type {} = {text};\n", base_name(name)));
        }
    }

    fn entity_type(&mut self, name: &str, decl: &Value) {
        let place = format!("entity type `{name}`");
        if decl.get("enum").is_some() {
            self.unsupported(
                place.clone(),
                "an enumerated entity type",
                "declare it as an ordinary entity type and list its entities in the entities file",
            );
        }
        if decl.get("tags").is_some() {
            self.unsupported(
                place.clone(),
                "entity tags",
                "store the tags as a record or set attribute",
            );
        }
        let parents: Vec<&str> = decl
            .get("memberOfTypes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(base_name)
            .collect();
        let mut line = format!("entity {}", base_name(name));
        match parents.as_slice() {
            [] => {}
            [one] => line.push_str(&format!(" in {one}")),
            many => line.push_str(&format!(" in [{}]", many.join(", "))),
        }
        match decl.get("shape") {
            Some(shape) => match self.record(shape, &place) {
                Some(record) if record != "{}" => line.push_str(&format!(" {record}\n")),
                _ => line.push_str(";\n"),
            },
            None => line.push_str(";\n"),
        }
        self.text.push_str(&line);
    }

    fn action(&mut self, name: &str, decl: &Value, parents: &[String], is_group: bool) {
        let place = format!("action `{name}`");
        if !is_authz_identifier(name) {
            self.unsupported(
                place,
                "an action name that is not an identifier",
                "rename the action in the Cedar schema and policies to letters, digits and `_`",
            );
            return;
        }
        let applies = decl.get("appliesTo").filter(|applies| !applies.is_null());
        let types = |key: &str| -> Vec<String> {
            applies
                .and_then(|applies| applies.get(key))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|name| base_name(name).to_owned())
                .collect()
        };
        let principals = types("principalTypes");
        let resources = types("resourceTypes");
        let mut line = format!("action {name}");
        match parents {
            [] => {}
            [one] => line.push_str(&format!(" in {one}")),
            many => line.push_str(&format!(" in [{}]", many.join(", "))),
        }
        let requestable = !principals.is_empty() && !resources.is_empty();
        if is_group {
            if requestable {
                self.unsupported(
                    place,
                    "an action that other actions are in and that applies to requests itself",
                    "an authz action group has no signature: split it into a group and an action",
                );
                return;
            }
            self.names.groups.insert(name.to_owned());
            self.text.push_str(&format!("{line};\n"));
            return;
        }
        if !requestable {
            // An action that applies to nothing can never be requested: a group without members.
            self.names.groups.insert(name.to_owned());
            self.text.push_str(&format!("{line};\n"));
            return;
        }
        self.names.actions.insert(name.to_owned());
        line.push_str(&format!(
            ": {} -> {}",
            principals.join(" | "),
            resources.join(" | ")
        ));
        if let Some(context) = applies.and_then(|applies| applies.get("context")) {
            let context = self.resolve_common(context);
            match self.record(&context, &place) {
                Some(record) if record != "{}" => line.push_str(&format!(" with {record}")),
                _ => {}
            }
        }
        line.push_str(";\n");
        self.text.push_str(&line);
    }

    /// A context written as a common type stands for that type's record.
    fn resolve_common(&self, ty: &Value) -> Value {
        let name = ty.get("name").and_then(Value::as_str);
        let kind = ty.get("type").and_then(Value::as_str);
        match (kind, name) {
            (Some("EntityOrCommon" | "CommonType"), Some(name)) | (Some(name), None)
                if self.common.contains_key(name) =>
            {
                self.common.get(name).cloned().unwrap_or(Value::Null)
            }
            _ => ty.clone(),
        }
    }

    /// A record type: `{ a: T, b?: U }`.
    fn record(&mut self, ty: &Value, place: &str) -> Option<String> {
        if ty.get("additionalAttributes").and_then(Value::as_bool) == Some(true) {
            self.unsupported(
                place.to_owned(),
                "a record with additional attributes",
                "declare every attribute the record may have",
            );
            return None;
        }
        let attributes = ty.get("attributes").and_then(Value::as_object);
        let mut fields = Vec::new();
        for (name, attribute) in attributes.into_iter().flatten() {
            let optional = attribute.get("required").and_then(Value::as_bool) == Some(false);
            let field_place = format!("{place}, attribute `{name}`");
            let ty = self.ty(attribute, &field_place)?;
            let mark = if optional { "?" } else { "" };
            fields.push(format!("{}{mark}: {ty}", field_name(name)));
        }
        if fields.is_empty() {
            return Some("{}".to_owned());
        }
        Some(format!("{{ {} }}", fields.join(", ")))
    }

    /// A type in Cedar's JSON schema form.
    fn ty(&mut self, ty: &Value, place: &str) -> Option<String> {
        let kind = ty.get("type").and_then(Value::as_str).unwrap_or_default();
        let name = ty.get("name").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "String" => Some("String".to_owned()),
            "Long" => Some("Long".to_owned()),
            "Boolean" | "Bool" => Some("Bool".to_owned()),
            "Set" => {
                let element = ty.get("element").unwrap_or(&Value::Null);
                Some(format!("Set<{}>", self.ty(element, place)?))
            }
            "Record" => self.record(ty, place),
            "Entity" => Some(base_name(name).to_owned()),
            "Extension" => self.extension(name, place),
            "EntityOrCommon" | "CommonType" => match base_name(name) {
                "String" => Some("String".to_owned()),
                "Long" => Some("Long".to_owned()),
                "Bool" | "Boolean" => Some("Bool".to_owned()),
                "ipaddr" | "decimal" | "datetime" | "duration" => {
                    self.extension(base_name(name), place)
                }
                other => Some(other.to_owned()),
            },
            other => {
                self.unsupported(
                    place.to_owned(),
                    &format!("the type `{other}`"),
                    "use String, Long, Bool, a set, a record, an entity type, ipaddr, datetime or duration",
                );
                None
            }
        }
    }

    fn extension(&mut self, name: &str, place: &str) -> Option<String> {
        match name {
            "ipaddr" => Some("Ip".to_owned()),
            "datetime" => Some("Timestamp".to_owned()),
            "duration" => Some("Duration".to_owned()),
            other => {
                self.unsupported(
                    place.to_owned(),
                    &format!("the `{other}` type"),
                    "authz has no decimal numbers: scale the values to a `Long` (cents, basis points)",
                );
                None
            }
        }
    }
}

fn qualified(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}::{name}")
    }
}

fn keys<'v>(body: &'v Value, section: &str) -> impl Iterator<Item = &'v String> {
    body.get(section)
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(Map::keys)
}

fn entries<'v>(body: &'v Value, section: &str) -> impl Iterator<Item = (&'v String, &'v Value)> {
    body.get(section)
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|map| map.iter())
}
