//! Checks the harness itself against keepalived (no upkeep needed): the topology, address
//! queries, pings, capture, the packet builder (keepalived must accept what it builds, and what
//! keepalived sends must pass our parser and checksums), the injector, and namespace cleanup.
//!
//! Run alone: `cargo test -p upkeep-tests --test harness_selftest`

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use upkeep_tests::{
    keepalived_config, lab_test, list_netns, secs, AdvertSpec, Instance, Lab, SIGTERM,
};

const VIP: &str = "192.0.2.100";
const VIP6: &str = "2001:db8::100";

#[test]
fn keepalived_pair_elects_master_client_pings_and_failover() {
    lab_test(2, |lab| {
        let web = |prio| {
            Instance::new("web", 51, prio)
                .version(2)
                .auth_pass("1234")
                .vip("192.0.2.100/24")
        };
        let h1 = lab.start_keepalived(1, &keepalived_config("h1", &[web(100)]))?;
        lab.wait_holders(VIP, &[1], secs(10))?;
        let _h2 = lab.start_keepalived(2, &keepalived_config("h2", &[web(90)]))?;
        lab.wait_client_ping(VIP, secs(5))?;

        // What h2 receives from the master parses, with a right checksum and the password.
        let cap = lab.start_capture(2)?;
        let seen = cap.wait_for_packet("advert from h1", secs(5), |p| {
            p.src.to_string() == "192.0.2.1"
        })?;
        ensure!(
            !seen.outgoing && seen.checksum_ok && seen.ttl == 255,
            "bad advert: {}",
            seen.summary()
        );
        let adv = seen.advert.clone().map_err(anyhow::Error::msg)?;
        ensure!(
            adv.version == 2 && adv.vrid == 51 && adv.priority == 100,
            "{}",
            seen.summary()
        );
        ensure!(
            adv.auth_pass().as_deref() == Some("1234"),
            "auth {:?}",
            adv.auth_data
        );
        ensure!(
            adv.addrs == vec![VIP.parse::<std::net::IpAddr>()?],
            "{}",
            seen.summary()
        );
        lab.expect_holders_stable(VIP, &[1], secs(2))?;

        // SIGTERM: priority 0 advert, the VIP moves to h2, h1 exits cleanly without it.
        h1.signal(SIGTERM)?;
        let zero = cap.wait_for_packet("priority 0 from h1", secs(5), |p| {
            p.src.to_string() == "192.0.2.1" && p.priority() == Some(0)
        })?;
        ensure!(zero.checksum_ok, "{}", zero.summary());
        lab.wait_holders(VIP, &[2], secs(4))?;
        let st = h1.wait_exit(secs(10))?;
        ensure!(st.success(), "keepalived exit status {st}");
        lab.wait_client_ping(VIP, secs(5))?;
        Ok(())
    });
}

#[test]
fn keepalived_v3_adverts_pass_our_parser_ipv4_and_ipv6() {
    lab_test(1, |lab| {
        let v4 = Instance::new("v4", 61, 100)
            .interval_ms(200)
            .vip("192.0.2.100/24");
        let v6 = Instance::new("v6", 62, 100)
            .interval_ms(200)
            .vip("2001:db8::100/64");
        let cap = lab.start_capture(1)?;
        let _h1 = lab.start_keepalived(1, &keepalived_config("h1", &[v4, v6]))?;
        lab.wait_holders(VIP, &[1], secs(10))?;
        lab.wait_holders(VIP6, &[1], secs(10))?;
        for (vrid, what) in [(61, "IPv4"), (62, "IPv6")] {
            let p = cap.wait_for_packet(&format!("{what} v3 advert"), secs(5), |p| {
                p.vrid() == Some(vrid)
            })?;
            let a = p.advert.clone().map_err(anyhow::Error::msg)?;
            ensure!(
                p.outgoing && p.checksum_ok && p.ttl == 255,
                "{}",
                p.summary()
            );
            ensure!(
                a.version == 3 && a.interval() == Duration::from_millis(200),
                "{}",
                p.summary()
            );
            if vrid == 62 {
                ensure!(
                    p.src.to_string() == "fe80::1" && p.dst.to_string() == "ff02::12",
                    "{}",
                    p.summary()
                );
            }
        }
        lab.wait_client_ping(VIP, secs(5))?;
        lab.wait_client_ping(VIP6, secs(5))?;
        Ok(())
    });
}

