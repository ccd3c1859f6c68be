//! Fault injection (issue 8): a partition and its healing, a flapping link, SIGKILL and restart,
//! random loss of VRRP packets, and CPU starvation, each on two upkeep hosts with 100 ms VRRPv3
//! adverts, each asserting what a user would check afterwards: who holds the VIP, what the
//! routing table says, what went over the wire. Every test prints its figures (`--nocapture`).
//!
//! Run alone: `cargo build -p upkeep && cargo test -p upkeep-tests --test faults -- --nocapture`

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use upkeep_tests::{
    lab_test, ms, secs, upkeep_config, wait_until, Captured, Daemon, Instance, Lab, SIGKILL,
};

const VIP: &str = "192.0.2.100";
const ROUTE: &str = "198.51.100.0/24";
const INTERVAL: Duration = Duration::from_millis(100);

/// These tests measure timing, and one of them saturates the CPUs: they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `body` in a two-host lab, after every other test of this file is done.
fn serial_lab(body: impl FnOnce(&Lab) -> Result<()>) {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    lab_test(2, body);
}

/// [`Instance::web`] with adverts every [`INTERVAL`].
fn web(priority: u8) -> Instance {
    Instance::web(priority).interval(INTERVAL)
}

/// h1 at 100 (master, holding the VIP), h2 at 90 (its backup).
fn pair(lab: &Lab, h1: &Instance, h2: &Instance) -> Result<(Daemon, Daemon)> {
    let d1 = lab.start_instance(1, h1)?;
    d1.wait_state("web", "master", secs(10))?;
    let d2 = lab.start_instance(2, h2)?;
    d2.wait_backup_of("web", "192.0.2.1", secs(10))?;
    lab.wait_holders(VIP, &[1], secs(5))?;
    Ok((d1, d2))
}

/// Hosts holding the VIP, polled as fast as `ip` answers, until `expected`; returns the time.
fn wait_holders_fast(lab: &Lab, expected: &[usize], timeout: Duration) -> Result<Duration> {
    let t0 = Instant::now();
    loop {
        let h = lab.holders(VIP);
        if h == expected {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > timeout {
            bail!("holders of {VIP} still {h:?} after {timeout:?}, expected {expected:?}");
        }
    }
}

/// Times from one advert of `src` to the next, in a capture.
fn advert_gaps(pkts: &[Captured], src: &str) -> Vec<Duration> {
    let at: Vec<Duration> = pkts
        .iter()
        .filter(|p| p.src.to_string() == src && p.advert.is_ok())
        .map(|p| p.at)
        .collect();
    at.windows(2).map(|w| w[1] - w[0]).collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let k = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[k.min(sorted.len() - 1)]
}

/// A partition that keeps every link up (the bridge stops forwarding h1's port): both sides
/// elect a master. Healing it leaves one master (the higher, h1, which never stepped down)
/// within about an advert interval, and the loser without the VIP.
#[test]
fn partition_then_heal_leaves_one_master_within_an_interval() {
    serial_lab(|lab| {
        let (h1, h2) = pair(lab, &web(100), &web(90))?;
        let h1_transitions = h1.counter("web", "transitions")?;

        lab.set_port_forwarding(1, false)?;
        let split = Instant::now();
        h2.wait_state("web", "master", secs(3))?;
        let h2_master_after = split.elapsed();
        lab.wait_holders(VIP, &[1, 2], secs(2))?;
        ensure!(h1.state("web")? == "master", "h1 left master while cut off");
        std::thread::sleep(ms(500));
        ensure!(
            lab.holders(VIP) == [1, 2],
            "not both masters during the partition"
        );

        lab.set_port_forwarding(1, true)?;
        let one_holder = wait_holders_fast(lab, &[1], secs(3))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(2))?;
        println!(
            "partition: h2 master {h2_master_after:?} after the split; after healing one VIP \
             holder in {one_holder:?} (interval {INTERVAL:?})"
        );
        ensure!(
            one_holder < INTERVAL * 2,
            "two VIP holders for {one_holder:?} after healing (advert interval {INTERVAL:?})"
        );
        ensure!(
            h1.counter("web", "transitions")? == h1_transitions,
            "the winner h1 stepped down on the way: {}",
            h1.instance("web")?
        );
        ensure!(!lab.has_addr(2, VIP), "the loser h2 kept the VIP");
        lab.expect_holders_stable(VIP, &[1], secs(1))?;
        lab.wait_client_ping(VIP, secs(10))?;
        Ok(())
    });
}

