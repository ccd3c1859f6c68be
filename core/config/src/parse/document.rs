//! The whole file: the top-level blocks read in order and put together, `global` and its
//! `metrics`, and where the settings the daemon's host checks report on are written.

use std::net::{IpAddr, SocketAddr};

use kdl::{KdlDocument, KdlNode};
use miette::SourceSpan;

use super::schema::{example, GLOBAL_KEYS, TOP_KEYS};
use super::validate::{head, positional, prop, Seen, Validator};
use crate::model::{Config, Global, HookDef, InstanceConfig, Locations};

/// Where the settings `config::host` reports on are written.
fn locations(doc: &KdlDocument) -> Locations {
    let child = |node: &KdlNode, key: &str| {
        node.children()?
            .nodes()
            .iter()
            .find(|c| c.name().value() == key)
            .map(KdlNode::span)
    };
    let global = doc.nodes().iter().find(|n| n.name().value() == "global");
    let mut at = Locations {
        script_user: global.and_then(|g| child(g, "script-user")),
        notify_fifo_script: global.and_then(|g| child(g, "notify-fifo-script")),
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

impl Validator<'_> {
    pub(super) fn document(&mut self, doc: &KdlDocument) -> Config {
        let mut config = Config::default();
        let mut global_at: Option<SourceSpan> = None;
        let mut checks = Vec::new();
        let mut hooks = Vec::new();
        let mut instances = Vec::new();
        let mut groups = Vec::new();
        let mut speakers = Vec::new();
        let mut announces = Vec::new();
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
                "speaker" => speakers.extend(self.speaker(node)),
                "announce" => announces.extend(self.announce(node)),
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
        self.unique_names(
            "speaker",
            speakers.iter().map(|s| (s.def.name.as_str(), s.name_span)),
        );
        self.unique_names(
            "announce",
            announces.iter().map(|a| (a.def.name.as_str(), a.name_span)),
        );
        self.resolve_announces(&announces, &speakers);
        let check_names: Vec<&str> = checks.iter().map(|c| c.def.name.as_str()).collect();
        for a in &announces {
            self.resolve_track_refs(&a.def.tracks, &a.track_at, &check_names);
        }
        let instance_names: Vec<&str> = instances.iter().map(|i| i.cfg.name.as_str()).collect();
        self.resolve_announce_instances(&announces, &instance_names);
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
            .map(|i| {
                // Likewise the announcement settings it does not set itself.
                let a = i.announce.resolve(&config.global);
                let g = &config.global;
                let group = i.cfg.multicast_group.or(if i.cfg.unicast_peers.is_empty() {
                    if i.cfg.is_ipv6() {
                        g.multicast_group6.map(IpAddr::V6)
                    } else {
                        g.multicast_group4.map(IpAddr::V4)
                    }
                } else {
                    None
                });
                InstanceConfig {
                    multicast_group: group,
                    master_down_adverts: i.master_down_adverts.unwrap_or(default_down),
                    garp: a.garp,
                    lower_prio_no_advert: a.lower_prio_no_advert,
                    higher_prio_send_advert: a.higher_prio_send_advert,
                    notify_priority_changes: a.notify_priority_changes,
                    ..i.cfg
                }
            })
            .collect();
        config.sync_groups = groups.into_iter().map(|g| g.group).collect();
        config.speakers = speakers.into_iter().map(|s| s.def).collect();
        config.announces = announces.into_iter().map(|a| a.def).collect();
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
                _ => {
                    if !self.global_announce_setting(child, global) {
                        self.unknown(child, GLOBAL_KEYS, "`global`");
                    }
                }
            }
        }
        self.fifo_rules(node, global);
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
}
