//! The VRRP state machine of one virtual router (RFC 3768 §6.3–6.4, RFC 5798 §6.3–6.4).
//!
//! Sans-IO: it owns no socket, reads no clock and sets no timer. The driver feeds it events
//! with the current time, carries out the returned [`Action`]s in order, and calls
//! [`Fsm::handle`] with [`Event::Timeout`] once `now >= poll_timeout()`.
//!
//! Adverts reach it already validated (TTL, version, auth, interval: see `vrrp::receive`).
//!
//! Deviations from the RFCs, each a setting:
//! - `fast_preempt` (default on): a preempting backup that hears a master with a *lower*
//!   priority than its own takes over at once instead of discarding the advert and waiting
//!   out Master_Down_Interval; a master whose priority drops announces it at once. Equal
//!   priorities never preempt, so two routers can not flap on a tie.
//! - `handover` (default on): on shutdown a master announces priority 0 but keeps its VIPs
//!   until a new master is heard (or Skew_Time plus one interval passes), so clients see no gap
//!   (make-before-break). The RFC removes first and leaves a Skew_Time hole. An operator's
//!   planned handover ([`Event::HandOver`], `upkeep handover`) is the same make-before-break
//!   with the daemon still running: the instance stays a backup, held back from preempting
//!   until [`Event::Release`], and if no successor speaks it stays master (no gap either way).
//! - `handover_when_sick` (default on): a `nopreempt` master whose effective priority falls
//!   below its configured one (a failed check or tracker) hands over the same way, since its
//!   `nopreempt` backups would never take over from it. It hands over once per fall: if no
//!   successor speaks, or only one with a lower priority than its own (which it then takes the
//!   VIPs back from), it keeps serving, and tries again only when its priority falls further
//!   (or after recovering to its configured priority). So hosts that are all sick do not pass
//!   the VIPs around, and a recovered ex-master stays backup (`nopreempt` holds). Not for
//!   sync-group members (the node says which): a group would have to hand over as one.
//! - Skew_Time is not truncated to centiseconds in v3 (keepalived truncates: priorities 90 and
//!   91 then wait alike at 1 s), and it ends with a tie-break delay of half a priority step
//!   (1/512 of the skew's unit: 1 s in v2, Master_Adver_Interval in v3) for a primary address
//!   whose last byte is even, none for an odd one: equal-priority backups with consecutive
//!   addresses do not both take over (two takeovers, two rounds of gratuitous ARP); the odd
//!   one, so of the seed's .2 and .3 the higher, the RFC's tie-break winner, goes first, 1.95
//!   ms ahead at 1 s. Under one priority step (1/256), so priorities keep their order.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::packet::Version;

/// The configured behaviour of one virtual router.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub version: Version,
    /// Our own Advertisement_Interval.
    pub advert_interval: Duration,
    pub preempt: bool,
    /// Time a preempting backup tolerates a lower-priority master before taking over.
    pub preempt_delay: Duration,
    /// Wait only one interval (not three) for a master at startup (keepalived's `state MASTER`).
    pub initial_master: bool,
    /// Our primary address, used to break priority ties.
    pub primary_ip: IpAddr,
    pub fast_preempt: bool,
    pub handover: bool,
    /// A `nopreempt` master whose priority falls below its configured one hands over (see the
    /// module's deviations).
    pub handover_when_sick: bool,
    /// Master_Down_Interval counts this many of the master's intervals before Skew_Time: 3 in
    /// the RFCs; more tolerates that many lost adverts in a row minus one (lossy links), at the
    /// cost of a slower takeover when the master dies.
    pub master_down_adverts: u8,
    /// A master that hears a lower priority does not answer with an advert (the RFCs;
    /// keepalived's `lower_prio_no_advert`); it still re-announces ([`Action::Reannounce`]).
    pub lower_prio_no_advert: bool,
    /// A master that hears a higher priority sends one advert at its own priority to the
    /// winner before stepping down (keepalived's `higher_prio_send_advert`): a keepalived winner
    /// answers a lower priority by re-announcing the VIPs. Unicast, unlike keepalived's.
    pub higher_prio_send_advert: bool,
}

