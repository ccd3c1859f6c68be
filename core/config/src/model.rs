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

    pub fn hook(&self, name: &str) -> Option<&HookDef> {
        self.hooks.iter().find(|h| h.name == name)
    }

    /// The sync group an instance belongs to, if any.
    pub fn group_of(&self, instance: &str) -> Option<&SyncGroup> {
        self.sync_groups
            .iter()
            .find(|g| g.members.iter().any(|m| m == instance))
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
    pub preempt_delay: Duration,
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
    pub tracks: Vec<Track>,
    pub notify: Notify,
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
}

/// A route installed while the instance is master.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    pub dest: IpAddr,
    pub prefix_len: u8,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub metric: Option<u32>,
    pub table: Option<u32>,
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
