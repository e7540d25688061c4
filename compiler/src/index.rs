//! Index pass: places every lowered policy where the runtime will look for it.
//!
//! A policy goes into the bucket of every (action, principal type, resource type) it can apply to,
//! and within each bucket into exactly one place, by the most selective test that is safe to key
//! by: the entity of its principal scope, else the entity of its resource scope, else the constant
//! of an equality test that opens its first `when` clause, else nowhere in particular (unkeyed).
//!
//! Keying by a `when` test is safe only for the first test of the condition after the scope tests:
//! those cannot fail, so when the keyed test is false the whole condition is false, and the policy
//! neither applies nor errors. When the key expression itself fails at run time, the runtime
//! evaluates every policy of that key, so errors are still reported and forbids still fail closed.
//!
//! A policy is never dropped from the index: a number that does not fit or a bucket that is not
//! where it was recorded is an internal error ([`Internal`]), not a policy left out.

use std::collections::HashMap;

use authz_runtime::index::{Bucket, BucketKey, Index, PolicyGroup, PolicyIdx, ValueKey};
use authz_runtime::program::{Effect, ScopeTest};
use authz_runtime::schema::Schema;
use authz_runtime::value::TypeId;

use crate::diagnostics::{Internal, Invariant};
use crate::lower::LoweredPolicy;

/// Builds the index of `policies` (policy numbers are their positions) over `schema`.
pub fn run(schema: &Schema, policies: &[LoweredPolicy]) -> Result<Index, Internal> {
    let mut index = Index::default();
    // Value keys are grouped by the key expression's description within each group.
    let mut value_slots: HashMap<(u32, bool, String), usize> = HashMap::new();
    for (number, lowered) in policies.iter().enumerate() {
        let number = PolicyIdx::try_from(number).map_err(|_| too_many("policies"))?;
        let policy = &lowered.policy;
        let forbid = policy.effect == Effect::Forbid;
        for (action_number, action) in schema.actions.iter().enumerate() {
            if let Some(actions) = &policy.actions {
                if !actions.contains(&action.uid) {
                    continue;
                }
            }
            let action_number = u32::try_from(action_number).map_err(|_| too_many("actions"))?;
            for &principal in applicable(&policy.principal, &action.principals).iter() {
                for &resource in applicable(&policy.resource, &action.resources).iter() {
                    let key: BucketKey = (action_number, principal, resource);
                    let bucket_number = match index.buckets.get(&key) {
                        Some(bucket_number) => *bucket_number,
                        None => {
                            let bucket_number = u32::try_from(index.bucket_list.len())
                                .map_err(|_| too_many("buckets"))?;
                            index.bucket_list.push(Bucket::default());
                            index.buckets.insert(key, bucket_number);
                            bucket_number
                        }
                    };
                    let Some(bucket) = index.bucket_list.get_mut(bucket_number as usize) else {
                        return Err(lost("a bucket"));
                    };
                    let group = if forbid {
                        &mut bucket.forbids
                    } else {
                        &mut bucket.permits
                    };
                    place(
                        group,
                        number,
                        lowered,
                        (bucket_number, forbid),
                        &mut value_slots,
                    )?;
                }
            }
        }
    }
    Ok(index)
}

fn too_many(what: &'static str) -> Internal {
    Internal::nowhere(Invariant::TooMany { what })
}

/// A part of the index that is not where its number says.
fn lost(what: &str) -> Internal {
    Internal::nowhere(Invariant::Unexpected {
        what: format!("{what} missing from its slot"),
        at: "the policy index".to_owned(),
    })
}

/// The types of `candidates` that the scope allows.
fn applicable(scope: &ScopeTest, candidates: &[TypeId]) -> Vec<TypeId> {
    match scope {
        ScopeTest::Is(types) | ScopeTest::IsIn(types, _) => candidates
            .iter()
            .copied()
            .filter(|ty| types.contains(ty))
            .collect(),
        ScopeTest::Eq(uid) => candidates
            .iter()
            .copied()
            .filter(|ty| *ty == uid.ty)
            .collect(),
        ScopeTest::Any | ScopeTest::In(_) => candidates.to_vec(),
    }
}

fn place(
    group: &mut PolicyGroup,
    number: PolicyIdx,
    lowered: &LoweredPolicy,
    group_id: (u32, bool),
    value_slots: &mut HashMap<(u32, bool, String), usize>,
) -> Result<(), Internal> {
    let policy = &lowered.policy;
    if let ScopeTest::Eq(uid) | ScopeTest::In(uid) | ScopeTest::IsIn(_, uid) = &policy.principal {
        group.by_principal.entry(*uid).or_default().push(number);
        return Ok(());
    }
    if let ScopeTest::Eq(uid) | ScopeTest::In(uid) | ScopeTest::IsIn(_, uid) = &policy.resource {
        group.by_resource.entry(*uid).or_default().push(number);
        return Ok(());
    }
    if let Some((key, value)) = &lowered.value_key {
        let description = format!("{key:?}");
        let slot = *value_slots
            .entry((group_id.0, group_id.1, description))
            .or_insert_with(|| {
                group.by_value.push(ValueKey {
                    key: key.clone(),
                    policies: Default::default(),
                    all: Vec::new(),
                });
                group.by_value.len() - 1
            });
        let Some(value_key) = group.by_value.get_mut(slot) else {
            return Err(lost("a value key"));
        };
        value_key.policies.entry(*value).or_default().push(number);
        value_key.all.push(number);
        return Ok(());
    }
    group.unkeyed.push(number);
    Ok(())
}