/// keepalived issue #166, made deterministic: during the partition the client follows h2 (its
/// gratuitous ARP); on healing, h2 hears h1 first and steps down (here forced by h1 not hearing
/// h2's ordinary adverts; without that it is the outcome about half the time). h2 resigns with
/// priority 0 as it steps down, and h1, the winner, must announce the VIP again, or the client
/// keeps sending to h2's MAC until its ARP entry expires.
#[test]
fn partition_heal_winner_reannounces_to_the_losing_side() {
    serial_lab(|lab| {
        let (h1, h2) = pair(lab, &web(100), &web(90))?;
        let h1_master = Instant::now();
        lab.wait_client_ping(VIP, secs(5))?;
        ensure!(lab.client_neighbour(VIP).0 == Some(1), "client not on h1");

        lab.set_port_forwarding(1, false)?;
        h2.wait_state("web", "master", secs(3))?;
        wait_until("the client to follow h2", secs(3), || {
            lab.client_neighbour(VIP).0 == Some(2)
        })?;
        // Past the client's ARP locktime (1 s), and past h1's own second GARP round (5 s after
        // it became master), which must not be what fixes the client below.
        std::thread::sleep(ms(1200).max(secs(6).saturating_sub(h1_master.elapsed())));

        // h1 hears none of h2's ordinary adverts, so h2 (hearing h1) steps down first; only
        // h2's step-down (priority 0, the VRRP priority byte at offset 2) reaches h1.
        lab.nft_vrrp_drop(1, "@th,16,8 != 0 ")?;
        lab.set_port_forwarding(1, true)?;
        let healed = Instant::now();
        wait_holders_fast(lab, &[1], secs(3))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(2))?;
        lab.nft_clear(1)?;
        ensure!(h1.state("web")? == "master", "{}", h1.instance("web")?);
        let back = wait_until("the client's ARP entry to point at h1", secs(1), || {
            lab.client_neighbour(VIP).0 == Some(1)
        });
        println!(
            "partition heal: client on h{:?} {:?} after healing",
            lab.client_neighbour(VIP).0,
            healed.elapsed()
        );
        back.context(
            "after healing, the winner sent no gratuitous ARP: the client still sends the VIP's \
             traffic to the loser's MAC",
        )?;
        Ok(())
    });
}

/// The master's link goes down and up 20 times at irregular short intervals; at the end no host
/// that is not master has the VIP, and exactly one host holds it.
#[test]
fn link_flapping_on_the_master_leaves_no_vip_on_a_non_master() {
    serial_lab(|lab| {
        let (h1, h2) = pair(lab, &web(100), &web(90))?;
        let t0 = Instant::now();
        for k in 0..20u64 {
            lab.link_down(1)?;
            std::thread::sleep(ms(20 + (k * 37) % 250));
            lab.link_up(1)?;
            std::thread::sleep(ms(20 + (k * 53) % 400));
        }
        let flapping = t0.elapsed();
        // Let it settle: h1 (preempting, higher) ends as master.
        h1.wait_state("web", "master", secs(5))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(5))?;
        let holders = lab
            .wait_holders(VIP, &[1], secs(3))
            .map(|_| lab.holders(VIP));
        for (i, d) in [(1, &h1), (2, &h2)] {
            let state = d.state("web")?;
            ensure!(
                state == "master" || !lab.has_addr(i, VIP),
                "h{i} is {state} but has the VIP"
            );
            ensure!(d.is_running(), "h{i} exited: {}", d.log_tail(20));
        }
        holders?;
        lab.expect_holders_stable(VIP, &[1], secs(1))?;
        println!(
            "flapping: 20 down/up cycles in {flapping:?}; h1 {} transitions, h2 {}",
            h1.counter("web", "transitions")?,
            h2.counter("web", "transitions")?
        );
        lab.wait_client_ping(VIP, secs(3))?;
        Ok(())
    });
}

