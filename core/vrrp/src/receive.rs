//! The receive checks RFC 3768 §7.1 and RFC 5798 §7.1 require before an advert reaches the state
//! machine. A packet that fails one is dropped and counted under its [`DropReason`].

use std::net::IpAddr;
use std::time::Duration;

use super::fsm::Heard;
use super::packet::{check_ttl, Advert, Auth, DropReason, Version};

/// What an instance expects of the adverts it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub version: Version,
    pub auth: Auth,
    pub advert_interval: Duration,
    /// Non-empty: only these sources are accepted (unicast mode).
    pub peers: Vec<IpAddr>,
    /// Our own VIPs, to notice a peer advertising a different address list.
    pub vips: Vec<IpAddr>,
    /// Peers whose adverts may arrive with a TTL / hop limit in this range instead of 255
    /// (keepalived's `min_ttl` / `max_ttl`: routed from another subnet).
    pub peer_ttl: Vec<(IpAddr, std::ops::RangeInclusive<u8>)>,
}

/// The outcome of an accepted advert: what the state machine hears, and whether the peer's
/// address list differs from ours (the RFC says to log that, not drop it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub heard: Heard,
    pub address_mismatch: bool,
}

/// Apply the receive checks to a decoded advert that arrived from `src` with `ttl`.
pub fn check(
    expect: &Expect,
    src: IpAddr,
    ttl: u8,
    advert: &Advert,
) -> Result<Accepted, DropReason> {
    // TTL / Hop Limit 255 proves the sender is on our link; a peer configured as routed may
    // come with its own range.
    match expect.peer_ttl.iter().find(|(p, _)| *p == src) {
        Some((_, range)) if range.contains(&ttl) => {}
        Some(_) => return Err(DropReason::BadTtl),
        None => check_ttl(ttl).map_err(|e| e.reason())?,
    }
    if advert.version != expect.version {
        return Err(DropReason::VersionMismatch);
    }
    if !expect.peers.is_empty() && !expect.peers.contains(&src) {
        return Err(DropReason::UnexpectedSource);
    }
    // RFC 5798 5.2.7: Max Adver Int is 1..=4095 centiseconds; RFC 3768 5.3.7 has no 0 seconds
    // either. 0 would make Master_Down_Interval 0: one forged advert, and a backup takes over
    // at once. The upper bound is the 12-bit field's, so only 0 is left to refuse.
    if advert.interval_cs == 0 {
        return Err(DropReason::BadInterval);
    }
    if expect.version == Version::V2 {
        if !expect.auth.matches(&advert.auth) {
            return Err(DropReason::AuthMismatch);
        }
        let interval_cs =
            u16::try_from(expect.advert_interval.as_millis() / 10).unwrap_or(u16::MAX);
        if advert.interval_cs != interval_cs {
            return Err(DropReason::IntervalMismatch);
        }
    }
    let address_mismatch = advert.addrs.len() != expect.vips.len()
        || advert.addrs.iter().any(|a| !expect.vips.contains(a));
    Ok(Accepted {
        heard: Heard {
            from: src,
            priority: advert.priority,
            interval: Duration::from_millis(u64::from(advert.interval_cs) * 10),
        },
        address_mismatch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn v4(d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, d))
    }

    fn expect() -> Expect {
        Expect {
            version: Version::V2,
            auth: Auth::pass_from_str("1234"),
            advert_interval: Duration::from_secs(1),
            peers: vec![],
            vips: vec![v4(100)],
            peer_ttl: vec![],
        }
    }

    #[test]
    fn a_peer_with_a_ttl_range_is_accepted_within_it_only() {
        let mut e = expect();
        e.peers = vec![v4(2), v4(3)];
        e.peer_ttl = vec![(v4(2), 60..=64)];
        let a = advert();
        assert!(check(&e, v4(2), 64, &a).is_ok());
        assert!(check(&e, v4(2), 60, &a).is_ok());
        assert_eq!(check(&e, v4(2), 59, &a), Err(DropReason::BadTtl));
        assert_eq!(
            check(&e, v4(2), 255, &a),
            Err(DropReason::BadTtl),
            "its range only"
        );
        // Other peers keep the RFCs' 255.
        assert_eq!(check(&e, v4(3), 64, &a), Err(DropReason::BadTtl));
        assert!(check(&e, v4(3), 255, &a).is_ok());
    }

    fn advert() -> Advert {
        Advert {
            version: Version::V2,
            vrid: 51,
            priority: 100,
            interval_cs: 100,
            auth: Auth::pass_from_str("1234"),
            addrs: vec![v4(100)],
        }
    }

    #[test]
    fn accepts_a_matching_advert() {
        let a = check(&expect(), v4(2), 255, &advert()).unwrap();
        assert_eq!(a.heard.from, v4(2));
        assert_eq!(a.heard.priority, 100);
        assert_eq!(a.heard.interval, Duration::from_secs(1));
        assert!(!a.address_mismatch);
    }

    #[test]
    fn drops_ttl_below_255() {
        assert_eq!(
            check(&expect(), v4(2), 254, &advert()),
            Err(DropReason::BadTtl)
        );
    }

    #[test]
    fn drops_wrong_or_missing_password() {
        let mut a = advert();
        a.auth = Auth::pass_from_str("12345");
        assert_eq!(
            check(&expect(), v4(2), 255, &a),
            Err(DropReason::AuthMismatch)
        );
        a.auth = Auth::None;
        assert_eq!(
            check(&expect(), v4(2), 255, &a),
            Err(DropReason::AuthMismatch)
        );
    }

    #[test]
    fn drops_v2_interval_mismatch_but_not_v3() {
        let mut a = advert();
        a.interval_cs = 200;
        assert_eq!(
            check(&expect(), v4(2), 255, &a),
            Err(DropReason::IntervalMismatch)
        );
        let mut e = expect();
        e.version = Version::V3;
        a.version = Version::V3;
        a.auth = Auth::None;
        assert_eq!(
            check(&e, v4(2), 255, &a).unwrap().heard.interval,
            Duration::from_secs(2)
        );
    }

    #[test]
    fn drops_interval_zero_in_either_version() {
        // RFC 5798 5.2.7: Max Adver Int is 1..=4095 centiseconds. 0 would make
        // Master_Down_Interval 0, so one forged advert would make a backup take over at once.
        let mut e = expect();
        e.version = Version::V3;
        e.auth = Auth::None;
        let mut a = advert();
        a.version = Version::V3;
        a.auth = Auth::None;
        a.interval_cs = 0;
        assert_eq!(check(&e, v4(2), 255, &a), Err(DropReason::BadInterval));
        a.interval_cs = 1;
        assert!(
            check(&e, v4(2), 255, &a).is_ok(),
            "1 cs is the smallest valid"
        );
        // v2: an Adver Int of 0 seconds is as invalid, whatever the instance expects.
        let mut a = advert();
        a.interval_cs = 0;
        assert_eq!(
            check(&expect(), v4(2), 255, &a),
            Err(DropReason::BadInterval)
        );
        assert_eq!(DropReason::BadInterval.as_str(), "bad_interval");
        assert!(DropReason::ALL.contains(&DropReason::BadInterval));
    }

    #[test]
    fn drops_other_version() {
        let mut a = advert();
        a.version = Version::V3;
        assert_eq!(
            check(&expect(), v4(2), 255, &a),
            Err(DropReason::VersionMismatch)
        );
    }

    #[test]
    fn unicast_accepts_only_listed_peers() {
        let mut e = expect();
        e.peers = vec![v4(3)];
        assert_eq!(
            check(&e, v4(2), 255, &advert()),
            Err(DropReason::UnexpectedSource)
        );
        assert!(check(&e, v4(3), 255, &advert()).is_ok());
    }

    #[test]
    fn address_list_mismatch_is_accepted_and_flagged() {
        let mut a = advert();
        a.addrs = vec![v4(101)];
        assert!(check(&expect(), v4(2), 255, &a).unwrap().address_mismatch);
    }
}
