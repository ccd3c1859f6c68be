//! The control socket: `STATE_DIR/control.sock`, a Unix stream socket only root can open (0600),
//! one JSON request per line, one JSON answer per line.
//!
//! The mode is the fence; behind it every connection's peer is checked too (SO_PEERCRED): a
//! process whose uid is not 0 (the socket made 0666 by mistake, a file descriptor passed on)
//! gets one error line, [`PERMISSION_DENIED`], and is disconnected. Refusals are logged and
//! counted (the metric `upkeep_control_refused_total`; the count is kept by the metrics module,
//! [`metrics::count_control_refusal`], so that metrics needs nothing of this module).
//!
//! The protocol is [`Request`] and [`Reply`], used by both ends (the daemon here, the CLI
//! through [`request`]): `{"cmd":"status"}` → the same document as status.json;
//! `{"cmd":"reload"}` → the reload's record once it is done; `{"cmd":"handover","instance":"NAME"}`
//! → a master hands the instance (and its sync group) over to the best backup and is held back
//! from preempting; `{"cmd":"release","instance":"NAME"}` lifts that hold. Any of them may be
//! answered `{"error":"..."}`. Connections are served on their own tasks and hand each request
//! to the event loop, which owns all state.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::metrics;

use super::status::{ReloadStatus, Status};

/// One request on the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    /// The daemon's status (what status.json holds).
    Status,
    /// Reload the config; answered when the reload is done.
    Reload,
    /// An operator's planned handover of an instance (and the rest of its sync group).
    Handover { instance: String },
    /// Lift the hold a handover left on an instance (and its sync group).
    Release { instance: String },
}

/// The answer to a [`Request`]: which variant depends on the request, and any request may get
/// [`Reply::Error`]. On the wire each is its plain JSON document (no tag), so status.json and
/// the status answer are the same document.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// To [`Request::Status`].
    Status(Box<Status>),
    /// To [`Request::Reload`].
    Reload(ReloadStatus),
    /// To [`Request::Handover`] and [`Request::Release`]: the instances it went to (the
    /// named one and the rest of its sync group).
    Instances { instances: Vec<String> },
    /// The request was refused or could not be served.
    Error { error: String },
}

impl Reply {
    /// Reads the answer to `request` from one line the daemon sent.
    pub fn decode(request: &Request, line: &str) -> serde_json::Result<Reply> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ErrorOnly {
            error: String,
        }
        #[derive(Deserialize)]
        struct Instances {
            instances: Vec<String>,
        }
        if let Ok(e) = serde_json::from_str::<ErrorOnly>(line) {
            return Ok(Reply::Error { error: e.error });
        }
        Ok(match request {
            Request::Status => Reply::Status(serde_json::from_str(line)?),
            Request::Reload => Reply::Reload(serde_json::from_str(line)?),
            Request::Handover { .. } | Request::Release { .. } => Reply::Instances {
                instances: serde_json::from_str::<Instances>(line)?.instances,
            },
        })
    }

    fn error(error: impl Into<String>) -> Reply {
        Reply::Error {
            error: error.into(),
        }
    }
}

/// The error a peer that is not root gets.
pub const PERMISSION_DENIED: &str = "permission denied: the control socket is root-only";

/// One request for the event loop, with where to send its answer.
pub type Pending = (Request, oneshot::Sender<Reply>);

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
        let answer = match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                let (reply, wait) = oneshot::channel();
                if tx.send((req, reply)).await.is_err() {
                    return;
                }
                wait.await
                    .unwrap_or_else(|_| Reply::error("the daemon dropped the request"))
            }
            Err(e) => Reply::error(format!("bad request: {e}")),
        };
        let mut out = serde_json::to_string(&answer).unwrap_or_default();
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
    let mut out = serde_json::to_string(&Reply::error(PERMISSION_DENIED)).unwrap_or_default();
    out.push('\n');
    if write.write_all(out.as_bytes()).await.is_err() {
        return;
    }
    let _ = write.shutdown().await;
    let mut lines = BufReader::new(read).lines();
    let drain = async { while let Ok(Some(_)) = lines.next_line().await {} };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// Client side, for the CLI: send one request and read its answer. An answer that is an error
