//! Interfaces deleted and created again (issue 19, item 4): a VLAN or bond re-made, a driver
//! reloaded. upkeep follows an interface by its name: while it is gone, its instances are FAULT
//! and hold nothing; once an interface of that name is back (with a new index, here also a new
//! MAC), they re-bind their sockets, re-join the VRRP group and resume, with no restart. Each
//! test asserts what a user sees: who holds the VIP (on any interface), whether the client
//! reaches it, and which MAC the client's neighbour entry points at.
//!
//! The interface is a macvlan on eth0 (kernels without 8021q have no VLANs; for the daemon both
//! are the same: a link of its own with an index, a MAC and multicast filters, deleted and
//! made again under its name).
//!
//! Run alone: `cargo build -p upkeep && cargo test -p upkeep-tests --test interfaces -- --nocapture`

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use upkeep_tests::{lab_test, ms, secs, upkeep_config, wait_for, wait_until, Instance, Lab};

/// The macvlan every node has on its eth0, node n at 198.51.100.n/24, fe80::n, 2001:db8:7::n.
const DEV: &str = "mv7";
const VIP: &str = "198.51.100.100";
const VIP6: &str = "2001:db8:7::100";
const CLIENT: u8 = 200;

/// `web` (IPv4) on the macvlan, adverts every 100 ms.
fn web(priority: u8) -> Instance {
    let mut i = Instance::new("web", 51, priority)
        .interval_ms(100)
        .vip(&format!("{VIP}/24"));
    i.interface = DEV.into();
    i
}

/// `web6` (IPv6, link-local source) on the macvlan, adverts every 100 ms.
fn web6(priority: u8) -> Instance {
    let mut i = Instance::new("web6", 52, priority)
        .interval_ms(100)
        .vip(&format!("{VIP6}/64"));
    i.interface = DEV.into();
    i
}

/// The namespace of node n: a host, or the client (200).
fn ns_of(lab: &Lab, n: u8) -> String {
    if n == CLIENT {
        lab.client_ns()
    } else {
        lab.host_ns(usize::from(n))
    }
}

/// Makes [`DEV`] on node n's eth0 (with `mac` if given), with its addresses (IPv6 without
/// DAD, so they are usable at once), and brings it up: the commands an operator or a network
/// manager runs when it re-makes the interface.
fn add_link(lab: &Lab, n: u8, mac: Option<&str>) -> Result<()> {
    let ns = ns_of(lab, n);
    let mut add = vec!["link", "add", "link", "eth0", "name", DEV];
    if let Some(m) = mac {
        add.extend(["address", m]);
    }
    add.extend(["type", "macvlan", "mode", "bridge"]);
    lab.ip(&ns, &add)?;
    lab.ip(&ns, &["link", "set", DEV, "addrgenmode", "none"])?;
    let v4 = format!("198.51.100.{n}/24");
    lab.ip(&ns, &["addr", "add", &v4, "dev", DEV])?;
    for a in [format!("fe80::{n:x}/64"), format!("2001:db8:7::{n:x}/64")] {
        lab.ip(&ns, &["addr", "add", &a, "dev", DEV, "nodad"])?;
    }
    lab.ip(&ns, &["link", "set", DEV, "up"])?;
    Ok(())
}

fn del_link(lab: &Lab, n: u8) -> Result<()> {
    lab.ip(&ns_of(lab, n), &["link", "del", DEV]).map(drop)
}

/// Hosts answer ARP only on the interface that has the address asked for: eth0 and the
/// macvlan share the wire, and the client's neighbour entry must name the macvlan's MAC.
fn arp_on_own_interface(lab: &Lab) -> Result<()> {
    for i in 1..=lab.hosts() {
        let out = lab.exec(
            &lab.host_ns(i),
            &["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"],
        )?;
        ensure!(out.status.success(), "sysctl arp_ignore in h{i}");
    }
    Ok(())
}

/// The macvlan on both hosts and the client.
fn links(lab: &Lab) -> Result<()> {
    arp_on_own_interface(lab)?;
    for n in [1, 2, CLIENT] {
        add_link(lab, n, None)?;
    }
    Ok(())
}

