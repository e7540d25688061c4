//! What the server serves: an immutable snapshot of compiled policies and entities, swapped
//! atomically on reload, and the status of the last load.
//!
//! A request takes the snapshot current when it starts (`ArcSwap::load_full`) and decides against
//! it to the end, so a reload never changes a decision in flight. A set that fails to compile
//! never replaces a good one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use authz_lang::SourceFile;
use authz_runtime::program::Program;
use authz_runtime::store::EntityStore;

use super::config::HostConfig;
use super::decision_log::DecisionLog;
use super::metrics::Metrics;
use super::providers::Providers;
use crate::sources;

/// A compiled policy set with the entities loaded for it.
#[derive(Debug)]
pub struct Snapshot {
    /// The decision program.
    pub program: Program,
    /// The entities, built for `program`.
    pub store: EntityStore,
    /// The policy files, by name relative to the policy directory, with their text.
    pub files: Vec<SourceFile>,
    /// Counts loads: 1 for the first.
    pub generation: u64,
    /// What the host derived from this set when it was installed (the proxy: its context plan
    /// and limiters), of the host's own type; `None` for a host that derives nothing.
    pub derived: Option<Derived>,
}

/// What a host derives from a policy set at install, held with the snapshot so that a request
/// reads the derivation of the very set it is decided with. The host downcasts it to its type.
pub type Derived = Arc<dyn std::any::Any + Send + Sync>;

impl Snapshot {
    /// The host's derivation, as its type `T`; `None` when there is none of that type (an
    /// internal error for a host that derives one: it was installed without its check).
    pub fn derived<T: std::any::Any + Send + Sync>(&self) -> Option<&T> {
        self.derived.as_deref()?.downcast_ref::<T>()
    }
}

/// Why a policy set or its entities could not be loaded; the text is what users read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// Every diagnostic, rendered without color.
    pub message: String,
    /// The diagnostics as JSON objects, for the policy API.
    pub diagnostics: Vec<serde_json::Value>,
}

/// The outcome of the most recent load attempt.
#[derive(Clone, Debug, Default)]
pub struct LoadStatus {
    /// Set when the newest files failed to load; the server still serves the previous snapshot.
    pub last_error: Option<String>,
}

/// What a host (the proxy) checks and derives of a compiled policy set before installing it,
/// beyond what the compiler checks: given the new set and the one being served (`None` at
/// start), it answers what it derived, or says what of its configuration the set does not fit.
pub type InstallCheck =
    Box<dyn Fn(&Snapshot, Option<&Snapshot>) -> Result<Option<Derived>, String> + Send + Sync>;

/// What a host adds to `/readyz` (the proxy: its JWKS sources and Redis), as JSON members.
pub type Readiness = Box<dyn Fn() -> serde_json::Map<String, serde_json::Value> + Send + Sync>;

/// Everything the handlers share.
pub struct AppState {
    /// What the host needs of the server's settings.
    pub config: HostConfig,
    /// The snapshot being served.
    pub snapshot: ArcSwap<Snapshot>,
    /// The status of the last load.
    pub status: Mutex<LoadStatus>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The decision log, when one is configured.
    pub decision_log: Option<DecisionLog>,
    /// Serializes reloads and policy writes.
    pub reload_lock: tokio::sync::Mutex<()>,
    /// Run on every set before it is installed (at start the host runs it itself): a set that
    /// fails it is refused like a set that fails to compile.
    pub install_check: Option<InstallCheck>,
    /// More of `/readyz`, from the host.
    pub readiness: Option<Readiness>,
    /// Where entities the store lacks come from.
    pub providers: Arc<Providers>,
    /// The bundle the set comes from, when it comes from one (polled, and reported in
    /// `/readyz`).
    pub bundle: Option<Arc<super::bundle::BundleSource>>,
}

impl AppState {
    /// The policy directory.
    pub fn policy_dir(&self) -> Option<&Path> {
        self.config.policies.dir.as_deref()
    }

    /// Records a failed load: the old snapshot stays.
    pub fn record_failure(&self, error: &LoadError) {
        self.metrics.reloads_failed.inc();
        if let Ok(mut status) = self.status.lock() {
            status.last_error = Some(error.message.clone());
        }
        tracing::error!(diagnostics = %error.message, "policy load failed; still serving the previous set");
    }

    /// Whether the host can serve `snapshot` (see [`AppState::install_check`]); when it can,
    /// what the host derives from it is set in the snapshot.
    pub fn check_install(&self, snapshot: &mut Snapshot) -> Result<(), LoadError> {
        let previous = self.snapshot.load();
        let checked = self
            .providers
            .check(&snapshot.program.schema)
            .and_then(|()| match &self.install_check {
                Some(check) => check(snapshot, Some(&previous)),
                None => Ok(None),
            });
        let derived = checked.map_err(|problem| {
            let message = format!("the policy set does not fit the configuration: {problem}");
            LoadError {
                diagnostics: vec![serde_json::json!({
                    "code": "authz::host::configuration_mismatch",
                    "severity": "error",
                    "message": message,
                })],
                message,
            }
        })?;
        snapshot.derived = derived;
        Ok(())
    }

