//! The kernel-side filter of a raw VRRP socket (classic BPF, `SO_ATTACH_FILTER`): only packets
//! with TTL / hop limit 255 and one of the VRIDs configured on that socket are queued. Anything
//! else (a flood of TTL-1 or unknown-VRID protocol-112 packets) is dropped before it takes a
//! place in the receive queue that real adverts share, and before the daemon spends a wake-up on
//! it. Such packets are therefore not counted by the daemon; what passes is still checked and
//! counted in user space (`vrrp::receive`).
//!
//! What the filter sees: on a raw IPv4 socket, the IPv4 packet from its header (offset 0); on a
//! raw IPv6 socket, the VRRP message only (the IPv6 header is not in the payload), so the hop
//! limit is read through the kernel's `SKF_NET_OFF` base, relative to the network header.
//! (`IPV6_MINHOPCOUNT` would be the other way, but the kernel applies it to TCP only.)

use socket2::SockFilter;

use upkeep_vrrp::packet::IPPROTO_VRRP;

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const LD_B_ABS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
const LD_B_IND: u16 = 0x50; // BPF_LD | BPF_B | BPF_IND
const LDX_B_MSH: u16 = 0xb1; // BPF_LDX | BPF_B | BPF_MSH: X = 4 * (P[k] & 0xf)
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGT_K: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// `SKF_NET_OFF`: loads at this base are relative to the network (IP) header.
const NET_OFF: i32 = -0x10_0000;
/// Keep the whole packet.
const ACCEPT: u32 = u32::MAX;
const TTL: u32 = 255;

/// One classic BPF instruction, kept readable (socket2's type hides its fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

/// The filter for one socket: TTL / hop limit 255 and a VRID in `vrids`. Drops every packet
/// when `vrids` is empty. Every jump is at most two instructions forward (drops and accepts are
/// placed inline), so any set of VRIDs fits the 8-bit jump offsets.
pub fn program(v6: bool, vrids: &[u8]) -> Vec<Insn> {
    program_with(v6, vrids, &[])
}

/// [`program`], also passing the VRIDs in `any_ttl` whatever their TTL / hop limit: instances
/// with routed unicast peers (`min-ttl=` / `max-ttl=`), whose TTL user space checks per peer.
pub fn program_with(v6: bool, vrids: &[u8], any_ttl: &[u8]) -> Vec<Insn> {
    let mut p = Vec::new();
    let relaxed: Vec<u8> = any_ttl
        .iter()
        .copied()
        .filter(|v| vrids.contains(v))
        .collect();
    if !relaxed.is_empty() {
        // Those VRIDs first, before the TTL is looked at.
        load_vrid(&mut p, v6);
        accept_vrids(&mut p, &relaxed);
    }
    if v6 {
        // Hop limit: byte 7 of the IPv6 header.
        p.push(insn(LD_B_ABS, 0, 0, (NET_OFF + 7) as u32));
    } else {
        p.push(insn(LD_B_ABS, 0, 0, 8)); // TTL
    }
    p.push(insn(JEQ_K, 1, 0, TTL));
    p.push(insn(RET_K, 0, 0, 0));
    load_vrid(&mut p, v6);
    accept_vrids(&mut p, vrids);
    p.push(insn(RET_K, 0, 0, 0));
    p
}

/// Loads the VRID into A; on IPv4, dropping first what is not protocol 112.
fn load_vrid(p: &mut Vec<Insn>, v6: bool) {
    if v6 {
        // Byte 1 of the VRRP message, which the socket's data starts with.
        p.push(insn(LD_B_ABS, 0, 0, 1));
    } else {
        p.push(insn(LD_B_ABS, 0, 0, 9)); // protocol
        p.push(insn(JEQ_K, 1, 0, u32::from(IPPROTO_VRRP)));
        p.push(insn(RET_K, 0, 0, 0));
        // Byte 1 after the header, whose length is in the low nibble of byte 0.
        p.push(insn(LDX_B_MSH, 0, 0, 0));
        p.push(insn(LD_B_IND, 0, 0, 1));
    }
}

/// Accepts the packet when A is one of `vrids`, a run of consecutive ones at a time; falls
/// through otherwise.
fn accept_vrids(p: &mut Vec<Insn>, vrids: &[u8]) {
    let mut sorted = vrids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    for (lo, hi) in ranges(&sorted) {
        if lo == hi {
            p.push(insn(JEQ_K, 0, 1, u32::from(lo)));
        } else {
            // lo <= A <= hi: A < lo skips the range's last two instructions, A > hi its last.
            p.push(insn(JGE_K, 0, 2, u32::from(lo)));
            p.push(insn(JGT_K, 1, 0, u32::from(hi)));
        }
        p.push(insn(RET_K, 0, 0, ACCEPT));
    }
}

