//! Peer implementations of the issue-3 workload, and what the benchmarks and agreement tests need
//! to drive them: Cedar (`cedar-policy` 4), Rego (`regorus`) and casbin (`casbin-rs`), each in a
//! literal and an expert form (see [`Form`]).
//!
//! Benches and tests include this directory with `#[path = "../peers/mod.rs"] mod peers;`, because
//! the peers are dev-dependencies of `authz-tests` and so are not visible to `tests/src`.
//!
//! Every peer translates the workload into its native policies, entities, data and requests once,
//! when it is built; [`Engine::decide`] then answers one prepared request, which is all the
//! benchmarks time.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod authz;
pub mod casbin;
pub mod cedar;
pub mod examples;
pub mod rego;
pub mod rng;
pub mod workload;

pub use workload::{Form, Workload};

/// A decision engine loaded with one workload, answering its requests by index.
///
/// This is the one place the benchmarks and the agreement test call. The authz engine plugs in by
/// implementing it (see [`EngineKind`] and [`build`]).
pub trait Engine {
    /// Decides request `request_index` of the workload the engine was built from: true for allow.
    /// An evaluation error counts as a deny and is counted in [`Engine::errors`].
    fn decide(&mut self, request_index: usize) -> bool;

    /// How many decisions so far raised an evaluation error.
    fn errors(&self) -> u64 {
        0
    }
}

/// The engines the harnesses know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    Cedar,
    Rego,
    Casbin,
    /// authz itself, on the generated `.authz` files (its one form, reported as `literal`).
    Authz,
}

impl EngineKind {
    /// The engines, in table order: authz first.
    pub const ALL: [EngineKind; 4] = [
        EngineKind::Authz,
        EngineKind::Cedar,
        EngineKind::Rego,
        EngineKind::Casbin,
    ];

    /// The lower-case name used on command lines and in tables.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Cedar => "cedar",
            EngineKind::Rego => "rego",
            EngineKind::Casbin => "casbin",
            EngineKind::Authz => "authz",
        }
    }

    /// The engine called `name`, if any.
    pub fn from_name(name: &str) -> Option<EngineKind> {
        EngineKind::ALL
            .into_iter()
            .find(|engine| engine.name() == name)
    }

    /// The forms this engine is measured in. The peers have two; authz will have its one form,
    /// the generated `.authz` files (report it as `literal`).
    pub fn forms(self) -> &'static [Form] {
        match self {
            EngineKind::Authz => &[Form::Literal],
            _ => &Form::ALL,
        }
    }
}

/// Builds `engine` in `form` for `workload`: translates policies, entities and requests.
pub fn build(
    engine: EngineKind,
    form: Form,
    workload: &Workload,
) -> Result<Box<dyn Engine>, String> {
    Ok(match engine {
        EngineKind::Cedar => Box::new(cedar::CedarEngine::new(workload, form)?),
        EngineKind::Rego => Box::new(rego::RegoEngine::new(workload, form)?),
        EngineKind::Casbin => Box::new(casbin::CasbinEngine::new(workload, form)?),
        EngineKind::Authz => Box::new(authz::AuthzEngine::new(workload)?),
    })
}
