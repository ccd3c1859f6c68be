//! keepalived's VRRP keywords beyond the election, as the kernel shows them on the master and
//! not on the backup: VIP options (label, scope, brd, nodad, preferred_lft), route options
//! (src, table, metric, type, multipath), policy rules (`virtual_rules`).
//!
//! Run alone: `cargo build -p upkeep && cargo test -p upkeep-tests --test keywords`

use anyhow::{ensure, Result};
use upkeep_tests::{lab_test, secs, upkeep_config, Instance, Lab, SIGTERM};

const VIP: &str = "192.0.2.100";

/// `web` (100 ms adverts) with these extra lines.
fn web(priority: u8, extra: &[&str]) -> Instance {
    let mut i = Instance::web(priority);
    i.extra_kdl = extra.iter().map(|l| l.to_string()).collect();
    i
}

/// The line of `ip -d -o addr show dev eth0` on host i for `addr/len`, if there is one.
fn addr_line(lab: &Lab, i: usize, cidr: &str) -> Option<String> {
    let out = lab
        .ip(
            &lab.host_ns(i),
            &["-d", "-o", "addr", "show", "dev", "eth0"],
        )
        .ok()?;
    let needle = format!(" {cidr} ");
    out.lines().find(|l| l.contains(&needle)).map(str::to_owned)
}

/// Every word of `want` is in `line`, in order.
fn shows(line: &str, want: &[&str]) -> bool {
    let mut rest = line;
    for w in want {
        match rest.find(w) {
            Some(at) => rest = &rest[at + w.len()..],
            None => return false,
        }
    }
    true
}

const VIP_OPTIONS: &[&str] = &[
    r#"vip "198.51.100.101/24" label="eth0:web" scope="link" brd="198.51.100.127" preferred-lft=0"#,
    r#"vip "2001:db8::101/64" advertise=#false preferred-lft=0"#,
    r#"vip "2001:db8::102/64" advertise=#false nodad=#false"#,
];

/// What `ip -d addr` must show for each VIP above on the host that holds them.
fn vip_options_shown(lab: &Lab, i: usize) -> Result<()> {
    let v4 = addr_line(lab, i, "198.51.100.101/24").unwrap_or_default();
    ensure!(
        // preferred_lft 0: deprecated (IPv4 shows the lifetime of a permanent address as forever).
        shows(
            &v4,
            &["brd 198.51.100.127", "scope link", "deprecated", "eth0:web"]
        ),
        "h{i}: 198.51.100.101 without its label, scope, brd and lifetime: {v4}"
    );
    let v6 = addr_line(lab, i, "2001:db8::101/64").unwrap_or_default();
    ensure!(
        shows(&v6, &["nodad", "deprecated", "preferred_lft 0sec"]),
        "h{i}: 2001:db8::101 is not nodad and deprecated: {v6}"
    );
    let dad = addr_line(lab, i, "2001:db8::102/64").unwrap_or_default();
    ensure!(
        !dad.is_empty() && !dad.contains("nodad"),
        "h{i}: 2001:db8::102 (nodad=#false) should run DAD: {dad:?}"
    );
    Ok(())
}

/// Waits for [`vip_options_shown`] on host i; its error if they never are.
fn wait_shown(lab: &Lab, i: usize) -> Result<()> {
    if upkeep_tests::wait_until("the VIP options", secs(5), || {
        vip_options_shown(lab, i).is_ok()
    })
    .is_err()
    {
        vip_options_shown(lab, i)?;
    }
    Ok(())
}

