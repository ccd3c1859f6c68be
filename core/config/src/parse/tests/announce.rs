//! The gratuitous ARP / NA settings and the advert-answer flags: global defaults, the
//! instance's own over them, keepalived's defaults, and bad values.

use super::*;
use crate::model::{Garp, DEFAULT_GARP_DELAY};

#[test]
fn an_instance_without_settings_announces_as_keepalived_does() {
    let cfg = ok(&web(""));
    let i = &cfg.instances[0];
    assert_eq!(
        i.garp,
        Garp {
            repeat: 5,
            interval: Duration::ZERO,
            na_interval: Duration::ZERO,
            delay: Some(DEFAULT_GARP_DELAY),
            refresh: None,
            refresh_repeat: 1,
            lower_prio_repeat: 5,
            lower_prio_delay: Some(DEFAULT_GARP_DELAY),
        }
    );
    assert!(!i.lower_prio_no_advert);
    assert!(!i.higher_prio_send_advert);
}

#[test]
fn global_sets_the_defaults_and_the_instance_overrides_them() {
    let global = "global {\n    garp-repeat 3\n    garp-interval \"20ms\"\n    na-interval \"30ms\"\n    garp-delay \"0s\"\n    garp-refresh \"60s\"\n    garp-refresh-repeat 2\n    lower-prio-no-advert\n}\n";
    let plain = ok(&format!("{global}{}", web("")));
    let g = &plain.instances[0].garp;
    assert_eq!(g.repeat, 3);
    assert_eq!(g.interval, Duration::from_millis(20));
    assert_eq!(g.na_interval, Duration::from_millis(30));
    assert_eq!(g.delay, None, "0s: no second round");
    assert_eq!(g.refresh, Some(Duration::from_secs(60)));
    assert_eq!(g.refresh_repeat, 2);
    // The lower-priority ones follow the takeover's.
    assert_eq!(g.lower_prio_repeat, 3);
    assert_eq!(g.lower_prio_delay, None);
    assert!(plain.instances[0].lower_prio_no_advert);

    let own = web(
        "    garp-repeat 1\n    garp-delay \"2s\"\n    garp-refresh \"0s\"\n    garp-lower-prio-repeat 0\n    lower-prio-no-advert #false\n    higher-prio-send-advert\n",
    );
    let cfg = ok(&format!("{global}{own}"));
    let i = &cfg.instances[0];
    assert_eq!(i.garp.repeat, 1);
    assert_eq!(i.garp.delay, Some(Duration::from_secs(2)));
    assert_eq!(i.garp.refresh, None);
    assert_eq!(i.garp.interval, Duration::from_millis(20), "global's");
    assert_eq!(i.garp.lower_prio_repeat, 0);
    assert_eq!(
        i.garp.lower_prio_delay,
        Some(Duration::from_secs(2)),
        "the instance's own garp-delay"
    );
    assert!(!i.lower_prio_no_advert);
    assert!(i.higher_prio_send_advert);
}

#[test]
fn global_lower_priority_settings_apply_to_every_instance() {
    let src = format!(
        "global {{\n    garp-lower-prio-repeat 2\n    garp-lower-prio-delay \"1s\"\n}}\n{}",
        web("    garp-repeat 4\n")
    );
    let g = &ok(&src).instances[0].garp;
    assert_eq!((g.repeat, g.lower_prio_repeat), (4, 2));
    assert_eq!(g.lower_prio_delay, Some(Duration::from_secs(1)));
}

#[test]
fn a_change_of_a_global_garp_default_is_a_change_of_the_instance() {
    let a = ok(&web(""));
    let b = ok(&format!(
        "global {{\n    garp-delay \"1s\"\n}}\n{}",
        web("")
    ));
    assert!(!crate::diff::same_instance(
        &a.instances[0],
        &b.instances[0]
    ));
}

