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
    /// The VRIDs its kernel filter passes, and those of them it passes whatever their TTL;
    /// None until the first is attached (all pass).
    vrids: Mutex<Option<(Vec<u8>, Vec<u8>)>>,
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

    /// Also hear the adverts sent to `group` (an instance's `multicast-group`); joining a group
    /// twice is not an error.
    pub fn join(&self, group: IpAddr) -> io::Result<()> {
        let s = self.fd.get_ref();
        let r = match group {
            IpAddr::V4(g) => {
                s.join_multicast_v4_n(&g, &InterfaceIndexOrAddress::Index(self.ifindex))
            }
            IpAddr::V6(g) => s.join_multicast_v6(&g, self.ifindex),
        };
        match r {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => Ok(()),
            other => other,
        }
    }

    /// Let the kernel queue only packets for these VRIDs (TTL / hop limit 255 as well); a
    /// no-op if that is the filter already.
    pub fn set_vrids(&self, vrids: &[u8], any_ttl: &[u8]) -> io::Result<()> {
        let norm = |v: &[u8]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v.dedup();
            v
        };
        let want = (norm(vrids), norm(any_ttl));
        let mut current = self.vrids.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref() == Some(&want) {
            return Ok(());
        }
        filter::attach(self.fd.get_ref(), self.v6, &want.0, &want.1)?;
        *current = Some(want);
        Ok(())
    }

    /// Add one VRID to those the filter passes (an instance wired onto this socket).
    pub fn allow_vrid(&self, vrid: u8) -> io::Result<()> {
        let (mut want, any_ttl) = self
            .vrids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default();
        if want.contains(&vrid) {
            return Ok(());
        }
        want.push(vrid);
        self.set_vrids(&want, &any_ttl)
    }

    /// Wait for datagrams and read as many as have arrived, up to [`BATCH`], with one
    /// `recvmmsg` call: a master's burst of adverts for many instances is one wake-up.
    pub async fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| recv_many(fd.get_ref(), batch, self.v6)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

/// Datagrams for one [`VrrpSocket::send_batch`]: whole IPv4 packets (header included) or
/// IPv6 VRRP messages, each with its addresses.
#[derive(Debug, Default)]
pub struct SendBatch {
    bytes: Vec<u8>,
    msgs: Vec<Out>,
}

#[derive(Debug, Clone, Copy)]
struct Out {
    start: usize,
    len: usize,
    src: IpAddr,
    dst: IpAddr,
    /// IPv6: the hop limit (IPv4 has it in the header already).
    ttl: u8,
}

impl SendBatch {
    /// Queue one datagram, as [`VrrpSocket::datagram`] built it for this TTL / hop limit.
    pub fn push(&mut self, src: IpAddr, dst: IpAddr, ttl: u8, datagram: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(datagram);
        self.msgs.push(Out {
            start,
            len: datagram.len(),
            src,
            dst,
            ttl,
        });
    }

    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.msgs.clear();
    }

    /// The destination of datagram `k`.
    pub fn destination(&self, k: usize) -> Option<IpAddr> {
        self.msgs.get(k).map(|m| m.dst)
    }
}

impl VrrpSocket {
    /// What [`VrrpSocket::send_batch`] sends for one VRRP message `msg` (checksum already in
    /// it): on IPv4 the packet with its header (TTL `ttl`), on IPv6 the message itself (the
    /// hop limit goes beside it: [`SendBatch::push`]).
    pub fn datagram(
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        msg: &[u8],
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        out.clear();
        match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => packet::encode_ipv4(src, dst, ttl, msg, out),
            (IpAddr::V6(_), IpAddr::V6(_)) => out.extend_from_slice(msg),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "mixed address families",
                ))
            }
        }
        Ok(())
    }

    /// Send every datagram of `batch` with as few `sendmmsg` calls as the kernel allows
    /// ([`BATCH`] at a time): a master's adverts for many instances, due in one wake-up, cost
    /// one system call rather than one each. `results` gets one entry per datagram, in order.
    pub fn send_batch(&self, batch: &SendBatch, results: &mut Vec<io::Result<()>>) {
        results.clear();
        for chunk in batch.msgs.chunks(BATCH) {
            let mut done = 0;
            while done < chunk.len() {
                match send_many(
                    self.fd.get_ref(),
                    &batch.bytes,
                    &chunk[done..],
                    self.ifindex,
                ) {
                    Ok(n) => {
                        results.extend((0..n).map(|_| Ok(())));
                        done += n;
                    }
                    // The first datagram of the call failed: say so, and go on after it.
                    Err(e) => {
                        results.push(Err(e));
                        done += 1;
                    }
                }
            }
        }
    }
}

