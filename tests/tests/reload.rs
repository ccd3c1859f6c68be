//! Hot reload (issue 5), on two upkeep hosts: rewriting a config file (or SIGHUP, or
//! `upkeep reload`) applies only what changed. Adding an instance disturbs nothing already
//! running (no lost ping, no address event, no transition), also next to an unchanged WASM
//! notify hook; a priority change moves mastership
//! once; a broken file is refused with its location and changes nothing; a rebuilt plugin is
//! picked up without a transition; a removed instance lets go of its VIP.
//!
//! Run alone: `cargo build -p upkeep && scripts/build-plugins.sh &&
//! cargo test -p upkeep-tests --test reload`

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use upkeep_tests::{
    lab_test, ms, port_listener_check, replace_file, secs, upkeep_config, with_custom_section,
    AddrMonitor, Captured, Daemon, Instance, Lab, SIGHUP,
};

const VIP: &str = "192.0.2.100";
const VIP2: &str = "192.0.2.101";

fn api(priority: u8) -> Instance {
    Instance::new("api", 52, priority)
        .interval_ms(100)
        .vip("192.0.2.101/24")
}

fn conf(i: usize, instances: &[Instance]) -> String {
    upkeep_config(&format!("h{i}"), instances)
}

/// h1 (priority 100) master of `web`, h2 (90) its backup, h1 holding the VIP.
fn two_hosts(lab: &Lab) -> Result<(Daemon, Daemon)> {
    let h1 = lab.start_upkeep(1, &conf(1, &[Instance::web(100)]))?;
    h1.wait_state("web", "master", secs(10))?;
    let h2 = lab.start_upkeep(2, &conf(2, &[Instance::web(90)]))?;
    h2.wait_backup_of("web", "192.0.2.1", secs(10))?;
    lab.wait_holders(VIP, &[1], secs(5))?;
    Ok((h1, h2))
}

/// Rewrites `d`'s config file and waits for the reload it causes; returns its record.
fn rewrite(d: &Daemon, kdl: &str) -> Result<Value> {
    let seq = d.reload_seq()?;
    d.write_config(kdl)?;
    d.wait_reload(seq, secs(5))
}

/// Checks a reload record: `result`, and the `added` / `changed` / `removed` lists.
fn expect_reload(
    d: &Daemon,
    r: &Value,
    result: &str,
    added: &[&str],
    changed: &[&str],
    removed: &[&str],
) -> Result<()> {
    ensure!(
        r["result"] == result
            && r["added"] == json!(added)
            && r["changed"] == json!(changed)
            && r["removed"] == json!(removed)
            && r["error"].is_null(),
        "{d}: expected reload {result} (added {added:?}, changed {changed:?}, removed \
         {removed:?}, no error), got {r}"
    );
    Ok(())
}

/// `web`'s transition counts on h1 and h2.
fn web_transitions(h1: &Daemon, h2: &Daemon) -> Result<(u64, u64)> {
    Ok((
        h1.counter("web", "transitions")?,
        h2.counter("web", "transitions")?,
    ))
}

/// Fails, saying `what` and showing both hosts' `web`, if `web` transitioned on h1 or h2 since
/// [`web_transitions`] returned `before`.
fn expect_web_unmoved(
    h1: &Daemon,
    h2: &Daemon,
    before: (u64, u64),
    what: impl std::fmt::Display,
) -> Result<()> {
    ensure!(
        web_transitions(h1, h2)? == before,
        "{what}:\nh1: {}\nh2: {}",
        h1.instance("web")?,
        h2.instance("web")?
    );
    Ok(())
}

/// Fails unless, during `what`, `web` did not transition on h1 or h2 (since `before`) and h1
/// advertised at least every 300 ms in `pkts` (captured on h2; a backup declares the master
/// dead after 3 intervals and a skew). `mon2` watches h2's addresses, for the message.
fn expect_web_undisturbed(
    h1: &Daemon,
    h2: &Daemon,
    before: (u64, u64),
    pkts: &[Captured],
    mon2: &AddrMonitor,
    what: &str,
) -> Result<()> {
    let gap = longest_advert_gap(pkts, "192.0.2.1");
    expect_web_unmoved(
        h1,
        h2,
        before,
        format!(
            "web transitioned during {what} (h1's longest advert gap {gap:?}); h2 address \
             events:\n{}",
            mon2.events().join("\n")
        ),
    )?;
    ensure!(gap < ms(300), "h1 sent no advert for {gap:?} around {what}");
    Ok(())
}

