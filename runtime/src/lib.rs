//! The authz runtime: values, interned strings, the entity store, requests, compiled decision
//! programs and their evaluator. It knows nothing of the policy language's syntax: the compiler
//! hands it a [`program::Program`] with every name already resolved.

pub mod decision;
pub mod eval;
pub mod explain;
pub mod ext;
pub mod index;
pub mod intern;
pub mod json;
pub mod overlay;
pub mod program;
pub mod request;
pub mod request_builder;
pub mod route;
pub mod schema;
pub mod store;
pub mod suggest;
pub mod value;
