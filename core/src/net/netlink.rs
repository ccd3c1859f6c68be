//! Addresses, routes and link state through rtnetlink: no shelling out to `ip`.

use std::net::IpAddr;

use futures::{StreamExt, TryStreamExt};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::{Handle, MulticastGroup, RouteMessageBuilder};
use tokio::sync::mpsc;

/// A netlink request that failed, with what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetlinkError {
    /// No rtnetlink socket (not permitted, or no netlink in this kernel).
    #[error("cannot open a netlink socket: {0}")]
    Open(#[source] std::io::Error),
    /// No link of that name in this namespace.
    #[error("interface `{0}` does not exist")]
    NoSuchInterface(String),
    /// The kernel refused a request (`what` says which: add an address, dump links...).
    #[error("{what}: {source}")]
    Request {
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
}

/// A route to install on an interface (its index given beside it). Plain data of the driver's own,
/// so that net/ needs nothing of the config: the daemon converts the config's routes when it
/// wires an instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Route {
    pub dest: IpAddr,
    pub prefix_len: u8,
    pub via: Option<IpAddr>,
    /// The interface the config names, if any. Not sent: the route goes on the index it is
    /// given (resolved from this). Kept so that routes compare as the config's do (a reload
    /// that only changes `dev` re-installs the route).
    pub dev: Option<String>,
    pub metric: Option<u32>,
    pub table: Option<u32>,
    /// Preferred source (RTA_PREFSRC).
    pub src: Option<IpAddr>,
    pub scope: Option<u8>,
    /// The kernel's route type (RTN_*): 1 unicast, 6 blackhole, 7 unreachable, 8 prohibit,
    /// 9 throw. Types other than unicast go out with no gateway or interface.
    pub kind: u8,
    /// RTNH_F_ONLINK: the gateway is on the link (on every path of a multipath route).
    pub onlink: bool,
    /// Multipath (RTA_MULTIPATH); empty: the single path of `via` and the index given.
    pub nexthops: Vec<NextHop>,
}

/// A policy routing rule (`ip rule add ...`): plain data of the driver's own, as [`Route`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Rule {
    pub v6: bool,
    pub from: Option<(IpAddr, u8)>,
    pub to: Option<(IpAddr, u8)>,
    /// Interface names (FRA_IIFNAME / FRA_OIFNAME: the kernel matches them by name).
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub fwmark: Option<u32>,
    pub fwmask: Option<u32>,
    pub priority: Option<u32>,
    /// Look up this table; None: `action` alone.
    pub table: Option<u32>,
    /// FR_ACT_*: 1 to table, 6 blackhole, 7 unreachable, 8 prohibit.
    pub action: u8,
}

pub(crate) fn rule_message(rule: &Rule) -> netlink_packet_route::rule::RuleMessage {
    use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
    let mut m = RuleMessage::default();
    m.header.family = if rule.v6 {
        netlink_packet_route::AddressFamily::Inet6
    } else {
        netlink_packet_route::AddressFamily::Inet
    };
    m.header.action = RuleAction::from(rule.action);
    if let Some((a, len)) = rule.from {
        m.header.src_len = len;
        m.attributes.push(RuleAttribute::Source(a));
    }
    if let Some((a, len)) = rule.to {
        m.header.dst_len = len;
        m.attributes.push(RuleAttribute::Destination(a));
    }
    if let Some(i) = &rule.iif {
        m.attributes.push(RuleAttribute::Iifname(i.clone()));
    }
    if let Some(o) = &rule.oif {
        m.attributes.push(RuleAttribute::Oifname(o.clone()));
    }
    if let Some(f) = rule.fwmark {
        m.attributes.push(RuleAttribute::FwMark(f));
    }
    if let Some(f) = rule.fwmask {
        m.attributes.push(RuleAttribute::FwMask(f));
    }
    if let Some(p) = rule.priority {
        m.attributes.push(RuleAttribute::Priority(p));
    }
    if let Some(t) = rule.table {
        m.header.table = u8::try_from(t).unwrap_or(252); // RT_TABLE_COMPAT
        m.attributes.push(RuleAttribute::Table(t));
    }
    m
}

/// RTN_UNICAST.
pub const ROUTE_UNICAST: u8 = 1;

/// One path of a multipath route.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct NextHop {
    pub via: Option<IpAddr>,
    /// The interface it goes out of (resolved from the config's name, or the route's).
    pub index: u32,
    /// 1..=256.
    pub weight: u16,
}

/// How the kernel is to hold an address (`ip addr add ... label L scope S brd B nodad
/// preferred_lft N`). The default: scope global, the subnet's broadcast, no duplicate address
/// detection for IPv6, preferred and valid forever.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct AddrOptions {
    /// IPv4 only (IFA_LABEL).
    pub label: Option<String>,
    pub scope: Option<u8>,
    /// IPv4 only (IFA_BROADCAST); None: host bits all set.
    pub broadcast: Option<std::net::Ipv4Addr>,
    /// IPv6: let the kernel run duplicate address detection (no IFA_F_NODAD).
    pub dad: bool,
    /// Seconds (IFA_CACHEINFO's preferred lifetime; valid stays forever); None: forever.
    pub preferred_lft: Option<u32>,
}

