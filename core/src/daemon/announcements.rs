//! Announcements over BGP, on the daemon's side: what each one wants from the checks it
//! tracks, published to its speaker's task (which talks to the routing daemon off the event
//! loop), and what the tasks report back, for status.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn};
use upkeep_config::{AnnounceDef, Config, OnFault, SpeakerDaemon, SpeakerDef};
use upkeep_vrrp::node::CheckState;

use super::checks::Check;
use super::instance::Instance;
use super::status::AnnounceStatus;
use crate::announce::bird::Bird;
use crate::announce::task::Report;
use crate::announce::Speaker as _;
use crate::announce::{AnnounceState, Desired, GuardedSpeaker, SpeakerTask};

pub(super) struct Announcements {
    /// By speaker name: its settings as the task was started with, and the task.
    tasks: HashMap<String, (SpeakerDef, SpeakerTask)>,
    tx: mpsc::UnboundedSender<Report>,
    pub(super) rx: mpsc::UnboundedReceiver<Report>,
    /// By announcement name: what its speaker's task last said, and its error.
    heard: HashMap<String, (AnnounceState, Option<String>)>,
}

/// Whether the checks `a` tracks allow it: not while one with a weight of 0 or below fails (a
/// file check: while its value would lower a priority, or is non-zero at weight 0). `check`
/// gives a check's state and own weight by name.
fn checks_pass(a: &AnnounceDef, check: impl Fn(&str) -> Option<(CheckState, i32)>) -> bool {
    a.tracks.iter().all(|t| {
        let Some((state, own_weight)) = check(&t.check) else {
            return true; // a config that loads names only checks that exist
        };
        let weight = t.weight.unwrap_or(own_weight);
        match state {
            CheckState::Healthy(h) => h || weight > 0,
            CheckState::Value(v) if weight == 0 => v == 0,
            CheckState::Value(v) => v.saturating_mul(i64::from(weight)) >= 0,
        }
    })
}

/// What `a` is to be: (announced, demoted). Withdrawn while it follows an instance that does
/// not hold its VIPs here (`holds`); while its checks fail, demoted with `on-fault "demote"`,
/// else withdrawn.
pub(super) fn decide(
    a: &AnnounceDef,
    check: impl Fn(&str) -> Option<(CheckState, i32)>,
    holds: impl Fn(&str) -> bool,
) -> (bool, bool) {
    if a.instance.as_deref().is_some_and(|i| !holds(i)) {
        return (false, false);
    }
    match (checks_pass(a, check), a.on_fault) {
        (true, _) => (true, false),
        (false, OnFault::Demote { .. }) => (true, true),
        (false, OnFault::Withdraw) => (false, false),
    }
}

/// What announcements are wanted from: the checks, and the instances holding their VIPs.
pub(super) struct Inputs<'a> {
    pub checks: &'a [Check],
    pub instances: &'a [Instance],
}

impl Inputs<'_> {
    fn holds(&self, name: &str) -> bool {
        self.instances
            .iter()
            .any(|i| i.cfg.name == name && i.stats.vips_held)
    }
}

fn state_in(checks: &[Check]) -> impl Fn(&str) -> Option<(CheckState, i32)> + '_ {
    |name| {
        checks
            .iter()
            .find(|c| c.def.name == name)
            .map(|c| (c.state(), c.def.weight))
    }
}

fn desired_of(cfg: &Config, speaker: &str, from: Option<&Inputs>) -> Vec<Desired> {
    cfg.announces
        .iter()
        .filter(|a| a.speaker == speaker)
        .map(|a| {
            (
                a,
                from.map_or((false, false), |f| {
                    decide(a, state_in(f.checks), |i| f.holds(i))
                }),
            )
        })
        .map(|(a, decision)| Desired {
            name: a.name.clone(),
            protocol: a.protocol_name(),
            prefix: a.prefix,
            prefix_len: a.prefix_len,
            med: a.med,
            demote_med: match a.on_fault {
                OnFault::Demote { med } => Some(med),
                OnFault::Withdraw => None,
            },
            announced: decision.0,
            demoted: decision.1,
        })
        .collect()
}

/// Every speaker with all its announcements, for the VIP guard.
pub(super) fn guarded(cfg: &Config) -> Vec<GuardedSpeaker> {
    cfg.speakers
        .iter()
        .map(|s| GuardedSpeaker {
            name: s.name.clone(),
            control: s.control.clone(),
            include: s.include.clone(),
            timeout: s.timeout,
            all: desired_of(cfg, &s.name, None),
        })
        .collect()
}

