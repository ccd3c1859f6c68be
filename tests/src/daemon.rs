//! A VRRP daemon (upkeep or keepalived) running inside a lab host's namespace.
// unsafe here: signals to the daemons the harness started (`killpg`).
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::wait::{wait_for, POLL};

/// Which implementation a [`Daemon`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Upkeep,
    Keepalived,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Upkeep => "upkeep",
            Kind::Keepalived => "keepalived",
        })
    }
}

/// A daemon process started by [`crate::Lab`], in its own process group. Dropping it kills the
/// whole group with SIGKILL.
pub struct Daemon {
    pub(crate) kind: Kind,
    pub(crate) host: usize,
    pub(crate) ns: String,
    pub(crate) pid: u32,
    pub(crate) child: Mutex<Child>,
    pub(crate) config: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) log_offset: u64,
    pub(crate) state_dir: Option<PathBuf>,
}

impl Daemon {
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The lab host number (1-based) it runs on.
    pub fn host(&self) -> usize {
        self.host
    }

    pub fn netns(&self) -> &str {
        &self.ns
    }

    /// Its process id (the daemon itself: `ip netns exec` execs it).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The state directory (upkeep only).
    pub fn state_dir(&self) -> Option<&Path> {
        self.state_dir.as_deref()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything this run of the daemon wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        read_from(&self.log, self.log_offset)
    }

