//! One configured VRRP instance at run time: what the driver needs to carry out its actions
//! (socket, addresses, counters). Its state machine is in the daemon's `Node`, at the same
//! index.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{warn, Span};

use crate::net::announce::Announcer;
use crate::net::socket::{multicast_group, SendBatch, VrrpSocket};
use upkeep_config::{InstanceConfig, VrrpVersion};
use upkeep_vrrp::fsm::{Fsm, Params};
use upkeep_vrrp::packet::{Advert, Auth, DropReason, Version};
use upkeep_vrrp::receive::Expect;

use super::log_limit::LogLimit;
use super::status::InstanceStatus;
use super::vips::Owned;

pub(super) struct Instance {
    pub cfg: InstanceConfig,
    pub expect: Expect,
    pub ifindex: u32,
    /// Its interface exists (false from its deletion until one of its name is back: the
    /// socket and the index are stale meanwhile).
    pub bound: bool,
    /// `src` was not found on the interface when it was made again (the one from before is
    /// used): looked up again at the interface's next events.
    pub src_pending: bool,
    pub v6: bool,
    pub src: IpAddr,
    /// (interface index, address) of held VIPs the daemon itself removes and adds again
    /// (a reload changed their options): their removal events are not someone else's.
    pub own_removals: Vec<(u32, IpAddr)>,
    pub socket: Arc<VrrpSocket>,
    pub announcer: Arc<Announcer>,
    pub owned: Arc<Owned>,
    /// Its virtual-MAC interface (`use-vmac`), whose socket it reads too.
    pub vmac_index: Option<u32>,
    pub vip_addrs: Vec<IpAddr>,
    pub span: Span,
    pub garp_refresh_at: Option<std::time::Instant>,
    /// A second round of announcements due (after a takeover or an answer to a lower
    /// priority), and how many it sends.
    pub garp_again_at: Option<(std::time::Instant, u32)>,
    /// When a lower priority heard as master may run `notify-master-rx-lower-pri` again.
    pub rx_lower_at: Option<Instant>,
    /// The effective priority last seen (for `notify-priority-changes`).
    pub reported_priority: Option<u8>,
    /// Bumped whenever the VIPs are released: pending GARP repeats of an earlier mastership
    /// see it and stop, so a router that stepped down never keeps pulling clients to itself.
    pub announce_epoch: Arc<std::sync::atomic::AtomicU64>,
    /// The repeats of the last announcement still being sent, and their addresses: one task
    /// per instance at a time (a new announcement takes over the addresses left).
    pub repeats: Option<(tokio::task::JoinHandle<()>, Vec<IpAddr>)>,
    /// Log lines a remote sender can trigger per packet, one per reason per period.
    pub log_limit: LogLimit,
    /// Adverts in a row that could not be sent to any destination.
    pub unsent_in_a_row: u32,
    pub stats: Stats,
    advert: Advert,
    buf: Vec<u8>,
    /// Adverts as last encoded (see [`Instance::queue_advert_to`]); emptied when the
    /// advert's settings change.
    encoded: Vec<Encoded>,
}

/// One advert datagram as sent, with what it was built for.
struct Encoded {
    src: IpAddr,
    dst: IpAddr,
    priority: u8,
    bytes: Vec<u8>,
}

#[derive(Debug, Default)]
pub(super) struct Stats {
    pub adverts_sent: u64,
    /// Adverts the kernel refused (to every destination).
    pub adverts_unsent: u64,
    pub adverts_received: u64,
    pub transitions: u64,
    pub last_transition: Option<String>,
    pub drops: BTreeMap<DropReason, u64>,
    pub vips_held: bool,
    /// Times its VIPs were put back after someone else removed one while it was master.
    pub vips_restored: u64,
}

pub(super) fn version(v: VrrpVersion) -> Version {
    match v {
        VrrpVersion::V2 => Version::V2,
        VrrpVersion::V3 => Version::V3,
    }
}

pub(super) fn auth(cfg: &InstanceConfig) -> Auth {
    match (&cfg.auth_pass, cfg.version) {
        (Some(p), VrrpVersion::V2) => Auth::pass_from_str(p),
        _ => Auth::None,
    }
}

pub(super) fn params(cfg: &InstanceConfig, global: &upkeep_config::Global, src: IpAddr) -> Params {
    Params {
        version: version(cfg.version),
        advert_interval: cfg.advert_interval,
        preempt: cfg.preempt,
        preempt_delay: cfg.preempt_delay,
        initial_master: cfg.initial_state == upkeep_config::InitialState::Master,
        primary_ip: src,
        fast_preempt: global.fast_failover,
        handover: global.handover,
        handover_when_sick: cfg.handover_when_sick,
        master_down_adverts: cfg.master_down_adverts,
        lower_prio_no_advert: cfg.lower_prio_no_advert,
        higher_prio_send_advert: cfg.higher_prio_send_advert,
    }
}

