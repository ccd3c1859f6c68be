//! The BIRD 2 driver: its control socket (`bird -s`) and the include file upkeep owns.
//!
//! Every exchange is bounded by the speaker's timeout; any failure drops the connection, and
//! the next exchange connects again and re-asserts every announcement ([`Speaker::sync`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use super::proto::{self, Desired, Line, Reply, ReplyReader, Toggle};
use super::{Speaker, SpeakerError};

/// A reply longer than this is not one to our commands: the connection is dropped.
const MAX_REPLY_BYTES: usize = 64 << 10;

struct Conn {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
}

pub struct Bird {
    /// The speaker's name, for the include file's header.
    name: String,
    control: PathBuf,
    include: PathBuf,
    timeout: Duration,
    conn: Option<Conn>,
}

impl Bird {
    pub fn new(name: &str, control: &Path, include: &Path, timeout: Duration) -> Self {
        Self {
            name: name.to_owned(),
            control: control.to_owned(),
            include: include.to_owned(),
            timeout,
            conn: None,
        }
    }

    async fn bounded<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, SpeakerError>>,
    ) -> Result<T, SpeakerError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(SpeakerError::Timeout {
                what: what.to_owned(),
                after: self.timeout,
            }),
        }
    }

    /// The connection, made (and its greeting read) if there is none.
    async fn conn(&mut self) -> Result<&mut Conn, SpeakerError> {
        if self.conn.is_none() {
            let path = self.control.clone();
            let what = format!("connecting to {}", path.display());
            let conn = self
                .bounded(&what, async {
                    let stream =
                        UnixStream::connect(&path)
                            .await
                            .map_err(|e| SpeakerError::Io {
                                what: format!("connecting to {}", path.display()),
                                source: e,
                            })?;
                    let (rd, wr) = stream.into_split();
                    let mut conn = Conn {
                        rd: BufReader::new(rd),
                        wr,
                    };
                    let hello = read_reply(&mut conn).await?.0;
                    if hello.code != 1 {
                        return Err(SpeakerError::Refused {
                            command: "(greeting)".into(),
                            reply: hello.text(),
                        });
                    }
                    Ok(conn)
                })
                .await?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("just made"))
    }

    /// Sends one command and reads its reply: (reply, code of its first line).
    async fn command(&mut self, command: &str) -> Result<(Reply, u16), SpeakerError> {
        let timeout = self.timeout;
        let result = async {
            self.conn().await?;
            let conn = self.conn.as_mut().expect("connected");
            let what = format!("`{command}`");
            match tokio::time::timeout(timeout, async {
                conn.wr
                    .write_all(format!("{command}\n").as_bytes())
                    .await
                    .map_err(|e| SpeakerError::Io {
                        what: format!("sending {what}"),
                        source: e,
                    })?;
                read_reply(conn).await
            })
            .await
            {
                Ok(r) => r,
                Err(_) => Err(SpeakerError::Timeout {
                    what,
                    after: timeout,
                }),
            }
        }
        .await;
        if result.is_err() {
            // Half a reply may still come: a new connection starts clean.
            self.conn = None;
        }
        result
    }

    /// `enable` / `disable` of one protocol.
    async fn toggle(&mut self, protocol: &str, on: bool) -> Result<Toggle, SpeakerError> {
        let verb = if on { "enable" } else { "disable" };
        let command = format!("{verb} {protocol}");
        let (reply, first) = self.command(&command).await?;
        proto::toggle_outcome(&reply, first).ok_or_else(|| SpeakerError::Refused {
            command,
            reply: reply.text(),
        })
    }

    /// Writes the include file atomically (a temp file renamed over it).
    async fn write_include(&self, desired: &[Desired]) -> Result<(), SpeakerError> {
        let text = proto::render_include(&self.name, desired);
        let path = self.include.clone();
        let io = |what: String| move |e| SpeakerError::Io { what, source: e };
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(io(format!("making {}", dir.display())))?;
        }
        let tmp = path.with_extension("conf.tmp");
        tokio::fs::write(&tmp, text)
            .await
            .map_err(io(format!("writing {}", tmp.display())))?;
        tokio::fs::rename(&tmp, &path).await.map_err(io(format!(
            "renaming {} to {}",
            tmp.display(),
            path.display()
        )))
    }
}

