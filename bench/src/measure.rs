//! What the benchmark measures beyond the harness: the client's view as a trace relative to the
//! event, TCP-connect probes (a service outage, for the failed-check scenario), a port-80
//! service inside a host, and the CPU time and RSS of a daemon's process group.
// unsafe here: `poll`, `sysconf`, `geteuid`, `getpgrp` for the benchmark's probes and meters.
#![allow(unsafe_code)]

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use upkeep_tests::netns::in_netns;
use upkeep_tests::{Lab, PingReport, Probe};

/// The client's view of one run: every probe's send time relative to the event (seconds,
/// negative before it) and whether it was answered.
#[derive(Clone, Debug, Default)]
pub(crate) struct Trace {
    pub probes: Vec<(f64, bool)>,
}

impl Trace {
    /// `report`'s probes, whose send times count from `probe_start`, shifted so that `event`
    /// is at 0.
    pub(crate) fn new(report: &PingReport, probe_start: Instant, event: Instant) -> Trace {
        let offset = event.duration_since(probe_start).as_secs_f64();
        Trace {
            probes: report
                .probes
                .iter()
                .map(|p| (p.sent.as_secs_f64() - offset, p.rtt.is_some()))
                .collect(),
        }
    }

    /// For each probe, how long the client had then been without an answer (seconds): 0 for
    /// an answered probe, rising through a run of unanswered ones. Its peak is the outage.
    pub(crate) fn silence(&self) -> Vec<(f64, f64)> {
        let mut last_ok: Option<f64> = None;
        self.probes
            .iter()
            .map(|&(t, ok)| {
                if ok {
                    last_ok = Some(t);
                    (t, 0.0)
                } else {
                    (t, last_ok.map_or(0.0, |l| t - l))
                }
            })
            .collect()
    }
}

/// The longest outage the client saw from `event` on: over the report's gaps (last answered
/// probe to next answered one) that end after the event, each counted from the event at the
/// earliest. Zero if nothing was lost after it.
pub(crate) fn outage_after(report: &PingReport, probe_start: Instant, event: Instant) -> Duration {
    let t0 = event.duration_since(probe_start);
    report
        .gaps()
        .into_iter()
        .filter(|&(_, end)| end >= t0)
        .map(|(start, end)| end - start.max(t0))
        .max()
        .unwrap_or_default()
}

/// Unanswered probes sent at or after `event`.
pub(crate) fn lost_after(report: &PingReport, probe_start: Instant, event: Instant) -> usize {
    let t0 = event.duration_since(probe_start);
    report
        .probes
        .iter()
        .filter(|p| p.sent >= t0 && p.rtt.is_none())
        .count()
}

/// A TCP connect to `addr` from the client's namespace every `interval`: a probe is answered
/// when the connection is established within `interval` (a refused or timed-out connect is a
/// lost probe). The service-level counterpart of the harness's ICMP [`upkeep_tests::Pinger`].
pub(crate) struct TcpProber {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<PingReport>>>,
    start: Instant,
}

impl TcpProber {
    pub(crate) fn start(lab: &Lab, addr: SocketAddr, interval: Duration) -> Result<TcpProber> {
        let ns = lab.client_ns();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let start = Instant::now();
        let thread = std::thread::Builder::new()
            .name("tcp-prober".into())
            .spawn(move || in_netns(&ns, || Ok(probe_loop(addr, interval, start, &flag))))?;
        Ok(TcpProber {
            stop,
            thread: Some(thread),
            start,
        })
    }

    /// The instant probe send times count from.
    pub(crate) fn start_instant(&self) -> Instant {
        self.start
    }

    pub(crate) fn stop(mut self) -> Result<PingReport> {
        self.halt()
    }

    fn halt(&mut self) -> Result<PingReport> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| anyhow!("tcp prober panicked"))?,
            None => Ok(PingReport::default()),
        }
    }
}

impl Drop for TcpProber {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

fn probe_loop(
    addr: SocketAddr,
    interval: Duration,
    start: Instant,
    stop: &AtomicBool,
) -> PingReport {
    let mut probes = Vec::new();
    let mut next = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
            continue;
        }
        let sent = Instant::now();
        let rtt = TcpStream::connect_timeout(&addr, interval)
            .ok()
            .map(|_| sent.elapsed());
        probes.push(Probe {
            sent: sent - start,
            rtt,
        });
        next += interval;
        if next < Instant::now() {
            next = Instant::now();
        }
    }
    PingReport { probes }
}

