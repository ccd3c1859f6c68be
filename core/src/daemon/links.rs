//! Link events: an interface's state is its instances' fault and its interface checks' result,
//! and interfaces are followed by name. One deleted (or renamed) leaves its instances FAULT and
//! what was opened on it is dropped; one made again under the name (a VLAN or bond re-made, a
//! driver reload: a new index) gets its instances re-bound (VRRP socket and multicast group,
//! announcer, VIPs and routes on the new index), and they resume as after a link up.

use std::time::Duration;

use tracing::{info, warn};

use crate::checks::CheckResult;
use crate::net::netlink::{AddressAdded, LinkEvent};
use upkeep_config::CheckKind;

use super::wiring::interfaces_of;
use super::{all_vips, announce, instance, link_result, Daemon};

/// What a link event means for something that follows the interface `name`, now bound to
/// index `bound` (None while no interface of that name exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Followed {
    /// Another interface.
    Other,
    /// Its interface, now up (true) or down.
    State(bool),
    /// Its interface was deleted or renamed: none of that name exists now.
    Gone,
    /// An interface of its name appeared (new, or made again on a new index), up or down.
    Back(bool),
}

pub(super) fn follow(name: &str, bound: Option<u32>, ev: &LinkEvent) -> Followed {
    let named = ev.name == name;
    let ours = bound == Some(ev.index);
    // An event without a name (none seen from the kernel) is matched by index alone.
    let renamed = !ev.name.is_empty() && !named;
    if ours && (ev.gone || renamed) {
        Followed::Gone
    } else if ev.gone {
        Followed::Other
    } else if named && !ours {
        Followed::Back(ev.up)
    } else if ours {
        Followed::State(ev.up)
    } else {
        Followed::Other
    }
}

impl Daemon {
    pub(super) async fn on_link(&mut self, ev: LinkEvent) {
        self.wires.follow(&ev);
        let mut changed = false;
        let mut rewired = false;
        for i in 0..self.instances.len() {
            let inst = &mut self.instances[i];
            let bound = inst.bound.then_some(inst.ifindex);
            match follow(&inst.cfg.interface, bound, &ev) {
                Followed::Other => {
                    let its_vmac = inst.cfg.vmac.as_ref().is_some_and(|v| v.name == ev.name);
                    if its_vmac && ev.gone {
                        rewired |= self.vmac_gone(i).await;
                    // One of its VIPs' or routes' interfaces, perhaps.
                    } else if interfaces_of(&inst.cfg).any(|n| *n == ev.name) && !ev.gone {
                        rewired |= self.follow_dev(i).await;
                    }
                }
                Followed::State(up) => {
                    if inst.src_pending {
                        self.find_source(i).await;
                    }
                    changed |= self.set_link(i, up);
                }
                Followed::Gone => {
                    inst.bound = false;
                    warn!(parent: &inst.span, interface = %inst.cfg.interface, index = ev.index,
                        "interface deleted or renamed: FAULT until one of that name is back");
                    changed |= self.set_link(i, false);
                }
                Followed::Back(up) => {
                    if self.rebind(i).await {
                        rewired = true;
                        changed |= self.set_link(i, up);
                    }
                }
            }
        }
        if rewired {
            self.rebuild_indexes();
        }
        if changed {
            self.node.refresh();
        }
        let mut results = Vec::new();
        for c in &mut self.checks {
            let CheckKind::Interface { name } = &c.def.kind else {
                continue;
            };
            match follow(name, c.ifindex, &ev) {
                Followed::Other => {}
                Followed::State(up) => results.push(link_result(c.id, up)),
                Followed::Back(up) => {
                    c.ifindex = Some(ev.index);
                    results.push(link_result(c.id, up));
                }
                Followed::Gone => {
                    c.ifindex = None;
                    results.push(CheckResult {
                        check: c.id,
                        ok: false,
                        message: "interface deleted or renamed".to_string(),
                        duration: Duration::ZERO,
                        value: None,
                    });
                }
            }
        }
        for res in results {
            self.on_check(res);
        }
    }

    /// An address was added: instances on that interface that are still without their source
    /// address (made again before it had one) look it up again.
    pub(super) async fn on_address_added(&mut self, ev: AddressAdded) {
        self.wires.address_added(ev.index);
        for i in 0..self.instances.len() {
            let inst = &self.instances[i];
            if inst.src_pending && inst.bound && inst.ifindex == ev.index {
                self.find_source(i).await;
            }
        }
    }

    /// Records instance `i`'s link state; true if it changed (then `node.refresh`).
    fn set_link(&mut self, i: usize, up: bool) -> bool {
        let changed = self.node.set_link(i, up);
        if changed {
            let inst = &self.instances[i];
            info!(parent: &inst.span, up, "interface {}", if up { "up" } else { "down" });
        }
        changed
    }

    /// Instance `i`'s interface is back under its name: open what it needs on the new index.
    /// False if that failed (it stays FAULT; its interface's next event tries again).
    async fn rebind(&mut self, i: usize) -> bool {
        let cfg = self.instances[i].cfg.clone();
        let old_src = self.instances[i].src;
        let vips = all_vips(&self.cfg);
        match self.wires.rewire(&cfg, &vips, old_src).await {
            Ok((io, found)) => {
                let inst = &mut self.instances[i];
                info!(parent: &inst.span, interface = %cfg.interface, index = io.ifindex,
                    source = %io.src, "interface made again: socket re-bound, VRRP group re-joined");
                if !found {
                    // The usual order: the link is made, then given its address.
                    info!(parent: &inst.span, source = %io.src,
                        "no address on the interface yet: sending from the one it had");
                }
                let new_src = io.src != old_src;
                inst.rebind(io, found);
                if new_src {
                    self.source_changed(i);
                }
                true
            }
            Err(e) => {
                let inst = &self.instances[i];
                warn!(parent: &inst.span, interface = %cfg.interface,
                    "interface is back but cannot be used: {e:#}; FAULT until its next change");
                false
            }
        }
    }