/// Longest a master waits for a successor when the daemon stops: below systemd's stop timeout
/// (TimeoutStopSec=15s in contrib/upkeep.service), so that it removes its VIPs itself instead
/// of being killed with them. Only long advert intervals (over about 5 s) reach it.
pub const SHUTDOWN_HANDOVER_MAX: Duration = Duration::from_secs(10);

/// A master answers lower-priority and priority-0 adverts (with its own advert, and a
/// re-announcement of the VIPs) at most this many in a row, then one per advert interval (the
/// advert) and one per [`ANSWER_ANNOUNCE_GAP`] (the announcement): a healing partition makes a
/// few routers speak at once, a forger any number.
pub const ANSWER_BURST: u32 = 3;

/// The sustained rate of re-announcements (GARP / NA rounds) in answer to such adverts: a
/// flood of them must not become a flood of ARP.
pub const ANSWER_ANNOUNCE_GAP: Duration = Duration::from_secs(1);

/// A master that steps down to a better one sends its priority-0 notice this many times more,
/// half an advert interval apart, to the winner alone ([`Action::TellWinner`]). The notice is
/// what makes the winner re-announce the VIPs to clients that our takeover's gratuitous ARP
/// moved: if the one notice is lost (and the winner missed our takeover advert too) nobody
/// else knows, and clients keep sending to us until their neighbour entry expires (8 s on
/// Linux). Unicast, because a multicast priority 0 starts every other backup's Skew_Time.
pub const RESIGN_REPEATS: u8 = 2;

/// RFC states, plus `Fault` (interface down or a fatal check) as keepalived has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum State {
    /// Where every router starts, and returns to when it stops.
    #[default]
    Initialize,
    Backup,
    Master,
    Fault,
    /// Handing over as master (shutdown or an operator's handover): priority 0 sent, VIPs
    /// kept until the successor speaks.
    Handover,
}

impl State {
    /// Every state, in declaration order (e.g. one metrics series each).
    pub const ALL: [State; 5] = [
        State::Initialize,
        State::Backup,
        State::Master,
        State::Fault,
        State::Handover,
    ];