    /// The last `n` lines of [`Daemon::log`].
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log(), n)
    }

    /// Its exit status, if it has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.child
            .lock()
            .expect("child lock")
            .try_wait()
            .ok()
            .flatten()
    }

    pub fn is_running(&self) -> bool {
        self.exit_status().is_none()
    }

    /// Sends `sig` (e.g. [`crate::SIGTERM`]). SIGKILL goes to the whole process group (helpers
    /// and children die too); other signals go to the daemon process alone, as an init system
    /// would send them. Errors if the daemon has already exited.
    pub fn signal(&self, sig: i32) -> Result<()> {
        if let Some(st) = self.exit_status() {
            bail!("{self}: cannot send signal {sig}: already exited ({st})");
        }
        let pid = self.pid as libc::pid_t;
        // SAFETY: plain kill(2).
        let ret = unsafe {
            if sig == libc::SIGKILL {
                libc::killpg(pid, sig)
            } else {
                libc::kill(pid, sig)
            }
        };
        if ret != 0 {
            return Err(std::io::Error::last_os_error()).context(format!("{self}: signal {sig}"));
        }
        Ok(())
    }

    /// Waits for the daemon to exit and returns its status.
    pub fn wait_exit(&self, timeout: Duration) -> Result<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(st) = self.exit_status() {
                return Ok(st);
            }
            if start.elapsed() >= timeout {
                bail!(
                    "{self} still running {timeout:?} after; log tail:\n{}",
                    self.log_tail(20)
                );
            }
            std::thread::sleep(POLL / 2);
        }
    }

    /// SIGTERM, then waits up to `timeout` for the exit; returns the exit status.
    pub fn stop(&self, timeout: Duration) -> Result<ExitStatus> {
        self.signal(libc::SIGTERM)?;
        self.wait_exit(timeout)
    }

    /// The daemon's status file, `STATE_DIR/status.json` (upkeep only). Errors while it does
    /// not exist yet, or when it was written by another process (a previous run).
    pub fn status(&self) -> Result<Value> {
        let dir = self
            .state_dir
            .as_ref()
            .ok_or_else(|| anyhow!("{self} has no status file"))?;
        let path = dir.join("status.json");
        let text = fs::read_to_string(&path)
            .with_context(|| format!("{self}: read {}", path.display()))?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{self}: {} is not JSON: {text}", path.display()))?;
        if let Some(pid) = v.get("pid").and_then(Value::as_u64) {
            if pid != u64::from(self.pid) {
                bail!("{self}: status.json is from pid {pid}, not this run");
            }
        }
        Ok(v)
    }

    /// The status of instance `name` (an element of `instances`).
    pub fn instance(&self, name: &str) -> Result<Value> {
        self.entry(Entry::Instance, name)
    }

    /// The state of instance `name` ("master", "backup", ...).
    pub fn state(&self, name: &str) -> Result<String> {
        let i = self.instance(name)?;
        i.get("state")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("{self}: instance {name:?} has no state: {i}"))
    }

    /// A numeric field of instance `name`, e.g. "transitions" or "adverts_received".
    pub fn counter(&self, name: &str, field: &str) -> Result<u64> {
        let i = self.instance(name)?;
        i.get(field)
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("{self}: instance {name:?} has no {field}: {i}"))
    }

    /// All drop counters, the top-level ones and every instance's, added up by reason.
    pub fn drops(&self) -> Result<BTreeMap<String, u64>> {
        Ok(status_drops(&self.status()?))
    }

    /// The drop counter for `reason`, summed over the top level and all instances (0 if absent).
    pub fn drop_count(&self, reason: &str) -> Result<u64> {
        Ok(self.drops()?.get(reason).copied().unwrap_or(0))
    }

    /// Waits until instance `name` is in `state`; returns its status. Fails early, with the log
    /// tail, if the daemon exits.
    pub fn wait_state(&self, name: &str, state: &str, timeout: Duration) -> Result<Value> {
        self.wait_instance(name, format!("state {state}"), timeout, |i| {
            i["state"] == state
        })
    }

    /// Waits until `pred` accepts the status of instance `name`; returns that status.
    pub fn wait_instance(
        &self,
        name: &str,
        what: impl fmt::Display,
        timeout: Duration,
        pred: impl FnMut(&Value) -> bool,
    ) -> Result<Value> {
        self.wait_entry(Entry::Instance, name, what, timeout, pred)
    }

    /// Waits until instance `name` is a backup that names `master` as its master (i.e. it has
    /// heard that master's adverts).
    pub fn wait_backup_of(&self, name: &str, master: &str, timeout: Duration) -> Result<Value> {
        self.wait_instance(name, format!("backup of {master}"), timeout, |i| {
            i["state"] == "backup" && i["master"] == master
        })
    }

    /// The element named `name` of the status file's list `kind` (`instances` or `checks`).
    fn entry(&self, kind: Entry, name: &str) -> Result<Value> {
        let st = self.status()?;
        kind.find(&st, name)
            .cloned()
            .ok_or_else(|| anyhow!("{self}: no {kind} {name:?} in status {st}"))
    }

    /// Waits until `pred` accepts the element named `name` of the status file's list `kind`;
    /// returns that element. Fails early if the daemon exits.
    fn wait_entry(
        &self,
        kind: Entry,
        name: &str,
        what: impl fmt::Display,
        timeout: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Result<Value> {
        let st = self.wait_status(format!("{kind} {name:?}: {what}"), timeout, |st| {
            kind.find(st, name).is_some_and(&mut pred)
        })?;
        Ok(kind.find(&st, name).cloned().expect("accepted"))
    }

    /// Waits until `pred` accepts the status file; returns it. Fails early if the daemon exits.
    pub fn wait_status(
        &self,
        what: impl fmt::Display,
        timeout: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Result<Value> {
        let what = format!("{self}: {what}");
        let got = wait_for(
            &what,
            timeout,
            || match (self.exit_status(), self.status()) {
                (Some(st), _) => Observed::Exited(st.to_string()),
                (None, Ok(v)) => Observed::Status(v),
                (None, Err(e)) => Observed::NoStatus(format!("{e:#}")),
            },
            |o| match o {
                Observed::Status(v) => pred(v),
                Observed::Exited(_) => true,
                Observed::NoStatus(_) => false,
            },
        );
        match got {
            Ok(Observed::Status(v)) => Ok(v),
            Ok(Observed::Exited(st)) => bail!(
                "{what}: daemon exited ({st}); log tail:\n{}",
                self.log_tail(30)
            ),
            Ok(Observed::NoStatus(_)) => unreachable!("not accepted"),
            Err(e) => Err(anyhow!(
                "{e:#}--- log tail of {self}:\n{}",
                self.log_tail(15)
            )),
        }
    }
}

/// Reloads and checks (upkeep only).
impl Daemon {
    /// Replaces the config file (a new file renamed over it, as editors save), which a running
    /// upkeep notices and reloads. Check the outcome with [`Daemon::wait_reload`].
    pub fn write_config(&self, kdl: &str) -> Result<()> {
        crate::extras::replace_file(&self.config, kdl.as_bytes(), 0o644)
    }

    /// `last_reload` of the status file (`null` before the first reload).
    pub fn last_reload(&self) -> Result<Value> {
        Ok(self.status()?["last_reload"].clone())
    }

    /// The sequence number of the last reload (0 before the first).
    pub fn reload_seq(&self) -> Result<u64> {
        Ok(self.last_reload()?["seq"].as_u64().unwrap_or(0))
    }

    /// Waits for a reload after the one numbered `after` (see [`Daemon::reload_seq`]) and
    /// returns its `last_reload` record.
    pub fn wait_reload(&self, after: u64, timeout: Duration) -> Result<Value> {
        let st = self.wait_status(format!("a reload after #{after}"), timeout, |st| {
            st["last_reload"]["seq"].as_u64().unwrap_or(0) > after
        })?;
        Ok(st["last_reload"].clone())
    }

    /// Runs `upkeep reload --state-dir DIR` for this daemon (it signals the daemon and prints
    /// the reload's result) and returns its output.
    pub fn reload_cli(&self) -> Result<std::process::Output> {
        let dir = self
            .state_dir
            .as_ref()
            .ok_or_else(|| anyhow!("{self} has no state dir"))?;
        let bin = crate::lab::upkeep_bin()?;
        std::process::Command::new(&bin)
            .arg("reload")
            .arg("--state-dir")
            .arg(dir)
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("run {} reload", bin.display()))
    }

    /// The status of check `name` (an element of `checks`).
    pub fn check(&self, name: &str) -> Result<Value> {
        self.entry(Entry::Check, name)
    }

    /// Waits until `pred` accepts the status of check `name`; returns that status.
    pub fn wait_check(
        &self,
        name: &str,
        what: impl fmt::Display,
        timeout: Duration,
        pred: impl FnMut(&Value) -> bool,
    ) -> Result<Value> {
        self.wait_entry(Entry::Check, name, what, timeout, pred)
    }
}

