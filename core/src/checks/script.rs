//! Script checks (keepalived's `vrrp_script`): `/bin/sh -c COMMAND`, exit 0 is healthy.
//!
//! Each run gets its own process group so that a timeout kills the script *and* everything it
//! forked; the child is always reaped (no zombies), and a check never overlaps itself.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio::sync::mpsc;

use super::CheckResult;

#[derive(Debug, Clone)]
pub struct ScriptCheck {
    pub id: u64,
    pub command: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// Working directory: the config file's directory, so relative script paths work.
    pub cwd: PathBuf,
    /// `(uid, gid)` to run as; None: the daemon's own user.
    pub run_as: Option<(u32, u32)>,
}

/// Run the check forever, sending each result; ends when the receiver is gone.
pub async fn run(check: ScriptCheck, tx: mpsc::UnboundedSender<CheckResult>) {
    let mut schedule = super::Schedule::new(check.interval);
    loop {
        let (ok, message, duration) = run_once(&check).await;
        let result = CheckResult {
            check: check.id,
            ok,
            message,
            duration,
            value: None,
        };
        if tx.send(result).is_err() {
            return;
        }
        schedule.wait().await;
    }
}

pub async fn run_once(check: &ScriptCheck) -> (bool, String, Duration) {
    let start = Instant::now();
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(&check.command)
        .current_dir(&check.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let Some((uid, gid)) = check.run_as {
        cmd.uid(uid).gid(gid);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (false, format!("cannot start: {e}"), start.elapsed()),
    };
    let pgid = child.id();
    match tokio::time::timeout(check.timeout, child.wait()).await {
        Ok(Ok(status)) => {
            // The shell is gone; kill anything it left behind in its group.
            if let Some(pg) = pgid {
                kill_group(pg);
            }
            let msg = match status.code() {
                Some(0) => "exit 0".to_string(),
                Some(c) => format!("exit {c}"),
                None => "killed by a signal".to_string(),
            };
            (status.success(), msg, start.elapsed())
        }
        Ok(Err(e)) => (false, format!("wait failed: {e}"), start.elapsed()),
        Err(_) => {
            if let Some(pg) = pgid {
                kill_group(pg);
            }
            let _ = child.wait().await; // reap
            (
                false,
                format!("timed out after {:?}", check.timeout),
                start.elapsed(),
            )
        }
    }
}

fn kill_group(pgid: u32) {
    // SAFETY: kill(2) with a negative pid signals the process group; no memory involved.
    unsafe {
        libc::kill(-(pgid as i32), libc::SIGKILL);
    }
}
