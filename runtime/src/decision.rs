//! Decisions: allow or deny, with the policies that determined it, every error met on the way and
//! the obligations (limits) that apply.

use crate::eval::EvalError;
use crate::index::PolicyIdx;
use crate::value::Value;

/// Where an evaluation error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorSite {
    /// In the condition of this policy.
    Policy(PolicyIdx),
    /// In the condition or a key of this limit.
    Limit(u32),
}

/// A limit that applies to a request, with the values of its key expressions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Obligation {
    /// The limit's number in `Program::limits`.
    pub limit: u32,
    /// Offset of its key values in [`Decision::key_values`].
    pub keys_start: u32,
    /// Number of key values.
    pub keys_len: u32,
}

/// The result of one decision. Reusing one `Decision` across calls keeps its buffers, so deciding
/// allocates nothing once the buffers have grown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is allowed.
    pub allow: bool,
    /// The permits that allowed it, or the forbids that denied it; empty for a default deny.
    pub determining: Vec<PolicyIdx>,
    /// Every error met, in evaluation order.
    pub errors: Vec<(ErrorSite, EvalError)>,
    /// Limits that apply: every one whose condition holds when the request is allowed, the
    /// `on attempts` ones only when it is denied.
    pub obligations: Vec<Obligation>,
    /// The key values of the obligations; an erroring key is [`Value::Absent`].
    pub key_values: Vec<Value>,
}

impl Decision {
    /// Forgets the previous decision, keeping the buffers.
    pub fn clear(&mut self) {
        self.allow = false;
        self.determining.clear();
        self.errors.clear();
        self.obligations.clear();
        self.key_values.clear();
    }

    /// The key values of an obligation.
    pub fn keys(&self, obligation: &Obligation) -> &[Value] {
        let start = obligation.keys_start as usize;
        self.key_values
            .get(start..start + obligation.keys_len as usize)
            .unwrap_or(&[])
    }
}