#[test]
fn bad_announcement_values_are_refused_where_written() {
    problems_at(&[
        (
            web("    garp-repeat 0\n"),
            5,
            17,
            "must be from 1 to 100, not 0",
        ),
        (
            web("    garp-lower-prio-repeat 101\n"),
            5,
            28,
            "must be from 0 to 100, not 101",
        ),
        (web("    garp-delay \"soon\"\n"), 5, 16, "garp-delay"),
        (
            web("    lower-prio-no-advert 1\n"),
            5,
            26,
            "lower-prio-no-advert",
        ),
        (
            "global {\n    garp-refresh-repeat 0\n}\n".into(),
            2,
            25,
            "must be from 1 to 100, not 0",
        ),
    ]);
    // keepalived's spelling gets a hint with upkeep's.
    let p = problem_at(
        &web("    garp_master_delay 10\n"),
        5,
        5,
        "garp_master_delay",
    );
    assert!(help_of(&p).contains("garp-delay"), "{p:?}");
}

#[test]
fn the_notify_fifo_and_its_settings() {
    let src = format!(
        "global {{\n    notify-fifo \"/run/upkeep/notify.fifo\"\n    notify-fifo-script \"/usr/local/bin/read.sh -q\"\n    notify-priority-changes\n}}\n{}",
        web("    notify-master-rx-lower-pri \"/etc/upkeep/reclaim.sh web\"\n    notify-priority-changes #false\n")
    );
    let cfg = ok(&src);
    assert_eq!(
        cfg.global.notify_fifo.as_deref(),
        Some(std::path::Path::new("/run/upkeep/notify.fifo"))
    );
    assert_eq!(
        cfg.global.notify_fifo_script.as_deref(),
        Some("/usr/local/bin/read.sh -q")
    );
    assert!(cfg.global.notify_priority_changes);
    let i = &cfg.instances[0];
    assert_eq!(
        i.notify.master_rx_lower_pri.as_deref(),
        Some("/etc/upkeep/reclaim.sh web")
    );
    assert!(!i.notify_priority_changes, "its own #false");
    assert!(
        ok(&format!(
            "global {{\n    notify-priority-changes\n}}\n{}",
            web("")
        ))
        .instances[0]
            .notify_priority_changes
    );
    problems_at(&[
        (
            "global {\n    notify-fifo \"notify.fifo\"\n}\n".into(),
            2,
            17,
            "must be an absolute file path",
        ),
        (
            "global {\n    notify-fifo-script \"/bin/cat\"\n}\n".into(),
            2,
            5,
            "`notify-fifo-script` without `notify-fifo`",
        ),
    ]);
    // Only instances have it: a sync group does not.
    let group = format!(
        "{}sync-group \"g\" {{\n    member \"web\"\n    notify-master-rx-lower-pri \"/bin/true\"\n}}\n",
        web("")
    );
    problem_at(&group, 8, 5, "notify-master-rx-lower-pri");
}

/// An instance without VIPs (keepalived#2121: a cloud moves the address by API from notify
/// commands) says so with `no-vip`; its family is its unicast addresses'.
#[test]
fn an_instance_without_vips_says_no_vip() {
    let bare = "instance \"cloud\" {\n    interface \"eth0\"\n    vrid 9\n";
    let cfg = ok(&format!(
        "{bare}    no-vip\n    notify-master \"/bin/true\"\n}}\n"
    ));
    let i = &cfg.instances[0];
    assert!(i.vips.is_empty() && !i.is_ipv6());
    let v6 = ok(&format!(
        "{bare}    no-vip\n    unicast-peer \"2001:db8::2\"\n}}\n"
    ));
    assert!(v6.instances[0].is_ipv6());
    let p = problem_at(&format!("{bare}}}\n"), 1, 1, "has no `vip`");
    assert!(help_of(&p).contains("no-vip"), "{p:?}");
    problems_at(&[
        (
            format!("{bare}    no-vip\n    vip \"192.0.2.1/24\"\n}}\n"),
            4,
            5,
            "has `no-vip` and VIPs",
        ),
        (
            format!("{bare}    no-vip\n    unicast-src \"192.0.2.1\"\n    unicast-peer \"2001:db8::2\"\n}}\n"),
            6,
            18,
            "2001:db8::2 is IPv6 but 192.0.2.1 is IPv4",
        ),
        (
            format!("{bare}    no-vip\n    version 2\n    unicast-peer \"2001:db8::2\"\n}}\n"),
            1,
            1,
            "which VRRP version 2 cannot carry",
        ),
        (format!("{bare}    no-vip 1\n}}\n"), 4, 12, "`no-vip` takes no value"),
    ]);
}

