//! The scenarios of issue 6, each run on a fresh harness lab with keepalived or upkeep on every
//! host, both configured from the same [`Instance`] values.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use upkeep_tests::{
    kdl_duration, keepalived_config, replace_file, upkeep_config, AddrMonitor, Daemon, Instance,
    Lab, PingReport, Pinger, SIGHUP, SIGKILL, SIGTERM,
};

use crate::measure::{
    cpu_pct, lost_after, outage_after, CpuMeter, Service, TcpProber, Trace, Usage,
};

/// The VIP of the (first) instance.
pub(crate) const VIP: &str = "192.0.2.100";
/// The VIP of the instance the reload scenario adds.
const NEW_VIP: &str = "203.0.113.7";
/// ICMP probe interval (the client pings the VIP this often).
const PING_EVERY: Duration = Duration::from_millis(2);
/// TCP connect probe interval for the failed-check scenario (as the reference lab).
const CONNECT_EVERY: Duration = Duration::from_millis(5);
/// How long the client probes before the event, and after the VIP has moved.
const LEAD_IN: Duration = Duration::from_secs(1);
const TAIL: Duration = Duration::from_secs(1);
/// The check script of the reference lab (../shared/lab/check_port80.sh).
const CHECK_SCRIPT: &str =
    "# healthy when something listens on TCP port 80\nss -Htln 'sport = :80' | grep -q .";

/// Who runs on the lab's hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Contender {
    Keepalived,
    /// upkeep; with a check, a script check (the same script keepalived runs).
    Upkeep,
    /// upkeep with the WASM port-listener plugin as its check.
    UpkeepWasm,
    /// upkeep with a native `listener` check (event-driven: socket-destroy notifications).
    UpkeepListener,
}

impl Contender {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Contender::Keepalived => "keepalived",
            Contender::Upkeep => "upkeep",
            Contender::UpkeepWasm => "upkeep (WASM check)",
            Contender::UpkeepListener => "upkeep (listener check)",
        }
    }

    pub(crate) fn is_upkeep(self) -> bool {
        self != Contender::Keepalived
    }
}

/// What a metric's upkeep/keepalived ratio should be (issue 6's "Done when").
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Goal {
    /// upkeep's median at most this fraction of keepalived's.
    Ratio(f64),
    /// upkeep's median (and max) must be 0.
    Zero,
    /// Reported for context; no goal.
    Info,
}

#[derive(Clone, Debug)]
pub(crate) struct MetricDef {
    pub key: &'static str,
    pub label: &'static str,
    pub decimals: usize,
    pub goal: Goal,
    /// The finest difference one run can show, in the metric's unit (the client's probe
    /// interval, the harness's poll interval); 0 for exact counters. Medians closer than this
    /// are a tie: an "at or below" goal (ratio 1.0) is met by a tie.
    pub resolution: f64,
    /// What `resolution` is, for the report.
    pub resolution_is: &'static str,
}

pub(crate) const fn metric(
    key: &'static str,
    label: &'static str,
    decimals: usize,
    goal: Goal,
) -> MetricDef {
    MetricDef {
        key,
        label,
        decimals,
        goal,
        resolution: 0.0,
        resolution_is: "",
    }
}