/// What the instance expects of the adverts it hears. Its VIPs, to notice a peer advertising
/// others, are the advertised ones only.
fn expect(cfg: &InstanceConfig) -> Expect {
    Expect {
        version: version(cfg.version),
        auth: auth(cfg),
        advert_interval: cfg.advert_interval,
        peers: cfg.unicast_peers.clone(),
        vips: cfg.advertised_addrs(),
        peer_ttl: cfg.peer_ttl.clone(),
    }
}

/// The advert the instance sends (its priority is set at each send): the VIPs written
/// `advertise=#false` are held like the others ([`Instance::vip_addrs`], the owned addresses)
/// but left out of it.
fn advert(cfg: &InstanceConfig) -> Advert {
    Advert {
        version: version(cfg.version),
        vrid: cfg.vrid,
        priority: cfg.priority,
        interval_cs: interval_cs(cfg.advert_interval),
        auth: auth(cfg),
        addrs: cfg.advertised_addrs(),
    }
}

pub(super) struct InstanceIo {
    pub ifindex: u32,
    pub src: IpAddr,
    pub socket: Arc<VrrpSocket>,
    pub announcer: Arc<Announcer>,
    pub owned: Arc<Owned>,
    pub vmac_index: Option<u32>,
}

impl Instance {
    pub(super) fn new(cfg: InstanceConfig, w: InstanceIo) -> Self {
        let v6 = cfg.is_ipv6();
        let vip_addrs: Vec<IpAddr> = cfg.vips.iter().map(|v| v.addr).collect();
        let expect = expect(&cfg);
        let advert = advert(&cfg);
        let span = tracing::info_span!("instance", name = %cfg.name, vrid = cfg.vrid);
        Self {
            expect,
            ifindex: w.ifindex,
            bound: true,
            src_pending: false,
            v6,
            src: w.src,
            socket: w.socket,
            announcer: w.announcer,
            owned: w.owned,
            vmac_index: w.vmac_index,
            vip_addrs,
            span,
            garp_refresh_at: None,
            garp_again_at: None,
            rx_lower_at: None,
            reported_priority: None,
            announce_epoch: Arc::default(),
            repeats: None,
            log_limit: LogLimit::default(),
            unsent_in_a_row: 0,
            own_removals: Vec::new(),
            stats: Stats::default(),
            advert,
            buf: Vec::with_capacity(128),
            encoded: Vec::new(),
            cfg,
        }
    }

    /// Take new settings of the same virtual router (a reload; the state machine's are the
    /// node's to take). Returns the addresses to add and remove now if VIPs are held.
    pub(super) fn reconfigure(
        &mut self,
        cfg: InstanceConfig,
        src: IpAddr,
        owned: Arc<Owned>,
    ) -> (Owned, Owned) {
        let vip_addrs: Vec<IpAddr> = cfg.vips.iter().map(|v| v.addr).collect();
        self.expect = expect(&cfg);
        let advert = advert(&cfg);
        self.advert.interval_cs = advert.interval_cs;
        self.advert.auth = advert.auth;
        self.advert.addrs = advert.addrs;
        self.encoded.clear();
        self.src = src;
        self.vip_addrs = vip_addrs;
        if cfg.name != self.cfg.name {
            self.span = tracing::info_span!("instance", name = %cfg.name, vrid = cfg.vrid);
        }
        self.cfg = cfg;
        let old = std::mem::replace(&mut self.owned, owned);
        let added = self.owned.without(&old);
        let mut removed = old.without(&self.owned);
        removed.instance = self.cfg.name.clone();
        (added, removed)
    }

    /// Carry on on its interface made again (a new index, new sockets); see
    /// [`super::wiring::Interfaces::rewire`].
    pub(super) fn rebind(&mut self, w: InstanceIo, src_found: bool) {
        self.ifindex = w.ifindex;
        self.src = w.src;
        self.socket = w.socket;
        self.announcer = w.announcer;
        self.owned = w.owned;
        self.vmac_index = w.vmac_index;
        self.bound = true;
        self.src_pending = !src_found;
    }

    /// Multicast group, or each unicast peer.
    fn destinations(&self) -> Vec<IpAddr> {
        if self.cfg.unicast_peers.is_empty() {
            vec![self
                .cfg
                .multicast_group
                .unwrap_or_else(|| multicast_group(self.v6))]
        } else {
            self.cfg.unicast_peers.clone()
        }
    }

    /// Queues an advert at `priority` to every destination (see [`Instance::queue_advert_to`]).
    pub(super) fn queue_advert(&mut self, priority: u8, batch: &mut SendBatch) -> usize {
        let to = self.destinations();
        self.queue_advert_to(priority, &to, batch)
    }

