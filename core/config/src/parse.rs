//! Reads an upkeep config file (KDL) into a [`Config`], checking everything the daemon relies
//! on, so that a config which loads is one the daemon can run.
//!
//! Every problem in the file is collected, not only the first, each with the span it is about,
//! a label and a hint: `miette` renders them all, and a refused reload logs the one-line
//! `Display` that starts with `file:line:col:`. The schema is documented in docs/config.md.

use std::collections::HashMap;
use std::fmt::{self, Display};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kdl::{KdlDocument, KdlEntry, KdlError, KdlNode, KdlValue};
use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};

use super::model::{
    CheckDef, CheckKind, Config, Global, Grants, HookDef, InitialState, InstanceConfig, Locations,
    Notify, Route, SyncGroup, Track, Vip, VrrpVersion, DEFAULT_MEMORY_LIMIT, MASTER_DOWN_ADVERTS,
    MAX_MEMORY_LIMIT, RFC_MASTER_DOWN_ADVERTS,
};

/// Why a config file was refused.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read config file: {source}", path.display())]
    #[diagnostic(
        code(upkeep::config::io),
        help("check that the file exists and that the daemon may read it")
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file was read but is not a valid config. `problems` holds every problem found, in
    /// file order; `Display` is the first one as `file:line:col: message`.
    #[error("{}", headline(.file, .problems))]
    #[diagnostic(code(upkeep::config::invalid))]
    Invalid {
        file: String,
        #[source_code]
        source_code: NamedSource<String>,
        #[related]
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// Every problem as `(line, column, message)`, 1-based, in file order. An unreadable file
    /// gives one entry at line 0, column 0: it is not about a place in the file.
    pub fn problems(&self) -> Vec<(usize, usize, String)> {
        match self {
            Self::Io { .. } => vec![(0, 0, self.to_string())],
            Self::Invalid { problems, .. } => problems
                .iter()
                .map(|p| (p.line, p.column, p.message.clone()))
                .collect(),
        }
    }
}

/// The one-line summary: the first problem with its place, and how many follow.
fn headline(file: &str, problems: &[Problem]) -> String {
    let Some(first) = problems.first() else {
        return format!("{file}: invalid config");
    };
    let more = match problems.len() - 1 {
        0 => String::new(),
        1 => " (and 1 more problem)".to_owned(),
        n => format!(" (and {n} more problems)"),
    };
    // The daemon logs this as one line, so no message may break it.
    let message = first.message.replace(['\n', '\r'], " ");
    format!("{file}:{}:{}: {message}{more}", first.line, first.column)
}

/// One problem in a config file: what is wrong, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    /// Short text shown under the span.
    pub label: String,
    pub help: Option<String>,
    pub span: SourceSpan,
    /// 1-based line of the span's start.
    pub line: usize,
    /// 1-based column, in characters, of the span's start.
    pub column: usize,
}

impl Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn help<'a>(&'a self) -> Option<Box<dyn Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn Display>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let label = LabeledSpan::new_with_span(Some(self.label.clone()), self.span);
        Some(Box::new(std::iter::once(label)))
    }
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_str(&source, &path.display().to_string())
}

/// Parses and validates config text; `file_name` names it in messages.
///
/// KDL v2 is the syntax. `KdlDocument::parse` also accepts KDL v1 when the `kdl` crate is built
/// with its `v1-fallback` feature.
///
/// The text is read by [`super::fast_kdl`] where it can; whatever it leaves, and any config
/// with a problem, is read by the `kdl` crate (a large file on two threads, [`super::split`]),
/// so every error is worded and located by the same parse.
pub fn parse_str(source: &str, file_name: &str) -> Result<Config, ConfigError> {
    if let Some(doc) = super::fast_kdl::parse(source) {
        if let Ok(config) = parse_str_with(source, file_name, |_| Ok(doc)) {
            return Ok(config);
        }
    }
    parse_str_kdl_only(source, file_name)
}

/// [`parse_str`] with the kdl crate parsing every text (no quick reader): the reference the
/// `config_parse` fuzz target holds the quick path to.
#[doc(hidden)]
pub fn parse_str_kdl_only(source: &str, file_name: &str) -> Result<Config, ConfigError> {
    parse_str_with(source, file_name, super::split::parse)
}

/// [`parse_str`] with `parse` as the KDL parser.
pub(super) fn parse_str_with(
    source: &str,
    file_name: &str,
    parse: impl FnOnce(&str) -> Result<KdlDocument, KdlError>,
) -> Result<Config, ConfigError> {
    let mut cx = Cx {
        src: source,
        problems: Vec::new(),
    };
    let config = match parse(source) {
        Ok(doc) => Some(cx.document(&doc)),
        Err(err) => {
            cx.syntax(&err);
            None
        }
    };
    match config {
        Some(config) if cx.problems.is_empty() => Ok(config),
        _ => Err(cx.into_error(file_name)),
    }
}

/// Parses a duration: `"1s"`, `"100ms"`, `"2.5s"`, `"1m"`, `"1h"`, `"500us"`, or a bare number
/// of seconds (`"2"`, `"0.1"`). Exact decimal arithmetic, so `"0.1"` is exactly 100ms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".to_owned());
    }
    if text.starts_with('-') {
        return Err(format!("`{text}` is negative"));
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let nanos_per_unit: u128 = match unit.trim() {
        "" | "s" | "sec" => 1_000_000_000,
        "ms" => 1_000_000,
        "us" | "µs" => 1_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        other => return Err(format!("`{text}` has an unknown unit `{other}`")),
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits_ok(whole) || !digits_ok(frac) {
        return Err(format!("`{text}` is not a number followed by a unit"));
    }
    let too_long = || format!("`{text}` is too long");
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_long())?
    };
    // More than 18 fraction digits can't matter at nanosecond resolution.
    let frac = &frac[..frac.len().min(18)];
    let frac_value: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| too_long())?
    };
    let scale = 10u128.pow(frac.len() as u32);
    let nanos = whole
        .checked_mul(nanos_per_unit)
        .and_then(|n| n.checked_add(frac_value * nanos_per_unit / scale))
        .ok_or_else(too_long)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_long())?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

const DURATION_HELP: &str =
    "write a duration like \"1s\", \"100ms\", \"2.5s\", \"1m\", or a bare number of seconds";

/// Parses a size in bytes: `"16MiB"`, `"512KiB"`, `"1GiB"`, `"1048576"` or `"1048576B"`.
/// Units are powers of 1024; the decimal `KB`/`MB`/`GB` are refused rather than guessed at.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!("`{text}` is not a number followed by a unit"));
    }
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        u @ ("K" | "KB" | "k" | "kB" | "M" | "MB" | "G" | "GB") => {
            let binary = format!("{}iB", &u[..1].to_ascii_uppercase());
            return Err(format!(
                "`{text}`: write `{binary}` (sizes here are powers of 1024)"
            ));
        }
        other => return Err(format!("`{text}` has an unknown unit `{other}`")),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("`{text}` is too large"))
}

const SIZE_HELP: &str =
    "write a size like \"16MiB\", \"512KiB\", \"1GiB\" or a number of bytes; at least 64KiB, at most 4GiB";

/// Smallest `memory-limit`: one WebAssembly page.
const MIN_MEMORY_LIMIT: u64 = 64 << 10;

/// What a plugin may be granted with `allow`.
const CAPABILITIES: &[&str] = &[
    "listening-sockets",
    "tcp-connect",
    "read-file",
    "log",
    "clock",
];

const TOP_KEYS: &[&str] = &["global", "check", "hook", "instance", "sync-group"];
const GLOBAL_KEYS: &[&str] = &[
    "router-id",
    "garp-repeat",
    "garp-interval",
    "garp-refresh",
    "script-user",
    "notify-timeout",
    "script-security",
    "metrics",
    "fast-failover",
    "handover",
    "realtime-priority",
    "lock-memory",
    "master-down-adverts",
];
/// The settings that say what a check looks at; a check has exactly one.
const CHECK_KINDS: &[&str] = &["script", "plugin", "interface", "file", "process"];
const CHECK_KEYS: &[&str] = &[
    "script",
    "plugin",
    "interface",
    "file",
    "process",
    "interval",
    "timeout",
    "fall",
    "rise",
    "weight",
    "user",
    "init-fail",
    "config",
    "allow",
    "memory-limit",
    "min-count",
];
const HOOK_KEYS: &[&str] = &["plugin", "allow", "memory-limit", "timeout"];
const INSTANCE_KEYS: &[&str] = &[
    "interface",
    "vrid",
    "priority",
    "advert-interval",
    "version",
    "preempt",
    "nopreempt",
    "preempt-delay",
    "master-down-adverts",
    "auth-pass",
    "initial-state",
    "unicast-src",
    "unicast-peer",
    "vip",
    "route",
    "track",
    "notify-master",
    "notify-backup",
    "notify-fault",
    "notify-stop",
    "notify",
    "notify-hook",
];
const SYNC_GROUP_KEYS: &[&str] = &[
    "member",
    "notify-master",
    "notify-backup",
    "notify-fault",
    "notify-stop",
    "notify",
    "notify-hook",
];
/// Settings that may appear more than once in their block.
const REPEATABLE: &[&str] = &[
    "unicast-peer",
    "vip",
    "route",
    "track",
    "member",
    "config",
    "allow",
    "notify-hook",
];

/// The check kinds a check setting applies to (those not listed apply to every kind).
fn applies_to(key: &str) -> &'static [&'static str] {
    match key {
        "interval" => &["script", "plugin", "file", "process"],
        "timeout" => &["script", "plugin"],
        "fall" | "rise" | "init-fail" => &["script", "plugin", "process"],
        "user" => &["script"],
        "config" | "allow" | "memory-limit" => &["plugin"],
        "min-count" => &["process"],
        _ => CHECK_KINDS,
    }
}

/// keepalived spellings people will type out of habit, and what they are called here.
const KEEPALIVED_NAMES: &[(&str, &str)] = &[
    ("global_defs", "global"),
    ("vrrp_script", "check"),
    ("vrrp_instance", "instance"),
    ("vrrp_sync_group", "sync-group"),
    ("router_id", "router-id"),
    ("script_user", "script-user"),
    ("vrrp_garp_master_repeat", "garp-repeat"),
    ("vrrp_garp_interval", "garp-interval"),
    ("vrrp_garp_master_refresh", "garp-refresh"),
    ("virtual_router_id", "vrid"),
    ("advert_int", "advert-interval"),
    ("state", "initial-state"),
    ("preempt_delay", "preempt-delay"),
    ("authentication", "auth-pass"),
    ("auth_pass", "auth-pass"),
    ("unicast_src_ip", "unicast-src"),
    ("unicast_peer", "unicast-peer"),
    ("virtual_ipaddress", "vip"),
    ("virtual_routes", "route"),
    ("track_script", "track"),
    ("track_interface", "track"),
    ("track_file", "track"),
    ("track_process", "track"),
    ("vrrp_track_file", "check"),
    ("vrrp_track_process", "check"),
    ("init_fail", "init-fail"),
    ("quorum", "min-count"),
    ("group", "member"),
    ("enable_script_security", "script-security"),
    ("notify_master", "notify-master"),
    ("notify_backup", "notify-backup"),
    ("notify_fault", "notify-fault"),
    ("notify_stop", "notify-stop"),
];

/// A one-line example of each setting, for hints.
fn example(key: &str) -> &'static str {
    match key {
        "global" => "global { router-id \"h1\" }",
        "check" => "check \"port80\" { script \"/etc/upkeep/check_port80.sh\" }",
        "instance" => "instance \"web\" { interface \"eth0\"; vrid 51; vip \"192.0.2.100/24\" }",
        "sync-group" => "sync-group \"g1\" { member \"web\" \"db\" }",
        "hook" => "hook \"to-slack\" { plugin \"/etc/upkeep/slack.wasm\"; allow \"log\" }",
        "notify-timeout" => "notify-timeout \"5s\"",
        "metrics" => "metrics listen=\"127.0.0.1:9650\"",
        "script-security" => "script-security #true",
        "fast-failover" => "fast-failover #true",
        "handover" => "handover #true",
        "realtime-priority" => "realtime-priority 50",
        "lock-memory" => "lock-memory #true",
        "plugin" => "plugin \"/etc/upkeep/http_check.wasm\"",
        "file" => "file \"/run/upkeep/weight\"",
        "process" => "process \"nginx\"",
        "min-count" => "min-count 2",
        "init-fail" => "init-fail #true",
        "config" => "config url=\"http://127.0.0.1/health\" expect=\"200\"",
        "allow" => "allow \"tcp-connect\" \"127.0.0.1:80\"",
        "memory-limit" => "memory-limit \"16MiB\"",
        "notify-master" => "notify-master \"/etc/upkeep/to_master.sh\"",
        "notify-backup" => "notify-backup \"/etc/upkeep/to_backup.sh\"",
        "notify-fault" => "notify-fault \"/etc/upkeep/to_fault.sh\"",
        "notify-stop" => "notify-stop \"/etc/upkeep/stopped.sh\"",
        "notify" => "notify \"/etc/upkeep/notify.sh\"",
        "notify-hook" => "notify-hook \"to-slack\"",
        "router-id" => "router-id \"h1\"",
        "garp-repeat" => "garp-repeat 5",
        "garp-interval" => "garp-interval \"10ms\"",
        "garp-refresh" => "garp-refresh \"60s\"",
        "script-user" => "script-user \"nobody\"",
        "script" => "script \"/etc/upkeep/check_port80.sh\"",
        "interval" => "interval \"2s\"",
        "timeout" => "timeout \"1s\"",
        "fall" => "fall 2",
        "rise" => "rise 2",
        "weight" => "weight -20",
        "user" => "user \"nobody\"",
        "interface" => "interface \"eth0\"",
        "vrid" => "vrid 51",
        "priority" => "priority 100",
        "advert-interval" => "advert-interval \"1s\"",
        "version" => "version 3",
        "preempt" => "preempt #false",
        "nopreempt" => "nopreempt",
        "preempt-delay" => "preempt-delay \"5s\"",
        "master-down-adverts" => "master-down-adverts 6",
        "auth-pass" => "auth-pass \"secret\"",
        "initial-state" => "initial-state \"backup\"",
        "unicast-src" => "unicast-src \"192.0.2.1\"",
        "unicast-peer" => "unicast-peer \"192.0.2.2\" \"192.0.2.3\"",
        "vip" => "vip \"192.0.2.100/24\" dev=\"eth1\"",
        "route" => "route \"198.51.100.0/24\" via=\"192.0.2.254\" dev=\"eth0\" metric=10 table=100",
        "track" => "track \"port80\" weight=-20",
        "member" => "member \"web\" \"db\"",
        _ => "",
    }
}

/// The value types settings expect, for messages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    String,
    Integer,
    Bool,
    Duration,
}

impl Expect {
    fn describe(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Integer => "a whole number",
            Self::Bool => "#true or #false",
            Self::Duration => "a duration",
        }
    }
}

fn kind_of(value: &KdlValue) -> &'static str {
    match value {
        KdlValue::String(_) => "a string",
        KdlValue::Integer(_) => "a whole number",
        KdlValue::Float(_) => "a decimal number",
        KdlValue::Bool(_) => "a boolean",
        KdlValue::Null => "#null",
    }
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// How a message names a value: `vrid`, or `via=` of `route`.
fn what(key: &str, entry: &KdlEntry) -> String {
    match entry.name() {
        Some(prop) => format!("`{}=` of `{key}`", prop.value()),
        None => format!("`{key}`"),
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn span_end(span: SourceSpan) -> usize {
    span.offset() + span.len()
}

fn span_between(start: usize, end: usize) -> SourceSpan {
    SourceSpan::new(start.into(), end.saturating_sub(start))
}

/// A node's name and arguments, without its block: what an error about the whole node points
/// at (pointing at a whole instance block would underline dozens of lines).
fn head(node: &KdlNode) -> SourceSpan {
    let end = node
        .entries()
        .iter()
        .map(|e| span_end(e.span()))
        .chain(std::iter::once(span_end(node.name().span())))
        .max()
        .unwrap_or(0);
    span_between(node.span().offset(), end)
}

/// Where the settings `config::host` reports on are written.
fn locations(doc: &KdlDocument) -> Locations {
    let child = |node: &KdlNode, key: &str| {
        node.children()?
            .nodes()
            .iter()
            .find(|c| c.name().value() == key)
            .map(KdlNode::span)
    };
    let mut at = Locations {
        script_user: doc
            .nodes()
            .iter()
            .find(|n| n.name().value() == "global")
            .and_then(|g| child(g, "script-user")),
        ..Locations::default()
    };
    for node in doc.nodes() {
        for key in Locations::KEYS {
            if let Some(span) = child(node, key) {
                at.settings
                    .entry((node.span().offset(), key))
                    .or_insert(span);
            }
        }
    }
    at
}

fn positional(node: &KdlNode) -> Vec<&KdlEntry> {
    node.entries()
        .iter()
        .filter(|e| e.name().is_none())
        .collect()
}

fn prop<'n>(node: &'n KdlNode, name: &str) -> Option<&'n KdlEntry> {
    node.entries()
        .iter()
        .find(|e| e.name().is_some_and(|n| n.value() == name))
}