    /// Stable lowercase name, used in status, metrics and logs. Do not rename.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initialize => "init",
            State::Backup => "backup",
            State::Master => "master",
            State::Fault => "fault",
            State::Handover => "handover",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An accepted advertisement, reduced to what the state machine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heard {
    pub from: IpAddr,
    pub priority: u8,
    /// The sender's advert interval (v3: Max Advert Interval; v2: equal to ours).
    pub interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Startup,
    Advert(Heard),
    /// The earliest deadline from `poll_timeout` has passed.
    Timeout,
    /// The effective priority (base plus tracked weights) changed.
    Priority(u8),
    /// Interface down or a weight-0 check failing (true), or all such causes gone (false).
    Fault(bool),
    /// Another member of our sync group became master / left master for its own reasons.
    GroupMaster,
    GroupBackup,
    Shutdown,
    /// An operator's planned handover: a master hands over to the best backup as on shutdown
    /// and becomes a backup; in any state the instance is then held back from preempting
    /// (it still takes over when no master is heard) until [`Event::Release`].
    HandOver,
    /// Lift the hold of [`Event::HandOver`]: preempt again as configured.
    Release,
    /// The driver could not send the last adverts (the kernel refused them: a firewall rule,
    /// a vanished source address). The backups hear nothing and take over; a master steps
    /// down rather than hold the VIPs beside them, and listens as a backup, held back from
    /// preempting until [`Event::Release`] (it still takes over when no master is heard).
    AdvertsUnsent,
}

/// Why a transition happened; logged and shown in status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Startup,
    AddressOwner,
    MasterDown,
    PriorityZeroHeard {
        from: IpAddr,
    },
    HigherPriority {
        from: IpAddr,
        priority: u8,
    },
    TieBreak {
        from: IpAddr,
    },
    Preempt {
        from: IpAddr,
        priority: u8,
    },
    Fault,
    FaultCleared,
    GroupMaster,
    GroupBackup,
    Shutdown,
    SuccessorHeard {
        from: IpAddr,
    },
    HandoverTimeout,
    /// An operator asked for a handover.
    HandoverAsked,
    /// A `nopreempt` master's priority fell below its configured one (to this).
    Sick {
        priority: u8,
    },
    /// The successor of a sick master's handover has a lower priority still: it keeps the VIPs.
    SuccessorSicker {
        from: IpAddr,
        priority: u8,
    },
    /// The master's adverts could not be sent.
    AdvertsUnsent,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => write!(f, "startup"),
            Reason::AddressOwner => write!(f, "address owner (priority 255)"),
            Reason::MasterDown => write!(f, "master down timer expired"),
            Reason::PriorityZeroHeard { from } => write!(f, "master {from} resigned (priority 0)"),
            Reason::HigherPriority { from, priority } => {
                write!(f, "higher priority {priority} from {from}")
            }
            Reason::TieBreak { from } => write!(f, "equal priority, higher address {from}"),
            Reason::Preempt { from, priority } => {
                write!(f, "preempting lower priority {priority} master {from}")
            }
            Reason::Fault => write!(f, "fault"),
            Reason::FaultCleared => write!(f, "fault cleared"),
            Reason::GroupMaster => write!(f, "sync group member became master"),
            Reason::GroupBackup => write!(f, "sync group member left master"),
            Reason::Shutdown => write!(f, "shutdown"),
            Reason::SuccessorHeard { from } => write!(f, "successor {from} took over"),
            Reason::HandoverTimeout => write!(f, "no successor heard"),
            Reason::HandoverAsked => write!(f, "handover asked for"),
            Reason::Sick { priority } => {
                write!(f, "priority fell to {priority}, below its configured one")
            }
            Reason::SuccessorSicker { from, priority } => {
                write!(
                    f,
                    "successor {from} has a lower priority still ({priority})"
                )
            }
            Reason::AdvertsUnsent => write!(f, "its adverts could not be sent"),
        }
    }
}

/// What the driver must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send an advertisement with this priority (0 to resign).
    SendAdvert {
        priority: u8,
    },
    /// Send an advertisement with this priority to this router alone (unicast): the repeats
    /// of the priority-0 notice a master sends when it steps down to `to` (see
    /// [`RESIGN_REPEATS`]), or its own priority first with `higher_prio_send_advert`.
    TellWinner {
        to: IpAddr,
        priority: u8,
    },
    /// Announce the VIPs (gratuitous ARP / unsolicited NA), as a new master must.
    Announce,
    /// Announce the VIPs again while master, in answer to a lower-priority or priority-0
    /// advert (clients may point at its sender): the driver's lower-priority round
    /// (keepalived's `garp_lower_prio_repeat` / `_delay`).
    Reannounce,
    /// Put the VIPs and routes on this host.
    AddVips,
    RemoveVips,
    Transition {
        from: State,
        to: State,
        reason: Reason,
    },
}

