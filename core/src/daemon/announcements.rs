//! Announcements over BGP, on the daemon's side: what each one wants from the checks it
//! tracks, published to its speaker's task (which talks to the routing daemon off the event
//! loop), and what the tasks report back, for status.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::info;
use upkeep_config::{AnnounceDef, Config, SpeakerDaemon, SpeakerDef};
use upkeep_vrrp::node::CheckState;

use super::checks::Check;
use super::status::AnnounceStatus;
use crate::announce::bird::Bird;
use crate::announce::task::Report;
use crate::announce::{AnnounceState, Desired, SpeakerTask};

pub(super) struct Announcements {
    /// By speaker name: its settings as the task was started with, and the task.
    tasks: HashMap<String, (SpeakerDef, SpeakerTask)>,
    tx: mpsc::UnboundedSender<Report>,
    pub(super) rx: mpsc::UnboundedReceiver<Report>,
    /// By announcement name: what its speaker's task last said, and its error.
    heard: HashMap<String, (AnnounceState, Option<String>)>,
}

/// Whether `a` is to be announced: not while a check it tracks with a weight of 0 or below
/// fails (a file check: while its value would lower a priority, or is non-zero at weight 0).
pub(super) fn wanted(a: &AnnounceDef, checks: &[Check]) -> bool {
    a.tracks.iter().all(|t| {
        let Some(c) = checks.iter().find(|c| c.def.name == t.check) else {
            return true; // a config that loads names only checks that exist
        };
        let weight = t.weight.unwrap_or(c.def.weight);
        match c.state() {
            CheckState::Healthy(h) => h || weight > 0,
            CheckState::Value(v) if weight == 0 => v == 0,
            CheckState::Value(v) => v.saturating_mul(i64::from(weight)) >= 0,
        }
    })
}

fn desired_of(cfg: &Config, speaker: &str, checks: &[Check]) -> Vec<Desired> {
    cfg.announces
        .iter()
        .filter(|a| a.speaker == speaker)
        .map(|a| Desired {
            name: a.name.clone(),
            protocol: a.protocol_name(),
            prefix: a.prefix,
            prefix_len: a.prefix_len,
            announced: wanted(a, checks),
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
    pub(super) fn configure(&mut self, cfg: &Config, checks: &[Check]) {
        self.tasks.retain(|name, (def, _)| {
            let keep = cfg.speaker(name).is_some_and(|new| {
                SpeakerDef {
                    span: def.span,
                    ..new.clone()
                } == *def
            });
            if !keep {
                info!(speaker = %name, "speaker removed or changed: its task stops");
            }
            keep
        });
        for def in &cfg.speakers {
            if self.tasks.contains_key(&def.name) {
                continue;
            }
            let desired = desired_of(cfg, &def.name, checks);
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
        self.update(cfg, checks);
    }

    /// Publishes what the checks want now; a speaker whose announcements are unchanged hears
    /// nothing.
    pub(super) fn update(&mut self, cfg: &Config, checks: &[Check]) {
        for (name, (_, task)) in &self.tasks {
            task.want(desired_of(cfg, name, checks));
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
                let wanted = self
                    .tasks
                    .get(&a.speaker)
                    .and_then(|(_, t)| t.wanted().into_iter().find(|d| d.name == a.name))
                    .is_some_and(|d| d.announced);
                let (state, error) = self
                    .heard
                    .get(&a.name)
                    .cloned()
                    .unwrap_or((AnnounceState::Pending, None));
                // Told one thing, wanting another now: on its way.
                let state = match state {
                    AnnounceState::Announced if !wanted => AnnounceState::Pending,
                    AnnounceState::Withdrawn if wanted => AnnounceState::Pending,
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
    /// commands).
    pub(super) async fn withdraw_all(&mut self, cfg: &Config) {
        if self.tasks.is_empty() {
            return;
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
                if matches!(state, AnnounceState::Withdrawn | AnnounceState::Unreachable) {
                    waiting.retain(|w| w != name);
                }
            }
            self.on_report(r);
        }
        if !waiting.is_empty() {
            info!(announcements = ?waiting, "stopping: speakers did not confirm the withdrawal in time");
        }
    }
}
