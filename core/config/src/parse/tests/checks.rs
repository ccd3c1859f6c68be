//! `check` and `hook` blocks, plugin settings, notify commands and hooks.

use super::*;

/// Instance "web" with `body` lines from line 5, after `before` (which must end in `\n`).
fn with_checks(before: &str, body: &str) -> String {
    format!("{before}{}", web(body))
}

#[test]
fn check_kinds_parse() {
    let src = r#"
check "http" {
    plugin "plugins/http_check.wasm"
    config url="http://127.0.0.1/health" expect=200
    config verbose=#true
    allow "tcp-connect" "127.0.0.1:80" "[2001:db8::1]:443"
    allow "tcp-connect" "192.0.2.9:0"
    allow "read-file" "/etc/a" "/etc/b"
    allow "listening-sockets"
    allow "log"
    allow "clock"
    memory-limit "8MiB"
    sha256 "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
    timeout "500ms"
    init-fail
}
check "uplink" {
    interface "eth1"
    weight -10
}
check "knob" {
    file "/run/upkeep/weight"
    interval "5s"
}
check "nginx" {
    process "nginx"
    min-count 2
    fall 2
}
check "java" {
    process "java -jar /srv/app.jar" full=#true
    weight 5
}
check "sh" {
    script "true"
    user "nobody"
    init-fail #false
}
check "web" {
    listener 80
    weight -20
    interval "30s"
}
check "dns" {
    listener 53 proto="udp" address="2001:db8::53"
    fall 2
}
"#;
    let cfg = ok(src);
    let http = cfg.check("http").expect("http");
    assert_eq!(
        http.kind,
        CheckKind::Plugin {
            path: "plugins/http_check.wasm".into(),
            config: vec![
                ("url".into(), "http://127.0.0.1/health".into()),
                ("expect".into(), "200".into()),
                ("verbose".into(), "true".into()),
            ],
            grants: Grants {
                listening_sockets: true,
                tcp_connect: vec![
                    "127.0.0.1:80".parse().unwrap(),
                    "[2001:db8::1]:443".parse().unwrap(),
                    "192.0.2.9:0".parse().unwrap(),
                ],
                read_file: vec!["/etc/a".into(), "/etc/b".into()],
                log: true,
                clock: true,
            },
            memory_limit: 8 << 20,
            // Kept in lower case, as sha256sum prints it.
            sha256: Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
        }
    );
    assert!(http.init_fail);
    assert_eq!(http.timeout, Duration::from_millis(500));
    assert_eq!(http.weight, 0);
    let uplink = cfg.check("uplink").expect("uplink");
    assert_eq!(
        uplink.kind,
        CheckKind::Interface {
            name: "eth1".into()
        }
    );
    assert_eq!(uplink.weight, -10);
    let knob = cfg.check("knob").expect("knob");
    assert_eq!(
        knob.kind,
        CheckKind::File {
            path: "/run/upkeep/weight".into()
        }
    );
    assert_eq!(knob.weight, 1, "file checks weigh 1 by default");
    assert_eq!(knob.interval, Duration::from_secs(5));
    assert_eq!(
        cfg.check("nginx").expect("nginx").kind,
        CheckKind::Process {
            name: "nginx".into(),
            full: false,
            min_count: 2
        }
    );
    assert_eq!(cfg.check("nginx").expect("nginx").fall, 2);
    assert_eq!(
        cfg.check("java").expect("java").kind,
        CheckKind::Process {
            name: "java -jar /srv/app.jar".into(),
            full: true,
            min_count: 1
        }
    );
    let web = cfg.check("web").expect("web");
    assert_eq!(
        web.kind,
        CheckKind::Listener {
            port: 80,
            proto: ListenerProto::Tcp,
            address: None
        }
    );
    assert_eq!((web.weight, web.interval), (-20, Duration::from_secs(30)));
    assert_eq!(
        cfg.check("dns").expect("dns").kind,
        CheckKind::Listener {
            port: 53,
            proto: ListenerProto::Udp,
            address: Some("2001:db8::53".parse().unwrap())
        }
    );
    assert_eq!(cfg.check("dns").expect("dns").fall, 2);
    let sh = cfg.check("sh").expect("sh");
    assert!(!sh.init_fail);
    assert_eq!(sh.user.as_deref(), Some("nobody"));
    // A plugin with nothing granted gets nothing, and the default memory cap.
    let bare = ok("check \"p\" { plugin \"x.wasm\"; }\n");
    assert_eq!(
        bare.checks[0].kind,
        CheckKind::Plugin {
            path: "x.wasm".into(),
            config: Vec::new(),
            grants: Grants::default(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            sha256: None,
        }
    );
    assert!(!bare.checks[0].init_fail);
}

#[test]
fn check_kind_rules() {
    let p = problem_at(
        "check \"c\" {\n    interval 1\n}\n",
        1,
        1,
        "check `c` has no `script`, `plugin`, `interface`, `file`, `process` or `listener`",
    );
    assert!(help_of(&p).contains("process \"nginx\""), "{p:?}");
    let p = problem_at(
        "check \"c\" {\n    script \"x\"\n    plugin \"y.wasm\"\n}\n",
        3,
        5,
        "check `c` has both `script` (line 2) and `plugin`",
    );
    assert!(help_of(&p).contains("another check"), "{p:?}");
    let p = problem_at(
        "check \"c\" {\n    file \"/run/w\"\n    timeout \"1s\"\n}\n",
        3,
        5,
        "`timeout` does not apply to a `file` check",
    );
    assert_eq!(
        help_of(&p),
        "`timeout` is a setting of `script` or `plugin` checks; remove it"
    );
    problem_at(
        "check \"c\" {\n    interface \"eth1\"\n    interval \"1s\"\n}\n",
        3,
        5,
        "`interval` does not apply to a `interface` check",
    );
    problem_at(
        "check \"c\" {\n    plugin \"x.wasm\"\n    user \"nobody\"\n}\n",
        3,
        5,
        "`user` does not apply to a `plugin` check",
    );
    let p = problem_at(
        "check \"c\" {\n    script \"x\"\n    allow \"log\"\n    allow \"clock\"\n}\n",
        3,
        5,
        "`allow` does not apply to a `script` check",
    );
    assert_eq!(
        help_of(&p),
        "`allow` is a setting of `plugin` checks; remove it"
    );
    assert_eq!(
        problems_of("check \"c\" {\n    script \"x\"\n    allow \"log\"\n    allow \"clock\"\n}\n")
            .len(),
        1,
        "reported once per setting"
    );
    problem_at(
        "check \"c\" {\n    script \"x\"\n    min-count 2\n}\n",
        3,
        5,
        "`min-count` does not apply",
    );
    problem_at(
        "check \"c\" {\n    process \"x\"\n    min-count 0\n}\n",
        3,
        15,
        "`min-count` must be from 1",
    );
    problem_at(
        "check \"c\" {\n    process \"x\" full=\"yes\"\n}\n",
        2,
        17,
        "`full=` of `process` must be #true or #false",
    );
    problem_at(
        "check \"c\" {\n    process \"x\" ful=#true\n}\n",
        2,
        17,
        "unknown property `ful=`",
    );
    problem_at(
        "check \"c\" {\n    listener 0\n}\n",
        2,
        14,
        "`listener` must be from 1 to 65535, not 0",
    );
    problem_at(
        "check \"c\" {\n    listener \"80\"\n}\n",
        2,
        14,
        "`listener` must be a whole number, not a string",
    );
    problem_at(
        "check \"c\" {\n    listener 80 proto=\"sctp\"\n}\n",
        2,
        17,
        "`proto=` of `listener` must be \"tcp\" or \"udp\", not `sctp`",
    );
    problem_at(
        "check \"c\" {\n    listener 80 address=\"192.0.2.1/24\"\n}\n",
        2,
        17,
        "not an IP address",
    );
    problem_at(
        "check \"c\" {\n    listener 80 port=81\n}\n",
        2,
        17,
        "unknown property `port=`",
    );
    problem_at(
        "check \"c\" {\n    listener 80\n    timeout \"1s\"\n}\n",
        3,
        5,
        "`timeout` does not apply to a `listener` check",
    );
    problem_at(
        "check \"c\" {\n    interface \"a/b\"\n}\n",
        2,
        15,
        "not a valid interface name",
    );
    problem_at(
        "check \"c\" {\n    file \"\"\n}\n",
        2,
        10,
        "`file` must not be empty",
    );
    problem_at(
        "check \"c\" {\n    script \"x\"\n    init-fail \"yes\"\n}\n",
        3,
        15,
        "must be #true or #false",
    );
    // A check whose kind is invalid is still known, so tracks of it are not errors too.
    let problems = problems_of(&with_checks(
        "check \"c\" { interface \"a/b\"; }\n",
        "    track \"c\"\n",
    ));
    assert_eq!(problems.len(), 1, "{problems:#?}");
}

#[test]
fn plugin_settings_rules() {
    let plugin = |body: &str| format!("check \"p\" {{\n    plugin \"x.wasm\"\n{body}}}\n");
    let p = problem_at(
        &plugin("    allow \"net\"\n"),
        3,
        11,
        "unknown capability `net` in `allow`",
    );
    assert_eq!(
        help_of(&p),
        "known capabilities: listening-sockets, tcp-connect, read-file, log, clock"
    );
    let p = problem_at(&plugin("    allow \"clok\"\n"), 3, 11, "unknown capability");
    assert!(help_of(&p).starts_with("did you mean `clock`?"), "{p:?}");
    problem_at(&plugin("    allow\n"), 3, 5, "`allow` needs a capability");
    problem_at(
        &plugin("    allow \"log\" \"x\"\n"),
        3,
        17,
        "`allow \"log\"` takes no more values",
    );
    problems_with_help(&[
        (
            plugin("    allow \"log\"\n    allow \"log\"\n"),
            4,
            5,
            "`allow \"log\"` is given twice",
            "line 3",
        ),
        (
            plugin("    allow \"tcp-connect\"\n"),
            3,
            5,
            "`allow \"tcp-connect\"` needs at least one value",
            "127.0.0.1:80",
        ),
    ]);
    let p = problem_at(
        &plugin("    allow \"tcp-connect\" \"127.0.0.1\"\n"),
        3,
        25,
        "`127.0.0.1` is not an address with a port",
    );
    assert_eq!(help_of(&p), "add the port: \"127.0.0.1:80\"");
    problems_with_help(&[
        (
            plugin("    allow \"tcp-connect\" \"2001:db8::1:443\"\n"),
            3,
            25,
            "not an address with a port",
            "[2001:db8::1:443]:443",
        ),
        (
            plugin("    allow \"tcp-connect\" \"localhost:80\"\n"),
            3,
            25,
            "not an address with a port",
            "names are not resolved",
        ),
    ]);
    problems_at(&[
            (plugin("    allow \"tcp-connect\" \"127.0.0.1:80\"\n    allow \"tcp-connect\" \"127.0.0.1:80\"\n"), 4, 25, "127.0.0.1:80 is listed twice"),
            (plugin("    allow \"read-file\" \"/a\" \"/a\"\n"), 3, 28, "/a is listed twice"),
            (plugin("    allow \"read-file\" \"\"\n"), 3, 23, "must not be empty"),
        ]);
    let p = problem_at(
        &plugin("    memory-limit \"16MB\"\n"),
        3,
        18,
        "`memory-limit` is not a valid size: `16MB`: write `MiB`",
    );
    assert!(help_of(&p).contains("16MiB"), "{p:?}");
    problems_at(&[
        (
            plugin("    memory-limit \"5GiB\"\n"),
            3,
            18,
            "more than 4GiB",
        ),
        (
            plugin("    memory-limit \"1KiB\"\n"),
            3,
            18,
            "less than 64KiB",
        ),
        (plugin("    memory-limit -1\n"), 3, 18, "is negative"),
        (
            plugin("    memory-limit #true\n"),
            3,
            18,
            "`memory-limit` must be a size, not a boolean",
        ),
    ]);
    let cfg = ok(&plugin("    memory-limit 1048576\n"));
    assert!(matches!(
        cfg.checks[0].kind,
        CheckKind::Plugin {
            memory_limit: 1_048_576,
            ..
        }
    ));
    let cfg = ok(&plugin("    memory-limit \"4GiB\"\n"));
    assert!(matches!(
        cfg.checks[0].kind,
        CheckKind::Plugin {
            memory_limit: MAX_MEMORY_LIMIT,
            ..
        }
    ));
    let p = problem_at(
        &plugin("    config a=\"1\"\n    config a=\"2\"\n"),
        4,
        12,
        "`config` key `a` is given twice",
    );
    assert!(help_of(&p).contains("line 3"), "{p:?}");
    problems_at(&[
        (
            plugin("    config \"x\"\n"),
            3,
            12,
            "`config` takes key=\"value\" properties",
        ),
        (
            plugin("    config\n"),
            3,
            5,
            "needs at least one key=\"value\"",
        ),
        (
            plugin("    config a=#null\n"),
            3,
            12,
            "`a=` of `config` must be a string",
        ),
    ]);
}

#[test]
fn notify_and_hooks() {
    let src = r#"
hook "slack" {
    plugin "/etc/upkeep/slack.wasm"
    allow "tcp-connect" "192.0.2.50:443"
    allow "log"
    memory-limit "8MiB"
    timeout "2s"
}
hook "audit" {
    plugin "audit.wasm"
}
instance "web" {
    interface "eth0"
    vrid 51
    vip "192.0.2.100/24"
    notify-master "/etc/upkeep/master.sh web"
    notify-backup "/etc/upkeep/backup.sh"
    notify-fault "/etc/upkeep/fault.sh"
    notify-stop "/etc/upkeep/stop.sh"
    notify "/etc/upkeep/notify.sh"
    notify-hook "slack" "audit"
}
sync-group "g" {
    member "web"
    notify-master "/etc/upkeep/group_master.sh"
    notify-hook "slack"
}
global {
    notify-timeout "7s"
    script-security #false
}
"#;
    let cfg = ok(src);
    assert_eq!(cfg.global.notify_timeout, Duration::from_secs(7));
    assert!(!cfg.global.script_security);
    let slack = cfg.hook("slack").expect("slack");
    assert_eq!(slack.path, PathBuf::from("/etc/upkeep/slack.wasm"));
    assert_eq!(slack.memory_limit, 8 << 20);
    assert_eq!(slack.timeout, Duration::from_secs(2));
    assert_eq!(
        slack.grants,
        Grants {
            tcp_connect: vec!["192.0.2.50:443".parse().unwrap()],
            log: true,
            ..Grants::default()
        }
    );
    let audit = cfg.hook("audit").expect("audit");
    assert_eq!(
        audit.timeout,
        Duration::from_secs(7),
        "a hook's timeout defaults to notify-timeout, even when global comes later"
    );
    assert_eq!(audit.memory_limit, DEFAULT_MEMORY_LIMIT);
    let w = cfg.instance("web").expect("web");
    assert_eq!(
        w.notify,
        Notify {
            master: Some("/etc/upkeep/master.sh web".into()),
            backup: Some("/etc/upkeep/backup.sh".into()),
            fault: Some("/etc/upkeep/fault.sh".into()),
            stop: Some("/etc/upkeep/stop.sh".into()),
            any: Some("/etc/upkeep/notify.sh".into()),
            hooks: vec!["slack".into(), "audit".into()],
            master_rx_lower_pri: None,
        }
    );
    let g = &cfg.sync_groups[0];
    assert_eq!(
        g.notify.master.as_deref(),
        Some("/etc/upkeep/group_master.sh")
    );
    assert_eq!(g.notify.hooks, ["slack"]);
    assert!(g.notify.backup.is_none());
    // Defaults.
    let plain = ok(&web(""));
    assert_eq!(plain.global.notify_timeout, Duration::from_secs(5));
    assert!(plain.global.script_security);
    assert!(plain.instances[0].notify.is_empty());
    assert!(plain.hooks.is_empty());
}

#[test]
fn notify_rules() {
    let hook = "hook \"slack\" {\n    plugin \"s.wasm\"\n}\n";
    let p = problem_at(
        &with_checks(hook, "    notify-hook \"slak\"\n"),
        8,
        17,
        "there is no hook named `slak`",
    );
    assert_eq!(help_of(&p), "did you mean `slack`?");
    let p = problem_at(&web("    notify-hook \"x\"\n"), 5, 17, "no hook named `x`");
    assert!(help_of(&p).contains("define it"), "{p:?}");
    problem_at(
        &with_checks(hook, "    notify-hook \"slack\" \"slack\"\n"),
        8,
        25,
        "hook `slack` is listed twice in instance `web`",
    );
    problems_at(&[
        (
            web("    notify-hook\n"),
            5,
            5,
            "needs at least one hook name",
        ),
        (
            web("    notify-master \"a\"\n    notify-master \"b\"\n"),
            6,
            5,
            "`notify-master` is set twice in instance `web`",
        ),
        (
            web("    notify \"\"\n"),
            5,
            12,
            "`notify` must not be empty",
        ),
        (
            web("    notify-master 1\n"),
            5,
            19,
            "`notify-master` must be a string",
        ),
    ]);
    let p = problem_at(&web("    notify_master \"x\"\n"), 5, 5, "unknown setting");
    assert_eq!(
        help_of(&p),
        "keepalived's `notify_master` is `notify-master` here"
    );
    let group = format!(
            "{}sync-group \"g\" {{\n    member \"web\"\n    notify-fault \"a\"\n    notify-fault \"b\"\n    notify-hook \"nope\"\n    bogus 1\n}}\n",
            web("")
        );
    problem_at(
        &group,
        9,
        5,
        "`notify-fault` is set twice in sync-group `g`",
    );
    problem_at(&group, 10, 17, "there is no hook named `nope`");
    problem_at(&group, 11, 5, "unknown setting `bogus` in sync-group `g`");
    problem_at(
        "hook \"h\" {\n    timeout \"1s\"\n}\n",
        1,
        1,
        "hook `h` has no `plugin`",
    );
    problem_at(
        "hook \"h\" {\n    plugin \"a.wasm\"\n    script \"x\"\n}\n",
        3,
        5,
        "unknown setting `script` in hook `h`",
    );
    problem_at(
        "hook \"h\" {\n    plugin \"a.wasm\"\n    timeout \"0s\"\n}\n",
        3,
        13,
        "longer than 0",
    );
    problem_at(
        "hook \"h\" { plugin \"a.wasm\"; }\nhook \"h\" { plugin \"b.wasm\"; }\n",
        2,
        6,
        "there is already a hook named `h`",
    );
    problem_at(
        "global {\n    notify-timeout \"0s\"\n}\n",
        2,
        20,
        "longer than 0",
    );
    problem_at(
        "global {\n    script-security \"no\"\n}\n",
        2,
        21,
        "must be #true or #false",
    );
    assert!(
        ok("global {\n    script-security\n}\n")
            .global
            .script_security
    );
}

#[test]
fn sha256_pins_are_64_hex_digits_on_plugins_only() {
    let bad = "check \"p\" {\n    plugin \"x.wasm\"\n    sha256 \"abc\"\n}\n";
    let p = problem_at(bad, 3, 12, "not a SHA-256 digest");
    assert!(help_of(&p).contains("upkeep plugin inspect"), "{p:?}");
    let on_script = "check \"s\" {\n    script \"true\"\n    sha256 \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n}\n";
    problem_at(
        on_script,
        3,
        5,
        "`sha256` does not apply to a `script` check",
    );
    let hook = ok("hook \"h\" {\n    plugin \"h.wasm\"\n    sha256 \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n}\n");
    assert_eq!(
        hook.hooks[0].sha256.as_deref(),
        Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
    );
}
