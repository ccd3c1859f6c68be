//! Watches the config file for changes with `notify` (inotify).
//!
//! The directory is watched, not the file: editors that save by writing a new file and renaming
//! it over the old one replace the inode, and a watch on the file itself would go quiet.
//! Bursts of events (truncate, write, close, rename) are coalesced by the daemon's debounce.

use std::path::{Path, PathBuf};

use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Keeps the watch alive; dropping it stops the events.
pub struct ConfigWatch {
    _watcher: RecommendedWatcher,
}

/// Send `()` on `tx` whenever a file named in `files` may have changed.
pub fn watch(files: &[PathBuf], tx: mpsc::UnboundedSender<()>) -> notify::Result<ConfigWatch> {
    let targets: Vec<PathBuf> = files.iter().map(|f| absolute(f)).collect();
    let dirs: Vec<PathBuf> = {
        let mut d: Vec<PathBuf> = targets
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        d.sort();
        d.dedup();
        d
    };
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<Event>| {
        let Ok(event) = res else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        if event.paths.iter().any(|p| targets.contains(p)) {
            let _ = tx.send(());
        }
    })?;
    for dir in &dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    Ok(ConfigWatch { _watcher: watcher })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