/// The interface index of [`DEV`] on host i.
fn ifindex(lab: &Lab, i: usize) -> Result<u32> {
    let out = lab.ip(&lab.host_ns(i), &["-o", "link", "show", "dev", DEV])?;
    out.split(':')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("no index in {out:?}"))
}

/// The MAC of [`DEV`] on host i.
fn mac(lab: &Lab, i: usize) -> Result<String> {
    let out = lab.ip(&lab.host_ns(i), &["-o", "link", "show", "dev", DEV])?;
    let words: Vec<&str> = out.split_whitespace().collect();
    words
        .iter()
        .position(|w| *w == "link/ether")
        .and_then(|k| words.get(k + 1))
        .map(|m| m.to_string())
        .with_context(|| format!("no MAC in {out:?}"))
}

/// Whether host i has `vip` on any interface.
fn holds(lab: &Lab, i: usize, vip: &str) -> bool {
    lab.ip(&lab.host_ns(i), &["-o", "addr", "show"])
        .unwrap_or_default()
        .split_whitespace()
        .any(|w| w.split('/').next() == Some(vip) && w.contains('/'))
}

/// The hosts holding `vip`, on any of their interfaces.
fn holders(lab: &Lab, vip: &str) -> Vec<usize> {
    (1..=lab.hosts()).filter(|&i| holds(lab, i, vip)).collect()
}

fn wait_holders(lab: &Lab, vip: &str, expected: &[usize], timeout: Duration) -> Result<Duration> {
    let t0 = Instant::now();
    wait_for(
        format!("holders of {vip} (any interface) to be {expected:?}"),
        timeout,
        || holders(lab, vip),
        |h| h == expected,
    )?;
    Ok(t0.elapsed())
}

/// Samples the holders of `vip` every 50 ms for `duration`; fails on any other than `expected`.
fn holders_stay(lab: &Lab, vip: &str, expected: &[usize], duration: Duration) -> Result<()> {
    let t0 = Instant::now();
    while t0.elapsed() < duration {
        let h = holders(lab, vip);
        ensure!(
            h == expected,
            "holders of {vip} {h:?} at +{:?}, expected {expected:?} throughout",
            t0.elapsed()
        );
        std::thread::sleep(ms(50));
    }
    Ok(())
}

/// The MAC the client's neighbour entry for `addr` on the macvlan points at.
fn client_neighbour_mac(lab: &Lab, addr: &str) -> Option<String> {
    let out = lab
        .ip(&lab.client_ns(), &["neigh", "show", addr, "dev", DEV])
        .unwrap_or_default();
    let words: Vec<&str> = out.split_whitespace().collect();
    let k = words.iter().position(|w| *w == "lladdr")?;
    words.get(k + 1).map(|m| m.to_string())
}

