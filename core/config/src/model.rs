//! The validated configuration the daemon runs: plain data, no parsing, no IO.
//!
//! `config::parse` builds it from KDL; `config::import` writes KDL from a keepalived.conf.
//! Every item that an error may point at keeps the byte span of its KDL node.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use miette::SourceSpan;

/// A whole config file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub global: Global,
    /// Named checks that instances `track`.
    pub checks: Vec<CheckDef>,
    /// Named WASM notify hooks that instances and sync groups call (`notify-hook`).
    pub hooks: Vec<HookDef>,
    pub instances: Vec<InstanceConfig>,
    pub sync_groups: Vec<SyncGroup>,
    /// Routing daemons that carry announcements (`speaker "edge" { ... }`).
    pub speakers: Vec<SpeakerDef>,
    /// Prefixes announced over BGP by a speaker while their checks are healthy.
    pub announces: Vec<AnnounceDef>,
    /// Where the settings that host checks report on are written.
    pub locations: Locations,
}

/// Byte spans of the settings that `config::host` reports on after parsing (the users and
/// commands scripts run with), kept by the parser so nothing parses the file twice.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Locations {
    /// The first `global`'s `script-user`.
    pub script_user: Option<SourceSpan>,
    /// The first `global`'s `notify-fifo-script`.
    pub notify_fifo_script: Option<SourceSpan>,
    /// (offset of a top-level node's span, setting) -> the span of the node's first child of
    /// that name, for the settings in [`Locations::KEYS`].
    pub settings: BTreeMap<(usize, &'static str), SourceSpan>,
}

impl Locations {
    /// The settings kept in [`Locations::settings`]: a check's user and script, the notify
    /// commands of an instance or sync group.
    pub const KEYS: [&'static str; 8] = [
        "user",
        "script",
        "notify-master-rx-lower-pri",
        "notify-master",
        "notify-backup",
        "notify-fault",
        "notify-stop",
        "notify",
    ];

    /// The span of child `key` of the top-level node whose span starts where `parent` does.
    pub fn setting(&self, parent: SourceSpan, key: &'static str) -> Option<SourceSpan> {
        self.settings.get(&(parent.offset(), key)).copied()
    }
}

impl Config {
    pub fn instance(&self, name: &str) -> Option<&InstanceConfig> {
        self.instances.iter().find(|i| i.name == name)
    }

    pub fn check(&self, name: &str) -> Option<&CheckDef> {
        self.checks.iter().find(|c| c.name == name)
    }

    pub fn speaker(&self, name: &str) -> Option<&SpeakerDef> {
        self.speakers.iter().find(|s| s.name == name)
    }

    pub fn hook(&self, name: &str) -> Option<&HookDef> {
        self.hooks.iter().find(|h| h.name == name)
    }

    /// The sync group an instance belongs to, if any.
    pub fn group_of(&self, instance: &str) -> Option<&SyncGroup> {
        self.sync_groups
            .iter()
            .find(|g| g.members.iter().any(|m| m == instance))
    }

    /// What a failed check does to each `preempt #false` instance that tracks checks of
    /// negative weight (where upkeep and keepalived differ): (instance, one line to show).
    pub fn sick_master_notes(&self) -> Vec<(String, String)> {
        let mut notes = Vec::new();
        for i in self.instances.iter().filter(|i| !i.preempt) {
            let negative: Vec<&str> = i
                .tracks
                .iter()
                .filter(|t| {
                    let weight = t.weight.or(self.check(&t.check).map(|c| c.weight));
                    weight.is_some_and(|w| w < 0)
                })
                .map(|t| t.check.as_str())
                .collect();
            if negative.is_empty() {
                continue;
            }
            let checks = negative.join(", ");
            let line = if self.group_of(&i.name).is_some() {
                format!("instance `{}` is nopreempt and tracks {checks} with a negative weight, but it is in a sync group: a master whose check fails keeps the VIPs, as in keepalived (handover-when-sick applies to instances outside sync groups only)", i.name)
            } else if i.handover_when_sick {
                format!("instance `{}` is nopreempt and tracks {checks} with a negative weight: a master whose check fails hands the VIPs over to a backup make-before-break (handover-when-sick, a deviation from keepalived, where the sick master keeps them because nopreempt backups never take over); `handover-when-sick #false` keeps keepalived's behaviour", i.name)
            } else {
                format!("instance `{}` is nopreempt with handover-when-sick #false: a master whose check ({checks}) fails keeps the VIPs, as in keepalived, because nopreempt backups never take over from it", i.name)
            };
            notes.push((i.name.clone(), line));
        }
        notes
    }
}

