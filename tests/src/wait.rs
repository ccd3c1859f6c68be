//! Polling with timeouts, and errors that say what was seen while waiting.

use std::fmt::{Debug, Display};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// How often the waits poll.
/// `s` seconds (tests' shorthand).
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// `m` milliseconds (tests' shorthand).
pub fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

pub const POLL: Duration = Duration::from_millis(20);

/// Polls `pred` until it holds; returns how long that took, or an error after `timeout`.
pub fn wait_until(
    what: impl Display,
    timeout: Duration,
    mut pred: impl FnMut() -> bool,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if pred() {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `observe` until `accept` takes what it returns, and returns that observation.
/// On timeout the error lists every distinct observation in order, with when it was first
/// seen, e.g. `+0.000s [1, 2]` then `+1.020s [2]`.
pub fn wait_for<T: Debug + PartialEq>(
    what: impl Display,
    timeout: Duration,
    mut observe: impl FnMut() -> T,
    mut accept: impl FnMut(&T) -> bool,
) -> Result<T> {
    let start = Instant::now();
    let mut seen = Timeline::default();
    loop {
        let v = observe();
        if accept(&v) {
            return Ok(v);
        }
        seen.push(start.elapsed(), v);
        if start.elapsed() >= timeout {
            bail!("timed out after {timeout:?} waiting for {what}; observed:\n{seen}");
        }
        std::thread::sleep(POLL);
    }
}

/// Distinct successive observations with the time each was first seen (and how many times in
/// a row it was seen).
#[derive(Debug)]
pub struct Timeline<T> {
    pub entries: Vec<(Duration, T, usize)>,
}

impl<T> Default for Timeline<T> {
    fn default() -> Self {
        Timeline {
            entries: Vec::new(),
        }
    }
}

impl<T: PartialEq> Timeline<T> {
    pub fn push(&mut self, at: Duration, v: T) {
        match self.entries.last_mut() {
            Some((_, last, n)) if *last == v => *n += 1,
            _ => self.entries.push((at, v, 1)),
        }
    }
}

impl<T: Debug> Display for Timeline<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const HEAD: usize = 5;
        const TAIL: usize = 20;
        let n = self.entries.len();
        for (k, (at, v, count)) in self.entries.iter().enumerate() {
            if n > HEAD + TAIL && k == HEAD {
                writeln!(f, "  ... {} more ...", n - HEAD - TAIL)?;
            }
            if n > HEAD + TAIL && k >= HEAD && k < n - TAIL {
                continue;
            }
            let mut s = format!("{v:?}");
            if s.len() > 600 {
                let mut cut = 600;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s.truncate(cut);
                s.push_str("...");
            }
            writeln!(f, "  +{:.3}s {s} (x{count})", at.as_secs_f64())?;
        }
        if n == 0 {
            writeln!(f, "  (nothing)")?;
        }
        Ok(())
    }
}

/// The lines of a text file a test's script writes (empty if it does not exist yet).
pub fn file_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until the file at `path` reads exactly `want` (a notify log, a FIFO reader's
/// output), then checks it stays so briefly.
pub fn expect_file_lines(path: &std::path::Path, want: &[&str]) -> Result<()> {
    wait_for(
        format!("{} to read {want:#?}", path.display()),
        Duration::from_secs(5),
        || file_lines(path),
        |l| l == want,
    )?;
    std::thread::sleep(Duration::from_millis(200));
    let now = file_lines(path);
    anyhow::ensure!(
        now == want,
        "{} went on past {want:#?}: {now:#?}",
        path.display()
    );
    Ok(())
}

/// [`wait_for`], returning how long the wait took rather than the observation: for tests that
/// report the time an event took to show.
pub fn wait_for_elapsed<T: Debug + PartialEq>(
    what: impl Display,
    timeout: Duration,
    observe: impl FnMut() -> T,
    accept: impl FnMut(&T) -> bool,
) -> Result<Duration> {
    let start = Instant::now();
    wait_for(what, timeout, observe, accept)?;
    Ok(start.elapsed())
}
