//! The proxy's settings (`authz proxy --config authz.toml`). Unknown keys and bad values are
//! errors that name the key; relative paths are taken from the file's directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use authz_runtime::value::IpNet;
use serde::Deserialize;

use super::assertion::AssertionConfig;
use super::identity::IdentityConfig;
use super::shared_limits::SharedLimitsConfig;
use crate::host::config::{DecisionLogConfig, LogConfig, PoliciesConfig};

/// Every setting of `authz proxy`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Listening, mode and trust.
    #[serde(default)]
    pub proxy: ProxySettings,
    /// Where policies and entities come from (as for `authz serve`).
    #[serde(default)]
    pub policies: PoliciesConfig,
    /// The audit log: one JSON line per verdict.
    #[serde(default)]
    pub decision_log: DecisionLogConfig,
    /// Diagnostic logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Upstream services, chosen by the longest matching path prefix.
    #[serde(default, rename = "upstream")]
    pub upstreams: Vec<UpstreamConfig>,
    /// JWT issuers and API keys.
    #[serde(default)]
    pub identity: IdentityConfig,
    /// How the context of a decision is filled: context field name (`mfa`, or `client.ip` inside
    /// a record) → source (`client_ip`, `method`, `path`, `header:NAME`, `query:NAME`).
    #[serde(default)]
    pub context: BTreeMap<String, String>,
    /// A signed identity assertion (a short-lived JWT) sent upstream with each allowed request.
    #[serde(default)]
    pub assertion: Option<AssertionConfig>,
    /// Rate limit counts shared by replicas in Redis; in memory without it.
    #[serde(default)]
    pub limits: Option<SharedLimitsConfig>,
    /// Headers set upstream from verified identity: header name → source (`principal.id`,
    /// `principal.type`, `principal.ATTR`, `claim.NAME`, `issuer`, `auth`).
    #[serde(default)]
    pub upstream_headers: BTreeMap<String, String>,
    /// The admin listener (health, readiness, metrics, the policy API); off without `[admin]`.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// `[[entity_provider]]`: where entities the store lacks come from, per type.
    #[serde(default)]
    pub entity_provider: Vec<crate::host::providers::ProviderConfig>,
    /// `[clock]`: the clock the `now` context source reads.
    #[serde(default)]
    pub clock: crate::host::clock::ClockConfig,
    /// `[bundle]`: pull the policy set from a signed bundle instead of a directory.
    #[serde(default)]
    pub bundle: Option<crate::host::bundle::BundleConfig>,
}

/// `[admin]`: a listener separate from traffic, for operators.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The address to listen on; loopback by default.
    pub listen: SocketAddr,
    /// The bearer token the policy API requires (reads included); without one, policies can be
    /// read but not written.
    pub admin_token: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> AdminConfig {
        AdminConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9901)),
            admin_token: None,
        }
    }
}

/// `[proxy]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySettings {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// `forward` (a reverse proxy) or `ext_authz` (answer only; for Envoy, Traefik, nginx).
    pub mode: Mode,
    /// Peers whose `X-Forwarded-*` headers are believed (CIDRs).
    pub trusted_proxies: Vec<String>,
    /// The prefix of the identity headers set upstream; any incoming header with this prefix, in
    /// any spelling, is removed.
    pub identity_header_prefix: String,
    /// The principal of requests without credentials; without it they are answered 401.
    pub anonymous: Option<EntityRef>,
    /// Milliseconds to wait for an upstream's response headers (once the client has sent its
    /// body) before answering 504, for each further piece of its body before closing the client's
    /// connection, and for each piece of the client's body before answering 408.
    pub upstream_timeout_ms: u64,
    /// Milliseconds to wait for a connection to an upstream before answering 502.
    pub connect_timeout_ms: u64,
    /// The largest header section accepted from clients, in bytes.
    pub max_header_bytes: usize,
    /// Header names removed from every request in every spelling, besides the built-in list
    /// of identity headers; a name ending in `-` or `*` is a prefix.
    pub strip_headers: Vec<String>,
    /// `strip` (default) or `refuse` requests carrying method-override or rewrite headers.
    pub method_override: super::headers::MethodOverride,
    /// TLS for the listener, with optional or required client certificates; plain HTTP
    /// without it.
    pub tls: Option<super::tls::TlsSettings>,
}

/// A principal named in the configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityRef {
    /// The entity type.
    #[serde(rename = "type")]
    pub ty: String,
    /// The id.
    pub id: String,
}

/// What the proxy does with an allowed request.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Forward it to the upstream.
    #[default]
    Forward,
    /// Answer 200 with the identity headers; the caller (Envoy, Traefik, nginx) forwards.
    ExtAuthz,
}

/// `[[upstream]]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// A name for logs.
    pub name: String,
    /// `http://host:port`, or `demo` for the built-in demo upstream.
    pub url: String,
    /// The path prefix it serves (`/` for everything).
    #[serde(default = "root")]
    pub prefix: String,
}

fn root() -> String {
    "/".to_string()
}

impl Default for ProxySettings {
    fn default() -> ProxySettings {
        ProxySettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            mode: Mode::Forward,
            trusted_proxies: Vec::new(),
            identity_header_prefix: "x-authz-".to_string(),
            anonymous: None,
            upstream_timeout_ms: 10_000,
            connect_timeout_ms: 2_000,
            max_header_bytes: 32 * 1024,
            strip_headers: Vec::new(),
            method_override: super::headers::MethodOverride::Strip,
            tls: None,
        }
    }
}

