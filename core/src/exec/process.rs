//! Running an operator's command line: check scripts and notify commands.
//!
//! A plain command (a path, then plain words: no quotes, `$`, globs, redirections or other
//! shell syntax) is exec'd directly, as keepalived does; anything else runs as `/bin/sh -c
//! COMMAND`. Either way the command gets a process group of its own, stdin, stdout and stderr
//! on /dev/null, the user it is told to run as, and an environment of `PATH` alone (none of the
//! daemon's variables). One still running at its timeout, or when its run is dropped (its check
//! removed by a reload, the daemon stopping), is killed with its whole group, and the child is
//! always reaped.
// unsafe here: kill(2) of a process group, wrapped once as the safe `signal`.
#![allow(unsafe_code)]

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The `PATH` of every command, its only environment variable: none of the daemon's own (a
/// token in its unit's `Environment=`, say) reaches a script.
pub const SCRIPT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Who a command runs as: `(uid, gid)`, None for the daemon's own user.
pub type RunAs = Option<(u32, u32)>;

/// How one command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    /// Killed by this signal (not by the timeout).
    Signalled(i32),
    /// Still running at the timeout: killed with its process group.
    TimedOut,
    /// Could not be started (or waited for).
    Failed(String),
}

/// One command's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The child's pid (and process group id), when it started.
    pub pid: Option<u32>,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// What to run, and how.
#[derive(Debug, Clone, Copy)]
pub struct Spawn<'a> {
    pub command: &'a str,
    pub timeout: Duration,
    pub run_as: RunAs,
    /// Working directory; None: the daemon's.
    pub cwd: Option<&'a Path>,
    /// Kill what the command left running in its group when it exits. A check's leftovers are
    /// strays; a notify command may mean to start something that outlives it.
    pub kill_leftovers: bool,
}

/// The words of `command` when it can be exec'd without a shell: every byte is a plain word
/// byte or blank, and the first word is a path (so neither a builtin such as `exit` nor a
/// variable assignment). Anything else needs `/bin/sh -c`.
pub fn direct_argv(command: &str) -> Option<Vec<&str>> {
    let plain = command
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-.,:/@%+= \t".contains(c));
    let words: Vec<&str> = command.split_ascii_whitespace().collect();
    let program = words.first()?;
    (plain && program.contains('/') && !program.contains('=')).then_some(words)
}

/// The child process for `command`: exec'd directly when `direct` holds words, else via the shell.
fn child_for(spawn: &Spawn<'_>, direct: Option<&[&str]>) -> std::io::Result<tokio::process::Child> {
    let mut std_cmd = match direct {
        Some(words) => {
            let mut cmd = std::process::Command::new(words[0]);
            cmd.args(&words[1..]);
            cmd
        }
        None => {
            let mut cmd = std::process::Command::new("/bin/sh");
            cmd.arg("-c").arg(spawn.command);
            cmd
        }
    };
    std_cmd
        .env_clear()
        .env("PATH", SCRIPT_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    if let Some(dir) = spawn.cwd {
        std_cmd.current_dir(dir);
    }
    if let Some((uid, gid)) = spawn.run_as {
        // std drops supplementary groups when it switches uid as root.
        std_cmd.gid(gid).uid(uid);
    }
    let mut cmd = tokio::process::Command::from(std_cmd);
    cmd.kill_on_drop(true);
    cmd.spawn()
}

/// Runs `spawn.command` to its end or its timeout; see the module comment.
pub async fn run(spawn: &Spawn<'_>) -> Run {
    let start = Instant::now();
    let direct = direct_argv(spawn.command);
    let spawned = match child_for(spawn, direct.as_deref()) {
        // A script without a `#!` line: the shell runs it, as it would have from `sh -c`.
        Err(e) if direct.is_some() && e.raw_os_error() == Some(libc::ENOEXEC) => {
            child_for(spawn, None)
        }
        other => other,
    };
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return Run {
                pid: None,
                outcome: Outcome::Failed(format!("cannot start: {e}")),
                elapsed: start.elapsed(),
            }
        }
    };
    let pid = child.id();
    // Declared after `child`, so dropped before it: the group is killed while its leader is
    // still unreaped (its id cannot have been reused).
    let mut group = GroupKill(pid);
    let outcome = match tokio::time::timeout(spawn.timeout, child.wait()).await {
        Ok(Ok(status)) => {
            let leader = group.disarm();
            if spawn.kill_leftovers {
                if let Some(pg) = leader {
                    kill_group(pg);
                }
            }
            match (status.code(), status.signal()) {
                (Some(code), _) => Outcome::Exited(code),
                (None, Some(sig)) => Outcome::Signalled(sig),
                (None, None) => Outcome::Failed(format!("ended with {status}")),
            }
        }
        Ok(Err(e)) => Outcome::Failed(format!("wait failed: {e}")),
        Err(_) => {
            if let Some(pg) = group.disarm() {
                kill_group(pg);
            }
            // Reap: the child is dead or dying.
            let _ = child.wait().await;
            Outcome::TimedOut
        }
    };
    Run {
        pid,
        outcome,
        elapsed: start.elapsed(),
    }
}

