//! Configs that are accepted, and what they read as.

use super::*;

#[test]
fn master_down_adverts_defaults_to_the_rfc_and_is_bounded() {
    assert_eq!(ok(&web("")).instances[0].master_down_adverts, 3);
    // Global sets the default, written before or after the instances.
    let late_global = format!("{}global {{\n    master-down-adverts 7\n}}\n", web(""));
    assert_eq!(ok(&late_global).instances[0].master_down_adverts, 7);
    assert_eq!(ok(&late_global).global.master_down_adverts, 7);
    let own = format!(
        "global {{\n    master-down-adverts 7\n}}\n{}",
        web("    master-down-adverts 20\n")
    );
    assert_eq!(ok(&own).instances[0].master_down_adverts, 20);
    problem_at(
        &web("    master-down-adverts 2\n"),
        5,
        25,
        "must be from 3 to 20, not 2",
    );
    problem_at(
        "global {\n    master-down-adverts 21\n}\n",
        2,
        25,
        "must be from 3 to 20, not 21",
    );
    problem_at(
        &web("    master-down-adverts \"6\"\n"),
        5,
        25,
        "master-down-adverts",
    );
}

const FULL: &str = r#"
global {
    router-id "h1"
    garp-repeat 3
    garp-interval "10ms"
    garp-refresh "60s"
    script-user "nobody"
}
check "port80" {
    script "/etc/upkeep/check_port80.sh"
    interval "2s"
    timeout "1500ms"
    fall 2
    rise 3
    weight -20
    user "www"
}
instance "web" {
    interface "eth0"
    vrid 51
    priority 150
    advert-interval "100ms"
    version 3
    preempt #false
    preempt-delay "5s"
    handover-when-sick #false
    initial-state "master"
    unicast-src "192.0.2.1"
    unicast-peer "192.0.2.2" "192.0.2.3"
    unicast-peer "192.0.2.4"
    vip "192.0.2.100/24"
    vip "192.0.2.101" dev="eth1"
    route "198.51.100.0/24" via="192.0.2.254" dev="eth0" metric=10 table=100
    track "port80" weight=-30
}
instance "db" {
    interface "eth0"
    vrid 52
    version 2
    advert-interval 2
    auth-pass "1234"
    nopreempt
    vip "2001:db8::1" // v6 with v2 is refused; replaced below
}
sync-group "g1" {
    member "web" "db"
}
"#;

fn full() -> String {
    FULL.replace(
        "vip \"2001:db8::1\" // v6 with v2 is refused; replaced below",
        "vip \"192.0.2.200/24\"",
    )
}