/// One `sendmmsg` call for `msgs` (at most [`BATCH`]); returns how many the kernel took
/// (at least one), or the first one's error. IPv6 datagrams carry their source and interface
/// in IPV6_PKTINFO, so the source is the address advertised (and checksummed).
fn send_many(s: &Socket, bytes: &[u8], msgs: &[Out], ifindex: u32) -> io::Result<usize> {
    let n = msgs.len().min(BATCH);
    let names: Vec<SockAddr> = msgs[..n]
        .iter()
        .map(|m| match m.dst {
            IpAddr::V4(d) => SockAddr::from(SocketAddrV4::new(d, 0)),
            IpAddr::V6(d) => SockAddr::from(SocketAddr::V6(SocketAddrV6::new(d, 0, 0, ifindex))),
        })
        .collect();
    let mut iovs: Vec<libc::iovec> = msgs[..n]
        .iter()
        .map(|m| libc::iovec {
            iov_base: bytes[m.start..m.start + m.len].as_ptr() as *mut _,
            iov_len: m.len,
        })
        .collect();
    // 64 bytes of control room per message: CMSG_SPACE of in6_pktinfo (20 bytes) and of an
    // int fit.
    let mut control = vec![[0u64; 8]; n];
    // SAFETY: every pointer in the headers (names, iovecs, control buffers, the bytes the
    // iovecs point into) outlives the sendmmsg call; control buffers are u64-aligned and large
    // enough for one in6_pktinfo message, written through the CMSG macros.
    let sent = unsafe {
        let mut hdrs: Vec<libc::mmsghdr> = Vec::with_capacity(n);
        for k in 0..n {
            let mut msg: libc::msghdr = zeroed();
            msg.msg_name = names[k].as_ptr() as *mut _;
            msg.msg_namelen = names[k].len();
            msg.msg_iov = &mut iovs[k];
            msg.msg_iovlen = 1;
            if let IpAddr::V6(src) = msgs[k].src {
                msg.msg_control = control[k].as_mut_ptr().cast();
                msg.msg_controllen =
                    libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize;
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
                // The hop limit of this packet (the socket's are 255), when another is asked
                // for (`unicast-ttl`): a second control message (the buffer is zeroed, as
                // CMSG_NXTHDR reads the next header's length).
                if msgs[k].ttl != 255 {
                    msg.msg_controllen +=
                        libc::CMSG_SPACE(size_of::<libc::c_int>() as u32) as usize;
                    let next = libc::CMSG_NXTHDR(&msg, cmsg);
                    (*next).cmsg_level = libc::IPPROTO_IPV6;
                    (*next).cmsg_type = libc::IPV6_HOPLIMIT;
                    (*next).cmsg_len = libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as usize;
                    std::ptr::write_unaligned(
                        libc::CMSG_DATA(next).cast::<libc::c_int>(),
                        libc::c_int::from(msgs[k].ttl),
                    );
                }
            }
            hdrs.push(libc::mmsghdr {
                msg_hdr: msg,
                msg_len: 0,
            });
        }
        libc::sendmmsg(s.as_raw_fd(), hdrs.as_mut_ptr(), n as libc::c_uint, 0)
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((sent as usize).max(1))
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

/// Datagrams taken from a socket in one call.
pub const BATCH: usize = 32;
/// Room for the largest advert: IPv6 with 255 addresses (8 + 255 x 16 bytes), or IPv4 with
/// its header.
const SLOT: usize = 4096;

/// Buffers for [`VrrpSocket::recv_batch`], kept by the reader between calls.
pub struct RecvBatch {
    bufs: Vec<u8>,
    got: Vec<Got>,
}

#[derive(Debug, Clone, Copy)]
struct Got {
    len: usize,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self {
            bufs: vec![0; BATCH * SLOT],
            got: Vec::with_capacity(BATCH),
        }
    }
}

impl RecvBatch {
    /// The `i`th datagram of the last receive.
    pub fn get(&self, i: usize, v6: bool) -> Option<Datagram<'_>> {
        let g = self.got.get(i)?;
        let bytes = &self.bufs[i * SLOT..i * SLOT + g.len];
        Some(if v6 {
            Datagram::V6 {
                src: g.src,
                dst: g.dst,
                hop_limit: g.hop_limit,
                payload: bytes,
            }
        } else {
            Datagram::V4(bytes)
        })
    }
}

