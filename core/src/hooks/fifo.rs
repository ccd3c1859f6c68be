//! The notify FIFO (keepalived's `notify_fifo`): one line per event, `INSTANCE "web" MASTER 100`,
//! in the order the events happen, for a reader that is cheaper than a command per transition.
//!
//! The FIFO is made at start when missing (mode 0600, and removed at exit then), and opened
//! read-write and non-blocking as keepalived does: opening never waits for a reader, and a line
//! that finds the pipe full (a reader that is stuck or gone) is dropped, counted and warned
//! about, never blocking the daemon. `notify-fifo-script` is started with the FIFO's path
//! appended and runs, as `script-user`, until the daemon stops (its process group is killed).
// unsafe here: mkfifo(3), chown(2) and ioctl(FIONREAD), which std does not wrap.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::{shell_quote, RunAs, Subject};

/// How long the FIFO's reader script may run: the daemon's life.
const SCRIPT_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Dropped lines are warned about at most this often.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// One line as keepalived writes it: `TYPE "NAME" STATE PRIORITY\n`.
pub fn line(subject: Subject, name: &str, state: &str, priority: u8) -> String {
    format!("{} \"{name}\" {state} {priority}\n", subject.as_str())
}

/// An open notify FIFO, and its reader script if one was configured.
pub struct NotifyFifo {
    path: PathBuf,
    file: File,
    /// Made by us: removed at exit.
    created: bool,
    script: Option<JoinHandle<()>>,
    dropped: u64,
    warned_at: Option<Instant>,
}

impl NotifyFifo {
    /// Opens (making it if missing) the FIFO at `path`, and starts `script` with the path
    /// appended. A file there that is not a FIFO is an error: nothing is written over it.
    pub fn open(path: &Path, script: Option<&str>, run_as: RunAs) -> io::Result<Self> {
        let created = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_fifo() => false,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a FIFO", path.display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                mkfifo(path)?;
                true
            }
            Err(e) => return Err(e),
        };
        // Read-write: open(2) does not wait for a reader, and writes never fail with EPIPE.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)?;
        if created {
            if let Some((uid, gid)) = run_as {
                // The reader script runs as script-user: let it open what it is given.
                let c = cstring(path)?;
                // SAFETY: c is a valid NUL-terminated path.
                if unsafe { libc::chown(c.as_ptr(), uid, gid) } != 0 {
                    warn!(path = %path.display(), "cannot hand the notify FIFO to script-user: {}", io::Error::last_os_error());
                }
            }
        }
        let script = script.map(|s| {
            let command = format!("{s} {}", shell_quote(&path.display().to_string()));
            tokio::spawn(async move {
                let run = crate::exec::process::run(&crate::exec::process::Spawn {
                    command: &command,
                    timeout: SCRIPT_LIFETIME,
                    run_as,
                    cwd: None,
                    kill_leftovers: true,
                })
                .await;
                warn!(command, outcome = ?run.outcome, "notify-fifo-script ended");
            })
        });
        info!(path = %path.display(), created, "notify FIFO open");
        Ok(Self {
            path: path.to_owned(),
            file,
            created,
            script,
            dropped: 0,
            warned_at: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one event; a full pipe drops it (counted, warned about now and then).
    pub fn write(&mut self, subject: Subject, name: &str, state: &str, priority: u8) {
        let text = line(subject, name, state, priority);
        // A line is far below PIPE_BUF: written whole or not at all.
        if let Err(e) = self.file.write_all(text.as_bytes()) {
            self.dropped += 1;
            let now = Instant::now();
            if self.warned_at.is_none_or(|t| now >= t + WARN_EVERY) {
                self.warned_at = Some(now);
                warn!(path = %self.path.display(), dropped = self.dropped,
                    "notify FIFO line dropped (is its reader running?): {e}");
            }
        }
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Stops the reader script (killing its process group) and removes the FIFO if it was
    /// made here.
    pub fn close(self) {
        if let Some(task) = self.script {
            task.abort();
        }
        if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// [`NotifyFifo::close`] once the reader script has read what is in the pipe (the last
    /// transitions' lines, `STOP` among them), or after `within`.
    pub async fn drain_and_close(self, within: Duration) {
        if self.script.is_some() {
            let until = Instant::now() + within;
            while unread(&self.file) > 0 && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.close();
    }
}

/// Bytes in the pipe not yet read (FIONREAD); 0 when it cannot be asked.
fn unread(file: &File) -> i32 {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which is valid.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::FIONREAD, &mut n) } != 0 {
        return 0;
    }
    n
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

fn mkfifo(path: &Path) -> io::Result<()> {
    let c = cstring(path)?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    #[test]
    fn lines_are_keepalived_s() {
        assert_eq!(
            line(Subject::Instance, "VI_1", "MASTER", 100),
            "INSTANCE \"VI_1\" MASTER 100\n"
        );
        assert_eq!(
            line(Subject::Group, "g", "BACKUP", 0),
            "GROUP \"g\" BACKUP 0\n"
        );
    }

    #[tokio::test]
    async fn a_fifo_is_made_written_in_order_and_removed() {
        let dir = std::env::temp_dir().join(format!("upkeep-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("notify.fifo");
        let mut fifo = NotifyFifo::open(&path, None, None).expect("opens");
        assert!(std::fs::symlink_metadata(&path)
            .expect("made")
            .file_type()
            .is_fifo());
        let reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .expect("reader");
        fifo.write(Subject::Instance, "web", "BACKUP", 100);
        fifo.write(Subject::Instance, "web", "MASTER", 100);
        fifo.write(Subject::Instance, "web", "MASTER_RX_LOWER_PRI", 100);
        let lines: Vec<String> = BufReader::new(reader)
            .lines()
            .map_while(Result::ok)
            .take(3)
            .collect();
        assert_eq!(
            lines,
            [
                "INSTANCE \"web\" BACKUP 100",
                "INSTANCE \"web\" MASTER 100",
                "INSTANCE \"web\" MASTER_RX_LOWER_PRI 100"
            ]
        );
        // Nobody reads: the pipe fills and lines are dropped, the writer never blocks.
        for _ in 0..10_000 {
            fifo.write(Subject::Instance, "web", "BACKUP", 100);
        }
        assert!(fifo.dropped() > 0);
        fifo.close();
        assert!(!path.exists(), "made here, so removed");
        // A plain file is never written over.
        std::fs::write(&path, "x").expect("file");
        assert!(NotifyFifo::open(&path, None, None).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
