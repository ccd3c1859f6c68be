//! File and process trackers (keepalived's `track_file` and `track_process`), driven by the
//! kernel's events (inotify; process exits and starts) with a slow safety poll.
//!
//! The reading is in small functions that tests reach without a daemon ([`parse_weight`],
//! [`count_processes_in`]); what a value does to a priority is the protocol crate's rule
//! (`upkeep_vrrp::node`); [`run_file`] and [`run_process`] are the tokio loops that read
//! them again on each event, and every `interval`, and report [`CheckResult`]s, as script
//! checks do.
//! Interface checks need no loop here: the daemon follows links through netlink events.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::CheckResult;
use crate::net::proc_events::{ProcEvent, ProcEvents};
use tracing::warn;

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
    matching_pids_in(proc_root, name, full).len()
}

/// The pids [`count_processes_in`] counts.
pub fn matching_pids_in(proc_root: &Path, name: &str, full: bool) -> BTreeSet<u32> {
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return BTreeSet::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            process_matches(&e.path(), name, full).then_some(pid)
        })
        .collect()
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

/// One read of a weight file, as a result: `value` is the file's integer, and `ok` is
/// keepalived's status of the file as tracked with weight 0 (the value is 0); the node applies
/// each track's own weight to `value` (`upkeep_vrrp::node`).
pub fn probe_file(id: u64, path: &Path) -> CheckResult {
    let start = Instant::now();
    let value = read_weight_file(path);
    let ok = value == 0;
    let message = match std::fs::metadata(path) {
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
}

/// Reads a weight file whenever inotify says it was rewritten, replaced, created by a rename
/// or removed (see [`watch_file`]), and every `interval` as a safety net (a writer that keeps
/// the file open, a directory that does not exist yet); reports each value. Ends when the
/// receiver is gone.
pub async fn run_file(
    id: u64,
    path: PathBuf,
    interval: Duration,
    tx: mpsc::UnboundedSender<CheckResult>,
) {
    let path = std::path::absolute(&path).unwrap_or(path);
    let (changed_tx, mut changed) = mpsc::unbounded_channel();
    // Watched before the first read, so a change between a read and the wait is queued.
    let mut watch = watch_file(&path, changed_tx.clone());
    loop {
        let p = path.clone();
        let Ok(result) = tokio::task::spawn_blocking(move || probe_file(id, &p)).await else {
            return;
        };
        if tx.send(result).is_err() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            Some(()) = changed.recv() => {}
        }
        // One read for a burst of events.
        while changed.try_recv().is_ok() {}
        if watch.is_none() {
            watch = watch_file(&path, changed_tx.clone());
        }
    }
}

/// Watches the directory of `path` (not the file: a file replaced by a rename is a new inode)
/// and sends on `tx` when the file is complete after a change: closed after writing, renamed
/// onto or away from its name, or removed. Creation and each write are not enough (`echo 5 >
/// f` creates or truncates it, then writes: reading at the first event would see it empty,
/// which counts as 0), as keepalived's `track_file` waits for IN_CLOSE_WRITE. None, with a
/// warning the first time, when the directory cannot be watched (it may not exist yet).
fn watch_file(path: &Path, tx: mpsc::UnboundedSender<()>) -> Option<RecommendedWatcher> {
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    let dir = path.parent()?.to_path_buf();
    let target = path.to_path_buf();
    let handler = move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else {
            // Lost events (a queue overflow): read again to be sure.
            let _ = tx.send(());
            return;
        };
        let complete = matches!(
            event.kind,
            EventKind::Access(AccessKind::Close(AccessMode::Write))
                | EventKind::Modify(ModifyKind::Name(_))
                | EventKind::Remove(_)
        );
        if complete && event.paths.contains(&target) {
            let _ = tx.send(());
        }
    };
    let watched = notify::recommended_watcher(handler)
        .and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|()| w));
    match watched {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::debug!("file check {}: not watched, polled: {e}", path.display());
            None
        }
    }
}

