//! Listening sockets of this network namespace through the kernel's sock_diag netlink (what
//! `ss -l` uses). Asking for the LISTEN state only makes the kernel walk its listening hash
//! alone; /proc/net/tcp walks the whole established-connection hash, whose size follows the
//! machine's memory (the cost measured: docs/design.md).
//!
//! [`Destroyed`] is the kernel's other half: a message for every socket it frees (sock_diag's
//! destroy multicast groups), which is how a listener tracker learns at once that a server
//! closed its socket or died, without polling.

use std::io;
use std::net::SocketAddr;

use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use rtnetlink::packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use rtnetlink::sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr as NlAddr};

/// Which table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// TCP sockets in LISTEN.
    Tcp,
    /// UDP sockets bound and not connected (state CLOSE), which is how a UDP server waits.
    Udp,
}

/// The local addresses of listening sockets, IPv4 and IPv6, sorted, without duplicates.
pub fn listening(proto: Proto) -> io::Result<Vec<SocketAddr>> {
    let mut sock = Socket::new(NETLINK_SOCK_DIAG)?;
    sock.bind_auto()?;
    sock.connect(&NlAddr::new(0, 0))?;
    let mut out = Vec::new();
    for family in [AF_INET, AF_INET6] {
        dump(&sock, family, proto, &mut out)?;
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The kernel's sock_diag multicast groups (linux/sock_diag.h `SKNLGRP_*`).
const SKNLGRP_INET_TCP_DESTROY: u32 = 1;
const SKNLGRP_INET_UDP_DESTROY: u32 = 2;
const SKNLGRP_INET6_TCP_DESTROY: u32 = 3;
const SKNLGRP_INET6_UDP_DESTROY: u32 = 4;

/// A subscription to the destroy notifications of one protocol's sockets, IPv4 and IPv6, in
/// this network namespace: the kernel sends one message as it frees each socket, so a
/// listener's close (by the server, or by the kernel when the process dies, SIGKILL included)
/// is heard within about a millisecond (measured: tests/tests/checks.rs). Needs CAP_NET_ADMIN.
pub struct Destroyed {
    sock: tokio::io::unix::AsyncFd<Socket>,
    buf: Vec<u8>,
}

impl Destroyed {
    /// Subscribes; to be called before the first look at the table, so that nothing closed
    /// after it goes unheard.
    pub fn subscribe(proto: Proto) -> io::Result<Destroyed> {
        let mut sock = Socket::new(NETLINK_SOCK_DIAG)?;
        sock.bind_auto()?;
        let groups = match proto {
            Proto::Tcp => [SKNLGRP_INET_TCP_DESTROY, SKNLGRP_INET6_TCP_DESTROY],
            Proto::Udp => [SKNLGRP_INET_UDP_DESTROY, SKNLGRP_INET6_UDP_DESTROY],
        };
        sock.add_membership(groups[0])?;
        // No IPv6 in this kernel: no IPv6 socket to hear of.
        if let Err(e) = sock.add_membership(groups[1]) {
            if e.raw_os_error() != Some(libc::EAFNOSUPPORT) {
                return Err(e);
            }
        }
        sock.set_non_blocking(true)?;
        // SAFETY: the Socket owns its fd and keeps it open until the AsyncFd drops it.
        #[allow(unsafe_code)]
        let sock =
            unsafe { tokio::io::unix::AsyncFd::register(sock) }.map_err(|e| e.into_parts().1)?;
        Ok(Destroyed {
            sock,
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// Waits until a listening (unconnected) socket on local `port` has been destroyed, or the
    /// kernel dropped notifications (a full receive buffer: one of them may have been it).
    /// Connected sockets on the port (a server's accepted connections) are passed over: they
    /// have a remote port, a listener has none.
    pub async fn listener_closed(&mut self, port: u16) -> io::Result<()> {
        loop {
            let mut guard = self.sock.readable().await?;
            let mut hit = false;
            // Drain what is queued: one wake-up for a burst of closes.
            loop {
                match guard.get_inner().recv(&mut &mut self.buf[..], 0) {
                    Ok(n) => hit |= destroyed_listener(&self.buf[..n], port),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        break;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => hit = true,
                    Err(e) => return Err(e),
                }
            }
            if hit {
                return Ok(());
            }
        }
    }
}

/// Whether the destroy notifications in `buf` include an unconnected socket on local `port`.
fn destroyed_listener(buf: &[u8], port: u16) -> bool {
    super::netlink_messages::<SockDiagMessage>(buf).any(|msg| match msg.payload {
        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
            let id = &r.header.socket_id;
            id.source_port == port && id.destination_port == 0
        }
        _ => false,
    })
}

fn dump(sock: &Socket, family: u8, proto: Proto, out: &mut Vec<SocketAddr>) -> io::Result<()> {
    let (protocol, states) = match proto {
        Proto::Tcp => (IPPROTO_TCP, StateFlags::LISTEN),
        Proto::Udp => (IPPROTO_UDP, StateFlags::CLOSE),
    };
    let socket_id = if family == AF_INET {
        SocketId::new_v4()
    } else {
        SocketId::new_v6()
    };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut req = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol,
            extensions: ExtensionFlags::empty(),
            states,
            socket_id,
        })
        .into(),
    );
    req.finalize();
    let mut buf = vec![0u8; req.buffer_len()];
    req.serialize(&mut buf);
    sock.send(&buf, 0)?;

    let mut rx = vec![0u8; 32 * 1024];
    loop {
        let n = sock.recv(&mut &mut rx[..], 0)?;
        let mut parsed = 0;
        for msg in super::netlink_messages::<SockDiagMessage>(&rx[..n]) {
            parsed += 1;
            match msg.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                    let id = &r.header.socket_id;
                    out.push(SocketAddr::new(id.source_address, id.source_port));
                }
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(e) => {
                    let code = e.code.map_or(0, |c| -c.get());
                    // No IPv6 in this kernel: nothing listens there.
                    if family == AF_INET6 && code == libc::EAFNOSUPPORT {
                        return Ok(());
                    }
                    return Err(io::Error::from_raw_os_error(code));
                }
                _ => {}
            }
        }
        if parsed == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unreadable sock_diag answer",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener's close is heard, a connection's is not (it has a remote port); needs
    /// CAP_NET_ADMIN, so it says so and passes where it is not allowed.
    #[tokio::test]
    async fn hears_a_listener_close_but_not_a_connection_close() {
        let mut events = match Destroyed::subscribe(Proto::Tcp) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("skipped: cannot subscribe to sock_diag destroy events: {e}");
                return;
            }
        };
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (served, _) = l.accept().unwrap();
        drop((client, served));
        let quiet = tokio::time::timeout(
            std::time::Duration::from_millis(300),
            events.listener_closed(port),
        )
        .await;
        assert!(quiet.is_err(), "a closed connection counted as a listener");
        let t = std::time::Instant::now();
        drop(l);
        tokio::time::timeout(
            std::time::Duration::from_secs(2),
            events.listener_closed(port),
        )
        .await
        .expect("no destroy event for the listener")
        .unwrap();
        eprintln!("listener close heard after {:?}", t.elapsed());
    }

    #[test]
    fn finds_a_tcp_listener_v4_and_v6_but_not_a_connection() {
        let l4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a4 = l4.local_addr().unwrap();
        let l6 = std::net::TcpListener::bind("[::1]:0").ok();
        // An established connection is not a listener.
        let client = std::net::TcpStream::connect(a4).unwrap();
        let client_addr = client.local_addr().unwrap();
        let found = listening(Proto::Tcp).unwrap();
        assert!(found.contains(&a4), "{a4} not in {found:?}");
        assert!(!found.contains(&client_addr));
        if let Some(l6) = l6 {
            let a6 = l6.local_addr().unwrap();
            assert!(found.contains(&a6), "{a6} not in {found:?}");
        }
    }

    /// A UDP server's socket closing is heard too.
    #[tokio::test]
    async fn hears_a_udp_socket_close() {
        let Ok(mut events) = Destroyed::subscribe(Proto::Udp) else {
            eprintln!("skipped: cannot subscribe to sock_diag destroy events");
            return;
        };
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        drop(server);
        tokio::time::timeout(
            std::time::Duration::from_secs(2),
            events.listener_closed(port),
        )
        .await
        .expect("no destroy event for the UDP socket")
        .unwrap();
    }

    #[test]
    fn finds_a_bound_udp_socket_but_not_a_connected_one() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = server.local_addr().unwrap();
        let connected = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        connected.connect(a).unwrap();
        let found = listening(Proto::Udp).unwrap();
        assert!(found.contains(&a), "{a} not in {found:?}");
        assert!(!found.contains(&connected.local_addr().unwrap()));
        assert!(listening(Proto::Tcp).unwrap().iter().all(|s| *s != a));
    }
}
