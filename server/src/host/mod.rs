//! The host that `authz serve` and `authz proxy` share: the snapshot of compiled policies and
//! its installation (with a per-mode check, `AppState::install_check`), reloads from disk and
//! SIGHUP, the decision log, metrics, one logging setup, startup and the drain on SIGTERM.
//!
//! Each mode adds its own front: `serve` the decision API, `proxy` the access pipeline and its
//! admin listener (which serves the decision API's health, metrics and policy endpoints).

pub mod bundle;
pub mod clock;
pub mod config;
pub mod decision_log;
pub mod metrics;
pub mod providers;
pub mod reload;
pub mod startup;
pub mod state;
