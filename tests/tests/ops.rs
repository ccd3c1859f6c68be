//! Operating upkeep: `upkeep status` over the control socket while a check fails and recovers,
//! the control socket refusing anyone but root, systemd's notify protocol (READY=1,
//! WATCHDOG=1), and the shipped unit file.
//!
//! Run alone: `cargo build -p upkeep && cargo test -p upkeep-tests --test ops`

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use upkeep_tests::{lab_test, ms, secs, upkeep_bin, upkeep_config, Instance, Lab};

const VIP: &str = "192.0.2.100";

/// GET /metrics from host i's daemon (it listens on the host's loopback).
fn scrape(lab: &Lab, i: usize) -> Result<String> {
    let out = lab.exec(
        &lab.host_ns(i),
        &[
            "python3",
            "-c",
            "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9650/metrics',timeout=5).read().decode())",
        ],
    )?;
    ensure!(
        out.status.success(),
        "scrape failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The value of the series `series` (name and labels, as scraped) of host i's metrics.
fn metric(lab: &Lab, i: usize, series: &str) -> Result<u64> {
    let m = scrape(lab, i)?;
    m.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .with_context(|| format!("no {series} in the metrics of h{i}:\n{m}"))
}

fn wait_status(lab: &Lab, i: usize, what: &str, pred: impl Fn(&Value) -> bool) -> Result<Value> {
    let end = Instant::now() + secs(10);
    let mut last = Value::Null;
    while Instant::now() < end {
        if let Ok(v) = lab.upkeep_status(i) {
            if pred(&v) {
                return Ok(v);
            }
            last = v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("h{i}: {what} never seen; last status: {last:#}")
}

#[test]
fn status_shows_master_effective_priority_and_check_results() {
    lab_test(2, |lab| {
        // The check runs as the unprivileged default user, in the lab dir.
        lab.let_others_through()?;
        let marker = lab.dir().join("healthy");
        std::fs::write(&marker, "")?;
        let script = lab.write_file(
            "check.sh",
            &format!("#!/bin/sh\ntest -e {}\n", marker.display()),
        )?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
        let check = format!(
            "check \"svc\" {{\n    script \"{}\"\n    interval \"200ms\"\n    timeout \"1s\"\n    weight -60\n}}\n",
            script.display()
        );
        let inst = |prio| {
            Instance::new("web", 51, prio)
                .interval_ms(100)
                .vip("192.0.2.100/24")
        };
        let h1_cfg = format!(
            "{check}{}",
            upkeep_config("h1", &[inst(150)])
                .replace("global {", "global { metrics listen=\"127.0.0.1:9650\";")
                .replace(
                    "vip \"192.0.2.100/24\"",
                    "vip \"192.0.2.100/24\"\n    track \"svc\""
                )
        );
        let _h1 = lab.start_upkeep(1, &h1_cfg)?;
        let _h2 = lab.start_upkeep(2, &upkeep_config("h2", &[inst(120)]))?;
        lab.wait_holders(VIP, &[1], secs(10))?;

        let s = wait_status(lab, 1, "h1 master with a healthy check", |s| {
            s["instances"][0]["state"] == "master" && s["checks"][0]["healthy"] == true
        })?;
        ensure!(s["instances"][0]["effective_priority"] == 150, "{s:#}");
        ensure!(s["checks"][0]["kind"] == "script", "{s:#}");
        wait_status(lab, 2, "h2 backup hearing h1", |s| {
            s["instances"][0]["state"] == "backup" && s["instances"][0]["master"] == "192.0.2.1"
        })?;

        // The check fails: h1's effective priority drops below h2's and the VIP moves.
        std::fs::remove_file(&marker)?;
        let s = wait_status(lab, 1, "h1 with a failed check, priority 90, backup", |s| {
            s["checks"][0]["healthy"] == false
                && s["instances"][0]["effective_priority"] == 90
                && s["instances"][0]["state"] == "backup"
        })?;
        ensure!(s["checks"][0]["message"] == "exit 1", "{s:#}");
        // The metrics endpoint tells the same story.
        let m = scrape(lab, 1)?;
        ensure!(
            m.contains("upkeep_instance_effective_priority{name=\"web\"")
                && m.lines()
                    .any(|l| l.starts_with("upkeep_instance_effective_priority{")
                        && l.ends_with(" 90")),
            "metrics disagree with status:\n{m}"
        );
        ensure!(
            m.lines().any(|l| l.starts_with("upkeep_check_healthy{")
                && l.contains("svc")
                && l.ends_with(" 0")),
            "check not failed in metrics:\n{m}"
        );
        lab.wait_holders(VIP, &[2], secs(5))?;
        wait_status(lab, 2, "h2 master", |s| {
            s["instances"][0]["state"] == "master"
        })?;

        // It recovers: priority back to 150, and h1 preempts.
        std::fs::write(&marker, "")?;
        wait_status(lab, 1, "h1 healthy and master again", |s| {
            s["checks"][0]["healthy"] == true
                && s["instances"][0]["effective_priority"] == 150
                && s["instances"][0]["state"] == "master"
        })?;
        lab.wait_holders(VIP, &[1], secs(5))?;

        // The human view names the same things.
        let dir = lab.state_dir(1);
        let out = lab.upkeep_cli(&["status", "--state-dir", &dir.to_string_lossy()])?;
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(
            text.contains("web") && text.contains("master") && text.contains("svc"),
            "{text}"
        );
        // The control socket is root's alone.
        let mode = std::fs::metadata(dir.join("control.sock"))?
            .permissions()
            .mode();
        ensure!(mode & 0o077 == 0, "control.sock mode {mode:o}");
        Ok(())
    });
}

const NOBODY: u32 = 65534;

/// What `upkeep status` as nobody prints and whether it failed.
fn status_as_nobody(lab: &Lab, state: &std::path::Path) -> Result<(bool, String)> {
    let out = lab.upkeep_cli_as(NOBODY, &["status", "--state-dir", &state.to_string_lossy()])?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// Only root may use the control socket: `upkeep status` as nobody fails with a message that
/// says so, first because the socket's mode (0600) keeps it out, then, with the socket made
/// 0666 by mistake, because the daemon checks the peer's uid (SO_PEERCRED) and refuses it; root
/// is served before, between and after.
#[test]
fn control_socket_refuses_users_other_than_root() {
    lab_test(1, |lab| {
        let d = lab.start_upkeep(
            1,
            &upkeep_config(
                "h1",
                &[Instance::new("web", 51, 100)
                    .interval_ms(100)
                    .vip("192.0.2.100/24")],
            )
            .replace("global {", "global { metrics listen=\"127.0.0.1:9650\";"),
        )?;
        d.wait_state("web", "master", secs(10))?;
        const REFUSED: &str = "upkeep_control_refused_total";
        ensure!(metric(lab, 1, REFUSED)? == 0, "refusals before any");
        let state = lab.state_dir(1);
        let sock = state.join("control.sock");
        // nobody can reach the socket (the lab and state dirs let others through); only its
        // mode stops them.
        lab.let_others_through()?;
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o711))?;
        lab.upkeep_status(1)?;

        let (ok, text) = status_as_nobody(lab, &state)?;
        println!("as nobody, socket 0600: {}", text.trim());
        ensure!(!ok, "upkeep status as nobody succeeded:\n{text}");
        ensure!(
            text.contains("Permission denied") && text.contains("root-only"),
            "no clear message: {text}"
        );
        ensure!(!text.contains("INSTANCE"), "nobody got a status: {text}");
        // The kernel refused that one: the daemon never saw it.
        ensure!(metric(lab, 1, REFUSED)? == 0, "a refusal counted by mode");

        // Defence in depth: with the socket open to all, the daemon itself refuses nobody.
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666))?;
        let (ok, text) = status_as_nobody(lab, &state)?;
        println!("as nobody, socket 0666: {}", text.trim());
        ensure!(!ok, "upkeep status as nobody succeeded:\n{text}");
        ensure!(
            text.contains("the daemon refused")
                && text.contains("permission denied: the control socket is root-only"),
            "not refused by the daemon: {text}"
        );
        ensure!(!text.contains("INSTANCE"), "nobody got a status: {text}");
        let (ok, text) = status_as_nobody(lab, &state)?;
        ensure!(!ok, "second try as nobody succeeded:\n{text}");
        let log = d.log();
        ensure!(
            log.contains("refused a client that is not root") && log.contains("2 refused so far"),
            "refusals not logged:\n{}",
            d.log_tail(20)
        );
        let n = metric(lab, 1, REFUSED)?;
        ensure!(n == 2, "{REFUSED} {n} after 2 refusals");
        // The raw protocol: one JSON error line, then the daemon hangs up.
        let out = Command::new("setpriv")
            .args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
                // Not a pyenv shim under /root, which nobody cannot enter.
                "/usr/bin/python3",
                "-c",
                "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n\
                 s.sendall(b'{\"cmd\":\"status\"}\\n')\nf=s.makefile()\n\
                 print(repr(f.readline()))\nprint(repr(f.readline()))",
                &sock.to_string_lossy(),
            ])
            .output()?;
        let raw = String::from_utf8_lossy(&out.stdout);
        ensure!(
            raw.lines().collect::<Vec<_>>()
                == [
                    r#"'{"error":"permission denied: the control socket is root-only"}\n'"#,
                    "''"
                ],
            "raw answer to nobody: {raw}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let n = metric(lab, 1, REFUSED)?;
        ensure!(n == 3, "{REFUSED} {n} after 3 refusals");

        // Root still gets its answers, in both forms.
        let s = lab.upkeep_status(1)?;
        ensure!(s["instances"][0]["state"] == "master", "{s:#}");
        let out = lab.upkeep_cli(&["status", "--state-dir", &state.to_string_lossy()])?;
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success() && text.contains("web") && text.contains("master"),
            "root's status after the refusals: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    });
}

#[test]
fn systemd_notify_ready_and_watchdog() {
    lab_test(1, |lab| {
        let sock_path = lab.dir().join("notify.sock");
        let sock = UnixDatagram::bind(&sock_path)?;
        sock.set_read_timeout(Some(secs(10)))?;
        let cfg = lab.write_file(
            "h1.kdl",
            &upkeep_config(
                "h1",
                &[Instance::new("web", 51, 100)
                    .interval_ms(100)
                    .vip("192.0.2.100/24")],
            ),
        )?;
        let state = lab.state_dir(1);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &lab.host_ns(1)])
            .arg(upkeep_bin()?)
            .arg("run")
            .arg("--config")
            .arg(&cfg)
            .arg("--state-dir")
            .arg(&state)
            .env("NOTIFY_SOCKET", &sock_path)
            .env("WATCHDOG_USEC", "200000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start upkeep")?;
        let mut seen = Vec::new();
        let result = (|| -> Result<()> {
            let end = Instant::now() + secs(10);
            let mut buf = [0u8; 4096];
            while Instant::now() < end {
                let n = sock
                    .recv(&mut buf)
                    .context("waiting for sd_notify messages")?;
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let all = seen.join("\n");
                if all.contains("READY=1") && all.matches("WATCHDOG=1").count() >= 3 {
                    ensure!(all.contains("STATUS=1 instances"), "no STATUS line: {all}");
                    return Ok(());
                }
            }
            bail!("expected READY=1 and repeated WATCHDOG=1, got {seen:?}")
        })();
        let _ = child.kill();
        let _ = child.wait();
        result
    });
}