/// Optimal-string-alignment edit distance: a swap of two neighbours counts as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The known name closest to a misspelt one, if any is close enough to be a likely typo.
fn closest<'k>(word: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let word = word.to_lowercase().replace('_', "-");
    let limit = match word.chars().count() {
        0..=3 => 1,
        4..=8 => 2,
        _ => 3,
    };
    known
        .into_iter()
        .map(|k| {
            let d = edit_distance(&word, k);
            // A cut-short name (`advert` for `advert-interval`) is as good as a typo.
            let d = if word.len() >= 3 && k.starts_with(&word) {
                d.min(1)
            } else {
                d
            };
            (d, k)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Things that the instance's final checks point at.
#[derive(Default)]
struct InstanceSpans {
    version: Option<SourceSpan>,
    advert: Option<SourceSpan>,
    auth: Option<SourceSpan>,
    src: Option<SourceSpan>,
    peers: Vec<SourceSpan>,
    vips: Vec<SourceSpan>,
    /// `vip` nodes, valid or not: a bad one is reported on its own, not as "no vip".
    vip_nodes: usize,
    preempt: Option<SourceSpan>,
    nopreempt: Option<SourceSpan>,
}

/// An instance as read, with the spans that checks across instances point at.
struct InstanceDraft {
    cfg: InstanceConfig,
    name_span: SourceSpan,
    vrid_at: Option<SourceSpan>,
    /// Interface and vrid were both given and valid, so the pair identifies a virtual router.
    identified: bool,
    track_at: Vec<SourceSpan>,
    /// Where each `notify.hooks` name was written.
    hook_at: Vec<SourceSpan>,
    /// `master-down-adverts` set in the instance (else `global`'s applies).
    master_down_adverts: Option<u8>,
}

struct CheckDraft {
    def: CheckDef,
    name_span: SourceSpan,
}

struct HookDraft {
    def: HookDef,
    name_span: SourceSpan,
    /// `timeout` was given; otherwise it is `global`'s `notify-timeout`, known only at the end.
    timeout_set: bool,
}

struct GroupDraft {
    group: SyncGroup,
    name_span: SourceSpan,
    member_at: Vec<SourceSpan>,
    hook_at: Vec<SourceSpan>,
}

/// The settings shared by plugin checks and hooks, as read.
struct PluginSettings {
    grants: Grants,
    memory_limit: u64,
    /// Capabilities already granted in this block, and where: a flag given twice is an error.
    granted: HashMap<&'static str, SourceSpan>,
    /// Where each `tcp-connect` address and `read-file` path was written.
    tcp_at: Vec<SourceSpan>,
    read_at: Vec<SourceSpan>,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            grants: Grants::default(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            granted: HashMap::new(),
            tcp_at: Vec::new(),
            read_at: Vec::new(),
        }
    }
}

/// Settings already seen in one block: name → where.
type Seen = HashMap<String, SourceSpan>;

/// The validation pass: reads the document and collects problems.
struct Cx<'a> {
    src: &'a str,
    problems: Vec<Problem>,
}

