//! keepalived's per-instance gratuitous ARP settings and the master's answers, on the wire: the
//! gratuitous ARPs a master sends (counted per VIP from a capture on its eth0) follow each
//! instance's `garp-repeat` / `garp-delay` over `global`'s; a lower-priority advert is answered
//! with `garp-lower-prio-repeat` ARPs, and with no advert of the master's own under
//! `lower-prio-no-advert`; `higher-prio-send-advert` sends one advert at the loser's priority
//! before its priority 0.
//!
//! Run alone: `cargo build -p upkeep && cargo test -p upkeep-tests --test keywords_garp`

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::ensure;
use upkeep_tests::{lab_test, ms, secs, AdvertSpec, Capture, Instance};

fn garps_for(cap: &Capture, vip: &str) -> Vec<Duration> {
    let vip: Ipv4Addr = vip.parse().expect("IPv4 literal");
    cap.gratuitous_arps()
        .into_iter()
        .filter(|(_, ip)| *ip == vip)
        .map(|(at, _)| at)
        .collect()
}

fn instance(name: &str, vrid: u8, vip: &str, extra: &[&str]) -> Instance {
    let mut i = Instance::new(name, vrid, 100).vip(vip);
    i.extra_kdl = extra.iter().map(|l| l.to_string()).collect();
    i
}

fn config(global: &str, instances: &[Instance]) -> String {
    let body = upkeep_tests::upkeep_config("h1", instances);
    body.replacen(
        "global { router-id \"h1\" }",
        &format!("global {{\n    router-id \"h1\"\n{global}}}"),
        1,
    )
}

/// Two instances of one daemon: one takes `global`'s `garp-repeat 3` and its own
/// `garp-delay "1s"`, the other its own `garp-repeat 4` and `garp-delay "0s"` (no second round).
#[test]
fn each_instance_sends_its_own_number_of_gratuitous_arps() {
    lab_test(1, |lab| {
        let a = instance("a", 51, "192.0.2.100/24", &["garp-delay \"1s\""]);
        let b = instance(
            "b",
            52,
            "192.0.2.101/24",
            &["garp-repeat 4", "garp-delay \"0s\""],
        );
        let kdl = config("    garp-repeat 3\n    garp-interval \"20ms\"\n", &[a, b]);
        let cap = lab.start_capture(1)?;
        let h1 = lab.start_upkeep(1, &kdl)?;
        h1.wait_state("a", "master", secs(10))?;
        h1.wait_state("b", "master", secs(10))?;
        // Past the second round of `a` (1 s after its takeover), with margin.
        std::thread::sleep(secs(3));
        let (ga, gb) = (
            garps_for(&cap, "192.0.2.100"),
            garps_for(&cap, "192.0.2.101"),
        );
        eprintln!("a: {ga:?}\nb: {gb:?}");
        ensure!(ga.len() == 6, "a: 3 now and 3 a second later, got {ga:?}");
        let gap = ga[3] - ga[2];
        ensure!(
            gap >= ms(900) && gap <= ms(1500),
            "a's second round {gap:?} after the first"
        );
        ensure!(
            ga[1] - ga[0] >= ms(15),
            "garp-interval 20ms between repeats: {ga:?}"
        );
        ensure!(
            gb.len() == 4,
            "b: its own 4 and no second round, got {gb:?}"
        );
        Ok(())
    });
}