#[test]
fn full_example_parses() {
    let cfg = ok(&full());
    let g = &cfg.global;
    assert_eq!(g.router_id.as_deref(), Some("h1"));
    assert_eq!(g.garp_repeat, 3);
    assert_eq!(g.garp_interval, Duration::from_millis(10));
    assert_eq!(g.garp_refresh, Some(Duration::from_secs(60)));
    assert_eq!(g.script_user.as_deref(), Some("nobody"));

    let c = cfg.check("port80").expect("check");
    assert_eq!(
        c.kind,
        CheckKind::Script {
            command: "/etc/upkeep/check_port80.sh".into()
        }
    );
    assert_eq!(c.interval, Duration::from_secs(2));
    assert_eq!(c.timeout, Duration::from_millis(1500));
    assert_eq!((c.fall, c.rise, c.weight), (2, 3, -20));
    assert_eq!(c.user.as_deref(), Some("www"));

    let w = cfg.instance("web").expect("web");
    assert_eq!(
        (w.interface.as_str(), w.vrid, w.priority),
        ("eth0", 51, 150)
    );
    assert_eq!(w.advert_interval, Duration::from_millis(100));
    assert_eq!(w.version, VrrpVersion::V3);
    assert!(!w.preempt);
    assert_eq!(w.preempt_delay, Duration::from_secs(5));
    assert!(!w.handover_when_sick);
    assert_eq!(w.initial_state, InitialState::Master);
    assert_eq!(w.unicast_src, Some("192.0.2.1".parse().unwrap()));
    let peers: Vec<String> = w.unicast_peers.iter().map(|p| p.to_string()).collect();
    assert_eq!(peers, ["192.0.2.2", "192.0.2.3", "192.0.2.4"]);
    assert_eq!(
        w.vips,
        vec![
            Vip {
                addr: "192.0.2.100".parse().unwrap(),
                prefix_len: 24,
                dev: None,
                advertise: true,
                opts: Default::default(),
            },
            Vip {
                addr: "192.0.2.101".parse().unwrap(),
                prefix_len: 32,
                dev: Some("eth1".into()),
                advertise: true,
                opts: Default::default(),
            },
        ]
    );
    assert_eq!(
        w.routes,
        vec![Route {
            dest: "198.51.100.0".parse().unwrap(),
            prefix_len: 24,
            via: Some("192.0.2.254".parse().unwrap()),
            dev: Some("eth0".into()),
            metric: Some(10),
            table: Some(100),
            src: None,
            scope: None,
            kind: Default::default(),
            onlink: false,
            nexthops: Vec::new(),
        }]
    );
    assert_eq!(
        w.tracks,
        vec![Track {
            check: "port80".into(),
            weight: Some(-30)
        }]
    );
    assert!(!w.is_ipv6());

    let d = cfg.instance("db").expect("db");
    assert_eq!(d.version, VrrpVersion::V2);
    assert_eq!(d.advert_interval, Duration::from_secs(2));
    assert_eq!(d.auth_pass.as_deref(), Some("1234"));
    assert!(!d.preempt);
    assert!(d.handover_when_sick, "on by default");
    assert_eq!(d.priority, 100);

    assert_eq!(cfg.sync_groups.len(), 1);
    assert_eq!(cfg.sync_groups[0].members, ["web", "db"]);
    assert_eq!(cfg.group_of("db").map(|g| g.name.as_str()), Some("g1"));
    // Spans point at the nodes, for later diagnostics.
    assert_eq!(line_col(&full(), w.span.offset()), (18, 1));
}

#[test]
fn defaults() {
    let cfg = ok(&format!(
        "check \"c\" {{ script \"true\"; interval \"3s\"; }}\n{}",
        web("")
    ));
    assert_eq!(cfg.global, Global::default());
    let c = &cfg.checks[0];
    assert_eq!(
        (c.interval, c.timeout),
        (Duration::from_secs(3), Duration::from_secs(3))
    );
    assert_eq!(
        (c.fall, c.rise, c.weight, c.user.as_deref()),
        (1, 1, 0, None)
    );
    let i = &cfg.instances[0];
    assert_eq!(i.priority, 100);
    assert_eq!(i.advert_interval, Duration::from_secs(1));
    assert_eq!(i.version, VrrpVersion::V3);
    assert!(i.preempt);
    assert_eq!(i.preempt_delay, Duration::ZERO);
    assert_eq!(i.initial_state, InitialState::Backup);
    assert_eq!((i.auth_pass.as_deref(), i.unicast_src), (None, None));
    assert!(i.unicast_peers.is_empty() && i.routes.is_empty() && i.tracks.is_empty());
}

