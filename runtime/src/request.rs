//! Requests: who (principal) does what (action) to which resource, in which context.
//!
//! A request is built against a snapshot's interner: its strings become the interned symbols when
//! the table has them, and request-local symbols (numbered from the table's length) otherwise, so
//! that equal texts always get equal symbols and comparisons stay integer compares. Entities that
//! come with a request live in its [`Overlay`], their values in its pool.

use crate::intern::{Interner, Sym};
use crate::overlay::Overlay;
use crate::value::{EntityUid, PoolId, RecordRef, ValuePool};

/// A request ready for evaluation.
#[derive(Clone, Debug)]
pub struct Request {
    /// Who.
    pub principal: EntityUid,
    /// Which action, as an entity of the action type.
    pub action: EntityUid,
    /// To what.
    pub resource: EntityUid,
    /// The context record, in [`Request::pool`].
    pub context: RecordRef,
    /// The context's sets, records and IP ranges.
    pub pool: ValuePool,
    /// Request-local strings: `Sym(base + i)` is `strings[i]`.
    pub strings: RequestStrings,
    /// The entities that came with the request, seen over the store for this request only;
    /// `None` when it brought none, so that deciding such a request costs one check more.
    pub entities: Option<Box<Overlay>>,
}

/// Strings of a request that are not in the interner.
#[derive(Clone, Debug, Default)]
pub struct RequestStrings {
    base: u32,
    strings: Vec<Box<str>>,
}

impl RequestStrings {
    /// An empty table whose symbols start after `interner`'s.
    pub fn after(interner: &Interner) -> RequestStrings {
        RequestStrings {
            base: interner.len(),
            strings: Vec::new(),
        }
    }

    /// The symbol for `text`: the interned one, or a request-local one.
    pub fn sym(&mut self, interner: &Interner, text: &str) -> Sym {
        if let Some(sym) = interner.get(text) {
            return sym;
        }
        if let Some(index) = self.strings.iter().position(|s| &**s == text) {
            return Sym(self.base + u32::try_from(index).unwrap_or(0));
        }
        let sym = Sym(self.base + u32::try_from(self.strings.len()).unwrap_or(0));
        self.strings.push(text.into());
        sym
    }

    /// The text of a request-local symbol.
    pub fn resolve(&self, sym: Sym) -> Option<&str> {
        let index = sym.0.checked_sub(self.base)?;
        self.strings.get(index as usize).map(|s| &**s)
    }

    /// The first symbol after this table's.
    pub fn end(&self) -> u32 {
        self.base + u32::try_from(self.strings.len()).unwrap_or(0)
    }
}

impl Request {
    /// The pool of request values.
    pub const POOL: PoolId = PoolId::Request;
}