/// Fails unless h1 is `web`'s master and h2 its backup.
fn expect_web_master_on_h1(h1: &Daemon, h2: &Daemon) -> Result<()> {
    ensure!(
        h1.state("web")? == "master" && h2.state("web")? == "backup",
        "web:\nh1: {}\nh2: {}",
        h1.instance("web")?,
        h2.instance("web")?
    );
    Ok(())
}

/// The address events of a monitor that mention `addr`, as an error if there are any.
fn expect_no_events(mon: &AddrMonitor, host: usize, addr: &str) -> Result<()> {
    let ev = mon.events_about(&format!("{addr}/"));
    ensure!(
        ev.is_empty(),
        "h{host}: address events on {addr} during the reload:\n{}",
        ev.join("\n")
    );
    Ok(())
}

/// The longest time between two adverts from `src` in a capture (all of it if fewer than two).
fn longest_advert_gap(pkts: &[Captured], src: &str) -> Duration {
    let at: Vec<Duration> = pkts
        .iter()
        .filter(|p| p.src.to_string() == src && p.advert.is_ok())
        .map(|p| p.at)
        .collect();
    if at.len() < 2 {
        return Duration::MAX;
    }
    at.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
}

/// The 1-based number of the only line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(k, _)| k + 1)
        .collect();
    assert_eq!(lines.len(), 1, "{needle:?} in:\n{text}");
    lines[0]
}

/// The `(line, column)` an error message gives for `file` (`FILE:LINE:COL: ...`).
fn location(error: &str, file: &Path) -> Option<(usize, usize)> {
    let prefix = format!("{}:", file.display());
    let rest = &error[error.find(&prefix)? + prefix.len()..];
    let mut parts = rest.splitn(3, ':');
    let line = parts.next()?.parse().ok()?;
    let col = parts.next()?.parse().ok()?;
    parts.next()?;
    Some((line, col))
}

#[test]
fn adding_an_instance_disturbs_nothing_running() {
    lab_test(2, |lab| {
        let (h1, h2) = two_hosts(lab)?;
        lab.wait_client_ping(VIP, secs(5))?;
        let before = web_transitions(&h1, &h2)?;
        let mon1 = lab.start_addr_monitor(1)?;
        let mon2 = lab.start_addr_monitor(2)?;
        let pinger = lab.start_pinger(VIP, ms(5))?;
        std::thread::sleep(ms(300));

        // The new instance's master-to-be first, so the other host finds it already there.
        let r = rewrite(&h2, &conf(2, &[Instance::web(90), api(100)]))?;
        expect_reload(&h2, &r, "applied", &["api"], &[], &[])?;
        h2.wait_state("api", "master", secs(5))?;
        let r = rewrite(&h1, &conf(1, &[Instance::web(100), api(90)]))?;
        expect_reload(&h1, &r, "applied", &["api"], &[], &[])?;
        h1.wait_backup_of("api", "192.0.2.2", secs(5))?;
        lab.wait_holders(VIP2, &[2], secs(5))?;
        lab.wait_client_ping(VIP2, secs(5))?;
        // Keep watching a little after the last reload.
        lab.expect_holders_stable(VIP, &[1], ms(500))?;

        let pings = pinger.stop()?;
        ensure!(
            pings.sent() > 100 && pings.lost() == 0,
            "the client lost {} of {} pings of the running VIP (longest gap {:?})",
            pings.lost(),
            pings.sent(),
            pings.longest_gap()
        );
        expect_no_events(&mon1, 1, VIP)?;
        expect_no_events(&mon2, 2, VIP)?;
        // h1 only joined as a backup: it never touched an address.
        let ev1 = mon1.stop();
        ensure!(ev1.is_empty(), "h1 address events:\n{}", ev1.join("\n"));
        // h2 added the new VIP and nothing else.
        let ev2 = mon2.stop();
        ensure!(
            ev2.iter()
                .any(|l| l.contains("192.0.2.101/24") && !l.starts_with("Deleted"))
                && ev2.iter().all(|l| l.contains("192.0.2.101/")),
            "h2 address events:\n{}",
            ev2.join("\n")
        );
        expect_web_unmoved(&h1, &h2, before, "the running instance transitioned")?;
        expect_web_master_on_h1(&h1, &h2)?;
        Ok(())
    });
}

