//! FRR (zebra + bgpd) in a host's namespace, as an upstream router: its config, pid files,
//! vty sockets and log in the lab dir. Killed when dropped (and by the lab's cleanup of its
//! namespaces).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::{wait_until, Lab};

const DAEMONS: [&str; 2] = ["zebra", "bgpd"];

pub struct Frr {
    ns: String,
    dir: PathBuf,
}

/// Whether FRR's zebra, bgpd and vtysh are installed (`scripts/install-deps.sh`).
pub fn frr_available() -> bool {
    Path::new("/usr/lib/frr/bgpd").exists()
        && Path::new("/usr/lib/frr/zebra").exists()
        && Path::new("/usr/bin/vtysh").exists()
}

/// The `frr` user's uid and gid (`id -u frr`, `id -g frr`).
fn frr_ids() -> Result<(u32, u32)> {
    let id = |flag: &str| -> Result<u32> {
        let out = Command::new("id")
            .args([flag, "frr"])
            .output()
            .context("id frr")?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .with_context(|| format!("no frr user: {}", String::from_utf8_lossy(&out.stderr)))
    };
    Ok((id("-u")?, id("-g")?))
}

impl Frr {
    /// Starts zebra and bgpd in host i's namespace with `bgpd_conf` as bgpd's config (zebra
    /// with none) and waits until vtysh answers.
    pub fn start(lab: &Lab, i: usize, name: &str, bgpd_conf: &str) -> Result<Frr> {
        // FRR drops to its own user (it refuses to run as root without the vty group): its
        // dir is its own, and the lab dir above it may be passed through.
        let (uid, gid) = frr_ids()?;
        fs::set_permissions(lab.dir(), fs::Permissions::from_mode(0o711))?;
        let dir = lab.dir().join(name);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("zebra.conf"), "")?;
        fs::write(dir.join("bgpd.conf"), bgpd_conf)?;
        fs::write(dir.join("vtysh.conf"), "")?;
        for p in ["", "zebra.conf", "bgpd.conf", "vtysh.conf"] {
            std::os::unix::fs::chown(dir.join(p), Some(uid), Some(gid))?;
        }
        let f = Frr {
            ns: lab.host_ns(i),
            dir,
        };
        for d in DAEMONS {
            let dir = &f.dir;
            let out = Command::new("ip")
                .args(["netns", "exec", &f.ns])
                .arg(format!("/usr/lib/frr/{d}"))
                .arg("-d")
                .arg("-f")
                .arg(dir.join(format!("{d}.conf")))
                .arg("-i")
                .arg(dir.join(format!("{d}.pid")))
                .arg("-z")
                .arg(dir.join("zserv.api"))
                .arg("--vty_socket")
                .arg(dir)
                .args(["-u", "frr", "-g", "frr", "-P", "0"])
                .arg("--log")
                .arg(format!("file:{}", dir.join(format!("{d}.log")).display()))
                .output()
                .with_context(|| format!("starting {d}"))?;
            if !out.status.success() {
                bail!(
                    "{d} did not start: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        wait_until("FRR's vtysh", Duration::from_secs(10), || {
            f.vtysh("show bgp summary").is_ok()
        })?;
        Ok(f)
    }

    /// `vtysh -c COMMAND` against this FRR.
    pub fn vtysh(&self, command: &str) -> Result<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "vtysh", "--vty_socket"])
            .arg(&self.dir)
            .arg("--config_dir")
            .arg(&self.dir)
            .args(["-c", command])
            .output()
            .context("vtysh")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "vtysh -c {command}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(text)
    }

    fn kill(&self) {
        for d in DAEMONS {
            let pid_file = self.dir.join(format!("{d}.pid"));
            if let Ok(pid) = fs::read_to_string(&pid_file) {
                let _ = Command::new("kill").args(["-KILL", pid.trim()]).output();
            }
            let _ = fs::remove_file(pid_file);
        }
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        self.kill();
    }
}
