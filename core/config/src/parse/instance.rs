//! `instance` and `sync-group` blocks: their settings, notify commands and hooks, and the rules
//! that need the whole instance.

use std::net::IpAddr;
use std::time::Duration;

use kdl::{KdlEntry, KdlNode};
use miette::SourceSpan;

use super::announce::AnnounceOverrides;
use super::schema::{example, INSTANCE_KEYS, SYNC_GROUP_KEYS};
use super::validate::{head, positional, prop, Seen, Validator};
use super::value::family;
use crate::model::{
    Garp, InitialState, InstanceConfig, Notify, SyncGroup, Track, Vip, Vmac, VrrpVersion,
    MASTER_DOWN_ADVERTS, MAX_ADVERTISED_VIPS, RFC_MASTER_DOWN_ADVERTS,
};

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
    /// `no-vip`: an instance that moves no address (keepalived's `no_virtual_ipaddress`).
    no_vip: Option<SourceSpan>,
    unicast_ttl: Option<SourceSpan>,
    group: Option<SourceSpan>,
}

/// An instance as read, with the spans that checks across instances point at.
pub(super) struct InstanceDraft {
    pub(super) cfg: InstanceConfig,
    pub(super) name_span: SourceSpan,
    pub(super) vrid_at: Option<SourceSpan>,
    /// Interface and vrid were both given and valid, so the pair identifies a virtual router.
    pub(super) identified: bool,
    pub(super) track_at: Vec<SourceSpan>,
    /// Where each `notify.hooks` name was written.
    pub(super) hook_at: Vec<SourceSpan>,
    /// `master-down-adverts` set in the instance (else `global`'s applies).
    pub(super) master_down_adverts: Option<u8>,
    /// Its own announcement settings (the rest are `global`'s).
    pub(super) announce: AnnounceOverrides,
}

pub(super) struct GroupDraft {
    pub(super) group: SyncGroup,
    pub(super) name_span: SourceSpan,
    pub(super) member_at: Vec<SourceSpan>,
    pub(super) hook_at: Vec<SourceSpan>,
}

fn v2_of(cfg: &InstanceConfig) -> bool {
    cfg.version == VrrpVersion::V2
}

