//! An independent VRRP (RFC 3768 v2, RFC 5798 v3) advert builder and parser.
//!
//! Written from the RFCs, not from the daemon's codec, so that the two cross-check each other.
//! The builder can produce deliberately broken adverts (bad checksum, wrong TTL, truncation,
//! bogus counts, ...) for the malformed-input tests; the parser reads what a capture saw.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use anyhow::{bail, ensure, Result};

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// The VRRP IPv4 multicast group.
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The VRRP IPv6 multicast group.
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// The RFC 1071 internet checksum of `data` (already complemented, ready to store).
pub fn inet_checksum(data: &[u8]) -> u16 {
    !fold(sum16(data))
}

fn sum16(data: &[u8]) -> u32 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The pseudo-header a VRRPv3 checksum covers (RFC 5798 §5.2.8), for a message of `len` bytes.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, IPPROTO_VRRP]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, IPPROTO_VRRP]);
        }
        // Mixed families cannot occur on the wire; give the v4 shape of whatever we have.
        _ => p.extend_from_slice(&[0; 12]),
    }
    p
}

/// The checksum a VRRP message must carry: v2 covers the message only, v3 the pseudo-header too.
/// The message's own checksum field (bytes 6..8) is treated as zero.
pub fn vrrp_checksum(version: u8, src: IpAddr, dst: IpAddr, msg: &[u8]) -> u16 {
    let mut buf = if version == 3 {
        pseudo_header(src, dst, msg.len())
    } else {
        Vec::new()
    };
    let start = buf.len();
    buf.extend_from_slice(msg);
    if buf.len() >= start + 8 {
        buf[start + 6] = 0;
        buf[start + 7] = 0;
    }
    inet_checksum(&buf)
}

/// What to put in the checksum field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumMode {
    /// The right value.
    Correct,
    /// The right value with some bits flipped (always wrong).
    Corrupt,
    /// This exact value.
    Fixed(u16),
}

/// A description of one advert to build. Fields are public; the methods are shorthands.
///
/// ```
/// use upkeep_tests::packet::AdvertSpec;
/// let pkt = AdvertSpec::v2(51, 200).vip("192.0.2.100").auth_pass("1234").ttl(254).ipv4_packet();
/// assert_eq!(pkt[8], 254);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct AdvertSpec {
    /// Version nibble (2 or 3; anything else for "bad version" tests).
    pub version: u8,
    /// Type nibble (1 = advertisement).
    pub kind: u8,
    pub vrid: u8,
    pub priority: u8,
    /// v2: whole seconds (8 bits); v3: centiseconds (12 bits).
    pub interval: Duration,
    /// The addresses listed in the advert.
    pub addrs: Vec<IpAddr>,
    /// Overrides the "Count IPvX Addr" field (default: `addrs.len()`).
    pub count: Option<u8>,
    /// v2 authentication type (0 none, 1 simple text password).
    pub auth_type: u8,
    /// v2 authentication data (8 bytes, zero padded).
    pub auth_data: [u8; 8],
    /// Source address; `None`: the sending host's own address (filled in by `Lab::inject`).
    pub src: Option<IpAddr>,
    /// Destination: the VRRP group of the family by default.
    pub dst: IpAddr,
    /// IPv4 TTL / IPv6 hop limit (VRRP requires 255).
    pub ttl: u8,
    pub checksum: ChecksumMode,
    /// Cut the VRRP message to this many bytes after the checksum was computed.
    pub truncate: Option<usize>,
    /// Bytes appended to the VRRP message before the checksum is computed.
    pub trailing: Vec<u8>,
}

impl AdvertSpec {
    /// A valid VRRPv2 advert (1 s interval, no auth, no addresses yet).
    pub fn v2(vrid: u8, priority: u8) -> Self {
        AdvertSpec {
            version: 2,
            kind: 1,
            vrid,
            priority,
            interval: Duration::from_secs(1),
            addrs: Vec::new(),
            count: None,
            auth_type: 0,
            auth_data: [0; 8],
            src: None,
            dst: IpAddr::V4(VRRP_GROUP_V4),
            ttl: 255,
            checksum: ChecksumMode::Correct,
            truncate: None,
            trailing: Vec::new(),
        }
    }

    /// A valid VRRPv3 advert over IPv4 (1 s interval, no addresses yet).
    pub fn v3(vrid: u8, priority: u8) -> Self {
        AdvertSpec {
            version: 3,
            ..Self::v2(vrid, priority)
        }
    }

