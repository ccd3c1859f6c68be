//! Notify commands (keepalived's `notify_master`, `notify_backup`, `notify_fault`,
//! `notify_stop` and `notify`): run on state transitions, off the VRRP path.
//!
//! [`Notifier::notify`] queues commands and returns at once. Commands for one key (an
//! instance or sync group name) run one transition at a time, in order, so a `notify-backup`
//! never overtakes the `notify-master` before it; different keys run side by side. Behind a
//! transition whose commands still run, one more waits per key: a later one supersedes it
//! (latest state wins, [`queue`]), so a slow command and a flapping instance queue nothing
//! more. Each command runs by [`crate::exec::process`] (exec'd directly when plain, else `/bin/sh -c
//! COMMAND`) in a process group of its own, with
//! stdin, stdout and stderr on /dev/null, as `script-user` when one is set. One still running
//! at the timeout is killed with its whole group. Every child is reaped.
//!
//! WASM notify hooks (`hook` / `notify-hook`) are run by the plugin host, not here.

pub mod fifo;
pub mod queue;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::exec::security;
pub use queue::{QueueCounts, QueueStats};
use upkeep_config::Notify;

/// Whose transition a notify reports (keepalived's first `notify` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Instance,
    Group,
}

impl Subject {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Instance => "INSTANCE",
            Self::Group => "GROUP",
        }
    }
}

/// The state a transition goes to (keepalived's third `notify` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyState {
    Master,
    Backup,
    Fault,
    /// The instance stopped: daemon shutdown, or removed by a reload.
    Stop,
}

impl NotifyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Master => "MASTER",
            Self::Backup => "BACKUP",
            Self::Fault => "FAULT",
            Self::Stop => "STOP",
        }
    }
}

