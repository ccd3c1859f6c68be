//! The running daemon: one tokio task owns every instance's state machine and feeds it packets,
//! timeouts, link changes, check results and reloads; sockets, netlink and checks sit around it.
//!
//! Single-threaded on purpose: VRRP work is tiny, and one owner of all state needs no locks.

mod announcements;
mod checks;
pub mod control;
mod fatal;
pub mod guard;
mod instance;
mod links;
mod log_limit;
pub mod metrics;
pub mod metrics_http;
mod outbox;
mod reload;
mod single;
mod state_dir;
pub mod status;
mod systemd;
mod timer;
mod tuning;
mod vips;
mod watch;
mod wiring;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::checks::wasm::{self, PluginHost};
use crate::checks::{CheckResult, Tracker};
use crate::hooks::{self, Notifier, NotifyState, QueueStats, Subject};
use crate::net::netlink::{self, AddressChange, AddressRemoved, LinkEvent, Netlink};
use upkeep_config::{self as config, CheckDef, CheckKind, Config};
use upkeep_vrrp::fsm::{Action, Event, State};
use upkeep_vrrp::node::{Node, Track};
use upkeep_vrrp::packet::DropReason;
use upkeep_vrrp::receive;

use checks::{Check, LoadedPlugin};
use control::{Reply, Request};
use instance::Instance;
use outbox::Outbox;
use status::{CheckStatus, ReloadStatus, Status, StatusFile};
use vips::VipWriter;
use wiring::{Interfaces, Rx};

/// Packets taken from the receive queue in one pass of the event loop, beyond the first.
const PACKETS_PER_PASS: usize = 512;

pub struct Options {
    pub config: PathBuf,
    pub state_dir: PathBuf,
}

/// Run until SIGTERM/SIGINT. Blocks the calling thread.
pub fn run(opts: Options) -> anyhow::Result<()> {
    let rt = fatal::runtime().context("starting the tokio runtime")?;
    rt.block_on(async move {
        // Before anything on the host changes: a second daemon beside this one would take
        // its VIPs away.
        let _claim = single::claim(&opts.state_dir)?;
        let (cfg, source) = match config::load_with_source(&opts.config) {
            Ok(loaded) => loaded,
            // The messages the daemon gave when it read the file itself.
            Err(config::ConfigError::Io { path, source }) => {
                return Err(
                    anyhow::Error::new(source).context(format!("reading {}", path.display()))
                )
            }
            Err(e) => return Err(e.into()),
        };
        let (watch_tx, watch_rx) = mpsc::unbounded_channel();
        let mut daemon = Daemon::start(cfg, source, opts, watch_tx).await?;
        tuning::release_free_memory();
        daemon.event_loop(watch_rx).await
    })
}

struct Daemon {
    cfg: Config,
    /// The text `cfg` was parsed from: an identical file is not a reload.
    source: String,
    opts: Options,
    wires: Interfaces,
    /// The state machines and the rules between them (checks' weights, faults, sync groups);
    /// `instances` holds the IO side of each, at the same index.
    node: Node,
    instances: Vec<Instance>,
    /// (ifindex, v6, vrid) -> instance index
    by_vrid: HashMap<(u32, bool, u8), usize>,
    checks: Vec<Check>,
    next_check_id: u64,
    check_tx: mpsc::UnboundedSender<CheckResult>,
    rx: mpsc::Receiver<Rx>,
    links: mpsc::UnboundedReceiver<LinkEvent>,
    /// Addresses added and removed, by anyone: a held VIP removed is put back; an address
    /// added may be the source address an interface made again was waiting for.
    addrs: mpsc::UnboundedReceiver<AddressChange>,
    check_rx: mpsc::UnboundedReceiver<CheckResult>,
    vips: VipWriter,
    /// Instances whose announcement waits for their addresses (see [`Daemon::pump`]), and
    /// how many rounds each asked for.
    announce_queue: Vec<(usize, u32)>,
    /// Adverts due in this pass, sent together at its end.
    outbox: Outbox,
    global_drops: HashMap<DropReason, u64>,
    status_file: StatusFile,
    /// When status.json is next written: now after a transition, within 500 ms after a counter.
    status_due: Option<Instant>,
    last_reload: Option<ReloadStatus>,
    reloads: u64,
    /// Prefixes announced over BGP by the speakers' tasks.
    announce: announcements::Announcements,
    /// An instance's VIPs came or went since the last pass (announcements may follow it).
    vips_moved: bool,
    /// The WebAssembly engine, made when the first plugin is loaded.
    plugin_host: Option<PluginHost>,
    hook_plugins: HashMap<String, LoadedPlugin>,
    hook_tx: mpsc::UnboundedSender<checks::HookJob>,
    hook_stats: std::sync::Arc<QueueStats>,
    notifier: Option<Notifier>,
    /// `startup-delay`: when the instances start.
    startup_at: Option<Instant>,
    /// `notify-fifo`: every event as a line.
    fifo: Option<crate::hooks::fifo::NotifyFifo>,
    /// The notify queue's counts, kept across the notifiers a reload replaces.
    notify_stats: std::sync::Arc<QueueStats>,
    /// The last state each sync group was notified of (a group notifies once per change).
    group_notified: HashMap<String, NotifyState>,
    watch: Option<watch::ConfigWatch>,
    watch_tx: mpsc::UnboundedSender<watch::FileChange>,
    control: mpsc::Receiver<control::Pending>,
    /// Reloads being prepared off the loop report here.
    prepared_tx: mpsc::UnboundedSender<reload::PreparedReload>,
    prepared_rx: mpsc::UnboundedReceiver<reload::PreparedReload>,
    reload_running: bool,
    /// A reload asked for while another was prepared: (trigger, forced).
    reload_again: Option<(String, bool)>,
    /// Wakes the loop at the next protocol deadline, to the microsecond.
    timer: timer::DeadlineTimer,
    /// The Prometheus endpoint's data, when `global { metrics listen=... }` is set.
    metrics: Option<std::sync::Arc<metrics::Metrics>>,
    /// Control clients waiting for the reload in progress.
    reload_waiters: Vec<oneshot::Sender<Reply>>,
    systemd: systemd::SdNotify,
    watchdog_at: Option<Instant>,
}

