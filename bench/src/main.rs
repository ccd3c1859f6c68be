//! upkeep vs keepalived, side by side in the integration tests' namespace lab: failover outages
//! as a client of the VIP sees them, reload, scale, and the CPU cost of checks. Writes a Markdown
//! table (median, min, max, ratio) and a PNG of the client's view.
//!
//!     cargo build --release -p upkeep && scripts/build-plugins.sh
//!     sudo cargo run --release -p upkeep-bench -- [--repeats 5] [--scenarios a,b] [--out bench/RESULTS.md]
//!
//! Needs root, keepalived, iproute2 and ss (bench/install-deps.sh). Not part of CI.
// unsafe here: a SIGINT handler that exits at once (`signal`, `_exit`) and `geteuid`.
#![allow(unsafe_code)]

mod measure;
mod plot;
mod report;
mod scenarios;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::report::ScenarioRuns;
use crate::scenarios::{Opts, Scenario};

/// Runs keepalived and upkeep side by side in network namespaces and compares what a client
/// of the VIP sees. Needs root.
#[derive(Parser, Debug)]
#[command(name = "upkeep-bench")]
struct Args {
    /// Runs of each scenario per daemon (interleaved: keepalived, upkeep, keepalived, ...).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Comma-separated scenario names (default: all; --list shows them).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// The Markdown report.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/RESULTS.md"))]
    out: PathBuf,
    /// The PNG (default: outage.png next to --out).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// CPU / RSS sampling window of the scale and check-cpu scenarios, in seconds.
    #[arg(long, default_value_t = 20.0)]
    window: f64,
    /// The upkeep binary (default: $UPKEEP_BIN, else target/release/upkeep).
    #[arg(long)]
    upkeep: Option<PathBuf>,
    /// Also write every run's client probes as CSV (seconds from the event, answered 0/1) here.
    #[arg(long)]
    traces: Option<PathBuf>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    if STOP.swap(true, Ordering::SeqCst) {
        // Second Ctrl-C: give up at once (namespaces of the current run may stay behind:
        // `ip netns list | grep ^uk`).
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

fn workspace() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    p.canonicalize().unwrap_or(p)
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("upkeep-bench: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let args = Args::parse();
    let all = scenarios::all();
    if args.list {
        for s in &all {
            println!("{:14} {}", s.name, s.title);
        }
        return Ok(());
    }
    let selected: Vec<Scenario> = if args.scenarios.is_empty() {
        all.clone()
    } else {
        args.scenarios
            .iter()
            .map(|name| {
                all.iter()
                    .find(|s| s.name == name)
                    .cloned()
                    .with_context(|| {
                        let names: Vec<&str> = all.iter().map(|s| s.name).collect();
                        format!("no scenario {name:?}; there are: {}", names.join(", "))
                    })
            })
            .collect::<Result<_>>()?
    };
    if args.repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    if !args.window.is_finite() || args.window <= 0.0 {
        bail!("--window must be positive");
    }
    let plot_path = args
        .plot
        .clone()
        .unwrap_or_else(|| args.out.with_file_name("outage.png"));
    let binary = preflight(&args, &selected)?;
    let opts = Opts {
        window: Duration::from_secs_f64(args.window),
    };

    // SAFETY: installing a handler that only touches an atomic (and _exit).
    unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
    let machine = machine_note(&binary);
    let started = Instant::now();
    let total: usize = selected
        .iter()
        .map(|s| s.contenders.len() * args.repeats)
        .sum();
    let mut done = 0;
    let mut results: Vec<ScenarioRuns> = Vec::new();
    'scenarios: for s in selected {
        let mut runs = ScenarioRuns::new(s.clone());
        for rep in 1..=args.repeats {
            for &c in &s.contenders {
                if STOP.load(Ordering::SeqCst) {
                    results.push(runs);
                    eprintln!("interrupted: writing what was measured");
                    break 'scenarios;
                }
                done += 1;
                let t = Instant::now();
                let r = scenarios::run(&s, c, &opts);
                let summary = match &r {
                    Ok(o) => s
                        .metrics
                        .iter()
                        .filter_map(|m| {
                            o.get(m.key)
                                .map(|v| format!("{} {}", m.key, report::fmt_value(m, v)))
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    Err(e) => format!("FAILED: {e:#}"),
                };
                eprintln!(
                    "[{done}/{total}] {} {} #{rep}: {summary} ({:.1} s)",
                    s.name,
                    s.label(c),
                    t.elapsed().as_secs_f64()
                );
                if let (Some(dir), Ok(o)) = (&args.traces, &r) {
                    if let Some(t) = &o.trace {
                        let name = format!(
                            "{}-{}-{rep}.csv",
                            s.name,
                            s.label(c).replace([' ', '(', ')'], "")
                        );
                        std::fs::create_dir_all(dir)?;
                        let mut csv = String::from("t_s,answered\n");
                        for (t, ok) in &t.probes {
                            let _ = writeln!(csv, "{t:.6},{}", u8::from(*ok));
                        }
                        std::fs::write(dir.join(name), csv)?;
                    }
                }
                runs.push(c, r.map_err(|e| format!("{e:#}")));
            }
        }
        results.push(runs);
        // Keep what is done so far on disk.
        write_outputs(
            &args,
            &plot_path,
            &results,
            &machine,
            started.elapsed(),
            false,
        )?;
    }
    write_outputs(
        &args,
        &plot_path,
        &results,
        &machine,
        started.elapsed(),
        true,
    )?;
    println!("{}", report::table(&results));
    println!("wrote {} and {}", args.out.display(), plot_path.display());
    Ok(())
}

/// The upkeep binary measured: a copy taken at the start (in a directory removed when this is
/// dropped), so that a rebuild during the run (others share target/) changes nothing.
struct Binary {
    original: PathBuf,
    built: Option<SystemTime>,
    sha256: String,
    dir: PathBuf,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Copies the binary (and the port-listener plugin, if there is one) into a private directory
/// and points the harness at the copies (UPKEEP_BIN, UPKEEP_PLUGINS).
fn snapshot(bin: &Path) -> Result<Binary> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!("upkeep-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("create {}", dir.display()))?;
    let binary = Binary {
        original: bin.to_path_buf(),
        built: bin.metadata().and_then(|m| m.modified()).ok(),
        sha256: run_text("sha256sum", &[&bin.to_string_lossy()])
            .split_whitespace()
            .next()
            .unwrap_or("")
            .chars()
            .take(12)
            .collect(),
        dir: dir.clone(),
    };
    let copy = dir.join("upkeep");
    std::fs::copy(bin, &copy).with_context(|| format!("copy {}", bin.display()))?;
    std::env::set_var("UPKEEP_BIN", &copy);
    if let Ok(plugin) = upkeep_tests::plugin_path("port-listener") {
        let plugins = dir.join("plugins");
        std::fs::create_dir(&plugins)?;
        std::fs::copy(&plugin, plugins.join("port-listener.wasm"))?;
        std::env::set_var("UPKEEP_PLUGINS", &plugins);
    }
    Ok(binary)
}

/// Root, keepalived, the upkeep binary (fresh), the plugin if needed; sets the environment
/// the harness reads (UPKEEP_BIN, UPKEEP_PLUGINS, UPKEEP_LOG).
fn preflight(args: &Args, selected: &[Scenario]) -> Result<Binary> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the namespace lab needs root: run as root (e.g. sudo -E cargo run --release -p upkeep-bench)");
    }
    if !upkeep_tests::keepalived_available() {
        bail!("keepalived is not installed: apt-get install keepalived (or bench/install-deps.sh)");
    }
    let bin = match (&args.upkeep, std::env::var_os("UPKEEP_BIN")) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => PathBuf::from(p),
        (None, None) => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace().join("target"));
            target.join("release/upkeep")
        }
    };
    if !bin.is_file() {
        bail!(
            "no upkeep binary at {}: build it first with `cargo build --release -p upkeep` (or pass --upkeep PATH)",
            bin.display()
        );
    }
    let bin = bin.canonicalize()?;
    if let Some(newer) = newer_source(&bin) {
        eprintln!(
            "warning: {} is older than {}: rebuild with `cargo build --release -p upkeep` to measure the current code",
            bin.display(),
            newer.display()
        );
    }
    if selected.iter().any(Scenario::needs_plugin) {
        upkeep_tests::plugin_path("port-listener")?;
    }
    // Edition 2021, single-threaded here: nothing reads the environment concurrently.
    let binary = snapshot(&bin)?;
    if std::env::var_os("UPKEEP_LOG").is_none() {
        // The harness defaults to debug logging; measure the daemon as deployed.
        std::env::set_var("UPKEEP_LOG", "info");
    }
    if let Err(e) = plot::load_font() {
        eprintln!("warning: no PNG will be drawn: {e:#}");
    }
    measure::remove_stale_cgroups();
    if !measure::cpuacct_available() {
        eprintln!("warning: no cgroup v1 cpuacct: CPU from /proc's tick-sampled times (coarse)");
    }
    if which("ss").is_none() {
        bail!("`ss` (iproute2) is needed by the check script");
    }
    Ok(binary)
}

fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(prog))
            .find(|p| p.is_file())
    })
}

/// A file of the daemon's sources modified after `bin` was built, if any.
fn newer_source(bin: &Path) -> Option<PathBuf> {
    let built = bin.metadata().and_then(|m| m.modified()).ok()?;
    // The daemon crate and the protocol and config crates under it.
    let mut stack = vec![workspace().join("core")];
    while let Some(p) = stack.pop() {
        let Ok(meta) = p.metadata() else { continue };
        if meta.is_dir() {
            if let Ok(rd) = p.read_dir() {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if meta.modified().is_ok_and(|m| m > built) {
            return Some(p);
        }
    }
    None
}

fn write_outputs(
    args: &Args,
    plot_path: &Path,
    results: &[ScenarioRuns],
    machine: &str,
    elapsed: Duration,
    last: bool,
) -> Result<()> {
    let plotted = match plot::render(plot_path, results) {
        Ok(p) => p,
        Err(e) => {
            if last {
                eprintln!("warning: no PNG: {e:#}");
            }
            false
        }
    };
    let md = markdown(
        args,
        results,
        machine,
        elapsed,
        plotted.then_some(plot_path),
    );
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, md).with_context(|| format!("write {}", args.out.display()))
}

fn markdown(
    args: &Args,
    results: &[ScenarioRuns],
    machine: &str,
    elapsed: Duration,
    plot: Option<&Path>,
) -> String {
    let mut out = String::from("# upkeep vs keepalived: benchmark results\n\n");
    let cmd: Vec<String> = std::env::args().skip(1).collect();
    let _ = writeln!(
        out,
        "Made by `bench/` (the `upkeep-bench` crate) with:\n\n    \
         cargo build --release -p upkeep && scripts/build-plugins.sh\n    \
         cargo run --release -p upkeep-bench{}{}\n",
        if cmd.is_empty() { "" } else { " -- " },
        cmd.join(" ")
    );
    let _ = writeln!(
        out,
        "{} run{} of each scenario per daemon, keepalived and upkeep interleaved; {:.0} min in \
         all. Every run builds a fresh two-host lab with the integration tests' harness \
         (tests/src: hosts h1, h2 and a client on one bridge, VIP 192.0.2.100/24; h1 priority \
         190, h2 180), starts the same configuration on both hosts (rendered as keepalived.conf \
         or upkeep KDL from one `Instance`), waits for h1 to hold the VIP, then causes the \
         event. CPU and RSS windows: {} s. upkeep logs at `info`.\n",
        args.repeats,
        if args.repeats == 1 { "" } else { "s" },
        elapsed.as_secs_f64() / 60.0,
        args.window
    );
    out.push_str("## Machine\n\n");
    out.push_str(machine);
    out.push_str("\n## Results\n\n");
    out.push_str(
        "Medians, minimum and maximum over the successful runs; the ratio is upkeep's median \
         over keepalived's (lower is better for every metric). The goals are issue 6's \
         (graceful stop ≤ 0.10, failed check ≤ 0.35, reload 0 lost pings and 0 address events, \
         ≤ 1.0 elsewhere, i.e. at or below keepalived); rows marked (info) have none. A \
         \"tie\" is an \"at or below\" row where upkeep's median is above keepalived's by a \
         difference that is not measurable, and the row says by how much: less than one run can \
         resolve (the client's probe interval, the harness's poll interval), or at most 1 % and \
         not significant (an exact one-sided permutation test of the difference of medians over \
         all splits of the pooled runs, p ≥ 0.05, at least 5 runs each; 5 + 5 runs that do not \
         overlap give p = 0.024). Where both daemons \
         wait out the RFC's Master_Down_Interval (a crash at 1 s adverts; the first election at \
         start-up), that interval is the floor for both: 3 × 1 s + (256 − 180)/256 s = \
         3296.9 ms for the crash's backup (priority 180), 3257.8 ms for h1 (190) at \
         start-up.\n\n",
    );
    out.push_str(&report::table(results));
    if let Some(p) = plot {
        let name = p
            .file_name()
            .map_or("outage.png".into(), |n| n.to_string_lossy());
        let _ = writeln!(out, "\n![The client's view, per scenario]({name})\n");
        out.push_str(
            "The plot: for each daemon's median run, how long the client had been without an \
             answer at each probe (ms), from 0.2 s before the event; the peak is the outage.\n",
        );
    }
    out.push_str("\n## Scenarios\n\n");
    for s in results {
        let _ = writeln!(
            out,
            "- **{}** — {}: {}",
            s.scenario.name, s.scenario.title, s.scenario.what
        );
    }
    out.push_str(
        "\nOutage: the harness's `PingReport` gaps (from the last answered probe to the next \
         answered one) that end after the event, each counted from the event at the earliest; \
         the longest. \"VIP on the backup\" (and the scale scenarios' converge and all-moved \
         times) come from `ip monitor address` in the hosts' namespaces, read every 2 ms.\n",
    );
    out.push_str("\n## Every run\n\n");
    out.push_str(&report::raw_runs(results));
    out
}

fn run_text(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let s = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&s).trim().to_string()
        })
        .unwrap_or_default()
}

