//! The kernel's process events connector (NETLINK_CONNECTOR, CN_IDX_PROC; what keepalived's
//! `track_process` listens to): a message for each fork, exec, name change and exit on the
//! machine, so a process tracker hears a process start or die at once instead of at its next
//! count.
//!
//! No crate we could find is kept up for this (cnproc was last released in 2020), and the
//! protocol is three fixed structs (linux/connector.h, linux/cn_proc.h), read here by offset.
//!
//! The connector exists only in the initial network namespace: a socket made in another one
//! is refused (ECONNREFUSED when subscribing). A daemon in a network namespace (`ip netns
//! exec`) therefore makes its socket in the initial one, on a short-lived thread that joins it
//! through `/proc/1/ns/net` (needs CAP_SYS_ADMIN), as the socket keeps the namespace it was
//! made in. Pids in the events are the initial pid namespace's; a process in another pid
//! namespace (a container) gets no events at all, so callers keep a safety poll.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

/// linux/connector.h: the process connector's id, and the multicast group it sends to.
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
/// linux/cn_proc.h `enum proc_cn_mcast_op`.
const PROC_CN_MCAST_LISTEN: u32 = 1;
/// linux/cn_proc.h `enum what`.
const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_COMM: u32 = 0x0000_0200;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// Sizes of `struct nlmsghdr` and `struct cn_msg`; `struct proc_event`'s union starts 16 bytes
/// into it (`what`, `cpu`, an 8-byte timestamp).
const NLMSG_HDR: usize = 16;
const CN_MSG: usize = 20;
const EVENT_DATA: usize = NLMSG_HDR + CN_MSG + 16;

/// What happened to which process (thread group ids: threads are left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcEvent {
    /// A new process (fork) or a process that may now have another name or command line
    /// (exec, or a name change through prctl): look at it.
    Changed(u32),
    /// The process is gone.
    Exited(u32),
    /// The kernel dropped events (a full receive buffer): count again.
    Lost,
}

/// A subscription to process events.
pub struct ProcEvents {
    fd: AsyncFd<OwnedFd>,
    buf: Vec<u8>,
}