/// Kills a started command's process group when dropped, unless disarmed first: a run that is
/// dropped (its task aborted) before the command ended leaves nothing of it running.
struct GroupKill(Option<u32>);

impl GroupKill {
    /// The command ended: the caller decides about its group now.
    fn disarm(&mut self) -> Option<u32> {
        self.0.take()
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pg) = self.0 {
            kill_group(pg);
        }
    }
}

fn kill_group(pgid: u32) {
    if let Ok(pgid) = i32::try_from(pgid) {
        let _ = signal(-pgid, libc::SIGKILL);
    }
}

/// kill(2): sends `sig` to `pid` (a negative pid: that process group).
pub fn signal(pid: i32, sig: libc::c_int) -> std::io::Result<()> {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_with_plain_words_are_execd_directly() {
        for (line, argv) in [
            (
                "/usr/bin/pgrep -x haproxy",
                vec!["/usr/bin/pgrep", "-x", "haproxy"],
            ),
            ("./check.sh", vec!["./check.sh"]),
            (
                "/etc/keepalived/notify.sh INSTANCE web_1 MASTER 150",
                vec![
                    "/etc/keepalived/notify.sh",
                    "INSTANCE",
                    "web_1",
                    "MASTER",
                    "150",
                ],
            ),
            ("  /bin/true\t--x=1  ", vec!["/bin/true", "--x=1"]),
        ] {
            assert_eq!(direct_argv(line), Some(argv), "{line}");
        }
    }

    #[test]
    fn shell_syntax_builtins_and_bare_names_go_to_the_shell() {
        for line in [
            "exit 0",
            "true",
            "pgrep haproxy",
            "FOO=/x /bin/check",
            "/bin/check > /dev/null",
            "/bin/check; /bin/other",
            "/bin/check && /bin/other",
            "/bin/check $HOME",
            "/bin/check '/a b'",
            "/bin/check \"x\"",
            "/bin/check *.conf",
            "/bin/check ~/x",
            "/bin/check `id`",
            "/bin/check # comment",
            "/bin/check a\\ b",
            "/bin/check &",
            "",
            "   ",
        ] {
            assert_eq!(direct_argv(line), None, "{line}");
        }
    }

    fn spawn(command: &str) -> Spawn<'_> {
        Spawn {
            command,
            timeout: Duration::from_secs(5),
            run_as: None,
            cwd: None,
            kill_leftovers: true,
        }
    }

    fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        std::fs::create_dir_all(dir).expect("dir");
        let path = dir.join(name);
        std::fs::write(&path, body).expect("script");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        path
    }

    #[tokio::test]
    async fn a_direct_command_gets_its_words_as_arguments() {
        let dir = std::env::temp_dir().join(format!("upkeep-direct-{}", std::process::id()));
        let report = script(
            &dir,
            "report.sh",
            "#!/bin/sh\necho \"$#:$1:$2\" > \"$(dirname \"$0\")/out\"\n",
        );
        let line = format!("{}  a=1\tb", report.display());
        assert!(direct_argv(&line).is_some());
        let run = run(&spawn(&line)).await;
        assert_eq!(run.outcome, Outcome::Exited(0));
        let out = std::fs::read_to_string(dir.join("out")).expect("out");
        assert_eq!(out.trim(), "2:a=1:b");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_script_without_a_shebang_still_runs() {
        let dir = std::env::temp_dir().join(format!("upkeep-noshebang-{}", std::process::id()));
        let bare = script(&dir, "bare", "exit 4\n");
        let run = run(&spawn(&bare.display().to_string())).await;
        assert_eq!(run.outcome, Outcome::Exited(4));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_missing_program_is_a_failure_to_start() {
        // Through `sh -c` this would be a bare exit 127; exec'd directly, the error says why.
        let run = run(&spawn("/nonexistent/upkeep-check --x")).await;
        match run.outcome {
            Outcome::Failed(why) => assert!(why.contains("cannot start"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(run.pid, None);
    }

    #[tokio::test]
    async fn a_command_gets_a_minimal_environment_not_the_daemons() {
        // A variable only the daemon has: a token its unit passes it, say.
        std::env::set_var("UPKEEP_TEST_DAEMON_SECRET", "s3cret");
        let dir = std::env::temp_dir().join(format!("upkeep-env-{}", std::process::id()));
        let dump = script(
            &dir,
            "env.sh",
            "#!/bin/sh\nenv > \"$(dirname \"$0\")/env\"\n",
        );
        assert_eq!(
            run(&spawn(&dump.display().to_string())).await.outcome,
            Outcome::Exited(0)
        );
        let env = std::fs::read_to_string(dir.join("env")).expect("env");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            !env.contains("UPKEEP_TEST_DAEMON_SECRET"),
            "the daemon's environment leaked:\n{env}"
        );
        assert!(
            env.lines().any(|l| l == format!("PATH={SCRIPT_PATH}")),
            "{env}"
        );
        // Besides PATH, only what the shell sets itself.
        for line in env.lines() {
            let name = line.split('=').next().unwrap_or_default();
            assert!(
                ["PATH", "PWD", "OLDPWD", "SHLVL", "_"].contains(&name),
                "unexpected variable {line}:\n{env}"
            );
        }
    }

    /// What a process is: None when it is gone or dead (a zombie nobody reaped yet).
    fn alive(pid: i32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let state = stat.rsplit_once(") ")?.1.chars().next()?;
        (!matches!(state, 'Z' | 'X')).then_some(state)
    }

    /// A run dropped before the command ends (its check removed by a reload, the daemon shutting
    /// down) kills the command's whole process group, not only the command.
    #[tokio::test]
    async fn a_run_dropped_while_the_command_runs_kills_its_whole_group() {
        let dir = std::env::temp_dir().join(format!("upkeep-dropgroup-{}", std::process::id()));
        let body = "#!/bin/sh\ncd \"$(dirname \"$0\")\"\nsleep 1000 &\necho $! > child.tmp\n\
                    mv child.tmp child\nsleep 1000\n";
        let command = script(&dir, "spawner.sh", body).display().to_string();
        let task = tokio::spawn(async move { run(&spawn(&command)).await });
        let child_file = dir.join("child");
        let mut waited = 0;
        while !child_file.exists() && waited < 500 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += 1;
        }
        let child: i32 = std::fs::read_to_string(&child_file)
            .expect("the script started its child")
            .trim()
            .parse()
            .expect("a pid");
        assert!(alive(child).is_some(), "the background child is running");
        task.abort();
        assert!(task.await.is_err(), "aborted before the command ended");
        let mut left = alive(child);
        for _ in 0..200 {
            if left.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            left = alive(child);
        }
        if left.is_some() {
            let _ = signal(child, libc::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            left, None,
            "the command's background child {child} outlived the dropped run"
        );
    }

    #[tokio::test]
    async fn a_relative_path_is_found_from_cwd() {
        let dir = std::env::temp_dir().join(format!("upkeep-cwd-{}", std::process::id()));
        script(&dir, "ok.sh", "#!/bin/sh\nexit 7\n");
        let mut s = spawn("./ok.sh");
        s.cwd = Some(&dir);
        assert_eq!(run(&s).await.outcome, Outcome::Exited(7));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
