//! Configs that are refused: each problem, its place, label and hint.

use super::*;

#[test]
fn syntax_errors_have_line_and_column() {
    let v1_bool = web("    preempt true\n");
    match parse_str(&v1_bool, "t.kdl") {
        // kdl built with its `v1-fallback` feature reads this as KDL v1.
        Ok(cfg) => assert!(cfg.instances[0].preempt),
        Err(_) => {
            let p = problem_at(&v1_bool, 5, 13, "");
            assert!(help_of(&p).contains("#true"), "{p:?}");
        }
    }
    let err = parse_str("a {\n  b 1\n", "x.kdl").unwrap_err();
    assert!(err.to_string().starts_with("x.kdl:1:3: "), "{err}");
    let err = parse_str("instance \"w\" {\n  vrid 1.\n}\n", "x.kdl").unwrap_err();
    assert!(err.to_string().starts_with("x.kdl:2:8: "), "{err}");
}

#[test]
fn unknown_names_suggest_the_closest() {
    let p = problem_at(&web("    vird 5\n"), 5, 5, "unknown setting `vird`");
    assert_eq!(help_of(&p), "did you mean `vrid`?");
    let p = problem_at(&web("    advert-int \"1s\"\n"), 5, 5, "unknown setting");
    assert_eq!(help_of(&p), "did you mean `advert-interval`?");
    let p = problem_at(&web("    virtual_router_id 5\n"), 5, 5, "unknown setting");
    assert!(help_of(&p).contains("`vrid`"), "{p:?}");
    let p = problem_at("instnace \"x\" {}\n", 1, 1, "unknown section `instnace`");
    assert_eq!(help_of(&p), "did you mean `instance`?");
    let p = problem_at(
        "global { zzz 1; }\n",
        1,
        10,
        "unknown setting `zzz` in `global`",
    );
    assert!(help_of(&p).starts_with("known here: router-id"), "{p:?}");
    let p = problem_at(
        &web("    vip \"192.0.2.9\" devv=\"eth1\"\n"),
        5,
        21,
        "unknown property `devv=`",
    );
    assert_eq!(help_of(&p), "did you mean `dev=`?");
    problem_at(
        &web("    priority 5 foo=1\n"),
        5,
        16,
        "unknown property `foo=` on `priority`",
    );
    problem_at(
        "check \"c\" { script \"x\"; bogus 1; }\n",
        1,
        25,
        "unknown setting `bogus` in check `c`",
    );
    problem_at(
        "sync-group \"g\" { members \"web\"; }\n",
        1,
        18,
        "unknown setting `members`",
    );
}

#[test]
fn wrong_value_types() {
    let p = problem_at(
        &web("    priority \"100\"\n"),
        5,
        14,
        "`priority` must be a whole number, not a string",
    );
    assert_eq!(help_of(&p), "drop the quotes: `priority 100`");
    let p = problem_at(
        "instance \"w\" {\n    interface 5\n}\n",
        2,
        15,
        "must be a string",
    );
    assert!(help_of(&p).contains("interface \"eth0\""), "{p:?}");
    let p = problem_at(
        &web("    preempt \"false\"\n"),
        5,
        13,
        "must be #true or #false",
    );
    assert!(help_of(&p).contains("`#false`"), "{p:?}");
    problem_at(&web("    priority 1.5\n"), 5, 14, "not a decimal number");
    problem_at(
        &web("    advert-interval #true\n"),
        5,
        21,
        "must be a duration",
    );
    problem_at(
        "check \"c\" { script #null; }\n",
        1,
        20,
        "must be a string, not #null",
    );
    let p = problem_at(
        &format!(
            "check \"c\" {{ script \"x\"; }}\n{}",
            web("    track \"c\" weight=\"5\"\n")
        ),
        6,
        15,
        "`weight=` of `track` must be a whole number",
    );
    assert_eq!(help_of(&p), "drop the quotes: `weight=5`");
    problem_at(&web("    vrid\n"), 5, 5, "`vrid` is set twice");
    problem_at(
        "instance \"w\" {\n    vrid\n}\n",
        2,
        5,
        "`vrid` needs a value",
    );
    problem_at(
        &web("    priority 1 2\n"),
        5,
        16,
        "`priority` takes one value",
    );
    problem_at(
        &web("    priority 1 { }\n"),
        5,
        15,
        "`priority` takes no `{ ... }` block",
    );
}

