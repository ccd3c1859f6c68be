//! The service address announced over BGP by a routing daemon upkeep drives (a speaker): never
//! by a BGP speaker of its own. `proto` is BIRD's control protocol and include file, sans-IO;
//! `bird` the driver; `task` the task per speaker that keeps the daemon at the latest wanted
//! state, off the event loop.

pub mod bird;
pub mod proto;
pub mod task;

use std::future::Future;
use std::time::Duration;

pub use proto::Desired;

use std::path::PathBuf;

/// A speaker and every announcement it carries, as the VIP guard keeps them: if the daemon
/// dies, the guard withdraws them all ([`bird::withdraw_blocking`]), since no one checks the
/// service any more.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GuardedSpeaker {
    pub name: String,
    pub control: PathBuf,
    pub include: PathBuf,
    pub timeout: Duration,
    pub all: Vec<Desired>,
}
pub use task::{AnnounceState, SpeakerTask};

/// What went wrong talking to a speaker.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{what}: no answer within {after:?}")]
    Timeout { what: String, after: Duration },
    #[error("the daemon closed the control connection")]
    Closed,
    #[error("`{command}` refused: {reply}")]
    Refused { command: String, reply: String },
    #[error("unexpected reply: {0}")]
    Protocol(String),
}

/// A routing daemon that carries announcements (implementations may write `async fn`).
pub trait Speaker: Send {
    /// Makes the daemon carry exactly `desired`: on start, on (re)connect, after a reload.
    fn sync(
        &mut self,
        desired: &[Desired],
    ) -> impl Future<Output = Result<(), SpeakerError>> + Send;
    /// Announces or withdraws `name` as `desired` now says; the others are unchanged.
    fn set(
        &mut self,
        desired: &[Desired],
        name: &str,
    ) -> impl Future<Output = Result<(), SpeakerError>> + Send;
    /// Whether the daemon still answers (a restarted daemon closed our connection).
    fn probe(&mut self) -> impl Future<Output = Result<(), SpeakerError>> + Send;
}
