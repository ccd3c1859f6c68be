//! The `upkeep` command line: run the daemon, check a config, import a keepalived config.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

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
    /// Translate a keepalived.conf into upkeep's KDL on stdout; what cannot be translated is
    /// listed on stderr with its line.
    ImportKeepalived { file: PathBuf },
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
        Command::Check { config } => match upkeep::config::load(&config) {
            Ok(cfg) => {
                print!("{}", summary(&cfg));
                println!("{}: OK", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{:?}", miette::Report::new(e));
                ExitCode::FAILURE
            }
        },
        Command::ImportKeepalived { file } => {
            match upkeep::config::import::import_keepalived(&file) {
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
            }
        }
    }
}

/// One line per instance and check, as `keepalived -t` users expect to see what was understood.
fn summary(cfg: &upkeep::config::Config) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for i in &cfg.instances {
        let vips: Vec<String> = i
            .vips
            .iter()
            .map(|v| format!("{}/{}", v.addr, v.prefix_len))
            .collect();
        let _ = writeln!(
            out,
            "instance {:?}: {} vrid {} priority {} {:?} advert {:?}{} vips [{}]{}",
            i.name,
            i.interface,
            i.vrid,
            i.priority,
            i.version,
            i.advert_interval,
            if i.preempt { "" } else { " nopreempt" },
            vips.join(", "),
            if i.unicast_peers.is_empty() {
                String::new()
            } else {
                format!(" unicast peers {:?}", i.unicast_peers)
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
    out
}

fn init_logging() {
    let filter = EnvFilter::try_from_env("UPKEEP_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}
