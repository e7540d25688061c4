//! The policy index: which policies can apply to a request, found with a few hash lookups.
//!
//! Policies are partitioned into buckets by (action, principal type, resource type). Within a
//! bucket, forbids and permits are kept apart, and each policy sits in exactly one place: keyed by
//! the entity of its principal or resource scope (`principal == E`, `principal in E`), keyed by
//! the constant of an equality test that opens its first `when` clause (`resource.tenant ==
//! Tenant("t7")`), or unkeyed. A decision looks up the principal and its ancestors, the resource
//! and its ancestors, and the value of each key expression, so its cost grows with the policies
//! that could apply, not with the set. The compiler builds the index; candidates are a superset
//! of the policies that apply, and each is still evaluated in full.

use crate::intern::FxHashMap;
use crate::program::Expr;
use crate::value::{EntityUid, TypeId, Value};

/// A policy number: an index into `Program::policies`.
pub type PolicyIdx = u32;

/// The index of a whole program.
#[derive(Clone, Debug, Default)]
pub struct Index {
    /// Bucket numbers by (action number, principal type, resource type).
    pub buckets: FxHashMap<(u32, TypeId, TypeId), u32>,
    /// The buckets.
    pub bucket_list: Vec<Bucket>,
}

impl Index {
    /// The bucket for a request, if any policy can apply to it.
    #[inline]
    pub fn bucket(&self, action: u32, principal: TypeId, resource: TypeId) -> Option<&Bucket> {
        let index = self.buckets.get(&(action, principal, resource))?;
        self.bucket_list.get(*index as usize)
    }
}

/// The policies for one (action, principal type, resource type).
#[derive(Clone, Debug, Default)]
pub struct Bucket {
    /// Forbid policies.
    pub forbids: PolicyGroup,
    /// Permit policies.
    pub permits: PolicyGroup,
}

/// Policies of one effect in one bucket, by how they are found.
#[derive(Clone, Debug, Default)]
pub struct PolicyGroup {
    /// Policies with no usable key: always candidates.
    pub unkeyed: Vec<PolicyIdx>,
    /// Policies keyed by the entity of their principal scope.
    pub by_principal: FxHashMap<EntityUid, Vec<PolicyIdx>>,
    /// Policies keyed by the entity of their resource scope.
    pub by_resource: FxHashMap<EntityUid, Vec<PolicyIdx>>,
    /// Policies keyed by the value of an expression.
    pub by_value: Vec<ValueKey>,
}

impl PolicyGroup {
    /// Whether the group holds no policy.
    pub fn is_empty(&self) -> bool {
        self.unkeyed.is_empty()
            && self.by_principal.is_empty()
            && self.by_resource.is_empty()
            && self.by_value.is_empty()
    }
}

/// Policies keyed by the value of one expression, such as `resource.tenant`.
#[derive(Clone, Debug)]
pub struct ValueKey {
    /// The expression whose value selects the policies.
    pub key: Expr,
    /// The policies for each constant.
    pub policies: FxHashMap<Value, Vec<PolicyIdx>>,
    /// Every policy of this key, evaluated when the key expression itself fails.
    pub all: Vec<PolicyIdx>,
}

/// The type pair of a bucket key, for building.
pub type BucketKey = (u32, TypeId, TypeId);
