//! Translation into authz from other policy languages, so that a team can move a working policy
//! set instead of rewriting it by hand.
//!
//! Today the one source is Cedar ([`cedar`]): its schema (the human-readable `.cedarschema`
//! format), its policies and its entities JSON become `.authz` files and authz entities JSON, and
//! a Cedar request becomes an authz decision request. What has no counterpart in authz (policy
//! templates, `decimal`, entity tags, enumerated entity types, open records, ...) is refused with
//! an [`ImportError`] that says what and where, never translated approximately. The translation is
//! checked against Cedar itself by the agreement tests of the `tests` crate.

pub mod cedar;
mod error;

pub use error::ImportError;
