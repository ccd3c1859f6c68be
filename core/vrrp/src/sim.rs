//! A simulated LAN of VRRP routers on a simulated clock, for tests of the state machine.
//!
//! Each router is an [`Fsm`]; adverts are delivered to every other live, connected router after
//! a fixed latency. Nothing here touches a socket or the real clock, so whole elections run in
//! microseconds and deterministically. [`HostLan`] is the same LAN of hosts that each run a
//! [`Node`] of several instances (instance `k` of every host is one virtual router).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::fsm::{Action, Event, Fsm, Heard, Params, Reason, State};
use super::node::Node;
use super::packet::Version;

pub(crate) struct Router {
    pub fsm: Fsm,
    pub holds_vips: bool,
    /// Down routers neither send nor receive (crash, cable pulled).
    pub up: bool,
    /// Routers in different segments do not hear each other (partition).
    pub segment: u8,
    pub sent: Vec<(Instant, u8)>,
    pub transitions: Vec<(Instant, State, State)>,
    /// When this router sent gratuitous ARP / NA: clients follow the last one on the LAN.
    pub announced: Vec<Instant>,
}

/// Decides, per advert and receiver, whether the LAN loses it: (from, to, heard) -> lost.
pub(crate) type Loss = Box<dyn FnMut(usize, usize, &Heard) -> bool>;

pub(crate) struct Lan {
    pub now: Instant,
    pub start: Instant,
    pub routers: Vec<Router>,
    pub latency: Duration,
    /// In flight: (deliver at, sequence, to, heard).
    queue: BTreeMap<(Instant, u64), (usize, Heard)>,
    seq: u64,
    /// Adverts lost on the way (none unless a test sets it).
    pub loss: Option<Loss>,
}

pub(crate) fn params(version: Version, interval: Duration, index: usize) -> Params {
    Params {
        version,
        advert_interval: interval,
        preempt: true,
        preempt_delay: Duration::ZERO,
        initial_master: false,
        primary_ip: addr(index),
        fast_preempt: true,
        handover: true,
        handover_when_sick: true,
        master_down_adverts: 3,
        lower_prio_no_advert: false,
        higher_prio_send_advert: false,
    }
}

pub(crate) fn addr(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, index as u8 + 1))
}

impl Lan {
    pub(crate) fn new(routers: Vec<(Params, u8)>) -> Self {
        let start = Instant::now();
        Self {
            now: start,
            start,
            routers: routers
                .into_iter()
                .map(|(p, prio)| Router {
                    fsm: Fsm::new(p, prio),
                    holds_vips: false,
                    up: true,
                    segment: 0,
                    sent: Vec::new(),
                    transitions: Vec::new(),
                    announced: Vec::new(),
                })
                .collect(),
            latency: Duration::from_millis(1),
            queue: BTreeMap::new(),
            seq: 0,
            loss: None,
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub(crate) fn event(&mut self, i: usize, event: Event) {
        let actions = self.routers[i].fsm.handle(event, self.now);
        self.apply(i, actions);
    }

    pub(crate) fn start_all(&mut self) {
        for i in 0..self.routers.len() {
            self.event(i, Event::Startup);
        }
    }

    fn apply(&mut self, i: usize, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::SendAdvert { priority } => self.send(i, priority, None),
                Action::TellWinner { to, priority } => self.send(i, priority, Some(to)),
                Action::AddVips => self.routers[i].holds_vips = true,
                Action::RemoveVips => self.routers[i].holds_vips = false,
                Action::Announce | Action::Reannounce => self.routers[i].announced.push(self.now),
                Action::Transition { from, to, .. } => {
                    self.routers[i].transitions.push((self.now, from, to))
                }
            }
        }
    }

