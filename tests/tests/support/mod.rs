//! Support for the law tests: the reference evaluator, the generators, and the engine run the
//! way `authz eval` runs it.

pub mod engine;
pub mod gen;
pub mod reference;
