//! keepalived's `vrrp_startup_delay` and instances without VIPs (`no_virtual_ipaddress`,
//! keepalived#2121), as a user sees them: a daemon with `startup-delay` sends no advert before
//! the delay is over (and a SIGTERM meanwhile stops it at once); two hosts whose instance has
//! `no-vip` elect a master (adverts with no address), run its `notify-master`, hold no address,
//! and fail over to the backup, which runs its own.
//!
//! Run alone: `cargo build -p upkeep && cargo test -p upkeep-tests --test keywords_instances`

use std::fs;
use std::time::Instant;

use anyhow::{ensure, Result};
use upkeep_tests::{
    lab_test, ms, secs, upkeep_config, wait_for, AdvertSpec, Captured, Daemon, Instance, Lab,
    SIGTERM,
};

#[test]
fn no_advert_before_the_startup_delay() {
    lab_test(1, |lab| {
        let kdl = upkeep_config("h1", &[Instance::web(100)])
            .replace("global {", "global { startup-delay \"2s\";");
        let cap = lab.start_capture(1)?;
        let started = Instant::now();
        let h1 = lab.start_upkeep(1, &kdl)?;
        let first = cap.wait_for_packet("h1's first advert", secs(10), |p| p.outgoing)?;
        let master = h1.wait_state("web", "master", secs(5))?;
        let after = started.elapsed();
        eprintln!(
            "first advert {:?} after the capture started, master by {after:?}",
            first.at
        );
        ensure!(
            first.at >= ms(2000),
            "an advert {:?} after start, inside the 2 s delay",
            first.at
        );
        ensure!(master["state"] == "master");

        // Stopped during the delay: it exits at once, having sent nothing.
        let cap = lab.start_capture(1)?;
        h1.signal(SIGTERM)?;
        h1.wait_exit(secs(6))?;
        let kdl = kdl.replace("startup-delay \"2s\"", "startup-delay \"30s\"");
        let h1 = lab.start_upkeep(1, &kdl)?;
        std::thread::sleep(ms(500));
        let t = Instant::now();
        h1.signal(SIGTERM)?;
        ensure!(h1.wait_exit(secs(3))?.success(), "exit during the delay");
        let took = t.elapsed();
        ensure!(took < secs(2), "took {took:?} to stop during the delay");
        let sent: Vec<_> = cap
            .packets()
            .into_iter()
            .filter(|p| p.outgoing && p.priority() != Some(0))
            .collect();
        ensure!(sent.is_empty(), "sent during the delay: {sent:?}");
        Ok(())
    });
}

#[test]
fn instances_without_vips_elect_and_notify() {
    lab_test(2, |lab| {
        let script = lab.write_script("notify.sh", "echo \"$2\" >> \"$1\"")?;
        let conf = |i: usize, priority: u8| -> (String, std::path::PathBuf) {
            let log = lab.dir().join(format!("h{i}.notify"));
            let mut inst = Instance::new("cloud", 61, priority).interval_ms(100);
            inst.extra_kdl.push("no-vip".into());
            for (key, what) in [("notify-master", "master"), ("notify-backup", "backup")] {
                inst.extra_kdl.push(format!(
                    "{key} {:?}",
                    format!("{} {} {what}", script.display(), log.display())
                ));
            }
            let kdl = upkeep_config(&format!("h{i}"), &[inst])
                .replace("global {", "global { script-user \"root\";");
            (kdl, log)
        };
        let (c1, log1) = conf(1, 100);
        let (c2, log2) = conf(2, 90);
        let addrs_before = (lab.addrs(1), lab.addrs(2));
        let cap = lab.start_capture(2)?;
        let h1 = lab.start_upkeep(1, &c1)?;
        h1.wait_state("cloud", "master", secs(10))?;
        let h2 = lab.start_upkeep(2, &c2)?;
        h2.wait_backup_of("cloud", "192.0.2.1", secs(10))?;
        let advert = cap.wait_for_packet("h1's advert", secs(3), |p| {
            !p.outgoing && p.vrid() == Some(61)
        })?;
        ensure!(
            advert.advert.as_ref().is_ok_and(|a| a.addrs.is_empty()),
            "an advert with addresses: {}",
            advert.summary()
        );
        let read = |p: &std::path::Path| fs::read_to_string(p).unwrap_or_default();
        wait_for(
            "h1's notify-master",
            secs(5),
            || read(&log1),
            |l| l == "backup\nmaster\n",
        )?;
        wait_for(
            "h2's notify-backup",
            secs(5),
            || read(&log2),
            |l| l == "backup\n",
        )?;
        ensure!(
            (lab.addrs(1), lab.addrs(2)) == addrs_before,
            "an address moved"
        );

        // The master stops: the backup takes over and runs its notify-master.
        h1.signal(SIGTERM)?;
        h2.wait_state("cloud", "master", secs(5))?;
        wait_for(
            "h2's notify-master",
            secs(5),
            || read(&log2),
            |l| l == "backup\nmaster\n",
        )?;
        ensure!(h1.wait_exit(secs(6))?.success(), "h1 exit");
        Ok(())
    });
}

