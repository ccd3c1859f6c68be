//! Helpers for the reload and health-check tests: the built WASM plugins, files the daemon's
//! script security accepts, extra links in a host, a TCP listener inside a host, and a watch
//! on a host's address events (`ip monitor address`).

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::lab::Lab;
use crate::netns::in_netns;
use crate::wait::wait_until;

/// Where `scripts/build-plugins.sh` puts the plugins: `$UPKEEP_PLUGINS`, else
/// `$CARGO_TARGET_DIR/plugins`, else `<workspace>/target/plugins`.
pub fn plugins_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("UPKEEP_PLUGINS") {
        return PathBuf::from(p);
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t).join("plugins");
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins")
}

/// A built plugin, e.g. `plugin_path("port-listener")` for `target/plugins/port-listener.wasm`.
pub fn plugin_path(name: &str) -> Result<PathBuf> {
    let p = plugins_dir().join(format!("{name}.wasm"));
    if !p.is_file() {
        bail!(
            "plugin {} not found: run scripts/build-plugins.sh first (or point UPKEEP_PLUGINS at the plugins)",
            p.display()
        );
    }
    Ok(p.canonicalize().unwrap_or(p))
}

/// `wasm` (a core module or a component) with a custom section `name` holding `payload` appended:
/// the same code in a different file, as a rebuild that changed nothing but metadata would give.
pub fn with_custom_section(wasm: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    leb128(&mut body, name.len() as u64);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    leb128(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    out
}

fn leb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Writes `bytes` to `path` with `mode` through a temp file in the same directory renamed over
/// it: whoever watches `path` sees the new content at once, never half a file.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    fs::write(&tmp, bytes).with_context(|| format!("write {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    fs::rename(&tmp, path)
        .with_context(|| format!("rename {} to {}", tmp.display(), path.display()))
}

impl Lab {
    /// Writes `bytes` to `name` in the lab's temp dir (root-owned, mode 0700, so script
    /// security accepts what is in it) with permissions `mode`; returns the path.
    pub fn write_file_mode(&self, name: &str, bytes: &[u8], mode: u32) -> Result<PathBuf> {
        let p = self.dir().join(name);
        fs::write(&p, bytes).with_context(|| format!("write {}", p.display()))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
        Ok(p)
    }

    /// Writes an executable (0755) shell script `name` in the lab dir; returns its path.
    pub fn write_script(&self, name: &str, body: &str) -> Result<PathBuf> {
        self.write_file_mode(name, format!("#!/bin/sh\n{body}\n").as_bytes(), 0o755)
    }

    /// Copies the built plugin `plugin` (see [`plugin_path`]) into the lab dir as `name`
    /// (0644); returns the copy's path.
    pub fn copy_plugin(&self, plugin: &str, name: &str) -> Result<PathBuf> {
        let bytes = fs::read(plugin_path(plugin)?)?;
        self.write_file_mode(name, &bytes, 0o644)
    }

    /// Lets other users through the lab dir (mode 0711: they can reach what is in it by name,
    /// not list it), as scripts run as the default unprivileged script user need: they start
    /// in the config file's directory and run from there.
    pub fn let_others_through(&self) -> Result<()> {
        fs::set_permissions(self.dir(), fs::Permissions::from_mode(0o711))
            .with_context(|| format!("chmod 0711 {}", self.dir().display()))
    }

    /// Runs the upkeep binary outside any namespace as user `uid` (its group too, no
    /// supplementary groups, through `setpriv`), e.g. `status --state-dir D` as nobody.
    pub fn upkeep_cli_as(&self, uid: u32, args: &[&str]) -> Result<std::process::Output> {
        let bin = crate::lab::upkeep_bin()?;
        Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups")
            .arg(&bin)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("run upkeep through setpriv (util-linux)")
    }

    /// Adds a veth pair `name` / `peer` with both ends in host i's namespace, both up.
    pub fn add_veth(&self, i: usize, name: &str, peer: &str) -> Result<()> {
        let ns = self.host_ns(i);
        self.ip(
            &ns,
            &["link", "add", name, "type", "veth", "peer", "name", peer],
        )?;
        self.ip(&ns, &["link", "set", peer, "up"])?;
        self.ip(&ns, &["link", "set", name, "up"])?;
        Ok(())
    }

