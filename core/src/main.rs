//! The `upkeep` command line: run the daemon, check a config, import a keepalived config.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use upkeep::daemon::control::{self, Request};
use upkeep::daemon::status::{InstanceStatus, ReloadStatus, Status};
use upkeep_vrrp::fsm::State;

#[derive(Parser)]
#[command(
    name = "upkeep",
    version,
    about = "VRRP high-availability daemon (keepalived's successor)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground until SIGTERM/SIGINT.
    Run {
        #[arg(long, short)]
        config: PathBuf,
        /// Where status.json (and later the control socket) live.
        #[arg(long, default_value = "/run/upkeep")]
        state_dir: PathBuf,
    },
    /// Validate a config file and print a summary; exits non-zero on error (like `keepalived -t`).
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Show what a running daemon is doing: every instance and check.
    Status {
        #[arg(long, default_value = "/run/upkeep")]
        state_dir: PathBuf,
        /// Print the raw JSON document instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Ask a running daemon to reload its config (SIGHUP) and print what the reload did.
    Reload {
        #[arg(long, default_value = "/run/upkeep")]
        state_dir: PathBuf,
        /// How long to wait for the daemon's answer.
        #[arg(long, default_value = "10")]
        timeout_secs: u64,
    },
    /// Hand an instance (and its sync group) over to the best backup without a gap: the master
    /// announces priority 0 and keeps its VIPs until the new master is heard. The instance then
    /// stays backup, held back from preempting (it still takes over if no master is left),
    /// until `upkeep release`. Exits non-zero when no successor took over.
    Handover {
        instance: String,
        #[arg(long, default_value = "/run/upkeep")]
        state_dir: PathBuf,
        /// How long to wait for the successor.
        #[arg(long, default_value = "60")]
        timeout_secs: u64,
    },
    /// Lift the hold `upkeep handover` left on an instance (and its sync group): it preempts
    /// again as configured.
    Release {
        instance: String,
        #[arg(long, default_value = "/run/upkeep")]
        state_dir: PathBuf,
    },
    /// Work with a WASM plugin without a cluster.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Translate a keepalived.conf into upkeep's KDL on stdout; what cannot be translated is
    /// listed on stderr with its line.
    ImportKeepalived {
        file: PathBuf,
        /// The config id keepalived's `@ID` / `@^ID` lines are compared with (keepalived's
        /// `-i`); default: this machine's host name up to its first dot.
        #[arg(long)]
        host: Option<String>,
    },
    /// Compile a WASM plugin read from stdin to machine code in OUTPUT (the daemon runs this
    /// in a process of its own; not for people).
    #[command(hide = true)]
    CompilePlugin { output: PathBuf },
    /// Remove the VIPs a daemon holds once it dies (the daemon runs this beside itself, its
    /// lines on stdin; not for people).
    #[command(hide = true, name = upkeep::daemon::guard::SUBCOMMAND)]
    GuardVips,
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Print a plugin's metadata: name, version, what it exports, the capabilities it wants.
    Inspect { file: PathBuf },
    /// Call a plugin's check once and print the result and its duration.
    Run {
        file: PathBuf,
        /// A config entry for the check, `key=value` (repeatable).
        #[arg(long = "config", short = 'c')]
        config: Vec<String>,
        /// Grant a capability: `log`, `clock`, `listening-sockets`, `tcp-connect=ADDR:PORT`,
        /// `read-file=PATH` (repeatable). Nothing is granted otherwise.
        #[arg(long = "allow", short = 'a')]
        allow: Vec<String>,
        /// Deadline of the call.
        #[arg(long, default_value = "1s")]
        timeout: String,
        /// Memory cap in MiB.
        #[arg(long, default_value = "16")]
        memory_mib: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config, state_dir } => {
            init_logging();
            match upkeep::daemon::run(upkeep::daemon::Options { config, state_dir }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("upkeep: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { config } => match upkeep::host::check_file(&config) {
            Ok((cfg, warnings)) => {
                for w in &warnings {
                    eprintln!("warning: {w}");
                }
                print!("{}", summary(&cfg));
                println!("{}: OK", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{:?}", miette::Report::new(e));
                ExitCode::FAILURE
            }
        },
        Command::Status { state_dir, json } => match control::status(&state_dir) {
            Ok(v) if json => {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Ok(v) => {
                print!("{}", status_tables(&v));
                ExitCode::SUCCESS
            }
            Err(e) => {
                let path = control::socket_path(&state_dir);
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    eprintln!("upkeep: {}: {e}", path.display());
                } else {
                    eprintln!("upkeep: cannot reach the daemon at {}: {e}", path.display());
                }
                ExitCode::FAILURE
            }
        },
        Command::Reload {
            state_dir,
            timeout_secs,
        } => match reload(&state_dir, std::time::Duration::from_secs(timeout_secs)) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("upkeep: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Handover {
            instance,
            state_dir,
            timeout_secs,
        } => match handover(
            &state_dir,
            &instance,
            std::time::Duration::from_secs(timeout_secs),
        ) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("upkeep: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Release {
            instance,
            state_dir,
        } => match operator_request(&state_dir, Request::Release { instance }) {
            Ok(names) => {
                for n in names {
                    println!("{n}: released: preempts as configured");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("upkeep: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Plugin(cmd) => match plugin(cmd) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("upkeep: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::GuardVips => match upkeep::daemon::guard::run() {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("upkeep guard-vips: {e}");
                ExitCode::FAILURE
            }
        },
        Command::CompilePlugin { output } => {
            let mut bytes = Vec::new();
            let result = std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                .map_err(|e| format!("reading the plugin from stdin: {e}"))
                .and_then(|_| upkeep::checks::wasm::compile_to_file(&bytes, &output));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::ImportKeepalived { file, host } => match upkeep_keepalived::import_keepalived_for(
            &file,
            &host.unwrap_or_else(upkeep_keepalived::default_host),
        ) {
            Ok(imported) => {
                for w in &imported.warnings {
                    eprintln!("warning: {w}");
                }
                print!("{}", imported.kdl);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("upkeep: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn plugin(cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    use upkeep::checks::wasm;
    match cmd {
        PluginCommand::Inspect { file } => {
            let (m, sha256) = wasm::inspect(&file)?;
            println!("name:         {}", m.name);
            println!("version:      {}", m.version);
            println!("description:  {}", m.description);
            let caps: Vec<&str> = m.capabilities.iter().map(|c| c.name()).collect();
            println!(
                "capabilities: {}",
                if caps.is_empty() {
                    "(none)".to_string()
                } else {
                    caps.join(", ")
                }
            );
            let mut exports = Vec::new();
            if m.check {
                exports.push("check");
            }
            if m.notify {
                exports.push("notify");
            }
            println!("exports:      metadata, {}", exports.join(", "));
            println!("interface:    {}", wasm::WIT_VERSION);
            // What a config's `sha256` pins it to.
            println!("sha256:       {sha256}");
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Run {
            file,
            config,
            allow,
            timeout,
            memory_mib,
        } => {
            let mut grants = wasm::Grants::default();
            for a in &allow {
                let (name, value) = a
                    .split_once('=')
                    .map_or((a.as_str(), None), |(n, v)| (n, Some(v)));
                let cap: wasm::Capability = name
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--allow {a}: {e}"))?;
                match (cap, value) {
                    (wasm::Capability::TcpConnect, Some(v)) => grants
                        .tcp_connect
                        .push(v.parse().map_err(|e| anyhow::anyhow!("--allow {a}: {e}"))?),
                    (wasm::Capability::ReadFile, Some(v)) => {
                        grants.read_file.push(PathBuf::from(v))
                    }
                    (c, None) if !c.takes_targets() => grants.grant(c),
                    (c, _) if c.takes_targets() => {
                        anyhow::bail!("--allow {a}: write {c}=TARGET (an address or a path)")
                    }
                    (c, _) => anyhow::bail!("--allow {a}: {c} takes no value"),
                }
            }
            let config: Vec<(String, String)> = config
                .iter()
                .map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| anyhow::anyhow!("--config {kv}: expected key=value"))
                })
                .collect::<anyhow::Result<_>>()?;
            let timeout = upkeep_config::parse::parse_duration(&timeout)
                .map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
            let host = wasm::PluginHost::new()?;
            let limits = wasm::Limits {
                timeout,
                memory: memory_mib * 1024 * 1024,
            };
            let started = std::time::Instant::now();
            let p = wasm::Plugin::load(&host, &file, grants, limits)?;
            let load = started.elapsed();
            let out = p.check(&config);
            println!(
                "{}: {}",
                if out.healthy { "healthy" } else { "unhealthy" },
                out.message
            );
            if let Some(f) = &out.fault {
                println!("fault: {f:?}");
            }
            println!("duration: {:?} (load and compile {:?})", out.duration, load);
            Ok(if out.healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// SIGHUP the daemon whose status file is in `state_dir`, wait for its next reload record, print
/// it. Ok(false) when the reload was refused.
fn reload(state_dir: &std::path::Path, timeout: std::time::Duration) -> anyhow::Result<bool> {
    use anyhow::Context;
    // The control socket answers with the result directly; SIGHUP and the status file are the
    // fallback for a daemon whose socket is gone.
    match control::reload(state_dir) {
        Ok(r) => return Ok(print_reload(&r)),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let path = control::socket_path(state_dir);
            anyhow::bail!("{}: {e}", path.display());
        }
        Err(_) => {}
    }
    let path = state_dir.join("status.json");
    let read = || -> anyhow::Result<Status> {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
    };
    let before = read()?;
    let pid = before.pid;
    let seq = before.last_reload.as_ref().map_or(0, |r| r.seq);
    let target = i32::try_from(pid).context("status.json has a pid out of range")?;
    if let Err(e) = upkeep::exec::process::signal(target, libc::SIGHUP) {
        anyhow::bail!("cannot signal upkeep (pid {pid}): {e}");
    }
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let Ok(now) = read() else { continue };
        if let Some(r) = now.last_reload.filter(|r| r.seq > seq) {
            return Ok(print_reload(&r));
        }
    }
    anyhow::bail!("no answer from upkeep (pid {pid}) within {timeout:?}")
}

/// Sends a handover or release; the instances it went to (its sync group).
fn operator_request(state_dir: &std::path::Path, req: Request) -> anyhow::Result<Vec<String>> {
    use anyhow::Context;
    let path = control::socket_path(state_dir);
    let what = match &req {
        Request::Handover { instance } => format!("handover {instance}"),
        Request::Release { instance } => format!("release {instance}"),
        other => format!("{other:?}"),
    };
    control::operator(state_dir, &req).with_context(|| format!("{what} via {}", path.display()))
}

/// `upkeep handover`: ask, then watch the instances until none is still handing over, and say
/// where each ended. Ok(false) when a master found no successor (it kept its VIPs).
fn handover(
    state_dir: &std::path::Path,
    instance: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<bool> {
    use anyhow::Context;
    let status = || control::status(state_dir).context("reading the daemon's status");
    let state_of = |v: &Status, name: &str| -> Option<InstanceStatus> {
        v.instances.iter().find(|i| i.name == name).cloned()
    };
    let before = status()?;
    let names = operator_request(
        state_dir,
        Request::Handover {
            instance: instance.to_owned(),
        },
    )?;
    let deadline = std::time::Instant::now() + timeout;
    let after = loop {
        let now = status()?;
        let pending = names
            .iter()
            .any(|n| state_of(&now, n).is_some_and(|i| i.state == State::Handover));
        if !pending {
            break now;
        }
        if std::time::Instant::now() >= deadline {
            anyhow::bail!("still handing over after {timeout:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut ok = true;
    for n in &names {
        let was = state_of(&before, n).map(|i| i.state);
        let Some(i) = state_of(&after, n) else {
            println!("{n}: gone (removed by a reload)");
            continue;
        };
        let master = i.master.as_deref().unwrap_or("-");
        match (was, i.state) {
            (Some(State::Master | State::Handover), State::Backup) => println!(
                "{n}: handed over to {master}; held back from preempting until `upkeep release {n}`"
            ),
            (Some(State::Master | State::Handover), State::Master) => {
                ok = false;
                println!("{n}: no successor took over: still master, VIPs kept");
            }
            (_, state) => println!(
                "{n}: {state}, not master: held back from preempting until `upkeep release {n}`"
            ),
        }
    }
    Ok(ok)
}

/// Print a reload record; false when it was refused.
fn print_reload(r: &ReloadStatus) -> bool {
    println!("reload {}", r.result);
    for (key, list) in [
        ("added", &r.added),
        ("changed", &r.changed),
        ("removed", &r.removed),
    ] {
        if !list.is_empty() {
            println!("  {key}: {}", list.join(", "));
        }
    }
    if let Some(err) = &r.error {
        println!("  error: {err}");
    }
    r.result != "refused"
}

/// `upkeep status` as tables for people.
fn status_tables(v: &Status) -> String {
    use std::fmt::Write;
    let or_dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".to_string());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:<10} {:>4} {:<12} {:>9} {:<26} {:>4} {:>8} {:>8} {:>6}  LAST TRANSITION",
        "INSTANCE",
        "INTERFACE",
        "VRID",
        "STATE",
        "PRIO/EFF",
        "MASTER",
        "VIPS",
        "SENT",
        "RECEIVED",
        "DROPS"
    );
    for i in &v.instances {
        let drops: u64 = i.drops.values().sum();
        let _ = writeln!(
            out,
            "{:<16} {:<10} {:>4} {:<12} {:>9} {:<26} {:>4} {:>8} {:>8} {:>6}  {}",
            i.name,
            i.interface,
            i.vrid,
            if i.held_back {
                format!("{}, held", i.state)
            } else {
                i.state.to_string()
            },
            format!("{}/{}", i.priority, i.effective_priority),
            or_dash(&i.master),
            if i.vips_held { "held" } else { "-" },
            i.adverts_sent,
            i.adverts_received,
            drops,
            or_dash(&i.last_transition),
        );
    }
    if !v.checks.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<16} {:<10} {:<8} {:>6} {:>8}  MESSAGE",
            "CHECK", "KIND", "RESULT", "RUNS", "TOOK"
        );
        for c in &v.checks {
            let _ = writeln!(
                out,
                "{:<16} {:<10} {:<8} {:>6} {:>6}ms  {}",
                c.name,
                c.kind,
                if c.healthy { "healthy" } else { "FAILED" },
                c.runs,
                c.duration_ms,
                c.message,
            );
        }
    }
    if !v.announcements.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<16} {:<10} {:<20} {:<12} ERROR",
            "ANNOUNCE", "SPEAKER", "PREFIX", "STATE"
        );
        for a in &v.announcements {
            let _ = writeln!(
                out,
                "{:<16} {:<10} {:<20} {:<12} {}",
                a.name,
                a.speaker,
                a.prefix,
                a.state.as_str(),
                a.error.as_deref().unwrap_or("-"),
            );
        }
    }
    if !v.drops.is_empty() {
        let list: Vec<String> = v.drops.iter().map(|(k, n)| format!("{k}={n}")).collect();
        let _ = writeln!(out, "\nunattributed drops: {}", list.join(" "));
    }
    for (name, q) in [("notify", &v.queues.notify), ("hooks", &v.queues.hooks)] {
        if q.run > 0 || q.superseded > 0 {
            let _ = writeln!(
                out,
                "\n{name} queue: {} run, {} running, {} waiting, {} superseded (latest state wins)",
                q.run, q.running, q.waiting, q.superseded
            );
        }
    }
    if let Some(r) = &v.last_reload {
        let _ = writeln!(
            out,
            "\nlast reload: {} ({}){}",
            r.result,
            r.trigger,
            r.error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    out
}

/// One line per instance and check, as `keepalived -t` users expect to see what was understood.
fn summary(cfg: &upkeep_config::Config) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for i in &cfg.instances {
        let vips: Vec<String> = i
            .vips
            .iter()
            .map(|v| {
                let not = if v.advertise { "" } else { " (not advertised)" };
                format!("{}/{}{not}", v.addr, v.prefix_len)
            })
            .collect();
        let _ = writeln!(
            out,
            "instance {:?}: {} vrid {} priority {} {:?} advert {:?}{}{} vips [{}]{}{}",
            i.name,
            i.interface,
            i.vrid,
            i.priority,
            i.version,
            i.advert_interval,
            if i.preempt { "" } else { " nopreempt" },
            if i.drops_vip_traffic() {
                " no-accept"
            } else {
                ""
            },
            vips.join(", "),
            if i.unicast_peers.is_empty() {
                String::new()
            } else {
                format!(" unicast peers {:?}", i.unicast_peers)
            },
            match (i.routes.len(), i.rules.len()) {
                (0, 0) => String::new(),
                (r, n) => format!(" routes {r} rules {n}"),
            },
        );
    }
    for c in &cfg.checks {
        let _ = writeln!(
            out,
            "check {:?}: every {:?}, timeout {:?}, fall {} rise {} weight {}",
            c.name, c.interval, c.timeout, c.fall, c.rise, c.weight
        );
    }
    for g in &cfg.sync_groups {
        let _ = writeln!(out, "sync-group {:?}: {}", g.name, g.members.join(", "));
    }
    for sp in &cfg.speakers {
        let _ = writeln!(
            out,
            "speaker {:?}: {} control {} include {} timeout {:?}",
            sp.name,
            sp.daemon.name(),
            sp.control.display(),
            sp.include.display(),
            sp.timeout
        );
    }
    for a in &cfg.announces {
        let tracks: Vec<&str> = a.tracks.iter().map(|t| t.check.as_str()).collect();
        let _ = writeln!(
            out,
            "announce {:?}: {}/{} via speaker {:?} (BIRD protocol {}), tracks [{}]{}{}{}",
            a.name,
            a.prefix,
            a.prefix_len,
            a.speaker,
            a.protocol_name(),
            tracks.join(", "),
            a.instance
                .as_ref()
                .map(|i| format!(", while instance {i:?} holds its VIPs"))
                .unwrap_or_default(),
            a.med.map(|m| format!(", MED {m}")).unwrap_or_default(),
            match a.on_fault {
                upkeep_config::OnFault::Demote { med } =>
                    format!(", demoted to MED {med} on a fault"),
                upkeep_config::OnFault::Withdraw => String::new(),
            },
        );
    }
    for (_, note) in cfg.sick_master_notes() {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_env("UPKEEP_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Under systemd (JOURNAL_STREAM set), log to journald with structured fields (instance,
    // vrid, from, to, reason...); elsewhere, plain lines on stderr.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(journald) = tracing_journald::layer() {
            tracing_subscriber::registry()
                .with(filter)
                .with(journald)
                .init();
            return;
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}
