use std::time::Duration;

use super::*;
use crate::emit::{kdl_duration, q};
use crate::lexer::{lex_line, wildcard_match, Tok};
use upkeep_config::model::{CheckKind, Config, InitialState, VrrpVersion};
use upkeep_config::parse::parse_str;

/// Imports, then checks that upkeep loads the result.
fn convert(src: &str) -> (Imported, Config) {
    let imported = import_str(src, "keepalived.conf").unwrap_or_else(|e| panic!("{e}"));
    let cfg = parse_str(&imported.kdl, "imported.kdl")
        .unwrap_or_else(|e| panic!("{:?}\n{}", miette::Report::new(e), imported.kdl));
    (imported, cfg)
}

/// [`warned`] for each (line, needle).
fn warned_all(imported: &Imported, expected: &[(usize, &str)]) {
    for &(line, needle) in expected {
        warned(imported, line, needle);
    }
}

fn warned(imported: &Imported, line: usize, needle: &str) {
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.line == line && w.message.contains(needle)),
        "no warning `{needle}` at line {line} in {:#?}",
        imported.warnings
    );
}

#[test]
fn scripts_keep_running_as_root_as_keepalived_ran_them() {
    let instance = |extra: &str| {
        format!(
                "vrrp_instance web {{\n  interface eth0\n  virtual_router_id 51\n  virtual_ipaddress {{\n    192.0.2.100/24\n  }}\n{extra}}}\n"
            )
    };
    // A notify command and no script_user: root, said at the command's line.
    let (imported, cfg) = convert(&instance("  notify_master /usr/local/bin/to_master.sh\n"));
    assert_eq!(cfg.global.script_user.as_deref(), Some("root"));
    warned(
        &imported,
        7,
        "keepalived runs scripts and notify commands as root",
    );
    assert!(
        imported.kdl.contains("script-user \"root\""),
        "{}",
        imported.kdl
    );
    // No script at all: no user, no warning.
    let (imported, cfg) = convert(&instance(""));
    assert_eq!(cfg.global.script_user, None);
    assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
    // script_user set: kept as it is.
    let (imported, cfg) = convert(&format!(
        "global_defs {{\n  script_user nobody\n}}\n{}",
        instance("  notify_master /usr/local/bin/to_master.sh\n")
    ));
    assert_eq!(cfg.global.script_user.as_deref(), Some("nobody"));
    assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
    // Every script has its own user and there is no notify command: nothing runs as root.
    let (imported, cfg) = convert(&format!(
        "vrrp_script chk {{\n  script /bin/true\n  user nobody\n}}\n{}",
        instance("  track_script {\n    chk\n  }\n")
    ));
    assert_eq!(cfg.global.script_user, None);
    assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
}

const SEED: &str = r#"vrrp_script check_running {
    script "/etc/keepalived/check_http.sh"
    interval 2
    weight -20
}
vrrp_instance http {
    state BACKUP
    priority 100
    interface eth1
    virtual_router_id 47
    advert_int 3
    authentication {
        auth_type PASS
        auth_pass 1234
    }
    nopreempt
    virtual_ipaddress {
        172.16.101.10/24
    }
    virtual_routes {}
    track_script {
        check_running
    }
}
"#;

/// The lab's generated config: `count` instances VI_1.., vrid 51 when alone, else 1...
fn lab(count: usize, advert: &str, version: u8) -> String {
    let mut out = String::from(
            "global_defs {\n  router_id h1\n  enable_script_security\n  script_user root\n}\n\
             vrrp_script chk_port80 {\n  script \"/work/shared/lab/check_port80.sh\"\n  interval 1\n  timeout 1\n  fall 1\n  rise 1\n  weight -100\n}\n",
        );
    for k in 1..=count {
        let vrid = if count == 1 { 51 } else { k };
        let vip = if k == 1 {
            "192.0.2.100/24".to_owned()
        } else {
            format!("198.51.100.{k}/24")
        };
        out.push_str(&format!(
                "vrrp_instance VI_{k} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {vrid}\n  priority 190\n  advert_int {advert}\n  version {version}\n  virtual_ipaddress {{\n    {vip}\n  }}\n  track_script {{\n    chk_port80\n  }}\n}}\n"
            ));
    }
    out
}

#[test]
fn seed_config_round_trips() {
    let (imported, cfg) = convert(SEED);
    // keepalived ran the seed's script as root: so does the import, with a warning at it.
    // And at `nopreempt`: upkeep's sick master hands over where keepalived's kept the VIP.
    assert_eq!(imported.warnings.len(), 2, "{:#?}", imported.warnings);
    warned(
        &imported,
        1,
        "keepalived runs scripts and notify commands as root",
    );
    warned(
        &imported,
        16,
        "is nopreempt and tracks check_running with a negative weight: a master whose check fails hands the VIPs over",
    );
    assert_eq!(cfg.global.script_user.as_deref(), Some("root"));
    let c = cfg.check("check_running").expect("check");
    assert_eq!(
        c.kind,
        CheckKind::Script {
            command: "/etc/keepalived/check_http.sh".into()
        }
    );
    assert_eq!((c.interval, c.weight), (Duration::from_secs(2), -20));
    let i = cfg.instance("http").expect("instance");
    assert_eq!(
        (i.interface.as_str(), i.vrid, i.priority),
        ("eth1", 47, 100)
    );
    assert_eq!(i.advert_interval, Duration::from_secs(3));
    assert_eq!(
        i.version,
        VrrpVersion::V2,
        "keepalived's default version is 2"
    );
    assert!(!i.preempt);
    assert!(i.handover_when_sick);
    assert_eq!(i.auth_pass.as_deref(), Some("1234"));
    assert_eq!(i.initial_state, InitialState::Backup);
    let vips: Vec<String> = i
        .vips
        .iter()
        .map(|v| format!("{}/{}", v.addr, v.prefix_len))
        .collect();
    assert_eq!(vips, ["172.16.101.10/24"]);
    assert!(i.routes.is_empty() && i.unicast_peers.is_empty());
    assert_eq!(i.tracks.len(), 1);
    assert_eq!(
        (i.tracks[0].check.as_str(), i.tracks[0].weight),
        ("check_running", None)
    );
    assert!(imported.kdl.contains("preempt #false"), "{}", imported.kdl);
}

#[test]
fn lab_config_round_trips() {
    let (imported, cfg) = convert(&lab(1, "1", 2));
    assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
    assert!(
        imported.kdl.contains("script-security #true"),
        "{}",
        imported.kdl
    );
    assert!(cfg.global.script_security);
    assert_eq!(cfg.global.router_id.as_deref(), Some("h1"));
    assert_eq!(cfg.global.script_user.as_deref(), Some("root"));
    let c = cfg.check("chk_port80").expect("check");
    assert_eq!(
        (c.interval, c.timeout),
        (Duration::from_secs(1), Duration::from_secs(1))
    );
    assert_eq!((c.fall, c.rise, c.weight), (1, 1, -100));
    let i = cfg.instance("VI_1").expect("instance");
    assert_eq!((i.vrid, i.priority, i.version), (51, 190, VrrpVersion::V2));
    assert_eq!(i.advert_interval, Duration::from_secs(1));
    assert!(i.preempt);
    assert_eq!(i.vips[0].addr.to_string(), "192.0.2.100");
    assert_eq!(i.tracks[0].check, "chk_port80");
}

