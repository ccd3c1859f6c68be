//! The soak's hosts and the faults it puts on them, one at a time: each fault is applied, held
//! for a drawn time, and healed; the caller then waits for the cluster to settle.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fastrand::Rng;
use upkeep_tests::{upkeep_config, Daemon, Instance, Lab, SIGKILL};

pub(crate) const WEB_VIP: &str = "192.0.2.100";
pub(crate) const EXTRA_VIP: &str = "192.0.2.101";
/// Index of each VIP in [`Holders`].
pub(crate) const WEB: usize = 0;
pub(crate) const EXTRA: usize = 1;

/// What a fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    /// SIGKILL a daemon, restart it later.
    Kill,
    /// SIGTERM a daemon (make-before-break), restart it later.
    Term,
    /// The host's eth0 down, then up.
    LinkDown,
    /// The host's bridge port stops forwarding (links stay up), then forwards again.
    Partition,
    /// Every host drops 20 % of the VRRP it receives (nftables).
    Loss,
    /// Busy loops on every CPU, two per core.
    Starve,
    /// Every host reloads a changed config: an instance added or removed, or a priority changed.
    Reload,
    /// The host's health check fails (weight -30: the master drops below the next host).
    Check,
}

impl Kind {
    pub(crate) const ALL: [Kind; 8] = [
        Kind::Kill,
        Kind::Term,
        Kind::LinkDown,
        Kind::Partition,
        Kind::Loss,
        Kind::Starve,
        Kind::Reload,
        Kind::Check,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Kill => "SIGKILL + restart",
            Kind::Term => "SIGTERM + restart",
            Kind::LinkDown => "link down/up",
            Kind::Partition => "partition + heal",
            Kind::Loss => "20 % VRRP loss",
            Kind::Starve => "CPU starvation",
            Kind::Reload => "config reload",
            Kind::Check => "failing check",
        }
    }

    /// Faults that may split the cluster: two holders are allowed until they heal.
    pub(crate) fn splits(self) -> bool {
        matches!(self, Kind::Partition | Kind::Loss)
    }

    /// Planned moves: the VIP may be unheld for at most one advert interval (else for
    /// Master_Down_Interval).
    pub(crate) fn planned(self) -> bool {
        matches!(self, Kind::Term | Kind::Reload | Kind::Check)
    }
}

/// One host's config, as the reload faults change it.
#[derive(Clone, Debug)]
struct HostConf {
    /// `web`'s priority: the base (100, 90, 80 for h1..h3) or the base + 5.
    web_bumped: bool,
    /// Whether the `extra` instance (VIP .101, h3 highest) is configured.
    extra: bool,
}

/// A daemon and whether it should be running (the sampler reports any other exit).
pub(crate) struct Slot {
    pub(crate) daemon: Option<Daemon>,
    pub(crate) expected_up: bool,
}

/// One fault as applied: what, where, and when it started and healed.
pub(crate) struct Applied {
    pub(crate) kind: Kind,
    pub(crate) host: usize,
    pub(crate) detail: String,
    pub(crate) start: Instant,
    pub(crate) heal: Instant,
}

/// The soak's three hosts, their configs and daemons.
pub(crate) struct Cluster<'a> {
    pub(crate) lab: &'a Lab,
    pub(crate) interval: Duration,
    confs: Vec<HostConf>,
    flags: Vec<PathBuf>,
    pub(crate) slots: Arc<Mutex<Vec<Slot>>>,
}

fn base_priority(host: usize) -> u8 {
    [100, 90, 80][host - 1]
}