#[test]
fn out_of_range_numbers() {
    problem_at(
        "instance \"w\" {\n    vrid 0\n}\n",
        2,
        10,
        "`vrid` must be from 1 to 255, not 0",
    );
    problem_at("instance \"w\" {\n    vrid 256\n}\n", 2, 10, "not 256");
    problem_at(
        &web("    priority 0\n"),
        5,
        14,
        "`priority` must be from 1 to 255",
    );
    problem_at(
        &web("    version 4\n"),
        5,
        13,
        "`version` must be from 2 to 3",
    );
    problem_at(
        "global {\n    garp-repeat 101\n}\n",
        2,
        17,
        "`garp-repeat` must be from 0 to 100",
    );
    problem_at(
        "check \"c\" {\n    script \"x\"\n    weight -300\n}\n",
        3,
        12,
        "from -253 to 253",
    );
    problem_at(
        "check \"c\" {\n    script \"x\"\n    fall 0\n}\n",
        3,
        10,
        "`fall` must be from 1",
    );
    problem_at(
        "check \"c\" {\n    script \"x\"\n    rise -1\n}\n",
        3,
        10,
        "`rise` must be from 1",
    );
    problem_at(
        &web("    route \"10.0.0.0/8\" metric=-1\n"),
        5,
        24,
        "`metric=` of `route` must be from 0",
    );
    problem_at(
        &web("    route \"10.0.0.0/8\" table=0\n"),
        5,
        24,
        "`table=` of `route` must be from 1",
    );
}

#[test]
fn bad_durations() {
    let p = problem_at(
        "check \"c\" {\n    script \"x\"\n    interval \"2x\"\n}\n",
        3,
        14,
        "unknown unit `x`",
    );
    assert!(help_of(&p).contains("\"100ms\""), "{p:?}");
    problems_at(&[
        (web("    preempt-delay \"-1s\"\n"), 5, 19, "is negative"),
        (web("    preempt-delay -1\n"), 5, 19, "is negative"),
        (
            web("    advert-interval \"fast\"\n"),
            5,
            21,
            "not a valid duration",
        ),
        (
            web("    advert-interval \"0s\"\n"),
            5,
            21,
            "must be longer than 0",
        ),
    ]);
    problem_at(
        "check \"c\" {\n    script \"x\"\n    timeout \"0ms\"\n}\n",
        3,
        13,
        "longer than 0",
    );
    problem_at(
        "global {\n    garp-refresh \"0s\"\n}\n",
        2,
        18,
        "longer than 0",
    );
}

#[test]
fn bad_addresses() {
    problems_at(&[
        (
            web("    vip \"192.0.2.300/24\"\n"),
            5,
            9,
            "`vip` is not an IP address: `192.0.2.300`",
        ),
        (
            web("    vip \"192.0.2.1/33\"\n"),
            5,
            9,
            "bad prefix length `/33`",
        ),
        (web("    vip \"192.0.2.1/x\"\n"), 5, 9, "bad prefix length"),
        (web("    vip \"224.0.0.18\"\n"), 5, 9, "a multicast address"),
        (web("    vip \"192.0.2.100\"\n"), 5, 9, "listed twice"),
        (
            web("    unicast-peer \"192.0.2.2\" \"peer\"\n"),
            5,
            30,
            "`unicast-peer` is not an IP address",
        ),
        (
            web("    unicast-peer \"192.0.2.2\" \"192.0.2.2\"\n"),
            5,
            30,
            "listed twice",
        ),
        (
            web("    unicast-peer\n"),
            5,
            5,
            "needs at least one address",
        ),
        (
            web("    unicast-src \"0.0.0.0\"\n"),
            5,
            17,
            "the unspecified address",
        ),
    ]);
    let p = problem_at(
        &web("    unicast-src \"192.0.2.1/24\"\n"),
        5,
        17,
        "not an IP address",
    );
    assert!(help_of(&p).contains("without a /prefix"));
    let p = problem_at(
        &web("    route \"198.51.100.1/24\"\n"),
        5,
        11,
        "has host bits set",
    );
    assert_eq!(
        help_of(&p),
        "write the network address: \"198.51.100.0/24\""
    );
    problem_at(
        &web("    route \"10.0.0.0/8\" via=\"2001:db8::1\"\n"),
        5,
        24,
        "gateway 2001:db8::1 is IPv6",
    );
    problem_at(
        &web("    route \"10.0.0.0/8\" via=\"gw\"\n"),
        5,
        24,
        "`via=` of `route` is not an IP address",
    );
    problem_at(
        "instance \"w\" {\n    interface \"a/b\"\n}\n",
        2,
        15,
        "not a valid interface name",
    );
    problem_at(
        "instance \"w\" {\n    interface \"averyveryverylongname\"\n}\n",
        2,
        15,
        "not a valid interface name",
    );
    problem_at(
        &web("    vip \"192.0.2.9\" dev=\"\"\n"),
        5,
        21,
        "not a valid interface name",
    );
}