    /// Queues an advert at `priority` to each of `to` (a step-down's notice goes to the
    /// winner alone); returns how many datagrams it pushed. A master sends the same bytes
    /// every interval, so each is encoded once and kept while its source, destination,
    /// priority and the advert's settings stay the same.
    pub(super) fn queue_advert_to(
        &mut self,
        priority: u8,
        to: &[IpAddr],
        batch: &mut SendBatch,
    ) -> usize {
        let mut queued = 0;
        for &dst in to {
            let src = self.src;
            // Unicast adverts may be routed (`unicast-ttl`); multicast ones never are.
            let ttl = if self.cfg.unicast_peers.is_empty() {
                255
            } else {
                self.cfg.unicast_ttl
            };
            let known = self
                .encoded
                .iter()
                .find(|e| e.src == src && e.dst == dst && e.priority == priority);
            if let Some(e) = known {
                batch.push(src, dst, ttl, &e.bytes);
                queued += 1;
                continue;
            }
            self.advert.priority = priority;
            self.buf.clear();
            let mut bytes = Vec::new();
            let built = self
                .advert
                .encode(src, dst, &mut self.buf)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    VrrpSocket::datagram(src, dst, ttl, &self.buf, &mut bytes)
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = built {
                warn!(parent: &self.span, "cannot encode advert: {e}");
                return queued;
            }
            batch.push(src, dst, ttl, &bytes);
            queued += 1;
            // Each destination at a few priorities (its own, a lowered one, 0): a handful.
            if self.encoded.len() > 3 * self.cfg.unicast_peers.len().max(1) {
                self.encoded.clear();
            }
            self.encoded.push(Encoded {
                src,
                dst,
                priority,
                bytes,
            });
        }
        queued
    }

    /// Counts what became of one queued advert; returns whether it reached at least one
    /// destination (an advert the kernel refuses everywhere is counted, and logged once per
    /// period).
    pub(super) fn advert_sent<'a>(
        &mut self,
        results: impl Iterator<Item = (IpAddr, &'a std::io::Result<()>)>,
    ) -> bool {
        let mut sent = false;
        for (dst, result) in results {
            match result {
                Ok(()) => {
                    self.stats.adverts_sent += 1;
                    sent = true;
                }
                Err(e) => {
                    if let Some(left_out) = self.log_limit.allow("advert not sent", Instant::now())
                    {
                        warn!(parent: &self.span, left_out,
                            "advert from {} to {dst} not sent: {e}", self.src);
                    }
                }
            }
        }
        if sent {
            self.unsent_in_a_row = 0;
        } else {
            self.unsent_in_a_row += 1;
            self.stats.adverts_unsent += 1;
        }
        sent
    }

    pub(super) fn count_drop(&mut self, reason: DropReason) {
        *self.stats.drops.entry(reason).or_default() += 1;
    }

    pub(super) fn status(&self, fsm: &Fsm) -> InstanceStatus {
        InstanceStatus {
            name: self.cfg.name.clone(),
            interface: self.cfg.interface.clone(),
            vrid: self.cfg.vrid,
            state: fsm.state(),
            priority: self.cfg.priority,
            effective_priority: fsm.priority(),
            master: fsm.master().map(|(ip, _)| ip.to_string()),
            vips_held: self.stats.vips_held,
            vips_restored: self.stats.vips_restored,
            held_back: fsm.held(),
            transitions: self.stats.transitions,
            last_transition: self.stats.last_transition.clone(),
            adverts_sent: self.stats.adverts_sent,
            adverts_unsent: self.stats.adverts_unsent,
            adverts_received: self.stats.adverts_received,
            drops: self
                .stats
                .drops
                .iter()
                .map(|(r, n)| (r.as_str(), *n))
                .collect(),
        }
    }
}

/// Advert interval in centiseconds, as both versions carry it on the wire (v2 as seconds × 100).
pub(super) fn interval_cs(d: Duration) -> u16 {
    u16::try_from(d.as_millis() / 10).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advert_leaves_out_vips_that_are_not_advertised() {
        let src = "instance \"w\" {\n    interface \"eth0\"\n    vrid 7\n    vip \"192.0.2.1/24\"\n    vip \"192.0.2.2/24\" advertise=#false\n    vip \"2001:db8::1/64\" advertise=#false\n    vip \"192.0.2.3/24\"\n}\n";
        let cfg = upkeep_config::parse_str(src, "t.kdl").expect("loads");
        let cfg = &cfg.instances[0];
        let ips = |s: &[&str]| -> Vec<IpAddr> { s.iter().map(|a| a.parse().unwrap()).collect() };
        let want = ips(&["192.0.2.1", "192.0.2.3"]);
        assert_eq!(advert(cfg).addrs, want);
        assert_eq!(expect(cfg).vips, want);
        let mut out = Vec::new();
        let src = IpAddr::from([192, 0, 2, 9]);
        let dst = multicast_group(false);
        advert(cfg).encode(src, dst, &mut out).expect("encodes");
        assert_eq!(out[3], 2, "two addresses on the wire");
        assert!(!cfg.is_ipv6());
    }
}
