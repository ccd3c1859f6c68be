//! What an instance puts on the host while master: `vip`, `route` (and their options, the
//! `ip addr add` / `ip route add` ones keepalived takes), with multipath `nexthop`s, and
//! `rule` (policy routing, keepalived's `virtual_rules`).

use std::net::IpAddr;

use kdl::{KdlEntry, KdlNode, KdlValue};
use miette::SourceSpan;

use super::schema::example;
use super::validate::{prop, Validator};
use super::value::family;
use crate::model::{NextHop, Route, RouteKind, Rule, RuleAction, Vip, VipOptions, SCOPES};

/// The address with the host bits cleared.
pub(super) fn network_of(ip: IpAddr, prefix_len: u8) -> IpAddr {
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

/// A VIP as read, with where its address and label were written.
pub(super) struct VipAt {
    pub(super) vip: Vip,
    pub(super) span: SourceSpan,
    pub(super) label_at: Option<SourceSpan>,
}

const VIP_PROPS: &[&str] = &[
    "dev",
    "advertise",
    "label",
    "scope",
    "brd",
    "nodad",
    "preferred-lft",
];

const RULE_PROPS: &[&str] = &[
    "from", "to", "iif", "oif", "fwmark", "fwmask", "priority", "table", "type",
];

const ROUTE_PROPS: &[&str] = &[
    "via", "dev", "metric", "table", "src", "scope", "type", "onlink",
];

impl Validator<'_> {
    pub(super) fn vip(&mut self, node: &KdlNode) -> Option<VipAt> {
        let entry = self.one_arg(node, VIP_PROPS)?;
        let dev = prop(node, "dev").and_then(|e| self.interface_name(e, "vip"));
        let advertise = match prop(node, "advertise") {
            Some(e) => self.boolean(e, "vip")?,
            None => true,
        };
        let (addr, prefix_len) = self.prefix(entry, "vip")?;
        if !self.usable(addr, entry, "vip") {
            return None;
        }
        let (opts, label_at) = self.vip_options(node, addr, prefix_len)?;
        Some(VipAt {
            vip: Vip {
                addr,
                prefix_len,
                dev,
                advertise,
                opts,
            },
            span: entry.span(),
            label_at,
        })
    }

    /// `label=`, `scope=`, `brd=`, `nodad=`, `preferred-lft=`: each checked against the
    /// address's family (the kernel keeps labels, scopes and broadcasts for IPv4 only: an IPv6
    /// address's scope follows from the address; it runs DAD for IPv6 only).
    fn vip_options(
        &mut self,
        node: &KdlNode,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Option<(VipOptions, Option<SourceSpan>)> {
        let mut opts = VipOptions::default();
        let mut ok = true;
        let v4_only = |v: &mut Self, e: &KdlEntry, what: &str| {
            if addr.is_ipv6() {
                v.report(
                    e.span(),
                    format!("`{what}=` of `vip` is for IPv4 addresses; {addr} is IPv6"),
                    "IPv4 only",
                    format!("the kernel takes no {what} for IPv6 addresses: remove it"),
                );
                return false;
            }
            true
        };
        let mut label_at = None;
        if let Some(e) = prop(node, "label") {
            match self.label(e) {
                Some(l) if v4_only(self, e, "label") => {
                    opts.label = Some(l);
                    label_at = Some(e.span());
                }
                _ => ok = false,
            }
        }
        if let Some(e) = prop(node, "scope") {
            match self.scope(e, "vip") {
                Some(s) if v4_only(self, e, "scope") => opts.scope = Some(s),
                _ => ok = false,
            }
        }
        if let Some(e) = prop(node, "brd") {
            match self.ip(e, "vip") {
                Some(IpAddr::V4(b)) if v4_only(self, e, "brd") => {
                    let IpAddr::V4(a) = network_of(addr, prefix_len) else {
                        unreachable!("an IPv4 address's network is IPv4")
                    };
                    let mask = u32::MAX
                        .checked_shl(32 - u32::from(prefix_len))
                        .unwrap_or(0);
                    if u32::from(b) & mask != u32::from(a) {
                        self.report(
                            e.span(),
                            format!("broadcast {b} is not in {addr}/{prefix_len}'s subnet"),
                            "outside the subnet",
                            "leave `brd=` out for the subnet's broadcast (host bits all set)",
                        );
                        ok = false;
                    } else {
                        opts.broadcast = Some(b);
                    }
                }
                Some(IpAddr::V6(_)) if addr.is_ipv4() => {
                    self.report(
                        e.span(),
                        "`brd=` of `vip` must be an IPv4 address",
                        "IPv6",
                        "give the IPv4 broadcast address, like brd=\"192.0.2.255\"",
                    );
                    ok = false;
                }
                _ => ok = false,
            }
        }
        if let Some(e) = prop(node, "nodad") {
            match self.boolean(e, "vip") {
                Some(_) if addr.is_ipv4() => {
                    self.report(
                        e.span(),
                        format!("`nodad=` of `vip` is for IPv6 addresses; {addr} is IPv4"),
                        "IPv6 only",
                        "IPv4 has no duplicate address detection: remove it",
                    );
                    ok = false;
                }
                Some(nodad) => opts.dad = !nodad,
                None => ok = false,
            }
        }
        if let Some(e) = prop(node, "preferred-lft") {
            match self.lifetime(e) {
                Some(l) => opts.preferred_lft = l,
                None => ok = false,
            }
        }
        ok.then_some((opts, label_at))
    }

    /// An address label: as long as an interface name may be (the kernel's IFNAMSIZ).
    fn label(&mut self, e: &KdlEntry) -> Option<String> {
        let l = self.string(e, "vip")?;
        if l.is_empty() || l.len() > 15 || l.contains(|c: char| c.is_whitespace() || c == '/') {
            self.report(
                e.span(),
                format!("`label=` of `vip` must be 1 to 15 characters without spaces, not `{l}`"),
                "bad label",
                "write the interface's name and a suffix, like label=\"eth0:vip\"",
            );
            return None;
        }
        Some(l)
    }

    /// A scope by name (`global`, `site`, `link`, `host`, `nowhere`) or number (0 to 255).
    pub(super) fn scope(&mut self, e: &KdlEntry, key: &str) -> Option<u8> {
        match e.value() {
            KdlValue::Integer(_) => self.integer(e, key, 0, 255).map(|n| n as u8),
            _ => {
                let name = self.string(e, key)?;
                let found = SCOPES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s);
                if found.is_none() {
                    self.report(
                        e.span(),
                        format!("`scope=` of `{key}` is not a scope: `{name}`"),
                        "unknown scope",
                        "use \"global\", \"site\", \"link\", \"host\", \"nowhere\" or a number 0 to 255",
                    );
                }
                found
            }
        }
    }

    /// `preferred-lft`: seconds, or "forever" (None).
    fn lifetime(&mut self, e: &KdlEntry) -> Option<Option<u32>> {
        match e.value() {
            KdlValue::String(s) if s == "forever" => Some(None),
            KdlValue::Integer(_) => self
                .integer(e, "vip", 0, i128::from(u32::MAX - 1))
                .map(|n| Some(n as u32)),
            _ => {
                self.report(
                    e.span(),
                    "`preferred-lft=` of `vip` must be a number of seconds or \"forever\"",
                    "bad lifetime",
                    "for example preferred-lft=0 (never chosen as a source address) or preferred-lft=\"forever\"",
                );
                None
            }
        }
    }

    pub(super) fn route(&mut self, node: &KdlNode) -> Option<Route> {
        // The `{ nexthop ... }` block is read below; the rest as any one-line setting.
        let mut bare = node.clone();
        *bare.children_mut() = None;
        let entry = self.one_arg(&bare, ROUTE_PROPS)?;
        let dev = prop(node, "dev").and_then(|e| self.interface_name(e, "route"));
        let metric = prop(node, "metric")
            .and_then(|e| self.integer(e, "route", 0, u32::MAX.into()))
            .map(|n| n as u32);
        let table = prop(node, "table")
            .and_then(|e| self.integer(e, "route", 1, u32::MAX.into()))
            .map(|n| n as u32);
        let scope = prop(node, "scope").and_then(|e| self.scope(e, "route"));
        let onlink = match prop(node, "onlink") {
            Some(e) => self.boolean(e, "route")?,
            None => false,
        };
        let kind = match prop(node, "type") {
            Some(e) => self.route_kind(e)?,
            None => RouteKind::Unicast,
        };
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
        let via = prop(node, "via").and_then(|e| self.same_family(e, dest, "gateway"));
        let src = prop(node, "src").and_then(|e| self.same_family(e, dest, "source"));
        let nexthops = match node.children() {
            Some(block) => self.nexthops(block, dest),
            None => Vec::new(),
        };
        if let (Some(e), false) = (prop(node, "via"), nexthops.is_empty()) {
            self.report(
                e.span(),
                "a route with `nexthop`s takes no `via=` of its own",
                "conflicts with the nexthops",
                "give each path its gateway: `nexthop via=\"...\"`",
            );
        }
        if kind != RouteKind::Unicast {
            let name = kind.name();
            for key in ["via", "dev", "onlink"] {
                if let Some(e) = prop(node, key) {
                    self.report(
                        e.span(),
                        format!("a {name} route takes no `{key}=`"),
                        "not for this type",
                        format!("a {name} route goes nowhere: remove `{key}=`"),
                    );
                }
            }
            if let Some(block) = node.children() {
                self.report(
                    block.span(),
                    format!("a {name} route takes no `nexthop`s"),
                    "not for this type",
                    format!("a {name} route goes nowhere: remove the block"),
                );
            }
        }
        Some(Route {
            dest,
            prefix_len,
            via,
            dev,
            metric,
            table,
            src,
            scope,
            kind,
            onlink,
            nexthops,
        })
    }

    /// An address of `dest`'s family (`via=`, `src=`, a nexthop's `via=`).
    fn same_family(&mut self, e: &KdlEntry, dest: IpAddr, what: &str) -> Option<IpAddr> {
        let key = if what == "nexthop" {
            "nexthop"
        } else {
            "route"
        };
        let ip = self.unicast_ip(e, key)?;
        if ip.is_ipv6() != dest.is_ipv6() {
            self.report(
                e.span(),
                format!(
                    "{what} {ip} is {} but the destination is {}",
                    family(&ip),
                    family(&dest)
                ),
                "other address family",
                format!("a route's {what} must be of the destination's address family"),
            );
            return None;
        }
        Some(ip)
    }

    fn route_kind(&mut self, e: &KdlEntry) -> Option<RouteKind> {
        let name = self.string(e, "route")?;
        let found = RouteKind::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k);
        if found.is_none() {
            self.report(
                e.span(),
                format!("`type=` of `route` is not a route type: `{name}`"),
                "unknown type",
                "use \"unicast\" (the default), \"blackhole\", \"unreachable\", \"prohibit\" or \"throw\"",
            );
        }
        found
    }

    /// The `{ nexthop via=... dev=... weight=N }` block of a multipath route.
    fn nexthops(&mut self, block: &kdl::KdlDocument, dest: IpAddr) -> Vec<NextHop> {
        let mut hops = Vec::new();
        for n in block.nodes() {
            if n.name().value() != "nexthop" {
                self.report(
                    n.name().span(),
                    format!("unknown setting `{}` in a route", n.name().value()),
                    "unknown setting",
                    format!(
                        "a route's block holds its paths, like `{}`",
                        example("nexthop")
                    ),
                );
                continue;
            }
            self.valueless(
                n,
                &["via", "dev", "weight"],
                "`nexthop` takes no value, only `via=`, `dev=` and `weight=`",
                &format!("for example `{}`", example("nexthop")),
            );
            let via = prop(n, "via").and_then(|e| self.same_family(e, dest, "nexthop"));
            let dev = prop(n, "dev").and_then(|e| self.interface_name(e, "nexthop"));
            let weight = match prop(n, "weight") {
                Some(e) => match self.integer(e, "nexthop", 1, 256) {
                    Some(w) => w as u16,
                    None => continue,
                },
                None => 1,
            };
            hops.push(NextHop { via, dev, weight });
        }
        if hops.is_empty() && block.nodes().is_empty() {
            self.report(
                block.span(),
                "an empty block on a route",
                "no nexthop",
                format!(
                    "list its paths, like `{}`, or remove the block",
                    example("nexthop")
                ),
            );
        }
        hops
    }

    /// `rule from= to= iif= oif= fwmark= fwmask= priority= table=|type=`; also whether its
    /// family is known from its addresses.
    pub(super) fn rule(&mut self, node: &KdlNode) -> Option<(Rule, bool)> {
        let mut ok = self.valueless(
            node,
            RULE_PROPS,
            "`rule` takes no value, only properties",
            &format!("for example `{}`", example("rule")),
        );
        let mut prefix = |v: &mut Self, key: &str| -> Option<(IpAddr, u8)> {
            let e = prop(node, key)?;
            let p = v.prefix(e, "rule");
            ok &= p.is_some();
            p
        };
        let from = prefix(self, "from");
        let to = prefix(self, "to");
        if let (Some((a, _)), Some((b, _)), Some(e)) = (from, to, prop(node, "to")) {
            if a.is_ipv6() != b.is_ipv6() {
                self.report(
                    e.span(),
                    format!("`to=` is {} but `from=` is {}", family(&b), family(&a)),
                    "other address family",
                    "a rule matches one address family: split it in two",
                );
                ok = false;
            }
        }
        let iif = prop(node, "iif").and_then(|e| self.interface_name(e, "rule"));
        let oif = prop(node, "oif").and_then(|e| self.interface_name(e, "rule"));
        let mut int = |v: &mut Self, key: &str, lo: i128| -> Option<u32> {
            let e = prop(node, key)?;
            let n = v.integer(e, "rule", lo, u32::MAX.into()).map(|n| n as u32);
            ok &= n.is_some();
            n
        };
        let fwmark = int(self, "fwmark", 0);
        let fwmask = int(self, "fwmask", 0);
        let priority = int(self, "priority", 0);
        let table = int(self, "table", 1);
        if let (Some(e), None) = (prop(node, "fwmask"), prop(node, "fwmark")) {
            self.report(
                e.span(),
                "`fwmask=` without `fwmark=`",
                "nothing to mask",
                "give the mark too, like fwmark=0x10 fwmask=0xff",
            );
            ok = false;
        }
        let kind = match prop(node, "type") {
            Some(e) => match self.string(e, "rule").as_deref() {
                Some("blackhole") => Some(RuleAction::Blackhole),
                Some("unreachable") => Some(RuleAction::Unreachable),
                Some("prohibit") => Some(RuleAction::Prohibit),
                Some(other) => {
                    self.report(
                        e.span(),
                        format!("`type=` of `rule` is not a rule type: `{other}`"),
                        "unknown type",
                        "use \"blackhole\", \"unreachable\" or \"prohibit\", or give `table=` instead",
                    );
                    return None;
                }
                None => return None,
            },
            None => None,
        };
        let action = match (table, kind, prop(node, "type")) {
            (Some(t), None, _) => RuleAction::Table(t),
            (None, Some(k), _) => k,
            (Some(_), Some(_), Some(e)) => {
                self.report(
                    e.span(),
                    "a rule with `type=` looks up no table",
                    "conflicts with `table=`",
                    "keep one: `table=` to look the route up there, or `type=` to drop",
                );
                return None;
            }
            _ => {
                if ok {
                    self.report(
                        super::validate::head(node),
                        "`rule` needs `table=` (or `type=`): what it does with what it matches",
                        "no `table=`",
                        format!("for example `{}`", example("rule")),
                    );
                }
                return None;
            }
        };
        if !ok {
            return None;
        }
        let family = from.or(to).map(|(a, _)| a.is_ipv6());
        Some((
            Rule {
                v6: family.unwrap_or(false),
                from,
                to,
                iif,
                oif,
                fwmark,
                fwmask,
                priority,
                action,
            },
            family.is_some(),
        ))
    }
}