#[test]
fn adding_an_instance_next_to_a_notify_hook_disturbs_nothing_running() {
    lab_test(2, |lab| {
        // The same as above with a WASM notify hook in h1's file, unchanged by the reload.
        let hook = lab.copy_plugin("hostile", "log-hook.wasm")?;
        let hook = format!(
            "hook \"log\" {{\n    plugin {:?}\n    allow \"log\"\n}}\n",
            hook.display().to_string()
        );
        let hooked = |i: Instance| {
            let mut i = i;
            i.extra_kdl.push("notify-hook \"log\"".into());
            i
        };
        let h1 = lab.start_upkeep(
            1,
            &format!("{}{hook}", conf(1, &[hooked(Instance::web(100))])),
        )?;
        h1.wait_state("web", "master", secs(10))?;
        let h2 = lab.start_upkeep(2, &conf(2, &[Instance::web(90)]))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(10))?;
        lab.wait_holders(VIP, &[1], secs(5))?;
        let before = web_transitions(&h1, &h2)?;
        let mon2 = lab.start_addr_monitor(2)?;
        let cap = lab.start_capture(2)?;

        let r = rewrite(
            &h1,
            &format!("{}{hook}", conf(1, &[hooked(Instance::web(100)), api(100)])),
        )?;
        expect_reload(&h1, &r, "applied", &["api"], &[], &[])?;
        lab.wait_holders(VIP2, &[1], secs(5))?;
        lab.expect_holders_stable(VIP, &[1], ms(500))?;
        expect_web_undisturbed(&h1, &h2, before, &cap.stop()?, &mon2, "the reload")?;
        expect_no_events(&mon2, 2, VIP)?;
        Ok(())
    });
}

#[test]
fn raising_the_backups_priority_moves_the_vip_once() {
    lab_test(2, |lab| {
        let (h1, h2) = two_hosts(lab)?;
        let before = web_transitions(&h1, &h2)?;

        let t0 = Instant::now();
        let r = rewrite(&h2, &conf(2, &[Instance::web(110)]))?;
        expect_reload(&h2, &r, "applied", &[], &["web"], &[])?;
        lab.wait_holders(VIP, &[2], secs(3))?;
        let took = t0.elapsed();
        h2.wait_state("web", "master", secs(2))?;
        h1.wait_backup_of("web", "192.0.2.2", secs(2))?;
        lab.expect_holders_stable(VIP, &[2], secs(2))?;
        lab.wait_client_ping(VIP, secs(5))?;

        let (t1, t2) = before;
        let (n1, n2) = web_transitions(&h1, &h2)?;
        ensure!(
            (n1, n2) == (t1 + 1, t2 + 1),
            "transitions went from h1 {t1} h2 {t2} to h1 {n1} h2 {n2}: expected one each\n\
             h1: {}\nh2: {}",
            h1.instance("web")?,
            h2.instance("web")?
        );
        let s = h2.instance("web")?;
        ensure!(
            s["priority"] == 110 && s["effective_priority"] == 110 && s["vips_held"] == true,
            "h2: {s}"
        );
        // Well under the 3.4 s a backup would wait for a silent master: the reload took effect
        // at once and preemption did the rest.
        ensure!(took < secs(2), "the VIP moved {took:?} after the rewrite");
        Ok(())
    });
}

