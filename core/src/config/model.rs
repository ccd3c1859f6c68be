//! The validated configuration the daemon runs: plain data, no parsing, no IO.
//!
//! `config::parse` builds it from KDL; `config::import` writes KDL from a keepalived.conf.
//! Every item that an error may point at keeps the byte span of its KDL node.

use std::net::IpAddr;
use std::time::Duration;

use miette::SourceSpan;

/// A whole config file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub global: Global,
    /// Named checks that instances `track`.
    pub checks: Vec<CheckDef>,
    pub instances: Vec<InstanceConfig>,
    pub sync_groups: Vec<SyncGroup>,
}

impl Config {
    pub fn instance(&self, name: &str) -> Option<&InstanceConfig> {
        self.instances.iter().find(|i| i.name == name)
    }

    pub fn check(&self, name: &str) -> Option<&CheckDef> {
        self.checks.iter().find(|c| c.name == name)
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
    /// User that scripts run as (keepalived's `script_user`).
    pub script_user: Option<String>,
}

impl Default for Global {
    fn default() -> Self {
        Self {
            router_id: None,
            garp_repeat: 5,
            garp_interval: Duration::from_millis(0),
            garp_refresh: None,
            script_user: None,
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
    /// Default weight for instances that track it without their own `weight=`.
    pub weight: i32,
    pub user: Option<String>,
    pub span: SourceSpan,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// A command run through `/bin/sh -c`; exit 0 is healthy.
    Script { command: String },
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
    /// VRRPv2 simple-password authentication (max 8 bytes).
    pub auth_pass: Option<String>,
    pub initial_state: InitialState,
    /// Source address for adverts (and the tie-break address); default: the interface's primary.
    pub unicast_src: Option<IpAddr>,
    /// When non-empty, adverts go to these peers by unicast instead of multicast, and adverts
    /// from anyone else are dropped.
    pub unicast_peers: Vec<IpAddr>,
    pub vips: Vec<Vip>,
    pub routes: Vec<Route>,
    pub tracks: Vec<Track>,
    pub span: SourceSpan,
}

impl InstanceConfig {
    /// True when the instance's VIPs are IPv6 (all VIPs of one instance share a family).
    pub fn is_ipv6(&self) -> bool {
        self.vips.first().is_some_and(|v| v.addr.is_ipv6())
    }
}

/// A virtual IP address with its prefix length, e.g. `192.0.2.100/24`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// Interface to put it on, when not the instance's own.
    pub dev: Option<String>,
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
    /// while healthy; 0: the instance goes to FAULT while the check fails.
    pub weight: Option<i32>,
}

/// Instances that change state together (keepalived's `vrrp_sync_group`).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncGroup {
    pub name: String,
    pub members: Vec<String>,
    pub span: SourceSpan,
}
