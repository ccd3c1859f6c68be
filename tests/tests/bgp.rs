//! The service address announced over BGP by BIRD, driven by upkeep's checks (issue 17).
//!
//! h1 runs BIRD (AS 65001) with upkeep's include file and an eBGP session to h2, the upstream
//! router: BIRD again (AS 65000), which puts what it learns into h2's kernel table. upkeep on h1
//! announces 203.0.113.10/32 while a `listener` check on port 80 is healthy. What is asserted
//! is what the upstream router has (the route in its BGP table and its kernel, via h1) and
//! whether a client that goes through it reaches the address (held on h1's `lo`). One test has
//! FRR (zebra + bgpd) as the upstream instead, as in the issue's lab.
//!
//! Run alone: `cargo build -p upkeep && cargo test -p upkeep-tests --test bgp`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use upkeep_tests::bird::{bird_available, Bird};
use upkeep_tests::frr::{frr_available, Frr};
use upkeep_tests::{
    lab_test, ms, secs, upkeep_config, wait_for, wait_for_elapsed, Instance, Lab, SIGKILL, SIGTERM,
};

/// These tests need BIRD (and FRR for the FRR upstream), as scripts/install-deps.sh installs
/// them: a machine without them fails here rather than passing tests that ran nothing.
fn require_routing_daemons(frr: bool) {
    assert!(
        bird_available(),
        "bird2 is not installed: run scripts/install-deps.sh (it installs bird2 and frr)"
    );
    assert!(
        !frr || frr_available(),
        "frr is not installed: run scripts/install-deps.sh (it installs bird2 and frr)"
    );
}

const PREFIX: &str = "203.0.113.10/32";
const ADDR: &str = "203.0.113.10";

/// Fast BGP timers, so the session is up within a few seconds of both daemons starting.
const TIMERS: &str = "hold time 3; keepalive time 1; connect retry time 1; connect delay time 1; error wait time 1, 2;";

fn edge_conf(lab: &Lab, include: &str) -> String {
    format!(
        r#"router id 192.0.2.1;
log "{dir}/h1-bird.log" all;
protocol device {{ scan time 1; }}
include "{include}";
protocol bgp upstream {{
    local 192.0.2.1 as 65001;
    neighbor 192.0.2.2 as 65000;
    {TIMERS}
    ipv4 {{ import none; export where proto ~ "upkeep_*"; }};
}}
"#,
        dir = lab.dir().display()
    )
}

fn upstream_conf(lab: &Lab) -> String {
    format!(
        r#"router id 192.0.2.2;
log "{dir}/h2-bird.log" all;
protocol device {{ scan time 1; }}
protocol kernel {{ ipv4 {{ import none; export all; }}; }}
protocol bgp h1 {{
    local 192.0.2.2 as 65000;
    neighbor 192.0.2.1 as 65001;
    {TIMERS}
    ipv4 {{ import all; export none; }};
}}
"#,
        dir = lab.dir().display()
    )
}

/// What the upstream router has for `addr`/32: (in BGP via h1, in its kernel via h1).
fn upstream_has(lab: &Lab, up: &Bird, addr: &str) -> (bool, bool) {
    let prefix = format!("{addr}/32");
    let bgp = up.route(&prefix);
    let in_bgp = bgp.contains(&prefix) && bgp.contains("via 192.0.2.1");
    let kernel = lab.routes(2);
    let in_kernel = kernel
        .lines()
        .any(|l| l.starts_with(&format!("{addr} via 192.0.2.1")));
    (in_bgp, in_kernel)
}

fn upstream_view(lab: &Lab, up: &Bird) -> (bool, bool) {
    upstream_has(lab, up, ADDR)
}

fn wait_upstream(
    lab: &Lab,
    up: &Bird,
    want: bool,
    what: &str,
    bound: Duration,
) -> Result<Duration> {
    wait_for_elapsed(
        what,
        bound,
        || upstream_view(lab, up),
        |v| *v == (want, want),
    )
}

/// upkeep's config on h1: `announces` (name, address) through BIRD, each tracking port 80.
fn upkeep_kdl(edge: &Bird, include: &Path, announces: &[(&str, &str)]) -> String {
    let mut kdl = format!(
        r#"global {{
    metrics listen="127.0.0.1:9650"
}}
check "port80" {{
    listener 80
    interval "500ms"
}}
speaker "edge" {{
    daemon "bird"
    control "{sock}"
    include "{include}"
    timeout "2s"
}}
"#,
        sock = edge.sock.display(),
        include = include.display()
    );
    for (name, addr) in announces {
        kdl.push_str(&format!(
            "announce \"{name}\" {{\n    speaker \"edge\"\n    prefix \"{addr}/32\"\n    track \"port80\"\n}}\n"
        ));
    }
    kdl
}