/// Reads lines up to a reply's last one.
async fn read_reply(conn: &mut Conn) -> Result<(Reply, u16), SpeakerError> {
    let mut reader = ReplyReader::default();
    let mut first = None;
    let mut total = 0;
    let mut line = String::new();
    loop {
        line.clear();
        // A line is read at most up to the reply's bound: a peer that never ends one cannot
        // grow it past that.
        let n = (&mut conn.rd)
            .take((MAX_REPLY_BYTES - total + 1) as u64)
            .read_line(&mut line)
            .await
            .map_err(|e| SpeakerError::Io {
                what: "reading a reply".into(),
                source: e,
            })?;
        if n == 0 {
            return Err(SpeakerError::Closed);
        }
        total += n;
        if total > MAX_REPLY_BYTES {
            return Err(SpeakerError::Protocol(format!(
                "a reply of more than {MAX_REPLY_BYTES} bytes"
            )));
        }
        let text = line.trim_end_matches(['\n', '\r']);
        if let Ok(Line::Coded { code, .. }) = proto::parse_line(text) {
            first.get_or_insert(code);
        }
        match reader.push(text) {
            Ok(Some(reply)) => {
                let first = first.unwrap_or(reply.code);
                return Ok((reply, first));
            }
            Ok(None) => {}
            Err(e) => return Err(SpeakerError::Protocol(e.to_string())),
        }
    }
}

impl Speaker for Bird {
    async fn sync(&mut self, desired: &[Desired]) -> Result<(), SpeakerError> {
        self.write_include(desired).await?;
        // BIRD reads the file again; protocols it does not know yet appear in the state the
        // file gives them, and those it knows keep theirs where the file agrees.
        let (reply, _) = self.command("configure").await?;
        if reply.is_error() {
            return Err(SpeakerError::Refused {
                command: "configure".into(),
                reply: reply.text(),
            });
        }
        for d in desired {
            for (protocol, on) in d.toggles() {
                self.toggle_or_wait(&protocol, on).await?;
            }
        }
        Ok(())
    }

    async fn set(&mut self, desired: &[Desired], name: &str) -> Result<(), SpeakerError> {
        let Some(d) = desired.iter().find(|d| d.name == name) else {
            return Ok(());
        };
        // The file first: a `configure` by the operator then keeps the new state.
        self.write_include(desired).await?;
        for (protocol, on) in d.toggles() {
            self.toggle(&protocol, on).await?;
        }
        Ok(())
    }

    async fn probe(&mut self) -> Result<(), SpeakerError> {
        let (reply, _) = self.command("show status").await?;
        if reply.is_error() {
            return Err(SpeakerError::Refused {
                command: "show status".into(),
                reply: reply.text(),
            });
        }
        Ok(())
    }
}

impl Bird {
    /// A toggle right after `configure`: BIRD answers `configure` before it has read the file
    /// ("Reconfiguration in progress"), so a protocol new to it may not exist yet for a moment.
    async fn toggle_or_wait(&mut self, protocol: &str, on: bool) -> Result<Toggle, SpeakerError> {
        let mut tries = 0;
        loop {
            match self.toggle(protocol, on).await {
                Err(SpeakerError::Refused { .. }) if tries < 20 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                r => return r,
            }
        }
    }
}

