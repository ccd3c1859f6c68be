//! The lab: a bridge in its own namespace, N host namespaces and a client namespace hanging off
//! it, each with `eth0`. Everything is created inside namespaces named after this process and a
//! counter, and deleted (processes killed first) when the `Lab` is dropped, panicking or not.
// unsafe here: `geteuid` and signals to the processes the lab started.
#![allow(unsafe_code)]

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::capture::{Capture, Captured};
use crate::daemon::{read_from, tail, Daemon, Kind};
use crate::netns::{parse_ip, send_raw_ipv4, send_raw_ipv6};
use crate::packet::AdvertSpec;
use crate::pinger::Pinger;
use crate::wait::{wait_for, wait_until, Timeline};

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static STALE_CLEANUP: Once = Once::new();

/// The client's IPv4 address.
pub const CLIENT_IP: &str = "192.0.2.200";
/// The client's IPv6 address.
pub const CLIENT_IP6: &str = "2001:db8::c8";

/// Lab options; see [`Lab::builder`].
#[derive(Clone, Debug)]
pub struct LabBuilder {
    hosts: usize,
    ipv6: bool,
}

impl LabBuilder {
    pub fn hosts(mut self, n: usize) -> Self {
        self.hosts = n;
        self
    }

    /// Give every node IPv6 addresses (default on): host i gets `fe80::i` and `2001:db8::i`
    /// (hex), the client `fe80::c8` and `2001:db8::c8`, all without DAD so they are usable at
    /// once.
    pub fn ipv6(mut self, on: bool) -> Self {
        self.ipv6 = on;
        self
    }

    pub fn build(self) -> Result<Lab> {
        Lab::create(self)
    }
}

struct Started {
    label: String,
    log: PathBuf,
    offset: u64,
    state_dir: Option<PathBuf>,
}

/// A running lab. See the module documentation.
pub struct Lab {
    id: String,
    hosts: usize,
    ipv6: bool,
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
    /// Every namespace we created (or tried to), the switch first.
    namespaces: Vec<String>,
    started: Instant,
    daemons: Mutex<Vec<Started>>,
    files: AtomicUsize,
}

impl Lab {
    /// A lab with `hosts` hosts (h1..hN, 192.0.2.i/24), a client (192.0.2.200/24) and IPv6.
    pub fn new(hosts: usize) -> Result<Lab> {
        Self::builder().hosts(hosts).build()
    }

    pub fn builder() -> LabBuilder {
        LabBuilder {
            hosts: 2,
            ipv6: true,
        }
    }

    fn create(opts: LabBuilder) -> Result<Lab> {
        if opts.hosts == 0 || opts.hosts > 199 {
            bail!("a lab has 1..=199 hosts, not {}", opts.hosts);
        }
        check_root()?;
        let pid = std::process::id();
        STALE_CLEANUP.call_once(|| remove_stale(&format!("uk{pid}x")));
        let id = format!("uk{pid}x{}", COUNTER.fetch_add(1, Ordering::SeqCst));
        let dir = tempfile::Builder::new()
            .prefix(&format!("{id}-"))
            .tempdir()
            .context("lab temp dir")?;
        let dir_path = dir.path().to_path_buf();
        let mut lab = Lab {
            id,
            hosts: opts.hosts,
            ipv6: opts.ipv6,
            dir: Some(dir),
            dir_path,
            namespaces: Vec::new(),
            started: Instant::now(),
            daemons: Mutex::new(Vec::new()),
            files: AtomicUsize::new(0),
        };
        lab.setup()
            .with_context(|| format!("setting up lab {}", lab.id))?;
        Ok(lab)
    }