#[test]
fn startup_delay_is_a_global_duration() {
    assert_eq!(ok(&web("")).global.startup_delay, Duration::ZERO);
    let cfg = ok(&format!(
        "global {{\n    startup-delay \"2.5s\"\n}}\n{}",
        web("")
    ));
    assert_eq!(cfg.global.startup_delay, Duration::from_millis(2500));
    problem_at(
        "global {\n    startup-delay \"later\"\n}\n",
        2,
        19,
        "startup-delay",
    );
}

#[test]
fn unicast_ttl_and_peer_ttl_ranges() {
    let cfg = ok(&web(
        "    unicast-ttl 64\n    unicast-peer \"192.0.2.2\" \"192.0.2.3\" min-ttl=60 max-ttl=64\n    unicast-peer \"192.0.2.4\"\n",
    ));
    let i = &cfg.instances[0];
    assert_eq!(i.unicast_ttl, 64);
    let ip = |s: &str| -> std::net::IpAddr { s.parse().expect("ip") };
    assert_eq!(
        i.peer_ttl,
        vec![(ip("192.0.2.2"), 60..=64), (ip("192.0.2.3"), 60..=64)]
    );
    assert_eq!(ok(&web("")).instances[0].unicast_ttl, 255);
    let only_min = ok(&web("    unicast-peer \"192.0.2.2\" min-ttl=250\n"));
    assert_eq!(only_min.instances[0].peer_ttl[0].1, 250..=255);
    problems_at(&[
        (
            web("    unicast-ttl 64\n"),
            5,
            5,
            "`unicast-ttl` without `unicast-peer`",
        ),
        (
            web("    unicast-peer \"192.0.2.2\" min-ttl=70 max-ttl=64\n"),
            5,
            41,
            "`max-ttl=64` is below `min-ttl=70`",
        ),
        (
            web("    unicast-peer \"192.0.2.2\" ttl=64\n"),
            5,
            30,
            "unknown property `ttl=`",
        ),
        (
            web("    unicast-peer \"192.0.2.2\"\n    unicast-ttl 0\n"),
            6,
            17,
            "must be from 1 to 255, not 0",
        ),
    ]);
}

#[test]
fn multicast_groups_global_and_per_instance() {
    let g = "global {\n    multicast-group4 \"224.0.0.19\"\n    multicast-group6 \"ff02::13\"\n}\n";
    let v6 =
        "instance \"six\" {\n    interface \"eth0\"\n    vrid 52\n    vip \"2001:db8::1/64\"\n}\n";
    let cfg = ok(&format!("{g}{}{v6}", web("")));
    let group = |i: usize| cfg.instances[i].multicast_group.map(|a| a.to_string());
    assert_eq!(group(0).as_deref(), Some("224.0.0.19"));
    assert_eq!(group(1).as_deref(), Some("ff02::13"));
    let own = ok(&format!(
        "{g}{}",
        web("    multicast-group \"224.0.0.20\"\n")
    ));
    assert_eq!(
        own.instances[0]
            .multicast_group
            .map(|a| a.to_string())
            .as_deref(),
        Some("224.0.0.20")
    );
    assert_eq!(
        ok(&web("")).instances[0].multicast_group,
        None,
        "the RFC group"
    );
    let unicast = ok(&format!("{g}{}", web("    unicast-peer \"192.0.2.2\"\n")));
    assert_eq!(
        unicast.instances[0].multicast_group, None,
        "unicast: no group"
    );
    problems_at(&[
        (
            web("    multicast-group \"192.0.2.1\"\n"),
            5,
            21,
            "is not a multicast group",
        ),
        (
            web("    multicast-group \"ff05::12\"\n"),
            5,
            21,
            "is not a multicast group",
        ),
        (
            web("    multicast-group \"ff02::13\"\n"),
            5,
            21,
            "is IPv6 but this instance speaks IPv4",
        ),
        (
            "global {\n    multicast-group4 \"ff02::13\"\n}\n".into(),
            2,
            22,
            "`multicast-group4` is for IPv4 groups",
        ),
        (
            web("    unicast-peer \"192.0.2.2\"\n    multicast-group \"224.0.0.19\"\n"),
            6,
            21,
            "`multicast-group` with `unicast-peer`",
        ),
    ]);
}