/// Daemon-wide settings (`global { ... }`).
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// Name of this host in logs and notify hooks (keepalived's `router_id`).
    pub router_id: Option<String>,
    /// Gratuitous ARP / unsolicited NA sent on becoming master, repeated this many times.
    pub garp_repeat: u32,
    /// Gap between the repeats above.
    pub garp_interval: Duration,
    /// While master, re-send GARP this often (None: never).
    pub garp_refresh: Option<Duration>,
    /// User that scripts and notify commands run as (keepalived's `script_user`); None: the
    /// daemon's own user.
    pub script_user: Option<String>,
    /// A notify command (or hook) still running after this long is killed with its process group.
    pub notify_timeout: Duration,
    /// Refuse to run a script as root when it, or a directory above it, could be changed by
    /// someone other than root (keepalived's `enable_script_security`, on by default here).
    pub script_security: bool,
    /// Where the Prometheus / OpenMetrics endpoint listens (`metrics listen="127.0.0.1:9650"`);
    /// None: no endpoint.
    pub metrics_listen: Option<SocketAddr>,
    /// Deviation from the RFC, on by default: a master whose priority drops announces it at
    /// once, and a preempting backup that hears a lower priority takes over at once instead of
    /// waiting out Master_Down_Interval. Equal priorities never preempt.
    pub fast_failover: bool,
    /// Make-before-break shutdown, on by default: a stopping master keeps its VIPs until the
    /// successor's first advert (or Skew_Time plus one interval).
    pub handover: bool,
    /// Real-time scheduling (SCHED_RR) at this priority, 1..=99 (keepalived's
    /// `vrrp_rt_priority`); None: normal scheduling.
    pub realtime_priority: Option<u8>,
    /// Lock the daemon's memory (mlockall) so adverts never wait on a page fault.
    pub lock_memory: bool,
    /// Default of [`InstanceConfig::master_down_adverts`] (`master-down-adverts`).
    pub master_down_adverts: u8,
    /// Delay of the second round of announcements after becoming master (keepalived's
    /// `garp_master_delay`); None (`"0s"`): no second round.
    pub garp_delay: Option<Duration>,
    /// Announcements per `garp-refresh` (keepalived's `garp_master_refresh_repeat`).
    pub garp_refresh_repeat: u32,
    /// Announcements a master sends when it hears a lower priority (keepalived's
    /// `garp_lower_prio_repeat`); None: `garp_repeat`.
    pub garp_lower_prio_repeat: Option<u32>,
    /// Delay of their second round (`garp_lower_prio_delay`); None: `garp_delay`'s.
    pub garp_lower_prio_delay: Option<Duration>,
    /// Gap between the repeats of unsolicited neighbour advertisements (IPv6), as
    /// `garp_interval` is for gratuitous ARP (keepalived's `vrrp_gna_interval`).
    pub na_interval: Duration,
    /// Default of [`InstanceConfig::lower_prio_no_advert`].
    pub lower_prio_no_advert: bool,
    /// Default of [`InstanceConfig::higher_prio_send_advert`].
    pub higher_prio_send_advert: bool,
    /// A FIFO that every transition is written to as a line, keepalived's format:
    /// `INSTANCE "web" MASTER 100` (keepalived's `notify_fifo` / `vrrp_notify_fifo`). Made at
    /// start when missing (and removed at exit then). Absolute.
    pub notify_fifo: Option<PathBuf>,
    /// Started at start with the FIFO's path appended, to read it; runs as `script-user` until
    /// the daemon stops (keepalived's `notify_fifo_script`).
    pub notify_fifo_script: Option<String>,
    /// Default of [`InstanceConfig::notify_priority_changes`].
    pub notify_priority_changes: bool,
    /// After a reload, every instance's state is written to the FIFO (keepalived's
    /// `fifo_write_vrrp_states_on_reload`).
    pub notify_fifo_states_on_reload: bool,
    /// The instances start (listen, advertise, elect) this long after the daemon (keepalived's
    /// `vrrp_startup_delay`: links such as bonds that pass no traffic for a while after boot).
    pub startup_delay: Duration,
    /// The multicast groups adverts go to and are heard on, instead of the RFCs' 224.0.0.18 /
    /// ff02::12 (keepalived's `vrrp_mcast_group4` / `vrrp_mcast_group6`); an instance's own
    /// `multicast-group` wins.
    pub multicast_group4: Option<std::net::Ipv4Addr>,
    pub multicast_group6: Option<std::net::Ipv6Addr>,
}