/// What the daemon needs to know of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: [u8; 6],
    /// Administratively up and carrier present.
    pub up: bool,
}

/// A link changed state (from the kernel's RTNLGRP_LINK notifications).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEvent {
    pub index: u32,
    /// Its name now (empty if the kernel sent none): the daemon follows interfaces by name,
    /// as an interface deleted and made again (a VLAN re-made, a driver reload) has a new index.
    pub name: String,
    pub mac: [u8; 6],
    pub up: bool,
    /// The interface was deleted.
    pub gone: bool,
}

impl LinkEvent {
    /// The link as it is now (not meaningful when `gone`).
    pub fn link(&self) -> Link {
        Link {
            index: self.index,
            name: self.name.clone(),
            mac: self.mac,
            up: self.up,
        }
    }
}

/// An address removed from an interface, by anyone (the kernel's RTNLGRP_IPV4_IFADDR and
/// RTNLGRP_IPV6_IFADDR notifications): the daemon's own removals, or `ip addr del` by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRemoved {
    pub index: u32,
    pub addr: IpAddr,
}

/// An address added to an interface (RTM_NEWADDR), by anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressAdded {
    pub index: u32,
    pub addr: IpAddr,
}

/// A handle on the kernel's routing netlink; cheap to clone.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

const ENOENT_LIKE: [i32; 3] = [libc::EADDRNOTAVAIL, libc::ESRCH, libc::ENOENT];

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

impl Netlink {
    /// Open a request connection; its driver runs as a tokio task.
    pub fn connect() -> Result<Self, NetlinkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Open)?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    pub async fn link(&self, name: &str) -> Result<Link, NetlinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(link_from(&msg)),
            Ok(None) => Err(NetlinkError::NoSuchInterface(name.to_string())),
            Err(rtnetlink::Error::NetlinkError(m))
                if m.code.map(|c| -c.get()) == Some(libc::ENODEV) =>
            {
                Err(NetlinkError::NoSuchInterface(name.to_string()))
            }
            Err(source) => Err(NetlinkError::Request {
                what: format!("looking up interface {name}"),
                source,
            }),
        }
    }

    /// Make a link (a macvlan: see [`super::vmac`]); `what` names the request in an error.
    pub async fn add_link(&self, msg: LinkMessage, what: &str) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|source| NetlinkError::Request {
                what: what.to_string(),
                source,
            })
    }

    /// Set a link administratively up.
    pub async fn set_up(&self, index: u32, what: &str) -> Result<(), NetlinkError> {
        let msg = rtnetlink::LinkUnspec::new_with_index(index).up().build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|source| NetlinkError::Request {
                what: what.to_string(),
                source,
            })
    }

    /// Delete a link; already gone is success.
    pub async fn del_link(&self, index: u32, what: &str) -> Result<(), NetlinkError> {
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(()),
            Err(source) => Err(NetlinkError::Request {
                what: what.to_string(),
                source,
            }),
        }
    }

    /// The addresses on an interface, in kernel order (the primary first).
    pub async fn addresses(&self, index: u32) -> Result<Vec<(IpAddr, u8)>, NetlinkError> {
        let msgs: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|source| NetlinkError::Request {
                what: format!("listing addresses of interface {index}"),
                source,
            })?;
        Ok(msgs
            .iter()
            .filter(|m| m.header.index == index)
            .filter_map(|m| {
                // IFA_LOCAL is the address itself on point-to-point links; IFA_ADDRESS otherwise.
                let local = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(ip) => Some(*ip),
                    _ => None,
                });
                let addr = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                });
                local.or(addr).map(|ip| (ip, m.header.prefix_len))
            })
            .collect())
    }

    /// Remove an address; already absent is success.
    pub async fn del_address(
        &self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<(), NetlinkError> {
        let mut msg = AddressMessage::default();
        msg.header.index = index;
        msg.header.prefix_len = prefix_len;
        msg.header.family = match addr {
            IpAddr::V4(_) => netlink_packet_route::AddressFamily::Inet,
            IpAddr::V6(_) => netlink_packet_route::AddressFamily::Inet6,
        };
        msg.attributes.push(AddressAttribute::Local(addr));
        if addr.is_ipv4() {
            msg.attributes.push(AddressAttribute::Address(addr));
        } else {
            msg.attributes = vec![AddressAttribute::Address(addr)];
        }
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e).is_some_and(|c| ENOENT_LIKE.contains(&c)) => Ok(()),
            Err(source) => Err(NetlinkError::Request {
                what: format!("removing {addr}/{prefix_len}"),
                source,
            }),
        }
    }

    pub async fn del_route(&self, route: &Route, index: u32) -> Result<(), NetlinkError> {
        let msg = route_message(route, index);
        match self.handle.route().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e).is_some_and(|c| ENOENT_LIKE.contains(&c)) => Ok(()),
            Err(source) => Err(NetlinkError::Request {
                what: format!("removing route {}/{}", route.dest, route.prefix_len),
                source,
            }),
        }
    }
}