/// Counts processes: healthy while at least `min_count` run. Counted in full every
/// `interval`; in between, each process event ([`ProcEvents`]: a fork, exec or name change,
/// an exit) updates the count at once, a start by looking at that one process, an exit by
/// dropping its pid, and a changed count is reported right then. Without the connector (it
/// says so once) a pidfd per counted process still reports an exit at once; a start waits for
/// the next count. Ends when the receiver is gone.
pub async fn run_process(
    id: u64,
    name: String,
    full: bool,
    min_count: u32,
    interval: Duration,
    tx: mpsc::UnboundedSender<CheckResult>,
) {
    let name = std::sync::Arc::new(name);
    // Subscribed before the first count, so a start or exit during it is queued.
    let mut events = match ProcEvents::subscribe() {
        Ok(e) => Some(e),
        Err(e) => {
            warn!("process check `{name}`: no process events ({e}): exits are seen at once, starts within {interval:?}");
            None
        }
    };
    let report = |count: usize, start: Instant| {
        let ok = count >= min_count as usize;
        let what = if full { "with command line" } else { "named" };
        let message = if min_count > 1 {
            format!("{count} processes {what} `{name}` (at least {min_count} needed)")
        } else {
            format!("{count} processes {what} `{name}`")
        };
        tx.send(CheckResult {
            check: id,
            ok,
            message,
            duration: start.elapsed(),
            value: None,
        })
        .is_ok()
    };
    loop {
        let start = Instant::now();
        let n = name.clone();
        let Ok(mut pids) =
            tokio::task::spawn_blocking(move || matching_pids_in(Path::new("/proc"), &n, full))
                .await
        else {
            return;
        };
        if !report(pids.len(), start) {
            return;
        }
        let poll = tokio::time::sleep(interval);
        tokio::pin!(poll);
        // Until the next full count: follow the events.
        while let Some(ev) = events.as_mut() {
            let batch = tokio::select! {
                () = &mut poll => break,
                got = ev.next() => got,
            };
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    warn!("process check `{name}`: process events failed ({e}); counting every {interval:?}");
                    events = None;
                    break;
                }
            };
            if batch.contains(&ProcEvent::Lost) {
                break;
            }
            let start = Instant::now();
            let before = pids.len();
            let n = name.clone();
            // Reading /proc/PID/stat for each start: off the event loop, a burst at a time.
            let Ok(updated) = tokio::task::spawn_blocking(move || {
                for e in batch {
                    match e {
                        ProcEvent::Exited(pid) => {
                            pids.remove(&pid);
                        }
                        ProcEvent::Changed(pid) => {
                            let dir = Path::new("/proc").join(pid.to_string());
                            if process_matches(&dir, &n, full) {
                                pids.insert(pid);
                            } else {
                                pids.remove(&pid);
                            }
                        }
                        ProcEvent::Lost => {}
                    }
                }
                pids
            })
            .await
            else {
                return;
            };
            pids = updated;
            if pids.len() != before && !report(pids.len(), start) {
                return;
            }
        }
        if events.is_none() {
            // No connector: a pidfd for each process counted hears its exit at once; a start
            // waits for the next count.
            let mut exits = watch_exits(&pids);
            loop {
                tokio::select! {
                    () = &mut poll => break,
                    Some(Ok(pid)) = exits.join_next() => {
                        let start = Instant::now();
                        if pids.remove(&pid) && !report(pids.len(), start) {
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// A task per pid that ends, with the pid, when that process exits (a pidfd turns readable);
/// a pid that is already gone ends at once. Dropping the set stops them.
fn watch_exits(pids: &BTreeSet<u32>) -> tokio::task::JoinSet<u32> {
    let mut set = tokio::task::JoinSet::new();
    for &pid in pids {
        match pidfd(pid) {
            Ok(fd) => {
                set.spawn(async move {
                    let _ = fd.readable().await;
                    pid
                });
            }
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                set.spawn(async move { pid });
            }
            // No pidfds (a kernel before 5.3): the next count sees the exit.
            Err(_) => {}
        }
    }
    set
}

/// pidfd_open(2) of `pid`, registered with the event loop.
#[allow(unsafe_code)]
fn pidfd(pid: u32) -> std::io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    use std::os::fd::FromRawFd;
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: a plain syscall with integer arguments; the fd it returns is owned at once.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let raw = i32::try_from(raw).map_err(|_| std::io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: `raw` is a new fd nobody else owns.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
    // SAFETY: the OwnedFd keeps its fd open until the AsyncFd drops it.
    unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
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

    /// The first result from `rx` with `value`, within 2 s; with an hour between polls only
    /// an inotify event can bring it. (One change may bring more than one event: a rename is
    /// seen as "from", "to" and "both".)
    async fn value_seen(rx: &mut mpsc::UnboundedReceiver<CheckResult>, value: i64) -> CheckResult {
        let wait = async {
            loop {
                let r = rx.recv().await.expect("a result");
                if r.value == Some(value) {
                    return r;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(2), wait)
            .await
            .unwrap_or_else(|_| panic!("value {value} not read within 2 s"))
    }

    #[tokio::test]
    async fn a_weight_file_is_read_again_on_each_change() {
        let dir = temp("inotify");
        let f = dir.join("w");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run_file(1, f.clone(), Duration::from_secs(3600), tx));
        value_seen(&mut rx, 0).await;
        // Created by a rename, as config management writes files.
        std::fs::write(dir.join(".w.tmp"), "-20\n").unwrap();
        std::fs::rename(dir.join(".w.tmp"), &f).unwrap();
        value_seen(&mut rx, -20).await;
        // Rewritten in place (truncate, write, close): read once it is closed.
        std::fs::write(&f, "7").unwrap();
        value_seen(&mut rx, 7).await;
        std::fs::remove_file(&f).unwrap();
        let r = value_seen(&mut rx, 0).await;
        assert!(r.message.contains("missing"), "{r:?}");
        // Another file in the same directory is not this one.
        tokio::time::sleep(Duration::from_millis(100)).await;
        while rx.try_recv().is_ok() {}
        std::fs::write(dir.join("other"), "1").unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
        assert!(quiet.is_err(), "read again for another file: {quiet:?}");
        task.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// With an hour between counts, a start and an exit are reported from the process events
    /// alone (needs CAP_NET_ADMIN; skipped without).
    #[tokio::test]
    async fn a_process_start_and_exit_are_reported_at_once() {
        if ProcEvents::subscribe().is_err() {
            eprintln!("skipped: no process connector");
            return;
        }
        let dir = temp("procev");
        let name = format!("upk-ev-{}", std::process::id() % 100_000);
        let bin = dir.join(&name);
        std::fs::copy("/bin/sleep", &bin).expect("copy sleep");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run_process(
            4,
            name.clone(),
            false,
            1,
            Duration::from_secs(3600),
            tx,
        ));
        let next = |rx: &mut mpsc::UnboundedReceiver<CheckResult>| {
            let r = rx.try_recv();
            r.ok()
        };
        let first = rx.recv().await.expect("first count");
        assert!(!first.ok, "{first:?}");
        let mut child = std::process::Command::new(&bin)
            .arg("30")
            .spawn()
            .expect("spawn");
        let r = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .expect("the start not reported within 2 s")
            .expect("a result");
        assert!(r.ok, "{r:?}");
        assert_eq!(r.message, format!("1 processes named `{name}`"));
        child.kill().expect("kill");
        child.wait().expect("reap");
        let r = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .expect("the exit not reported within 2 s")
            .expect("a result");
        assert!(!r.ok, "{r:?}");
        assert_eq!(next(&mut rx), None, "one result per change");
        task.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Without the connector, a pidfd hears a counted process exit; a pid already gone ends
    /// at once.
    #[tokio::test]
    async fn pidfds_hear_an_exit() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn");
        let pid = child.id();
        let mut exits = watch_exits(&BTreeSet::from([pid, u32::MAX - 1]));
        let gone = tokio::time::timeout(Duration::from_secs(1), exits.join_next()).await;
        assert_eq!(
            gone.ok().flatten().map(Result::ok),
            Some(Some(u32::MAX - 1))
        );
        let early = tokio::time::timeout(Duration::from_millis(200), exits.join_next()).await;
        assert!(early.is_err(), "reported before it exited");
        child.kill().expect("kill");
        let exited = tokio::time::timeout(Duration::from_secs(2), exits.join_next())
            .await
            .expect("the exit not heard within 2 s");
        assert_eq!(exited.map(Result::ok), Some(Some(pid)));
        child.wait().expect("reap");
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