/// How an instance announces its VIPs (gratuitous ARP / unsolicited NA): `global`'s settings
/// with the instance's own over them, resolved when the file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Garp {
    /// Announcements on becoming master, at least one.
    pub repeat: u32,
    /// Gap between them for IPv4 (gratuitous ARP).
    pub interval: Duration,
    /// Gap between them for IPv6 (unsolicited NA).
    pub na_interval: Duration,
    /// A second round of `repeat` this long after becoming master; None: none.
    pub delay: Option<Duration>,
    /// While master, `refresh_repeat` announcements this often; None: never.
    pub refresh: Option<Duration>,
    pub refresh_repeat: u32,
    /// Announcements in answer to a lower-priority (or priority-0) advert while master; 0:
    /// none.
    pub lower_prio_repeat: u32,
    /// A second round of `lower_prio_repeat` this long after such an answer; None: none.
    pub lower_prio_delay: Option<Duration>,
}

/// keepalived's and upkeep's default delay of the second round of announcements.
pub const DEFAULT_GARP_DELAY: Duration = Duration::from_secs(5);

impl Garp {
    /// The settings of an instance that sets none of its own: `global`'s.
    pub fn from_global(g: &Global) -> Self {
        Self {
            repeat: g.garp_repeat.max(1),
            interval: g.garp_interval,
            na_interval: g.na_interval,
            delay: g.garp_delay,
            refresh: g.garp_refresh,
            refresh_repeat: g.garp_refresh_repeat.max(1),
            lower_prio_repeat: g.garp_lower_prio_repeat.unwrap_or(g.garp_repeat.max(1)),
            lower_prio_delay: g
                .garp_lower_prio_delay
                .or(g.garp_delay)
                .filter(|d| !d.is_zero()),
        }
    }
}

impl Default for Garp {
    fn default() -> Self {
        Self::from_global(&Global::default())
    }
}

/// Master_Down_Interval is this many advert intervals plus Skew_Time in the RFCs.
pub const RFC_MASTER_DOWN_ADVERTS: u8 = 3;
/// The range `master-down-adverts` accepts.
pub const MASTER_DOWN_ADVERTS: std::ops::RangeInclusive<u8> = 3..=20;

/// Default for [`Global::notify_timeout`].
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for Global {
    fn default() -> Self {
        Self {
            router_id: None,
            garp_repeat: 5,
            fast_failover: true,
            handover: true,
            realtime_priority: None,
            lock_memory: false,
            garp_interval: Duration::from_millis(0),
            garp_refresh: None,
            script_user: None,
            notify_timeout: DEFAULT_NOTIFY_TIMEOUT,
            script_security: true,
            metrics_listen: None,
            master_down_adverts: RFC_MASTER_DOWN_ADVERTS,
            garp_delay: Some(DEFAULT_GARP_DELAY),
            garp_refresh_repeat: 1,
            garp_lower_prio_repeat: None,
            garp_lower_prio_delay: None,
            na_interval: Duration::ZERO,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            notify_fifo: None,
            notify_fifo_script: None,
            notify_priority_changes: false,
            notify_fifo_states_on_reload: false,
            startup_delay: Duration::ZERO,
            multicast_group4: None,
            multicast_group6: None,
        }
    }
}

/// A health check (`check "name" { ... }`), keepalived's `vrrp_script`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckDef {
    pub name: String,
    pub kind: CheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failures before the check counts as failed.
    pub fall: u32,
    /// Consecutive successes before the check counts as healthy again.
    pub rise: u32,
    /// Default weight for instances that track it without their own `weight=`. For `File`
    /// checks it multiplies the file's value.
    pub weight: i32,
    /// User a `Script` check runs as (None: `Global::script_user`).
    pub user: Option<String>,
    /// Start in the failed state until the first results say otherwise (keepalived's
    /// `init_fail`); by default a check starts healthy.
    pub init_fail: bool,
    pub span: SourceSpan,
}

