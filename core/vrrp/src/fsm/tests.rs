//! The RFC 3768 / RFC 5798 transition table, row by row, then whole elections on a simulated LAN.

use super::*;
use crate::sim::{self, addr, Lan};
use std::net::Ipv4Addr;

const SEC: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn p(version: Version) -> Params {
    Params {
        fast_preempt: false,
        handover: false,
        ..sim::params(version, SEC, 1)
    }
}

fn heard(last_octet: u8, priority: u8) -> Heard {
    heard_every(last_octet, priority, SEC)
}

/// An advert from 192.0.2.`last_octet` announcing `interval` (v3; v2 ignores it).
fn heard_every(last_octet: u8, priority: u8, interval: Duration) -> Heard {
    Heard {
        from: IpAddr::V4(Ipv4Addr::new(192, 0, 2, last_octet)),
        priority,
        interval,
    }
}

fn transitions(actions: &[Action]) -> Vec<(State, State)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Transition { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

fn backup(params: Params, prio: u8, t0: Instant) -> Fsm {
    let mut f = Fsm::new(params, prio);
    f.handle(Event::Startup, t0);
    assert_eq!(f.state(), State::Backup);
    f
}

fn master(params: Params, prio: u8, t0: Instant) -> Fsm {
    let mut f = backup(params, prio, t0);
    let down = f.poll_timeout().unwrap();
    f.handle(Event::Timeout, down);
    assert_eq!(f.state(), State::Master);
    f
}

/// A master of priority 100 with `handover` on, five seconds after start, and that time.
fn handover_master() -> (Fsm, Instant) {
    let t0 = Instant::now();
    let params = Params {
        handover: true,
        ..p(Version::V2)
    };
    (master(params, 100, t0), t0 + SEC * 5)
}

// --- timers (RFC 3768 §6.1, RFC 5798 §6.1) ---

/// Skew_Time of the routers built by `p` (primary address 192.0.2.2): the RFCs'
/// (256 - Priority) / 256 of `unit` (v2: 1 s; v3: Master_Adver_Interval), exact, plus the
/// tie-break delay of an even address, 1 / 512 of `unit`.
fn skew_of(unit: Duration, priority: u8) -> Duration {
    unit * (256 - u32::from(priority)) / 256 + unit / 512
}

#[test]
fn skew_and_master_down_interval_v2() {
    let f = Fsm::new(p(Version::V2), 100);
    // Skew_Time = (256 - Priority) / 256 seconds, plus the tie-break delay.
    assert_eq!(
        f.skew_time(),
        Duration::from_secs(156) / 256 + Duration::from_secs(1) / 512
    );
    // Master_Down_Interval = 3 * Advertisement_Interval + Skew_Time.
    assert_eq!(f.master_down_interval(), SEC * 3 + skew_of(SEC, 100));
    let f = Fsm::new(p(Version::V2), 254);
    assert_eq!(f.skew_time(), skew_of(SEC, 254));
}

#[test]
fn skew_and_master_down_interval_v3_scale_with_master_interval() {
    let mut params = p(Version::V3);
    params.advert_interval = ms(100);
    let mut f = backup(params, 200, Instant::now());
    // Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256, not truncated to whole
    // centiseconds (keepalived's 2 cs): 21.875 ms, plus 1/512 of 100 ms (195.3 us).
    assert_eq!(f.skew_time(), Duration::from_nanos(21_875_000 + 195_312));
    assert_eq!(f.skew_time(), skew_of(ms(100), 200));
    assert_eq!(f.master_down_interval(), ms(300) + skew_of(ms(100), 200));
    // A v3 backup adopts the master's interval from its adverts.
    let now = Instant::now();
    f.handle(Event::Advert(heard_every(9, 250, ms(500))), now);
    assert_eq!(f.skew_time(), skew_of(ms(500), 200));
    assert_eq!(
        f.poll_timeout(),
        Some(now + ms(1500) + skew_of(ms(500), 200))
    );
    // At 10 ms adverts the skew is 2.2 ms (keepalived truncates it to nothing).
    f.handle(Event::Advert(heard_every(9, 250, ms(10))), now);
    assert_eq!(f.skew_time(), skew_of(ms(10), 200));
    assert_eq!(f.master_down_interval(), ms(30) + skew_of(ms(10), 200));
}

/// Equal priorities do not wait alike: the tie-break delay puts odd addresses half a priority
/// step ahead of even ones, so of two consecutive addresses one goes first, and a lower
/// priority never goes before a higher one.
#[test]
fn tie_break_delay_orders_equal_priorities_and_keeps_priority_order() {
    for version in [Version::V2, Version::V3] {
        let skew = |last: u8, prio: u8| {
            let params = Params {
                primary_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)),
                ..p(version)
            };
            Fsm::new(params, prio).skew_time()
        };
        // Half a priority step (1 s / 256 at 1 s adverts), to the nanosecond.
        let half = |d: Duration| d.abs_diff(SEC / 512) <= Duration::from_nanos(1);
        // 192.0.2.3 before .2 and .4; .1 before .2.
        assert!(half(skew(2, 90) - skew(3, 90)), "{version:?}");
        assert!(half(skew(4, 90) - skew(3, 90)));
        assert!(half(skew(2, 90) - skew(1, 90)));
        assert_eq!(skew(1, 90), skew(3, 90), "same parity: alike");
        // Whatever the addresses, a higher priority goes first.
        for a in 0..=255u8 {
            for b in [0u8, 1, 2, 3] {
                assert!(skew(a, 91) < skew(b, 90), ".{a} at 91 vs .{b} at 90");
            }
        }
        // IPv6: the last byte of the address.
        let v6 = |last: u16| {
            let ip = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last);
            Fsm::new(
                Params {
                    primary_ip: IpAddr::V6(ip),
                    ..p(Version::V3)
                },
                90,
            )
            .skew_time()
        };
        assert!(half(v6(2) - v6(3)));
    }
}

#[test]
fn v2_backup_ignores_advertised_interval() {
    let t0 = Instant::now();
    let mut f = backup(p(Version::V2), 100, t0);
    f.handle(Event::Advert(heard_every(9, 200, ms(5000))), t0);
    assert_eq!(f.master_down_interval(), SEC * 3 + skew_of(SEC, 100));
}

#[test]
fn master_down_adverts_multiplies_the_interval_not_the_skew() {
    // v2: N × Advertisement_Interval + (256 - Priority) / 256 s (+ tie-break).
    let mut params = p(Version::V2);
    params.master_down_adverts = 6;
    let f = Fsm::new(params, 100);
    assert_eq!(f.skew_time(), skew_of(SEC, 100));
    assert_eq!(f.master_down_interval(), SEC * 6 + skew_of(SEC, 100));
    // v3: N × Master_Adver_Interval + Skew_Time.
    let mut params = p(Version::V3);
    params.advert_interval = ms(100);
    params.master_down_adverts = 10;
    let mut f = backup(params, 200, Instant::now());
    assert_eq!(f.skew_time(), skew_of(ms(100), 200));
    assert_eq!(f.master_down_interval(), ms(1000) + skew_of(ms(100), 200));
    // It scales with the master's interval as the RFC's 3 does.
    let now = Instant::now();
    f.handle(Event::Advert(heard_every(9, 250, ms(500))), now);
    let down = ms(5000) + skew_of(ms(500), 200);
    assert_eq!(f.master_down_interval(), down);
    assert_eq!(f.poll_timeout(), Some(now + down));
}

