//! The workload in Rego, evaluated by `regorus`.
//!
//! The policy is package `authz`, split into modules of 1,000 tenant policies. Entities go into
//! `data` (users and documents keyed by id, a user with the roles it is a member of); a request
//! is the input `{"principal": "u1", "action": "read", "resource": "d1"}`; the decision is
//! `data.authz.allow`, true when some `permit` body holds and no `forbid` body does.
//!
//! Literal form, per tenant `t7` (the authz policy clause for clause; `restricted` is the shared
//! helper for the `unless` clause):
//!
//! ```text
//! permit if {
//!     "t7-editor" in principal.roles
//!     input.action in {"read", "write"}
//!     resource.tenant == "t7"
//!     not restricted
//! }
//! ```
//!
//! Expert form: the same two rules once, with the global role (`"editor" in principal.roles`) and
//! `principal.tenant == resource.tenant`; users carry the global role names.

use std::fmt::Write as _;

use regorus::Value;
use serde_json::{json, Map};

use crate::peers::workload::{Form, Workload};
use crate::peers::Engine;

/// What every form shares: the decision, the request's entities, the helper and the global rules.
const PRELUDE: &str = r#"package authz

import rego.v1

default allow := false

allow if {
	permit
	not forbid
}

principal := data.users[input.principal]

resource := data.documents[input.resource]

restricted if {
	resource.classification == "secret"
	principal.clearance < 3
}

# owners
permit if resource.owner == input.principal

# suspended
forbid if principal.suspended
"#;

const EXPERT_RULES: &str = r#"
# editors
permit if {
	"editor" in principal.roles
	input.action in {"read", "write"}
	principal.tenant == resource.tenant
	not restricted
}

# viewers
permit if {
	"viewer" in principal.roles
	input.action == "read"
	principal.tenant == resource.tenant
	resource.classification != "secret"
}
"#;

/// Tenants per Rego module: 1,000 policies, as in the generated `tenants-NNNN.authz` files (and
/// well below regorus's limit of 1 MiB per policy file).
const TENANTS_PER_MODULE: usize = 500;

/// The Rego modules of the workload for `tenants` tenants in `form`, as (file name, text): the
/// prelude with the global rules (and the expert rules), then the literal form's tenant rules in
/// modules of the same package.
pub fn workload_modules(tenants: usize, form: Form) -> Vec<(String, String)> {
    let mut prelude = String::from(PRELUDE);
    if form == Form::Expert {
        prelude.push_str(EXPERT_RULES);
    }
    let mut modules = vec![("authz.rego".to_string(), prelude)];
    if form == Form::Literal {
        let mut first = 0;
        while first < tenants {
            let last = (first + TENANTS_PER_MODULE).min(tenants);
            let mut text = String::from("package authz\n\nimport rego.v1\n");
            for tenant in first..last {
                let _ = write!(
                    text,
                    r#"
# t{tenant}-editors
permit if {{
	"t{tenant}-editor" in principal.roles
	input.action in {{"read", "write"}}
	resource.tenant == "t{tenant}"
	not restricted
}}

# t{tenant}-viewers
permit if {{
	"t{tenant}-viewer" in principal.roles
	input.action == "read"
	resource.tenant == "t{tenant}"
	resource.classification != "secret"
}}
"#
                );
            }
            modules.push((
                format!("tenants-{:04}.rego", first / TENANTS_PER_MODULE),
                text,
            ));
            first = last;
        }
    }
    modules
}

/// The workload's entities as the Rego `data` document.
pub fn workload_data(workload: &Workload, form: Form) -> serde_json::Value {
    let users: Map<String, serde_json::Value> = workload
        .users
        .iter()
        .map(|user| {
            let role = match form {
                Form::Literal => user.role.as_str(),
                Form::Expert => user.global_role(),
            };
            (
                user.id.clone(),
                json!({
                    "tenant": user.tenant,
                    "roles": [role],
                    "clearance": user.clearance,
                    "suspended": user.suspended,
                }),
            )
        })
        .collect();
    let documents: Map<String, serde_json::Value> = workload
        .documents
        .iter()
        .map(|document| {
            (
                document.id.clone(),
                json!({
                    "tenant": document.tenant,
                    "owner": document.owner,
                    "classification": document.classification,
                }),
            )
        })
        .collect();
    json!({ "users": users, "documents": documents })
}

/// regorus loaded with the workload.
pub struct RegoEngine {
    engine: regorus::Engine,
    inputs: Vec<Value>,
    errors: u64,
}

impl RegoEngine {
    pub fn new(workload: &Workload, form: Form) -> Result<RegoEngine, String> {
        let mut engine = regorus::Engine::new();
        for (name, text) in workload_modules(workload.tenants.len(), form) {
            engine
                .add_policy(name, text)
                .map_err(|err| format!("bad Rego policy: {err}"))?;
        }
        let data = Value::from_json_str(&workload_data(workload, form).to_string())
            .map_err(|err| format!("bad Rego data: {err}"))?;
        engine
            .add_data(data)
            .map_err(|err| format!("cannot add Rego data: {err}"))?;
        let inputs = workload
            .requests
            .iter()
            .map(|request| {
                Value::from_json_str(
                    &json!({
                        "principal": request.principal,
                        "action": request.action,
                        "resource": request.resource,
                    })
                    .to_string(),
                )
                .map_err(|err| format!("bad Rego input: {err}"))
            })
            .collect::<Result<Vec<Value>, String>>()?;
        Ok(RegoEngine {
            engine,
            inputs,
            errors: 0,
        })
    }
}

impl Engine for RegoEngine {
    fn decide(&mut self, request_index: usize) -> bool {
        let Some(input) = self.inputs.get(request_index) else {
            return false;
        };
        self.engine.set_input(input.clone());
        match self.engine.eval_rule("data.authz.allow".to_string()) {
            Ok(value) => value == Value::from(true),
            Err(_) => {
                self.errors += 1;
                false
            }
        }
    }

    fn errors(&self) -> u64 {
        self.errors
    }
}