    /// A valid VRRPv3 advert over IPv6 (to ff02::12).
    pub fn v3_ipv6(vrid: u8, priority: u8) -> Self {
        AdvertSpec {
            dst: IpAddr::V6(VRRP_GROUP_V6),
            ..Self::v3(vrid, priority)
        }
    }

    /// Adds an address to the list (panics on a malformed literal: test-only convenience).
    pub fn vip(mut self, addr: &str) -> Self {
        self.addrs.push(addr.parse().expect("valid IP literal"));
        self
    }

    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// v2 simple-password authentication (type 1, up to 8 bytes).
    pub fn auth_pass(mut self, pass: &str) -> Self {
        self.auth_type = 1;
        self.auth_data = [0; 8];
        for (d, s) in self.auth_data.iter_mut().zip(pass.bytes()) {
            *d = s;
        }
        self
    }

    pub fn src(mut self, addr: &str) -> Self {
        self.src = Some(addr.parse().expect("valid IP literal"));
        self
    }

    pub fn dst(mut self, addr: &str) -> Self {
        self.dst = addr.parse().expect("valid IP literal");
        self
    }

    pub fn ttl(mut self, ttl: u8) -> Self {
        self.ttl = ttl;
        self
    }

    pub fn bad_checksum(mut self) -> Self {
        self.checksum = ChecksumMode::Corrupt;
        self
    }

    pub fn truncate(mut self, len: usize) -> Self {
        self.truncate = Some(len);
        self
    }

    pub fn count(mut self, count: u8) -> Self {
        self.count = Some(count);
        self
    }

    pub fn version(mut self, version: u8) -> Self {
        self.version = version;
        self
    }

    pub fn kind(mut self, kind: u8) -> Self {
        self.kind = kind;
        self
    }

    fn src_or_unspecified(&self) -> IpAddr {
        self.src.unwrap_or(match self.dst {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        })
    }

    /// The VRRP message (what follows the IP header), defects applied.
    pub fn vrrp_bytes(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(64);
        m.push((self.version << 4) | (self.kind & 0x0f));
        m.push(self.vrid);
        m.push(self.priority);
        m.push(self.count.unwrap_or(self.addrs.len() as u8));
        if self.version == 2 {
            m.push(self.auth_type);
            m.push(self.interval.as_secs().min(255) as u8);
        } else {
            let cs = (self.interval.as_millis() / 10).min(0x0fff) as u16;
            m.extend_from_slice(&cs.to_be_bytes());
        }
        m.extend_from_slice(&[0, 0]); // checksum, below
        for a in &self.addrs {
            match a {
                IpAddr::V4(a) => m.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => m.extend_from_slice(&a.octets()),
            }
        }
        if self.version == 2 {
            m.extend_from_slice(&self.auth_data);
        }
        m.extend_from_slice(&self.trailing);
        let right = vrrp_checksum(self.version, self.src_or_unspecified(), self.dst, &m);
        let value = match self.checksum {
            ChecksumMode::Correct => right,
            ChecksumMode::Corrupt => right ^ 0x5a5a,
            ChecksumMode::Fixed(v) => v,
        };
        m[6..8].copy_from_slice(&value.to_be_bytes());
        if let Some(n) = self.truncate {
            m.truncate(n);
        }
        m
    }

    /// The whole IPv4 packet (header included, for an `IP_HDRINCL` raw socket). The kernel
    /// rewrites the IP header checksum and total length on send; the rest goes out as built.
    /// Panics if `src`/`dst` are not IPv4.
    pub fn ipv4_packet(&self) -> Vec<u8> {
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (self.src_or_unspecified(), self.dst) else {
            panic!("ipv4_packet on an IPv6 advert spec");
        };
        let body = self.vrrp_bytes();
        let total = 20 + body.len();
        let mut p = Vec::with_capacity(total);
        p.push(0x45);
        p.push(0xc0); // DSCP CS6, as routers send
        p.extend_from_slice(&(total as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0]); // id (kernel fills), flags/fragment
        p.push(self.ttl);
        p.push(IPPROTO_VRRP);
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        let csum = inet_checksum(&p[..20]);
        p[10..12].copy_from_slice(&csum.to_be_bytes());
        p.extend_from_slice(&body);
        p
    }
}

