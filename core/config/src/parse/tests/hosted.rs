//! What an instance puts on the host: VIP options, routes, rules.

use super::*;
use crate::model::{NextHop, RouteKind, Rule, RuleAction, VipOptions};

#[test]
fn vip_options_are_read() {
    let cfg = ok(&web(concat!(
        "    vip \"192.0.2.101/24\" label=\"eth0:vip\" scope=\"link\" brd=\"192.0.2.127\" preferred-lft=0\n",
        "    vip \"192.0.2.102/24\" dev=\"eth1\" label=\"eth1:b\" scope=200 preferred-lft=\"forever\"\n",
        "    vip \"2001:db8::5/64\" advertise=#false nodad=#false preferred-lft=30\n",
        "    vip \"2001:db8::6/64\" advertise=#false nodad=#true\n",
    )));
    let v = &cfg.instances[0].vips;
    assert_eq!(
        v[0].opts,
        VipOptions::default(),
        "no options: the old default"
    );
    assert_eq!(
        v[1].opts,
        VipOptions {
            label: Some("eth0:vip".into()),
            scope: Some(253),
            broadcast: Some("192.0.2.127".parse().unwrap()),
            dad: false,
            preferred_lft: Some(0),
        }
    );
    assert_eq!(
        (
            v[2].opts.label.as_deref(),
            v[2].opts.scope,
            v[2].opts.preferred_lft
        ),
        (Some("eth1:b"), Some(200), None)
    );
    assert!(v[3].opts.dad);
    assert_eq!(v[3].opts.preferred_lft, Some(30));
    assert!(!v[4].opts.dad);
}

#[test]
fn bad_vip_options_are_reported_where_written() {
    problems_with_help(&[
        (
            web("    vip \"2001:db8::5/64\" advertise=#false label=\"eth0:x\"\n"),
            5,
            43,
            "`label=` of `vip` is for IPv4 addresses",
            "remove it",
        ),
        (
            web("    vip \"192.0.2.101/24\" label=\"eth1:x\"\n"),
            5,
            26,
            "does not start with its interface's name `eth0`",
            "label=\"eth0:vip\"",
        ),
        (
            web("    vip \"192.0.2.101/24\" dev=\"eth1\" label=\"eth0:x\"\n"),
            5,
            37,
            "does not start with its interface's name `eth1`",
            "eth1:vip",
        ),
        (
            web("    vip \"192.0.2.101/24\" label=\"eth0:waytoolongalabel\"\n"),
            5,
            26,
            "1 to 15 characters",
            "eth0:vip",
        ),
        (
            web("    vip \"192.0.2.101/24\" scope=\"planet\"\n"),
            5,
            26,
            "not a scope: `planet`",
            "\"link\"",
        ),
        (
            web("    vip \"192.0.2.101/24\" scope=256\n"),
            5,
            26,
            "from 0 to 255",
            "",
        ),
        (
            web("    vip \"192.0.2.101/24\" brd=\"198.51.100.255\"\n"),
            5,
            26,
            "not in 192.0.2.101/24's subnet",
            "leave `brd=` out",
        ),
        (
            web("    vip \"192.0.2.101/24\" nodad=#true\n"),
            5,
            26,
            "`nodad=` of `vip` is for IPv6",
            "IPv4 has no duplicate address detection",
        ),
        (
            web("    vip \"192.0.2.101/24\" preferred-lft=\"1h\"\n"),
            5,
            26,
            "number of seconds or \"forever\"",
            "preferred-lft=0",
        ),
        (
            web("    vip \"192.0.2.101/24\" preferred-lft=-1\n"),
            5,
            26,
            "from 0 to",
            "",
        ),
    ]);
}

#[test]
fn route_options_are_read() {
    let cfg = ok(&web(concat!(
        "    route \"198.51.100.0/24\" via=\"192.0.2.254\" src=\"192.0.2.100\" scope=\"global\" metric=5 table=100\n",
        "    route \"203.0.113.0/24\" type=\"blackhole\" table=100\n",
        "    route \"198.18.0.0/15\" via=\"203.0.113.1\" onlink=#true\n",
        "    route \"203.0.113.128/25\" type=\"unreachable\"\n",
        "    route \"198.51.100.128/25\" dev=\"eth0\" table=100 {\n",
        "        nexthop via=\"192.0.2.253\" weight=2\n",
        "        nexthop via=\"192.0.2.252\" dev=\"eth1\"\n",
        "    }\n",
    )));
    let r = &cfg.instances[0].routes;
    assert_eq!(r[0].src, Some("192.0.2.100".parse().unwrap()));
    assert_eq!(r[0].scope, Some(0));
    assert_eq!(r[0].kind, RouteKind::Unicast);
    assert_eq!((r[1].kind, r[1].table), (RouteKind::Blackhole, Some(100)));
    assert!(r[2].onlink && !r[0].onlink);
    assert_eq!(r[3].kind, RouteKind::Unreachable);
    assert_eq!(
        r[4].nexthops,
        vec![
            NextHop {
                via: Some("192.0.2.253".parse().unwrap()),
                dev: None,
                weight: 2
            },
            NextHop {
                via: Some("192.0.2.252".parse().unwrap()),
                dev: Some("eth1".into()),
                weight: 1
            },
        ]
    );
}