/// A TCP service on `port` in a lab host: the harness's listener, with a thread accepting (and
/// closing) connections so the backlog never fills. [`Service::kill`] closes it, as a crashed
/// web server would.
pub(crate) struct Service {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Service {
    pub(crate) fn start(lab: &Lab, host: usize, port: u16) -> Result<Service> {
        let listener = lab.listen_tcp(host, port)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("service-h{host}"))
            .spawn(move || {
                let mut pfd = libc::pollfd {
                    fd: listener.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                while !flag.load(Ordering::SeqCst) {
                    // SAFETY: one valid pollfd.
                    let n = unsafe { libc::poll(&mut pfd, 1, 20) };
                    if n > 0 {
                        while let Ok((conn, _)) = listener.accept() {
                            drop(conn);
                        }
                    }
                }
            })?;
        Ok(Service {
            stop,
            thread: Some(thread),
        })
    }

    /// Closes the listening socket (and returns once it is closed).
    pub(crate) fn kill(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.halt();
    }
}

/// CPU time (user + system, including reaped children such as check scripts) and resident
/// memory of every process in a process group.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Usage {
    pub cpu: Duration,
    pub rss_kib: u64,
    pub processes: usize,
}

/// The [`Usage`] of process group `pgid` (a harness daemon runs in a group of its own whose id
/// is its pid).
pub(crate) fn group_usage(pgid: u32) -> Result<Usage> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let mut ticks = 0u64;
    let mut usage = Usage::default();
    for entry in fs::read_dir("/proc").context("read /proc")? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name (which may hold spaces and parentheses).
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() < 15 || f[2].parse::<u32>().ok() != Some(pgid) {
            continue;
        }
        // utime, stime, cutime, cstime: fields 14..=17 of proc(5), 11..=14 here.
        ticks += f[11..=14]
            .iter()
            .filter_map(|v| v.parse::<u64>().ok())
            .sum::<u64>();
        usage.processes += 1;
        if let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) {
            usage.rss_kib += status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    if usage.processes == 0 {
        anyhow::bail!("no process in group {pgid}");
    }
    usage.cpu = Duration::from_nanos(ticks * 1_000_000_000 / hz);
    Ok(usage)
}

/// Where cgroup v1 keeps its `cpuacct` hierarchy.
const CPUACCT: &str = "/sys/fs/cgroup/cpuacct";

static METERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A daemon's CPU time and memory. Its process group is moved into a cgroup v1 `cpuacct` group
/// of its own, whose `cpuacct.usage` counts every nanosecond its processes, their threads and
/// whatever they start later (check scripts) run, exited or not. /proc's per-process times
/// are sampled at the scheduler tick instead, which misses most of a daemon that wakes for
/// microseconds at a time; they are the fallback when cpuacct is not there.
pub(crate) struct CpuMeter {
    pgid: u32,
    cgroup: Option<PathBuf>,
}