/// A named list of the status file: `instances` or `checks`.
#[derive(Clone, Copy)]
enum Entry {
    Instance,
    Check,
}

impl Entry {
    /// Its element named `name` in status document `st`.
    fn find<'a>(self, st: &'a Value, name: &str) -> Option<&'a Value> {
        let list = match self {
            Entry::Instance => "instances",
            Entry::Check => "checks",
        };
        st.get(list)?
            .as_array()?
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entry::Instance => "instance",
            Entry::Check => "check",
        })
    }
}

/// The drop counters of a status document, top level and every instance's, added up by reason.
pub fn status_drops(status: &Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut add = |d: Option<&Value>| {
        if let Some(m) = d.and_then(Value::as_object) {
            for (k, v) in m {
                *out.entry(k.clone()).or_insert(0) += v.as_u64().unwrap_or(0);
            }
        }
    };
    add(status.get("drops"));
    for i in status
        .get("instances")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        add(i.get("drops"));
    }
    out
}

#[derive(PartialEq)]
enum Observed {
    Status(Value),
    NoStatus(String),
    Exited(String),
}

impl fmt::Debug for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Observed::Status(v) => write!(f, "{v}"),
            Observed::NoStatus(e) => write!(f, "no status: {e}"),
            Observed::Exited(st) => write!(f, "exited: {st}"),
        }
    }
}

impl fmt::Display for Daemon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on h{} (pid {})", self.kind, self.host, self.pid)
    }
}

impl fmt::Debug for Daemon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if child.try_wait().ok().flatten().is_none() {
            // SAFETY: plain killpg(2) on the group we created.
            unsafe { libc::killpg(self.pid as libc::pid_t, libc::SIGKILL) };
        }
        let _ = child.wait();
    }
}

pub(crate) fn read_from(path: &Path, offset: u64) -> String {
    let mut s = Vec::new();
    if let Ok(mut f) = fs::File::open(path) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = f.read_to_end(&mut s);
        }
    }
    String::from_utf8_lossy(&s).into_owned()
}

pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