impl ProxyConfig {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<(ProxyConfig, PathBuf), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
        let base = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let config = ProxyConfig::parse(&text, &base)
            .map_err(|message| format!("invalid configuration `{}`: {message}", path.display()))?;
        Ok((config, base))
    }

    /// Parses configuration text; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<ProxyConfig, String> {
        let mut config: ProxyConfig =
            toml::from_str(text).map_err(|error| error.to_string().trim_end().to_string())?;
        for inner in [
            &mut config.policies.dir,
            &mut config.policies.entities,
            &mut config.decision_log.path,
        ]
        .into_iter()
        .flatten()
        {
            if inner.is_relative() && inner != Path::new("-") {
                *inner = base.join(&*inner);
            }
        }
        if let Some(tls) = &mut config.proxy.tls {
            tls.resolve(base);
            tls.validate()?;
        }
        config.check_mtls()?;
        if let Some(assertion) = &mut config.assertion {
            assertion.resolve(base);
            let api_key_header = config
                .identity
                .api_keys
                .as_ref()
                .map(|api_keys| api_keys.header.as_str());
            assertion.validate(api_key_header.as_slice())?;
            if config.proxy.mode == Mode::ExtAuthz && assertion.audience.is_none() {
                return Err(
                    "`assertion.audience` is required in `ext_authz` mode, where the upstream is \
                     not known"
                        .to_string(),
                );
            }
        }
        if let Some(limits) = &config.limits {
            limits.validate()?;
        }
        if let Some(admin) = &config.admin {
            if admin
                .admin_token
                .as_deref()
                .is_some_and(|token| token.len() < 16)
            {
                return Err("`admin.admin_token` must be at least 16 characters".to_string());
            }
            if admin.listen == config.proxy.listen && admin.listen.port() != 0 {
                return Err("`admin.listen` must differ from `proxy.listen`".to_string());
            }
        }
        if config.policies.dir.is_none() && config.bundle.is_none() {
            return Err("`policies.dir` (or `[bundle]`) is required".to_string());
        }
        config.trusted()?;
        if config.proxy.mode == Mode::Forward && config.upstreams.is_empty() {
            return Err("`upstream`: forward mode needs at least one `[[upstream]]`".to_string());
        }
        for (index, upstream) in config.upstreams.iter().enumerate() {
            if upstream.url != "demo" && !upstream.url.starts_with("http://") {
                return Err(format!(
                    "`upstream[{index}].url` must be `http://host:port` or `demo`"
                ));
            }
            if !upstream.prefix.starts_with('/') {
                return Err(format!("`upstream[{index}].prefix` must start with `/`"));
            }
        }
        for (field, source) in &config.context {
            super::context_plan::Source::parse(source)
                .map_err(|problem| format!("`context.{field}`: {problem}"))?;
        }
        for (index, name) in config.proxy.strip_headers.iter().enumerate() {
            let bare = name.trim_end_matches('*');
            if bare.is_empty() || hyper::header::HeaderName::from_bytes(bare.as_bytes()).is_err() {
                return Err(format!(
                    "`proxy.strip_headers[{index}]`: `{name}` is not a header name (or a prefix ending in `-` or `*`)"
                ));
            }
        }
        for (name, source) in &config.upstream_headers {
            super::upstream_headers::Source::parse(source)
                .map_err(|message| format!("`upstream_headers.\"{name}\"`: {message}"))?;
            let api_key_header = config
                .identity
                .api_keys
                .as_ref()
                .map(|api_keys| api_keys.header.as_str());
            let identity_prefixed =
                super::headers::name_starts_with(name, &config.proxy.identity_header_prefix);
            if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                || identity_prefixed
                || super::assertion::reserved_header_name(name, api_key_header.as_slice())
            {
                return Err(format!(
                    "`upstream_headers.\"{name}\"`: cannot be set from identity (it is not a \
                     header name, or HTTP, the proxy or its identity headers already use it)"
                ));
            }
        }
        for (key, value) in [
            ("upstream_timeout_ms", config.proxy.upstream_timeout_ms),
            ("connect_timeout_ms", config.proxy.connect_timeout_ms),
        ] {
            if !(1..=3_600_000).contains(&value) {
                return Err(format!(
                    "`proxy.{key}` must be between 1 and 3600000 (an hour)"
                ));
            }
        }
        if !config.proxy.identity_header_prefix.ends_with('-')
            || config.proxy.identity_header_prefix.len() < 3
        {
            return Err(
                "`proxy.identity_header_prefix` must end with `-`, such as `x-authz-`".to_string(),
            );
        }
        Ok(config)
    }

    /// `[identity.mtls]` needs client certificates to map, and is refused in `ext_authz` mode,
    /// where the TLS peer is the gateway rather than the caller.
    fn check_mtls(&self) -> Result<(), String> {
        if self.identity.mtls.is_none() {
            return Ok(());
        }
        let verifies = self
            .proxy
            .tls
            .as_ref()
            .is_some_and(|tls| tls.client_ca.is_some());
        if !verifies {
            return Err(
                "`identity.mtls`: maps client certificates, but `proxy.tls.client_ca` does not \
                 ask for them"
                    .to_string(),
            );
        }
        if self.proxy.mode == Mode::ExtAuthz {
            return Err(
                "`identity.mtls`: in `ext_authz` mode the TLS client is the gateway, not the \
                 caller; its certificate cannot name the principal"
                    .to_string(),
            );
        }
        Ok(())
    }

    /// The trusted proxy ranges.
    pub fn trusted(&self) -> Result<Vec<IpNet>, String> {
        self.proxy
            .trusted_proxies
            .iter()
            .enumerate()
            .map(|(index, text)| {
                authz_runtime::ext::parse_ip(text)
                    .map_err(|error| format!("`proxy.trusted_proxies[{index}]`: {error}"))
            })
            .collect()
    }
}