/// A VRRP message as read off the wire.
#[derive(Clone, Debug, PartialEq)]
pub struct Advert {
    pub version: u8,
    pub kind: u8,
    pub vrid: u8,
    pub priority: u8,
    pub count: u8,
    /// v2 only (0 for v3).
    pub auth_type: u8,
    /// The raw interval field: v2 seconds, v3 centiseconds.
    pub interval_field: u16,
    pub checksum: u16,
    pub addrs: Vec<IpAddr>,
    /// v2 only.
    pub auth_data: Option<[u8; 8]>,
}

impl Advert {
    pub fn interval(&self) -> Duration {
        if self.version == 2 {
            Duration::from_secs(u64::from(self.interval_field))
        } else {
            Duration::from_millis(u64::from(self.interval_field) * 10)
        }
    }

    /// The v2 simple password, if type 1 authentication is used.
    pub fn auth_pass(&self) -> Option<String> {
        let data = self.auth_data?;
        if self.auth_type != 1 {
            return None;
        }
        let end = data.iter().position(|&b| b == 0).unwrap_or(8);
        Some(String::from_utf8_lossy(&data[..end]).into_owned())
    }
}

/// Parses a VRRP message. `v6` tells the address size for v3.
pub fn parse_vrrp(msg: &[u8], v6: bool) -> Result<Advert> {
    ensure!(
        msg.len() >= 8,
        "VRRP message of {} bytes is shorter than its 8-byte header",
        msg.len()
    );
    let version = msg[0] >> 4;
    let count = msg[3];
    let (auth_type, interval_field) = match version {
        2 => (msg[4], u16::from(msg[5])),
        3 => (0, u16::from_be_bytes([msg[4], msg[5]]) & 0x0fff),
        v => bail!("unknown VRRP version {v}"),
    };
    let alen = if v6 { 16 } else { 4 };
    let need = 8 + usize::from(count) * alen + if version == 2 { 8 } else { 0 };
    ensure!(
        msg.len() >= need,
        "VRRP message of {} bytes, its header implies {need}",
        msg.len()
    );
    let addrs = (0..usize::from(count))
        .map(|k| {
            let b = &msg[8 + k * alen..8 + (k + 1) * alen];
            if v6 {
                IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).expect("16 bytes")))
            } else {
                IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
            }
        })
        .collect();
    let auth_data = (version == 2).then(|| {
        let off = 8 + usize::from(count) * alen;
        <[u8; 8]>::try_from(&msg[off..off + 8]).expect("8 bytes")
    });
    Ok(Advert {
        version,
        kind: msg[0] & 0x0f,
        vrid: msg[1],
        priority: msg[2],
        count,
        auth_type,
        interval_field,
        checksum: u16::from_be_bytes([msg[6], msg[7]]),
        addrs,
        auth_data,
    })
}

/// An IP packet carrying VRRP, as parsed from a capture.
#[derive(Clone, Debug, PartialEq)]
pub struct VrrpPacket {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// The parsed advert, or why it could not be parsed.
    pub advert: Result<Advert, String>,
    /// Whether the VRRP checksum is right (for the version the message claims).
    pub checksum_ok: bool,
    /// The VRRP message bytes.
    pub vrrp: Vec<u8>,
}