    /// An advert from router i to every other in its segment, or to the one at `to`.
    fn send(&mut self, i: usize, priority: u8, to: Option<IpAddr>) {
        let r = &mut self.routers[i];
        r.sent.push((self.now, priority));
        if !r.up {
            return;
        }
        let heard = Heard {
            from: r.fsm.params().primary_ip,
            priority,
            interval: r.fsm.params().advert_interval,
        };
        let segment = r.segment;
        for j in 0..self.routers.len() {
            let other = &self.routers[j];
            if j == i || other.segment != segment {
                continue;
            }
            if to.is_some_and(|to| other.fsm.params().primary_ip != to) {
                continue;
            }
            if self.loss.as_mut().is_some_and(|lost| lost(i, j, &heard)) {
                continue;
            }
            self.seq += 1;
            self.queue
                .insert((self.now + self.latency, self.seq), (j, heard));
        }
    }

    /// Advance the clock to `until`, delivering packets and timeouts in time order.
    pub(crate) fn run_until(&mut self, until: Instant) {
        loop {
            let next_packet = self.queue.keys().next().map(|k| k.0);
            let next_timer = self
                .routers
                .iter()
                .enumerate()
                .filter(|(_, r)| r.up)
                .filter_map(|(i, r)| r.fsm.poll_timeout().map(|t| (t, i)))
                .min();
            let packet_first = match (next_packet, next_timer) {
                (Some(p), Some((t, _))) => p <= t,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if packet_first {
                let Some((key, (to, heard))) = self.queue.pop_first() else {
                    break;
                };
                if key.0 > until {
                    self.queue.insert(key, (to, heard));
                    break;
                }
                self.now = key.0;
                if self.routers[to].up {
                    self.event(to, Event::Advert(heard));
                }
            } else if let Some((t, i)) = next_timer {
                if t > until {
                    break;
                }
                self.now = self.now.max(t);
                self.event(i, Event::Timeout);
            }
        }
        self.now = until;
    }

    pub(crate) fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    pub(crate) fn holders(&self) -> Vec<usize> {
        (0..self.routers.len())
            .filter(|&i| self.routers[i].holds_vips)
            .collect()
    }

    pub(crate) fn masters(&self) -> Vec<usize> {
        (0..self.routers.len())
            .filter(|&i| self.routers[i].fsm.state() == State::Master)
            .collect()
    }

    /// Crash: the router stops sending and hearing, state frozen (its VIPs vanish with it).
    pub(crate) fn crash(&mut self, i: usize) {
        self.routers[i].up = false;
        self.routers[i].holds_vips = false;
    }
}

/// A host of a [`HostLan`]: a node of several instances.
pub(crate) struct Host {
    pub node: Node,
    pub holds_vips: Vec<bool>,
    /// A down host neither sends nor receives, its state frozen (crash).
    pub up: bool,
    /// (when, instance, priority)
    pub sent: Vec<(Instant, usize, u8)>,
    /// (when, instance, from, to, reason)
    pub transitions: Vec<(Instant, usize, State, State, Reason)>,
}

/// Hosts running a [`Node`] each; an advert of host `h`'s instance `k` reaches instance `k` of
/// every other live host after `latency`.
pub(crate) struct HostLan {
    pub now: Instant,
    pub hosts: Vec<Host>,
    pub latency: Duration,
    /// In flight: (deliver at, sequence) -> (to host, instance, heard).
    queue: BTreeMap<(Instant, u64), (usize, usize, Heard)>,
    seq: u64,
    /// Called after each input a host's node has run to the end (an invariant to hold).
    pub after_each: Option<fn(&HostLan, usize)>,
}

impl HostLan {
    /// `hosts[h]`: host `h`'s instances as (params, base priority), all links up.
    pub(crate) fn new(hosts: Vec<Vec<(Params, u8)>>) -> Self {
        Self {
            now: Instant::now(),
            hosts: hosts
                .into_iter()
                .map(|instances| {
                    let mut node = Node::new();
                    let n = instances.len();
                    for (p, prio) in instances {
                        node.add(p, prio, true);
                    }
                    Host {
                        node,
                        holds_vips: vec![false; n],
                        up: true,
                        sent: Vec::new(),
                        transitions: Vec::new(),
                    }
                })
                .collect(),
            latency: Duration::from_millis(1),
            queue: BTreeMap::new(),
            seq: 0,
            after_each: None,
        }
    }