    /// Instance `i`'s virtual-MAC interface was deleted (by hand, say): make it again, and put
    /// the VIPs back on it if the instance is master. True if it was re-bound.
    async fn vmac_gone(&mut self, i: usize) -> bool {
        warn!(parent: &self.instances[i].span, "its virtual MAC interface was deleted: making it again");
        if !self.instances[i].bound || !self.rebind(i).await {
            return false;
        }
        let inst = &mut self.instances[i];
        if inst.stats.vips_held {
            self.vips.add(&inst.owned);
            self.vips.flush();
            announce(inst);
        }
        true
    }

    /// Looks up again the source address instance `i` did not find on its re-made interface.
    async fn find_source(&mut self, i: usize) {
        let cfg = self.instances[i].cfg.clone();
        let (index, old) = (self.instances[i].ifindex, self.instances[i].src);
        let vips = all_vips(&self.cfg);
        let (src, found) = self.wires.source_now(&cfg, index, &vips, old).await;
        if !found {
            return;
        }
        let inst = &mut self.instances[i];
        inst.src_pending = false;
        inst.src = src;
        if src != old {
            info!(parent: &inst.span, source = %src, "source address found on the re-made interface");
            self.source_changed(i);
        }
    }

    /// The state machine takes instance `i`'s new source address (its tie-breaker).
    fn source_changed(&mut self, i: usize) {
        let inst = &self.instances[i];
        let params = instance::params(&inst.cfg, &self.cfg.global, inst.src);
        self.node.reconfigure(i, params, inst.cfg.priority);
    }

    /// An interface that one of instance `i`'s VIPs or routes names changed: resolve them
    /// again (it may be back on a new index) and, if the instance holds them, put them there.
    /// An instance whose re-binding waited for this interface is re-bound. True if it was.
    async fn follow_dev(&mut self, i: usize) -> bool {
        if !self.instances[i].bound {
            let Some(link) = self.wires.known(&self.instances[i].cfg.interface) else {
                return false;
            };
            if !self.rebind(i).await {
                return false;
            }
            self.set_link(i, link.up);
            self.node.refresh();
            return true;
        }
        let cfg = self.instances[i].cfg.clone();
        let Ok(owned) = self.wires.owned(&cfg).await else {
            return false; // another of its interfaces is missing now: nothing to place
        };
        let inst = &mut self.instances[i];
        if owned.addrs == inst.owned.addrs
            && owned.routes == inst.owned.routes
            && owned.rules == inst.owned.rules
        {
            return false;
        }
        info!(parent: &inst.span, "an interface of its VIPs or routes was made again: following it");
        inst.owned = owned;
        if inst.stats.vips_held {
            self.vips.add(&inst.owned);
            self.vips.flush();
            announce(inst);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(index: u32, name: &str, up: bool, gone: bool) -> LinkEvent {
        LinkEvent {
            index,
            name: name.into(),
            mac: [2, 0, 0, 0, 0, 1],
            up,
            gone,
        }
    }

    #[test]
    fn its_own_interface_going_down_and_up_is_its_state() {
        assert_eq!(
            follow("vl7", Some(5), &ev(5, "vl7", false, false)),
            Followed::State(false)
        );
        assert_eq!(
            follow("vl7", Some(5), &ev(5, "vl7", true, false)),
            Followed::State(true)
        );
        // No name in the event: by index, as before.
        assert_eq!(
            follow("vl7", Some(5), &ev(5, "", true, false)),
            Followed::State(true)
        );
    }

    #[test]
    fn deleted_or_renamed_is_gone() {
        assert_eq!(
            follow("vl7", Some(5), &ev(5, "vl7", false, true)),
            Followed::Gone
        );
        assert_eq!(
            follow("vl7", Some(5), &ev(5, "", false, true)),
            Followed::Gone
        );
        assert_eq!(
            follow("vl7", Some(5), &ev(5, "old7", true, false)),
            Followed::Gone
        );
    }

    #[test]
    fn made_again_under_its_name_is_back_on_the_new_index() {
        // The usual case: deleted (unbound), then made again with a new index.
        assert_eq!(
            follow("vl7", None, &ev(9, "vl7", false, false)),
            Followed::Back(false)
        );
        // Made again on the same index (`ip link add ... index 5`): still back, once unbound.
        assert_eq!(
            follow("vl7", None, &ev(5, "vl7", true, false)),
            Followed::Back(true)
        );
        // Its deletion's event lost: a link of its name on another index is a new one.
        assert_eq!(
            follow("vl7", Some(5), &ev(9, "vl7", true, false)),
            Followed::Back(true)
        );
    }

    #[test]
    fn other_interfaces_are_not_followed() {
        assert_eq!(
            follow("vl7", Some(5), &ev(6, "eth1", true, false)),
            Followed::Other
        );
        assert_eq!(
            follow("vl7", Some(5), &ev(6, "eth1", false, true)),
            Followed::Other
        );
        // While it is gone, the old index's events (late) mean nothing.
        assert_eq!(
            follow("vl7", None, &ev(5, "vl7", false, true)),
            Followed::Other
        );
        assert_eq!(
            follow("vl7", None, &ev(7, "vl8", true, false)),
            Followed::Other
        );
    }
}
