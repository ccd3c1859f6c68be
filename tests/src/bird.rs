//! BIRD 2 in a host's namespace: the routing daemon upkeep drives (`speaker`), or the upstream
//! router it peers with. Its config, control socket, pid file and log live in the lab dir; it
//! is SIGKILLed when dropped (and by the lab's cleanup of its namespaces, as any process in
//! them).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::{wait_until, Lab};

pub struct Bird {
    ns: String,
    pub name: String,
    pub conf: PathBuf,
    pub sock: PathBuf,
    pid_file: PathBuf,
}

/// Whether `bird` and `birdc` are installed (`scripts/install-deps.sh`).
pub fn bird_available() -> bool {
    Path::new("/usr/sbin/bird").exists() && Path::new("/usr/sbin/birdc").exists()
}

impl Bird {
    /// Starts `bird -c DIR/NAME.conf -s DIR/NAME.ctl -P DIR/NAME.pid` in host i's namespace
    /// with `conf` as its config and waits until its control socket answers.
    pub fn start(lab: &Lab, i: usize, name: &str, conf: &str) -> Result<Bird> {
        let dir = lab.dir();
        let b = Bird {
            ns: lab.host_ns(i),
            name: name.to_owned(),
            conf: lab.write_file(&format!("{name}.conf"), conf)?,
            sock: dir.join(format!("{name}.ctl")),
            pid_file: dir.join(format!("{name}.pid")),
        };
        b.launch()?;
        Ok(b)
    }

    fn launch(&self) -> Result<()> {
        let _ = fs::remove_file(&self.pid_file);
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "bird", "-c"])
            .arg(&self.conf)
            .arg("-s")
            .arg(&self.sock)
            .arg("-P")
            .arg(&self.pid_file)
            .output()
            .context("starting bird")?;
        if !out.status.success() {
            bail!(
                "bird {} did not start: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        wait_until(
            format!("bird {}'s control socket", self.name),
            Duration::from_secs(5),
            || {
                self.birdc(&["show", "status"])
                    .is_ok_and(|s| s.contains("Daemon is up"))
            },
        )
        .map(drop)
    }

    /// `birdc -s SOCK ARGS...`: its output, or an error with it.
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "birdc", "-s"])
            .arg(&self.sock)
            .args(args)
            .output()
            .context("birdc")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "birdc {}: {text}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(text)
    }

    /// `show route for PREFIX` as birdc prints it ("Network not found" when there is none).
    pub fn route(&self, prefix: &str) -> String {
        self.birdc(&["show", "route", prefix])
            .unwrap_or_else(|e| format!("birdc failed: {e}"))
    }

    fn pid(&self) -> Option<i32> {
        fs::read_to_string(&self.pid_file).ok()?.trim().parse().ok()
    }

    /// SIGKILLs it (as a crash would) and waits for it to be gone.
    pub fn kill(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .output();
            let _ = wait_until("bird gone", Duration::from_secs(5), || {
                !Path::new(&format!("/proc/{pid}")).exists()
            });
        }
        let _ = fs::remove_file(&self.pid_file);
        let _ = fs::remove_file(&self.sock);
    }

    /// Kills it and starts it again with the same config.
    pub fn restart(&self) -> Result<()> {
        self.kill();
        self.launch()
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        self.kill();
    }
}
