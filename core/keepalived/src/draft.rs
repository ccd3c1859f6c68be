//! What the translation reads a keepalived config into before any KDL is written: the
//! global settings, trackers, instances and groups, each with the line it came from, and the
//! [`Importer`] that holds them.

use std::time::Duration;

use crate::lexer::Pos;
use crate::ImportWarning;

pub(crate) type At<T> = Option<(T, Pos)>;

#[derive(Default)]
pub(crate) struct KGlobal {
    pub(crate) router_id: At<String>,
    pub(crate) script_user: At<String>,
    pub(crate) garp_repeat: At<i64>,
    pub(crate) garp_interval: At<Duration>,
    pub(crate) garp_refresh: At<Duration>,
    /// `vrrp_version`: the default for instances without `version`.
    pub(crate) version: Option<i64>,
    /// `enable_script_security`.
    pub(crate) script_security: Option<Pos>,
    /// `vrrp_strict`: instances without `accept` get `accept #false`.
    pub(crate) strict: Option<Pos>,
    /// Settings already in upkeep's words (`garp-delay "5s"`...), in file order.
    pub(crate) settings: Vec<(String, Pos)>,
    /// `notify_fifo` / `vrrp_notify_fifo` (true: the `vrrp_` one): path, where.
    pub(crate) fifos: Vec<(bool, String, Pos)>,
    /// `notify_fifo_script` / `vrrp_notify_fifo_script`: command, where.
    pub(crate) fifo_scripts: Vec<(bool, String, Pos)>,
    pub(crate) comments: Vec<String>,
}

pub(crate) struct KCheck {
    pub(crate) name: String,
    pub(crate) pos: Pos,
    pub(crate) script: At<String>,
    pub(crate) interval: At<Duration>,
    pub(crate) timeout: At<Duration>,
    pub(crate) fall: At<i64>,
    pub(crate) rise: At<i64>,
    pub(crate) weight: At<i64>,
    pub(crate) user: At<String>,
    pub(crate) init_fail: Option<Pos>,
}

/// `track_file NAME { file PATH; weight N }` (or `vrrp_track_file`).
pub(crate) struct KFile {
    pub(crate) name: String,
    pub(crate) pos: Pos,
    pub(crate) file: At<String>,
    pub(crate) weight: At<i64>,
}

/// `vrrp_track_process NAME { process CMD; quorum N; full_command; weight N }`.
pub(crate) struct KProcess {
    pub(crate) name: String,
    pub(crate) pos: Pos,
    pub(crate) process: At<String>,
    pub(crate) full: bool,
    pub(crate) quorum: At<i64>,
    pub(crate) weight: At<i64>,
}

/// What a `track_*` entry follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrackKind {
    Script,
    File,
    Process,
    Interface,
}

impl TrackKind {
    /// The keepalived keyword of the list the entry is in.
    pub(crate) fn keyword(self) -> &'static str {
        match self {
            Self::Script => "track_script",
            Self::File => "track_file",
            Self::Process => "track_process",
            Self::Interface => "track_interface",
        }
    }

    /// The keepalived block that defines what the entry names.
    pub(crate) fn definition(self) -> &'static str {
        match self {
            Self::Script => "vrrp_script",
            Self::File => "track_file",
            Self::Process => "vrrp_track_process",
            Self::Interface => "interface",
        }
    }
}

/// One entry of a `track_*` list: `NAME [weight N [reverse]]`.
#[derive(Debug, Clone)]
pub(crate) struct KTrack {
    pub(crate) kind: TrackKind,
    pub(crate) name: String,
    pub(crate) weight: Option<i64>,
    pub(crate) pos: Pos,
}

/// keepalived's `notify*` commands of an instance or sync group.
#[derive(Default)]
pub(crate) struct KNotify {
    pub(crate) master: At<String>,
    pub(crate) backup: At<String>,
    pub(crate) fault: At<String>,
    pub(crate) stop: At<String>,
    pub(crate) any: At<String>,
    /// `notify_master_rx_lower_pri` (instances only).
    pub(crate) rx_lower_pri: At<String>,
}