#[test]
fn master_down_adverts_tolerates_that_many_lost_adverts_minus_one() {
    // A backup at N = 5 that last heard the master at t0 takes over only after five intervals
    // (plus skew) of silence: four lost adverts in a row keep it backup, the fifth does not.
    for n in [3u8, 5, 12] {
        let mut params = p(Version::V3);
        params.advert_interval = ms(100);
        params.master_down_adverts = n;
        let t0 = Instant::now();
        let mut f = backup(params, 100, t0);
        f.handle(Event::Advert(heard_every(9, 200, ms(100))), t0);
        let down = t0 + ms(100) * u32::from(n) + skew_of(ms(100), 100);
        assert_eq!(f.poll_timeout(), Some(down), "N = {n}");
        // An advert just before the deadline restarts the wait from there.
        let late = down - ms(1);
        assert!(f.handle(Event::Timeout, late).is_empty());
        f.handle(Event::Advert(heard_every(9, 200, ms(100))), late);
        assert_eq!(f.state(), State::Backup);
        let down = late + ms(100) * u32::from(n) + skew_of(ms(100), 100);
        assert_eq!(f.poll_timeout(), Some(down), "N = {n}");
        let a = f.handle(Event::Timeout, down);
        assert_eq!(
            transitions(&a),
            vec![(State::Backup, State::Master)],
            "N = {n}"
        );
    }
}

#[test]
fn master_down_adverts_on_a_lan_fails_over_after_n_intervals() {
    let mut routers = Vec::new();
    for (i, prio) in [200u8, 100].into_iter().enumerate() {
        let mut params = sim::params(Version::V3, ms(100), i);
        params.master_down_adverts = 8;
        routers.push((params, prio));
    }
    let mut lan = Lan::new(routers);
    lan.start_all();
    lan.run_for(SEC * 3);
    assert_eq!(lan.masters(), vec![0]);
    lan.crash(0);
    let t = lan.now;
    lan.run_for(SEC * 3);
    assert_eq!(lan.holders(), vec![1]);
    let took_over = lan.routers[1].transitions.last().unwrap().0 - t;
    // 8 × 100 ms + 6 cs, counted from the last advert heard (at most one interval before the crash).
    assert!(took_over <= ms(860) && took_over > ms(760), "{took_over:?}");
}

// --- Initialize ---

#[test]
fn startup_non_owner_becomes_backup_with_down_timer() {
    let t0 = Instant::now();
    let mut f = Fsm::new(p(Version::V3), 100);
    let a = f.handle(Event::Startup, t0);
    assert_eq!(transitions(&a), vec![(State::Initialize, State::Backup)]);
    assert!(!a.contains(&Action::AddVips));
    assert_eq!(f.poll_timeout(), Some(t0 + f.master_down_interval()));
}

#[test]
fn startup_owner_becomes_master_at_once() {
    let t0 = Instant::now();
    let mut f = Fsm::new(p(Version::V3), 255);
    let a = f.handle(Event::Startup, t0);
    assert_eq!(transitions(&a), vec![(State::Initialize, State::Master)]);
    assert!(a.contains(&Action::SendAdvert { priority: 255 }));
    assert!(a.contains(&Action::Announce));
    assert!(a.contains(&Action::AddVips));
    assert_eq!(f.poll_timeout(), Some(t0 + SEC));
}

#[test]
fn initial_master_waits_one_interval_not_three() {
    let t0 = Instant::now();
    let mut params = p(Version::V3);
    params.initial_master = true;
    let mut f = Fsm::new(params, 100);
    f.handle(Event::Startup, t0);
    assert_eq!(f.poll_timeout(), Some(t0 + SEC + f.skew_time()));
}

#[test]
fn initial_master_with_nopreempt_waits_the_full_interval() {
    let t0 = Instant::now();
    let mut params = p(Version::V3);
    params.initial_master = true;
    params.preempt = false;
    let mut f = Fsm::new(params, 100);
    f.handle(Event::Startup, t0);
    assert_eq!(f.poll_timeout(), Some(t0 + f.master_down_interval()));
}

#[test]
fn events_in_initialize_do_nothing() {
    let t0 = Instant::now();
    let mut f = Fsm::new(p(Version::V3), 100);
    assert!(f.handle(Event::Advert(heard(9, 200)), t0).is_empty());
    assert!(f.handle(Event::Timeout, t0).is_empty());
    assert!(f.handle(Event::Shutdown, t0).is_empty());
    assert_eq!(f.state(), State::Initialize);
}

// --- Backup ---

#[test]
fn backup_becomes_master_when_down_timer_fires() {
    let t0 = Instant::now();
    let mut f = backup(p(Version::V2), 100, t0);
    let down = f.poll_timeout().unwrap();
    assert!(
        f.handle(Event::Timeout, down - ms(1)).is_empty(),
        "early timeout ignored"
    );
    let a = f.handle(Event::Timeout, down);
    assert_eq!(
        a,
        vec![
            Action::Transition {
                from: State::Backup,
                to: State::Master,
                reason: Reason::MasterDown
            },
            Action::SendAdvert { priority: 100 },
            Action::Announce,
            Action::AddVips,
        ]
    );
    assert_eq!(f.poll_timeout(), Some(down + SEC));
}

#[test]
fn backup_shutdown_cancels_timer() {
    let t0 = Instant::now();
    let mut f = backup(p(Version::V2), 100, t0);
    let a = f.handle(Event::Shutdown, t0);
    assert_eq!(transitions(&a), vec![(State::Backup, State::Initialize)]);
    assert!(!a.iter().any(|a| matches!(a, Action::SendAdvert { .. })));
    assert_eq!(f.poll_timeout(), None);
}

#[test]
fn backup_priority_zero_sets_skew_time() {
    let t0 = Instant::now();
    let mut f = backup(p(Version::V2), 100, t0);
    let now = t0 + ms(500);
    assert!(f.handle(Event::Advert(heard(9, 0)), now).is_empty());
    assert_eq!(f.poll_timeout(), Some(now + f.skew_time()));
}

#[test]
fn backup_ignores_priority_zero_from_another_than_its_master() {
    let t0 = Instant::now();
    let mut f = backup(p(Version::V2), 90, t0);
    let now = t0 + ms(500);
    f.handle(Event::Advert(heard(9, 100)), now);
    let down = f.poll_timeout();
    // 192.0.2.7 stepped down to our master 192.0.2.9: nothing to race for.
    assert!(f
        .handle(Event::Advert(heard(7, 0)), now + ms(10))
        .is_empty());
    assert_eq!(f.poll_timeout(), down);
    // Our master's own resignation still counts.
    f.handle(Event::Advert(heard(9, 0)), now + ms(20));
    assert_eq!(f.poll_timeout(), Some(now + ms(20) + f.skew_time()));
}

#[test]
fn backup_accepts_higher_or_equal_and_resets_down_timer() {
    let t0 = Instant::now();
    for prio in [100, 101, 254] {
        let mut f = backup(p(Version::V2), 100, t0);
        let now = t0 + ms(2000);
        assert!(f.handle(Event::Advert(heard(9, prio)), now).is_empty());
        assert_eq!(f.poll_timeout(), Some(now + f.master_down_interval()));
        assert_eq!(f.master(), Some((heard(9, prio).from, prio)));
    }
}

#[test]
fn backup_with_preempt_discards_lower_priority_rfc_mode() {
    let t0 = Instant::now();
    let mut f = backup(p(Version::V2), 100, t0);
    let before = f.poll_timeout();
    assert!(f
        .handle(Event::Advert(heard(9, 99)), t0 + ms(2000))
        .is_empty());
    assert_eq!(f.poll_timeout(), before, "discarded: down timer not reset");
    let a = f.handle(Event::Timeout, before.unwrap());
    assert_eq!(transitions(&a), vec![(State::Backup, State::Master)]);
}

#[test]
fn backup_without_preempt_accepts_lower_priority() {
    let t0 = Instant::now();
    let mut params = p(Version::V2);
    params.preempt = false;
    params.fast_preempt = true;
    let mut f = backup(params, 100, t0);
    let now = t0 + ms(2000);
    assert!(f.handle(Event::Advert(heard(9, 50)), now).is_empty());
    assert_eq!(f.poll_timeout(), Some(now + f.master_down_interval()));
    // Nor does a priority rise make it take over.
    assert!(f.handle(Event::Priority(200), now).is_empty());
    assert_eq!(f.state(), State::Backup);
}

