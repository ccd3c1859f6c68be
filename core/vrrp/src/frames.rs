//! Byte builders for the frames a new master sends to announce its virtual
//! addresses: gratuitous ARP for IPv4 and unsolicited Neighbor Advertisement
//! for IPv6.
//!
//! Sans-IO: these functions only build bytes. Choosing interfaces, opening
//! `AF_PACKET` / `IPPROTO_ICMPV6` sockets, setting the hop limit and pacing
//! repeats (timers) is the caller's job.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Ethertype of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// Ethertype of IPv4 (the ARP protocol type).
pub const ETH_P_IP: u16 = 0x0800;
/// Ethernet broadcast address.
pub const ETH_BROADCAST: [u8; 6] = [0xff; 6];
/// Minimum Ethernet frame length without FCS; shorter frames are padded.
pub const ETH_MIN_FRAME_LEN: usize = 60;
/// All-nodes link-local multicast group, the destination of unsolicited NAs.
pub const ALL_NODES_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Hop limit Neighbor Discovery messages must carry (RFC 4861 7.1.2).
pub const ND_HOP_LIMIT: u8 = 255;
/// ICMPv6 type of Neighbor Advertisement.
pub const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
/// Length of the NA built by [`unsolicited_na`].
pub const NA_LEN: usize = 32;

const ARPHRD_ETHER: u16 = 1;
const ARPOP_REQUEST: u16 = 1;
// NA flag bits, in the first byte after the checksum (RFC 4861 4.4).
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_OVERRIDE: u8 = 0x20;
/// ND option "Target Link-Layer Address" (RFC 4861 4.6.1).
const ND_OPT_TARGET_LLADDR: u8 = 2;

/// Ethernet broadcast gratuitous ARP *request* (as keepalived sends): dst
/// ff:ff:ff:ff:ff:ff, src `mac`, ethertype 0x0806, htype 1, ptype 0x0800,
/// hlen 6, plen 4, op 1, sha = `mac`, spa = `ip`, tha = 00..00, tpa = `ip`.
/// Padded with zeros to the 60-byte Ethernet minimum, ready for an
/// `AF_PACKET`/`SOCK_RAW` socket.
///
/// A request rather than a reply because some hosts only update their ARP
/// cache from requests.
pub fn gratuitous_arp(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_MIN_FRAME_LEN);
    // Ethernet header.
    f.extend_from_slice(&ETH_BROADCAST);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    // ARP payload.
    f.extend_from_slice(&ARPHRD_ETHER.to_be_bytes());
    f.extend_from_slice(&ETH_P_IP.to_be_bytes());
    f.push(6); // hardware address length
    f.push(4); // protocol address length
    f.extend_from_slice(&ARPOP_REQUEST.to_be_bytes());
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&ip.octets());
    f.resize(ETH_MIN_FRAME_LEN, 0);
    f
}

/// ICMPv6 Neighbor Advertisement body (type 136, code 0, checksum 0: the
/// kernel fills it in on an `IPPROTO_ICMPV6` raw socket), flags Override only
/// (not Solicited, not Router), target = `target`, then option 2 (target
/// link-layer address) carrying `mac`. Send to [`ALL_NODES_V6`] with hop
/// limit [`ND_HOP_LIMIT`].
///
/// Override is set so neighbours replace a cache entry that still points at
/// the old master. See [`neighbor_advert`] to also set Router.
pub fn unsolicited_na(mac: [u8; 6], target: Ipv6Addr) -> Vec<u8> {
    neighbor_advert(mac, target, false)
}