#[test]
fn systemd_unit_file_verifies() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contrib/upkeep.service"
    ))
    .expect("contrib/upkeep.service");
    // Verify the unit as installed, with the binary where this build put it.
    let bin = upkeep_bin().expect("upkeep binary");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("upkeep.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/upkeep", &bin.to_string_lossy()),
    )
    .expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (apt-get install systemd)");
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A second `upkeep run` on a host whose upkeep is master (an operator's mistake: a second unit,
/// a test by hand with another state dir) must not touch the first one's VIPs: it exits
/// non-zero naming the running daemon, and the VIP stays served by the master.
#[test]
fn a_second_daemon_on_the_host_refuses_to_start_and_the_vip_stays() {
    lab_test(2, |lab| {
        let inst = |prio| {
            Instance::new("web", 51, prio)
                .interval_ms(100)
                .vip("192.0.2.100/24")
        };
        let h1 = lab.start_upkeep(1, &upkeep_config("h1", &[inst(150)]))?;
        let _h2 = lab.start_upkeep(2, &upkeep_config("h2", &[inst(120)]))?;
        lab.wait_holders(VIP, &[1], secs(10))?;
        lab.wait_client_ping(VIP, secs(5))?;

        // The same config, another state dir, in h1's namespace.
        let other_state = lab.dir().join("second-state");
        std::fs::create_dir_all(&other_state)?;
        let bin = upkeep_bin()?;
        let (bin, config, state) = (
            bin.display().to_string(),
            h1.config_path().display().to_string(),
            other_state.display().to_string(),
        );
        let start = Instant::now();
        let out = lab.exec(
            &lab.host_ns(1),
            &[
                "timeout",
                "20",
                &bin,
                "run",
                "--config",
                &config,
                "--state-dir",
                &state,
            ],
        )?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success() && out.status.code() != Some(124),
            "the second daemon ran (exit {:?} after {:?}): {stderr}",
            out.status.code(),
            start.elapsed()
        );
        ensure!(
            stderr.contains(&format!("pid {}", h1.pid())),
            "the refusal does not name the running daemon (pid {}): {stderr}",
            h1.pid()
        );
        // Nothing was taken from the master: it holds the VIP, alone, and answers for it.
        lab.expect_holders_stable(VIP, &[1], secs(2))?;
        ensure!(lab.client_ping(VIP), "the VIP does not answer");
        ensure!(h1.is_running(), "the first daemon stopped");
        ensure!(
            h1.state("web")? == "master",
            "h1 is {} after the second start",
            h1.state("web")?
        );
        ensure!(
            lab.state_dir(1).join("control.sock").exists(),
            "the running daemon's control socket is gone"
        );
        Ok(())
    });
}

