//! The rules above one state machine: a host's virtual routers (instances) together, as
//! quinn-proto's `Endpoint` holds its `Connection`s.
//!
//! A [`Node`] owns each instance's [`Fsm`] and what feeds it beyond the wire: tracked checks
//! and their weights (keepalived's rules) give its effective priority; link down or a fatal
//! check is its fault, and a sync-group member's fault is every member's; a member's own move
//! to MASTER or BACKUP drags the rest of its group along. Sans-IO like the state machine: the
//! driver records what it learnt (a check's state, a link, the config's tracks and groups),
//! calls [`Node::start`] or [`Node::refresh`] to derive the events, queues adverts, timeouts
//! and operator commands, and carries out what [`Node::poll`] returns, in order.
//!
//! Instances are numbered by position, as the driver keeps its own per-instance data (sockets,
//! addresses) in a parallel list: [`Node::add`] appends, [`Node::drop_retired`] removes.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use super::fsm::{Action, Event, Fsm, Heard, Params, Reason, State};

/// One tracked check of an instance and its weight (keepalived's `weight`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// The check's name, as given to [`Node::set_check`].
    pub check: String,
    pub weight: i32,
}

/// What the node knows of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    /// A check that passes or fails (after its rise/fall counting).
    Healthy(bool),
    /// A file tracker: the integer the file holds (its pass/fail plays no part).
    Value(i64),
}

/// What one tracked check does to an instance's priority now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Add this to the priority.
    Priority(i32),
    /// Put the instance in FAULT.
    Fault,
}

/// keepalived's rules for a tracked check of this `weight`: a failing check with weight 0 is
/// FAULT; a negative weight counts while failing, a positive one while healthy.
fn check_effect(state: Option<CheckState>, weight: i32) -> Effect {
    match (state, weight) {
        // A check the config no longer has counts for nothing.
        (None, _) => Effect::Priority(0),
        (Some(CheckState::Value(v)), w) => file_effect(v, w),
        (Some(CheckState::Healthy(false)), 0) => Effect::Fault,
        (Some(CheckState::Healthy(false)), w) if w < 0 => Effect::Priority(w),
        (Some(CheckState::Healthy(true)), w) if w > 0 => Effect::Priority(w),
        _ => Effect::Priority(0),
    }
}

/// keepalived's rule for file trackers: with weight 0, a non-zero value is a failure (FAULT);
/// otherwise value × weight is added to the priority, and a result below -253 is FAULT. Above
/// 253 is capped.
fn file_effect(value: i64, weight: i32) -> Effect {
    if weight == 0 {
        return if value == 0 {
            Effect::Priority(0)
        } else {
            Effect::Fault
        };
    }
    let delta = value.saturating_mul(i64::from(weight));
    if delta < -253 {
        Effect::Fault
    } else {
        Effect::Priority(delta.min(253) as i32)
    }
}

/// The event a member's transition sends the rest of its sync group, if any: its own move to
/// MASTER or from MASTER to BACKUP (not one the group caused: no recursion), and not a
/// handover that found no successor (it never stopped being master).
fn group_event(from: State, to: State, reason: Reason) -> Option<Event> {
    match (from, to, reason) {
        (State::Handover, State::Master, _) => None,
        (_, State::Master, r) if r != Reason::GroupMaster => Some(Event::GroupMaster),
        (State::Master, State::Backup, r) if r != Reason::GroupBackup => Some(Event::GroupBackup),
        _ => None,
    }
}

#[derive(Debug)]
struct Member {
    fsm: Fsm,
    /// The configured priority, before tracked weights.
    base: u8,
    tracks: Vec<Track>,
    /// The other members of its sync group.
    peers: Vec<usize>,
    /// Causes of FAULT of its own (its group's are added in [`Node::refresh_faults`]).
    link_up: bool,
    check_fault: bool,
    /// The fault value last fed to the state machine.
    fault_fed: bool,
    /// Removed from the config: resigning, dropped once back in Initialize.
    retiring: bool,
    /// [`Node::start`] was called for it.
    started: bool,
}

/// A host's VRRP instances and the rules between them and their checks.
#[derive(Debug, Default)]
pub struct Node {
    members: Vec<Member>,
    checks: HashMap<String, CheckState>,
    /// Events not yet fed to their state machine, in order.
    queue: VecDeque<(usize, Event)>,
    /// Actions of an event already handled, not yet returned by [`Node::poll`].
    actions: VecDeque<(usize, Action)>,
    stopping: bool,
}

impl Node {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new instance at the end, not started (see [`Node::start`]); returns its index.
    pub fn add(&mut self, params: Params, priority: u8, link_up: bool) -> usize {
        self.members.push(Member {
            fsm: Fsm::new(params, priority),
            base: priority,
            tracks: Vec::new(),
            peers: Vec::new(),
            link_up,
            check_fault: false,
            fault_fed: false,
            retiring: false,
            started: false,
        });
        self.members.len() - 1
    }

