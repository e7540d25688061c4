//! Explanations: a decision rendered for people and machines, with names instead of numbers.
//!
//! This is the JSON of the decision API and of `authz eval`:
//! `{"decision":"allow"|"deny","policies":[ids],"errors":[{"policy":id,"message":…}],
//! "reasons":[…],"obligations":[{"limit":name,"key":…,"requests":n,"per_seconds":s}]}`.

use std::fmt::Write as _;

use serde_json::{json, Value as Json};

use crate::decision::{Decision, ErrorSite};
use crate::eval::EvalError;
use crate::intern::Sym;
use crate::program::{Effect, Expr, Program};
use crate::request::Request;
use crate::store::EntityStore;
use crate::value::{EntityUid, PoolId, Value};

/// Where an evaluation error arose: a policy (by id) or a limit's key (by the limit's name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorOrigin<'a> {
    /// The policy with this id.
    Policy(&'a str),
    /// The limit with this name.
    Limit(&'a str),
}

/// Appends `text` to `out` as a JSON string.
pub fn write_json_string(out: &mut String, text: &str) {
    out.push('"');
    let mut start = 0;
    for (index, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..index]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        start = index + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// Renders values and errors of one decision with their names.
pub struct Namer<'a> {
    /// The program.
    pub program: &'a Program,
    /// The store built for it.
    pub store: &'a EntityStore,
    /// The request.
    pub request: &'a Request,
}

impl Namer<'_> {
    /// The text of a symbol.
    pub fn text(&self, sym: Sym) -> &str {
        self.store
            .interner
            .resolve(sym)
            .or_else(|| self.request.strings.resolve(sym))
            .unwrap_or("?")
    }

    /// An entity as it is written in a policy: `Type("id")`.
    pub fn entity(&self, uid: EntityUid) -> String {
        format!(
            "{}({:?})",
            self.program.schema.type_name(uid.ty),
            self.text(uid.id)
        )
    }

    /// An entity as a request writes it: `{"type": "User", "id": "alice"}`.
    pub fn entity_json(&self, uid: EntityUid) -> Json {
        json!({ "type": self.program.schema.type_name(uid.ty), "id": self.text(uid.id) })
    }

    /// The value of attribute `name` of an entity as this request sees it (the request's own
    /// entity of that identity first, then the store's); `None` when the entity, the attribute
    /// or its value is missing.
    pub fn attribute(&self, uid: EntityUid, name: &str) -> Option<Value> {
        let schema = &self.program.schema;
        let attr = schema.attr_id(name)?;
        let slot = schema
            .entity_type(uid.ty)
            .and_then(|def| schema.layout(def.layout))
            .and_then(|layout| layout.slot(attr))?;
        let overlay = self.request.entities.as_deref().and_then(|o| o.get(uid));
        let value = match overlay {
            Some(entity) => self
                .request
                .pool
                .slice(entity.attrs_start, entity.attrs_len as usize)
                .get(slot)
                .copied(),
            None => {
                let entity = self.store.get(uid)?;
                self.store.attrs(entity).get(slot).copied()
            }
        };
        value.filter(|value| *value != Value::Absent)
    }

    /// A scalar value, or each scalar element of a set, as plain text (a string without quotes,
    /// an entity as its id, an IP range as `addr/prefix`); `None` for records and nested sets.
    pub fn plain_texts(&self, value: Value) -> Option<Vec<String>> {
        let scalar = |value: Value| -> Option<String> {
            Some(match value {
                Value::Bool(b) => b.to_string(),
                Value::Long(n) | Value::Timestamp(n) | Value::Duration(n) => n.to_string(),
                Value::Str(sym) => self.text(sym).to_string(),
                Value::Entity(uid) => self.text(uid.id).to_string(),
                Value::Ip(ip) => {
                    let net = self.pool(ip.pool)?.ip(ip.index)?;
                    let full = if net.addr.is_ipv4() { 32 } else { 128 };
                    if net.prefix == full {
                        net.addr.to_string()
                    } else {
                        format!("{}/{}", net.addr, net.prefix)
                    }
                }
                Value::Set(_) | Value::Record(_) | Value::Absent => return None,
            })
        };
        match value {
            Value::Set(set) => self
                .elements(set)
                .iter()
                .map(|element| scalar(*element))
                .collect(),
            other => scalar(other).map(|text| vec![text]),
        }
    }

    /// The pool a value of `id` lives in (`None` for scratch values, which never outlive an
    /// evaluation).
    fn pool(&self, id: PoolId) -> Option<&crate::value::ValuePool> {
        match id {
            PoolId::Program => Some(&self.program.pool),
            PoolId::Store => Some(&self.store.pool),
            PoolId::Request => Some(&self.request.pool),
            PoolId::Scratch => None,
        }
    }

    /// A set's elements.
    fn elements(&self, set: crate::value::SetRef) -> &[Value] {
        self.pool(set.pool)
            .map_or(&[][..], |pool| pool.slice(set.start, set.len as usize))
    }

    /// A record's present fields, by name, in layout order.
    fn fields(&self, record: crate::value::RecordRef) -> impl Iterator<Item = (&str, Value)> + '_ {
        let schema = &self.program.schema;
        let fields = schema
            .layout(record.layout)
            .map_or(&[][..], |layout| &layout.fields);
        let values = self
            .pool(record.pool)
            .map_or(&[][..], |pool| pool.slice(record.start, fields.len()));
        fields
            .iter()
            .zip(values)
            .filter(|(_, value)| **value != Value::Absent)
            .map(|(field, value)| (schema.attr_name(field.attr), *value))
    }

    /// A value as it would be written in a policy.
    pub fn value(&self, value: Value) -> String {
        let mut out = String::new();
        self.write_value(&mut out, value);
        out
    }

    fn write_value(&self, out: &mut String, value: Value) {
        match value {
            Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            Value::Long(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Str(sym) => {
                let _ = write!(out, "{:?}", self.text(sym));
            }
            Value::Entity(uid) => out.push_str(&self.entity(uid)),
            Value::Set(set) => {
                out.push('[');
                for (i, element) in self.elements(set).iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    self.write_value(out, *element);
                }
                out.push(']');
            }
            Value::Record(record) => {
                out.push('{');
                for (i, (name, value)) in self.fields(record).enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{name}: ");
                    self.write_value(out, value);
                }
                out.push('}');
            }
            Value::Ip(ip) => match self.pool(ip.pool).and_then(|p| p.ip(ip.index)) {
                Some(net) => {
                    let full = if net.addr.is_ipv4() { 32 } else { 128 };
                    if net.prefix == full {
                        let _ = write!(out, "ip(\"{}\")", net.addr);
                    } else {
                        let _ = write!(out, "ip(\"{}/{}\")", net.addr, net.prefix);
                    }
                }
                None => out.push_str("ip(?)"),
            },
            Value::Timestamp(ms) => {
                let _ = write!(out, "timestamp({ms}ms)");
            }
            Value::Duration(ms) => {
                let _ = write!(out, "duration(\"{ms}ms\")");
            }
            Value::Absent => out.push_str("(absent)"),
        }
    }

    /// An evaluation error as a sentence.
    pub fn error(&self, error: &EvalError) -> String {
        match error {
            EvalError::EntityNotFound(uid) => {
                format!("entity `{}` does not exist", self.entity(*uid))
            }
            EvalError::AttributeAbsent(attr) => {
                format!(
                    "attribute `{}` is absent",
                    self.program.schema.attr_name(*attr)
                )
            }
            EvalError::Overflow(overflow) => overflow.to_string(),
            EvalError::Extension(reason) => (*reason).to_string(),
            EvalError::WrongType(found) => format!("unexpected value of kind `{found}`"),
        }
    }

    /// A value as a request or the entities file writes it in JSON (`{"type":…,"id":…}` for an
    /// entity, strings for `Ip`, `Timestamp` and `Duration`), appended to `out`; absent fields
    /// of records are left out.
    pub fn write_json(&self, out: &mut String, value: Value) {
        let string = write_json_string;
        match value {
            Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            Value::Long(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Str(sym) => string(out, self.text(sym)),
            Value::Entity(uid) => {
                out.push_str("{\"type\":");
                string(out, self.program.schema.type_name(uid.ty));
                out.push_str(",\"id\":");
                string(out, self.text(uid.id));
                out.push('}');
            }
            Value::Set(set) => {
                out.push('[');
                for (i, element) in self.elements(set).iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write_json(out, *element);
                }
                out.push(']');
            }
            Value::Record(record) => {
                out.push('{');
                for (i, (name, value)) in self.fields(record).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    string(out, name);
                    out.push(':');
                    self.write_json(out, value);
                }
                out.push('}');
            }
            Value::Ip(ip) => match self.pool(ip.pool).and_then(|p| p.ip(ip.index)) {
                Some(net) if net.prefix == if net.addr.is_ipv4() { 32 } else { 128 } => {
                    string(out, &net.addr.to_string());
                }
                Some(net) => string(out, &format!("{}/{}", net.addr, net.prefix)),
                None => out.push_str("null"),
            },
            Value::Timestamp(millis) => string(out, &crate::ext::format_timestamp(millis)),
            Value::Duration(millis) => string(out, &crate::ext::format_duration(millis)),
            Value::Absent => out.push_str("null"),
        }
    }

    /// The ids of the determining policies: the permits that allowed, or the forbids that
    /// denied (none for a default deny).
    pub fn policy_ids<'d>(&'d self, decision: &'d Decision) -> impl Iterator<Item = &'d str> + 'd {
        decision
            .determining
            .iter()
            .map(|&index| self.policy_id(index))
    }

    /// The `@reason`s of the forbids that denied (none when allowed).
    pub fn reasons<'d>(&'d self, decision: &'d Decision) -> impl Iterator<Item = &'d str> + 'd {
        let denied = !decision.allow;
        decision
            .determining
            .iter()
            .filter(move |_| denied)
            .filter_map(|&index| self.program.policies.get(index as usize))
            .filter(|policy| policy.effect == Effect::Forbid)
            .filter_map(|policy| policy.reason.as_deref())
    }

    /// For a denial, the principal or resource the decision found missing (it met an
    /// `EntityNotFound` error on it), as the error's sentence: the cause to give before any
    /// `@reason`, which a forbid may have given only because the data was missing.
    pub fn missing_causes(&self, decision: &Decision) -> Vec<String> {
        let mut causes: Vec<String> = Vec::new();
        if decision.allow {
            return causes;
        }
        for (_, error) in &decision.errors {
            if let EvalError::EntityNotFound(uid) = error {
                let named = *uid == self.request.principal || *uid == self.request.resource;
                let cause = self.error(error);
                if named && !causes.contains(&cause) {
                    causes.push(cause);
                }
            }
        }
        causes
    }

    /// The errors met, each with the policy or limit where it arose.
    pub fn errors<'d>(
        &'d self,
        decision: &'d Decision,
    ) -> impl Iterator<Item = (ErrorOrigin<'d>, &'d EvalError)> + 'd {
        decision.errors.iter().map(|(site, error)| {
            let origin = match site {
                ErrorSite::Policy(index) => ErrorOrigin::Policy(self.policy_id(*index)),
                ErrorSite::Limit(index) => ErrorOrigin::Limit(
                    self.program
                        .limits
                        .get(*index as usize)
                        .map_or("?", |l| l.name.as_str()),
                ),
            };
            (origin, error)
        })
    }

    /// The limits that apply to an allowed request, each with its key as text.
    pub fn obligations<'d>(
        &'d self,
        decision: &'d Decision,
    ) -> impl Iterator<Item = (&'d crate::program::Limit, String)> + 'd {
        decision.obligations.iter().filter_map(|obligation| {
            let limit = self.program.limits.get(obligation.limit as usize)?;
            let key: Vec<String> = decision
                .keys(obligation)
                .iter()
                .map(|value| self.value(*value))
                .collect();
            Some((limit, key.join(",")))
        })
    }

    fn policy_id(&self, index: u32) -> &str {
        self.program
            .policies
            .get(index as usize)
            .map_or("?", |p| p.id.as_str())
    }

    /// The decision as the JSON of the decision API.
    pub fn decision_json(&self, decision: &Decision) -> Json {
        let policies: Vec<&str> = self.policy_ids(decision).collect();
        let reasons: Vec<&str> = self.reasons(decision).collect();
        let errors: Vec<Json> = self
            .errors(decision)
            .map(|(origin, error)| match origin {
                ErrorOrigin::Policy(id) => json!({ "policy": id, "message": self.error(error) }),
                ErrorOrigin::Limit(name) => json!({ "limit": name, "message": self.error(error) }),
            })
            .collect();
        let obligations: Vec<Json> = self
            .obligations(decision)
            .map(|(limit, key)| {
                json!({
                    "limit": limit.name,
                    "key": key,
                    "requests": limit.count,
                    "per_seconds": limit.period_seconds,
                    "burst": limit.burst,
                })
            })
            .collect();
        json!({
            "decision": if decision.allow { "allow" } else { "deny" },
            "policies": policies,
            "errors": errors,
            "reasons": reasons,
            "obligations": obligations,
        })
    }
}

