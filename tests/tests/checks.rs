//! Health checks and notify commands (issue 4), on two upkeep hosts: a failing script, plugin
//! or interface check lowers the master's priority and the VIP moves to the backup (and back
//! when it recovers); hostile plugins (endless loop, memory bomb) are cut off without delaying
//! VRRP; notify commands run in order with keepalived's arguments.
//!
//! Run alone: `cargo build -p upkeep && scripts/build-plugins.sh &&
//! cargo test -p upkeep-tests --test checks`

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use upkeep_tests::{
    expect_file_lines, lab_test, ms, port_listener_check, secs, upkeep_config, wait_for, Captured,
    Daemon, Instance, Lab, SIGTERM,
};

const VIP: &str = "192.0.2.100";

/// `web` at `priority`, tracking check `check` (with the check's own weight unless given).
fn tracking(priority: u8, check: &str, weight: Option<i32>) -> Instance {
    let mut i = Instance::web(priority);
    i.extra_kdl.push(match weight {
        Some(w) => format!("track {check:?} weight={w}"),
        None => format!("track {check:?}"),
    });
    i
}

/// A KDL string literal of a path.
fn q(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// Starts h1 with `h1_kdl` (its `web` at priority 100) and h2 with a plain `web` at 90; waits
/// for h1 to be master holding the VIP and h2 its backup.
fn start_pair(lab: &Lab, h1_kdl: &str) -> Result<(Daemon, Daemon)> {
    let h1 = lab.start_upkeep(1, h1_kdl)?;
    h1.wait_state("web", "master", secs(10))?;
    let h2 = lab.start_upkeep(2, &upkeep_config("h2", &[Instance::web(90)]))?;
    h2.wait_backup_of("web", "192.0.2.1", secs(10))?;
    lab.wait_holders(VIP, &[1], secs(5))?;
    Ok((h1, h2))
}

/// Waits for the VIP to move to `to` (from the other host); returns how long that took.
fn expect_move(lab: &Lab, to: usize, within: Duration) -> Result<Duration> {
    let t0 = Instant::now();
    lab.wait_holders(VIP, &[to], secs(5))?;
    let took = t0.elapsed();
    ensure!(
        took < within,
        "the VIP took {took:?} to move to h{to} (expected under {within:?})"
    );
    Ok(took)
}

/// The longest time between two adverts from `src` in a capture.
fn longest_advert_gap(pkts: &[Captured], src: &str) -> (usize, Duration) {
    let at: Vec<Duration> = pkts
        .iter()
        .filter(|p| p.src.to_string() == src && p.advert.is_ok())
        .map(|p| p.at)
        .collect();
    let gap = at.windows(2).map(|w| w[1] - w[0]).max();
    (at.len(), gap.unwrap_or(Duration::MAX))
}

#[test]
fn failing_script_check_moves_the_vip_and_recovery_brings_it_back() {
    lab_test(2, |lab| {
        // The check runs as the unprivileged default user, in the lab dir.
        lab.let_others_through()?;
        let marker = lab.write_file("h1.healthy", "")?;
        let script = lab.write_script("check.sh", "exec test -f \"$1\"")?;
        let kdl = format!(
            "{}check \"port\" {{\n    script \"{} {}\"\n    interval \"200ms\"\n    \
             timeout \"1s\"\n    fall 1\n    rise 1\n    weight -50\n}}\n",
            upkeep_config("h1", &[tracking(100, "port", None)]),
            script.display(),
            marker.display()
        );
        let (h1, h2) = start_pair(lab, &kdl)?;
        let c = h1.wait_check("port", "healthy", secs(3), |c| {
            c["healthy"] == true && c["last_ok"] == true && c["runs"].as_u64() >= Some(1)
        })?;
        ensure!(c["kind"] == "script", "{c}");

        fs::remove_file(&marker)?;
        expect_move(lab, 2, ms(1500))?;
        let c = h1.wait_check("port", "failed", secs(2), |c| c["healthy"] == false)?;
        ensure!(c["last_ok"] == false, "{c}");
        let s = h1.wait_state("web", "backup", secs(2))?;
        ensure!(
            s["effective_priority"] == 50 && s["priority"] == 100,
            "h1: {s}"
        );
        h2.wait_state("web", "master", secs(2))?;
        lab.expect_holders_stable(VIP, &[2], secs(1))?;

        // Healthy again: h1 is back at 100 and preempts.
        fs::write(&marker, "")?;
        expect_move(lab, 1, ms(1500))?;
        h1.wait_check("port", "healthy again", secs(2), |c| c["healthy"] == true)?;
        let s = h1.wait_state("web", "master", secs(2))?;
        ensure!(s["effective_priority"] == 100, "h1: {s}");
        h2.wait_backup_of("web", "192.0.2.1", secs(2))?;
        lab.expect_holders_stable(VIP, &[1], secs(1))?;
        lab.wait_client_ping(VIP, secs(5))?;
        Ok(())
    });
}

/// h1's `web` at 100 tracking a check that succeeds only when it does not run as root (weight
/// -50), with `global_kdl` inside `global`; h2 at 90.
fn not_root_check(lab: &Lab, global_kdl: &str) -> Result<String> {
    let script = lab.write_script("not-root.sh", "test \"$(id -u)\" -ne 0")?;
    Ok(format!(
        "{}check \"not-root\" {{\n    script {}\n    interval \"200ms\"\n    timeout \"1s\"\n    \
         weight -50\n}}\n",
        upkeep_config("h1", &[tracking(100, "not-root", None)])
            .replace("global {", &format!("global {{ {global_kdl}")),
        q(&script)
    ))
}

/// Scripts run as an unprivileged user unless the config names root: a check that succeeds
/// only when it is not root keeps h1 master by default, and fails, moving the VIP to h2, with
/// `script-user "root"` (which the daemon warns about). `upkeep check` refuses a script its
/// user cannot reach, naming the directory and why.
#[test]
fn scripts_run_unprivileged_unless_root_is_named() {
    lab_test(2, |lab| {
        lab.let_others_through()?;
        let (h1, h2) = start_pair(lab, &not_root_check(lab, "")?)?;
        let c = h1.wait_check("not-root", "healthy after runs", secs(3), |c| {
            c["healthy"] == true && c["runs"].as_u64() >= Some(3)
        })?;
        ensure!(c["message"] == "exit 0", "{c}");
        let s = h1.wait_state("web", "master", secs(1))?;
        ensure!(s["effective_priority"] == 100, "h1: {s}");
        lab.expect_holders_stable(VIP, &[1], secs(1))?;
        ensure!(
            !h1.log().contains("run as root"),
            "root warning without root:\n{}",
            h1.log_tail(20)
        );

        // The same check as root fails: h1 drops to 50 and h2 takes the VIP.
        h1.stop(secs(5))?;
        lab.wait_holders(VIP, &[2], secs(5))?;
        let h1 = lab.start_upkeep(1, &not_root_check(lab, "script-user \"root\";")?)?;
        let c = h1.wait_check("not-root", "failed as root", secs(5), |c| {
            c["healthy"] == false
        })?;
        ensure!(c["message"] == "exit 1", "{c}");
        let s = h1.wait_state("web", "backup", secs(2))?;
        ensure!(s["effective_priority"] == 50, "h1: {s}");
        h2.wait_state("web", "master", secs(2))?;
        lab.expect_holders_stable(VIP, &[2], secs(1))?;
        ensure!(
            h1.log().contains("check `not-root` run as root"),
            "no warning about root:\n{}",
            h1.log_tail(20)
        );

        // A script in a directory only root may enter: refused, with the line and the reason.
        let private = lab.dir().join("private");
        fs::create_dir(&private)?;
        fs::set_permissions(
            &private,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        let hidden = private.join("check.sh");
        fs::write(&hidden, "#!/bin/sh\nexit 0\n")?;
        fs::set_permissions(&hidden, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let kdl = format!(
            "{}check \"hidden\" {{\n    script {}\n}}\n",
            upkeep_config("h1", &[tracking(100, "hidden", None)]),
            q(&hidden)
        );
        let (path, out) = lab.upkeep_check(&kdl)?;
        let err = String::from_utf8_lossy(&out.stderr);
        println!("upkeep check of a script nobody can reach:\n{err}");
        let line = kdl.lines().position(|l| l.contains("script ")).unwrap_or(0) + 1;
        ensure!(!out.status.success(), "upkeep check accepted it: {err}");
        // The report is wrapped to the terminal's width: compare without the layout.
        let flat = |t: &str| t.replace('│', "").split_whitespace().collect::<String>();
        let said = flat(&err);
        ensure!(
            said.contains(&flat(&format!("{}:{line}:5", path.display())))
                && said.contains(&flat(&format!(
                    "user `nobody` cannot run {}: {} (on its path) is mode 0700, owner root",
                    hidden.display(),
                    private.display()
                )))
                && said.contains(&flat("`nobody` has no search (x) permission")),
            "unclear refusal:\n{err}"
        );
        // The same file as root is accepted (with the warning).
        let as_root = kdl.replace("global {", "global { script-user \"root\";");
        let (_, out) = lab.upkeep_check(&as_root)?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(out.status.success(), "refused as root: {err}");
        ensure!(err.contains("warning: check `hidden` run as root"), "{err}");
        Ok(())
    });
}

#[test]
fn port_listener_plugin_check_follows_the_listener() {
    lab_test(2, |lab| {
        let plugin = lab.copy_plugin("port-listener", "port-listener.wasm")?;
        let listener = lab.listen_tcp(1, 8080)?;
        let kdl = format!(
            "{}{}",
            upkeep_config("h1", &[tracking(100, "p80", None)]),
            port_listener_check("p80", &plugin, 8080, ms(500))
        );
        let (h1, h2) = start_pair(lab, &kdl)?;
        let c = h1.wait_check("p80", "healthy", secs(3), |c| {
            c["healthy"] == true && c["last_ok"] == true && c["runs"].as_u64() >= Some(1)
        })?;
        ensure!(
            c["kind"] == "plugin"
                && c["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(":8080 is listening")),
            "{c}"
        );

        drop(listener);
        expect_move(lab, 2, ms(1500))?;
        let c = h1.wait_check("p80", "failed", secs(2), |c| c["healthy"] == false)?;
        ensure!(
            c["kind"] == "plugin"
                && c["last_ok"] == false
                && c["message"] == "nothing listens on tcp port 8080",
            "{c}"
        );
        let s = h1.wait_state("web", "backup", secs(2))?;
        ensure!(s["effective_priority"] == 50, "h1: {s}");
        h2.wait_state("web", "master", secs(2))?;

        let _listener = lab.listen_tcp(1, 8080)?;
        expect_move(lab, 1, ms(1500))?;
        h1.wait_check("p80", "healthy again", secs(2), |c| c["healthy"] == true)?;
        lab.expect_holders_stable(VIP, &[1], secs(1))?;
        Ok(())
    });
}

/// A master tracking a hostile plugin (weight -5: failing, it still outranks the backup's 90)
/// keeps advertising on time for 5 s while each call is cut off; the check fails with
/// `expect` in its message.
fn hostile_plugin_is_contained(behaviour: &str, expect: &str) {
    lab_test(2, |lab| {
        let plugin = lab.copy_plugin("hostile", "hostile.wasm")?;
        let kdl = format!(
            "{}check \"hostile\" {{\n    plugin {}\n    config behaviour={behaviour:?}\n    \
             allow \"log\"\n    interval \"300ms\"\n    timeout \"200ms\"\n    \
             memory-limit \"8MiB\"\n}}\n",
            upkeep_config("h1", &[tracking(100, "hostile", Some(-5))]),
            q(&plugin)
        );
        let (h1, h2) = start_pair(lab, &kdl)?;
        let c = h1.wait_check("hostile", "failed", secs(3), |c| {
            c["healthy"] == false && c["last_ok"] == false
        })?;
        ensure!(
            c["message"].as_str().is_some_and(|m| m.contains(expect)),
            "expected {expect:?} in the check's message: {c}"
        );
        h1.wait_instance("web", "effective priority 95", secs(2), |i| {
            i["effective_priority"] == 95
        })?;
        let runs = c["runs"].as_u64().unwrap_or(0);
        let t1 = h1.counter("web", "transitions")?;
        let t2 = h2.counter("web", "transitions")?;

        let cap = lab.start_capture(2)?;
        lab.expect_holders_stable(VIP, &[1], secs(5))?;
        let (adverts, gap) = longest_advert_gap(&cap.stop()?, "192.0.2.1");
        ensure!(
            h1.is_running()
                && h1.counter("web", "transitions")? == t1
                && h2.counter("web", "transitions")? == t2,
            "a transition while the plugin ran (h1's longest advert gap {gap:?}):\nh1 {}\nh2 {}",
            h1.instance("web")?,
            h2.instance("web")?
        );
        ensure!(
            adverts >= 40 && gap < ms(300),
            "h1's adverts over 5 s: {adverts}, longest gap {gap:?} (interval 100 ms)"
        );
        // Still being called, each call cut off near its timeout, and failing every time.
        let c = h1.check("hostile")?;
        ensure!(
            c["runs"].as_u64().unwrap_or(0) >= runs + 8
                && c["duration_ms"].as_u64().is_some_and(|d| d < 1000)
                && c["healthy"] == false
                && c["message"].as_str().is_some_and(|m| m.contains(expect)),
            "after 5 s (had {runs} runs): {c}"
        );
        let s = h1.instance("web")?;
        ensure!(
            s["state"] == "master" && s["effective_priority"] == 95,
            "h1: {s}"
        );
        Ok(())
    });
}

#[test]
fn endless_loop_plugin_times_out_without_delaying_adverts() {
    hostile_plugin_is_contained("loop", "timed out after 200 ms");
}

#[test]
fn memory_bomb_plugin_is_stopped_without_delaying_adverts() {
    hostile_plugin_is_contained("alloc", "exceeded its memory limit of 8 MiB");
}

#[test]
fn notify_commands_run_in_order_with_keepalived_arguments() {
    lab_test(2, |lab| {
        let script = lab.write_script("notify.sh", "f=$1\nshift\necho \"$*\" >> \"$f\"")?;
        let conf = |i: usize, priority: u8| {
            let log = lab.dir().join(format!("h{i}.notify"));
            let cmd = |what: &str| format!("{} {} {what}", script.display(), log.display());
            let mut inst = Instance::web(priority);
            for (key, what) in [
                ("notify-master", "master"),
                ("notify-backup", "backup"),
                ("notify-fault", "fault"),
                ("notify-stop", "stop"),
            ] {
                inst.extra_kdl.push(format!("{key} {:?}", cmd(what)));
            }
            inst.extra_kdl
                .push(format!("notify {:?}", cmd("").trim_end()));
            // The commands write to a log in the lab dir (root's): they run as root, as named.
            let kdl = upkeep_config(&format!("h{i}"), &[inst])
                .replace("global {", "global { script-user \"root\";");
            (kdl, log)
        };
        let (c1, log1) = conf(1, 100);
        let (c2, log2) = conf(2, 90);

        // Election: h1 alone, then h2.
        let h1 = lab.start_upkeep(1, &c1)?;
        h1.wait_state("web", "master", secs(10))?;
        let mut want1 = vec![
            "backup",
            "INSTANCE web BACKUP 100",
            "master",
            "INSTANCE web MASTER 100",
        ];
        expect_file_lines(&log1, &want1)?;
        let h2 = lab.start_upkeep(2, &c2)?;
        h2.wait_backup_of("web", "192.0.2.1", secs(10))?;
        let mut want2 = vec!["backup", "INSTANCE web BACKUP 90"];
        expect_file_lines(&log2, &want2)?;

        // Failover: h1 stops (notify-stop runs before it exits), h2 takes over.
        h1.signal(SIGTERM)?;
        lab.wait_holders(VIP, &[2], secs(5))?;
        ensure!(h1.wait_exit(secs(6))?.success(), "h1 exit");
        want1.extend(["stop", "INSTANCE web STOP 100"]);
        expect_file_lines(&log1, &want1)?;
        want2.extend(["master", "INSTANCE web MASTER 90"]);
        expect_file_lines(&log2, &want2)?;

        // h1 back: it preempts, h2 steps down.
        let h1 = lab.start_upkeep(1, &c1)?;
        lab.wait_holders(VIP, &[1], secs(10))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(5))?;
        want1.extend(want1[..4].to_vec());
        expect_file_lines(&log1, &want1)?;
        want2.extend(["backup", "INSTANCE web BACKUP 90"]);
        expect_file_lines(&log2, &want2)?;

        // Both stop, the backup first (so it does not take over).
        for (d, log, want, prio) in [(&h2, &log2, &want2, 90), (&h1, &log1, &want1, 100)] {
            d.signal(SIGTERM)?;
            ensure!(d.wait_exit(secs(6))?.success(), "{d} exit");
            let stop = format!("INSTANCE web STOP {prio}");
            let mut w: Vec<&str> = want.clone();
            w.extend(["stop", &stop]);
            expect_file_lines(log, &w)?;
        }
        Ok(())
    });
}

/// h1's `web` tracks `eth1`, a veth in its namespace: the check follows the link, and taking it
/// down moves the VIP (by priority with weight -50, by FAULT with weight 0).
fn interface_check_follows_the_link(weight: i32, down_state: &str) {
    lab_test(2, |lab| {
        lab.add_veth(1, "eth1", "eth1p")?;
        let kdl = format!(
            "{}check \"uplink\" {{\n    interface \"eth1\"\n    weight -50\n}}\n",
            upkeep_config("h1", &[tracking(100, "uplink", Some(weight))])
        );
        let (h1, h2) = start_pair(lab, &kdl)?;
        let c = h1.wait_check("uplink", "healthy", secs(3), |c| c["healthy"] == true)?;
        ensure!(c["kind"] == "interface", "{c}");

        lab.set_link(1, "eth1", false)?;
        expect_move(lab, 2, ms(1000))?;
        let s = h1.wait_state("web", down_state, secs(2))?;
        if weight != 0 {
            ensure!(s["effective_priority"] == 50, "h1: {s}");
        }
        ensure!(s["vips_held"] == false, "h1: {s}");
        let c = h1.wait_check("uplink", "failed", secs(2), |c| c["healthy"] == false)?;
        ensure!(c["last_ok"] == false, "{c}");
        h2.wait_state("web", "master", secs(2))?;
        lab.expect_holders_stable(VIP, &[2], secs(1))?;

        lab.set_link(1, "eth1", true)?;
        expect_move(lab, 1, ms(1500))?;
        h1.wait_check("uplink", "healthy again", secs(2), |c| c["healthy"] == true)?;
        let s = h1.wait_state("web", "master", secs(2))?;
        ensure!(s["effective_priority"] == 100, "h1: {s}");
        h2.wait_backup_of("web", "192.0.2.1", secs(2))?;
        lab.expect_holders_stable(VIP, &[1], secs(1))?;
        Ok(())
    });
}

#[test]
fn interface_check_down_lowers_priority_and_moves_the_vip() {
    interface_check_follows_the_link(-50, "backup");
}

#[test]
fn interface_check_with_weight_zero_puts_the_instance_in_fault() {
    interface_check_follows_the_link(0, "fault");
}

/// A check script (run as root, so it may write into the lab dir) at `interval`, tracked by
/// h1's `web` at 100, with `global_kdl` inside `global`.
fn root_check(script: &Path, interval: &str, timeout: &str, global_kdl: &str) -> String {
    format!(
        "{}check \"probe\" {{\n    script {}\n    interval {interval:?}\n    timeout {timeout:?}\n}}\n",
        upkeep_config("h1", &[tracking(100, "probe", Some(-10))]).replace(
            "global {",
            &format!("global {{ script-user \"root\"; {global_kdl}")
        ),
        q(script)
    )
}

/// Field 41 of /proc/PID/stat: the scheduling policy (0 SCHED_OTHER, 1 FIFO, 2 RR).
fn sched_policy(stat: &str) -> Option<u32> {
    stat.rsplit_once(") ")?
        .1
        .split(' ')
        .nth(38)?
        .trim()
        .parse()
        .ok()
}

/// Waits for `path` to hold a complete line (scripts write a temp file and rename it).
fn wait_file(path: &Path, timeout: Duration) -> Result<String> {
    let text = wait_for(
        format!("{} written", path.display()),
        timeout,
        || fs::read_to_string(path).unwrap_or_default(),
        |t| t.ends_with('\n'),
    )?;
    Ok(text)
}

/// `realtime-priority` puts the daemon under SCHED_RR; the scripts it runs must not inherit
/// real-time scheduling (a looping check would starve the host's other processes, the daemon's
/// own adverts included): SCHED_RESET_ON_FORK.
#[test]
fn scripts_do_not_inherit_real_time_scheduling() {
    lab_test(1, |lab| {
        let out = lab.dir().join("policy");
        let script = lab.write_script(
            "policy.sh",
            &format!(
                "cat /proc/$$/stat > {o}.tmp && mv {o}.tmp {o}",
                o = out.display()
            ),
        )?;
        let h1 = lab.start_upkeep(
            1,
            &root_check(&script, "200ms", "1s", "realtime-priority 10;"),
        )?;
        h1.wait_state("web", "master", secs(10))?;
        let daemon = fs::read_to_string(format!("/proc/{}/stat", h1.pid()))?;
        ensure!(
            sched_policy(&daemon) == Some(2),
            "the daemon is not under SCHED_RR (realtime-priority 10): {daemon}\n{}",
            h1.log_tail(20)
        );
        let script_stat = wait_file(&out, secs(5))?;
        let policy = sched_policy(script_stat.trim_end());
        println!("daemon policy 2 (SCHED_RR), check script policy {policy:?}");
        ensure!(
            policy == Some(0),
            "the check script runs under policy {policy:?}, not SCHED_OTHER (0): {script_stat}"
        );
        Ok(())
    });
}

/// Scripts get a minimal environment (PATH), not the daemon's: a variable the daemon was started
/// with (here `UPKEEP_LOG`, which the harness sets; under systemd a credential or token) does
/// not reach them.
#[test]
fn scripts_do_not_inherit_the_daemons_environment() {
    lab_test(1, |lab| {
        let out = lab.dir().join("env");
        let script = lab.write_script(
            "env.sh",
            &format!("env > {o}.tmp && mv {o}.tmp {o}", o = out.display()),
        )?;
        let h1 = lab.start_upkeep(1, &root_check(&script, "200ms", "1s", ""))?;
        h1.wait_state("web", "master", secs(10))?;
        let daemon_env = fs::read(format!("/proc/{}/environ", h1.pid()))?;
        ensure!(
            daemon_env
                .split(|b| *b == 0)
                .any(|v| v.starts_with(b"UPKEEP_LOG=")),
            "the daemon has no UPKEEP_LOG to leak"
        );
        let env = wait_file(&out, secs(5))?;
        println!("a check script's environment:\n{env}");
        ensure!(
            !env.contains("UPKEEP_LOG"),
            "the daemon's environment reached the script:\n{env}"
        );
        ensure!(
            env.lines()
                .any(|l| l == "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
            "no fixed PATH:\n{env}"
        );
        Ok(())
    });
}

/// Whether process `pid` is running (not gone, not a zombie waiting for its new parent).
fn running(pid: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.to_owned()))
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

/// A check script that leaves a child running in its group (`sleep 1000 &`) and then hangs,
/// still running when its check goes away: removed by a reload, or the daemon stopped. Nothing
/// of its process group may be left behind.
#[test]
fn a_running_checks_process_group_is_killed_on_reload_and_shutdown() {
    lab_test(1, |lab| {
        let pids = lab.dir().join("pids");
        let script = lab.write_script(
            "spawner.sh",
            &format!(
                "sleep 1000 &\necho \"$$ $!\" > {p}.tmp && mv {p}.tmp {p}\nsleep 1000",
                p = pids.display()
            ),
        )?;
        let with_check = root_check(&script, "1s", "60s", "");
        let without = upkeep_config("h1", &[Instance::web(100)]);
        let group = |what: &str| -> Result<Vec<String>> {
            let line = wait_file(&pids, secs(5))?;
            fs::remove_file(&pids)?;
            let group: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            ensure!(
                group.len() == 2 && group.iter().all(|p| running(p)),
                "{what}: the script and its child should be running: {line}"
            );
            Ok(group)
        };
        let gone = |what: &str, group: &[String]| -> Result<()> {
            let start = Instant::now();
            let left = wait_for(
                format!("{what}: the check's process group gone"),
                secs(5),
                || {
                    group
                        .iter()
                        .filter(|p| running(p))
                        .cloned()
                        .collect::<Vec<_>>()
                },
                |left| left.is_empty(),
            );
            ensure!(
                left.is_ok(),
                "{what}: left running: {:?} (script, child: {group:?})",
                group.iter().filter(|p| running(p)).collect::<Vec<_>>()
            );
            println!("{what}: script and child gone within {:?}", start.elapsed());
            Ok(())
        };

        let h1 = lab.start_upkeep(1, &with_check)?;
        h1.wait_state("web", "master", secs(10))?;
        let first = group("first run")?;
        let seq = h1.reload_seq()?;
        h1.write_config(&without)?;
        let r = h1.wait_reload(seq, secs(10))?;
        ensure!(r["result"] == "applied", "reload: {r}");
        gone("check removed by a reload", &first)?;

        let seq = h1.reload_seq()?;
        h1.write_config(&with_check)?;
        let r = h1.wait_reload(seq, secs(10))?;
        ensure!(r["result"] == "applied", "reload: {r}");
        let second = group("after the check came back")?;
        h1.signal(SIGTERM)?;
        h1.wait_exit(secs(15))?;
        gone("daemon stopped", &second)?;
        Ok(())
    });
}

/// Script security judges the program a command will run, and scripts run with the fixed
/// `PATH`, not the daemon's: a `sh` that only the daemon's `PATH` finds (here one anyone may
/// change) is neither what runs nor what is judged. Before, `upkeep check` under that `PATH`
/// judged (and refused) it, while the script would have run `/usr/bin/sh` or `/bin/sh`.
#[test]
fn script_security_looks_programs_up_in_the_path_scripts_run_with() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let shadow = dir.path().join("bin");
    fs::create_dir(&shadow)?;
    let fake_sh = shadow.join("sh");
    fs::write(&fake_sh, "#!/bin/sh\nexit 0\n")?;
    fs::set_permissions(&fake_sh, fs::Permissions::from_mode(0o777))?;
    let config = dir.path().join("upkeep.kdl");
    fs::write(
        &config,
        format!(
            "{}check \"c\" {{\n    script \"sh -c true\"\n}}\n",
            upkeep_config("h1", &[tracking(100, "c", None)])
                .replace("global {", "global { script-user \"root\";")
        ),
    )?;
    let path = format!(
        "{}:{}",
        shadow.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new(upkeep_tests::upkeep_bin()?)
        .args(["check", "--config"])
        .arg(&config)
        .env("PATH", &path)
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() && !err.contains(&fake_sh.display().to_string()),
        "upkeep check judged the daemon's PATH's sh ({}), not the one scripts run: {err}",
        fake_sh.display()
    );
    Ok(())
}

/// A TCP server on `port` in host i's namespace, as its own process (python3): it prints
/// `ready` once listening, and on SIGUSR1 closes its socket but lives on.
struct Server(std::process::Child);

impl Server {
    fn start(lab: &Lab, i: usize, port: u16) -> Result<Server> {
        use std::io::BufRead;
        let src = format!(
            "import signal, socket, sys, time\n\
             l = socket.socket()\n\
             l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             l.bind(('0.0.0.0', {port}))\n\
             l.listen()\n\
             signal.signal(signal.SIGUSR1, lambda *a: l.close())\n\
             print('ready', flush=True)\n\
             while True:\n    time.sleep(1)\n"
        );
        let mut child = std::process::Command::new("ip")
            .args(["netns", "exec", &lab.host_ns(i), "python3", "-c", &src])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        let out = child.stdout.take().expect("piped");
        std::io::BufReader::new(out).read_line(&mut line)?;
        ensure!(line.trim() == "ready", "the server did not start: {line:?}");
        Ok(Server(child))
    }

    fn signal(&self, sig: i32) -> Result<()> {
        let pid = self.0.id().to_string();
        let st = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()?;
        ensure!(st.success(), "kill -{sig} {pid}");
        Ok(())
    }

    fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `listener` check hears the server's socket close at once, both when the server closes it
/// and lives on and when it is SIGKILLed: with a 10 s poll, the VIP moving within 1.5 s of the
/// close can only come from the kernel's socket-destroy notification. A new listener is seen at
/// the next poll and the VIP comes back.
#[test]
fn listener_check_hears_the_server_close_and_die() {
    lab_test(2, |lab| {
        let kdl = format!(
            "{}check \"web80\" {{\n    listener 80\n    weight -20\n    interval \"10s\"\n}}\n",
            upkeep_config("h1", &[tracking(100, "web80", None)])
        );
        let mut server = Server::start(lab, 1, 80)?;
        let (h1, h2) = start_pair(lab, &kdl)?;
        let c = h1.wait_check("web80", "healthy", secs(3), |c| c["healthy"] == true)?;
        ensure!(
            c["kind"] == "listener" && c["message"] == "TCP port 80 listened on (0.0.0.0:80)",
            "{c}"
        );

        // (b) The server closes its socket and lives on.
        server.signal(libc::SIGUSR1)?;
        let took = expect_move(lab, 2, ms(1500))?;
        eprintln!("socket closed: the VIP moved after {took:?}");
        ensure!(server.running(), "the server should live on");
        let c = h1.wait_check("web80", "failed", secs(2), |c| c["healthy"] == false)?;
        ensure!(c["message"] == "nothing listens on TCP port 80", "{c}");
        let s = h1.wait_state("web", "backup", secs(2))?;
        ensure!(s["effective_priority"] == 80, "h1: {s}");
        h2.wait_state("web", "master", secs(2))?;
        drop(server);

        // A new server: seen at the next poll (within 10 s), h1 preempts back.
        let server = Server::start(lab, 1, 80)?;
        let t0 = Instant::now();
        lab.wait_holders(VIP, &[1], secs(15))?;
        eprintln!("new listener: the VIP came back after {:?}", t0.elapsed());
        h1.wait_check("web80", "healthy again", secs(2), |c| c["healthy"] == true)?;

        // (a) The server is SIGKILLed, right after a poll saw it.
        server.signal(libc::SIGKILL)?;
        let took = expect_move(lab, 2, ms(1500))?;
        eprintln!("server killed: the VIP moved after {took:?}");
        h1.wait_check("web80", "failed", secs(2), |c| c["healthy"] == false)?;
        lab.expect_holders_stable(VIP, &[2], secs(1))?;
        Ok(())
    });
}

/// A `file` check reads the file again as soon as it is replaced or rewritten (inotify): with
/// a 10 s poll, the VIP moving within 1.5 s of each change comes from the event.
#[test]
fn file_check_sees_each_rewrite_at_once() {
    lab_test(2, |lab| {
        let knob = lab.dir().join("weight");
        fs::write(&knob, "0\n")?;
        let kdl = format!(
            "{}check \"knob\" {{\n    file {}\n    interval \"10s\"\n}}\n",
            upkeep_config("h1", &[tracking(100, "knob", None)]),
            q(&knob)
        );
        let (h1, h2) = start_pair(lab, &kdl)?;
        h1.wait_check("knob", "read", secs(3), |c| c["runs"].as_u64() >= Some(1))?;

        // Replaced by a rename, as config management does.
        let tmp = lab.dir().join(".weight.tmp");
        fs::write(&tmp, "-20\n")?;
        fs::rename(&tmp, &knob)?;
        let took = expect_move(lab, 2, ms(1500))?;
        eprintln!("file replaced: the VIP moved after {took:?}");
        let s = h1.wait_state("web", "backup", secs(2))?;
        ensure!(s["effective_priority"] == 80, "h1: {s}");
        h2.wait_state("web", "master", secs(2))?;

        // Rewritten in place.
        fs::write(&knob, "0\n")?;
        let took = expect_move(lab, 1, ms(1500))?;
        eprintln!("file rewritten: the VIP came back after {took:?}");

        // Removed: counts as 0, no change; then created again with a value.
        fs::remove_file(&knob)?;
        fs::write(&tmp, "-30\n")?;
        fs::rename(&tmp, &knob)?;
        let took = expect_move(lab, 2, ms(1500))?;
        eprintln!("file created: the VIP moved after {took:?}");
        let s = h1.wait_state("web", "backup", secs(2))?;
        ensure!(s["effective_priority"] == 70, "h1: {s}");
        Ok(())
    });
}

/// A `process` check hears the process exit at once (the kernel's process connector, or a pidfd
/// where the daemon has no connector): with a 10 s count, the VIP moving within 1.5 s comes
/// from the event. A new process is seen at once with the connector, else at the next count.
#[test]
fn process_check_hears_the_process_exit_and_start() {
    lab_test(2, |lab| {
        // A process with a name of its own (its comm is its file name), unique to this run.
        let name = format!("upk-sl-{}", std::process::id() % 100_000);
        let bin = lab.dir().join(&name);
        fs::copy("/bin/sleep", &bin)?;
        let spawn = || std::process::Command::new(&bin).arg("1000").spawn();
        let mut server = spawn()?;
        let kdl = format!(
            "{}check \"proc\" {{\n    process {name:?}\n    weight -20\n    interval \"10s\"\n}}\n",
            upkeep_config("h1", &[tracking(100, "proc", None)]),
        );
        let mut run = || -> Result<()> {
            let (h1, h2) = start_pair(lab, &kdl)?;
            let c = h1.wait_check("proc", "healthy", secs(3), |c| c["healthy"] == true)?;
            ensure!(c["message"] == format!("1 processes named `{name}`"), "{c}");

            server.kill()?;
            server.wait()?;
            let took = expect_move(lab, 2, ms(1500))?;
            eprintln!("process killed: the VIP moved after {took:?}");
            let c = h1.wait_check("proc", "failed", secs(2), |c| c["healthy"] == false)?;
            ensure!(c["message"] == format!("0 processes named `{name}`"), "{c}");
            h2.wait_state("web", "master", secs(2))?;

            // At once with the connector; where the daemon's namespace has none and the
            // initial one is out of reach (as in this sandbox), at the next count.
            server = spawn()?;
            let t0 = Instant::now();
            lab.wait_holders(VIP, &[1], secs(12))?;
            eprintln!(
                "process started: the VIP came back after {:?}",
                t0.elapsed()
            );
            h1.wait_check("proc", "healthy again", secs(2), |c| c["healthy"] == true)?;
            Ok(())
        };
        let res = run();
        let _ = server.kill();
        let _ = server.wait();
        res
    });
}
