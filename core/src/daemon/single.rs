//! One daemon per network namespace. A second `upkeep run` beside a running one (a second
//! unit, a test by hand with another state dir) would remove the first one's VIPs in its
//! start-up clean-up and unlink its control socket, and the VIP would then be served by nobody.
//!
//! The claim is an abstract Unix socket, `@upkeep/daemon`: abstract names belong to the network
//! namespace (as the VIPs do), vanish when the process dies however it dies (no stale lock
//! file after a crash), and the one holding it answers who it is, so the refusal names it.

use std::io::{self, BufRead, BufReader, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use tracing::debug;

/// The abstract name every upkeep daemon claims in its network namespace.
const NAME: &[u8] = b"upkeep/daemon";

/// Why this daemon may not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(super) enum ClaimError {
    /// Another daemon holds the claim; `who` is what it says of itself (pid, state dir).
    #[error(
        "another upkeep daemon is running in this network namespace ({who}); a second one would \
         remove its VIPs: stop it first, or run one daemon with both configs"
    )]
    Taken { who: String },
    /// The abstract socket could not be made.
    #[error("cannot claim this network namespace for upkeep: {0}")]
    Io(#[from] io::Error),
}

/// Held for the daemon's life: dropping it (or the process ending) gives the claim up.
pub(super) struct Claim {
    _task: tokio::task::JoinHandle<()>,
}

/// Claims the namespace for this daemon, or says who has it. Call on the runtime, before
/// anything on the host is changed.
pub(super) fn claim(state_dir: &Path) -> Result<Claim, ClaimError> {
    let addr = SocketAddr::from_abstract_name(NAME)?;
    let listener = match UnixListener::bind_addr(&addr) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            return Err(ClaimError::Taken { who: who(&addr) })
        }
        Err(e) => return Err(e.into()),
    };
    listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(listener)?;
    let me = format!(
        "pid {}, state dir {}",
        std::process::id(),
        state_dir.display()
    );
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let line = format!("{me}\n");
            // Best effort: the asker only wants a name for its error message.
            if let Ok(mut s) = stream.into_std() {
                let _ = s.set_nonblocking(false);
                let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
                if let Err(e) = s.write_all(line.as_bytes()) {
                    debug!("claim socket: {e}");
                }
            }
        }
    });
    Ok(Claim { _task: task })
}

/// What the holder of the claim says of itself, or that it could not be asked.
fn who(addr: &SocketAddr) -> String {
    let ask = || -> io::Result<String> {
        let s = UnixStream::connect_addr(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line)?;
        Ok(line.trim().to_owned())
    };
    match ask() {
        Ok(line) if !line.is_empty() => line,
        Ok(_) => "it did not say who it is".to_owned(),
        Err(e) => format!("it did not answer: {e}"),
    }
}
