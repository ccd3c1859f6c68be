//! The running daemon: one tokio task owns every instance's state machine and feeds it packets,
//! timeouts, link changes and check results; sockets, netlink and checks sit around it.
//!
//! Single-threaded on purpose: VRRP work is tiny, and one owner of all state needs no locks.

mod instance;
pub mod status;
mod vips;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use crate::checks::{self, CheckResult, Tracker};
use crate::config::{self, CheckKind, Config};
use crate::net::announce::Announcer;
use crate::net::netlink::{self, Link, LinkEvent, Netlink};
use crate::net::socket::{Datagram, VrrpSocket};
use crate::vrrp::fsm::{Action, Event, Reason, State};
use crate::vrrp::packet::{self, Advert, DropReason, IPPROTO_VRRP};
use crate::vrrp::receive;

use instance::{Instance, Wiring};
use status::{CheckStatus, Status, StatusFile};
use vips::{Op, Owned};

pub struct Options {
    pub config: PathBuf,
    pub state_dir: PathBuf,
}

/// Run until SIGTERM/SIGINT. Blocks the calling thread.
pub fn run(opts: Options) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async move {
        let cfg = config::load(&opts.config).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut daemon = Daemon::start(cfg, opts).await?;
        daemon.run().await
    })
}

/// A packet as a reader task hands it over: decoded, or the reason it was not.
enum Rx {
    Advert {
        ifindex: u32,
        v6: bool,
        src: IpAddr,
        ttl: u8,
        advert: Advert,
    },
    Drop {
        ifindex: u32,
        v6: bool,
        vrid: Option<u8>,
        reason: DropReason,
    },
}

struct Iface {
    link: Link,
    v4: Option<Arc<VrrpSocket>>,
    v6: Option<Arc<VrrpSocket>>,
    announcer: Arc<Announcer>,
}

struct Check {
    name: String,
    tracker: Tracker,
    last: Option<CheckResult>,
    runs: u64,
}

struct Daemon {
    cfg: Config,
    opts: Options,
    instances: Vec<Instance>,
    /// (ifindex, v6, vrid) -> instance index
    by_vrid: HashMap<(u32, bool, u8), usize>,
    /// instance index -> other members of its sync group
    group_peers: Vec<Vec<usize>>,
    checks: Vec<Check>,
    /// instance index -> (check index, weight)
    tracks: Vec<Vec<(usize, i32)>>,
    rx: mpsc::Receiver<Rx>,
    links: mpsc::UnboundedReceiver<LinkEvent>,
    check_rx: mpsc::UnboundedReceiver<CheckResult>,
    vips: mpsc::UnboundedSender<Op>,
    queue: VecDeque<(usize, Event)>,
    global_drops: HashMap<DropReason, u64>,
    status_file: StatusFile,
    /// When status.json is next written: now after a transition, within 500 ms after a counter.
    status_due: Option<Instant>,
    garp_refresh_at: Vec<Option<Instant>>,
    stopping: bool,
}