/// A VIP added to the running master's instance is in its very next adverts (and its
/// backups, given the same config, keep following it): the master builds each advert once
/// and sends the same bytes every interval, and a reload must not leave it sending the old.
#[test]
fn a_vip_added_to_the_master_is_in_its_next_adverts() {
    lab_test(2, |lab| {
        let (h1, h2) = two_hosts(lab)?;
        let web = || Instance::web(100).vip("192.0.2.102/24");
        let r = rewrite(&h1, &conf(1, &[web()]))?;
        expect_reload(&h1, &r, "applied", &[], &["web"], &[])?;
        let r = rewrite(&h2, &conf(2, &[web().priority(90)]))?;
        expect_reload(&h2, &r, "applied", &[], &["web"], &[])?;
        let pkts = lab.capture_vrrp(2, ms(600))?;
        let from_h1: Vec<&Captured> = pkts
            .iter()
            .filter(|p| !p.outgoing && p.src.to_string() == "192.0.2.1")
            .collect();
        ensure!(
            from_h1.len() >= 3,
            "{} adverts from h1 in 600 ms",
            from_h1.len()
        );
        let want: Vec<std::net::IpAddr> = vec!["192.0.2.100".parse()?, "192.0.2.102".parse()?];
        for p in &from_h1 {
            let addrs = p.advert.as_ref().map(|a| a.addrs.clone());
            ensure!(
                addrs.as_ref() == Ok(&want) && p.checksum_ok,
                "an advert from h1 after the reload: {}",
                p.summary()
            );
        }
        lab.wait_holders("192.0.2.102", &[1], secs(2))?;
        expect_web_master_on_h1(&h1, &h2)?;
        Ok(())
    });
}

#[test]
fn broken_configs_are_refused_with_their_location_and_change_nothing() {
    lab_test(2, |lab| {
        let (h1, h2) = two_hosts(lab)?;
        let good = conf(1, &[Instance::web(100)]);
        let file = h1.config_path().to_path_buf();
        let before = web_transitions(&h1, &h2)?;

        let syntax = format!("{good}instance \"api\" {{\n    vip \"192.0.2.101/24\n}}\n");
        let mut on_eth9 = api(100);
        on_eth9.interface = "eth9".into();
        let eth9 = conf(1, &[Instance::web(100), on_eth9]);
        let dup = conf(
            1,
            &[
                Instance::web(100),
                Instance::new("api", 51, 100).vip("192.0.2.101/24"),
            ],
        );
        // The duplicate's `vrid 51` is the second one in the file.
        let dup_vrid_line = dup
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim() == "vrid 51")
            .nth(1)
            .map(|(k, _)| k + 1)
            .context("second vrid line")?;
        // Where each error may point (the offending setting, or for the last two its instance).
        let cases = [
            (
                "syntax error",
                &syntax,
                "quoted string",
                vec![line_of(&syntax, "vip \"192.0.2.101/24")],
            ),
            (
                "unknown interface",
                &eth9,
                "eth9",
                vec![
                    line_of(&eth9, "interface \"eth9\""),
                    line_of(&eth9, "instance \"api\""),
                ],
            ),
            (
                "duplicate vrid",
                &dup,
                "vrid 51",
                vec![dup_vrid_line, line_of(&dup, "instance \"api\"")],
            ),
        ];
        for (what, text, mentions, lines) in cases {
            let r = rewrite(&h1, text)?;
            ensure!(
                r["result"] == "refused" && r["added"] == json!([]) && r["changed"] == json!([]),
                "{what}: expected a refusal, got {r}"
            );
            let err = r["error"].as_str().unwrap_or_default();
            let at = location(err, &file);
            ensure!(
                at.is_some_and(|(l, c)| lines.contains(&l) && c >= 1) && err.contains(mentions),
                "{what}: the error should say {}:LINE:COL with LINE in {lines:?}, and mention \
                 {mentions:?}; got {err:?}",
                file.display()
            );
            // Nothing changed: still running, same holder, no transition, no new instance.
            lab.expect_holders_stable(VIP, &[1], ms(500))?;
            let st = h1.status()?;
            let names: Vec<&str> = st["instances"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["name"].as_str())
                .collect();
            ensure!(names == ["web"], "{what}: instances now {names:?}");
            ensure!(h1.is_running(), "{what}: h1 exited");
            expect_web_unmoved(&h1, &h2, before, what)?;
            ensure!(
                h1.state("web")? == "master",
                "{what}: h1 {}",
                h1.instance("web")?
            );
            ensure!(lab.holders(VIP2).is_empty(), "{what}: {VIP2} was added");

            // The file fixed again: what runs is what the file says.
            let r = rewrite(&h1, &good)?;
            ensure!(
                r["result"] == "unchanged" || r["result"] == "applied",
                "{what}: after the fix, got {r}"
            );
            ensure!(r["error"].is_null(), "{what}: after the fix, got {r}");
        }

        // A SIGHUP reload of a broken file is refused the same way.
        let r = rewrite(&h1, &dup)?;
        ensure!(r["result"] == "refused", "{r}");
        let expected = format!("{}:{dup_vrid_line}:", file.display());
        let seq = h1.reload_seq()?;
        h1.signal(SIGHUP)?;
        let r = h1.wait_reload(seq, secs(5))?;
        ensure!(
            r["trigger"] == "SIGHUP"
                && r["result"] == "refused"
                && r["error"].as_str().is_some_and(|e| e.contains(&expected)),
            "SIGHUP on a broken file: {r}"
        );
        // `upkeep reload` says so too, and exits non-zero.
        let seq = h1.reload_seq()?;
        let out = h1.reload_cli()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            !out.status.success()
                && stdout.contains("reload refused")
                && stdout
                    .lines()
                    .any(|l| l.contains("error:") && l.contains(&expected)),
            "upkeep reload on a broken file: {}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let r = h1.last_reload()?;
        ensure!(
            r["seq"].as_u64() > Some(seq)
                && r["result"] == "refused"
                && r["trigger"] != "file change",
            "after upkeep reload (was #{seq}): {r}"
        );
        let r = rewrite(&h1, &good)?;
        ensure!(r["result"] == "unchanged", "{r}");
        let out = h1.reload_cli()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success()
                && (stdout.starts_with("reload unchanged") || stdout.starts_with("reload applied"))
                && !stdout.contains("error"),
            "upkeep reload on the fixed file: {}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        expect_web_unmoved(&h1, &h2, before, "transitions moved")?;
        lab.expect_holders_stable(VIP, &[1], ms(300))?;
        Ok(())
    });
}

