//! A fast pinger (ICMP echo every few milliseconds from a namespace) to measure what a client of
//! the VIP sees during a failover: how many probes went unanswered and the longest gap.
// unsafe here: raw ICMP sockets and `ppoll` for the test harness's pinger.
#![allow(unsafe_code)]

use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use crate::netns::{in_netns, setsockopt, socket};
use crate::packet::inet_checksum;

static IDS: AtomicUsize = AtomicUsize::new(1);

/// One probe: when it was sent (from the pinger's start) and its round-trip time if answered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Probe {
    pub sent: Duration,
    pub rtt: Option<Duration>,
}

/// What a [`Pinger`] saw.
#[derive(Clone, Debug, Default)]
pub struct PingReport {
    pub probes: Vec<Probe>,
}

impl PingReport {
    /// A report written as a pattern, one probe every `step`: `.` answered (in 1 ms), any other
    /// character lost. For tests of code that reads reports.
    pub fn from_pattern(pattern: &str, step: Duration) -> Self {
        PingReport {
            probes: pattern
                .chars()
                .zip(0u32..)
                .map(|(c, k)| Probe {
                    sent: step * k,
                    rtt: (c == '.').then_some(Duration::from_millis(1)),
                })
                .collect(),
        }
    }

    pub fn sent(&self) -> usize {
        self.probes.len()
    }

    pub fn received(&self) -> usize {
        self.probes.iter().filter(|p| p.rtt.is_some()).count()
    }

    pub fn lost(&self) -> usize {
        self.sent() - self.received()
    }

    /// The longest outage: from the last answered probe before a run of unanswered ones to the
    /// next answered probe (send times), or to the last probe sent if none was answered after.
    /// Zero when nothing was lost.
    pub fn longest_gap(&self) -> Duration {
        self.gaps()
            .into_iter()
            .map(|(from, to)| to - from)
            .max()
            .unwrap_or_default()
    }

    /// The outages as (from, to) send times; see [`PingReport::longest_gap`].
    pub fn gaps(&self) -> Vec<(Duration, Duration)> {
        let mut out = Vec::new();
        let mut last_ok: Option<Duration> = None;
        let mut in_gap = false;
        for p in &self.probes {
            match p.rtt {
                Some(_) => {
                    if in_gap {
                        out.push((last_ok.unwrap_or_default(), p.sent));
                        in_gap = false;
                    }
                    last_ok = Some(p.sent);
                }
                None => in_gap = true,
            }
        }
        if in_gap {
            if let Some(last) = self.probes.last() {
                out.push((last_ok.unwrap_or_default(), last.sent));
            }
        }
        out
    }
}

/// A running pinger. Stops when dropped.
pub struct Pinger {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<PingReport>>>,
}

impl Pinger {
    /// Pings `addr` from namespace `ns` every `interval` (IPv4 or IPv6).
    pub fn start(ns: &str, addr: IpAddr, interval: Duration) -> Result<Pinger> {
        let sock = in_netns(ns, || match addr {
            IpAddr::V4(_) => socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
            IpAddr::V6(_) => socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6),
        })?;
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 2_000,
        };
        setsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
        let id = ((std::process::id() as usize * 31 + IDS.fetch_add(1, Ordering::SeqCst)) & 0xffff)
            as u16;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("pinger-{ns}"))
            .spawn(move || run(sock, addr, id, interval, &stop2))?;
        Ok(Pinger {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops pinging (waiting a little for late replies) and returns the report.
    pub fn stop(mut self) -> Result<PingReport> {
        self.halt()
    }

    fn halt(&mut self) -> Result<PingReport> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| anyhow!("pinger thread panicked"))?,
            None => Ok(PingReport::default()),
        }
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

fn sockaddr(addr: IpAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        IpAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in.
            let sin = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.octets());
            std::mem::size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = a.octets();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