#[test]
fn owner_preempts_even_without_preempt() {
    let t0 = Instant::now();
    let mut params = p(Version::V2);
    params.preempt = false;
    params.fast_preempt = true;
    let mut f = Fsm::new(params, 255);
    f.handle(Event::Startup, t0);
    assert_eq!(f.state(), State::Master);
}

#[test]
fn fast_preempt_takes_over_from_lower_priority_at_once() {
    let t0 = Instant::now();
    let mut params = p(Version::V2);
    params.fast_preempt = true;
    let mut f = backup(params, 100, t0);
    let a = f.handle(Event::Advert(heard(9, 80)), t0 + ms(10));
    assert_eq!(transitions(&a), vec![(State::Backup, State::Master)]);
    assert!(a.contains(&Action::SendAdvert { priority: 100 }));
}

#[test]
fn fast_preempt_never_on_equal_priority() {
    let t0 = Instant::now();
    let mut params = p(Version::V2);
    params.fast_preempt = true;
    let mut f = backup(params, 100, t0);
    assert!(f
        .handle(Event::Advert(heard(1, 100)), t0 + ms(10))
        .is_empty());
    assert_eq!(f.state(), State::Backup);
}

#[test]
fn preempt_delay_holds_back_preemption() {
    let t0 = Instant::now();
    let mut params = p(Version::V2);
    params.fast_preempt = true;
    params.preempt_delay = SEC * 5;
    let mut f = backup(params, 100, t0);
    // Lower-priority master tolerated (and timer reset) until the delay is over.
    for s in 0..5 {
        let now = t0 + SEC * s;
        assert!(
            f.handle(Event::Advert(heard(9, 50)), now).is_empty(),
            "at {s}s"
        );
        assert_eq!(f.poll_timeout(), Some(now + f.master_down_interval()));
    }
    let a = f.handle(Event::Advert(heard(9, 50)), t0 + SEC * 5);
    assert_eq!(transitions(&a), vec![(State::Backup, State::Master)]);
}

#[test]
fn preempt_delay_restarts_after_an_equal_or_higher_master() {
    let t0 = Instant::now();
    let mut params = p(Version::V2);
    params.fast_preempt = true;
    params.preempt_delay = SEC * 5;
    let mut f = backup(params, 100, t0);
    f.handle(Event::Advert(heard(9, 50)), t0);
    f.handle(Event::Advert(heard(9, 150)), t0 + SEC * 4);
    assert!(f
        .handle(Event::Advert(heard(9, 50)), t0 + SEC * 6)
        .is_empty());
    assert_eq!(f.state(), State::Backup);
}

#[test]
fn backup_priority_rise_preempts_known_lower_master() {
    let t0 = Instant::now();
    let mut params = p(Version::V2);
    params.fast_preempt = true;
    let mut f = backup(params, 100, t0);
    f.handle(Event::Advert(heard(9, 150)), t0);
    assert!(
        f.handle(Event::Priority(150), t0).is_empty(),
        "equal: no preempt"
    );
    let a = f.handle(Event::Priority(151), t0);
    assert_eq!(transitions(&a), vec![(State::Backup, State::Master)]);
}

// --- Master ---

#[test]
fn master_sends_advert_every_interval() {
    let t0 = Instant::now();
    let mut f = master(p(Version::V3), 100, t0);
    let tick = f.poll_timeout().unwrap();
    assert_eq!(
        f.handle(Event::Timeout, tick),
        vec![Action::SendAdvert { priority: 100 }]
    );
    assert_eq!(f.poll_timeout(), Some(tick + SEC));
}

#[test]
fn master_shutdown_sends_priority_zero_and_removes_vips() {
    let t0 = Instant::now();
    let mut f = master(p(Version::V2), 100, t0);
    let a = f.handle(Event::Shutdown, t0 + SEC * 5);
    assert_eq!(
        a,
        vec![
            Action::SendAdvert { priority: 0 },
            Action::RemoveVips,
            Action::Transition {
                from: State::Master,
                to: State::Initialize,
                reason: Reason::Shutdown
            },
        ]
    );
    assert_eq!(f.poll_timeout(), None);
}

#[test]
fn master_handover_keeps_vips_until_successor_speaks() {
    let (mut f, now) = handover_master();
    let a = f.handle(Event::Shutdown, now);
    assert_eq!(a[0], Action::SendAdvert { priority: 0 });
    assert!(!a.contains(&Action::RemoveVips));
    assert_eq!(f.state(), State::Handover);
    // Another resignation is not a successor.
    assert!(f.handle(Event::Advert(heard(9, 0)), now).is_empty());
    let a = f.handle(Event::Advert(heard(9, 90)), now + ms(300));
    assert_eq!(a[0], Action::RemoveVips);
    assert_eq!(f.state(), State::Initialize);
    assert_eq!(f.poll_timeout(), None);
}

/// systemd SIGKILLs a unit that has not stopped within TimeoutStopSec (15 s in
/// contrib/upkeep.service); a master still waiting for a successor then leaves its VIPs on a
/// stopped host. With long adverts the wait (one interval plus Skew_Time, up to 2 x 255 s in v2)
/// is capped on shutdown, and the VIPs are always removed on the way out.
#[test]
fn shutdown_handover_gives_up_before_the_service_manager_kills_it() {
    let t0 = Instant::now();
    let params = Params {
        handover: true,
        advert_interval: SEC * 100,
        ..p(Version::V2)
    };
    let mut f = master(params.clone(), 100, t0);
    let now = t0 + SEC * 500;
    f.handle(Event::Shutdown, now);
    assert_eq!(f.state(), State::Handover);
    let deadline = f.poll_timeout().unwrap();
    assert!(
        deadline <= now + SHUTDOWN_HANDOVER_MAX,
        "waits {:?} for a successor on shutdown",
        deadline - now
    );
    let a = f.handle(Event::Timeout, deadline);
    assert_eq!(a[0], Action::RemoveVips);
    assert_eq!(f.state(), State::Initialize);

    // An operator's handover (the daemon keeps running) still waits the whole interval...
    let mut f = master(params, 100, t0);
    f.handle(Event::HandOver, now);
    assert_eq!(f.poll_timeout().unwrap(), now + SEC * 200);
    // ...until the daemon is stopped during it.
    let later = now + SEC * 30;
    f.handle(Event::Shutdown, later);
    let deadline = f.poll_timeout().unwrap();
    assert!(
        deadline <= later + SHUTDOWN_HANDOVER_MAX,
        "{:?}",
        deadline - later
    );
    let a = f.handle(Event::Timeout, deadline);
    assert_eq!(a[0], Action::RemoveVips);
    assert_eq!(f.state(), State::Initialize);
}

#[test]
fn master_handover_gives_up_after_skew_plus_interval() {
    let (mut f, now) = handover_master();
    f.handle(Event::Shutdown, now);
    let deadline = f.poll_timeout().unwrap();
    assert_eq!(deadline, now + SEC * 2);
    let a = f.handle(Event::Timeout, deadline);
    assert_eq!(a[0], Action::RemoveVips);
    assert_eq!(f.state(), State::Initialize);
}

#[test]
fn master_answers_priority_zero_with_an_advert() {
    let t0 = Instant::now();
    let mut f = master(p(Version::V2), 100, t0);
    let now = t0 + ms(4500);
    let a = f.handle(Event::Advert(heard(9, 0)), now);
    assert_eq!(
        a,
        vec![Action::SendAdvert { priority: 100 }, Action::Reannounce]
    );
    assert_eq!(f.poll_timeout(), Some(now + SEC));
}

