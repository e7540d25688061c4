//! Request-scoped entities: the entities that come with one request, seen over the shared store.
//!
//! A decision request may carry entities of its own. For that request only they are merged over
//! the [`EntityStore`]: a request entity replaces the store's entity of the same type and id
//! (attributes and parents), and new ones are added. The store is never modified, so other
//! requests never see them. Their attribute values live in the request's pool and their strings
//! are the request's symbols (see [`crate::request::RequestStrings`]).
//!
//! The hierarchy seen by the request accounts for both: a request entity's parents may be store
//! entities, store entities' ancestors continue through request entities, and a store entity
//! whose ancestor is replaced sees the replacement's parents. An entity's ancestors in the
//! overlay are found as follows.
//! - A store entity none of whose store ancestors is a request entity (nor is it one itself)
//!   keeps the store's precomputed ancestors: nothing changes for it, and the lookup costs one
//!   binary search in the overlay and an intersection test.
//! - The principal and the resource, which the policy index looks up for every decision, have
//!   their ancestors computed once when the request is built.
//! - Any other entity (a request entity, or a store entity whose closure goes through one,
//!   reached through an attribute) has its ancestors computed when asked, by a walk that stops
//!   at the first store entities whose closure is unchanged and takes their precomputed
//!   ancestors whole.
//!
//! The store has no index from an entity to its descendants, and a request that replaces an
//! entity near the root of the hierarchy could change the closure of most of the store, so the
//! overlay does not precompute the closure of every entity it affects: the work done for a
//! request stays proportional to the request and to what its decision looks at.
//!
//! The overlay's tables are sorted arrays searched by bisection, not hash tables: their keys
//! come from the request, and the runtime's fast hasher is not meant for keys an adversary
//! chooses (see [`crate::intern::FxHasher`]).

use std::borrow::Cow;
use std::collections::BTreeSet;

use crate::store::EntityStore;
use crate::value::EntityUid;

/// An entity that came with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlayEntity {
    /// Its identity.
    pub uid: EntityUid,
    /// Offset of its attributes in the request's pool, one value per field of its type's layout.
    pub attrs_start: u32,
    /// Number of attribute slots.
    pub attrs_len: u32,
    /// Its direct parents, as given.
    pub parents: Box<[EntityUid]>,
}

/// The entities of one request, over the store they were loaded against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overlay {
    /// The request's entities, sorted by identity, without duplicates.
    entities: Box<[OverlayEntity]>,
    /// Ancestors computed when the request was built (for its principal and its resource), by
    /// identity; each list is sorted.
    closures: Vec<(EntityUid, Box<[EntityUid]>)>,
}

impl Overlay {
    /// An overlay of `entities` over `store`, with the ancestors of each of `precompute` (the
    /// request's principal and resource) computed now. When the same identity is given twice,
    /// the last one is kept; the JSON loader refuses duplicates before this.
    pub fn new(
        store: &EntityStore,
        mut entities: Vec<OverlayEntity>,
        precompute: &[EntityUid],
    ) -> Overlay {
        // A stable sort keeps the given order among equal identities, so the last one given wins.
        entities.sort_by_key(|entity| entity.uid);
        entities.reverse();
        entities.dedup_by_key(|entity| entity.uid);
        entities.reverse();
        let mut overlay = Overlay {
            entities: entities.into_boxed_slice(),
            closures: Vec::new(),
        };
        let mut closures = Vec::with_capacity(precompute.len());
        for &uid in precompute {
            if closures.iter().any(|(done, _)| *done == uid) {
                continue;
            }
            if let Cow::Owned(ancestors) = overlay.ancestors(store, uid) {
                closures.push((uid, ancestors.into_boxed_slice()));
            }
        }
        overlay.closures = closures;
        overlay
    }

    /// A request entity by identity.
    #[inline]
    pub fn get(&self, uid: EntityUid) -> Option<&OverlayEntity> {
        self.entities
            .binary_search_by(|entity| entity.uid.cmp(&uid))
            .ok()
            .and_then(|index| self.entities.get(index))
    }

    /// The ancestors of `uid` as the request sees them, sorted: borrowed when they were known
    /// beforehand (unchanged store entities, the principal and the resource), computed otherwise.
    /// Empty for an entity that is neither in the request nor in the store.
    pub fn ancestors<'a>(&'a self, store: &'a EntityStore, uid: EntityUid) -> Cow<'a, [EntityUid]> {
        if let Some((_, ancestors)) = self.closures.iter().find(|(done, _)| *done == uid) {
            return Cow::Borrowed(ancestors);
        }
        if self.get(uid).is_none() {
            match store.get(uid) {
                None => return Cow::Borrowed(&[]),
                Some(entity) if !self.touches(&entity.ancestors) => {
                    return Cow::Borrowed(&entity.ancestors);
                }
                Some(_) => {}
            }
        }
        Cow::Owned(self.closure(store, uid))
    }

    /// Whether `ancestor` is a proper ancestor of `uid` as the request sees them.
    pub fn is_ancestor(&self, store: &EntityStore, uid: EntityUid, ancestor: EntityUid) -> bool {
        self.ancestors(store, uid).binary_search(&ancestor).is_ok()
    }

    /// Whether the sorted `ancestors` include a request entity, that is, whether a store
    /// entity with these ancestors sees a different hierarchy through this overlay.
    fn touches(&self, ancestors: &[EntityUid]) -> bool {
        if self.entities.len() <= ancestors.len() {
            self.entities
                .iter()
                .any(|entity| ancestors.binary_search(&entity.uid).is_ok())
        } else {
            ancestors.iter().any(|uid| self.get(*uid).is_some())
        }
    }

    /// The ancestors of `uid` through the overlay, computed with an explicit stack (no
    /// recursion); cycles are tolerated and `uid` itself is never among them.
    fn closure(&self, store: &EntityStore, uid: EntityUid) -> Vec<EntityUid> {
        let mut found: Vec<EntityUid> = Vec::new();
        let mut walked: BTreeSet<EntityUid> = BTreeSet::new();
        let mut pending: Vec<EntityUid> = Vec::new();
        self.expand(store, uid, &mut pending, &mut found);
        walked.insert(uid);
        while let Some(next) = pending.pop() {
            if !walked.insert(next) {
                continue;
            }
            found.push(next);
            self.expand(store, next, &mut pending, &mut found);
        }
        found.sort_unstable();
        found.dedup();
        found.retain(|ancestor| *ancestor != uid);
        found
    }

    /// Adds what lies above `uid`: the parents still to walk to `pending`, and the ancestors of
    /// an unchanged store entity, which need no walk, to `found`.
    fn expand(
        &self,
        store: &EntityStore,
        uid: EntityUid,
        pending: &mut Vec<EntityUid>,
        found: &mut Vec<EntityUid>,
    ) {
        if let Some(entity) = self.get(uid) {
            pending.extend_from_slice(&entity.parents);
        } else if let Some(entity) = store.get(uid) {
            if self.touches(&entity.ancestors) {
                pending.extend_from_slice(&entity.parents);
            } else {
                found.extend_from_slice(&entity.ancestors);
            }
        }
    }

    /// Number of request entities.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether the request has no entities.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// Every request entity, by identity.
    pub fn iter(&self) -> impl Iterator<Item = &OverlayEntity> {
        self.entities.iter()
    }
}

#[cfg(test)]
mod tests;