#[test]
fn lab_config_with_fast_v3_adverts() {
    let (imported, cfg) = convert(&lab(1, "0.1", 3));
    assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
    let i = &cfg.instances[0];
    assert_eq!(i.version, VrrpVersion::V3);
    assert_eq!(i.advert_interval, Duration::from_millis(100));
    assert!(
        imported.kdl.contains("advert-interval \"100ms\""),
        "{}",
        imported.kdl
    );
}

#[test]
fn lab_config_with_100_instances() {
    for (advert, version) in [("1", 2), ("0.1", 3)] {
        let (imported, cfg) = convert(&lab(100, advert, version));
        assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
        assert_eq!(cfg.instances.len(), 100);
        for (k, i) in cfg.instances.iter().enumerate() {
            let k = k + 1;
            assert_eq!(i.name, format!("VI_{k}"));
            assert_eq!(usize::from(i.vrid), k);
            let want = if k == 1 {
                "192.0.2.100".to_owned()
            } else {
                format!("198.51.100.{k}")
            };
            assert_eq!(i.vips[0].addr.to_string(), want);
            assert_eq!(i.vips[0].prefix_len, 24);
            assert_eq!(i.tracks[0].check, "chk_port80");
        }
    }
}

#[test]
fn tokenizer_handles_braces_comments_and_quotes() {
    let src = r#"! a keepalived comment
# another
global_defs{router_id "my router" # trailing comment
}
vrrp_script chk{
    script "/usr/bin/test -f \"/run/ok\""   ! quoted, with args
}
vrrp_instance VI_1
{
  interface eth0   ! comment
  virtual_router_id 5
  virtual_ipaddress { 192.0.2.1/24 }
  virtual_ipaddress {
    192.0.2.2/24 dev eth1
  }
  track_script {chk weight -5}
}"#;
    let (imported, cfg) = convert(src);
    assert_eq!(imported.warnings.len(), 1, "{:#?}", imported.warnings);
    warned(&imported, 5, "`script-user \"root\"`");
    assert_eq!(cfg.global.router_id.as_deref(), Some("my router"));
    let CheckKind::Script { command } = &cfg.checks[0].kind else {
        panic!("not a script: {:?}", cfg.checks[0].kind)
    };
    assert_eq!(command, "/usr/bin/test -f \"/run/ok\"");
    let i = &cfg.instances[0];
    assert_eq!((i.interface.as_str(), i.vrid), ("eth0", 5));
    assert_eq!(i.vips.len(), 2);
    assert_eq!(i.vips[1].dev.as_deref(), Some("eth1"));
    assert_eq!(i.tracks[0].weight, Some(-5));
    assert_eq!(
        lex_line("a{b}\"c d\" e#f #g").expect("lexes"),
        [
            Tok::Word("a".into()),
            Tok::Open,
            Tok::Word("b".into()),
            Tok::Close,
            Tok::Word("c d".into()),
            Tok::Word("e#f".into()),
        ]
    );
}

#[test]
fn script_with_arguments_is_kept_verbatim() {
    let src = "vrrp_script a {\n  script /usr/bin/pgrep -x haproxy\n}\nvrrp_script b {\n  script \"/bin/sh -c 'exit 0'\"\n}\n";
    let (_, cfg) = convert(src);
    let commands: Vec<&str> = cfg
        .checks
        .iter()
        .map(|c| match &c.kind {
            CheckKind::Script { command } => command.as_str(),
            other => panic!("not a script: {other:?}"),
        })
        .collect();
    assert_eq!(
        commands,
        ["/usr/bin/pgrep -x haproxy", "/bin/sh -c 'exit 0'"]
    );
}

#[test]
fn every_supported_keyword_maps() {
    let src = r#"global_defs {
    router_id lb1
    vrrp_version 3
    vrrp_garp_master_repeat 3
    vrrp_garp_interval 0.01
    vrrp_garp_master_refresh 60
}
vrrp_script chk {
    script "/bin/true"
    interval 2
    timeout 1.5
    fall 3
    rise 2
    weight 10
    user nobody
}
vrrp_instance web {
    state MASTER
    interface eth0
    virtual_router_id 10
    priority 200
    advert_int 0.5
    preempt_delay 5
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
        192.0.2.3
    }
    virtual_ipaddress {
        192.0.2.100/24
        192.0.2.101
    }
    virtual_routes {
        198.51.100.0/24 via 192.0.2.254 dev eth0 metric 10 table 100
        to 203.0.113.0/24 gw 192.0.2.253
        default via 192.0.2.254
    }
    track_script {
        chk weight -30
    }
}
vrrp_instance db {
    interface eth0
    virtual_router_id 11
    version 2
    mcast_src_ip 192.0.2.1
    virtual_ipaddress {
        192.0.2.200/24
    }
}
vrrp_sync_group g1 {
    group {
        web
        db
    }
}
"#;
    let (imported, cfg) = convert(src);
    assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
    let g = &cfg.global;
    assert_eq!(g.router_id.as_deref(), Some("lb1"));
    assert_eq!(g.garp_repeat, 3);
    assert_eq!(g.garp_interval, Duration::from_millis(10));
    assert_eq!(g.garp_refresh, Some(Duration::from_secs(60)));
    let c = &cfg.checks[0];
    assert_eq!(
        (c.interval, c.timeout),
        (Duration::from_secs(2), Duration::from_millis(1500))
    );
    assert_eq!(
        (c.fall, c.rise, c.weight, c.user.as_deref()),
        (3, 2, 10, Some("nobody"))
    );
    let w = cfg.instance("web").expect("web");
    assert_eq!(w.version, VrrpVersion::V3, "from global vrrp_version");
    assert_eq!(w.initial_state, InitialState::Master);
    assert_eq!((w.vrid, w.priority), (10, 200));
    assert_eq!(w.advert_interval, Duration::from_millis(500));
    assert_eq!(w.preempt_delay, Duration::from_secs(5));
    assert!(w.preempt);
    assert_eq!(
        w.unicast_src.map(|a| a.to_string()).as_deref(),
        Some("192.0.2.1")
    );
    assert_eq!(w.unicast_peers.len(), 2);
    assert_eq!(w.vips[1].prefix_len, 32);
    let routes: Vec<String> = w
        .routes
        .iter()
        .map(|r| {
            format!(
                "{}/{} {:?} {:?} {:?} {:?}",
                r.dest,
                r.prefix_len,
                r.via.map(|v| v.to_string()),
                r.dev,
                r.metric,
                r.table
            )
        })
        .collect();
    assert_eq!(
        routes,
        [
            "198.51.100.0/24 Some(\"192.0.2.254\") Some(\"eth0\") Some(10) Some(100)",
            "203.0.113.0/24 Some(\"192.0.2.253\") None None None",
            "0.0.0.0/0 Some(\"192.0.2.254\") None None None",
        ]
    );
    assert_eq!(w.tracks[0].weight, Some(-30));
    let d = cfg.instance("db").expect("db");
    assert_eq!(d.version, VrrpVersion::V2);
    assert_eq!(
        d.unicast_src.map(|a| a.to_string()).as_deref(),
        Some("192.0.2.1")
    );
    assert_eq!(cfg.sync_groups[0].members, ["web", "db"]);
}