#[test]
fn master_steps_down_on_higher_priority() {
    let t0 = Instant::now();
    let mut f = master(p(Version::V3), 100, t0);
    let now = t0 + SEC * 5;
    let a = f.handle(Event::Advert(heard_every(9, 101, ms(200))), now);
    assert_eq!(a[0], Action::SendAdvert { priority: 0 }, "tells the winner");
    assert_eq!(a[1], Action::RemoveVips);
    assert_eq!(transitions(&a), vec![(State::Master, State::Backup)]);
    // v3: adopts the new master's interval for its down timer.
    assert_eq!(f.down_at, Some(now + ms(600) + skew_of(ms(200), 100)));
}

#[test]
fn a_master_stepping_down_repeats_its_priority_zero_notice() {
    let t0 = Instant::now();
    let mut f = master(p(Version::V2), 100, t0);
    let now = t0 + SEC * 5;
    let a = f.handle(Event::Advert(heard(9, 101)), now);
    assert_eq!(a[0], Action::SendAdvert { priority: 0 }, "to all");
    // Twice more to the winner alone, half an interval apart, then only the down timer is left.
    let to = heard(9, 101).from;
    for k in 1..=u32::from(RESIGN_REPEATS) {
        let at = now + SEC / 2 * k;
        assert_eq!(f.poll_timeout(), Some(at), "notice {k}");
        assert_eq!(f.handle(Event::Timeout, at - ms(1)), vec![], "not early");
        assert_eq!(
            f.handle(Event::Timeout, at),
            vec![Action::TellWinner { to, priority: 0 }]
        );
    }
    assert_eq!(f.poll_timeout(), Some(now + SEC * 3 + f.skew_time()));
    assert_eq!(f.state(), State::Backup);
}

#[test]
fn taking_over_again_ends_the_resignation_notices() {
    let t0 = Instant::now();
    let mut f = master(p(Version::V2), 100, t0);
    let now = t0 + SEC * 5;
    f.handle(Event::Advert(heard(9, 101)), now);
    // The winner resigns at once: we take over, and say nothing of priority 0 again.
    f.handle(Event::Advert(heard(9, 0)), now + ms(100));
    while f.state() == State::Backup {
        let at = f.poll_timeout().unwrap();
        assert!(at < now + SEC, "takes over after its skew");
        f.handle(Event::Timeout, at);
    }
    assert_eq!(f.state(), State::Master);
    for _ in 0..10 {
        let at = f.poll_timeout().unwrap();
        let a = f.handle(Event::Timeout, at);
        let resigns = |a: &Action| {
            matches!(
                a,
                Action::TellWinner { .. } | Action::SendAdvert { priority: 0 }
            )
        };
        assert!(!a.iter().any(resigns), "{a:?}");
    }
}

/// Issue 19's CI failure: 20% VRRP loss, the backup takes over for a moment (its gratuitous
/// ARP moves the clients) and the master misses both its takeover advert and its one
/// priority-0 notice: the master never re-announced, and clients sent to the ex-master for the
/// 8 s their neighbour entry took to expire. With repeated notices the master's announcement
/// comes after the backup's last one.
#[test]
fn the_master_announces_last_when_a_brief_takeover_is_mostly_lost() {
    let interval = ms(100);
    let mut lan = Lan::new(vec![
        (sim::params(Version::V2, interval, 0), 100),
        (sim::params(Version::V2, interval, 1), 90),
    ]);
    lan.start_all();
    lan.run_for(SEC * 2);
    assert_eq!(lan.holders(), vec![0]);
    // h1's adverts are lost for 12 intervals: h2 takes over (after 3 intervals plus its skew,
    // 0.95 s). h1 hears nothing of it: not one of h2's adverts as master, nor the first
    // priority-0 notice h2 sends when it steps down.
    let (from, until) = (lan.now, lan.now + interval * 12);
    let clock = std::rc::Rc::new(std::cell::Cell::new(lan.now));
    let now = clock.clone();
    let mut zeros_lost = 0;
    lan.loss = Some(Box::new(move |i, _, heard| {
        let t = now.get();
        match (i, heard.priority) {
            (0, _) => t >= from && t < until,
            (_, 0) if zeros_lost == 0 => {
                zeros_lost += 1;
                true
            }
            (_, 0) => false,
            _ => true,
        }
    }));
    for _ in 0..600 {
        clock.set(lan.now);
        lan.run_for(ms(5));
    }
    let t = |i: usize| lan.routers[i].transitions.len();
    assert_eq!(
        lan.holders(),
        vec![0],
        "{:?} {:?}",
        lan.routers[1].transitions,
        lan.routers[1].sent
    );
    assert!(
        t(1) >= 3,
        "h2 took over and stepped down: {:?}",
        lan.routers[1].transitions
    );
    let last = |i: usize| lan.routers[i].announced.last().copied();
    let (a1, a2) = (last(0), last(1));
    assert!(
        a2.is_some() && a1 > a2,
        "clients follow the last announcement: h1 at {:?}, h2 at {:?}",
        a1.map(|t| t - lan.start),
        a2.map(|t| t - lan.start)
    );
}

#[test]
fn master_tie_break_on_primary_address() {
    let t0 = Instant::now();
    // We are 192.0.2.2 (index 1).
    let mut f = master(p(Version::V2), 100, t0);
    let a = f.handle(Event::Advert(heard(1, 100)), t0 + SEC * 5);
    assert!(transitions(&a).is_empty(), "lower address loses the tie");
    let a = f.handle(Event::Advert(heard(3, 100)), t0 + SEC * 5);
    assert_eq!(transitions(&a), vec![(State::Master, State::Backup)]);
}

#[test]
fn master_reasserts_against_lower_priority_master() {
    let t0 = Instant::now();
    let mut f = master(p(Version::V2), 100, t0);
    let a = f.handle(Event::Advert(heard(9, 50)), t0 + SEC * 5);
    assert_eq!(
        a,
        vec![Action::SendAdvert { priority: 100 }, Action::Reannounce]
    );
    assert_eq!(f.state(), State::Master);
}

/// Drives a master for `secs` seconds with an advert `heard` every 100 µs (10k pps), and its
/// timers; returns the adverts it sent and the announcements it asked for.
fn flood(f: &mut Fsm, t0: Instant, secs: u64, heard: Heard) -> (usize, usize) {
    let (mut adverts, mut announces) = (0, 0);
    let step = Duration::from_micros(100);
    let mut now = t0;
    while now < t0 + SEC * secs as u32 {
        let mut a = f.handle(Event::Advert(heard), now);
        if f.poll_timeout().is_some_and(|t| t <= now) {
            a.extend(f.handle(Event::Timeout, now));
        }
        adverts += a
            .iter()
            .filter(|x| matches!(x, Action::SendAdvert { .. }))
            .count();
        announces += a.iter().filter(|x| **x == Action::Reannounce).count();
        now += step;
    }
    (adverts, announces)
}

#[test]
fn master_answers_a_flood_of_lower_priority_adverts_at_most_once_per_interval() {
    let t0 = Instant::now();
    let params = Params {
        advert_interval: ms(100),
        ..p(Version::V3)
    };
    let mut f = master(params, 100, t0);
    let start = t0 + SEC * 5;
    // The first is answered at once, as before.
    let a = f.handle(Event::Advert(heard_every(9, 1, ms(100))), start);
    assert_eq!(
        a,
        vec![Action::SendAdvert { priority: 100 }, Action::Reannounce]
    );
    // 3 s at 10k pps: a burst of ANSWER_BURST, then one advert per 100 ms interval (answers
    // and ticks together) and one announcement per second; not 30 000 of each.
    let (adverts, announces) = flood(&mut f, start, 3, heard_every(9, 1, ms(100)));
    let burst = ANSWER_BURST as usize;
    assert!(
        adverts <= 30 + burst,
        "{adverts} adverts sent in 3 s of flood"
    );
    assert!(adverts >= 29, "still advertises every interval: {adverts}");
    assert!(
        announces <= burst + 3,
        "{announces} announcements in 3 s of flood"
    );
    assert_eq!(f.state(), State::Master);
}

