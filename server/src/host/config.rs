//! The settings both servers share: where policies and entities come from, the decision log,
//! diagnostic logging (each a TOML table of `authz serve` and `authz proxy` alike), and what the
//! host itself needs of them ([`HostConfig`]).

use std::path::PathBuf;

use serde::Deserialize;

/// What the host (snapshot, reloads, the policy and decision API) needs of a server's settings.
#[derive(Clone, Debug, Default)]
pub struct HostConfig {
    /// Where policies and entities come from.
    pub policies: PoliciesConfig,
    /// The limits and credentials of the HTTP API the host serves.
    pub api: ApiConfig,
}

/// The limits of the policy and decision API, and the token its writes (and, when set, policy
/// reads) require.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The most requests one batch may hold.
    pub max_batch: usize,
    /// The bearer token that the policy write API requires; without one, writes are off.
    pub admin_token: Option<String>,
    /// The context field the decision API fills with the server's clock (`[clock] field`).
    pub clock_field: Option<String>,
    /// The server's clock.
    pub clock: super::clock::Clock,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            max_body_bytes: 1 << 20,
            max_batch: 1_000,
            admin_token: None,
            clock_field: None,
            clock: super::clock::Clock::System,
        }
    }
}

/// `[policies]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoliciesConfig {
    /// The policy directory.
    pub dir: Option<PathBuf>,
    /// The entities JSON file.
    pub entities: Option<PathBuf>,
    /// Whether to reload when the files change.
    pub watch: bool,
}

/// `[decision_log]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionLogConfig {
    /// Where to write one JSON line per decision: a file, or `-` for standard output; none: off.
    pub path: Option<PathBuf>,
    /// What to do when the writer cannot keep up: `block` (backpressure) or `drop` (counted).
    pub on_full: OnFull,
    /// How many lines may wait for the writer.
    pub buffer: usize,
}

/// The decision log's policy when its buffer is full.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnFull {
    /// Requests wait for room: no line is ever lost.
    #[default]
    Block,
    /// Lines are dropped and counted in `authz_decision_log_dropped_total`.
    Drop,
}

/// `[log]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `authz=debug`.
    pub level: String,
}

/// The format of diagnostic logs.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for PoliciesConfig {
    fn default() -> PoliciesConfig {
        PoliciesConfig {
            dir: None,
            entities: None,
            watch: true,
        }
    }
}

impl Default for DecisionLogConfig {
    fn default() -> DecisionLogConfig {
        DecisionLogConfig {
            path: None,
            on_full: OnFull::Block,
            buffer: 10_000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_string(),
        }
    }
}
