//! The chaos soak: three upkeep hosts and a client in network namespaces, random faults one
//! after another for a while (SIGKILL and restart, SIGTERM, link down/up, partition and heal,
//! 20 % VRRP loss, CPU starvation, reloads that add, remove or change instances, a failing
//! check), drawn from a printed seed, while an invariant checker watches:
//!
//! - never two holders of a VIP for longer than one advert interval, except during a split
//!   (partition, loss) and then for at most one interval after it heals;
//! - never no holder for longer than the fault's bound: Master_Down_Interval, or one advert
//!   interval for a planned move (SIGTERM, failing check, reload);
//! - after each fault, the cluster settles with the VIP on the host that should have it;
//! - no daemon exits unless told to (sampled every 50 ms), every SIGTERM exits cleanly, and
//!   nothing is left behind: no process in a host's namespace but the daemon, no namespace.
//!
//! It prints the counts and the worst case per fault kind and exits non-zero on any violation;
//! `--seed` replays a run's sequence of faults.
//!
//!     cargo build --release -p upkeep
//!     sudo cargo run --release -p upkeep-bench --bin upkeep-soak -- --minutes 30 [--seed N]
// unsafe here: a SIGINT handler that only sets an atomic (and `_exit`s on the second).
#![allow(unsafe_code)]

mod faults;
mod holders;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use clap::Parser;
use fastrand::Rng;
use upkeep_tests::{list_netns, upkeep_bin, Lab};

use crate::faults::{Applied, Cluster, Kind, EXTRA, EXTRA_VIP, WEB, WEB_VIP};
use crate::holders::{periods, Holders};

/// Random faults on a three-host upkeep cluster while invariants are checked. Needs root.
#[derive(Parser, Debug)]
#[command(name = "upkeep-soak")]
struct Args {
    /// How long to inject faults.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// The seed of the fault sequence (default: drawn, and printed).
    #[arg(long)]
    seed: Option<u64>,
    /// The instances' advert interval, in milliseconds.
    #[arg(long, default_value_t = 200)]
    interval_ms: u64,
    /// Also write the report (Markdown) here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The upkeep binary (default: $UPKEEP_BIN, else target/release/upkeep).
    #[arg(long)]
    upkeep: Option<PathBuf>,
}

/// Timing slack on every bound: the checker's own wake-ups and `ip monitor`'s delivery.
const SLACK: Duration = Duration::from_millis(150);
/// How long the cluster may take to settle after a fault heals.
const SETTLE_MAX: Duration = Duration::from_secs(15);

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    if STOP.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// What the checker saw of one fault kind.
#[derive(Default)]
struct KindStats {
    count: usize,
    worst_unheld: Duration,
    worst_double: Duration,
    worst_settle: Duration,
    violations: usize,
}

fn main() {
    match real_main() {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("upkeep-soak: {e:#}");
            std::process::exit(2);
        }
    }
}