#[test]
fn vip_options_are_on_the_master_and_move_with_it() {
    lab_test(2, |lab| {
        let h1 = lab.start_upkeep(1, &upkeep_config("h1", &[web(100, VIP_OPTIONS)]))?;
        h1.wait_state("web", "master", secs(10))?;
        let h2 = lab.start_upkeep(2, &upkeep_config("h2", &[web(90, VIP_OPTIONS)]))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(10))?;
        lab.wait_holders(VIP, &[1], secs(5))?;
        wait_shown(lab, 1)?;
        ensure!(
            addr_line(lab, 2, "198.51.100.101/24").is_none(),
            "the backup holds 198.51.100.101"
        );

        // The master leaves: the backup adds the VIPs with the same options.
        h1.signal(SIGTERM)?;
        lab.wait_holders(VIP, &[2], secs(5))?;
        wait_shown(lab, 2)?;
        h1.wait_exit(secs(10))?;
        for cidr in ["198.51.100.101/24", "2001:db8::101/64", "2001:db8::102/64"] {
            ensure!(
                addr_line(lab, 1, cidr).is_none(),
                "h1 kept {cidr} after stopping"
            );
        }

        // A reload that changes one VIP's options re-adds that VIP with the new ones.
        let changed = [
            r#"vip "198.51.100.101/24" label="eth0:api" scope="global" preferred-lft="forever""#,
            VIP_OPTIONS[1],
            VIP_OPTIONS[2],
        ];
        let seq = h2.reload_seq()?;
        h2.write_config(&upkeep_config("h2", &[web(90, &changed)]))?;
        h2.wait_reload(seq, secs(5))?;
        upkeep_tests::wait_until("h2 shows the new label", secs(5), || {
            addr_line(lab, 2, "198.51.100.101/24")
                .is_some_and(|l| shows(&l, &["scope global", "eth0:api", "preferred_lft forever"]))
        })?;
        // The daemon's own re-add is not taken for someone else removing the VIP.
        std::thread::sleep(std::time::Duration::from_millis(500));
        ensure!(
            h2.counter("web", "vips_restored")? == 0,
            "the reload's own removal counted as a VIP removed by someone else: {}",
            h2.instance("web")?
        );
        Ok(())
    });
}

const ROUTES: &[&str] = &[
    r#"route "198.51.100.0/24" via="192.0.2.254" src="192.0.2.100" metric=7 table=100"#,
    r#"route "203.0.113.0/24" type="blackhole" table=100"#,
    r#"route "203.0.113.128/25" type="unreachable" metric=9"#,
    // A gateway outside every subnet of the link: the kernel takes it only as onlink.
    r#"route "198.18.0.0/15" via="203.0.113.1" onlink=#true table=100"#,
    r#"route "198.51.100.128/25" table=100 {
        nexthop via="192.0.2.253" weight=2
        nexthop via="192.0.2.252"
    }"#,
];

/// `ip route show table T` on host i.
fn table(lab: &Lab, i: usize, t: &str) -> String {
    lab.ip(&lab.host_ns(i), &["route", "show", "table", t])
        .unwrap_or_default()
}

/// What `ip route` must show for [`ROUTES`] on the host that holds them.
fn routes_shown(lab: &Lab, i: usize) -> Result<()> {
    let t100 = table(lab, i, "100");
    let main = table(lab, i, "main");
    let line = |text: &str, start: &str| {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or("")
            .to_owned()
    };
    let r1 = line(&t100, "198.51.100.0/24");
    ensure!(
        shows(&r1, &["via 192.0.2.254", "src 192.0.2.100", "metric 7"]),
        "h{i} table 100: no 198.51.100.0/24 via, src and metric:\n{t100}"
    );
    ensure!(
        shows(
            &line(&t100, "198.18.0.0/15"),
            &["via 203.0.113.1", "onlink"]
        ),
        "h{i} table 100: no onlink route:\n{t100}"
    );
    ensure!(
        !line(&t100, "blackhole 203.0.113.0/24").is_empty(),
        "h{i} table 100: no blackhole:\n{t100}"
    );
    ensure!(
        shows(&line(&main, "unreachable 203.0.113.128/25"), &["metric 9"]),
        "h{i} main table: no unreachable route:\n{main}"
    );
    ensure!(
        shows(
            &t100,
            &[
                "198.51.100.128/25",
                "nexthop via 192.0.2.253 dev eth0 weight 2",
                "nexthop via 192.0.2.252 dev eth0 weight 1"
            ]
        ),
        "h{i} table 100: no multipath route:\n{t100}"
    );
    Ok(())
}

#[test]
fn route_options_are_on_the_master_and_move_with_it() {
    lab_test(2, |lab| {
        let h1 = lab.start_upkeep(1, &upkeep_config("h1", &[web(100, ROUTES)]))?;
        h1.wait_state("web", "master", secs(10))?;
        let h2 = lab.start_upkeep(2, &upkeep_config("h2", &[web(90, ROUTES)]))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(10))?;
        lab.wait_holders(VIP, &[1], secs(5))?;
        if upkeep_tests::wait_until("h1's routes", secs(5), || routes_shown(lab, 1).is_ok())
            .is_err()
        {
            routes_shown(lab, 1)?;
        }
        ensure!(
            table(lab, 2, "100").trim().is_empty(),
            "the backup has routes in table 100:\n{}",
            table(lab, 2, "100")
        );

        h1.signal(SIGTERM)?;
        lab.wait_holders(VIP, &[2], secs(5))?;
        if upkeep_tests::wait_until("h2's routes", secs(5), || routes_shown(lab, 2).is_ok())
            .is_err()
        {
            routes_shown(lab, 2)?;
        }
        h1.wait_exit(secs(10))?;
        ensure!(
            table(lab, 1, "100").trim().is_empty()
                && !table(lab, 1, "main").contains("unreachable"),
            "h1 kept routes after stopping:\n{}{}",
            table(lab, 1, "100"),
            table(lab, 1, "main")
        );
        Ok(())
    });
}

