//! A precise deadline timer for the event loop: a Linux timerfd on CLOCK_MONOTONIC (the clock
//! `std::time::Instant` reads), woken through epoll with nanosecond resolution.
//!
//! tokio's own timers round up to whole milliseconds and may fire a millisecond or two late;
//! Master_Down_Interval and centisecond adverts deserve better, and keepalived's timers are
//! microsecond-exact.
// unsafe here: timerfd (absolute CLOCK_MONOTONIC deadlines): no safe wrapper in std or tokio.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use tokio::io::unix::AsyncFd;

pub(super) struct DeadlineTimer {
    fd: AsyncFd<OwnedFd>,
    /// The deadline the timerfd is armed for and has not yet been seen to fire: the loop asks
    /// for the same deadline pass after pass, and that needs no system call.
    armed: Cell<Option<Instant>>,
}

impl DeadlineTimer {
    pub(super) fn new() -> io::Result<Self> {
        // SAFETY: timerfd_create returns a new fd or -1; it is owned at once.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: timerfd_create returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the OwnedFd stays open for the AsyncFd's lifetime.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)?;
        Ok(Self {
            fd,
            armed: Cell::new(None),
        })
    }

    /// Completes at `deadline` (at once if it has passed).
    pub(super) async fn sleep_until(&self, deadline: Instant) {
        let now = Instant::now();
        if deadline <= now {
            return;
        }
        if self.armed.get() != Some(deadline) {
            self.armed.set(None);
            if self.arm(deadline - now).is_err() {
                // Should not happen; fall back to tokio's coarser timer rather than spin.
                tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
                return;
            }
            self.armed.set(Some(deadline));
        }
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
                return;
            };
            let read = guard.try_io(|fd| {
                let mut expirations = 0u64;
                // SAFETY: reading 8 bytes into a u64 from our timerfd.
                let n = unsafe {
                    libc::read(
                        fd.get_ref().as_raw_fd(),
                        (&mut expirations as *mut u64).cast(),
                        8,
                    )
                };
                if n == 8 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
            match read {
                Ok(Ok(())) => {
                    self.armed.set(None);
                    return;
                }
                // Readiness left over from an earlier arming: it is cleared now; wait again.
                Ok(Err(_)) | Err(_) => continue,
            }
        }
    }

    /// Arm for `after` from now, as an absolute CLOCK_MONOTONIC time.
    fn arm(&self, after: std::time::Duration) -> io::Result<()> {
        // SAFETY: timespec is plain integers; all zeros is a valid value.
        let mut now: libc::timespec = unsafe { std::mem::zeroed() };
        // SAFETY: clock_gettime fills the timespec we own.
        if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let total_ns = now.tv_nsec as u64 + u64::from(after.subsec_nanos());
        let value = libc::timespec {
            tv_sec: now.tv_sec
                + after.as_secs() as libc::time_t
                + (total_ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (total_ns % 1_000_000_000) as libc::c_long,
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // SAFETY: valid fd and itimerspec; the old value is not asked for.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.get_ref().as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Runs `test` with a fresh timer on a current-thread runtime, as the daemon's loop has.
    fn with_timer(test: impl AsyncFnOnce(&DeadlineTimer)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let t = DeadlineTimer::new().unwrap();
            test(&t).await;
        });
    }

    #[test]
    fn fires_at_the_deadline_not_a_millisecond_late() {
        with_timer(async |t| {
            let mut worst = Duration::ZERO;
            for _ in 0..20 {
                let deadline = Instant::now() + Duration::from_micros(2500);
                t.sleep_until(deadline).await;
                let now = Instant::now();
                assert!(now >= deadline, "woke early");
                worst = worst.max(now - deadline);
            }
            // Generous for a loaded 2-core machine; tokio's timer is typically 1 ms+ late.
            assert!(worst < Duration::from_millis(5), "worst lateness {worst:?}");
        });
    }

    #[test]
    fn the_same_deadline_after_an_abandoned_wait_still_fires() {
        with_timer(async |t| {
            let deadline = Instant::now() + Duration::from_millis(20);
            // Abandoned twice before the deadline (the event loop's other branches won) ...
            for _ in 0..2 {
                let r = tokio::time::timeout(Duration::from_millis(2), t.sleep_until(deadline));
                assert!(r.await.is_err(), "fired early");
            }
            // ... then awaited: the arming kept from the first wait fires on time.
            tokio::time::timeout(Duration::from_millis(500), t.sleep_until(deadline))
                .await
                .expect("the timer never fired");
            assert!(Instant::now() >= deadline);
            // And once fired, a later deadline is armed afresh.
            let later = Instant::now() + Duration::from_millis(5);
            tokio::time::timeout(Duration::from_millis(500), t.sleep_until(later))
                .await
                .expect("the re-armed timer never fired");
            assert!(Instant::now() >= later);
        });
    }

    #[test]
    fn rearming_after_a_dropped_wait_works() {
        with_timer(async |t| {
            // A wait abandoned before its deadline (another select! branch won) ...
            let _ = tokio::time::timeout(
                Duration::from_millis(1),
                t.sleep_until(Instant::now() + Duration::from_millis(50)),
            )
            .await;
            // ... does not disturb the next one, earlier or later.
            let deadline = Instant::now() + Duration::from_millis(3);
            t.sleep_until(deadline).await;
            assert!(Instant::now() >= deadline);
        });
    }
}
