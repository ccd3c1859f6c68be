//! Script checks are contained: a script that forks and ignores SIGTERM is killed as a group at
//! its timeout, and thousands of runs leave no zombie and no leaked file descriptor.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use upkeep::checks::script::{run_once, ScriptCheck};

fn check(command: &str, timeout: Duration) -> ScriptCheck {
    ScriptCheck {
        id: 0,
        command: command.to_string(),
        interval: Duration::from_secs(1),
        timeout,
        cwd: PathBuf::from("/"),
        run_as: None,
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Children of this process that are zombies (state Z).
fn zombies() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid ...
            let rest = stat.rsplit_once(')').map_or("", |r| r.1);
            let mut f = rest.split_whitespace();
            let state = f.next();
            let ppid = f.next();
            state == Some("Z") && ppid == Some(me.as_str())
        })
        .count()
}

/// Both tests count this process's children, so they must not run side by side: one test's
/// child that has exited but is not reaped yet would look like the other's leak.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Zombies must be gone, allowing a moment for the last child to be reaped.
fn assert_no_zombies() {
    let end = Instant::now() + Duration::from_secs(2);
    let mut left = zombies();
    while left > 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
        left = zombies();
    }
    assert_eq!(left, 0, "zombie children left");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn forking_script_that_ignores_sigterm_is_killed_as_a_group() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let marker = std::env::temp_dir().join(format!("upkeep-contain-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    // The children outlive the shell unless the whole group dies; the grandchild would write
    // the marker after 2 s.
    let cmd = format!(
        "trap '' TERM; (trap '' TERM; sleep 2; touch {m}) & sleep 100 & sleep 100",
        m = marker.display()
    );
    let start = Instant::now();
    let (ok, message, _) = runtime().block_on(run_once(&check(&cmd, Duration::from_millis(200))));
    assert!(!ok);
    assert!(message.contains("timed out"), "{message}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!marker.exists(), "a forked child survived the timeout");
    assert_no_zombies();
}

#[test]
fn ten_thousand_runs_leave_no_zombie_and_no_fd() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let rt = runtime();
    let before = open_fds();
    let c = check("exit 0", Duration::from_secs(5));
    let f = check("exit 3", Duration::from_secs(5));
    rt.block_on(async {
        for i in 0..10_000 {
            let (ok, _, _) = run_once(if i % 2 == 0 { &c } else { &f }).await;
            assert_eq!(ok, i % 2 == 0);
        }
    });
    assert_no_zombies();
    let after = open_fds();
    assert!(after <= before + 2, "fds: {before} before, {after} after");
}