/// The arguments keepalived appends to a `notify` command: `INSTANCE|GROUP NAME STATE
/// PRIORITY`, each quoted for the shell where needed.
pub fn keepalived_args(kind: &str, name: &str, state: &str, priority: u8) -> String {
    [kind, name, state, &priority.to_string()]
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The commands a transition runs, in keepalived's order: the state's own command
/// (`notify-master`...), then `notify` with [`keepalived_args`] appended. A sync group's
/// priority is reported as 0, as keepalived does.
pub fn commands_for(
    notify: &Notify,
    subject: Subject,
    name: &str,
    to: NotifyState,
    priority: u8,
) -> Vec<String> {
    let own = match to {
        NotifyState::Master => &notify.master,
        NotifyState::Backup => &notify.backup,
        NotifyState::Fault => &notify.fault,
        NotifyState::Stop => &notify.stop,
    };
    let mut cmds: Vec<String> = own.iter().cloned().collect();
    if let Some(any) = &notify.any {
        let args = keepalived_args(subject.as_str(), name, to.as_str(), priority);
        cmds.push(format!("{any} {args}"));
    }
    cmds
}

/// `word` as one shell word: unchanged when it is plain, else in single quotes.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.,:/@%+=".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

pub use crate::exec::process::{Outcome, Run, RunAs};

/// Runs one notify command (see [`crate::exec::process`]); what it leaves running in the background
/// is left alone, as keepalived does.
pub async fn run_command(command: &str, timeout: Duration, run_as: RunAs) -> Run {
    crate::exec::process::run(&crate::exec::process::Spawn {
        command,
        timeout,
        run_as,
        cwd: None,
        kill_leftovers: false,
    })
    .await
}

/// What every command of a notifier shares.
struct Runner {
    timeout: Duration,
    script_user: Option<String>,
    /// Looked up at the first command (a config without notify commands never reads the user
    /// database). Err: `script-user` could not be resolved; nothing is run (rather than run as
    /// root).
    run_as: std::sync::OnceLock<Result<RunAs, String>>,
}

impl Runner {
    fn run_as(&self) -> &Result<RunAs, String> {
        self.run_as.get_or_init(|| {
            let run_as = security::run_as(self.script_user.as_deref())
                .map_err(|e| format!("script-user: {e}"));
            if let Err(why) = &run_as {
                warn!("notify commands will not run: {why}");
            }
            run_as
        })
    }

    async fn run(&self, key: &str, command: String) {
        let run_as = match self.run_as() {
            Ok(r) => *r,
            Err(why) => {
                warn!(key, command, "notify command not run: {why}");
                return;
            }
        };
        let run = run_command(&command, self.timeout, run_as).await;
        let ms = run.elapsed.as_millis() as u64;
        match run.outcome {
            Outcome::Exited(0) => debug!(key, command, ms, "notify command done"),
            Outcome::Exited(code) => info!(key, command, ms, code, "notify command failed"),
            Outcome::Signalled(sig) => warn!(key, command, ms, sig, "notify command killed"),
            Outcome::TimedOut => warn!(
                key,
                command,
                timeout_ms = self.timeout.as_millis() as u64,
                "notify command timed out; killed with its process group"
            ),
            Outcome::Failed(why) => warn!(key, command, "notify command failed: {why}"),
        }
    }
}

/// Runs notify commands in the background, in order per key, latest state wins (see
/// [`queue`]). Created inside a tokio runtime.
pub struct Notifier {
    tx: mpsc::UnboundedSender<(String, Vec<String>)>,
    task: JoinHandle<()>,
    stats: Arc<QueueStats>,
}

impl Notifier {
    /// Starts the runner. `script_user`: run commands as this user (looked up at the first
    /// command); None: as the unprivileged default (`upkeep-script`, else `nobody`; the
    /// daemon's own user when it is not root). A user that does not exist is logged then and at
    /// each command, and nothing runs (the config check refuses such a user before this).
    pub fn spawn(timeout: Duration, script_user: Option<String>) -> Notifier {
        Self::spawn_counted(timeout, script_user, Arc::default())
    }

    /// [`Notifier::spawn`], counting in `stats` (shared with the notifier it replaces).
    pub fn spawn_counted(
        timeout: Duration,
        script_user: Option<String>,
        stats: Arc<QueueStats>,
    ) -> Notifier {
        let runner = Arc::new(Runner {
            timeout,
            script_user,
            run_as: std::sync::OnceLock::new(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let run = move |key: String, commands: Vec<String>| {
            let runner = runner.clone();
            async move {
                for command in commands {
                    runner.run(&key, command).await;
                }
            }
        };
        let task = tokio::spawn(queue::dispatch(
            rx,
            stats.clone(),
            usize::MAX,
            "notify",
            run,
        ));
        Notifier { tx, task, stats }
    }

    /// Queues `commands` for `key` (an instance or sync group name); they run after the
    /// command running for `key` now, unless a later call for `key` supersedes them before
    /// they start. Never blocks.
    pub fn notify(&self, key: String, commands: Vec<String>) {
        if commands.is_empty() {
            return;
        }
        // The dispatcher lives as long as the Notifier; a send can fail only if it panicked.
        if self.tx.send((key, commands)).is_err() {
            warn!("notify runner is gone; commands dropped");
        }
    }

    /// The queue's counts.
    pub fn counts(&self) -> QueueCounts {
        self.stats.counts()
    }

    /// Stops taking commands and waits until every queued one has run (each bounded by the
    /// timeout). For shutdown, after the `notify-stop` commands are queued.
    pub async fn shutdown(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::trackers::count_processes;
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    /// The test's own user, so commands run as it and can write its temp files.
    fn me() -> Option<String> {
        security::user_name(security::effective_uid())
    }

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("upkeep-hook-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    /// Children of this process that are zombies, among `pids`.
    fn zombies_among(pids: &[u32]) -> Vec<u32> {
        let me = std::process::id();
        pids.iter()
            .copied()
            .filter(|pid| {
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    return false;
                };
                let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
                    return false;
                };
                let mut fields = after.split_whitespace();
                let state = fields.next();
                let ppid = fields.next().and_then(|p| p.parse::<u32>().ok());
                state == Some("Z") && ppid == Some(me)
            })
            .collect()
    }

    #[test]
    fn arguments() {
        assert_eq!(
            keepalived_args("INSTANCE", "web", "MASTER", 100),
            "INSTANCE web MASTER 100"
        );
        assert_eq!(
            keepalived_args("GROUP", "my group", "FAULT", 0),
            "GROUP 'my group' FAULT 0"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a$b"), "'a$b'");
        assert_eq!(shell_quote("VI_1"), "VI_1");
        let n = Notify {
            master: Some("/m.sh x".into()),
            backup: None,
            fault: Some("/f.sh".into()),
            stop: Some("/s.sh".into()),
            any: Some("/n.sh --from upkeep".into()),
            hooks: Vec::new(),
            master_rx_lower_pri: None,
        };
        assert_eq!(
            commands_for(&n, Subject::Instance, "web", NotifyState::Master, 150),
            ["/m.sh x", "/n.sh --from upkeep INSTANCE web MASTER 150"]
        );
        assert_eq!(
            commands_for(&n, Subject::Group, "g", NotifyState::Backup, 0),
            ["/n.sh --from upkeep GROUP g BACKUP 0"]
        );
        assert_eq!(
            commands_for(&n, Subject::Instance, "web", NotifyState::Stop, 100),
            ["/s.sh", "/n.sh --from upkeep INSTANCE web STOP 100"]
        );
        assert!(commands_for(
            &Notify::default(),
            Subject::Instance,
            "w",
            NotifyState::Fault,
            1
        )
        .is_empty());
    }

    #[tokio::test]
    async fn commands_for_one_key_run_in_order_without_blocking_the_caller() {
        let dir = temp("order");
        let (out, other, gate) = (dir.join("out"), dir.join("other"), dir.join("gate"));
        let notifier = Notifier::spawn(Duration::from_secs(10), me());
        let f = out.display();
        let queued = Instant::now();
        // The first command waits for the test to open the gate.
        notifier.notify(
            "web".into(),
            vec![format!(
                "while [ ! -e {} ]; do sleep 0.01; done; echo 1 >> {f}",
                gate.display()
            )],
        );
        notifier.notify("web".into(), vec![format!("sleep 0.1; echo 2 >> {f}")]);
        // Queued behind the first before `2` could start: `2` is superseded (latest state
        // wins), `3` and `4` run in order.
        notifier.notify(
            "web".into(),
            vec![format!("echo 3 >> {f}"), format!("echo 4 >> {f}")],
        );
        // Another key is not held up by `web`'s queue.
        notifier.notify("db".into(), vec![format!("echo db >> {}", other.display())]);
        assert!(
            queued.elapsed() < Duration::from_millis(100),
            "notify must not block"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while !other.exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(other.exists(), "`db` ran while `web` waited");
        assert!(!out.exists(), "nothing of `web` overtook its first command");
        std::fs::write(&gate, "").expect("open the gate");
        notifier.shutdown().await;
        assert_eq!(std::fs::read_to_string(&out).expect("out"), "1\n3\n4\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A slow command and an instance that flaps meanwhile: the queue does not grow with the
    /// flaps; the transitions queued behind the slow one are superseded by the latest, which
    /// still runs.
    #[tokio::test]
    async fn a_flapping_instance_behind_a_slow_command_runs_only_its_latest_state() {
        let dir = temp("flap");
        let (out, gate) = (dir.join("out"), dir.join("gate"));
        let notifier = Notifier::spawn(Duration::from_secs(10), me());
        let f = out.display();
        notifier.notify(
            "web".into(),
            vec![format!(
                "while [ ! -e {} ]; do sleep 0.01; done; echo MASTER0 >> {f}",
                gate.display()
            )],
        );
        for k in 1..=50 {
            let state = if k % 2 == 1 { "BACKUP" } else { "MASTER" };
            notifier.notify("web".into(), vec![format!("echo {state}{k} >> {f}")]);
        }
        // One runs, one waits: the other 49 were superseded as they came.
        let deadline = Instant::now() + Duration::from_secs(5);
        while notifier.counts().superseded < 49 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            notifier.counts(),
            QueueCounts {
                waiting: 1,
                running: 1,
                run: 1,
                superseded: 49
            }
        );
        std::fs::write(&gate, "").expect("open the gate");
        let stats = notifier.stats.clone();
        notifier.shutdown().await;
        assert_eq!(
            std::fs::read_to_string(&out).expect("out"),
            "MASTER0\nMASTER50\n"
        );
        assert_eq!(stats.counts().run, 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_group_and_reaps() {
        let start = Instant::now();
        let run = run_command(
            "sleep 100.25 & sleep 100.25; echo never",
            Duration::from_millis(300),
            None,
        )
        .await;
        assert_eq!(run.outcome, Outcome::TimedOut);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        assert!(run.elapsed >= Duration::from_millis(300));
        // Both sleeps, the background one included, are gone (SIGKILL lands at once, but
        // give the kernel a moment).
        let deadline = Instant::now() + Duration::from_secs(2);
        while count_processes("sleep 100.25", true) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(count_processes("sleep 100.25", true), 0);
        let pid = run.pid.expect("started");
        assert!(zombies_among(&[pid]).is_empty());
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "the shell is reaped"
        );
    }

    #[tokio::test]
    async fn outcomes_and_no_zombies() {
        let mut pids = Vec::new();
        for (cmd, want) in [
            ("exit 0", Outcome::Exited(0)),
            ("exit 3", Outcome::Exited(3)),
            ("kill -TERM $$", Outcome::Signalled(libc::SIGTERM)),
            ("cat", Outcome::Exited(0)), // stdin is /dev/null: cat ends at once
            ("echo out; echo err >&2", Outcome::Exited(0)),
        ] {
            let run = run_command(cmd, Duration::from_secs(5), None).await;
            assert_eq!(run.outcome, want, "{cmd}");
            pids.extend(run.pid);
        }
        assert!(zombies_among(&pids).is_empty());
        for pid in pids {
            assert!(!Path::new(&format!("/proc/{pid}")).exists(), "{pid} reaped");
        }
        // Its own process group.
        let dir = temp("pgid");
        let out = dir.join("pgid");
        let run = run_command(
            &format!("cut -d' ' -f5 /proc/$$/stat > {}", out.display()),
            Duration::from_secs(5),
            None,
        )
        .await;
        let pgid: u32 = std::fs::read_to_string(&out)
            .expect("pgid")
            .trim()
            .parse()
            .expect("a number");
        assert_eq!(Some(pgid), run.pid);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn runs_as_script_user() {
        let root = security::effective_uid() == 0;
        let Ok(Some(nobody)) = security::lookup_user("nobody") else {
            return;
        };
        if !root {
            eprintln!("skipped: needs root to switch user");
            return;
        }
        let dir = temp("user");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .expect("chmod");
        let out = dir.join("id");
        let notifier = Notifier::spawn(Duration::from_secs(5), Some("nobody".into()));
        notifier.notify(
            "web".into(),
            vec![format!("id -u > {0}; id -G >> {0}", out.display())],
        );
        notifier.shutdown().await;
        let text = std::fs::read_to_string(&out).expect("the command ran");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(nobody.uid.to_string().as_str()));
        assert_eq!(
            lines.next(),
            Some(nobody.gid.to_string().as_str()),
            "only the user's primary group: root's groups are dropped"
        );

        // No `script-user`: the unprivileged default, not root.
        let default = security::script_user(None).expect("a default user");
        let notifier = Notifier::spawn(Duration::from_secs(5), None);
        notifier.notify("web".into(), vec![format!("id -u > {}", out.display())]);
        notifier.shutdown().await;
        let text = std::fs::read_to_string(&out).expect("the command ran");
        assert_eq!(
            text.trim(),
            default.uid.to_string(),
            "runs as {}",
            default.name
        );
        assert_ne!(default.uid, 0);
        // Root when named.
        let notifier = Notifier::spawn(Duration::from_secs(5), Some("root".into()));
        notifier.notify("web".into(), vec![format!("id -u > {}", out.display())]);
        notifier.shutdown().await;
        let text = std::fs::read_to_string(&out).expect("the command ran");
        assert_eq!(text.trim(), "0");

        // A user that does not exist: nothing runs (not even as root).
        let marker = dir.join("ran");
        let notifier = Notifier::spawn(Duration::from_secs(5), Some("no-such-user-upkeep".into()));
        notifier.notify("web".into(), vec![format!("touch {}", marker.display())]);
        notifier.shutdown().await;
        assert!(!marker.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