/// One virtual router's protocol state.
#[derive(Debug, Clone)]
pub struct Fsm {
    params: Params,
    state: State,
    priority: u8,
    /// The configured priority, before tracked weights: below it the instance is sick.
    base: u8,
    /// The priority at which a sick master last handed over (or tried to): it tries again only
    /// below it. Cleared once the priority is back at `base`.
    sick_tried: Option<u8>,
    /// The handover under way is a sick master's: a successor with a lower priority than ours
    /// gets the VIPs taken back.
    sick_handover: bool,
    /// A member of a sync group: no sick handover (the group would have to hand over, and take
    /// back, as one).
    grouped: bool,
    /// Master_Adver_Interval: the master's interval as learned from its adverts (v3).
    master_interval: Duration,
    adver_at: Option<Instant>,
    down_at: Option<Instant>,
    handover_until: Option<Instant>,
    /// When a preempting backup first saw the current lower-priority master.
    preempt_after: Option<Instant>,
    master: Option<(IpAddr, u8)>,
    /// Held back from preempting by an operator's handover (until [`Event::Release`]).
    held: bool,
    /// The handover under way ends the instance (shutdown), not in Backup.
    stopping: bool,
    /// Rate limits of a master's answers to lower-priority or priority-0 adverts (the
    /// advert, the announcement), as theoretical arrival times (GCRA): see [`ANSWER_BURST`].
    answer_tat: Option<Instant>,
    announce_tat: Option<Instant>,
    /// The repeats of a step-down's priority-0 notice still to send: (next at, how many, to).
    resign_notices: Option<(Instant, u8, IpAddr)>,
}

