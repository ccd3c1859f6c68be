//! The seed topology (examples/three-node without its port-80 check): three hosts at
//! priorities 100/90/90, nopreempt, VRRPv2 with PASS auth "1234", one VIP, and a route
//! 198.51.100.0/24 via 192.0.2.254 that only the master has.
//!
//! Run alone: `cargo build -p upkeep && cargo test -p upkeep-tests --test three_node`

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use upkeep_tests::{lab_test, secs, upkeep_config, wait_for, Instance, Lab, Timeline, SIGKILL};

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
        // Equal priorities may briefly both claim mastership; let one advert interval settle it.
        std::thread::sleep(Duration::from_millis(1200));
        let new = expect_single_holder(lab, &[2, 3], secs(4))?;
        let (master, other) = if new == 2 { (&h2, &h3) } else { (&h3, &h2) };
        ensure!(
            master.state("http")? == "master",
            "{master}: {}",
            master.instance("http")?
        );
        other.wait_backup_of("http", &lab.host_ip(new), secs(3))?;
        // The client must follow: the new master's gratuitous ARP has to be the last word even
        // when h2 and h3 both briefly claimed mastership.
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
