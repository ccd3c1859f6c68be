//! systemd's notify protocol (sd_notify(3)): READY=1 once the first election round has started,
//! STATUS= lines with a one-line summary, WATCHDOG=1 from the event loop itself, so a stuck loop
//! stops the pings and systemd restarts the daemon. Does nothing outside systemd.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

pub(super) struct SdNotify {
    socket: Option<(UnixDatagram, String)>,
    /// Half of WATCHDOG_USEC: how often to ping.
    pub watchdog: Option<Duration>,
}

impl SdNotify {
    pub(super) fn from_env() -> Self {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .and_then(|path| Some((UnixDatagram::unbound().ok()?, path)));
        let pid_ok = std::env::var("WATCHDOG_PID")
            .ok()
            .is_none_or(|p| p.parse::<u32>().ok() == Some(std::process::id()));
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|_| pid_ok && socket.is_some())
            .map(|us| Duration::from_micros(us / 2));
        Self { socket, watchdog }
    }

    /// Send a state string such as "READY=1\nSTATUS=..." (ignored without NOTIFY_SOCKET).
    pub(super) fn send(&self, state: &str) {
        let Some((sock, path)) = &self.socket else {
            return;
        };
        let r = if let Some(abstract_name) = path.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())
                .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
        } else {
            sock.send_to(state.as_bytes(), path)
        };
        if let Err(e) = r {
            tracing::debug!("sd_notify: {e}");
        }
    }
}