/// The most candidate permits an explanation lists.
pub const MAX_EXPLAINED_CANDIDATES: usize = 32;

/// What a candidate permit's condition came to, part by part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartOutcome {
    /// Every part held: the permit applied (a forbid won, or it allowed).
    Holds,
    /// This part (an index into the policy's `parts`) was false.
    False(usize),
    /// This part failed with an error.
    Failed(usize, EvalError),
}

/// A permit the index proposed for a request, and how its condition fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The policy.
    pub policy: crate::index::PolicyIdx,
    /// The first part of its condition that was false or failed, or that all held.
    pub outcome: PartOutcome,
}

/// The candidate permits of `request`, each with the first part of its condition that was false
/// or failed, in the order a decision considers them (at most [`MAX_EXPLAINED_CANDIDATES`]).
/// Explanations only: deciding never calls this.
pub fn candidates(
    program: &Program,
    store: &EntityStore,
    request: &Request,
    scratch: &mut crate::eval::Scratch,
) -> Vec<Candidate> {
    let proposed = crate::eval::candidate_permits(program, store, request, scratch);
    let mut evaluator = crate::eval::Evaluator::new(program, store, request, scratch);
    proposed
        .into_iter()
        .take(MAX_EXPLAINED_CANDIDATES)
        .map(|policy| {
            let outcome = match program
                .policies
                .get(policy as usize)
                .and_then(|policy| policy.condition.as_ref().map(|c| (policy, c)))
            {
                None => PartOutcome::Holds,
                Some((written, condition)) => {
                    let parts = conjuncts(program, condition, written.parts.len());
                    let mut outcome = PartOutcome::Holds;
                    for (index, part) in parts.iter().enumerate() {
                        match evaluator.eval(part) {
                            Ok(Value::Bool(true)) => {}
                            Ok(Value::Bool(false)) => {
                                outcome = PartOutcome::False(index);
                                break;
                            }
                            Ok(other) => {
                                outcome = PartOutcome::Failed(
                                    index,
                                    EvalError::WrongType(other.kind_name()),
                                );
                                break;
                            }
                            Err(error) => {
                                outcome = PartOutcome::Failed(index, error);
                                break;
                            }
                        }
                    }
                    outcome
                }
            };
            Candidate { policy, outcome }
        })
        .collect()
}

