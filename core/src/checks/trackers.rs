//! File and process trackers (keepalived's `track_file` and `track_process`), polled.
//!
//! The reading is in small functions that tests reach without a daemon ([`parse_weight`],
//! [`count_processes_in`]); what a value does to a priority is the protocol crate's rule
//! (`upkeep_vrrp::node`); [`run_file`] and [`run_process`] are the tokio
//! loops that poll them every `interval` and report [`CheckResult`]s, as script checks do.
//! Interface checks need no loop here: the daemon follows links through netlink events.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::CheckResult;

/// Most of a weight file that is read: a number needs far less.
const MAX_WEIGHT_FILE: u64 = 4096;

/// The value of a weight file: the integer it starts with (after blanks, with an optional
/// sign). A file that is missing, unreadable, empty or does not start with an integer counts
/// as 0, as keepalived does; so does a number too large for an `i64`, and anything that is
/// not a regular file (a directory, a FIFO: opened without waiting for a writer, and not read).
pub fn read_weight_file(path: &Path) -> i64 {
    let mut text = Vec::new();
    let read = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .and_then(|f| {
            if !f.metadata()?.is_file() {
                return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
            }
            f.take(MAX_WEIGHT_FILE).read_to_end(&mut text)
        });
    match read {
        Ok(_) => parse_weight(&String::from_utf8_lossy(&text)),
        Err(_) => 0,
    }
}

/// The integer `text` starts with (see [`read_weight_file`]); 0 when there is none.
pub fn parse_weight(text: &str) -> i64 {
    let text = text.trim_start();
    let digits = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(text.len(), |(i, _)| i);
    text[..digits].parse().unwrap_or(0)
}

/// How many running processes are called `name`: their `comm` (the kernel's name, at most 15
/// bytes: a longer `name` is compared by its first 15) or, with `full`, their whole command
/// line with arguments joined by single spaces. Zombies do not count.
pub fn count_processes(name: &str, full: bool) -> usize {
    count_processes_in(Path::new("/proc"), name, full)
}

/// [`count_processes`] over a `/proc`-like tree (for tests).
pub fn count_processes_in(proc_root: &Path, name: &str, full: bool) -> usize {
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter(|e| process_matches(&e.path(), name, full))
        .count()
}

fn process_matches(dir: &Path, name: &str, full: bool) -> bool {
    if full {
        // A zombie's (or kernel thread's) command line is empty, so it never matches.
        let Ok(raw) = std::fs::read(dir.join("cmdline")) else {
            return false;
        };
        let raw = raw.strip_suffix(b"\0").unwrap_or(&raw);
        let joined: Vec<u8> = raw.iter().map(|&b| if b == 0 { b' ' } else { b }).collect();
        return !joined.is_empty() && joined == name.as_bytes();
    }
    // `stat` has the name and the state in one read: "PID (COMM) S ...".
    let Ok(stat) = std::fs::read(dir.join("stat")) else {
        return false;
    };
    let (Some(open), Some(close)) = (
        stat.iter().position(|&b| b == b'('),
        stat.iter().rposition(|&b| b == b')'),
    ) else {
        return false;
    };
    if open >= close {
        return false;
    }
    let comm = &stat[open + 1..close];
    let state = stat.get(close + 2).copied();
    let wanted = &name.as_bytes()[..name.len().min(15)];
    comm == wanted && !matches!(state, Some(b'Z' | b'X'))
}

/// Polls a weight file every `interval` and reports its value in `value`; ends when the
/// receiver is gone. `ok` is keepalived's status of the file as tracked with weight 0 (the
/// value is 0); the node applies each track's own weight to `value` (`upkeep_vrrp::node`).
pub async fn run_file(
    id: u64,
    path: PathBuf,
    interval: Duration,
    tx: mpsc::UnboundedSender<CheckResult>,
) {
    poll(interval, tx, move || {
        let start = Instant::now();
        let value = read_weight_file(&path);
        let ok = value == 0;
        let message = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => format!("{}: {value}", path.display()),
            Ok(_) => format!("{}: not a regular file, counts as 0", path.display()),
            Err(_) => format!("{}: missing, counts as 0", path.display()),
        };
        CheckResult {
            check: id,
            ok,
            message,
            duration: start.elapsed(),
            value: Some(value),
        }
    })
    .await;
}

/// Counts processes every `interval`: healthy while at least `min_count` run. Ends when the
/// receiver is gone.
pub async fn run_process(
    id: u64,
    name: String,
    full: bool,
    min_count: u32,
    interval: Duration,
    tx: mpsc::UnboundedSender<CheckResult>,
) {
    poll(interval, tx, move || {
        let start = Instant::now();
        let count = count_processes(&name, full);
        let ok = count >= min_count as usize;
        let what = if full { "with command line" } else { "named" };
        let message = if min_count > 1 {
            format!("{count} processes {what} `{name}` (at least {min_count} needed)")
        } else {
            format!("{count} processes {what} `{name}`")
        };
        CheckResult {
            check: id,
            ok,
            message,
            duration: start.elapsed(),
            value: None,
        }
    })
    .await;
}