    fn setup(&mut self) -> Result<()> {
        let sw = self.switch_ns();
        let mut nodes: Vec<(String, String, u8)> = (1..=self.hosts)
            .map(|i| (format!("h{i}"), self.host_ns(i), i as u8))
            .collect();
        nodes.push(("cl".into(), self.client_ns(), 200));
        // Record the names before creating them, so a failure half-way is cleaned up too.
        self.namespaces.push(sw.clone());
        self.namespaces.extend(nodes.iter().map(|n| n.1.clone()));
        let adds: Vec<String> = self
            .namespaces
            .iter()
            .map(|ns| format!("netns add {ns}"))
            .collect();
        ip_batch(None, &adds)?;
        let mut swcmds = vec![
            "link add br0 type bridge mcast_snooping 0".to_string(),
            "link set br0 up".into(),
        ];
        for (port, ns, _) in &nodes {
            swcmds.push(format!(
                "link add {port} type veth peer name eth0 netns {ns}"
            ));
            swcmds.push(format!("link set {port} master br0"));
            swcmds.push(format!("link set {port} up"));
        }
        ip_batch(Some(&sw), &swcmds)?;
        for (_, ns, n) in &nodes {
            let mut cmds = vec![
                "link set lo up".to_string(),
                format!("addr add 192.0.2.{n}/24 dev eth0"),
            ];
            if self.ipv6 {
                cmds.push("link set eth0 addrgenmode none".into());
                cmds.extend(ipv6_addr_cmds(*n));
            }
            cmds.push("link set eth0 up".into());
            ip_batch(Some(ns), &cmds)?;
        }
        Ok(())
    }

    /// Another network beside eth0, for several-interface tests: bridge `br{j}` in the switch
    /// and `eth{j}` in every host (not the client), host i at 203.0.113.(64(j-1)+i)/26.
    /// `j` is 1..=3. Gone with the lab's namespaces.
    pub fn add_network(&self, j: usize) -> Result<()> {
        if !(1..=3).contains(&j) {
            bail!("networks 1..=3 can be added, not {j}");
        }
        let sw = self.switch_ns();
        let mut swcmds = vec![
            format!("link add br{j} type bridge mcast_snooping 0"),
            format!("link set br{j} up"),
        ];
        for i in 1..=self.hosts {
            let port = format!("h{i}n{j}");
            swcmds.push(format!(
                "link add {port} type veth peer name eth{j} netns {}",
                self.host_ns(i)
            ));
            swcmds.push(format!("link set {port} master br{j}"));
            swcmds.push(format!("link set {port} up"));
        }
        ip_batch(Some(&sw), &swcmds)?;
        for i in 1..=self.hosts {
            ip_batch(
                Some(&self.host_ns(i)),
                &[
                    format!("addr add 203.0.113.{}/26 dev eth{j}", 64 * (j - 1) + i),
                    format!("link set eth{j} up"),
                ],
            )?;
        }
        Ok(())
    }

