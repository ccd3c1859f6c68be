//! The seed topology (examples/three-node): three hosts at priorities 100/90/90, nopreempt,
//! VRRPv2 with PASS auth "1234", one VIP, and a route 198.51.100.0/24 via 192.0.2.254 that only
//! the master has; with and without the example's port-80 check.
//!
//! Run alone: `cargo build -p upkeep && cargo test -p upkeep-tests --test three_node`

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use upkeep_tests::{
    lab_test, ms, secs, upkeep_config, wait_for, Capture, Instance, Lab, Timeline, SIGKILL,
};

const VIP: &str = "192.0.2.100";
const ROUTE: &str = "198.51.100.0/24";

fn seed(priority: u8) -> Instance {
    Instance::new("http", 47, priority)
        .version(2)
        .interval_ms(1000)
        .preempt(false)
        .auth_pass("1234")
        .vip("192.0.2.100/24")
        .route(ROUTE, "192.0.2.254")
}

fn conf(i: usize) -> String {
    upkeep_config(&format!("h{i}"), &[seed(if i == 1 { 100 } else { 90 })])
}

fn route_holders(lab: &Lab) -> Vec<usize> {
    (1..=lab.hosts())
        .filter(|&i| lab.has_route(i, ROUTE))
        .collect()
}

/// Samples for `duration` that among `among`, exactly one host holds the VIP, always the same
/// one, and that it alone has the route. Returns that host.
fn expect_single_holder(lab: &Lab, among: &[usize], duration: Duration) -> Result<usize> {
    let start = Instant::now();
    let mut seen = Timeline::default();
    let mut first = None;
    let mut ok = true;
    while start.elapsed() < duration {
        let h: Vec<usize> = lab
            .holders(VIP)
            .into_iter()
            .filter(|i| among.contains(i))
            .collect();
        let r: Vec<usize> = route_holders(lab)
            .into_iter()
            .filter(|i| among.contains(i))
            .collect();
        ok &= h.len() == 1 && r == h && first.is_none_or(|f| h == [f]);
        first = first.or(h.first().copied());
        seen.push(start.elapsed(), (h, r));
        std::thread::sleep(Duration::from_millis(100));
    }
    match (ok, first) {
        (true, Some(f)) => Ok(f),
        _ => bail!("expected exactly one stable holder among {among:?}; seen (VIP holders, route holders):\n{seen}"),
    }
}

#[test]
fn seed_topology_has_one_master_and_fails_over_to_exactly_one() {
    lab_test(3, |lab| {
        let h1 = lab.start_upkeep(1, &conf(1))?;
        h1.wait_state("http", "master", secs(10))?;
        let h2 = lab.start_upkeep(2, &conf(2))?;
        let h3 = lab.start_upkeep(3, &conf(3))?;
        for b in [&h2, &h3] {
            b.wait_backup_of("http", "192.0.2.1", secs(5))?;
        }
        lab.wait_holders(VIP, &[1], secs(5))?;
        wait_for(
            "the route on h1 only",
            secs(5),
            || route_holders(lab),
            |r| r == &[1],
        )?;
        lab.wait_client_ping(VIP, secs(5))?;

        // Converged: over several seconds, h1 and only h1 holds the VIP and the route.
        ensure!(
            expect_single_holder(lab, &[1, 2, 3], secs(4))? == 1,
            "h1 should be the holder"
        );
        for b in [&h2, &h3] {
            ensure!(b.state("http")? == "backup", "{b}: {}", b.instance("http")?);
        }

        // Crash the master and cut its link: exactly one of h2/h3 takes over, for good.
        let captures = [lab.start_capture(2)?, lab.start_capture(3)?];
        h1.signal(SIGKILL)?;
        lab.link_down(1)?;
        wait_for(
            "exactly one of h2/h3 to hold the VIP",
            secs(8),
            || {
                lab.holders(VIP)
                    .into_iter()
                    .filter(|&i| i != 1)
                    .collect::<Vec<_>>()
            },
            |h| h.len() == 1,
        )?;
        let new = expect_single_holder(lab, &[2, 3], secs(4))?;
        // Equal priorities: the tie-break delay lets only one of them announce itself master
        // (without it both did, and the lower address yielded: two rounds of gratuitous ARP).
        only_one_announced(lab, &captures)?;
        let (master, other) = if new == 2 { (&h2, &h3) } else { (&h3, &h2) };
        ensure!(
            master.state("http")? == "master",
            "{master}: {}",
            master.instance("http")?
        );
        other.wait_backup_of("http", &lab.host_ip(new), secs(3))?;
        // The client must follow: the new master's gratuitous ARP has to be the last word.
        lab.wait_client_ping(VIP, secs(5)).map_err(|e| {
            let (host, state) = lab.client_neighbour(VIP);
            anyhow::anyhow!(
                "{e:#}\nthe client's ARP entry for {VIP} points at h{} ({state}) while h{new} holds it: \
                 the new master did not re-announce the VIP after the tie-break",
                host.map_or("?".into(), |h| h.to_string())
            )
        })?;

        // nopreempt: the recovered h1 stays backup and nothing moves.
        drop(h1);
        lab.link_up(1)?;
        let h1 = lab.start_upkeep(1, &conf(1))?;
        h1.wait_backup_of("http", &lab.host_ip(new), secs(10))?;
        ensure!(
            expect_single_holder(lab, &[1, 2, 3], secs(3))? == new,
            "the VIP moved after h1 came back"
        );
        ensure!(
            h1.state("http")? == "backup",
            "h1: {}",
            h1.instance("http")?
        );
        Ok(())
    });
}

