//! Faults a test (or the chaos soak) puts on the lab's network and hosts: a bridge port that
//! stops forwarding (a partition with every link up), nftables rules that drop VRRP, and busy
//! loops that starve the CPUs.

use std::io::Write;
use std::process::{Child, Command, Stdio};

use anyhow::{ensure, Context, Result};

use crate::Lab;

impl Lab {
    /// Sets host i's bridge port in the switch forwarding (STP state 3) or disabled (state 0:
    /// forwards nothing, but the link and its carrier stay up, so the host sees no fault).
    pub fn set_port_forwarding(&self, i: usize, forwarding: bool) -> Result<()> {
        let state = if forwarding { "3" } else { "0" };
        let port = format!("h{i}");
        let out = self.exec(
            &self.switch_ns(),
            &["bridge", "link", "set", "dev", &port, "state", state],
        )?;
        ensure!(
            out.status.success(),
            "bridge link set dev {port} state {state}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }

    /// Loads an nftables ruleset (`nft -f -`) in host i.
    pub fn nft_load(&self, i: usize, rules: &str) -> Result<()> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.host_ns(i), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawn nft (scripts/install-deps.sh installs nftables)")?;
        child
            .stdin
            .take()
            .context("nft stdin")?
            .write_all(rules.as_bytes())?;
        let out = child.wait_with_output()?;
        ensure!(
            out.status.success(),
            "nft in h{i}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }

    /// Drops the VRRP packets host i receives that match `matcher` (an nft expression; empty:
    /// all of them), counting dropped and accepted ones, in table `inet f`.
    pub fn nft_vrrp_drop(&self, i: usize, matcher: &str) -> Result<()> {
        let rules = format!(
            "table inet f {{\n  chain in {{\n    type filter hook input priority 0;\n    \
             meta l4proto 112 {matcher}counter drop\n    \
             meta l4proto 112 counter accept\n  }}\n}}\n"
        );
        self.nft_load(i, &rules)
    }

    /// Drops `percent`% of the VRRP packets host i receives, at random.
    pub fn nft_vrrp_loss(&self, i: usize, percent: u8) -> Result<()> {
        let matcher = if percent >= 100 {
            String::new()
        } else {
            format!("numgen random mod 100 < {percent} ")
        };
        self.nft_vrrp_drop(i, &matcher)
    }

    /// Removes the table the `nft_vrrp_*` rules live in.
    pub fn nft_clear(&self, i: usize) -> Result<()> {
        let out = self.exec(&self.host_ns(i), &["nft", "delete", "table", "inet", "f"])?;
        ensure!(
            out.status.success(),
            "nft delete table inet f in h{i}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }

    /// `n` busy loops in host i's namespace, each pinned to one CPU (round robin), at the
    /// default priority; they stop when the returned value is dropped.
    pub fn busy_loops(&self, i: usize, n: usize) -> Result<BusyLoops> {
        let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
        let mut loops = BusyLoops(Vec::new());
        for k in 0..n {
            let cpu = (k % cpus).to_string();
            let child = Command::new("ip")
                .args(["netns", "exec", &self.host_ns(i), "taskset", "-c", &cpu])
                .args(["sh", "-c", "while :; do :; done"])
                .stdin(Stdio::null())
                .spawn()
                .context("spawn a busy loop")?;
            loops.0.push(child);
        }
        Ok(loops)
    }
}

/// Busy processes from [`Lab::busy_loops`], killed when dropped.
pub struct BusyLoops(Vec<Child>);

impl Drop for BusyLoops {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
