//! keepalived's notify FIFO and the notifications beside it, as a user sees them: the lines a
//! `notify-fifo-script` reads from the `notify-fifo` (keepalived's format, `INSTANCE "web"
//! MASTER 100`), `MASTER_PRIORITY` lines under `notify-priority-changes`, the
//! `MASTER_RX_LOWER_PRI` line and `notify-master-rx-lower-pri` command when the master hears a
//! lower priority, the state lines a reload writes under `notify-fifo-states-on-reload`, and the
//! FIFO gone after the daemon stops (it made it).
//!
//! Run alone: `cargo build -p upkeep && cargo test -p upkeep-tests --test keywords_notify`

use std::fs;

use anyhow::ensure;
use upkeep_tests::{
    expect_file_lines, file_lines, lab_test, ms, secs, upkeep_config, wait_for, AdvertSpec,
    Instance, SIGTERM,
};

#[test]
fn the_fifo_gets_keepalived_s_lines_in_order() {
    lab_test(2, |lab| {
        let fifo = lab.dir().join("notify.fifo");
        let out = lab.dir().join("fifo.out");
        let rx_log = lab.dir().join("rx.log");
        let reader = lab.write_script(
            "reader.sh",
            "out=$1\nwhile read -r line; do echo \"$line\" >> \"$out\"; done < \"$2\"",
        )?;
        let rx = lab.write_script("rx.sh", "echo rx >> \"$1\"")?;
        let weight = lab.write_file("weight", "0\n")?;
        let mut web = Instance::web(100);
        web.extra_kdl.extend([
            "track \"weight\" weight=-1".to_string(),
            "notify-priority-changes".to_string(),
            format!(
                "notify-master-rx-lower-pri {:?}",
                format!("{} {}", rx.display(), rx_log.display())
            ),
        ]);
        let kdl = format!(
            "check \"weight\" {{\n    file {:?}\n    interval \"100ms\"\n}}\n{}",
            weight.display().to_string(),
            upkeep_config("h1", &[web]).replace(
                "global {",
                &format!(
                    "global {{ script-user \"root\"; notify-fifo {:?}; notify-fifo-script {:?};",
                    fifo.display().to_string(),
                    format!("{} {}", reader.display(), out.display())
                ),
            )
        );
        let h1 = lab.start_upkeep(1, &kdl)?;
        h1.wait_state("web", "master", secs(10))?;
        let mut want = vec!["INSTANCE \"web\" BACKUP 100", "INSTANCE \"web\" MASTER 100"];
        expect_file_lines(&out, &want)?;

        // The tracked file takes 10 off: a priority change while master.
        fs::write(&weight, "10\n")?;
        want.push("INSTANCE \"web\" MASTER_PRIORITY 90");
        expect_file_lines(&out, &want)?;

        // A lower priority heard as master: the FIFO line and the command.
        lab.inject(
            2,
            &AdvertSpec::v3(51, 50).vip("192.0.2.100").interval(ms(100)),
        )?;
        want.push("INSTANCE \"web\" MASTER_RX_LOWER_PRI 90");
        expect_file_lines(&out, &want)?;
        expect_file_lines(&rx_log, &["rx"])?;
        ensure!(h1.state("web")? == "master");

        // notify-fifo-states-on-reload: a reload writes each instance's state.
        let seq = h1.reload_seq()?;
        h1.write_config(&kdl.replacen("global {", "global { notify-fifo-states-on-reload;", 1))?;
        h1.reload_cli()?;
        h1.wait_reload(seq, secs(10))?;
        want.push("INSTANCE \"web\" MASTER 90");
        expect_file_lines(&out, &want)?;

        // Stopping: the STOP line reaches the reader before it is stopped, and the FIFO the
        // daemon made is gone.
        h1.signal(SIGTERM)?;
        ensure!(h1.wait_exit(secs(6))?.success(), "h1 exit");
        want.push("INSTANCE \"web\" STOP 90");
        expect_file_lines(&out, &want)?;
        ensure!(!fifo.exists(), "{} left behind", fifo.display());
        Ok(())
    });
}