/// Both BIRDs running, h1's with an empty include file (BIRD reads it at start; upkeep
/// rewrites it): (upstream, edge, the include file).
fn routers(lab: &Lab) -> Result<(Bird, Bird, PathBuf)> {
    let include = lab.write_file("h1-announce.conf", "")?;
    let up = Bird::start(lab, 2, "h2-bird", &upstream_conf(lab))?;
    let edge = Bird::start(
        lab,
        1,
        "h1-bird",
        &edge_conf(lab, &include.to_string_lossy()),
    )?;
    Ok((up, edge, include))
}

/// The client sends traffic for the address to h2 (the upstream router), which forwards it
/// by its BGP route (no ICMP redirects, so the client keeps going through h2); h1 holds the
/// address on `lo`, as an anycast host does.
fn client_through_upstream(lab: &Lab) -> Result<()> {
    lab.ip(&lab.host_ns(1), &["addr", "add", PREFIX, "dev", "lo"])?;
    let out = lab.exec(
        &lab.host_ns(2),
        &[
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.send_redirects=0",
            "net.ipv4.conf.eth0.send_redirects=0",
        ],
    )?;
    ensure!(
        out.status.success(),
        "sysctl on h2: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lab.ip(
        &lab.client_ns(),
        &["route", "add", PREFIX, "via", "192.0.2.2"],
    )?;
    Ok(())
}

/// The `upkeep_announce_state` series of h1's metrics that are 1.
fn metric_states(lab: &Lab) -> Vec<String> {
    let out = lab.exec(
        &lab.host_ns(1),
        &[
            "python3",
            "-c",
            "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9650/metrics',timeout=5).read().decode())",
        ],
    );
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("upkeep_announce_state{") && l.ends_with("} 1"))
        .map(str::to_owned)
        .collect()
}