/// How many times `dest` appears in host i's routing tables.
fn route_count(lab: &Lab, i: usize, dest: &str) -> Result<usize> {
    let out = lab.ip(&lab.host_ns(i), &["route", "show", "table", "all"])?;
    Ok(out
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(dest))
        .count())
}

/// SIGKILL of the whole unit (the daemon and its VIP guard, as `systemctl kill -s KILL` does)
/// leaves the VIP and route behind (nothing can remove them); a restart clears them before it
/// elects, so the host ends with the VIP and the route once if it wins, and with neither if it
/// loses.
#[test]
fn sigkill_and_restart_leave_no_stale_vip_and_no_duplicate_route() {
    serial_lab(|lab| {
        let routed = |p: u8| web(p).route(ROUTE, "192.0.2.254");
        let (h1, h2) = pair(lab, &routed(100), &routed(90))?;
        ensure!(route_count(lab, 1, ROUTE)? == 1, "{}", lab.routes(1));

        // Killed while master: the backup takes over; the dead host keeps what it had.
        lab.kill_host_processes(1);
        h1.wait_exit(secs(2))?;
        drop(h1);
        h2.wait_state("web", "master", secs(3))?;
        let stale = lab.has_addr(1, VIP) && route_count(lab, 1, ROUTE)? == 1;
        ensure!(route_count(lab, 2, ROUTE)? == 1, "h2: {}", lab.routes(2));

        // Restarted (preempting, higher): master again, the VIP and the route exactly once.
        let h1 = lab.start_instance(1, &routed(100))?;
        h1.wait_state("web", "master", secs(5))?;
        lab.wait_holders(VIP, &[1], secs(3))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(3))?;
        wait_until("h2 to drop the route", secs(2), || {
            route_count(lab, 2, ROUTE).ok() == Some(0)
        })?;
        ensure!(
            route_count(lab, 1, ROUTE)? == 1,
            "h1 route table after restart:\n{}",
            lab.ip(&lab.host_ns(1), &["route", "show", "table", "all"])?
        );
        let addrs = lab.addrs(1);
        let vips = addrs.iter().filter(|(a, _)| a.to_string() == VIP).count();
        ensure!(vips == 1, "h1 addresses: {addrs:?}");

        // Killed again, and restarted below h2: it must clear the leftovers and stay backup.
        lab.kill_host_processes(1);
        h1.wait_exit(secs(2))?;
        drop(h1);
        h2.wait_state("web", "master", secs(3))?;
        let h1 = lab.start_instance(1, &routed(80))?;
        h1.wait_backup_of("web", "192.0.2.2", secs(5))?;
        lab.wait_holders(VIP, &[2], secs(3))?;
        ensure!(
            route_count(lab, 1, ROUTE)? == 0,
            "the restarted backup kept the route:\n{}",
            lab.routes(1)
        );
        ensure!(route_count(lab, 2, ROUTE)? == 1, "h2: {}", lab.routes(2));
        lab.expect_holders_stable(VIP, &[2], secs(1))?;
        println!(
            "sigkill: leftovers on the killed master before restart: {stale}; after restarts: \
             VIP on {:?}, route on h1 {} / h2 {}",
            lab.holders(VIP),
            route_count(lab, 1, ROUTE)?,
            route_count(lab, 2, ROUTE)?
        );
        Ok(())
    });
}

/// (dropped, accepted) VRRP packets counted by the [`lossy`] rule in host i.
fn loss_counters(lab: &Lab, i: usize) -> Result<(u64, u64)> {
    let out = lab.exec(&lab.host_ns(i), &["nft", "list", "table", "inet", "f"])?;
    let text = String::from_utf8_lossy(&out.stdout);
    let counts: Vec<u64> = text
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let k = words.iter().position(|w| *w == "packets")?;
            words.get(k + 1)?.parse().ok()
        })
        .collect();
    match counts.as_slice() {
        [dropped, accepted] => Ok((*dropped, *accepted)),
        _ => bail!("unexpected nft counters:\n{text}"),
    }
}