/// h1 (100) sending unicast adverts with `unicast-ttl 64` to h2 (90), whose peer h1 may come
/// with a TTL of 60..=64: `base(i, priority)` is host i's instance without its peer; `peers` the
/// two hosts' addresses. Returns both daemons (h2 following h1) and h1's first advert seen at
/// h2, and the config maker for h2 with other peer options.
fn ttl_pair<'l>(
    lab: &'l Lab,
    base: impl Fn(usize, u8) -> Instance + 'l,
    peers: [&'l str; 2],
) -> Result<(Daemon, Daemon, Captured, impl Fn(&str) -> String + 'l)> {
    let name = base(1, 100).name;
    let conf = move |i: usize, priority: u8, peer_opts: &str| {
        let mut inst = base(i, priority);
        let peer = peers[2 - i];
        inst.extra_kdl
            .push(format!("unicast-peer \"{peer}\"{peer_opts}"));
        if i == 1 {
            inst.extra_kdl.push("unicast-ttl 64".into());
        }
        upkeep_config(&format!("h{i}"), &[inst])
    };
    let h1 = lab.start_upkeep(1, &conf(1, 100, ""))?;
    h1.wait_state(&name, "master", secs(10))?;
    let cap = lab.start_capture(2)?;
    let h2 = lab.start_upkeep(2, &conf(2, 90, " min-ttl=60 max-ttl=64"))?;
    h2.wait_backup_of(&name, peers[0], secs(10))?;
    let heard = cap.wait_for_packet("h1's advert at h2", secs(3), |p| {
        !p.outgoing && p.src.to_string() == peers[0]
    })?;
    Ok((h1, h2, heard, move |opts: &str| conf(2, 90, opts)))
}

/// keepalived's `unicast_ttl` and a peer's `min_ttl` / `max_ttl`: h1 sends its unicast adverts
/// with TTL 64 (seen on the wire at h2); h2, whose peer h1 may come with 60..=64, follows it as
/// a backup. Reloaded without the range, h2 no longer accepts them (TTL 255 only) and takes over.
#[test]
fn unicast_ttl_and_a_peers_ttl_range() {
    lab_test(2, |lab| {
        let (_h1, h2, heard, h2_conf) = ttl_pair(
            lab,
            |i, priority| Instance::web(priority).unicast_src(&lab.host_ip(i)),
            ["192.0.2.1", "192.0.2.2"],
        )?;
        ensure!(
            heard.ttl == 64,
            "TTL {} on the wire: {}",
            heard.ttl,
            heard.summary()
        );
        lab.expect_holders_stable("192.0.2.100", &[1], ms(1000))?;

        // Without the range h1's adverts are refused (kernel filter: TTL 255 only).
        let seq = h2.reload_seq()?;
        h2.write_config(&h2_conf(""))?;
        h2.reload_cli()?;
        h2.wait_reload(seq, secs(10))?;
        h2.wait_state("web", "master", secs(5))?;
        Ok(())
    });
}

/// keepalived's `vrrp_mcast_group4` (`global`) and `mcast_dst_ip` (per instance): adverts go to
/// 224.0.0.19, the backup hears them there; an advert to the RFC group 224.0.0.18 for the same
/// VRID (another cluster's) is dropped as `other_group`, while the same one to 224.0.0.19 moves
/// the master.
#[test]
fn adverts_use_the_configured_multicast_group() {
    lab_test(3, |lab| {
        let kdl = |i: usize, priority: u8| {
            upkeep_config(&format!("h{i}"), &[Instance::web(priority)])
                .replace("global {", "global { multicast-group4 \"224.0.0.19\";")
        };
        let h1 = lab.start_upkeep(1, &kdl(1, 100))?;
        h1.wait_state("web", "master", secs(10))?;
        let cap = lab.start_capture(2)?;
        let h2 = lab.start_upkeep(2, &kdl(2, 90))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(10))?;
        std::thread::sleep(ms(300));
        let from_h1: Vec<_> = cap
            .packets()
            .into_iter()
            .filter(|p| !p.outgoing && p.src.to_string() == "192.0.2.1")
            .collect();
        ensure!(!from_h1.is_empty(), "nothing from h1:\n{}", cap.dump());
        ensure!(
            from_h1.iter().all(|p| p.dst.to_string() == "224.0.0.19"),
            "adverts elsewhere than 224.0.0.19:\n{}",
            cap.dump()
        );

        // Another cluster's VRID 51 on the RFC group: not ours.
        let other = AdvertSpec::v3(51, 200).vip("192.0.2.100").interval(ms(100));
        for _ in 0..3 {
            lab.inject(3, &other)?;
        }
        // Counted (the status file follows counters within a second).
        wait_for(
            "h1 to count 3 adverts of another group",
            secs(5),
            || h1.drop_count("other_group").unwrap_or(0),
            |n| *n >= 3,
        )?;
        ensure!(h1.state("web")? == "master", "h1 moved for 224.0.0.18");
        // The same advert to our group is heard: h1 steps down.
        lab.inject(3, &other.dst("224.0.0.19"))?;
        h1.wait_state("web", "backup", secs(2))?;
        Ok(())
    });
}

/// The same over IPv6: the hop limit of unicast adverts (an IPV6_HOPLIMIT control message per
/// packet) is 64 on the wire, and the peer with 60..=64 follows.
#[test]
fn unicast_hop_limit_over_ipv6() {
    lab_test(2, |lab| {
        let (_h1, _h2, heard, _) = ttl_pair(
            lab,
            |i, priority| {
                Instance::new("web6", 52, priority)
                    .interval_ms(100)
                    .vip("2001:db8::100/64")
                    .unicast_src(&lab.host_ip6(i))
            },
            ["2001:db8::1", "2001:db8::2"],
        )?;
        ensure!(
            heard.ttl == 64,
            "hop limit {}: {}",
            heard.ttl,
            heard.summary()
        );
        ensure!(heard.checksum_ok, "{}", heard.summary());
        lab.expect_holders_stable("2001:db8::100", &[1], ms(1000))?;
        Ok(())
    });
}
