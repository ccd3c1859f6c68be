//! One task per speaker: it keeps the routing daemon at the latest wanted state. The event
//! loop only publishes what it wants (a `watch`, so a burst of changes is one update, the
//! latest) and hears back what the daemon carries; it never waits on the daemon.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tracing::{info, warn};

use super::{Desired, Speaker};

/// How often a daemon that answered is asked again, to notice it restarted (and re-assert).
pub const PROBE_EVERY: Duration = Duration::from_secs(5);
/// How soon a daemon that did not answer is tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// What the daemon carries for an announcement, as last heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnnounceState {
    /// Not yet told (just started, or changed and on its way).
    Pending,
    Announced,
    /// Announced with its worse MED (`on-fault "demote"`) while a check fails.
    Demoted,
    Withdrawn,
    /// The speaker did not answer or refused; it keeps whatever it was last given (the
    /// include file holds the wanted state for its next `configure` or start).
    Unreachable,
}

impl AnnounceState {
    /// What `d` asks the daemon to carry.
    pub fn of(d: &Desired) -> AnnounceState {
        match (d.announced, d.demoted) {
            (false, _) => AnnounceState::Withdrawn,
            (true, false) => AnnounceState::Announced,
            (true, true) => AnnounceState::Demoted,
        }
    }

    pub const ALL: [AnnounceState; 5] = [
        AnnounceState::Pending,
        AnnounceState::Announced,
        AnnounceState::Demoted,
        AnnounceState::Withdrawn,
        AnnounceState::Unreachable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AnnounceState::Pending => "pending",
            AnnounceState::Announced => "announced",
            AnnounceState::Demoted => "demoted",
            AnnounceState::Withdrawn => "withdrawn",
            AnnounceState::Unreachable => "unreachable",
        }
    }
}

/// A speaker task's news: each announcement's state, and the error if it failed.
#[derive(Debug, Clone)]
pub struct Report {
    pub speaker: String,
    pub states: Vec<(String, AnnounceState)>,
    pub error: Option<String>,
}

/// The handle of a speaker's task; dropping it stops the task.
pub struct SpeakerTask {
    want: watch::Sender<Vec<Desired>>,
    task: AbortHandle,
}

impl Drop for SpeakerTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SpeakerTask {
    pub fn spawn<S: Speaker + 'static>(
        name: &str,
        speaker: S,
        desired: Vec<Desired>,
        report: mpsc::UnboundedSender<Report>,
    ) -> Self {
        Self::spawn_with(name, speaker, desired, report, (PROBE_EVERY, RETRY_EVERY))
    }

    /// [`SpeakerTask::spawn`] with (probe, retry) intervals.
    fn spawn_with<S: Speaker + 'static>(
        name: &str,
        speaker: S,
        desired: Vec<Desired>,
        report: mpsc::UnboundedSender<Report>,
        every: (Duration, Duration),
    ) -> Self {
        let (want, rx) = watch::channel(desired);
        let task = tokio::spawn(run(name.to_owned(), speaker, rx, report, every)).abort_handle();
        Self { want, task }
    }

    /// Publishes the wanted state; nothing happens when it is what was published last.
    pub fn want(&self, desired: Vec<Desired>) {
        self.want.send_if_modified(|cur| {
            if *cur == desired {
                return false;
            }
            *cur = desired;
            true
        });
    }

    /// What was published last.
    pub fn wanted(&self) -> Vec<Desired> {
        self.want.borrow().clone()
    }
}

/// The same announcements (names, protocols, prefixes, attributes), whatever their states: a
/// change of any of these rewrites the protocols, a change of state only toggles them.
fn same_set(a: &[Desired], b: &[Desired]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.name == y.name
                && x.protocol == y.protocol
                && x.prefix == y.prefix
                && x.prefix_len == y.prefix_len
                && x.med == y.med
                && x.demote_med == y.demote_med
        })
}

fn states_of(desired: &[Desired]) -> Vec<(String, AnnounceState)> {
    desired
        .iter()
        .map(|d| {
            let s = AnnounceState::of(d);
            (d.name.clone(), s)
        })
        .collect()
}