/// What a check looks at. Paths are kept as written: the daemon resolves relative ones against
/// the config file's directory.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// A command line (see [`crate::process`]: exec'd directly when plain, else by `/bin/sh -c`);
    /// exit 0 is healthy.
    Script { command: String },
    /// A WASM component run in the sandbox; it says healthy or not, with a message.
    Plugin {
        path: PathBuf,
        /// `config key="value"` pairs handed to the plugin, in file order; keys are unique.
        config: Vec<(String, String)>,
        grants: Grants,
        /// Cap on the plugin's linear memory, in bytes.
        memory_limit: u64,
        /// `sha256`: the file must have this digest (lower-case hex), at load and at reload.
        sha256: Option<String>,
    },
    /// Healthy while the link is up (keepalived's `track_interface`). Driven by netlink link
    /// events, not polled.
    Interface { name: String },
    /// The file holds an integer; the tracking instance's priority moves by value × weight
    /// (keepalived's `track_file`). A missing or unreadable file, or one that does not start
    /// with an integer, counts as 0.
    File { path: PathBuf },
    /// Healthy while at least `min_count` processes named `name` run (keepalived's
    /// `track_process`): matched against `/proc/PID/comm`, or with `full` against the whole
    /// command line (arguments joined by single spaces).
    Process {
        name: String,
        full: bool,
        min_count: u32,
    },
    /// Healthy while a socket listens on `port` (TCP: in LISTEN; UDP: bound and not
    /// connected), on `address` or on the wildcard address that covers it, or on any address
    /// without one. Learns of the listener closing at once (sock_diag destroy events); a new
    /// listener is seen at the next `interval`.
    Listener {
        port: u16,
        proto: ListenerProto,
        address: Option<std::net::IpAddr>,
    },
}

/// Which sockets a [`CheckKind::Listener`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerProto {
    Tcp,
    Udp,
}

impl ListenerProto {
    /// The config's spelling: `tcp`, `udp`.
    pub const fn name(self) -> &'static str {
        match self {
            ListenerProto::Tcp => "tcp",
            ListenerProto::Udp => "udp",
        }
    }
}

impl CheckKind {
    /// The setting that names this kind in the config file: `script`, `plugin`, ...
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Script { .. } => "script",
            Self::Plugin { .. } => "plugin",
            Self::Interface { .. } => "interface",
            Self::File { .. } => "file",
            Self::Process { .. } => "process",
            Self::Listener { .. } => "listener",
        }
    }
}

/// Default for a plugin's or hook's `memory-limit`: 16 MiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 16 << 20;
/// Largest `memory-limit`: 4 GiB, all a 32-bit linear memory can address.
pub const MAX_MEMORY_LIMIT: u64 = 4 << 30;

/// What a plugin may ask the host for: the WIT `capability` enum, and the config's spelling
/// (`allow "listening-sockets"`). The one list of them: the config reader, the plugin host
/// and `upkeep plugin run` all take it from here. Not `non_exhaustive`: the plugin host maps
/// every one onto the WIT's, and a new one must not compile until it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Read the listening sockets of the daemon's network namespace.
    ListeningSockets,
    /// Open TCP connections to granted addresses.
    TcpConnect,
    /// Read granted files.
    ReadFile,
    /// Write to the daemon's log.
    Log,
    /// Read the wall clock.
    Clock,
}

impl Capability {
    /// Every capability, in WIT order.
    pub const ALL: [Capability; 5] = [
        Capability::ListeningSockets,
        Capability::TcpConnect,
        Capability::ReadFile,
        Capability::Log,
        Capability::Clock,
    ];

    /// The WIT name, e.g. `listening-sockets` (also the config spelling).
    pub const fn name(self) -> &'static str {
        match self {
            Capability::ListeningSockets => "listening-sockets",
            Capability::TcpConnect => "tcp-connect",
            Capability::ReadFile => "read-file",
            Capability::Log => "log",
            Capability::Clock => "clock",
        }
    }

    /// Whether the grant names what it allows (`allow "tcp-connect" "addr:port" ...`).
    pub const fn takes_targets(self) -> bool {
        matches!(self, Capability::TcpConnect | Capability::ReadFile)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Capability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Capability::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Capability::ALL.iter().map(|c| c.name()).collect();
                format!(
                    "unknown capability `{s}` (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// What the operator lets a plugin do beyond computing (`allow "..."`). Everything is denied
/// by default; a plugin also gets only what it declares it needs, and a capability it declares
/// that is not granted here makes its load fail.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grants {
    /// `allow "listening-sockets"`: list the host's listening TCP/UDP sockets.
    pub listening_sockets: bool,
    /// `allow "tcp-connect" "addr:port" ...`: open TCP connections to these; port 0 means any
    /// port of that address.
    pub tcp_connect: Vec<SocketAddr>,
    /// `allow "read-file" "/path" ...`: read these files, and anything under these directories
    /// (after resolving symlinks and `..`).
    pub read_file: Vec<PathBuf>,
    /// `allow "log"`: write to the daemon's log.
    pub log: bool,
    /// `allow "clock"`: read the wall clock (otherwise it, and WASI's, reads as the Unix epoch).
    pub clock: bool,
}

impl Grants {
    /// Whether `c` is granted at all (for some target, for `tcp-connect` and `read-file`).
    pub fn allows(&self, c: Capability) -> bool {
        match c {
            Capability::ListeningSockets => self.listening_sockets,
            Capability::TcpConnect => !self.tcp_connect.is_empty(),
            Capability::ReadFile => !self.read_file.is_empty(),
            Capability::Log => self.log,
            Capability::Clock => self.clock,
        }
    }

    /// Grants `c` (one without targets; those are pushed to their list).
    pub fn grant(&mut self, c: Capability) {
        match c {
            Capability::ListeningSockets => self.listening_sockets = true,
            Capability::Log => self.log = true,
            Capability::Clock => self.clock = true,
            Capability::TcpConnect | Capability::ReadFile => {}
        }
    }
}

/// The commands run when an instance or sync group changes state (keepalived's `notify_*`),
/// and the WASM hooks it calls. Commands run by [`crate::process`], one at a time per instance or
/// group, in the order of the transitions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notify {
    /// `notify-master`: run on becoming master.
    pub master: Option<String>,
    /// `notify-backup`: run on becoming backup.
    pub backup: Option<String>,
    /// `notify-fault`: run on entering fault.
    pub fault: Option<String>,
    /// `notify-stop`: run when the instance stops (daemon shutdown, or removed by a reload).
    pub stop: Option<String>,
    /// `notify`: run on every transition, after the state's own command, with keepalived's
    /// arguments appended: `INSTANCE|GROUP NAME STATE PRIORITY`.
    pub any: Option<String>,
    /// `notify-hook`: names of `hook`s called on every transition.
    pub hooks: Vec<String>,
    /// `notify-master-rx-lower-pri` (instances only): run when the master hears a lower
    /// priority (another router took over meanwhile, e.g. a cloud address moved by API).
    pub master_rx_lower_pri: Option<String>,
}