    /// Installs a new snapshot.
    pub fn install(&self, mut snapshot: Snapshot) {
        let previous = self.snapshot.load();
        snapshot.generation = previous.generation + 1;
        let policies = snapshot.program.policies.len();
        let generation = snapshot.generation;
        self.snapshot.store(Arc::new(snapshot));
        self.metrics.reloads_ok.inc();
        self.metrics
            .policies_loaded
            .set(i64::try_from(policies).unwrap_or(i64::MAX));
        if let Ok(mut status) = self.status.lock() {
            status.last_error = None;
        }
        tracing::info!(policies, generation, "policy set loaded");
    }
}

/// Reads, compiles and loads a policy directory and an entities file into a snapshot.
pub fn load(dir: &Path, entities: Option<&Path>) -> Result<Snapshot, LoadError> {
    let files = sources::authz_files(dir).map_err(|error| plain(&error))?;
    if files.is_empty() {
        return Err(plain(&sources::SourceError::NoPolicies {
            path: dir.display().to_string(),
        }));
    }
    let mut sources_read = Vec::with_capacity(files.len());
    for path in &files {
        let text = std::fs::read_to_string(path).map_err(|error| {
            plain(&sources::SourceError::Unreadable {
                path: path.display().to_string(),
                message: error.to_string(),
            })
        })?;
        sources_read.push(SourceFile::new(relative_name(dir, path), text));
    }
    load_sources(sources_read, entities)
}

/// Compiles the given files (named relative to the policy directory) and loads the entities.
pub fn load_sources(
    files: Vec<SourceFile>,
    entities: Option<&Path>,
) -> Result<Snapshot, LoadError> {
    let entities = match entities {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| {
                plain(&sources::SourceError::Unreadable {
                    path: path.display().to_string(),
                    message: error.to_string(),
                })
            })?;
            Some(SourceFile::new(path.display().to_string(), text))
        }
    };
    load_with_entities(files, entities.as_ref())
}

/// Compiles the given files and loads the entities from `entities` (named for diagnostics):
/// what the entity API installs.
pub fn load_with_entities(
    files: Vec<SourceFile>,
    entities: Option<&SourceFile>,
) -> Result<Snapshot, LoadError> {
    let compiled = authz_compiler::compile_sources(&files);
    let Some(program) = compiled.program else {
        let errors: Vec<_> = compiled
            .checked
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .collect();
        let mut message = String::new();
        let mut diagnostics = Vec::new();
        for diagnostic in errors {
            if let Some(source) = files.get(diagnostic.file.0 as usize) {
                message.push_str(&render(source, diagnostic));
                diagnostics.push(crate::report::json_diagnostic(Some(source), diagnostic));
            }
        }
        return Err(LoadError {
            message,
            diagnostics,
        });
    };
    let store = match entities {
        None => {
            let mut store = EntityStore::new(program.interner.clone());
            store.finish();
            store
        }
        Some(source) => load_entities(&program, source)?,
    };
    Ok(Snapshot {
        program,
        store,
        files,
        generation: 0,
        derived: None,
    })
}

/// The entities of `source` (the entities file's text, or an API body), loaded for `program`;
/// the errors rendered as `authz check` prints them and as JSON diagnostics.
pub fn load_entities(program: &Program, source: &SourceFile) -> Result<EntityStore, LoadError> {
    authz_runtime::json::load_entities(program, &source.text).map_err(|errors| {
        let message = errors.iter().map(|error| render(source, error)).collect();
        let diagnostics = errors
            .iter()
            .map(|error| crate::report::json_diagnostic(Some(source), error))
            .collect();
        LoadError {
            message,
            diagnostics,
        }
    })
}

/// The name of a policy file relative to the policy directory, with `/` separators.
pub fn relative_name(dir: &Path, path: &Path) -> String {
    let relative: PathBuf = path
        .strip_prefix(dir)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf());
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn plain(error: &(dyn miette::Diagnostic + Send + Sync)) -> LoadError {
    LoadError {
        message: format!("{error}\n"),
        diagnostics: vec![crate::report::json_diagnostic(None, error)],
    }
}

/// A diagnostic rendered the way `authz check` prints it, without color.
pub fn render(source: &SourceFile, diagnostic: &(dyn miette::Diagnostic + Send + Sync)) -> String {
    crate::report::render_plain(source, diagnostic)
}