impl Daemon {
    async fn start(
        cfg: Config,
        source: String,
        opts: Options,
        watch_tx: mpsc::UnboundedSender<watch::FileChange>,
    ) -> anyhow::Result<Self> {
        state_dir::prepare(&opts.state_dir)?;
        let nl = Netlink::connect()?;
        let links = netlink::watch_links()?;
        let addrs = netlink::watch_addresses()?;
        let (tx, rx) = mpsc::channel(1024);
        let (check_tx, check_rx) = mpsc::unbounded_channel();
        let (prepared_tx, prepared_rx) = mpsc::unbounded_channel();
        let vips = VipWriter::open().context("opening a netlink socket for VIP changes")?;
        let hook_stats = std::sync::Arc::<QueueStats>::default();
        let notify_stats = std::sync::Arc::<QueueStats>::default();
        let mut daemon = Self {
            cfg: Config::default(),
            source,
            wires: Interfaces::new(nl, tx),
            node: Node::new(),
            instances: Vec::new(),
            by_vrid: HashMap::new(),
            checks: Vec::new(),
            next_check_id: 0,
            check_tx,
            rx,
            links,
            addrs,
            check_rx,
            vips,
            announce_queue: Vec::new(),
            outbox: Outbox::default(),
            global_drops: HashMap::new(),
            status_file: StatusFile::new(&opts.state_dir),
            status_due: Some(Instant::now()),
            last_reload: None,
            reloads: 0,
            announce: announcements::Announcements::new(),
            vips_moved: false,
            plugin_host: None,
            hook_plugins: HashMap::new(),
            hook_tx: checks::spawn_hook_runner(hook_stats.clone()),
            hook_stats,
            notifier: Some(Notifier::spawn_counted(
                cfg.global.notify_timeout,
                cfg.global.script_user.clone(),
                notify_stats.clone(),
            )),
            notify_stats,
            fifo: open_fifo(&cfg.global)?,
            startup_at: None,
            group_notified: HashMap::new(),
            watch: None,
            watch_tx,
            control: control::serve(&opts.state_dir).with_context(|| {
                format!(
                    "opening the control socket {}",
                    control::socket_path(&opts.state_dir).display()
                )
            })?,
            systemd: systemd::SdNotify::from_env(),
            prepared_tx,
            prepared_rx,
            reload_running: false,
            reload_again: None,
            reload_waiters: Vec::new(),
            metrics: None,
            timer: timer::DeadlineTimer::new().context("creating a timerfd")?,
            watchdog_at: None,
            opts,
        };
        if let Some(addr) = cfg.global.metrics_listen {
            // Its own thread, started before real-time scheduling is set (it would inherit
            // it): scrapes never take the event loop's time.
            let listener = std::net::TcpListener::bind(addr)
                .with_context(|| format!("metrics: cannot listen on {addr}"))?;
            let m = std::sync::Arc::new(metrics::Metrics::new());
            metrics_http::spawn_thread(listener, m.clone())
                .context("metrics: starting the endpoint's thread")?;
            daemon.metrics = Some(m);
        }
        tuning::tune_process(&cfg.global);
        checks::ensure_plugin_host(&mut daemon.plugin_host, &cfg, &daemon.opts.state_dir)?;
        let dir = checks::config_dir(&daemon.opts.config);
        let file = daemon.opts.config.display().to_string();
        let prepared = checks::prepare(
            &cfg,
            &daemon.source,
            &file,
            &dir,
            daemon.plugin_host.as_ref(),
            &HashMap::new(),
            &HashMap::new(),
        )
        .await?;
        let all_vips = all_vips(&cfg);
        // What each interface holds now, dumped once per interface (not one delete per VIP
        // that is not there: 255 instances would be 255 netlink round trips at start-up).
        let mut present: HashMap<u32, Option<Vec<IpAddr>>> = HashMap::new();
        for inst in &cfg.instances {
            let (wiring, up) = daemon
                .wires
                .wire(inst, &all_vips)
                .await
                .with_context(|| format!("instance `{}` on {}", inst.name, inst.interface))?;
            // A crash may have left our VIPs behind: clear them before the first election
            // (all instances' in one netlink batch, waited for below).
            let leftovers = leftovers(&daemon.wires.nl, &mut present, &wiring.owned).await;
            daemon.vips.remove(&leftovers);
            let params = instance::params(inst, &cfg.global, wiring.src);
            daemon.node.add(params, inst.priority, up);
            daemon.instances.push(Instance::new(inst.clone(), wiring));
        }
        daemon.vips.flush();
        if cfg.instances.iter().any(|i| i.drops_vip_traffic()) {
            daemon.vips.open_firewall().context(
                "`accept #false` drops traffic to VIPs with nftables: cannot make the table inet upkeep",
            )?;
        }
        daemon.cfg = cfg;
        for def in daemon.cfg.checks.clone() {
            let plugin = prepared.check_plugins.get(&def.name).cloned();
            daemon.spawn_check(def, plugin).await;
        }
        daemon.hook_plugins = prepared.hook_plugins;
        daemon.announce.configure(
            &daemon.cfg,
            &announcements::Inputs {
                checks: &daemon.checks,
                instances: &daemon.instances,
            },
        );
        daemon
            .vips
            .guard_speakers(announcements::guarded(&daemon.cfg));
        daemon.rewatch();
        daemon.rebuild_indexes();
        Ok(daemon)
    }

    async fn event_loop(
        &mut self,
        mut watch_rx: mpsc::UnboundedReceiver<watch::FileChange>,
    ) -> anyhow::Result<()> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        // Debounce: a save is several events; reload once they have been quiet for a moment.
        // One sleep for the loop's life, reset when a change comes (not a new timer every pass).
        let mut reload_at: Option<tokio::time::Instant> = None;
        let reload_sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(reload_sleep);