/// The backups (h2, h3) that sent an advert of their own (priority above 0) in `captures`.
fn announced(lab: &Lab, captures: &[Capture]) -> Vec<usize> {
    (2..=3)
        .zip(captures)
        .filter(|(i, c)| {
            let ip = lab.host_ip(*i);
            c.packets()
                .iter()
                .any(|p| p.outgoing && p.src.to_string() == ip && p.priority() > Some(0))
        })
        .map(|(i, _)| i)
        .collect()
}

fn only_one_announced(lab: &Lab, captures: &[Capture]) -> Result<()> {
    let who = announced(lab, captures);
    if who.len() != 1 {
        let dump: Vec<String> = captures
            .iter()
            .flat_map(|c| c.packets())
            .filter(|p| p.outgoing)
            .map(|p| p.summary())
            .collect();
        bail!(
            "expected exactly one backup to announce itself master, saw {who:?}:\n{}",
            dump.join("\n")
        );
    }
    Ok(())
}

/// A web server (`python3 -m http.server 80`) in host i's namespace; killed when dropped.
struct WebServer(Child);

impl WebServer {
    fn start(lab: &Lab, i: usize) -> Result<WebServer> {
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.host_ns(i)])
            .args(["python3", "-m", "http.server", "80", "--bind", "0.0.0.0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start python3 -m http.server")?;
        let server = WebServer(child);
        wait_for(
            format!("a listener on h{i}'s port 80"),
            secs(10),
            || {
                lab.exec(&lab.host_ns(i), &["ss", "-Htln", "sport = :80"])
                    .map(|o| !o.stdout.is_empty())
                    .unwrap_or(false)
            },
            |listening| *listening,
        )?;
        Ok(server)
    }

    /// SIGKILL, as a crashing web server.
    fn kill(mut self) -> Result<()> {
        self.0.kill()?;
        self.0.wait()?;
        Ok(())
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The seed's config with the example's check: `check_port80.sh` (healthy while something
/// listens on TCP port 80) every 2 s, weight -20, at `script`.
fn conf_with_check(i: usize, script: &Path) -> String {
    let inst = seed(if i == 1 { 100 } else { 90 });
    let mut inst = inst;
    inst.extra_kdl.push("track \"port80\"".into());
    format!(
        "{}check \"port80\" {{\n    script {:?}\n    interval \"2s\"\n    weight -20\n}}\n",
        upkeep_config(&format!("h{i}"), &[inst]),
        script.display().to_string()
    )
}

/// The seed's own case (issue 18): nopreempt everywhere and a port-80 check of weight -20. The
/// master's web server dies: its priority falls to 80, below the backups' 90, and it hands the
/// VIP over (handover-when-sick): to one backup only, with the daemon still running; when the
/// web server is back the VIP stays where it went (nopreempt). keepalived (and upkeep before)
/// kept the VIP on the sick master for good.
#[test]
fn seed_case_a_master_whose_web_server_dies_hands_over_and_the_vip_stays_off_it() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/three-node");
    let staged = stage_example(&example).expect("stage the example");
    let script = staged.path().join("check_port80.sh");
    lab_test(3, |lab| {
        let mut web = Vec::new();
        for i in 1..=3 {
            web.push(Some(WebServer::start(lab, i)?));
        }
        let h1 = lab.start_upkeep(1, &conf_with_check(1, &script))?;
        h1.wait_check("port80", "healthy", secs(5), |c| c["healthy"] == true)?;
        h1.wait_state("http", "master", secs(10))?;
        let h2 = lab.start_upkeep(2, &conf_with_check(2, &script))?;
        let h3 = lab.start_upkeep(3, &conf_with_check(3, &script))?;
        for b in [&h2, &h3] {
            b.wait_check("port80", "healthy", secs(5), |c| c["healthy"] == true)?;
            b.wait_backup_of("http", "192.0.2.1", secs(5))?;
        }
        lab.wait_holders(VIP, &[1], secs(5))?;
        lab.wait_client_ping(VIP, secs(5))?;

        let captures = [lab.start_capture(2)?, lab.start_capture(3)?];
        let pinger = lab.start_pinger(VIP, ms(20))?;
        // The web server on the master dies.
        let t0 = Instant::now();
        if let Some(w) = web[0].take() {
            w.kill()?;
        }
        // Next check (within 2 s), then Skew_Time (0.65 s) and the successor's first advert:
        // about 2.7 s at worst; bounded generously.
        let holders = wait_for(
            "the VIP on h2 or h3 alone",
            secs(10),
            || lab.holders(VIP),
            |h| h.len() == 1 && h[0] != 1,
        )?;
        let moved = t0.elapsed();
        let new = holders[0];
        let (master, other) = if new == 2 { (&h2, &h3) } else { (&h3, &h2) };
        master.wait_state("http", "master", secs(2))?;
        other.wait_backup_of("http", &lab.host_ip(new), secs(3))?;
        let s = h1.wait_state("http", "backup", secs(3))?;
        ensure!(s["effective_priority"] == 80, "h1: {s}");
        ensure!(h1.is_running(), "h1's daemon stopped: {}", h1.log_tail(20));
        lab.wait_client_ping(VIP, secs(3))?;
        let report = pinger.stop()?;
        eprintln!(
            "VIP on h{new} {moved:?} after h1's web server died; pings every 20 ms: {} of {} lost, longest gap {:?}",
            report.lost(),
            report.sent(),
            report.longest_gap()
        );
        // Make-before-break: no outage beyond a few pings.
        ensure!(
            report.longest_gap() < ms(1000),
            "client outage {:?} ({} of {} lost)",
            report.longest_gap(),
            report.lost(),
            report.sent()
        );
        only_one_announced(lab, &captures)?;

        // The web server comes back: h1 is healthy (priority 100) and stays backup.
        web[0] = Some(WebServer::start(lab, 1)?);
        h1.wait_check("port80", "healthy again", secs(5), |c| c["healthy"] == true)?;
        let s = h1.wait_state("http", "backup", secs(2))?;
        ensure!(s["effective_priority"] == 100, "h1: {s}");
        ensure!(
            expect_single_holder(lab, &[1, 2, 3], secs(5))? == new,
            "the VIP moved back after h1's web server came back"
        );
        ensure!(
            h1.state("http")? == "backup",
            "h1: {}",
            h1.instance("http")?
        );
        ensure!(h1.is_running(), "h1's daemon stopped");
        Ok(())
    });
}

/// `scripts/demo.sh` (the newcomer's first run) ends cleanly: exit 0, the VIP moved off h1
/// when its web server stopped and stayed off when it came back, and no "Killed" lines from
/// bash's job control.
#[test]
fn the_demo_script_runs_the_seed_case_and_ends_cleanly() -> Result<()> {
    let bin = upkeep_tests::upkeep_bin()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(root.join("scripts/demo.sh"))
        .env("UPKEEP_BIN", &bin)
        .current_dir(&root)
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(out.status.success(), "demo.sh failed:\n{text}");
    ensure!(!text.contains("Killed"), "job-control noise:\n{text}");
    let after_stop = text
        .lines()
        .skip_while(|l| !l.contains("h1's web server stops"))
        .nth(1)
        .unwrap_or_default();
    ensure!(
        after_stop.starts_with("VIP 192.0.2.100 is on: h3 ")
            || after_stop.starts_with("VIP 192.0.2.100 is on: h2 "),
        "the VIP did not move off h1: {after_stop:?}\n{text}"
    );
    let after_back = text
        .lines()
        .skip_while(|l| !l.contains("h1's web server is back"))
        .nth(1)
        .unwrap_or_default();
    ensure!(
        after_back.trim_end() == after_stop.split(" (").next().unwrap_or_default(),
        "the VIP moved when h1's web server came back: {after_back:?}\n{text}"
    );
    Ok(())
}

/// The shipped example configs of the seed topology are valid, wherever the repository was
/// cloned. Their check script runs as `nobody` (no `upkeep-script` user here), which must reach
/// it; in a clone under root's home (mode 0700) it cannot, and script security rightly refuses
/// the config. So the example is checked where an operator would put it: staged, with its
/// script, in a fresh directory anyone may enter, as `scripts/demo.sh` does.
#[test]
fn seed_example_configs_pass_check() -> Result<()> {
    let bin = upkeep_tests::upkeep_bin()?;
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/three-node");
    let staged = stage_example(&example)?;
    for h in ["h1", "h2", "h3"] {
        let file = staged.path().join(format!("{h}.kdl"));
        let out = std::process::Command::new(&bin)
            .arg("check")
            .arg("--config")
            .arg(&file)
            .output()?;
        ensure!(
            out.status.success(),
            "upkeep check {} (staged from {}) failed: {}{}",
            file.display(),
            example.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // It says what a failed check does under nopreempt (upkeep differs from keepalived).
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            stdout.contains("note: instance `http` is nopreempt and tracks port80 with a negative weight: a master whose check fails hands the VIPs over"),
            "no note on the sick-master handover:\n{stdout}"
        );
    }
    Ok(())
}

/// Copies the files of `example` (modes kept) into a new directory under /tmp (root's, sticky)
/// with mode 0755, which every script user can enter.
fn stage_example(example: &Path) -> Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let staged = tempfile::Builder::new()
        .prefix("upkeep-example-")
        .tempdir_in("/tmp")?;
    std::fs::set_permissions(staged.path(), std::fs::Permissions::from_mode(0o755))?;
    for entry in std::fs::read_dir(example)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), staged.path().join(entry.file_name()))?;
        }
    }
    Ok(staged)
}