impl Fsm {
    pub fn new(params: Params, priority: u8) -> Self {
        let master_interval = params.advert_interval;
        Self {
            params,
            state: State::Initialize,
            priority,
            base: priority,
            sick_tried: None,
            sick_handover: false,
            grouped: false,
            master_interval,
            adver_at: None,
            down_at: None,
            handover_until: None,
            preempt_after: None,
            master: None,
            held: false,
            stopping: false,
            answer_tat: None,
            announce_tat: None,
            resign_notices: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// Held back from preempting by an operator's handover.
    pub fn held(&self) -> bool {
        self.held
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The master we last heard (address, priority), or ourselves while master.
    pub fn master(&self) -> Option<(IpAddr, u8)> {
        match self.state {
            State::Master => Some((self.params.primary_ip, self.priority)),
            _ => self.master,
        }
    }

    /// The configured priority, before tracked weights.
    pub fn base_priority(&self) -> u8 {
        self.base
    }

    /// The configured priority changed (a reload); the effective one comes as
    /// [`Event::Priority`].
    pub fn set_base_priority(&mut self, base: u8) {
        self.base = base;
    }

    /// In a sync group (set by the node): then a sick master does not hand over on its own.
    pub fn set_grouped(&mut self, grouped: bool) {
        self.grouped = grouped;
    }

    /// Replace settings that can change without a restart (reload). Timers keep running.
    pub fn set_params(&mut self, params: Params) {
        if self.state != State::Backup {
            self.master_interval = params.advert_interval;
        }
        self.params = params;
    }

    /// Skew_Time: lower priorities wait longer, so the best backup wins; among equal ones the
    /// tie-break delay decides (see the module's deviations).
    pub fn skew_time(&self) -> Duration {
        // RFC 3768: (256 - Priority) / 256 s; RFC 5798: (256 - Priority) * Master_Adver_Interval
        // / 256 (exact here, not truncated to centiseconds).
        let unit = match self.params.version {
            Version::V2 => Duration::from_secs(1),
            Version::V3 => self.master_interval,
        };
        let weight = 256 - u32::from(self.priority);
        unit * weight / 256 + tie_break_delay(unit, self.params.primary_ip)
    }

    /// Master_Down_Interval = N × Master_Adver_Interval + Skew_Time, N being
    /// `master_down_adverts` (3 in the RFCs).
    pub fn master_down_interval(&self) -> Duration {
        let interval = match self.params.version {
            Version::V2 => self.params.advert_interval,
            Version::V3 => self.master_interval,
        };
        interval * u32::from(self.params.master_down_adverts) + self.skew_time()
    }

    /// The next instant at which the driver must deliver [`Event::Timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.adver_at,
            self.down_at,
            self.handover_until,
            self.resign_notices.map(|(at, _, _)| at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// A new effective priority; back at the configured one, a later fall may hand over again.
    fn set_priority(&mut self, p: u8) {
        self.priority = p;
        if p >= self.base {
            self.sick_tried = None;
        }
    }

    /// A master whose priority has just fallen hands over when sick: `nopreempt` (its backups
    /// will not take over), below its configured priority, and below where it last tried.
    fn sick_handover_due(&self) -> bool {
        self.params.handover_when_sick
            && !self.params.preempt
            && !self.grouped
            && !self.stopping
            && self.priority < self.base
            && self.sick_tried.is_none_or(|t| self.priority < t)
    }

    fn preempts(&self) -> bool {
        (self.params.preempt || self.priority == 255) && !self.held
    }

    /// Feed one event; the returned actions are to be carried out in order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match (self.state, event) {
            (State::Initialize, Event::Startup) => self.start(now, Reason::Startup, &mut out),

            (State::Backup, Event::Timeout) => {
                self.resign_notice_due(now, &mut out);
                if self.down_at.is_some_and(|t| now >= t) {
                    self.become_master(now, Reason::MasterDown, &mut out);
                }
            }
            (State::Backup, Event::Advert(h)) => self.backup_heard(h, now, &mut out),
            (State::Backup, Event::Priority(p)) => {
                self.set_priority(p);
                if self.params.fast_preempt && self.preempts() {
                    if let Some((from, mp)) = self.master {
                        if p > mp && self.preempt_delay_over(now) {
                            let reason = Reason::Preempt { from, priority: mp };
                            self.become_master(now, reason, &mut out);
                        }
                    }
                }
            }
            (State::Backup, Event::GroupMaster) => {
                self.become_master(now, Reason::GroupMaster, &mut out)
            }

            (State::Master, Event::Timeout) if self.adver_at.is_some_and(|t| now >= t) => {
                out.push(Action::SendAdvert {
                    priority: self.priority,
                });
                self.adver_at = Some(now + self.params.advert_interval);
            }
            (State::Master, Event::Advert(h)) => self.master_heard(h, now, &mut out),
            (State::Master, Event::Priority(p)) => {
                let lowered = p < self.priority;
                self.set_priority(p);
                if lowered && self.sick_handover_due() {
                    self.sick_tried = Some(p);
                    self.sick_handover = true;
                    self.hand_over(now, Reason::Sick { priority: p }, &mut out);
                } else if lowered && self.params.fast_preempt {
                    // Tell preempting backups now rather than at the next tick.
                    out.push(Action::SendAdvert { priority: p });
                    self.adver_at = Some(now + self.params.advert_interval);
                }
            }
            (State::Master, Event::GroupBackup) => {
                out.push(Action::SendAdvert { priority: 0 });
                out.push(Action::RemoveVips);
                self.adver_at = None;
                self.down_at = Some(now + self.master_down_interval());
                self.transition(State::Backup, Reason::GroupBackup, &mut out);
            }
            (State::Master, Event::AdvertsUnsent) => {
                // Held back from preempting (as after an operator's handover) until released:
                // preempting again would take the VIPs while still unheard, again and again.
                self.held = true;
                out.push(Action::RemoveVips);
                self.adver_at = None;
                self.master = None;
                self.down_at = Some(now + self.master_down_interval());
                self.transition(State::Backup, Reason::AdvertsUnsent, &mut out);
            }
            (State::Master, Event::Shutdown) => {
                self.stopping = true;
                self.hand_over(now, Reason::Shutdown, &mut out);
            }
            (State::Master, Event::HandOver) => {
                self.held = true;
                self.hand_over(now, Reason::HandoverAsked, &mut out);
            }

            (State::Handover, Event::Advert(h))
                if h.priority > 0
                    && h.priority < self.priority
                    && self.sick_handover
                    && !self.stopping
                    && !self.held =>
            {
                // A sick master's successor that is sicker still: take the VIPs back (they
                // never left) and say so; it steps down on our advert, and clients follow our
                // announcement. No further try at this priority.
                self.handover_until = None;
                self.sick_handover = false;
                let reason = Reason::SuccessorSicker {
                    from: h.from,
                    priority: h.priority,
                };
                self.transition(State::Master, reason, &mut out);
                out.push(Action::SendAdvert {
                    priority: self.priority,
                });
                out.push(Action::Announce);
                self.adver_at = Some(now + self.params.advert_interval);
            }
            (State::Handover, Event::Advert(h)) if h.priority > 0 => {
                self.handover_until = None;
                self.sick_handover = false;
                out.push(Action::RemoveVips);
                let reason = Reason::SuccessorHeard { from: h.from };
                if self.stopping {
                    self.transition(State::Initialize, reason, &mut out);
                } else {
                    // The successor is the master we now follow, as if heard as a backup.
                    if self.params.version == Version::V3 {
                        self.master_interval = h.interval;
                    }
                    self.master = Some((h.from, h.priority));
                    self.down_at = Some(now + self.master_down_interval());
                    self.transition(State::Backup, reason, &mut out);
                }
            }
            (State::Handover, Event::Timeout) if self.handover_until.is_some_and(|t| now >= t) => {
                self.handover_until = None;
                self.sick_handover = false;
                if self.stopping {
                    out.push(Action::RemoveVips);
                    self.transition(State::Initialize, Reason::HandoverTimeout, &mut out);
                } else {
                    // Nobody took over: keep serving (the VIPs never left) and say so.
                    self.transition(State::Master, Reason::HandoverTimeout, &mut out);
                    out.push(Action::SendAdvert {
                        priority: self.priority,
                    });
                    self.adver_at = Some(now + self.params.advert_interval);
                }
            }
            (State::Handover, Event::Priority(p)) => self.set_priority(p),
            // Shutdown during an operator's handover: it now ends the instance.
            (State::Handover, Event::Shutdown) => {
                self.stopping = true;
                let cap = now + SHUTDOWN_HANDOVER_MAX;
                self.handover_until = self.handover_until.map(|t| t.min(cap));
            }
            (_, Event::HandOver) => self.held = true,
            (_, Event::Release) => self.held = false,

            (State::Initialize | State::Fault, Event::Priority(p)) => self.set_priority(p),
            (State::Backup | State::Fault, Event::Shutdown) => {
                self.clear_timers();
                self.transition(State::Initialize, Reason::Shutdown, &mut out);
            }

            (
                State::Initialize | State::Backup | State::Master | State::Handover,
                Event::Fault(true),
            ) => {
                if matches!(self.state, State::Master | State::Handover) {
                    out.push(Action::SendAdvert { priority: 0 });
                    out.push(Action::RemoveVips);
                }
                self.clear_timers();
                // A shutdown's handover has nothing to come back to.
                let to = if self.stopping {
                    State::Initialize
                } else {
                    State::Fault
                };
                self.transition(to, Reason::Fault, &mut out);
            }
            (State::Fault, Event::Fault(false)) => self.start(now, Reason::FaultCleared, &mut out),

            // Everything else is ignored: adverts in Initialize/Fault, stale timers, repeated
            // group events, a second shutdown.
            _ => {}
        }
        out
    }

    /// Leave Initialize or Fault: RFC "Startup" event.
    fn start(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        self.master_interval = self.params.advert_interval;
        self.master = None;
        self.preempt_after = None;
        if self.priority == 255 {
            self.become_master(now, Reason::AddressOwner, out);
            return;
        }
        // keepalived's `state MASTER` only shortens the first wait of a preempting router: with
        // nopreempt a joiner must never take over from a running master whose advert is late.
        let wait = if self.params.initial_master && self.params.preempt && reason == Reason::Startup
        {
            self.params.advert_interval + self.skew_time()
        } else {
            self.master_down_interval()
        };
        self.down_at = Some(now + wait);
        self.transition(State::Backup, reason, out);
    }

    /// Resign as master: priority 0 at once; with `handover`, keep the VIPs until a successor
    /// speaks (or Skew_Time plus an interval passes), else remove them first as the RFC does.
    fn hand_over(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        out.push(Action::SendAdvert { priority: 0 });
        self.adver_at = None;
        // A sick master always keeps its VIPs until a successor speaks: breaking first would
        // leave it a backup that nopreempt keeps out, and no one may take over.
        if self.params.handover || self.sick_handover {
            // Longest a backup may wait after priority 0: Skew_Time at priority 1 (< one
            // interval), then one interval of slack for its first advert to reach us. On
            // shutdown no longer than the service manager lets us take to stop.
            let mut wait = self.master_interval + self.params.advert_interval;
            if reason == Reason::Shutdown {
                wait = wait.min(SHUTDOWN_HANDOVER_MAX);
            }
            self.handover_until = Some(now + wait);
            self.transition(State::Handover, reason, out);
        } else if self.stopping {
            out.push(Action::RemoveVips);
            self.transition(State::Initialize, reason, out);
        } else {
            out.push(Action::RemoveVips);
            self.down_at = Some(now + self.master_down_interval());
            self.transition(State::Backup, reason, out);
        }
    }

    fn become_master(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        self.down_at = None;
        self.resign_notices = None;
        self.preempt_after = None;
        self.master = None;
        self.transition(State::Master, reason, out);
        out.push(Action::SendAdvert {
            priority: self.priority,
        });
        out.push(Action::Announce);
        out.push(Action::AddVips);
        self.adver_at = Some(now + self.params.advert_interval);
    }

    fn backup_heard(&mut self, h: Heard, now: Instant, out: &mut Vec<Action>) {
        if h.priority == 0 {
            // Priority 0 from another router than the master we follow is a former master
            // stepping down to ours (a healed partition, a takeover whose adverts were lost):
            // ours is still here, and a Skew_Time race now would only move the VIPs twice.
            // (The RFC's rule is for the master's own resignation.)
            if self.master.is_some_and(|(m, _)| m != h.from) {
                return;
            }
            // The master resigned: the best backup goes first, after its skew.
            self.master = None;
            self.down_at = Some(now + self.skew_time());
            return;
        }
        let lower = h.priority < self.priority;
        if lower && self.preempts() && self.preempt_delay_started(now) {
            if self.params.fast_preempt {
                let reason = Reason::Preempt {
                    from: h.from,
                    priority: h.priority,
                };
                self.become_master(now, reason, out);
            }
            // RFC: discard, and let the down timer run out.
            return;
        }
        if !lower {
            self.preempt_after = None;
        }
        if self.params.version == Version::V3 {
            self.master_interval = h.interval;
        }
        self.master = Some((h.from, h.priority));
        self.down_at = Some(now + self.master_down_interval());
    }

    /// Starts the preempt-delay clock on the first lower-priority advert; true once it is over.
    fn preempt_delay_started(&mut self, now: Instant) -> bool {
        if self.params.preempt_delay.is_zero() {
            return true;
        }
        let after = *self
            .preempt_after
            .get_or_insert(now + self.params.preempt_delay);
        now >= after
    }

    fn preempt_delay_over(&self, now: Instant) -> bool {
        self.params.preempt_delay.is_zero() || self.preempt_after.is_some_and(|t| now >= t)
    }

    fn master_heard(&mut self, h: Heard, now: Instant, out: &mut Vec<Action>) {
        if h.priority == 0 {
            // Someone else was master and resigned (or stepped down after a partition healed):
            // reassert at once, and re-announce, since clients may still point at them.
            self.answer(now, true, out);
            return;
        }
        let reason = if h.priority > self.priority {
            Some(Reason::HigherPriority {
                from: h.from,
                priority: h.priority,
            })
        } else if h.priority == self.priority && h.from > self.params.primary_ip {
            Some(Reason::TieBreak { from: h.from })
        } else {
            None
        };
        match reason {
            Some(reason) => {
                self.adver_at = None;
                if self.params.version == Version::V3 {
                    self.master_interval = h.interval;
                }
                self.master = Some((h.from, h.priority));
                self.down_at = Some(now + self.master_down_interval());
                if self.params.higher_prio_send_advert {
                    // To the winner alone: other preempting backups would take a multicast
                    // one for a lower-priority master and take over (found by the property
                    // tests).
                    out.push(Action::TellWinner {
                        to: h.from,
                        priority: self.priority,
                    });
                }
                // Tell the winner we were master too (after a partition it may not know):
                // priority 0 makes it reassert and re-announce the VIPs to clients that still
                // point at us (keepalived issue #166).
                self.resign(h.from, now, out);
                out.push(Action::RemoveVips);
                self.transition(State::Backup, reason, out);
            }
            None => {
                // A lower-priority router thinks it is master (e.g. after a partition heals):
                // answer at once so it steps down now rather than at our next tick (unless
                // told to keep to the RFCs, which wait for the next advert).
                self.answer(now, !self.params.lower_prio_no_advert, out);
            }
        }
    }

    /// A master's answer to a lower-priority or priority-0 advert: its own advert at once
    /// (`advert`) and a re-announcement of the VIPs, rate-limited ([`ANSWER_BURST`]), since
    /// such adverts can be forged at any rate. The regular adverts go on meanwhile.
    fn answer(&mut self, now: Instant, advert: bool, out: &mut Vec<Action>) {
        let interval = self.params.advert_interval;
        if !rate_allows(&mut self.answer_tat, now, interval) {
            return;
        }
        if advert {
            out.push(Action::SendAdvert {
                priority: self.priority,
            });
            self.adver_at = Some(now + interval);
        }
        if rate_allows(&mut self.announce_tat, now, ANSWER_ANNOUNCE_GAP) {
            out.push(Action::Reannounce);
        }
    }

    /// A master stepping down to `winner` tells it with priority 0, now to all and
    /// [`RESIGN_REPEATS`] times more to it alone: each makes it re-announce the VIPs after our
    /// own announcements.
    fn resign(&mut self, winner: IpAddr, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::SendAdvert { priority: 0 });
        self.resign_notices =
            (RESIGN_REPEATS > 0).then(|| (now + self.resign_gap(), RESIGN_REPEATS, winner));
    }

    fn resign_notice_due(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some((at, left, to)) = self.resign_notices else {
            return;
        };
        if now < at {
            return;
        }
        out.push(Action::TellWinner { to, priority: 0 });
        self.resign_notices = (left > 1).then(|| (now + self.resign_gap(), left - 1, to));
    }

    fn resign_gap(&self) -> Duration {
        (self.params.advert_interval / 2).max(Duration::from_millis(10))
    }

    fn clear_timers(&mut self) {
        self.sick_handover = false;
        self.resign_notices = None;
        self.adver_at = None;
        self.down_at = None;
        self.handover_until = None;
        self.preempt_after = None;
    }

    fn transition(&mut self, to: State, reason: Reason, out: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        out.push(Action::Transition { from, to, reason });
    }
}

/// The tie-break part of Skew_Time: half a priority step (1/512 of `unit`) for an address whose
/// last byte is even, none for an odd one. (More slots would separate more addresses, but by
/// less than a millisecond at 1 s: under the wake-up jitter of a loaded host.)
fn tie_break_delay(unit: Duration, ip: IpAddr) -> Duration {
    let last = match ip {
        IpAddr::V4(v4) => v4.octets()[3],
        IpAddr::V6(v6) => v6.octets()[15],
    };
    unit * u32::from(1 - (last & 1)) / 512
}

/// The generic cell rate algorithm: true (and the event is counted) if one more event at `now`
/// keeps to [`ANSWER_BURST`] in a row and one per `every` after that.
fn rate_allows(tat: &mut Option<Instant>, now: Instant, every: Duration) -> bool {
    let t = tat.map_or(now, |t| t.max(now));
    if t > now + every * (ANSWER_BURST - 1) {
        return false;
    }
    *tat = Some(t + every);
    true
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