        let now = Instant::now();
        let delay = self.cfg.global.startup_delay;
        if delay.is_zero() {
            self.start_instances(0..self.instances.len());
        } else {
            info!(
                delay_ms = delay.as_millis() as u64,
                "startup-delay: instances start later"
            );
            self.startup_at = Some(now + delay);
        }
        self.pump(now);
        self.systemd
            .send(&format!("READY=1\nSTATUS={}", self.summary()));
        self.watchdog_at = self.systemd.watchdog.map(|d| now + d);
        info!(
            instances = self.instances.len(),
            config = %self.opts.config.display(),
            "upkeep running"
        );

        loop {
            if self.node.is_stopped() {
                break;
            }
            let deadline = self.next_deadline();
            let sleep = self.timer.sleep_until(
                deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
            );
            tokio::select! {
                biased;
                _ = term.recv() => self.shutdown("SIGTERM"),
                _ = int.recv() => self.shutdown("SIGINT"),
                _ = hup.recv() => self.reload("SIGHUP", true),
                Some(rx) = self.rx.recv() => {
                    // A master's adverts for many instances arrive as a burst: take what has
                    // arrived in one pass (bounded, so signals are not held up behind a flood).
                    self.on_packet(rx);
                    for _ in 0..PACKETS_PER_PASS {
                        let Ok(rx) = self.rx.try_recv() else { break };
                        self.on_packet(rx);
                    }
                }
                Some(ev) = self.links.recv() => self.on_link(ev).await,
                Some(ev) = self.addrs.recv() => match ev {
                    AddressChange::Removed(ev) => self.on_address_removed(ev),
                    AddressChange::Added(ev) => self.on_address_added(ev).await,
                },
                Some(res) = self.check_rx.recv() => self.on_check(res),
                Some(r) = self.announce.rx.recv() => {
                    if self.announce.on_report(r) {
                        self.touch_status();
                    }
                }
                Some((req, reply)) = self.control.recv() => {
                    let answer = match req {
                        Request::Status => Reply::Status(Box::new(self.snapshot())),
                        Request::Handover { instance } => {
                            self.operator_event(&instance, Event::HandOver)
                        }
                        Request::Release { instance } => {
                            self.operator_event(&instance, Event::Release)
                        }
                        Request::Reload => {
                            // Answered when the reload is done.
                            self.reload("control socket", true);
                            if self.reload_running {
                                self.reload_waiters.push(reply);
                                continue;
                            }
                            Reply::Error {
                                error: "the daemon is stopping: no reload".into(),
                            }
                        }
                    };
                    let _ = reply.send(answer);
                }
                Some(p) = self.prepared_rx.recv() => {
                    self.finish_reload(p).await;
                    tuning::release_free_memory();
                    let answer = self.reload_reply();
                    for w in self.reload_waiters.drain(..) {
                        let _ = w.send(answer.clone());
                    }
                    if let Some((trigger, forced)) = self.reload_again.take() {
                        self.reload(&trigger, forced);
                    }
                }
                Some(change) = watch_rx.recv() => {
                    // A complete file is read at once (a few ms to gather the same burst's
                    // other events); a write under way gets time to finish.
                    let settle = match change {
                        watch::FileChange::Complete => Duration::from_millis(5),
                        watch::FileChange::Ongoing => Duration::from_millis(150),
                    };
                    let at = tokio::time::Instant::now() + settle;
                    reload_at = Some(at);
                    reload_sleep.as_mut().reset(at);
                }
                _ = &mut reload_sleep, if reload_at.is_some() => {
                    reload_at = None;
                    self.reload("file change", false);
                }
                _ = sleep => {}
            }
            let mut now = Instant::now();
            // Deadlines move only in `pump` and the branches above; one moved earlier than
            // `deadline` there is due next pass at the latest (the loop wakes at once for it).
            if deadline.is_some_and(|d| d <= now) {
                // An advert that reached the socket before the deadline (an equal backup's
                // takeover, a tie-break delay ahead of ours) may not be read yet on a busy
                // host: let the reader run once (yield_now lets the runtime poll for I/O
                // first) and handle what it read before the timeout, in the order they came.
                tokio::task::yield_now().await;
                for _ in 0..PACKETS_PER_PASS {
                    let Ok(rx) = self.rx.try_recv() else { break };
                    self.on_packet(rx);
                }
                now = Instant::now();
                self.on_timers(now);
            }
            self.pump(now);
            self.prune_retired();
            self.flush_status(now, false);
        }

