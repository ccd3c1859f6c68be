//! What an instance puts on the host: VIP options, routes, rules.

use super::*;
use crate::model::VipOptions;

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