/// 20% of VRRP packets dropped at random on both hosts' input, priorities 100 and 90, for 20 s.
/// Returns (h1 transitions, h2 transitions, longest client outage).
fn under_loss(lab: &Lab) -> Result<(u64, u64, Duration)> {
    let (h1, h2) = pair(lab, &web(100), &web(90))?;
    lab.wait_client_ping(VIP, secs(5))?;
    lab.nft_vrrp_loss(1, 20)?;
    lab.nft_vrrp_loss(2, 20)?;
    let t = |d: &Daemon| d.counter("web", "transitions");
    let (t1, t2) = (t(&h1)?, t(&h2)?);
    let cap = lab.start_capture(2)?;
    let pinger = lab.start_pinger(VIP, ms(10))?;
    let samples = lab.sample_holders(VIP, secs(20), ms(100));
    let pings = pinger.stop()?;
    let pkts = cap.stop()?;
    let (dropped, accepted) = loss_counters(lab, 2)?;
    let from_h2 = pkts
        .iter()
        .filter(|p| p.outgoing && p.advert.is_ok())
        .count();
    let (d1, d2) = (t(&h1)? - t1, t(&h2)? - t2);
    let not_h1 = samples.iter().filter(|(_, h)| !h.contains(&1)).count();
    println!(
        "loss: h2 dropped {dropped} of {} adverts ({:.1}%); transitions in 20 s: h1 {d1}, \
         h2 {d2}; adverts sent by h2 {from_h2}; samples without the VIP on h1 {not_h1} of {}; \
         client: {} of {} pings lost, longest outage {:?}",
        dropped + accepted,
        100.0 * dropped as f64 / (dropped + accepted).max(1) as f64,
        samples.len(),
        pings.lost(),
        pings.sent(),
        pings.longest_gap()
    );
    ensure!(
        dropped > 0 && accepted > 0,
        "the loss rule did not act: {dropped} dropped, {accepted} accepted"
    );
    // The master never loses the VIP, whatever the backup does.
    ensure!(
        d1 == 0,
        "h1 changed state {d1} times: {}",
        h1.instance("web")?
    );
    ensure!(not_h1 == 0, "h1 lost the VIP in {not_h1} samples");
    Ok((d1, d2, pings.longest_gap()))
}

/// 20% VRRP loss, priority gap 10: the master keeps the VIP throughout and clients see no
/// outage. The backup may still take over for a moment: RFC Master_Down_Interval (3 intervals
/// plus skew) tolerates two lost adverts in a row, not three, and at 20% loss and 10 adverts a
/// second three in a row happen in 20 s with probability 0.73. The master's answer sends it
/// back at once; see the test below for the strict version, with `master-down-adverts`.
#[test]
fn twenty_percent_vrrp_loss_keeps_the_master_and_the_clients() {
    serial_lab(|lab| {
        let (_, d2, outage) = under_loss(lab)?;
        ensure!(
            d2 % 2 == 0,
            "the backup did not return to backup after a takeover ({d2} transitions)"
        );
        ensure!(
            outage < ms(500),
            "client outage {outage:?} under 20% VRRP loss"
        );
        Ok(())
    });
}

/// The CI failure behind `RESIGN_REPEATS`: the backup takes over for a moment (its gratuitous
/// ARP moves the client to it) and the master hears nothing of it: neither its adverts as
/// master nor its one multicast priority-0 notice when it steps down. Before, the master never
/// re-announced and the client sent to the ex-master until its neighbour entry expired (8 s).
/// Now the ex-master repeats the notice to the master alone (unicast), and the master's
/// announcement brings the client back within the interval.
#[test]
fn a_takeover_the_master_never_hears_of_leaves_the_clients_on_the_master() {
    serial_lab(|lab| {
        let (h1, h2) = pair(lab, &web(100), &web(90))?;
        lab.wait_client_ping(VIP, secs(5))?;
        // h1 hears from h2 only priority 0 sent to it alone (the VRRP priority is byte 2).
        lab.nft_load(
            1,
            "table inet f {\n  chain in {\n    type filter hook input priority 0;\n    \
             meta l4proto 112 ip daddr 224.0.0.18 counter drop\n    \
             meta l4proto 112 @th,16,8 != 0 counter drop\n    \
             meta l4proto 112 counter accept\n  }\n}\n",
        )?;
        let t1 = h1.counter("web", "transitions")?;
        let pinger = lab.start_pinger(VIP, ms(10))?;
        std::thread::sleep(ms(500));
        // h2 stops hearing h1 long enough to take over, then hears it again and steps down.
        lab.nft_vrrp_drop(2, "")?;
        h2.wait_state("web", "master", secs(5))?;
        std::thread::sleep(ms(300));
        lab.nft_clear(2)?;
        h2.wait_state("web", "backup", secs(5))?;
        // Long enough for the client's neighbour entry to expire had nobody re-announced.
        std::thread::sleep(secs(10));
        let pings = pinger.stop()?;
        let unicast_zeros = nft_counters(lab, 1)?.get(2).copied().unwrap_or(0);
        println!(
            "brief unheard takeover: client lost {} of {} pings, longest outage {:?}; h1 \
             accepted {unicast_zeros} VRRP packets from h2 (its notices)",
            pings.lost(),
            pings.sent(),
            pings.longest_gap()
        );
        ensure!(
            h1.counter("web", "transitions")? == t1,
            "h1 did not stay master: {}",
            h1.instance("web")?
        );
        ensure!(
            pings.longest_gap() < secs(1),
            "the client lost the VIP for {:?} after the backup stepped down",
            pings.longest_gap()
        );
        Ok(())
    });
}