#[test]
fn replaced_plugin_is_reloaded_without_a_transition() {
    lab_test(2, |lab| {
        let plugin = lab.copy_plugin("port-listener", "p80.wasm")?;
        let listener = lab.listen_tcp(1, 8080)?;
        let check = port_listener_check("p80", &plugin, 8080, secs(1));
        let mut tracked = Instance::web(100);
        tracked.extra_kdl.push("track \"p80\"".into());
        let h1 = lab.start_upkeep(1, &format!("{}{check}", conf(1, &[tracked])))?;
        h1.wait_state("web", "master", secs(10))?;
        let h2 = lab.start_upkeep(2, &conf(2, &[Instance::web(90)]))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(10))?;
        lab.wait_holders(VIP, &[1], secs(5))?;
        h1.wait_check("p80", "healthy after 2 runs", secs(5), |c| {
            c["healthy"] == true && c["last_ok"] == true && c["runs"].as_u64() >= Some(2)
        })?;
        let before = web_transitions(&h1, &h2)?;
        let mon1 = lab.start_addr_monitor(1)?;
        let mon2 = lab.start_addr_monitor(2)?;
        let cap = lab.start_capture(2)?;

        // A rebuild: the same component, different bytes, saved by rename.
        let seq = h1.reload_seq()?;
        let old = std::fs::read(&plugin)?;
        let new = with_custom_section(&old, "upkeep-test", b"rebuilt");
        replace_file(&plugin, &new, 0o644)?;
        let r = h1.wait_reload(seq, secs(5))?;
        expect_reload(&h1, &r, "applied", &[], &[], &[])?;
        ensure!(r["trigger"] == "file change", "{r}");
        // The check runs on (from the new file) and stays healthy.
        h1.wait_check("p80", "healthy after the reload", secs(5), |c| {
            c["healthy"] == true && c["last_ok"] == true && c["runs"].as_u64() >= Some(2)
        })?;
        lab.expect_holders_stable(VIP, &[1], secs(1))?;
        // The master advertised on time throughout (a backup declares it dead after 3
        // intervals and a skew), so nobody took over.
        expect_web_undisturbed(&h1, &h2, before, &cap.stop()?, &mon2, "the plugin reload")?;
        expect_no_events(&mon1, 1, VIP)?;
        expect_no_events(&mon2, 2, VIP)?;
        let s = h1.instance("web")?;
        ensure!(
            s["state"] == "master" && s["effective_priority"] == 100,
            "h1: {s}"
        );

        // And the reloaded plugin still does its job.
        drop(listener);
        lab.wait_holders(VIP, &[2], secs(3))?;
        let c = h1.wait_check("p80", "unhealthy", secs(2), |c| c["healthy"] == false)?;
        ensure!(
            c["message"]
                .as_str()
                .is_some_and(|m| m.contains("nothing listens")),
            "{c}"
        );
        Ok(())
    });
}

