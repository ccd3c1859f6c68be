//! Doing things inside a named network namespace from the test process itself: a short-lived
//! thread joins the namespace (`setns` affects only the calling thread), opens its sockets there
//! and hands them back. Sockets keep the namespace they were created in.
// unsafe here: `setns(2)` and raw sockets for the test harness.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};

/// Where `ip netns add` keeps its namespace handles.
pub fn netns_path(ns: &str) -> PathBuf {
    PathBuf::from("/var/run/netns").join(ns)
}

/// Runs `f` on a thread that has joined network namespace `ns`, and returns its result.
pub fn in_netns<R: Send>(ns: &str, f: impl FnOnce() -> Result<R> + Send) -> Result<R> {
    let handle = File::open(netns_path(ns)).with_context(|| format!("open netns {ns}"))?;
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: plain syscall on a valid fd; it changes this thread's namespace only.
            if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error()).context(format!("setns({ns})"));
            }
            f()
        })
        .join()
        .map_err(|_| anyhow!("thread inside netns {ns} panicked"))?
    })
}

fn cvt(ret: libc::c_int, what: &str) -> Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error()).context(what.to_string())
    } else {
        Ok(ret)
    }
}

pub(crate) fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> Result<OwnedFd> {
    // SAFETY: socket() returns a fresh fd or -1.
    let fd = cvt(
        unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) },
        "socket",
    )?;
    // SAFETY: fd is a freshly created descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn setsockopt<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> Result<()> {
    // SAFETY: value points to a live T of the given size.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    cvt(ret, "setsockopt").map(|_| ())
}

fn bind_to_device(fd: RawFd, ifname: &str) -> Result<()> {
    let name = CString::new(ifname)?;
    let bytes = name.as_bytes_with_nul();
    // SAFETY: bytes is a valid buffer of the given length.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            bytes.as_ptr().cast(),
            bytes.len() as libc::socklen_t,
        )
    };
    cvt(ret, "SO_BINDTODEVICE").map(|_| ())
}

/// The index of interface `ifname` in the calling thread's namespace.
pub(crate) fn ifindex(ifname: &str) -> Result<u32> {
    let name = CString::new(ifname)?;
    // SAFETY: valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if idx == 0 {
        bail!("no interface {ifname}: {}", io::Error::last_os_error());
    }
    Ok(idx)
}