impl Validator<'_> {
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

    pub(super) fn instance(&mut self, node: &KdlNode) -> Option<InstanceDraft> {
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
            accept: true,
            preempt_delay: Duration::ZERO,
            handover_when_sick: true,
            master_down_adverts: RFC_MASTER_DOWN_ADVERTS,
            auth_pass: None,
            initial_state: InitialState::Backup,
            unicast_src: None,
            unicast_peers: Vec::new(),
            unicast_ttl: 255,
            multicast_group: None,
            peer_ttl: Vec::new(),
            vips: Vec::new(),
            routes: Vec::new(),
            rules: Vec::new(),
            tracks: Vec::new(),
            notify: Notify::default(),
            vmac: None,
            garp: Garp::default(),
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            notify_priority_changes: false,
            span: node.span(),
        };
        let mut announce = AnnounceOverrides::default();
        let mut at = InstanceSpans::default();
        let mut track_at = Vec::new();
        let mut hook_at = Vec::new();
        let mut master_down_adverts = None;
        // Rules that match no address: of the instance's family, known once its VIPs are.
        let mut unfamilied: Vec<usize> = Vec::new();
        // (index in cfg.vips, where its label is): checked once the interface is known.
        let mut labels: Vec<(usize, SourceSpan)> = Vec::new();
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
                    self.valueless(
                        child,
                        &[],
                        "`nopreempt` takes no value",
                        "write `nopreempt` alone, or `preempt #false`",
                    );
                    cfg.preempt = false;
                }
                "accept" => {
                    if let Some(b) = self.flag(child) {
                        cfg.accept = b;
                    }
                }
                "preempt-delay" => {
                    if let Some(d) = self.one_duration(child) {
                        cfg.preempt_delay = d;
                    }
                }
                "no-vip" => {
                    at.no_vip = Some(head(child));
                    self.valueless(
                        child,
                        &[],
                        "`no-vip` takes no value",
                        "write `no-vip` alone",
                    );
                }
                "notify-master-rx-lower-pri" => {
                    cfg.notify.master_rx_lower_pri = self.one_string(child);
                }
                "handover-when-sick" => {
                    if let Some(b) = self.flag(child) {
                        cfg.handover_when_sick = b;
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
                "unicast-peer" => self.peers_with_ttl(
                    child,
                    &mut cfg.unicast_peers,
                    &mut at.peers,
                    &mut cfg.peer_ttl,
                ),
                "multicast-group" => {
                    if let Some(e) = self.one_arg(child, &[]) {
                        cfg.multicast_group = self.multicast_group(e, key);
                        at.group = Some(e.span());
                    }
                }
                "unicast-ttl" => {
                    if let Some(n) = self.one_integer(child, 1, 255) {
                        cfg.unicast_ttl = n as u8;
                        at.unicast_ttl = Some(head(child));
                    }
                }
                "vip" => {
                    at.vip_nodes += 1;
                    if let Some(super::addresses::VipAt {
                        vip,
                        span,
                        label_at,
                    }) = self.vip(child)
                    {
                        if let Some(l) = label_at {
                            labels.push((cfg.vips.len(), l));
                        }
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
                "use-vmac" => cfg.vmac = self.vmac(child),
                "rule" => {
                    if let Some((rule, family_known)) = self.rule(child) {
                        if cfg.rules.contains(&rule) {
                            self.report(
                                super::validate::head(child),
                                "this rule is listed twice",
                                "listed again",
                                "remove one",
                            );
                        } else {
                            unfamilied.extend((!family_known).then_some(cfg.rules.len()));
                            cfg.rules.push(rule);
                        }
                    }
                }
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
                    if !self.notify_setting(child, &mut cfg.notify, &mut hook_at, &place)
                        && !self.announce_setting(child, &mut announce)
                    {
                        self.unknown(child, INSTANCE_KEYS, &place);
                    }
                }
            }
        }
        if let Some(v) = cfg.vmac.as_mut().filter(|v| v.name.is_empty()) {
            v.name = format!("vrrp.{}", cfg.vrid);
        }
        self.labels_match(&cfg, &labels);
        let v6 = cfg.is_ipv6();
        for i in unfamilied {
            cfg.rules[i].v6 = v6;
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
            announce,
        })
    }

    /// A VIP's label must start with its interface's name, as `ip addr add` requires (the
    /// kernel shows it as that interface's alias, `eth0:vip`).
    fn labels_match(&mut self, cfg: &InstanceConfig, labels: &[(usize, SourceSpan)]) {
        for &(i, span) in labels {
            let Some(vip) = cfg.vips.get(i) else { continue };
            let dev = vip.dev.as_deref().unwrap_or(&cfg.interface);
            let Some(label) = &vip.opts.label else {
                continue;
            };
            if dev.is_empty() || label.starts_with(dev) {
                continue;
            }
            self.report(
                span,
                format!("label `{label}` of vip {} does not start with its interface's name `{dev}`", vip.addr),
                "not the interface's",
                format!("start it with the interface's name, like label=\"{dev}:vip\" (`ip addr` refuses other labels too)"),
            );
        }
    }

    /// `master-down-adverts N`: 3 (the RFCs) to 20.
    pub(super) fn master_down_adverts(&mut self, node: &KdlNode) -> Option<u8> {
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
        if let (Some(v), Some(span)) = (&cfg.vmac, seen.get("use-vmac")) {
            if cfg.is_ipv6() {
                self.report(
                    *span,
                    format!("instance `{name}` has IPv6 VIPs: `use-vmac` is IPv4 only for now"),
                    "IPv6 instance",
                    "remove `use-vmac` (IPv6 clients learn the master's MAC from its neighbour \
                     advertisements)",
                );
            }
            if v.name == cfg.interface {
                self.report(
                    *span,
                    format!("instance `{name}`'s `use-vmac` names its own interface"),
                    "the base interface",
                    "the macvlan needs a name of its own, like `use-vmac \"vrrp.51\"`",
                );
            }
        }
        match (at.vip_nodes, at.no_vip) {
            (0, None) => self.report(
                head(node),
                format!("instance `{name}` has no `vip`"),
                "no `vip`",
                format!(
                    "an instance exists to move addresses: add at least one, like `{}`; or write `no-vip` if its notify commands move them (a cloud's API)",
                    example("vip")
                ),
            ),
            (n, Some(span)) if n > 0 => {
                let line = self.line_of(at.vips.first().copied().unwrap_or(span));
                self.report(
                    span,
                    format!("instance `{name}` has `no-vip` and VIPs"),
                    "conflicts",
                    format!("remove `no-vip`, or the `vip`s (the first is on line {line})"),
                );
            }
            _ => {}
        }
        if let (Some(span), Some(group)) = (at.group, cfg.multicast_group) {
            if group.is_ipv6() != cfg.is_ipv6() {
                let ours = if cfg.is_ipv6() { "IPv6" } else { "IPv4" };
                self.report(
                    span,
                    format!(
                        "multicast group {group} is {} but this instance speaks {ours}",
                        family(&group)
                    ),
                    "other address family",
                    "use a group of the instance's family",
                );
            }
            if !cfg.unicast_peers.is_empty() {
                self.report(
                    span,
                    "`multicast-group` with `unicast-peer`",
                    "no multicast adverts",
                    "adverts go to the unicast peers: remove one of the two",
                );
            }
        }
        if let (Some(span), true) = (at.unicast_ttl, cfg.unicast_peers.is_empty()) {
            self.report(
                span,
                "`unicast-ttl` without `unicast-peer`",
                "no unicast adverts",
                "adverts to the multicast group always go with TTL 255 (the RFCs); add the peers, or remove it",
            );
        }
        if at.vip_nodes == 0 {
            // Without VIPs the unicast addresses say the family: one for all of them.
            let ips: Vec<(&SourceSpan, &IpAddr)> = at
                .src
                .iter()
                .zip(cfg.unicast_src.iter())
                .chain(at.peers.iter().zip(cfg.unicast_peers.iter()))
                .collect();
            if let Some(((_, first), rest)) = ips.split_first() {
                for (span, ip) in rest {
                    if ip.is_ipv6() != first.is_ipv6() {
                        self.report(
                            **span,
                            format!("{ip} is {} but {first} is {}", family(ip), family(first)),
                            "other address family",
                            "an instance speaks one address family: use addresses of one",
                        );
                    }
                }
            }
            if cfg.is_ipv6() && v2_of(cfg) {
                self.report(
                    head(node),
                    format!("instance `{name}` speaks IPv6 (its unicast addresses), which VRRP version 2 cannot carry"),
                    "IPv6 with version 2",
                    "set `version 3`",
                );
            }
        }
        let advertised: Vec<(&Vip, &SourceSpan)> = cfg
            .vips
            .iter()
            .zip(&at.vips)
            .filter(|(v, _)| v.advertise)
            .collect();
        if advertised.is_empty() && !cfg.vips.is_empty() {
            self.report(
                head(node),
                format!("instance `{name}` has no advertised `vip`: every one is `advertise=#false`"),
                "no advertised `vip`",
                "advertise at least one (leave `advertise=#false` off it): its address family is the instance's",
            );
        }
        if let Some((_, span)) = advertised.get(MAX_ADVERTISED_VIPS) {
            self.report(
                **span,
                format!(
                    "instance `{name}` advertises {} VIPs, but an advert carries at most {MAX_ADVERTISED_VIPS}; this is the {}th",
                    advertised.len(),
                    MAX_ADVERTISED_VIPS + 1
                ),
                "one too many for an advert",
                "mark the rest `advertise=#false` (held and moved with the instance, not carried in its adverts, as keepalived's virtual_ipaddress_excluded), or split them over instances",
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

        // One instance announces one address family; the first advertised VIP decides which.
        // VIPs that are not advertised may be of either.
        if let Some(((first_vip, first_span), rest)) = advertised.split_first() {
            let v6 = first_vip.addr.is_ipv6();
            let first = family(&first_vip.addr);
            for (vip, span) in rest {
                if vip.addr.is_ipv6() != v6 {
                    self.report(
                        **span,
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
                    **first_span,
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

    /// `min-ttl=` / `max-ttl=` of a `unicast-peer` node: the TTL range its peers' adverts may
    /// arrive with (None: 255 only).
    fn peer_ttl(&mut self, node: &KdlNode) -> Option<std::ops::RangeInclusive<u8>> {
        let bound = |me: &mut Self, name: &str| {
            prop(node, name)
                .and_then(|e| me.integer(e, "unicast-peer", 1, 255))
                .map(|n| n as u8)
        };
        let (min, max) = (bound(self, "min-ttl"), bound(self, "max-ttl"));
        if min.is_none() && max.is_none() {
            return None;
        }
        let range = min.unwrap_or(1)..=max.unwrap_or(255);
        if range.is_empty() {
            if let Some(e) = prop(node, "max-ttl") {
                self.report(
                    e.span(),
                    format!(
                        "`max-ttl={}` is below `min-ttl={}`",
                        range.end(),
                        range.start()
                    ),
                    "empty range",
                    "the TTL range is min-ttl..=max-ttl: swap them",
                );
            }
            return None;
        }
        Some(range)
    }

    fn peers_with_ttl(
        &mut self,
        node: &KdlNode,
        peers: &mut Vec<IpAddr>,
        spans: &mut Vec<SourceSpan>,
        ttl: &mut Vec<(IpAddr, std::ops::RangeInclusive<u8>)>,
    ) {
        let args = self.list_with(
            node,
            "unicast-peer",
            "address",
            "no address",
            &["min-ttl", "max-ttl"],
        );
        let range = self.peer_ttl(node);
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
            if let Some(r) = &range {
                ttl.push((ip, r.clone()));
            }
        }
    }

    /// `use-vmac`, `use-vmac "name"`, with `xmit-base=#true`; the name defaults to
    /// `vrrp.VRID` once the VRID is known (see [`default_vmac_name`]).
    fn vmac(&mut self, node: &KdlNode) -> Option<Vmac> {
        self.leaf(node, &["xmit-base"]);
        let xmit_base = match prop(node, "xmit-base") {
            Some(e) => self.boolean(e, "use-vmac")?,
            None => false,
        };
        let name = match positional(node).as_slice() {
            [] => String::new(),
            [e] => self.interface_name(e, "use-vmac")?,
            [_, extra, ..] => {
                self.report(
                    extra.span(),
                    "`use-vmac` takes at most one name",
                    "unexpected value",
                    "write `use-vmac` or `use-vmac \"vrrp.51\"`",
                );
                return None;
            }
        };
        Some(Vmac { name, xmit_base })
    }

    pub(super) fn track(&mut self, node: &KdlNode) -> Option<(Track, SourceSpan)> {
        let entry = self.one_arg(node, &["weight"])?;
        let weight = prop(node, "weight")
            .and_then(|e| self.integer(e, "track", -253, 253))
            .map(|n| n as i32);
        let check = self.name_string(entry, "track")?;
        Some((Track { check, weight }, entry.span()))
    }

    pub(super) fn sync_group(&mut self, node: &KdlNode) -> Option<GroupDraft> {
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
}
