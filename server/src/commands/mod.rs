//! One module per subcommand; each exposes `run(&Args) -> Outcome`.

pub mod bundle;
pub mod check;
pub mod eval;
pub mod fmt;
#[cfg(feature = "cedar-import")]
pub mod import;
pub mod replay;
pub mod test;
pub mod token;

/// How a command ended, as the process exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Status 0.
    Success,
    /// Status 1: errors were reported.
    Failure,
    /// Status 2: the request is denied (`authz eval`).
    Deny,
    /// Status 3: decisions changed (`authz replay --exit-code`).
    Changed,
}

impl Outcome {
    /// The exit status.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Failure => 1,
            Outcome::Deny => 2,
            Outcome::Changed => 3,
        }
    }
}