#[test]
fn missing_required_settings_point_at_the_instance() {
    let src = "\ninstance \"w\" {\n    priority 100\n}\n";
    let p = problem_at(src, 2, 1, "instance `w` has no `interface`");
    assert_eq!(p.span.len(), "instance \"w\"".len());
    problem_at(src, 2, 1, "instance `w` has no `vrid`");
    let p = problem_at(src, 2, 1, "instance `w` has no `vip`");
    assert!(help_of(&p).contains("vip \"192.0.2.100/24\""));
    problem_at(
        "check \"c\" {\n    interval 1\n}\n",
        1,
        1,
        "check `c` has no `script`",
    );
    problem_at("instance {\n}\n", 1, 1, "`instance` needs a name");
    problem_at(
        "instance \"w\"\n",
        1,
        1,
        "`instance` has no `{ ... }` block",
    );
    problem_at(
        "instance \"w\" \"v\" {\n}\n",
        1,
        14,
        "`instance` takes one name",
    );
    problem_at(
        "instance \"w\" x=1 {\n}\n",
        1,
        14,
        "`instance` takes no properties",
    );
    problem_at("instance \"\" {\n}\n", 1, 10, "must not be empty");
    problem_at(
        "sync-group \"g\" {\n}\n",
        1,
        1,
        "sync-group `g` has no members",
    );
    problem_at("global 1 {\n}\n", 1, 8, "`global` takes no arguments");
    problem_at("global\n", 1, 1, "`global` has no `{ ... }` block");
}

#[test]
fn duplicates() {
    let src = format!("{}{}", web(""), web(""));
    let p = problem_at(&src, 6, 10, "there is already a instance named `web`");
    assert!(help_of(&p).contains("line 1"));
    problem_at(
        &src,
        8,
        5,
        "vrid 51 on `eth0` (IPv4) is already used by instance `web`",
    );
    let checks = "check \"c\" { script \"a\"; }\ncheck \"c\" { script \"b\"; }\n";
    problem_at(checks, 2, 7, "already a check named `c`");
    problem_at("global {\n}\nglobal {\n}\n", 3, 1, "`global` appears twice");
    problem_at(
        &web("    priority 1\n    priority 2\n"),
        6,
        5,
        "`priority` is set twice in instance `web`",
    );
    problem_at(
        &web("    vip \"192.0.2.9\" dev=\"a\" dev=\"b\"\n"),
        5,
        29,
        "given twice",
    );
    let groups = format!(
        "{}sync-group \"g\" {{ member \"web\"; }}\nsync-group \"g\" {{ member \"x\"; }}\n",
        web("")
    );
    problem_at(&groups, 7, 12, "already a sync-group named `g`");
}