/// The VIP guard's withdrawal, blocking (the guard has no runtime): the include file written
/// with every protocol disabled, then `disable` of each on the control socket, every read and
/// write bounded by the speaker's timeout. Returns how many BIRD disabled.
pub fn withdraw_blocking(s: &super::GuardedSpeaker) -> Result<usize, SpeakerError> {
    use std::io::{BufRead, Write};
    let io = |what: String| move |e| SpeakerError::Io { what, source: e };
    let mut all = s.all.clone();
    all.iter_mut().for_each(|d| d.announced = false);
    let tmp = s.include.with_extension("conf.tmp");
    std::fs::write(&tmp, proto::render_include(&s.name, &all))
        .map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, &s.include)
        .map_err(io(format!("renaming to {}", s.include.display())))?;
    let stream = std::os::unix::net::UnixStream::connect(&s.control)
        .map_err(io(format!("connecting to {}", s.control.display())))?;
    stream
        .set_read_timeout(Some(s.timeout))
        .and_then(|()| stream.set_write_timeout(Some(s.timeout)))
        .map_err(io("setting timeouts".into()))?;
    let mut rd = std::io::BufReader::new(stream.try_clone().map_err(io("cloning".into()))?);
    let mut wr = stream;
    let mut reply = || -> Result<(Reply, u16), SpeakerError> {
        let mut reader = ReplyReader::default();
        let mut first = None;
        let mut line = String::new();
        loop {
            line.clear();
            if rd
                .read_line(&mut line)
                .map_err(io("reading a reply".into()))?
                == 0
            {
                return Err(SpeakerError::Closed);
            }
            let text = line.trim_end_matches(['\n', '\r']);
            if let Ok(Line::Coded { code, .. }) = proto::parse_line(text) {
                first.get_or_insert(code);
            }
            if let Some(r) = reader
                .push(text)
                .map_err(|e| SpeakerError::Protocol(e.to_string()))?
            {
                let first = first.unwrap_or(r.code);
                return Ok((r, first));
            }
        }
    };
    reply()?; // the greeting
    let mut done = 0;
    for (protocol, _) in all.iter().flat_map(Desired::toggles) {
        let command = format!("disable {protocol}");
        wr.write_all(format!("{command}\n").as_bytes())
            .map_err(io(format!("sending `{command}`")))?;
        let (r, first) = reply()?;
        if proto::toggle_outcome(&r, first).is_some() {
            done += 1;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::UnixListener;

    use super::*;
    use crate::announce::proto::desired;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("upkeep-bird-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A socket that answers as BIRD 2.0.12 does, recording the commands.
    fn fake_bird(path: &Path) -> Arc<Mutex<Vec<String>>> {
        let listener = UnixListener::bind(path).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (rd, mut wr) = stream.into_split();
                wr.write_all(b"0001 BIRD 2.0.12 ready.\n").await.unwrap();
                let mut lines = BufReader::new(rd).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    log.lock().unwrap().push(line.clone());
                    let answer = match line.as_str() {
                        "configure" => {
                            "0002-Reading configuration from bird.conf\n0003 Reconfigured\n"
                                .to_owned()
                        }
                        "show status" => {
                            "1000-BIRD 2.0.12\n0013 Daemon is up and running\n".to_owned()
                        }
                        l if l.starts_with("enable upkeep_") => {
                            format!("0011-{}: enabled\n0000 \n", &l[7..])
                        }
                        l if l.starts_with("disable upkeep_") => {
                            format!("0009-{}: disabled\n0000 \n", &l[8..])
                        }
                        _ => "9001 syntax error, unexpected CF_SYM_UNDEFINED\n".to_owned(),
                    };
                    wr.write_all(answer.as_bytes()).await.unwrap();
                }
            }
        });
        seen
    }

    fn web(announced: bool) -> Vec<Desired> {
        vec![desired("web", "203.0.113.10", 32, announced)]
    }

    #[tokio::test(flavor = "current_thread")]
    async fn sync_writes_the_file_then_configures_and_toggles() {
        let dir = scratch("sync");
        let sock = dir.join("bird.ctl");
        let include = dir.join("sub/upkeep.conf");
        let seen = fake_bird(&sock);
        let mut bird = Bird::new("edge", &sock, &include, Duration::from_secs(2));
        bird.sync(&web(true)).await.unwrap();
        let text = std::fs::read_to_string(&include).unwrap();
        assert!(
            text.contains("protocol static upkeep_web {\n    disabled no;"),
            "{text}"
        );
        bird.set(&web(false), "web").await.unwrap();
        assert!(std::fs::read_to_string(&include)
            .unwrap()
            .contains("disabled yes;"));
        bird.probe().await.unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "configure",
                "enable upkeep_web",
                "disable upkeep_web",
                "show status"
            ],
            "one connection, one command per change"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_silent_or_missing_daemon_is_an_error_within_the_timeout() {
        let dir = scratch("silent");
        let sock = dir.join("bird.ctl");
        let include = dir.join("upkeep.conf");
        let mut bird = Bird::new("edge", &sock, &include, Duration::from_millis(200));
        let e = bird.sync(&web(true)).await.unwrap_err();
        assert!(
            matches!(&e, SpeakerError::Io { what, .. } if what.contains("bird.ctl")),
            "{e}"
        );
        assert!(
            include.exists(),
            "the file is written even while the daemon is away"
        );
        // Accepts, never greets.
        let listener = UnixListener::bind(&sock).unwrap();
        let hold = tokio::spawn(async move {
            let _conn = listener.accept().await;
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let t0 = Instant::now();
        let e = bird.probe().await.unwrap_err();
        assert!(matches!(e, SpeakerError::Timeout { .. }), "{e}");
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(2), "{took:?}");
        hold.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_refused_toggle_says_what_bird_answered() {
        let dir = scratch("refused");
        let sock = dir.join("bird.ctl");
        let _seen = fake_bird(&sock);
        let mut bird = Bird::new("edge", &sock, &dir.join("u.conf"), Duration::from_secs(1));
        let mut d = web(true);
        d[0].protocol = "nosuch".into();
        // The fake answers `enable nosuch` as enabled; a name BIRD does not parse is refused.
        d[0].protocol = "x y".into();
        let e = bird.set(&d, "web").await.unwrap_err();
        assert!(
            e.to_string().contains("`enable x y` refused: syntax error"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
