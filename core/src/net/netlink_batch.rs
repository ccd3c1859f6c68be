//! Address and route changes sent to the kernel as one netlink batch: every request in a
//! single `sendmsg`, applied by the kernel before the call returns. A takeover's VIPs are up
//! within microseconds of the decision, with no ack round trip per address.
//!
//! Requests carry no `NLM_F_ACK`: the kernel answers only failures, which are read back at
//! once and matched to their request by sequence number.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressScope, CacheInfo};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use rtnetlink::AddressMessageBuilder;

use super::netlink::{route_message, rule_message, AddrOptions, Route, Rule};

/// One change to the host's addresses or routes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NetlinkChange {
    AddAddress {
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
        /// Label, scope, broadcast... (a guard of an older daemon sends none: the default).
        #[serde(default)]
        opts: AddrOptions,
    },
    /// Carries the options of the address it removes (so that it is the inverse of its
    /// [`NetlinkChange::AddAddress`]); the kernel matches a removal by address alone.
    DelAddress {
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
        #[serde(default)]
        opts: AddrOptions,
    },
    AddRoute {
        index: u32,
        route: Route,
    },
    DelRoute {
        index: u32,
        route: Route,
    },
    AddRule {
        rule: Rule,
    },
    DelRule {
        rule: Rule,
    },
}

impl NetlinkChange {
    /// Whether it puts something on the host (an address or route added).
    pub fn is_add(&self) -> bool {
        matches!(
            self,
            NetlinkChange::AddAddress { .. }
                | NetlinkChange::AddRoute { .. }
                | NetlinkChange::AddRule { .. }
        )
    }

    /// When it goes in a removal of everything: rules first (they may point at a table of
    /// the routes), then routes (a route may need the address), then addresses.
    pub fn removal_rank(&self) -> u8 {
        match self {
            NetlinkChange::AddRule { .. } | NetlinkChange::DelRule { .. } => 0,
            NetlinkChange::AddRoute { .. } | NetlinkChange::DelRoute { .. } => 1,
            NetlinkChange::AddAddress { .. } | NetlinkChange::DelAddress { .. } => 2,
        }
    }

    pub fn is_route(&self) -> bool {
        matches!(
            self,
            NetlinkChange::AddRoute { .. } | NetlinkChange::DelRoute { .. }
        )
    }

    /// The change that undoes this one.
    pub fn inverse(&self) -> NetlinkChange {
        match self.clone() {
            NetlinkChange::AddAddress {
                index,
                addr,
                prefix_len,
                opts,
            } => NetlinkChange::DelAddress {
                index,
                addr,
                prefix_len,
                opts,
            },
            NetlinkChange::DelAddress {
                index,
                addr,
                prefix_len,
                opts,
            } => NetlinkChange::AddAddress {
                index,
                addr,
                prefix_len,
                opts,
            },
            NetlinkChange::AddRoute { index, route } => NetlinkChange::DelRoute { index, route },
            NetlinkChange::DelRoute { index, route } => NetlinkChange::AddRoute { index, route },
            NetlinkChange::AddRule { rule } => NetlinkChange::DelRule { rule },
            NetlinkChange::DelRule { rule } => NetlinkChange::AddRule { rule },
        }
    }

    /// Whether the kernel's `errno` only says the change was already in place.
    fn already_done(&self, errno: i32) -> bool {
        match self {
            NetlinkChange::AddAddress { .. }
            | NetlinkChange::AddRoute { .. }
            | NetlinkChange::AddRule { .. } => errno == libc::EEXIST,
            // ENODEV: the interface was deleted, and what it held with it.
            NetlinkChange::DelAddress { .. }
            | NetlinkChange::DelRoute { .. }
            | NetlinkChange::DelRule { .. } => {
                [libc::EADDRNOTAVAIL, libc::ESRCH, libc::ENOENT, libc::ENODEV].contains(&errno)
            }
        }
    }