/// `ip addr del` of a master's VIP (an operator's mistake, another tool's clean-up): the master
/// keeps advertising, so no backup takes over, and without the VIP nobody serves it. upkeep
/// puts it back at once, as keepalived does, and counts it.
#[test]
fn a_vip_removed_by_hand_from_the_master_is_put_back() {
    lab_test(2, |lab| {
        let inst = |prio| {
            Instance::new("web", 51, prio)
                .interval_ms(100)
                .vip("192.0.2.100/24")
        };
        let h1 = lab.start_upkeep(1, &upkeep_config("h1", &[inst(150)]))?;
        let _h2 = lab.start_upkeep(2, &upkeep_config("h2", &[inst(120)]))?;
        lab.wait_holders(VIP, &[1], secs(10))?;
        lab.wait_client_ping(VIP, secs(5))?;

        let dev = lab
            .ip(&lab.host_ns(1), &["-o", "addr", "show", "to", VIP])?
            .split_whitespace()
            .nth(1)
            .context("the VIP's interface")?
            .to_owned();
        lab.ip(
            &lab.host_ns(1),
            &["addr", "del", "192.0.2.100/24", "dev", &dev],
        )?;
        let deleted = Instant::now();
        lab.wait_holders(VIP, &[1], secs(2))
            .context("the VIP was not put back on the master")?;
        let back_after = deleted.elapsed();
        // Exactly one holder, the master, from then on, and clients reach it.
        lab.expect_holders_stable(VIP, &[1], secs(1))?;
        lab.wait_client_ping(VIP, secs(2))?;
        let s = h1.wait_instance("web", "the restore counted", secs(2), |i| {
            i["vips_restored"].as_u64() == Some(1)
        })?;
        ensure!(s["state"] == "master", "{s:#}");
        eprintln!("VIP back {back_after:?} after `ip addr del`");
        Ok(())
    });
}

