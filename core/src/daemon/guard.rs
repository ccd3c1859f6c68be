//! The VIP guard: a small process beside the daemon that removes its VIPs, routes and rules
//! (and deletes the nftables table of `accept #false`), and withdraws its BGP announcements, if
//! the daemon dies without doing so (SIGKILL, the OOM killer, an abort). Otherwise the dead host's
//! kernel keeps the addresses and goes on answering ARP for them while the backup that took
//! over serves them too: the VIP is on two hosts until someone restarts the daemon.
//!
//! The daemon tells the guard, over a pipe, what it is about to put on the host (before the
//! netlink batch) and what it has taken off (after it); the guard keeps that set. The pipe's
//! end of file is the daemon's death however it dies; the guard then removes what is still
//! held, in one batch, and exits. A daemon that exits cleanly has released everything, so its
//! guard has nothing to do. The guard is in a process group of its own (a `kill` of the
//! daemon's group spares it) and ignores the stop signals a service manager sends the whole
//! unit: it leaves when the daemon has.
// unsafe here: `pipe2(2)` and `fcntl(2)` for the pipe, `signal(2)` to ignore the stop signals
// in the guard process.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::announce::{bird, GuardedSpeaker};
use crate::net::netlink_batch::{BatchSocket, NetlinkChange};

/// The hidden subcommand the guard runs as (`upkeep guard-vips`).
pub const SUBCOMMAND: &str = "guard-vips";

/// One line from the daemon to its guard (JSON).
#[derive(Debug, Serialize, Deserialize)]
enum Line {
    /// About to be added (an `Add*` change).
    Hold(NetlinkChange),
    /// Removed (the `Add*` change it undoes).
    Release(NetlinkChange),
    /// The nftables table of `accept #false` was made (true) or deleted (false): the guard
    /// deletes one the daemon leaves.
    Firewall(bool),
    /// The speakers and their announcements now (the whole set, replacing the last): the
    /// guard withdraws them all if the daemon dies.
    Speakers(Vec<GuardedSpeaker>),
}

/// The daemon's side: the pipe to its guard.
pub(super) struct Guard {
    pipe: File,
    child: Child,
    /// Set when the guard is gone or stuck: the daemon goes on without it (warned once).
    lost: bool,
}

impl Guard {
    /// Starts the guard (this very binary, as `upkeep guard-vips`).
    pub(super) fn spawn() -> io::Result<Guard> {
        let (reader, pipe) = pipe()?;
        // Never block the event loop on the pipe: a stuck guard is given up on instead.
        set_nonblocking(&pipe)?;
        let child = Command::new(std::env::current_exe()?)
            .arg(SUBCOMMAND)
            .stdin(Stdio::from(reader))
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()?;
        Ok(Guard {
            pipe,
            child,
            lost: false,
        })
    }

    /// Tells the guard whether the nftables table exists now.
    pub(super) fn firewall(&mut self, made: bool) {
        self.send(std::iter::once(Line::Firewall(made)));
    }

    /// Tells the guard the speakers and announcements the daemon now has.
    pub(super) fn speakers(&mut self, speakers: Vec<GuardedSpeaker>) {
        self.send(std::iter::once(Line::Speakers(speakers)));
    }

    /// Tells the guard what `changes` will add (call before applying them).
    pub(super) fn before(&mut self, changes: &[NetlinkChange]) {
        let holds = changes
            .iter()
            .filter(|c| c.is_add())
            .cloned()
            .map(Line::Hold);
        self.send(holds);
    }

    /// Tells the guard what `changes` removed (call after applying them).
    pub(super) fn after(&mut self, changes: &[NetlinkChange]) {
        let releases = changes
            .iter()
            .filter(|c| !c.is_add())
            .map(|c| Line::Release(c.inverse()));
        self.send(releases);
    }

