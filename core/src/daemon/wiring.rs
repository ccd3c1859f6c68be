//! Interfaces, sockets and announcers, opened on first use and shared by every instance on the
//! same interface. A reload that adds an instance on a new interface opens what it needs here.
//! Interfaces are known by name and followed through link events: one deleted is forgotten
//! with what was opened on it, one made again under the name is opened afresh.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::{error, info, warn};

use crate::net::announce::Announcer;
use crate::net::netlink::{Link, LinkEvent, Netlink};
use crate::net::socket::{Datagram, RecvBatch, VrrpSocket};
use crate::net::vmac;
use upkeep_config::{InstanceConfig, Vmac};
use upkeep_vrrp::packet::{self, Advert, DropReason, IPPROTO_VRRP};

use super::instance::InstanceIo;
use super::vips::Owned;

/// A packet as a reader task hands it over: decoded, or the reason it was not.
pub(super) enum Rx {
    Advert {
        ifindex: u32,
        v6: bool,
        src: IpAddr,
        /// The destination: a multicast group, or our unicast address.
        dst: IpAddr,
        ttl: u8,
        advert: Advert,
    },
    Drop {
        ifindex: u32,
        v6: bool,
        vrid: Option<u8>,
        reason: DropReason,
    },
}

/// Per socket: the VRIDs its filter passes, and those of them it passes whatever their TTL.
pub(super) type FilterVrids = (Vec<u8>, Vec<u8>);

pub(super) struct Interfaces {
    pub nl: Netlink,
    /// By name, kept in step with link events (see [`Interfaces::follow`]).
    links: HashMap<String, Link>,
    /// Each with the task that reads it.
    sockets: HashMap<(u32, bool), (Arc<VrrpSocket>, AbortHandle)>,
    announcers: HashMap<u32, Arc<Announcer>>,
    /// Each interface's source address for adverts, looked up once per start or reload (not
    /// once per instance: 255 instances on one link are one netlink dump).
    sources: HashMap<(u32, bool), IpAddr>,
    /// Why an interface has no source address, as a reload's preparation found: applying the
    /// reload reports it rather than look (and wait) again on the event loop.
    no_source_why: HashMap<(u32, bool), String>,
    /// Interfaces found without a source address since the last link event: asked once per
    /// event, not once per instance on them.
    no_source: HashSet<(u32, bool)>,
    rx: mpsc::Sender<Rx>,
}

/// What applying a reload needs of the host, looked up beside the event loop by [`resolve`]
/// (a link-local address may take seconds to appear): the config's links, and the source
/// addresses of the instances the reload starts or changes.
#[derive(Default)]
pub(super) struct Resolved {
    links: HashMap<String, Link>,
    sources: HashMap<(u32, bool), Result<IpAddr, String>>,
}

/// Looks up every interface `cfg` names (an error names the instance, by its index in
/// `cfg.instances`, that names one that does not exist), the
/// interfaces of interface checks (where they exist), and the source address of each of
/// `wanted` (instance indexes) without `unicast-src`, waiting as [`Interfaces::wire`] would.
pub(super) async fn resolve(
    nl: &Netlink,
    cfg: &upkeep_config::Config,
    wanted: &[usize],
) -> Result<Resolved, (usize, anyhow::Error)> {
    let mut r = Resolved::default();
    for (k, inst) in cfg.instances.iter().enumerate() {
        for name in interfaces_of(inst) {
            if !r.links.contains_key(name) {
                let link = nl.link(name).await.map_err(|e| (k, e.into()))?;
                r.links.insert(name.clone(), link);
            }
        }
    }
    for c in &cfg.checks {
        if let upkeep_config::CheckKind::Interface { name } = &c.kind {
            if !r.links.contains_key(name) {
                if let Ok(link) = nl.link(name).await {
                    r.links.insert(name.clone(), link);
                }
            }
        }
    }
    let vips: Vec<IpAddr> = cfg
        .instances
        .iter()
        .flat_map(|i| i.vips.iter().map(|v| v.addr))
        .collect();
    for &k in wanted {
        let Some(inst) = cfg.instances.get(k) else {
            continue;
        };
        let Some(link) = r.links.get(&inst.interface) else {
            continue;
        };
        let key = (link.index, inst.is_ipv6());
        if inst.unicast_src.is_some() || r.sources.contains_key(&key) {
            continue;
        }
        let found = primary_address(nl, link.index, key.1, &vips)
            .await
            .map_err(|e| format!("{e:#}"));
        r.sources.insert(key, found);
    }
    Ok(r)
}

