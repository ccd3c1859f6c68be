//! The control socket: `STATE_DIR/control.sock`, a Unix stream socket only root can open (0600),
//! one JSON request per line, one JSON answer per line.
//!
//! Requests: `{"cmd":"status"}` → the same document as status.json; `{"cmd":"reload"}` → the
//! reload's result once it is done. Connections are served on their own tasks and hand each
//! request to the event loop, which owns all state.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    Status,
    Reload,
}

#[derive(Debug, Deserialize)]
struct Request {
    cmd: Command,
}

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
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                let (reply, wait) = oneshot::channel();
                if tx.send((req.cmd, reply)).await.is_err() {
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

/// Client side, for the CLI: send one request and read one answer.
pub fn request(state_dir: &Path, cmd: &str) -> std::io::Result<serde_json::Value> {
    use std::io::{BufRead, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket_path(state_dir))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    writeln!(s, "{}", serde_json::json!({ "cmd": cmd }))?;
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
}