/// 32 clients that connect to the metrics port and send nothing (more than the connections
/// served at once) do not keep a scrape out: it is answered at once, not after they time out.
#[test]
fn idle_connections_do_not_keep_a_metrics_scrape_out() {
    lab_test(1, |lab| {
        let cfg = upkeep_config("h1", &[Instance::web(150)])
            .replace("global {", "global { metrics listen=\"127.0.0.1:9650\";");
        let h1 = lab.start_upkeep(1, &cfg)?;
        h1.wait_state("web", "master", secs(10))?;
        scrape(lab, 1)?;
        // The idle clients stay connected until the scrape is done; the scrape gives up after
        // 3 s (idle clients are cut off after 5 s, so waiting for them would fail it).
        let script = r#"
import socket, time, urllib.request
idle = [socket.create_connection(("127.0.0.1", 9650)) for _ in range(32)]
time.sleep(0.3)
t = time.monotonic()
body = urllib.request.urlopen("http://127.0.0.1:9650/metrics", timeout=3).read().decode()
print("ms", int((time.monotonic() - t) * 1000))
print(body)
"#;
        let out = lab.exec(&lab.host_ns(1), &["python3", "-c", script])?;
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success(),
            "the scrape behind 32 idle connections failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(
            text.contains("upkeep_instance_state{name=\"web\""),
            "scrape: {text}"
        );
        eprintln!(
            "scrape behind 32 idle connections: {}",
            text.lines().next().unwrap_or("")
        );
        // Still serving after them.
        scrape(lab, 1)?;
        Ok(())
    });
}

