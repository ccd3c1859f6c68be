//! The control socket: `STATE_DIR/control.sock`, a Unix stream socket only root can open (0600),
//! one JSON request per line, one JSON answer per line.
//!
//! The mode is the fence; behind it every connection's peer is checked too (SO_PEERCRED): a
//! process whose uid is not 0 (the socket made 0666 by mistake, a file descriptor passed on)
//! gets one error line, [`PERMISSION_DENIED`], and is disconnected. Refusals are logged and
//! counted (the metric `upkeep_control_refused_total`; the count is kept by the metrics module,
//! [`metrics::count_control_refusal`], so that metrics needs nothing of this module).
//!
//! Requests: `{"cmd":"status"}` → the same document as status.json; `{"cmd":"reload"}` → the
//! reload's result once it is done; `{"cmd":"handover","instance":"NAME"}` → a master hands
//! the instance (and its sync group) over to the best backup and is held back from preempting;
//! `{"cmd":"release","instance":"NAME"}` lifts that hold. Connections are served on their own
//! tasks and hand each request to the event loop, which owns all state.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::metrics;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Command {
    Status,
    Reload,
    /// An operator's planned handover of an instance (and the rest of its sync group).
    Handover {
        instance: String,
    },
    /// Lift the hold a handover left on an instance (and its sync group).
    Release {
        instance: String,
    },
}

/// The error a peer that is not root gets.
pub const PERMISSION_DENIED: &str = "permission denied: the control socket is root-only";

/// One request for the event loop, with where to send its JSON answer.
pub type Pending = (Command, oneshot::Sender<serde_json::Value>);

pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("control.sock")
}

/// Bind the socket (replacing a stale one) and serve it; requests arrive on the returned
/// channel.
pub fn serve(state_dir: &Path) -> std::io::Result<mpsc::Receiver<Pending>> {
    let path = socket_path(state_dir);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, tx.clone()));
                }
                Err(e) => {
                    warn!("control socket: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(rx)
}

async fn connection(stream: UnixStream, tx: mpsc::Sender<Pending>) {
    let uid = stream.peer_cred().map(|c| (c.uid(), c.pid()));
    match uid {
        Ok((0, _)) => {}
        Ok((uid, pid)) => {
            let n = metrics::count_control_refusal();
            warn!(
                uid,
                pid, "control socket: refused a client that is not root ({n} refused so far)"
            );
            refuse(stream).await;
            return;
        }
        Err(e) => {
            let n = metrics::count_control_refusal();
            warn!("control socket: cannot tell who the client is ({e}); refused ({n} so far)");
            refuse(stream).await;
            return;
        }
    }
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = match serde_json::from_str::<Command>(&line) {
            Ok(cmd) => {
                let (reply, wait) = oneshot::channel();
                if tx.send((cmd, reply)).await.is_err() {
                    return;
                }
                wait.await.unwrap_or(serde_json::Value::Null)
            }
            Err(e) => serde_json::json!({ "error": format!("bad request: {e}") }),
        };
        let mut out = answer.to_string();
        out.push('\n');
        if let Err(e) = write.write_all(out.as_bytes()).await {
            debug!("control client went away: {e}");
            return;
        }
    }
}

/// Tells a client it may not use the socket, then reads what it sent (for at most a second)
/// before closing: closing with its request unread would reset the connection, and the client
/// could lose the explanation.
async fn refuse(stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut out = serde_json::json!({ "error": PERMISSION_DENIED }).to_string();
    out.push('\n');
    if write.write_all(out.as_bytes()).await.is_err() {
        return;
    }
    let _ = write.shutdown().await;
    let mut lines = BufReader::new(read).lines();
    let drain = async { while let Ok(Some(_)) = lines.next_line().await {} };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// Client side, for the CLI: send one request and read one answer. An answer that is an
/// error (`{"error": ...}`: not root, a bad request) is returned as an error, and a socket the
/// caller may not open says that it is root's.
pub fn request(state_dir: &Path, cmd: &str) -> std::io::Result<serde_json::Value> {
    request_json(state_dir, &serde_json::json!({ "cmd": cmd }))
}

/// [`request`] with a whole request document (a command with arguments).
pub fn request_json(
    state_dir: &Path,
    request: &serde_json::Value,
) -> std::io::Result<serde_json::Value> {
    use std::io::{BufRead, ErrorKind, Write};
    let path = socket_path(state_dir);
    let mut s = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        if e.kind() == ErrorKind::PermissionDenied {
            std::io::Error::new(
                ErrorKind::PermissionDenied,
                format!("{e}: the control socket is root-only; run this as root (sudo)"),
            )
        } else {
            e
        }
    })?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    writeln!(s, "{request}")?;
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line)?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            ErrorKind::UnexpectedEof,
            "the daemon closed the connection without an answer",
        ));
    }
    let answer: serde_json::Value = serde_json::from_str(&line).map_err(std::io::Error::other)?;
    match answer.get("error").and_then(|e| e.as_str()) {
        Some(e) if e == PERMISSION_DENIED => Err(std::io::Error::new(
            ErrorKind::PermissionDenied,
            format!("the daemon refused: {e}; run this as root (sudo)"),
        )),
        Some(e) if answer.as_object().is_some_and(|o| o.len() == 1) => {
            Err(std::io::Error::other(format!("the daemon refused: {e}")))
        }
        _ => Ok(answer),
    }
}
