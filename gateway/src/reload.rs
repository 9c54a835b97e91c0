//! Hot reload: on a change of the config or a file it references, on SIGHUP, and on
//! `POST /admin/reload`. The candidate is fully compiled off the runtime; a failing one
//! changes nothing and is reported in the log, `/admin/config` and a metric.

use crate::config::{self, Diagnostic};
use crate::state::GatewayState;
use async_trait::async_trait;
use notify::{RecursiveMode, Watcher};
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

/// Editors and `cp` write a file in several steps: wait this long for the events to settle.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Serialises reloads, so versions increase by one and never race.
pub struct ConfigReloader {
    state: Arc<GatewayState>,
    lock: tokio::sync::Mutex<()>,
}

impl ConfigReloader {
    pub fn new(state: Arc<GatewayState>) -> Self {
        ConfigReloader {
            state,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Compiles the config file again and publishes it if, and only if, it is valid.
    pub async fn reload(&self, trigger: &str) -> Result<u64, Vec<Diagnostic>> {
        let _serial = self.lock.lock().await;
        let version = self.state.current().version + 1;
        let path = self.state.config_path.clone();
        // Limits whose spec is unchanged carry their counters over to the new snapshot.
        let reuse = config::reusable(&self.state.current().limits);
        let compiled = tokio::task::spawn_blocking(move || config::load(&path, version, &reuse))
            .await
            .unwrap_or_else(|e| {
                Err(vec![Diagnostic::error(
                    &self.state.config_path,
                    None,
                    format!("the reload task failed: {e}"),
                    "see the log",
                )])
            });
        match compiled {
            Ok(compiled) => {
                for w in &compiled.warnings {
                    tracing::warn!(location = %w.location(), help = %w.help, "{}", w.message);
                }
                warn_if_restart_needed(&self.state, &compiled.snapshot);
                self.state.publish(compiled.snapshot);
                self.state
                    .metrics
                    .reloads
                    .with_label_values(&["success"])
                    .inc();
                tracing::info!(version, trigger, "config reloaded");
                Ok(version)
            }
            Err(errors) => {
                let summary = errors
                    .iter()
                    .map(Diagnostic::one_line)
                    .collect::<Vec<_>>()
                    .join("; ");
                for e in &errors {
                    tracing::error!(location = %e.location(), help = %e.help, trigger, "config reload rejected: {}", e.message);
                }
                self.state.set_last_reload_error(Some(summary));
                self.state
                    .metrics
                    .reloads
                    .with_label_values(&["failure"])
                    .inc();
                Err(errors)
            }
        }
    }
}

/// Listeners and threads are fixed when the process starts.
fn warn_if_restart_needed(state: &GatewayState, next: &crate::snapshot::Snapshot) {
    let current = state.current();
    let (a, b) = (&current.server, &next.server);
    if a.listen != b.listen
        || a.admin_listen != b.admin_listen
        || a.threads != b.threads
        || a.store_path != b.store_path
    {
        tracing::warn!("server.listen, server.admin_listen, server.threads and store.path take effect on restart; the running ones are kept");
    }
}

/// The Pingora background service that turns file events and SIGHUP into reloads.
pub struct ReloadTriggers {
    pub reloader: Arc<ConfigReloader>,
    pub state: Arc<GatewayState>,
}

#[async_trait]
impl BackgroundService for ReloadTriggers {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let (tx, mut rx) = mpsc::channel::<()>(16);
        let mut watched = watched_files(&self.state);
        let mut watcher = match start_watcher(&watched, tx.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::error!(error = %e, "cannot watch the config files; reload with SIGHUP or POST /admin/reload");
                None
            }
        };
        let mut sighup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP");
                None
            }
        };
        // An edit between the first load and the watcher's start has no event to wake us.
        if changed_since(&watched, self.state.current().loaded_at) {
            let _ = self.reloader.reload("change while starting").await;
        }
        self.state.set_reloader_ready();
        loop {
            let trigger = tokio::select! {
                _ = shutdown.changed() => return,
                Some(()) = rx.recv() => {
                    tokio::time::sleep(DEBOUNCE).await;
                    while rx.try_recv().is_ok() {}
                    "file change"
                }
                Some(()) = recv_signal(&mut sighup) => "SIGHUP",
            };
            let _ = self.reloader.reload(trigger).await;
            // The new config may reference other files: watch those from now on.
            let now = watched_files(&self.state);
            if now != watched {
                watched = now;
                watcher = start_watcher(&watched, tx.clone()).ok().or(watcher);
            }
        }
    }
}

async fn recv_signal(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Catches SIGHUP for the rest of the process. Until the reloader listens, a SIGHUP
/// (`systemctl reload` right after start) would otherwise take the default action and end
/// the gateway; caught early, it is dropped, and the reloader's start-up check sees the edit.
pub fn catch_sighup_from_now() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    // Tokio installs the process's handler once and keeps it after this runtime is gone.
    let _dropped_with_the_runtime = runtime.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    })?;
    Ok(())
}

/// Whether any of `files` was modified after `since` (a file that cannot be read counts as
/// changed: the reload reports why).
fn changed_since(files: &BTreeSet<PathBuf>, since: SystemTime) -> bool {
    files.iter().any(|f| {
        std::fs::metadata(f)
            .and_then(|m| m.modified())
            .map_or(true, |modified| modified > since)
    })
}

fn watched_files(state: &GatewayState) -> BTreeSet<PathBuf> {
    let mut files: BTreeSet<PathBuf> = state
        .current()
        .watched_files
        .iter()
        .map(|p| absolute(p))
        .collect();
    files.insert(absolute(&state.config_path));
    files
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Watches the folders of the files (so that atomic renames are seen) and forwards events
/// that touch one of the files.
fn start_watcher(
    files: &BTreeSet<PathBuf>,
    tx: mpsc::Sender<()>,
) -> notify::Result<notify::RecommendedWatcher> {
    let wanted = files.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        if event.paths.iter().any(|p| wanted.contains(p)) {
            // Full channel: a reload is already pending, which covers this change too.
            let _ = tx.try_send(());
        }
    })?;
    let dirs: BTreeSet<&Path> = files.iter().filter_map(|f| f.parent()).collect();
    for dir in dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_written_after_the_load_counts_as_changed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("propylon.yaml");
        std::fs::write(&file, "a").expect("write");
        let files = BTreeSet::from([file.clone()]);
        let loaded_at = SystemTime::now() + Duration::from_secs(1);
        assert!(!changed_since(&files, loaded_at));
        let before_write = SystemTime::now() - Duration::from_secs(60);
        assert!(changed_since(&files, before_write));
        let missing = BTreeSet::from([dir.path().join("gone.yaml")]);
        assert!(changed_since(&missing, loaded_at));
    }

    #[test]
    fn a_sighup_after_catching_it_does_not_end_the_process() {
        catch_sighup_from_now().expect("catching SIGHUP");
        // With the default action this would end the test binary, failing every test in it.
        let status = std::process::Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(100));
    }
}
