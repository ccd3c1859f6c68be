//! Applies VIP and route changes from the event loop, in order, as netlink batches: the changes
//! one pass of the loop produces go to the kernel in a single `sendmsg`, which the kernel has
//! applied when it returns (a takeover of 255 instances is one call). Synchronous on purpose: the
//! address must be up before the gratuitous ARP that sends clients to it (an ARP ahead of the
//! address makes clients send to a host that drops their packets), and a thread in between would
//! add its wake-up to every takeover. keepalived does the same.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use tracing::{info, warn};

use super::guard::Guard;
use crate::net::firewall::Firewall;
use crate::net::netlink::{AddrOptions, NextHop, Route, Rule};
use crate::net::netlink_batch::{BatchSocket, NetlinkChange};

/// Everything an instance puts on the host while master, resolved to interface indexes.
#[derive(Debug, Clone)]
pub(super) struct Owned {
    pub instance: String,
    /// (interface index, address, prefix length, options).
    pub addrs: Vec<(u32, IpAddr, u8, AddrOptions)>,
    pub routes: Vec<(u32, Route)>,
    pub rules: Vec<Rule>,
}

impl Owned {
    /// What `self` holds that `other` does not (a reload's additions, or its removals the
    /// other way round), under `self`'s instance name.
    pub(super) fn without(&self, other: &Owned) -> Owned {
        fn only<T: PartialEq + Clone>(mine: &[T], theirs: &[T]) -> Vec<T> {
            mine.iter()
                .filter(|x| !theirs.contains(x))
                .cloned()
                .collect()
        }
        Owned {
            instance: self.instance.clone(),
            addrs: only(&self.addrs, &other.addrs),
            routes: only(&self.routes, &other.routes),
            rules: only(&self.rules, &other.rules),
        }
    }

    /// Addresses first: a route via the VIP's subnet needs the address.
    fn adds(&self, out: &mut Vec<NetlinkChange>) {
        for (index, addr, prefix_len, opts) in &self.addrs {
            out.push(NetlinkChange::AddAddress {
                index: *index,
                addr: *addr,
                prefix_len: *prefix_len,
                opts: opts.clone(),
            });
        }
        for (index, route) in &self.routes {
            out.push(NetlinkChange::AddRoute {
                index: *index,
                route: route.clone(),
            });
        }
        // Rules last: one sending traffic to a table finds its routes there.
        for rule in &self.rules {
            out.push(NetlinkChange::AddRule { rule: rule.clone() });
        }
    }

    /// Rules, then routes, then addresses: the reverse of [`Owned::adds`].
    fn removes(&self, out: &mut Vec<NetlinkChange>) {
        for rule in &self.rules {
            out.push(NetlinkChange::DelRule { rule: rule.clone() });
        }
        for (index, route) in &self.routes {
            out.push(NetlinkChange::DelRoute {
                index: *index,
                route: route.clone(),
            });
        }
        for (index, addr, prefix_len, opts) in &self.addrs {
            out.push(NetlinkChange::DelAddress {
                index: *index,
                addr: *addr,
                prefix_len: *prefix_len,
                opts: opts.clone(),
            });
        }
    }
}

/// The driver's route for a configured one (the drivers take no config types).
impl From<&upkeep_config::Route> for Route {
    fn from(r: &upkeep_config::Route) -> Self {
        Route {
            dest: r.dest,
            prefix_len: r.prefix_len,
            via: r.via,
            dev: r.dev.clone(),
            metric: r.metric,
            table: r.table,
            src: r.src,
            scope: r.scope,
            kind: match r.kind {
                upkeep_config::RouteKind::Unicast => crate::net::netlink::ROUTE_UNICAST,
                upkeep_config::RouteKind::Blackhole => 6,
                upkeep_config::RouteKind::Unreachable => 7,
                upkeep_config::RouteKind::Prohibit => 8,
                upkeep_config::RouteKind::Throw => 9,
            },
            onlink: r.onlink,
            // Interfaces are resolved by the wiring, which knows them.
            nexthops: r
                .nexthops
                .iter()
                .map(|h| NextHop {
                    via: h.via,
                    index: 0,
                    weight: h.weight,
                })
                .collect(),
        }
    }
}

/// The driver's options for a configured VIP's.
impl From<&upkeep_config::VipOptions> for AddrOptions {
    fn from(o: &upkeep_config::VipOptions) -> Self {
        AddrOptions {
            label: o.label.clone(),
            scope: o.scope,
            broadcast: o.broadcast,
            dad: o.dad,
            preferred_lft: o.preferred_lft,
        }
    }
}

/// The driver's rule for a configured one.
impl From<&upkeep_config::Rule> for Rule {
    fn from(r: &upkeep_config::Rule) -> Self {
        use upkeep_config::RuleAction as A;
        let (table, action) = match r.action {
            A::Table(t) => (Some(t), 1),
            A::Blackhole => (None, 6),
            A::Unreachable => (None, 7),
            A::Prohibit => (None, 8),
        };
        Rule {
            v6: r.v6,
            from: r.from,
            to: r.to,
            iif: r.iif.clone(),
            oif: r.oif.clone(),
            fwmark: r.fwmark,
            fwmask: r.fwmask,
            priority: r.priority,
            table,
            action,
        }
    }
}