pub(crate) struct KVip {
    pub(crate) addr: String,
    pub(crate) dev: Option<String>,
    /// `label`, `scope`, `brd`, `preferred_lft` as written, and `-nodad` (DAD on).
    pub(crate) label: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) brd: Option<String>,
    pub(crate) preferred_lft: Option<String>,
    pub(crate) dad: bool,
    pub(crate) pos: Pos,
    /// From `virtual_ipaddress_excluded`.
    pub(crate) excluded: bool,
}

pub(crate) struct KRoute {
    pub(crate) dest: String,
    pub(crate) via: Option<String>,
    pub(crate) dev: Option<String>,
    pub(crate) metric: Option<i64>,
    pub(crate) table: Option<i64>,
    pub(crate) src: Option<String>,
    pub(crate) scope: Option<String>,
    /// `blackhole`, `unreachable`, `prohibit`, `throw` (None: unicast).
    pub(crate) kind: Option<String>,
    /// `onlink` (on the route, or on any of its paths).
    pub(crate) onlink: bool,
    /// `nexthop via G dev X weight W ...`, or `via G or G2` (each `or` a path).
    pub(crate) nexthops: Vec<KNextHop>,
}

/// A `virtual_rules` line, its values as written (numbers checked).
#[derive(Default)]
pub(crate) struct KRule {
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) iif: Option<String>,
    pub(crate) oif: Option<String>,
    pub(crate) fwmark: Option<(u32, Option<u32>)>,
    pub(crate) priority: Option<i64>,
    pub(crate) table: Option<i64>,
    /// `blackhole`, `unreachable`, `prohibit`.
    pub(crate) kind: Option<String>,
}

#[derive(Default)]
pub(crate) struct KNextHop {
    pub(crate) via: Option<String>,
    pub(crate) dev: Option<String>,
    pub(crate) weight: Option<i64>,
}

pub(crate) struct KInstance {
    pub(crate) name: String,
    pub(crate) pos: Pos,
    pub(crate) master: At<bool>,
    pub(crate) interface: At<String>,
    pub(crate) vrid: At<i64>,
    pub(crate) priority: At<i64>,
    pub(crate) advert: At<Duration>,
    pub(crate) version: At<i64>,
    pub(crate) nopreempt: Option<Pos>,
    /// `accept` (true) / `no_accept` (false).
    pub(crate) accept: At<bool>,
    /// `strict_mode` (on: as `vrrp_strict` for this instance).
    pub(crate) strict: At<bool>,
    pub(crate) preempt_delay: At<Duration>,
    pub(crate) auth: At<String>,
    pub(crate) src: At<String>,
    /// Address, where, and its options in upkeep's words (` min-ttl=60`).
    pub(crate) peers: Vec<(String, Pos, String)>,
    pub(crate) vips: Vec<KVip>,
    pub(crate) routes: Vec<(KRoute, Pos)>,
    pub(crate) rules: Vec<(KRule, Pos)>,
    pub(crate) tracks: Vec<KTrack>,
    pub(crate) notify: KNotify,
    /// `use_vmac [NAME]`.
    pub(crate) vmac: Option<(Option<String>, Pos)>,
    pub(crate) vmac_xmit_base: Option<Pos>,
    /// Settings already in upkeep's words (`garp-delay "5s"`...), in file order.
    pub(crate) settings: Vec<(String, Pos)>,
    /// `no_virtual_ipaddress`.
    pub(crate) no_vip: Option<Pos>,
}

pub(crate) struct KGroup {
    pub(crate) name: String,
    pub(crate) pos: Pos,
    pub(crate) members: Vec<(String, Pos)>,
    /// keepalived applies a group's trackers to every member; so does the import.
    pub(crate) tracks: Vec<KTrack>,
    pub(crate) notify: KNotify,
}

#[derive(Default)]
pub(crate) struct Importer {
    pub(crate) files: Vec<String>,
    pub(crate) warnings: Vec<ImportWarning>,
    pub(crate) global: KGlobal,
    pub(crate) checks: Vec<KCheck>,
    pub(crate) files_tracked: Vec<KFile>,
    pub(crate) processes: Vec<KProcess>,
    pub(crate) instances: Vec<KInstance>,
    pub(crate) groups: Vec<KGroup>,
    /// `virtual_server` / `virtual_server_group` blocks, warned about once at the end.
    pub(crate) lvs: Vec<Pos>,
    /// Tracker definitions left out because they track nothing (see `drop_definition`).
    pub(crate) dropped: Vec<(TrackKind, String)>,
}