impl Daemon {
    async fn start(cfg: Config, opts: Options) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&opts.state_dir)
            .with_context(|| format!("creating state dir {}", opts.state_dir.display()))?;
        let nl = Netlink::connect()?;
        let links = netlink::watch_links()?;
        let (tx, rx) = mpsc::channel(1024);

        // Interfaces: every one an instance, a VIP or a route names.
        let mut ifaces: HashMap<String, Iface> = HashMap::new();
        for inst in &cfg.instances {
            let names = std::iter::once(&inst.interface)
                .chain(inst.vips.iter().filter_map(|v| v.dev.as_ref()))
                .chain(inst.routes.iter().filter_map(|r| r.dev.as_ref()));
            for name in names {
                if !ifaces.contains_key(name) {
                    let link = nl
                        .link(name)
                        .await
                        .with_context(|| format!("instance `{}`", inst.name))?;
                    let announcer = Arc::new(
                        Announcer::open(name, link.index, link.mac)
                            .with_context(|| format!("opening an announcement socket on {name}"))?,
                    );
                    ifaces.insert(
                        name.clone(),
                        Iface {
                            link,
                            v4: None,
                            v6: None,
                            announcer,
                        },
                    );
                }
            }
            let iface = ifaces.get_mut(&inst.interface).expect("inserted above");
            let v6 = inst.is_ipv6();
            let slot = if v6 { &mut iface.v6 } else { &mut iface.v4 };
            if slot.is_none() {
                let s = if v6 {
                    VrrpSocket::open_v6(&inst.interface, iface.link.index)
                } else {
                    VrrpSocket::open_v4(&inst.interface, iface.link.index)
                }
                .with_context(|| {
                    format!(
                        "opening a VRRP socket on {} (are you root?)",
                        inst.interface
                    )
                })?;
                let s = Arc::new(s);
                tokio::spawn(read_loop(s.clone(), v6, tx.clone()));
                *slot = Some(s);
            }
        }

        let all_vips: Vec<IpAddr> = cfg
            .instances
            .iter()
            .flat_map(|i| i.vips.iter().map(|v| v.addr))
            .collect();
        let vips_tx = vips::spawn(nl.clone());
        let mut instances = Vec::new();
        let mut by_vrid = HashMap::new();
        for inst in &cfg.instances {
            let iface = &ifaces[&inst.interface];
            let v6 = inst.is_ipv6();
            let src = match inst.unicast_src {
                Some(ip) => ip,
                None => primary_address(&nl, iface.link.index, v6, &all_vips)
                    .await
                    .with_context(|| format!("instance `{}` on {}", inst.name, inst.interface))?,
            };
            let index_of = |dev: &Option<String>| {
                dev.as_ref()
                    .map_or(iface.link.index, |d| ifaces[d].link.index)
            };
            let owned = Arc::new(Owned {
                instance: inst.name.clone(),
                addrs: inst
                    .vips
                    .iter()
                    .map(|v| (index_of(&v.dev), v.addr, v.prefix_len))
                    .collect(),
                routes: inst
                    .routes
                    .iter()
                    .map(|r| (index_of(&r.dev), r.clone()))
                    .collect(),
            });
            let socket = if v6 {
                iface.v6.clone()
            } else {
                iface.v4.clone()
            }
            .expect("opened above");
            by_vrid.insert((iface.link.index, v6, inst.vrid), instances.len());
            let wiring = Wiring {
                ifindex: iface.link.index,
                src,
                socket,
                announcer: iface.announcer.clone(),
                owned,
            };
            let mut rt = Instance::new(inst.clone(), wiring);
            rt.link_down = !iface.link.up;
            instances.push(rt);
        }

        // Checks and who tracks them.
        let (check_tx, check_rx) = mpsc::unbounded_channel();
        let cwd = opts
            .config
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), |p| p.to_path_buf());
        let mut checks = Vec::new();
        for (index, def) in cfg.checks.iter().enumerate() {
            checks.push(Check {
                name: def.name.clone(),
                tracker: Tracker::new(def.rise, def.fall),
                last: None,
                runs: 0,
            });
            match &def.kind {
                CheckKind::Script { command } => {
                    let sc = checks::script::ScriptCheck {
                        index,
                        command: command.clone(),
                        interval: def.interval,
                        timeout: def.timeout,
                        cwd: cwd.clone(),
                    };
                    tokio::spawn(checks::script::run(sc, check_tx.clone()));
                }
            }
        }
        let tracks = cfg
            .instances
            .iter()
            .map(|inst| {
                inst.tracks
                    .iter()
                    .filter_map(|t| {
                        let ci = cfg.checks.iter().position(|c| c.name == t.check)?;
                        Some((ci, t.weight.unwrap_or(cfg.checks[ci].weight)))
                    })
                    .collect()
            })
            .collect();
        let group_peers = cfg
            .instances
            .iter()
            .map(|inst| match cfg.group_of(&inst.name) {
                Some(g) => g
                    .members
                    .iter()
                    .filter(|m| **m != inst.name)
                    .filter_map(|m| cfg.instances.iter().position(|i| &i.name == m))
                    .collect(),
                None => Vec::new(),
            })
            .collect();

        let n = instances.len();
        let status_file = StatusFile::new(&opts.state_dir);
        let daemon = Self {
            cfg,
            opts,
            instances,
            by_vrid,
            group_peers,
            checks,
            tracks,
            rx,
            links,
            check_rx,
            vips: vips_tx,
            queue: VecDeque::new(),
            global_drops: HashMap::new(),
            status_file,
            status_due: Some(Instant::now()),
            garp_refresh_at: vec![None; n],
            stopping: false,
        };

        // A crash may have left our VIPs behind: clear them before the first election.
        for inst in &daemon.instances {
            vips::remove(&nl, &inst.owned).await;
        }
        Ok(daemon)
    }

    async fn run(&mut self) -> anyhow::Result<()> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let now = Instant::now();
        for i in 0..self.instances.len() {
            let _e = self.instances[i].span.clone().entered();
            info!(
                interface = %self.instances[i].cfg.interface,
                source = %self.instances[i].src,
                priority = self.instances[i].cfg.priority,
                "starting"
            );
            self.queue.push_back((i, Event::Startup));
        }
        self.pump(now);
        self.refresh_faults(now);
        self.pump(now);
        info!(instances = self.instances.len(), config = %self.opts.config.display(), "upkeep running");

        let mut buf_deadline;
        loop {
            if self.stopping
                && self
                    .instances
                    .iter()
                    .all(|i| i.fsm.state() == State::Initialize)
            {
                break;
            }
            buf_deadline = self.next_deadline();
            let sleep = tokio::time::sleep_until(buf_deadline.map_or_else(
                || tokio::time::Instant::now() + Duration::from_secs(3600),
                tokio::time::Instant::from_std,
            ));
            tokio::select! {
                biased;
                _ = term.recv() => self.shutdown("SIGTERM"),
                _ = int.recv() => self.shutdown("SIGINT"),
                _ = hup.recv() => info!("SIGHUP: configuration reload is not supported yet; ignoring"),
                Some(rx) = self.rx.recv() => self.on_packet(rx),
                Some(ev) = self.links.recv() => self.on_link(ev),
                Some(res) = self.check_rx.recv() => self.on_check(res),
                _ = sleep => {}
            }
            let now = Instant::now();
            self.on_timers(now);
            self.pump(now);
            self.flush_status(now, false);
        }

        // Let netlink finish removing what we held before we go.
        let (done, wait) = oneshot::channel();
        let _ = self.vips.send(Op::Flush(done));
        let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
        self.flush_status(Instant::now(), true);
        info!("stopped");
        Ok(())
    }

    fn shutdown(&mut self, why: &str) {
        if self.stopping {
            warn!("{why} again: removing VIPs now");
            for inst in &mut self.instances {
                if inst.stats.vips_held {
                    let _ = self.vips.send(Op::Remove(inst.owned.clone()));
                    inst.stats.vips_held = false;
                }
            }
            // Force every instance out so the loop ends.
            let now = Instant::now();
            for i in 0..self.instances.len() {
                self.queue.push_back((i, Event::Fault(true)));
                self.queue.push_back((i, Event::Shutdown));
            }
            self.pump(now);
            return;
        }
        info!("{why}: resigning mastership and stopping");
        self.stopping = true;
        for i in 0..self.instances.len() {
            self.queue.push_back((i, Event::Shutdown));
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let fsm = self.instances.iter().filter_map(|i| i.fsm.poll_timeout());
        let garp = self.garp_refresh_at.iter().flatten().copied();
        fsm.chain(garp).chain(self.status_due).min()
    }

    fn on_timers(&mut self, now: Instant) {
        for i in 0..self.instances.len() {
            if self.instances[i]
                .fsm
                .poll_timeout()
                .is_some_and(|t| t <= now)
            {
                self.queue.push_back((i, Event::Timeout));
            }
            if self.garp_refresh_at[i].is_some_and(|t| t <= now) {
                let inst = &self.instances[i];
                if let Err(e) = inst.announcer.announce(&inst.vip_addrs) {
                    debug!(parent: &inst.span, "GARP refresh failed: {e}");
                }
                self.garp_refresh_at[i] = self.cfg.global.garp_refresh.map(|d| now + d);
            }
        }
    }

    fn on_packet(&mut self, rx: Rx) {
        match rx {
            Rx::Drop {
                ifindex,
                v6,
                vrid,
                reason,
            } => {
                match vrid.and_then(|v| self.by_vrid.get(&(ifindex, v6, v))) {
                    Some(&i) => self.instances[i].count_drop(reason),
                    None => *self.global_drops.entry(reason).or_default() += 1,
                }
                self.touch_status();
            }
            Rx::Advert {
                ifindex,
                v6,
                src,
                ttl,
                advert,
            } => {
                self.touch_status();
                let Some(&i) = self.by_vrid.get(&(ifindex, v6, advert.vrid)) else {
                    *self
                        .global_drops
                        .entry(DropReason::UnknownVrid)
                        .or_default() += 1;
                    return;
                };
                let inst = &mut self.instances[i];
                if src == inst.src {
                    inst.count_drop(DropReason::OwnPacket);
                    return;
                }
                match receive::check(&inst.expect, src, ttl, &advert) {
                    Ok(acc) => {
                        inst.stats.adverts_received += 1;
                        if acc.address_mismatch {
                            debug!(parent: &inst.span, %src, "advert's address list differs from ours");
                        }
                        self.queue.push_back((i, Event::Advert(acc.heard)));
                    }
                    Err(reason) => {
                        debug!(parent: &inst.span, %src, reason = reason.as_str(), "advert dropped");
                        inst.count_drop(reason);
                    }
                }
            }
        }
    }

    fn on_link(&mut self, ev: LinkEvent) {
        let mut changed = false;
        for inst in &mut self.instances {
            if inst.ifindex == ev.index && inst.link_down == ev.up {
                inst.link_down = !ev.up;
                info!(parent: &inst.span, up = ev.up, "interface {}", if ev.up { "up" } else { "down" });
                changed = true;
            }
        }
        if changed {
            self.refresh_faults(Instant::now());
        }
    }

    fn on_check(&mut self, res: CheckResult) {
        let Some(check) = self.checks.get_mut(res.check) else {
            return;
        };
        check.runs += 1;
        let flipped = check.tracker.record(res.ok);
        if flipped {
            let healthy = check.tracker.healthy();
            info!(check = %check.name, healthy, message = %res.message, "check changed state");
        }
        check.last = Some(res);
        self.touch_status();
        if flipped {
            let now = Instant::now();
            for i in 0..self.instances.len() {
                let p = self.effective_priority(i);
                if p != self.instances[i].fsm.priority() {
                    self.queue.push_back((i, Event::Priority(p)));
                }
                self.instances[i].check_fault = self.fatal_check_failing(i);
            }
            self.refresh_faults(now);
        }
    }

    /// Base priority plus the weights of tracked checks (keepalived's rules), kept in 1..=254
    /// unless the instance owns its addresses (255) and nothing moved it.
    fn effective_priority(&self, i: usize) -> u8 {
        let base = i32::from(self.instances[i].cfg.priority);
        let delta: i32 = self.tracks[i]
            .iter()
            .map(|&(c, w)| {
                let healthy = self.checks[c].tracker.healthy();
                match (w, healthy) {
                    (w, false) if w < 0 => w,
                    (w, true) if w > 0 => w,
                    _ => 0,
                }
            })
            .sum();
        if delta == 0 {
            return base as u8;
        }
        (base + delta).clamp(1, 254) as u8
    }

    fn fatal_check_failing(&self, i: usize) -> bool {
        self.tracks[i]
            .iter()
            .any(|&(c, w)| w == 0 && !self.checks[c].tracker.healthy())
    }

    /// Feed each instance its fault state: its own causes or any sync-group member's.
    fn refresh_faults(&mut self, _now: Instant) {
        let own: Vec<bool> = self
            .instances
            .iter()
            .map(|i| i.link_down || i.check_fault)
            .collect();
        for i in 0..self.instances.len() {
            let fault = own[i] || self.group_peers[i].iter().any(|&j| own[j]);
            if fault != self.instances[i].fault_fed && !self.stopping {
                self.instances[i].fault_fed = fault;
                self.queue.push_back((i, Event::Fault(fault)));
            }
        }
    }

    /// Run queued events through the state machines until none are left.
    fn pump(&mut self, now: Instant) {
        while let Some((i, ev)) = self.queue.pop_front() {
            let actions = self.instances[i].fsm.handle(ev, now);
            for a in actions {
                self.apply(i, a, now);
            }
        }
    }

    fn apply(&mut self, i: usize, action: Action, now: Instant) {
        let inst = &mut self.instances[i];
        match action {
            Action::SendAdvert { priority } => inst.send_advert(priority),
            Action::Announce => {
                announce(inst, &self.cfg.global);
                self.garp_refresh_at[i] = self.cfg.global.garp_refresh.map(|d| now + d);
            }
            Action::AddVips => {
                let _ = self.vips.send(Op::Add(inst.owned.clone()));
                inst.stats.vips_held = true;
            }
            Action::RemoveVips => {
                let _ = self.vips.send(Op::Remove(inst.owned.clone()));
                inst.stats.vips_held = false;
                self.garp_refresh_at[i] = None;
            }
            Action::Transition { from, to, reason } => {
                inst.stats.transitions += 1;
                inst.stats.last_transition = Some(format!("{from}->{to}: {reason}"));
                info!(parent: &inst.span, %from, %to, %reason, priority = inst.fsm.priority(), "state change");
                self.status_due = Some(now);
                // Sync groups: a member's own move drags the others along (never recursively).
                let group_event = match (from, to, reason) {
                    (_, State::Master, r) if r != Reason::GroupMaster => Some(Event::GroupMaster),
                    (State::Master, State::Backup, r) if r != Reason::GroupBackup => {
                        Some(Event::GroupBackup)
                    }
                    _ => None,
                };
                if let Some(ev) = group_event {
                    for &j in &self.group_peers[i] {
                        self.queue.push_back((j, ev));
                    }
                }
            }
        }
    }

    /// A counter changed: write the status within 500 ms (not on every packet).
    fn touch_status(&mut self) {
        if self.status_due.is_none() {
            self.status_due = Some(Instant::now() + Duration::from_millis(500));
        }
    }

    fn flush_status(&mut self, now: Instant, force: bool) {
        if !force && self.status_due.is_none_or(|t| t > now) {
            return;
        }
        let status = Status {
            pid: std::process::id(),
            instances: (0..self.instances.len())
                .map(|i| self.instances[i].status(self.instances[i].fsm.priority()))
                .collect(),
            checks: self
                .checks
                .iter()
                .map(|c| CheckStatus {
                    name: c.name.clone(),
                    kind: "script",
                    healthy: c.tracker.healthy(),
                    last_ok: c.last.as_ref().map(|r| r.ok),
                    message: c
                        .last
                        .as_ref()
                        .map(|r| r.message.clone())
                        .unwrap_or_default(),
                    duration_ms: c.last.as_ref().map_or(0, |r| r.duration.as_millis() as u64),
                    runs: c.runs,
                })
                .collect(),
            drops: self
                .global_drops
                .iter()
                .map(|(r, n)| (r.as_str(), *n))
                .collect(),
        };
        if let Err(e) = self.status_file.write(&status) {
            warn!("cannot write status file: {e}");
        }
        self.status_due = None;
    }
}

