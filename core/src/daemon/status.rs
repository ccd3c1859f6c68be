//! The daemon's view of itself, written to `STATE_DIR/status.json` for operators and tests.
//! Written atomically (temp file + rename) so a reader never sees half a file; the temp file is
//! always a new file (`O_CREAT | O_EXCL | O_NOFOLLOW`), never an existing one or a link's target.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use std::borrow::Cow;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use upkeep_vrrp::fsm::State;
use upkeep_vrrp::packet::DropReason;

use super::metrics::{CheckRow, InstanceRow};
use crate::hooks::QueueCounts;

/// The daemon's status: status.json, and the control socket's answer to `status` (which the CLI
/// reads back into this type).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub config: String,
    pub instances: Vec<InstanceStatus>,
    pub checks: Vec<CheckStatus>,
    /// Drops that could not be attributed to an instance (unknown VRID, undecodable).
    #[serde(deserialize_with = "drop_reasons")]
    pub drops: BTreeMap<&'static str, u64>,
    pub last_reload: Option<ReloadStatus>,
    /// The notify command and WASM hook queues.
    #[serde(default)]
    pub queues: Queues,
    /// Prefixes announced over BGP through a speaker.
    #[serde(default)]
    pub announcements: Vec<AnnounceStatus>,
}

/// One `announce`: what its checks want and what its speaker carries, as last heard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnnounceStatus {
    pub name: String,
    pub speaker: String,
    pub prefix: String,
    /// Its tracked checks allow it.
    pub wanted: bool,
    pub state: crate::announce::AnnounceState,
    /// Why the speaker did not take the last change (while `unreachable`).
    pub error: Option<String>,
}

/// The queues between transitions and what they run: per instance (or group, or hook and
/// instance) one job runs and at most one waits; a later state supersedes the waiting one.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Queues {
    pub notify: QueueCounts,
    pub hooks: QueueCounts,
}

/// The outcome of the last reload, applied or refused.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// Counts reloads since start, so `upkeep reload` can tell its own result from an older one.
    pub seq: u64,
    pub trigger: String,
    /// "applied", "unchanged" or "refused".
    pub result: Cow<'static, str>,
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub error: Option<String>,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    /// Written as [`State::as_str`].
    #[serde(with = "state_name")]
    pub state: State,
    pub priority: u8,
    pub effective_priority: u8,
    /// Address of the current master as last heard (ourselves while master).
    pub master: Option<String>,
    pub vips_held: bool,
    /// Times its VIPs were put back after someone else (`ip addr del`, another tool) removed
    /// one while it held them.
    #[serde(default)]
    pub vips_restored: u64,
    /// Held back from preempting by `upkeep handover` (until `upkeep release`).
    pub held_back: bool,
    pub transitions: u64,
    pub last_transition: Option<String>,
    pub adverts_sent: u64,
    /// Adverts the kernel refused to send (to every destination).
    #[serde(default)]
    pub adverts_unsent: u64,
    pub adverts_received: u64,
    /// Dropped packets by reason ([`DropReason::as_str`]).
    #[serde(deserialize_with = "drop_reasons")]
    pub drops: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct CheckStatus {
    pub name: String,
    pub kind: Cow<'static, str>,
    pub healthy: bool,
    pub last_ok: Option<bool>,
    pub message: String,
    pub duration_ms: u64,
    pub runs: u64,
    pub rise: u32,
    pub fall: u32,
    /// Consecutive results against the current state, counting towards `rise` or `fall`.
    pub streak: u32,
}

/// A state as its name ([`State::as_str`]).
mod state_name {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};
    use upkeep_vrrp::fsm::State;

    pub(super) fn serialize<S: Serializer>(state: &State, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(state.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<State, D::Error> {
        let name = String::deserialize(d)?;
        State::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| D::Error::custom(format!("unknown state `{name}`")))
    }
}

/// Drop counts read back with the reasons' own `&'static str` names.
fn drop_reasons<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<&'static str, u64>, D::Error> {
    BTreeMap::<String, u64>::deserialize(d)?
        .into_iter()
        .map(|(name, n)| {
            DropReason::ALL
                .map(DropReason::as_str)
                .into_iter()
                .find(|s| *s == name)
                .map(|s| (s, n))
                .ok_or_else(|| D::Error::custom(format!("unknown drop reason `{name}`")))
        })
        .collect()
}

/// The metrics' row of an instance: what `upkeep_instance_*` shows.
impl From<&InstanceStatus> for InstanceRow {
    fn from(s: &InstanceStatus) -> Self {
        Self {
            name: s.name.clone(),
            interface: s.interface.clone(),
            vrid: s.vrid.to_string(),
            state: s.state.as_str(),
            priority: s.priority,
            effective_priority: s.effective_priority,
            vips_held: s.vips_held,
            transitions: s.transitions,
            adverts_sent: s.adverts_sent,
            adverts_received: s.adverts_received,
            drops: s.drops.clone(),
        }
    }
}

/// The metrics' row of a check: what `upkeep_check_healthy` shows.
impl From<&AnnounceStatus> for super::metrics::AnnounceRow {
    fn from(a: &AnnounceStatus) -> Self {
        Self {
            name: a.name.clone(),
            speaker: a.speaker.clone(),
            prefix: a.prefix.clone(),
            state: a.state.as_str(),
        }
    }
}

impl From<&CheckStatus> for CheckRow {
    fn from(c: &CheckStatus) -> Self {
        Self {
            name: c.name.clone(),
            kind: c.kind.to_string(),
            healthy: c.healthy,
        }
    }
}

pub struct StatusFile {
    path: PathBuf,
    tmp: PathBuf,
}

impl StatusFile {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join("status.json"),
            tmp: state_dir.join(".status.json.tmp"),
        }
    }

    pub fn write(&self, status: &Status) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(status).map_err(io::Error::other)?;
        let mut file = match create_new(&self.tmp) {
            // Left by a crash, or planted: unlinked (a link, not what it points to), once.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&self.tmp)?;
                create_new(&self.tmp)?
            }
            other => other?,
        };
        file.write_all(&json)?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path)
    }
}

/// A new file at `path`; fails if anything (a link included) is there.
fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o644)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory of this test's own under the system temp dir.
    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("upkeep-status-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn the_temp_file_is_not_followed_through_a_symlink() {
        let state = scratch("state");
        let elsewhere = scratch("victim");
        let victim = elsewhere.join("victim");
        std::fs::write(&victim, "untouched").expect("victim");
        std::os::unix::fs::symlink(&victim, state.join(".status.json.tmp")).expect("symlink");

        let status = Status {
            pid: 42,
            ..Status::default()
        };
        StatusFile::new(&state)
            .write(&status)
            .expect("status written");

        let kept = std::fs::read_to_string(&victim).expect("victim");
        let written = std::fs::symlink_metadata(state.join("status.json")).expect("status.json");
        let text = std::fs::read_to_string(state.join("status.json")).expect("status.json");
        let _ = std::fs::remove_dir_all(&state);
        let _ = std::fs::remove_dir_all(&elsewhere);
        assert_eq!(kept, "untouched", "the write went through the planted link");
        assert!(written.is_file(), "status.json is not a plain file");
        let read: Status = serde_json::from_str(&text).expect("status.json parses");
        assert_eq!(read.pid, 42);
    }
}