#[test]
fn same_vrid_is_fine_on_another_link_or_family() {
    let v6 =
        "instance \"web6\" {\n    interface \"eth0\"\n    vrid 51\n    vip \"2001:db8::1/64\"\n}\n";
    let other_link = web("")
        .replace("\"web\"", "\"web2\"")
        .replace("eth0", "eth1");
    let cfg = ok(&format!("{}{v6}{other_link}", web("")));
    assert_eq!(cfg.instances.len(), 3);
    assert!(cfg.instance("web6").is_some_and(|i| i.is_ipv6()));
}

#[test]
fn address_families() {
    let p = problem_at(
        &web("    vip \"2001:db8::1/64\"\n"),
        5,
        9,
        "vip 2001:db8::1 is IPv6 but this instance's first vip is IPv4",
    );
    assert!(help_of(&p).contains("own vrid"));
    let v6v2 = "instance \"w\" {\n    interface \"eth0\"\n    vrid 1\n    version 2\n    vip \"fe80::1/64\"\n}\n";
    let p = problem_at(v6v2, 5, 9, "VRRP version 2 carries only IPv4");
    assert!(help_of(&p).contains("version 3"));
    problem_at(
        &web("    unicast-src \"2001:db8::1\"\n"),
        5,
        17,
        "2001:db8::1 is IPv6 but the instance's VIPs are IPv4",
    );
    problem_at(
        &web("    unicast-peer \"192.0.2.2\" \"2001:db8::2\"\n"),
        5,
        30,
        "is IPv6 but the instance's VIPs are IPv4",
    );
}

#[test]
fn authentication_rules() {
    let p = problem_at(
        &web("    auth-pass \"1234\"\n"),
        5,
        5,
        "`auth-pass` works only with VRRP version 2; version defaults to 3",
    );
    assert!(help_of(&p).contains("version 2"));
    problems_at(&[
        (
            web("    version 3\n    auth-pass \"1234\"\n"),
            6,
            5,
            "this instance uses version 3",
        ),
        (
            web("    version 2\n    auth-pass \"123456789\"\n"),
            6,
            15,
            "1 to 8 bytes long, not 9 bytes",
        ),
        (
            web("    version 2\n    auth-pass \"\"\n"),
            6,
            15,
            "not 0 bytes",
        ),
    ]);
    let cfg = ok(&web("    version 2\n    auth-pass \"12345678\"\n"));
    assert_eq!(cfg.instances[0].auth_pass.as_deref(), Some("12345678"));
}

#[test]
fn advert_interval_limits() {
    let p = problem_at(
        &web("    version 2\n    advert-interval \"1500ms\"\n"),
        6,
        21,
        "VRRP version 2 sends adverts every 1 to 255 whole seconds",
    );
    assert!(help_of(&p).contains("version 3"));
    problems_at(&[
            (web("    version 2\n    advert-interval \"256s\"\n"), 6, 21, "whole seconds"),
            (web("    advert-interval \"15ms\"\n"), 5, 21, "VRRP version 3 sends adverts every 10ms to 40.95s in steps of 10ms; 15ms is not one of them (version defaults to 3)"),
            (web("    advert-interval \"5ms\"\n"), 5, 21, "10ms to 40.95s"),
            (web("    advert-interval \"41s\"\n"), 5, 21, "10ms to 40.95s"),
        ]);
    let cfg = ok(&web("    advert-interval \"40.95s\"\n"));
    assert_eq!(
        cfg.instances[0].advert_interval,
        Duration::from_millis(40_950)
    );
    let cfg = ok(&web("    version 2\n    advert-interval \"255s\"\n"));
    assert_eq!(cfg.instances[0].advert_interval, Duration::from_secs(255));
}