impl Cx<'_> {
    fn report(
        &mut self,
        span: SourceSpan,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) {
        let (line, column) = line_col(self.src, span.offset());
        let help: String = help.into();
        self.problems.push(Problem {
            message: message.into(),
            label: label.into(),
            help: (!help.is_empty()).then_some(help),
            span,
            line,
            column,
        });
    }

    fn line_of(&self, span: SourceSpan) -> usize {
        line_col(self.src, span.offset()).0
    }

    fn into_error(mut self, file_name: &str) -> ConfigError {
        if self.problems.is_empty() {
            self.report(
                span_between(0, 0),
                "invalid config",
                "here",
                "see docs/config.md",
            );
        }
        self.problems.sort_by_key(|p| p.span.offset());
        ConfigError::Invalid {
            file: file_name.to_owned(),
            source_code: NamedSource::new(file_name, self.src.to_owned()),
            problems: self.problems,
        }
    }

    /// Turns kdl's syntax diagnostics into problems.
    fn syntax(&mut self, err: &KdlError) {
        for d in &err.diagnostics {
            let text = self
                .src
                .get(d.span.offset()..span_end(d.span))
                .unwrap_or("")
                .trim();
            // KDL v1 habits are the likeliest syntax errors in a hand-written file.
            let v1_hint = matches!(text, "true" | "false" | "null")
                .then(|| format!("KDL v2 writes `{text}` as `#{text}`"));
            let help = d.help.clone().or(v1_hint).unwrap_or_else(|| {
                "the file must be KDL v2; see docs/config.md for the syntax".to_owned()
            });
            self.report(
                d.span,
                d.message
                    .clone()
                    .unwrap_or_else(|| "invalid KDL syntax".into()),
                d.label.clone().unwrap_or_else(|| "here".into()),
                help,
            );
        }
        if err.diagnostics.is_empty() {
            self.report(
                span_between(0, 0),
                "invalid KDL syntax",
                "here",
                "the file must be KDL v2; see docs/config.md",
            );
        }
    }

    // ---- shapes of nodes ----

    fn unknown(&mut self, node: &KdlNode, known: &[&str], place: &str) {
        let name = node.name().value();
        let alias = KEEPALIVED_NAMES
            .iter()
            .find(|(k, ours)| *k == name && known.contains(ours));
        let help = match (alias, closest(name, known.iter().copied())) {
            (Some((k, ours)), _) => format!("keepalived's `{k}` is `{ours}` here"),
            (None, Some(s)) => format!("did you mean `{s}`?"),
            (None, None) => format!("known here: {}", known.join(", ")),
        };
        let kind = if place == "the file" {
            "section"
        } else {
            "setting"
        };
        self.report(
            node.name().span(),
            format!("unknown {kind} `{name}` in {place}"),
            "unknown name",
            help,
        );
    }

    /// False (after reporting) when a setting that may appear once appears again.
    fn first_time(&mut self, seen: &mut Seen, node: &KdlNode, known: &[&str], place: &str) -> bool {
        let key = node.name().value();
        if REPEATABLE.contains(&key) || !known.contains(&key) {
            return true;
        }
        if let Some(first) = seen.get(key) {
            let line = self.line_of(*first);
            self.report(
                head(node),
                format!("`{key}` is set twice in {place}"),
                "set again here",
                format!("keep one of them; the first is on line {line}"),
            );
            return false;
        }
        seen.insert(key.to_owned(), head(node));
        true
    }

    /// Checks a one-line setting: no block, properties only from `props`, none twice.
    fn leaf(&mut self, node: &KdlNode, props: &[&str]) {
        let key = node.name().value();
        if node.children().is_some() {
            self.report(
                span_between(span_end(head(node)), span_end(node.span())),
                format!("`{key}` takes no `{{ ... }}` block"),
                "unexpected block",
                format!("write it on one line, like `{}`", example(key)),
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        for entry in node.entries() {
            let Some(name) = entry.name() else { continue };
            let name = name.value();
            if !props.contains(&name) {
                let help = match closest(name, props.iter().copied()) {
                    Some(s) => format!("did you mean `{s}=`?"),
                    None if props.is_empty() => format!("`{key}` takes no properties"),
                    None => format!(
                        "`{key}` takes {}",
                        props
                            .iter()
                            .map(|p| format!("`{p}=`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                self.report(
                    entry.span(),
                    format!("unknown property `{name}=` on `{key}`"),
                    "unknown property",
                    help,
                );
            } else if seen.contains(&name) {
                self.report(
                    entry.span(),
                    format!("`{name}=` is given twice on `{key}`"),
                    "given again",
                    "keep one of them",
                );
            } else {
                seen.push(name);
            }
        }
    }

    /// The single argument of a setting like `vrid 51` (properties from `props` allowed).
    fn one_arg<'n>(&mut self, node: &'n KdlNode, props: &[&str]) -> Option<&'n KdlEntry> {
        self.leaf(node, props);
        let key = node.name().value();
        let args = positional(node);
        match args.as_slice() {
            [] => {
                self.report(
                    head(node),
                    format!("`{key}` needs a value"),
                    "no value",
                    format!("for example `{}`", example(key)),
                );
                None
            }
            [one] => Some(*one),
            [first, extra @ ..] => {
                let start = extra.first().map_or(0, |e| e.span().offset());
                let end = extra
                    .iter()
                    .map(|e| span_end(e.span()))
                    .max()
                    .unwrap_or(start);
                self.report(
                    span_between(start, end),
                    format!("`{key}` takes one value"),
                    "extra value",
                    format!("for example `{}`", example(key)),
                );
                Some(*first)
            }
        }
    }

    /// A setting that lists values (`key A B ...`, no properties): its values; none is a
    /// problem (`key` needs at least one `what`, labelled `label`).
    fn list<'n>(
        &mut self,
        node: &'n KdlNode,
        key: &str,
        what: &str,
        label: &str,
    ) -> Vec<&'n KdlEntry> {
        self.leaf(node, &[]);
        let args = positional(node);
        if args.is_empty() {
            self.report(
                head(node),
                format!("`{key}` needs at least one {what}"),
                label,
                format!("for example `{}`", example(key)),
            );
        }
        args
    }

    /// `kind "name" { ... }`: the name, its span and the block.
    fn named_block<'n>(
        &mut self,
        node: &'n KdlNode,
    ) -> Option<(String, SourceSpan, &'n KdlDocument)> {
        let key = node.name().value();
        for entry in node.entries().iter().filter(|e| e.name().is_some()) {
            self.report(
                entry.span(),
                format!("`{key}` takes no properties"),
                "unexpected property",
                format!("for example `{}`", example(key)),
            );
        }
        let args = positional(node);
        let name = match args.as_slice() {
            [] => {
                self.report(
                    head(node),
                    format!("`{key}` needs a name"),
                    "no name",
                    format!("for example `{}`", example(key)),
                );
                None
            }
            [one, extra @ ..] => {
                for e in extra {
                    self.report(
                        e.span(),
                        format!("`{key}` takes one name"),
                        "extra value",
                        format!("for example `{}`", example(key)),
                    );
                }
                self.name_string(one, key).map(|n| (n, one.span()))
            }
        };
        let Some(body) = node.children() else {
            self.report(
                head(node),
                format!("`{key}` has no `{{ ... }}` block"),
                "no block",
                format!("for example `{}`", example(key)),
            );
            return None;
        };
        name.map(|(n, span)| (n, span, body))
    }

    // ---- values ----

    fn type_error(&mut self, entry: &KdlEntry, key: &str, expect: Expect) {
        let value = entry.value();
        let help = match (expect, value) {
            (Expect::Integer, KdlValue::String(s)) if s.trim().parse::<i128>().is_ok() => {
                let n = s.trim();
                match entry.name() {
                    Some(p) => format!("drop the quotes: `{}={n}`", p.value()),
                    None => format!("drop the quotes: `{key} {n}`"),
                }
            }
            (Expect::Integer, KdlValue::Float(_)) => "use a whole number".to_owned(),
            (Expect::String, KdlValue::Integer(_) | KdlValue::Float(_)) => {
                format!("put it in quotes, like `{}`", example(key))
            }
            (Expect::Bool, KdlValue::String(s))
                if matches!(s.as_str(), "true" | "false" | "yes" | "no") =>
            {
                "write `#true` or `#false`, without quotes".to_owned()
            }
            (Expect::Bool, KdlValue::Integer(_)) => "write `#true` or `#false`".to_owned(),
            (Expect::Duration, _) => DURATION_HELP.to_owned(),
            _ => format!("for example `{}`", example(key)),
        };
        self.report(
            entry.span(),
            format!(
                "{} must be {}, not {}",
                what(key, entry),
                expect.describe(),
                kind_of(value)
            ),
            format!("expected {}", expect.describe()),
            help,
        );
    }

    fn string(&mut self, entry: &KdlEntry, key: &str) -> Option<String> {
        match entry.value() {
            KdlValue::String(s) => Some(s.clone()),
            _ => {
                self.type_error(entry, key, Expect::String);
                None
            }
        }
    }

    /// A string that names something (a check, a user, a script): must not be empty.
    fn name_string(&mut self, entry: &KdlEntry, key: &str) -> Option<String> {
        let s = self.string(entry, key)?;
        if s.trim().is_empty() {
            self.report(
                entry.span(),
                format!("{} must not be empty", what(key, entry)),
                "empty",
                format!("for example `{}`", example(key)),
            );
            return None;
        }
        Some(s)
    }

    fn integer(&mut self, entry: &KdlEntry, key: &str, lo: i128, hi: i128) -> Option<i128> {
        let KdlValue::Integer(n) = entry.value() else {
            self.type_error(entry, key, Expect::Integer);
            return None;
        };
        if !(lo..=hi).contains(n) {
            self.report(
                entry.span(),
                format!("{} must be from {lo} to {hi}, not {n}", what(key, entry)),
                "out of range",
                format!("for example `{}`", example(key)),
            );
            return None;
        }
        Some(*n)
    }

    fn boolean(&mut self, entry: &KdlEntry, key: &str) -> Option<bool> {
        match entry.value() {
            KdlValue::Bool(b) => Some(*b),
            _ => {
                self.type_error(entry, key, Expect::Bool);
                None
            }
        }
    }

    fn duration(&mut self, entry: &KdlEntry, key: &str) -> Option<Duration> {
        let parsed = match entry.value() {
            KdlValue::String(s) => parse_duration(s),
            KdlValue::Integer(n) if *n < 0 => Err(format!("{n} is negative")),
            KdlValue::Integer(n) => u64::try_from(*n)
                .map(Duration::from_secs)
                .map_err(|_| format!("{n} is too long")),
            // `{}` on a float is its shortest exact decimal, which parses back exactly.
            KdlValue::Float(f) => parse_duration(&format!("{f}")),
            _ => {
                self.type_error(entry, key, Expect::Duration);
                return None;
            }
        };
        match parsed {
            Ok(d) => Some(d),
            Err(why) => {
                self.report(
                    entry.span(),
                    format!("{} is not a valid duration: {why}", what(key, entry)),
                    "bad duration",
                    DURATION_HELP,
                );
                None
            }
        }
    }

    fn positive_duration(&mut self, entry: &KdlEntry, key: &str) -> Option<Duration> {
        let d = self.duration(entry, key)?;
        if d.is_zero() {
            self.report(
                entry.span(),
                format!("{} must be longer than 0", what(key, entry)),
                "zero",
                format!("for example `{}`", example(key)),
            );
            return None;
        }
        Some(d)
    }

    fn ip(&mut self, entry: &KdlEntry, key: &str) -> Option<IpAddr> {
        let text = self.string(entry, key)?;
        match text.trim().parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                let help = if text.contains('/') {
                    "give a plain address here, without a /prefix".to_owned()
                } else {
                    format!("for example `{}`", example(key))
                };
                self.report(
                    entry.span(),
                    format!("{} is not an IP address: `{text}`", what(key, entry)),
                    "bad address",
                    help,
                );
                None
            }
        }
    }

    /// An address a host can own or talk to: not 0.0.0.0/::, not multicast.
    fn unicast_ip(&mut self, entry: &KdlEntry, key: &str) -> Option<IpAddr> {
        let ip = self.ip(entry, key)?;
        self.usable(ip, entry, key).then_some(ip)
    }

    fn usable(&mut self, ip: IpAddr, entry: &KdlEntry, key: &str) -> bool {
        let why = if ip.is_unspecified() {
            "the unspecified address"
        } else if ip.is_multicast() {
            "a multicast address"
        } else {
            return true;
        };
        self.report(
            entry.span(),
            format!("{} is {why}: {ip}", what(key, entry)),
            "not a unicast address",
            "use a unicast address of the link",
        );
        false
    }

    /// `address/len`, or a bare address meaning a single host (/32 or /128).
    fn prefix(&mut self, entry: &KdlEntry, key: &str) -> Option<(IpAddr, u8)> {
        let text = self.string(entry, key)?;
        let text = text.trim();
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let Ok(ip) = addr.parse::<IpAddr>() else {
            self.report(
                entry.span(),
                format!("{} is not an IP address: `{addr}`", what(key, entry)),
                "bad address",
                format!("for example `{}`", example(key)),
            );
            return None;
        };
        let max: u8 = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max && !l.starts_with('+') => n,
                _ => {
                    self.report(
                        entry.span(),
                        format!(
                            "{} has a bad prefix length `/{l}`: {} allows 0 to {max}",
                            what(key, entry),
                            family(&ip)
                        ),
                        "bad prefix length",
                        format!("for example `{}`", example(key)),
                    );
                    return None;
                }
            },
        };
        Some((ip, len))
    }

    /// A network interface name as the kernel allows it (1 to 15 bytes, no `/` or spaces).
    fn interface_name(&mut self, entry: &KdlEntry, key: &str) -> Option<String> {
        let name = self.string(entry, key)?;
        let bad = name.is_empty()
            || name.len() > 15
            || name == "."
            || name == ".."
            || name.contains(|c: char| c == '/' || c.is_whitespace() || c.is_control());
        if bad {
            self.report(
                entry.span(),
                format!(
                    "{} is not a valid interface name: `{name}`",
                    what(key, entry)
                ),
                "bad interface name",
                "interface names are 1 to 15 characters without `/` or spaces, like \"eth0\"",
            );
            return None;
        }
        Some(name)
    }

    // ---- one-value settings ----

    fn one_string(&mut self, node: &KdlNode) -> Option<String> {
        let entry = self.one_arg(node, &[])?;
        self.name_string(entry, node.name().value())
    }

    fn one_integer(&mut self, node: &KdlNode, lo: i128, hi: i128) -> Option<i128> {
        let entry = self.one_arg(node, &[])?;
        self.integer(entry, node.name().value(), lo, hi)
    }

    fn one_duration(&mut self, node: &KdlNode) -> Option<Duration> {
        let entry = self.one_arg(node, &[])?;
        self.duration(entry, node.name().value())
    }

    fn one_positive_duration(&mut self, node: &KdlNode) -> Option<Duration> {
        let entry = self.one_arg(node, &[])?;
        self.positive_duration(entry, node.name().value())
    }

    /// A flag: `preempt` alone means `#true`.
    fn flag(&mut self, node: &KdlNode) -> Option<bool> {
        if positional(node).is_empty() {
            self.leaf(node, &[]);
            return Some(true);
        }
        let entry = self.one_arg(node, &[])?;
        self.boolean(entry, node.name().value())
    }

    // ---- sections ----

    fn document(&mut self, doc: &KdlDocument) -> Config {
        let mut config = Config::default();
        let mut global_at: Option<SourceSpan> = None;
        let mut checks = Vec::new();
        let mut hooks = Vec::new();
        let mut instances = Vec::new();
        let mut groups = Vec::new();
        for node in doc.nodes() {
            match node.name().value() {
                "global" => {
                    if let Some(first) = global_at {
                        let line = self.line_of(first);
                        self.report(
                            head(node),
                            "`global` appears twice",
                            "second `global`",
                            format!("merge it into the first `global` block on line {line}"),
                        );
                        continue;
                    }
                    global_at = Some(head(node));
                    self.global(node, &mut config.global);
                }
                "check" => checks.extend(self.check(node)),
                "hook" => hooks.extend(self.hook(node)),
                "instance" => instances.extend(self.instance(node)),
                "sync-group" => groups.extend(self.sync_group(node)),
                "metrics" => self.report(
                    node.name().span(),
                    "`metrics` is a setting of `global`",
                    "not a section",
                    format!(
                        "move it into `global`: `global {{ {} }}`",
                        example("metrics")
                    ),
                ),
                _ => self.unknown(node, TOP_KEYS, "the file"),
            }
        }
        self.unique_names(
            "check",
            checks.iter().map(|c| (c.def.name.as_str(), c.name_span)),
        );
        self.unique_names(
            "hook",
            hooks.iter().map(|h| (h.def.name.as_str(), h.name_span)),
        );
        self.unique_names(
            "instance",
            instances.iter().map(|i| (i.cfg.name.as_str(), i.name_span)),
        );
        self.unique_names(
            "sync-group",
            groups.iter().map(|g| (g.group.name.as_str(), g.name_span)),
        );
        self.unique_routers(&instances);
        self.resolve_tracks(&instances, &checks);
        self.resolve_members(&groups, &instances);
        let hook_names: Vec<&str> = hooks.iter().map(|h| h.def.name.as_str()).collect();
        for inst in &instances {
            self.resolve_hooks(&inst.cfg.notify.hooks, &inst.hook_at, &hook_names);
        }
        for g in &groups {
            self.resolve_hooks(&g.group.notify.hooks, &g.hook_at, &hook_names);
        }
        config.checks = checks.into_iter().map(|c| c.def).collect();
        let notify_timeout = config.global.notify_timeout;
        config.hooks = hooks
            .into_iter()
            .map(|h| HookDef {
                timeout: if h.timeout_set {
                    h.def.timeout
                } else {
                    notify_timeout
                },
                ..h.def
            })
            .collect();
        // An instance without its own `master-down-adverts` takes global's: a change of the
        // global default is then a change of each such instance, which a reload applies.
        let default_down = config.global.master_down_adverts;
        config.instances = instances
            .into_iter()
            .map(|i| InstanceConfig {
                master_down_adverts: i.master_down_adverts.unwrap_or(default_down),
                ..i.cfg
            })
            .collect();
        config.sync_groups = groups.into_iter().map(|g| g.group).collect();
        config.locations = locations(doc);
        config
    }

    fn global(&mut self, node: &KdlNode, global: &mut Global) {
        for entry in node.entries() {
            self.report(
                entry.span(),
                "`global` takes no arguments",
                "unexpected",
                "write `global { ... }`",
            );
        }
        let Some(body) = node.children() else {
            self.report(
                head(node),
                "`global` has no `{ ... }` block",
                "no block",
                format!("for example `{}`", example("global")),
            );
            return;
        };
        let mut seen = Seen::new();
        for child in body.nodes() {
            if !self.first_time(&mut seen, child, GLOBAL_KEYS, "`global`") {
                continue;
            }
            match child.name().value() {
                "router-id" => global.router_id = self.one_string(child),
                "garp-repeat" => {
                    if let Some(n) = self.one_integer(child, 0, 100) {
                        global.garp_repeat = n as u32;
                    }
                }
                "garp-interval" => {
                    if let Some(d) = self.one_duration(child) {
                        global.garp_interval = d;
                    }
                }
                "garp-refresh" => global.garp_refresh = self.one_positive_duration(child),
                "script-user" => global.script_user = self.one_string(child),
                "notify-timeout" => {
                    if let Some(d) = self.one_positive_duration(child) {
                        global.notify_timeout = d;
                    }
                }
                "script-security" => {
                    if let Some(b) = self.flag(child) {
                        global.script_security = b;
                    }
                }
                "metrics" => global.metrics_listen = self.metrics(child),
                "fast-failover" => {
                    if let Some(b) = self.flag(child) {
                        global.fast_failover = b;
                    }
                }
                "handover" => {
                    if let Some(b) = self.flag(child) {
                        global.handover = b;
                    }
                }
                "realtime-priority" => {
                    global.realtime_priority = self.one_integer(child, 1, 99).map(|n| n as u8);
                }
                "lock-memory" => {
                    if let Some(b) = self.flag(child) {
                        global.lock_memory = b;
                    }
                }
                "master-down-adverts" => {
                    if let Some(n) = self.master_down_adverts(child) {
                        global.master_down_adverts = n;
                    }
                }
                _ => self.unknown(child, GLOBAL_KEYS, "`global`"),
            }
        }
    }

    /// `metrics listen="ADDR:PORT"`: where the OpenMetrics endpoint listens.
    fn metrics(&mut self, node: &KdlNode) -> Option<SocketAddr> {
        self.leaf(node, &["listen"]);
        for entry in positional(node) {
            self.report(
                entry.span(),
                "`metrics` takes its address as `listen=`",
                "unexpected value",
                format!("for example `{}`", example("metrics")),
            );
        }
        let Some(entry) = prop(node, "listen") else {
            self.report(
                head(node),
                "`metrics` needs `listen=`",
                "no address",
                format!("for example `{}`", example("metrics")),
            );
            return None;
        };
        let text = self.string(entry, "metrics")?;
        let addr = match text.trim().parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => {
                let help = match text.trim().parse::<IpAddr>() {
                    Ok(IpAddr::V4(_)) => "add a port: `listen=\"127.0.0.1:9650\"`",
                    Ok(IpAddr::V6(_)) => {
                        "write an IPv6 address in brackets, with a port: `listen=\"[::1]:9650\"`"
                    }
                    Err(_) if text.matches(':').count() > 1 && !text.contains('[') => {
                        "put an IPv6 address in brackets: `listen=\"[::1]:9650\"`"
                    }
                    Err(_) => "an IP address and a port, like `listen=\"127.0.0.1:9650\"` (host names are not resolved)",
                };
                self.report(
                    entry.span(),
                    format!("`listen=` of `metrics` is not an address and port: `{text}`"),
                    "bad address",
                    help,
                );
                return None;
            }
        };
        if addr.port() == 0 {
            self.report(
                entry.span(),
                "`listen=` of `metrics` needs a port other than 0",
                "port 0",
                "a scraper needs a fixed port; 9650 is upkeep's usual one",
            );
            return None;
        }
        Some(addr)
    }

    fn check(&mut self, node: &KdlNode) -> Option<CheckDraft> {
        let (name, name_span, body) = self.named_block(node)?;
        let place = format!("check `{name}`");
        // The kind setting (`script`, `plugin`...) and where it is; `kind` if it is valid.
        let mut kind_at: Option<(&str, SourceSpan)> = None;
        let mut kind = None;
        // Every other setting met, for the per-kind rules after the loop.
        let mut settings: Vec<(&str, SourceSpan)> = Vec::new();
        let mut interval = Duration::from_secs(1);
        let mut timeout = None;
        let (mut fall, mut rise, mut weight, mut user) = (1, 1, None, None);
        let (mut init_fail, mut min_count) = (false, 1);
        let mut config: Vec<(String, String)> = Vec::new();
        let mut config_at: Vec<SourceSpan> = Vec::new();
        let mut plugin = PluginSettings::default();
        let mut seen = Seen::new();
        for child in body.nodes() {
            if !self.first_time(&mut seen, child, CHECK_KEYS, &place) {
                continue;
            }
            let key = child.name().value();
            if let Some(&k) = CHECK_KINDS.iter().find(|k| **k == key) {
                if let Some((first, at)) = kind_at {
                    let line = self.line_of(at);
                    self.report(
                        head(child),
                        format!("{place} has both `{first}` (line {line}) and `{k}`"),
                        "second kind",
                        "a check looks at one thing: make another check for this and track both",
                    );
                    continue;
                }
                kind_at = Some((k, head(child)));
                kind = self.check_kind(child);
                continue;
            }
            if CHECK_KEYS.contains(&key) {
                settings.push((key, head(child)));
            }
            match key {
                "interval" => {
                    if let Some(d) = self.one_positive_duration(child) {
                        interval = d;
                    }
                }
                "timeout" => timeout = self.one_positive_duration(child),
                "fall" => fall = self.one_integer(child, 1, 65535).map_or(fall, |n| n as u32),
                "rise" => rise = self.one_integer(child, 1, 65535).map_or(rise, |n| n as u32),
                "weight" => {
                    weight = self
                        .one_integer(child, -253, 253)
                        .map(|n| n as i32)
                        .or(weight)
                }
                "user" => user = self.one_string(child),
                "init-fail" => init_fail = self.flag(child).unwrap_or(init_fail),
                "min-count" => {
                    min_count = self
                        .one_integer(child, 1, 65535)
                        .map_or(min_count, |n| n as u32)
                }
                "config" => self.plugin_config(child, &mut config, &mut config_at),
                "allow" => self.allow(child, &mut plugin),
                "memory-limit" => {
                    if let Some(n) = self.memory_limit(child) {
                        plugin.memory_limit = n;
                    }
                }
                _ => self.unknown(child, CHECK_KEYS, &place),
            }
        }
        let Some((kind_key, _)) = kind_at else {
            self.report(
                head(node),
                format!(
                    "check `{name}` has no `script`, `plugin`, `interface`, `file` or `process`"
                ),
                "nothing to check",
                format!(
                    "say what the check looks at, like `{}` or `{}`",
                    example("script"),
                    example("process")
                ),
            );
            return Some(CheckDraft {
                def: placeholder_check(name, node.span()),
                name_span,
            });
        };
        // Report each setting that does not fit the kind once, at its first use.
        let mut reported: Vec<&str> = Vec::new();
        for (key, span) in settings {
            let kinds_ok = applies_to(key);
            if kinds_ok.contains(&kind_key) || reported.contains(&key) {
                continue;
            }
            reported.push(key);
            let list: Vec<String> = kinds_ok.iter().map(|k| format!("`{k}`")).collect();
            self.report(
                span,
                format!("`{key}` does not apply to a `{kind_key}` check"),
                format!("not for `{kind_key}` checks"),
                format!(
                    "`{key}` is a setting of {} checks; remove it",
                    join_or(&list)
                ),
            );
        }
        let kind = kind.map(|k| match k {
            CheckKind::Plugin { path, .. } => CheckKind::Plugin {
                path,
                config,
                grants: plugin.grants,
                memory_limit: plugin.memory_limit,
            },
            CheckKind::Process { name, full, .. } => CheckKind::Process {
                name,
                full,
                min_count,
            },
            other => other,
        });
        // A file's value is multiplied by the weight, so 1 is the neutral default there.
        let default_weight = if kind_key == "file" { 1 } else { 0 };
        Some(CheckDraft {
            def: CheckDef {
                kind: kind.unwrap_or_else(placeholder_kind),
                name,
                interval,
                // A check that may run as long as its interval never overlaps itself.
                timeout: timeout.unwrap_or(interval),
                fall,
                rise,
                weight: weight.unwrap_or(default_weight),
                user,
                init_fail,
                span: node.span(),
            },
            name_span,
        })
    }

    /// The setting that says what a check looks at. Plugin settings and `min-count` are
    /// filled in by the caller.
    fn check_kind(&mut self, node: &KdlNode) -> Option<CheckKind> {
        let key = node.name().value();
        match key {
            "script" => Some(CheckKind::Script {
                command: self.one_string(node)?,
            }),
            "plugin" => Some(CheckKind::Plugin {
                path: PathBuf::from(self.one_string(node)?),
                config: Vec::new(),
                grants: Grants::default(),
                memory_limit: DEFAULT_MEMORY_LIMIT,
            }),
            "interface" => {
                let entry = self.one_arg(node, &[])?;
                Some(CheckKind::Interface {
                    name: self.interface_name(entry, key)?,
                })
            }
            "file" => Some(CheckKind::File {
                path: PathBuf::from(self.one_string(node)?),
            }),
            "process" => {
                let entry = self.one_arg(node, &["full"])?;
                let full = match prop(node, "full") {
                    Some(e) => self.boolean(e, key)?,
                    None => false,
                };
                Some(CheckKind::Process {
                    name: self.name_string(entry, key)?,
                    full,
                    min_count: 1,
                })
            }
            _ => None,
        }
    }

    /// `config key="value" ...`: plain values become strings (`5` → "5", `#true` → "true").
    fn plugin_config(
        &mut self,
        node: &KdlNode,
        config: &mut Vec<(String, String)>,
        spans: &mut Vec<SourceSpan>,
    ) {
        if node.children().is_some() {
            self.report(
                span_between(span_end(head(node)), span_end(node.span())),
                "`config` takes no `{ ... }` block",
                "unexpected block",
                format!(
                    "write key=\"value\" pairs on one line, like `{}`",
                    example("config")
                ),
            );
        }
        for entry in positional(node) {
            self.report(
                entry.span(),
                "`config` takes key=\"value\" properties, not bare values",
                "no key",
                format!("name each value, like `{}`", example("config")),
            );
        }
        let props: Vec<&KdlEntry> = node
            .entries()
            .iter()
            .filter(|e| e.name().is_some())
            .collect();
        if props.is_empty() && positional(node).is_empty() {
            self.report(
                head(node),
                "`config` needs at least one key=\"value\"",
                "empty",
                format!("for example `{}`", example("config")),
            );
        }
        for entry in props {
            let Some(key) = entry.name().map(|n| n.value().to_owned()) else {
                continue;
            };
            let value = match entry.value() {
                KdlValue::String(s) => s.clone(),
                KdlValue::Integer(n) => n.to_string(),
                KdlValue::Float(f) => format!("{f}"),
                KdlValue::Bool(b) => b.to_string(),
                KdlValue::Null => {
                    self.type_error(entry, "config", Expect::String);
                    continue;
                }
            };
            if let Some(i) = config.iter().position(|(k, _)| *k == key) {
                let line = self.line_of(spans[i]);
                self.report(
                    entry.span(),
                    format!("`config` key `{key}` is given twice"),
                    "given again",
                    format!("keep one of them; the first is on line {line}"),
                );
                continue;
            }
            config.push((key, value));
            spans.push(entry.span());
        }
    }

    /// `allow "capability" [values...]`.
    fn allow(&mut self, node: &KdlNode, plugin: &mut PluginSettings) {
        self.leaf(node, &[]);
        let args = positional(node);
        let Some((first, rest)) = args.split_first() else {
            self.report(
                head(node),
                "`allow` needs a capability",
                "no capability",
                format!("known capabilities: {}", CAPABILITIES.join(", ")),
            );
            return;
        };
        let Some(cap) = self.name_string(first, "allow") else {
            return;
        };
        let Some(&cap) = CAPABILITIES.iter().find(|c| **c == cap) else {
            let known = CAPABILITIES.join(", ");
            let help = match closest(&cap, CAPABILITIES.iter().copied()) {
                Some(s) => format!("did you mean `{s}`? known capabilities: {known}"),
                None => format!("known capabilities: {known}"),
            };
            self.report(
                first.span(),
                format!("unknown capability `{cap}` in `allow`"),
                "unknown capability",
                help,
            );
            return;
        };
        match cap {
            "tcp-connect" | "read-file" => {
                if rest.is_empty() {
                    let like = if cap == "tcp-connect" {
                        "allow \"tcp-connect\" \"127.0.0.1:80\" \"[2001:db8::1]:443\""
                    } else {
                        "allow \"read-file\" \"/etc/haproxy/haproxy.cfg\""
                    };
                    self.report(
                        head(node),
                        format!("`allow \"{cap}\"` needs at least one value"),
                        "nothing allowed",
                        format!("list what it may reach, like `{like}`"),
                    );
                }
                for entry in rest {
                    if cap == "tcp-connect" {
                        self.tcp_grant(entry, plugin);
                    } else {
                        self.read_grant(entry, plugin);
                    }
                }
            }
            _ => {
                for entry in rest {
                    self.report(
                        entry.span(),
                        format!("`allow \"{cap}\"` takes no more values"),
                        "extra value",
                        format!("write `allow \"{cap}\"` alone"),
                    );
                }
                if let Some(first_at) = plugin.granted.get(cap) {
                    let line = self.line_of(*first_at);
                    self.report(
                        head(node),
                        format!("`allow \"{cap}\"` is given twice"),
                        "given again",
                        format!("keep one of them; the first is on line {line}"),
                    );
                    return;
                }
                plugin.granted.insert(cap, head(node));
                let g = &mut plugin.grants;
                match cap {
                    "listening-sockets" => g.listening_sockets = true,
                    "log" => g.log = true,
                    _ => g.clock = true,
                }
            }
        }
    }

    fn tcp_grant(&mut self, entry: &KdlEntry, plugin: &mut PluginSettings) {
        let Some(text) = self.string(entry, "allow") else {
            return;
        };
        let addr = match text.trim().parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                let help = match text.trim().parse::<IpAddr>() {
                    Ok(IpAddr::V4(ip)) => format!("add the port: \"{ip}:80\""),
                    Ok(IpAddr::V6(ip)) => format!("add the port, with the address in brackets: \"[{ip}]:443\""),
                    Err(_) => "write an IP address and a port, like \"127.0.0.1:80\" or \"[2001:db8::1]:443\"; names are not resolved".to_owned(),
                };
                self.report(
                    entry.span(),
                    format!("`allow \"tcp-connect\"`: `{text}` is not an address with a port"),
                    "bad address",
                    help,
                );
                return;
            }
        };
        if let Some(i) = plugin.grants.tcp_connect.iter().position(|a| *a == addr) {
            let line = self.line_of(plugin.tcp_at[i]);
            self.report(
                entry.span(),
                format!("{addr} is listed twice in `allow \"tcp-connect\"`"),
                "listed again",
                format!("remove one; the first is on line {line}"),
            );
            return;
        }
        plugin.grants.tcp_connect.push(addr);
        plugin.tcp_at.push(entry.span());
    }

    fn read_grant(&mut self, entry: &KdlEntry, plugin: &mut PluginSettings) {
        let Some(text) = self.name_string(entry, "allow") else {
            return;
        };
        let path = PathBuf::from(text);
        if let Some(i) = plugin.grants.read_file.iter().position(|p| *p == path) {
            let line = self.line_of(plugin.read_at[i]);
            self.report(
                entry.span(),
                format!(
                    "{} is listed twice in `allow \"read-file\"`",
                    path.display()
                ),
                "listed again",
                format!("remove one; the first is on line {line}"),
            );
            return;
        }
        plugin.grants.read_file.push(path);
        plugin.read_at.push(entry.span());
    }

    /// `memory-limit "16MiB"` or a number of bytes.
    fn memory_limit(&mut self, node: &KdlNode) -> Option<u64> {
        let key = node.name().value();
        let entry = self.one_arg(node, &[])?;
        let parsed = match entry.value() {
            KdlValue::String(s) => parse_size(s),
            KdlValue::Integer(n) => u64::try_from(*n).map_err(|_| format!("{n} is negative")),
            _ => {
                self.report(
                    entry.span(),
                    format!("`{key}` must be a size, not {}", kind_of(entry.value())),
                    "expected a size",
                    SIZE_HELP,
                );
                return None;
            }
        };
        let why = match parsed {
            Ok(n) if n < MIN_MEMORY_LIMIT => {
                format!("{n} bytes is less than 64KiB, one WebAssembly page")
            }
            Ok(n) if n > MAX_MEMORY_LIMIT => format!("{n} bytes is more than 4GiB"),
            Ok(n) => return Some(n),
            Err(why) => why,
        };
        self.report(
            entry.span(),
            format!("`{key}` is not a valid size: {why}"),
            "bad size",
            SIZE_HELP,
        );
        None
    }

    fn hook(&mut self, node: &KdlNode) -> Option<HookDraft> {
        let (name, name_span, body) = self.named_block(node)?;
        let place = format!("hook `{name}`");
        let mut path = None;
        let mut timeout = None;
        let mut plugin = PluginSettings::default();
        let mut seen = Seen::new();
        for child in body.nodes() {
            if !self.first_time(&mut seen, child, HOOK_KEYS, &place) {
                continue;
            }
            match child.name().value() {
                "plugin" => path = self.one_string(child).map(PathBuf::from),
                "allow" => self.allow(child, &mut plugin),
                "memory-limit" => {
                    if let Some(n) = self.memory_limit(child) {
                        plugin.memory_limit = n;
                    }
                }
                "timeout" => timeout = self.one_positive_duration(child),
                _ => self.unknown(child, HOOK_KEYS, &place),
            }
        }
        if !seen.contains_key("plugin") {
            self.report(
                head(node),
                format!("hook `{name}` has no `plugin`"),
                "no plugin",
                format!(
                    "name the WASM component to call, like `{}`",
                    example("plugin")
                ),
            );
        }
        Some(HookDraft {
            def: HookDef {
                name,
                path: path.unwrap_or_default(),
                grants: plugin.grants,
                memory_limit: plugin.memory_limit,
                timeout: timeout.unwrap_or_default(),
                span: node.span(),
            },
            name_span,
            timeout_set: timeout.is_some(),
        })
    }

    /// A notify setting of an instance or sync group; false when `node` is not one.
    fn notify_setting(
        &mut self,
        node: &KdlNode,
        notify: &mut Notify,
        hook_at: &mut Vec<SourceSpan>,
        place: &str,
    ) -> bool {
        let slot = match node.name().value() {
            "notify-master" => &mut notify.master,
            "notify-backup" => &mut notify.backup,
            "notify-fault" => &mut notify.fault,
            "notify-stop" => &mut notify.stop,
            "notify" => &mut notify.any,
            "notify-hook" => {
                let args = self.list(node, "notify-hook", "hook name", "no name");
                for entry in args {
                    let Some(hook) = self.name_string(entry, "notify-hook") else {
                        continue;
                    };
                    if notify.hooks.contains(&hook) {
                        self.report(
                            entry.span(),
                            format!("hook `{hook}` is listed twice in {place}"),
                            "listed again",
                            "list each hook once",
                        );
                        continue;
                    }
                    notify.hooks.push(hook);
                    hook_at.push(entry.span());
                }
                return true;
            }
            _ => return false,
        };
        *slot = self.one_string(node);
        true
    }

    fn instance(&mut self, node: &KdlNode) -> Option<InstanceDraft> {
        let (name, name_span, body) = self.named_block(node)?;
        let place = format!("instance `{name}`");
        let mut cfg = InstanceConfig {
            name,
            interface: String::new(),
            vrid: 0,
            priority: 100,
            advert_interval: Duration::from_secs(1),
            version: VrrpVersion::V3,
            preempt: true,
            preempt_delay: Duration::ZERO,
            master_down_adverts: RFC_MASTER_DOWN_ADVERTS,
            auth_pass: None,
            initial_state: InitialState::Backup,
            unicast_src: None,
            unicast_peers: Vec::new(),
            vips: Vec::new(),
            routes: Vec::new(),
            tracks: Vec::new(),
            notify: Notify::default(),
            span: node.span(),
        };
        let mut at = InstanceSpans::default();
        let mut track_at = Vec::new();
        let mut hook_at = Vec::new();
        let mut master_down_adverts = None;
        let (mut interface_ok, mut vrid_ok) = (false, false);
        let mut seen = Seen::new();
        for child in body.nodes() {
            if !self.first_time(&mut seen, child, INSTANCE_KEYS, &place) {
                continue;
            }
            let key = child.name().value();
            match key {
                "interface" => {
                    if let Some(e) = self.one_arg(child, &[]) {
                        if let Some(i) = self.interface_name(e, key) {
                            cfg.interface = i;
                            interface_ok = true;
                        }
                    }
                }
                "vrid" => {
                    if let Some(n) = self.one_integer(child, 1, 255) {
                        cfg.vrid = n as u8;
                        vrid_ok = true;
                    }
                }
                "priority" => {
                    if let Some(n) = self.one_integer(child, 1, 255) {
                        cfg.priority = n as u8;
                    }
                }
                "advert-interval" => {
                    if let Some(e) = self.one_arg(child, &[]) {
                        if let Some(d) = self.positive_duration(e, key) {
                            cfg.advert_interval = d;
                            at.advert = Some(e.span());
                        }
                    }
                }
                "version" => {
                    at.version = Some(head(child));
                    match self.one_integer(child, 2, 3) {
                        Some(2) => cfg.version = VrrpVersion::V2,
                        Some(_) => cfg.version = VrrpVersion::V3,
                        None => {}
                    }
                }
                "preempt" => {
                    at.preempt = Some(head(child));
                    if let Some(b) = self.flag(child) {
                        cfg.preempt = b;
                    }
                }
                "nopreempt" => {
                    at.nopreempt = Some(head(child));
                    self.leaf(child, &[]);
                    for e in positional(child) {
                        self.report(
                            e.span(),
                            "`nopreempt` takes no value",
                            "unexpected value",
                            "write `nopreempt` alone, or `preempt #false`",
                        );
                    }
                    cfg.preempt = false;
                }
                "preempt-delay" => {
                    if let Some(d) = self.one_duration(child) {
                        cfg.preempt_delay = d;
                    }
                }
                "master-down-adverts" => {
                    master_down_adverts = self.master_down_adverts(child);
                }
                "auth-pass" => {
                    if let Some(e) = self.one_arg(child, &[]) {
                        at.auth = Some(head(child));
                        cfg.auth_pass = self.auth_pass(e);
                    }
                }
                "initial-state" => {
                    if let Some(e) = self.one_arg(child, &[]) {
                        cfg.initial_state = self.initial_state(e).unwrap_or(cfg.initial_state);
                    }
                }
                "unicast-src" => {
                    if let Some(e) = self.one_arg(child, &[]) {
                        cfg.unicast_src = self.unicast_ip(e, key);
                        at.src = Some(e.span());
                    }
                }
                "unicast-peer" => self.peers(child, &mut cfg.unicast_peers, &mut at.peers),
                "vip" => {
                    at.vip_nodes += 1;
                    if let Some((vip, span)) = self.vip(child) {
                        if let Some(i) = cfg.vips.iter().position(|v| v.addr == vip.addr) {
                            let line = self.line_of(at.vips[i]);
                            self.report(
                                span,
                                format!("vip {} is listed twice", vip.addr),
                                "listed again",
                                format!("remove one; the first is on line {line}"),
                            );
                        } else {
                            cfg.vips.push(vip);
                            at.vips.push(span);
                        }
                    }
                }
                "route" => cfg.routes.extend(self.route(child)),
                "track" => {
                    if let Some((track, span)) = self.track(child) {
                        if cfg.tracks.iter().any(|t| t.check == track.check) {
                            self.report(
                                span,
                                format!("check `{}` is tracked twice", track.check),
                                "tracked again",
                                "keep one `track` per check",
                            );
                        } else {
                            cfg.tracks.push(track);
                            track_at.push(span);
                        }
                    }
                }
                _ => {
                    if !self.notify_setting(child, &mut cfg.notify, &mut hook_at, &place) {
                        self.unknown(child, INSTANCE_KEYS, &place);
                    }
                }
            }
        }
        self.instance_rules(node, &cfg, &at, &seen);
        Some(InstanceDraft {
            vrid_at: seen.get("vrid").copied(),
            identified: interface_ok && vrid_ok,
            cfg,
            name_span,
            track_at,
            hook_at,
            master_down_adverts,
        })
    }

    /// `master-down-adverts N`: 3 (the RFCs) to 20.
    fn master_down_adverts(&mut self, node: &KdlNode) -> Option<u8> {
        let (lo, hi) = (*MASTER_DOWN_ADVERTS.start(), *MASTER_DOWN_ADVERTS.end());
        self.one_integer(node, i128::from(lo), i128::from(hi))
            .map(|n| n as u8)
    }

    /// Rules that need the whole instance: required settings, families, version limits.
    fn instance_rules(
        &mut self,
        node: &KdlNode,
        cfg: &InstanceConfig,
        at: &InstanceSpans,
        seen: &Seen,
    ) {
        let name = &cfg.name;
        for (key, why) in [
            ("interface", "the link the instance runs on"),
            ("vrid", "the virtual router ID, 1 to 255"),
        ] {
            if !seen.contains_key(key) {
                self.report(
                    head(node),
                    format!("instance `{name}` has no `{key}`"),
                    format!("no `{key}`"),
                    format!("add `{}`: {why}", example(key)),
                );
            }
        }
        if at.vip_nodes == 0 {
            self.report(
                head(node),
                format!("instance `{name}` has no `vip`"),
                "no `vip`",
                format!(
                    "an instance exists to move addresses: add at least one, like `{}`",
                    example("vip")
                ),
            );
        }
        if let (Some(p), Some(np)) = (at.preempt, at.nopreempt) {
            let line = self.line_of(p);
            self.report(
                np,
                "both `preempt` and `nopreempt` are set",
                "conflicts",
                format!("keep one; `preempt` is on line {line}"),
            );
        }
        let v2 = cfg.version == VrrpVersion::V2;
        let version_is = if at.version.is_some() {
            "this instance uses"
        } else {
            "version defaults to 3, so this instance uses"
        };

        // One instance announces one address family; the first VIP decides which.
        let v6 = cfg.vips.first().map(|v| v.addr.is_ipv6());
        if let Some(v6) = v6 {
            let first = family(&cfg.vips[0].addr);
            for (vip, span) in cfg.vips.iter().zip(&at.vips).skip(1) {
                if vip.addr.is_ipv6() != v6 {
                    self.report(
                        *span,
                        format!(
                            "vip {} is {} but this instance's first vip is {first}",
                            vip.addr,
                            family(&vip.addr)
                        ),
                        "other address family",
                        "an instance carries one address family: put these VIPs in an instance of their own (with its own vrid)",
                    );
                }
            }
            if v6 && v2 {
                self.report(
                    at.vips[0],
                    "VRRP version 2 carries only IPv4, but this vip is IPv6",
                    "IPv6 address",
                    "set `version 3` for IPv6 VIPs",
                );
            }
            let peers = at
                .src
                .iter()
                .zip(cfg.unicast_src.iter())
                .chain(at.peers.iter().zip(cfg.unicast_peers.iter()));
            for (span, ip) in peers {
                if ip.is_ipv6() != v6 {
                    self.report(
                        *span,
                        format!(
                            "{ip} is {} but the instance's VIPs are {first}",
                            family(ip)
                        ),
                        "other address family",
                        "unicast adverts travel in the VIPs' address family: use addresses of that family",
                    );
                }
            }
        }
        if let Some(auth) = at.auth {
            if !v2 {
                self.report(
                    auth,
                    format!("`auth-pass` works only with VRRP version 2; {version_is} version 3"),
                    "not in version 3",
                    "remove `auth-pass` (RFC 5798 dropped authentication), or set `version 2`",
                );
            }
        }
        if let Some(span) = at.advert {
            self.advert_rules(cfg.advert_interval, v2, span, at.version.is_none());
        }
    }

    fn advert_rules(&mut self, interval: Duration, v2: bool, span: SourceSpan, defaulted: bool) {
        let (fits, range, help) = if v2 {
            (
                interval.subsec_nanos() == 0 && (1..=255).contains(&interval.as_secs()),
                "1 to 255 whole seconds",
                "use whole seconds like \"1s\", or `version 3` for sub-second intervals",
            )
        } else {
            (
                interval.as_nanos() % 10_000_000 == 0
                    && (10..=40_950).contains(&interval.as_millis()),
                "10ms to 40.95s in steps of 10ms",
                "use a multiple of 10ms from \"10ms\" to \"40.95s\"",
            )
        };
        if !fits {
            let version = if v2 { 2 } else { 3 };
            let note = if defaulted {
                " (version defaults to 3)"
            } else {
                ""
            };
            self.report(
                span,
                format!(
                    "VRRP version {version} sends adverts every {range}; {interval:?} is not one of them{note}"
                ),
                "out of range",
                help,
            );
        }
    }

    fn auth_pass(&mut self, entry: &KdlEntry) -> Option<String> {
        let pass = self.string(entry, "auth-pass")?;
        if pass.is_empty() || pass.len() > 8 {
            self.report(
                entry.span(),
                format!(
                    "`auth-pass` must be 1 to 8 bytes long, not {} bytes",
                    pass.len()
                ),
                "wrong length",
                "VRRPv2 carries at most 8 bytes of password; shorten it",
            );
            return None;
        }
        Some(pass)
    }

    fn initial_state(&mut self, entry: &KdlEntry) -> Option<InitialState> {
        let state = self.string(entry, "initial-state")?;
        match state.to_ascii_lowercase().as_str() {
            "backup" => Some(InitialState::Backup),
            "master" => Some(InitialState::Master),
            _ => {
                self.report(
                    entry.span(),
                    format!("`initial-state` must be \"backup\" or \"master\", not \"{state}\""),
                    "unknown state",
                    "use \"backup\" (the default) or \"master\"",
                );
                None
            }
        }
    }

    fn peers(&mut self, node: &KdlNode, peers: &mut Vec<IpAddr>, spans: &mut Vec<SourceSpan>) {
        let args = self.list(node, "unicast-peer", "address", "no address");
        for entry in args {
            let Some(ip) = self.unicast_ip(entry, "unicast-peer") else {
                continue;
            };
            if let Some(i) = peers.iter().position(|p| *p == ip) {
                let line = self.line_of(spans[i]);
                self.report(
                    entry.span(),
                    format!("peer {ip} is listed twice"),
                    "listed again",
                    format!("remove one; the first is on line {line}"),
                );
                continue;
            }
            peers.push(ip);
            spans.push(entry.span());
        }
    }

    fn vip(&mut self, node: &KdlNode) -> Option<(Vip, SourceSpan)> {
        let entry = self.one_arg(node, &["dev"])?;
        let dev = prop(node, "dev").and_then(|e| self.interface_name(e, "vip"));
        let (addr, prefix_len) = self.prefix(entry, "vip")?;
        if !self.usable(addr, entry, "vip") {
            return None;
        }
        Some((
            Vip {
                addr,
                prefix_len,
                dev,
            },
            entry.span(),
        ))
    }

    fn route(&mut self, node: &KdlNode) -> Option<Route> {
        let entry = self.one_arg(node, &["via", "dev", "metric", "table"])?;
        let dev = prop(node, "dev").and_then(|e| self.interface_name(e, "route"));
        let metric = prop(node, "metric")
            .and_then(|e| self.integer(e, "route", 0, u32::MAX.into()))
            .map(|n| n as u32);
        let table = prop(node, "table")
            .and_then(|e| self.integer(e, "route", 1, u32::MAX.into()))
            .map(|n| n as u32);
        let (dest, prefix_len) = self.prefix(entry, "route")?;
        let network = network_of(dest, prefix_len);
        if network != dest {
            self.report(
                entry.span(),
                format!("route destination {dest}/{prefix_len} has host bits set"),
                "not a network address",
                format!("write the network address: \"{network}/{prefix_len}\""),
            );
        }
        let via = match prop(node, "via") {
            Some(e) => {
                let via = self.unicast_ip(e, "route");
                if let Some(v) = via.filter(|v| v.is_ipv6() != dest.is_ipv6()) {
                    self.report(
                        e.span(),
                        format!(
                            "gateway {v} is {} but the destination is {}",
                            family(&v),
                            family(&dest)
                        ),
                        "other address family",
                        "a route's gateway must be of the destination's address family",
                    );
                }
                via
            }
            None => None,
        };
        Some(Route {
            dest,
            prefix_len,
            via,
            dev,
            metric,
            table,
        })
    }

    fn track(&mut self, node: &KdlNode) -> Option<(Track, SourceSpan)> {
        let entry = self.one_arg(node, &["weight"])?;
        let weight = prop(node, "weight")
            .and_then(|e| self.integer(e, "track", -253, 253))
            .map(|n| n as i32);
        let check = self.name_string(entry, "track")?;
        Some((Track { check, weight }, entry.span()))
    }

    fn sync_group(&mut self, node: &KdlNode) -> Option<GroupDraft> {
        let (name, name_span, body) = self.named_block(node)?;
        let place = format!("sync-group `{name}`");
        let mut members: Vec<String> = Vec::new();
        let mut member_at = Vec::new();
        let mut notify = Notify::default();
        let mut hook_at = Vec::new();
        let mut seen = Seen::new();
        for child in body.nodes() {
            if !self.first_time(&mut seen, child, SYNC_GROUP_KEYS, &place) {
                continue;
            }
            if child.name().value() != "member" {
                if !self.notify_setting(child, &mut notify, &mut hook_at, &place) {
                    self.unknown(child, SYNC_GROUP_KEYS, &place);
                }
                continue;
            }
            let args = self.list(child, "member", "instance name", "no name");
            for entry in args {
                let Some(member) = self.name_string(entry, "member") else {
                    continue;
                };
                if members.contains(&member) {
                    self.report(
                        entry.span(),
                        format!("`{member}` is listed twice in {place}"),
                        "listed again",
                        "list each instance once",
                    );
                    continue;
                }
                members.push(member);
                member_at.push(entry.span());
            }
        }
        if members.is_empty() && !body.nodes().iter().any(|n| n.name().value() == "member") {
            self.report(
                head(node),
                format!("{place} has no members"),
                "empty group",
                format!("list the instances, like `{}`", example("member")),
            );
        }
        Some(GroupDraft {
            group: SyncGroup {
                name,
                members,
                notify,
                span: node.span(),
            },
            name_span,
            member_at,
            hook_at,
        })
    }

    // ---- rules across sections ----

    fn unique_names<'n>(&mut self, kind: &str, items: impl Iterator<Item = (&'n str, SourceSpan)>) {
        let mut first: HashMap<&str, SourceSpan> = HashMap::new();
        for (name, span) in items {
            if let Some(prev) = first.get(name) {
                let line = self.line_of(*prev);
                self.report(
                    span,
                    format!("there is already a {kind} named `{name}`"),
                    "duplicate name",
                    format!("{kind} names must be unique; the first `{name}` is on line {line}"),
                );
            } else {
                first.insert(name, span);
            }
        }
    }

    /// Two instances with the same vrid on one link and address family would be one router.
    fn unique_routers(&mut self, instances: &[InstanceDraft]) {
        let mut first: HashMap<(&str, u8, bool), &str> = HashMap::new();
        for inst in instances.iter().filter(|i| i.identified) {
            let Some(v6) = inst.cfg.vips.first().map(|v| v.addr.is_ipv6()) else {
                continue;
            };
            let key = (inst.cfg.interface.as_str(), inst.cfg.vrid, v6);
            if let Some(other) = first.get(&key) {
                let fam = if v6 { "IPv6" } else { "IPv4" };
                self.report(
                    inst.vrid_at.unwrap_or(inst.name_span),
                    format!(
                        "vrid {} on `{}` ({fam}) is already used by instance `{other}`",
                        inst.cfg.vrid, inst.cfg.interface
                    ),
                    "vrid in use",
                    "each virtual router on a link needs its own vrid per address family: pick another",
                );
            } else {
                first.insert(key, &inst.cfg.name);
            }
        }
    }

    fn resolve_tracks(&mut self, instances: &[InstanceDraft], checks: &[CheckDraft]) {
        let names: Vec<&str> = checks.iter().map(|c| c.def.name.as_str()).collect();
        for inst in instances {
            for (track, span) in inst.cfg.tracks.iter().zip(&inst.track_at) {
                if names.contains(&track.check.as_str()) {
                    continue;
                }
                let help = match closest(&track.check, names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if names.is_empty() => {
                        format!("define it: `{}`", example("check"))
                    }
                    None => format!("defined checks: {}", names.join(", ")),
                };
                self.report(
                    *span,
                    format!("there is no check named `{}`", track.check),
                    "unknown check",
                    help,
                );
            }
        }
    }

    fn resolve_hooks(&mut self, names: &[String], spans: &[SourceSpan], hooks: &[&str]) {
        for (name, span) in names.iter().zip(spans) {
            if hooks.contains(&name.as_str()) {
                continue;
            }
            let help = match closest(name, hooks.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None if hooks.is_empty() => format!("define it: `{}`", example("hook")),
                None => format!("defined hooks: {}", hooks.join(", ")),
            };
            self.report(
                *span,
                format!("there is no hook named `{name}`"),
                "unknown hook",
                help,
            );
        }
    }

    fn resolve_members(&mut self, groups: &[GroupDraft], instances: &[InstanceDraft]) {
        let names: Vec<&str> = instances.iter().map(|i| i.cfg.name.as_str()).collect();
        let mut owner: HashMap<&str, &str> = HashMap::new();
        for g in groups {
            for (member, span) in g.group.members.iter().zip(&g.member_at) {
                if !names.contains(&member.as_str()) {
                    let help = match closest(member, names.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "members must be instances defined in this file".to_owned(),
                    };
                    self.report(
                        *span,
                        format!("there is no instance named `{member}`"),
                        "unknown instance",
                        help,
                    );
                } else if let Some(other) = owner.get(member.as_str()) {
                    self.report(
                        *span,
                        format!("instance `{member}` is already in sync-group `{other}`"),
                        "in two groups",
                        "an instance can belong to one sync-group only",
                    );
                } else {
                    owner.insert(member, &g.group.name);
                }
            }
        }
    }
}