#[test]
fn master_answers_a_flood_of_priority_zero_adverts_at_most_once_per_interval() {
    let t0 = Instant::now();
    let mut f = master(p(Version::V2), 100, t0);
    let (adverts, announces) = flood(&mut f, t0 + SEC * 5, 3, heard(9, 0));
    let burst = ANSWER_BURST as usize;
    assert!(
        adverts <= 3 + burst,
        "{adverts} adverts sent in 3 s of flood"
    );
    assert!(
        announces <= 3 + burst,
        "{announces} announcements in 3 s of flood"
    );
    assert_eq!(f.state(), State::Master);
}

#[test]
fn master_answers_a_short_burst_then_once_per_interval() {
    let t0 = Instant::now();
    let mut f = master(p(Version::V2), 100, t0);
    let now = t0 + SEC * 5;
    let answer = vec![Action::SendAdvert { priority: 100 }, Action::Reannounce];
    // A few in a row are each answered (a partition that heals makes several routers speak
    // at once, and each may have pulled clients to itself).
    for k in 0..ANSWER_BURST {
        let a = f.handle(Event::Advert(heard(9, 50)), now + ms(u64::from(k)));
        assert_eq!(a, answer, "answer {k} of the burst");
    }
    assert!(f
        .handle(Event::Advert(heard(9, 50)), now + ms(999))
        .is_empty());
    // A higher priority is never rate-limited: the master steps down at once.
    let mut g = f.clone();
    let a = g.handle(Event::Advert(heard(9, 150)), now + ms(10));
    assert_eq!(transitions(&a), vec![(State::Master, State::Backup)]);
    // One more per interval (and per second for the announcement) from then on.
    assert_eq!(f.handle(Event::Advert(heard(9, 50)), now + SEC), answer);
    assert!(f.handle(Event::Advert(heard(9, 0)), now + SEC).is_empty());
}

#[test]
fn master_lowered_priority_is_announced_at_once_in_fast_mode() {
    let t0 = Instant::now();
    let mut params = p(Version::V2);
    params.fast_preempt = true;
    let mut f = master(params, 100, t0);
    assert_eq!(
        f.handle(Event::Priority(80), t0 + SEC * 5),
        vec![Action::SendAdvert { priority: 80 }]
    );
    assert!(
        f.handle(Event::Priority(90), t0 + SEC * 5).is_empty(),
        "a rise waits"
    );
    assert_eq!(f.priority(), 90);
}

// --- Fault ---

#[test]
fn fault_from_master_resigns_and_recovers_as_backup() {
    let t0 = Instant::now();
    let mut f = master(p(Version::V2), 100, t0);
    let a = f.handle(Event::Fault(true), t0 + SEC * 5);
    assert_eq!(a[0], Action::SendAdvert { priority: 0 });
    assert_eq!(a[1], Action::RemoveVips);
    assert_eq!(f.state(), State::Fault);
    assert_eq!(f.poll_timeout(), None);
    assert!(f
        .handle(Event::Advert(heard(9, 50)), t0 + SEC * 6)
        .is_empty());
    let a = f.handle(Event::Fault(false), t0 + SEC * 7);
    assert_eq!(transitions(&a), vec![(State::Fault, State::Backup)]);
}

#[test]
fn fault_from_backup_is_silent() {
    let t0 = Instant::now();
    let mut f = backup(p(Version::V2), 100, t0);
    let a = f.handle(Event::Fault(true), t0);
    assert_eq!(transitions(&a), vec![(State::Backup, State::Fault)]);
    assert_eq!(a.len(), 1);
}

// --- sync groups ---

#[test]
fn group_events_move_backup_and_master() {
    let t0 = Instant::now();
    let mut f = backup(p(Version::V2), 100, t0);
    let a = f.handle(Event::GroupMaster, t0);
    assert!(a.contains(&Action::AddVips));
    assert_eq!(f.state(), State::Master);
    let a = f.handle(Event::GroupBackup, t0);
    assert_eq!(a[0], Action::SendAdvert { priority: 0 });
    assert_eq!(a[1], Action::RemoveVips);
    assert_eq!(f.state(), State::Backup);
    assert!(f.handle(Event::GroupBackup, t0).is_empty());
}

// --- whole elections on a simulated LAN ---

fn lan(version: Version, interval: Duration, prios: &[u8]) -> Lan {
    Lan::new(
        prios
            .iter()
            .enumerate()
            .map(|(i, &prio)| (sim::params(version, interval, i), prio))
            .collect(),
    )
}

#[test]
fn highest_priority_wins_and_exactly_one_master_stays() {
    let mut lan = lan(Version::V2, SEC, &[100, 90, 90]);
    lan.start_all();
    lan.run_for(SEC * 5);
    assert_eq!(lan.masters(), vec![0]);
    for _ in 0..100 {
        lan.run_for(ms(97));
        assert_eq!(lan.holders(), vec![0]);
    }
}

#[test]
fn equal_priorities_elect_the_highest_address_without_flapping() {
    let mut lan = lan(Version::V3, ms(100), &[100, 100, 100]);
    lan.start_all();
    lan.run_for(SEC * 2);
    assert_eq!(lan.masters(), vec![2]);
    let before: usize = lan.routers.iter().map(|r| r.transitions.len()).sum();
    lan.run_for(SEC * 30);
    let after: usize = lan.routers.iter().map(|r| r.transitions.len()).sum();
    assert_eq!(before, after, "no transitions in a stable network");
}

#[test]
fn crash_of_master_fails_over_after_master_down_interval() {
    let mut lan = lan(Version::V2, SEC, &[200, 100]);
    lan.start_all();
    lan.run_for(SEC * 5);
    assert_eq!(lan.masters(), vec![0]);
    lan.crash(0);
    let t = lan.now;
    lan.run_for(SEC * 5);
    assert_eq!(lan.holders(), vec![1]);
    let took_over = lan.routers[1].transitions.last().unwrap().0 - t;
    let mdi = lan.routers[1].fsm.master_down_interval();
    assert!(
        took_over <= mdi && took_over > mdi - SEC,
        "{took_over:?} vs {mdi:?}"
    );
}

#[test]
fn graceful_shutdown_hands_over_without_a_gap() {
    let mut lan = lan(Version::V2, SEC, &[200, 100]);
    lan.start_all();
    lan.run_for(SEC * 5);
    lan.event(0, Event::Shutdown);
    // Sample every millisecond: someone always holds the VIPs.
    for _ in 0..2000 {
        lan.run_for(ms(1));
        assert!(!lan.holders().is_empty(), "gap at {:?}", lan.elapsed());
    }
    assert_eq!(lan.holders(), vec![1]);
    assert_eq!(lan.routers[0].fsm.state(), State::Initialize);
}

/// `upkeep handover` on the master of a preempting pair: the backup takes over with no gap,
/// the old master stays backup and does not preempt it back until released, and a held
/// router still takes over when the new master dies.
#[test]
fn operator_handover_moves_the_vips_without_a_gap_and_holds_back_preemption() {
    let mut lan = lan(Version::V2, SEC, &[200, 100]);
    lan.start_all();
    lan.run_for(SEC * 5);
    assert_eq!(lan.masters(), vec![0]);
    lan.event(0, Event::HandOver);
    assert_eq!(lan.routers[0].fsm.state(), State::Handover);
    for _ in 0..2000 {
        lan.run_for(ms(1));
        assert!(!lan.holders().is_empty(), "gap at {:?}", lan.elapsed());
    }
    assert_eq!(lan.holders(), vec![1]);
    assert_eq!(lan.routers[0].fsm.state(), State::Backup);
    assert!(lan.routers[0].fsm.held());
    // Held: hears the lower priority 100 master for a long while and leaves it be.
    lan.run_for(SEC * 20);
    assert_eq!(lan.masters(), vec![1]);
    assert_eq!(lan.holders(), vec![1]);
    // Released: preempts again (fast preemption: at the next advert).
    lan.event(0, Event::Release);
    assert!(!lan.routers[0].fsm.held());
    lan.run_for(SEC + ms(100));
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(lan.holders(), vec![0]);
    // Held again and handed over; then the new master dies: the held router takes over.
    lan.event(0, Event::HandOver);
    lan.run_for(SEC * 3);
    assert_eq!(lan.masters(), vec![1]);
    lan.crash(1);
    lan.run_for(SEC * 4);
    assert_eq!(lan.routers[0].fsm.state(), State::Master);
    assert!(lan.routers[0].fsm.held());
    assert_eq!(lan.holders(), vec![0]);
}