    /// Sets link `dev` of host i up or down.
    pub fn set_link(&self, i: usize, dev: &str, up: bool) -> Result<()> {
        let state = if up { "up" } else { "down" };
        self.ip(&self.host_ns(i), &["link", "set", dev, state])
            .map(drop)
    }

    /// A TCP socket listening on `port` (all addresses) inside host i's namespace; closed when
    /// dropped.
    pub fn listen_tcp(&self, i: usize, port: u16) -> Result<TcpListener> {
        in_netns(&self.host_ns(i), || {
            TcpListener::bind(("0.0.0.0", port)).with_context(|| format!("listen on {port}"))
        })
    }

    /// Starts `ip monitor address` in host i's namespace; see [`AddrMonitor`].
    pub fn start_addr_monitor(&self, i: usize) -> Result<AddrMonitor> {
        AddrMonitor::start(self, i)
    }
}

/// The address events (`ip -o monitor address`) of one host's namespace, collected from when
/// [`Lab::start_addr_monitor`] returns: it adds and removes a marker address on `lo` and waits
/// to see both, so the monitor is known to be listening. Stops when dropped.
pub struct AddrMonitor {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

/// Waits until an address monitor running in `ns` (`ip monitor address`, or a netlink
/// subscriber) is known to listen: adds `marker` (an address, put on `lo` as a /32) until
/// `seen(false)` says its addition was reported, removes it, then waits for `seen(true)` (its
/// removal reported). Until the monitor has subscribed, the marker may come and go unseen, so
/// the addition is repeated.
pub fn wait_monitor_listening(
    lab: &Lab,
    ns: &str,
    marker: &str,
    seen: impl Fn(bool) -> bool,
) -> Result<()> {
    let cidr = format!("{marker}/32");
    wait_until(
        format!("the address monitor in {ns} to report a marker address"),
        Duration::from_secs(5),
        || {
            let _ = lab.ip(ns, &["addr", "add", &cidr, "dev", "lo"]);
            let ok = wait_until("", Duration::from_millis(200), || seen(false)).is_ok();
            let _ = lab.ip(ns, &["addr", "del", &cidr, "dev", "lo"]);
            ok
        },
    )?;
    wait_until(
        format!("the address monitor in {ns} to report the marker's removal"),
        Duration::from_secs(2),
        || seen(true),
    )
    .map(drop)
}

/// The marker address the monitor's readiness check puts on `lo`.
const MARKER: &str = "203.0.113.254";

impl AddrMonitor {
    fn start(lab: &Lab, i: usize) -> Result<AddrMonitor> {
        let ns = lab.host_ns(i);
        let mut child = Command::new("ip")
            .args(["-n", &ns, "-o", "monitor", "address"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn ip monitor address")?;
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::Builder::new()
            .name(format!("addrmon-{ns}"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    sink.lock().expect("lines lock").push(line);
                }
            })?;
        let mon = AddrMonitor {
            child,
            lines,
            reader: Some(reader),
        };
        let seen = |deleted: bool| {
            mon.lines
                .lock()
                .expect("lines lock")
                .iter()
                .any(|l| l.contains(MARKER) && l.starts_with("Deleted") == deleted)
        };
        wait_monitor_listening(lab, &ns, MARKER, seen)?;
        Ok(mon)
    }

    /// The events seen so far, the readiness marker's left out.
    pub fn events(&self) -> Vec<String> {
        self.lines
            .lock()
            .expect("lines lock")
            .iter()
            .filter(|l| !l.contains(MARKER))
            .cloned()
            .collect()
    }

    /// The events that mention `addr` (e.g. "192.0.2.100/").
    pub fn events_about(&self, addr: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|l| l.contains(addr))
            .collect()
    }

    /// Stops the monitor and returns every event it saw (the marker's left out).
    pub fn stop(mut self) -> Vec<String> {
        self.halt();
        self.events()
    }

    fn halt(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for AddrMonitor {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_section_encoding() {
        let out = with_custom_section(b"\0asm\x0d\0\x01\0", "x", &[1, 2, 3]);
        assert_eq!(&out[8..], &[0, 5, 1, b'x', 1, 2, 3]);
        let mut v = Vec::new();
        leb128(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
    }
}
