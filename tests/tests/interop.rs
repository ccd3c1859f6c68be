//! upkeep and keepalived 2.2 on the same LAN, one each, VRRPv2 (PASS auth) and VRRPv3, with
//! either as the initial master. Each must accept the other's adverts (no second master),
//! take over when the other stops, and yield again when the higher-priority one returns.
//!
//! Run alone: `cargo build -p upkeep && cargo test -p upkeep-tests --test interop`

use std::time::Instant;

use anyhow::{ensure, Result};
use upkeep_tests::{
    keepalived_available, keepalived_config, lab_test, secs, upkeep_config, Daemon, Instance, Kind,
    Lab,
};

const VIP: &str = "192.0.2.100";

fn start(lab: &Lab, i: usize, kind: Kind, inst: &Instance) -> Result<Daemon> {
    let rid = format!("h{i}");
    let inst = std::slice::from_ref(inst);
    match kind {
        Kind::Upkeep => lab.start_upkeep(i, &upkeep_config(&rid, inst)),
        Kind::Keepalived => lab.start_keepalived(i, &keepalived_config(&rid, inst)),
    }
}

fn other(kind: Kind) -> Kind {
    match kind {
        Kind::Upkeep => Kind::Keepalived,
        Kind::Keepalived => Kind::Upkeep,
    }
}

/// h1 runs `first` at priority 100, h2 the other implementation at 90.
fn interop(version: u8, first: Kind) {
    assert!(
        keepalived_available(),
        "keepalived is not installed (scripts/install-deps.sh)"
    );
    lab_test(2, |lab| {
        let interval = if version == 2 { 1000 } else { 200 };
        let inst = |prio| {
            let i = Instance::new("vi", 51, prio)
                .version(version)
                .interval_ms(interval)
                .vip("192.0.2.100/24");
            if version == 2 {
                i.auth_pass("1234")
            } else {
                i
            }
        };
        let (hi, lo) = (inst(100), inst(90));
        let mdi = lo.master_down_interval();

        let h1 = start(lab, 1, first, &hi)?;
        lab.wait_holders(VIP, &[1], secs(10))?;
        let h2 = start(lab, 2, other(first), &lo)?;
        // h2 hears h1: an upkeep backup names it; a keepalived backup simply never claims the
        // VIP for longer than its Master_Down_Interval (it would, had it rejected the adverts).
        if h2.kind() == Kind::Upkeep {
            h2.wait_backup_of("vi", "192.0.2.1", secs(5))?;
        }
        lab.expect_holders_stable(VIP, &[1], mdi + secs(1))?;
        ensure!(
            !h2.log().contains("Entering MASTER STATE"),
            "keepalived h2 became master:\n{}",
            h2.log_tail(20)
        );
        for d in [&h1, &h2] {
            if d.kind() == Kind::Upkeep {
                let drops = d.drops()?;
                ensure!(
                    drops.values().all(|&n| n == 0),
                    "{d} dropped peer adverts: {drops:?}"
                );
            }
        }
        lab.wait_client_ping(VIP, secs(5))?;

        // The master stops (priority 0): the other implementation takes over promptly.
        let t0 = Instant::now();
        h1.signal(upkeep_tests::SIGTERM)?;
        lab.wait_holders(VIP, &[2], secs(10))?;
        ensure!(
            t0.elapsed() < mdi,
            "takeover took {:?}; Master_Down_Interval is {mdi:?}",
            t0.elapsed()
        );
        let st = h1.wait_exit(secs(10))?;
        ensure!(st.success(), "{h1} exited with {st}");
        if h2.kind() == Kind::Upkeep {
            h2.wait_state("vi", "master", secs(2))?;
        }
        lab.wait_client_ping(VIP, secs(5))?;

        // The higher-priority one returns and preempts the other implementation.
        let h1 = start(lab, 1, first, &hi)?;
        lab.wait_holders(VIP, &[1], mdi * 2 + secs(5))?;
        if h2.kind() == Kind::Upkeep {
            h2.wait_backup_of("vi", "192.0.2.1", secs(5))?;
        } else {
            h1.wait_state("vi", "master", secs(2))?;
        }
        lab.expect_holders_stable(VIP, &[1], mdi.max(secs(1)))?;
        lab.wait_client_ping(VIP, secs(5))?;
        Ok(())
    });
}

#[test]
fn v2_upkeep_master_keepalived_backup() {
    interop(2, Kind::Upkeep);
}

#[test]
fn v2_keepalived_master_upkeep_backup() {
    interop(2, Kind::Keepalived);
}

#[test]
fn v3_upkeep_master_keepalived_backup() {
    interop(3, Kind::Upkeep);
}

#[test]
fn v3_keepalived_master_upkeep_backup() {
    interop(3, Kind::Keepalived);
}