#[test]
fn operator_handover_with_no_successor_keeps_serving() {
    let (mut f, now) = handover_master();
    let a = f.handle(Event::HandOver, now);
    assert_eq!(
        a,
        vec![
            Action::SendAdvert { priority: 0 },
            Action::Transition {
                from: State::Master,
                to: State::Handover,
                reason: Reason::HandoverAsked
            },
        ]
    );
    let deadline = f.poll_timeout().unwrap();
    assert_eq!(deadline, now + SEC * 2);
    let a = f.handle(Event::Timeout, deadline);
    // The VIPs never left; the advert tells the backups that heard priority 0 who is master.
    assert!(!a.contains(&Action::RemoveVips), "{a:?}");
    assert_eq!(a[1], Action::SendAdvert { priority: 100 });
    assert_eq!(f.state(), State::Master);
    assert_eq!(f.poll_timeout(), Some(deadline + SEC));
}

#[test]
fn operator_handover_in_rfc_mode_removes_first_and_becomes_backup() {
    let t0 = Instant::now();
    let mut f = master(p(Version::V2), 100, t0);
    let now = t0 + SEC * 5;
    let a = f.handle(Event::HandOver, now);
    assert_eq!(
        a[..2],
        [Action::SendAdvert { priority: 0 }, Action::RemoveVips]
    );
    assert_eq!(f.state(), State::Backup);
    assert_eq!(f.poll_timeout(), Some(now + f.master_down_interval()));
    assert!(f.held());
}

#[test]
fn shutdown_during_an_operator_handover_ends_the_instance() {
    let (mut f, now) = handover_master();
    f.handle(Event::HandOver, now);
    assert!(f.handle(Event::Shutdown, now).is_empty());
    let a = f.handle(Event::Advert(heard(9, 90)), now + ms(300));
    assert_eq!(a[0], Action::RemoveVips);
    assert_eq!(f.state(), State::Initialize);
}

#[test]
fn held_backup_does_not_preempt_a_lower_master_until_released() {
    let t0 = Instant::now();
    let mut params = p(Version::V2);
    params.fast_preempt = true;
    let mut f = backup(params, 200, t0);
    assert!(
        f.handle(Event::HandOver, t0).is_empty(),
        "a backup only gets held"
    );
    let a = f.handle(Event::Advert(heard(9, 100)), t0 + SEC);
    assert!(transitions(&a).is_empty(), "{a:?}");
    assert_eq!(f.state(), State::Backup);
    assert_eq!(f.master(), Some((heard(9, 100).from, 100)));
    f.handle(Event::Release, t0 + SEC);
    let a = f.handle(Event::Advert(heard(9, 100)), t0 + SEC * 2);
    assert_eq!(transitions(&a), vec![(State::Backup, State::Master)]);
}

#[test]
fn failed_check_moves_vip_within_milliseconds_not_master_down_interval() {
    let mut lan = lan(Version::V2, SEC, &[190, 180]);
    lan.start_all();
    lan.run_for(SEC * 5);
    lan.event(0, Event::Priority(90));
    lan.run_for(ms(10));
    assert_eq!(lan.holders(), vec![1]);
    lan.run_for(SEC * 10);
    assert_eq!(lan.holders(), vec![1], "stays moved");
}

#[test]
fn rfc_mode_failed_check_waits_master_down_interval() {
    let mut routers = Vec::new();
    for (i, prio) in [190u8, 180].into_iter().enumerate() {
        let mut params = sim::params(Version::V2, SEC, i);
        params.fast_preempt = false;
        routers.push((params, prio));
    }
    let mut lan = Lan::new(routers);
    lan.start_all();
    lan.run_for(SEC * 5);
    lan.event(0, Event::Priority(90));
    lan.run_for(SEC * 2);
    assert_eq!(lan.holders(), vec![0], "RFC: backup discards lower adverts");
    lan.run_for(SEC * 3);
    assert_eq!(lan.holders(), vec![1]);
}

#[test]
fn preempt_restart_takes_back_nopreempt_does_not() {
    for preempt in [true, false] {
        let mut routers = Vec::new();
        for (i, prio) in [200u8, 100].into_iter().enumerate() {
            let mut params = sim::params(Version::V2, SEC, i);
            params.preempt = preempt;
            routers.push((params, prio));
        }
        let mut lan = Lan::new(routers);
        lan.start_all();
        lan.run_for(SEC * 5);
        lan.crash(0);
        lan.run_for(SEC * 5);
        assert_eq!(lan.holders(), vec![1]);
        // Restart router 0 from scratch.
        let params = lan.routers[0].fsm.params().clone();
        lan.routers[0].fsm = Fsm::new(params, 200);
        lan.routers[0].up = true;
        lan.event(0, Event::Startup);
        lan.run_for(SEC * 10);
        let expect = if preempt { vec![0] } else { vec![1] };
        assert_eq!(lan.holders(), expect, "preempt={preempt}");
    }
}

#[test]
fn partition_heals_to_exactly_one_master() {
    let mut lan = lan(Version::V3, ms(100), &[150, 100, 50]);
    lan.start_all();
    lan.run_for(SEC);
    lan.routers[0].segment = 1;
    lan.run_for(SEC);
    assert_eq!(
        lan.masters(),
        vec![0, 1],
        "both sides elect during a partition"
    );
    lan.routers[0].segment = 0;
    lan.run_for(ms(100));
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(lan.holders(), vec![0]);
}

#[test]
fn master_priority_zero_backups_follow_skew_order() {
    let mut lan = lan(Version::V3, ms(100), &[250, 100, 200]);
    lan.start_all();
    lan.run_for(SEC);
    lan.event(0, Event::Shutdown);
    lan.run_for(SEC);
    assert_eq!(
        lan.masters(),
        vec![2],
        "the higher backup has the shorter skew"
    );
    assert_eq!(
        lan.routers[1].transitions.len(),
        1,
        "the lower one never became master"
    );
}

#[test]
fn addresses_are_distinct_in_sim() {
    assert_ne!(addr(0), addr(1));
}

/// A master whose adverts the kernel refuses (a firewall rule dropping VRRP out, a vanished
/// source address) is not heard: its backups take over. It steps down and listens, so that
/// the VIPs are not held twice; it follows the master it then hears, and takes over again
/// only when it hears none (then it may be alone, and serving is right).
#[test]
fn a_master_whose_adverts_cannot_be_sent_steps_down_and_listens() {
    let t0 = Instant::now();
    let fast = Params {
        fast_preempt: true,
        ..p(Version::V3)
    };
    let mut f = master(fast, 100, t0);
    let now = t0 + SEC * 10;
    let a = f.handle(Event::AdvertsUnsent, now);
    assert_eq!(a[0], Action::RemoveVips);
    assert_eq!(transitions(&a), vec![(State::Master, State::Backup)]);
    assert!(!a.iter().any(|x| matches!(x, Action::SendAdvert { .. })));
    // The backup that took over is heard: followed, not preempted while it advertises (even
    // with fast preemption), until released.
    assert!(f.held());
    f.handle(Event::Advert(heard(2, 90)), now + SEC);
    assert_eq!(f.state(), State::Backup);
    // Nobody heard for Master_Down_Interval: master again.
    let down = f.poll_timeout().unwrap();
    assert!(down > now + SEC, "waits a Master_Down_Interval");
    let a = f.handle(Event::Timeout, down);
    assert_eq!(f.state(), State::Master);
    assert!(a.contains(&Action::AddVips));
    // Not master: nothing to give up.
    let mut b = backup(p(Version::V3), 90, t0);
    assert!(b.handle(Event::AdvertsUnsent, now).is_empty());
}