impl Notify {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A WASM notify hook (`hook "name" { plugin "x.wasm" ... }`).
#[derive(Debug, Clone, PartialEq)]
pub struct HookDef {
    pub name: String,
    /// As written; the daemon resolves a relative path against the config file's directory.
    pub path: PathBuf,
    pub grants: Grants,
    pub memory_limit: u64,
    /// `sha256`: the file must have this digest (lower-case hex).
    pub sha256: Option<String>,
    /// A call still running after this long is interrupted (default: `global` `notify-timeout`).
    pub timeout: Duration,
    pub span: SourceSpan,
}

/// VRRP protocol version of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VrrpVersion {
    /// RFC 3768 (IPv4 only).
    V2,
    /// RFC 5798 (IPv4 and IPv6).
    V3,
}

/// The state an instance announces it wants at start (keepalived's `state`). Only a hint:
/// the election decides, but `Master` skips waiting a Master_Down_Interval when nobody answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialState {
    Backup,
    Master,
}

/// One VRRP virtual router (`instance "name" { ... }`).
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceConfig {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    /// Base priority, 1..=255 (255: address owner).
    pub priority: u8,
    pub advert_interval: Duration,
    pub version: VrrpVersion,
    pub preempt: bool,
    /// RFC 5798 Accept_Mode (keepalived's `accept` / `no_accept`): a master that is not the
    /// address owner accepts traffic addressed to its VIPs. `#false`: it holds them (answers
    /// ARP, routes for them) but drops what is sent to them, through the nftables table
    /// `inet upkeep`. The owner (priority 255) always accepts.
    pub accept: bool,
    pub preempt_delay: Duration,
    /// `handover-when-sick` (default on): with `preempt #false`, a master whose priority falls
    /// below `priority` (a failed check or tracker) hands over make-before-break, since its
    /// nopreempt backups would never take over; once per fall, and it keeps the VIPs if no one
    /// better takes over. Off: keepalived's behaviour (the sick master keeps the VIPs).
    pub handover_when_sick: bool,
    /// Master_Down_Interval is this many of the master's advert intervals plus Skew_Time
    /// (`master-down-adverts`; the RFCs' 3 unless set here or in `global`): a deviation for
    /// lossy links, as BFD's detect multiplier.
    pub master_down_adverts: u8,
    /// VRRPv2 simple-password authentication (max 8 bytes).
    pub auth_pass: Option<String>,
    pub initial_state: InitialState,
    /// Source address for adverts (and the tie-break address); default: the interface's primary.
    pub unicast_src: Option<IpAddr>,
    /// When non-empty, adverts go to these peers by unicast instead of multicast, and adverts
    /// from anyone else are dropped.
    pub unicast_peers: Vec<IpAddr>,
    /// TTL / hop limit of the unicast adverts (keepalived's `unicast_ttl`); 255 by default, as
    /// the RFCs want.
    pub unicast_ttl: u8,
    /// The multicast group of its adverts when not the RFCs' (its own `multicast-group`, or
    /// `global`'s for its family; keepalived's `mcast_dst_ip`).
    pub multicast_group: Option<IpAddr>,
    /// Peers whose adverts are accepted with a TTL / hop limit in this range (keepalived's
    /// `min_ttl` / `max_ttl`: a peer routed from another subnet); every other advert needs 255.
    pub peer_ttl: Vec<(IpAddr, std::ops::RangeInclusive<u8>)>,
    /// Every address held while master, advertised or not ([`Vip::advertise`]).
    pub vips: Vec<Vip>,
    pub routes: Vec<Route>,
    /// Policy routing rules held while master (keepalived's `virtual_rules`).
    pub rules: Vec<Rule>,
    pub tracks: Vec<Track>,
    pub notify: Notify,
    /// A macvlan with the RFC's virtual MAC for the VIPs (keepalived's `use_vmac`).
    pub vmac: Option<Vmac>,
    /// Gratuitous ARP / NA settings (`global`'s, with the instance's own over them).
    pub garp: Garp,
    /// A master that hears a lower priority does not answer with an advert of its own (the
    /// RFCs' behaviour; keepalived's `lower_prio_no_advert`). It still re-announces the VIPs
    /// (`garp-lower-prio-repeat`).
    pub lower_prio_no_advert: bool,
    /// A master that hears a higher priority sends one advert at its own priority before it
    /// steps down (keepalived's `higher_prio_send_advert`), so a keepalived winner with
    /// `garp_lower_prio_repeat` re-announces the VIPs.
    pub higher_prio_send_advert: bool,
    /// Priority changes are written to the notify FIFO (`MASTER_PRIORITY` /
    /// `BACKUP_PRIORITY` lines; keepalived's `notify_priority_changes`).
    pub notify_priority_changes: bool,
    pub span: SourceSpan,
}