fn machine_note(binary: &Binary) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let ws = workspace();
    let ws = ws.to_string_lossy();
    let commit = run_text("git", &["-C", &ws, "rev-parse", "--short", "HEAD"]);
    let dirty = !run_text("git", &["-C", &ws, "status", "--porcelain", "--", "core"]).is_empty();
    let built = binary
        .built
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| {
            run_text(
                "date",
                &[
                    "-u",
                    "-d",
                    &format!("@{}", d.as_secs()),
                    "+%Y-%m-%d %H:%M:%S UTC",
                ],
            )
        })
        .unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut s = String::new();
    let _ = writeln!(
        s,
        "- date: {}",
        run_text("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    );
    let _ = writeln!(
        s,
        "- CPU: {cpu}, {nproc} cores; memory {mem_gib:.0} GiB; kernel {}",
        run_text("uname", &["-r"])
    );
    let _ = writeln!(
        s,
        "- load average at the start: {} (this is a shared 2-core machine: other namespace \
         tests may have run at the same time, which shows as spread between runs)",
        load.join(" ")
    );
    let _ = writeln!(
        s,
        "- CPU time: {}; RSS: the sum of VmRSS over the daemon's process group",
        if measure::cpuacct_available() {
            "each daemon's process group in a cgroup v1 cpuacct group of its own (`cpuacct.usage`, \
             ns: every thread, and every child such as a check script)"
        } else {
            "/proc utime + stime + cutime + cstime of the daemon's process group (tick-sampled)"
        }
    );
    let _ = writeln!(
        s,
        "- keepalived: {}",
        run_text("keepalived", &["--version"])
            .lines()
            .next()
            .unwrap_or("")
    );
    let _ = writeln!(
        s,
        "- upkeep: {} built {built}, sha256 {}… (copied at the start: a rebuild during the run \
         changes nothing); workspace HEAD at the start {commit}{}",
        binary.original.display(),
        binary.sha256,
        if dirty {
            ", with uncommitted changes in core/"
        } else {
            ", core/ clean"
        }
    );
    s
}
