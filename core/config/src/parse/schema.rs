//! The schema as tables: which settings each block takes, which may repeat, which check kinds
//! a setting applies to, keepalived's spellings, and a one-line example of each setting.

use crate::model::Capability;

/// What a plugin may be granted with `allow`: the names of [`Capability::ALL`].
pub(super) const CAPABILITIES: [&str; Capability::ALL.len()] = {
    let mut names = [""; Capability::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = Capability::ALL[i].name();
        i += 1;
    }
    names
};

pub(super) const TOP_KEYS: &[&str] = &["global", "check", "hook", "instance", "sync-group"];
pub(super) const GLOBAL_KEYS: &[&str] = &[
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
pub(super) const CHECK_KINDS: &[&str] = &["script", "plugin", "interface", "file", "process"];
pub(super) const CHECK_KEYS: &[&str] = &[
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
pub(super) const HOOK_KEYS: &[&str] = &["plugin", "allow", "memory-limit", "timeout"];
pub(super) const INSTANCE_KEYS: &[&str] = &[
    "interface",
    "vrid",
    "priority",
    "advert-interval",
    "version",
    "preempt",
    "nopreempt",
    "preempt-delay",
    "handover-when-sick",
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
pub(super) const SYNC_GROUP_KEYS: &[&str] = &[
    "member",
    "notify-master",
    "notify-backup",
    "notify-fault",
    "notify-stop",
    "notify",
    "notify-hook",
];
/// Settings that may appear more than once in their block.
pub(super) const REPEATABLE: &[&str] = &[
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
pub(super) fn applies_to(key: &str) -> &'static [&'static str] {
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
pub(super) const KEEPALIVED_NAMES: &[(&str, &str)] = &[
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
pub(super) fn example(key: &str) -> &'static str {
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
        "handover-when-sick" => "handover-when-sick #true",
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