/// The most VIPs one advert carries: its address count is one byte, in both versions.
pub const MAX_ADVERTISED_VIPS: usize = 255;

impl InstanceConfig {
    /// Whether, while master, traffic to its VIPs is dropped (Accept_Mode false, not the
    /// address owner).
    pub fn drops_vip_traffic(&self) -> bool {
        !self.accept && self.priority != 255
    }

    /// True when the instance's advertised VIPs are IPv6 (they share a family; VIPs that are
    /// not advertised may be of either). An instance without VIPs (`no-vip`) takes the family
    /// of its `unicast-src` / `unicast-peer`, else IPv4.
    pub fn is_ipv6(&self) -> bool {
        match self.vips.iter().find(|v| v.advertise) {
            Some(v) => v.addr.is_ipv6(),
            // `no-vip`: the family of its unicast addresses, else IPv4.
            None => self
                .unicast_src
                .or(self.unicast_peers.first().copied())
                .is_some_and(|a| a.is_ipv6()),
        }
    }

    /// The addresses the instance's adverts carry, in file order: its VIPs but those written
    /// `advertise=#false`. At most [`MAX_ADVERTISED_VIPS`] in a config that loads.
    pub fn advertised_addrs(&self) -> Vec<IpAddr> {
        self.vips
            .iter()
            .filter(|v| v.advertise)
            .map(|v| v.addr)
            .collect()
    }
}

/// A virtual IP address with its prefix length, e.g. `192.0.2.100/24`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// Interface to put it on, when not the instance's own.
    pub dev: Option<String>,
    /// Carried in the instance's adverts (the default). `advertise=#false` (keepalived's
    /// `virtual_ipaddress_excluded`): held and moved with the instance like the others, but left
    /// out of its adverts, so out of the 255 an advert can carry, and of either address family.
    pub advertise: bool,
    /// How the kernel is to hold it: label, scope, broadcast, DAD, lifetime.
    pub opts: VipOptions,
}

/// The instance's VIPs live on a macvlan of its interface whose MAC is the RFC's virtual
/// router MAC (00:00:5e:00:01:VRID, IPv6 00:00:5e:00:02:VRID), so that clients and switches
/// see one MAC whichever host is master (keepalived's `use_vmac`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vmac {
    /// The macvlan's name (default `vrrp.VRID`).
    pub name: String,
    /// Adverts go out of the base interface with its own MAC (keepalived's
    /// `vmac_xmit_base`) rather than out of the macvlan with the virtual MAC.
    pub xmit_base: bool,
}