/// A plugin pinned by `sha256`: `upkeep check` and the daemon take the pinned build; another
/// build saved over it is refused, by the reload (with both digests) and by `upkeep check`, and
/// the check runs on from the pinned one.
#[test]
fn a_pinned_plugin_replaced_by_another_build_is_refused_and_the_old_runs_on() {
    lab_test(1, |lab| {
        let plugin = lab.copy_plugin("port-listener", "p80.wasm")?;
        let _listener = lab.listen_tcp(1, 8080)?;
        let sum = |path: &Path| -> Result<String> {
            let out = std::process::Command::new("sha256sum").arg(path).output()?;
            let text = String::from_utf8(out.stdout)?;
            Ok(text
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string())
        };
        let pinned = sum(&plugin)?;
        let check = port_listener_check("p80", &plugin, 8080, secs(1)).replacen(
            "{\n",
            &format!("{{\n    sha256 \"{pinned}\"\n"),
            1,
        );
        let mut tracked = Instance::web(100);
        tracked.extra_kdl.push("track \"p80\"".into());
        let kdl = format!("{}{check}", conf(1, &[tracked]));
        let (_, out) = lab.upkeep_check(&kdl)?;
        ensure!(
            out.status.success(),
            "upkeep check: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let h1 = lab.start_upkeep(1, &kdl)?;
        h1.wait_state("web", "master", secs(10))?;
        h1.wait_check("p80", "healthy", secs(5), |c| c["healthy"] == true)?;

        // Another build saved over it: the file-change reload is refused, naming both digests.
        let seq = h1.reload_seq()?;
        let new = with_custom_section(&std::fs::read(&plugin)?, "upkeep-test", b"rebuilt");
        replace_file(&plugin, &new, 0o644)?;
        let other = sum(&plugin)?;
        let r = h1.wait_reload(seq, secs(5))?;
        ensure!(
            r["result"] == "refused"
                && r["error"]
                    .as_str()
                    .is_some_and(|e| e.contains(&pinned) && e.contains(&other)),
            "reload after the file changed: {r}"
        );
        // The pinned build runs on.
        let runs = h1.check("p80")?["runs"].as_u64().unwrap_or(0);
        h1.wait_check("p80", "still running, healthy", secs(5), |c| {
            c["healthy"] == true && c["runs"].as_u64() > Some(runs + 2)
        })?;
        ensure!(h1.state("web")? == "master", "{}", h1.instance("web")?);
        let (_, out) = lab.upkeep_check(&kdl)?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success() && err.contains(&pinned) && err.contains(&other),
            "upkeep check of the replaced build: {err}"
        );
        Ok(())
    });
}

