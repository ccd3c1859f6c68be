//! Watches the config file for changes with `notify` (inotify).
//!
//! The directory is watched, not the file: editors that save by writing a new file and renaming
//! it over the old one replace the inode, and a watch on the file itself would go quiet.
//! Bursts of events (truncate, write, close, rename) are coalesced by the daemon's debounce:
//! short when a complete file was renamed into place (how editors, config management and
//! `install` replace files), longer for a write that may still be under way.

use std::path::{Path, PathBuf};

use notify::event::{ModifyKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// What a watched file's event says about its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FileChange {
    /// Complete: a new file renamed over it.
    Complete,
    /// Changed, perhaps half-written: more may follow.
    Ongoing,
}
use tokio::sync::mpsc;

/// Keeps the watch alive; dropping it stops the events.
pub(super) struct ConfigWatch {
    _watcher: RecommendedWatcher,
}

/// Send a [`FileChange`] on `tx` whenever a file named in `files` may have changed.
pub(super) fn watch(
    files: &[PathBuf],
    tx: mpsc::UnboundedSender<FileChange>,
) -> notify::Result<ConfigWatch> {
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
        if matches!(event.kind, EventKind::Access(_))
            || !event.paths.iter().any(|p| targets.contains(p))
        {
            return;
        }
        // Only a rename onto a watched name (the last path: the name the file now has) is
        // complete for sure. A rename away from it, or a writer that closed the file (it may
        // open it again to append: `cat a > f; cat b >> f`), waits like any other write.
        let renamed_onto = matches!(
            event.kind,
            EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
        ) && event.paths.last().is_some_and(|p| targets.contains(p));
        let _ = tx.send(if renamed_onto {
            FileChange::Complete
        } else {
            FileChange::Ongoing
        });
    })?;
    for dir in &dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    Ok(ConfigWatch { _watcher: watcher })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The changes seen within `wait` after `act`, in order.
    async fn changes(
        rx: &mut mpsc::UnboundedReceiver<FileChange>,
        act: impl FnOnce(),
        wait: Duration,
    ) -> Vec<FileChange> {
        act();
        let mut seen = Vec::new();
        while let Ok(Some(c)) = tokio::time::timeout(wait, rx.recv()).await {
            seen.push(c);
        }
        seen
    }

    #[tokio::test]
    async fn a_rename_into_place_is_complete_and_an_in_place_write_is_not() {
        let dir = std::env::temp_dir().join(format!("upkeep-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("upkeep.kdl");
        std::fs::write(&file, "a").unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _watch = watch(std::slice::from_ref(&file), tx).unwrap();
        let wait = Duration::from_millis(200);

        let tmp = dir.join(".upkeep.kdl.tmp");
        let seen = changes(
            &mut rx,
            || {
                std::fs::write(&tmp, "b").unwrap();
                std::fs::rename(&tmp, &file).unwrap();
            },
            wait,
        )
        .await;
        assert_eq!(seen.last(), Some(&FileChange::Complete), "{seen:?}");

        let seen = changes(&mut rx, || std::fs::write(&file, "c").unwrap(), wait).await;
        assert!(
            !seen.is_empty() && !seen.contains(&FileChange::Complete),
            "{seen:?}"
        );

        // Another file in the same directory is no change at all.
        let seen = changes(
            &mut rx,
            || std::fs::write(dir.join("other"), "x").unwrap(),
            wait,
        )
        .await;
        assert!(seen.is_empty(), "{seen:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