impl Vmac {
    /// The virtual router MAC of `vrid` (RFC 5798 7.3).
    pub fn mac(vrid: u8, v6: bool) -> [u8; 6] {
        [0x00, 0x00, 0x5e, 0x00, if v6 { 0x02 } else { 0x01 }, vrid]
    }
}
/// The `ip addr add` options of a VIP (keepalived's `label`, `scope`, `brd`, `nodad`,
/// `preferred_lft`). The default is what upkeep did before they existed: scope global, the
/// subnet's broadcast, no duplicate address detection, preferred forever.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct VipOptions {
    /// IPv4 only: the address's label (`eth0:vip`; at most 15 bytes, as an interface name).
    pub label: Option<String>,
    /// The address scope (`rtnetlink`'s numbers: 0 global, 200 site, 253 link, 254 host);
    /// None: global.
    pub scope: Option<u8>,
    /// IPv4 only: the broadcast address; None: the subnet's, as `ip addr add ... brd +`.
    pub broadcast: Option<std::net::Ipv4Addr>,
    /// IPv6 only: let the kernel run duplicate address detection (`nodad=#false`). Off by
    /// default, as in keepalived: the VIP must answer at once, and VRRP is the arbiter.
    pub dad: bool,
    /// Seconds the address stays preferred as a source (`preferred-lft`; 0: deprecated at
    /// once, so never picked as a source); None: forever. Valid stays forever.
    pub preferred_lft: Option<u32>,
}

/// Address scopes by name, as `ip` spells them (`/etc/iproute2/rt_scopes`).
pub const SCOPES: [(&str, u8); 6] = [
    ("global", 0),
    ("universe", 0),
    ("site", 200),
    ("link", 253),
    ("host", 254),
    ("nowhere", 255),
];

/// A route installed while the instance is master.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    pub dest: IpAddr,
    pub prefix_len: u8,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub metric: Option<u32>,
    pub table: Option<u32>,
    /// The source address the host picks for traffic on it (`src=`, `ip route ... src`).
    pub src: Option<IpAddr>,
    /// Route scope ([`SCOPES`]' numbers); None: the kernel's default (global).
    pub scope: Option<u8>,
    pub kind: RouteKind,
    /// Take the gateway as on the link even outside its subnets (`onlink=#true`, `ip route
    /// ... onlink`: cloud gateways); for multipath, on every path.
    pub onlink: bool,
    /// Multipath (`nexthop` children, keepalived's `nexthop` and `or`): the route's traffic is
    /// spread over these. Empty: the single path of `via` / `dev`.
    pub nexthops: Vec<NextHop>,
}

/// What a route does with its traffic (`type=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RouteKind {
    /// Forward it (to `via`, out of `dev`).
    #[default]
    Unicast,
    /// Drop it silently.
    Blackhole,
    /// Drop it, answering ICMP host unreachable.
    Unreachable,
    /// Drop it, answering ICMP administratively prohibited.
    Prohibit,
    /// Stop the lookup in this table; the next policy rule is tried.
    Throw,
}

impl RouteKind {
    pub const ALL: [(&'static str, RouteKind); 5] = [
        ("unicast", RouteKind::Unicast),
        ("blackhole", RouteKind::Blackhole),
        ("unreachable", RouteKind::Unreachable),
        ("prohibit", RouteKind::Prohibit),
        ("throw", RouteKind::Throw),
    ];

    /// `ip route`'s name for it.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("unicast", |(n, _)| n)
    }
}

/// One path of a multipath route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NextHop {
    pub via: Option<IpAddr>,
    /// None: the route's `dev=`, else the instance's interface.
    pub dev: Option<String>,
    /// Share of the traffic relative to the other paths, 1..=256.
    pub weight: u16,
}

/// A policy routing rule installed while the instance is master (`ip rule add ...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    /// IPv6 rule (from `from=` / `to=`, else the instance's address family).
    pub v6: bool,
    /// Source prefix matched (`from=`); None: any.
    pub from: Option<(IpAddr, u8)>,
    /// Destination prefix matched (`to=`); None: any.
    pub to: Option<(IpAddr, u8)>,
    /// Incoming interface matched (`iif=`).
    pub iif: Option<String>,
    /// Outgoing interface matched (`oif=`).
    pub oif: Option<String>,
    /// Firewall mark matched (`fwmark=`), under `fwmask=` (None: all bits).
    pub fwmark: Option<u32>,
    pub fwmask: Option<u32>,
    /// Its place in the rule list (`priority=`, `ip rule ... pref`); None: the kernel's choice.
    pub priority: Option<u32>,
    pub action: RuleAction,
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleAction {
    /// Look the route up in this table (`table=`).
    Table(u32),
    Blackhole,
    Unreachable,
    Prohibit,
}