impl<'a> Cluster<'a> {
    /// Starts upkeep on every host of `lab` (three hosts).
    pub(crate) fn start(lab: &'a Lab, interval: Duration) -> Result<Cluster<'a>> {
        let hosts = lab.hosts();
        let flags = (1..=hosts)
            .map(|i| lab.dir().join(format!("h{i}.check-fails")))
            .collect();
        let cluster = Cluster {
            lab,
            interval,
            confs: vec![
                HostConf {
                    web_bumped: false,
                    extra: true,
                };
                hosts
            ],
            flags,
            slots: Arc::new(Mutex::new(
                (0..hosts)
                    .map(|_| Slot {
                        daemon: None,
                        expected_up: false,
                    })
                    .collect(),
            )),
        };
        for i in 1..=hosts {
            cluster.restart(i)?;
        }
        Ok(cluster)
    }

    pub(crate) fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn extra_configured(&self) -> bool {
        self.confs.iter().any(|c| c.extra)
    }

    /// The host that should hold each VIP once everything has healed: the highest priority.
    pub(crate) fn expected_holder(&self, vip: usize) -> Option<usize> {
        match vip {
            WEB => (1..=self.confs.len()).max_by_key(|&i| self.web_priority(i)),
            _ => (self.confs.iter().rposition(|c| c.extra)).map(|k| k + 1),
        }
    }

    fn web_priority(&self, host: usize) -> u8 {
        base_priority(host)
            + if self.confs[host - 1].web_bumped {
                5
            } else {
                0
            }
    }

    /// Master_Down_Interval of the slowest backup (lowest priority), with RFC 5798 skew.
    pub(crate) fn master_down_interval(&self) -> Duration {
        let skew = self.interval * (256 - 80) / 256;
        self.interval * 3 + skew
    }

    fn kdl(&self, host: usize) -> String {
        let conf = &self.confs[host - 1];
        let mut web = Instance::new("web", 51, self.web_priority(host))
            .interval(self.interval)
            .vip(&format!("{WEB_VIP}/24"));
        web.extra_kdl.push("track \"svc\"".into());
        let mut instances = vec![web];
        if conf.extra {
            instances.push(
                Instance::new("extra", 52, [80, 90, 100][host - 1])
                    .interval(self.interval)
                    .vip(&format!("{EXTRA_VIP}/24")),
            );
        }
        let mut kdl = upkeep_config(&format!("h{host}"), &instances);
        let _ = write!(
            kdl,
            "check \"svc\" {{\n    script \"test ! -e {}\"\n    interval \"100ms\"\n    \
             timeout \"1s\"\n    fall 1\n    rise 1\n    weight -30\n}}\n",
            self.flags[host - 1].display()
        );
        kdl
    }

    /// (Re)starts host's daemon with its current config.
    fn restart(&self, host: usize) -> Result<()> {
        let d = self.lab.start_upkeep(host, &self.kdl(host))?;
        let mut slots = self.slots();
        slots[host - 1] = Slot {
            daemon: Some(d),
            expected_up: true,
        };
        Ok(())
    }

    /// Restarts every daemon that should run but does not (after a crash the sampler saw).
    pub(crate) fn revive(&self) -> Result<Vec<usize>> {
        let dead: Vec<usize> = self
            .slots()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.daemon.as_ref().is_none_or(|d| !d.is_running()))
            .map(|(k, _)| k + 1)
            .collect();
        for &h in &dead {
            self.restart(h)?;
        }
        Ok(dead)
    }

    fn stop_expected(&self, host: usize) {
        self.slots()[host - 1].expected_up = false;
    }

    /// Draws a target: the host that should hold a VIP most of the time (that is what moves
    /// things), else any host. From the model, not from what is observed, so that a seed
    /// replays the same sequence.
    fn target(&self, rng: &mut Rng) -> usize {
        let vip = if rng.u8(0..4) == 0 && self.extra_configured() {
            EXTRA
        } else {
            WEB
        };
        let master = self.expected_holder(vip);
        match master {
            Some(h) if rng.u8(0..10) < 7 => h,
            _ => rng.usize(1..=self.confs.len()),
        }
    }