const RULES: &[&str] = &[
    r#"route "198.51.100.0/24" via="192.0.2.254" table=100"#,
    r#"rule from="192.0.2.100" table=100 priority=100"#,
    r#"rule to="198.51.100.0/24" iif="eth0" fwmark=0x10 fwmask=0xff table=101 priority=101"#,
];

/// `ip rule show` on host i.
fn rules(lab: &Lab, i: usize) -> String {
    lab.ip(&lab.host_ns(i), &["rule", "show"])
        .unwrap_or_default()
}

const RULE_100: &str = "100:\tfrom 192.0.2.100 lookup 100";
const RULE_101: &str = "101:\tfrom all to 198.51.100.0/24 fwmark 0x10/0xff iif eth0 lookup 101";

fn has_rules(lab: &Lab, i: usize) -> bool {
    let r = rules(lab, i);
    r.lines().any(|l| l.trim_end() == RULE_100) && r.lines().any(|l| l.trim_end() == RULE_101)
}

fn no_rules(lab: &Lab, i: usize) -> bool {
    let r = rules(lab, i);
    !r.contains("lookup 100") && !r.contains("lookup 101")
}

/// `ip monitor rule` in host i's namespace, written to a file until killed.
struct RuleMonitor {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl RuleMonitor {
    fn start(lab: &Lab, i: usize) -> Result<RuleMonitor> {
        let out = lab.dir().join(format!("h{i}.rule-monitor"));
        let file = std::fs::File::create(&out)?;
        let child = std::process::Command::new("ip")
            .args(["-n", &lab.host_ns(i), "monitor", "rule"])
            .stdout(file)
            .spawn()?;
        // Let it subscribe before anything happens.
        std::thread::sleep(std::time::Duration::from_millis(300));
        Ok(RuleMonitor { child, out })
    }