    /// New settings of instance `i` (a reload), keeping its protocol state; the new priority
    /// takes effect at the next [`Node::refresh`].
    pub fn reconfigure(&mut self, i: usize, params: Params, priority: u8) {
        let m = &mut self.members[i];
        m.fsm.set_params(params);
        m.fsm.set_base_priority(priority);
        m.base = priority;
    }

    /// Instance `i` left the config: it resigns, leaves its sync group, and is dropped by
    /// [`Node::drop_retired`] once stopped.
    pub fn retire(&mut self, i: usize) {
        self.members[i].retiring = true;
        self.members[i].peers.clear();
        for m in &mut self.members {
            m.peers.retain(|&j| j != i);
        }
        self.queue.push_back((i, Event::Shutdown));
    }

    /// Removes retired instances that have stopped; returns their indexes (ascending) as they
    /// were, so the driver drops the same entries. Later instances move down.
    pub fn drop_retired(&mut self) -> Vec<usize> {
        let gone: Vec<usize> = (0..self.members.len())
            .filter(|&i| {
                self.members[i].retiring && self.members[i].fsm.state() == State::Initialize
            })
            .collect();
        if gone.is_empty() {
            return gone;
        }
        let mut index = 0;
        self.members.retain(|_| {
            index += 1;
            !gone.contains(&(index - 1))
        });
        let moved = |j: usize| j - gone.iter().filter(|&&g| g < j).count();
        for m in &mut self.members {
            m.peers.retain(|j| !gone.contains(j));
            for j in &mut m.peers {
                *j = moved(*j);
            }
        }
        // Normally empty here (the driver polls first); whatever is left follows its instance.
        self.queue.retain(|(j, _)| !gone.contains(j));
        for (j, _) in &mut self.queue {
            *j = moved(*j);
        }
        self.actions.retain(|(j, _)| !gone.contains(j));
        for (j, _) in &mut self.actions {
            *j = moved(*j);
        }
        gone
    }

    /// The checks instance `i` tracks, with their weights.
    pub fn set_tracks(&mut self, i: usize, tracks: Vec<Track>) {
        self.members[i].tracks = tracks;
    }

    /// The sync groups, each its members in config order (an instance is in one group at
    /// most). Retiring instances are in none.
    pub fn set_groups(&mut self, groups: &[Vec<usize>]) {
        for m in &mut self.members {
            m.peers.clear();
        }
        for group in groups {
            for &i in group {
                if self.members[i].retiring {
                    continue;
                }
                let peers = group
                    .iter()
                    .copied()
                    .filter(|&j| j != i && !self.members[j].retiring)
                    .collect();
                self.members[i].peers = peers;
            }
        }
        for m in &mut self.members {
            let grouped = !m.peers.is_empty();
            m.fsm.set_grouped(grouped);
        }
    }

    /// Records a check's state; true if it changed (then [`Node::refresh`]).
    pub fn set_check(&mut self, name: &str, state: CheckState) -> bool {
        self.checks.insert(name.to_owned(), state) != Some(state)
    }

    /// Forgets a check (removed or replaced by a reload): it counts for nothing.
    pub fn remove_check(&mut self, name: &str) {
        self.checks.remove(name);
    }

    /// Records instance `i`'s link state; true if it changed (then [`Node::refresh`]).
    pub fn set_link(&mut self, i: usize, up: bool) -> bool {
        let changed = self.members[i].link_up != up;
        self.members[i].link_up = up;
        changed
    }

    /// Starts these instances, with the priority and fault their checks give them now.
    pub fn start(&mut self, instances: impl IntoIterator<Item = usize>) {
        for i in instances {
            self.members[i].started = true;
            self.queue.push_back((i, Event::Startup));
            let p = self.effective_priority(i);
            if p != self.members[i].base {
                self.queue.push_back((i, Event::Priority(p)));
            }
            self.members[i].check_fault = self.fatal_check_failing(i);
        }
        // Once for all started (once per instance would be quadratic in hundreds of them).
        self.refresh_faults();
    }

    /// Re-derives every instance's effective priority and fault after checks, links, tracks,
    /// groups or priorities changed.
    pub fn refresh(&mut self) {
        for i in 0..self.members.len() {
            let p = self.effective_priority(i);
            if p != self.members[i].fsm.priority() {
                self.queue.push_back((i, Event::Priority(p)));
            }
            self.members[i].check_fault = self.fatal_check_failing(i);
        }
        self.refresh_faults();
    }

    /// An accepted advert for instance `i`.
    pub fn advert(&mut self, i: usize, heard: Heard) {
        self.queue.push_back((i, Event::Advert(heard)));
    }