/// Changes queued by the event loop until its next [`VipWriter::flush`].
pub(super) struct VipWriter {
    sock: BatchSocket,
    /// Removes what is held if the daemon dies without doing so (None: it could not start).
    guard: Option<Guard>,
    changes: Vec<NetlinkChange>,
    /// The instance each change is for (same index), for the log.
    owners: Vec<Arc<str>>,
    /// The nftables table for VIPs whose traffic is dropped (Accept_Mode false); made when
    /// first needed.
    firewall: Option<Firewall>,
    /// What the drop sets hold, and what they should hold after the next flush.
    dropped: BTreeSet<IpAddr>,
    drop_wanted: BTreeSet<IpAddr>,
    /// The wanted set nft last failed on: not tried again (every pass of the loop flushes)
    /// until it changes.
    drop_failed: Option<BTreeSet<IpAddr>>,
}

impl VipWriter {
    pub(super) fn open() -> std::io::Result<Self> {
        let guard = Guard::spawn()
            .inspect_err(|e| {
                warn!(
                    "cannot start the VIP guard ({e}): if this daemon is killed, its VIPs stay \
                     on the host until it is restarted"
                )
            })
            .ok();
        Ok(VipWriter {
            sock: BatchSocket::open()?,
            guard,
            changes: Vec::new(),
            owners: Vec::new(),
            firewall: None,
            dropped: BTreeSet::new(),
            drop_wanted: BTreeSet::new(),
            drop_failed: None,
        })
    }

    /// Makes the nftables table now (at start-up, when an instance will need it): a host
    /// without nftables is then an error before the first election, not a warning after it.
    /// It also replaces a table a killed daemon left.
    pub(super) fn open_firewall(&mut self) -> std::io::Result<()> {
        if self.firewall.is_none() {
            self.firewall = Some(Firewall::create()?);
            self.dropped.clear();
            if let Some(g) = &mut self.guard {
                g.firewall(true);
            }
        }
        Ok(())
    }

    /// The VIPs whose traffic is to be dropped from the next [`VipWriter::flush`] on.
    pub(super) fn want_dropped(&mut self, addrs: BTreeSet<IpAddr>) {
        self.drop_wanted = addrs;
    }

    /// Removes the nftables table, if it was made (the daemon is stopping).
    pub(super) fn close_firewall(&mut self) {
        if let Some(fw) = self.firewall.take() {
            if let Err(e) = fw.remove() {
                warn!("cannot remove the nftables table inet upkeep: {e}");
            }
            self.dropped.clear();
            if let Some(g) = &mut self.guard {
                g.firewall(false);
            }
        }
    }

    /// Brings the drop sets to `drop_wanted`: the additions (called before the netlink batch,
    /// so a VIP appears already guarded), or the removals (after it). What nft failed on is
    /// not tried again until the wanted set changes.
    fn sync_drops(&mut self, additions: bool) {
        let (add, del): (Vec<IpAddr>, Vec<IpAddr>) = if additions {
            (
                self.drop_wanted
                    .difference(&self.dropped)
                    .copied()
                    .collect(),
                Vec::new(),
            )
        } else {
            (
                Vec::new(),
                self.dropped
                    .difference(&self.drop_wanted)
                    .copied()
                    .collect(),
            )
        };
        if add.is_empty() && del.is_empty() || self.drop_failed.as_ref() == Some(&self.drop_wanted)
        {
            return;
        }
        if self.firewall.is_none() {
            if let Err(e) = self.open_firewall() {
                warn!("cannot make the nftables table that drops traffic to VIPs (accept #false): {e}");
                self.drop_failed = Some(self.drop_wanted.clone());
                return;
            }
            info!("made the nftables table inet upkeep (accept #false)");
        }
        let Some(fw) = self.firewall.as_mut() else {
            return;
        };
        match fw.update(&add, &del) {
            Ok(()) => {
                self.dropped.extend(&add);
                for a in &del {
                    self.dropped.remove(a);
                }
                self.drop_failed = None;
            }
            Err(e) => {
                warn!(
                    "cannot update the nftables drop set (adding {add:?}, removing {del:?}): {e}"
                );
                self.drop_failed = Some(self.drop_wanted.clone());
                // Made afresh at the next try (the table may have been deleted by hand).
                self.firewall = None;
                self.dropped.clear();
            }
        }
    }

    pub(super) fn add(&mut self, o: &Owned) {
        o.adds(&mut self.changes);
        self.own(o);
    }

    pub(super) fn remove(&mut self, o: &Owned) {
        o.removes(&mut self.changes);
        self.own(o);
    }

    fn own(&mut self, o: &Owned) {
        let who: Arc<str> = Arc::from(o.instance.as_str());
        self.owners.resize(self.changes.len(), who);
    }

    /// Applies everything queued, in order, in one batch; failures are logged.
    /// Tells the guard the speakers and announcements (withdrawn if the daemon dies).
    pub(super) fn guard_speakers(&mut self, speakers: Vec<crate::announce::GuardedSpeaker>) {
        if let Some(g) = &mut self.guard {
            g.speakers(speakers);
        }
    }

    pub(super) fn flush(&mut self) {
        self.sync_drops(true);
        if self.changes.is_empty() {
            self.sync_drops(false);
            return;
        }
        if let Some(g) = &mut self.guard {
            g.before(&self.changes);
        }
        let failed = self.sock.apply(&self.changes);
        for (i, e) in &failed {
            warn!(instance = %self.owners[*i], "{}: {e}", self.changes[*i]);
        }
        if let Some(g) = &mut self.guard {
            // A removal that failed left the address on the host: still held.
            let done: Vec<NetlinkChange> = (0..self.changes.len())
                .filter(|i| !failed.iter().any(|(f, _)| f == i))
                .map(|i| self.changes[i].clone())
                .collect();
            g.after(&done);
        }
        self.changes.clear();
        self.owners.clear();
        self.sync_drops(false);
    }
}
