//! Live reload of a file-backed setting (agents, rules): the file (or directory) is polled,
//! re-read when its identity (size, modification time, inode) changes, and swapped in
//! whole. A version that fails to load leaves the previous one in force; the failure is
//! logged, counted and shown in `/readyz` until a good version replaces it.
//!
//! Polling rather than inotify: it sees editors' rename-over-writes, files on network
//! mounts and Kubernetes ConfigMap symlink swaps alike, and costs one `stat` per interval.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prometheus::IntCounterVec;
use tokio_util::sync::CancellationToken;

use crate::health::Health;

/// How often watched files are checked: a rotated or removed agent's keys and tokens stop
/// working within a second (a `stat` per file per interval costs nothing measurable).
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    name: std::ffi::OsString,
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn file_stamp(path: &Path) -> Option<Stamp> {
    // Follow symlinks: the target's identity is what changes on a ConfigMap swap.
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        name: path.file_name().unwrap_or_default().to_os_string(),
        len: meta.len(),
        modified: meta.modified().ok(),
        inode: meta.ino(),
    })
}

/// A file's identity, or a directory's: that of its YAML files (added, removed, edited).
fn stamp(path: &Path) -> Vec<Stamp> {
    if !path.is_dir() {
        return file_stamp(path).into_iter().collect();
    }
    let mut stamps: Vec<Stamp> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .filter_map(|p| file_stamp(&p))
        .collect();
    stamps.sort_by(|a, b| a.name.cmp(&b.name));
    stamps
}

/// What a watched file feeds.
pub trait Reloadable: Send + Sync + 'static {
    /// The name used in logs, the `what` metric label and the `/readyz` note.
    const NAME: &'static str;
    /// Load the file and swap the new version in; an error keeps the current one.
    fn reload(&self) -> Result<(), String>;
}

/// Poll `path` (a file, or a directory of YAML files) until `stop`; reload `target`
/// whenever it changes.
pub async fn watch<T: Reloadable>(
    path: PathBuf,
    target: Arc<T>,
    reloads: IntCounterVec,
    health: Arc<Health>,
    stop: CancellationToken,
) {
    // Unknown at first: the file may have changed since it was loaded at start-up, so
    // the first poll reloads it once.
    let mut last = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
        let now = Some(stamp(&path));
        if now == last {
            continue;
        }
        last = now;
        match target.reload() {
            Ok(()) => {
                tracing::info!(file = %path.display(), "{} reloaded", T::NAME);
                reloads.with_label_values(&[T::NAME, "ok"]).inc();
                health.set_note(T::NAME, None);
            }
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e,
                    "{} reload rejected; the previous version stays in force", T::NAME);
                reloads.with_label_values(&[T::NAME, "error"]).inc();
                health.set_note(
                    T::NAME,
                    Some(format!("reload of {} rejected: {e}", path.display())),
                );
            }
        }
    }
}
