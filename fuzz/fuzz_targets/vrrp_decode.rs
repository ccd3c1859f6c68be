//! The VRRP advert decoder on any bytes: VRRPv2 and VRRPv3 over IPv4, VRRPv3 over IPv6, and
//! whole IPv4 packets as a raw socket delivers them (`parse_ipv4`).
//!
//! Input: byte 0 picks the framing, byte 1 is the received TTL, the rest is the message.
//! Besides "never panics", every advert that decodes must re-encode to an advert that decodes
//! to the same value, and must go through the receive checks.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use upkeep_vrrp::packet::{parse_ipv4, Advert, Auth, Version, MCAST_V4, MCAST_V6};
use upkeep_vrrp::receive::{check, Expect};

fuzz_target!(|data: &[u8]| {
    let [mode, ttl, msg @ ..] = data else {
        return;
    };
    let src4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let src6 = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
    match mode % 4 {
        0 => decoded(msg, src4, IpAddr::V4(MCAST_V4), *ttl),
        1 => decoded(msg, src6, IpAddr::V6(MCAST_V6), *ttl),
        2 => {
            if let Ok(ip) = parse_ipv4(msg) {
                assert!(ip.payload.len() + 20 <= msg.len());
                if let Ok(payload) = ip.vrrp_payload() {
                    decoded(payload, ip.src.into(), ip.dst.into(), ip.ttl);
                }
            }
        }
        _ => {
            // Source and destination of different families: always refused.
            assert!(Advert::decode(msg, src4, IpAddr::V6(MCAST_V6)).is_err());
            assert!(Advert::decode(msg, src6, IpAddr::V4(MCAST_V4)).is_err());
        }
    }
});

fn decoded(msg: &[u8], src: IpAddr, dst: IpAddr, ttl: u8) {
    let Ok(advert) = Advert::decode(msg, src, dst) else {
        return;
    };
    assert_eq!(advert.encoded_len(), msg.len(), "{advert:?}");
    // Round trip: what we decode, we can say again, meaning the same.
    let mut out = Vec::new();
    if advert.encode(src, dst, &mut out).is_ok() {
        assert_eq!(out.len(), msg.len());
        let again = Advert::decode(&out, src, dst).expect("re-encoded advert decodes");
        assert_eq!(again, advert);
    }
    // The receive checks on what the decoder let through, as a backup that expects this
    // advert's own version and a few other settings would run them.
    for version in [advert.version, Version::V2, Version::V3] {
        for auth in [
            Auth::None,
            Auth::pass_from_str("secret"),
            advert.auth.clone(),
        ] {
            let expect = Expect {
                version,
                auth,
                advert_interval: Duration::from_millis(u64::from(advert.interval_cs) * 10),
                peers: if ttl.is_multiple_of(2) {
                    vec![src]
                } else {
                    Vec::new()
                },
                vips: advert.addrs.iter().take(2).copied().collect(),
            };
            if let Ok(acc) = check(&expect, src, ttl, &advert) {
                assert_eq!(ttl, 255);
                assert_eq!(acc.heard.priority, advert.priority);
            }
        }
    }
}