#[test]
fn removing_an_instance_releases_its_vip_and_leaves_the_other_alone() {
    lab_test(2, |lab| {
        let h1 = lab.start_upkeep(1, &conf(1, &[Instance::web(100), api(100)]))?;
        h1.wait_state("web", "master", secs(10))?;
        h1.wait_state("api", "master", secs(5))?;
        let h2 = lab.start_upkeep(2, &conf(2, &[Instance::web(90), api(90)]))?;
        h2.wait_backup_of("web", "192.0.2.1", secs(10))?;
        h2.wait_backup_of("api", "192.0.2.1", secs(5))?;
        lab.wait_holders(VIP, &[1], secs(5))?;
        lab.wait_holders(VIP2, &[1], secs(5))?;
        let before = web_transitions(&h1, &h2)?;
        let mon1 = lab.start_addr_monitor(1)?;
        let mon2 = lab.start_addr_monitor(2)?;

        // Removed from the master: it resigns, the backup takes over at once.
        let t0 = Instant::now();
        let r = rewrite(&h1, &conf(1, &[Instance::web(100)]))?;
        expect_reload(&h1, &r, "applied", &[], &[], &["api"])?;
        lab.wait_holders(VIP2, &[2], secs(2))?;
        ensure!(
            t0.elapsed() < secs(1),
            "the backup took {:?} to take over the removed instance's VIP",
            t0.elapsed()
        );
        h1.wait_status("api gone from h1's status", secs(2), |st| {
            st["instances"]
                .as_array()
                .is_some_and(|a| a.len() == 1 && a[0]["name"] == "web")
        })?;

        // Removed everywhere: the VIP is gone.
        let r = rewrite(&h2, &conf(2, &[Instance::web(90)]))?;
        expect_reload(&h2, &r, "applied", &[], &[], &["api"])?;
        lab.wait_holders(VIP2, &[], secs(2))?;
        lab.expect_holders_stable(VIP, &[1], ms(500))?;
        ensure!(
            lab.holders(VIP2).is_empty(),
            "{VIP2} back on {:?}",
            lab.holders(VIP2)
        );

        expect_no_events(&mon1, 1, VIP)?;
        expect_no_events(&mon2, 2, VIP)?;
        expect_web_unmoved(&h1, &h2, before, "web transitioned")?;
        expect_web_master_on_h1(&h1, &h2)?;
        let ev = mon1.stop();
        ensure!(
            ev.iter()
                .any(|l| l.starts_with("Deleted") && l.contains("192.0.2.101/24")),
            "h1 never removed {VIP2}:\n{}",
            ev.join("\n")
        );
        lab.wait_client_ping(VIP, secs(5))?;
        if lab.client_ping(VIP2) {
            bail!("{VIP2} still answers");
        }
        Ok(())
    });
}

#[test]
fn a_reload_waiting_for_a_link_local_address_keeps_adverts_on_time() {
    lab_test(2, |lab| {
        let (h1, h2) = two_hosts(lab)?;
        // A link in h1 with no IPv6 link-local address yet (none is generated for it): the new
        // IPv6 instance's source address, which the reload waits for, appears later.
        let ns1 = lab.host_ns(1);
        lab.ip(
            &ns1,
            &[
                "link", "add", "six0", "type", "veth", "peer", "name", "six1",
            ],
        )?;
        lab.ip(&ns1, &["link", "set", "six0", "addrgenmode", "none"])?;
        lab.set_link(1, "six1", true)?;
        lab.set_link(1, "six0", true)?;
        let before = web_transitions(&h1, &h2)?;
        let mon2 = lab.start_addr_monitor(2)?;
        let cap = lab.start_capture(1)?;
        std::thread::sleep(ms(300));

        let mut six = Instance::new("six", 61, 100)
            .interval_ms(100)
            .vip("2001:db8:6::100/64");
        six.interface = "six0".into();
        let seq = h1.reload_seq()?;
        h1.write_config(&conf(1, &[Instance::web(100), six]))?;
        std::thread::sleep(ms(1500));
        lab.ip(
            &ns1,
            &["addr", "add", "fe80::61/64", "dev", "six0", "nodad"],
        )?;
        let r = h1.wait_reload(seq, secs(10))?;
        expect_reload(&h1, &r, "applied", &["six"], &[], &[])?;
        h1.wait_state("six", "master", secs(5))?;
        std::thread::sleep(ms(300));

        let pkts: Vec<Captured> = cap
            .stop()?
            .into_iter()
            .filter(|p| p.outgoing && p.vrid() == Some(51))
            .collect();
        eprintln!(
            "web's longest advert gap during the reload: {:?}",
            longest_advert_gap(&pkts, "192.0.2.1")
        );
        expect_web_undisturbed(&h1, &h2, before, &pkts, &mon2, "a reload waiting 1.5 s")?;
        expect_web_master_on_h1(&h1, &h2)?;
        lab.expect_holders_stable(VIP, &[1], ms(300))?;
        Ok(())
    });
}
