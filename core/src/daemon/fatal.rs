//! The daemon's runtime, on which a panic is fatal.
//!
//! tokio catches a panicking task and goes on: the event loop would keep feeding systemd's
//! watchdog while whatever the task did (receiving adverts, the control socket, a check) is
//! gone, and nothing would restart it. So a panic on the daemon's thread, which runs the event
//! loop and every task it spawns, logs and aborts the process: systemd restarts it
//! (`Restart=on-failure`), and start-up removes the VIPs it left. Panics on the plugin host's
//! threads stay contained (they fail that plugin's call, see `checks::wasm`), as before.

use std::sync::Once;

/// The runtime the daemon runs on: one thread (the caller's), where a panic ends the process.
pub(super) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    fatal_on_this_thread();
    Ok(rt)
}

/// Installs (once) a panic hook that, after the usual report, aborts when the panic is on the
/// calling thread.
fn fatal_on_this_thread() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let daemon = std::thread::current().id();
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            report(info);
            if std::thread::current().id() == daemon {
                tracing::error!(
                    "{info}: a panic in the daemon; exiting so that the service manager \
                     restarts it"
                );
                std::process::abort();
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::Duration;

    /// Set for the process [`a_panicking_task_ends_the_daemon`] starts.
    const CHILD: &str = "UPKEEP_TEST_PANICKING_DAEMON";

    /// A task of the daemon panics while its event loop goes on feeding the watchdog (the
    /// service manager would never restart it, and whatever the task did, receiving adverts
    /// say, is gone): the process must end, and say why.
    #[test]
    fn a_panicking_task_ends_the_daemon() {
        let exe = std::env::current_exe().expect("test binary");
        let out = Command::new(exe)
            .args([
                "--exact",
                "daemon::fatal::tests::a_daemon_whose_task_panics",
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .expect("run the child");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("the daemon whose task panicked ended with {}", out.status);
        assert!(
            !out.status.success(),
            "the daemon went on after its task panicked ({}):\n{text}",
            out.status
        );
        assert!(
            !text.contains("watchdog fed 20 times"),
            "the loop went on after the panic:\n{text}"
        );
        assert!(text.contains("a task that panics"), "{text}");
        assert!(text.contains("a panic in the daemon; exiting"), "{text}");
    }

    /// The daemon's runtime with a task that panics beside a loop that feeds a watchdog;
    /// [`a_panicking_task_ends_the_daemon`] runs it in a process of its own.
    #[test]
    #[ignore = "run by a_panicking_task_ends_the_daemon in a process of its own"]
    fn a_daemon_whose_task_panics() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        // The daemon's logs go to stderr (or journald) as here.
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .try_init();
        let rt = super::runtime().expect("runtime");
        rt.block_on(async {
            tokio::spawn(async { panic!("a task that panics") });
            for fed in 1..=20 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                println!("watchdog fed {fed} times");
            }
        });
    }
}