    /// Something happens to host `h`'s node (a check, a link, a command); it then runs.
    pub(crate) fn input(&mut self, h: usize, f: impl FnOnce(&mut Node)) {
        f(&mut self.hosts[h].node);
        while let Some((i, action)) = self.hosts[h].node.poll(self.now) {
            self.apply(h, i, action);
        }
        if let Some(check) = self.after_each {
            check(self, h);
        }
    }

    pub(crate) fn start_all(&mut self) {
        for h in 0..self.hosts.len() {
            self.input(h, |n| n.start(0..n.len()));
        }
    }

    fn apply(&mut self, h: usize, i: usize, action: Action) {
        let now = self.now;
        let host = &mut self.hosts[h];
        match action {
            Action::SendAdvert { priority } => self.send(h, i, priority, None),
            Action::TellWinner { to, priority } => self.send(h, i, priority, Some(to)),
            Action::AddVips => host.holds_vips[i] = true,
            Action::RemoveVips => host.holds_vips[i] = false,
            Action::Announce | Action::Reannounce => {}
            Action::Transition { from, to, reason } => {
                host.transitions.push((now, i, from, to, reason))
            }
        }
    }

    /// Instance i of host h sends an advert to that instance on every other host, or on the
    /// one whose address is `to`.
    fn send(&mut self, h: usize, i: usize, priority: u8, to: Option<IpAddr>) {
        let now = self.now;
        let host = &mut self.hosts[h];
        host.sent.push((now, i, priority));
        if !host.up {
            return;
        }
        let params = host.node.fsm(i).params();
        let heard = Heard {
            from: params.primary_ip,
            priority,
            interval: params.advert_interval,
        };
        for other in 0..self.hosts.len() {
            let node = &self.hosts[other].node;
            if other == h || i >= node.len() {
                continue;
            }
            if to.is_some_and(|to| node.fsm(i).params().primary_ip != to) {
                continue;
            }
            self.seq += 1;
            self.queue
                .insert((now + self.latency, self.seq), (other, i, heard));
        }
    }

    /// Advance the clock to `until`, delivering packets and timeouts in time order.
    pub(crate) fn run_until(&mut self, until: Instant) {
        loop {
            let next_packet = self.queue.keys().next().map(|k| k.0);
            let next_timer = self
                .hosts
                .iter()
                .enumerate()
                .filter(|(_, host)| host.up)
                .filter_map(|(h, host)| host.node.poll_timeout().map(|t| (t, h)))
                .min();
            let at = match (next_packet, next_timer) {
                (Some(p), Some((t, _))) => p.min(t),
                (Some(p), None) => p,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if at > until {
                break;
            }
            self.now = self.now.max(at);
            if next_packet == Some(at) {
                let Some((_, (to, i, heard))) = self.queue.pop_first() else {
                    break;
                };
                if self.hosts[to].up {
                    self.input(to, |n| n.advert(i, heard));
                }
            } else if let Some((_, h)) = next_timer {
                let now = self.now;
                self.input(h, |n| n.timeout(now));
            }
        }
        self.now = until;
    }

    pub(crate) fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    pub(crate) fn state(&self, h: usize, i: usize) -> State {
        self.hosts[h].node.fsm(i).state()
    }

    /// The states of host `h`'s instances.
    pub(crate) fn states(&self, h: usize) -> Vec<State> {
        self.hosts[h].node.fsms().map(Fsm::state).collect()
    }

    /// The hosts where instance `i` is master.
    pub(crate) fn masters(&self, i: usize) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|&h| self.hosts[h].up && self.state(h, i) == State::Master)
            .collect()
    }

    pub(crate) fn transition_count(&self) -> usize {
        self.hosts.iter().map(|h| h.transitions.len()).sum()
    }

    /// Crash: the host stops sending and hearing, state frozen (its VIPs vanish with it).
    pub(crate) fn crash(&mut self, h: usize) {
        self.hosts[h].up = false;
        self.hosts[h].holds_vips.fill(false);
    }
}