/// Drops `percent`% of VRRP packets at random both on host i's input and on its output, with
/// counters: an advert crosses the sender's output and the receiver's input, so it is lost with
/// probability 1 - (1 - p)^2 (36% at 20%).
fn lossy_both_ways(lab: &Lab, i: usize, percent: u8) -> Result<()> {
    let chain = |name: &str, hook: &str| {
        format!(
            "  chain {name} {{\n    type filter hook {hook} priority 0;\n    \
             meta l4proto 112 numgen random mod 100 < {percent} counter drop\n    \
             meta l4proto 112 counter accept\n  }}\n"
        )
    };
    let rules = format!(
        "table inet f {{\n{}{}}}\n",
        chain("in", "input"),
        chain("out", "output")
    );
    lab.nft_load(i, &rules)
}

/// Every `packets N` counter of host i's table `f`, in rule order.
fn nft_counters(lab: &Lab, i: usize) -> Result<Vec<u64>> {
    let out = lab.exec(&lab.host_ns(i), &["nft", "list", "table", "inet", "f"])?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let k = words.iter().position(|w| *w == "packets")?;
            words.get(k + 1)?.parse().ok()
        })
        .collect())
}

/// A counter of instance `web` on host i, from the daemon itself (`upkeep status --json`).
fn live_counter(lab: &Lab, i: usize, field: &str) -> Result<u64> {
    let v = lab.upkeep_status(i)?;
    v["instances"][0][field]
        .as_u64()
        .with_context(|| format!("h{i} has no {field}: {v}"))
}

/// `master-down-adverts` of the strict loss test. The backup takes over only when this many of
/// the master's adverts in a row are lost (Skew_Time, 60 ms at priority 90, is less than one
/// more interval). With 20% dropped on the master's output and again on the backup's input an
/// advert is lost with p = 1 - 0.8^2 = 0.36, so a given advert starts a run of 16 losses with
/// probability 0.36^16 = 8.0e-8; over the ~600 adverts of the test (and its start) the chance
/// of one false takeover is below 600 × 8.0e-8 = 4.8e-5. At the RFC's 3 it would be
/// 600 × 0.36^3 ≈ 28 expected takeovers.
const LOSSY_DOWN_ADVERTS: u32 = 16;

/// How long the strict loss test runs.
const LOSSY_RUN: Duration = Duration::from_secs(45);