        self.vips.flush();
        if self.announce.withdraw_all(&self.cfg).await {
            // Nothing left for the guard to withdraw.
            self.vips.guard_speakers(Vec::new());
        }
        // The virtual-MAC interfaces go with the daemon, as keepalived's do (a killed daemon
        // leaves them; the next start takes them over).
        let vmacs: Vec<String> = self
            .instances
            .iter()
            .filter_map(|i| i.cfg.vmac.as_ref().map(|v| v.name.clone()))
            .collect();
        for name in vmacs {
            self.wires.remove_vmac(&name).await;
        }
        self.vips.close_firewall();
        // notify-stop commands were queued by the last transitions: let them run.
        if let Some(n) = self.notifier.take() {
            n.shutdown().await;
        }
        if let Some(f) = self.fifo.take() {
            f.drain_and_close(Duration::from_secs(1)).await;
        }
        self.flush_status(Instant::now(), true);
        info!("stopped");
        Ok(())
    }

    /// `upkeep handover` / `upkeep release`: the event for the named instance and the rest of
    /// its sync group (a group moves as one). Answers with the instances it went to, or an
    /// error naming what exists.
    fn operator_event(&mut self, name: &str, event: Event) -> Reply {
        let Some(i) = self.instances.iter().position(|inst| inst.cfg.name == name) else {
            let known: Vec<&str> = self.instances.iter().map(|i| i.cfg.name.as_str()).collect();
            return Reply::Error {
                error: format!(
                    "no instance named `{name}` (instances: {})",
                    known.join(", ")
                ),
            };
        };
        let members = match event {
            Event::HandOver => self.node.hand_over(i),
            _ => self.node.release(i),
        };
        let mut names = Vec::new();
        for j in members {
            let inst = &self.instances[j];
            // Queued, not yet run: the state is the one it is asked in.
            info!(parent: &inst.span, state = %self.node.fsm(j).state(), "{}", match event {
                Event::HandOver => "handover asked for: preemption held back until released",
                _ => "released: preempting as configured",
            });
            names.push(inst.cfg.name.clone());
        }
        // The loop pumps the queue right after this branch.
        self.status_due = Some(Instant::now());
        Reply::Instances { instances: names }
    }

    /// The control socket's answer to a reload that is done: its record.
    fn reload_reply(&self) -> Reply {
        match &self.last_reload {
            Some(r) => Reply::Reload(r.clone()),
            None => Reply::Error {
                error: "no reload has run".into(),
            },
        }
    }

    /// Queues these instances' start (the loop pumps them).
    fn start_instances(&mut self, started: impl IntoIterator<Item = usize> + Clone) {
        for i in started.clone() {
            let inst = &self.instances[i];
            debug!(
                parent: &inst.span,
                interface = %inst.cfg.interface,
                source = %inst.src,
                priority = inst.cfg.priority,
                "starting"
            );
        }
        self.node.start(started);
    }

    async fn spawn_check(&mut self, def: CheckDef, plugin: Option<LoadedPlugin>) {
        let id = self.next_check_id;
        self.next_check_id += 1;
        let dir = checks::config_dir(&self.opts.config);
        let task = checks::spawn(
            &def,
            id,
            &dir,
            &self.cfg.global,
            plugin.as_ref(),
            &self.check_tx,
        );
        let mut check = Check {
            tracker: Tracker::starting(def.rise, def.fall, !def.init_fail),
            id,
            last: None,
            runs: 0,
            value: 0,
            ifindex: None,
            plugin,
            task,
            def,
        };
        if let CheckKind::Interface { name } = &check.def.kind {
            // Interface checks follow link events; start from the link's state now.
            match self.wires.link(name).await {
                Ok(link) => {
                    check.ifindex = Some(link.index);
                    check.tracker = Tracker::starting(1, 1, link.up);
                    check.last = Some(link_result(id, link.up));
                }
                Err(e) => {
                    check.tracker = Tracker::starting(1, 1, false);
                    check.last = Some(CheckResult {
                        check: id,
                        ok: false,
                        message: format!("{e:#}"),
                        duration: Duration::ZERO,
                        value: None,
                    });
                }
            }
        }
        self.node.set_check(&check.def.name, check.state());
        self.checks.push(check);
    }

    /// Start watching the config file and the plugin files it names.
    fn rewatch(&mut self) {
        let dir = checks::config_dir(&self.opts.config);
        let mut files = vec![self.opts.config.clone()];
        for c in &self.cfg.checks {
            if let CheckKind::Plugin { path, .. } = &c.kind {
                files.push(dir.join(path));
            }
        }
        files.extend(self.cfg.hooks.iter().map(|h| dir.join(&h.path)));
        self.watch = match watch::watch(&files, self.watch_tx.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!("not watching the config file ({e}); SIGHUP still reloads");
                None
            }
        };
    }

    /// Lookup tables that depend on instance positions: VRID demux, tracks, sync groups.
    fn rebuild_indexes(&mut self) {
        self.by_vrid.clear();
        // Retiring instances first, so a new instance on the same VRID wins the slot.
        for pass in [true, false] {
            for (i, inst) in self.instances.iter().enumerate() {
                if self.node.is_retiring(i) == pass {
                    for index in std::iter::once(inst.ifindex).chain(inst.vmac_index) {
                        self.by_vrid.insert((index, inst.v6, inst.cfg.vrid), i);
                    }
                }
            }
        }
        // The kernel queues packets for these VRIDs only (retiring instances' too: they wait
        // for their successor's advert).
        let mut vrids: HashMap<(u32, bool), wiring::FilterVrids> = HashMap::new();
        for (&(ifindex, v6, vrid), &i) in &self.by_vrid {
            let entry = vrids.entry((ifindex, v6)).or_default();
            entry.0.push(vrid);
            // Routed unicast peers: their TTL is checked per peer in user space.
            if !self.instances[i].cfg.peer_ttl.is_empty() {
                entry.1.push(vrid);
            }
        }
        self.wires.set_filters(&vrids);
        for i in 0..self.instances.len() {
            let tracks = self.instances[i]
                .cfg
                .tracks
                .iter()
                .filter_map(|t| {
                    let c = self.cfg.check(&t.check)?;
                    Some(Track {
                        check: t.check.clone(),
                        weight: t.weight.unwrap_or(c.weight),
                    })
                })
                .collect();
            self.node.set_tracks(i, tracks);
        }
        let groups: Vec<Vec<usize>> = self
            .cfg
            .sync_groups
            .iter()
            .map(|g| {
                g.members
                    .iter()
                    .filter_map(|m| self.active_index(m))
                    .collect()
            })
            .collect();
        self.node.set_groups(&groups);
    }

    /// Drop instances a reload removed once they have resigned.
    fn prune_retired(&mut self) {
        let gone = self.node.drop_retired();
        if !gone.is_empty() {
            // Their virtual-MAC interfaces, unless the new config uses them too.
            let vmac_of = |i: &Instance| i.cfg.vmac.as_ref().map(|v| v.name.clone());
            let kept: Vec<String> = (0..self.instances.len())
                .filter(|k| !gone.contains(k))
                .filter_map(|k| vmac_of(&self.instances[k]))
                .collect();
            for &k in &gone {
                if let Some(name) = self.instances.get(k).and_then(vmac_of) {
                    if !kept.contains(&name) {
                        self.wires.remove_vmac_later(name);
                    }
                }
            }
            let mut index = 0;
            self.instances.retain(|_| {
                index += 1;
                !gone.contains(&(index - 1))
            });
            self.rebuild_indexes();
            self.status_due = Some(Instant::now());
        }
    }

    fn shutdown(&mut self, why: &str) {
        if self.node.is_stopping() {
            warn!("{why} again: removing VIPs now");
            for inst in &mut self.instances {
                if inst.stats.vips_held {
                    self.vips.remove(&inst.owned);
                    inst.stats.vips_held = false;
                }
            }
            self.node.stop_now();
            self.pump(Instant::now());
            return;
        }
        info!("{why}: resigning mastership and stopping");
        self.systemd
            .send("STOPPING=1\nSTATUS=resigning and stopping");
        self.node.stop();
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.instances
            .iter()
            .flat_map(|i| {
                i.garp_refresh_at
                    .into_iter()
                    .chain(i.garp_again_at.map(|a| a.0))
            })
            .chain(self.node.poll_timeout())
            .chain(self.startup_at)
            .chain(self.status_due)
            .chain(self.watchdog_at)
            .min()
    }

    fn on_timers(&mut self, now: Instant) {
        if let (Some(at), Some(every)) = (self.watchdog_at, self.systemd.watchdog) {
            if at <= now {
                self.systemd.send("WATCHDOG=1");
                self.watchdog_at = Some(now + every);
            }
        }
        if self.startup_at.is_some_and(|t| t <= now) {
            self.startup_at = None;
            if !self.node.is_stopping() {
                // Those a reload added meanwhile have started already.
                let waiting: Vec<usize> = (0..self.instances.len())
                    .filter(|&i| self.node.fsm(i).state() == State::Initialize)
                    .collect();
                self.start_instances(waiting);
            }
        }
        self.node.timeout(now);
        for inst in &mut self.instances {
            if let Some((at, rounds)) = inst.garp_again_at {
                if at <= now {
                    inst.garp_again_at = None;
                    let addrs = inst.vip_addrs.clone();
                    announce_addrs(inst, &addrs, rounds);
                }
            }
            if inst.garp_refresh_at.is_some_and(|t| t <= now) {
                let addrs = inst.vip_addrs.clone();
                announce_addrs(inst, &addrs, inst.cfg.garp.refresh_repeat);
                inst.garp_refresh_at = inst.cfg.garp.refresh.map(|d| now + d);
            }
        }
    }

    fn on_packet(&mut self, rx: Rx) {
        self.touch_status();
        match rx {
            Rx::Drop {
                ifindex,
                v6,
                vrid,
                reason,
            } => match vrid.and_then(|v| self.by_vrid.get(&(ifindex, v6, v))) {
                Some(&i) => self.instances[i].count_drop(reason),
                None => *self.global_drops.entry(reason).or_default() += 1,
            },
            Rx::Advert {
                ifindex,
                v6,
                src,
                dst,
                ttl,
                advert,
            } => {
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
                // A multicast advert to another group than ours is another virtual router's.
                let group = inst
                    .cfg
                    .multicast_group
                    .unwrap_or_else(|| crate::net::socket::multicast_group(v6));
                if dst.is_multicast() && dst != group {
                    inst.count_drop(DropReason::OtherGroup);
                    return;
                }
                let now = Instant::now();
                match receive::check(&inst.expect, src, ttl, &advert) {
                    Ok(acc) => {
                        inst.stats.adverts_received += 1;
                        if acc.address_mismatch
                            && inst.log_limit.allow("address_mismatch", now).is_some()
                        {
                            debug!(parent: &inst.span, %src, "advert's address list differs from ours");
                        }
                        let fsm = self.node.fsm(i);
                        let ours = fsm.priority();
                        // Another router that thinks it is master: worth a warning, but it can
                        // be forged at any rate (the state machine rate-limits its answer).
                        let lower = acc.heard.priority < ours
                            || (acc.heard.priority == ours && src < inst.src);
                        if fsm.state() == State::Master && lower && acc.heard.priority > 0 {
                            // keepalived's notify_master_rx_lower_pri, once per advert interval.
                            if inst.rx_lower_at.is_none_or(|t| now >= t) {
                                inst.rx_lower_at = Some(now + inst.cfg.advert_interval);
                                let name = inst.cfg.name.clone();
                                let cmd = inst.cfg.notify.master_rx_lower_pri.clone();
                                if let (Some(n), Some(cmd)) = (&self.notifier, cmd) {
                                    n.notify(format!("{name}/rx-lower-pri"), vec![cmd]);
                                }
                                if let Some(f) = &mut self.fifo {
                                    f.write(Subject::Instance, &name, "MASTER_RX_LOWER_PRI", ours);
                                }
                            }
                        }
                        if fsm.state() == State::Master && acc.heard.priority < ours {
                            let reason = if acc.heard.priority == 0 {
                                "priority_zero_heard"
                            } else {
                                "lower_priority_heard"
                            };
                            if let Some(left_out) = inst.log_limit.allow(reason, now) {
                                warn!(parent: &inst.span, %src, priority = acc.heard.priority, ours,
                                    similar_left_out = left_out,
                                    "another router advertises as master with a lower priority: answering (at most once per advert interval)");
                            }
                        }
                        self.node.advert(i, acc.heard);
                    }
                    Err(reason) => {
                        if let Some(left_out) = inst.log_limit.allow(reason.as_str(), now) {
                            debug!(parent: &inst.span, %src, reason = reason.as_str(),
                                similar_left_out = left_out, "advert dropped");
                        }
                        inst.count_drop(reason);
                    }
                }
            }
        }
    }

    /// Someone removed an address. A VIP of an instance that holds its VIPs is put back at
    /// once (with its routes, which the kernel dropped with it), as keepalived does: a master
    /// that kept advertising without it would black-hole the VIP. The daemon's own removals
    /// never come here with the VIP still held: it lets go of them before it removes them.
    fn on_address_removed(&mut self, ev: AddressRemoved) {
        for inst in &mut self.instances {
            let ours = inst
                .owned
                .addrs
                .iter()
                .any(|&(index, addr, ..)| index == ev.index && addr == ev.addr);
            if !ours || !inst.stats.vips_held {
                continue;
            }
            if let Some(k) = inst
                .own_removals
                .iter()
                .position(|&(index, addr)| index == ev.index && addr == ev.addr)
            {
                inst.own_removals.swap_remove(k);
                continue; // removed and added again by a reload, already back
            }
            inst.stats.vips_restored += 1;
            warn!(parent: &inst.span, vip = %ev.addr, restored = inst.stats.vips_restored,
                "a VIP of this master was removed by someone else: putting it back");
            self.vips.add(&inst.owned);
            self.status_due = Some(Instant::now());
        }
    }

    fn on_check(&mut self, res: CheckResult) {
        let Some(check) = self.checks.iter_mut().find(|c| c.id == res.check) else {
            return; // a replaced check's last result
        };
        check.runs += 1;
        if let Some(m) = &self.metrics {
            // Interface checks' results are link events, not runs.
            if !matches!(check.def.kind, CheckKind::Interface { .. }) {
                m.observe_check(&check.def.name, check.kind(), res.ok, res.duration);
            }
        }
        let mut flipped = check.tracker.record(res.ok);
        if let Some(v) = res.value {
            flipped |= v != check.value;
            check.value = v;
        }
        if flipped {
            let healthy = check.tracker.healthy();
            info!(check = %check.def.name, healthy, message = %res.message, "check changed state");
        }
        let changed = self.node.set_check(&check.def.name, check.state());
        check.last = Some(res);
        self.touch_status();
        if flipped {
            self.announce.update(
                &self.cfg,
                &announcements::Inputs {
                    checks: &self.checks,
                    instances: &self.instances,
                },
            );
        }
        if changed {
            self.node.refresh();
        }
    }

    /// The VIPs whose traffic is dropped now: those of masters with `accept #false` that are
    /// not the address owner (RFC 5798 6.4.3). A backup holds no VIP, so has none to drop.
    fn drops_wanted(&self) -> std::collections::BTreeSet<IpAddr> {
        self.instances
            .iter()
            .filter(|i| i.stats.vips_held && i.cfg.drops_vip_traffic())
            .flat_map(|i| i.vip_addrs.iter().copied())
            .collect()
    }

    /// Run queued events through the state machines until none are left, then apply their
    /// address changes in one netlink batch, and only then announce the takeovers: clients
    /// moved by a gratuitous ARP find the address already there.
    fn pump(&mut self, now: Instant) {
        loop {
            while let Some((i, action)) = self.node.poll(now) {
                self.apply(i, action, now);
            }
            // The adverts due go out together; a master that can no longer send any steps
            // down, which makes more actions to run.
            if self.outbox.is_empty() || !self.send_adverts() {
                break;
            }
        }
        // Announcements that follow an instance: its VIPs came or went in this pass (the
        // speakers hear only of a change).
        if std::mem::take(&mut self.vips_moved)
            && self.cfg.announces.iter().any(|a| a.instance.is_some())
        {
            self.announce.update(
                &self.cfg,
                &announcements::Inputs {
                    checks: &self.checks,
                    instances: &self.instances,
                },
            );
        }
        let drops = self.drops_wanted();
        self.vips.want_dropped(drops);
        self.vips.flush();
        self.fifo_priorities();
        for (i, rounds) in std::mem::take(&mut self.announce_queue) {
            let inst = &mut self.instances[i];
            // Stepped down again within the same pass: the addresses are someone else's.
            if inst.stats.vips_held {
                let addrs = inst.vip_addrs.clone();
                announce_addrs(inst, &addrs, rounds);
            }
        }
    }

    fn apply(&mut self, i: usize, action: Action, now: Instant) {
        let inst = &mut self.instances[i];
        match action {
            Action::SendAdvert { priority } => {
                let (q, batch) = self.outbox.batch(&inst.socket);
                let count = inst.queue_advert(priority, batch);
                self.outbox.queued(i, priority, true, q, count);
                // adverts_sent changes: a master that only sends still refreshes its status.
                if self.status_due.is_none() {
                    self.status_due = Some(now + Duration::from_secs(1));
                }
            }
            Action::TellWinner { to, priority } => {
                let (q, batch) = self.outbox.batch(&inst.socket);
                let count = inst.queue_advert_to(priority, &[to], batch);
                self.outbox.queued(i, priority, false, q, count);
            }
            Action::Announce => {
                let garp = &inst.cfg.garp;
                self.announce_queue.push((i, garp.repeat));
                // A second round a little later (keepalived's garp_master_delay), for switches
                // and clients that missed or overrode the first; then the refreshes.
                inst.garp_again_at = garp.delay.map(|d| (now + d, garp.repeat));
                inst.garp_refresh_at = garp.refresh.map(|d| now + d);
            }
            Action::Reannounce => {
                // In answer to a lower priority: keepalived's garp_lower_prio_repeat / _delay.
                let garp = &inst.cfg.garp;
                if garp.lower_prio_repeat > 0 {
                    self.announce_queue.push((i, garp.lower_prio_repeat));
                    if let Some(d) = garp.lower_prio_delay {
                        inst.garp_again_at = Some((now + d, garp.lower_prio_repeat));
                    }
                }
            }
            Action::AddVips => {
                self.vips.add(&inst.owned);
                inst.stats.vips_held = true;
                self.vips_moved = true;
            }
            Action::RemoveVips => {
                self.vips.remove(&inst.owned);
                inst.stats.vips_held = false;
                inst.own_removals.clear();
                self.vips_moved = true;
                inst.garp_refresh_at = None;
                inst.garp_again_at = None;
                inst.announce_epoch.fetch_add(1, Ordering::SeqCst);
                if let Some((task, _)) = inst.repeats.take() {
                    task.abort();
                }
            }
            Action::Transition { from, to, reason } => {
                inst.stats.transitions += 1;
                inst.stats.last_transition = Some(format!("{from}->{to}: {reason}"));
                let priority = self.node.fsm(i).priority();
                if from == State::Initialize {
                    // The first line an instance logs says where it runs.
                    info!(parent: &inst.span, %from, %to, %reason, priority,
                        interface = %inst.cfg.interface, source = %inst.src, "state change");
                } else {
                    info!(parent: &inst.span, %from, %to, %reason, priority, "state change");
                }
                self.status_due = Some(now);
                // A handover that found no successor never stopped being master. (The node
                // has moved the rest of a sync group already.)
                if !(from == State::Handover && to == State::Master) {
                    self.notify_transition(i, from, to);
                }
            }
        }
    }

    /// Send the queued adverts and count what became of them; returns whether a master that
    /// could not send stepped down (its state machine has actions to run).
    fn send_adverts(&mut self) -> bool {
        let Self {
            outbox,
            instances,
            node,
            ..
        } = self;
        let mut stepped_down = false;
        outbox.flush(|advert| {
            let Some(inst) = instances.get_mut(advert.instance) else {
                return;
            };
            let sent = inst.advert_sent(advert.results());
            // Not heard for as long as a backup waits: it has taken over. Step down rather
            // than hold the VIPs beside it (a priority-0 resignation is no reason: nothing
            // to give up).
            let limit = u32::from(inst.cfg.master_down_adverts).max(1);
            if !sent && advert.periodic && advert.priority > 0 && inst.unsent_in_a_row >= limit {
                inst.unsent_in_a_row = 0;
                warn!(parent: &inst.span, unsent = limit,
                    "adverts could not be sent: stepping down so that the backups' new \
                     master is the only one; held back from preempting until `upkeep \
                     release {}` (or a restart)", inst.cfg.name);
                node.adverts_unsent(advert.instance);
                stepped_down = true;
            }
        });
        stepped_down
    }

    /// `notify-priority-changes`: a master's or backup's new effective priority as a FIFO line
    /// (`MASTER_PRIORITY` / `BACKUP_PRIORITY`, keepalived's), once per change.
    fn fifo_priorities(&mut self) {
        let Some(fifo) = &mut self.fifo else {
            return;
        };
        for (inst, fsm) in self.instances.iter_mut().zip(self.node.fsms()) {
            let prio = fsm.priority();
            if inst.reported_priority == Some(prio) {
                continue;
            }
            let first = inst.reported_priority.is_none();
            inst.reported_priority = Some(prio);
            let event = match fsm.state() {
                State::Master => "MASTER_PRIORITY",
                State::Backup => "BACKUP_PRIORITY",
                _ => continue,
            };
            if !first && inst.cfg.notify_priority_changes {
                fifo.write(Subject::Instance, &inst.cfg.name, event, prio);
            }
        }
    }

    /// Run the instance's (and its sync group's) notify commands and hooks for a transition.
    fn notify_transition(&mut self, i: usize, from: State, to: State) {
        let t = match to {
            State::Master => NotifyState::Master,
            State::Backup => NotifyState::Backup,
            State::Fault => NotifyState::Fault,
            State::Initialize => NotifyState::Stop,
            State::Handover => return, // still serving: STOP comes when it lets go
        };
        let inst = &self.instances[i];
        let name = inst.cfg.name.clone();
        let prio = self.node.fsm(i).priority();
        let mut jobs = vec![(
            name.clone(),
            hooks::commands_for(&inst.cfg.notify, Subject::Instance, &name, t, prio),
            inst.cfg.notify.hooks.clone(),
        )];
        if let Some(g) = self.cfg.group_of(&name) {
            if self.group_notified.get(&g.name) != Some(&t) {
                self.group_notified.insert(g.name.clone(), t);
                jobs.push((
                    g.name.clone(),
                    hooks::commands_for(&g.notify, Subject::Group, &g.name, t, 0),
                    g.notify.hooks.clone(),
                ));
            }
        }
        if let Some(f) = &mut self.fifo {
            f.write(Subject::Instance, &name, t.as_str(), prio);
            if let Some(g) = jobs.get(1) {
                f.write(Subject::Group, &g.0, t.as_str(), 0);
            }
        }
        for (key, cmds, hook_names) in jobs {
            if let Some(n) = &self.notifier {
                n.notify(key.clone(), cmds);
            }
            for h in hook_names {
                if let Some(loaded) = self.hook_plugins.get(&h) {
                    let t = wasm::StateChange {
                        instance: key.clone(),
                        old_state: from.as_str().to_uppercase(),
                        new_state: t.as_str().to_string(),
                        priority: prio,
                    };
                    let _ = self
                        .hook_tx
                        .send((format!("{h}/{key}"), (loaded.plugin.clone(), t)));
                }
            }
        }
    }

    /// A counter changed: write the status within a second (not on every packet or check
    /// run; state changes are written at once).
    fn touch_status(&mut self) {
        if self.status_due.is_none() {
            self.status_due = Some(Instant::now() + Duration::from_secs(1));
        }
    }

    /// The daemon's state as status.json and the control socket show it.
    fn snapshot(&self) -> Status {
        Status {
            pid: std::process::id(),
            config: self.opts.config.display().to_string(),
            instances: self
                .instances
                .iter()
                .zip(self.node.fsms())
                .map(|(i, fsm)| i.status(fsm))
                .collect(),
            checks: self
                .checks
                .iter()
                .map(|c| CheckStatus {
                    name: c.def.name.clone(),
                    kind: c.kind().into(),
                    healthy: c.tracker.healthy(),
                    last_ok: c.last.as_ref().map(|r| r.ok),
                    message: c
                        .last
                        .as_ref()
                        .map(|r| r.message.clone())
                        .unwrap_or_default(),
                    duration_ms: c.last.as_ref().map_or(0, |r| r.duration.as_millis() as u64),
                    runs: c.runs,
                    rise: c.def.rise,
                    fall: c.def.fall,
                    streak: c.tracker.streak(),
                })
                .collect(),
            drops: self
                .global_drops
                .iter()
                .map(|(r, n)| (r.as_str(), *n))
                .collect(),
            last_reload: self.last_reload.clone(),
            queues: status::Queues {
                notify: self.notify_stats.counts(),
                hooks: self.hook_stats.counts(),
            },
            announcements: self.announce.status(&self.cfg),
        }
    }

    /// One line for systemd's STATUS=: how many instances are in each state.
    fn summary(&self) -> String {
        let count = |st: State| self.node.fsms().filter(|f| f.state() == st).count();
        format!(
            "{} instances: {} master, {} backup, {} fault",
            self.instances.len(),
            count(State::Master),
            count(State::Backup),
            count(State::Fault)
        )
    }

    fn flush_status(&mut self, now: Instant, force: bool) {
        if !force && self.status_due.is_none_or(|t| t > now) {
            return;
        }
        let status = self.snapshot();
        if let Some(m) = &self.metrics {
            m.set_instances(status.instances.iter().map(Into::into).collect());
            m.set_checks(status.checks.iter().map(Into::into).collect());
            m.set_announces(status.announcements.iter().map(Into::into).collect());
            m.set_drops(&status.drops);
        }
        self.systemd.send(&format!("STATUS={}", self.summary()));
        if let Err(e) = self.status_file.write(&status) {
            warn!("cannot write status file: {e}");
        }
        self.status_due = None;
    }
}