/// The master's macvlan is deleted: its instances go FAULT and hold nothing, the backup serves
/// both VIPs. The macvlan is made again (new index, new MAC): the master leaves FAULT by itself,
/// takes both VIPs back onto the new interface (it preempts), announces them with the new MAC,
/// and the client reaches them; the backup names it as master again (its adverts go out).
#[test]
fn a_master_whose_link_is_deleted_and_made_again_takes_its_vips_back() {
    lab_test(2, |lab| {
        links(lab)?;
        let h1 = lab.start_upkeep(1, &upkeep_config("h1", &[web(100), web6(100)]))?;
        h1.wait_state("web", "master", secs(10))?;
        h1.wait_state("web6", "master", secs(10))?;
        let h2 = lab.start_upkeep(2, &upkeep_config("h2", &[web(90), web6(90)]))?;
        h2.wait_backup_of("web", "198.51.100.1", secs(10))?;
        h2.wait_backup_of("web6", "fe80::1", secs(10))?;
        wait_holders(lab, VIP, &[1], secs(5))?;
        wait_holders(lab, VIP6, &[1], secs(5))?;
        lab.wait_client_ping(VIP, secs(5))?;
        let old_index = ifindex(lab, 1)?;

        // Gone: FAULT, nothing held on h1 (on any interface), h2 serves.
        del_link(lab, 1)?;
        let deleted = Instant::now();
        h1.wait_state("web", "fault", secs(3))?;
        h1.wait_state("web6", "fault", secs(3))?;
        h2.wait_state("web", "master", secs(3))?;
        let h2_master = Instant::now();
        h2.wait_state("web6", "master", secs(3))?;
        let moved = wait_holders(lab, VIP, &[2], secs(3))?.max(deleted.elapsed());
        wait_holders(lab, VIP6, &[2], secs(3))?;
        lab.wait_client_ping(VIP, secs(5))?;
        lab.wait_client_ping(VIP6, secs(5))?;
        holders_stay(lab, VIP, &[2], ms(500))?;
        ensure!(h1.state("web")? == "fault", "{}", h1.instance("web")?);

        // Made again, under the same name; past the client's ARP locktime (1 s) after h2's
        // announcement, so that h1's is not ignored.
        std::thread::sleep(ms(1200).saturating_sub(h2_master.elapsed()));
        let new_mac = "02:00:00:00:07:01";
        add_link(lab, 1, Some(new_mac))?;
        let remade = Instant::now();
        let new_index = ifindex(lab, 1)?;
        ensure!(new_index != old_index, "the macvlan kept index {old_index}");
        h1.wait_state("web", "master", secs(5))
            .context("h1 did not leave FAULT on the re-made interface")?;
        h1.wait_state("web6", "master", secs(5))?;
        let back = wait_holders(lab, VIP, &[1], secs(3))?.max(remade.elapsed());
        wait_holders(lab, VIP6, &[1], secs(3))?;
        ensure!(
            lab.ip(&lab.host_ns(1), &["-o", "addr", "show", "dev", DEV])?
                .contains(&format!("{VIP}/24")),
            "h1's VIP is not on the new {DEV}"
        );
        // h2 hears h1's adverts from the new interface.
        h2.wait_backup_of("web", "198.51.100.1", secs(3))?;
        h2.wait_backup_of("web6", "fe80::1", secs(3))?;
        // Announced with the new interface's MAC, so the client follows at once.
        ensure!(
            mac(lab, 1)? == new_mac,
            "the macvlan did not take the new MAC"
        );
        wait_until(
            format!("the client's neighbour entry of {VIP} to be h1's new MAC"),
            secs(2),
            || client_neighbour_mac(lab, VIP).as_deref() == Some(new_mac),
        )?;
        lab.wait_client_ping(VIP, secs(3))?;
        lab.wait_client_ping(VIP6, secs(3))?;
        holders_stay(lab, VIP, &[1], secs(1))?;
        holders_stay(lab, VIP6, &[1], ms(300))?;
        println!(
            "re-made master macvlan: index {old_index} -> {new_index}; VIP on h2 {moved:?} after \
             the delete, back on h1 {back:?} after the macvlan was made again; h1 transitions {}",
            h1.counter("web", "transitions")?
        );
        Ok(())
    });
}

/// The backup's macvlan is deleted and made again: it goes FAULT, then back to BACKUP, hearing
/// the master through its new socket (it would take over, and the VIP would have two holders,
/// if it heard nothing); when the master stops, it takes the VIP over on the new interface.
#[test]
fn a_backup_whose_link_is_made_again_hears_the_master_and_takes_over_later() {
    lab_test(2, |lab| {
        links(lab)?;
        let h1 = lab.start_instance(1, &web(100))?;
        h1.wait_state("web", "master", secs(10))?;
        let h2 = lab.start_instance(2, &web(90))?;
        h2.wait_backup_of("web", "198.51.100.1", secs(10))?;
        wait_holders(lab, VIP, &[1], secs(5))?;

        del_link(lab, 2)?;
        h2.wait_state("web", "fault", secs(3))?;
        holders_stay(lab, VIP, &[1], ms(500))?;

        add_link(lab, 2, Some("02:00:00:00:07:02"))?;
        h2.wait_backup_of("web", "198.51.100.1", secs(5))
            .context("h2 did not leave FAULT on the re-made interface")?;
        let received = h2.counter("web", "adverts_received")?;
        // Ten master intervals: a deaf backup would have taken over after about three.
        holders_stay(lab, VIP, &[1], secs(1))?;
        ensure!(
            h2.state("web")? == "backup",
            "h2 left backup: {}",
            h2.instance("web")?
        );
        h2.wait_instance("web", "more adverts received", secs(3), |i| {
            i["adverts_received"].as_u64().unwrap_or(0) > received
        })?;

        h1.stop(secs(15))?;
        h2.wait_state("web", "master", secs(3))?;
        wait_holders(lab, VIP, &[2], secs(3))?;
        lab.wait_client_ping(VIP, secs(5))?;
        Ok(())
    });
}

