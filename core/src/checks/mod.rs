//! Health checks that adjust an instance's priority or put it in FAULT.
//!
//! A check runs on its own tokio task, off the VRRP timing path, and reports each result over a
//! channel; the daemon applies keepalived's rise/fall counting in [`Tracker`].

pub mod listener;
pub mod script;
pub mod trackers;
pub mod wasm;

use std::time::Duration;

/// One run's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The id the daemon gave this check's run loop.
    pub check: u64,
    pub ok: bool,
    pub message: String,
    pub duration: Duration,
    /// A file check's value (the integer the file holds; see `trackers::read_weight_file`);
    /// None for other checks.
    pub value: Option<i64>,
}

/// rise/fall hysteresis: a check changes state only after `rise` successes or `fall` failures
/// in a row. Starts healthy, as a freshly started service is given the benefit of the doubt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    rise: u32,
    fall: u32,
    healthy: bool,
    streak: u32,
}

impl Tracker {
    /// A tracker that starts failed (keepalived's `init_fail`) or healthy.
    pub fn starting(rise: u32, fall: u32, healthy: bool) -> Self {
        Self {
            healthy,
            ..Self::new(rise, fall)
        }
    }

    pub fn new(rise: u32, fall: u32) -> Self {
        Self {
            rise: rise.max(1),
            fall: fall.max(1),
            healthy: true,
            streak: 0,
        }
    }

    pub fn healthy(&self) -> bool {
        self.healthy
    }

    /// Results in a row against the current state (towards `rise` or `fall`).
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// Record one result; true when the healthy/failed state flipped.
    pub fn record(&mut self, ok: bool) -> bool {
        if ok == self.healthy {
            self.streak = 0;
            return false;
        }
        self.streak += 1;
        let needed = if ok { self.rise } else { self.fall };
        if self.streak >= needed {
            self.healthy = ok;
            self.streak = 0;
            return true;
        }
        false
    }
}

/// When a check's next run is due: every `interval` from the first, and at once after a run
/// that took longer than the interval, so that runs never overlap or bunch up.
pub struct Schedule {
    next: tokio::time::Instant,
    interval: Duration,
}

impl Schedule {
    /// The first run is now.
    pub fn new(interval: Duration) -> Self {
        Schedule {
            next: tokio::time::Instant::now(),
            interval,
        }
    }

    /// Sleeps until the next run is due.
    pub async fn wait(&mut self) {
        self.next = (self.next + self.interval).max(tokio::time::Instant::now());
        tokio::time::sleep_until(self.next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fall_then_rise() {
        let mut t = Tracker::new(2, 3);
        assert!(!t.record(false));
        assert!(!t.record(false));
        assert!(t.record(false));
        assert!(!t.healthy());
        assert!(!t.record(true));
        assert!(!t.record(false), "a failure resets the rise streak");
        assert!(!t.record(true));
        assert!(t.record(true));
        assert!(t.healthy());
    }

    #[test]
    fn fall_one_flips_at_once() {
        let mut t = Tracker::new(1, 1);
        assert!(t.record(false));
        assert!(t.record(true));
    }
}
