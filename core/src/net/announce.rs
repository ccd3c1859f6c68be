//! Telling the LAN where the VIPs now live: gratuitous ARP for IPv4 (a packet socket, since the
//! kernel will not send an ARP for an address it may not have yet) and unsolicited neighbour
//! advertisements for IPv6 (an ICMPv6 raw socket; the kernel fills in the checksum).
// unsafe here: AF_PACKET sockets and `sockaddr_ll`: no safe wrapper in std or socket2.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use upkeep_vrrp::frames;

/// Sends announcements out of one interface.
pub struct Announcer {
    ifindex: u32,
    mac: [u8; 6],
    packet: OwnedFd,
    icmp6: Option<Socket>,
}

impl Announcer {
    pub fn open(ifname: &str, ifindex: u32, mac: [u8; 6]) -> io::Result<Self> {
        // Protocol 0: a send-only packet socket that receives nothing.
        // SAFETY: plain socket(2) call; the fd is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: socket(2) returned a new descriptor that nothing else owns.
        let packet = unsafe { OwnedFd::from_raw_fd(fd) };
        // IPv6 may be disabled on the host: then only ARP is available.
        let icmp6 = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
            .and_then(|s| {
                s.bind_device(Some(ifname.as_bytes()))?;
                s.set_multicast_if_v6(ifindex)?;
                s.set_multicast_hops_v6(255)?;
                s.set_nonblocking(true)?;
                Ok(s)
            })
            .ok();
        Ok(Self {
            ifindex,
            mac,
            packet,
            icmp6,
        })
    }

    /// One announcement for each address.
    pub fn announce(&self, addrs: &[IpAddr]) -> io::Result<()> {
        let mut first_err = None;
        for addr in addrs {
            let r = match addr {
                IpAddr::V4(ip) => self.send_frame(&frames::gratuitous_arp(self.mac, *ip)),
                IpAddr::V6(ip) => self.send_na(*ip),
            };
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn send_frame(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain data; sendto gets valid pointers and lengths.
        unsafe {
            let mut sll: libc::sockaddr_ll = zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = (libc::ETH_P_ARP as u16).to_be();
            sll.sll_ifindex = self.ifindex as i32;
            sll.sll_halen = 6;
            sll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
            let rc = libc::sendto(
                self.packet.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            );
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    fn send_na(&self, target: Ipv6Addr) -> io::Result<()> {
        let Some(s) = &self.icmp6 else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no ICMPv6 socket (IPv6 disabled?)",
            ));
        };
        let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        let to = SockAddr::from(SocketAddrV6::new(all_nodes, 0, 0, self.ifindex));
        s.send_to(&frames::unsolicited_na(self.mac, target), &to)?;
        Ok(())
    }
}