    /// This lab's name prefix (`uk<pid>x<n>`); namespaces are `<id>sw`, `<id>h1`.., `<id>cl`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The lab's temp dir (configs, logs, state dirs).
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }

    pub fn hosts(&self) -> usize {
        self.hosts
    }

    pub fn host_ns(&self, i: usize) -> String {
        assert!(
            (1..=self.hosts).contains(&i),
            "no host h{i} in a lab of {} hosts",
            self.hosts
        );
        format!("{}h{i}", self.id)
    }

    pub fn client_ns(&self) -> String {
        format!("{}cl", self.id)
    }

    pub fn switch_ns(&self) -> String {
        format!("{}sw", self.id)
    }

    /// All namespaces of this lab.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Host i's IPv4 address, `192.0.2.i`.
    pub fn host_ip(&self, i: usize) -> String {
        format!("192.0.2.{i}")
    }

    /// Host i's global IPv6 address, `2001:db8::i` (hex).
    pub fn host_ip6(&self, i: usize) -> String {
        format!("2001:db8::{i:x}")
    }

    /// Host i's link-local IPv6 address, `fe80::i` (hex).
    pub fn host_ll6(&self, i: usize) -> String {
        format!("fe80::{i:x}")
    }

    /// Runs `args` inside namespace `ns` (`ip netns exec NS ARGS...`).
    pub fn exec(&self, ns: &str, args: &[&str]) -> Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("ip netns exec {ns} {}", args.join(" ")))
    }

    /// Runs `ip -n NS ARGS...`; errors (with its stderr) unless it succeeds; returns stdout.
    pub fn ip(&self, ns: &str, args: &[&str]) -> Result<String> {
        let out = Command::new("ip")
            .args(["-n", ns])
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "ip -n {ns} {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The addresses on `eth0` in namespace `ns`, with prefix lengths.
    pub fn addrs_in(&self, ns: &str) -> Vec<(IpAddr, u8)> {
        let Ok(out) = self.ip(ns, &["-o", "addr", "show", "dev", "eth0"]) else {
            return Vec::new();
        };
        let mut v = Vec::new();
        for line in out.lines() {
            let mut words = line.split_whitespace();
            while let Some(w) = words.next() {
                if w == "inet" || w == "inet6" {
                    if let Some((a, p)) = words.next().and_then(|c| c.split_once('/')) {
                        if let (Ok(a), Ok(p)) = (a.parse(), p.parse()) {
                            v.push((a, p));
                        }
                    }
                }
            }
        }
        v
    }

    /// The addresses on host i's `eth0`.
    pub fn addrs(&self, i: usize) -> Vec<(IpAddr, u8)> {
        self.addrs_in(&self.host_ns(i))
    }

    /// Whether host i has `addr` (without prefix, e.g. "192.0.2.100") on `eth0`.
    pub fn has_addr(&self, i: usize, addr: &str) -> bool {
        let want = parse_ip(addr.split('/').next().unwrap_or(addr)).expect("valid address");
        self.addrs(i).iter().any(|(a, _)| *a == want)
    }

    /// The hosts that have `vip` on `eth0`, in order.
    pub fn holders(&self, vip: &str) -> Vec<usize> {
        (1..=self.hosts)
            .filter(|&i| self.has_addr(i, vip))
            .collect()
    }

    /// Waits until exactly `expected` hold `vip`; returns how long that took.
    pub fn wait_holders(
        &self,
        vip: &str,
        expected: &[usize],
        timeout: Duration,
    ) -> Result<Duration> {
        let start = Instant::now();
        wait_for(
            format!("holders of {vip} to be {expected:?}"),
            timeout,
            || self.holders(vip),
            |h| h == expected,
        )?;
        Ok(start.elapsed())
    }

    /// Samples the holders of `vip` every `every` for `duration`.
    pub fn sample_holders(
        &self,
        vip: &str,
        duration: Duration,
        every: Duration,
    ) -> Vec<(Duration, Vec<usize>)> {
        let start = Instant::now();
        let mut out = Vec::new();
        while start.elapsed() < duration {
            out.push((start.elapsed(), self.holders(vip)));
            std::thread::sleep(every);
        }
        out
    }

    /// Checks, sampling every 100 ms for `duration`, that the holders of `vip` are always exactly
    /// `expected`. The error shows the timeline of what was seen.
    pub fn expect_holders_stable(
        &self,
        vip: &str,
        expected: &[usize],
        duration: Duration,
    ) -> Result<usize> {
        let samples = self.sample_holders(vip, duration, Duration::from_millis(100));
        let bad = samples.iter().filter(|(_, h)| h != expected).count();
        if bad > 0 {
            let mut t = Timeline::default();
            for (at, h) in &samples {
                t.push(*at, h.clone());
            }
            bail!(
                "holders of {vip} were not always {expected:?} ({bad} of {} samples):\n{t}",
                samples.len()
            );
        }
        Ok(samples.len())
    }

    /// `ip route show` in host i's namespace.
    pub fn routes(&self, i: usize) -> String {
        self.ip(&self.host_ns(i), &["route", "show"])
            .unwrap_or_default()
    }

    /// Whether host i has a route to `dest` (as `ip route` prints it, e.g. "198.51.100.0/24").
    pub fn has_route(&self, i: usize, dest: &str) -> bool {
        self.routes(i)
            .lines()
            .any(|l| l.split_whitespace().next() == Some(dest))
    }

    /// The processes in host i's namespace (daemons, their VIP guards, scripts), by pid.
    pub fn host_pids(&self, i: usize) -> Vec<i32> {
        netns_pids(&self.host_ns(i)).unwrap_or_default()
    }

    /// SIGKILLs every process in host i's namespace, as `systemctl kill -s KILL` kills a
    /// unit's whole cgroup: the daemon and its VIP guard alike, so nothing cleans up.
    pub fn kill_host_processes(&self, i: usize) {
        kill_all_in(&self.host_ns(i));
    }

    /// Takes host i's `eth0` down.
    pub fn link_down(&self, i: usize) -> Result<()> {
        self.ip(&self.host_ns(i), &["link", "set", "eth0", "down"])
            .map(drop)
    }

    /// Brings host i's `eth0` back up (restoring its IPv6 addresses, which the kernel drops on
    /// link down).
    pub fn link_up(&self, i: usize) -> Result<()> {
        let ns = self.host_ns(i);
        self.ip(&ns, &["link", "set", "eth0", "up"])?;
        if self.ipv6 {
            let cmds: Vec<String> = ipv6_addr_cmds(i as u8)
                .into_iter()
                .map(|c| c.replacen("addr add", "addr replace", 1))
                .collect();
            ip_batch(Some(&ns), &cmds)?;
        }
        Ok(())
    }

    /// One ping (1 s timeout) from namespace `ns` to `addr`; true if answered.
    pub fn ping_once(&self, ns: &str, addr: &str) -> bool {
        let fam = if addr.contains(':') { "-6" } else { "-4" };
        self.exec(ns, &["ping", fam, "-n", "-q", "-c", "1", "-W", "1", addr])
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// One ping from the client namespace.
    pub fn client_ping(&self, addr: &str) -> bool {
        self.ping_once(&self.client_ns(), addr)
    }

    /// Waits until the client gets an answer to a ping of `addr`.
    pub fn wait_client_ping(&self, addr: &str, timeout: Duration) -> Result<Duration> {
        wait_until(
            format!("client ping of {addr} to be answered"),
            timeout,
            || self.client_ping(addr),
        )
    }

    /// The MAC address of host i's `eth0`.
    pub fn host_mac(&self, i: usize) -> String {
        let out = self
            .ip(&self.host_ns(i), &["-br", "link", "show", "dev", "eth0"])
            .unwrap_or_default();
        out.split_whitespace().nth(2).unwrap_or("").to_string()
    }

    /// The host whose MAC the client's neighbour (ARP/ND) entry for `addr` points at, with the
    /// entry's state (e.g. `(Some(2), "REACHABLE")`); `(None, state)` if it points elsewhere or
    /// there is no entry.
    pub fn client_neighbour(&self, addr: &str) -> (Option<usize>, String) {
        let out = self
            .ip(&self.client_ns(), &["neigh", "show", addr, "dev", "eth0"])
            .unwrap_or_default();
        let words: Vec<&str> = out.split_whitespace().collect();
        let mac = words
            .iter()
            .position(|w| *w == "lladdr")
            .and_then(|k| words.get(k + 1));
        let state = words
            .last()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "none".into());
        let host = mac.and_then(|m| (1..=self.hosts).find(|&i| self.host_mac(i) == *m));
        (host, state)
    }

    /// Starts pinging `addr` from the client every `interval` (e.g. 10 ms); stop it to get
    /// the [`PingReport`] (lost probes, longest gap).
    pub fn start_pinger(&self, addr: &str, interval: Duration) -> Result<Pinger> {
        Pinger::start(&self.client_ns(), parse_ip(addr)?, interval)
    }

    /// Writes `text` to `name` in the lab's temp dir; returns the path.
    pub fn write_file(&self, name: &str, text: &str) -> Result<PathBuf> {
        let p = self.dir_path.join(name);
        fs::write(&p, text).with_context(|| format!("write {}", p.display()))?;
        Ok(p)
    }

    /// Starts upkeep on host i with `kdl` as its config (written to `h{i}.kdl`):
    /// `ip netns exec NS $UPKEEP_BIN run --config h{i}.kdl --state-dir h{i}.state`, output
    /// appended to `h{i}.log`. Restarting a host reuses its state dir (the old status file is
    /// removed first).
    pub fn start_upkeep(&self, i: usize, kdl: &str) -> Result<Daemon> {
        let bin = upkeep_bin()?;
        let config = self.write_file(&format!("h{i}.kdl"), kdl)?;
        let state = self.state_dir(i);
        fs::create_dir_all(&state)?;
        let _ = fs::remove_file(state.join("status.json"));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.host_ns(i)])
            .arg(&bin)
            .arg("run")
            .arg("--config")
            .arg(&config);
        cmd.arg("--state-dir").arg(&state);
        if std::env::var_os("UPKEEP_LOG").is_none() {
            cmd.env("UPKEEP_LOG", "debug");
        }
        self.spawn(Kind::Upkeep, i, cmd, config, Some(state))
    }

    /// Starts keepalived (VRRP only, foreground, logging to the console) on host i with `conf`
    /// as its config (written to `h{i}.conf`), pid files in the lab dir.
    /// Starts upkeep on host i with a config of this one instance.
    pub fn start_instance(&self, i: usize, inst: &crate::Instance) -> Result<Daemon> {
        self.start_upkeep(
            i,
            &crate::upkeep_config(&format!("h{i}"), std::slice::from_ref(inst)),
        )
    }

    pub fn start_keepalived(&self, i: usize, conf: &str) -> Result<Daemon> {
        let config = self.write_file(&format!("h{i}.conf"), conf)?;
        let pid = self.dir_path.join(format!("h{i}.pid"));
        let vrrp_pid = self.dir_path.join(format!("h{i}-vrrp.pid"));
        let _ = fs::remove_file(&pid);
        let _ = fs::remove_file(&vrrp_pid);
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.host_ns(i),
            "keepalived",
            "-n",
            "-l",
            "-D",
            "-G",
            "--vrrp",
            "-f",
        ]);
        cmd.arg(&config)
            .arg("-p")
            .arg(&pid)
            .arg("-r")
            .arg(&vrrp_pid);
        self.spawn(Kind::Keepalived, i, cmd, config, None)
    }

    fn spawn(
        &self,
        kind: Kind,
        i: usize,
        mut cmd: Command,
        config: PathBuf,
        state_dir: Option<PathBuf>,
    ) -> Result<Daemon> {
        use std::os::unix::process::CommandExt;
        let log_path = self.dir_path.join(format!("h{i}.log"));
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let offset = log.metadata()?.len();
        writeln!(
            log,
            "=== harness: starting {kind} on h{i} at +{:.3}s: {cmd:?}",
            self.started.elapsed().as_secs_f64()
        )?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        let child = cmd.spawn().with_context(|| format!("spawn {cmd:?}"))?;
        let pid = child.id();
        self.daemons.lock().expect("daemons lock").push(Started {
            label: format!("{kind} on h{i} (pid {pid})"),
            log: log_path.clone(),
            offset,
            state_dir: state_dir.clone(),
        });
        Ok(Daemon {
            kind,
            host: i,
            ns: self.host_ns(i),
            pid,
            child: Mutex::new(child),
            config,
            log: log_path,
            log_offset: offset,
            state_dir,
        })
    }

    /// Host i's upkeep state dir (status file, control socket), as `start_upkeep` gives it.
    pub fn state_dir(&self, i: usize) -> PathBuf {
        self.dir_path.join(format!("h{i}.state"))
    }

    /// `upkeep status --json` for host i's daemon, through its control socket.
    pub fn upkeep_status(&self, i: usize) -> Result<serde_json::Value> {
        let dir = self.state_dir(i);
        let out = self.upkeep_cli(&["status", "--json", "--state-dir", &dir.to_string_lossy()])?;
        anyhow::ensure!(
            out.status.success(),
            "upkeep status on h{i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// Runs the upkeep binary outside any namespace (e.g. `check --config F`,
    /// `import-keepalived F`) and returns its output.
    pub fn upkeep_cli(&self, args: &[&str]) -> Result<Output> {
        let bin = upkeep_bin()?;
        Command::new(&bin)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {}", bin.display()))
    }

    /// Writes `kdl` to a fresh file and runs `upkeep check --config FILE` on it.
    pub fn upkeep_check(&self, kdl: &str) -> Result<(PathBuf, Output)> {
        let n = self.files.fetch_add(1, Ordering::SeqCst);
        let path = self.write_file(&format!("check{n}.kdl"), kdl)?;
        let out = self.upkeep_cli(&["check", "--config", &path.to_string_lossy()])?;
        Ok((path, out))
    }

    /// Starts capturing the VRRP packets in and out of host i's `eth0`.
    pub fn start_capture(&self, i: usize) -> Result<Capture> {
        Capture::start(&self.host_ns(i), "eth0")
    }

    /// Captures host i's VRRP traffic for `duration`.
    pub fn capture_vrrp(&self, i: usize, duration: Duration) -> Result<Vec<Captured>> {
        let c = self.start_capture(i)?;
        std::thread::sleep(duration);
        c.stop()
    }

    /// Sends a raw IPv4 packet (header included) from host i out of its `eth0`.
    pub fn inject_raw(&self, i: usize, packet: &[u8]) -> Result<()> {
        send_raw_ipv4(&self.host_ns(i), "eth0", packet)
    }

    /// Builds `spec` and sends it from host i out of `eth0`. Without an explicit source the
    /// packet comes from host i's own address (`192.0.2.i`, or `fe80::i` for IPv6).
    pub fn inject(&self, i: usize, spec: &AdvertSpec) -> Result<()> {
        let mut spec = spec.clone();
        match spec.dst {
            IpAddr::V4(_) => {
                spec.src.get_or_insert(parse_ip(&self.host_ip(i))?);
                self.inject_raw(i, &spec.ipv4_packet())
            }
            IpAddr::V6(dst) => {
                let src = *spec.src.get_or_insert(parse_ip(&self.host_ll6(i))?);
                let IpAddr::V6(src) = src else {
                    bail!("IPv4 source {src} for an IPv6 destination")
                };
                send_raw_ipv6(
                    &self.host_ns(i),
                    "eth0",
                    src,
                    dst,
                    spec.ttl,
                    &spec.vrrp_bytes(),
                )
            }
        }
    }

    /// Diagnostics: every host's addresses and routes, and each daemon's log tail and status.
    pub fn diagnostics(&self) -> String {
        let mut s = format!("=== lab {} (dir {})\n", self.id, self.dir_path.display());
        for i in 1..=self.hosts {
            let addrs: Vec<String> = self
                .addrs(i)
                .iter()
                .map(|(a, p)| format!("{a}/{p}"))
                .collect();
            let _ = writeln!(
                s,
                "h{i}: addrs {addrs:?}; routes: {:?}",
                self.routes(i).trim()
            );
        }
        for ns in self.namespaces.iter().skip(1) {
            let link = self
                .ip(ns, &["-br", "link", "show", "dev", "eth0"])
                .unwrap_or_default();
            let neigh = self
                .ip(ns, &["neigh", "show", "dev", "eth0"])
                .unwrap_or_default();
            let _ = writeln!(s, "{ns}: {}; neighbours: {:?}", link.trim(), neigh.trim());
        }
        for d in self
            .daemons
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                s,
                "--- {} log tail:\n{}",
                d.label,
                tail(&read_from(&d.log, d.offset), 60)
            );
            if let Some(st) = &d.state_dir {
                let status =
                    fs::read_to_string(st.join("status.json")).unwrap_or_else(|e| format!("({e})"));
                let _ = writeln!(s, "--- {} status.json: {}", d.label, status.trim());
            }
        }
        s
    }

    fn teardown(&mut self) {
        for ns in &self.namespaces {
            kill_all_in(ns);
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        self.namespaces.clear();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
        self.teardown();
        if std::env::var_os("UPKEEP_TEST_KEEP").is_some() {
            if let Some(d) = self.dir.take() {
                eprintln!("lab {}: keeping {}", self.id, d.keep().display());
            }
        }
    }
}