/// An instance's reference to a check, with the weight it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub check: String,
    /// Overrides the check's own weight. Negative: subtracted while failing; positive: added
    /// while healthy; 0: the instance goes to FAULT while the check fails. For a `File` check
    /// the file's value × weight is added; with weight 0 a non-zero value means FAULT.
    pub weight: Option<i32>,
}

/// Instances that change state together (keepalived's `vrrp_sync_group`).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncGroup {
    pub name: String,
    pub members: Vec<String>,
    /// Run for the group's transitions (with `GROUP` in `notify`'s arguments), besides each
    /// member's own.
    pub notify: Notify,
    pub span: SourceSpan,
}

/// The routing daemon a [`SpeakerDef`] drives. upkeep never speaks BGP itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeakerDaemon {
    /// BIRD 2, through its control socket: one `protocol static` per announcement, in an
    /// include file upkeep writes, enabled while announced.
    Bird,
}

impl SpeakerDaemon {
    pub const ALL: [(&'static str, SpeakerDaemon); 1] = [("bird", SpeakerDaemon::Bird)];

    pub fn name(self) -> &'static str {
        match self {
            SpeakerDaemon::Bird => "bird",
        }
    }
}

/// A routing daemon upkeep drives (`speaker "edge" { daemon "bird"; ... }`).
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerDef {
    pub name: String,
    pub daemon: SpeakerDaemon,
    /// The daemon's control socket (BIRD: `bird -s`), absolute.
    pub control: PathBuf,
    /// The file upkeep writes the announcements' protocols into; the daemon's own config
    /// includes it. Absolute.
    pub include: PathBuf,
    /// Bound on every exchange with the daemon (connect, each command and its reply).
    pub timeout: Duration,
    pub span: SourceSpan,
}

/// Default of [`SpeakerDef::control`] for BIRD.
pub const DEFAULT_BIRD_CONTROL: &str = "/run/bird/bird.ctl";
/// Default of [`SpeakerDef::timeout`].
pub const DEFAULT_SPEAKER_TIMEOUT: Duration = Duration::from_secs(2);

impl SpeakerDef {
    /// Default of [`SpeakerDef::include`]: `/run/upkeep/bird-NAME.conf`.
    pub fn default_include(name: &str) -> PathBuf {
        PathBuf::from(format!("/run/upkeep/bird-{name}.conf"))
    }
}

/// What an announcement does while a check it depends on fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFault {
    /// Withdraw the prefix: the routers send its traffic to the hosts that still announce it.
    Withdraw,
    /// Announce it with this worse MED instead, so that the prefix never vanishes while
    /// another host announces it better, and comes here only when no one else does.
    Demote { med: u32 },
}

impl OnFault {
    /// The config's names (`demote` takes its MED from `demote-med`).
    pub const NAMES: [&'static str; 2] = ["withdraw", "demote"];
}

/// A prefix announced by a speaker while the checks it tracks allow
/// (`announce "web" { speaker "edge"; prefix "203.0.113.10/32"; track "port80" }`).
#[derive(Debug, Clone, PartialEq)]
pub struct AnnounceDef {
    pub name: String,
    pub speaker: String,
    /// A single host: IPv4 /32 or IPv6 /128.
    pub prefix: IpAddr,
    pub prefix_len: u8,
    /// Withdrawn while any tracked check whose weight is 0 or negative fails (a positive weight
    /// only adds preference, which a withdraw-only announcement does not use yet).
    pub tracks: Vec<Track>,
    /// Announced only while this instance holds its VIPs on this host (master, or handing
    /// over): VRRP inside the rack, BGP toward the core.
    pub instance: Option<String>,
    /// The MED (BGP MULTI_EXIT_DISC) this host's route carries: routers prefer the lowest
    /// among the paths from one AS, so hosts with different MEDs are active and backup; None:
    /// no MED.
    pub med: Option<u32>,
    pub on_fault: OnFault,
    pub span: SourceSpan,
}

impl AnnounceDef {
    /// The name of its protocol in the routing daemon: `upkeep_` and the name with every
    /// character but ASCII letters, digits and `_` written as `_` (BIRD's symbol syntax).
    pub fn protocol_name(&self) -> String {
        protocol_name(&self.name)
    }
}

impl AnnounceDef {
    /// The protocol that carries it demoted ([`OnFault::Demote`]).
    pub fn demoted_protocol_name(&self) -> String {
        format!("{}_demoted", self.protocol_name())
    }
}

/// [`AnnounceDef::protocol_name`] of an announcement named `name`.
pub fn protocol_name(name: &str) -> String {
    let tail: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("upkeep_{tail}")
}
