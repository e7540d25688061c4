//! Hot reload: policy and entity files are watched, and SIGHUP asks for a reload. Each reload
//! compiles in the background and swaps the new snapshot in atomically; a set that fails to
//! compile is logged and never replaces the one being served.

use std::path::PathBuf;
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
        Ok(Ok(snapshot)) => state.install(snapshot),
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
        let notify_sender = sender.clone();
        let created = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                let relevant = event.paths.iter().any(|path| {
                    let name = path.to_string_lossy();
                    !name.ends_with(".tmp") && !name.contains("/.")
                });
                if relevant && !event.kind.is_access() {
                    let _ = notify_sender.try_send(());
                }
            }
        });
        match created {
            Ok(mut created) => {
                let mut watched: Vec<PathBuf> = Vec::new();
                if let Some(dir) = state.policy_dir() {
                    watched.push(dir.to_path_buf());
                }
                if let Some(parent) = state
                    .config
                    .policies
                    .entities
                    .as_ref()
                    .and_then(|path| path.parent())
                {
                    watched.push(if parent.as_os_str().is_empty() {
                        PathBuf::from(".")
                    } else {
                        parent.to_path_buf()
                    });
                }
                for path in watched {
                    if let Err(error) = created.watch(&path, notify::RecursiveMode::Recursive) {
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
