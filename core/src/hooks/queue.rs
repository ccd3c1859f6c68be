//! The queue between transitions and the notify commands or hooks they run: latest state wins.
//!
//! Work is queued per key (an instance or sync group, or a hook and its instance). One job per
//! key runs at a time; while it runs, at most one more waits: a job queued behind a waiting one
//! supersedes it (keepalived's rule: the latest state is the one to report). So a slow command
//! and an instance that flaps meanwhile leave one job waiting, not one per flap, and the final
//! state's job still runs. Superseded jobs are logged and counted ([`QueueStats`], shown in
//! status).
//!
//! [`LatestWins`] is the queue itself, without IO; [`dispatch`] drives it on a task.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::info;

/// Per key: the job waiting behind the running one, if any.
#[derive(Debug)]
pub(crate) struct LatestWins<J> {
    waiting: HashMap<String, J>,
    /// Keys with a waiting job, in the order their job first queued (oldest first).
    order: VecDeque<String>,
    running: HashSet<String>,
}

impl<J> Default for LatestWins<J> {
    fn default() -> Self {
        Self {
            waiting: HashMap::new(),
            order: VecDeque::new(),
            running: HashSet::new(),
        }
    }
}

impl<J> LatestWins<J> {
    /// Queues `job` for `key`; returns the job it superseded (one waiting for the same key).
    pub(crate) fn push(&mut self, key: String, job: J) -> Option<J> {
        if let Some(old) = self.waiting.get_mut(&key) {
            return Some(std::mem::replace(old, job));
        }
        self.order.push_back(key.clone());
        self.waiting.insert(key, job);
        None
    }

    /// The next job to start: the oldest waiting one whose key has none running, while fewer
    /// than `max_running` run. Its key counts as running until [`LatestWins::done`].
    pub(crate) fn next(&mut self, max_running: usize) -> Option<(String, J)> {
        if self.running.len() >= max_running {
            return None;
        }
        let at = self.order.iter().position(|k| !self.running.contains(k))?;
        let key = self.order.remove(at)?;
        let job = self.waiting.remove(&key)?;
        self.running.insert(key.clone());
        Some((key, job))
    }

    /// The job of `key` that [`LatestWins::next`] gave has ended.
    pub(crate) fn done(&mut self, key: &str) {
        self.running.remove(key);
    }

    pub(crate) fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub(crate) fn running(&self) -> usize {
        self.running.len()
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.running.is_empty()
    }
}

/// A queue's counts as status shows them (`queues` in status.json).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCounts {
    /// Jobs waiting now (at most one per key).
    pub waiting: u64,
    /// Jobs running now.
    pub running: u64,
    /// Jobs started since the daemon started.
    pub run: u64,
    /// Jobs dropped unrun because a later one for the same key came first.
    pub superseded: u64,
}

/// A queue's counts, shared by its dispatcher (which updates them) and the daemon's status.
/// Several dispatchers may share one (a reload replaces the notify runner while the old one
/// finishes): the gauges move by differences.
#[derive(Debug, Default)]
pub struct QueueStats {
    waiting: AtomicU64,
    running: AtomicU64,
    run: AtomicU64,
    superseded: AtomicU64,
}

impl QueueStats {
    pub fn counts(&self) -> QueueCounts {
        QueueCounts {
            waiting: self.waiting.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
            run: self.run.load(Ordering::Relaxed),
            superseded: self.superseded.load(Ordering::Relaxed),
        }
    }

    /// Moves the gauges from what `before` had to what `q` has now.
    fn track<J>(&self, before: (usize, usize), q: &LatestWins<J>) {
        let gauge = |g: &AtomicU64, old: usize, new: usize| {
            if new > old {
                g.fetch_add((new - old) as u64, Ordering::Relaxed);
            } else {
                g.fetch_sub((old - new) as u64, Ordering::Relaxed);
            }
        };
        gauge(&self.waiting, before.0, q.waiting());
        gauge(&self.running, before.1, q.running());
    }
}