    fn message(&self) -> NetlinkMessage<RouteNetlinkMessage> {
        let (payload, flags) = match self {
            NetlinkChange::AddAddress {
                index,
                addr,
                prefix_len,
                opts,
            } => (
                RouteNetlinkMessage::NewAddress(address_message(*index, *addr, *prefix_len, opts)),
                NLM_F_CREATE | NLM_F_EXCL,
            ),
            NetlinkChange::DelAddress {
                index,
                addr,
                prefix_len,
                ..
            } => (
                // By address alone: a label given here must match the kernel's.
                RouteNetlinkMessage::DelAddress(address_message(
                    *index,
                    *addr,
                    *prefix_len,
                    &AddrOptions::default(),
                )),
                0,
            ),
            NetlinkChange::AddRoute { index, route } => (
                RouteNetlinkMessage::NewRoute(route_message(route, *index)),
                NLM_F_CREATE | NLM_F_EXCL,
            ),
            NetlinkChange::DelRoute { index, route } => (
                RouteNetlinkMessage::DelRoute(route_message(route, *index)),
                0,
            ),
            NetlinkChange::AddRule { rule } => (
                RouteNetlinkMessage::NewRule(rule_message(rule)),
                NLM_F_CREATE | NLM_F_EXCL,
            ),
            NetlinkChange::DelRule { rule } => {
                (RouteNetlinkMessage::DelRule(rule_message(rule)), 0)
            }
        };
        let mut msg = NetlinkMessage::from(payload);
        msg.header.flags = NLM_F_REQUEST | flags;
        msg
    }
}

impl std::fmt::Display for NetlinkChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetlinkChange::AddAddress {
                addr, prefix_len, ..
            } => write!(f, "adding {addr}/{prefix_len}"),
            NetlinkChange::DelAddress {
                addr, prefix_len, ..
            } => write!(f, "removing {addr}/{prefix_len}"),
            NetlinkChange::AddRoute { route, .. } => {
                write!(f, "adding route {}/{}", route.dest, route.prefix_len)
            }
            NetlinkChange::DelRoute { route, .. } => {
                write!(f, "removing route {}/{}", route.dest, route.prefix_len)
            }
            NetlinkChange::AddRule { rule } => write!(f, "adding rule {}", RuleText(rule)),
            NetlinkChange::DelRule { rule } => write!(f, "removing rule {}", RuleText(rule)),
        }
    }
}

/// A rule as `ip rule` would write it, for the log.
struct RuleText<'a>(&'a Rule);

impl std::fmt::Display for RuleText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.0;
        match r.from {
            Some((a, l)) => write!(f, "from {a}/{l}")?,
            None => f.write_str("from all")?,
        }
        if let Some((a, l)) = r.to {
            write!(f, " to {a}/{l}")?;
        }
        if let Some(i) = &r.iif {
            write!(f, " iif {i}")?;
        }
        if let Some(o) = &r.oif {
            write!(f, " oif {o}")?;
        }
        if let Some(m) = r.fwmark {
            write!(f, " fwmark {m:#x}")?;
        }
        if let Some(t) = r.table {
            write!(f, " table {t}")?;
        }
        if let Some(p) = r.priority {
            write!(f, " pref {p}")?;
        }
        Ok(())
    }
}