#[test]
fn references() {
    let checks = "check \"port80\" { script \"x\"; }\n";
    let p = problem_at(
        &format!("{checks}{}", web("    track \"port8\"\n")),
        6,
        11,
        "there is no check named `port8`",
    );
    assert_eq!(help_of(&p), "did you mean `port80`?");
    let p = problem_at(&web("    track \"x\"\n"), 5, 11, "no check named `x`");
    assert!(help_of(&p).contains("define it"));
    problem_at(
        &format!(
            "{checks}{}",
            web("    track \"port80\"\n    track \"port80\" weight=1\n")
        ),
        7,
        11,
        "tracked twice",
    );

    let groups = format!(
        "{}sync-group \"g\" {{\n    member \"web\" \"wbe\"\n}}\n",
        web("")
    );
    let p = problem_at(&groups, 7, 18, "there is no instance named `wbe`");
    assert_eq!(help_of(&p), "did you mean `web`?");
    let two = format!(
            "{}sync-group \"a\" {{\n    member \"web\"\n}}\nsync-group \"b\" {{\n    member \"web\"\n}}\n",
            web("")
        );
    problem_at(&two, 10, 12, "instance `web` is already in sync-group `a`");
    let twice = format!(
        "{}sync-group \"a\" {{\n    member \"web\" \"web\"\n}}\n",
        web("")
    );
    problem_at(&twice, 7, 18, "listed twice");
    problem_at(
        &format!("{}sync-group \"a\" {{\n    member\n}}\n", web("")),
        7,
        5,
        "needs at least one instance name",
    );
}

#[test]
fn handover_when_sick_forms() {
    assert!(ok(&web("")).instances[0].handover_when_sick);
    assert!(!ok(&web("    handover-when-sick #false\n")).instances[0].handover_when_sick);
    assert!(ok(&web("    handover-when-sick\n")).instances[0].handover_when_sick);
    problem_at(
        &web("    handover-when-sick \"no\"\n"),
        5,
        24,
        "must be #true or #false",
    );
}

/// `upkeep check` and the importer say what a failed check does under nopreempt.
#[test]
fn sick_master_notes_for_nopreempt_with_negative_weights() {
    let check = "check \"port80\" {\n    script \"/bin/true\"\n    weight -20\n}\n";
    let cfg = |body: &str| ok(&format!("{check}{}", web(body)));
    let notes = cfg("    preempt #false\n    track \"port80\"\n").sick_master_notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].0, "web");
    assert!(notes[0].1.contains("hands the VIPs over"), "{notes:?}");
    assert!(
        notes[0].1.contains("handover-when-sick #false"),
        "{notes:?}"
    );
    let notes = cfg("    preempt #false\n    handover-when-sick #false\n    track \"port80\"\n")
        .sick_master_notes();
    assert!(
        notes[0].1.contains("keeps the VIPs, as in keepalived"),
        "{notes:?}"
    );
    // Nothing to say: preempting, no negative weight (an instance's own weight counts).
    assert!(cfg("    track \"port80\"\n").sick_master_notes().is_empty());
    assert!(cfg("    preempt #false\n    track \"port80\" weight=10\n")
        .sick_master_notes()
        .is_empty());
    assert!(cfg("    preempt #false\n").sick_master_notes().is_empty());
}

#[test]
fn preempt_forms() {
    assert!(ok(&web("    preempt\n")).instances[0].preempt);
    assert!(ok(&web("    preempt #true\n")).instances[0].preempt);
    assert!(!ok(&web("    nopreempt\n")).instances[0].preempt);
    problems_at(&[
        (
            web("    preempt #true\n    nopreempt\n"),
            6,
            5,
            "both `preempt` and `nopreempt`",
        ),
        (
            web("    nopreempt #true\n"),
            5,
            15,
            "`nopreempt` takes no value",
        ),
        (
            web("    initial-state \"primary\"\n"),
            5,
            19,
            "must be \"backup\" or \"master\"",
        ),
    ]);
    let cfg = ok(&web("    initial-state \"MASTER\"\n"));
    assert_eq!(cfg.instances[0].initial_state, InitialState::Master);
}

#[test]
fn every_problem_is_collected_in_file_order() {
    let src = web("    track \"nope\"\n    priority 0\n    vird 3\n");
    let err = parse_str(&src, "t.kdl").unwrap_err();
    let problems = err.problems();
    let places: Vec<(usize, usize)> = problems.iter().map(|(l, c, _)| (*l, *c)).collect();
    assert_eq!(places, [(5, 11), (6, 14), (7, 5)], "{problems:#?}");
    assert_eq!(
        err.to_string(),
        "t.kdl:5:11: there is no check named `nope` (and 2 more problems)"
    );
    let one = parse_str(&web("    vird 3\n"), "t.kdl").unwrap_err();
    assert_eq!(
        one.to_string(),
        "t.kdl:5:5: unknown setting `vird` in instance `web`"
    );
    assert!(!one.to_string().contains('\n'));
}