/// An interface check follows its interface by name too: the tracked macvlan deleted lowers the
/// master's priority (the backup takes over), made again restores it (the master preempts
/// back).
#[test]
fn a_tracked_interface_deleted_and_made_again_counts_again() {
    lab_test(2, |lab| {
        add_link(lab, 1, None)?;
        let on_eth0 = |p: u8| {
            let mut i = Instance::web(p).interval_ms(100);
            i.extra_kdl.push("track \"uplink\"".into());
            i
        };
        let check = format!("check \"uplink\" {{\n    interface \"{DEV}\"\n    weight -50\n}}\n");
        let h1 = lab.start_upkeep(
            1,
            &format!("{}{check}", upkeep_config("h1", &[on_eth0(100)])),
        )?;
        h1.wait_state("web", "master", secs(10))?;
        let h2 = lab.start_instance(2, &Instance::web(90).interval_ms(100))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(10))?;

        del_link(lab, 1)?;
        h2.wait_state("web", "master", secs(3))?;
        lab.wait_holders("192.0.2.100", &[2], secs(3))?;
        ensure!(
            h1.instance("web")?["effective_priority"] == 50,
            "{}",
            h1.instance("web")?
        );

        add_link(lab, 1, None)?;
        h1.wait_state("web", "master", secs(5))
            .context("the re-made tracked interface did not count as up")?;
        lab.wait_holders("192.0.2.100", &[1], secs(3))?;
        ensure!(
            h1.check("uplink")?["healthy"] == true,
            "{}",
            h1.check("uplink")?
        );
        lab.wait_client_ping("192.0.2.100", secs(5))?;
        Ok(())
    });
}

/// A VIP placed on another interface than its instance's (`vip ... dev="mv7"`) follows that
/// interface by name: deleted, the VIP goes with it (the instance, on eth0, stays master);
/// made again, the master puts the VIP on it again and the client reaches it.
#[test]
fn a_vip_on_another_interface_is_put_back_when_that_interface_is_made_again() {
    lab_test(2, |lab| {
        links(lab)?;
        let on_eth0 = |p: u8| {
            let mut i = Instance::web(p).interval_ms(100);
            i.extra_kdl.push(format!("vip \"{VIP}/24\" dev=\"{DEV}\""));
            i
        };
        let h1 = lab.start_instance(1, &on_eth0(100))?;
        h1.wait_state("web", "master", secs(10))?;
        let h2 = lab.start_instance(2, &on_eth0(90))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(10))?;
        wait_holders(lab, VIP, &[1], secs(5))?;
        lab.wait_client_ping(VIP, secs(5))?;

        del_link(lab, 1)?;
        wait_holders(lab, VIP, &[], secs(3))?;
        add_link(lab, 1, Some("02:00:00:00:07:03"))?;
        let back = wait_holders(lab, VIP, &[1], secs(3))
            .context("the VIP was not put back on the re-made interface")?;
        ensure!(
            lab.ip(&lab.host_ns(1), &["-o", "addr", "show", "dev", DEV])?
                .contains(&format!("{VIP}/24")),
            "h1's VIP is not on the new {DEV}"
        );
        lab.wait_client_ping(VIP, secs(5))?;
        lab.wait_holders("192.0.2.100", &[1], secs(1))?;
        ensure!(h1.state("web")? == "master", "{}", h1.instance("web")?);
        ensure!(h2.state("web")? == "backup", "{}", h2.instance("web")?);
        println!("VIP on a re-made dev interface: back {back:?} after it was made again");
        Ok(())
    });
}