    /// Applies a fault of `kind`, holds it, heals it.
    pub(crate) fn apply(&mut self, kind: Kind, rng: &mut Rng) -> Result<Applied> {
        let host = self.target(rng);
        let hold =
            |rng: &mut Rng, lo: f64, hi: f64| Duration::from_secs_f64(lo + (hi - lo) * rng.f64());
        let start = Instant::now();
        let mut detail = String::new();
        match kind {
            Kind::Kill => {
                let wait = hold(rng, 0.5, 3.0);
                self.stop_expected(host);
                self.with_daemon(host, |d| d.signal(SIGKILL))?;
                std::thread::sleep(wait);
                self.restart(host)?;
            }
            Kind::Term => {
                let wait = hold(rng, 0.5, 2.0);
                self.stop_expected(host);
                let t = Instant::now();
                let status = self.with_daemon(host, |d| d.stop(Duration::from_secs(15)))?;
                let _ = write!(detail, "stopped in {:?} ({status})", t.elapsed());
                if !status.success() {
                    bail!("h{host} exited with {status} on SIGTERM");
                }
                std::thread::sleep(wait);
                self.restart(host)?;
            }
            Kind::LinkDown => {
                let wait = hold(rng, 0.5, 3.0);
                self.lab.link_down(host)?;
                std::thread::sleep(wait);
                self.lab.link_up(host)?;
            }
            Kind::Partition => {
                let wait = hold(rng, 1.0, 4.0);
                self.lab.set_port_forwarding(host, false)?;
                std::thread::sleep(wait);
                self.lab.set_port_forwarding(host, true)?;
            }
            Kind::Loss => {
                let wait = hold(rng, 5.0, 15.0);
                for i in 1..=self.confs.len() {
                    self.lab.nft_vrrp_loss(i, 20)?;
                }
                std::thread::sleep(wait);
                for i in 1..=self.confs.len() {
                    self.lab.nft_clear(i)?;
                }
            }
            Kind::Starve => {
                let wait = hold(rng, 2.0, 6.0);
                let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
                let loops = self.lab.busy_loops(host, 2 * cpus)?;
                std::thread::sleep(wait);
                drop(loops);
            }
            Kind::Reload => {
                if rng.bool() {
                    let on = !self.extra_configured();
                    for c in &mut self.confs {
                        c.extra = on;
                    }
                    detail = format!("extra {}", if on { "added" } else { "removed" });
                    let mut order: Vec<usize> = (1..=self.confs.len()).collect();
                    rng.shuffle(&mut order);
                    for h in order {
                        self.reload(h)?;
                    }
                } else {
                    let c = &mut self.confs[host - 1];
                    c.web_bumped = !c.web_bumped;
                    detail = format!("web priority {}", self.web_priority(host));
                    self.reload(host)?;
                }
            }
            Kind::Check => {
                let wait = hold(rng, 1.0, 4.0);
                let flag = &self.flags[host - 1];
                fs::write(flag, b"").with_context(|| format!("write {}", flag.display()))?;
                std::thread::sleep(wait);
                fs::remove_file(flag).with_context(|| format!("remove {}", flag.display()))?;
            }
        }
        Ok(Applied {
            kind,
            host,
            detail,
            start,
            heal: Instant::now(),
        })
    }

    /// Writes host's config and reloads it (SIGHUP), waiting until the daemon says it applied.
    fn reload(&self, host: usize) -> Result<()> {
        let kdl = self.kdl(host);
        self.with_daemon(host, |d| {
            let seq = d.reload_seq().unwrap_or(0);
            d.write_config(&kdl)?;
            d.signal(upkeep_tests::SIGHUP)?;
            let r = d.wait_reload(seq, Duration::from_secs(10))?;
            if r["result"] == "refused" {
                bail!("h{host} refused the reload: {r}");
            }
            Ok(())
        })
    }

    fn with_daemon<T>(&self, host: usize, f: impl FnOnce(&Daemon) -> Result<T>) -> Result<T> {
        let slots = self.slots();
        let d = slots[host - 1]
            .daemon
            .as_ref()
            .with_context(|| format!("h{host} has no daemon"))?;
        f(d)
    }

    /// Stops every daemon (SIGTERM); returns the ones that did not exit cleanly.
    pub(crate) fn stop_all(&self) -> Vec<String> {
        let mut bad = Vec::new();
        for h in 1..=self.confs.len() {
            self.stop_expected(h);
            if let Err(e) = self.with_daemon(h, |d| {
                let st = d.stop(Duration::from_secs(15))?;
                if !st.success() {
                    bail!("exit {st}");
                }
                Ok(())
            }) {
                bad.push(format!("h{h}: {e:#}"));
            }
        }
        bad
    }
}