/// keepalived's `lower_prio_no_advert`: a master hearing a lower priority keeps to the RFCs
/// and sends no advert of its own in answer (its next one is at the usual tick), but still
/// re-announces the VIPs. A priority 0 is answered with an advert either way (the RFCs).
#[test]
fn lower_prio_no_advert_answers_a_lower_priority_with_announcements_only() {
    let t0 = Instant::now();
    let quiet = Params {
        lower_prio_no_advert: true,
        ..p(Version::V2)
    };
    let mut f = master(quiet, 100, t0);
    let tick = f.poll_timeout().unwrap();
    let now = tick - ms(300);
    let a = f.handle(Event::Advert(heard(9, 50)), now);
    assert_eq!(a, vec![Action::Reannounce], "no advert in answer");
    assert_eq!(
        f.poll_timeout(),
        Some(tick),
        "the regular advert is not moved"
    );
    assert_eq!(f.state(), State::Master);
    // Equal priority from a lower address is a lower priority too.
    let a = f.handle(Event::Advert(heard(1, 100)), now + ms(1));
    assert!(!a.iter().any(|x| matches!(x, Action::SendAdvert { .. })));
    let a = f.handle(Event::Advert(heard(9, 0)), now + ms(2));
    assert!(a.contains(&Action::SendAdvert { priority: 100 }), "{a:?}");
    // Without the setting the same advert is answered with one.
    let mut g = master(p(Version::V2), 100, t0);
    let a = g.handle(Event::Advert(heard(9, 50)), now);
    assert_eq!(
        a,
        vec![Action::SendAdvert { priority: 100 }, Action::Reannounce]
    );
}

