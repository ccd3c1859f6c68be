//! Script checks (keepalived's `vrrp_script`): exit 0 is healthy.
//!
//! Each run goes through [`crate::exec::process`]: its own process group, so that a timeout kills the
//! script *and* everything it forked; the child is always reaped (no zombies). A check never
//! overlaps itself.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use super::CheckResult;
use crate::exec::process::{self, Outcome};

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

/// One run: healthy when the command exits 0. What it leaves running in its group is killed.
pub async fn run_once(check: &ScriptCheck) -> (bool, String, Duration) {
    let run = process::run(&process::Spawn {
        command: &check.command,
        timeout: check.timeout,
        run_as: check.run_as,
        cwd: Some(&check.cwd),
        kill_leftovers: true,
    })
    .await;
    let healthy = run.outcome == Outcome::Exited(0);
    let message = match run.outcome {
        Outcome::Exited(code) => format!("exit {code}"),
        Outcome::Signalled(sig) => format!("killed by signal {sig}"),
        Outcome::TimedOut => format!("timed out after {:?}", check.timeout),
        Outcome::Failed(why) => why,
    };
    (healthy, message, run.elapsed)
}