/// Parses an IPv4 or IPv6 packet whose payload is VRRP. Errors if it is not VRRP.
pub fn parse_ip_packet(pkt: &[u8]) -> Result<VrrpPacket> {
    ensure!(!pkt.is_empty(), "empty packet");
    let (src, dst, ttl, body, v6) = match pkt[0] >> 4 {
        4 => {
            ensure!(pkt.len() >= 20, "short IPv4 header");
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
            ensure!(ihl >= 20 && pkt.len() >= ihl, "bad IPv4 header length");
            ensure!(
                pkt[9] == IPPROTO_VRRP,
                "IPv4 protocol {} is not VRRP",
                pkt[9]
            );
            let end = total.clamp(ihl, pkt.len());
            let s = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
            let d = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
            (IpAddr::V4(s), IpAddr::V4(d), pkt[8], &pkt[ihl..end], false)
        }
        6 => {
            ensure!(pkt.len() >= 40, "short IPv6 header");
            ensure!(
                pkt[6] == IPPROTO_VRRP,
                "IPv6 next header {} is not VRRP",
                pkt[6]
            );
            let plen = usize::from(u16::from_be_bytes([pkt[4], pkt[5]]));
            let end = (40 + plen).min(pkt.len());
            let s = Ipv6Addr::from(<[u8; 16]>::try_from(&pkt[8..24]).expect("16 bytes"));
            let d = Ipv6Addr::from(<[u8; 16]>::try_from(&pkt[24..40]).expect("16 bytes"));
            (IpAddr::V6(s), IpAddr::V6(d), pkt[7], &pkt[40..end], true)
        }
        v => bail!("IP version {v}"),
    };
    let advert = parse_vrrp(body, v6).map_err(|e| e.to_string());
    let version = body.first().map(|b| b >> 4).unwrap_or(0);
    let checksum_ok = body.len() >= 8
        && u16::from_be_bytes([body[6], body[7]]) == vrrp_checksum(version, src, dst, body);
    Ok(VrrpPacket {
        src,
        dst,
        ttl,
        advert,
        checksum_ok,
        vrrp: body.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the sum of 0001 f203 f4f5 f6f7 is ddf2 (one's complement).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(inet_checksum(&data), !0xddf2);
        // A message carrying its own checksum sums to zero.
        let mut with = data.to_vec();
        with.extend_from_slice(&inet_checksum(&data).to_be_bytes());
        assert_eq!(inet_checksum(&with), 0);
    }

    #[test]
    fn v2_round_trip() {
        let spec = AdvertSpec::v2(51, 200)
            .vip("192.0.2.100")
            .auth_pass("1234")
            .src("192.0.2.2");
        let pkt = spec.ipv4_packet();
        assert_eq!(pkt.len(), 20 + 8 + 4 + 8);
        assert_eq!(inet_checksum(&pkt[..20]), 0, "IP header checksum");
        let p = parse_ip_packet(&pkt).unwrap();
        assert!(p.checksum_ok);
        assert_eq!(p.ttl, 255);
        assert_eq!(p.src, "192.0.2.2".parse::<IpAddr>().unwrap());
        let a = p.advert.unwrap();
        assert_eq!(
            (a.version, a.kind, a.vrid, a.priority, a.count),
            (2, 1, 51, 200, 1)
        );
        assert_eq!(a.interval(), Duration::from_secs(1));
        assert_eq!(a.auth_pass().as_deref(), Some("1234"));
        assert_eq!(a.addrs, vec!["192.0.2.100".parse::<IpAddr>().unwrap()]);
        // v2's checksum covers the message alone: the source does not matter.
        let other = AdvertSpec {
            src: Some("192.0.2.9".parse().unwrap()),
            ..spec
        };
        assert_eq!(other.vrrp_bytes(), parse_ip_packet(&pkt).unwrap().vrrp);
    }

    #[test]
    fn v3_checksum_covers_pseudo_header() {
        let spec = AdvertSpec::v3(7, 100).vip("192.0.2.100").src("192.0.2.1");
        let p = parse_ip_packet(&spec.ipv4_packet()).unwrap();
        assert!(p.checksum_ok);
        assert_eq!(
            p.advert.as_ref().unwrap().interval(),
            Duration::from_secs(1)
        );
        let moved = AdvertSpec {
            src: Some("192.0.2.2".parse().unwrap()),
            ..spec.clone()
        };
        assert_ne!(spec.vrrp_bytes()[6..8], moved.vrrp_bytes()[6..8]);
        let fast = spec.interval(Duration::from_millis(100));
        assert_eq!(fast.vrrp_bytes()[4..6], [0, 10]);
    }

    #[test]
    fn defects() {
        let base = AdvertSpec::v2(51, 200)
            .vip("192.0.2.100")
            .auth_pass("1234")
            .src("192.0.2.2");
        assert!(
            !parse_ip_packet(&base.clone().bad_checksum().ipv4_packet())
                .unwrap()
                .checksum_ok
        );
        assert_eq!(base.clone().ttl(254).ipv4_packet()[8], 254);
        assert_eq!(base.clone().truncate(6).vrrp_bytes().len(), 6);
        let p = parse_ip_packet(&base.clone().count(2).ipv4_packet()).unwrap();
        assert!(p.checksum_ok, "count override keeps a valid checksum");
        assert!(p.advert.is_err(), "but the length no longer matches");
    }

    #[test]
    fn ipv6_checksum() {
        let spec = AdvertSpec::v3_ipv6(9, 100)
            .vip("2001:db8::100")
            .src("fe80::1");
        let msg = spec.vrrp_bytes();
        assert_eq!(msg.len(), 8 + 16);
        let sum = vrrp_checksum(3, spec.src.unwrap(), spec.dst, &msg);
        assert_eq!(u16::from_be_bytes([msg[6], msg[7]]), sum);
    }
}