pub(crate) fn route_message(
    route: &Route,
    index: u32,
) -> netlink_packet_route::route::RouteMessage {
    use netlink_packet_route::route::{
        RouteAddress, RouteAttribute, RouteFlags, RouteNextHop, RouteNextHopFlags, RouteScope,
        RouteType,
    };
    let addr = |ip: IpAddr| match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    };
    let unicast = route.kind == ROUTE_UNICAST;
    let mut m = match route.dest {
        IpAddr::V4(dest) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
            .destination_prefix(dest, route.prefix_len)
            .build(),
        IpAddr::V6(dest) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
            .destination_prefix(dest, route.prefix_len)
            .build(),
    };
    m.header.kind = RouteType::from(route.kind);
    if route.onlink && route.nexthops.is_empty() {
        m.header.flags |= RouteFlags::Onlink;
    }
    if let Some(s) = route.scope {
        m.header.scope = RouteScope::from(s);
    }
    // The kernel refuses a gateway, interface or paths on a route that goes nowhere.
    if unicast && route.nexthops.is_empty() {
        m.attributes.push(RouteAttribute::Oif(index));
        if let Some(gw) = route.via.filter(|v| v.is_ipv6() == route.dest.is_ipv6()) {
            m.attributes.push(RouteAttribute::Gateway(addr(gw)));
        }
    } else if unicast {
        let hops = route
            .nexthops
            .iter()
            .map(|h| {
                let mut nh = RouteNextHop::default();
                nh.interface_index = h.index;
                if route.onlink {
                    nh.flags |= RouteNextHopFlags::Onlink;
                }
                nh.hops = u8::try_from(h.weight.saturating_sub(1)).unwrap_or(u8::MAX);
                if let Some(gw) = h.via {
                    nh.attributes.push(RouteAttribute::Gateway(addr(gw)));
                }
                nh
            })
            .collect();
        m.attributes.push(RouteAttribute::MultiPath(hops));
    }
    if let Some(src) = route.src {
        m.attributes.push(RouteAttribute::PrefSource(addr(src)));
    }
    if let Some(p) = route.metric {
        m.attributes.push(RouteAttribute::Priority(p));
    }
    if let Some(t) = route.table {
        // The header holds 8 bits; RTA_TABLE the rest (as the builder does).
        m.header.table = u8::try_from(t).unwrap_or(252); // RT_TABLE_COMPAT
        m.attributes.push(RouteAttribute::Table(t));
    }
    m
}

fn link_from(msg: &LinkMessage) -> Link {
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        mac: [0; 6],
        up: is_up(msg),
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Address(a) if a.len() == 6 => link.mac.copy_from_slice(a),
            _ => {}
        }
    }
    link
}

fn is_up(msg: &LinkMessage) -> bool {
    let f = msg.header.flags;
    f.contains(LinkFlags::Up) && f.contains(LinkFlags::LowerUp)
}

/// Subscribe to link changes. Events arrive on the returned channel until it is dropped.
pub fn watch_links() -> Result<mpsc::UnboundedReceiver<LinkEvent>, NetlinkError> {
    let (conn, _handle, mut messages) =
        rtnetlink::new_multicast_connection(&[MulticastGroup::Link]).map_err(NetlinkError::Open)?;
    tokio::spawn(conn);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((msg, _)) = messages.next().await {
            let (l, gone) = match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => (l, false),
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) => (l, true),
                _ => continue,
            };
            let link = link_from(&l);
            let event = LinkEvent {
                index: link.index,
                name: link.name,
                mac: link.mac,
                up: link.up && !gone,
                gone,
            };
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// IFA_LOCAL is the address itself on point-to-point links; IFA_ADDRESS otherwise.
fn address_of(m: &AddressMessage) -> Option<IpAddr> {
    let local = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let addr = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    });
    local.or(addr)
}

/// An address added or removed, by anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressChange {
    Added(AddressAdded),
    Removed(AddressRemoved),
}

/// Subscribe to address additions and removals (one subscription to RTNLGRP_IPV4_IFADDR and
/// RTNLGRP_IPV6_IFADDR). Events arrive on the returned channel until it is dropped.
pub fn watch_addresses() -> Result<mpsc::UnboundedReceiver<AddressChange>, NetlinkError> {
    let (conn, _handle, mut messages) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ])
    .map_err(NetlinkError::Open)?;
    tokio::spawn(conn);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((msg, _)) = messages.next().await {
            let NetlinkPayload::InnerMessage(inner) = msg.payload else {
                continue;
            };
            let (m, added) = match inner {
                RouteNetlinkMessage::NewAddress(m) => (m, true),
                RouteNetlinkMessage::DelAddress(m) => (m, false),
                _ => continue,
            };
            let Some(addr) = address_of(&m) else { continue };
            let index = m.header.index;
            let event = if added {
                AddressChange::Added(AddressAdded { index, addr })
            } else {
                AddressChange::Removed(AddressRemoved { index, addr })
            };
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}