/// recvmmsg into the batch's slots; IPv6 also takes the source and, from the ancillary data,
/// IPV6_HOPLIMIT and IPV6_PKTINFO's destination.
fn recv_many(s: &Socket, batch: &mut RecvBatch, v6: bool) -> io::Result<usize> {
    batch.got.clear();
    // SAFETY: iovec is a pointer and a length; all zeros (null, 0) is a valid value.
    let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
    // SAFETY: sockaddr_in6 is plain integers; all zeros is a valid value.
    let mut names: [libc::sockaddr_in6; BATCH] = unsafe { zeroed() };
    // SAFETY: mmsghdr is integers and pointers; all zeros (null, 0) is a valid value.
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    // 128 bytes of control data per datagram, 8-aligned.
    let mut controls = [[MaybeUninit::<u64>::uninit(); 16]; BATCH];
    // One pointer for all slots (not one borrow of the buffer per slot).
    let base = batch.bufs.as_mut_ptr();
    for (i, ((iov, name), (hdr, control))) in iovs
        .iter_mut()
        .zip(names.iter_mut())
        .zip(hdrs.iter_mut().zip(controls.iter_mut()))
        .enumerate()
    {
        // SAFETY: slot i lies within bufs, which holds BATCH * SLOT bytes.
        iov.iov_base = unsafe { base.add(i * SLOT) }.cast();
        iov.iov_len = SLOT;
        hdr.msg_hdr.msg_iov = iov;
        hdr.msg_hdr.msg_iovlen = 1;
        if v6 {
            hdr.msg_hdr.msg_name = (name as *mut libc::sockaddr_in6).cast();
            hdr.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            hdr.msg_hdr.msg_control = control.as_mut_ptr().cast();
            hdr.msg_hdr.msg_controllen = std::mem::size_of_val(control);
        }
    }
    // SAFETY: every header points at live buffers of the stated lengths for the call; the
    // socket is non-blocking, so this returns what has arrived (EAGAIN if nothing).
    let n = unsafe {
        libc::recvmmsg(
            s.as_raw_fd(),
            hdrs.as_mut_ptr(),
            BATCH as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    for (hdr, name) in hdrs.iter().zip(names.iter()).take(n) {
        let (mut dst, mut hop_limit) = (Ipv6Addr::UNSPECIFIED, 0u8);
        if v6 {
            // SAFETY: the kernel filled msg_control; CMSG_* walk it within msg_controllen.
            unsafe {
                let mut cmsg = libc::CMSG_FIRSTHDR(&hdr.msg_hdr);
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
                    cmsg = libc::CMSG_NXTHDR(&hdr.msg_hdr, cmsg);
                }
            }
        }
        batch.got.push(Got {
            len: (hdr.msg_len as usize).min(SLOT),
            src: Ipv6Addr::from(name.sin6_addr.s6_addr),
            dst,
            hop_limit,
        });
    }
    Ok(n)
}

/// The source we would use towards a v4 destination when none is configured.
pub fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}