#[test]
fn durations() {
    let ms = Duration::from_millis;
    for (text, want) in [
        ("1s", ms(1000)),
        ("100ms", ms(100)),
        ("2.5s", ms(2500)),
        ("1m", ms(60_000)),
        ("1h", ms(3_600_000)),
        ("2", ms(2000)),
        ("0.1", ms(100)),
        (".5s", ms(500)),
        ("0.29", ms(290)),
        ("250us", Duration::from_micros(250)),
        (" 3s ", ms(3000)),
    ] {
        assert_eq!(parse_duration(text), Ok(want), "{text}");
    }
    for bad in [
        "",
        "s",
        "-1s",
        "1x",
        "1.2.3s",
        "1e3",
        "99999999999999999999999h",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    // Bare numbers in KDL are seconds too.
    let cfg = ok(&web("    advert-interval 0.5\n    preempt-delay 2\n"));
    assert_eq!(cfg.instances[0].advert_interval, ms(500));
    assert_eq!(cfg.instances[0].preempt_delay, ms(2000));
}

#[test]
fn three_node_examples_parse() {
    for (host, text, priority) in [
        (
            "h1",
            include_str!("../../../../../examples/three-node/h1.kdl"),
            100,
        ),
        (
            "h2",
            include_str!("../../../../../examples/three-node/h2.kdl"),
            90,
        ),
        (
            "h3",
            include_str!("../../../../../examples/three-node/h3.kdl"),
            90,
        ),
    ] {
        let cfg = ok(text);
        assert_eq!(cfg.global.router_id.as_deref(), Some(host));
        let i = &cfg.instances[0];
        assert_eq!(
            (i.vrid, i.priority, i.version),
            (47, priority, VrrpVersion::V2)
        );
        assert_eq!(i.advert_interval, Duration::from_secs(1));
        assert!(!i.preempt);
        assert_eq!(i.auth_pass.as_deref(), Some("1234"));
        assert_eq!(i.vips.len(), 1);
        assert_eq!(i.vips[0].addr.to_string(), "192.0.2.100");
        assert_eq!(
            i.routes[0].via.map(|v| v.to_string()).as_deref(),
            Some("192.0.2.254")
        );
        assert_eq!(i.tracks[0].check, "port80");
        let CheckKind::Script { command } = &cfg.checks[0].kind else {
            panic!("not a script: {:?}", cfg.checks[0].kind)
        };
        assert_eq!(command, "./check_port80.sh");
    }
}

#[test]
fn metrics_endpoint() {
    let cfg = ok(&format!(
        "global {{\n    metrics listen=\"127.0.0.1:9650\"\n}}\n{}",
        web("")
    ));
    assert_eq!(
        cfg.global.metrics_listen,
        Some("127.0.0.1:9650".parse().expect("addr"))
    );
    let cfg = ok(&format!(
        "global {{ metrics listen=\"[::1]:9650\"; }}\n{}",
        web("")
    ));
    assert_eq!(
        cfg.global.metrics_listen,
        Some("[::1]:9650".parse().expect("addr"))
    );
    assert_eq!(ok(&web("")).global.metrics_listen, None);

    let g = |line: &str| format!("global {{\n    {line}\n}}\n{}", web(""));
    problems_with_help(&[
        (
            g("metrics listen=\"127.0.0.1\""),
            2,
            13,
            "`listen=` of `metrics` is not an address and port: `127.0.0.1`",
            "add a port",
        ),
        (
            g("metrics listen=\"::1:9650\""),
            2,
            13,
            "not an address and port",
            "brackets",
        ),
        (
            g("metrics listen=\"localhost:9650\""),
            2,
            13,
            "not an address and port",
            "not resolved",
        ),
    ]);
    problem_at(
        &g("metrics listen=\"0.0.0.0:0\""),
        2,
        13,
        "port other than 0",
    );
    problem_at(&g("metrics listen=9650"), 2, 13, "must be a string");
    let p = problem_at(&g("metrics"), 2, 5, "`metrics` needs `listen=`");
    assert!(help_of(&p).contains("metrics listen=\"127.0.0.1:9650\""));
    problems_at(&[
        (
            g("metrics \"127.0.0.1:9650\""),
            2,
            13,
            "takes its address as `listen=`",
        ),
        (
            g("metrics listen=\"127.0.0.1:9650\" port=1"),
            2,
            37,
            "unknown property `port=`",
        ),
        (
            g("metrics listen=\"127.0.0.1:1\"\n    metrics listen=\"127.0.0.1:2\""),
            3,
            5,
            "`metrics` is set twice",
        ),
    ]);
    let p = problem_at(
        &format!("metrics listen=\"127.0.0.1:9650\"\n{}", web("")),
        1,
        1,
        "`metrics` is a setting of `global`",
    );
    assert!(help_of(&p).contains("global { metrics listen="), "{p:?}");
}

#[test]
fn docs_examples_parse() {
    let docs = include_str!("../../../../../docs/config.md");
    let mut examples = Vec::new();
    let mut rest = docs;
    while let Some(start) = rest.find("```kdl\n") {
        let body = &rest[start + "```kdl\n".len()..];
        let len = body.find("```").expect("its end");
        examples.push(ok(&body[..len]));
        rest = &body[len..];
    }
    assert!(examples.len() >= 3, "{} examples", examples.len());
    let full = examples
        .iter()
        .find(|c| !c.sync_groups.is_empty())
        .expect("the full example");
    assert_eq!(full.instances.len(), 2);
    assert_eq!(
        full.global.metrics_listen,
        Some("127.0.0.1:9650".parse().expect("addr"))
    );
    assert_eq!(full.sync_groups[0].members, ["web", "db"]);
    let kinds: Vec<&str> = full.checks.iter().map(|c| c.kind.keyword()).collect();
    assert_eq!(kinds, ["script", "interface", "process", "file", "plugin"]);
    assert_eq!(
        full.instance("web").expect("web").notify.hooks,
        ["to-slack"]
    );
}

/// The example config the Debian package installs as /etc/upkeep/upkeep.kdl.
#[test]
fn packaged_example_parses() {
    let cfg = ok(include_str!("../../../../../contrib/upkeep.kdl"));
    assert_eq!(cfg.instances.len(), 1);
    assert!(cfg.global.metrics_listen.is_some());
    let CheckKind::Plugin { path, grants, .. } = &cfg.checks[0].kind else {
        panic!("{:?}", cfg.checks[0].kind)
    };
    assert_eq!(
        path,
        Path::new("/usr/lib/upkeep/plugins/port-listener.wasm"),
        "where core/Cargo.toml's [package.metadata.deb] installs it"
    );
    assert!(grants.listening_sockets && grants.log);
}

/// The quick reader is only a shortcut: where it reads a config, the result is the one the
/// kdl crate's parse gives (every setting and every kept location).
#[test]
fn the_quick_reader_and_the_kdl_crate_give_the_same_config() {
    let mut texts = vec![
        full(),
        include_str!("../../../../../examples/three-node/h1.kdl").to_owned(),
        include_str!("../../../../../contrib/upkeep.kdl").to_owned(),
    ];
    // The shape of a large config (start-up time is about these): 255 instances on four
    // interfaces, with comments, properties, routes and tracked checks.
    let mut big = String::from(
            "global { router-id \"h1\"; script-user \"nobody\" }\n\
             check \"port80\" {\n    script \"/bin/true\"\n    interval \"1s\"\n    weight -50\n}\n",
        );
    for n in 1..=255 {
        big.push_str(&format!(
            "// instance {n}\ninstance \"VI_{n}\" {{\n    interface \"eth{}\"\n    vrid {n}\n    \
                 priority 190\n    advert-interval \"1s\" /* v2 */\n    version 2\n    \
                 preempt #true\n    vip \"198.51.100.{}/24\"\n    \
                 route \"203.0.113.0/26\" via=\"198.51.100.254\"\n    track \"port80\"\n}}\n",
            n % 4,
            n % 250 + 1,
        ));
    }
    texts.push(big);
    for text in &texts {
        assert!(
            crate::fast_kdl::parse(text).is_some(),
            "left to the kdl crate:\n{text}"
        );
        let quick = parse_str(text, "t.kdl").expect("valid");
        let reference = parse_str_with(text, "t.kdl", KdlDocument::parse).expect("valid");
        assert_eq!(quick, reference, "{text}");
    }
}