/// Runs a test body in a fresh lab of `hosts` hosts. On error, prints the lab's diagnostics
/// (daemon log tails, status files, addresses) and panics with the error chain; the lab is
/// torn down either way.
pub fn lab_test(hosts: usize, body: impl FnOnce(&Lab) -> Result<()>) {
    let lab = match Lab::new(hosts) {
        Ok(l) => l,
        Err(e) => panic!("lab setup failed: {e:?}"),
    };
    if let Err(e) = body(&lab) {
        // Lab's Drop prints the diagnostics while unwinding.
        panic!("{e:?}");
    }
}

/// The upkeep binary: `$UPKEEP_BIN`, else `<workspace>/target/debug/upkeep`.
pub fn upkeep_bin() -> Result<PathBuf> {
    let p = match std::env::var_os("UPKEEP_BIN") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/upkeep"),
    };
    if !p.is_file() {
        bail!(
            "upkeep binary not found at {} : run `cargo build -p upkeep` first (or point UPKEEP_BIN at it)",
            p.display()
        );
    }
    Ok(p.canonicalize().unwrap_or(p))
}

/// Whether keepalived is installed (interop tests need it).
pub fn keepalived_available() -> bool {
    Command::new("keepalived")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn check_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the namespace lab needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): run the tests as root");
    }
    Ok(())
}