/// As [`unsolicited_na`], with the Router flag set when `router` is true.
/// RFC 5798 6.4.2 asks for R set; keepalived sets it only when the interface
/// forwards IPv6, since R tells hosts they may use the address as a router.
pub fn neighbor_advert(mac: [u8; 6], target: Ipv6Addr, router: bool) -> Vec<u8> {
    let flags = if router {
        NA_FLAG_OVERRIDE | NA_FLAG_ROUTER
    } else {
        NA_FLAG_OVERRIDE
    };
    let mut p = Vec::with_capacity(NA_LEN);
    p.push(ICMPV6_NEIGHBOR_ADVERT);
    p.push(0); // code
    p.extend_from_slice(&[0, 0]); // checksum, filled by the kernel
    p.extend_from_slice(&[flags, 0, 0, 0]); // flags + reserved
    p.extend_from_slice(&target.octets());
    p.push(ND_OPT_TARGET_LLADDR);
    p.push(1); // option length in units of 8 bytes
    p.extend_from_slice(&mac);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x33];

    #[test]
    fn gratuitous_arp_layout() {
        let ip = Ipv4Addr::new(192, 0, 2, 100);
        let f = gratuitous_arp(MAC, ip);
        assert_eq!(f.len(), 60);
        // Ethernet header.
        assert_eq!(&f[0..6], &[0xff; 6], "destination: broadcast");
        assert_eq!(&f[6..12], &MAC, "source MAC");
        assert_eq!(&f[12..14], &[0x08, 0x06], "ethertype ARP");
        // ARP.
        assert_eq!(&f[14..16], &[0x00, 0x01], "htype Ethernet");
        assert_eq!(&f[16..18], &[0x08, 0x00], "ptype IPv4");
        assert_eq!(f[18], 6, "hlen");
        assert_eq!(f[19], 4, "plen");
        assert_eq!(&f[20..22], &[0x00, 0x01], "op request");
        assert_eq!(&f[22..28], &MAC, "sha");
        assert_eq!(&f[28..32], &[192, 0, 2, 100], "spa");
        assert_eq!(&f[32..38], &[0; 6], "tha");
        assert_eq!(&f[38..42], &[192, 0, 2, 100], "tpa");
        assert_eq!(&f[42..60], &[0; 18], "padding");
    }

    #[test]
    fn gratuitous_arp_golden() {
        let f = gratuitous_arp(
            [0x02, 0x11, 0x22, 0x33, 0x44, 0x55],
            Ipv4Addr::new(10, 1, 2, 3),
        );
        let mut want = vec![
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x08, 0x06,
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 10,
            1, 2, 3, 0, 0, 0, 0, 0, 0, 10, 1, 2, 3,
        ];
        want.resize(60, 0);
        assert_eq!(f, want);
    }

    #[test]
    fn unsolicited_na_layout() {
        let target = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x64);
        let p = unsolicited_na(MAC, target);
        assert_eq!(p.len(), NA_LEN);
        assert_eq!(p[0], 136, "type");
        assert_eq!(p[1], 0, "code");
        assert_eq!(&p[2..4], &[0, 0], "checksum left to the kernel");
        assert_eq!(p[4], 0x20, "flags: O only (R=0x80, S=0x40 clear)");
        assert_eq!(&p[5..8], &[0, 0, 0], "reserved");
        assert_eq!(&p[8..24], &target.octets(), "target address");
        assert_eq!(p[24], 2, "option: target link-layer address");
        assert_eq!(p[25], 1, "option length: 8 bytes");
        assert_eq!(&p[26..32], &MAC, "link-layer address");
    }

    #[test]
    fn unsolicited_na_golden() {
        let p = unsolicited_na(
            [0x02, 0x11, 0x22, 0x33, 0x44, 0x55],
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
        );
        let want = [
            136, 0, 0, 0, 0x20, 0, 0, 0, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2,
            1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55,
        ];
        assert_eq!(p, want);
    }

    #[test]
    fn neighbor_advert_router_flag() {
        let target = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        let r = neighbor_advert(MAC, target, true);
        assert_eq!(r[4], 0xa0, "R and O set, S clear");
        let plain = unsolicited_na(MAC, target);
        assert_eq!(neighbor_advert(MAC, target, false), plain);
        // Only the flags byte differs.
        let diffs: Vec<usize> = (0..NA_LEN).filter(|&i| r[i] != plain[i]).collect();
        assert_eq!(diffs, vec![4]);
    }

    #[test]
    fn constants() {
        assert_eq!(ALL_NODES_V6.to_string(), "ff02::1");
        assert_eq!(ND_HOP_LIMIT, 255);
    }
}