/// The requirement, strictly: 20% of VRRP packets lost at random in both directions on
/// both hosts, priority gap 10, 100 ms adverts, 45 s: no transition at all on either host and
/// no client outage; with `master-down-adverts 16`. Then the master dies (SIGKILL) and the
/// backup still takes over within 16 intervals plus skew.
#[test]
fn twenty_percent_vrrp_loss_causes_no_transition_at_all() {
    serial_lab(|lab| {
        let tolerant = |priority| {
            let mut i = web(priority);
            i.extra_kdl
                .push(format!("master-down-adverts {LOSSY_DOWN_ADVERTS}"));
            i
        };
        let (h1, h2) = pair(lab, &tolerant(100), &tolerant(90))?;
        lab.wait_client_ping(VIP, secs(5))?;
        lossy_both_ways(lab, 1, 20)?;
        lossy_both_ways(lab, 2, 20)?;
        let t = |d: &Daemon| d.counter("web", "transitions");
        // Counters through the control socket: status.json is rewritten when something is
        // received or changes, and a master only sends.
        let sent = |_: &Daemon| live_counter(lab, 1, "adverts_sent");
        let received = |_: &Daemon| live_counter(lab, 2, "adverts_received");
        let (t1, t2, s1, r2) = (t(&h1)?, t(&h2)?, sent(&h1)?, received(&h2)?);
        let pinger = lab.start_pinger(VIP, ms(10))?;
        let samples = lab.sample_holders(VIP, LOSSY_RUN, ms(100));
        let pings = pinger.stop()?;
        let (d1, d2) = (t(&h1)? - t1, t(&h2)? - t2);
        let (s1, r2) = (sent(&h1)? - s1, received(&h2)? - r2);
        // [input dropped, input accepted, output dropped, output accepted]
        let (c1, c2) = (nft_counters(lab, 1)?, nft_counters(lab, 2)?);
        ensure!(
            c1.len() == 4 && c2.len() == 4,
            "nft counters: {c1:?} {c2:?}"
        );
        let not_h1 = samples.iter().filter(|(_, h)| !h.contains(&1)).count();
        let pct = |d: u64, a: u64| 100.0 * d as f64 / (d + a).max(1) as f64;
        // h1's adverts_sent counts those the kernel took; its output rule refused the others.
        let tried = s1 + c1[2];
        println!(
            "strict loss ({LOSSY_RUN:?}, master-down-adverts {LOSSY_DOWN_ADVERTS}): h1 tried \
             {tried} adverts, its output dropped {} ({:.1}%), h2's input dropped {} ({:.1}%), \
             h2 received {r2} ({:.1}% lost end to end); transitions: h1 {d1}, h2 {d2}; samples \
             without the VIP on h1 {not_h1} of {}; client: {} of {} pings lost, longest \
             outage {:?}",
            c1[2],
            pct(c1[2], c1[3]),
            c2[0],
            pct(c2[0], c2[1]),
            100.0 - 100.0 * r2 as f64 / tried.max(1) as f64,
            samples.len(),
            pings.lost(),
            pings.sent(),
            pings.longest_gap()
        );
        ensure!(
            c1[2] > 0 && c2[0] > 0 && r2 < tried,
            "the loss rules did not act: {c1:?} {c2:?}"
        );
        ensure!(
            d1 == 0,
            "h1 changed state {d1} times: {}",
            h1.instance("web")?
        );
        ensure!(
            d2 == 0,
            "h2 changed state {d2} times: {}",
            h2.instance("web")?
        );
        ensure!(not_h1 == 0, "h1 lost the VIP in {not_h1} samples");
        ensure!(
            pings.longest_gap() < ms(200),
            "client outage {:?} under 20% VRRP loss",
            pings.longest_gap()
        );

        // The master dies: the backup takes over within N intervals plus skew of the last
        // advert it heard, which was before the kill (plus a margin for polling status.json).
        let down = INTERVAL * LOSSY_DOWN_ADVERTS + ms(60);
        let killed = Instant::now();
        h1.signal(SIGKILL)?;
        h2.wait_state("web", "master", down + secs(2))?;
        let took = killed.elapsed();
        println!(
            "strict loss: h1 killed, h2 master after {took:?} (Master_Down_Interval {down:?})"
        );
        ensure!(
            took <= down + ms(250),
            "h2 took {took:?} to take over; Master_Down_Interval is {down:?}"
        );
        ensure!(lab.has_addr(2, VIP), "h2 master without the VIP");
        Ok(())
    });
}

