//! Capturing the VRRP traffic of one interface, in and out, from the test process.
//!
//! An `AF_PACKET` socket bound inside the namespace does the job of `tcpdump -i eth0 'ip proto
//! 112'` without a helper process: it is listening when `Capture::start` returns (no start-up
//! race), and each packet carries its direction. Gratuitous ARP frames the host sends are
//! recorded beside them ([`Capture::gratuitous_arps`]).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use crate::netns::{packet_socket, recv_frame};
use crate::packet::{parse_ip_packet, Advert, IPPROTO_VRRP};
use crate::wait::wait_for;

/// One captured VRRP packet.
#[derive(Clone, Debug, PartialEq)]
pub struct Captured {
    /// When it was seen, from the start of the capture.
    pub at: Duration,
    /// Sent by this host (rather than received).
    pub outgoing: bool,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL / IPv6 hop limit.
    pub ttl: u8,
    /// The advert, or why it could not be parsed.
    pub advert: Result<Advert, String>,
    /// Whether the VRRP checksum is right (v3: with the pseudo-header).
    pub checksum_ok: bool,
    /// The whole IP packet.
    pub ip: Vec<u8>,
}

impl Captured {
    /// The advert's priority, if it parsed.
    pub fn priority(&self) -> Option<u8> {
        self.advert.as_ref().ok().map(|a| a.priority)
    }

    pub fn vrid(&self) -> Option<u8> {
        self.advert.as_ref().ok().map(|a| a.vrid)
    }

    /// A one-line summary for error messages.
    pub fn summary(&self) -> String {
        let dir = if self.outgoing { "out" } else { "in" };
        match &self.advert {
            Ok(a) => format!(
                "+{:.3}s {dir} {} > {} ttl {} v{} vrid {} prio {} int {:?} addrs {:?}{}",
                self.at.as_secs_f64(),
                self.src,
                self.dst,
                self.ttl,
                a.version,
                a.vrid,
                a.priority,
                a.interval(),
                a.addrs,
                if self.checksum_ok {
                    ""
                } else {
                    " BAD-CHECKSUM"
                }
            ),
            Err(e) => format!(
                "+{:.3}s {dir} {} > {} unparsable: {e}",
                self.at.as_secs_f64(),
                self.src,
                self.dst
            ),
        }
    }
}

/// A running capture on one interface. Stops when dropped.
pub struct Capture {
    label: String,
    stop: Arc<AtomicBool>,
    packets: Arc<Mutex<Vec<Captured>>>,
    garps: Arc<Mutex<Vec<(Duration, Ipv4Addr)>>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Capture {
    /// Starts capturing VRRP (IPv4 protocol 112 and IPv6 next header 112) on `ifname` in `ns`.
    pub fn start(ns: &str, ifname: &str) -> Result<Capture> {
        let (sock, ifindex) = packet_socket(ns, ifname)?;
        let stop = Arc::new(AtomicBool::new(false));
        let packets = Arc::new(Mutex::new(Vec::new()));
        let garps = Arc::new(Mutex::new(Vec::new()));
        let (stop2, packets2, garps2) = (stop.clone(), packets.clone(), garps.clone());
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name(format!("capture-{ns}"))
            .spawn(move || reader(sock, ifindex, started, &stop2, &packets2, &garps2))?;
        Ok(Capture {
            label: format!("{ns}/{ifname}"),
            stop,
            packets,
            garps,
            thread: Some(thread),
        })
    }

    /// What was captured so far.
    pub fn packets(&self) -> Vec<Captured> {
        self.packets.lock().expect("capture lock").clone()
    }

    /// The gratuitous ARP frames sent out of the interface so far (sender address equal to
    /// target address): when, and for which address.
    pub fn gratuitous_arps(&self) -> Vec<(Duration, Ipv4Addr)> {
        self.garps.lock().expect("capture lock").clone()
    }

    /// Waits until a captured packet matches `pred`, and returns it.
    pub fn wait_for_packet(
        &self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&Captured) -> bool,
    ) -> Result<Captured> {
        let found = wait_for(
            format!("a packet on {}: {what}", self.label),
            timeout,
            || {
                let all = self.packets();
                match all.iter().find(|p| pred(p)) {
                    Some(p) => Ok(p.clone()),
                    None => Err(format!(
                        "{} packets, last: {}",
                        all.len(),
                        last_summary(&all)
                    )),
                }
            },
            |r| r.is_ok(),
        );
        match found {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(e)) => Err(anyhow!(e)),
            Err(e) => Err(e.context(format!("capture so far:\n{}", self.dump()))),
        }
    }

    /// Every captured packet, one summary line each.
    pub fn dump(&self) -> String {
        self.packets().iter().map(|p| p.summary() + "\n").collect()
    }

    /// Stops the capture and returns everything it saw.
    pub fn stop(mut self) -> Result<Vec<Captured>> {
        self.halt()?;
        Ok(self.packets())
    }

    fn halt(&mut self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| anyhow!("capture thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

fn last_summary(all: &[Captured]) -> String {
    all.last()
        .map(Captured::summary)
        .unwrap_or_else(|| "-".into())
}

fn reader(
    sock: OwnedFd,
    ifindex: u32,
    started: Instant,
    stop: &AtomicBool,
    out: &Mutex<Vec<Captured>>,
    garps: &Mutex<Vec<(Duration, Ipv4Addr)>>,
) -> Result<()> {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        let Some(frame) = recv_frame(sock.as_raw_fd(), &mut buf)? else {
            continue;
        };
        if frame.ifindex != ifindex {
            continue;
        }
        let pkt = &buf[..frame.len];
        // ARP for IPv4 over Ethernet: sender address at 14..18, target at 24..28.
        if frame.ethertype == 0x0806 && frame.outgoing && pkt.len() >= 28 {
            let (spa, tpa) = (&pkt[14..18], &pkt[24..28]);
            if spa == tpa {
                let ip = Ipv4Addr::new(spa[0], spa[1], spa[2], spa[3]);
                garps
                    .lock()
                    .expect("capture lock")
                    .push((started.elapsed(), ip));
            }
            continue;
        }
        let is_vrrp = match frame.ethertype {
            0x0800 => pkt.len() >= 20 && pkt[9] == IPPROTO_VRRP,
            0x86dd => pkt.len() >= 40 && pkt[6] == IPPROTO_VRRP,
            _ => false,
        };
        if !is_vrrp {
            continue;
        }
        let Ok(p) = parse_ip_packet(pkt) else {
            continue;
        };
        out.lock().expect("capture lock").push(Captured {
            at: started.elapsed(),
            outgoing: frame.outgoing,
            src: p.src,
            dst: p.dst,
            ttl: p.ttl,
            advert: p.advert,
            checksum_ok: p.checksum_ok,
            ip: pkt.to_vec(),
        });
    }
    Ok(())
}
