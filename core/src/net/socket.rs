//! Raw IP sockets for VRRP (protocol 112), one per interface and address family.
//!
//! IPv4 uses IP_HDRINCL so the daemon writes the header itself (TTL 255, the source address
//! it advertises, TOS) and reads the received TTL from it. IPv6 cannot hand-write headers
//! portably, so hop limit and destination come from ancillary data, and the source is set with
//! IPV6_PKTINFO.
//!
//! Each socket carries a kernel filter (`net::filter`: TTL 255 and the VRIDs configured on it,
//! kept up to date by the daemon) and a receive buffer sized for a burst of adverts from many
//! instances.
// unsafe here: `recvmsg`/`sendmsg` with control messages (the received TTL and destination, the
// sending interface): socket2 has no safe form of them.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::Mutex;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::filter;
use upkeep_vrrp::packet::{self, IPPROTO_VRRP, MCAST_V4, MCAST_V6};

/// Receive buffer of a VRRP socket: a master of 255 instances sends their adverts in one burst,
/// and the kernel charges a small packet some 2-4 KiB of buffer (the default, 208 KiB, holds
/// fewer than 100 of them on a veth).
const RECV_BUFFER: usize = 1 << 20;

/// One received datagram, as the kernel gave it.
#[derive(Debug)]
pub enum Datagram<'a> {
    /// The whole IPv4 packet, header included.
    V4(&'a [u8]),
    V6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
        payload: &'a [u8],
    },
}

pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    ifindex: u32,
    v6: bool,
    /// The VRIDs its kernel filter passes; None until the first is attached (all pass).
    vrids: Mutex<Option<Vec<u8>>>,
}

impl VrrpSocket {
    /// Open and join 224.0.0.18 on the interface.
    pub fn open_v4(ifname: &str, ifindex: u32) -> io::Result<Self> {
        let s = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(IPPROTO_VRRP as i32)),
        )?;
        s.bind_device(Some(ifname.as_bytes()))?;
        s.set_header_included_v4(true)?;
        s.set_multicast_all_v4(false)?;
        s.set_multicast_loop_v4(false)?;
        s.join_multicast_v4_n(&MCAST_V4, &InterfaceIndexOrAddress::Index(ifindex))?;
        s.set_nonblocking(true)?;
        size_recv_buffer(&s);
        Ok(Self {
            fd: register(s)?,
            ifindex,
            v6: false,
            vrids: Mutex::new(None),
        })
    }

    /// Open and join ff02::12 on the interface.
    pub fn open_v6(ifname: &str, ifindex: u32) -> io::Result<Self> {
        let s = Socket::new(
            Domain::IPV6,
            Type::RAW,
            Some(Protocol::from(IPPROTO_VRRP as i32)),
        )?;
        s.bind_device(Some(ifname.as_bytes()))?;
        s.set_multicast_all_v6(false)?;
        s.set_multicast_loop_v6(false)?;
        s.set_multicast_if_v6(ifindex)?;
        s.set_multicast_hops_v6(255)?;
        s.set_unicast_hops_v6(255)?;
        s.set_recv_hoplimit_v6(true)?;
        setsockopt_int(&s, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
        s.join_multicast_v6(&MCAST_V6, ifindex)?;
        s.set_nonblocking(true)?;
        size_recv_buffer(&s);
        Ok(Self {
            fd: register(s)?,
            ifindex,
            v6: true,
            vrids: Mutex::new(None),
        })
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Let the kernel queue only packets for these VRIDs (TTL / hop limit 255 as well); a
    /// no-op if that is the filter already.
    pub fn set_vrids(&self, vrids: &[u8]) -> io::Result<()> {
        let mut want = vrids.to_vec();
        want.sort_unstable();
        want.dedup();
        let mut current = self.vrids.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref() == Some(&want) {
            return Ok(());
        }
        filter::attach(self.fd.get_ref(), self.v6, &want)?;
        *current = Some(want);
        Ok(())
    }

    /// Add one VRID to those the filter passes (an instance wired onto this socket).
    pub fn allow_vrid(&self, vrid: u8) -> io::Result<()> {
        let mut want = self
            .vrids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default();
        if want.contains(&vrid) {
            return Ok(());
        }
        want.push(vrid);
        self.set_vrids(&want)
    }

    /// Wait for and read the next datagram into `buf`.
    pub async fn recv<'a>(&self, buf: &'a mut [u8]) -> io::Result<Datagram<'a>> {
        loop {
            let mut guard = self.fd.readable().await?;
            let result = if self.v6 {
                guard.try_io(|fd| recv_v6(fd.get_ref(), buf).map(|m| (m.0, Some(m))))
            } else {
                guard.try_io(|fd| {
                    // SAFETY-free: socket2's Read impl for &Socket reads into an initialised buffer.
                    let n = io::Read::read(&mut fd.get_ref(), buf)?;
                    Ok((n, None))
                })
            };
            match result {
                Ok(Ok((n, None))) => return Ok(Datagram::V4(&buf[..n])),
                Ok(Ok((n, Some((_, src, dst, hop_limit))))) => {
                    return Ok(Datagram::V6 {
                        src,
                        dst,
                        hop_limit,
                        payload: &buf[..n],
                    })
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Send one VRRP message (`msg`, checksum already in it) from `src` to `dst`.
    /// `scratch` is reused to avoid an allocation per advert.
    pub fn send(
        &self,
        src: IpAddr,
        dst: IpAddr,
        msg: &[u8],
        scratch: &mut Vec<u8>,
    ) -> io::Result<()> {
        match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                scratch.clear();
                packet::encode_ipv4(src, dst, 255, msg, scratch);
                let to = SockAddr::from(SocketAddrV4::new(dst, 0));
                self.fd.get_ref().send_to(scratch, &to)?;
                Ok(())
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                send_v6(self.fd.get_ref(), src, dst, self.ifindex, msg)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "mixed address families",
            )),
        }
    }
}