/// Gratuitous ARP / NA: the first at once, the repeats spaced on a small task of their own.
fn announce(inst: &Instance, global: &config::Global) {
    if let Err(e) = inst.announcer.announce(&inst.vip_addrs) {
        warn!(parent: &inst.span, "announcement failed: {e}");
    }
    let repeats = global.garp_repeat.saturating_sub(1);
    if repeats == 0 {
        return;
    }
    let announcer = inst.announcer.clone();
    let addrs = inst.vip_addrs.clone();
    let gap = global.garp_interval.max(Duration::from_millis(10));
    tokio::spawn(async move {
        for _ in 0..repeats {
            tokio::time::sleep(gap).await;
            let _ = announcer.announce(&addrs);
        }
    });
}

/// The address we advertise from: the interface's first IPv4 address that is not a VIP, or its
/// IPv6 link-local address (waiting briefly for duplicate address detection to finish).
async fn primary_address(
    nl: &Netlink,
    index: u32,
    v6: bool,
    vips: &[IpAddr],
) -> anyhow::Result<IpAddr> {
    for _ in 0..30 {
        let addrs = nl.addresses(index).await?;
        let found = addrs.iter().map(|(a, _)| *a).find(|a| match a {
            IpAddr::V4(v4) => !v6 && !vips.contains(a) && *v4 != Ipv4Addr::UNSPECIFIED,
            IpAddr::V6(v6a) => v6 && is_link_local(v6a),
        });
        if let Some(a) = found {
            return Ok(a);
        }
        if !v6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let family = if v6 { "IPv6 link-local" } else { "IPv4" };
    bail!("the interface has no {family} address to send adverts from (set `unicast-src`)")
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// Reads one socket forever, decoding each packet before handing it to the event loop.
async fn read_loop(sock: Arc<VrrpSocket>, v6: bool, tx: mpsc::Sender<Rx>) {
    let mut buf = vec![0u8; 4096];
    let ifindex = sock.ifindex();
    loop {
        let rx = match sock.recv(&mut buf).await {
            Ok(d) => decode(ifindex, v6, d),
            Err(e) => {
                error!(ifindex, "receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if tx.send(rx).await.is_err() {
            return;
        }
    }
}

fn decode(ifindex: u32, v6: bool, d: Datagram<'_>) -> Rx {
    let (src, dst, ttl, payload) = match d {
        Datagram::V4(bytes) => match packet::parse_ipv4(bytes) {
            Ok(ip) if ip.protocol == IPPROTO_VRRP => {
                (IpAddr::V4(ip.src), IpAddr::V4(ip.dst), ip.ttl, ip.payload)
            }
            Ok(_) => {
                return Rx::Drop {
                    ifindex,
                    v6,
                    vrid: None,
                    reason: DropReason::NotVrrp,
                }
            }
            Err(e) => {
                return Rx::Drop {
                    ifindex,
                    v6,
                    vrid: None,
                    reason: e.reason(),
                }
            }
        },
        Datagram::V6 {
            src,
            dst,
            hop_limit,
            payload,
        } => (IpAddr::V6(src), IpAddr::V6(dst), hop_limit, payload),
    };
    match Advert::decode(payload, src, dst) {
        Ok(advert) => Rx::Advert {
            ifindex,
            v6,
            src,
            ttl,
            advert,
        },
        Err(e) => Rx::Drop {
            ifindex,
            v6,
            vrid: packet::peek_vrid(payload),
            reason: e.reason(),
        },
    }
}