/// The same keywords with keepalived 2.2 beside upkeep: both on multicast group 224.0.0.19
/// (keepalived's `vrrp_mcast_group4`, upkeep's `multicast-group4`), each with its notify FIFO
/// read by a script. upkeep follows keepalived as a backup, keepalived's FIFO lines and upkeep's
/// have the same form, and when keepalived stops upkeep takes over and writes its MASTER line.
#[test]
fn keepalived_and_upkeep_share_a_group_and_write_the_same_fifo_lines() {
    assert!(
        upkeep_tests::keepalived_available(),
        "keepalived is not installed (scripts/install-deps.sh)"
    );
    lab_test(2, |lab| {
        let reader = lab.write_script(
            "reader.sh",
            "out=$1\nwhile read -r line; do echo \"$line\" >> \"$out\"; done < \"$2\"",
        )?;
        let (k_fifo, k_out) = (lab.dir().join("k.fifo"), lab.dir().join("k.out"));
        let (u_fifo, u_out) = (lab.dir().join("u.fifo"), lab.dir().join("u.out"));
        let inst = |p| {
            Instance::new("web", 51, p)
                .interval_ms(200)
                .vip("192.0.2.100/24")
        };
        let k_conf = upkeep_tests::keepalived_config("h1", &[inst(100)]).replacen(
            "global_defs {\n",
            &format!(
                "global_defs {{\n    vrrp_mcast_group4 224.0.0.19\n    vrrp_notify_fifo {}\n    vrrp_notify_fifo_script \"{} {}\"\n",
                k_fifo.display(),
                reader.display(),
                k_out.display()
            ),
            1,
        );
        let u_conf = upkeep_config("h2", &[inst(90)]).replace(
            "global {",
            &format!(
                "global {{ script-user \"root\"; multicast-group4 \"224.0.0.19\"; notify-fifo {:?}; notify-fifo-script {:?};",
                u_fifo.display().to_string(),
                format!("{} {}", reader.display(), u_out.display())
            ),
        );
        let cap = lab.start_capture(2)?;
        let k = lab.start_keepalived(1, &k_conf)?;
        lab.wait_holders("192.0.2.100", &[1], secs(10))?;
        let u = lab.start_upkeep(2, &u_conf)?;
        u.wait_backup_of("web", "192.0.2.1", secs(5))?;
        let from_k = cap.wait_for_packet("keepalived's advert", secs(3), |p| {
            !p.outgoing && p.src.to_string() == "192.0.2.1"
        })?;
        ensure!(
            from_k.dst.to_string() == "224.0.0.19",
            "{}",
            from_k.summary()
        );
        wait_for(
            "keepalived's MASTER line",
            secs(5),
            || file_lines(&k_out),
            |l| l.iter().any(|x| x == "INSTANCE \"web\" MASTER 100"),
        )?;
        expect_file_lines(&u_out, &["INSTANCE \"web\" BACKUP 90"])?;
        lab.expect_holders_stable("192.0.2.100", &[1], secs(1))?;

        k.signal(SIGTERM)?;
        lab.wait_holders("192.0.2.100", &[2], secs(5))?;
        expect_file_lines(
            &u_out,
            &["INSTANCE \"web\" BACKUP 90", "INSTANCE \"web\" MASTER 90"],
        )?;
        // Every line either wrote has the one form: TYPE "NAME" STATE PRIORITY.
        for l in file_lines(&k_out).iter().chain(&file_lines(&u_out)) {
            let w: Vec<&str> = l.split(' ').collect();
            ensure!(
                w.len() == 4
                    && w[0] == "INSTANCE"
                    && w[1] == "\"web\""
                    && w[3].parse::<u8>().is_ok(),
                "line `{l}`"
            );
        }
        eprintln!(
            "keepalived wrote {:?}\nupkeep wrote {:?}",
            file_lines(&k_out),
            file_lines(&u_out)
        );
        Ok(())
    });
}