fn register(s: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: the Socket owns its fd and keeps it open until the AsyncFd drops it.
    unsafe { AsyncFd::register(s) }.map_err(|e| e.into_parts().1)
}

/// The multicast group VRRP uses for this family.
pub fn multicast_group(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(MCAST_V6)
    } else {
        IpAddr::V4(MCAST_V4)
    }
}

/// As root, past the host's `net.core.rmem_max`; else as large as that allows.
fn size_recv_buffer(s: &Socket) {
    let size = i32::try_from(RECV_BUFFER).unwrap_or(i32::MAX);
    if setsockopt_int(s, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, size).is_err() {
        let _ = s.set_recv_buffer_size(RECV_BUFFER);
    }
}

fn setsockopt_int(s: &Socket, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: passing a valid pointer to an int of the stated size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// recvmsg with IPV6_HOPLIMIT and IPV6_PKTINFO ancillary data.
fn recv_v6(s: &Socket, buf: &mut [u8]) -> io::Result<(usize, Ipv6Addr, Ipv6Addr, u8)> {
    // SAFETY: sockaddr_in6 is plain integers; all zeros is a valid value.
    let mut name: libc::sockaddr_in6 = unsafe { zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // 128 bytes, 8-aligned.
    let mut control = [MaybeUninit::<u64>::uninit(); 16];
    // SAFETY: msghdr is integers and pointers; all zeros (null, 0) is a valid value.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: msghdr points at live buffers of the stated lengths for the duration of the call.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut hop_limit = 0u8;
    let mut dst = Ipv6Addr::UNSPECIFIED;
    // SAFETY: the kernel filled msg_control; CMSG_* walk it within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let data = libc::CMSG_DATA(cmsg);
            match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                    let v = std::ptr::read_unaligned(data.cast::<i32>());
                    hop_limit = u8::try_from(v).unwrap_or(0);
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    dst = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    let src = Ipv6Addr::from(name.sin6_addr.s6_addr);
    Ok((n as usize, src, dst, hop_limit))
}

/// sendmsg with IPV6_PKTINFO so the source is the address we advertise (and checksummed).
fn send_v6(
    s: &Socket,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ifindex: u32,
    msg_bytes: &[u8],
) -> io::Result<()> {
    let to = SocketAddr::V6(SocketAddrV6::new(dst, 0, 0, ifindex));
    let to = SockAddr::from(to);
    let mut iov = libc::iovec {
        iov_base: msg_bytes.as_ptr() as *mut _,
        iov_len: msg_bytes.len(),
    };
    let mut control = [MaybeUninit::<u64>::uninit(); 8]; // 64 bytes
                                                         // SAFETY: as in recv_v6; CMSG_SPACE of in6_pktinfo (20 bytes) fits in 64.
    unsafe {
        let mut msg: libc::msghdr = zeroed();
        msg.msg_name = to.as_ptr() as *mut _;
        msg.msg_namelen = to.len();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
        (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as usize;
        let info = libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: src.octets(),
            },
            ipi6_ifindex: ifindex,
        };
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>(), info);
        if libc::sendmsg(s.as_raw_fd(), &msg, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The source we would use towards a v4 destination when none is configured.
pub fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}