/// What of `owned` a crash may have left on the host: its routes (not looked up: an instance
/// has few), and those of its addresses that are there now. `present` keeps each interface's
/// addresses, listed once; None where they could not be listed, and then every VIP on it is
/// removed, as before the lookup.
async fn leftovers(
    nl: &Netlink,
    present: &mut HashMap<u32, Option<Vec<IpAddr>>>,
    owned: &vips::Owned,
) -> vips::Owned {
    let mut addrs = Vec::new();
    for (index, addr, prefix_len, opts) in &owned.addrs {
        let (index, addr) = (*index, *addr);
        if let std::collections::hash_map::Entry::Vacant(slot) = present.entry(index) {
            slot.insert(match nl.addresses(index).await {
                Ok(list) => Some(list.into_iter().map(|(a, _)| a).collect()),
                Err(e) => {
                    warn!("{e}; removing every VIP of the interface to be sure");
                    None
                }
            });
        }
        if present[&index]
            .as_ref()
            .is_none_or(|there| there.contains(&addr))
        {
            addrs.push((index, addr, *prefix_len, opts.clone()));
        }
    }
    vips::Owned {
        instance: owned.instance.clone(),
        addrs,
        routes: owned.routes.clone(),
        rules: owned.rules.clone(),
    }
}

fn link_result(id: u64, up: bool) -> CheckResult {
    CheckResult {
        check: id,
        ok: up,
        message: if up { "link up" } else { "link down" }.to_string(),
        duration: Duration::ZERO,
        value: None,
    }
}