/// keepalived accepts what our builder makes (it steps down for a higher priority), and
/// ignores a higher priority with a broken checksum.
#[test]
fn injected_adverts_move_keepalived() {
    lab_test(2, |lab| {
        let v2 = Instance::new("v2", 51, 100)
            .version(2)
            .auth_pass("1234")
            .vip("192.0.2.100/24");
        let v3 = Instance::new("v3", 52, 100).vip("198.51.100.1/24");
        let v6 = Instance::new("v6", 53, 100).vip("2001:db8::100/64");
        let _h1 = lab.start_keepalived(1, &keepalived_config("h1", &[v2, v3, v6]))?;
        for vip in [VIP, "198.51.100.1", VIP6] {
            lab.wait_holders(vip, &[1], secs(10))?;
        }
        let specs = [
            (VIP, AdvertSpec::v2(51, 200).auth_pass("1234").vip(VIP)),
            ("198.51.100.1", AdvertSpec::v3(52, 200).vip("198.51.100.1")),
            (VIP6, AdvertSpec::v3_ipv6(53, 200).vip(VIP6)),
        ];
        // Broken: must not move anything.
        for (_, spec) in &specs {
            lab.inject(2, &spec.clone().bad_checksum())?;
            lab.inject(2, &spec.clone().ttl(254))?;
        }
        for (vip, _) in &specs {
            lab.expect_holders_stable(vip, &[1], Duration::from_millis(500))?;
        }
        // Valid, higher priority: keepalived steps down (keeps doing so while we keep sending).
        for (vip, spec) in &specs {
            let mut gone = false;
            for _ in 0..5 {
                lab.inject(2, spec)?;
                if lab
                    .wait_holders(vip, &[], Duration::from_millis(400))
                    .is_ok()
                {
                    gone = true;
                    break;
                }
            }
            ensure!(gone, "keepalived did not give up {vip} for {spec:?}");
        }
        Ok(())
    });
}

#[test]
fn lab_namespaces_are_removed_after_drop_and_panic() -> Result<()> {
    let lab = Lab::new(2)?;
    let names = lab.namespaces().to_vec();
    ensure!(names.len() == 4, "{names:?}");
    for n in &names {
        ensure!(n.len() <= 15, "namespace name {n} too long");
    }
    let listed = list_netns();
    ensure!(
        names.iter().all(|n| listed.contains(n)),
        "{names:?} not all in {listed:?}"
    );
    ensure!(
        lab.has_addr(1, "192.0.2.1") && lab.has_addr(1, "2001:db8::1"),
        "{:?}",
        lab.addrs(1)
    );
    ensure!(lab.holders("192.0.2.2") == vec![2]);
    ensure!(
        lab.client_ping("192.0.2.2") && lab.client_ping("2001:db8::2"),
        "client cannot ping h2"
    );
    lab.link_down(2)?;
    ensure!(
        !lab.ping_once(&lab.host_ns(1), "192.0.2.2"),
        "h2 answers with its link down"
    );
    lab.link_up(2)?;
    lab.wait_client_ping("2001:db8::2", secs(5))
        .context("IPv6 after link up")?;
    // A process left running inside is killed by the teardown.
    let conf = keepalived_config("h1", &[Instance::new("x", 9, 100).vip("203.0.113.9/24")]);
    let daemon = lab.start_keepalived(1, &conf)?;
    std::mem::forget(daemon);
    drop(lab);
    let listed = list_netns();
    ensure!(
        names.iter().all(|n| !listed.contains(n)),
        "left behind: {listed:?}"
    );

    let (tx, rx) = std::sync::mpsc::channel();
    let res = std::thread::spawn(move || {
        let lab = Lab::new(1).expect("lab");
        tx.send(lab.namespaces().to_vec()).expect("send");
        panic!("deliberate panic with a live lab");
    })
    .join();
    ensure!(res.is_err(), "the thread should have panicked");
    let names = rx.recv()?;
    let listed = list_netns();
    ensure!(
        names.iter().all(|n| !listed.contains(n)),
        "left behind after panic: {listed:?}"
    );
    Ok(())
}

#[test]
fn pinger_measures_an_outage() -> Result<()> {
    let lab = Lab::new(1)?;
    let p = lab.start_pinger("192.0.2.1", Duration::from_millis(10))?;
    let p6 = lab.start_pinger("2001:db8::1", Duration::from_millis(10))?;
    let none = lab.start_pinger("192.0.2.77", Duration::from_millis(10))?;
    std::thread::sleep(Duration::from_millis(300));
    lab.link_down(1)?;
    std::thread::sleep(Duration::from_millis(400));
    lab.link_up(1)?;
    lab.wait_client_ping("192.0.2.1", secs(5))?;
    lab.wait_client_ping("2001:db8::1", secs(5))?;
    std::thread::sleep(Duration::from_millis(300));
    for (what, r) in [("IPv4", p.stop()?), ("IPv6", p6.stop()?)] {
        let gap = r.longest_gap();
        ensure!(
            r.received() > 20,
            "{what}: only {} of {} answered",
            r.received(),
            r.sent()
        );
        ensure!(
            r.lost() > 10,
            "{what}: a 400 ms outage lost only {} probes",
            r.lost()
        );
        ensure!(
            gap >= Duration::from_millis(350) && gap < secs(5),
            "{what}: longest gap {gap:?}"
        );
    }
    let r = none.stop()?;
    ensure!(
        r.sent() > 50 && r.received() == 0,
        "{} of {} answered for an absent host",
        r.received(),
        r.sent()
    );
    Ok(())
}