#[test]
fn unsupported_things_become_warnings_with_lines() {
    let src = r#"global_defs {
    notification_email {
        root@localhost
    }
    smtp_server 127.0.0.1
    script_user root wheel
}
vrrp_instance v {
    interface eth0
    virtual_router_id 1
    notify_master_rx_lower_pri /bin/true
    virtual_ipaddress {
        192.0.2.1/24 label eth0:1 scope global
    }
    virtual_ipaddress_excluded {
        2001:db8::1
    }
    virtual_routes {
        blackhole 10.0.0.0/8
        10.1.0.0/16 via 192.0.2.254 src 192.0.2.1
    }
    unicast_peer {
        192.0.2.9 min_ttl 1 weight 2
    }
    track_bfd {
        b1
    }
}
virtual_server 192.0.2.1 80 {
    real_server 10.0.0.1 80 {
    }
}
{
    stray
}
virtual_server_group web {
}
virtual_server 192.0.2.1 443 {
}
"#;
    let (imported, cfg) = convert(src);
    warned_all(
            &imported,
            &[
                (2, "`notification_email { ... }` in global_defs: upkeep sends no mail"),
                (5, "`smtp_server 127.0.0.1` in global_defs"),
                (6, "group `wheel`"),
                (25, "upkeep has no BFD"),
                (29, "LVS virtual_server is out of scope: upkeep does VRRP, not IPVS load balancing; 3 blocks ignored; also at line 36, line 38"),
                (33, "a `{ ... }` block without a keyword in the file"),
            ],
        );
    assert_eq!(imported.warnings.len(), 7, "{:#?}", imported.warnings);
    assert_eq!(
            imported.warnings[0].to_string(),
            "keepalived.conf:2: `notification_email { ... }` in global_defs: upkeep sends no mail; ignored"
        );
    let i = &cfg.instances[0];
    assert_eq!(i.routes.len(), 2);
    assert_eq!(i.routes[0].kind, upkeep_config::RouteKind::Blackhole);
    assert_eq!(i.routes[1].src, Some("192.0.2.1".parse().unwrap()));
    assert_eq!(i.unicast_peers.len(), 1);
    assert_eq!(
        i.vips.len(),
        2,
        "the IPv6 excluded VIP is held, not advertised"
    );
    assert_eq!(i.advertised_addrs(), vec![i.vips[0].addr]);
}

#[test]
fn notify_commands_import() {
    let src = r#"global_defs {
    script_user keepalived_script
    enable_script_security
}
vrrp_instance web {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        192.0.2.1/24
    }
    notify_master "/etc/keepalived/master.sh web"
    notify_backup /etc/keepalived/backup.sh
    notify_fault /etc/keepalived/fault.sh nobody nogroup
    notify_stop /etc/keepalived/stop.sh
    notify /etc/keepalived/notify.sh
    notify_deleted
    notify_priority_changes true
    smtp_alert
}
vrrp_sync_group g {
    group {
        web
    }
    notify_master /etc/keepalived/group_master.sh
    notify "/etc/keepalived/group_notify.sh x"
}
"#;
    let (imported, cfg) = convert(src);
    warned_all(
        &imported,
        &[
            (13, "notify_fault: user `nobody nogroup` is not supported"),
            (
                16,
                "upkeep runs `notify-stop` for an instance a reload removes",
            ),
            (
                18,
                "`smtp_alert` in vrrp_instance web: upkeep sends no mail",
            ),
        ],
    );
    assert_eq!(imported.warnings.len(), 3, "{:#?}", imported.warnings);
    assert!(cfg.instances[0].notify_priority_changes);
    assert!(cfg.global.script_security);
    assert_eq!(cfg.global.script_user.as_deref(), Some("keepalived_script"));
    let n = &cfg.instances[0].notify;
    assert_eq!(n.master.as_deref(), Some("/etc/keepalived/master.sh web"));
    assert_eq!(n.backup.as_deref(), Some("/etc/keepalived/backup.sh"));
    assert_eq!(n.fault.as_deref(), Some("/etc/keepalived/fault.sh"));
    assert_eq!(n.stop.as_deref(), Some("/etc/keepalived/stop.sh"));
    assert_eq!(n.any.as_deref(), Some("/etc/keepalived/notify.sh"));
    let g = &cfg.sync_groups[0].notify;
    assert_eq!(g.master.as_deref(), Some("/etc/keepalived/group_master.sh"));
    assert_eq!(g.any.as_deref(), Some("/etc/keepalived/group_notify.sh x"));
    assert!(g.backup.is_none());
    assert!(
        !imported.kdl.contains("no enable_script_security"),
        "{}",
        imported.kdl
    );

    // Without enable_script_security, the difference is spelled out in the output.
    let insecure = src.replace("    enable_script_security\n", "");
    let (imported, cfg) = convert(&insecure);
    assert!(cfg.global.script_security, "upkeep's default stays on");
    assert!(
        imported
            .kdl
            .contains("// keepalived had no enable_script_security"),
        "{}",
        imported.kdl
    );
    assert!(
        imported.kdl.contains("`script-security #false`"),
        "{}",
        imported.kdl
    );
}