#[test]
fn renders_with_miette() {
    let err = parse_str(&web("    vird 3\n"), "t.kdl").unwrap_err();
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(200)
        .render_report(&mut out, &err)
        .expect("render");
    assert!(out.contains("t.kdl:5:5"), "{out}");
    assert!(out.contains("vird 3"), "{out}");
    assert!(out.contains("unknown name"), "{out}");
    assert!(out.contains("did you mean `vrid`?"), "{out}");
    assert_eq!(
        err.code().map(|c| c.to_string()).as_deref(),
        Some("upkeep::config::invalid")
    );
}

#[test]
fn load_reads_files_and_reports_io_errors() {
    let dir = std::env::temp_dir().join(format!("upkeep-parse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("ok.kdl");
    std::fs::write(&path, web("")).expect("write");
    assert_eq!(load(&path).expect("loads").instances.len(), 1);
    let missing = dir.join("missing.kdl");
    let err = load(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(
        err.to_string()
            .contains("missing.kdl: cannot read config file"),
        "{err}"
    );
    assert_eq!(err.problems().len(), 1);
    std::fs::write(&path, web("    vird 3\n")).expect("write");
    let err = load(&path).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:5:5: ", path.display())),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_over_the_size_bound_is_refused_before_parsing() {
    let dir = std::env::temp_dir().join(format!("upkeep-size-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("huge.kdl");
    // A sparse file: 16 MiB + 1 byte long, no disk used. Its text would be refused anyway (NUL
    // bytes), so only a refusal that names the bound shows that it was never parsed.
    let file = std::fs::File::create(&path).expect("create");
    file.set_len(MAX_CONFIG_BYTES + 1).expect("set_len");
    drop(file);
    let err = load(&path).unwrap_err();
    let msg = err.to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(msg.contains("huge.kdl"), "{msg}");
    assert!(msg.contains("16777217 bytes"), "{msg}");
    assert!(msg.contains("16 MiB"), "{msg}");
    assert!(
        matches!(
            err,
            ConfigError::TooLarge {
                size: 16_777_217,
                limit: MAX_CONFIG_BYTES,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.problems().len(), 1);
}

#[test]
fn a_file_that_grows_past_its_size_is_refused_at_the_bound() {
    // /dev/zero says it is 0 bytes long and never ends: the read itself must stop at the bound
    // (a file that grows between the size check and the read is the same case).
    let err = load(std::path::Path::new("/dev/zero")).unwrap_err();
    assert!(
        matches!(err, ConfigError::TooLarge { size, .. } if size > MAX_CONFIG_BYTES),
        "{err:?}"
    );
    assert!(err.to_string().contains("more than"), "{err}");
}

#[test]
fn use_vmac_is_read_and_its_mistakes_located() {
    let cfg = parse_str(&web("    use-vmac\n"), "t.kdl").unwrap();
    let v = cfg.instances[0].vmac.clone().unwrap();
    assert_eq!((v.name.as_str(), v.xmit_base), ("vrrp.51", false));
    let cfg = parse_str(&web("    use-vmac \"vip51\" xmit-base=#true\n"), "t.kdl").unwrap();
    let v = cfg.instances[0].vmac.clone().unwrap();
    assert_eq!((v.name.as_str(), v.xmit_base), ("vip51", true));
    problem_at(
        &web("    use-vmac \"eth0\"\n"),
        5,
        5,
        "names its own interface",
    );
    problem_at(
        &web("    use-vmac \"a-name-far-too-long\"\n"),
        5,
        14,
        "not a valid interface name",
    );
    problem_at(
        &web("    use-vmac \"a\" \"b\"\n"),
        5,
        18,
        "at most one name",
    );
    problem_at(&web("    use-vmac xmit-base=1\n"), 5, 14, "");
}
