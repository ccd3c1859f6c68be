//! What fits in one advert: at most 255 advertised VIPs (a one-byte count in both versions), and
//! VIPs held but not advertised (`advertise=#false`, keepalived's `virtual_ipaddress_excluded`)
//! outside that count.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use upkeep_vrrp::packet::{Advert, Auth, Version, MCAST_V4, MCAST_V6};

use super::*;
use crate::model::InstanceConfig;

/// The `n`th IPv4 (10.1.x.y) or IPv6 (2001:db8::n) VIP.
fn addr(v6: bool, n: usize) -> String {
    if v6 {
        format!("2001:db8::{:x}/64", n + 1)
    } else {
        format!("10.1.{}.{}/16", (n + 1) / 256, (n + 1) % 256)
    }
}

/// Instance "big": `advertised` VIPs from line 5 on, then `excluded` ones marked
/// `advertise=#false` (of the other family when `other_family`).
fn big(version: u8, v6: bool, advertised: usize, excluded: usize, other_family: bool) -> String {
    let mut s =
        format!("instance \"big\" {{\n    interface \"eth0\"\n    vrid 7\n    version {version}\n");
    for n in 0..advertised {
        s.push_str(&format!("    vip \"{}\"\n", addr(v6, n)));
    }
    for n in 0..excluded {
        let fam = v6 != other_family;
        s.push_str(&format!(
            "    vip \"{}\" advertise=#false\n",
            addr(fam, advertised + n)
        ));
    }
    s.push_str("}\n");
    s
}

/// The addresses the daemon puts in the instance's adverts.
fn advertised(i: &InstanceConfig) -> Vec<IpAddr> {
    i.advertised_addrs()
}

/// The advert the daemon would send for `i`, encoded as the daemon encodes it.
fn encode(i: &InstanceConfig) -> Result<Vec<u8>, upkeep_vrrp::packet::EncodeError> {
    let (version, auth) = match i.version {
        VrrpVersion::V2 => (
            Version::V2,
            i.auth_pass
                .as_deref()
                .map_or(Auth::None, Auth::pass_from_str),
        ),
        VrrpVersion::V3 => (Version::V3, Auth::None),
    };
    let advert = Advert {
        version,
        vrid: i.vrid,
        priority: i.priority,
        interval_cs: u16::try_from(i.advert_interval.as_millis() / 10).unwrap(),
        auth,
        addrs: advertised(i),
    };
    let (src, dst) = if i.is_ipv6() {
        (
            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(MCAST_V6),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            IpAddr::V4(MCAST_V4),
        )
    };
    let mut out = Vec::new();
    advert.encode(src, dst, &mut out).map(|()| out)
}

#[test]
fn more_than_255_advertised_vips_are_refused_at_the_256th() {
    for (version, v6) in [(2, false), (3, false), (3, true)] {
        let src = big(version, v6, 300, 0, false);
        // Line 5 holds the first VIP, so the 256th is on line 260; its address at column 9.
        let p = problem_at(&src, 260, 9, "advertises 300 VIPs");
        assert!(p.message.contains("at most 255"), "{p:?}");
        assert!(help_of(&p).contains("advertise=#false"), "{p:?}");
        assert_eq!(problems_of(&src).len(), 1, "reported once: {src}");
        problem_at(
            &big(version, v6, 256, 0, false),
            260,
            9,
            "advertises 256 VIPs",
        );
    }
}

#[test]
fn excluded_vips_are_held_but_not_counted_or_advertised() {
    for (version, v6) in [(2, false), (3, false), (3, true)] {
        let cfg = parse_str(&big(version, v6, 255, 100, false), "t.kdl").expect("accepted");
        let i = &cfg.instances[0];
        assert_eq!(i.vips.len(), 355, "every VIP is held");
        assert_eq!(i.vips.iter().filter(|v| !v.advertise).count(), 100);
        assert_eq!(advertised(i).len(), 255);
        assert!(i.vips[..255].iter().all(|v| v.advertise));
        assert_eq!(i.is_ipv6(), v6);
    }
}

#[test]
fn excluded_vips_may_be_of_the_other_family() {
    // keepalived's common use: IPv6 addresses moved with an IPv4 (even VRRPv2) instance.
    let cfg = parse_str(&big(2, false, 1, 2, true), "t.kdl").expect("accepted");
    let i = &cfg.instances[0];
    assert!(!i.is_ipv6());
    assert!(i.vips[1].addr.is_ipv6() && !i.vips[1].advertise);
    assert_eq!(advertised(i), vec![i.vips[0].addr]);
    // An advertised VIP of the other family is still refused.
    problem_at(
        "instance \"w\" {\n    interface \"eth0\"\n    vrid 7\n    vip \"192.0.2.1\"\n    vip \"2001:db8::1\"\n}\n",
        5,
        9,
        "is IPv6 but this instance's first vip is IPv4",
    );
    // The first advertised VIP decides the family, wherever the excluded ones are written.
    let cfg = parse_str(
        "instance \"w\" {\n    interface \"eth0\"\n    vrid 7\n    vip \"192.0.2.1\" advertise=#false\n    vip \"2001:db8::1\"\n}\n",
        "t.kdl",
    )
    .expect("accepted");
    assert!(cfg.instances[0].is_ipv6());
}

#[test]
fn an_instance_needs_an_advertised_vip() {
    let p = problem_at(
        "instance \"w\" {\n    interface \"eth0\"\n    vrid 7\n    vip \"192.0.2.1\" advertise=#false\n}\n",
        1,
        1,
        "no advertised `vip`",
    );
    assert!(help_of(&p).contains("advertise"), "{p:?}");
}

#[test]
fn every_config_the_reader_accepts_encodes() {
    let mut accepted = 0;
    for (version, v6) in [(2, false), (3, false), (3, true)] {
        for n in [1, 2, 77, 90, 254, 255, 256, 257, 300, 511] {
            for excluded in [0, 1, 300] {
                let src = big(version, v6, n, excluded, false);
                match parse_str(&src, "t.kdl") {
                    Ok(cfg) => {
                        accepted += 1;
                        let i = &cfg.instances[0];
                        let bytes = encode(i).unwrap_or_else(|e| {
                            panic!("v{version} {n} VIPs + {excluded} excluded: accepted, but {e}")
                        });
                        let addrs = if v6 { 16 } else { 4 };
                        let auth = if version == 2 { 8 } else { 0 };
                        assert_eq!(bytes.len(), 8 + n * addrs + auth);
                    }
                    Err(e) => assert!(n > 255, "v{version} {n} VIPs refused: {e}"),
                }
            }
        }
    }
    assert_eq!(accepted, 3 * 6 * 3);
}