pub async fn run<S: Speaker>(
    name: String,
    mut speaker: S,
    mut want: watch::Receiver<Vec<Desired>>,
    report: mpsc::UnboundedSender<Report>,
    (probe_every, retry_every): (Duration, Duration),
) {
    // What the daemon is known to carry; None: unknown (not yet synced, or it failed since).
    let mut applied: Option<Vec<Desired>> = None;
    let mut last_error: Option<String> = None;
    loop {
        let desired = want.borrow_and_update().clone();
        let result = match &applied {
            Some(old) if same_set(old, &desired) => {
                let mut r = Ok(());
                for (d, o) in desired.iter().zip(old) {
                    if (d.announced, d.demoted) != (o.announced, o.demoted) {
                        r = speaker.set(&desired, &d.name).await;
                        if r.is_err() {
                            break;
                        }
                    }
                }
                r
            }
            _ => speaker.sync(&desired).await,
        };
        // The connection a change went out on may be stale (the daemon restarted since the
        // last probe): one full sync on a new connection at once, not after the retry pause.
        let result = match result {
            Err(_) if applied.is_some() => speaker.sync(&desired).await,
            r => r,
        };
        let msg = match result {
            Ok(()) => {
                if last_error.take().is_some() {
                    info!(speaker = %name, "speaker answers again; announcements re-asserted");
                }
                let _ = report.send(Report {
                    speaker: name.clone(),
                    states: states_of(&desired),
                    error: None,
                });
                applied = Some(desired.clone());
                None
            }
            Err(e) => Some(e.to_string()),
        };
        if let Some(msg) = msg {
            applied = None;
            if last_error.as_deref() != Some(msg.as_str()) {
                warn!(speaker = %name, error = %msg, "speaker unreachable: announcements not applied; retrying");
            }
            let states = desired
                .iter()
                .map(|d| (d.name.clone(), AnnounceState::Unreachable))
                .collect();
            let _ = report.send(Report {
                speaker: name.clone(),
                states,
                error: Some(msg.clone()),
            });
            last_error = Some(msg);
        }
        let wait = if applied.is_some() {
            probe_every
        } else {
            retry_every
        };
        tokio::select! {
            changed = want.changed() => {
                if changed.is_err() {
                    return; // the daemon dropped the handle
                }
            }
            _ = tokio::time::sleep(wait) => {
                if applied.is_some() {
                    if let Err(e) = speaker.probe().await {
                        // Sync again at once: a restarted daemon answers the reconnect.
                        info!(speaker = %name, error = %e, "speaker stopped answering; reconnecting");
                        applied = None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::proto::desired;
    use crate::announce::SpeakerError;
    use std::sync::{Arc, Mutex};

    /// A speaker that records calls and fails while `down`.
    #[derive(Clone, Default)]
    struct Fake {
        calls: Arc<Mutex<Vec<String>>>,
        down: Arc<Mutex<bool>>,
    }

    impl Fake {
        fn call(&self, c: String) -> Result<(), SpeakerError> {
            self.calls.lock().unwrap().push(c);
            if *self.down.lock().unwrap() {
                Err(SpeakerError::Closed)
            } else {
                Ok(())
            }
        }
    }

    impl Speaker for Fake {
        async fn sync(&mut self, d: &[Desired]) -> Result<(), SpeakerError> {
            let s: Vec<String> = d
                .iter()
                .map(|d| format!("{}={}", d.name, d.announced))
                .collect();
            self.call(format!("sync {}", s.join(",")))
        }
        async fn set(&mut self, d: &[Desired], name: &str) -> Result<(), SpeakerError> {
            let a = d.iter().find(|d| d.name == name).unwrap().announced;
            self.call(format!("set {name}={a}"))
        }
        async fn probe(&mut self) -> Result<(), SpeakerError> {
            self.call("probe".into())
        }
    }

    const PROBE: Duration = Duration::from_millis(200);

    fn d(name: &str, announced: bool) -> Desired {
        desired(name, "203.0.113.10", 32, announced)
    }

    /// Start syncs; a flip is one `set`; a burst is the latest only; a failure is reported
    /// unreachable and the next try syncs everything again.
    #[tokio::test(flavor = "current_thread")]
    async fn latest_state_wins_and_a_reconnect_re_asserts_everything() {
        let fake = Fake::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let every = (PROBE, Duration::from_millis(20));
        let task = SpeakerTask::spawn_with(
            "edge",
            fake.clone(),
            vec![d("a", true), d("b", false)],
            tx,
            every,
        );
        let r = rx.recv().await.unwrap();
        assert_eq!(r.states[0], ("a".into(), AnnounceState::Announced));
        task.want(vec![d("a", false), d("b", false)]);
        task.want(vec![d("a", true), d("b", false)]);
        task.want(vec![d("a", true), d("b", true)]);
        let r = rx.recv().await.unwrap();
        assert_eq!(r.states[1], ("b".into(), AnnounceState::Announced));
        assert_eq!(
            *fake.calls.lock().unwrap(),
            ["sync a=true,b=false", "set b=true"],
            "the burst's earlier states never reached the daemon"
        );
        *fake.down.lock().unwrap() = true;
        task.want(vec![d("a", false), d("b", true)]);
        let r = rx.recv().await.unwrap();
        assert_eq!(r.states[0].1, AnnounceState::Unreachable);
        assert!(r.error.is_some());
        {
            let calls = fake.calls.lock().unwrap();
            assert_eq!(
                calls[2..4],
                ["set a=false", "sync a=false,b=true"],
                "a failed change is retried at once as a full sync on a new connection"
            );
        }
        *fake.down.lock().unwrap() = false;
        let r = rx.recv().await.unwrap(); // after the retry interval
        assert_eq!(r.states[0], ("a".into(), AnnounceState::Withdrawn));
        assert_eq!(
            fake.calls.lock().unwrap().last().unwrap(),
            "sync a=false,b=true"
        );
        // A daemon that stops answering a probe is synced again.
        *fake.down.lock().unwrap() = true;
        tokio::time::sleep(PROBE + PROBE / 2).await;
        *fake.down.lock().unwrap() = false;
        let mut unreachable = 0;
        loop {
            let r = rx.recv().await.unwrap();
            match r.states[0].1 {
                AnnounceState::Unreachable => unreachable += 1,
                s => {
                    assert_eq!(s, AnnounceState::Withdrawn);
                    break;
                }
            }
        }
        assert!(unreachable >= 1, "the failed re-syncs while it was down");
        let calls = fake.calls.lock().unwrap();
        let probe = calls.iter().position(|c| c == "probe").expect("a probe");
        assert_eq!(calls[probe + 1], "sync a=false,b=true", "{calls:?}");
        assert_eq!(calls.last().unwrap(), "sync a=false,b=true");
    }
}
