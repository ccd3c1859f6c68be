//! The state dir (status.json, the control socket, compiled plugins): created if missing,
//! refused if anyone but the daemon's user could change what is in it.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::exec::security::effective_uid;

/// Why the daemon will not use a state dir.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(super) enum StateDirError {
    #[error("state dir {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state dir {} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    /// Its owner could replace status.json or the control socket.
    #[error(
        "state dir {} is owned by uid {owner}, not by the daemon's user (uid {me}), who could \
         replace its status file and control socket: chown it or use another --state-dir",
        path.display()
    )]
    Owner { path: PathBuf, owner: u32, me: u32 },
    /// Its group or others could plant a link the daemon writes through, or a socket.
    #[error(
        "state dir {} is mode {mode:04o}: its group or others may write to it (and plant a link \
         the daemon would write through, or replace the control socket): chmod 0700 it or use \
         another --state-dir",
        path.display()
    )]
    Writable { path: PathBuf, mode: u32 },
}

/// Creates `dir` (mode 0700) if missing, then checks it is a directory only the daemon's user
/// may change: owned by that user (root), not writable by its group or others.
pub(super) fn prepare(dir: &Path) -> Result<(), StateDirError> {
    let io = |source| StateDirError::Io {
        path: dir.to_path_buf(),
        source,
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    let meta = std::fs::metadata(dir).map_err(io)?;
    let path = dir.to_path_buf();
    if !meta.is_dir() {
        return Err(StateDirError::NotADirectory { path });
    }
    let me = effective_uid();
    if meta.uid() != me {
        return Err(StateDirError::Owner {
            path,
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(StateDirError::Writable { path, mode });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("upkeep-statedir-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_missing_state_dir_is_created_for_the_daemon_alone() {
        let parent = scratch("missing");
        let dir = parent.join("a/b");
        prepare(&dir).expect("created");
        let meta = std::fs::metadata(&dir).expect("exists");
        let _ = std::fs::remove_dir_all(&parent);
        assert!(meta.is_dir());
        assert_eq!(
            meta.mode() & 0o7777,
            0o700,
            "mode {:04o}",
            meta.mode() & 0o7777
        );
    }

    #[test]
    fn a_state_dir_others_may_write_to_is_refused() {
        let dir = scratch("open");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let refused = prepare(&dir);
        let group = {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o770)).expect("chmod");
            prepare(&dir)
        };
        let fine = {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            prepare(&dir)
        };
        let _ = std::fs::remove_dir_all(&dir);
        let why = refused.expect_err("0777 refused").to_string();
        assert!(why.contains(&dir.display().to_string()), "{why}");
        assert!(why.contains("0777"), "{why}");
        assert!(group.is_err(), "a group-writable state dir was taken");
        fine.expect("0755 is fine");
    }

    #[test]
    fn a_state_dir_owned_by_another_user_is_refused() {
        if crate::exec::security::effective_uid() != 0 {
            return; // only root can give a directory away
        }
        let dir = scratch("owner");
        std::fs::create_dir_all(&dir).expect("dir");
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).expect("chown");
        let refused = prepare(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        let why = refused.expect_err("another user's dir refused").to_string();
        assert!(why.contains("65534"), "{why}");
    }

    #[test]
    fn a_file_is_not_a_state_dir() {
        let path = scratch("file");
        std::fs::write(&path, "x").expect("file");
        let refused = prepare(&path);
        let _ = std::fs::remove_file(&path);
        assert!(refused.is_err());
    }
}