/// The daemon's view of its interfaces follows them by name: after one is made again, a reload
/// that starts an instance on it opens it on its new index (not the deleted one's), and the
/// instance serves its VIP.
#[test]
fn a_reload_after_an_interface_was_made_again_starts_an_instance_on_it() {
    lab_test(2, |lab| {
        links(lab)?;
        // An interface check makes the daemon look the macvlan up at start.
        let check = format!("check \"uplink\" {{\n    interface \"{DEV}\"\n}}\n");
        let eth0 = Instance::web(100).interval_ms(100);
        let conf = |instances: &[Instance]| format!("{}{check}", upkeep_config("h1", instances));
        let h1 = lab.start_upkeep(1, &conf(std::slice::from_ref(&eth0)))?;
        h1.wait_state("web", "master", secs(10))?;

        del_link(lab, 1)?;
        add_link(lab, 1, Some("02:00:00:00:07:04"))?;

        let mut db = Instance::new("db", 53, 100)
            .interval_ms(100)
            .vip(&format!("{VIP}/24"));
        db.interface = DEV.into();
        let seq = h1.reload_seq()?;
        h1.write_config(&conf(&[eth0, db]))?;
        let r = h1.wait_reload(seq, secs(10))?;
        ensure!(
            r["result"] == "applied" && r["error"].is_null() && r["added"][0] == "db",
            "reload: {r}"
        );
        h1.wait_state("db", "master", secs(5))?;
        wait_holders(lab, VIP, &[1], secs(3))?;
        lab.wait_client_ping(VIP, secs(5))?;
        ensure!(
            h1.check("uplink")?["healthy"] == true,
            "{}",
            h1.check("uplink")?
        );
        Ok(())
    });
}

/// The master's interface is made again with other addresses, given only once it is up (as a
/// network manager may do): the master sends its adverts from them as they are added, so the
/// backup hears it (an IPv6 advert from the old link-local, no longer on the host, would be
/// refused by the kernel: two masters) and one host serves each VIP.
#[test]
fn an_interface_made_again_with_addresses_given_after_it_is_up_advertises_from_them() {
    lab_test(2, |lab| {
        links(lab)?;
        let h1 = lab.start_upkeep(1, &upkeep_config("h1", &[web(100), web6(100)]))?;
        h1.wait_state("web", "master", secs(10))?;
        h1.wait_state("web6", "master", secs(10))?;
        let h2 = lab.start_upkeep(2, &upkeep_config("h2", &[web(90), web6(90)]))?;
        h2.wait_backup_of("web", "198.51.100.1", secs(10))?;
        h2.wait_backup_of("web6", "fe80::1", secs(10))?;

        del_link(lab, 1)?;
        h2.wait_state("web", "master", secs(3))?;
        h2.wait_state("web6", "master", secs(3))?;
        let ns = lab.host_ns(1);
        let add = ["link", "add", "link", "eth0", "name", DEV];
        lab.ip(
            &ns,
            &[&add[..], &["type", "macvlan", "mode", "bridge"]].concat(),
        )?;
        lab.ip(&ns, &["link", "set", DEV, "addrgenmode", "none"])?;
        lab.ip(&ns, &["link", "set", DEV, "up"])?;
        lab.ip(&ns, &["addr", "add", "198.51.100.11/24", "dev", DEV])?;
        lab.ip(&ns, &["addr", "add", "fe80::11/64", "dev", DEV, "nodad"])?;

        h2.wait_backup_of("web", "198.51.100.11", secs(5))?;
        h2.wait_backup_of("web6", "fe80::11", secs(5))
            .context("h2 does not hear h1's IPv6 adverts")?;
        wait_holders(lab, VIP, &[1], secs(3))?;
        wait_holders(lab, VIP6, &[1], secs(3))?;
        holders_stay(lab, VIP6, &[1], secs(1))?;
        holders_stay(lab, VIP, &[1], ms(300))?;
        lab.wait_client_ping(VIP, secs(5))?;
        lab.wait_client_ping(VIP6, secs(5))?;
        Ok(())
    });
}