/// `a`, `a or b`, `a, b or c`.
fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Stands in for a check whose kind is missing or invalid: the file is refused anyway, but
/// `track`s naming the check should not be reported as unknown too.
fn placeholder_check(name: String, span: SourceSpan) -> CheckDef {
    CheckDef {
        name,
        kind: placeholder_kind(),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        fall: 1,
        rise: 1,
        weight: 0,
        user: None,
        init_fail: false,
        span,
    }
}

fn placeholder_kind() -> CheckKind {
    CheckKind::Script {
        command: String::new(),
    }
}

/// The address with the host bits cleared.
fn network_of(ip: IpAddr, prefix_len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An instance "web" on eth0, vrid 51, one IPv4 VIP; `body` lines start at line 5.
    fn web(body: &str) -> String {
        format!(
            "instance \"web\" {{\n    interface \"eth0\"\n    vrid 51\n    vip \"192.0.2.100/24\"\n{body}}}\n"
        )
    }

    fn problems_of(src: &str) -> Vec<Problem> {
        match parse_str(src, "t.kdl") {
            Ok(cfg) => panic!("expected problems, got {cfg:#?}"),
            Err(ConfigError::Invalid { problems, .. }) => problems,
            Err(e) => panic!("unexpected {e}"),
        }
    }

    /// Asserts a problem whose message contains `needle` starts at `line`:`col`, and returns it.
    fn problem_at(src: &str, line: usize, col: usize, needle: &str) -> Problem {
        let problems = problems_of(src);
        problems
            .iter()
            .find(|p| p.line == line && p.column == col && p.message.contains(needle))
            .cloned()
            .unwrap_or_else(|| panic!("no `{needle}` at {line}:{col} in {problems:#?}"))
    }

    /// [`problem_at`] for each (source, line, column, needle).
    fn problems_at(cases: &[(String, usize, usize, &str)]) {
        for (src, line, col, needle) in cases {
            problem_at(src, *line, *col, needle);
        }
    }

    /// [`problem_at`] for each (source, line, column, needle, text its help contains).
    fn problems_with_help(cases: &[(String, usize, usize, &str, &str)]) {
        for (src, line, col, needle, help) in cases {
            let p = problem_at(src, *line, *col, needle);
            assert!(help_of(&p).contains(help), "{p:?}");
        }
    }

    fn help_of(p: &Problem) -> &str {
        p.help.as_deref().unwrap_or("")
    }

    fn ok(src: &str) -> Config {
        parse_str(src, "t.kdl").unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)))
    }

    #[test]
    fn master_down_adverts_defaults_to_the_rfc_and_is_bounded() {
        assert_eq!(ok(&web("")).instances[0].master_down_adverts, 3);
        // Global sets the default, written before or after the instances.
        let late_global = format!("{}global {{\n    master-down-adverts 7\n}}\n", web(""));
        assert_eq!(ok(&late_global).instances[0].master_down_adverts, 7);
        assert_eq!(ok(&late_global).global.master_down_adverts, 7);
        let own = format!(
            "global {{\n    master-down-adverts 7\n}}\n{}",
            web("    master-down-adverts 20\n")
        );
        assert_eq!(ok(&own).instances[0].master_down_adverts, 20);
        problem_at(
            &web("    master-down-adverts 2\n"),
            5,
            25,
            "must be from 3 to 20, not 2",
        );
        problem_at(
            "global {\n    master-down-adverts 21\n}\n",
            2,
            25,
            "must be from 3 to 20, not 21",
        );
        problem_at(
            &web("    master-down-adverts \"6\"\n"),
            5,
            25,
            "master-down-adverts",
        );
    }

    const FULL: &str = r#"