/// The master's CPUs are saturated by busy loops (two per core, at the daemon's own priority)
/// and its check is slow (2 s per run, every 200 ms); adverts still leave on time: no gap
/// between two of them, as seen by the backup, exceeds two intervals (one advert late by at
/// most one interval), and the backup never takes over.
#[test]
fn cpu_starvation_and_a_slow_check_do_not_delay_adverts() {
    serial_lab(|lab| {
        lab.let_others_through()?; // the check runs as the unprivileged default user
        let slow = lab.write_script("slow.sh", "sleep 2")?;
        let kdl = format!(
            "{}check \"slow\" {{\n    script {:?}\n    interval \"200ms\"\n    timeout \"3s\"\n    \
             weight -5\n}}\n",
            upkeep_config("h1", &[web(100).with_track("slow")]),
            slow.display().to_string()
        );
        let h1 = lab.start_upkeep(1, &kdl)?;
        h1.wait_state("web", "master", secs(10))?;
        let h2 = lab.start_instance(2, &web(90))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(10))?;
        let t2 = h2.counter("web", "transitions")?;

        let cap = lab.start_capture(2)?;
        let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
        let hogs = lab.busy_loops(1, 2 * cpus)?;
        std::thread::sleep(secs(8));
        drop(hogs);
        let pkts = cap.stop()?;
        let runs = h1.check("slow")?["runs"].as_u64().unwrap_or(0);
        let mut gaps = advert_gaps(&pkts, "192.0.2.1");
        gaps.sort();
        let max = gaps.last().copied().unwrap_or(Duration::MAX);
        println!(
            "starvation: {} busy loops for 8 s, {} adverts from h1; gaps p50 {:?} p99 {:?} \
             max {max:?}; slow check ran {} times",
            2 * cpus,
            gaps.len() + 1,
            percentile(&gaps, 0.5),
            percentile(&gaps, 0.99),
            runs
        );
        ensure!(
            runs >= 2,
            "the slow check did not run: {}",
            h1.check("slow")?
        );
        ensure!(
            gaps.len() >= 60,
            "only {} adverts from h1 in 8 s",
            gaps.len() + 1
        );
        ensure!(
            max <= INTERVAL * 2,
            "an advert was late by more than one interval: longest gap {max:?}"
        );
        ensure!(
            h2.counter("web", "transitions")? == t2,
            "the backup took over during the starvation: {}",
            h2.instance("web")?
        );
        ensure!(h1.state("web")? == "master", "{}", h1.instance("web")?);
        Ok(())
    });
}

trait Track {
    fn with_track(self, check: &str) -> Self;
}

impl Track for Instance {
    fn with_track(mut self, check: &str) -> Self {
        self.extra_kdl.push(format!("track {check:?}"));
        self
    }
}

/// An operator's firewall rule that drops the master's VRRP output: its sends fail (EPERM), the
/// backup hears nothing and takes over. The master steps down after `master-down-adverts`
/// refused adverts instead of holding the VIP beside the new master, follows it (its input
/// still passes) and is held back from preempting until released; then it preempts back.
#[test]
fn a_master_whose_adverts_are_refused_steps_down() {
    serial_lab(|lab| {
        let (h1, h2) = pair(lab, &web(100), &web(90))?;
        lab.nft_load(
            1,
            "table inet f {\n  chain out {\n    type filter hook output priority 0;\n    \
             meta l4proto 112 counter drop\n  }\n}\n",
        )?;
        let cut = Instant::now();
        h2.wait_state("web", "master", secs(3))?;
        let one = lab.wait_holders(VIP, &[2], secs(2));
        println!(
            "adverts refused on h1: h2 master and sole holder after {:?} ({one:?})",
            cut.elapsed()
        );
        one?;
        lab.expect_holders_stable(VIP, &[2], secs(2))?;
        ensure!(h1.state("web")? == "backup", "{}", h1.instance("web")?);
        ensure!(
            h1.counter("web", "adverts_unsent")? >= 3,
            "{}",
            h1.instance("web")?
        );
        lab.wait_client_ping(VIP, secs(5))?;

        // The rule gone and the hold released: h1, higher, preempts back.
        lab.nft_clear(1)?;
        let out = lab.upkeep_cli(&[
            "release",
            "web",
            "--state-dir",
            &lab.state_dir(1).display().to_string(),
        ])?;
        ensure!(
            out.status.success(),
            "upkeep release: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lab.wait_holders(VIP, &[1], secs(3))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(3))?;
        Ok(())
    });
}