/// keepalived's `higher_prio_send_advert`: a master stepping down to a higher priority first
/// sends the winner alone an advert at its own priority (a keepalived winner re-announces on a
/// lower one), then its priority-0 notice as always.
#[test]
fn higher_prio_send_advert_sends_our_priority_before_stepping_down() {
    let t0 = Instant::now();
    let loud = Params {
        higher_prio_send_advert: true,
        ..p(Version::V2)
    };
    let mut f = master(loud, 100, t0);
    let now = t0 + SEC * 5;
    let a = f.handle(Event::Advert(heard(9, 200)), now);
    // (to the winner, priority): multicast ones have no address.
    let sent: Vec<(Option<IpAddr>, u8)> = a
        .iter()
        .filter_map(|x| match x {
            Action::SendAdvert { priority } => Some((None, *priority)),
            Action::TellWinner { to, priority } => Some((Some(*to), *priority)),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![(Some(heard(9, 200).from), 100), (None, 0)]);
    assert_eq!(f.state(), State::Backup);
    // Without it: the priority-0 notice alone.
    let mut g = master(p(Version::V2), 100, t0);
    let a = g.handle(Event::Advert(heard(9, 200)), now);
    let sent: Vec<_> = a
        .iter()
        .filter(|x| matches!(x, Action::SendAdvert { .. }))
        .collect();
    assert_eq!(sent, vec![&Action::SendAdvert { priority: 0 }]);
}

/// On the simulated LAN, a lower-priority router that believes itself master (it missed the
/// master's adverts) still steps down with `lower_prio_no_advert`: at the master's next
/// regular advert instead of at once.
#[test]
fn lower_prio_no_advert_still_ends_a_second_master_at_the_next_advert() {
    let mut lan = lan(Version::V3, ms(100), &[200, 100]);
    for r in &mut lan.routers {
        let params = Params {
            lower_prio_no_advert: true,
            ..r.fsm.params().clone()
        };
        r.fsm.set_params(params);
    }
    lan.start_all();
    lan.run_for(SEC);
    assert_eq!(lan.masters(), vec![0]);
    // Router 1 takes over as if it had missed three adverts.
    lan.event(1, Event::GroupMaster);
    assert_eq!(lan.masters(), vec![0, 1]);
    lan.run_for(ms(150));
    assert_eq!(
        lan.masters(),
        vec![0],
        "back to one master within an interval"
    );
    assert_eq!(lan.holders(), vec![0]);
}

// --- a sick nopreempt master hands over (`handover_when_sick`) ---

/// A nopreempt master of base priority 100 (handover_when_sick as given), five seconds after
/// start, and that time.
fn nopreempt_master(sick: bool) -> (Fsm, Instant) {
    let t0 = Instant::now();
    let params = Params {
        preempt: false,
        fast_preempt: true,
        handover_when_sick: sick,
        ..p(Version::V2)
    };
    (master(params, 100, t0), t0 + SEC * 5)
}

#[test]
fn a_sick_nopreempt_master_hands_over_make_before_break() {
    let (mut f, now) = nopreempt_master(true);
    let a = f.handle(Event::Priority(80), now);
    assert_eq!(
        a,
        vec![
            Action::SendAdvert { priority: 0 },
            Action::Transition {
                from: State::Master,
                to: State::Handover,
                reason: Reason::Sick { priority: 80 }
            },
        ],
        "priority 0 at once, the VIPs kept (even with `handover` off)"
    );
    // The successor's first advert: VIPs go, backup, following it.
    let a = f.handle(Event::Advert(heard(3, 90)), now + ms(700));
    assert_eq!(a[0], Action::RemoveVips);
    assert_eq!(transitions(&a), vec![(State::Handover, State::Backup)]);
    assert_eq!(f.master(), Some((heard(3, 90).from, 90)));
    // Recovered: stays backup (nopreempt), not held back by anything else.
    assert!(f.handle(Event::Priority(100), now + SEC * 5).is_empty());
    assert_eq!(f.state(), State::Backup);
    assert!(!f.held());
}

#[test]
fn keepalived_behaviour_without_handover_when_sick_or_with_preempt() {
    // handover-when-sick #false: the sick master announces its priority and stays.
    let (mut f, now) = nopreempt_master(false);
    let a = f.handle(Event::Priority(80), now);
    assert_eq!(a, vec![Action::SendAdvert { priority: 80 }]);
    assert_eq!(f.state(), State::Master);
    // A preempting master leaves it to its (preempting) backups, as before.
    let t0 = Instant::now();
    let params = Params {
        fast_preempt: true,
        ..p(Version::V2)
    };
    let mut f = master(params, 100, t0);
    let a = f.handle(Event::Priority(80), t0 + SEC * 5);
    assert_eq!(a, vec![Action::SendAdvert { priority: 80 }]);
    assert_eq!(f.state(), State::Master);
    // A rise, or a priority at or above the configured one, is not sick.
    let (mut f, now) = nopreempt_master(true);
    assert_eq!(
        f.handle(Event::Priority(120), now),
        vec![],
        "a rise says nothing until the next advert"
    );
    f.handle(Event::Priority(100), now);
    assert_eq!(f.state(), State::Master);
    // A sync-group member does not hand over alone.
    let (mut f, now) = nopreempt_master(true);
    f.set_grouped(true);
    f.handle(Event::Priority(80), now);
    assert_eq!(f.state(), State::Master);
}

#[test]
fn a_sick_master_takes_the_vips_back_from_a_sicker_successor() {
    let (mut f, now) = nopreempt_master(true);
    f.handle(Event::Priority(80), now);
    let at = now + ms(700);
    let a = f.handle(Event::Advert(heard(3, 70)), at);
    assert_eq!(
        a,
        vec![
            Action::Transition {
                from: State::Handover,
                to: State::Master,
                reason: Reason::SuccessorSicker {
                    from: heard(3, 70).from,
                    priority: 70
                }
            },
            Action::SendAdvert { priority: 80 },
            Action::Announce,
        ],
        "the VIPs never left; its advert makes the successor step down"
    );
    assert_eq!(f.poll_timeout(), Some(at + SEC));
    // An equal priority is no worse: it takes over.
    let (mut f, now) = nopreempt_master(true);
    f.handle(Event::Priority(80), now);
    f.handle(Event::Advert(heard(3, 80)), now + ms(700));
    assert_eq!(f.state(), State::Backup);
    // Nor does an operator's handover or a shutdown take anything back.
    for ev in [Event::HandOver, Event::Shutdown] {
        let (mut f, now) = nopreempt_master(true);
        f.handle(Event::Priority(80), now);
        f.handle(ev, now + ms(10));
        f.handle(Event::Advert(heard(3, 70)), now + ms(700));
        assert_ne!(f.state(), State::Master, "{ev:?}");
    }
}

#[test]
fn a_sick_master_tries_once_per_fall() {
    let (mut f, now) = nopreempt_master(true);
    f.handle(Event::Priority(80), now);
    // No successor within Skew_Time plus an interval: it keeps serving.
    let until = f.poll_timeout().unwrap();
    assert_eq!(until, now + SEC * 2);
    let a = f.handle(Event::Timeout, until);
    assert_eq!(transitions(&a), vec![(State::Handover, State::Master)]);
    assert!(!a.contains(&Action::RemoveVips));
    let mut now = until;
    // A change that is no further fall, or a fall back to where it tried: no new try.
    for p in [90, 80] {
        now += SEC;
        let a = f.handle(Event::Priority(p), now);
        assert_eq!(f.state(), State::Master, "at {p}: {a:?}");
    }
    // A further fall: one more try.
    now += SEC;
    f.handle(Event::Priority(60), now);
    assert_eq!(f.state(), State::Handover);
    now += SEC * 2;
    f.handle(Event::Timeout, now);
    assert_eq!(f.state(), State::Master);
    // Recovered to the configured priority, a new fall is a new try.
    now += SEC;
    f.handle(Event::Priority(100), now);
    now += SEC;
    f.handle(Event::Priority(80), now);
    assert_eq!(f.state(), State::Handover);
    // A reload that lowers the configured priority is no sickness.
    let (mut f, now) = nopreempt_master(true);
    f.set_base_priority(70);
    f.handle(Event::Priority(70), now);
    assert_eq!(f.state(), State::Master);
}

fn nopreempt_lan(prios: &[u8]) -> Lan {
    let mut lan = Lan::new(
        prios
            .iter()
            .enumerate()
            .map(|(i, &prio)| {
                let params = Params {
                    preempt: false,
                    ..sim::params(Version::V2, SEC, i)
                };
                (params, prio)
            })
            .collect(),
    );
    // A LAN's delivery: well under the tie-break delay (about 1 ms at 1 s).
    lan.latency = Duration::from_micros(100);
    lan
}

/// The seed's case: 100/90/90, nopreempt, a check of weight -20 fails on the master. One
/// backup takes over (the tie-break delay: 192.0.2.3 before .2), the VIPs are held throughout,
/// and the recovered ex-master stays backup.
#[test]
fn the_seed_s_sick_master_hands_over_to_one_backup_and_stays_backup() {
    let mut lan = nopreempt_lan(&[100, 90, 90]);
    lan.start_all();
    lan.run_for(SEC * 5);
    assert_eq!(lan.masters(), vec![0]);
    let t = lan.now;
    lan.event(0, Event::Priority(80));
    // Someone holds the VIPs at every step.
    while lan.now < t + SEC * 3 {
        lan.run_for(ms(1));
        assert!(!lan.holders().is_empty(), "a gap at {:?}", lan.now - t);
    }
    assert_eq!(lan.masters(), vec![2]);
    assert_eq!(lan.holders(), vec![2]);
    let took_over: Vec<Duration> = lan.routers[2]
        .transitions
        .iter()
        .filter(|x| x.2 == State::Master)
        .map(|x| x.0 - t)
        .collect();
    // The notice's delivery, then Skew_Time at 90 (166/256 s) plus its tie-break delay (0 for
    // an odd address).
    assert_eq!(
        took_over,
        vec![lan.latency + Duration::from_secs(166) / 256]
    );
    assert!(
        lan.routers[1]
            .transitions
            .iter()
            .all(|x| x.2 != State::Master),
        "the other backup never took over"
    );
    assert!(lan.routers[1].sent.is_empty(), "nor advertised");
    // h1 recovers: nopreempt holds, nothing moves.
    let before: usize = lan.routers.iter().map(|r| r.transitions.len()).sum();
    lan.event(0, Event::Priority(100));
    lan.run_for(SEC * 30);
    assert_eq!(lan.masters(), vec![2]);
    let after: usize = lan.routers.iter().map(|r| r.transitions.len()).sum();
    assert_eq!(after, before);
}

/// Every host sick (100 -> 80, 90 -> 70): the master hands over once, takes the VIPs back from
/// the sicker successor, and then nothing moves until a priority falls further.
#[test]
fn when_every_host_is_sick_the_vips_stay_on_the_least_sick() {
    let mut lan = nopreempt_lan(&[100, 90, 90]);
    lan.start_all();
    lan.run_for(SEC * 5);
    lan.event(1, Event::Priority(70));
    lan.event(2, Event::Priority(70));
    lan.run_for(SEC * 5);
    assert_eq!(lan.masters(), vec![0]);
    lan.event(0, Event::Priority(80));
    lan.run_for(SEC * 3);
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(lan.holders(), vec![0]);
    // One takeover by h3, one back.
    let masters_of = |lan: &Lan, i: usize| {
        lan.routers[i]
            .transitions
            .iter()
            .filter(|x| x.2 == State::Master)
            .count()
    };
    assert_eq!(masters_of(&lan, 2), 1);
    assert_eq!(masters_of(&lan, 1), 0);
    // Quiet for good: checks that stay failed move nothing.
    let before: usize = lan.routers.iter().map(|r| r.transitions.len()).sum();
    lan.run_for(SEC * 120);
    let after: usize = lan.routers.iter().map(|r| r.transitions.len()).sum();
    assert_eq!(after, before);
    // h2 recovers: no one can know (backups are silent); the master stays.
    lan.event(1, Event::Priority(90));
    lan.run_for(SEC * 10);
    assert_eq!(lan.masters(), vec![0]);
    // A second failed check on the master (80 -> 60): one more try, now to h2 at 90.
    lan.event(0, Event::Priority(60));
    lan.run_for(SEC * 3);
    assert_eq!(lan.masters(), vec![1]);
}

/// Two equal-priority backups when the master leaves: exactly one takes over (without the
/// tie-break delay both did, and the lower address yielded).
#[test]
fn equal_priority_backups_one_takes_over() {
    for version in [Version::V2, Version::V3] {
        let mut lan = Lan::new(
            [100u8, 90, 90]
                .iter()
                .enumerate()
                .map(|(i, &prio)| (sim::params(version, SEC, i), prio))
                .collect(),
        );
        lan.latency = Duration::from_micros(100);
        lan.start_all();
        lan.run_for(SEC * 5);
        lan.event(0, Event::Shutdown);
        lan.run_for(SEC * 5);
        assert_eq!(
            lan.masters(),
            vec![2],
            "{version:?}: {:?}",
            lan.routers[0].transitions
        );
        assert!(
            lan.routers[1].sent.is_empty(),
            "{version:?}: h2 never advertised"
        );
        // And when the master crashes.
        let mut lan = Lan::new(
            [100u8, 90, 90]
                .iter()
                .enumerate()
                .map(|(i, &prio)| (sim::params(version, SEC, i), prio))
                .collect(),
        );
        lan.latency = Duration::from_micros(100);
        lan.start_all();
        lan.run_for(SEC * 5);
        lan.crash(0);
        lan.run_for(SEC * 5);
        assert_eq!(lan.holders(), vec![2], "{version:?}");
        assert!(
            lan.routers[1].sent.is_empty(),
            "{version:?}: h2 never advertised"
        );
    }
}