#[test]
fn trackers_import_as_checks() {
    let src = r#"vrrp_script chk {
    script /bin/true
    init_fail
}
vrrp_script if-eth1 {
    script /bin/true
}
track_file weightfile {
    file /run/keepalived/weight
    weight 5 reverse
    init_file 0 overwrite
}
vrrp_track_file chk {
    file "/run/keepalived/chk"
}
vrrp_track_process nginx {
    process nginx
    quorum 2
    weight -10
    delay 0.5
}
vrrp_track_process app {
    process /usr/bin/java -jar app.jar
    full_command
    weight 10 reverse
}
vrrp_instance web {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        192.0.2.1/24
    }
    track_script {
        chk weight -20
    }
    track_interface {
        eth1 weight -30
        eth2
        eth3 weight 5 reverse
    }
    track_file {
        weightfile
        chk weight 2 reverse
        missing
    }
    track_process {
        nginx weight -50
        app
    }
}
vrrp_instance db {
    interface eth0
    virtual_router_id 2
    virtual_ipaddress {
        192.0.2.2/24
    }
    track_interface {
        eth1
    }
}
vrrp_sync_group g {
    group {
        web
        db
    }
    track_interface {
        eth9 weight -5
        eth1 weight -7
    }
    track_process {
        nginx
    }
}
"#;
    let (imported, cfg) = convert(src);
    warned_all(
        &imported,
        &[
            (
                11,
                "`init_file 0 overwrite` in track_file weightfile: upkeep does not create the file",
            ),
            (13, "track_file `chk` is imported as check `file-chk`"),
            (20, "`delay 0.5` in vrrp_track_process nginx: not supported"),
            (
                25,
                "weight option `reverse` is not supported; imported as plain `weight 10`",
            ),
            (39, "track_interface eth3: `reverse` is not supported"),
            (
                44,
                "track_file `missing`: there is no track_file of that name; ignored",
            ),
            (1, "as root when `script_user` is not set"),
        ],
    );
    assert_eq!(imported.warnings.len(), 7, "{:#?}", imported.warnings);

    let chk = cfg.check("chk").expect("chk");
    assert!(chk.init_fail);
    let wf = cfg.check("weightfile").expect("weightfile");
    assert_eq!(
        wf.kind,
        CheckKind::File {
            path: "/run/keepalived/weight".into()
        }
    );
    assert_eq!(wf.weight, -5, "`reverse` negates a file's weight");
    let fc = cfg.check("file-chk").expect("file-chk");
    assert_eq!(fc.weight, 1, "a track_file's weight defaults to 1");
    assert_eq!(
        cfg.check("nginx").expect("nginx").kind,
        CheckKind::Process {
            name: "nginx".into(),
            full: false,
            min_count: 2
        }
    );
    assert_eq!(cfg.check("nginx").expect("nginx").weight, -10);
    assert_eq!(
        cfg.check("app").expect("app").kind,
        CheckKind::Process {
            name: "/usr/bin/java -jar app.jar".into(),
            full: true,
            min_count: 1
        }
    );
    // `if-eth1` is a vrrp_script's name, so the interface check is `if-eth1-2`.
    assert_eq!(
        cfg.check("if-eth1-2").expect("if-eth1-2").kind,
        CheckKind::Interface {
            name: "eth1".into()
        }
    );
    assert!(cfg.check("if-eth2").is_some() && cfg.check("if-eth9").is_some());

    let tracks = |name: &str| -> Vec<(String, Option<i32>)> {
        cfg.instance(name)
            .expect("instance")
            .tracks
            .iter()
            .map(|t| (t.check.clone(), t.weight))
            .collect()
    };
    let s = |c: &str, w: Option<i32>| (c.to_owned(), w);
    assert_eq!(
        tracks("web"),
        [
            s("chk", Some(-20)),
            s("if-eth1-2", Some(-30)),
            s("if-eth2", None),
            s("if-eth3", Some(5)),
            s("weightfile", None),
            s("file-chk", Some(-2)),
            s("nginx", Some(-50)),
            s("app", None),
            // The group's trackers, except what the instance tracks already.
            s("if-eth9", Some(-5)),
        ]
    );
    assert_eq!(
        tracks("db"),
        [
            s("if-eth1-2", None),
            s("if-eth9", Some(-5)),
            s("nginx", None)
        ]
    );
}

/// Every keyword the importer knows (each string a `match` arm compares against) is
/// in docs/migrating.md, written as code.
#[test]
fn every_recognised_keyword_is_in_the_migration_guide() {
    let guide = include_str!("../../../docs/migrating.md");
    // Every file of the translator but this one: the keywords are matched there.
    let code = [
        include_str!("lib.rs"),
        include_str!("lexer.rs"),
        include_str!("stmt.rs"),
        include_str!("draft.rs"),
        include_str!("translate.rs"),
        include_str!("emit.rs"),
    ]
    .concat();
    let code = code.as_str();
    let mut missing = Vec::new();
    let mut found = 0;
    for keyword in arm_strings(code) {
        found += 1;
        if !guide.contains(&format!("`{keyword}")) {
            missing.push(keyword);
        }
    }
    assert!(
        found > 80,
        "only {found} keywords found: is the scan broken?"
    );
    assert!(missing.is_empty(), "not in docs/migrating.md: {missing:?}");
}

/// The lower-case string literals that `match` arms in `code` compare against.
fn arm_strings(code: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (start, end) in string_literals(code) {
        let word = &code[start + 1..end];
        let keyword = word.starts_with(|c: char| c.is_ascii_lowercase())
            && word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        let after = code[end + 1..].trim_start();
        let before = code[..start].trim_end();
        let in_arm = after.starts_with("=>")
            || (after.starts_with('|') && !after.starts_with("||"))
            || after.starts_with("if ")
            || (before.ends_with('|') && !before.ends_with("||"));
        if keyword && in_arm && !out.iter().any(|k| k == word) {
            out.push(word.to_owned());
        }
    }
    out
}

/// Byte offsets of the opening and closing quote of each plain string literal in Rust code
/// (comments, char literals and escapes skipped; raw strings are not expected).
fn string_literals(code: &str) -> Vec<(usize, usize)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'\'' if b.get(i + 1) == Some(&b'\\') => {
                i += 2;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            }
            b'\'' if b.get(i + 2) == Some(&b'\'') => i += 3,
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                out.push((start, i.min(b.len() - 1)));
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

#[test]
fn broken_structure_is_an_error_with_its_line() {
    let unclosed = "vrrp_instance a {\n  interface eth0\n  virtual_ipaddress {\n    192.0.2.1\n}\n";
    let err = import_str(unclosed, "k.conf").unwrap_err();
    assert_eq!(err.to_string(), "k.conf:1: this `{` is never closed");
    let extra = "vrrp_instance a {\n}\n}\n";
    let err = import_str(extra, "k.conf").unwrap_err();
    assert_eq!(err.to_string(), "k.conf:3: `}` without a matching `{`");
    let quote = "global_defs {\n  router_id \"h1\n}\n";
    let err = import_str(quote, "k.conf").unwrap_err();
    assert_eq!(err.to_string(), "k.conf:2: unterminated quoted string");
    let err = import_keepalived(Path::new("/nonexistent/keepalived.conf")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/keepalived.conf: cannot read"),
        "{err}"
    );
}