impl MetricDef {
    /// The unit, from the label ("client outage, ms" -> "ms").
    pub(crate) fn unit(&self) -> &'static str {
        self.label.rsplit_once(", ").map_or("", |(_, unit)| unit)
    }

    pub(crate) const fn resolution(mut self, resolution: f64, what: &'static str) -> Self {
        self.resolution = resolution;
        self.resolution_is = what;
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Event {
    /// SIGTERM to the master.
    Graceful,
    /// SIGKILL to the master's process group, then its link down.
    Crash,
    /// The master's port-80 service dies; its check fails.
    CheckFails,
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Failover {
        version: u8,
        advert: Duration,
        event: Event,
    },
    Reload,
    Scale {
        instances: usize,
        /// Interfaces the instances are spread over (eth0, then eth1.. on networks of their own).
        interfaces: usize,
        version: u8,
        advert: Duration,
    },
    CheckCpu,
}

#[derive(Clone, Debug)]
pub(crate) struct Scenario {
    pub name: &'static str,
    /// Short title for the plot and the table.
    pub title: &'static str,
    /// What is done and measured, for RESULTS.md.
    pub what: &'static str,
    pub contenders: Vec<Contender>,
    pub metrics: Vec<MetricDef>,
    /// upkeep variants measured for context only: their rows get no goal.
    pub no_goal: Vec<Contender>,
    /// A goal of its own for one upkeep variant's metric (by key), instead of the metric's.
    pub goal_for: Vec<(Contender, &'static str, Goal)>,
    pub kind: Kind,
}

impl Scenario {
    /// Whether the hosts run a health check.
    pub(crate) fn has_check(&self) -> bool {
        matches!(
            self.kind,
            Kind::CheckCpu
                | Kind::Failover {
                    event: Event::CheckFails,
                    ..
                }
        )
    }

    /// `c`'s name in this scenario: plain upkeep runs a script check where there is one.
    pub(crate) fn label(&self, c: Contender) -> &'static str {
        match c {
            Contender::Upkeep if self.has_check() => "upkeep (script check)",
            _ => c.label(),
        }
    }

    /// Metric `m` as judged for contender `c`: with `c`'s own goal where it has one.
    pub(crate) fn metric_for(&self, m: &MetricDef, c: Contender) -> MetricDef {
        let mut m = m.clone();
        if let Some((_, _, g)) = self
            .goal_for
            .iter()
            .find(|(gc, k, _)| *gc == c && *k == m.key)
        {
            m.goal = *g;
        }
        m
    }

    pub(crate) fn needs_plugin(&self) -> bool {
        self.contenders.contains(&Contender::UpkeepWasm)
    }

    /// The metric whose median run is the one plotted, and shown in its legend: the client's
    /// outage (or lost pings) where there is one.
    pub(crate) fn trace_metric(&self) -> &MetricDef {
        self.metrics
            .iter()
            .find(|m| m.key == "outage_ms" || m.key == "lost")
            .unwrap_or(&self.metrics[0])
    }
}

/// One run's numbers (by metric key) and the client's view.
#[derive(Clone, Debug, Default)]
pub(crate) struct Outcome {
    pub values: Vec<(&'static str, f64)>,
    pub trace: Option<Trace>,
}

impl Outcome {
    pub(crate) fn get(&self, key: &str) -> Option<f64> {
        self.values.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Opts {
    /// The CPU / RSS sampling window.
    pub window: Duration,
}

pub(crate) fn all() -> Vec<Scenario> {
    use Contender::*;
    let k_u = vec![Keepalived, Upkeep];
    let outage = |goal, event| {
        let m = metric("outage_ms", "client outage, ms", 0, goal);
        match event {
            Event::CheckFails => m.resolution(5.0, "the client's 5 ms TCP connects"),
            _ => m.resolution(2.0, "the client's 2 ms pings"),
        }
    };
    let takeover = metric("takeover_ms", "VIP on the backup after, ms", 0, Goal::Info)
        .resolution(1.0, "the 1 ms poll of `ip monitor`");
    let failover = |name, title, what, version, advert_ms, event, goal| Scenario {
        name,
        title,
        what,
        contenders: k_u.clone(),
        metrics: vec![outage(goal, event), takeover.clone()],
        no_goal: vec![],
        goal_for: vec![],
        kind: Kind::Failover {
            version,
            advert: Duration::from_millis(advert_ms),
            event,
        },
    };
    let scale = |name, title, what, instances, interfaces| Scenario {
        name,
        title,
        what,
        contenders: k_u.clone(),
        metrics: vec![
            metric("converge_s", "converge, s", 2, Goal::Ratio(1.0))
                .resolution(0.002, "the 2 ms poll of `ip monitor`"),
            metric("cpu_master", "master CPU, %", 2, Goal::Ratio(1.0)),
            metric("rss_master", "master RSS, MiB", 1, Goal::Ratio(1.0)),
            metric(
                "all_moved_s",
                "all VIPs moved after SIGTERM, s",
                2,
                Goal::Ratio(1.0),
            )
            .resolution(0.002, "the 2 ms poll of `ip monitor`"),
            metric("cpu_backup", "backup CPU, %", 2, Goal::Info),
            metric("outage_ms", "client outage (first VIP), ms", 0, Goal::Info)
                .resolution(2.0, "the client's 2 ms pings"),
        ],
        no_goal: vec![],
        goal_for: vec![],
        kind: Kind::Scale {
            instances,
            interfaces,
            version: 2,
            advert: Duration::from_secs(1),
        },
    };
    vec![
        failover(
            "graceful",
            "graceful stop, v2, advert 1 s",
            "SIGTERM to the master (h1, priority 190; backup h2, 180); outage = longest gap in the \
             client's 2 ms pings to the VIP from the signal on.",
            2,
            1000,
            Event::Graceful,
            Goal::Ratio(0.10),
        ),
        failover(
            "crash",
            "crash, v2, advert 1 s",
            "SIGKILL to the master's process group, then its eth0 down, right after the backup \
             has received an advert from it (so that every run is at the same point of the \
             advert cycle); outage as for graceful.",
            2,
            1000,
            Event::Crash,
            Goal::Ratio(1.0),
        ),
        Scenario {
            name: "check",
            title: "failed check, v2, advert 1 s",
            what: "Every host serves TCP port 80 and tracks it with a check (interval 1 s, fall 1, \
                   rise 1, weight -100): keepalived a vrrp_script running check_port80.sh (ss); \
                   upkeep the same script as a `script` check, the WASM port-listener plugin, \
                   or a native `listener 80` check (event-driven; issue 18's goal for it: \
                   ≤ 0.05 of keepalived's outage). The master's port-80 listener closes; \
                   outage = longest gap in the client's TCP connects to VIP:80 every 5 ms.",
            contenders: vec![Keepalived, Upkeep, UpkeepWasm, UpkeepListener],
            metrics: vec![outage(Goal::Ratio(0.35), Event::CheckFails), takeover.clone()],
            no_goal: vec![],
            goal_for: vec![(UpkeepListener, "outage_ms", Goal::Ratio(0.05))],
            kind: Kind::Failover {
                version: 2,
                advert: Duration::from_secs(1),
                event: Event::CheckFails,
            },
        },
        failover(
            "graceful-v3",
            "graceful stop, v3, advert 0.1 s",
            "As graceful, VRRPv3 with 100 ms adverts.",
            3,
            100,
            Event::Graceful,
            Goal::Ratio(1.0),
        ),
        failover(
            "crash-v3",
            "crash, v3, advert 0.1 s",
            "As crash, VRRPv3 with 100 ms adverts.",
            3,
            100,
            Event::Crash,
            Goal::Ratio(1.0),
        ),
        Scenario {
            name: "reload",
            title: "reload adding an instance, v2, advert 1 s",
            what: "Both hosts' configs gain an instance (VRID 201, VIP 203.0.113.7) and are \
                   reloaded (keepalived: SIGHUP; upkeep: the config file replaced, which it \
                   watches). Lost pings of the existing VIP and its address events (`ip monitor \
                   address` on both hosts) must be 0.",
            contenders: k_u.clone(),
            metrics: vec![
                metric("lost", "lost pings", 0, Goal::Zero),
                metric("vip_events", "address events on the existing VIP", 0, Goal::Zero),
                metric("new_up_s", "new instance's VIP up after, s", 2, Goal::Info),
            ],
            no_goal: vec![],
            goal_for: vec![],
            kind: Kind::Reload,
        },
        scale(
            "scale-100",
            "100 instances, v2, advert 1 s",
            "100 instances on eth0 (VRIDs 1..100), both hosts started together: converge = from \
             the start until h1 holds every VIP and h2 none; CPU % (user + system, children included) of each \
             daemon's process group and the master's RSS over the window; then SIGTERM to the \
             master and the time until h2 holds every VIP.",
            100,
            1,
        ),
        scale(
            "scale-255",
            "255 instances, v2, advert 1 s",
            "As scale-100 with 255 instances (VRIDs 1..255).",
            255,
            1,
        ),
        Scenario {
            kind: Kind::Scale {
                instances: 255,
                interfaces: 1,
                version: 3,
                advert: Duration::from_millis(10),
            },
            ..scale(
                "scale-255-10ms",
                "255 instances, v3, advert 10 ms",
                "As scale-255 with VRRPv3 and 10 ms adverts: 25,500 adverts a second from the \
                 master, the receive path's cost at scale (issue 19 item 6's goal: master CPU \
                 <= 5 %).",
                255,
                1,
            )
        },
        scale(
            "scale-255-4if",
            "255 instances on 4 interfaces, v2, advert 1 s",
            "As scale-255, the instances spread over four interfaces: eth0 and three more veth \
             links (eth1..eth3, each on a bridge and a 203.0.113.0/26 network of its own); \
             instance n on eth(n mod 4), the first (the client's VIP) on eth0.",
            255,
            4,
        ),
        failover(
            "crash-v3-10ms",
            "crash, v3, advert 10 ms",
            "As crash, VRRPv3 with 10 ms adverts.",
            3,
            10,
            Event::Crash,
            Goal::Ratio(1.0),
        ),
        Scenario {
            name: "check-cpu",
            title: "check CPU cost",
            what: "One host, one instance (v2, 1 s), a port-80 listener and a check on it: \
                   keepalived's vrrp_script (check_port80.sh) every 1 s against upkeep's WASM \
                   port-listener plugin every 100 ms (the goal), and, for context, upkeep \
                   running the same script every 1 s. CPU % (user + system of every thread and \
                   child, so the scripts count) of the daemon over the window.",
            contenders: vec![Keepalived, UpkeepWasm, Upkeep],
            metrics: vec![
                metric("cpu", "daemon CPU, %", 2, Goal::Ratio(1.0)),
                metric("rss", "daemon RSS, MiB", 1, Goal::Info),
            ],
            no_goal: vec![Upkeep],
            goal_for: vec![],
            kind: Kind::CheckCpu,
        },
    ]
}

/// Runs one repetition of `s` with `c` on every host.
/// On failure the lab's diagnostics (daemon log tails, addresses) go to stderr.
pub(crate) fn run(s: &Scenario, c: Contender, opts: &Opts) -> Result<Outcome> {
    let hosts = match s.kind {
        Kind::CheckCpu => 1,
        _ => 2,
    };
    let lab = Lab::builder().hosts(hosts).ipv6(false).build()?;
    let res = match &s.kind {
        Kind::Failover {
            version,
            advert,
            event,
        } => failover(&lab, c, *version, *advert, *event),
        Kind::Reload => reload(&lab, c),
        Kind::Scale {
            instances,
            interfaces,
            version,
            advert,
        } => scale(&lab, c, *instances, *interfaces, *version, *advert, opts),
        Kind::CheckCpu => check_cpu(&lab, c, opts),
    };
    if let Err(e) = &res {
        let diag = lab.diagnostics();
        let lines: Vec<&str> = diag.lines().collect();
        eprintln!(
            "{} {} failed: {e:#}\n{}",
            s.name,
            s.label(c),
            lines[lines.len().saturating_sub(80)..].join("\n")
        );
    }
    res
}

/// Host i's priority, as in the reference lab: h1 190, h2 180.
fn prio(host: usize) -> u8 {
    (200 - 10 * host) as u8
}

fn web(host: usize, version: u8, advert: Duration) -> Instance {
    Instance::new("VI_1", 51, prio(host))
        .version(version)
        .interval(advert)
        .vip(&format!("{VIP}/24"))
}

/// The check every instance tracks, as each daemon spells it.
enum Check {
    None,
    Script { path: PathBuf, interval: Duration },
    Wasm { path: PathBuf, interval: Duration },
    Listener { interval: Duration },
}

impl Check {
    /// The port-80 check for `c`: a script for keepalived and [`Contender::Upkeep`], the
    /// plugin for [`Contender::UpkeepWasm`], at `interval` (whole seconds for keepalived).
    fn port80(lab: &Lab, c: Contender, interval: Duration) -> Result<Check> {
        Ok(match c {
            Contender::Keepalived | Contender::Upkeep => Check::Script {
                path: lab.write_script("check_port80.sh", CHECK_SCRIPT)?,
                interval,
            },
            Contender::UpkeepWasm => Check::Wasm {
                path: lab.copy_plugin("port-listener", "port-listener.wasm")?,
                interval,
            },
            Contender::UpkeepListener => Check::Listener { interval },
        })
    }

    fn kdl(&self) -> String {
        let (kind, interval) = match self {
            Check::None => return String::new(),
            Check::Script { path, interval } => (format!("script {:?}", path.display().to_string()), interval),
            Check::Wasm { path, interval } => (
                format!(
                    "plugin {:?}\n    config port=\"80\"\n    allow \"listening-sockets\"\n    allow \"log\"",
                    path.display().to_string()
                ),
                interval,
            ),
            Check::Listener { interval } => ("listener 80".to_owned(), interval),
        };
        let every = kdl_duration(*interval);
        if let Check::Listener { .. } = self {
            // No timeout: a listener check runs nothing.
            return format!(
                "check \"port80\" {{\n    {kind}\n    interval {every:?}\n    fall 1\n    \
                 rise 1\n    weight -100\n}}\n"
            );
        }
        format!(
            "check \"port80\" {{\n    {kind}\n    interval {every:?}\n    timeout {every:?}\n    \
             fall 1\n    rise 1\n    weight -100\n}}\n"
        )
    }

    fn keepalived(&self) -> Result<String> {
        match self {
            Check::None => Ok(String::new()),
            Check::Script { path, interval } => {
                let secs = interval.as_secs().max(1);
                Ok(format!(
                    "vrrp_script chk_port80 {{\n    script \"{}\"\n    interval {secs}\n    \
                     timeout {secs}\n    fall 1\n    rise 1\n    weight -100\n}}\n",
                    path.display()
                ))
            }
            Check::Wasm { .. } => bail!("keepalived has no WASM checks"),
            Check::Listener { .. } => bail!("keepalived has no listener checks"),
        }
    }

    fn is_some(&self) -> bool {
        !matches!(self, Check::None)
    }
}

/// Starts `c` on host i with `instances`, each tracking `check` if there is one.
fn start(
    lab: &Lab,
    c: Contender,
    i: usize,
    instances: &[Instance],
    check: &Check,
) -> Result<Daemon> {
    let router = format!("h{i}");
    let mut instances = instances.to_vec();
    if check.is_some() {
        for inst in &mut instances {
            inst.extra_kdl.push("track \"port80\"".into());
            inst.extra_keepalived
                .push("track_script {\n        chk_port80\n    }".into());
        }
    }
    if c.is_upkeep() {
        let kdl = format!("{}{}", check.kdl(), upkeep_config(&router, &instances));
        lab.start_upkeep(i, &kdl)
    } else {
        lab.start_keepalived(i, &keepalived_conf(&router, &instances, check)?)
    }
}

fn keepalived_conf(router: &str, instances: &[Instance], check: &Check) -> Result<String> {
    let mut conf = keepalived_config(router, instances);
    if check.is_some() {
        // As the reference lab: scripts run as root, with keepalived's script security on.
        let head = "global_defs {\n";
        ensure!(
            conf.starts_with(head),
            "unexpected keepalived.conf layout:\n{conf}"
        );
        conf.insert_str(
            head.len(),
            "    script_user root\n    enable_script_security\n",
        );
        let end = conf.find("}\n").context("global_defs end")? + 2;
        conf.insert_str(end, &check.keepalived()?);
    }
    Ok(conf)
}

/// Polls `pred` every `every` until it holds; how long that took, or `None` after `timeout`.
/// (Times that count from an event take `event.elapsed()` on success instead.)
fn poll(timeout: Duration, every: Duration, mut pred: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if pred() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// How long a backup may take to notice a dead master, with room to spare.
fn failover_timeout(advert: Duration) -> Duration {
    advert * 10 + Duration::from_secs(5)
}

/// The client's probes: ICMP to the VIP (the harness's pinger) or TCP connects to VIP:80.
enum Client {
    Icmp(Pinger, Instant),
    Tcp(TcpProber),
}

impl Client {
    fn icmp(lab: &Lab) -> Result<Client> {
        let start = Instant::now();
        Ok(Client::Icmp(lab.start_pinger(VIP, PING_EVERY)?, start))
    }

    fn tcp(lab: &Lab) -> Result<Client> {
        let addr = SocketAddr::new(IpAddr::V4(VIP.parse::<Ipv4Addr>()?), 80);
        Ok(Client::Tcp(TcpProber::start(lab, addr, CONNECT_EVERY)?))
    }

    /// Stops probing; the report and the instant its send times count from.
    fn stop(self) -> Result<(PingReport, Instant)> {
        match self {
            Client::Icmp(p, start) => Ok((p.stop()?, start)),
            Client::Tcp(p) => {
                let start = p.start_instant();
                Ok((p.stop()?, start))
            }
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn failover(
    lab: &Lab,
    c: Contender,
    version: u8,
    advert: Duration,
    event: Event,
) -> Result<Outcome> {
    let mut services = Vec::new();
    let check = if event == Event::CheckFails {
        for i in 1..=2 {
            services.push(Service::start(lab, i, 80)?);
        }
        Check::port80(lab, c, Duration::from_secs(1))?
    } else {
        Check::None
    };
    let daemons = (1..=2)
        .map(|i| start(lab, c, i, &[web(i, version, advert)], &check))
        .collect::<Result<Vec<_>>>()?;
    lab.wait_holders(VIP, &[1], failover_timeout(advert))
        .context("initial election: h1 should hold the VIP")?;
    // Let the backup hear a few adverts (and the checks run a few times).
    std::thread::sleep((advert * 2).max(Duration::from_secs(2)));
    lab.wait_holders(VIP, &[1], Duration::from_secs(1))?;

    let mon = lab.start_addr_monitor(2)?;
    let cap = lab.start_capture(2)?;
    let client = if event == Event::CheckFails {
        Client::tcp(lab)?
    } else {
        Client::icmp(lab)?
    };
    std::thread::sleep(LEAD_IN);
    let mut t0 = Instant::now();
    match event {
        Event::Graceful => daemons[0].signal(SIGTERM)?,
        Event::Crash => {
            // Right after h2 has heard an advert from h1: every run, and both daemons, crash
            // at the same point of the advert cycle, so the outage is the backup's
            // Master_Down_Interval and its reaction, not that plus a random phase.
            let heard = || {
                cap.packets()
                    .iter()
                    .filter(|p| !p.outgoing && p.src.to_string() == "192.0.2.1")
                    .count()
            };
            let n = heard();
            poll(advert * 3, Duration::from_micros(200), || heard() > n)
                .context("h2 heard no advert from h1 before the crash")?;
            t0 = Instant::now();
            daemons[0].signal(SIGKILL)?;
            lab.link_down(1)?;
        }
        Event::CheckFails => services.remove(0).kill(),
    }
    drop(cap);
    let takeover = poll(failover_timeout(advert), Duration::from_millis(1), || {
        held(&mon).contains(VIP)
    })
    .map(|_| t0.elapsed());
    std::thread::sleep(TAIL);
    ensure!(
        lab.has_addr(2, VIP),
        "h2 does not hold the VIP after the failover"
    );
    let (report, start) = client.stop()?;
    let outage = outage_after(&report, start, t0);
    let Some(takeover) = takeover else {
        bail!(
            "h2 never took the VIP ({:?} after the event; client outage {:.0} ms so far)",
            failover_timeout(advert),
            ms(outage)
        );
    };
    Ok(Outcome {
        values: vec![("outage_ms", ms(outage)), ("takeover_ms", ms(takeover))],
        trace: Some(Trace::new(&report, start, t0)),
    })
}

fn reload(lab: &Lab, c: Contender) -> Result<Outcome> {
    let advert = Duration::from_secs(1);
    let daemons = (1..=2)
        .map(|i| start(lab, c, i, &[web(i, 2, advert)], &Check::None))
        .collect::<Result<Vec<_>>>()?;
    lab.wait_holders(VIP, &[1], failover_timeout(advert))
        .context("initial election: h1 should hold the VIP")?;
    std::thread::sleep(advert * 2);
    let monitors = [lab.start_addr_monitor(1)?, lab.start_addr_monitor(2)?];
    let client = Client::icmp(lab)?;
    std::thread::sleep(LEAD_IN);

    let t0 = Instant::now();
    for (k, d) in daemons.iter().enumerate() {
        let i = k + 1;
        let instances = [
            web(i, 2, advert),
            Instance::new("VI_EXTRA", 201, prio(i))
                .version(2)
                .interval(advert)
                .vip(&format!("{NEW_VIP}/24")),
        ];
        let router = format!("h{i}");
        if c.is_upkeep() {
            d.write_config(&upkeep_config(&router, &instances))?;
        } else {
            let conf = keepalived_conf(&router, &instances, &Check::None)?;
            replace_file(d.config_path(), conf.as_bytes(), 0o644)?;
            d.signal(SIGHUP)?;
        }
    }
    let up = poll(failover_timeout(advert), Duration::from_millis(10), || {
        lab.has_addr(1, NEW_VIP)
    })
    .map(|_| t0.elapsed());
    std::thread::sleep(TAIL);
    let (report, start) = client.stop()?;
    let events: usize = monitors
        .into_iter()
        .map(|m| {
            m.stop()
                .iter()
                .filter(|l| l.contains(&format!(" {VIP}/")))
                .count()
        })
        .sum();
    let Some(up) = up else {
        bail!("the new instance's VIP never came up on h1");
    };
    ensure!(
        lab.holders(VIP) == [1],
        "after the reload the VIP is on {:?}",
        lab.holders(VIP)
    );
    Ok(Outcome {
        values: vec![
            ("lost", lost_after(&report, start, t0) as f64),
            ("vip_events", events as f64),
            ("new_up_s", up.as_secs_f64()),
        ],
        trace: Some(Trace::new(&report, start, t0)),
    })
}

/// The instances' VIPs (the first instance's, 198.51.100.x) that a host's address events
/// have added and not deleted since its monitor started. Reading the monitor, unlike polling
/// `ip addr`, starts no process while a failover is being measured, and sees each change within
/// a millisecond.
fn held(mon: &AddrMonitor) -> HashSet<String> {
    held_after(&mon.events())
}

fn held_after(events: &[String]) -> HashSet<String> {
    let mut held = HashSet::new();
    for line in events {
        let mut words = line.split_whitespace();
        let Some(addr) = words
            .by_ref()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .and_then(|a| a.split('/').next())
        else {
            continue;
        };
        if addr != VIP && !addr.starts_with("198.51.100.") {
            continue;
        }
        if line.starts_with("Deleted") {
            held.remove(addr);
        } else {
            held.insert(addr.to_string());
        }
    }
    held
}

/// The instances' VIPs host i holds.
/// The bench's VIPs host i holds, on any interface.
fn count_vips(lab: &Lab, i: usize) -> usize {
    let vip: IpAddr = VIP.parse().expect("VIP");
    let out = lab
        .ip(&lab.host_ns(i), &["-o", "-4", "addr", "show"])
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().skip_while(|w| *w != "inet");
            w.nth(1)?.split('/').next()?.parse::<IpAddr>().ok()
        })
        .filter(|a| match a {
            IpAddr::V4(v4) => *a == vip || v4.octets()[..3] == [198, 51, 100],
            IpAddr::V6(_) => false,
        })
        .count()
}

fn scale(
    lab: &Lab,
    c: Contender,
    k: usize,
    interfaces: usize,
    version: u8,
    advert: Duration,
    opts: &Opts,
) -> Result<Outcome> {
    ensure!((1..=255).contains(&k), "1..=255 instances, not {k}");
    ensure!(
        (1..=4).contains(&interfaces),
        "1..=4 interfaces, not {interfaces}"
    );
    for j in 1..interfaces {
        lab.add_network(j)?;
    }
    let instances = |i: usize| -> Vec<Instance> {
        (0..k)
            .map(|n| {
                let vip = if n == 0 {
                    format!("{VIP}/24")
                } else {
                    format!("198.51.100.{n}/24")
                };
                let mut inst = Instance::new(&format!("VI_{}", n + 1), (n + 1) as u8, prio(i));
                inst.interface = format!("eth{}", n % interfaces);
                inst.version(version).interval(advert).vip(&vip)
            })
            .collect()
    };
    let watch = [lab.start_addr_monitor(1)?, lab.start_addr_monitor(2)?];
    let t_start = Instant::now();
    let daemons = (1..=2)
        .map(|i| start(lab, c, i, &instances(i), &Check::None))
        .collect::<Result<Vec<_>>>()?;
    let converge = poll(Duration::from_secs(60), Duration::from_millis(2), || {
        held(&watch[0]).len() == k && held(&watch[1]).is_empty()
    })
    .map(|_| t_start.elapsed());
    drop(watch);
    let Some(converge) = converge else {
        bail!(
            "no convergence in 60 s: h1 holds {} of {k} VIPs, h2 {}",
            count_vips(lab, 1),
            count_vips(lab, 2)
        );
    };
    std::thread::sleep(Duration::from_secs(2));
    ensure!(
        count_vips(lab, 1) == k && count_vips(lab, 2) == 0,
        "not converged after all: h1 holds {} of {k} VIPs, h2 {}",
        count_vips(lab, 1),
        count_vips(lab, 2)
    );
    let meters = [
        CpuMeter::attach(daemons[0].pid())?,
        CpuMeter::attach(daemons[1].pid())?,
    ];
    let sample = || -> Result<[Usage; 2]> { Ok([meters[0].sample()?, meters[1].sample()?]) };
    let before = sample()?;
    std::thread::sleep(opts.window);
    let after = sample()?;
    ensure!(
        count_vips(lab, 1) == k && count_vips(lab, 2) == 0,
        "VIPs moved during the CPU window: h1 {}, h2 {}",
        count_vips(lab, 1),
        count_vips(lab, 2)
    );

    let mon = lab.start_addr_monitor(2)?;
    let client = Client::icmp(lab)?;
    std::thread::sleep(LEAD_IN);
    let t0 = Instant::now();
    daemons[0].signal(SIGTERM)?;
    let moved = poll(Duration::from_secs(30), Duration::from_millis(2), || {
        held(&mon).len() >= k
    })
    .map(|_| t0.elapsed());
    std::thread::sleep(TAIL);
    ensure!(
        count_vips(lab, 2) == k,
        "h2 holds {} of {k} VIPs after the failover",
        count_vips(lab, 2)
    );
    let (report, start) = client.stop()?;
    let Some(moved) = moved else {
        bail!(
            "after SIGTERM of the master, h2 holds only {} of {k} VIPs after 30 s",
            count_vips(lab, 2)
        );
    };
    Ok(Outcome {
        values: vec![
            ("converge_s", converge.as_secs_f64()),
            ("cpu_master", cpu_pct(before[0], after[0], opts.window)),
            ("rss_master", after[0].rss_kib as f64 / 1024.0),
            ("all_moved_s", moved.as_secs_f64()),
            ("cpu_backup", cpu_pct(before[1], after[1], opts.window)),
            ("outage_ms", ms(outage_after(&report, start, t0))),
        ],
        trace: Some(Trace::new(&report, start, t0)),
    })
}

fn check_cpu(lab: &Lab, c: Contender, opts: &Opts) -> Result<Outcome> {
    let advert = Duration::from_secs(1);
    let interval = match c {
        Contender::Keepalived | Contender::Upkeep => Duration::from_secs(1),
        Contender::UpkeepWasm => Duration::from_millis(100),
        Contender::UpkeepListener => Duration::from_secs(1),
    };
    let _service = Service::start(lab, 1, 80)?;
    let check = Check::port80(lab, c, interval)?;
    let d = start(lab, c, 1, &[web(1, 2, advert)], &check)?;
    lab.wait_holders(VIP, &[1], failover_timeout(advert))
        .context("h1 should become master")?;
    std::thread::sleep(Duration::from_secs(2));
    let runs_before = check_runs(&d)?;
    let meter = CpuMeter::attach(d.pid())?;
    let before = meter.sample()?;
    std::thread::sleep(opts.window);
    let after = meter.sample()?;
    if let (Some(r0), Some(r1)) = (runs_before, check_runs(&d)?) {
        // The check really ran at its interval, healthy, and the VIP stayed.
        let expected = opts.window.as_secs_f64() / interval.as_secs_f64();
        ensure!(
            (r1 - r0) as f64 >= expected * 0.8,
            "{d}: the check ran {} times in {:?}, expected about {expected:.0}",
            r1 - r0,
            opts.window
        );
        ensure!(
            d.check("port80")?["healthy"] == true,
            "{d}: check unhealthy"
        );
    }
    ensure!(lab.holders(VIP) == [1], "h1 lost the VIP during the window");
    Ok(Outcome {
        values: vec![
            ("cpu", cpu_pct(before, after, opts.window)),
            ("rss", after.rss_kib as f64 / 1024.0),
        ],
        trace: None,
    })
}

/// How many times upkeep's check "port80" has run (None for keepalived).
fn check_runs(d: &Daemon) -> Result<Option<u64>> {
    if d.state_dir().is_none() {
        return Ok(None);
    }
    Ok(d.check("port80")?["runs"].as_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_metrics_known() {
        let all = all();
        let mut names: Vec<_> = all.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert!(all
            .iter()
            .all(|s| !s.metrics.is_empty() && s.contenders[0] == Contender::Keepalived));
    }

    #[test]
    fn vips_from_address_events() {
        let ev = |s: &str| s.to_string();
        let events = [
            ev("3: eth0    inet 192.0.2.100/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever"),
            ev("3: eth0    inet 198.51.100.1/24 scope global eth0\\       valid_lft forever"),
            ev("3: eth0    inet 203.0.113.7/24 scope global eth0"),
            ev("Deleted 3: eth0    inet 198.51.100.1/24 scope global eth0"),
            ev("3: eth0    inet6 fe80::1/64 scope link"),
        ];
        let held = held_after(&events);
        assert_eq!(held.len(), 1, "{held:?}");
        assert!(held.contains(VIP));
    }

    #[test]
    fn keepalived_check_config() {
        let check = Check::Script {
            path: "/x/check_port80.sh".into(),
            interval: Duration::from_secs(1),
        };
        let mut i = web(1, 2, Duration::from_secs(1));
        i.extra_keepalived
            .push("track_script {\n        chk_port80\n    }".into());
        let conf = keepalived_conf("h1", &[i], &check).unwrap();
        assert!(
            conf.starts_with("global_defs {\n    script_user root\n    enable_script_security\n    router_id h1\n}\nvrrp_script chk_port80 {\n    script \"/x/check_port80.sh\"\n    interval 1\n"),
            "{conf}"
        );
        assert!(
            conf.contains("weight -100\n}\nvrrp_instance VI_1 {"),
            "{conf}"
        );
        let kdl = check.kdl();
        assert!(
            kdl.contains("script \"/x/check_port80.sh\"\n    interval \"1s\""),
            "{kdl}"
        );
        let wasm = Check::Wasm {
            path: "/x/p.wasm".into(),
            interval: Duration::from_millis(100),
        }
        .kdl();
        assert!(
            wasm.contains("plugin \"/x/p.wasm\"\n    config port=\"80\""),
            "{wasm}"
        );
        assert!(wasm.contains("interval \"100ms\""), "{wasm}");
    }
}