/// Runs of consecutive values in a sorted, deduplicated list.
fn ranges(sorted: &[u8]) -> Vec<(u8, u8)> {
    let mut out: Vec<(u8, u8)> = Vec::new();
    for &v in sorted {
        match out.last_mut() {
            Some((_, hi)) if u16::from(*hi) + 1 == u16::from(v) => *hi = v,
            _ => out.push((v, v)),
        }
    }
    out
}

/// Attach (or replace, atomically) the filter on `socket`.
pub fn attach(
    socket: &socket2::Socket,
    v6: bool,
    vrids: &[u8],
    any_ttl: &[u8],
) -> std::io::Result<()> {
    let prog: Vec<SockFilter> = program_with(v6, vrids, any_ttl)
        .into_iter()
        .map(|i| SockFilter::new(i.code, i.jt, i.jf, i.k))
        .collect();
    socket.attach_filter(&prog)
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Socket, Type};
    use std::time::Duration;

    /// A minimal IPv4 packet carrying the start of a VRRP message.
    fn ipv4(ttl: u8, proto: u8, ihl_words: u8, vrid: u8) -> Vec<u8> {
        let mut p = vec![0u8; usize::from(ihl_words) * 4];
        p[0] = 0x40 | ihl_words;
        p[8] = ttl;
        p[9] = proto;
        p.extend_from_slice(&[0x31, vrid, 100, 1, 0, 100, 0, 0, 192, 0, 2, 100]);
        p
    }

    #[test]
    fn jumps_stay_short_for_any_set_of_vrids() {
        let every_other: Vec<u8> = (1..=255).step_by(2).collect();
        let all: Vec<u8> = (1..=255).collect();
        for set in [&every_other[..], &all[..], &[][..], &[7][..]] {
            for v6 in [false, true] {
                let p = program_with(v6, set, set);
                assert!(p.len() <= 4096, "BPF_MAXINSNS");
                // Every jump lands inside the program (BPF_JMP is class 5).
                for (at, i) in p.iter().enumerate().filter(|(_, i)| i.code & 7 == 5) {
                    assert!(
                        at + 1 + usize::from(i.jt.max(i.jf)) < p.len(),
                        "{i:?} at {at}"
                    );
                }
                assert_eq!(p.last().map(|i| (i.code, i.k)), Some((RET_K, 0)));
            }
        }
        // Consecutive VRIDs are one range: 255 instances cost a handful of instructions.
        assert_eq!(program(false, &all).len(), 8 + 3 + 1);
    }

    /// The kernel runs the IPv4 program on datagrams of a Unix socket pair (no root needed;
    /// the data starts where a raw IPv4 socket's does, at the IP header).
    #[test]
    fn the_kernel_passes_only_ttl_255_vrrp_for_the_configured_vrids() {
        let (tx, rx) = Socket::pair(Domain::UNIX, Type::DGRAM, None).expect("socketpair");
        attach(&rx, false, &[5, 9, 10, 11, 200], &[]).expect("attach");
        rx.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let passes = |pkt: Vec<u8>| {
            tx.send(&pkt).expect("send");
            let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 256];
            rx.recv(&mut buf).is_ok()
        };
        for vrid in [5, 9, 10, 11, 200] {
            assert!(passes(ipv4(255, 112, 5, vrid)), "vrid {vrid}");
        }
        // IP options move the VRRP header: the VRID is found after them.
        assert!(passes(ipv4(255, 112, 6, 10)));
        assert!(!passes(ipv4(255, 112, 6, 12)));
        for vrid in [0, 4, 6, 8, 12, 199, 201, 255] {
            assert!(!passes(ipv4(255, 112, 5, vrid)), "vrid {vrid}");
        }
        assert!(!passes(ipv4(1, 112, 5, 9)), "TTL 1");
        assert!(!passes(ipv4(254, 112, 5, 9)), "TTL 254");
        assert!(!passes(ipv4(255, 17, 5, 9)), "not VRRP");
        assert!(!passes(vec![0x45, 0, 0]), "too short to read: dropped");
        // Replaced on a reload: the new set only.
        attach(&rx, false, &[12], &[]).expect("re-attach");
        assert!(passes(ipv4(255, 112, 5, 12)));
        assert!(!passes(ipv4(255, 112, 5, 9)));
        // A VRID with routed unicast peers passes whatever its TTL; the others still need 255,
        // and a VRID not configured is not let in by being listed among the relaxed ones.
        attach(&rx, false, &[12, 13], &[13, 14]).expect("re-attach");
        assert!(passes(ipv4(64, 112, 5, 13)));
        assert!(passes(ipv4(6, 112, 6, 13)), "after IP options too");
        assert!(passes(ipv4(255, 112, 5, 13)));
        assert!(!passes(ipv4(64, 112, 5, 12)));
        assert!(passes(ipv4(255, 112, 5, 12)));
        assert!(!passes(ipv4(64, 112, 5, 14)));
        assert!(!passes(ipv4(64, 17, 5, 13)), "not VRRP");
    }
}
