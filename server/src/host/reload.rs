//! Hot reload: policy and entity files are watched, and SIGHUP asks for a reload. Each reload
//! compiles in the background and swaps the new snapshot in atomically; a set that fails to
//! compile is logged and never replaces the one being served.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher;
use tokio::sync::mpsc;

use super::state::{self, AppState};

/// Reloads from disk now.
pub async fn reload(state: &Arc<AppState>) {
    let Some(dir) = state.policy_dir().map(std::path::Path::to_path_buf) else {
        return;
    };
    let _guard = state.reload_lock.lock().await;
    let entities = state.config.policies.entities.clone();
    let loaded = tokio::task::spawn_blocking(move || state::load(&dir, entities.as_deref())).await;
    match loaded {
        Ok(Ok(mut snapshot)) => match state.check_install(&mut snapshot) {
            Ok(()) => state.install(snapshot),
            Err(error) => state.record_failure(&error),
        },
        Ok(Err(error)) => state.record_failure(&error),
        Err(error) => tracing::error!(%error, "reload task failed"),
    }
}

/// Starts watching the policy directory and the entities file, and listening for SIGHUP. The
/// returned watcher must be kept alive.
pub fn start(state: Arc<AppState>) -> Option<notify::RecommendedWatcher> {
    let (sender, mut receiver) = mpsc::channel::<()>(16);
    let mut watcher = None;
    if state.config.policies.watch {
        // Absolute paths, so that event paths compare with them whatever the working directory.
        let absolute =
            |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let policy_dir = state.policy_dir().map(absolute);
        let entities = state.config.policies.entities.as_deref().map(absolute);
        let notify_sender = sender.clone();
        let (watched_dir, watched_entities) = (policy_dir.clone(), entities.clone());
        let created = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                let relevant = event.paths.iter().any(|path| {
                    is_relevant(path, watched_dir.as_deref(), watched_entities.as_deref())
                });
                if relevant && !event.kind.is_access() {
                    let _ = notify_sender.try_send(());
                }
            }
        });
        match created {
            Ok(mut created) => {
                let mut watched: Vec<(PathBuf, notify::RecursiveMode)> = Vec::new();
                if let Some(dir) = &policy_dir {
                    watched.push((dir.clone(), notify::RecursiveMode::Recursive));
                }
                // The entities file is watched through its directory (editors and deploy tools
                // replace files by renaming), which is not watched recursively: its other files,
                // such as logs, must not cause reloads.
                if let Some(parent) = entities.as_deref().and_then(Path::parent) {
                    let inside_policies = policy_dir
                        .as_deref()
                        .is_some_and(|dir| parent.starts_with(dir));
                    if !inside_policies {
                        watched.push((parent.to_path_buf(), notify::RecursiveMode::NonRecursive));
                    }
                }
                for (path, mode) in watched {
                    if let Err(error) = created.watch(&path, mode) {
                        tracing::warn!(path = %path.display(), %error, "cannot watch for changes");
                    }
                }
                watcher = Some(created);
            }
            Err(error) => tracing::warn!(%error, "cannot watch files; reload with SIGHUP"),
        }
    }
    let hangup_sender = sender;
    tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hangups.recv().await.is_some() {
            let _ = hangup_sender.send(()).await;
        }
    });
    tokio::spawn(async move {
        while receiver.recv().await.is_some() {
            // Let a burst of file events settle into one reload.
            tokio::time::sleep(Duration::from_millis(100)).await;
            while receiver.try_recv().is_ok() {}
            reload(&state).await;
        }
    });
    watcher
}

/// Whether a changed path can change what is served: the entities file, or anything under the
/// policy directory except the policy API's temporary files.
fn is_relevant(path: &Path, policy_dir: Option<&Path>, entities: Option<&Path>) -> bool {
    if entities.is_some_and(|entities| path == entities) {
        return true;
    }
    policy_dir.is_some_and(|dir| path.starts_with(dir)) && !path.to_string_lossy().ends_with(".tmp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_policies_and_the_entities_file_are_relevant() {
        let dir = Some(Path::new("/srv/.config/authz/policies"));
        let entities = Some(Path::new("/srv/.config/authz/entities.json"));
        let relevant = |path: &str| is_relevant(Path::new(path), dir, entities);
        // Hidden directories above the policy directory do not hide it.
        assert!(relevant("/srv/.config/authz/policies/roles.authz"));
        assert!(relevant("/srv/.config/authz/policies/team/a.authz"));
        assert!(relevant("/srv/.config/authz/policies/..data"));
        assert!(relevant("/srv/.config/authz/entities.json"));
        // A log next to the entities file would otherwise reload the set on every line.
        assert!(!relevant("/srv/.config/authz/server.log"));
        assert!(!relevant("/srv/.config/authz/entities.json.partial"));
        assert!(!relevant(
            "/srv/.config/authz/policies/a.authz.authz-api.tmp"
        ));
    }
}