fn run(
    sock: OwnedFd,
    addr: IpAddr,
    id: u16,
    interval: Duration,
    stop: &AtomicBool,
) -> Result<PingReport> {
    let fd = sock.as_raw_fd();
    let (sa, salen) = sockaddr(addr);
    let v6 = addr.is_ipv6();
    let start = Instant::now();
    let mut sent: Vec<(Instant, Option<Duration>)> = Vec::new();
    let mut next = start;
    let mut stop_at: Option<Instant> = None;
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        if stop_at.is_none() && stop.load(Ordering::SeqCst) {
            stop_at = Some(now + Duration::from_millis(200)); // grace for late replies
        }
        if stop_at.is_some_and(|t| now >= t) {
            break;
        }
        if stop_at.is_none() && now >= next {
            let seq = sent.len() as u16;
            let mut pkt = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
            pkt.extend_from_slice(&id.to_be_bytes());
            pkt.extend_from_slice(&seq.to_be_bytes());
            pkt.extend_from_slice(b"upkeep-test-ping");
            if !v6 {
                let c = inet_checksum(&pkt);
                pkt[2..4].copy_from_slice(&c.to_be_bytes());
            } // the kernel fills in ICMPv6 checksums
              // SAFETY: pkt and sa are valid for the lengths given. A failed send (no route, no
              // neighbour yet) is just an unanswered probe.
            unsafe {
                libc::sendto(
                    fd,
                    pkt.as_ptr().cast(),
                    pkt.len(),
                    0,
                    (&sa as *const libc::sockaddr_storage).cast(),
                    salen,
                )
            };
            sent.push((now, None));
            next += interval;
            if next < now {
                next = now + interval;
            }
        }
        // Wait for a reply until the next probe is due (2 ms at most) with ppoll, whose timeout
        // is a high-resolution timer: SO_RCVTIMEO counts in jiffies (4 ms at HZ=250, rounded
        // up), which made a 2 ms pinger send only every 8 ms.
        let wait = if stop_at.is_none() {
            next.saturating_duration_since(Instant::now())
        } else {
            Duration::from_millis(2)
        }
        .min(Duration::from_millis(2));
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        };
        // SAFETY: one valid pollfd and a valid timespec; no signal mask.
        if unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) } <= 0 {
            continue;
        }
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n <= 0 {
            continue;
        }
        let pkt = &buf[..n as usize];
        // Raw IPv4 sockets deliver the IP header; ICMPv6 ones do not.
        let icmp = if v6 {
            pkt
        } else {
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            if pkt.len() < ihl + 8 || pkt[12..16] != ipv4_octets(addr) {
                continue;
            }
            &pkt[ihl..]
        };
        let reply_type = if v6 { 129 } else { 0 };
        if icmp.len() < 8 || icmp[0] != reply_type || icmp[4..6] != id.to_be_bytes() {
            continue;
        }
        let seq = usize::from(u16::from_be_bytes([icmp[6], icmp[7]]));
        let now = Instant::now();
        // Sequence numbers wrap at 65536; match the latest probe with this number.
        let mut k = seq;
        while k + 65536 < sent.len() {
            k += 65536;
        }
        if let Some(p) = sent.get_mut(k) {
            p.1.get_or_insert(now - p.0);
        }
    }
    Ok(PingReport {
        probes: sent
            .into_iter()
            .map(|(t, rtt)| Probe {
                sent: t - start,
                rtt,
            })
            .collect(),
    })
}

fn ipv4_octets(addr: IpAddr) -> [u8; 4] {
    match addr {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => [0; 4],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(pattern: &str) -> PingReport {
        PingReport::from_pattern(pattern, Duration::from_millis(10))
    }

    #[test]
    fn gaps() {
        assert_eq!(report("....").longest_gap(), Duration::ZERO);
        let r = report("..xx.x..");
        assert_eq!(r.lost(), 3);
        assert_eq!(
            r.gaps(),
            vec![
                (Duration::from_millis(10), Duration::from_millis(40)),
                (Duration::from_millis(40), Duration::from_millis(60))
            ]
        );
        assert_eq!(r.longest_gap(), Duration::from_millis(30));
        assert_eq!(report(".xxx").longest_gap(), Duration::from_millis(30));
    }
}