fn address_message(
    index: u32,
    addr: IpAddr,
    prefix_len: u8,
    opts: &AddrOptions,
) -> netlink_packet_route::address::AddressMessage {
    let mut m = match addr {
        IpAddr::V4(a) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(a, prefix_len)
            .build(),
        IpAddr::V6(a) => AddressMessageBuilder::<Ipv6Addr>::new()
            .index(index)
            .address(a, prefix_len)
            .build(),
    };
    // A VIP must answer at once: duplicate address detection would hold it for a second.
    if addr.is_ipv6() && !opts.dad {
        m.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    if let Some(b) = opts.broadcast {
        m.attributes
            .retain(|a| !matches!(a, AddressAttribute::Broadcast(_)));
        m.attributes.push(AddressAttribute::Broadcast(b));
    }
    if let Some(l) = &opts.label {
        m.attributes.push(AddressAttribute::Label(l.clone()));
    }
    if let Some(s) = opts.scope {
        m.header.scope = AddressScope::from(s);
    }
    if let Some(p) = opts.preferred_lft {
        let mut info = CacheInfo::default();
        info.ifa_preferred = p;
        info.ifa_valid = u32::MAX; // forever
        m.attributes.push(AddressAttribute::CacheInfo(info));
    }
    m
}

/// Largest batch in one `sendmsg` (the socket's send buffer is larger).
const CHUNK: usize = 64 * 1024;

/// A routing netlink socket that applies batches of [`NetlinkChange`]s.
pub struct BatchSocket {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl BatchSocket {
    pub fn open() -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, 0))?;
        sock.connect(&SocketAddr::new(0, 0))?;
        // Replies are drained right after each send; never wait for one.
        sock.set_non_blocking(true)?;
        Ok(BatchSocket {
            sock,
            seq: 0,
            buf: Vec::new(),
        })
    }

    /// Applies `changes` in order (the kernel has applied them when this returns) and returns
    /// those that failed, by index, with the kernel's reason. Already present (add) or already
    /// absent (remove) is success.
    pub fn apply(&mut self, changes: &[NetlinkChange]) -> Vec<(usize, io::Error)> {
        let mut failed = Vec::new();
        let mut chunk_start = 0;
        self.buf.clear();
        for (i, change) in changes.iter().enumerate() {
            let mut msg = change.message();
            msg.header.sequence_number = self.seq.wrapping_add(1 + i as u32);
            msg.finalize();
            let len = msg.buffer_len();
            if self.buf.len() + len > CHUNK && !self.buf.is_empty() {
                self.send_chunk(chunk_start..i, changes, &mut failed);
                chunk_start = i;
            }
            let start = self.buf.len();
            self.buf.resize(start + len, 0);
            msg.serialize(&mut self.buf[start..]);
        }
        if !self.buf.is_empty() {
            self.send_chunk(chunk_start..changes.len(), changes, &mut failed);
        }
        self.seq = self.seq.wrapping_add(changes.len() as u32);
        failed
    }

    /// Sends the buffer, which holds `changes[chunk]`, and collects their failures.
    fn send_chunk(
        &mut self,
        chunk: std::ops::Range<usize>,
        changes: &[NetlinkChange],
        failed: &mut Vec<(usize, io::Error)>,
    ) {
        let sent = self.sock.send(&self.buf, 0);
        self.buf.clear();
        if let Err(e) = sent {
            // Nothing of this chunk was applied.
            failed.extend(chunk.map(|i| (i, io::Error::new(e.kind(), e.to_string()))));
            return;
        }
        self.drain_errors(changes, failed);
    }

    /// Reads the kernel's answers to what was just sent: only failures come back.
    fn drain_errors(&mut self, changes: &[NetlinkChange], failed: &mut Vec<(usize, io::Error)>) {
        let first_seq = self.seq.wrapping_add(1);
        let mut rx = vec![0u8; 16 * 1024];
        loop {
            let n = match self.sock.recv(&mut &mut rx[..], 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("reading netlink answers: {e}");
                    return;
                }
            };
            for msg in super::netlink_messages::<RouteNetlinkMessage>(&rx[..n]) {
                let NetlinkPayload::Error(err) = &msg.payload else {
                    continue;
                };
                let Some(code) = err.code else { continue };
                let errno = -code.get();
                let i = msg.header.sequence_number.wrapping_sub(first_seq) as usize;
                if changes.get(i).is_some_and(|c| !c.already_done(errno)) {
                    failed.push((i, io::Error::from_raw_os_error(errno)));
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(unsafe_code)] // unshare(2): each test gets a network namespace of its own.
mod tests {
    use super::*;

    #[test]
    fn requests_ask_for_no_ack_and_create_exclusively() {
        let add = NetlinkChange::AddAddress {
            index: 3,
            addr: "192.0.2.10".parse().unwrap(),
            prefix_len: 24,
            opts: AddrOptions::default(),
        }
        .message();
        assert_eq!(add.header.flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
        let del = NetlinkChange::DelRoute {
            index: 3,
            route: Route {
                dest: "198.51.100.0".parse().unwrap(),
                prefix_len: 24,
                via: None,
                dev: None,
                metric: None,
                table: None,
                src: None,
                scope: None,
                kind: crate::net::netlink::ROUTE_UNICAST,
                onlink: false,
                nexthops: Vec::new(),
            },
        }
        .message();
        assert_eq!(del.header.flags, NLM_F_REQUEST);
    }

    #[test]
    fn v6_addresses_skip_duplicate_address_detection() {
        let msg = address_message(
            2,
            "2001:db8::10".parse().unwrap(),
            64,
            &AddrOptions::default(),
        );
        assert!(msg
            .attributes
            .contains(&AddressAttribute::Flags(AddressFlags::Nodad)));
    }

    #[test]
    fn address_options_go_into_the_request() {
        let opts = AddrOptions {
            label: Some("eth0:vip".into()),
            scope: Some(253),
            broadcast: Some("192.0.2.127".parse().unwrap()),
            dad: false,
            preferred_lft: Some(0),
        };
        let m = address_message(2, "192.0.2.10".parse().unwrap(), 24, &opts);
        assert_eq!(m.header.scope, AddressScope::Link);
        let brds: Vec<_> = m
            .attributes
            .iter()
            .filter(|a| matches!(a, AddressAttribute::Broadcast(_)))
            .collect();
        // The builder's computed broadcast is replaced, not sent beside the configured one.
        assert_eq!(
            brds,
            [&AddressAttribute::Broadcast("192.0.2.127".parse().unwrap())]
        );
        assert!(m
            .attributes
            .contains(&AddressAttribute::Label("eth0:vip".into())));
        let info = m.attributes.iter().find_map(|a| match a {
            AddressAttribute::CacheInfo(c) => Some(*c),
            _ => None,
        });
        assert_eq!(
            info.map(|c| (c.ifa_preferred, c.ifa_valid)),
            Some((0, u32::MAX))
        );
        // IPv4 has no DAD: no flag. IPv6 with `nodad=#false`: DAD runs.
        assert!(!m
            .attributes
            .iter()
            .any(|a| matches!(a, AddressAttribute::Flags(_))));
        let dad = AddrOptions {
            dad: true,
            ..AddrOptions::default()
        };
        let m = address_message(2, "2001:db8::10".parse().unwrap(), 64, &dad);
        assert!(!m
            .attributes
            .contains(&AddressAttribute::Flags(AddressFlags::Nodad)));
        // A removal is by address alone (the kernel compares a label it is given).
        let del = NetlinkChange::DelAddress {
            index: 2,
            addr: "192.0.2.10".parse().unwrap(),
            prefix_len: 24,
            opts,
        }
        .message();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(d)) = del.payload else {
            panic!("not a removal")
        };
        assert!(!d
            .attributes
            .iter()
            .any(|a| matches!(a, AddressAttribute::Label(_))));
    }

    #[test]
    fn route_types_and_paths_go_into_the_request() {
        use crate::net::netlink::NextHop;
        use netlink_packet_route::route::{RouteAttribute, RouteType};
        let base = Route {
            dest: "198.51.100.0".parse().unwrap(),
            prefix_len: 24,
            via: Some("192.0.2.254".parse().unwrap()),
            dev: None,
            metric: Some(7),
            table: Some(1000),
            src: Some("192.0.2.100".parse().unwrap()),
            scope: None,
            kind: crate::net::netlink::ROUTE_UNICAST,
            onlink: false,
            nexthops: Vec::new(),
        };
        let has = |m: &netlink_packet_route::route::RouteMessage,
                   f: fn(&RouteAttribute) -> bool| { m.attributes.iter().any(f) };
        let m = route_message(&base, 3);
        assert!(m.attributes.contains(&RouteAttribute::Oif(3)));
        assert!(m.attributes.contains(&RouteAttribute::Table(1000)));
        assert!(m.attributes.contains(&RouteAttribute::Priority(7)));
        assert!(has(&m, |a| matches!(a, RouteAttribute::PrefSource(_))));
        assert!(has(&m, |a| matches!(a, RouteAttribute::Gateway(_))));
        // A blackhole goes nowhere: the kernel refuses one with a gateway or an interface.
        let hole = Route {
            kind: 6,
            via: None,
            ..base.clone()
        };
        let m = route_message(&hole, 3);
        assert_eq!(m.header.kind, RouteType::BlackHole);
        assert!(!has(&m, |a| matches!(
            a,
            RouteAttribute::Oif(_) | RouteAttribute::Gateway(_)
        )));
        // Multipath: one RTA_MULTIPATH with each path's interface, gateway and weight - 1.
        let multi = Route {
            via: None,
            nexthops: vec![
                NextHop {
                    via: Some("192.0.2.253".parse().unwrap()),
                    index: 3,
                    weight: 2,
                },
                NextHop {
                    via: None,
                    index: 4,
                    weight: 256,
                },
            ],
            ..base
        };
        let onlink = Route {
            onlink: true,
            ..multi.clone()
        };
        let m = route_message(&onlink, 3);
        let hops = m.attributes.iter().find_map(|a| match a {
            RouteAttribute::MultiPath(h) => Some(h.clone()),
            _ => None,
        });
        assert!(hops.unwrap_or_default().iter().all(|h| h
            .flags
            .contains(netlink_packet_route::route::RouteNextHopFlags::Onlink)));
        let single = route_message(
            &Route {
                nexthops: Vec::new(),
                via: Some("203.0.113.1".parse().unwrap()),
                ..onlink
            },
            3,
        );
        assert!(single
            .header
            .flags
            .contains(netlink_packet_route::route::RouteFlags::Onlink));
        let m = route_message(&multi, 3);
        assert!(!has(&m, |a| matches!(a, RouteAttribute::Oif(_))));
        let hops = m
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::MultiPath(h) => Some(h.clone()),
                _ => None,
            })
            .expect("RTA_MULTIPATH");
        assert_eq!(
            hops.iter()
                .map(|h| (h.interface_index, h.hops, h.attributes.len()))
                .collect::<Vec<_>>(),
            [(3, 1, 1), (4, 255, 0)]
        );
    }

    #[test]
    fn rules_go_into_the_request() {
        use netlink_packet_route::rule::{RuleAction, RuleAttribute};
        let rule = Rule {
            v6: false,
            from: Some(("192.0.2.100".parse().unwrap(), 32)),
            to: Some(("198.51.100.0".parse().unwrap(), 24)),
            iif: Some("eth0".into()),
            oif: None,
            fwmark: Some(16),
            fwmask: Some(255),
            priority: Some(100),
            table: Some(1000),
            action: 1,
        };
        let add = NetlinkChange::AddRule { rule: rule.clone() };
        assert!(add.is_add() && add.already_done(libc::EEXIST));
        assert!(add.inverse().already_done(libc::ENOENT));
        assert_eq!(add.removal_rank(), 0);
        let m = rule_message(&rule);
        assert_eq!((m.header.src_len, m.header.dst_len), (32, 24));
        assert_eq!(m.header.action, RuleAction::ToTable);
        for a in [
            RuleAttribute::Source("192.0.2.100".parse().unwrap()),
            RuleAttribute::Iifname("eth0".into()),
            RuleAttribute::FwMark(16),
            RuleAttribute::FwMask(255),
            RuleAttribute::Priority(100),
            RuleAttribute::Table(1000),
        ] {
            assert!(m.attributes.contains(&a), "{a:?} missing: {m:?}");
        }
        let hole = rule_message(&Rule {
            table: None,
            action: 6,
            ..rule
        });
        assert_eq!(hole.header.action, RuleAction::Blackhole);
    }

    /// In a network namespace of its own (a thread that unshares it: needs root), with only `lo`.
    #[test]
    fn failures_come_back_by_index_and_already_done_is_not_one() {
        std::thread::spawn(|| {
            assert_eq!(
                // SAFETY: unshare(2) on this thread only; it then lives in a new, empty namespace.
                unsafe { libc::unshare(libc::CLONE_NEWNET) },
                0,
                "needs root"
            );
            let mut sock = BatchSocket::open().unwrap();
            let addr = |index, a: &str| NetlinkChange::AddAddress {
                index,
                addr: a.parse().unwrap(),
                prefix_len: 24,
                opts: AddrOptions::default(),
            };
            let changes = [
                addr(1, "192.0.2.1"),
                addr(999_999, "192.0.2.2"), // no such interface
                addr(1, "192.0.2.1"),       // already there: success
                NetlinkChange::DelAddress {
                    index: 1,
                    addr: "198.51.100.1".parse().unwrap(),
                    prefix_len: 24,
                    opts: AddrOptions::default(),
                }, // already absent: success
            ];
            let failed = sock.apply(&changes);
            assert_eq!(failed.len(), 1, "{failed:?}");
            assert_eq!(failed[0].0, 1);
            assert_eq!(failed[0].1.raw_os_error(), Some(libc::ENODEV));
            // The sequence numbers of a second batch still map to its own changes.
            let failed = sock.apply(&[addr(999_998, "192.0.2.3"), addr(1, "192.0.2.4")]);
            assert_eq!(failed.iter().map(|f| f.0).collect::<Vec<_>>(), vec![0]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn already_done_is_per_direction() {
        let add = NetlinkChange::AddAddress {
            index: 1,
            addr: "192.0.2.1".parse().unwrap(),
            prefix_len: 24,
            opts: AddrOptions::default(),
        };
        assert!(add.already_done(libc::EEXIST));
        assert!(!add.already_done(libc::EADDRNOTAVAIL));
        let del = NetlinkChange::DelAddress {
            index: 1,
            addr: "192.0.2.1".parse().unwrap(),
            prefix_len: 24,
            opts: AddrOptions::default(),
        };
        assert!(del.already_done(libc::EADDRNOTAVAIL));
        assert!(!del.already_done(libc::EEXIST));
        // Removing from an interface that was deleted: gone with it. Adding is not done.
        assert!(del.already_done(libc::ENODEV));
        assert!(!add.already_done(libc::ENODEV));
    }
}