#[test]
fn includes_are_followed_with_globs() {
    let dir = std::env::temp_dir().join(format!("upkeep-import-{}", std::process::id()));
    let confd = dir.join("conf.d");
    std::fs::create_dir_all(&confd).expect("temp dir");
    std::fs::write(
            dir.join("keepalived.conf"),
            "global_defs {\n  router_id h9\n}\ninclude conf.d/*.conf\ninclude none/*.conf\ninclude scripts.inc\n",
        )
        .expect("write");
    std::fs::write(
            confd.join("a.conf"),
            "vrrp_instance a {\n  interface eth0\n  virtual_router_id 1\n  bogus_keyword\n  virtual_ipaddress {\n    192.0.2.1/24\n  }\n  track_script {\n    chk\n  }\n}\n",
        )
        .expect("write");
    std::fs::write(
            confd.join("b.conf"),
            "vrrp_instance b {\n  interface eth0\n  virtual_router_id 2\n  virtual_ipaddress {\n    include ../vips.inc\n  }\n}\n",
        )
        .expect("write");
    std::fs::write(confd.join("ignored.txt"), "garbage {").expect("write");
    std::fs::write(dir.join("vips.inc"), "192.0.2.2/24\n").expect("write");
    std::fs::write(
        dir.join("scripts.inc"),
        "vrrp_script chk {\n  script /bin/true\n}\n",
    )
    .expect("write");

    let imported = import_keepalived(&dir.join("keepalived.conf")).expect("imports");
    let cfg = parse_str(&imported.kdl, "x.kdl").expect("parses");
    assert_eq!(cfg.global.router_id.as_deref(), Some("h9"));
    let names: Vec<&str> = cfg.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(cfg.instances[1].vips[0].addr.to_string(), "192.0.2.2");
    assert_eq!(cfg.instances[0].tracks[0].check, "chk");
    assert_eq!(imported.warnings.len(), 3, "{:#?}", imported.warnings);
    // The included script runs as root, as keepalived ran it (line 1 of scripts.inc).
    assert!(
        imported.warnings[2].file.ends_with("scripts.inc")
            && imported.warnings[2].message.contains("as root"),
        "{:#?}",
        imported.warnings
    );
    assert_eq!(cfg.global.script_user.as_deref(), Some("root"));
    let w = &imported.warnings;
    assert!(
        w[0].file.ends_with("keepalived.conf") && w[0].line == 5,
        "{w:#?}"
    );
    assert!(w[0].message.contains("matches no file"));
    assert!(
        w[1].file.ends_with("conf.d/a.conf") && w[1].line == 4,
        "{w:#?}"
    );

    std::fs::write(dir.join("keepalived.conf"), "include missing.conf\n").expect("write");
    let err = import_keepalived(&dir.join("keepalived.conf")).unwrap_err();
    assert!(
        err.to_string()
            .contains("keepalived.conf:1: cannot read included file"),
        "{err}"
    );
    std::fs::write(dir.join("keepalived.conf"), "include keepalived.conf\n").expect("write");
    let err = import_keepalived(&dir.join("keepalived.conf")).unwrap_err();
    assert!(
        err.to_string().contains("includes nested more than"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn version_specific_fixes_are_warned() {
    let src = r#"vrrp_instance a {
    interface eth0
    virtual_router_id 1
    version 3
    authentication {
        auth_type PASS
        auth_pass 1234
    }
    virtual_ipaddress {
        192.0.2.1/24
    }
}
vrrp_instance b {
    interface eth0
    virtual_router_id 2
    advert_int 1.4
    authentication {
        auth_type PASS
        auth_pass 0123456789
    }
    virtual_ipaddress {
        192.0.2.2/24
    }
}
vrrp_instance c {
    interface eth0
    virtual_router_id 3
    advert_int 0.015
    authentication {
        auth_type AH
        auth_pass x
    }
    virtual_ipaddress {
        2001:db8::1/64
    }
}
"#;
    let (imported, cfg) = convert(src);
    warned(&imported, 7, "not part of VRRP version 3");
    assert_eq!(cfg.instances[0].auth_pass, None);
    warned(&imported, 16, "imported as 1s");
    assert_eq!(cfg.instances[1].advert_interval, Duration::from_secs(1));
    warned(&imported, 19, "imported as \"01234567\"");
    assert_eq!(cfg.instances[1].auth_pass.as_deref(), Some("01234567"));
    warned(&imported, 25, "IPv6 VIPs need VRRP version 3");
    assert_eq!(cfg.instances[2].version, VrrpVersion::V3);
    warned(&imported, 28, "imported as 20ms");
    warned(&imported, 30, "auth_type AH is not supported");
    assert_eq!(cfg.instances[2].auth_pass, None);
}

#[test]
fn dangling_references_are_dropped_like_keepalived_does() {
    let src = "vrrp_instance a {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    192.0.2.1\n  }\n  track_script {\n    nope\n  }\n}\nvrrp_sync_group g {\n  group {\n    a ghost\n  }\n}\nvrrp_sync_group empty {\n  group {\n    ghost2\n  }\n}\n";
    let (imported, cfg) = convert(src);
    warned_all(
        &imported,
        &[
            (8, "no vrrp_script of that name"),
            (13, "no vrrp_instance `ghost`"),
            (16, "has no instances; not imported"),
        ],
    );
    assert!(cfg.instances[0].tracks.is_empty());
    assert_eq!(cfg.sync_groups.len(), 1);
    assert_eq!(cfg.sync_groups[0].members, ["a"]);
}

/// What keepalived drops with a config error and runs without, the import drops too, so
/// that the result loads.
#[test]
fn what_keepalived_drops_is_dropped() {
    let src = "vrrp_script s {\n  interval 1\n}\ntrack_file f {\n  weight 2\n}\nvrrp_track_process p {\n  quorum 2\n}\nvrrp_instance a {\n  interface eth0\n  virtual_router_id 1\n  unicast_peer {\n    192.0.2.2\n    192.0.2.2\n  }\n  virtual_ipaddress {\n    192.0.2.1/24\n    2001:db8::1/64\n    192.0.2.1/25\n  }\n  track_script {\n    s\n  }\n  track_file {\n    f\n  }\n  track_process {\n    p\n  }\n}\nvrrp_instance b {\n  interface eth0\n  virtual_router_id 2\n  virtual_ipaddress {\n    192.0.2.3/24\n  }\n}\nvrrp_sync_group g1 {\n  group {\n    a b b\n  }\n}\nvrrp_sync_group g2 {\n  group {\n    b\n  }\n}\n";
    let (imported, cfg) = convert(src);
    warned_all(
        &imported,
        &[
            (1, "vrrp_script s has no `script`; keepalived ignores it"),
            (4, "track_file f has no `file`"),
            (7, "vrrp_track_process p has no `process`"),
            (15, "unicast_peer 192.0.2.2 is listed twice"),
            (
                19,
                "vip 2001:db8::1/64 is IPv6 but the instance's first VIP is IPv4",
            ),
            (20, "vip 192.0.2.1/25 is listed twice"),
            (23, "track_script `s`: its vrrp_script was left out"),
            (26, "track_file `f`: its track_file was left out"),
            (29, "track_process `p`: its vrrp_track_process was left out"),
            (41, "vrrp_sync_group g1: `b` is listed twice"),
            (46, "`b` is already in sync group g1"),
            (44, "vrrp_sync_group g2 has no instances"),
        ],
    );
    assert_eq!(imported.warnings.len(), 12, "{:#?}", imported.warnings);
    assert!(cfg.checks.is_empty());
    let a = cfg.instance("a").expect("a");
    assert_eq!(a.unicast_peers.len(), 1);
    assert_eq!(a.vips.len(), 1);
    assert!(a.tracks.is_empty());
    assert_eq!(cfg.sync_groups.len(), 1);
    assert_eq!(cfg.sync_groups[0].members, ["a", "b"]);
}

#[test]
fn results_upkeep_refuses_are_warned_at_the_keepalived_line() {
    let src = "vrrp_instance a {\n  interface eth0\n  virtual_router_id 300\n  virtual_ipaddress {\n    192.0.2.1\n  }\n}\nvrrp_instance b {\n  interface eth0\n}\n";
    let imported = import_str(src, "k.conf").expect("imports");
    warned(
        &imported,
        3,
        "upkeep will refuse the result: `vrid` must be from 1 to 255",
    );
    warned(
        &imported,
        8,
        "upkeep will refuse the result: instance `b` has no `vrid`",
    );
    assert!(parse_str(&imported.kdl, "x").is_err());
}

#[test]
fn helpers() {
    assert!(wildcard_match("*.conf", "a.conf"));
    assert!(wildcard_match("a*b*c", "aXXbYYc"));
    assert!(wildcard_match("?.conf", "a.conf"));
    assert!(!wildcard_match("*.conf", "a.conf.bak"));
    assert!(!wildcard_match("?.conf", "ab.conf"));
    assert_eq!(q("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    assert_eq!(kdl_duration(Duration::from_secs(3)), "3s");
    assert_eq!(kdl_duration(Duration::from_millis(100)), "100ms");
    assert_eq!(kdl_duration(Duration::from_micros(1500)), "1500us");
    let w = ImportWarning {
        file: "k.conf".into(),
        line: 7,
        message: "x".into(),
    };
    assert_eq!(w.to_string(), "k.conf:7: x");
}

#[test]
fn virtual_ipaddress_excluded_is_held_but_not_advertised() {
    // keepalived's meaning: moved with the instance, left out of its adverts; either family.
    let mut src = String::from(
        "vrrp_instance big {\n  interface eth0\n  virtual_router_id 7\n  virtual_ipaddress {\n    192.0.2.1/24\n  }\n  virtual_ipaddress_excluded {\n    2001:db8::1/64 dev eth1\n",
    );
    // Enough excluded addresses that, advertised, they would not fit an advert (255 at most).
    for n in 0..300 {
        src.push_str(&format!("    10.9.{}.{}/16\n", n / 250, n % 250 + 1));
    }
    src.push_str("  }\n}\n");
    let (imported, cfg) = convert(&src);
    assert!(
        imported
            .kdl
            .contains("vip \"2001:db8::1/64\" dev=\"eth1\" advertise=#false"),
        "{}",
        imported.kdl
    );
    assert!(
        imported
            .kdl
            .contains("vip \"10.9.0.1/16\" advertise=#false"),
        "{}",
        imported.kdl
    );
    assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
    let i = &cfg.instances[0];
    assert_eq!(i.vips.len(), 302, "every address is held");
    assert_eq!(i.advertised_addrs(), vec![i.vips[0].addr]);
    assert!(!i.is_ipv6());
}

#[test]
fn use_vmac_imports_with_its_name_and_xmit_base() {
    let conf = |extra: &str| {
        format!(
            "vrrp_instance web {{\n  interface eth0\n  virtual_router_id 51\n{extra}  virtual_ipaddress {{\n    192.0.2.100/24\n  }}\n}}\n"
        )
    };
    let (imported, cfg) = convert(&conf("  use_vmac\n"));
    assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
    let v = cfg.instances[0].vmac.clone().expect("vmac");
    assert_eq!((v.name.as_str(), v.xmit_base), ("vrrp.51", false));

    let (imported, cfg) = convert(&conf("  use_vmac vrrp51\n  vmac_xmit_base\n"));
    assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
    let v = cfg.instances[0].vmac.clone().expect("vmac");
    assert_eq!((v.name.as_str(), v.xmit_base), ("vrrp51", true));

    let (imported, cfg) = convert(&conf("  vmac_xmit_base\n"));
    warned(&imported, 4, "without use_vmac");
    assert!(cfg.instances[0].vmac.is_none());
}

#[test]
fn vip_options_are_imported() {
    let src = "vrrp_instance v {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    192.0.2.1/24 dev eth1 label eth1:vip scope link brd 192.0.2.255 preferred_lft 0\n    192.0.2.2/24 broadcast 192.0.2.255 scope 200 no_dad\n  }\n  virtual_ipaddress_excluded {\n    2001:db8::1/64 -nodad preferred_lft 30\n    2001:db8::2/64 nodad\n    2001:db8::3/64 label eth0:x scope host\n  }\n}\n";
    let (imported, cfg) = convert(src);
    for line in [
        "vip \"192.0.2.1/24\" dev=\"eth1\" label=\"eth1:vip\" scope=\"link\" brd=\"192.0.2.255\" preferred-lft=0",
        "vip \"192.0.2.2/24\" scope=200 brd=\"192.0.2.255\"",
        "vip \"2001:db8::1/64\" advertise=#false nodad=#false preferred-lft=30",
        "vip \"2001:db8::2/64\" advertise=#false\n",
    ] {
        assert!(imported.kdl.contains(line), "no `{line}` in\n{}", imported.kdl);
    }
    // keepalived drops a label and a scope from an IPv6 address, and says so; so does the import.
    warned_all(
        &imported,
        &[
            (
                11,
                "vip 2001:db8::3/64: `label` applies to IPv4 addresses only; ignored",
            ),
            (11, "`scope` applies to IPv4 addresses only"),
        ],
    );
    assert_eq!(imported.warnings.len(), 2, "{:#?}", imported.warnings);
    let v = &cfg.instances[0].vips;
    assert_eq!(v[0].opts.label.as_deref(), Some("eth1:vip"));
    assert_eq!(v[0].opts.scope, Some(253));
    assert!(v[2].opts.dad && !v[3].opts.dad);
}

#[test]
fn route_options_are_imported() {
    let src = "vrrp_instance v {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    192.0.2.1/24\n  }\n  virtual_routes {\n    src 192.0.2.1 to 198.51.100.0/24 via 192.0.2.254 dev eth0 metric 5 table 100 scope global\n    blackhole 203.0.113.0/24 table 100\n    unreachable 203.0.113.128/25 metric 7\n    198.51.100.128/25 via 192.0.2.253 or 192.0.2.252 dev eth0\n    203.0.113.64/26 table 6909 nexthop via 192.0.2.251 dev eth0 weight 1 nexthop via 192.0.2.250 weight 3\n    default via 192.0.2.254 table 100\n    198.18.0.0/15 via 203.0.113.1 dev eth0 onlink\n  }\n}\n";
    let (imported, cfg) = convert(src);
    assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
    for line in [
        "route \"198.51.100.0/24\" via=\"192.0.2.254\" dev=\"eth0\" metric=5 table=100 src=\"192.0.2.1\" scope=\"global\"",
        "route \"203.0.113.0/24\" table=100 type=\"blackhole\"",
        "route \"203.0.113.128/25\" metric=7 type=\"unreachable\"",
        "route \"198.51.100.128/25\" dev=\"eth0\" {\n        nexthop via=\"192.0.2.253\"\n        nexthop via=\"192.0.2.252\"\n    }",
        "route \"203.0.113.64/26\" table=6909 {\n        nexthop via=\"192.0.2.251\" dev=\"eth0\" weight=1\n        nexthop via=\"192.0.2.250\" weight=3\n    }",
        "route \"0.0.0.0/0\" via=\"192.0.2.254\" table=100",
        "route \"198.18.0.0/15\" via=\"203.0.113.1\" dev=\"eth0\" onlink=#true",
    ] {
        assert!(imported.kdl.contains(line), "no `{line}` in\n{}", imported.kdl);
    }
    let r = &cfg.instances[0].routes;
    assert_eq!(r.len(), 7);
    assert!(r[6].onlink);
    assert_eq!(r[1].kind, upkeep_config::RouteKind::Blackhole);
    assert_eq!(r[4].nexthops.len(), 2);
    assert_eq!(r[4].nexthops[1].weight, 3);
}

#[test]
fn virtual_rules_are_imported() {
    let src = "vrrp_instance v {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    192.0.2.1/24\n  }\n  virtual_rules {\n    from 192.0.2.1 table 100 priority 100\n    from all to 198.51.100.0/24 iif eth0 fwmark 0x10/0xff preference 101 table main\n    to 203.0.113.0/24 unreachable\n    from 192.0.2.2 no_track\n    from 192.0.2.3 lookup 7 tos 4\n    to 192.0.2./24 table 2\n  }\n}\n";
    let (imported, cfg) = convert(src);
    for line in [
        "rule from=\"192.0.2.1\" priority=100 table=100",
        "rule to=\"198.51.100.0/24\" iif=\"eth0\" fwmark=0x10 fwmask=0xff priority=101 table=254",
        "rule to=\"203.0.113.0/24\" type=\"unreachable\"",
        "rule from=\"192.0.2.3\" table=7",
    ] {
        assert!(
            imported.kdl.contains(line),
            "no `{line}` in\n{}",
            imported.kdl
        );
    }
    warned_all(
        &imported,
        &[
            (11, "rule option `no_track` is not supported"),
            (11, "rule without `table`"),
            (12, "rule option `tos 4` is not supported"),
            // keepalived's own doc/samples/keepalived.conf.vrrp.rules has this typo.
            (
                13,
                "rule `to 192.0.2./24`: not an address; keepalived ignores the rule",
            ),
        ],
    );
    assert_eq!(imported.warnings.len(), 4, "{:#?}", imported.warnings);
    assert_eq!(cfg.instances[0].rules.len(), 4);
}

#[test]
fn accept_modes_are_imported() {
    let inst = |name: &str, vrid: u8, extra: &str| {
        format!("vrrp_instance {name} {{\n  interface eth0\n  virtual_router_id {vrid}\n  virtual_ipaddress {{\n    192.0.2.{vrid}/24\n  }}\n{extra}}}\n")
    };
    // Without strict mode keepalived accepts; `no_accept` does not.
    let src = inst("a", 1, "  no_accept\n") + &inst("b", 2, "  accept\n") + &inst("c", 3, "");
    let (imported, cfg) = convert(&src);
    assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
    let accepts: Vec<bool> = cfg.instances.iter().map(|i| i.accept).collect();
    assert_eq!(accepts, [false, true, true]);
    // vrrp_strict: no_accept unless `accept` (or `strict_mode off`).
    let src = "global_defs {\n  vrrp_strict\n  vrrp_iptables\n}\n".to_owned()
        + &inst("a", 1, "")
        + &inst("b", 2, "  accept\n")
        + &inst("c", 3, "  strict_mode off\n");
    let (imported, cfg) = convert(&src);
    let accepts: Vec<bool> = cfg.instances.iter().map(|i| i.accept).collect();
    assert_eq!(accepts, [false, true, true]);
    assert!(imported.kdl.contains("vrrp_strict"), "{}", imported.kdl);
    warned(&imported, 3, "`vrrp_iptables`: upkeep drops traffic");
    assert_eq!(imported.warnings.len(), 1, "{:#?}", imported.warnings);
}

#[test]
fn garp_and_advert_answer_keywords_map_globally_and_per_instance() {
    let src = r#"global_defs {
    vrrp_garp_master_delay 10
    vrrp_garp_master_refresh_repeat 2
    vrrp_garp_lower_prio_delay 3
    vrrp_garp_lower_prio_repeat 1
    vrrp_gna_interval 0.02
    vrrp_lower_prio_no_advert
    vrrp_higher_prio_send_advert yes
}
vrrp_instance web {
    interface eth0
    virtual_router_id 10
    garp_master_delay 0
    garp_master_repeat 2
    garp_master_refresh 60
    garp_master_refresh_repeat 3
    garp_lower_prio_delay 4
    garp_lower_prio_repeat 0
    lower_prio_no_advert off
    higher_prio_send_advert
    virtual_ipaddress {
        192.0.2.100/24
    }
}
vrrp_instance db {
    interface eth0
    virtual_router_id 11
    virtual_ipaddress {
        192.0.2.200/24
    }
}
"#;
    let (imported, cfg) = convert(src);
    assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
    let g = &cfg.global;
    assert_eq!(g.garp_delay, Some(Duration::from_secs(10)));
    assert_eq!(g.garp_refresh_repeat, 2);
    assert_eq!(g.garp_lower_prio_delay, Some(Duration::from_secs(3)));
    assert_eq!(g.garp_lower_prio_repeat, Some(1));
    assert_eq!(g.na_interval, Duration::from_millis(20));
    assert!(g.lower_prio_no_advert && g.higher_prio_send_advert);
    let w = cfg.instance("web").expect("web");
    assert_eq!(w.garp.delay, None, "0: no second round");
    assert_eq!(w.garp.repeat, 2);
    assert_eq!(w.garp.refresh, Some(Duration::from_secs(60)));
    assert_eq!(w.garp.refresh_repeat, 3);
    assert_eq!(w.garp.lower_prio_delay, Some(Duration::from_secs(4)));
    assert_eq!(w.garp.lower_prio_repeat, 0);
    assert!(!w.lower_prio_no_advert && w.higher_prio_send_advert);
    let d = cfg.instance("db").expect("db");
    assert_eq!(d.garp.delay, Some(Duration::from_secs(10)), "global's");
    assert_eq!((d.garp.lower_prio_repeat, d.garp.refresh_repeat), (1, 2));
    assert!(d.lower_prio_no_advert);
    // A bad boolean is reported at its line, and nothing else is lost.
    let (imported, _) = convert(
        "vrrp_instance w {\n    interface eth0\n    virtual_router_id 1\n    lower_prio_no_advert maybe\n    virtual_ipaddress {\n        192.0.2.1\n    }\n}\n",
    );
    assert_eq!(imported.warnings.len(), 1, "{:#?}", imported.warnings);
    assert_eq!(imported.warnings[0].line, 4);
    assert!(imported.warnings[0].message.contains("maybe"));
}

#[test]
fn notify_fifo_keywords_import() {
    let src = r#"global_defs {
    vrrp_notify_fifo /run/keepalived/vrrp.fifo
    vrrp_notify_fifo_script "/usr/local/bin/read_fifo.sh --quiet" keepalived_script
    notify_fifo /run/keepalived/all.fifo
    notify_fifo_script /usr/local/bin/other.sh
    lvs_notify_fifo /run/keepalived/lvs.fifo
    vrrp_notify_priority_changes
}
vrrp_instance web {
    interface eth0
    virtual_router_id 1
    notify_master_rx_lower_pri "/etc/keepalived/reclaim.sh web"
    notify_priority_changes off
    virtual_ipaddress {
        192.0.2.1/24
    }
}
vrrp_instance db {
    interface eth0
    virtual_router_id 2
    virtual_ipaddress {
        192.0.2.2/24
    }
}
vrrp_sync_group g {
    group {
        web
    }
    notify_master_rx_lower_pri /bin/true
}
"#;
    let (imported, cfg) = convert(src);
    warned_all(
        &imported,
        &[
            (3, "user `keepalived_script` is not supported"),
            (4, "upkeep writes one notify FIFO"),
            (5, "a script for a notify FIFO that is not imported"),
            (
                6,
                "`lvs_notify_fifo /run/keepalived/lvs.fifo` in global_defs",
            ),
            (
                29,
                "`notify_master_rx_lower_pri /bin/true` in vrrp_sync_group g",
            ),
        ],
    );
    assert_eq!(imported.warnings.len(), 5, "{:#?}", imported.warnings);
    let g = &cfg.global;
    assert_eq!(
        g.notify_fifo.as_deref(),
        Some(std::path::Path::new("/run/keepalived/vrrp.fifo"))
    );
    assert_eq!(
        g.notify_fifo_script.as_deref(),
        Some("/usr/local/bin/read_fifo.sh --quiet")
    );
    let web = cfg.instance("web").expect("web");
    assert_eq!(
        web.notify.master_rx_lower_pri.as_deref(),
        Some("/etc/keepalived/reclaim.sh web")
    );
    assert!(!web.notify_priority_changes, "its own `off`");
    assert!(
        cfg.instance("db").expect("db").notify_priority_changes,
        "global's"
    );
}

#[test]
fn instances_without_vips_and_process_settings_import() {
    let src = r#"global_defs {
    vrrp_rt_priority 50
    vrrp_no_swap
    vrrp_startup_delay 5.5
    script_user nobody
}
vrrp_instance cloud {
    interface eth0
    virtual_router_id 9
    no_virtual_ipaddress
    notify_master "/usr/local/bin/move-eip.sh"
}
vrrp_instance bare {
    interface eth0
    virtual_router_id 10
}
"#;
    let (imported, cfg) = convert(src);
    assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
    assert_eq!(cfg.global.realtime_priority, Some(50));
    assert!(cfg.global.lock_memory);
    assert_eq!(cfg.global.startup_delay, Duration::from_millis(5500));
    for name in ["cloud", "bare"] {
        assert!(cfg.instance(name).expect(name).vips.is_empty());
    }
    assert!(imported.kdl.contains("no-vip"), "{}", imported.kdl);
}

/// keepalived's conditional lines and parameters (keepalived.conf(5)): one file for both hosts.
#[test]
fn conditional_config_and_parameters_import_per_host() {
    let src = r#"$VIP=192.0.2.100
@lb1 $PRIO=200
@lb2 $PRIO=100
$INSTANCE= \
vrrp_instance VI_${NUM} { \
    interface eth0 \
    virtual_router_id 5${NUM} \
    priority $PRIO \
    @^lb1 nopreempt \
    virtual_ipaddress { \
        ${VIP}/24 \
    } \
}
global_defs {
    @lb1 router_id lb1
    @lb2 router_id lb2
}
$NUM=1
$INSTANCE
"#;
    let import = |host: &str| {
        let imported = crate::import_str_for(src, "keepalived.conf", host).expect("imports");
        assert!(
            imported.warnings.is_empty(),
            "{host}: {:#?}",
            imported.warnings
        );
        let cfg = upkeep_config::parse_str(&imported.kdl, "out.kdl")
            .unwrap_or_else(|e| panic!("{}\n{e}", imported.kdl));
        (imported, cfg)
    };
    let (_, lb1) = import("lb1");
    let (out2, lb2) = import("lb2");
    assert_eq!(lb1.global.router_id.as_deref(), Some("lb1"));
    assert_eq!(lb2.global.router_id.as_deref(), Some("lb2"));
    let (i1, i2) = (&lb1.instances[0], &lb2.instances[0]);
    assert_eq!((i1.name.as_str(), i1.vrid, i1.priority), ("VI_1", 51, 200));
    assert_eq!((i2.vrid, i2.priority), (51, 100));
    assert!(i1.preempt && !i2.preempt, "@^lb1 nopreempt");
    assert_eq!(i1.vips[0].addr.to_string(), "192.0.2.100");
    // Lines made by an expansion carry the line of the expansion.
    assert!(out2.kdl.contains("instance \"VI_1\""), "{}", out2.kdl);
}

/// keepalived's own sample (doc/samples/keepalived.conf.vrrp.lvs_syncd) writes sync group
/// members outside `group { }`: keepalived ignores them as unknown keywords; the import says
/// where the members go.
#[test]
fn sync_group_members_outside_group_are_explained() {
    let src = "vrrp_sync_group VG1 {\n  VI_2\n}\nvrrp_instance VI_2 {\n  interface eth0\n  virtual_router_id 2\n  virtual_ipaddress {\n    192.0.2.2\n  }\n}\n";
    let (imported, _) = convert(src);
    warned(&imported, 2, "members go in a `group { ... }` block");
    assert!(
        imported
            .warnings
            .iter()
            .all(|w| !w.message.contains("not supported")),
        "{:#?}",
        imported.warnings
    );
}

#[test]
fn unicast_ttl_and_peer_ttl_ranges_import() {
    let src = r#"vrrp_instance web {
    interface eth0
    virtual_router_id 1
    unicast_ttl 64
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2 min_ttl 60 max_ttl 64
        192.0.2.3
    }
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"#;
    let (imported, cfg) = convert(src);
    assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
    let w = &cfg.instances[0];
    assert_eq!(w.unicast_ttl, 64);
    let peer: std::net::IpAddr = "192.0.2.2".parse().expect("ip");
    assert_eq!(w.peer_ttl, vec![(peer, 60..=64)]);
    assert_eq!(w.unicast_peers.len(), 2);
}

