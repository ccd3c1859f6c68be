//! Rate limits for log lines that a remote sender can trigger at packet rate (a flood of
//! lower-priority adverts, of packets dropped for one reason): one line per reason per period,
//! the next one saying how many were left out.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often one reason may log.
pub(super) const LOG_PERIOD: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub(super) struct LogLimit {
    /// Per reason: when it last logged, and the lines left out since.
    last: HashMap<&'static str, (Instant, u64)>,
}

impl LogLimit {
    /// `Some(left_out)` if a line for `reason` may be logged now (`left_out` lines were left
    /// out since the last one), `None` to stay quiet (counted for the next line).
    pub(super) fn allow(&mut self, reason: &'static str, now: Instant) -> Option<u64> {
        match self.last.get_mut(reason) {
            Some((at, left_out)) if now < *at + LOG_PERIOD => {
                *left_out += 1;
                None
            }
            Some((at, left_out)) => {
                *at = now;
                Some(std::mem::take(left_out))
            }
            None => {
                self.last.insert(reason, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_reason_per_period_then_the_count_left_out() {
        let mut l = LogLimit::default();
        let t0 = Instant::now();
        assert_eq!(l.allow("a", t0), Some(0));
        let quiet = (1..10_000u32)
            .filter(|k| l.allow("a", t0 + Duration::from_micros(100) * *k).is_some())
            .count();
        assert_eq!(quiet, 0, "a flood within the period logs nothing more");
        // Another reason has its own line.
        assert_eq!(l.allow("b", t0 + Duration::from_millis(1)), Some(0));
        assert_eq!(l.allow("a", t0 + LOG_PERIOD), Some(9_999));
        assert_eq!(l.allow("a", t0 + LOG_PERIOD * 3), Some(0));
    }
}
