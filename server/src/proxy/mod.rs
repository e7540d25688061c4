//! `authz proxy`: the access proxy. Every request goes through normalize → identify → route →
//! decide → limit → rewrite headers → forward → audit (see `docs/proxy.md`).
//!
//! The pipeline's parts are built as separate modules first; the listener that strings them
//! together comes next.

pub mod headers;
pub mod identity;
pub mod limits;
pub mod normalize;