#[test]
fn multicast_groups_import() {
    let src = r#"global_defs {
    vrrp_mcast_group4 224.0.0.19
    vrrp_mcast_group6 ff02::13
}
vrrp_instance a {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        192.0.2.100/24
    }
}
vrrp_instance b {
    interface eth0
    virtual_router_id 2
    mcast_dst_ip 224.0.0.20
    virtual_ipaddress {
        192.0.2.101/24
    }
}
vrrp_instance c {
    interface eth0
    virtual_router_id 3
    version 3
    virtual_ipaddress {
        2001:db8::100/64
    }
}
"#;
    let (imported, cfg) = convert(src);
    assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
    let group = |n: &str| {
        cfg.instance(n)
            .expect(n)
            .multicast_group
            .map(|g| g.to_string())
    };
    assert_eq!(group("a").as_deref(), Some("224.0.0.19"));
    assert_eq!(group("b").as_deref(), Some("224.0.0.20"));
    assert_eq!(group("c").as_deref(), Some("ff02::13"));
}

#[test]
fn vrrp_min_garp_is_one_announcement_and_no_second_round() {
    let src = "global_defs {\n    vrrp_min_garp\n}\nvrrp_instance w {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        192.0.2.1\n    }\n}\n";
    let (imported, cfg) = convert(src);
    assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
    let g = &cfg.instances[0].garp;
    assert_eq!((g.repeat, g.delay), (1, None));
    let (_, off) = convert(&src.replace("vrrp_min_garp", "vrrp_min_garp off"));
    assert_eq!(off.instances[0].garp.repeat, 5);
}

#[test]
fn fifo_write_vrrp_states_on_reload_imports() {
    let src = "global_defs {\n    vrrp_notify_fifo /run/k.fifo\n    fifo_write_vrrp_states_on_reload\n}\nvrrp_instance w {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        192.0.2.1\n    }\n}\n";
    let (imported, cfg) = convert(src);
    assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
    assert!(cfg.global.notify_fifo_states_on_reload);
}
