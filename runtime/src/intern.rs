//! Interned strings and the fast hasher used for the runtime's hash tables.
//!
//! Every string of a decision program and of its entity store is interned once, so that equality
//! is an integer compare and hash lookups hash a `u32`. Strings that arrive with a request and are
//! not in the table get request-local symbols numbered after the table's (see `request.rs`); since
//! the table is never searched twice for the same text, equal texts always have equal symbols.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// An interned string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sym(pub u32);

/// The table of interned strings. Symbols are dense: the `n`th string interned is `Sym(n)`.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    ids: HashMap<Box<str>, Sym, FxBuildHasher>,
    strings: Vec<Box<str>>,
}

impl Interner {
    /// An empty table.
    pub fn new() -> Interner {
        Interner::default()
    }

    /// The symbol of `text`, adding it when new.
    pub fn intern(&mut self, text: &str) -> Sym {
        if let Some(sym) = self.ids.get(text) {
            return *sym;
        }
        let sym = Sym(u32::try_from(self.strings.len()).unwrap_or(u32::MAX));
        self.strings.push(text.into());
        self.ids.insert(text.into(), sym);
        sym
    }

    /// The symbol of `text`, if it was interned.
    pub fn get(&self, text: &str) -> Option<Sym> {
        self.ids.get(text).copied()
    }

    /// The text of an interned symbol; `None` for request-local symbols.
    pub fn resolve(&self, sym: Sym) -> Option<&str> {
        self.strings.get(sym.0 as usize).map(|s| &**s)
    }

    /// How many strings are interned; request-local symbols start here.
    pub fn len(&self) -> u32 {
        u32::try_from(self.strings.len()).unwrap_or(u32::MAX)
    }

    /// Whether nothing is interned.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

/// The Fx hash (as in rustc): one multiply and rotate per word. Fast for the small integer keys of
/// the runtime's tables. It is not resistant to chosen collisions, so it is used only for tables built
/// from policies and entity files; a request may look keys up but never inserts any, so it cannot
/// lengthen a chain.
#[derive(Clone, Copy, Debug, Default)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            for (slot, byte) in word.iter_mut().zip(rest) {
                *slot = *byte;
            }
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// Builds [`FxHasher`]s.
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;

/// A `HashMap` with the Fx hash.
pub type FxHashMap<K, V> = HashMap<K, V, FxBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_idempotent_and_dense() {
        let mut interner = Interner::new();
        let a = interner.intern("alice");
        let b = interner.intern("bob");
        assert_eq!(interner.intern("alice"), a);
        assert_eq!((a, b), (Sym(0), Sym(1)));
        assert_eq!(interner.resolve(b), Some("bob"));
        assert_eq!(interner.get("carol"), None);
        assert_eq!(interner.len(), 2);
    }
}
