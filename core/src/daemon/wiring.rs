//! Interfaces, sockets and announcers, opened on first use and shared by every instance on the
//! same interface. A reload that adds an instance on a new interface opens what it needs here.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::sync::mpsc;
use tracing::{error, warn};

use crate::net::announce::Announcer;
use crate::net::netlink::{Link, Netlink};
use crate::net::socket::{Datagram, RecvBatch, VrrpSocket};
use upkeep_config::InstanceConfig;
use upkeep_vrrp::packet::{self, Advert, DropReason, IPPROTO_VRRP};

use super::instance::InstanceIo;
use super::vips::Owned;

/// A packet as a reader task hands it over: decoded, or the reason it was not.
pub(super) enum Rx {
    Advert {
        ifindex: u32,
        v6: bool,
        src: IpAddr,
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

pub(super) struct Interfaces {
    pub nl: Netlink,
    links: HashMap<String, Link>,
    sockets: HashMap<(u32, bool), Arc<VrrpSocket>>,
    announcers: HashMap<u32, Arc<Announcer>>,
    /// Each interface's source address for adverts, looked up once per start or reload (not
    /// once per instance: 255 instances on one link are one netlink dump).
    sources: HashMap<(u32, bool), IpAddr>,
    rx: mpsc::Sender<Rx>,
}

impl Interfaces {
    pub(super) fn new(nl: Netlink, rx: mpsc::Sender<Rx>) -> Self {
        Self {
            nl,
            links: HashMap::new(),
            sockets: HashMap::new(),
            announcers: HashMap::new(),
            sources: HashMap::new(),
            rx,
        }
    }

    /// Forget the interfaces' addresses looked up so far: a reload sees the host as it is now.
    pub(super) fn forget_addresses(&mut self) {
        self.sources.clear();
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

    /// Check that everything an instance names exists, without opening anything.
    pub(super) async fn validate(&mut self, inst: &InstanceConfig) -> anyhow::Result<()> {
        for name in interfaces_of(inst) {
            self.link(name).await?;
        }
        Ok(())
    }

    /// Resolve and open everything an instance needs.
    pub(super) async fn wire(
        &mut self,
        inst: &InstanceConfig,
        all_vips: &[IpAddr],
    ) -> anyhow::Result<(InstanceIo, bool)> {
        let link = self.link(&inst.interface).await?;
        let v6 = inst.is_ipv6();
        let socket = match self.sockets.get(&(link.index, v6)) {
            Some(s) => s.clone(),
            None => {
                let s = if v6 {
                    VrrpSocket::open_v6(&inst.interface, link.index)
                } else {
                    VrrpSocket::open_v4(&inst.interface, link.index)
                }
                .with_context(|| {
                    format!(
                        "opening a VRRP socket on {} (are you root?)",
                        inst.interface
                    )
                })?;
                let s = Arc::new(s);
                tokio::spawn(read_loop(s.clone(), v6, self.rx.clone()));
                self.sockets.insert((link.index, v6), s.clone());
                s
            }
        };
        // Its adverts pass the socket's filter from now on (`set_filters` drops the VRIDs of
        // instances gone).
        if let Err(e) = socket.allow_vrid(inst.vrid) {
            warn!(interface = %inst.interface, "cannot filter VRRP packets in the kernel: {e}");
        }
        let announcer = match self.announcers.get(&link.index) {
            Some(a) => a.clone(),
            None => {
                let a = Arc::new(
                    Announcer::open(&inst.interface, link.index, link.mac).with_context(|| {
                        format!("opening an announcement socket on {}", inst.interface)
                    })?,
                );
                self.announcers.insert(link.index, a.clone());
                a
            }
        };
        let src = match (inst.unicast_src, self.sources.get(&(link.index, v6))) {
            (Some(ip), _) => ip,
            (None, Some(&ip)) => ip,
            (None, None) => {
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
        };
        Ok((wiring, link.up))
    }

    /// Each socket's kernel filter passes exactly these VRIDs (per interface index and family;
    /// none for a socket not named).
    pub(super) fn set_filters(&self, vrids: &HashMap<(u32, bool), Vec<u8>>) {
        for (key, socket) in &self.sockets {
            let want = vrids.get(key).map_or(&[][..], Vec::as_slice);
            if let Err(e) = socket.set_vrids(want) {
                warn!(
                    ifindex = key.0,
                    "cannot filter VRRP packets in the kernel: {e}"
                );
            }
        }
    }

    /// The VIPs and routes an instance holds while master, resolved to interface indexes.
    pub(super) async fn owned(&mut self, inst: &InstanceConfig) -> anyhow::Result<Arc<Owned>> {
        let own = self.link(&inst.interface).await?.index;
        let mut addrs = Vec::new();
        for v in &inst.vips {
            let index = match &v.dev {
                Some(d) => self.link(d).await?.index,
                None => own,
            };
            addrs.push((index, v.addr, v.prefix_len));
        }
        let mut routes = Vec::new();
        for r in &inst.routes {
            let index = match &r.dev {
                Some(d) => self.link(d).await?.index,
                None => own,
            };
            routes.push((index, r.into()));
        }
        Ok(Arc::new(Owned {
            instance: inst.name.clone(),
            addrs,
            routes,
        }))
    }
}

fn interfaces_of(inst: &InstanceConfig) -> impl Iterator<Item = &String> {
    std::iter::once(&inst.interface)
        .chain(inst.vips.iter().filter_map(|v| v.dev.as_ref()))
        .chain(inst.routes.iter().filter_map(|r| r.dev.as_ref()))
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
        let addrs = nl.addresses(index).await?;
        let found = addrs.iter().map(|(a, _)| *a).find(|a| match a {
            IpAddr::V4(v4) => !v6 && !vips.contains(a) && *v4 != Ipv4Addr::UNSPECIFIED,
            IpAddr::V6(v6a) => v6 && is_link_local(v6a),
        });
        if let Some(a) = found {
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