/// Runs `probe` (file system reads) off the event loop every `interval`, sending each result.
async fn poll<F>(interval: Duration, tx: mpsc::UnboundedSender<CheckResult>, probe: F)
where
    F: Fn() -> CheckResult + Send + Sync + 'static,
{
    let probe = std::sync::Arc::new(probe);
    let mut schedule = super::Schedule::new(interval);
    loop {
        let p = probe.clone();
        let Ok(result) = tokio::task::spawn_blocking(move || p()).await else {
            return;
        };
        if tx.send(result).is_err() {
            return;
        }
        schedule.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("upkeep-trk-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn weights() {
        for (text, want) in [
            ("5", 5),
            ("5\n", 5),
            ("  -12 trailing words", -12),
            ("+7", 7),
            ("", 0),
            ("abc", 0),
            ("-", 0),
            ("1.5", 1),
            ("99999999999999999999", 0),
            ("\n\t42", 42),
        ] {
            assert_eq!(parse_weight(text), want, "{text:?}");
        }
        let dir = temp("file");
        let f = dir.join("w");
        assert_eq!(read_weight_file(&f), 0, "missing");
        std::fs::write(&f, "30\n").expect("write");
        assert_eq!(read_weight_file(&f), 30);
        std::fs::write(&f, [0xff, 0xfe, b'1']).expect("write");
        assert_eq!(read_weight_file(&f), 0, "garbage");
        assert_eq!(read_weight_file(&dir), 0, "a directory");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A FIFO nobody writes to, where a weight file should be: counts as 0 at once instead of
    /// blocking the poll (whose result would then never come).
    #[test]
    fn a_fifo_counts_as_0_without_waiting() {
        let dir = temp("fifo");
        let f = dir.join("w");
        let c = std::ffi::CString::new(f.to_str().expect("utf-8")).expect("path");
        // SAFETY: a NUL-terminated path, alive for the call.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
        let (tx, rx) = std::sync::mpsc::channel();
        let path = f.clone();
        std::thread::spawn(move || tx.send(read_weight_file(&path)));
        let got = rx.recv_timeout(Duration::from_secs(5));
        if got.is_err() {
            // Release the reader stuck in open(2) before failing.
            let _ = std::fs::OpenOptions::new().write(true).open(&f);
        }
        assert_eq!(got, Ok(0), "read_weight_file blocked on a FIFO");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn counting_in_a_fake_proc() {
        let root = temp("proc");
        let add = |pid: &str, stat: &str, cmdline: &[u8]| {
            let d = root.join(pid);
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(d.join("stat"), stat).expect("write");
            std::fs::write(d.join("cmdline"), cmdline).expect("write");
        };
        add(
            "1",
            "1 (nginx) S 0 1",
            b"nginx: master process /usr/sbin/nginx",
        );
        add("2", "2 (nginx) S 1 1", b"nginx: worker process\0");
        add("3", "3 (nginx) Z 1 1", b"");
        add("4", "4 (my (odd) name) R 1 1", b"/bin/odd\0--flag\0x y\0");
        add(
            "5",
            "5 (averyverylongpr) S 1 1",
            b"/opt/averyverylongprocessname\0",
        );
        add("6", "6 (kworker/0:1) I 2 0", b"");
        std::fs::create_dir_all(root.join("self")).expect("mkdir");
        std::fs::create_dir_all(root.join("77")).expect("mkdir: no files");
        let n = |name: &str, full| count_processes_in(&root, name, full);
        assert_eq!(n("nginx", false), 2, "zombies do not count");
        assert_eq!(n("ngin", false), 0, "exact names only");
        assert_eq!(n("my (odd) name", false), 1);
        assert_eq!(
            n("averyverylongprocessname", false),
            1,
            "compared on 15 bytes"
        );
        assert_eq!(n("nginx: worker process", true), 1);
        assert_eq!(n("/bin/odd --flag x y", true), 1);
        assert_eq!(n("nginx", true), 0);
        assert_eq!(n("", true), 0, "kernel threads have no command line");
        assert_eq!(count_processes_in(&root.join("none"), "nginx", false), 0);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn counting_real_processes() {
        let me = std::fs::read_to_string("/proc/self/comm").expect("comm");
        assert!(count_processes(me.trim_end(), false) >= 1);
        let mut child = std::process::Command::new("sleep")
            .arg("31.4159")
            .spawn()
            .expect("spawn sleep");
        // The command line is set at exec; wait for it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while count_processes("sleep 31.4159", true) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(count_processes("sleep 31.4159", true), 1);
        assert!(count_processes("sleep", false) >= 1);
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert_eq!(count_processes("sleep 31.4159", true), 0);
    }

    #[tokio::test]
    async fn loops_report_and_stop_with_the_receiver() {
        let dir = temp("loop");
        let f = dir.join("w");
        std::fs::write(&f, "-300").expect("write");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run_file(7, f.clone(), Duration::from_millis(20), tx));
        let r = rx.recv().await.expect("a result");
        assert_eq!((r.check, r.value, r.ok), (7, Some(-300), false));
        std::fs::write(&f, "4").expect("write");
        let r = loop {
            let r = rx.recv().await.expect("a result");
            if r.value == Some(4) {
                break r;
            }
        };
        assert!(!r.ok, "non-zero");
        assert!(r.message.ends_with("w: 4"), "{}", r.message);
        std::fs::remove_file(&f).expect("rm");
        let r = loop {
            let r = rx.recv().await.expect("a result");
            if r.value == Some(0) {
                break r;
            }
        };
        assert!(r.ok);
        assert!(r.message.contains("missing, counts as 0"), "{}", r.message);
        drop(rx);
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("the loop ends without a receiver")
            .expect("no panic");

        let me = std::fs::read_to_string("/proc/self/comm").expect("comm");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run_process(
            8,
            me.trim_end().to_owned(),
            false,
            1,
            Duration::from_millis(20),
            tx.clone(),
        ));
        let r = rx.recv().await.expect("a result");
        assert!(r.ok && r.value.is_none(), "{r:?}");
        task.abort();
        let task = tokio::spawn(run_process(
            9,
            "no-such-process-upkeep".into(),
            false,
            2,
            Duration::from_millis(20),
            tx,
        ));
        let r = rx.recv().await.expect("a result");
        assert!(!r.ok);
        assert_eq!(
            r.message,
            "0 processes named `no-such-process-upkeep` (at least 2 needed)"
        );
        task.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