fn real_main() -> Result<bool> {
    let args = Args::parse();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("needs root (network namespaces)");
    }
    if let Some(p) = &args.upkeep {
        std::env::set_var("UPKEEP_BIN", p);
    } else if std::env::var_os("UPKEEP_BIN").is_none() {
        let release = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/upkeep");
        std::env::set_var("UPKEEP_BIN", release);
    }
    if std::env::var_os("UPKEEP_LOG").is_none() {
        std::env::set_var("UPKEEP_LOG", "info");
    }
    let bin = upkeep_bin()?;
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let interval = Duration::from_millis(args.interval_ms);
    let span = Duration::from_secs_f64(args.minutes * 60.0);
    println!(
        "upkeep-soak: seed {seed} (replay: --seed {seed}), {:.1} min, adverts every {interval:?}, {}",
        args.minutes,
        bin.display()
    );
    // SAFETY: installing a handler that only touches an atomic (and _exit).
    unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };

    let lab = Lab::builder().hosts(3).ipv6(false).build()?;
    lab.let_others_through()?;
    let lab_id = lab.id().to_string();
    let holders = Holders::watch(&lab, &[WEB_VIP, EXTRA_VIP])?;
    let mut cluster = Cluster::start(&lab, interval)?;
    let mut violations: Vec<String> = Vec::new();
    let mut stats: BTreeMap<Kind, KindStats> = BTreeMap::new();
    if let Err(e) = settle(&cluster, &holders, Instant::now()) {
        bail!("the cluster did not come up: {e:#}\n{}", lab.diagnostics());
    }

    let crashes = Arc::new(Mutex::new(Vec::<String>::new()));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (slots, crashes, sampling) = (cluster.slots.clone(), crashes.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::SeqCst) {
                let mut slots = slots.lock().unwrap_or_else(|e| e.into_inner());
                for (k, s) in slots.iter_mut().enumerate() {
                    let Some(d) = &s.daemon else { continue };
                    if s.expected_up {
                        if let Some(st) = d.exit_status() {
                            s.expected_up = false;
                            crashes
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(format!(
                                    "h{} exited unasked ({st}); log tail:\n{}",
                                    k + 1,
                                    d.log_tail(15)
                                ));
                        }
                    }
                }
                drop(slots);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let mut rng = Rng::with_seed(seed);
    let started = Instant::now();
    let mut n = 0usize;
    let mut lingering: HashMap<(usize, i32), usize> = HashMap::new();
    while started.elapsed() < span && !STOP.load(Ordering::SeqCst) {
        n += 1;
        let kind = Kind::ALL[rng.usize(0..Kind::ALL.len())];
        let extra_before = cluster.extra_configured();
        let applied = match cluster.apply(kind, &mut rng) {
            Ok(a) => a,
            Err(e) => {
                violations.push(format!("#{n} {}: {e:#}", kind.name()));
                stats.entry(kind).or_default().violations += 1;
                let _ = cluster.revive();
                continue;
            }
        };
        let settled = settle(&cluster, &holders, applied.heal);
        // A quiet while before the next fault (and time for a late second holder to show).
        std::thread::sleep(Duration::from_millis(500 + rng.u64(0..1500)));
        let end = Instant::now();
        let extra_steady = extra_before && cluster.extra_configured();
        let mut found = judge(&cluster, &holders, &applied, end, extra_steady);
        let st = stats.entry(kind).or_default();
        st.count += 1;
        st.worst_unheld = st.worst_unheld.max(found.worst_unheld);
        st.worst_double = st.worst_double.max(found.worst_double);
        match settled {
            Ok(t) => st.worst_settle = st.worst_settle.max(t),
            Err(e) => found.violations.push(format!("did not settle: {e:#}")),
        }
        for c in crashes.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            found.violations.push(format!("daemon crash: {c}"));
        }
        for leak in lingering_processes(&cluster, &mut lingering) {
            found.violations.push(format!("leaked process: {leak}"));
        }
        let line = format!(
            "#{n:<4} {:>6.1}s {:<18} h{} {:<22} unheld {:>4} ms, two holders {:>4} ms{}",
            started.elapsed().as_secs_f64(),
            kind.name(),
            applied.host,
            applied.detail,
            found.worst_unheld.as_millis(),
            found.worst_double.as_millis(),
            if found.violations.is_empty() {
                ""
            } else {
                "  VIOLATION"
            }
        );
        println!("{line}");
        st.violations += found.violations.len();
        for v in found.violations {
            println!("       {v}");
            violations.push(format!("#{n} {} on h{}: {v}", kind.name(), applied.host));
        }
        match cluster.revive() {
            Ok(r) if !r.is_empty() => println!("       restarted {r:?}"),
            Ok(_) => {}
            Err(e) => bail!("restarting a crashed daemon: {e:#}"),
        }
    }
    sampling.store(false, Ordering::SeqCst);
    let _ = sampler.join();

    // The way out: every daemon stops cleanly and leaves nothing behind.
    for bad in cluster.stop_all() {
        violations.push(format!("shutdown: {bad}"));
    }
    std::thread::sleep(Duration::from_millis(300));
    for h in 1..=lab.hosts() {
        for pid in namespace_pids(&lab.host_ns(h)) {
            if !is_monitor(pid) {
                violations.push(format!("after shutdown, h{h} still runs {}", describe(pid)));
            }
        }
    }
    for vip in [WEB, EXTRA] {
        if !holders.now(vip).is_empty() {
            violations.push(format!(
                "after shutdown, VIP #{vip} still on {:?}",
                holders.now(vip)
            ));
        }
    }
    drop(holders);
    drop(cluster);
    drop(lab);
    let left: Vec<String> = list_netns()
        .into_iter()
        .filter(|ns| ns.starts_with(&lab_id))
        .collect();
    if !left.is_empty() {
        violations.push(format!("namespaces left: {left:?}"));
    }

    let report = report(seed, started.elapsed(), interval, n, &stats, &violations);
    println!("\n{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report).with_context(|| format!("write {}", out.display()))?;
    }
    Ok(violations.is_empty())
}

/// What the checker found in one fault's window.
struct Found {
    worst_unheld: Duration,
    worst_double: Duration,
    violations: Vec<String>,
}

/// Checks the holder timelines from the fault's start to `end` against the fault's bounds.
fn judge(
    cluster: &Cluster<'_>,
    holders: &Holders,
    a: &Applied,
    end: Instant,
    extra_steady: bool,
) -> Found {
    let mut found = Found {
        worst_unheld: Duration::ZERO,
        worst_double: Duration::ZERO,
        violations: Vec::new(),
    };
    let unheld_bound = if a.kind.planned() {
        cluster.interval
    } else {
        cluster.master_down_interval()
    } + SLACK;
    let double_bound = cluster.interval + SLACK;
    let vips: &[(usize, &str)] = if extra_steady {
        &[(WEB, WEB_VIP), (EXTRA, EXTRA_VIP)]
    } else {
        &[(WEB, WEB_VIP)]
    };
    for &(vip, addr) in vips {
        let tl = holders.between(vip, a.start, end);
        for (at, len) in periods(&tl, end, |s| s.is_empty()) {
            found.worst_unheld = found.worst_unheld.max(len);
            if len > unheld_bound {
                found.violations.push(format!(
                    "{addr} held by nobody for {len:?} from +{:?} (bound {unheld_bound:?})",
                    at.saturating_duration_since(a.start)
                ));
            }
        }
        for (at, len) in periods(&tl, end, |s| s.len() > 1) {
            // During a split two holders are expected: count only what outlasts the healing.
            let from = if a.kind.splits() { at.max(a.heal) } else { at };
            let over = (at + len).saturating_duration_since(from);
            found.worst_double = found.worst_double.max(over);
            if over > double_bound {
                found.violations.push(format!(
                    "{addr} on two hosts for {over:?} from +{:?} (bound {double_bound:?})",
                    from.saturating_duration_since(a.start)
                ));
            }
        }
    }
    found
}