impl ProcEvents {
    /// Subscribes, in the initial network namespace if this one has no connector.
    pub fn subscribe() -> io::Result<ProcEvents> {
        let fd = match open_and_listen() {
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                std::thread::scope(|s| s.spawn(in_initial_netns).join())
                    .map_err(|_| io::Error::other("the thread opening the connector panicked"))?
                    .map_err(|e2| {
                        io::Error::new(
                            e2.kind(),
                            format!("no process connector in this network namespace, nor in the initial one: {e2}"),
                        )
                    })?
            }
            other => other?,
        };
        // SAFETY: the OwnedFd keeps its fd open until the AsyncFd drops it.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)?;
        Ok(ProcEvents {
            fd,
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// Waits for events and returns those queued (at least one).
    pub async fn next(&mut self) -> io::Result<Vec<ProcEvent>> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut out = Vec::new();
            loop {
                // SAFETY: recv into our buffer, within its length.
                let n = unsafe {
                    libc::recv(
                        guard.get_inner().as_raw_fd(),
                        self.buf.as_mut_ptr().cast(),
                        self.buf.len(),
                        0,
                    )
                };
                if n >= 0 {
                    out.extend(parse(&self.buf[..n.unsigned_abs()]));
                    continue;
                }
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => {
                        guard.clear_ready();
                        break;
                    }
                    Some(libc::ENOBUFS) => out.push(ProcEvent::Lost),
                    Some(libc::EINTR) => {}
                    _ => return Err(e),
                }
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }
}

/// Joins the initial network namespace (this thread only) and opens the connector there.
fn in_initial_netns() -> io::Result<OwnedFd> {
    let ns = std::fs::File::open("/proc/1/ns/net")?;
    // SAFETY: setns on an open namespace file; it changes this thread's namespace only, and
    // the thread ends right after.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    open_and_listen()
}

/// A connector socket bound to the process events group, with PROC_CN_MCAST_LISTEN sent.
fn open_and_listen() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned at once.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            libc::NETLINK_CONNECTOR,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a new fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: an all-zero sockaddr_nl is valid; the fields are set below.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = CN_IDX_PROC;
    // SAFETY: bind with a sockaddr_nl of its own size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // Room for a burst of forks (each event is under 100 bytes); ENOBUFS, should it still
    // overflow, makes the caller count again.
    let size: libc::c_int = 1 << 20;
    // SAFETY: setsockopt with an int of its own size; a refusal only leaves the default.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&raw const size).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    let msg = listen_message();
    // SAFETY: send of our buffer, within its length.
    let sent = unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// nlmsghdr (type NLMSG_DONE, as the connector expects) + cn_msg + PROC_CN_MCAST_LISTEN.
fn listen_message() -> Vec<u8> {
    let len = (NLMSG_HDR + CN_MSG + 4) as u32;
    let mut m = Vec::with_capacity(len as usize);
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&std::process::id().to_ne_bytes());
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // ack
    m.extend_from_slice(&4u16.to_ne_bytes()); // len of the data
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
    m
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

/// The event in one datagram (the connector sends one netlink message in each); None for
/// anything short, unknown, or about a thread.
pub fn parse(buf: &[u8]) -> Option<ProcEvent> {
    let what = u32_at(buf, NLMSG_HDR + CN_MSG)?;
    let (pid, tgid) = match what {
        // The child's ids follow the parent's.
        PROC_EVENT_FORK => (u32_at(buf, EVENT_DATA + 8)?, u32_at(buf, EVENT_DATA + 12)?),
        PROC_EVENT_EXEC | PROC_EVENT_COMM | PROC_EVENT_EXIT => {
            (u32_at(buf, EVENT_DATA)?, u32_at(buf, EVENT_DATA + 4)?)
        }
        _ => return None,
    };
    // A thread's events say nothing about the process count.
    if pid != tgid {
        return None;
    }
    Some(if what == PROC_EVENT_EXIT {
        ProcEvent::Exited(tgid)
    } else {
        ProcEvent::Changed(tgid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(what: u32, data: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; NLMSG_HDR + CN_MSG];
        b.extend_from_slice(&what.to_ne_bytes());
        b.extend_from_slice(&[0u8; 12]);
        for d in data {
            b.extend_from_slice(&d.to_ne_bytes());
        }
        b
    }

    #[test]
    fn parses_the_events_a_count_depends_on() {
        assert_eq!(
            parse(&event(PROC_EVENT_FORK, &[1, 1, 42, 42])),
            Some(ProcEvent::Changed(42))
        );
        assert_eq!(
            parse(&event(PROC_EVENT_FORK, &[1, 1, 43, 1])),
            None,
            "a thread"
        );
        assert_eq!(
            parse(&event(PROC_EVENT_EXEC, &[42, 42])),
            Some(ProcEvent::Changed(42))
        );
        assert_eq!(
            parse(&event(PROC_EVENT_COMM, &[42, 42])),
            Some(ProcEvent::Changed(42))
        );
        assert_eq!(
            parse(&event(PROC_EVENT_EXIT, &[42, 42, 0, 9, 1, 1])),
            Some(ProcEvent::Exited(42))
        );
        assert_eq!(parse(&event(PROC_EVENT_EXIT, &[43, 42])), None, "a thread");
        assert_eq!(parse(&event(0, &[0, 0])), None, "the subscription's ack");
        assert_eq!(parse(&event(PROC_EVENT_EXEC, &[42])), None, "short");
        assert_eq!(parse(&[0u8; 8]), None);
        assert_eq!(listen_message().len(), 40);
    }

    /// A child's exec and exit are heard (needs CAP_NET_ADMIN; skipped without).
    #[tokio::test]
    async fn hears_a_child_start_and_exit() {
        let mut ev = match ProcEvents::subscribe() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("skipped: no process connector: {e}");
                return;
            }
        };
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let pid = child.id();
        let (mut changed, mut exited) = (false, false);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while !(changed && exited) {
            let got = tokio::time::timeout_at(deadline, ev.next())
                .await
                .expect("events within 5 s")
                .unwrap();
            changed |= got.contains(&ProcEvent::Changed(pid));
            exited |= got.contains(&ProcEvent::Exited(pid));
        }
        child.wait().unwrap();
    }
}