impl CpuMeter {
    pub(crate) fn attach(pgid: u32) -> Result<CpuMeter> {
        let mut meter = CpuMeter { pgid, cgroup: None };
        if !cpuacct_available() {
            return Ok(meter);
        }
        let dir = Path::new(CPUACCT).join(format!(
            "upkeep-bench-{}-{}",
            std::process::id(),
            METERS.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir(&dir).with_context(|| format!("create {}", dir.display()))?;
        meter.cgroup = Some(dir.clone());
        // A process may fork while we move its group (the child stays where it was forked):
        // repeat until the whole group is inside.
        let mut missing = Vec::new();
        for _ in 0..20 {
            let inside = fs::read_to_string(dir.join("cgroup.procs"))?;
            let inside: Vec<u32> = inside.lines().filter_map(|l| l.parse().ok()).collect();
            missing = group_pids(pgid)?
                .into_iter()
                .filter(|p| !inside.contains(p))
                .collect();
            if missing.is_empty() {
                return Ok(meter);
            }
            for pid in &missing {
                // It may exit meanwhile.
                let _ = fs::write(dir.join("cgroup.procs"), pid.to_string());
            }
        }
        anyhow::bail!("could not move {missing:?} into {}", dir.display())
    }

    /// CPU time so far (from the cgroup: since [`CpuMeter::attach`]) and current RSS.
    pub(crate) fn sample(&self) -> Result<Usage> {
        let mut u = group_usage(self.pgid)?;
        if let Some(dir) = &self.cgroup {
            let ns: u64 = fs::read_to_string(dir.join("cpuacct.usage"))?
                .trim()
                .parse()
                .context("cpuacct.usage")?;
            u.cpu = Duration::from_nanos(ns);
        }
        Ok(u)
    }
}

impl Drop for CpuMeter {
    fn drop(&mut self) {
        let Some(dir) = self.cgroup.take() else {
            return;
        };
        if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in procs.lines() {
                let _ = fs::write(Path::new(CPUACCT).join("cgroup.procs"), pid);
            }
        }
        let _ = fs::remove_dir(&dir);
    }
}

/// Whether CPU time is measured through cgroup v1 `cpuacct` (else /proc ticks).
pub(crate) fn cpuacct_available() -> bool {
    Path::new(CPUACCT).join("cpuacct.usage").is_file()
}

/// Removes the (empty) cgroups an interrupted earlier run left behind.
pub(crate) fn remove_stale_cgroups() {
    if let Ok(rd) = fs::read_dir(CPUACCT) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("upkeep-bench-") {
                let _ = fs::remove_dir(e.path());
            }
        }
    }
}

/// The processes of group `pgid`.
fn group_pids(pgid: u32) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").context("read /proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let pgrp = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2)?.parse::<u32>().ok());
        if pgrp == Some(pgid) {
            out.push(pid);
        }
    }
    Ok(out)
}

/// CPU use as a percentage of one core between two samples taken `window` apart.
pub(crate) fn cpu_pct(before: Usage, after: Usage, window: Duration) -> f64 {
    100.0 * after.cpu.saturating_sub(before.cpu).as_secs_f64() / window.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(pattern: &str) -> PingReport {
        PingReport::from_pattern(pattern, Duration::from_millis(10))
    }

    #[test]
    fn outage_counts_from_the_event() {
        let start = Instant::now();
        let r = report(".x...xxxx...");
        // Event at 30 ms: the early single loss is before it; the gap 40..90 ms counts.
        let at = |ms| start + Duration::from_millis(ms);
        assert_eq!(outage_after(&r, start, at(30)), Duration::from_millis(50));
        // Event in the middle of the gap: counted from the event.
        assert_eq!(outage_after(&r, start, at(60)), Duration::from_millis(30));
        assert_eq!(lost_after(&r, start, at(60)), 3);
        assert_eq!(outage_after(&report("...."), start, at(0)), Duration::ZERO);
    }

    #[test]
    fn silence_rises_through_a_gap() {
        let start = Instant::now();
        let t = Trace::new(&report("..xx."), start, start + Duration::from_millis(10));
        let s: Vec<i64> = t
            .silence()
            .iter()
            .map(|(_, v)| (v * 1000.0).round() as i64)
            .collect();
        assert_eq!(s, [0, 0, 10, 20, 0]);
        assert!((t.probes[0].0 + 0.010).abs() < 1e-9);
    }

    #[test]
    fn meter_counts_a_child_exactly() {
        // SAFETY: geteuid(2) cannot fail and touches no memory.
        if unsafe { libc::geteuid() } != 0 || !cpuacct_available() {
            return;
        }
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "sleep 0.3; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 5",
            ])
            .process_group(0)
            .spawn()
            .unwrap();
        let meter = CpuMeter::attach(child.id()).unwrap();
        let a = meter.sample().unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let b = meter.sample().unwrap();
        let _ = child.kill();
        let _ = child.wait();
        drop(meter);
        let used = b.cpu - a.cpu;
        assert!(used > Duration::from_millis(5), "{used:?}");
    }

    #[test]
    fn own_group_usage() {
        // SAFETY: getpgrp has no preconditions.
        let pgid = unsafe { libc::getpgrp() } as u32;
        let u = group_usage(pgid).unwrap();
        assert!(u.processes >= 1 && u.rss_kib > 0, "{u:?}");
    }
}