    fn send(&mut self, lines: impl Iterator<Item = Line>) {
        if self.lost {
            return;
        }
        let mut buf = Vec::new();
        for l in lines {
            // Serializing our own enum of plain data cannot fail.
            if serde_json::to_writer(&mut buf, &l).is_ok() {
                buf.push(b'\n');
            }
        }
        if buf.is_empty() {
            return;
        }
        if let Err(e) = self.pipe.write_all(&buf) {
            self.lost = true;
            let exited = self.child.try_wait().ok().flatten();
            warn!(
                "the VIP guard (pid {}) is gone or stuck ({e}; exit: {exited:?}): if this daemon \
                 is killed, its VIPs stay on the host until it is restarted",
                self.child.id()
            );
        }
    }
}

/// A pipe, both ends close-on-exec (scripts the daemon runs must not hold it open: the end of
/// file is the daemon's death).
fn pipe() -> io::Result<(OwnedFd, File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and ours alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

fn set_nonblocking(pipe: &File) -> io::Result<()> {
    let fd = pipe.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own; F_GETFL/F_SETFL take and return plain ints.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What the daemon still holds, as the guard has been told: addresses, routes and rules, and
/// the speakers with their announcements.
#[derive(Debug, Default)]
struct Held(Vec<NetlinkChange>, bool, Vec<GuardedSpeaker>);

impl Held {
    fn apply(&mut self, line: Line) {
        match line {
            Line::Hold(c) if !self.0.contains(&c) => self.0.push(c),
            Line::Hold(_) => {}
            Line::Release(c) => self.0.retain(|h| *h != c),
            Line::Firewall(made) => self.1 = made,
            Line::Speakers(s) => self.2 = s,
        }
    }

    /// The changes that take everything off: rules, then routes (a route may need the
    /// address), then addresses; in the order held within each.
    fn removals(&self) -> Vec<NetlinkChange> {
        let mut held: Vec<&NetlinkChange> = self.0.iter().collect();
        held.sort_by_key(|c| c.removal_rank()); // stable
        held.into_iter().map(|c| c.inverse()).collect()
    }
}

/// The guard process (`upkeep guard-vips`): reads the daemon's lines until the pipe closes,
/// then removes what is still held. Returns the number of changes it made.
pub fn run() -> io::Result<usize> {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    let mut held = Held::default();
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str(&line) {
            Ok(l) => held.apply(l),
            Err(e) => eprintln!("upkeep guard-vips: ignoring a line it does not know ({e})"),
        }
    }
    // Announcements first: withdrawn, the routers move the traffic while the addresses go.
    for s in held.2.iter().filter(|s| !s.all.is_empty()) {
        match bird::withdraw_blocking(s) {
            Ok(n) => eprintln!(
                "upkeep guard-vips: the daemon died: withdrew {n} announcement(s) of speaker {}",
                s.name
            ),
            Err(e) => eprintln!(
                "upkeep guard-vips: the daemon died: cannot withdraw the announcements of speaker {}: {e}",
                s.name
            ),
        }
    }
    // The drop set may name addresses that are not the host's any more: no harm, but the
    // table is the daemon's to delete.
    if held.1 {
        match crate::net::firewall::delete_table() {
            Ok(()) => eprintln!(
                "upkeep guard-vips: the daemon died leaving its nftables table; deleted it"
            ),
            Err(e) => {
                eprintln!("upkeep guard-vips: cannot delete the nftables table inet upkeep: {e}")
            }
        }
    }
    let removals = held.removals();
    if removals.is_empty() {
        return Ok(0);
    }
    let failed = BatchSocket::open()?.apply(&removals);
    eprintln!(
        "upkeep guard-vips: the daemon died holding {} address(es) or route(s); removed them \
         ({} failed{})",
        removals.len(),
        failed.len(),
        failed
            .iter()
            .map(|(i, e)| format!("; {}: {e}", removals[*i]))
            .collect::<String>()
    );
    Ok(removals.len() - failed.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::netlink::Route;

    fn addr(a: &str) -> NetlinkChange {
        NetlinkChange::AddAddress {
            index: 2,
            addr: a.parse().unwrap(),
            prefix_len: 24,
            opts: Default::default(),
        }
    }

    fn route() -> NetlinkChange {
        NetlinkChange::AddRoute {
            index: 2,
            route: Route {
                dest: "198.51.100.0".parse().unwrap(),
                prefix_len: 24,
                via: Some("192.0.2.254".parse().unwrap()),
                dev: None,
                metric: None,
                table: None,
                src: None,
                scope: None,
                kind: crate::net::netlink::ROUTE_UNICAST,
                onlink: false,
                nexthops: Vec::new(),
            },
        }
    }

    /// What the guard would remove after the daemon sent `lines` over the pipe (as JSON).
    fn after_lines(lines: Vec<Line>) -> Vec<NetlinkChange> {
        let mut held = Held::default();
        for l in lines {
            let text = serde_json::to_string(&l).unwrap();
            held.apply(serde_json::from_str(&text).unwrap());
        }
        held.removals()
    }

    #[test]
    fn what_is_held_at_the_end_is_removed_routes_first() {
        let got = after_lines(vec![
            Line::Hold(addr("192.0.2.100")),
            Line::Hold(route()),
            Line::Hold(addr("192.0.2.101")),
            Line::Hold(addr("192.0.2.100")),
        ]);
        assert_eq!(
            got,
            vec![
                route().inverse(),
                addr("192.0.2.100").inverse(),
                addr("192.0.2.101").inverse()
            ]
        );
    }

    #[test]
    fn rules_go_before_routes_and_routes_before_addresses() {
        let rule = NetlinkChange::AddRule {
            rule: crate::net::netlink::Rule {
                v6: false,
                from: Some(("192.0.2.100".parse().unwrap(), 32)),
                to: None,
                iif: None,
                oif: None,
                fwmark: None,
                fwmask: None,
                priority: Some(100),
                table: Some(100),
                action: 1,
            },
        };
        let got = after_lines(vec![
            Line::Hold(addr("192.0.2.100")),
            Line::Hold(route()),
            Line::Hold(rule.clone()),
        ]);
        assert_eq!(
            got,
            vec![
                rule.inverse(),
                route().inverse(),
                addr("192.0.2.100").inverse()
            ]
        );
    }

    #[test]
    fn the_firewall_is_followed() {
        let held = |lines: Vec<Line>| {
            let mut h = Held::default();
            for l in lines {
                let text = serde_json::to_string(&l).unwrap();
                h.apply(serde_json::from_str(&text).unwrap());
            }
            h.1
        };
        assert!(held(vec![Line::Firewall(true)]));
        assert!(!held(vec![Line::Firewall(true), Line::Firewall(false)]));
        assert!(!held(vec![]));
    }

    #[test]
    fn what_was_released_is_left_alone() {
        let got = after_lines(vec![
            Line::Hold(addr("192.0.2.100")),
            Line::Hold(route()),
            Line::Release(route()),
            Line::Release(addr("192.0.2.100")),
            Line::Hold(addr("192.0.2.101")),
        ]);
        assert_eq!(got, vec![addr("192.0.2.101").inverse()]);
    }

    #[test]
    fn the_last_speaker_set_is_kept() {
        let sp = |name: &str| GuardedSpeaker {
            name: name.into(),
            control: "/run/bird/bird.ctl".into(),
            include: "/run/upkeep/bird-edge.conf".into(),
            timeout: std::time::Duration::from_secs(2),
            all: Vec::new(),
        };
        let mut held = Held::default();
        for l in [
            Line::Speakers(vec![sp("a"), sp("b")]),
            Line::Speakers(vec![sp("c")]),
        ] {
            let text = serde_json::to_string(&l).unwrap();
            held.apply(serde_json::from_str(&text).unwrap());
        }
        assert_eq!(held.2, vec![sp("c")]);
    }

    #[test]
    fn the_daemon_tells_holds_before_and_releases_after() {
        // The split the daemon's writer relies on: adds are held, removals released as the
        // add they undo.
        let del = addr("192.0.2.100").inverse();
        assert!(addr("192.0.2.100").is_add() && !del.is_add());
        assert_eq!(del.inverse(), addr("192.0.2.100"));
        assert!(route().is_route() && !addr("192.0.2.100").is_route());
    }
}