fn sockaddr_in(addr: Ipv4Addr) -> libc::sockaddr_in {
    // SAFETY: all-zero is a valid sockaddr_in.
    let mut sa: libc::sockaddr_in = unsafe { mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_addr.s_addr = u32::from_ne_bytes(addr.octets());
    sa
}

fn sockaddr_in6(addr: Ipv6Addr, scope: u32) -> libc::sockaddr_in6 {
    // SAFETY: all-zero is a valid sockaddr_in6.
    let mut sa: libc::sockaddr_in6 = unsafe { mem::zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_addr.s6_addr = addr.octets();
    sa.sin6_scope_id = scope;
    sa
}

fn send_to<T>(fd: RawFd, buf: &[u8], sa: &T) -> Result<()> {
    // SAFETY: buf and sa are valid for the lengths given.
    let n = unsafe {
        libc::sendto(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            0,
            (sa as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error()).context("sendto");
    }
    if n as usize != buf.len() {
        bail!("sendto sent {n} of {} bytes", buf.len());
    }
    Ok(())
}

/// Sends a complete IPv4 packet (header included) out of `ifname` inside namespace `ns`, through
/// an `IPPROTO_RAW` socket (which implies `IP_HDRINCL`). The destination is read from the
/// header (bytes 16..20): 224.0.0.18 for VRRP multicast, or a unicast peer.
///
/// The kernel fills in the IP header checksum and total length (and the id and source when
/// they are zero); everything else, TTL included, goes out as given.
pub fn send_raw_ipv4(ns: &str, ifname: &str, packet: &[u8]) -> Result<()> {
    if packet.len() < 20 || packet[0] >> 4 != 4 {
        bail!("not an IPv4 packet ({} bytes)", packet.len());
    }
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    in_netns(ns, || {
        let sock = socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW)?;
        bind_to_device(sock.as_raw_fd(), ifname)?;
        send_to(sock.as_raw_fd(), packet, &sockaddr_in(dst))
            .with_context(|| format!("raw IPv4 send to {dst} out of {ns}/{ifname}"))
    })
}

/// Sends `payload` as an IPv6 packet with next header 112 (VRRP) from `src` to `dst` out of
/// `ifname` inside namespace `ns`, with the given hop limit. The payload goes out as given
/// (the kernel computes no checksum for it). `src` must be an address of that host
/// (a link-local one for VRRPv3).
pub fn send_raw_ipv6(
    ns: &str,
    ifname: &str,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    payload: &[u8],
) -> Result<()> {
    in_netns(ns, || {
        let idx = ifindex(ifname)?;
        let sock = socket(libc::AF_INET6, libc::SOCK_RAW, 112)?;
        let fd = sock.as_raw_fd();
        bind_to_device(fd, ifname)?;
        let hops = libc::c_int::from(hop_limit);
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &hops)?;
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &hops)?;
        setsockopt(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MULTICAST_IF,
            &(idx as libc::c_int),
        )?;
        let local = sockaddr_in6(src, idx);
        // SAFETY: local is a valid sockaddr_in6.
        let ret = unsafe {
            libc::bind(
                fd,
                (&local as *const libc::sockaddr_in6).cast(),
                mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        };
        cvt(ret, "bind IPv6 source").with_context(|| format!("source {src} in {ns}"))?;
        send_to(fd, payload, &sockaddr_in6(dst, idx))
            .with_context(|| format!("raw IPv6 send to {dst} out of {ns}/{ifname}"))
    })
}

/// An `AF_PACKET` datagram socket bound to `ifname` in `ns`, seeing every packet in and out of
/// it (network-layer payload, no link header), with a short receive timeout.
pub(crate) fn packet_socket(ns: &str, ifname: &str) -> Result<(OwnedFd, u32)> {
    in_netns(ns, || {
        let idx = ifindex(ifname)?;
        let proto = (libc::ETH_P_ALL as u16).to_be();
        let sock = socket(libc::AF_PACKET, libc::SOCK_DGRAM, libc::c_int::from(proto))?;
        // SAFETY: all-zero is a valid sockaddr_ll.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = idx as libc::c_int;
        // SAFETY: sll is a valid sockaddr_ll.
        let ret = unsafe {
            libc::bind(
                sock.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        cvt(ret, "bind AF_PACKET")?;
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 50_000,
        };
        setsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
        Ok((sock, idx))
    })
}

/// One frame read from a packet socket.
pub(crate) struct Frame {
    pub ethertype: u16,
    pub ifindex: u32,
    pub outgoing: bool,
    pub len: usize,
}

/// Reads one frame into `buf`; `Ok(None)` on timeout or a transient error.
pub(crate) fn recv_frame(fd: RawFd, buf: &mut [u8]) -> Result<Option<Frame>> {
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: buf and sll are valid for the lengths given.
    let n = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            (&mut sll as *mut libc::sockaddr_ll).cast(),
            &mut len,
        )
    };
    if n < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EAGAIN | libc::EINTR | libc::ENETDOWN | libc::ENXIO) => Ok(None),
            _ => Err(err).context("recvfrom AF_PACKET"),
        };
    }
    Ok(Some(Frame {
        ethertype: u16::from_be(sll.sll_protocol),
        ifindex: sll.sll_ifindex as u32,
        outgoing: sll.sll_pkttype == libc::PACKET_OUTGOING,
        len: n as usize,
    }))
}

/// Parses an address literal, with a readable error.
pub fn parse_ip(addr: &str) -> Result<IpAddr> {
    addr.parse()
        .with_context(|| format!("not an IP address: {addr:?}"))
}