impl Interfaces {
    pub(super) fn new(nl: Netlink, rx: mpsc::Sender<Rx>) -> Self {
        Self {
            nl,
            links: HashMap::new(),
            sockets: HashMap::new(),
            announcers: HashMap::new(),
            sources: HashMap::new(),
            no_source_why: HashMap::new(),
            no_source: HashSet::new(),
            rx,
        }
    }

    /// Forget the interfaces' addresses looked up so far: a reload sees the host as it is now.
    pub(super) fn forget_addresses(&mut self) {
        self.sources.clear();
        self.no_source.clear();
        self.no_source_why.clear();
    }

    /// Takes what a reload's preparation looked up ([`resolve`]), so that wiring its
    /// instances waits for no lookup.
    pub(super) fn preload(&mut self, r: Resolved) {
        self.links.extend(r.links);
        for (key, found) in r.sources {
            match found {
                Ok(ip) => {
                    self.sources.insert(key, ip);
                }
                Err(why) => {
                    self.no_source_why.insert(key, why);
                }
            }
        }
    }

    /// Keeps the interfaces' view in step with a link event. An interface deleted or renamed
    /// is forgotten with its sockets, announcer and source address (its multicast membership
    /// went with it): one made again under the name gets new ones, on its new index.
    pub(super) fn follow(&mut self, ev: &LinkEvent) {
        self.no_source.clear();
        self.no_source_why.clear();
        let stale: Vec<String> = self
            .links
            .iter()
            .filter(|(name, l)| {
                let renamed = !ev.name.is_empty() && **name != ev.name;
                l.index == ev.index && (ev.gone || renamed)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in &stale {
            self.links.remove(name);
        }
        if ev.gone || !stale.is_empty() {
            self.forget_index(ev.index);
        }
        if ev.gone || ev.name.is_empty() {
            return;
        }
        // Names are unique: a link of this name with another index is gone (its deletion's
        // event may have been lost).
        if let Some(old) = self.links.get(&ev.name).map(|l| l.index) {
            if old != ev.index {
                self.forget_index(old);
            }
        }
        self.links.insert(ev.name.clone(), ev.link());
    }

    /// An address was added to interface `index`: it may have the source address it lacked.
    pub(super) fn address_added(&mut self, index: u32) {
        self.no_source.retain(|&(i, _)| i != index);
        self.no_source_why.retain(|&(i, _), _| i != index);
    }

    fn forget_index(&mut self, index: u32) {
        self.sockets.retain(|&(i, _), (_, reader)| {
            if i == index {
                reader.abort();
            }
            i != index
        });
        self.announcers.remove(&index);
        self.sources.retain(|&(i, _), _| i != index);
    }

    /// The interface of that name as last seen, without asking the kernel.
    pub(super) fn known(&self, name: &str) -> Option<Link> {
        self.links.get(name).cloned()
    }

    /// The interface by name, looked up once.
    pub(super) async fn link(&mut self, name: &str) -> anyhow::Result<Link> {
        if let Some(l) = self.links.get(name) {
            return Ok(l.clone());
        }
        let link = self.nl.link(name).await?;
        self.links.insert(name.to_string(), link.clone());
        Ok(link)
    }

    /// Resolve and open everything an instance needs.
    pub(super) async fn wire(
        &mut self,
        inst: &InstanceConfig,
        all_vips: &[IpAddr],
    ) -> anyhow::Result<(InstanceIo, bool)> {
        let link = self.link(&inst.interface).await?;
        let v6 = inst.is_ipv6();
        let (socket, announcer) = self.open(inst, &link)?;
        let (socket, announcer, vmac_index) = self.vmac_side(inst, socket, announcer).await?;
        let src = match (inst.unicast_src, self.sources.get(&(link.index, v6))) {
            (Some(ip), _) => ip,
            (None, Some(&ip)) => ip,
            (None, None) => {
                if let Some(why) = self.no_source_why.get(&(link.index, v6)) {
                    bail!("{why}");
                }
                let ip = primary_address(&self.nl, link.index, v6, all_vips).await?;
                self.sources.insert((link.index, v6), ip);
                ip
            }
        };
        let owned = self.owned(inst).await?;
        let wiring = InstanceIo {
            ifindex: link.index,
            src,
            socket,
            announcer,
            owned,
            vmac_index,
        };
        Ok((wiring, link.up))
    }

    /// What an instance needs on its interface as it is now, after the interface was made
    /// again under its name: socket and announcer on the new index, VIPs and routes resolved
    /// anew. The source address is looked up once, without waiting (nothing may stall the
    /// event loop): a new interface may not have its address yet, and then `old_src` stays.
    /// Returns whether the source was found.
    pub(super) async fn rewire(
        &mut self,
        inst: &InstanceConfig,
        all_vips: &[IpAddr],
        old_src: IpAddr,
    ) -> anyhow::Result<(InstanceIo, bool)> {
        let link = self.link(&inst.interface).await?;
        let owned = self.owned(inst).await?;
        let (socket, announcer) = self.open(inst, &link)?;
        let (socket, announcer, vmac_index) = self.vmac_side(inst, socket, announcer).await?;
        let (src, found) = self.source_now(inst, link.index, all_vips, old_src).await;
        let io = InstanceIo {
            ifindex: link.index,
            src,
            socket,
            announcer,
            owned,
            vmac_index,
        };
        Ok((io, found))
    }

    /// The source address of an instance on interface `index`, looked up once without
    /// waiting; `fallback` (and false) if the interface has none yet.
    pub(super) async fn source_now(
        &mut self,
        inst: &InstanceConfig,
        index: u32,
        all_vips: &[IpAddr],
        fallback: IpAddr,
    ) -> (IpAddr, bool) {
        let v6 = inst.is_ipv6();
        if let Some(ip) = inst.unicast_src {
            return (ip, true);
        }
        if let Some(&ip) = self.sources.get(&(index, v6)) {
            return (ip, true);
        }
        if self.no_source.contains(&(index, v6)) {
            return (fallback, false);
        }
        match find_source(&self.nl, index, v6, all_vips).await {
            Ok(Some(ip)) => {
                self.sources.insert((index, v6), ip);
                (ip, true)
            }
            _ => {
                self.no_source.insert((index, v6));
                (fallback, false)
            }
        }
    }

    /// With `use-vmac`: the instance's macvlan, made if missing (see [`crate::net::vmac`]),
    /// and known by name from then on.
    async fn vmac_link(&mut self, inst: &InstanceConfig) -> anyhow::Result<Option<Link>> {
        let Some(v) = &inst.vmac else {
            return Ok(None);
        };
        let mac = Vmac::mac(inst.vrid, inst.is_ipv6());
        if let Some(l) = self.links.get(&v.name).filter(|l| l.mac == mac) {
            return Ok(Some(l.clone()));
        }
        let base = self.link(&inst.interface).await?;
        let (link, created) = vmac::ensure(&self.nl, &v.name, &base, mac, inst.is_ipv6())
            .await
            .with_context(|| format!("instance `{}`: use-vmac {}", inst.name, v.name))?;
        if created {
            info!(instance = %inst.name, interface = %v.name, mac = %vmac::mac_string(&mac),
                base = %inst.interface, "virtual MAC interface made");
        }
        self.links.insert(v.name.clone(), link.clone());
        Ok(Some(link))
    }

    /// Deletes a virtual-MAC interface (the daemon stops).
    pub(super) async fn remove_vmac(&self, name: &str) {
        delete_vmac(&self.nl, name).await;
    }

    /// Deletes a virtual-MAC interface no instance uses any more, off the event loop.
    pub(super) fn remove_vmac_later(&self, name: String) {
        let nl = self.nl.clone();
        tokio::spawn(async move { delete_vmac(&nl, &name).await });
    }

    /// The socket an instance sends from and the announcer of its VIPs: its interface's, or
    /// with `use-vmac` its macvlan's (adverts too, but with `xmit-base`), so that adverts and
    /// gratuitous ARPs carry the virtual MAC; and the macvlan's index. The macvlan's socket
    /// is read as well: a peer's adverts from the same virtual MAC reach only the macvlan
    /// (the macvlan driver takes a multicast frame whose source is one of its own MACs as
    /// its own, and hands it to that macvlan alone).
    async fn vmac_side(
        &mut self,
        inst: &InstanceConfig,
        socket: Arc<VrrpSocket>,
        announcer: Arc<Announcer>,
    ) -> anyhow::Result<(Arc<VrrpSocket>, Arc<Announcer>, Option<u32>)> {
        let Some(link) = self.vmac_link(inst).await? else {
            return Ok((socket, announcer, None));
        };
        let (vsocket, vannouncer) = self.open(inst, &link)?;
        let xmit_base = inst.vmac.as_ref().is_some_and(|v| v.xmit_base);
        let send = if xmit_base { socket } else { vsocket };
        Ok((send, vannouncer, Some(link.index)))
    }

    /// The VRRP socket and the announcer of `link`, opened if not yet.
    fn open(
        &mut self,
        inst: &InstanceConfig,
        link: &Link,
    ) -> anyhow::Result<(Arc<VrrpSocket>, Arc<Announcer>)> {
        let v6 = inst.is_ipv6();
        let socket = match self.sockets.get(&(link.index, v6)) {
            Some((s, _)) => s.clone(),
            None => {
                let s = if v6 {
                    VrrpSocket::open_v6(&link.name, link.index)
                } else {
                    VrrpSocket::open_v4(&link.name, link.index)
                }
                .with_context(|| {
                    format!("opening a VRRP socket on {} (are you root?)", link.name)
                })?;
                let s = Arc::new(s);
                let reader = tokio::spawn(read_loop(s.clone(), v6, self.rx.clone()));
                self.sockets
                    .insert((link.index, v6), (s.clone(), reader.abort_handle()));
                s
            }
        };
        if let Some(group) = inst.multicast_group {
            socket
                .join(group)
                .with_context(|| format!("joining multicast group {group} on {}", link.name))?;
        }
        // Its adverts pass the socket's filter from now on (`set_filters` drops the VRIDs of
        // instances gone).
        if let Err(e) = socket.allow_vrid(inst.vrid) {
            warn!(interface = %link.name, "cannot filter VRRP packets in the kernel: {e}");
        }
        let announcer = match self.announcers.get(&link.index) {
            Some(a) => a.clone(),
            None => {
                let a = Arc::new(
                    Announcer::open(&link.name, link.index, link.mac).with_context(|| {
                        format!("opening an announcement socket on {}", link.name)
                    })?,
                );
                self.announcers.insert(link.index, a.clone());
                a
            }
        };
        Ok((socket, announcer))
    }

    /// Each socket's kernel filter passes exactly these VRIDs (per interface index and family;
    /// none for a socket not named), the second list whatever their TTL.
    pub(super) fn set_filters(&self, vrids: &HashMap<(u32, bool), FilterVrids>) {
        for (key, (socket, _)) in &self.sockets {
            let (want, any_ttl) = vrids
                .get(key)
                .map_or((&[][..], &[][..]), |(v, a)| (v.as_slice(), a.as_slice()));
            if let Err(e) = socket.set_vrids(want, any_ttl) {
                warn!(
                    ifindex = key.0,
                    "cannot filter VRRP packets in the kernel: {e}"
                );
            }
        }
    }

    /// The VIPs and routes an instance holds while master, resolved to interface indexes.
    pub(super) async fn owned(&mut self, inst: &InstanceConfig) -> anyhow::Result<Arc<Owned>> {
        // With `use-vmac`, what names no interface goes on the macvlan, as in keepalived.
        let own = match self.vmac_link(inst).await? {
            Some(l) => l.index,
            None => self.link(&inst.interface).await?.index,
        };
        let mut addrs = Vec::new();
        for v in &inst.vips {
            let index = match &v.dev {
                Some(d) => self.link(d).await?.index,
                None => own,
            };
            addrs.push((index, v.addr, v.prefix_len, (&v.opts).into()));
        }
        let mut routes = Vec::new();
        for r in &inst.routes {
            let index = match &r.dev {
                Some(d) => self.link(d).await?.index,
                None => own,
            };
            let mut route: crate::net::netlink::Route = r.into();
            for (hop, cfg) in route.nexthops.iter_mut().zip(&r.nexthops) {
                hop.index = match &cfg.dev {
                    Some(d) => self.link(d).await?.index,
                    None => index,
                };
            }
            routes.push((index, route));
        }
        Ok(Arc::new(Owned {
            instance: inst.name.clone(),
            addrs,
            routes,
            rules: inst.rules.iter().map(Into::into).collect(),
        }))
    }
}

async fn delete_vmac(nl: &Netlink, name: &str) {
    let Ok(link) = nl.link(name).await else {
        return;
    };
    match nl.del_link(link.index, &format!("deleting {name}")).await {
        Ok(()) => info!(interface = %name, "virtual MAC interface deleted"),
        Err(e) => warn!("{e}"),
    }
}

/// Every interface an instance names: its own, its VIPs' and its routes'.
pub(super) fn interfaces_of(inst: &InstanceConfig) -> impl Iterator<Item = &String> {
    std::iter::once(&inst.interface)
        .chain(inst.vips.iter().filter_map(|v| v.dev.as_ref()))
        .chain(inst.routes.iter().filter_map(|r| r.dev.as_ref()))
        .chain(
            inst.routes
                .iter()
                .flat_map(|r| r.nexthops.iter().filter_map(|h| h.dev.as_ref())),
        )
}

/// The address we advertise from: the interface's first IPv4 address that is not a VIP, or its
/// IPv6 link-local address (waiting briefly for duplicate address detection to finish).
async fn primary_address(
    nl: &Netlink,
    index: u32,
    v6: bool,
    vips: &[IpAddr],
) -> anyhow::Result<IpAddr> {
    for _ in 0..30 {
        if let Some(a) = find_source(nl, index, v6, vips).await? {
            return Ok(a);
        }
        if !v6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let family = if v6 { "IPv6 link-local" } else { "IPv4" };
    bail!("the interface has no {family} address to send adverts from (set `unicast-src`)")
}

/// [`primary_address`], looked up once: None if the interface has none now.
async fn find_source(
    nl: &Netlink,
    index: u32,
    v6: bool,
    vips: &[IpAddr],
) -> anyhow::Result<Option<IpAddr>> {
    let addrs = nl.addresses(index).await?;
    Ok(addrs.iter().map(|(a, _)| *a).find(|a| match a {
        IpAddr::V4(v4) => !v6 && !vips.contains(a) && *v4 != Ipv4Addr::UNSPECIFIED,
        IpAddr::V6(v6a) => v6 && is_link_local(v6a),
    }))
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// Reads one socket forever, a batch per wake-up, decoding each packet before handing it to
/// the event loop.
async fn read_loop(sock: Arc<VrrpSocket>, v6: bool, tx: mpsc::Sender<Rx>) {
    let mut batch = RecvBatch::default();
    let ifindex = sock.ifindex();
    loop {
        let n = match sock.recv_batch(&mut batch).await {
            Ok(n) => n,
            Err(e) => {
                error!(ifindex, "receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        for i in 0..n {
            let Some(d) = batch.get(i, v6) else { break };
            let rx = decode(ifindex, v6, d);
            if tx.send(rx).await.is_err() {
                return;
            }
        }
    }
}

fn decode(ifindex: u32, v6: bool, d: Datagram<'_>) -> Rx {
    let (src, dst, ttl, payload) = match d {
        Datagram::V4(bytes) => match packet::parse_ipv4(bytes) {
            Ok(ip) if ip.protocol == IPPROTO_VRRP => {
                (IpAddr::V4(ip.src), IpAddr::V4(ip.dst), ip.ttl, ip.payload)
            }
            Ok(_) => {
                return Rx::Drop {
                    ifindex,
                    v6,
                    vrid: None,
                    reason: DropReason::NotVrrp,
                }
            }
            Err(e) => {
                return Rx::Drop {
                    ifindex,
                    v6,
                    vrid: None,
                    reason: e.reason(),
                }
            }
        },
        Datagram::V6 {
            src,
            dst,
            hop_limit,
            payload,
        } => (IpAddr::V6(src), IpAddr::V6(dst), hop_limit, payload),
    };
    match Advert::decode(payload, src, dst) {
        Ok(advert) => Rx::Advert {
            ifindex,
            v6,
            src,
            dst,
            ttl,
            advert,
        },
        Err(e) => Rx::Drop {
            ifindex,
            v6,
            vrid: packet::peek_vrid(payload),
            reason: e.reason(),
        },
    }
}