#[test]
fn bad_route_options_are_reported_where_written() {
    problems_with_help(&[
        (
            web("    route \"198.51.100.0/24\" src=\"2001:db8::1\"\n"),
            5,
            29,
            "source 2001:db8::1 is IPv6 but the destination is IPv4",
            "address family",
        ),
        (
            web("    route \"198.51.100.0/24\" type=\"nat\"\n"),
            5,
            29,
            "not a route type: `nat`",
            "\"blackhole\"",
        ),
        (
            web("    route \"198.51.100.0/24\" type=\"blackhole\" via=\"192.0.2.254\"\n"),
            5,
            46,
            "a blackhole route takes no `via=`",
            "remove `via=`",
        ),
        (
            web("    route \"198.51.100.0/24\" via=\"192.0.2.254\" {\n        nexthop via=\"192.0.2.253\"\n    }\n"),
            5,
            29,
            "takes no `via=` of its own",
            "nexthop via=",
        ),
        (
            web("    route \"198.51.100.0/24\" {\n        nexthop via=\"192.0.2.253\" weight=0\n    }\n"),
            6,
            35,
            "`weight=` of `nexthop` must be from 1 to 256",
            "",
        ),
        (
            web("    route \"198.51.100.0/24\" {\n        nexthop via=\"2001:db8::1\"\n    }\n"),
            6,
            17,
            "nexthop 2001:db8::1 is IPv6",
            "",
        ),
        (
            web("    route \"198.51.100.0/24\" {\n        hop via=\"192.0.2.1\"\n    }\n"),
            6,
            9,
            "unknown setting `hop` in a route",
            "nexthop via=",
        ),
        (
            web("    route \"198.51.100.0/24\" type=\"throw\" onlink=#true\n"),
            5,
            42,
            "a throw route takes no `onlink=`",
            "",
        ),
        (
            web("    route \"198.51.100.0/24\" scope=\"near\"\n"),
            5,
            29,
            "not a scope: `near`",
            "",
        ),
    ]);
}

#[test]
fn rules_are_read() {
    let cfg = ok(&web(concat!(
        "    rule from=\"192.0.2.100\" table=100 priority=100\n",
        "    rule to=\"198.51.100.0/24\" iif=\"eth0\" oif=\"eth1\" fwmark=0x10 fwmask=0xff table=101\n",
        "    rule fwmark=7 type=\"blackhole\"\n",
        "    rule from=\"2001:db8::/64\" table=102\n",
    )));
    let r = &cfg.instances[0].rules;
    assert_eq!(
        r[0],
        Rule {
            v6: false,
            from: Some(("192.0.2.100".parse().unwrap(), 32)),
            to: None,
            iif: None,
            oif: None,
            fwmark: None,
            fwmask: None,
            priority: Some(100),
            action: RuleAction::Table(100),
        }
    );
    assert_eq!(
        (
            r[1].iif.as_deref(),
            r[1].oif.as_deref(),
            r[1].fwmark,
            r[1].fwmask
        ),
        (Some("eth0"), Some("eth1"), Some(16), Some(255))
    );
    assert_eq!(r[1].to, Some(("198.51.100.0".parse().unwrap(), 24)));
    // No address: the instance's family.
    assert_eq!((r[2].action, r[2].v6), (RuleAction::Blackhole, false));
    assert!(r[3].v6);
    // An IPv6 instance's rule without addresses is IPv6.
    let v6 = ok("instance \"w\" {\n    interface \"eth0\"\n    vrid 5\n    vip \"2001:db8::5/64\"\n    rule fwmark=1 table=7\n}\n");
    assert!(v6.instances[0].rules[0].v6);
}

#[test]
fn bad_rules_are_reported_where_written() {
    problems_with_help(&[
        (
            web("    rule from=\"192.0.2.100\"\n"),
            5,
            5,
            "`rule` needs `table=`",
            "table=100",
        ),
        (
            web("    rule from=\"192.0.2.100\" to=\"2001:db8::1\" table=1\n"),
            5,
            29,
            "`to=` is IPv6 but `from=` is IPv4",
            "split it in two",
        ),
        (web("    rule table=0\n"), 5, 10, "from 1 to", ""),
        (
            web("    rule fwmask=0xff table=1\n"),
            5,
            10,
            "`fwmask=` without `fwmark=`",
            "fwmark=0x10",
        ),
        (
            web("    rule table=1 type=\"blackhole\"\n"),
            5,
            18,
            "a rule with `type=` looks up no table",
            "keep one",
        ),
        (
            web("    rule \"192.0.2.1\" table=1\n"),
            5,
            10,
            "`rule` takes no value",
            "",
        ),
        (
            web("    rule from=\"192.0.2.100\" table=1\n    rule from=\"192.0.2.100\" table=1\n"),
            6,
            5,
            "this rule is listed twice",
            "",
        ),
        (
            web("    rule tabel=1\n"),
            5,
            10,
            "unknown property `tabel=`",
            "`table=`",
        ),
    ]);
}

#[test]
fn accept_mode() {
    let i = |body: &str| ok(&web(body)).instances[0].clone();
    assert!(
        i("").accept && !i("").drops_vip_traffic(),
        "accepts by default"
    );
    let no = i("    accept #false\n");
    assert!(!no.accept && no.drops_vip_traffic());
    // The address owner always accepts (RFC 5798 6.4.3).
    assert!(!i("    accept #false\n    priority 255\n").drops_vip_traffic());
    assert!(i("    accept\n").accept);
    problems_with_help(&[(
        web("    accept \"no\"\n"),
        5,
        12,
        "`accept` must be #true or #false",
        "",
    )]);
    let p = problem_at(&web("    no_accept\n"), 5, 5, "unknown setting `no_accept`");
    assert!(help_of(&p).contains("`accept`"), "{p:?}");
}