fn announce_state(lab: &Lab) -> String {
    lab.upkeep_status(1)
        .ok()
        .and_then(|s| s["announcements"][0]["state"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Announced while the check is healthy, withdrawn when the listener closes, back when a new
/// one listens; BIRD's own `configure` and a BIRD restart keep upkeep's state; upkeep's stop
/// withdraws it.
#[test]
fn bird_announces_the_address_while_its_check_is_healthy() {
    require_routing_daemons(false);
    lab_test(2, |lab| {
        let (up, edge, include) = routers(lab)?;
        let server = lab.listen_tcp(1, 80)?;
        let kdl = upkeep_kdl(&edge, &include, &[("web", ADDR)]);
        let (_, out) = lab.upkeep_check(&kdl)?;
        ensure!(
            out.status.success(),
            "upkeep check: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let h1 = lab.start_upkeep(1, &kdl)?;

        // The session comes up and the route arrives (the session's start bounds this).
        let took = wait_upstream(lab, &up, true, "the route at the upstream", secs(20))?;
        eprintln!(
            "announced: the upstream has the route after {took:?} (BGP session start included)"
        );
        wait_for(
            "status: announced",
            secs(3),
            || announce_state(lab),
            |s| s == "announced",
        )?;
        let text =
            lab.upkeep_cli(&["status", "--state-dir", &lab.state_dir(1).to_string_lossy()])?;
        let text = String::from_utf8_lossy(&text.stdout).into_owned();
        ensure!(
            text.lines()
                .any(|l| l.starts_with("web") && l.contains(PREFIX) && l.contains("announced")),
            "upkeep status: {text}"
        );

        // A client that reaches the address through the upstream router: h2 forwards by the
        // route it learnt, h1 holds the address on `lo`.
        client_through_upstream(lab)?;
        lab.wait_client_ping(ADDR, secs(5))?;

        // The service stops listening: withdrawn (the close is heard at once).
        drop(server);
        let took = wait_upstream(lab, &up, false, "the route withdrawn", secs(5))?;
        eprintln!("listener closed: the upstream lost the route after {took:?}");
        ensure!(
            !lab.client_ping(ADDR),
            "the client still reaches h1 through the upstream"
        );
        wait_for(
            "status: withdrawn",
            secs(3),
            || announce_state(lab),
            |s| s == "withdrawn",
        )?;
        wait_for(
            "metrics: withdrawn",
            secs(3),
            || metric_states(lab),
            |m| {
                m.len() == 1
                    && m[0].contains(
                        r#"announce="web",speaker="edge",prefix="203.0.113.10/32",state="withdrawn""#,
                    )
            },
        )?;

        // It listens again: seen at the next poll (500 ms), announced again.
        let server = lab.listen_tcp(1, 80)?;
        let took = wait_upstream(lab, &up, true, "the route back", secs(5))?;
        eprintln!("listener back: the upstream has the route again after {took:?}");
        lab.wait_client_ping(ADDR, secs(5))?;

        // The operator reloads BIRD's config: the file holds upkeep's state, nothing flaps.
        edge.birdc(&["configure"])?;
        let t0 = Instant::now();
        while t0.elapsed() < secs(2) {
            ensure!(
                upstream_view(lab, &up) == (true, true),
                "the route went away after `birdc configure`"
            );
            std::thread::sleep(ms(100));
        }

        // BIRD crashes and comes back: the session and the route come back without upkeep
        // doing anything but reconnecting.
        edge.kill();
        wait_upstream(lab, &up, false, "the route gone with h1's BIRD", secs(10))?;
        // upkeep notices at its next probe (every 5 s) and says so.
        let st = wait_for(
            "status: unreachable",
            secs(10),
            || {
                let s = lab.upkeep_status(1).ok();
                s.map(|s| s["announcements"][0].clone()).unwrap_or_default()
            },
            |a| a["state"] == "unreachable",
        )?;
        ensure!(
            st["error"]
                .as_str()
                .is_some_and(|e| e.contains("h1-bird.ctl")),
            "the error names the control socket: {st}"
        );
        edge.restart()?;
        let took = wait_upstream(lab, &up, true, "the route after BIRD's restart", secs(20))?;
        eprintln!("BIRD restarted: the upstream has the route again after {took:?}");
        // While the check fails, the restarted BIRD is told to withdraw.
        drop(server);
        let took = wait_upstream(
            lab,
            &up,
            false,
            "withdrawn through the new connection",
            secs(10),
        )?;
        eprintln!("after the restart, listener closed: withdrawn after {took:?}");
        let _server = lab.listen_tcp(1, 80)?;
        wait_upstream(lab, &up, true, "announced again", secs(5))?;

        // upkeep stops: no one checks the service any more, it is withdrawn.
        h1.signal(SIGTERM)?;
        h1.wait_exit(secs(10))?;
        let took = wait_upstream(lab, &up, false, "withdrawn at upkeep's stop", secs(5))?;
        eprintln!("upkeep stopped: withdrawn after {took:?}");
        Ok(())
    });
}

/// A reload that replaces one announcement by another: the upstream loses the old prefix and
/// gets the new one, with no restart of upkeep or BIRD; one that removes the speaker withdraws
/// what it announced, and one that brings it back announces again. Then upkeep is killed: its
/// VIP guard withdraws the announcement.
#[test]
fn a_reload_replaces_an_announcement() {
    require_routing_daemons(false);
    lab_test(2, |lab| {
        let (up, edge, include) = routers(lab)?;
        let _server = lab.listen_tcp(1, 80)?;
        let h1 = lab.start_upkeep(1, &upkeep_kdl(&edge, &include, &[("web", ADDR)]))?;
        wait_upstream(lab, &up, true, "web announced", secs(20))?;

        const API: &str = "203.0.113.11";
        lab.write_file("h1.kdl", &upkeep_kdl(&edge, &include, &[("api", API)]))?;
        let out = h1.reload_cli()?;
        ensure!(
            out.status.success(),
            "upkeep reload: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let took = wait_for_elapsed(
            "api announced and web withdrawn",
            secs(5),
            || (upstream_has(lab, &up, API), upstream_view(lab, &up)),
            |v| *v == ((true, true), (false, false)),
        )?;
        eprintln!(
            "reload: the upstream moved from web to api after {:?}",
            took
        );
        let st = lab.upkeep_status(1)?;
        let a = &st["announcements"];
        ensure!(
            a.as_array().map(Vec::len) == Some(1)
                && a[0]["name"] == "api"
                && a[0]["state"] == "announced",
            "status: {a}"
        );

        // The speaker goes from the config with its announcements: what it announced goes.
        let seq = h1.reload_seq()?;
        lab.write_file("h1.kdl", "check \"port80\" { listener 80; }\n")?;
        h1.wait_reload(seq, secs(5))?;
        let took = wait_for_elapsed(
            "api withdrawn with its speaker",
            secs(5),
            || upstream_has(lab, &up, API),
            |v| *v == (false, false),
        )?;
        eprintln!("reload without the speaker: api withdrawn after {:?}", took);
        let seq = h1.reload_seq()?;
        lab.write_file("h1.kdl", &upkeep_kdl(&edge, &include, &[("api", API)]))?;
        h1.wait_reload(seq, secs(5))?;
        wait_for(
            "api back with its speaker",
            secs(5),
            || upstream_has(lab, &up, API),
            |v| *v == (true, true),
        )?;

        // upkeep is SIGKILLed (its process group; the VIP guard has its own): no one checks
        // the service any more, and the guard withdraws what upkeep announced.
        h1.signal(SIGKILL)?;
        let took = wait_for_elapsed(
            "api withdrawn after upkeep's death",
            secs(5),
            || upstream_has(lab, &up, API),
            |v| *v == (false, false),
        )?;
        eprintln!("upkeep killed: the guard withdrew api after {:?}", took);
        ensure!(
            std::fs::read_to_string(&include)?.contains("disabled yes;"),
            "the include file says withdrawn, so BIRD's next configure keeps it so"
        );
        Ok(())
    });
}

/// FRR (zebra + bgpd) as the upstream router, as in the issue's lab: it learns the route from
/// h1's BIRD while the check is healthy and puts it in its kernel, loses it when the listener
/// closes, gets it back.
#[test]
fn an_frr_upstream_learns_and_loses_the_route() {
    require_routing_daemons(true);
    lab_test(2, |lab| {
        let include = lab.write_file("h1-announce.conf", "")?;
        let up = Frr::start(
            lab,
            2,
            "h2-frr",
            "frr defaults traditional\n\
             hostname upstream\n\
             router bgp 65000\n bgp router-id 192.0.2.2\n no bgp ebgp-requires-policy\n\
             \x20neighbor 192.0.2.1 remote-as 65001\n neighbor 192.0.2.1 timers 1 3\n\
             \x20neighbor 192.0.2.1 timers connect 1\n\
             \x20address-family ipv4 unicast\n  neighbor 192.0.2.1 activate\n exit-address-family\n",
        )?;
        let edge = Bird::start(
            lab,
            1,
            "h1-bird",
            &edge_conf(lab, &include.to_string_lossy()),
        )?;
        let server = lab.listen_tcp(1, 80)?;
        let _h1 = lab.start_upkeep(1, &upkeep_kdl(&edge, &include, &[("web", ADDR)]))?;
        let view = || {
            let bgp = up
                .vtysh(&format!("show bgp ipv4 unicast {PREFIX}"))
                .unwrap_or_default();
            let in_bgp = bgp.contains("192.0.2.1 from 192.0.2.1");
            // zebra writes `203.0.113.10 nhid N via 192.0.2.1 dev eth0 proto bgp ...`.
            let in_kernel = lab
                .routes(2)
                .lines()
                .any(|l| l.starts_with(&format!("{ADDR} ")) && l.contains(" via 192.0.2.1 "));
            (in_bgp, in_kernel)
        };
        let took = wait_for_elapsed("FRR has the route", secs(30), view, |v| *v == (true, true))?;
        eprintln!(
            "FRR upstream: the route after {:?} (session start included)",
            took
        );
        drop(server);
        let took = wait_for_elapsed("FRR lost the route", secs(5), view, |v| {
            *v == (false, false)
        })?;
        eprintln!(
            "FRR upstream: withdrawn {:?} after the listener closed",
            took
        );
        let _server = lab.listen_tcp(1, 80)?;
        let took = wait_for_elapsed("FRR has the route again", secs(5), view, |v| {
            *v == (true, true)
        })?;
        eprintln!("FRR upstream: back after {:?}", took);
        Ok(())
    });
}

/// BIRD on host i (AS 65001) peering with the upstream on h3, with upkeep's include file.
fn rack_edge_conf(lab: &Lab, i: usize, include: &Path) -> String {
    format!(
        r#"router id 192.0.2.{i};
log "{dir}/h{i}-bird.log" all;
protocol device {{ scan time 1; }}
include "{include}";
protocol bgp upstream {{
    local 192.0.2.{i} as 65001;
    neighbor 192.0.2.3 as 65000;
    {TIMERS}
    ipv4 {{ import none; export where proto ~ "upkeep_*"; }};
}}
"#,
        dir = lab.dir().display(),
        include = include.display()
    )
}

/// The next hops the upstream (BIRD on h3) has for the prefix, sorted.
fn upstream_vias(up: &Bird) -> Vec<String> {
    let mut vias: Vec<String> = up
        .route(PREFIX)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("via "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    vias.sort();
    vias
}

/// VRRP inside the rack, BGP toward the core: two hosts run one instance, and each announces
/// the service address only while it holds the instance's VIPs. The upstream has one path, via
/// the master; when the master stops, the path moves to the new master.
#[test]
fn an_announcement_follows_the_vrrp_master() {
    require_routing_daemons(false);
    lab_test(3, |lab| {
        let up = Bird::start(
            lab,
            3,
            "h3-bird",
            &format!(
                r#"router id 192.0.2.3;
log "{dir}/h3-bird.log" all;
protocol device {{ scan time 1; }}
protocol bgp h1 {{ local 192.0.2.3 as 65000; neighbor 192.0.2.1 as 65001; {TIMERS} ipv4 {{ import all; export none; }}; }}
protocol bgp h2 {{ local 192.0.2.3 as 65000; neighbor 192.0.2.2 as 65001; {TIMERS} ipv4 {{ import all; export none; }}; }}
"#,
                dir = lab.dir().display()
            ),
        )?;
        let mut daemons = Vec::new();
        let mut birds = Vec::new();
        for (i, prio) in [(1, 100), (2, 90)] {
            let include = lab.write_file(&format!("h{i}-announce.conf"), "")?;
            let bird = Bird::start(
                lab,
                i,
                &format!("h{i}-bird"),
                &rack_edge_conf(lab, i, &include),
            )?;
            let kdl = format!(
                "{}speaker \"edge\" {{\n    daemon \"bird\"\n    control \"{}\"\n    include \"{}\"\n}}\n\
                 announce \"web\" {{\n    speaker \"edge\"\n    prefix \"{PREFIX}\"\n    instance \"web\"\n}}\n",
                upkeep_config(&format!("h{i}"), &[Instance::web(prio)]),
                bird.sock.display(),
                include.display()
            );
            daemons.push(lab.start_upkeep(i, &kdl)?);
            birds.push(bird);
        }
        let took = wait_for_elapsed(
            "one path, via h1",
            secs(20),
            || upstream_vias(&up),
            |v| v == &["192.0.2.1"],
        )?;
        eprintln!(
            "rack: the upstream has one path, via the master h1, after {:?}",
            took
        );
        lab.expect_holders_stable("192.0.2.100", &[1], secs(1))?;
        // h2's session is up: its path is missing because it does not announce.
        wait_for(
            "h2's session established",
            secs(10),
            || {
                birds[1]
                    .birdc(&["show", "protocols", "upstream"])
                    .unwrap_or_default()
            },
            |s| s.contains("Established"),
        )?;
        let t0 = Instant::now();
        while t0.elapsed() < secs(2) {
            let vias = upstream_vias(&up);
            ensure!(
                vias == ["192.0.2.1"],
                "the backup h2 announces too: {vias:?}"
            );
            std::thread::sleep(ms(100));
        }

        daemons[0].signal(SIGTERM)?;
        let took = wait_for_elapsed(
            "one path, via h2",
            secs(10),
            || upstream_vias(&up),
            |v| v == &["192.0.2.2"],
        )?;
        eprintln!("rack: h1 stopped, the path moved to h2 after {:?}", took);
        lab.wait_holders("192.0.2.100", &[2], secs(5))?;
        Ok(())
    });
}

/// The upstream on h3 for two edge hosts, writing its best path into h3's kernel.
fn rack_upstream_conf(lab: &Lab) -> String {
    format!(
        r#"router id 192.0.2.3;
log "{dir}/h3-bird.log" all;
protocol device {{ scan time 1; }}
protocol kernel {{ ipv4 {{ import none; export all; }}; }}
protocol bgp h1 {{ local 192.0.2.3 as 65000; neighbor 192.0.2.1 as 65001; {TIMERS} ipv4 {{ import all; export none; }}; }}
protocol bgp h2 {{ local 192.0.2.3 as 65000; neighbor 192.0.2.2 as 65001; {TIMERS} ipv4 {{ import all; export none; }}; }}
"#,
        dir = lab.dir().display()
    )
}

/// The next hop of h3's kernel route to the address, if any.
fn upstream_kernel_via(lab: &Lab) -> Option<String> {
    lab.routes(3)
        .lines()
        .find(|l| l.starts_with(&format!("{ADDR} ")))
        .and_then(|l| l.split(" via ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .map(str::to_owned)
}

/// Active and backup by MED, without VRRP: both hosts announce while healthy, h2 with the
/// lower MED, so the upstream sends the traffic to h2 (without MEDs its tie-break, the lower
/// router id, would pick h1); h2's check fails, its path goes and the traffic goes to h1; h2
/// recovers and takes it back.
#[test]
fn med_makes_one_host_active_and_the_other_backup() {
    require_routing_daemons(false);
    lab_test(3, |lab| {
        let up = Bird::start(lab, 3, "h3-bird", &rack_upstream_conf(lab))?;
        let mut keep = Vec::new();
        let mut servers = Vec::new();
        for (i, med) in [(1, 20), (2, 10)] {
            let include = lab.write_file(&format!("h{i}-announce.conf"), "")?;
            let bird = Bird::start(
                lab,
                i,
                &format!("h{i}-bird"),
                &rack_edge_conf(lab, i, &include),
            )?;
            servers.push(Some(lab.listen_tcp(i, 80)?));
            let kdl = upkeep_kdl(&bird, &include, &[("web", ADDR)]).replace(
                "    track \"port80\"\n",
                &format!("    track \"port80\"\n    med {med}\n"),
            );
            ensure!(kdl.contains("med "), "{kdl}");
            keep.push((lab.start_upkeep(i, &kdl)?, bird));
        }
        let took = wait_for_elapsed(
            "both paths, the best via h2",
            secs(20),
            || (upstream_vias(&up), upstream_kernel_via(lab)),
            |(v, k)| v == &["192.0.2.1", "192.0.2.2"] && k.as_deref() == Some("192.0.2.2"),
        )?;
        eprintln!(
            "MED: both announce, the upstream uses h2 (MED 10) after {:?}",
            took
        );

        servers[1] = None; // h2's service stops listening
        let took = wait_for_elapsed(
            "only h1's path",
            secs(5),
            || (upstream_vias(&up), upstream_kernel_via(lab)),
            |(v, k)| v == &["192.0.2.1"] && k.as_deref() == Some("192.0.2.1"),
        )?;
        eprintln!(
            "MED: h2's check failed, the upstream uses h1 after {:?}",
            took
        );

        servers[1] = Some(lab.listen_tcp(2, 80)?);
        let took = wait_for_elapsed(
            "h2 the best again",
            secs(5),
            || upstream_kernel_via(lab),
            |k| k.as_deref() == Some("192.0.2.2"),
        )?;
        eprintln!(
            "MED: h2 recovered, the upstream uses it again after {:?}",
            took
        );
        Ok(())
    });
}

/// An IPv6 service address (/128) over an IPv6 session: the upstream has it in BGP and its
/// kernel while the check is healthy, not after the listener closes.
#[test]
fn an_ipv6_address_is_announced_and_withdrawn() {
    require_routing_daemons(false);
    const ADDR6: &str = "2001:db8:ff::10";
    lab_test(2, |lab| {
        let include = lab.write_file("h1-announce.conf", "")?;
        let dir = lab.dir().display().to_string();
        let up = Bird::start(
            lab,
            2,
            "h2-bird",
            &format!(
                r#"router id 192.0.2.2;
log "{dir}/h2-bird.log" all;
protocol device {{ scan time 1; }}
protocol kernel {{ ipv6 {{ import none; export all; }}; }}
protocol bgp h1 {{ local 2001:db8::2 as 65000; neighbor 2001:db8::1 as 65001; {TIMERS} ipv6 {{ import all; export none; }}; }}
"#
            ),
        )?;
        let edge = Bird::start(
            lab,
            1,
            "h1-bird",
            &format!(
                r#"router id 192.0.2.1;
log "{dir}/h1-bird.log" all;
protocol device {{ scan time 1; }}
include "{}";
protocol bgp upstream {{ local 2001:db8::1 as 65001; neighbor 2001:db8::2 as 65000; {TIMERS} ipv6 {{ import none; export where proto ~ "upkeep_*"; }}; }}
"#,
                include.display()
            ),
        )?;
        let server = lab.listen_tcp(1, 80)?;
        let kdl = upkeep_kdl(&edge, &include, &[("web6", ADDR6)])
            .replace(&format!("{ADDR6}/32"), &format!("{ADDR6}/128"));
        let _h1 = lab.start_upkeep(1, &kdl)?;
        let view = || {
            let bgp = up.route(&format!("{ADDR6}/128"));
            let kernel = lab
                .ip(&lab.host_ns(2), &["-6", "route", "show"])
                .unwrap_or_default();
            (
                bgp.contains(&format!("{ADDR6}/128")) && bgp.contains("[h1 "),
                kernel.lines().any(|l| l.starts_with(&format!("{ADDR6} "))),
            )
        };
        let took = wait_for_elapsed("the /128 at the upstream", secs(20), view, |v| {
            *v == (true, true)
        })?;
        eprintln!("IPv6: announced after {:?} (session start included)", took);
        drop(server);
        let took = wait_for_elapsed("the /128 withdrawn", secs(5), view, |v| {
            *v == (false, false)
        })?;
        eprintln!("IPv6: withdrawn {:?} after the listener closed", took);
        Ok(())
    });
}

/// `on-fault "demote"`: h1 (MED 10) is active over h2 (MED 20); h1's check fails and its path
/// stays, with MED 1000, so the upstream moves to h2 and the prefix never loses h1's path (it
/// would be the last one left if h2 went too); h1 recovers and is active again.
#[test]
fn demote_keeps_the_path_with_a_worse_med() {
    require_routing_daemons(false);
    lab_test(3, |lab| {
        let up = Bird::start(lab, 3, "h3-bird", &rack_upstream_conf(lab))?;
        let mut keep = Vec::new();
        let mut servers = Vec::new();
        for (i, extra) in [
            (
                1,
                "    med 10\n    on-fault \"demote\"\n    demote-med 1000\n",
            ),
            (2, "    med 20\n"),
        ] {
            let include = lab.write_file(&format!("h{i}-announce.conf"), "")?;
            let bird = Bird::start(
                lab,
                i,
                &format!("h{i}-bird"),
                &rack_edge_conf(lab, i, &include),
            )?;
            servers.push(Some(lab.listen_tcp(i, 80)?));
            let kdl = upkeep_kdl(&bird, &include, &[("web", ADDR)]).replace(
                "    track \"port80\"\n",
                &format!("    track \"port80\"\n{extra}"),
            );
            keep.push((lab.start_upkeep(i, &kdl)?, bird));
        }
        let both = || (upstream_vias(&up), upstream_kernel_via(lab));
        wait_for("both paths, the best via h1", secs(20), both, |(v, k)| {
            v == &["192.0.2.1", "192.0.2.2"] && k.as_deref() == Some("192.0.2.1")
        })?;

        servers[0] = None; // h1's service stops listening: demoted, not withdrawn
        let t0 = Instant::now();
        let mut seen_h1_gone = false;
        wait_for(
            "the best via h2",
            secs(5),
            || {
                let v = both();
                seen_h1_gone |= !v.0.contains(&"192.0.2.1".to_owned());
                v
            },
            |(_, k)| k.as_deref() == Some("192.0.2.2"),
        )?;
        eprintln!(
            "demote: h1's check failed, the upstream uses h2 after {:?}",
            t0.elapsed()
        );
        ensure!(!seen_h1_gone, "h1's path went away: withdrawn, not demoted");
        ensure!(
            upstream_vias(&up) == ["192.0.2.1", "192.0.2.2"],
            "h1's demoted path stays"
        );
        wait_for(
            "status: demoted",
            secs(3),
            || {
                lab.upkeep_status(1)
                    .ok()
                    .map(|s| s["announcements"][0]["state"].clone())
                    .unwrap_or_default()
            },
            |s| s == "demoted",
        )?;

        servers[0] = Some(lab.listen_tcp(1, 80)?);
        let took = wait_for_elapsed(
            "the best via h1 again",
            secs(5),
            || upstream_kernel_via(lab),
            |k| k.as_deref() == Some("192.0.2.1"),
        )?;
        eprintln!(
            "demote: h1 recovered, the upstream uses it again after {:?}",
            took
        );
        Ok(())
    });
}