impl Announcements {
    pub(super) fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tasks: HashMap::new(),
            tx,
            rx,
            heard: HashMap::new(),
        }
    }

    /// Brings the tasks in line with `cfg` (start, reload): a speaker whose settings changed
    /// gets a new task, one no longer in the file loses its task; then publishes.
    pub(super) fn configure(&mut self, cfg: &Config, from: &Inputs) {
        let mut gone: Vec<SpeakerDef> = Vec::new();
        self.tasks.retain(|name, (def, _)| {
            let new = cfg.speaker(name);
            let keep = new.is_some_and(|new| {
                SpeakerDef {
                    span: def.span,
                    ..new.clone()
                } == *def
            });
            if !keep {
                info!(speaker = %name, "speaker removed or changed: its task stops");
                // Unless the same daemon and file carry on under new settings, what was
                // announced through it goes: an empty file, and BIRD drops the protocols.
                let same_place =
                    new.is_some_and(|n| n.control == def.control && n.include == def.include);
                if !same_place {
                    gone.push(def.clone());
                }
            }
            keep
        });
        for def in gone {
            tokio::spawn(async move {
                let mut bird = Bird::new(&def.name, &def.control, &def.include, def.timeout);
                if let Err(e) = bird.sync(&[]).await {
                    warn!(speaker = %def.name, error = %e, "a removed speaker's announcements may still be announced");
                }
            });
        }
        for def in &cfg.speakers {
            if self.tasks.contains_key(&def.name) {
                continue;
            }
            let desired = desired_of(cfg, &def.name, Some(from));
            let task = match def.daemon {
                SpeakerDaemon::Bird => SpeakerTask::spawn(
                    &def.name,
                    Bird::new(&def.name, &def.control, &def.include, def.timeout),
                    desired,
                    self.tx.clone(),
                ),
            };
            self.tasks.insert(def.name.clone(), (def.clone(), task));
        }
        self.heard
            .retain(|name, _| cfg.announces.iter().any(|a| a.name == *name));
        self.update(cfg, from);
    }

    /// Publishes what the checks want now; a speaker whose announcements are unchanged hears
    /// nothing.
    pub(super) fn update(&mut self, cfg: &Config, from: &Inputs) {
        for (name, (_, task)) in &self.tasks {
            task.want(desired_of(cfg, name, Some(from)));
        }
    }

    /// A task's report; true when some announcement's state changed.
    pub(super) fn on_report(&mut self, r: Report) -> bool {
        let mut changed = false;
        for (name, state) in r.states {
            let entry = (state, r.error.clone());
            if self.heard.get(&name) != Some(&entry) {
                if self.heard.get(&name).map(|e| e.0) != Some(state) {
                    info!(announce = %name, speaker = %r.speaker, state = state.as_str(), "announcement");
                }
                self.heard.insert(name, entry);
                changed = true;
            }
        }
        changed
    }

    pub(super) fn status(&self, cfg: &Config) -> Vec<AnnounceStatus> {
        cfg.announces
            .iter()
            .map(|a| {
                let desired = self
                    .tasks
                    .get(&a.speaker)
                    .and_then(|(_, t)| t.wanted().into_iter().find(|d| d.name == a.name));
                let wanted = desired.as_ref().is_some_and(|d| d.announced && !d.demoted);
                let goal = desired.as_ref().map(AnnounceState::of);
                let (state, error) = self
                    .heard
                    .get(&a.name)
                    .cloned()
                    .unwrap_or((AnnounceState::Pending, None));
                // Told one thing, wanting another now: on its way.
                let state = match state {
                    AnnounceState::Announced
                    | AnnounceState::Demoted
                    | AnnounceState::Withdrawn
                        if goal.is_some_and(|g| g != state) =>
                    {
                        AnnounceState::Pending
                    }
                    s => s,
                };
                AnnounceStatus {
                    name: a.name.clone(),
                    speaker: a.speaker.clone(),
                    prefix: format!("{}/{}", a.prefix, a.prefix_len),
                    wanted,
                    state,
                    error,
                }
            })
            .collect()
    }

    /// On a clean stop: every announcement withdrawn (no one checks the service any more),
    /// waiting for the speakers at most their timeout each (twice: a reconnect and the
    /// commands). True when every speaker confirmed.
    pub(super) async fn withdraw_all(&mut self, cfg: &Config) -> bool {
        if self.tasks.is_empty() {
            return true;
        }
        let mut waiting: Vec<String> = Vec::new();
        let mut bound = Duration::ZERO;
        for (name, (def, task)) in &self.tasks {
            let mut d = task.wanted();
            if d.is_empty() {
                continue;
            }
            d.iter_mut().for_each(|d| d.announced = false);
            task.want(d);
            waiting.extend(
                cfg.announces
                    .iter()
                    .filter(|a| a.speaker == *name)
                    .map(|a| a.name.clone()),
            );
            bound = bound.max(def.timeout * 2);
        }
        let deadline = tokio::time::Instant::now() + bound;
        while !waiting.is_empty() {
            let Ok(Some(r)) = tokio::time::timeout_at(deadline, self.rx.recv()).await else {
                break;
            };
            for (name, state) in &r.states {
                if *state == AnnounceState::Withdrawn {
                    waiting.retain(|w| w != name);
                }
            }
            self.on_report(r);
        }
        if !waiting.is_empty() {
            info!(announcements = ?waiting, "stopping: speakers did not confirm the withdrawal in time; the VIP guard tries again");
        }
        waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announce(tracks: &str) -> AnnounceDef {
        let src = format!(
            "check \"a\" {{ listener 80; }}\ncheck \"b\" {{ listener 81; weight 10; }}\ncheck \"f\" {{ file \"/run/w\"; }}\nspeaker \"s\" {{ daemon \"bird\"; }}\nannounce \"x\" {{ speaker \"s\"; prefix \"203.0.113.10\"; {tracks} }}\n"
        );
        upkeep_config::parse_str(&src, "t.kdl").unwrap().announces[0].clone()
    }

    /// (a healthy, b healthy, f's value) -> announced?
    fn with(a: &AnnounceDef, healthy_a: bool, healthy_b: bool, f: i64) -> bool {
        decide(
            a,
            |name| match name {
                "a" => Some((CheckState::Healthy(healthy_a), 0)),
                "b" => Some((CheckState::Healthy(healthy_b), 10)),
                "f" => Some((CheckState::Value(f), 0)),
                _ => None,
            },
            |_| true,
        )
        .0
    }

    #[test]
    fn withdrawn_while_a_check_of_weight_zero_or_below_fails() {
        let none = announce("");
        assert!(
            with(&none, false, false, 5),
            "nothing tracked: always announced"
        );
        let a = announce("track \"a\";");
        assert!(with(&a, true, false, 0));
        assert!(
            !with(&a, false, true, 0),
            "weight 0 (the check's) fails: withdrawn"
        );
        let a_neg = announce("track \"a\" weight=-20;");
        assert!(
            !with(&a_neg, false, true, 0),
            "negative weight fails: withdrawn"
        );
        let b = announce("track \"b\";");
        assert!(
            with(&b, true, false, 0),
            "positive weight (the check's own): only preference"
        );
        let b_zero = announce("track \"b\" weight=0;");
        assert!(
            !with(&b_zero, true, false, 0),
            "the track's weight over the check's"
        );
        let f = announce("track \"f\";");
        assert!(with(&f, true, true, 0));
        assert!(
            !with(&f, true, true, 3),
            "a file at weight 0: non-zero withdraws"
        );
        let f_neg = announce("track \"f\" weight=-1;");
        assert!(with(&f_neg, true, true, -3), "-3 x -1 raises a priority");
        assert!(!with(&f_neg, true, true, 3), "3 x -1 lowers it");
        let both = announce("track \"a\"; track \"b\";");
        assert!(!with(&both, false, true, 0) && with(&both, true, false, 0));
    }

    #[test]
    fn following_an_instance_announces_only_while_it_holds_the_vips() {
        let src = "instance \"web\" { interface \"eth0\"; vrid 51; vip \"192.0.2.100/24\"; }\nspeaker \"s\" { daemon \"bird\"; }\nannounce \"x\" { speaker \"s\"; prefix \"203.0.113.10\"; instance \"web\"; }\n";
        let a = upkeep_config::parse_str(src, "t.kdl").unwrap().announces[0].clone();
        assert_eq!(decide(&a, |_| None, |i| i == "web"), (true, false));
        assert_eq!(decide(&a, |_| None, |_| false), (false, false));
    }

    #[test]
    fn demote_keeps_it_announced_with_the_worse_med() {
        let a = announce("track \"a\"; on-fault \"demote\"; demote-med 1000;");
        let failing = |_: &str| Some((CheckState::Healthy(false), 0));
        assert_eq!(decide(&a, failing, |_| true), (true, true));
        assert_eq!(
            decide(&a, |_| Some((CheckState::Healthy(true), 0)), |_| true),
            (true, false)
        );
    }
}