/// A notify command that takes a second, and an instance that flaps meanwhile (link down and
/// up, 8 times): the transitions queued behind the running command do not pile up; each one
/// supersedes the one waiting, the final state's command still runs, and status counts them.
#[test]
fn a_flapping_instance_behind_a_slow_notify_command_runs_only_the_latest_state() {
    lab_test(1, |lab| {
        lab.let_others_through()?;
        let out = lab.write_file("notified", "")?;
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o666))?;
        let script = lab.write_file(
            "notify.sh",
            &format!("#!/bin/sh\nsleep 1\necho \"$3\" >> {}\n", out.display()),
        )?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
        let mut web = Instance::web(150);
        web.extra_kdl
            .push(format!("notify \"{}\"", script.display()));
        let h1 = lab.start_upkeep(1, &upkeep_config("h1", &[web]))?;
        h1.wait_state("web", "master", secs(10))?;
        let mut most_waiting = 0;
        for _ in 0..8 {
            lab.link_down(1)?;
            std::thread::sleep(ms(100));
            lab.link_up(1)?;
            std::thread::sleep(ms(100));
            let st = h1.status()?;
            most_waiting =
                most_waiting.max(st["queues"]["notify"]["waiting"].as_u64().unwrap_or(0));
        }
        h1.wait_state("web", "master", secs(5))?;
        let transitions = h1.counter("web", "transitions")?;
        // Until the commands are done: no new line for longer than one command takes.
        let mut lines = 0;
        let mut since = Instant::now();
        let end = Instant::now() + secs(40);
        while since.elapsed() < ms(2500) && Instant::now() < end {
            let n = std::fs::read_to_string(&out)?.lines().count();
            if n != lines {
                lines = n;
                since = Instant::now();
            }
            std::thread::sleep(ms(100));
        }
        let text = std::fs::read_to_string(&out)?;
        let ran: Vec<&str> = text.lines().collect();
        ensure!(
            transitions >= 15 && ran.len() <= 6,
            "{} notify commands ran for {transitions} transitions: {ran:?}",
            ran.len()
        );
        ensure!(
            ran.last() == Some(&"MASTER"),
            "the final state's command did not run last: {ran:?}"
        );
        let st = h1.status()?;
        let q = &st["queues"]["notify"];
        eprintln!("{transitions} transitions, notify queue {q}, ran {ran:?}");
        ensure!(
            q["run"].as_u64() == Some(ran.len() as u64)
                && q["superseded"].as_u64() == Some(transitions - ran.len() as u64)
                && q["waiting"] == 0
                && q["running"] == 0
                && most_waiting <= 1,
            "notify queue {q} (most waiting {most_waiting}) for {transitions} transitions and {ran:?}"
        );
        Ok(())
    });
}