global {
    router-id "h1"
    garp-repeat 3
    garp-interval "10ms"
    garp-refresh "60s"
    script-user "nobody"
}
check "port80" {
    script "/etc/upkeep/check_port80.sh"
    interval "2s"
    timeout "1500ms"
    fall 2
    rise 3
    weight -20
    user "www"
}
instance "web" {
    interface "eth0"
    vrid 51
    priority 150
    advert-interval "100ms"
    version 3
    preempt #false
    preempt-delay "5s"
    initial-state "master"
    unicast-src "192.0.2.1"
    unicast-peer "192.0.2.2" "192.0.2.3"
    unicast-peer "192.0.2.4"
    vip "192.0.2.100/24"
    vip "192.0.2.101" dev="eth1"
    route "198.51.100.0/24" via="192.0.2.254" dev="eth0" metric=10 table=100
    track "port80" weight=-30
}
instance "db" {
    interface "eth0"
    vrid 52
    version 2
    advert-interval 2
    auth-pass "1234"
    nopreempt
    vip "2001:db8::1" // v6 with v2 is refused; replaced below
}
sync-group "g1" {
    member "web" "db"
}
"#;

    fn full() -> String {
        FULL.replace(
            "vip \"2001:db8::1\" // v6 with v2 is refused; replaced below",
            "vip \"192.0.2.200/24\"",
        )
    }

    #[test]
    fn full_example_parses() {
        let cfg = ok(&full());
        let g = &cfg.global;
        assert_eq!(g.router_id.as_deref(), Some("h1"));
        assert_eq!(g.garp_repeat, 3);
        assert_eq!(g.garp_interval, Duration::from_millis(10));
        assert_eq!(g.garp_refresh, Some(Duration::from_secs(60)));
        assert_eq!(g.script_user.as_deref(), Some("nobody"));

        let c = cfg.check("port80").expect("check");
        assert_eq!(
            c.kind,
            CheckKind::Script {
                command: "/etc/upkeep/check_port80.sh".into()
            }
        );
        assert_eq!(c.interval, Duration::from_secs(2));
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!((c.fall, c.rise, c.weight), (2, 3, -20));
        assert_eq!(c.user.as_deref(), Some("www"));

        let w = cfg.instance("web").expect("web");
        assert_eq!(
            (w.interface.as_str(), w.vrid, w.priority),
            ("eth0", 51, 150)
        );
        assert_eq!(w.advert_interval, Duration::from_millis(100));
        assert_eq!(w.version, VrrpVersion::V3);
        assert!(!w.preempt);
        assert_eq!(w.preempt_delay, Duration::from_secs(5));
        assert_eq!(w.initial_state, InitialState::Master);
        assert_eq!(w.unicast_src, Some("192.0.2.1".parse().unwrap()));
        let peers: Vec<String> = w.unicast_peers.iter().map(|p| p.to_string()).collect();
        assert_eq!(peers, ["192.0.2.2", "192.0.2.3", "192.0.2.4"]);
        assert_eq!(
            w.vips,
            vec![
                Vip {
                    addr: "192.0.2.100".parse().unwrap(),
                    prefix_len: 24,
                    dev: None
                },
                Vip {
                    addr: "192.0.2.101".parse().unwrap(),
                    prefix_len: 32,
                    dev: Some("eth1".into())
                },
            ]
        );
        assert_eq!(
            w.routes,
            vec![Route {
                dest: "198.51.100.0".parse().unwrap(),
                prefix_len: 24,
                via: Some("192.0.2.254".parse().unwrap()),
                dev: Some("eth0".into()),
                metric: Some(10),
                table: Some(100),
            }]
        );
        assert_eq!(
            w.tracks,
            vec![Track {
                check: "port80".into(),
                weight: Some(-30)
            }]
        );
        assert!(!w.is_ipv6());

        let d = cfg.instance("db").expect("db");
        assert_eq!(d.version, VrrpVersion::V2);
        assert_eq!(d.advert_interval, Duration::from_secs(2));
        assert_eq!(d.auth_pass.as_deref(), Some("1234"));
        assert!(!d.preempt);
        assert_eq!(d.priority, 100);

        assert_eq!(cfg.sync_groups.len(), 1);
        assert_eq!(cfg.sync_groups[0].members, ["web", "db"]);
        assert_eq!(cfg.group_of("db").map(|g| g.name.as_str()), Some("g1"));
        // Spans point at the nodes, for later diagnostics.
        assert_eq!(line_col(&full(), w.span.offset()), (18, 1));
    }

    #[test]
    fn defaults() {
        let cfg = ok(&format!(
            "check \"c\" {{ script \"true\"; interval \"3s\"; }}\n{}",
            web("")
        ));
        assert_eq!(cfg.global, Global::default());
        let c = &cfg.checks[0];
        assert_eq!(
            (c.interval, c.timeout),
            (Duration::from_secs(3), Duration::from_secs(3))
        );
        assert_eq!(
            (c.fall, c.rise, c.weight, c.user.as_deref()),
            (1, 1, 0, None)
        );
        let i = &cfg.instances[0];
        assert_eq!(i.priority, 100);
        assert_eq!(i.advert_interval, Duration::from_secs(1));
        assert_eq!(i.version, VrrpVersion::V3);
        assert!(i.preempt);
        assert_eq!(i.preempt_delay, Duration::ZERO);
        assert_eq!(i.initial_state, InitialState::Backup);
        assert_eq!((i.auth_pass.as_deref(), i.unicast_src), (None, None));
        assert!(i.unicast_peers.is_empty() && i.routes.is_empty() && i.tracks.is_empty());
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        for (text, want) in [
            ("1s", ms(1000)),
            ("100ms", ms(100)),
            ("2.5s", ms(2500)),
            ("1m", ms(60_000)),
            ("1h", ms(3_600_000)),
            ("2", ms(2000)),
            ("0.1", ms(100)),
            (".5s", ms(500)),
            ("0.29", ms(290)),
            ("250us", Duration::from_micros(250)),
            (" 3s ", ms(3000)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for bad in [
            "",
            "s",
            "-1s",
            "1x",
            "1.2.3s",
            "1e3",
            "99999999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        // Bare numbers in KDL are seconds too.
        let cfg = ok(&web("    advert-interval 0.5\n    preempt-delay 2\n"));
        assert_eq!(cfg.instances[0].advert_interval, ms(500));
        assert_eq!(cfg.instances[0].preempt_delay, ms(2000));
    }

    #[test]
    fn three_node_examples_parse() {
        for (host, text, priority) in [
            (
                "h1",
                include_str!("../../../examples/three-node/h1.kdl"),
                100,
            ),
            (
                "h2",
                include_str!("../../../examples/three-node/h2.kdl"),
                90,
            ),
            (
                "h3",
                include_str!("../../../examples/three-node/h3.kdl"),
                90,
            ),
        ] {
            let cfg = ok(text);
            assert_eq!(cfg.global.router_id.as_deref(), Some(host));
            let i = &cfg.instances[0];
            assert_eq!(
                (i.vrid, i.priority, i.version),
                (47, priority, VrrpVersion::V2)
            );
            assert_eq!(i.advert_interval, Duration::from_secs(1));
            assert!(!i.preempt);
            assert_eq!(i.auth_pass.as_deref(), Some("1234"));
            assert_eq!(i.vips.len(), 1);
            assert_eq!(i.vips[0].addr.to_string(), "192.0.2.100");
            assert_eq!(
                i.routes[0].via.map(|v| v.to_string()).as_deref(),
                Some("192.0.2.254")
            );
            assert_eq!(i.tracks[0].check, "port80");
            let CheckKind::Script { command } = &cfg.checks[0].kind else {
                panic!("not a script: {:?}", cfg.checks[0].kind)
            };
            assert_eq!(command, "./check_port80.sh");
        }
    }

    #[test]
    fn metrics_endpoint() {
        let cfg = ok(&format!(
            "global {{\n    metrics listen=\"127.0.0.1:9650\"\n}}\n{}",
            web("")
        ));
        assert_eq!(
            cfg.global.metrics_listen,
            Some("127.0.0.1:9650".parse().expect("addr"))
        );
        let cfg = ok(&format!(
            "global {{ metrics listen=\"[::1]:9650\"; }}\n{}",
            web("")
        ));
        assert_eq!(
            cfg.global.metrics_listen,
            Some("[::1]:9650".parse().expect("addr"))
        );
        assert_eq!(ok(&web("")).global.metrics_listen, None);

        let g = |line: &str| format!("global {{\n    {line}\n}}\n{}", web(""));
        problems_with_help(&[
            (
                g("metrics listen=\"127.0.0.1\""),
                2,
                13,
                "`listen=` of `metrics` is not an address and port: `127.0.0.1`",
                "add a port",
            ),
            (
                g("metrics listen=\"::1:9650\""),
                2,
                13,
                "not an address and port",
                "brackets",
            ),
            (
                g("metrics listen=\"localhost:9650\""),
                2,
                13,
                "not an address and port",
                "not resolved",
            ),
        ]);
        problem_at(
            &g("metrics listen=\"0.0.0.0:0\""),
            2,
            13,
            "port other than 0",
        );
        problem_at(&g("metrics listen=9650"), 2, 13, "must be a string");
        let p = problem_at(&g("metrics"), 2, 5, "`metrics` needs `listen=`");
        assert!(help_of(&p).contains("metrics listen=\"127.0.0.1:9650\""));
        problems_at(&[
            (
                g("metrics \"127.0.0.1:9650\""),
                2,
                13,
                "takes its address as `listen=`",
            ),
            (
                g("metrics listen=\"127.0.0.1:9650\" port=1"),
                2,
                37,
                "unknown property `port=`",
            ),
            (
                g("metrics listen=\"127.0.0.1:1\"\n    metrics listen=\"127.0.0.1:2\""),
                3,
                5,
                "`metrics` is set twice",
            ),
        ]);
        let p = problem_at(
            &format!("metrics listen=\"127.0.0.1:9650\"\n{}", web("")),
            1,
            1,
            "`metrics` is a setting of `global`",
        );
        assert!(help_of(&p).contains("global { metrics listen="), "{p:?}");
    }

    #[test]
    fn docs_examples_parse() {
        let docs = include_str!("../../../docs/config.md");
        let mut examples = Vec::new();
        let mut rest = docs;
        while let Some(start) = rest.find("```kdl\n") {
            let body = &rest[start + "```kdl\n".len()..];
            let len = body.find("```").expect("its end");
            examples.push(ok(&body[..len]));
            rest = &body[len..];
        }
        assert!(examples.len() >= 3, "{} examples", examples.len());
        let full = examples
            .iter()
            .find(|c| !c.instances.is_empty())
            .expect("the full example");
        assert_eq!(full.instances.len(), 2);
        assert_eq!(
            full.global.metrics_listen,
            Some("127.0.0.1:9650".parse().expect("addr"))
        );
        assert_eq!(full.sync_groups[0].members, ["web", "db"]);
        let kinds: Vec<&str> = full.checks.iter().map(|c| c.kind.keyword()).collect();
        assert_eq!(kinds, ["script", "interface", "process", "file", "plugin"]);
        assert_eq!(
            full.instance("web").expect("web").notify.hooks,
            ["to-slack"]
        );
    }

    /// The example config the Debian package installs as /etc/upkeep/upkeep.kdl.
    #[test]
    fn packaged_example_parses() {
        let cfg = ok(include_str!("../../../contrib/upkeep.kdl"));
        assert_eq!(cfg.instances.len(), 1);
        assert!(cfg.global.metrics_listen.is_some());
        let CheckKind::Plugin { path, grants, .. } = &cfg.checks[0].kind else {
            panic!("{:?}", cfg.checks[0].kind)
        };
        assert_eq!(
            path,
            Path::new("/usr/lib/upkeep/plugins/port-listener.wasm"),
            "where core/Cargo.toml's [package.metadata.deb] installs it"
        );
        assert!(grants.listening_sockets && grants.log);
    }

    /// The quick reader is only a shortcut: where it reads a config, the result is the one the
    /// kdl crate's parse gives (every setting and every kept location).
    #[test]
    fn the_quick_reader_and_the_kdl_crate_give_the_same_config() {
        let mut texts = vec![
            full(),
            include_str!("../../../examples/three-node/h1.kdl").to_owned(),
            include_str!("../../../contrib/upkeep.kdl").to_owned(),
        ];
        // The shape of a large config (start-up time is about these): 255 instances on four
        // interfaces, with comments, properties, routes and tracked checks.
        let mut big = String::from(
            "global { router-id \"h1\"; script-user \"nobody\" }\n\
             check \"port80\" {\n    script \"/bin/true\"\n    interval \"1s\"\n    weight -50\n}\n",
        );
        for n in 1..=255 {
            big.push_str(&format!(
                "// instance {n}\ninstance \"VI_{n}\" {{\n    interface \"eth{}\"\n    vrid {n}\n    \
                 priority 190\n    advert-interval \"1s\" /* v2 */\n    version 2\n    \
                 preempt #true\n    vip \"198.51.100.{}/24\"\n    \
                 route \"203.0.113.0/26\" via=\"198.51.100.254\"\n    track \"port80\"\n}}\n",
                n % 4,
                n % 250 + 1,
            ));
        }
        texts.push(big);
        for text in &texts {
            assert!(
                super::super::fast_kdl::parse(text).is_some(),
                "left to the kdl crate:\n{text}"
            );
            let quick = parse_str(text, "t.kdl").expect("valid");
            let reference = parse_str_with(text, "t.kdl", KdlDocument::parse).expect("valid");
            assert_eq!(quick, reference, "{text}");
        }
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let v1_bool = web("    preempt true\n");
        match parse_str(&v1_bool, "t.kdl") {
            // kdl built with its `v1-fallback` feature reads this as KDL v1.
            Ok(cfg) => assert!(cfg.instances[0].preempt),
            Err(_) => {
                let p = problem_at(&v1_bool, 5, 13, "");
                assert!(help_of(&p).contains("#true"), "{p:?}");
            }
        }
        let err = parse_str("a {\n  b 1\n", "x.kdl").unwrap_err();
        assert!(err.to_string().starts_with("x.kdl:1:3: "), "{err}");
        let err = parse_str("instance \"w\" {\n  vrid 1.\n}\n", "x.kdl").unwrap_err();
        assert!(err.to_string().starts_with("x.kdl:2:8: "), "{err}");
    }

    #[test]
    fn unknown_names_suggest_the_closest() {
        let p = problem_at(&web("    vird 5\n"), 5, 5, "unknown setting `vird`");
        assert_eq!(help_of(&p), "did you mean `vrid`?");
        let p = problem_at(&web("    advert-int \"1s\"\n"), 5, 5, "unknown setting");
        assert_eq!(help_of(&p), "did you mean `advert-interval`?");
        let p = problem_at(&web("    virtual_router_id 5\n"), 5, 5, "unknown setting");
        assert!(help_of(&p).contains("`vrid`"), "{p:?}");
        let p = problem_at("instnace \"x\" {}\n", 1, 1, "unknown section `instnace`");
        assert_eq!(help_of(&p), "did you mean `instance`?");
        let p = problem_at(
            "global { zzz 1; }\n",
            1,
            10,
            "unknown setting `zzz` in `global`",
        );
        assert!(help_of(&p).starts_with("known here: router-id"), "{p:?}");
        let p = problem_at(
            &web("    vip \"192.0.2.9\" devv=\"eth1\"\n"),
            5,
            21,
            "unknown property `devv=`",
        );
        assert_eq!(help_of(&p), "did you mean `dev=`?");
        problem_at(
            &web("    priority 5 foo=1\n"),
            5,
            16,
            "unknown property `foo=` on `priority`",
        );
        problem_at(
            "check \"c\" { script \"x\"; bogus 1; }\n",
            1,
            25,
            "unknown setting `bogus` in check `c`",
        );
        problem_at(
            "sync-group \"g\" { members \"web\"; }\n",
            1,
            18,
            "unknown setting `members`",
        );
    }

    #[test]
    fn wrong_value_types() {
        let p = problem_at(
            &web("    priority \"100\"\n"),
            5,
            14,
            "`priority` must be a whole number, not a string",
        );
        assert_eq!(help_of(&p), "drop the quotes: `priority 100`");
        let p = problem_at(
            "instance \"w\" {\n    interface 5\n}\n",
            2,
            15,
            "must be a string",
        );
        assert!(help_of(&p).contains("interface \"eth0\""), "{p:?}");
        let p = problem_at(
            &web("    preempt \"false\"\n"),
            5,
            13,
            "must be #true or #false",
        );
        assert!(help_of(&p).contains("`#false`"), "{p:?}");
        problem_at(&web("    priority 1.5\n"), 5, 14, "not a decimal number");
        problem_at(
            &web("    advert-interval #true\n"),
            5,
            21,
            "must be a duration",
        );
        problem_at(
            "check \"c\" { script #null; }\n",
            1,
            20,
            "must be a string, not #null",
        );
        let p = problem_at(
            &format!(
                "check \"c\" {{ script \"x\"; }}\n{}",
                web("    track \"c\" weight=\"5\"\n")
            ),
            6,
            15,
            "`weight=` of `track` must be a whole number",
        );
        assert_eq!(help_of(&p), "drop the quotes: `weight=5`");
        problem_at(&web("    vrid\n"), 5, 5, "`vrid` is set twice");
        problem_at(
            "instance \"w\" {\n    vrid\n}\n",
            2,
            5,
            "`vrid` needs a value",
        );
        problem_at(
            &web("    priority 1 2\n"),
            5,
            16,
            "`priority` takes one value",
        );
        problem_at(
            &web("    priority 1 { }\n"),
            5,
            15,
            "`priority` takes no `{ ... }` block",
        );
    }

    #[test]
    fn out_of_range_numbers() {
        problem_at(
            "instance \"w\" {\n    vrid 0\n}\n",
            2,
            10,
            "`vrid` must be from 1 to 255, not 0",
        );
        problem_at("instance \"w\" {\n    vrid 256\n}\n", 2, 10, "not 256");
        problem_at(
            &web("    priority 0\n"),
            5,
            14,
            "`priority` must be from 1 to 255",
        );
        problem_at(
            &web("    version 4\n"),
            5,
            13,
            "`version` must be from 2 to 3",
        );
        problem_at(
            "global {\n    garp-repeat 101\n}\n",
            2,
            17,
            "`garp-repeat` must be from 0 to 100",
        );
        problem_at(
            "check \"c\" {\n    script \"x\"\n    weight -300\n}\n",
            3,
            12,
            "from -253 to 253",
        );
        problem_at(
            "check \"c\" {\n    script \"x\"\n    fall 0\n}\n",
            3,
            10,
            "`fall` must be from 1",
        );
        problem_at(
            "check \"c\" {\n    script \"x\"\n    rise -1\n}\n",
            3,
            10,
            "`rise` must be from 1",
        );
        problem_at(
            &web("    route \"10.0.0.0/8\" metric=-1\n"),
            5,
            24,
            "`metric=` of `route` must be from 0",
        );
        problem_at(
            &web("    route \"10.0.0.0/8\" table=0\n"),
            5,
            24,
            "`table=` of `route` must be from 1",
        );
    }

    #[test]
    fn bad_durations() {
        let p = problem_at(
            "check \"c\" {\n    script \"x\"\n    interval \"2x\"\n}\n",
            3,
            14,
            "unknown unit `x`",
        );
        assert!(help_of(&p).contains("\"100ms\""), "{p:?}");
        problems_at(&[
            (web("    preempt-delay \"-1s\"\n"), 5, 19, "is negative"),
            (web("    preempt-delay -1\n"), 5, 19, "is negative"),
            (
                web("    advert-interval \"fast\"\n"),
                5,
                21,
                "not a valid duration",
            ),
            (
                web("    advert-interval \"0s\"\n"),
                5,
                21,
                "must be longer than 0",
            ),
        ]);
        problem_at(
            "check \"c\" {\n    script \"x\"\n    timeout \"0ms\"\n}\n",
            3,
            13,
            "longer than 0",
        );
        problem_at(
            "global {\n    garp-refresh \"0s\"\n}\n",
            2,
            18,
            "longer than 0",
        );
    }

    #[test]
    fn bad_addresses() {
        problems_at(&[
            (
                web("    vip \"192.0.2.300/24\"\n"),
                5,
                9,
                "`vip` is not an IP address: `192.0.2.300`",
            ),
            (
                web("    vip \"192.0.2.1/33\"\n"),
                5,
                9,
                "bad prefix length `/33`",
            ),
            (web("    vip \"192.0.2.1/x\"\n"), 5, 9, "bad prefix length"),
            (web("    vip \"224.0.0.18\"\n"), 5, 9, "a multicast address"),
            (web("    vip \"192.0.2.100\"\n"), 5, 9, "listed twice"),
            (
                web("    unicast-peer \"192.0.2.2\" \"peer\"\n"),
                5,
                30,
                "`unicast-peer` is not an IP address",
            ),
            (
                web("    unicast-peer \"192.0.2.2\" \"192.0.2.2\"\n"),
                5,
                30,
                "listed twice",
            ),
            (
                web("    unicast-peer\n"),
                5,
                5,
                "needs at least one address",
            ),
            (
                web("    unicast-src \"0.0.0.0\"\n"),
                5,
                17,
                "the unspecified address",
            ),
        ]);
        let p = problem_at(
            &web("    unicast-src \"192.0.2.1/24\"\n"),
            5,
            17,
            "not an IP address",
        );
        assert!(help_of(&p).contains("without a /prefix"));
        let p = problem_at(
            &web("    route \"198.51.100.1/24\"\n"),
            5,
            11,
            "has host bits set",
        );
        assert_eq!(
            help_of(&p),
            "write the network address: \"198.51.100.0/24\""
        );
        problem_at(
            &web("    route \"10.0.0.0/8\" via=\"2001:db8::1\"\n"),
            5,
            24,
            "gateway 2001:db8::1 is IPv6",
        );
        problem_at(
            &web("    route \"10.0.0.0/8\" via=\"gw\"\n"),
            5,
            24,
            "`via=` of `route` is not an IP address",
        );
        problem_at(
            "instance \"w\" {\n    interface \"a/b\"\n}\n",
            2,
            15,
            "not a valid interface name",
        );
        problem_at(
            "instance \"w\" {\n    interface \"averyveryverylongname\"\n}\n",
            2,
            15,
            "not a valid interface name",
        );
        problem_at(
            &web("    vip \"192.0.2.9\" dev=\"\"\n"),
            5,
            21,
            "not a valid interface name",
        );
    }

    #[test]
    fn missing_required_settings_point_at_the_instance() {
        let src = "\ninstance \"w\" {\n    priority 100\n}\n";
        let p = problem_at(src, 2, 1, "instance `w` has no `interface`");
        assert_eq!(p.span.len(), "instance \"w\"".len());
        problem_at(src, 2, 1, "instance `w` has no `vrid`");
        let p = problem_at(src, 2, 1, "instance `w` has no `vip`");
        assert!(help_of(&p).contains("vip \"192.0.2.100/24\""));
        problem_at(
            "check \"c\" {\n    interval 1\n}\n",
            1,
            1,
            "check `c` has no `script`",
        );
        problem_at("instance {\n}\n", 1, 1, "`instance` needs a name");
        problem_at(
            "instance \"w\"\n",
            1,
            1,
            "`instance` has no `{ ... }` block",
        );
        problem_at(
            "instance \"w\" \"v\" {\n}\n",
            1,
            14,
            "`instance` takes one name",
        );
        problem_at(
            "instance \"w\" x=1 {\n}\n",
            1,
            14,
            "`instance` takes no properties",
        );
        problem_at("instance \"\" {\n}\n", 1, 10, "must not be empty");
        problem_at(
            "sync-group \"g\" {\n}\n",
            1,
            1,
            "sync-group `g` has no members",
        );
        problem_at("global 1 {\n}\n", 1, 8, "`global` takes no arguments");
        problem_at("global\n", 1, 1, "`global` has no `{ ... }` block");
    }

    #[test]
    fn duplicates() {
        let src = format!("{}{}", web(""), web(""));
        let p = problem_at(&src, 6, 10, "there is already a instance named `web`");
        assert!(help_of(&p).contains("line 1"));
        problem_at(
            &src,
            8,
            5,
            "vrid 51 on `eth0` (IPv4) is already used by instance `web`",
        );
        let checks = "check \"c\" { script \"a\"; }\ncheck \"c\" { script \"b\"; }\n";
        problem_at(checks, 2, 7, "already a check named `c`");
        problem_at("global {\n}\nglobal {\n}\n", 3, 1, "`global` appears twice");
        problem_at(
            &web("    priority 1\n    priority 2\n"),
            6,
            5,
            "`priority` is set twice in instance `web`",
        );
        problem_at(
            &web("    vip \"192.0.2.9\" dev=\"a\" dev=\"b\"\n"),
            5,
            29,
            "given twice",
        );
        let groups = format!(
            "{}sync-group \"g\" {{ member \"web\"; }}\nsync-group \"g\" {{ member \"x\"; }}\n",
            web("")
        );
        problem_at(&groups, 7, 12, "already a sync-group named `g`");
    }

    #[test]
    fn same_vrid_is_fine_on_another_link_or_family() {
        let v6 = "instance \"web6\" {\n    interface \"eth0\"\n    vrid 51\n    vip \"2001:db8::1/64\"\n}\n";
        let other_link = web("")
            .replace("\"web\"", "\"web2\"")
            .replace("eth0", "eth1");
        let cfg = ok(&format!("{}{v6}{other_link}", web("")));
        assert_eq!(cfg.instances.len(), 3);
        assert!(cfg.instance("web6").is_some_and(|i| i.is_ipv6()));
    }

    #[test]
    fn address_families() {
        let p = problem_at(
            &web("    vip \"2001:db8::1/64\"\n"),
            5,
            9,
            "vip 2001:db8::1 is IPv6 but this instance's first vip is IPv4",
        );
        assert!(help_of(&p).contains("own vrid"));
        let v6v2 = "instance \"w\" {\n    interface \"eth0\"\n    vrid 1\n    version 2\n    vip \"fe80::1/64\"\n}\n";
        let p = problem_at(v6v2, 5, 9, "VRRP version 2 carries only IPv4");
        assert!(help_of(&p).contains("version 3"));
        problem_at(
            &web("    unicast-src \"2001:db8::1\"\n"),
            5,
            17,
            "2001:db8::1 is IPv6 but the instance's VIPs are IPv4",
        );
        problem_at(
            &web("    unicast-peer \"192.0.2.2\" \"2001:db8::2\"\n"),
            5,
            30,
            "is IPv6 but the instance's VIPs are IPv4",
        );
    }

    #[test]
    fn authentication_rules() {
        let p = problem_at(
            &web("    auth-pass \"1234\"\n"),
            5,
            5,
            "`auth-pass` works only with VRRP version 2; version defaults to 3",
        );
        assert!(help_of(&p).contains("version 2"));
        problems_at(&[
            (
                web("    version 3\n    auth-pass \"1234\"\n"),
                6,
                5,
                "this instance uses version 3",
            ),
            (
                web("    version 2\n    auth-pass \"123456789\"\n"),
                6,
                15,
                "1 to 8 bytes long, not 9 bytes",
            ),
            (
                web("    version 2\n    auth-pass \"\"\n"),
                6,
                15,
                "not 0 bytes",
            ),
        ]);
        let cfg = ok(&web("    version 2\n    auth-pass \"12345678\"\n"));
        assert_eq!(cfg.instances[0].auth_pass.as_deref(), Some("12345678"));
    }

    #[test]
    fn advert_interval_limits() {
        let p = problem_at(
            &web("    version 2\n    advert-interval \"1500ms\"\n"),
            6,
            21,
            "VRRP version 2 sends adverts every 1 to 255 whole seconds",
        );
        assert!(help_of(&p).contains("version 3"));
        problems_at(&[
            (web("    version 2\n    advert-interval \"256s\"\n"), 6, 21, "whole seconds"),
            (web("    advert-interval \"15ms\"\n"), 5, 21, "VRRP version 3 sends adverts every 10ms to 40.95s in steps of 10ms; 15ms is not one of them (version defaults to 3)"),
            (web("    advert-interval \"5ms\"\n"), 5, 21, "10ms to 40.95s"),
            (web("    advert-interval \"41s\"\n"), 5, 21, "10ms to 40.95s"),
        ]);
        let cfg = ok(&web("    advert-interval \"40.95s\"\n"));
        assert_eq!(
            cfg.instances[0].advert_interval,
            Duration::from_millis(40_950)
        );
        let cfg = ok(&web("    version 2\n    advert-interval \"255s\"\n"));
        assert_eq!(cfg.instances[0].advert_interval, Duration::from_secs(255));
    }

    #[test]
    fn references() {
        let checks = "check \"port80\" { script \"x\"; }\n";
        let p = problem_at(
            &format!("{checks}{}", web("    track \"port8\"\n")),
            6,
            11,
            "there is no check named `port8`",
        );
        assert_eq!(help_of(&p), "did you mean `port80`?");
        let p = problem_at(&web("    track \"x\"\n"), 5, 11, "no check named `x`");
        assert!(help_of(&p).contains("define it"));
        problem_at(
            &format!(
                "{checks}{}",
                web("    track \"port80\"\n    track \"port80\" weight=1\n")
            ),
            7,
            11,
            "tracked twice",
        );

        let groups = format!(
            "{}sync-group \"g\" {{\n    member \"web\" \"wbe\"\n}}\n",
            web("")
        );
        let p = problem_at(&groups, 7, 18, "there is no instance named `wbe`");
        assert_eq!(help_of(&p), "did you mean `web`?");
        let two = format!(
            "{}sync-group \"a\" {{\n    member \"web\"\n}}\nsync-group \"b\" {{\n    member \"web\"\n}}\n",
            web("")
        );
        problem_at(&two, 10, 12, "instance `web` is already in sync-group `a`");
        let twice = format!(
            "{}sync-group \"a\" {{\n    member \"web\" \"web\"\n}}\n",
            web("")
        );
        problem_at(&twice, 7, 18, "listed twice");
        problem_at(
            &format!("{}sync-group \"a\" {{\n    member\n}}\n", web("")),
            7,
            5,
            "needs at least one instance name",
        );
    }

    #[test]
    fn preempt_forms() {
        assert!(ok(&web("    preempt\n")).instances[0].preempt);
        assert!(ok(&web("    preempt #true\n")).instances[0].preempt);
        assert!(!ok(&web("    nopreempt\n")).instances[0].preempt);
        problems_at(&[
            (
                web("    preempt #true\n    nopreempt\n"),
                6,
                5,
                "both `preempt` and `nopreempt`",
            ),
            (
                web("    nopreempt #true\n"),
                5,
                15,
                "`nopreempt` takes no value",
            ),
            (
                web("    initial-state \"primary\"\n"),
                5,
                19,
                "must be \"backup\" or \"master\"",
            ),
        ]);
        let cfg = ok(&web("    initial-state \"MASTER\"\n"));
        assert_eq!(cfg.instances[0].initial_state, InitialState::Master);
    }

    #[test]
    fn every_problem_is_collected_in_file_order() {
        let src = web("    track \"nope\"\n    priority 0\n    vird 3\n");
        let err = parse_str(&src, "t.kdl").unwrap_err();
        let problems = err.problems();
        let places: Vec<(usize, usize)> = problems.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(places, [(5, 11), (6, 14), (7, 5)], "{problems:#?}");
        assert_eq!(
            err.to_string(),
            "t.kdl:5:11: there is no check named `nope` (and 2 more problems)"
        );
        let one = parse_str(&web("    vird 3\n"), "t.kdl").unwrap_err();
        assert_eq!(
            one.to_string(),
            "t.kdl:5:5: unknown setting `vird` in instance `web`"
        );
        assert!(!one.to_string().contains('\n'));
    }

    #[test]
    fn renders_with_miette() {
        let err = parse_str(&web("    vird 3\n"), "t.kdl").unwrap_err();
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(200)
            .render_report(&mut out, &err)
            .expect("render");
        assert!(out.contains("t.kdl:5:5"), "{out}");
        assert!(out.contains("vird 3"), "{out}");
        assert!(out.contains("unknown name"), "{out}");
        assert!(out.contains("did you mean `vrid`?"), "{out}");
        assert_eq!(
            err.code().map(|c| c.to_string()).as_deref(),
            Some("upkeep::config::invalid")
        );
    }

    #[test]
    fn load_reads_files_and_reports_io_errors() {
        let dir = std::env::temp_dir().join(format!("upkeep-parse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("ok.kdl");
        std::fs::write(&path, web("")).expect("write");
        assert_eq!(load(&path).expect("loads").instances.len(), 1);
        let missing = dir.join("missing.kdl");
        let err = load(&missing).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }));
        assert!(
            err.to_string()
                .contains("missing.kdl: cannot read config file"),
            "{err}"
        );
        assert_eq!(err.problems().len(), 1);
        std::fs::write(&path, web("    vird 3\n")).expect("write");
        let err = load(&path).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}:5:5: ", path.display())),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Instance "web" with `body` lines from line 5, after `before` (which must end in `\n`).
    fn with_checks(before: &str, body: &str) -> String {
        format!("{before}{}", web(body))
    }

    #[test]
    fn check_kinds_parse() {
        let src = r#"
check "http" {
    plugin "plugins/http_check.wasm"
    config url="http://127.0.0.1/health" expect=200
    config verbose=#true
    allow "tcp-connect" "127.0.0.1:80" "[2001:db8::1]:443"
    allow "tcp-connect" "192.0.2.9:0"
    allow "read-file" "/etc/a" "/etc/b"
    allow "listening-sockets"
    allow "log"
    allow "clock"
    memory-limit "8MiB"
    timeout "500ms"
    init-fail
}
check "uplink" {
    interface "eth1"
    weight -10
}
check "knob" {
    file "/run/upkeep/weight"
    interval "5s"
}
check "nginx" {
    process "nginx"
    min-count 2
    fall 2
}
check "java" {
    process "java -jar /srv/app.jar" full=#true
    weight 5
}
check "sh" {
    script "true"
    user "nobody"
    init-fail #false
}
"#;
        let cfg = ok(src);
        let http = cfg.check("http").expect("http");
        assert_eq!(
            http.kind,
            CheckKind::Plugin {
                path: "plugins/http_check.wasm".into(),
                config: vec![
                    ("url".into(), "http://127.0.0.1/health".into()),
                    ("expect".into(), "200".into()),
                    ("verbose".into(), "true".into()),
                ],
                grants: Grants {
                    listening_sockets: true,
                    tcp_connect: vec![
                        "127.0.0.1:80".parse().unwrap(),
                        "[2001:db8::1]:443".parse().unwrap(),
                        "192.0.2.9:0".parse().unwrap(),
                    ],
                    read_file: vec!["/etc/a".into(), "/etc/b".into()],
                    log: true,
                    clock: true,
                },
                memory_limit: 8 << 20,
            }
        );
        assert!(http.init_fail);
        assert_eq!(http.timeout, Duration::from_millis(500));
        assert_eq!(http.weight, 0);
        let uplink = cfg.check("uplink").expect("uplink");
        assert_eq!(
            uplink.kind,
            CheckKind::Interface {
                name: "eth1".into()
            }
        );
        assert_eq!(uplink.weight, -10);
        let knob = cfg.check("knob").expect("knob");
        assert_eq!(
            knob.kind,
            CheckKind::File {
                path: "/run/upkeep/weight".into()
            }
        );
        assert_eq!(knob.weight, 1, "file checks weigh 1 by default");
        assert_eq!(knob.interval, Duration::from_secs(5));
        assert_eq!(
            cfg.check("nginx").expect("nginx").kind,
            CheckKind::Process {
                name: "nginx".into(),
                full: false,
                min_count: 2
            }
        );
        assert_eq!(cfg.check("nginx").expect("nginx").fall, 2);
        assert_eq!(
            cfg.check("java").expect("java").kind,
            CheckKind::Process {
                name: "java -jar /srv/app.jar".into(),
                full: true,
                min_count: 1
            }
        );
        let sh = cfg.check("sh").expect("sh");
        assert!(!sh.init_fail);
        assert_eq!(sh.user.as_deref(), Some("nobody"));
        // A plugin with nothing granted gets nothing, and the default memory cap.
        let bare = ok("check \"p\" { plugin \"x.wasm\"; }\n");
        assert_eq!(
            bare.checks[0].kind,
            CheckKind::Plugin {
                path: "x.wasm".into(),
                config: Vec::new(),
                grants: Grants::default(),
                memory_limit: DEFAULT_MEMORY_LIMIT,
            }
        );
        assert!(!bare.checks[0].init_fail);
    }

    #[test]
    fn check_kind_rules() {
        let p = problem_at(
            "check \"c\" {\n    interval 1\n}\n",
            1,
            1,
            "check `c` has no `script`, `plugin`, `interface`, `file` or `process`",
        );
        assert!(help_of(&p).contains("process \"nginx\""), "{p:?}");
        let p = problem_at(
            "check \"c\" {\n    script \"x\"\n    plugin \"y.wasm\"\n}\n",
            3,
            5,
            "check `c` has both `script` (line 2) and `plugin`",
        );
        assert!(help_of(&p).contains("another check"), "{p:?}");
        let p = problem_at(
            "check \"c\" {\n    file \"/run/w\"\n    timeout \"1s\"\n}\n",
            3,
            5,
            "`timeout` does not apply to a `file` check",
        );
        assert_eq!(
            help_of(&p),
            "`timeout` is a setting of `script` or `plugin` checks; remove it"
        );
        problem_at(
            "check \"c\" {\n    interface \"eth1\"\n    interval \"1s\"\n}\n",
            3,
            5,
            "`interval` does not apply to a `interface` check",
        );
        problem_at(
            "check \"c\" {\n    plugin \"x.wasm\"\n    user \"nobody\"\n}\n",
            3,
            5,
            "`user` does not apply to a `plugin` check",
        );
        let p = problem_at(
            "check \"c\" {\n    script \"x\"\n    allow \"log\"\n    allow \"clock\"\n}\n",
            3,
            5,
            "`allow` does not apply to a `script` check",
        );
        assert_eq!(
            help_of(&p),
            "`allow` is a setting of `plugin` checks; remove it"
        );
        assert_eq!(
            problems_of(
                "check \"c\" {\n    script \"x\"\n    allow \"log\"\n    allow \"clock\"\n}\n"
            )
            .len(),
            1,
            "reported once per setting"
        );
        problem_at(
            "check \"c\" {\n    script \"x\"\n    min-count 2\n}\n",
            3,
            5,
            "`min-count` does not apply",
        );
        problem_at(
            "check \"c\" {\n    process \"x\"\n    min-count 0\n}\n",
            3,
            15,
            "`min-count` must be from 1",
        );
        problem_at(
            "check \"c\" {\n    process \"x\" full=\"yes\"\n}\n",
            2,
            17,
            "`full=` of `process` must be #true or #false",
        );
        problem_at(
            "check \"c\" {\n    process \"x\" ful=#true\n}\n",
            2,
            17,
            "unknown property `ful=`",
        );
        problem_at(
            "check \"c\" {\n    interface \"a/b\"\n}\n",
            2,
            15,
            "not a valid interface name",
        );
        problem_at(
            "check \"c\" {\n    file \"\"\n}\n",
            2,
            10,
            "`file` must not be empty",
        );
        problem_at(
            "check \"c\" {\n    script \"x\"\n    init-fail \"yes\"\n}\n",
            3,
            15,
            "must be #true or #false",
        );
        // A check whose kind is invalid is still known, so tracks of it are not errors too.
        let problems = problems_of(&with_checks(
            "check \"c\" { interface \"a/b\"; }\n",
            "    track \"c\"\n",
        ));
        assert_eq!(problems.len(), 1, "{problems:#?}");
    }

    #[test]
    fn plugin_settings_rules() {
        let plugin = |body: &str| format!("check \"p\" {{\n    plugin \"x.wasm\"\n{body}}}\n");
        let p = problem_at(
            &plugin("    allow \"net\"\n"),
            3,
            11,
            "unknown capability `net` in `allow`",
        );
        assert_eq!(
            help_of(&p),
            "known capabilities: listening-sockets, tcp-connect, read-file, log, clock"
        );
        let p = problem_at(&plugin("    allow \"clok\"\n"), 3, 11, "unknown capability");
        assert!(help_of(&p).starts_with("did you mean `clock`?"), "{p:?}");
        problem_at(&plugin("    allow\n"), 3, 5, "`allow` needs a capability");
        problem_at(
            &plugin("    allow \"log\" \"x\"\n"),
            3,
            17,
            "`allow \"log\"` takes no more values",
        );
        problems_with_help(&[
            (
                plugin("    allow \"log\"\n    allow \"log\"\n"),
                4,
                5,
                "`allow \"log\"` is given twice",
                "line 3",
            ),
            (
                plugin("    allow \"tcp-connect\"\n"),
                3,
                5,
                "`allow \"tcp-connect\"` needs at least one value",
                "127.0.0.1:80",
            ),
        ]);
        let p = problem_at(
            &plugin("    allow \"tcp-connect\" \"127.0.0.1\"\n"),
            3,
            25,
            "`127.0.0.1` is not an address with a port",
        );
        assert_eq!(help_of(&p), "add the port: \"127.0.0.1:80\"");
        problems_with_help(&[
            (
                plugin("    allow \"tcp-connect\" \"2001:db8::1:443\"\n"),
                3,
                25,
                "not an address with a port",
                "[2001:db8::1:443]:443",
            ),
            (
                plugin("    allow \"tcp-connect\" \"localhost:80\"\n"),
                3,
                25,
                "not an address with a port",
                "names are not resolved",
            ),
        ]);
        problems_at(&[
            (plugin("    allow \"tcp-connect\" \"127.0.0.1:80\"\n    allow \"tcp-connect\" \"127.0.0.1:80\"\n"), 4, 25, "127.0.0.1:80 is listed twice"),
            (plugin("    allow \"read-file\" \"/a\" \"/a\"\n"), 3, 28, "/a is listed twice"),
            (plugin("    allow \"read-file\" \"\"\n"), 3, 23, "must not be empty"),
        ]);
        let p = problem_at(
            &plugin("    memory-limit \"16MB\"\n"),
            3,
            18,
            "`memory-limit` is not a valid size: `16MB`: write `MiB`",
        );
        assert!(help_of(&p).contains("16MiB"), "{p:?}");
        problems_at(&[
            (
                plugin("    memory-limit \"5GiB\"\n"),
                3,
                18,
                "more than 4GiB",
            ),
            (
                plugin("    memory-limit \"1KiB\"\n"),
                3,
                18,
                "less than 64KiB",
            ),
            (plugin("    memory-limit -1\n"), 3, 18, "is negative"),
            (
                plugin("    memory-limit #true\n"),
                3,
                18,
                "`memory-limit` must be a size, not a boolean",
            ),
        ]);
        let cfg = ok(&plugin("    memory-limit 1048576\n"));
        assert!(matches!(
            cfg.checks[0].kind,
            CheckKind::Plugin {
                memory_limit: 1_048_576,
                ..
            }
        ));
        let cfg = ok(&plugin("    memory-limit \"4GiB\"\n"));
        assert!(matches!(
            cfg.checks[0].kind,
            CheckKind::Plugin {
                memory_limit: MAX_MEMORY_LIMIT,
                ..
            }
        ));
        let p = problem_at(
            &plugin("    config a=\"1\"\n    config a=\"2\"\n"),
            4,
            12,
            "`config` key `a` is given twice",
        );
        assert!(help_of(&p).contains("line 3"), "{p:?}");
        problems_at(&[
            (
                plugin("    config \"x\"\n"),
                3,
                12,
                "`config` takes key=\"value\" properties",
            ),
            (
                plugin("    config\n"),
                3,
                5,
                "needs at least one key=\"value\"",
            ),
            (
                plugin("    config a=#null\n"),
                3,
                12,
                "`a=` of `config` must be a string",
            ),
        ]);
    }

    #[test]
    fn notify_and_hooks() {
        let src = r#"
hook "slack" {
    plugin "/etc/upkeep/slack.wasm"
    allow "tcp-connect" "192.0.2.50:443"
    allow "log"
    memory-limit "8MiB"
    timeout "2s"
}
hook "audit" {
    plugin "audit.wasm"
}
instance "web" {
    interface "eth0"
    vrid 51
    vip "192.0.2.100/24"
    notify-master "/etc/upkeep/master.sh web"
    notify-backup "/etc/upkeep/backup.sh"
    notify-fault "/etc/upkeep/fault.sh"
    notify-stop "/etc/upkeep/stop.sh"
    notify "/etc/upkeep/notify.sh"
    notify-hook "slack" "audit"
}
sync-group "g" {
    member "web"
    notify-master "/etc/upkeep/group_master.sh"
    notify-hook "slack"
}
global {
    notify-timeout "7s"
    script-security #false
}
"#;
        let cfg = ok(src);
        assert_eq!(cfg.global.notify_timeout, Duration::from_secs(7));
        assert!(!cfg.global.script_security);
        let slack = cfg.hook("slack").expect("slack");
        assert_eq!(slack.path, PathBuf::from("/etc/upkeep/slack.wasm"));
        assert_eq!(slack.memory_limit, 8 << 20);
        assert_eq!(slack.timeout, Duration::from_secs(2));
        assert_eq!(
            slack.grants,
            Grants {
                tcp_connect: vec!["192.0.2.50:443".parse().unwrap()],
                log: true,
                ..Grants::default()
            }
        );
        let audit = cfg.hook("audit").expect("audit");
        assert_eq!(
            audit.timeout,
            Duration::from_secs(7),
            "a hook's timeout defaults to notify-timeout, even when global comes later"
        );
        assert_eq!(audit.memory_limit, DEFAULT_MEMORY_LIMIT);
        let w = cfg.instance("web").expect("web");
        assert_eq!(
            w.notify,
            Notify {
                master: Some("/etc/upkeep/master.sh web".into()),
                backup: Some("/etc/upkeep/backup.sh".into()),
                fault: Some("/etc/upkeep/fault.sh".into()),
                stop: Some("/etc/upkeep/stop.sh".into()),
                any: Some("/etc/upkeep/notify.sh".into()),
                hooks: vec!["slack".into(), "audit".into()],
            }
        );
        let g = &cfg.sync_groups[0];
        assert_eq!(
            g.notify.master.as_deref(),
            Some("/etc/upkeep/group_master.sh")
        );
        assert_eq!(g.notify.hooks, ["slack"]);
        assert!(g.notify.backup.is_none());
        // Defaults.
        let plain = ok(&web(""));
        assert_eq!(plain.global.notify_timeout, Duration::from_secs(5));
        assert!(plain.global.script_security);
        assert!(plain.instances[0].notify.is_empty());
        assert!(plain.hooks.is_empty());
    }

    #[test]
    fn notify_rules() {
        let hook = "hook \"slack\" {\n    plugin \"s.wasm\"\n}\n";
        let p = problem_at(
            &with_checks(hook, "    notify-hook \"slak\"\n"),
            8,
            17,
            "there is no hook named `slak`",
        );
        assert_eq!(help_of(&p), "did you mean `slack`?");
        let p = problem_at(&web("    notify-hook \"x\"\n"), 5, 17, "no hook named `x`");
        assert!(help_of(&p).contains("define it"), "{p:?}");
        problem_at(
            &with_checks(hook, "    notify-hook \"slack\" \"slack\"\n"),
            8,
            25,
            "hook `slack` is listed twice in instance `web`",
        );
        problems_at(&[
            (
                web("    notify-hook\n"),
                5,
                5,
                "needs at least one hook name",
            ),
            (
                web("    notify-master \"a\"\n    notify-master \"b\"\n"),
                6,
                5,
                "`notify-master` is set twice in instance `web`",
            ),
            (
                web("    notify \"\"\n"),
                5,
                12,
                "`notify` must not be empty",
            ),
            (
                web("    notify-master 1\n"),
                5,
                19,
                "`notify-master` must be a string",
            ),
        ]);
        let p = problem_at(&web("    notify_master \"x\"\n"), 5, 5, "unknown setting");
        assert_eq!(
            help_of(&p),
            "keepalived's `notify_master` is `notify-master` here"
        );
        let group = format!(
            "{}sync-group \"g\" {{\n    member \"web\"\n    notify-fault \"a\"\n    notify-fault \"b\"\n    notify-hook \"nope\"\n    bogus 1\n}}\n",
            web("")
        );
        problem_at(
            &group,
            9,
            5,
            "`notify-fault` is set twice in sync-group `g`",
        );
        problem_at(&group, 10, 17, "there is no hook named `nope`");
        problem_at(&group, 11, 5, "unknown setting `bogus` in sync-group `g`");
        problem_at(
            "hook \"h\" {\n    timeout \"1s\"\n}\n",
            1,
            1,
            "hook `h` has no `plugin`",
        );
        problem_at(
            "hook \"h\" {\n    plugin \"a.wasm\"\n    script \"x\"\n}\n",
            3,
            5,
            "unknown setting `script` in hook `h`",
        );
        problem_at(
            "hook \"h\" {\n    plugin \"a.wasm\"\n    timeout \"0s\"\n}\n",
            3,
            13,
            "longer than 0",
        );
        problem_at(
            "hook \"h\" { plugin \"a.wasm\"; }\nhook \"h\" { plugin \"b.wasm\"; }\n",
            2,
            6,
            "there is already a hook named `h`",
        );
        problem_at(
            "global {\n    notify-timeout \"0s\"\n}\n",
            2,
            20,
            "longer than 0",
        );
        problem_at(
            "global {\n    script-security \"no\"\n}\n",
            2,
            21,
            "must be #true or #false",
        );
        assert!(
            ok("global {\n    script-security\n}\n")
                .global
                .script_security
        );
    }

    #[test]
    fn sizes() {
        for (text, want) in [
            ("0", 0),
            ("1048576", 1 << 20),
            ("10B", 10),
            ("512KiB", 512 << 10),
            ("16MiB", 16 << 20),
            ("16 MiB", 16 << 20),
            ("4GiB", 4 << 30),
        ] {
            assert_eq!(parse_size(text), Ok(want), "{text}");
        }
        for bad in [
            "",
            "MiB",
            "1.5GiB",
            "-1",
            "16mb",
            "1TiB",
            "99999999999999999999",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(parse_size("16MB").unwrap_err().contains("`MiB`"));
        assert!(parse_size("2k").unwrap_err().contains("`KiB`"));
    }

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("vird", "vrid"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            closest("interfce", INSTANCE_KEYS.iter().copied()),
            Some("interface")
        );
        assert_eq!(
            closest("preempt_delay", INSTANCE_KEYS.iter().copied()),
            Some("preempt-delay")
        );
        assert_eq!(closest("zebra", INSTANCE_KEYS.iter().copied()), None);
        assert_eq!(line_col("ab\ncdé\nf", 8), (3, 1));
        assert_eq!(line_col("ab\ncdé\nf", 7), (2, 4));
    }
}