fn ipv6_addr_cmds(n: u8) -> Vec<String> {
    vec![
        format!("addr add fe80::{n:x}/64 dev eth0 nodad"),
        format!("addr add 2001:db8::{n:x}/64 dev eth0 nodad"),
    ]
}

/// Runs `ip [-n NS] -batch -` with `cmds` on stdin; stops at (and reports) the first error.
fn ip_batch(ns: Option<&str>, cmds: &[String]) -> Result<()> {
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawn ip -batch")?;
    let mut input = cmds.join("\n");
    input.push('\n');
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "ip {}-batch failed: {}\ncommands:\n{}",
            ns.map(|n| format!("-n {n} ")).unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim(),
            input
        );
    }
    Ok(())
}

fn netns_pids(ns: &str) -> Option<Vec<i32>> {
    let out = Command::new("ip")
        .args(["netns", "pids", ns])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
    )
}

/// SIGKILLs every process in `ns` until none is left (2 s at most).
fn kill_all_in(ns: &str) {
    for _ in 0..100 {
        match netns_pids(ns) {
            Some(pids) if !pids.is_empty() => {
                for p in pids {
                    // SAFETY: plain kill(2).
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => return,
        }
    }
}

/// Deletes namespaces left by an earlier process that had our pid (a crashed run).
fn remove_stale(prefix: &str) {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if name.starts_with(prefix) {
            kill_all_in(name);
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// All namespace names currently listed by `ip netns list`.
pub fn list_netns() -> Vec<String> {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}