/// The settings docs/config.md documents, each with the capabilities the daemon needs for it
/// (running as root under a bounding set, root has exactly these).
const NEEDED_CAPS: &[(&str, &[&str])] = &[
    // Adverts, gratuitous ARP and NA on raw sockets; SO_BINDTODEVICE.
    ("`interface`", &["CAP_NET_RAW"]),
    // VIPs and routes through netlink, multicast membership.
    ("`vip`", &["CAP_NET_ADMIN"]),
    ("`route`", &["CAP_NET_ADMIN"]),
    // Scripts run as another user: setuid, setgid, setgroups; a timed-out one's process group
    // (that user's processes) is killed.
    ("`script-user`", &["CAP_SETUID", "CAP_SETGID", "CAP_KILL"]),
    // Script security walks directories root may not search without it; plugins read files.
    ("`script-security`", &["CAP_DAC_READ_SEARCH"]),
    ("`read-file`", &["CAP_DAC_READ_SEARCH"]),
    ("`realtime-priority`", &["CAP_SYS_NICE"]),
    ("`lock-memory`", &["CAP_IPC_LOCK"]),
    // Any port 1..=65535, so below 1024 too.
    ("`metrics`", &["CAP_NET_BIND_SERVICE"]),
];

/// Every value of `key=` in a unit's [Service] section, split on blanks.
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .flat_map(str::split_whitespace)
        .collect()
}

/// The shipped unit lets the daemon do what the settings it documents need: a setting whose
/// capability is missing fails at run time only (realtime-priority with EPERM, a script user
/// that cannot be switched to), long after `upkeep check` said the config was fine.
#[test]
fn systemd_unit_allows_every_documented_setting() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let unit = std::fs::read_to_string(format!("{root}/contrib/upkeep.service")).expect("unit");
    let docs = std::fs::read_to_string(format!("{root}/docs/config.md")).expect("config.md");
    let bounding = unit_values(&unit, "CapabilityBoundingSet");
    assert!(
        bounding.iter().all(|c| !c.starts_with('~')),
        "a deny-list bounding set: {bounding:?}"
    );
    // Under another user only the ambient set is there: with User= these must be ambient too.
    let user = unit_values(&unit, "User");
    let ambient = unit_values(&unit, "AmbientCapabilities");
    let mut missing = Vec::new();
    for (setting, caps) in NEEDED_CAPS {
        assert!(docs.contains(setting), "{setting} is not in docs/config.md");
        for cap in *caps {
            let ok = bounding.contains(cap)
                && (user.is_empty() || user == ["root"] || ambient.contains(cap));
            if !ok {
                missing.push(format!("{cap} (for {setting})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "contrib/upkeep.service does not allow: {}",
        missing.join(", ")
    );
    let restrict_rt = unit_values(&unit, "RestrictRealtime");
    assert!(
        !restrict_rt.contains(&"yes") && !restrict_rt.contains(&"true"),
        "RestrictRealtime forbids realtime-priority"
    );
    let families = unit_values(&unit, "RestrictAddressFamilies");
    for family in ["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"] {
        assert!(
            families.is_empty() || families.contains(&family),
            "RestrictAddressFamilies lacks {family}: {families:?}"
        );
    }
}

/// A state dir others may write to (where status.json and the control socket live: anyone
/// could plant a link the daemon writes through, or replace the socket) is refused at start,
/// with the path and the mode, before anything changes.
#[test]
fn a_state_dir_others_may_write_to_is_refused_at_start() {
    lab_test(1, |lab| {
        let open = lab.dir().join("open-state");
        std::fs::create_dir(&open)?;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777))?;
        let config = lab.write_file("h1.kdl", &upkeep_config("h1", &[Instance::web(100)]))?;
        let bin = upkeep_bin()?;
        let out = lab.exec(
            &lab.host_ns(1),
            &[
                "timeout",
                "20",
                &bin.display().to_string(),
                "run",
                "--config",
                &config.display().to_string(),
                "--state-dir",
                &open.display().to_string(),
            ],
        )?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("upkeep run with a 0777 state dir: {}", stderr.trim());
        ensure!(
            !out.status.success() && out.status.code() != Some(124),
            "the daemon ran with a 0777 state dir (exit {:?}): {stderr}",
            out.status.code()
        );
        ensure!(
            stderr.contains(&open.display().to_string()) && stderr.contains("0777"),
            "the refusal does not name the dir and its mode: {stderr}"
        );
        ensure!(
            !open.join("control.sock").exists() && !open.join("status.json").exists(),
            "the daemon wrote into the refused dir"
        );
        ensure!(
            lab.holders(VIP).is_empty(),
            "the refused daemon took the VIP"
        );
        Ok(())
    });
}
