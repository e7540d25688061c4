//! The server's settings: a TOML file, overridden by command-line flags.
//!
//! Unknown keys and bad values are errors that name the key, so a typo never silently falls back
//! to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::host::config::{ApiConfig, DecisionLogConfig, HostConfig, LogConfig, PoliciesConfig};

impl Config {
    /// What the host needs of these settings; the error names a bad `[clock]` key.
    pub fn host(&self) -> Result<HostConfig, String> {
        Ok(HostConfig {
            policies: self.policies.clone(),
            api: ApiConfig {
                max_body_bytes: self.server.max_body_bytes,
                max_batch: self.server.max_batch,
                admin_token: self.server.admin_token.clone(),
                clock_field: self.clock.field.clone(),
                clock: crate::host::clock::Clock::from_config(&self.clock)?,
            },
        })
    }
}

/// Every setting of `authz serve`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listening and request limits.
    pub server: ServerConfig,
    /// Where policies and entities come from.
    pub policies: PoliciesConfig,
    /// The decision log.
    pub decision_log: DecisionLogConfig,
    /// Diagnostic logging.
    pub log: LogConfig,
    /// `[[entity_provider]]`: where entities the store lacks come from, per type.
    pub entity_provider: Vec<crate::host::providers::ProviderConfig>,
    /// `[clock]`: the server's clock, and the context field it fills.
    pub clock: crate::host::clock::ClockConfig,
    /// `[bundle]`: pull the policy set from a signed bundle instead of a directory.
    pub bundle: Option<crate::host::bundle::BundleConfig>,
}

/// `[server]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The most requests one batch may hold.
    pub max_batch: usize,
    /// The bearer token that the policy write API requires; without one, writes are off.
    pub admin_token: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8181)),
            max_body_bytes: 1 << 20,
            max_batch: 1_000,
            admin_token: None,
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            server: ServerConfig::default(),
            policies: PoliciesConfig {
                watch: true,
                ..PoliciesConfig::default()
            },
            decision_log: DecisionLogConfig::default(),
            log: LogConfig::default(),
            entity_provider: Vec::new(),
            clock: crate::host::clock::ClockConfig::default(),
            bundle: None,
        }
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the configuration `{path}`: {message}")]
    #[diagnostic(code(authz::config::unreadable))]
    Unreadable {
        /// The path.
        path: String,
        /// The reason.
        message: String,
    },
    /// The file is not valid TOML or has unknown keys or bad values.
    #[error("invalid configuration `{path}`: {message}")]
    #[diagnostic(code(authz::config::invalid))]
    Invalid {
        /// The path.
        path: String,
        /// The parser's message, which names the key.
        message: String,
    },
}

impl Config {
    /// Reads a configuration file; relative paths inside it are taken from the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Unreadable {
            path: shown.clone(),
            message: error.to_string(),
        })?;
        Config::parse(&text, path.parent().unwrap_or(Path::new("."))).map_err(|message| {
            ConfigError::Invalid {
                path: shown,
                message,
            }
        })
    }

    /// Parses configuration text; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Config, String> {
        let mut config: Config =
            toml::from_str(text).map_err(|error| error.to_string().trim_end().to_string())?;
        let resolve = |path: &mut Option<PathBuf>| {
            if let Some(inner) = path {
                if inner.is_relative() && inner != Path::new("-") {
                    *inner = base.join(&*inner);
                }
            }
        };
        resolve(&mut config.policies.dir);
        resolve(&mut config.policies.entities);
        resolve(&mut config.decision_log.path);
        if config.server.max_batch == 0 {
            return Err("`server.max_batch` must be at least 1".to_string());
        }
        if config.decision_log.buffer == 0 {
            return Err("`decision_log.buffer` must be at least 1".to_string());
        }
        if config
            .server
            .admin_token
            .as_deref()
            .is_some_and(|token| token.len() < 16)
        {
            return Err("`server.admin_token` must be at least 16 characters".to_string());
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let error = Config::parse(
            "[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(error.contains("lisen"), "{error}");
    }

    #[test]
    fn bad_values_are_named() {
        let error =
            Config::parse("[decision_log]\non_full = \"sometimes\"\n", Path::new(".")).unwrap_err();
        assert!(error.contains("on_full"), "{error}");
        let error = Config::parse("[server]\nlisten = \"nowhere\"\n", Path::new(".")).unwrap_err();
        assert!(error.contains("listen"), "{error}");
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let config = Config::parse("[policies]\ndir = \"p\"\n", Path::new("/etc/authz")).unwrap();
        assert_eq!(config.policies.dir, Some(PathBuf::from("/etc/authz/p")));
        assert!(config.policies.watch);
    }
}
