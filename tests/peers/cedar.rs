//! The workload in Cedar (`cedar-policy` 4), and the translation of authz entities and requests
//! (the JSON forms of docs/language.md) into Cedar's, which the example conformance harness shares.
//!
//! Literal form, per tenant `t7` (the authz text of `gen-workload`, clause for clause):
//!
//! ```text
//! @id("t7-editors")
//! permit (principal in Role::"t7-editor", action in [Action::"read", Action::"write"], resource is Document)
//! when { resource.tenant == Tenant::"t7" }
//! unless { resource.classification == "secret" && principal.clearance < 3 };
//! ```
//!
//! Expert form: the same two rules once, with `principal in Role::"editor"` (a global role) and
//! `when { principal.tenant == resource.tenant }`; users are members of the global roles instead of
//! the tenant ones.

use std::fmt::Write as _;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityId, EntityTypeName, EntityUid, PolicySet,
    Request, Schema, ValidationMode, Validator,
};
use serde_json::{json, Map, Value};

use crate::peers::workload::{global_role, Form, Workload};
use crate::peers::Engine;

/// The Cedar schema of the workload, the same for both forms.
pub const WORKLOAD_SCHEMA: &str = r#"
entity Tenant;
entity Role in [Tenant];
entity User in [Role] = { "tenant": Tenant, "clearance": Long, "suspended": Bool };
entity Document = { "tenant": Tenant, "owner": User, "classification": String };
action read, write, delete appliesTo { principal: User, resource: Document };
"#;

/// The two global rules of the workload.
const GLOBAL_POLICIES: &str = r#"
@id("owners")
permit (principal is User, action, resource is Document)
when { resource.owner == principal };

@id("suspended")
forbid (principal is User, action, resource)
when { principal.suspended };
"#;

/// The expert form's two tenant-independent rules.
const EXPERT_POLICIES: &str = r#"
@id("editors")
permit (principal in Role::"editor", action in [Action::"read", Action::"write"], resource is Document)
when { principal.tenant == resource.tenant }
unless { resource.classification == "secret" && principal.clearance < 3 };

@id("viewers")
permit (principal in Role::"viewer", action == Action::"read", resource is Document)
when { principal.tenant == resource.tenant && resource.classification != "secret" };
"#;

/// The Cedar policy text of the workload for `tenants` tenants (`t0` to `t{tenants-1}`) in `form`.
pub fn workload_policies(tenants: usize, form: Form) -> String {
    let mut text = String::from(GLOBAL_POLICIES);
    match form {
        Form::Expert => text.push_str(EXPERT_POLICIES),
        Form::Literal => {
            for tenant in 0..tenants {
                let _ = write!(
                    text,
                    r#"
@id("t{tenant}-editors")
permit (principal in Role::"t{tenant}-editor", action in [Action::"read", Action::"write"], resource is Document)
when {{ resource.tenant == Tenant::"t{tenant}" }}
unless {{ resource.classification == "secret" && principal.clearance < 3 }};

@id("t{tenant}-viewers")
permit (principal in Role::"t{tenant}-viewer", action == Action::"read", resource is Document)
when {{ resource.tenant == Tenant::"t{tenant}" && resource.classification != "secret" }};
"#
                );
            }
        }
    }
    text
}

/// Parses a Cedar schema in the human-readable syntax.
pub fn parse_schema(text: &str) -> Result<Schema, String> {
    Schema::from_cedarschema_str(text)
        .map(|(schema, _warnings)| schema)
        .map_err(|err| format!("bad Cedar schema: {err:?}"))
}

/// Parses a Cedar policy set and validates it against `schema` in strict mode.
pub fn parse_policies(text: &str, schema: &Schema) -> Result<PolicySet, String> {
    let policies =
        PolicySet::from_str(text).map_err(|err| format!("bad Cedar policies: {err:?}"))?;
    let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
    if !result.validation_passed() {
        let errors: Vec<String> = result
            .validation_errors()
            .map(|err| format!("{err:?}"))
            .collect();
        return Err(format!(
            "Cedar policies do not validate:\n{}",
            errors.join("\n")
        ));
    }
    Ok(policies)
}