/// A forged lower-priority advert for each of two masters: `quiet` (lower-prio-no-advert,
/// garp-lower-prio-repeat 3) answers with 3 gratuitous ARPs and no advert before its regular
/// one; `loud` (the default answer, garp-lower-prio-repeat 1) with an advert at once and 1 ARP.
#[test]
fn a_lower_priority_is_answered_as_each_instance_says() {
    lab_test(2, |lab| {
        let quiet = instance(
            "quiet",
            51,
            "192.0.2.100/24",
            &[
                "lower-prio-no-advert",
                "garp-lower-prio-repeat 3",
                "garp-lower-prio-delay \"0s\"",
                "garp-delay \"0s\"",
            ],
        );
        let loud = instance(
            "loud",
            52,
            "192.0.2.101/24",
            &[
                "garp-lower-prio-repeat 1",
                "garp-lower-prio-delay \"0s\"",
                "garp-delay \"0s\"",
            ],
        );
        let h1 = lab.start_upkeep(1, &config("", &[quiet, loud]))?;
        h1.wait_state("quiet", "master", secs(10))?;
        h1.wait_state("loud", "master", secs(10))?;
        std::thread::sleep(secs(1)); // past the takeovers' own rounds
        let cap = lab.start_capture(1)?;
        let started = Instant::now();
        // Half-way between two regular adverts, so an answer is far from either tick.
        let tick = cap.wait_for_packet("a regular advert of quiet", secs(3), |p| {
            p.outgoing && p.vrid() == Some(51)
        })?;
        std::thread::sleep(ms(500));
        let injected = started.elapsed();
        lab.inject(2, &AdvertSpec::v3(51, 50).vip("192.0.2.100"))?;
        lab.inject(2, &AdvertSpec::v3(52, 50).vip("192.0.2.101"))?;
        std::thread::sleep(secs(2));
        let packets = cap.packets();
        let after = |vrid: u8| -> Vec<Duration> {
            packets
                .iter()
                .filter(|p| p.outgoing && p.vrid() == Some(vrid) && p.at > injected)
                .map(|p| p.at)
                .collect()
        };
        let (q, l) = (after(51), after(52));
        eprintln!(
            "injected at {injected:?} (quiet's tick at {:?}); quiet adverts {q:?}, loud {l:?}",
            tick.at
        );
        ensure!(
            q.first().is_some_and(|t| *t - injected >= ms(300)),
            "quiet answered with an advert: {q:?} after {injected:?}\n{}",
            cap.dump()
        );
        ensure!(
            l.first().is_some_and(|t| *t - injected <= ms(100)),
            "loud did not answer at once: {l:?} after {injected:?}\n{}",
            cap.dump()
        );
        let arps = |vip| {
            garps_for(&cap, vip)
                .into_iter()
                .filter(|t| *t > injected)
                .count()
        };
        let (qa, la) = (arps("192.0.2.100"), arps("192.0.2.101"));
        ensure!(qa == 3, "quiet re-announced with {qa} ARPs, not 3");
        ensure!(la == 1, "loud re-announced with {la} ARPs, not 1");
        ensure!(h1.state("quiet")? == "master" && h1.state("loud")? == "master");
        Ok(())
    });
}

/// A master with `higher-prio-send-advert` that hears a higher priority sends the winner one
/// advert at its own priority, then its priority 0, and steps down.
#[test]
fn higher_prio_send_advert_sends_its_priority_before_stepping_down() {
    lab_test(2, |lab| {
        let web = instance("web", 51, "192.0.2.100/24", &["higher-prio-send-advert"]);
        let h1 = lab.start_upkeep(1, &config("", &[web]))?;
        h1.wait_state("web", "master", secs(10))?;
        let cap = lab.start_capture(1)?;
        // Well after a regular advert, so that the answer is not mistaken for one.
        cap.wait_for_packet("a regular advert", secs(3), |p| {
            p.outgoing && p.vrid() == Some(51)
        })?;
        std::thread::sleep(ms(300));
        lab.inject(2, &AdvertSpec::v3(51, 200).vip("192.0.2.100"))?;
        h1.wait_state("web", "backup", secs(3))?;
        std::thread::sleep(ms(200));
        let sent: Vec<_> = cap
            .packets()
            .into_iter()
            .filter(|p| p.outgoing && p.vrid() == Some(51))
            .collect();
        let zero = sent.iter().position(|p| p.priority() == Some(0));
        ensure!(
            zero.is_some_and(|z| z > 0),
            "no priority 0 after an advert:\n{}",
            cap.dump()
        );
        let z = zero.unwrap_or_default();
        let (before, resign) = (&sent[z - 1], &sent[z]);
        ensure!(
            before.priority() == Some(100) && resign.at - before.at <= ms(50),
            "no advert at priority 100 right before the priority 0:\n{}",
            cap.dump()
        );
        // To the winner alone: other backups must not take it for a lower-priority master.
        ensure!(
            before.dst.to_string() == "192.0.2.2",
            "the priority-100 advert went to {}, not the winner 192.0.2.2",
            before.dst
        );
        Ok(())
    });
}