/// The `n` conjuncts of a lowered condition `((c1 && c2) && c3)...`, in source order; the whole
/// condition as one part when its shape is not that (then `n` was not its number of parts).
fn conjuncts<'p>(program: &'p Program, condition: &'p Expr, n: usize) -> Vec<&'p Expr> {
    let resolve = |mut expr: &'p Expr| {
        // Shared sub-expressions stand for their bodies; bounded, as sharing never nests a slot
        // in itself.
        for _ in 0..program.shared.len() + 1 {
            match expr {
                Expr::Shared(slot) => match program.shared.get(*slot as usize) {
                    Some(body) => expr = body,
                    None => break,
                },
                _ => break,
            }
        }
        expr
    };
    let mut parts = Vec::with_capacity(n.max(1));
    let mut rest = condition;
    for _ in 1..n {
        match resolve(rest) {
            Expr::And(left, right) => {
                parts.push(&**right);
                rest = left;
            }
            _ => return vec![condition],
        }
    }
    parts.push(rest);
    parts.reverse();
    parts
}

impl Namer<'_> {
    /// The candidates as JSON: `[{"policy": id, "outcome": "holds" | "false" | "error",
    /// "condition": text, "at": "file:line:column", "message": …}]`, the condition and place
    /// naming the first part that was false or failed.
    pub fn candidates_json(&self, candidates: &[Candidate]) -> Json {
        let items: Vec<Json> = candidates
            .iter()
            .map(|candidate| {
                let id = self.policy_id(candidate.policy);
                let part = |index: usize| {
                    self.program
                        .policies
                        .get(candidate.policy as usize)
                        .and_then(|policy| policy.parts.get(index))
                };
                match candidate.outcome {
                    PartOutcome::Holds => json!({ "policy": id, "outcome": "holds" }),
                    PartOutcome::False(index) => json!({
                        "policy": id,
                        "outcome": "false",
                        "condition": part(index).map(|part| bounded(&part.text)),
                        "at": part(index).map(|part| part.at.clone()),
                    }),
                    PartOutcome::Failed(index, error) => json!({
                        "policy": id,
                        "outcome": "error",
                        "condition": part(index).map(|part| bounded(&part.text)),
                        "at": part(index).map(|part| part.at.clone()),
                        "message": self.error(&error),
                    }),
                }
            })
            .collect();
        Json::Array(items)
    }
}

/// Condition text cut to 200 characters, so that an explanation stays bounded.
fn bounded(text: &str) -> String {
    const MAX: usize = 200;
    if text.chars().count() <= MAX {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(MAX).collect();
    cut.push('…');
    cut
}