    fn seen(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for RuleMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn rules_are_on_the_master_only_and_a_reload_touches_only_the_changed_one() {
    lab_test(2, |lab| {
        let conf =
            |i: usize, p: u8, extra: &[&str]| upkeep_config(&format!("h{i}"), &[web(p, extra)]);
        let h1 = lab.start_upkeep(1, &conf(1, 100, RULES))?;
        h1.wait_state("web", "master", secs(10))?;
        let h2 = lab.start_upkeep(2, &conf(2, 90, RULES))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(10))?;
        upkeep_tests::wait_until("h1 has the rules", secs(5), || has_rules(lab, 1))
            .map_err(|e| e.context(rules(lab, 1)))?;
        ensure!(
            no_rules(lab, 2),
            "the backup has the rules:\n{}",
            rules(lab, 2)
        );

        // h1 stops: h2 takes over with the rules. h1 comes back and preempts: h2, now
        // BACKUP, lets go of them.
        h1.signal(SIGTERM)?;
        h1.wait_exit(secs(10))?;
        h2.wait_state("web", "master", secs(5))?;
        upkeep_tests::wait_until("h2 has the rules", secs(5), || has_rules(lab, 2))
            .map_err(|e| e.context(rules(lab, 2)))?;
        ensure!(
            no_rules(lab, 1),
            "stopped h1 kept its rules:\n{}",
            rules(lab, 1)
        );
        let h1 = lab.start_upkeep(1, &conf(1, 100, RULES))?;
        h1.wait_state("web", "master", secs(10))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(5))?;
        upkeep_tests::wait_until("only h1 has the rules", secs(5), || {
            has_rules(lab, 1) && no_rules(lab, 2)
        })
        .map_err(|e| e.context(format!("h1:\n{}h2:\n{}", rules(lab, 1), rules(lab, 2))))?;

        // A reload that changes one rule replaces that one; the other is not touched.
        let mon = RuleMonitor::start(lab, 1)?;
        let changed = [
            RULES[0],
            RULES[1],
            &RULES[2].replace("table=101", "table=102"),
        ];
        let seq = h1.reload_seq()?;
        h1.write_config(&conf(1, 100, &changed))?;
        h1.wait_reload(seq, secs(5))?;
        upkeep_tests::wait_until("the changed rule in place", secs(5), || {
            rules(lab, 1).contains("lookup 102")
        })?;
        std::thread::sleep(std::time::Duration::from_millis(300));
        let seen = mon.seen();
        ensure!(
            seen.contains("Deleted 101:") && seen.contains("lookup 102") && !seen.contains("100:"),
            "rule events on h1 during the reload:\n{seen}"
        );
        ensure!(
            rules(lab, 1).lines().any(|l| l.trim_end() == RULE_100)
                && !rules(lab, 1).contains("lookup 101"),
            "h1 after the reload:\n{}",
            rules(lab, 1)
        );
        Ok(())
    });
}

/// `nft list table inet upkeep` on host i (None: no such table).
fn upkeep_table(lab: &Lab, i: usize) -> Option<String> {
    let out = lab
        .exec(&lab.host_ns(i), &["nft", "list", "table", "inet", "upkeep"])
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_master_without_accept_holds_the_vip_but_drops_traffic_to_it() {
    lab_test(2, |lab| {
        const VIP6: &str = "2001:db8::100";
        let extra = [r#"vip "2001:db8::100/64" advertise=#false"#];
        let mut h1_web = web(100, &extra);
        h1_web.extra_kdl.push("accept #false".into());
        let h1 = lab.start_upkeep(1, &upkeep_config("h1", &[h1_web]))?;
        h1.wait_state("web", "master", secs(10))?;
        let h2 = lab.start_upkeep(2, &upkeep_config("h2", &[web(90, &extra)]))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(10))?;
        lab.wait_holders(VIP, &[1], secs(5))?;

        // The master holds both VIPs and has them in its drop sets.
        let table = upkeep_table(lab, 1).unwrap_or_default();
        ensure!(
            table.contains("192.0.2.100") && table.contains("2001:db8::100"),
            "h1's nftables table:\n{table}"
        );
        // Pings to the VIPs go unanswered, yet reach h1: the client's ARP and ND entries
        // point at it (ARP is not IP; neighbour solicitations are let through).
        let answered: Vec<bool> = (0..3)
            .flat_map(|_| [lab.client_ping(VIP), lab.client_ping(VIP6)])
            .collect();
        ensure!(
            answered.iter().all(|a| !a),
            "pings of the VIPs answered: {answered:?}"
        );
        for addr in [VIP, VIP6] {
            let (host, state) = lab.client_neighbour(addr);
            ensure!(
                host == Some(1),
                "the client's neighbour entry for {addr}: {host:?} {state}"
            );
        }
        // The election is not disturbed: h2 still follows h1.
        ensure!(h2.state("web")? == "backup", "h2 left backup");
        ensure!(upkeep_table(lab, 2).is_none(), "h2 (accept) made a table");

        // h1 stops: its table goes with it; h2 (accepting) answers.
        h1.signal(SIGTERM)?;
        h1.wait_exit(secs(10))?;
        lab.wait_holders(VIP, &[2], secs(5))?;
        ensure!(upkeep_table(lab, 1).is_none(), "h1 left its nftables table");
        lab.wait_client_ping(VIP, secs(5))?;
        lab.wait_client_ping(VIP6, secs(5))?;

        // h1 back with accept: it preempts and answers; a reload to `accept #false` drops
        // the VIP's traffic again, with no transition.
        let h1 = lab.start_upkeep(1, &upkeep_config("h1", &[web(100, &extra)]))?;
        h1.wait_state("web", "master", secs(10))?;
        lab.wait_holders(VIP, &[1], secs(5))?;
        lab.wait_client_ping(VIP, secs(5))?;
        let transitions = h1.counter("web", "transitions")?;
        let mut no_accept = web(100, &extra);
        no_accept.extra_kdl.push("accept #false".into());
        let seq = h1.reload_seq()?;
        h1.write_config(&upkeep_config("h1", &[no_accept]))?;
        h1.wait_reload(seq, secs(5))?;
        upkeep_tests::wait_until("pings of the VIP dropped after the reload", secs(5), || {
            !lab.client_ping(VIP)
        })?;
        ensure!(
            h1.counter("web", "transitions")? == transitions,
            "the reload caused a transition"
        );
        Ok(())
    });
}

/// A master killed with SIGKILL: its VIP guard takes the rules off before the routes and the
/// addresses, and deletes the nftables table of `accept #false`, so nothing of the instance is
/// left on the host.
#[test]
fn a_killed_master_leaves_no_rule_route_or_vip_behind() {
    lab_test(1, |lab| {
        let mut lines: Vec<&str> = RULES.to_vec();
        lines.extend_from_slice(VIP_OPTIONS);
        lines.push("accept #false");
        let h1 = lab.start_upkeep(1, &upkeep_config("h1", &[web(100, &lines)]))?;
        h1.wait_state("web", "master", secs(10))?;
        upkeep_tests::wait_until("h1 has the rules", secs(5), || has_rules(lab, 1))?;
        ensure!(
            table(lab, 1, "100").contains("198.51.100.0/24"),
            "no route in table 100"
        );
        ensure!(upkeep_table(lab, 1).is_some(), "no nftables table");
        let kill = std::process::Command::new("kill")
            .args(["-KILL", &h1.pid().to_string()])
            .status()?;
        ensure!(kill.success(), "kill -KILL {}", h1.pid());
        h1.wait_exit(secs(2))?;
        upkeep_tests::wait_until("the guard cleaned up", secs(3), || {
            no_rules(lab, 1)
                && table(lab, 1, "100").trim().is_empty()
                && !lab.has_addr(1, VIP)
                && addr_line(lab, 1, "198.51.100.101/24").is_none()
                && upkeep_table(lab, 1).is_none()
        })
        .map_err(|e| {
            e.context(format!(
                "rules:\n{}table 100:\n{}",
                rules(lab, 1),
                table(lab, 1, "100")
            ))
        })?;
        Ok(())
    });
}

/// The same for an IPv6 instance: its routes and rules on the master only (the fwmark rule has
/// no address, and is IPv6 as the instance is).
#[test]
fn ipv6_routes_and_rules_follow_the_master() {
    lab_test(2, |lab| {
        let web6 = |prio| {
            let mut i = Instance::new("web6", 52, prio)
                .interval_ms(100)
                .vip("2001:db8::100/64");
            i.extra_kdl = [
                r#"route "2001:db8:1::/64" via="2001:db8::fe" metric=3 table=200"#,
                r#"route "2001:db8:2::/64" type="prohibit" table=200"#,
                r#"rule from="2001:db8::100" table=200 priority=200"#,
                r#"rule fwmark=7 table=200 priority=201"#,
            ]
            .iter()
            .map(|l| l.to_string())
            .collect();
            i
        };
        let shown = |i: usize| -> Result<()> {
            let ns = lab.host_ns(i);
            let routes = lab.ip(&ns, &["-6", "route", "show", "table", "200"])?;
            let rules = lab.ip(&ns, &["-6", "rule", "show"])?;
            ensure!(
                shows(&routes, &["2001:db8:1::/64 via 2001:db8::fe", "metric 3"])
                    && routes.contains("prohibit 2001:db8:2::/64"),
                "h{i} table 200:\n{routes}"
            );
            ensure!(
                rules.contains("200:\tfrom 2001:db8::100 lookup 200")
                    && rules.contains("201:\tfrom all fwmark 0x7 lookup 200"),
                "h{i} IPv6 rules:\n{rules}"
            );
            Ok(())
        };
        let none = |i: usize| {
            let ns = lab.host_ns(i);
            lab.ip(&ns, &["-6", "route", "show", "table", "200"])
                .unwrap_or_default()
                .trim()
                .is_empty()
                && !lab
                    .ip(&ns, &["-6", "rule", "show"])
                    .unwrap_or_default()
                    .contains("lookup 200")
        };
        let h1 = lab.start_instance(1, &web6(100))?;
        h1.wait_state("web6", "master", secs(10))?;
        let h2 = lab.start_instance(2, &web6(90))?;
        h2.wait_backup_of("web6", "fe80::1", secs(10))?;
        if upkeep_tests::wait_until("h1's IPv6 routes and rules", secs(5), || shown(1).is_ok())
            .is_err()
        {
            shown(1)?;
        }
        ensure!(none(2), "the backup has IPv6 routes or rules in table 200");
        h1.signal(SIGTERM)?;
        h2.wait_state("web6", "master", secs(5))?;
        if upkeep_tests::wait_until("h2's IPv6 routes and rules", secs(5), || shown(2).is_ok())
            .is_err()
        {
            shown(2)?;
        }
        h1.wait_exit(secs(10))?;
        ensure!(none(1), "stopped h1 kept IPv6 routes or rules");
        Ok(())
    });
}