/// Runs the jobs that arrive on `rx` by `run`, at most `max_running` at once and one per key
/// at a time, latest wins (see the module). `what` names the queue in the log. Returns once
/// `rx` is closed and every job taken has run.
pub(crate) async fn dispatch<J, F, Fut>(
    mut rx: mpsc::UnboundedReceiver<(String, J)>,
    stats: Arc<QueueStats>,
    max_running: usize,
    what: &'static str,
    run: F,
) where
    J: Send + 'static,
    F: Fn(String, J) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut q = LatestWins::default();
    let mut running = FuturesUnordered::new();
    let mut open = true;
    loop {
        let before = (q.waiting(), q.running());
        tokio::select! {
            job = rx.recv(), if open => match job {
                Some((key, job)) => {
                    if q.push(key.clone(), job).is_some() {
                        let n = stats.superseded.fetch_add(1, Ordering::Relaxed) + 1;
                        info!(key, superseded = n,
                            "{what}: a queued state was superseded before it ran (the latest state wins)");
                    }
                }
                None => open = false,
            },
            Some(key) = running.next(), if !running.is_empty() => {
                let key: String = key;
                q.done(&key);
            }
            else => break,
        }
        while let Some((key, job)) = q.next(max_running) {
            stats.run.fetch_add(1, Ordering::Relaxed);
            // A task of its own: a job that panics still yields its key, so the key moves on.
            let handle = tokio::spawn(run(key.clone(), job));
            running.push(async move {
                let _ = handle.await;
                key
            });
        }
        stats.track(before, &q);
        if !open && q.is_idle() && running.is_empty() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_keeps_one_job_waiting_and_the_latest_wins() {
        let mut q = LatestWins::default();
        assert_eq!(q.push("web".into(), "MASTER"), None);
        assert_eq!(q.next(usize::MAX), Some(("web".into(), "MASTER")));
        // Flapping while MASTER runs: one waits, each new one replaces it.
        assert_eq!(q.push("web".into(), "BACKUP"), None);
        assert_eq!(q.next(usize::MAX), None, "one at a time per key");
        for k in 0..1000 {
            let state = if k % 2 == 0 { "MASTER" } else { "BACKUP" };
            assert!(q.push("web".into(), state).is_some());
        }
        assert_eq!((q.waiting(), q.running()), (1, 1), "bounded by the keys");
        q.done("web");
        assert_eq!(q.next(usize::MAX), Some(("web".into(), "BACKUP")));
        q.done("web");
        assert!(q.is_idle());
    }

    #[test]
    fn keys_run_side_by_side_oldest_first_up_to_the_limit() {
        let mut q = LatestWins::default();
        q.push("a".into(), 1);
        q.push("b".into(), 2);
        q.push("c".into(), 3);
        // One at a time overall (the hook runner).
        assert_eq!(q.next(1), Some(("a".into(), 1)));
        assert_eq!(q.next(1), None);
        q.push("a".into(), 4);
        q.done("a");
        // b queued before a's second job.
        assert_eq!(q.next(1), Some(("b".into(), 2)));
        q.done("b");
        assert_eq!(q.next(1), Some(("c".into(), 3)));
        q.done("c");
        assert_eq!(q.next(1), Some(("a".into(), 4)));
        q.done("a");
        // Unlimited: every key at once, a running key's next job waits.
        q.push("a".into(), 5);
        q.push("b".into(), 6);
        assert_eq!(q.next(usize::MAX), Some(("a".into(), 5)));
        q.push("a".into(), 7);
        assert_eq!(q.next(usize::MAX), Some(("b".into(), 6)));
        assert_eq!(q.next(usize::MAX), None);
        q.done("a");
        assert_eq!(q.next(usize::MAX), Some(("a".into(), 7)));
    }

    #[tokio::test]
    async fn dispatch_counts_and_runs_the_latest() {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(QueueStats::default());
        let (ran_tx, mut ran_rx) = mpsc::unbounded_channel();
        let gate = Arc::new(tokio::sync::Notify::new());
        let g = gate.clone();
        let task = tokio::spawn(dispatch(
            rx,
            stats.clone(),
            usize::MAX,
            "test",
            move |key, n: u32| {
                let (ran_tx, g) = (ran_tx.clone(), g.clone());
                async move {
                    if n == 0 {
                        g.notified().await;
                    }
                    let _ = ran_tx.send((key, n));
                }
            },
        ));
        tx.send(("web".to_string(), 0)).expect("send");
        for n in 1..=20 {
            tx.send(("web".to_string(), n)).expect("send");
        }
        // Let the dispatcher take them all in.
        while stats.counts().superseded < 19 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            stats.counts(),
            QueueCounts {
                waiting: 1,
                running: 1,
                run: 1,
                superseded: 19
            }
        );
        gate.notify_one();
        drop(tx);
        task.await.expect("dispatch");
        let mut ran = Vec::new();
        while let Ok((_, n)) = ran_rx.try_recv() {
            ran.push(n);
        }
        assert_eq!(ran, [0, 20]);
        assert_eq!(
            stats.counts(),
            QueueCounts {
                waiting: 0,
                running: 0,
                run: 2,
                superseded: 19
            }
        );
    }
}
