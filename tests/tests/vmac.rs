//! The virtual MAC (`use-vmac`, keepalived's `use_vmac`, issue 18): the VIP lives on a macvlan
//! whose MAC is the RFC's virtual router MAC, 00:00:5e:00:01:VRID. What a user sees: the
//! client's neighbour entry for the VIP points at that MAC and does not change when the VIP
//! moves; adverts and gratuitous ARPs on the wire carry it; a backup has the macvlan but never
//! holds the VIP on it; the daemon deletes its macvlan when it stops, and makes it again when
//! someone deletes it under a running master.
//!
//! Run alone: `cargo build -p upkeep && cargo test -p upkeep-tests --test vmac -- --nocapture`

use anyhow::{ensure, Context, Result};
use upkeep_tests::{lab_test, ms, secs, upkeep_config, wait_until, Instance, Lab};

const VIP: &str = "192.0.2.100";
const VMAC_DEV: &str = "vrrp.51";
const VMAC: &str = "00:00:5e:00:01:33";

fn web(priority: u8) -> Instance {
    let mut i = Instance::web(priority);
    i.extra_kdl.push("use-vmac".into());
    i
}

/// Host i's `vrrp.51`: its MAC and addresses, or None if it has none.
fn vmac_of(lab: &Lab, i: usize) -> Option<(String, String)> {
    let link = lab
        .ip(&lab.host_ns(i), &["-br", "link", "show", "dev", VMAC_DEV])
        .ok()?;
    let mac = link.split_whitespace().nth(2)?.to_string();
    let addrs = lab
        .ip(&lab.host_ns(i), &["-br", "addr", "show", "dev", VMAC_DEV])
        .unwrap_or_default();
    Some((mac, addrs))
}

fn holds_on_vmac(lab: &Lab, i: usize) -> bool {
    vmac_of(lab, i).is_some_and(|(_, a)| a.contains(&format!("{VIP}/24")))
}

/// The client's neighbour entry for the VIP: its MAC.
fn client_sees(lab: &Lab) -> String {
    let out = lab
        .ip(&lab.client_ns(), &["neigh", "show", VIP, "dev", "eth0"])
        .unwrap_or_default();
    let words: Vec<&str> = out.split_whitespace().collect();
    words
        .iter()
        .position(|w| *w == "lladdr")
        .and_then(|k| words.get(k + 1))
        .map_or_else(String::new, |m| m.to_string())
}

/// The source MACs of VRRP frames the client sees for a moment (tcpdump -e).
fn advert_source_macs(lab: &Lab) -> Result<Vec<String>> {
    let out = lab.exec(
        &lab.client_ns(),
        &[
            "timeout", "1", "tcpdump", "-c", "5", "-e", "-n", "-l", "-i", "eth0", "ip", "proto",
            "112",
        ],
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect())
}

#[test]
fn the_vip_keeps_the_virtual_mac_across_a_failover() {
    lab_test(2, |lab| {
        let h1 = lab.start_upkeep(1, &upkeep_config("h1", &[web(100)]))?;
        h1.wait_state("web", "master", secs(10))?;
        let h2 = lab.start_upkeep(2, &upkeep_config("h2", &[web(90)]))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(10))?;
        wait_until("h1 holding the VIP on vrrp.51", secs(5), || {
            holds_on_vmac(lab, 1)
        })?;

        // Both hosts have the macvlan with the virtual MAC; only the master has the VIP on it,
        // and neither has it on eth0.
        for i in [1, 2] {
            let (mac, _) = vmac_of(lab, i).with_context(|| format!("h{i} has no {VMAC_DEV}"))?;
            ensure!(mac == VMAC, "h{i}'s {VMAC_DEV} has MAC {mac}");
        }
        ensure!(
            !holds_on_vmac(lab, 2),
            "h2 holds the VIP: {:?}",
            vmac_of(lab, 2)
        );
        ensure!(
            lab.holders(VIP).is_empty(),
            "VIP on eth0 of {:?}",
            lab.holders(VIP)
        );

        // On the wire: adverts from the virtual MAC; the client reaches the VIP through it.
        let macs = advert_source_macs(lab)?;
        ensure!(
            !macs.is_empty() && macs.iter().all(|m| m == VMAC),
            "VRRP frames' source MACs: {macs:?}"
        );
        lab.wait_client_ping(VIP, secs(5))?;
        ensure!(
            client_sees(lab) == VMAC,
            "client's entry: {}",
            client_sees(lab)
        );

        // The master dies: h2 takes the VIP, the client's entry never changes.
        let pinger = lab.start_pinger(VIP, ms(10))?;
        h1.signal(libc::SIGKILL)?;
        wait_until("h2 holding the VIP on vrrp.51", secs(5), || {
            holds_on_vmac(lab, 2)
        })?;
        lab.wait_client_ping(VIP, secs(5))?;
        std::thread::sleep(ms(300));
        let pings = pinger.stop()?;
        println!(
            "failover: {} of {} pings lost, longest gap {:?}",
            pings.lost(),
            pings.sent(),
            pings.longest_gap()
        );
        ensure!(
            client_sees(lab) == VMAC,
            "client's entry after: {}",
            client_sees(lab)
        );
        let macs = advert_source_macs(lab)?;
        ensure!(
            !macs.is_empty() && macs.iter().all(|m| m == VMAC),
            "VRRP frames' source MACs after the failover: {macs:?}"
        );

        // Stopped, the daemon takes its macvlan with it.
        h2.stop(secs(10))?;
        ensure!(
            vmac_of(lab, 2).is_none(),
            "h2 left {VMAC_DEV}: {:?}",
            vmac_of(lab, 2)
        );
        Ok(())
    });
}

#[test]
fn a_deleted_vmac_interface_is_made_again_with_the_vip() {
    lab_test(1, |lab| {
        let h1 = lab.start_upkeep(1, &upkeep_config("h1", &[web(100)]))?;
        h1.wait_state("web", "master", secs(10))?;
        wait_until("the VIP on vrrp.51", secs(5), || holds_on_vmac(lab, 1))?;
        lab.ip(&lab.host_ns(1), &["link", "del", VMAC_DEV])?;
        let took = wait_until("the VIP back on a new vrrp.51", secs(5), || {
            holds_on_vmac(lab, 1)
        })?;
        println!("{VMAC_DEV} deleted by hand: made again with the VIP after {took:?}");
        ensure!(h1.state("web")? == "master", "{}", h1.instance("web")?);
        lab.wait_client_ping(VIP, secs(5))?;
        ensure!(
            client_sees(lab) == VMAC,
            "client's entry: {}",
            client_sees(lab)
        );
        Ok(())
    });
}
