//! Listening sockets of this network namespace through the kernel's sock_diag netlink (what
//! `ss -l` uses). Asking for the LISTEN state only makes the kernel walk its listening hash
//! alone; /proc/net/tcp walks the whole established-connection hash, whose size follows the
//! machine's memory (the cost measured: docs/design.md).

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