/// The notify FIFO `global` names, opened (and its reader started); an error stops the start.
fn open_fifo(g: &config::Global) -> anyhow::Result<Option<crate::hooks::fifo::NotifyFifo>> {
    let Some(path) = &g.notify_fifo else {
        return Ok(None);
    };
    let run_as = match &g.notify_fifo_script {
        Some(_) => crate::exec::security::run_as(g.script_user.as_deref())
            .map_err(|e| anyhow::anyhow!("notify-fifo-script: script-user: {e}"))?,
        None => None,
    };
    let fifo = crate::hooks::fifo::NotifyFifo::open(path, g.notify_fifo_script.as_deref(), run_as)
        .with_context(|| format!("opening notify-fifo {}", path.display()))?;
    Ok(Some(fifo))
}

fn all_vips(cfg: &Config) -> Vec<IpAddr> {
    cfg.instances
        .iter()
        .flat_map(|i| i.vips.iter().map(|v| v.addr))
        .collect()
}

/// Gratuitous ARP / NA as on becoming master (`garp-repeat` rounds): the first at once, the
/// repeats spaced on a small task of their own.
fn announce(inst: &mut Instance) {
    let addrs = inst.vip_addrs.clone();
    announce_addrs(inst, &addrs, inst.cfg.garp.repeat);
}

