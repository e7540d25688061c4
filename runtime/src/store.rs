//! The entity store: every entity's attributes and its ancestors, loaded once and shared by all
//! decisions.
//!
//! The store extends the program's interner with the strings of its entities, so one symbol table
//! serves both. The hierarchy closure is computed when the store is finished: every entity keeps
//! the sorted list of all its ancestors, so `a in b` is one binary search.

use crate::intern::{FxHashMap, Interner};
use crate::value::{EntityUid, PoolId, Value, ValuePool};

/// One entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityData {
    /// Its identity.
    pub uid: EntityUid,
    /// Offset of its attributes in the store's pool, one value per field of its type's layout.
    pub attrs_start: u32,
    /// Number of attribute slots.
    pub attrs_len: u32,
    /// Its direct parents, as given.
    pub parents: Box<[EntityUid]>,
    /// All its ancestors (the transitive closure of parents, without itself), sorted.
    pub ancestors: Box<[EntityUid]>,
}

/// Why an entity could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The same type and id were given twice.
    Duplicate(EntityUid),
}

/// All entities, by identity.
#[derive(Clone, Debug, Default)]
pub struct EntityStore {
    /// The program's interner extended with the store's strings.
    pub interner: Interner,
    /// Attribute values, sets and records of all entities.
    pub pool: ValuePool,
    entities: Vec<EntityData>,
    by_uid: FxHashMap<EntityUid, u32>,
}

impl EntityStore {
    /// An empty store whose symbols extend `interner` (the program's).
    pub fn new(interner: Interner) -> EntityStore {
        EntityStore {
            interner,
            ..EntityStore::default()
        }
    }

    /// The pool that attribute values of this store go into.
    pub const POOL: PoolId = PoolId::Store;

    /// Adds an entity whose attribute slots are already in the pool from `attrs_start`.
    pub fn insert(
        &mut self,
        uid: EntityUid,
        attrs_start: u32,
        attrs_len: u32,
        parents: Vec<EntityUid>,
    ) -> Result<(), StoreError> {
        if self.by_uid.contains_key(&uid) {
            return Err(StoreError::Duplicate(uid));
        }
        let index = u32::try_from(self.entities.len()).unwrap_or(u32::MAX);
        self.by_uid.insert(uid, index);
        self.entities.push(EntityData {
            uid,
            attrs_start,
            attrs_len,
            parents: parents.into_boxed_slice(),
            ancestors: Box::new([]),
        });
        Ok(())
    }

    /// Computes every entity's ancestors. Parents that are not in the store still count as
    /// ancestors (with no ancestors of their own); cycles are tolerated.
    pub fn finish(&mut self) {
        let mut closures: Vec<Option<Vec<EntityUid>>> = vec![None; self.entities.len()];
        for index in 0..self.entities.len() {
            self.closure_of(index, &mut closures);
        }
        for (entity, closure) in self.entities.iter_mut().zip(closures) {
            let mut ancestors = closure.unwrap_or_default();
            ancestors.retain(|uid| *uid != entity.uid);
            entity.ancestors = ancestors.into_boxed_slice();
        }
    }

    /// The ancestors of entity `root`, computed with an explicit stack (no recursion) and
    /// memoized in `closures`.
    fn closure_of(&self, root: usize, closures: &mut [Option<Vec<EntityUid>>]) {
        if closures.get(root).is_some_and(Option::is_some) {
            return;
        }
        let mut seen: Vec<EntityUid> = Vec::new();
        let mut pending: Vec<EntityUid> = match self.entities.get(root) {
            Some(entity) => entity.parents.to_vec(),
            None => return,
        };
        while let Some(uid) = pending.pop() {
            if seen.contains(&uid) {
                continue;
            }
            seen.push(uid);
            let Some(&index) = self.by_uid.get(&uid) else {
                continue;
            };
            match closures.get(index as usize) {
                Some(Some(done)) => seen.extend(done.iter().copied()),
                _ => {
                    if let Some(entity) = self.entities.get(index as usize) {
                        pending.extend(entity.parents.iter().copied());
                    }
                }
            }
        }
        seen.sort_unstable();
        seen.dedup();
        if let Some(slot) = closures.get_mut(root) {
            *slot = Some(seen);
        }
    }

    /// An entity by identity.
    #[inline]
    pub fn get(&self, uid: EntityUid) -> Option<&EntityData> {
        self.by_uid
            .get(&uid)
            .and_then(|&index| self.entities.get(index as usize))
    }

    /// The attribute slots of an entity.
    #[inline]
    pub fn attrs(&self, entity: &EntityData) -> &[Value] {
        self.pool
            .slice(entity.attrs_start, entity.attrs_len as usize)
    }

    /// Whether `ancestor` is a proper ancestor of `uid`.
    #[inline]
    pub fn is_ancestor(&self, uid: EntityUid, ancestor: EntityUid) -> bool {
        self.get(uid)
            .is_some_and(|entity| entity.ancestors.binary_search(&ancestor).is_ok())
    }

    /// The ancestors of `uid`; empty for an entity not in the store.
    #[inline]
    pub fn ancestors(&self, uid: EntityUid) -> &[EntityUid] {
        self.get(uid).map_or(&[], |entity| &entity.ancestors)
    }

    /// Number of entities.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether the store has no entities.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// Every entity, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &EntityData> {
        self.entities.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intern::Sym;
    use crate::value::TypeId;

    fn uid(n: u32) -> EntityUid {
        EntityUid {
            ty: TypeId(0),
            id: Sym(n),
        }
    }

    #[test]
    fn closure_is_transitive_and_tolerates_cycles() {
        let mut store = EntityStore::default();
        store.insert(uid(1), 0, 0, vec![uid(2)]).unwrap();
        store.insert(uid(2), 0, 0, vec![uid(3)]).unwrap();
        store.insert(uid(3), 0, 0, vec![uid(1), uid(4)]).unwrap();
        store.finish();
        assert_eq!(store.ancestors(uid(1)), &[uid(2), uid(3), uid(4)]);
        assert!(store.is_ancestor(uid(2), uid(1)));
        assert!(!store.is_ancestor(uid(4), uid(1)));
    }

    #[test]
    fn duplicates_are_refused() {
        let mut store = EntityStore::default();
        store.insert(uid(1), 0, 0, vec![]).unwrap();
        assert_eq!(
            store.insert(uid(1), 0, 0, vec![]),
            Err(StoreError::Duplicate(uid(1)))
        );
    }
}