/// (not root, a bad request, an unknown instance) is returned as an error, and a socket the
/// caller may not open says that it is root's.
pub fn request(state_dir: &Path, request: &Request) -> std::io::Result<Reply> {
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
    let line = serde_json::to_string(request).map_err(std::io::Error::other)?;
    writeln!(s, "{line}")?;
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line)?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            ErrorKind::UnexpectedEof,
            "the daemon closed the connection without an answer",
        ));
    }
    match Reply::decode(request, &line).map_err(std::io::Error::other)? {
        Reply::Error { error } if error == PERMISSION_DENIED => Err(std::io::Error::new(
            ErrorKind::PermissionDenied,
            format!("the daemon refused: {error}; run this as root (sudo)"),
        )),
        Reply::Error { error } => Err(std::io::Error::other(format!(
            "the daemon refused: {error}"
        ))),
        reply => Ok(reply),
    }
}

/// [`request`] of the status.
pub fn status(state_dir: &Path) -> std::io::Result<Status> {
    match request(state_dir, &Request::Status)? {
        Reply::Status(s) => Ok(*s),
        other => Err(unexpected(&other)),
    }
}

/// [`request`] of a reload: its record.
pub fn reload(state_dir: &Path) -> std::io::Result<ReloadStatus> {
    match request(state_dir, &Request::Reload)? {
        Reply::Reload(r) => Ok(r),
        other => Err(unexpected(&other)),
    }
}

/// [`request`] of a handover or release: the instances it went to.
pub fn operator(state_dir: &Path, request_: &Request) -> std::io::Result<Vec<String>> {
    match request(state_dir, request_)? {
        Reply::Instances { instances } => Ok(instances),
        other => Err(unexpected(&other)),
    }
}

fn unexpected(reply: &Reply) -> std::io::Error {
    std::io::Error::other(format!(
        "unexpected answer from the daemon: {}",
        serde_json::to_string(reply).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::status::InstanceStatus;
    use upkeep_vrrp::fsm::State;

    #[test]
    fn requests_are_the_documented_lines() {
        let line = |r: &Request| serde_json::to_string(r).unwrap();
        assert_eq!(line(&Request::Status), r#"{"cmd":"status"}"#);
        assert_eq!(line(&Request::Reload), r#"{"cmd":"reload"}"#);
        let h = Request::Handover {
            instance: "VI_1".into(),
        };
        assert_eq!(line(&h), r#"{"cmd":"handover","instance":"VI_1"}"#);
        assert_eq!(serde_json::from_str::<Request>(&line(&h)).unwrap(), h);
    }

    #[test]
    fn replies_read_back_as_sent() {
        let mut status = Status {
            pid: 7,
            ..Status::default()
        };
        status.instances.push(InstanceStatus {
            name: "VI_1".into(),
            state: State::Handover,
            ..InstanceStatus::default()
        });
        status.drops.insert("bad_ttl", 3);
        let line = serde_json::to_string(&Reply::Status(Box::new(status))).unwrap();
        assert!(line.contains(r#""state":"handover""#), "{line}");
        let Reply::Status(back) = Reply::decode(&Request::Status, &line).unwrap() else {
            panic!("not a status: {line}");
        };
        assert_eq!(back.pid, 7);
        assert_eq!(back.instances[0].state, State::Handover);
        assert_eq!(back.drops["bad_ttl"], 3);

        let moved = Reply::Instances {
            instances: vec!["a".into(), "b".into()],
        };
        let line = serde_json::to_string(&moved).unwrap();
        let release = Request::Release {
            instance: "a".into(),
        };
        assert!(matches!(
            Reply::decode(&release, &line).unwrap(),
            Reply::Instances { instances } if instances == ["a", "b"]
        ));
        // An error answers any request; a reload record that carries an error is still a record.
        let line = serde_json::to_string(&Reply::error("no instance named `x`")).unwrap();
        assert!(matches!(
            Reply::decode(&release, &line).unwrap(),
            Reply::Error { .. }
        ));
        let refused = ReloadStatus {
            result: "refused".into(),
            error: Some("h1.kdl:3:5: bad".into()),
            ..ReloadStatus::default()
        };
        let line = serde_json::to_string(&Reply::Reload(refused)).unwrap();
        assert!(matches!(
            Reply::decode(&Request::Reload, &line).unwrap(),
            Reply::Reload(r) if r.result == "refused"
        ));
    }
}