/// `rounds` rounds for `addrs`: one now, and the rest on the instance's one repeat task,
/// `garp-interval` apart (`na-interval` for an IPv6 instance). A new round replaces the
/// repeats under way (taking over their addresses), so announcements asked for in a burst
/// never pile up tasks or frames.
fn announce_addrs(inst: &mut Instance, addrs: &[IpAddr], rounds: u32) {
    if let Err(e) = inst.announcer.announce(addrs) {
        if let Some(left_out) = inst.log_limit.allow("announce_failed", Instant::now()) {
            warn!(parent: &inst.span, similar_left_out = left_out, "announcement failed: {e}");
        }
    }
    let mut addrs = addrs.to_vec();
    if let Some((task, pending)) = inst.repeats.take() {
        if !task.is_finished() {
            task.abort();
            for a in pending {
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
        }
    }
    let repeats = rounds.saturating_sub(1);
    if repeats == 0 || addrs.is_empty() {
        return;
    }
    let announcer = inst.announcer.clone();
    let garp = &inst.cfg.garp;
    let gap = if inst.v6 {
        garp.na_interval
    } else {
        garp.interval
    };
    let gap = gap.max(Duration::from_millis(10));
    let epoch = inst.announce_epoch.clone();
    let mine = epoch.load(Ordering::SeqCst);
    let sent = addrs.clone();
    let task = tokio::spawn(async move {
        for _ in 0..repeats {
            tokio::time::sleep(gap).await;
            if epoch.load(Ordering::SeqCst) != mine {
                return; // stepped down since: these addresses are someone else's now
            }
            let _ = announcer.announce(&sent);
        }
    });
    inst.repeats = Some((task, addrs));
}