/// Waits until every VIP is held by the host that should hold it and every daemon runs;
/// returns how long that took from `since`.
fn settle(cluster: &Cluster<'_>, holders: &Holders, since: Instant) -> Result<Duration> {
    let expected = |vip: usize| -> Vec<usize> {
        if vip == EXTRA && !cluster.extra_configured() {
            Vec::new()
        } else {
            cluster.expected_holder(vip).into_iter().collect()
        }
    };
    loop {
        let now: Vec<Vec<usize>> = [WEB, EXTRA]
            .iter()
            .map(|&v| holders.now(v).into_iter().collect())
            .collect();
        let up = cluster
            .slots()
            .iter()
            .all(|s| s.daemon.as_ref().is_some_and(|d| d.is_running()));
        if up && now[WEB] == expected(WEB) && now[EXTRA] == expected(EXTRA) {
            return Ok(since.elapsed());
        }
        if since.elapsed() > SETTLE_MAX {
            bail!(
                "after {SETTLE_MAX:?}: {WEB_VIP} on {:?} (expected {:?}), {EXTRA_VIP} on {:?} \
                 (expected {:?}), all daemons up: {up}",
                now[WEB],
                expected(WEB),
                now[EXTRA],
                expected(EXTRA)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Processes in the hosts' namespaces other than the daemons (and the checker's monitors)
/// that were there at the previous look too: a check script or hook left running.
fn lingering_processes(
    cluster: &Cluster<'_>,
    seen: &mut HashMap<(usize, i32), usize>,
) -> Vec<String> {
    let daemons: Vec<i32> = cluster
        .slots()
        .iter()
        .filter_map(|s| s.daemon.as_ref().map(|d| d.pid() as i32))
        .collect();
    let mut now = HashMap::new();
    let mut out = Vec::new();
    for h in 1..=cluster.lab.hosts() {
        for pid in namespace_pids(&cluster.lab.host_ns(h)) {
            // The daemons, their VIP guards, the checker's monitors (a check script or hook
            // is counted: they are short).
            let ours = daemons.contains(&pid)
                || is_monitor(pid)
                || (is_guard(pid) && daemons.contains(&parent(pid)));
            if ours {
                continue;
            }
            let looks = seen.get(&(h, pid)).copied().unwrap_or(0) + 1;
            // Three looks in a row (several seconds apart): not a check that is just running.
            if looks == 3 {
                out.push(format!("h{h}: {}", describe(pid)));
            }
            now.insert((h, pid), looks);
        }
    }
    *seen = now;
    out
}

fn namespace_pids(ns: &str) -> Vec<i32> {
    Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

fn parent(pid: i32) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // "pid (comm) state ppid ...": comm may hold spaces, so split after its ')'.
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// A daemon's VIP guard (`upkeep guard-vips`).
fn is_guard(pid: i32) -> bool {
    cmdline(pid).ends_with(" guard-vips")
}

/// The checker's own `ip -n NS monitor address` processes.
fn is_monitor(pid: i32) -> bool {
    let c = cmdline(pid);
    c.starts_with("ip -n ") && c.ends_with("monitor address")
}

fn describe(pid: i32) -> String {
    format!("pid {pid}: {}", cmdline(pid))
}

fn report(
    seed: u64,
    ran: Duration,
    interval: Duration,
    faults: usize,
    stats: &BTreeMap<Kind, KindStats>,
    violations: &[String],
) -> String {
    let mut r = String::new();
    let _ = writeln!(
        r,
        "upkeep-soak: seed {seed}, {:.1} min, {faults} faults, adverts every {interval:?}, \
         {} violation(s)\n",
        ran.as_secs_f64() / 60.0,
        violations.len()
    );
    let _ = writeln!(
        r,
        "| fault | count | worst time unheld | worst time on two hosts (after healing) | worst settle | violations |"
    );
    let _ = writeln!(r, "|---|---:|---:|---:|---:|---:|");
    for (kind, s) in stats {
        let _ = writeln!(
            r,
            "| {} | {} | {} ms | {} ms | {} ms | {} |",
            kind.name(),
            s.count,
            s.worst_unheld.as_millis(),
            s.worst_double.as_millis(),
            s.worst_settle.as_millis(),
            s.violations
        );
    }
    for v in violations {
        let _ = writeln!(r, "\n- {v}");
    }
    r
}
