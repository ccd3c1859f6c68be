//! A paced raw-socket flood from inside a namespace: hostile input at packet rate (TTL-1 or
//! unknown-VRID protocol-112 packets, forged lower-priority adverts) while a test watches what
//! users see.
// unsafe here: `setns(2)` and `sendto(2)` on a raw socket.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::mem;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::netns::{netns_path, setsockopt, socket};

/// A running flood; [`Flood::stop`] ends it and says how much was sent.
pub struct Flood {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    started: Instant,
    thread: Option<JoinHandle<Result<()>>>,
}

/// What a flood sent.
#[derive(Debug, Clone, Copy)]
pub struct FloodReport {
    pub sent: u64,
    pub elapsed: Duration,
}

impl FloodReport {
    /// The rate achieved, packets per second.
    pub fn pps(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl Flood {
    /// Sends the IPv4 packets `packets` (headers included, destination from each header) in
    /// turn out of `ifname` in namespace `ns`, `pps` per second, paced every millisecond,
    /// until stopped.
    pub fn start(ns: &str, ifname: &str, packets: Vec<Vec<u8>>, pps: u64) -> Result<Flood> {
        if packets.is_empty() {
            bail!("a flood needs at least one packet");
        }
        let handle = File::open(netns_path(ns)).with_context(|| format!("open netns {ns}"))?;
        let ifname = ifname.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (stop2, sent2) = (stop.clone(), sent.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("flood-{ns}"))
            .spawn(move || {
                let r = (|| {
                    // SAFETY: plain syscall on a valid fd; it moves this thread only.
                    if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        return Err(io::Error::last_os_error()).context("setns");
                    }
                    let sock = socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW)?;
                    let mut name = [0u8; libc::IFNAMSIZ];
                    name[..ifname.len()].copy_from_slice(ifname.as_bytes());
                    setsockopt(
                        sock.as_raw_fd(),
                        libc::SOL_SOCKET,
                        libc::SO_BINDTODEVICE,
                        &name,
                    )?;
                    Ok(sock)
                })();
                let sock = match r {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("{e:#}")));
                        return Err(e);
                    }
                };
                let dests: Vec<libc::sockaddr_in> = packets
                    .iter()
                    .map(|p| sockaddr_in(Ipv4Addr::new(p[16], p[17], p[18], p[19])))
                    .collect();
                let start = Instant::now();
                let mut n: u64 = 0;
                while !stop2.load(Ordering::Relaxed) {
                    // Catch up with the schedule, then sleep to the next millisecond.
                    let due = (start.elapsed().as_secs_f64() * pps as f64) as u64;
                    while n < due {
                        let k = (n % packets.len() as u64) as usize;
                        let (p, sa) = (&packets[k], &dests[k]);
                        // SAFETY: p and sa are valid for the lengths given.
                        let rc = unsafe {
                            libc::sendto(
                                sock.as_raw_fd(),
                                p.as_ptr().cast(),
                                p.len(),
                                0,
                                (sa as *const libc::sockaddr_in).cast(),
                                mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                            )
                        };
                        n += 1;
                        if rc >= 0 {
                            sent2.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(())
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bail!("flood from {ns}: {e}"),
            Err(_) => bail!("flood thread in {ns} ended before it started"),
        }
        Ok(Flood {
            stop,
            sent,
            started: Instant::now(),
            thread: Some(thread),
        })
    }

    /// Packets sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Ends the flood.
    pub fn stop(mut self) -> Result<FloodReport> {
        self.halt()?;
        Ok(FloodReport {
            sent: self.sent(),
            elapsed: self.started.elapsed(),
        })
    }

    fn halt(&mut self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| anyhow!("flood thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

fn sockaddr_in(addr: Ipv4Addr) -> libc::sockaddr_in {
    // SAFETY: all-zero is a valid sockaddr_in.
    let mut sa: libc::sockaddr_in = unsafe { mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_addr.s_addr = u32::from_ne_bytes(addr.octets());
    sa
}
