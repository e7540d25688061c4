//! The workload in casbin (`casbin-rs`), with an ABAC matcher over request structs.
//!
//! casbin has one matcher per model, evaluated against every policy line in turn; a line's `rule`
//! column says which condition of the matcher applies to it, and its `eft` column whether it
//! allows or denies (effect: some allow and no deny, the authz semantics). Role membership is a
//! grouping (`g, u5, t7-editor`); an action list is a regular expression on the `act` column, the
//! usual casbin idiom. Every rule of the workload is expressible this way, so casbin is expected
//! to agree on every request.
//!
//! Literal form: one policy line per authz policy, e.g. for tenant `t7`
//! `p, t7-editor, t7, ^(read|write)$, editors, allow` and `p, t7-viewer, t7, ^read$, viewers, allow`,
//! with the matcher testing `r.obj.tenant == p.dom`. Expert form: the two lines once, for the
//! global roles `editor` and `viewer`, with the matcher testing `r.sub.tenant == r.obj.tenant`.

use casbin::prelude::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};
use serde::Serialize;

use crate::peers::workload::{Form, Workload};
use crate::peers::Engine;

/// The casbin model; `{TENANT_TEST}` is replaced per form.
const MODEL_TEMPLATE: &str = r#"
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, dom, act, rule, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = (p.rule == "owners" && r.obj.owner == r.sub.id) || (p.rule == "suspended" && r.sub.suspended) || ({TENANT_TEST} && g(r.sub.id, p.sub) && regexMatch(r.act, p.act) && ((p.rule == "editors" && !(r.obj.classification == "secret" && r.sub.clearance < 3)) || (p.rule == "viewers" && r.obj.classification != "secret")))
"#;

/// The casbin model text of `form`.
pub fn workload_model(form: Form) -> String {
    let tenant_test = match form {
        Form::Literal => "r.obj.tenant == p.dom",
        Form::Expert => "r.sub.tenant == r.obj.tenant",
    };
    MODEL_TEMPLATE.replace("{TENANT_TEST}", tenant_test)
}

/// The policy lines (`p` rows, without the leading `p`) of the workload in `form`.
pub fn workload_policy_lines(tenants: usize, form: Form) -> Vec<Vec<String>> {
    let row = |cells: [&str; 5]| cells.iter().map(|cell| cell.to_string()).collect();
    let mut lines: Vec<Vec<String>> = vec![
        row(["*", "*", ".*", "owners", "allow"]),
        row(["*", "*", ".*", "suspended", "deny"]),
    ];
    match form {
        Form::Expert => {
            lines.push(row(["editor", "*", "^(read|write)$", "editors", "allow"]));
            lines.push(row(["viewer", "*", "^read$", "viewers", "allow"]));
        }
        Form::Literal => {
            for tenant in 0..tenants {
                let editor = format!("t{tenant}-editor");
                let viewer = format!("t{tenant}-viewer");
                let tenant = format!("t{tenant}");
                lines.push(row([
                    &editor,
                    &tenant,
                    "^(read|write)$",
                    "editors",
                    "allow",
                ]));
                lines.push(row([&viewer, &tenant, "^read$", "viewers", "allow"]));
            }
        }
    }
    lines
}

/// The grouping lines (`g` rows): each user in its role.
pub fn workload_grouping_lines(workload: &Workload, form: Form) -> Vec<Vec<String>> {
    workload
        .users
        .iter()
        .map(|user| {
            let role = match form {
                Form::Literal => user.role.clone(),
                Form::Expert => user.global_role().to_string(),
            };
            vec![user.id.clone(), role]
        })
        .collect()
}

/// The request's subject, as the matcher's `r.sub`.
#[derive(Serialize, Hash)]
pub struct Subject {
    pub id: String,
    pub tenant: String,
    pub clearance: i64,
    pub suspended: bool,
}

/// The request's object, as the matcher's `r.obj`.
#[derive(Serialize, Hash)]
pub struct Object {
    pub id: String,
    pub tenant: String,
    pub owner: String,
    pub classification: String,
}

/// casbin loaded with the workload.
pub struct CasbinEngine {
    enforcer: Enforcer,
    requests: Vec<(Subject, Object, String)>,
    errors: u64,
}

impl CasbinEngine {
    pub fn new(workload: &Workload, form: Form) -> Result<CasbinEngine, String> {
        // casbin's constructors are async; a current-thread runtime drives them once, at load.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|err| format!("cannot start a tokio runtime: {err}"))?;
        let enforcer = runtime.block_on(async {
            let model = DefaultModel::from_str(&workload_model(form))
                .await
                .map_err(|err| format!("bad casbin model: {err}"))?;
            let mut enforcer = Enforcer::new(model, MemoryAdapter::default())
                .await
                .map_err(|err| format!("cannot build the casbin enforcer: {err}"))?;
            enforcer
                .add_policies(workload_policy_lines(workload.tenants.len(), form))
                .await
                .map_err(|err| format!("cannot add casbin policies: {err}"))?;
            enforcer
                .add_grouping_policies(workload_grouping_lines(workload, form))
                .await
                .map_err(|err| format!("cannot add casbin groupings: {err}"))?;
            Ok::<Enforcer, String>(enforcer)
        })?;

        let users: std::collections::HashMap<&str, &crate::peers::workload::User> = workload
            .users
            .iter()
            .map(|user| (user.id.as_str(), user))
            .collect();
        let documents: std::collections::HashMap<&str, &crate::peers::workload::Document> =
            workload
                .documents
                .iter()
                .map(|document| (document.id.as_str(), document))
                .collect();
        let requests = workload
            .requests
            .iter()
            .map(|request| {
                let user = users
                    .get(request.principal.as_str())
                    .ok_or_else(|| format!("unknown user `{}`", request.principal))?;
                let document = documents
                    .get(request.resource.as_str())
                    .ok_or_else(|| format!("unknown document `{}`", request.resource))?;
                Ok((
                    Subject {
                        id: user.id.clone(),
                        tenant: user.tenant.clone(),
                        clearance: user.clearance,
                        suspended: user.suspended,
                    },
                    Object {
                        id: document.id.clone(),
                        tenant: document.tenant.clone(),
                        owner: document.owner.clone(),
                        classification: document.classification.clone(),
                    },
                    request.action.clone(),
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(CasbinEngine {
            enforcer,
            requests,
            errors: 0,
        })
    }
}

impl Engine for CasbinEngine {
    fn decide(&mut self, request_index: usize) -> bool {
        let Some((subject, object, action)) = self.requests.get(request_index) else {
            return false;
        };
        match self.enforcer.enforce((subject, object, action.as_str())) {
            Ok(allow) => allow,
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