/// Translates entities in the JSON form of docs/language.md (`{"type","id","attrs","parents"}`, entity
/// references written `{"type","id"}`) into Cedar entities, checked against `schema`.
pub fn entities_from_authz_json(entities: &Value, schema: &Schema) -> Result<Entities, String> {
    let Value::Array(items) = entities else {
        return Err("entities must be a JSON array".to_string());
    };
    let mut cedar = Vec::with_capacity(items.len());
    for entity in items {
        let kind = entity.get("type").cloned().unwrap_or(Value::Null);
        let id = entity.get("id").cloned().unwrap_or(Value::Null);
        let attrs = entity
            .get("attrs")
            .map(cedar_value)
            .unwrap_or_else(|| json!({}));
        let parents = entity.get("parents").cloned().unwrap_or_else(|| json!([]));
        cedar.push(json!({"uid": {"type": kind, "id": id}, "attrs": attrs, "parents": parents}));
    }
    Entities::from_json_value(Value::Array(cedar), Some(schema))
        .map_err(|err| format!("bad entities: {err:?}"))
}

/// An attribute value in Cedar's entity JSON: an entity reference `{"type","id"}` becomes
/// `{"__entity": {"type","id"}}`; sets (arrays) and records are translated element by element.
fn cedar_value(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(cedar_value).collect()),
        Value::Object(fields) if is_entity_ref(fields) => json!({ "__entity": value }),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, field)| (name.clone(), cedar_value(field)))
                .collect::<Map<String, Value>>(),
        ),
        other => other.clone(),
    }
}

fn is_entity_ref(fields: &Map<String, Value>) -> bool {
    fields.len() == 2
        && fields.get("type").is_some_and(Value::is_string)
        && fields.get("id").is_some_and(Value::is_string)
}

/// An entity uid from an entity reference `{"type": "User", "id": "alice"}`.
pub fn entity_uid(reference: &Value) -> Result<EntityUid, String> {
    let kind = reference
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no `type` in {reference}"))?;
    let id = reference
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no `id` in {reference}"))?;
    let kind = EntityTypeName::from_str(kind).map_err(|err| format!("bad type `{kind}`: {err}"))?;
    Ok(EntityUid::from_type_name_and_id(kind, EntityId::new(id)))
}

/// The uid `Action::"name"`.
pub fn action_uid(name: &str) -> Result<EntityUid, String> {
    entity_uid(&json!({"type": "Action", "id": name}))
}

/// Translates a decision request (docs/language.md) into a Cedar request, validated against `schema`
/// (the context is typed by the action's declaration).
pub fn request_from_authz_json(request: &Value, schema: &Schema) -> Result<Request, String> {
    let principal = entity_uid(request.get("principal").unwrap_or(&Value::Null))?;
    let action_name = request
        .get("action")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no `action` in {request}"))?;
    let action = action_uid(action_name)?;
    let resource = entity_uid(request.get("resource").unwrap_or(&Value::Null))?;
    let context = request.get("context").cloned().unwrap_or_else(|| json!({}));
    let context = Context::from_json_value(context, Some((schema, &action)))
        .map_err(|err| format!("bad context in {request}: {err}"))?;
    Request::new(principal, action, resource, context, Some(schema))
        .map_err(|err| format!("bad request {request}: {err}"))
}

/// The workload's entities rewritten for the expert form: the tenant roles `Role("t7-editor")`
/// give way to the two global roles `Role("editor")` and `Role("viewer")`.
pub fn expert_entities_json(entities: &Value) -> Value {
    let Value::Array(items) = entities else {
        return entities.clone();
    };
    let mut out: Vec<Value> = ["editor", "viewer"]
        .iter()
        .map(|role| json!({"type": "Role", "id": role, "attrs": {}, "parents": []}))
        .collect();
    for entity in items {
        if entity.get("type").and_then(Value::as_str) == Some("Role") {
            continue;
        }
        let mut entity = entity.clone();
        if let Some(Value::Array(parents)) = entity.get_mut("parents") {
            for parent in parents.iter_mut() {
                if parent.get("type").and_then(Value::as_str) != Some("Role") {
                    continue;
                }
                let role = parent
                    .get("id")
                    .and_then(Value::as_str)
                    .map(|id| global_role(id).to_string());
                if let (Some(role), Some(id)) = (role, parent.get_mut("id")) {
                    *id = Value::String(role);
                }
            }
        }
        out.push(entity);
    }
    Value::Array(out)
}

