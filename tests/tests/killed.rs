//! A daemon killed without a chance to clean up (`kill -9 PID`, the OOM killer, an abort): its
//! VIP guard takes the addresses off the host, so the backup that takes over is their only
//! holder. Without it the dead host's kernel keeps the VIP and answers ARP for it beside the
//! new master until someone restarts the daemon.
//!
//! Run alone: `cargo build -p upkeep && cargo test -p upkeep-tests --test killed`

use std::process::Command;
use std::time::Instant;

use anyhow::ensure;
use upkeep_tests::{lab_test, secs, wait_until, Instance};

const VIP: &str = "192.0.2.100";

/// The master's daemon process alone gets SIGKILL (not its process group: what `kill -9 PID`
/// and the OOM killer do). Its VIP leaves h1 at once; h2 takes over after Master_Down_Interval
/// and is then the only holder; the guard leaves nothing running in h1's namespace.
#[test]
fn a_master_killed_with_sigkill_leaves_no_vip_behind() {
    lab_test(2, |lab| {
        let h1 = lab.start_instance(1, &Instance::web(100))?;
        h1.wait_state("web", "master", secs(5))?;
        let h2 = lab.start_instance(2, &Instance::web(90))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(5))?;
        lab.wait_holders(VIP, &[1], secs(5))?;

        let kill = Command::new("kill")
            .args(["-KILL", &h1.pid().to_string()])
            .status()?;
        ensure!(kill.success(), "kill -KILL {}", h1.pid());
        let killed = Instant::now();
        h1.wait_exit(secs(2))?;
        let off_h1 = wait_until("the VIP off the killed h1", secs(2), || {
            !lab.has_addr(1, VIP)
        });
        h2.wait_state("web", "master", secs(3))?;
        let one_holder = lab.wait_holders(VIP, &[2], secs(2));
        println!(
            "SIGKILL of h1's daemon: VIP off h1 after {off_h1:?}, h2 master and sole holder \
             {:?} after the kill",
            killed.elapsed()
        );
        one_holder?;
        off_h1?;
        lab.expect_holders_stable(VIP, &[2], secs(1))?;
        lab.wait_client_ping(VIP, secs(5))?;
        wait_until("nothing left running in h1's namespace", secs(2), || {
            lab.host_pids(1).is_empty()
        })?;
        Ok(())
    });
}