    /// The driver could not send instance `i`'s last adverts (see [`Event::AdvertsUnsent`]).
    pub fn adverts_unsent(&mut self, i: usize) {
        self.queue.push_back((i, Event::AdvertsUnsent));
    }

    /// Every instance whose deadline (see [`Node::poll_timeout`]) has come.
    pub fn timeout(&mut self, now: Instant) {
        for (i, m) in self.members.iter().enumerate() {
            if m.fsm.poll_timeout().is_some_and(|t| t <= now) {
                self.queue.push_back((i, Event::Timeout));
            }
        }
    }

    /// An operator's handover of instance `i` and the rest of its sync group (a group moves as
    /// one); returns them, `i` first.
    pub fn hand_over(&mut self, i: usize) -> Vec<usize> {
        self.queue_for_group(i, Event::HandOver)
    }

    /// Lifts [`Node::hand_over`]'s hold on instance `i` and its sync group; returns them.
    pub fn release(&mut self, i: usize) -> Vec<usize> {
        self.queue_for_group(i, Event::Release)
    }

    fn queue_for_group(&mut self, i: usize, event: Event) -> Vec<usize> {
        let mut members = vec![i];
        members.extend(self.members[i].peers.iter().copied());
        for &j in &members {
            self.queue.push_back((j, event));
        }
        members
    }

    /// Every instance resigns and stops; faults are no longer fed.
    pub fn stop(&mut self) {
        self.stopping = true;
        for i in 0..self.members.len() {
            self.queue.push_back((i, Event::Shutdown));
        }
    }

    /// Stop without waiting for successors (a second signal): the driver has removed the
    /// addresses itself.
    pub fn stop_now(&mut self) {
        self.stopping = true;
        for i in 0..self.members.len() {
            self.queue.push_back((i, Event::Fault(true)));
            self.queue.push_back((i, Event::Shutdown));
        }
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// Stopping, and every instance has stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopping && self.fsms().all(|f| f.state() == State::Initialize)
    }

    /// The next action for the driver to carry out, running queued events through the state
    /// machines (and the sync groups' events those cause) until one has an action; None when
    /// nothing is left to do.
    pub fn poll(&mut self, now: Instant) -> Option<(usize, Action)> {
        loop {
            if let Some(next) = self.actions.pop_front() {
                return Some(next);
            }
            let (i, event) = self.queue.pop_front()?;
            for action in self.members[i].fsm.handle(event, now) {
                if let Action::Transition { from, to, reason } = action {
                    if let Some(ev) = group_event(from, to, reason) {
                        for &j in &self.members[i].peers {
                            self.queue.push_back((j, ev));
                        }
                    }
                }
                self.actions.push_back((i, action));
            }
        }
    }

    /// The earliest instant at which [`Node::timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.fsms().filter_map(Fsm::poll_timeout).min()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn fsm(&self, i: usize) -> &Fsm {
        &self.members[i].fsm
    }

    pub fn fsms(&self) -> impl Iterator<Item = &Fsm> {
        self.members.iter().map(|m| &m.fsm)
    }

    pub fn is_retiring(&self, i: usize) -> bool {
        self.members[i].retiring
    }

    fn effect(&self, t: &Track) -> Effect {
        check_effect(self.checks.get(&t.check).copied(), t.weight)
    }

    /// Base priority plus the weights of tracked checks (keepalived's rules), kept in 1..=254
    /// unless nothing moved it (so an owner keeps 255).
    fn effective_priority(&self, i: usize) -> u8 {
        let m = &self.members[i];
        let delta: i32 = m
            .tracks
            .iter()
            .map(|t| match self.effect(t) {
                Effect::Priority(d) => d,
                Effect::Fault => 0,
            })
            .sum();
        if delta == 0 {
            return m.base;
        }
        (i32::from(m.base) + delta).clamp(1, 254) as u8
    }

    fn fatal_check_failing(&self, i: usize) -> bool {
        self.members[i]
            .tracks
            .iter()
            .any(|t| self.effect(t) == Effect::Fault)
    }

    /// Feeds each instance its fault state: its own causes or any sync-group member's.
    fn refresh_faults(&mut self) {
        if self.stopping {
            return;
        }
        let own: Vec<bool> = self
            .members
            .iter()
            .map(|m| !m.link_up || m.check_fault)
            .collect();
        for (i, m) in self.members.iter_mut().enumerate() {
            // Not started yet (the driver may hold the start back: `startup-delay`): its
            // fault is fed when it starts, so that a fault does not start it early.
            if m.retiring || !m.started {
                continue;
            }
            let fault = own[i] || m.peers.iter().any(|&j| own[j]);
            if fault != m.fault_fed {
                m.fault_fed = fault;
                self.queue.push_back((i, Event::Fault(fault)));
            }
        }
    }
}

#[cfg(test)]
mod tests;