/// Cedar loaded with the workload.
pub struct CedarEngine {
    authorizer: Authorizer,
    policies: PolicySet,
    entities: Entities,
    requests: Vec<Request>,
    errors: u64,
}

impl CedarEngine {
    pub fn new(workload: &Workload, form: Form) -> Result<CedarEngine, String> {
        let schema = parse_schema(WORKLOAD_SCHEMA)?;
        let policies = parse_policies(&workload_policies(workload.tenants.len(), form), &schema)?;
        let entities = match form {
            Form::Literal => entities_from_authz_json(&workload.entities_json, &schema)?,
            Form::Expert => {
                entities_from_authz_json(&expert_entities_json(&workload.entities_json), &schema)?
            }
        };
        let requests = workload
            .requests_json
            .iter()
            .map(|request| request_from_authz_json(request, &schema))
            .collect::<Result<Vec<Request>, String>>()?;
        Ok(CedarEngine {
            authorizer: Authorizer::new(),
            policies,
            entities,
            requests,
            errors: 0,
        })
    }
}

impl Engine for CedarEngine {
    fn decide(&mut self, request_index: usize) -> bool {
        let Some(request) = self.requests.get(request_index) else {
            return false;
        };
        let response = self
            .authorizer
            .is_authorized(request, &self.policies, &self.entities);
        if response.diagnostics().errors().next().is_some() {
            self.errors += 1;
        }
        response.decision() == Decision::Allow
    }

    fn errors(&self) -> u64 {
        self.errors
    }
}

/// A policy set written in Cedar (`schema.cedarschema` and `policies.cedar` in one directory),
/// loaded with entities in the JSON form of docs/language.md: the Cedar side of the example conformance law.
pub struct CedarApp {
    pub schema: Schema,
    pub policies: PolicySet,
    pub entities: Entities,
    authorizer: Authorizer,
}

/// One Cedar decision, with what the conformance comparison needs.
#[derive(Clone, Debug)]
pub struct CedarDecision {
    pub allow: bool,
    /// The `@id` annotations of the determining policies (the permits that allowed, or the
    /// forbids that denied), sorted.
    pub determining: Vec<String>,
    /// The evaluation errors, as text; Cedar skips an erroring policy.
    pub errors: Vec<String>,
}

impl CedarApp {
    /// Loads `dir/schema.cedarschema` and `dir/policies.cedar` (validated in strict mode) and the
    /// entities.
    pub fn load(dir: &std::path::Path, entities_json: &Value) -> Result<CedarApp, String> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .map_err(|err| format!("cannot read `{}`: {err}", path.display()))
        };
        let schema = parse_schema(&read("schema.cedarschema")?)?;
        let policies = parse_policies(&read("policies.cedar")?, &schema)?;
        let entities = entities_from_authz_json(entities_json, &schema)?;
        Ok(CedarApp {
            schema,
            policies,
            entities,
            authorizer: Authorizer::new(),
        })
    }

    /// Decides a request in the JSON form of docs/language.md.
    pub fn decide(&self, request: &Value) -> Result<CedarDecision, String> {
        let request = request_from_authz_json(request, &self.schema)?;
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &self.entities);
        let mut determining: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| {
                self.policies
                    .policy(id)
                    .and_then(|policy| policy.annotation("id"))
                    .map_or_else(|| id.to_string(), str::to_string)
            })
            .collect();
        determining.sort();
        Ok(CedarDecision {
            allow: response.decision() == Decision::Allow,
            determining,
            errors: response
                .diagnostics()
                .errors()
                .map(ToString::to_string)
                .collect(),
        })
    }
}
