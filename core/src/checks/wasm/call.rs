//! What a plugin is allowed ([`Permissions`], fixed at load) and one call's view of it
//! ([`CallContext`]: deadline, log budget). Its own module because both the store's data
//! (`sandbox`) and the `host` interface use it, and neither should import the other for it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::v0_1::check::upkeep::plugin::types;
use super::{Capability, Grants};

/// What a plugin may do, fixed at load: the operator's grants, narrowed to what the plugin
/// declared in its metadata.
#[derive(Debug)]
pub(crate) struct Permissions {
    pub(crate) plugin: String,
    declared: Vec<Capability>,
    pub(super) grants: Grants,
    /// `grants.read_file`, each as written and resolved (symlinks, `..`) once at load.
    pub(super) read_roots: Vec<ReadRoot>,
}

impl Permissions {
    pub(crate) fn new(plugin: String, declared: Vec<Capability>, grants: Grants) -> Self {
        let read_roots = grants
            .read_file
            .iter()
            .map(|p| ReadRoot {
                real: std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()),
                asked: p.clone(),
            })
            .collect();
        Permissions {
            plugin,
            declared,
            grants,
            read_roots,
        }
    }

    /// For the `metadata` call at load: nothing is allowed yet.
    pub(crate) fn none(plugin: String) -> Self {
        Permissions {
            plugin,
            declared: Vec::new(),
            grants: Grants::default(),
            read_roots: Vec::new(),
        }
    }

    fn allows(&self, c: Capability) -> bool {
        self.declared.contains(&c) && self.grants.allows(c)
    }
}

/// One `read-file` grant: the path the config names and where it led at load. A plugin names
/// a file by either; nothing is followed after load (see `host::read_granted_file`).
#[derive(Debug, Clone)]
pub(crate) struct ReadRoot {
    pub(crate) asked: PathBuf,
    pub(crate) real: PathBuf,
}

/// One call's view of the plugin's permissions, its deadline and its log budget.
pub(crate) struct CallContext {
    pub(super) perms: Arc<Permissions>,
    pub(super) deadline: Instant,
    /// What the plugin logged in this call, against the per-call cap (kept by `host::log`).
    pub(super) log_bytes: usize,
    pub(super) log_lines: usize,
    pub(super) log_dropped: usize,
}

impl CallContext {
    pub(crate) fn new(perms: Arc<Permissions>, timeout: Duration) -> Self {
        CallContext {
            perms,
            deadline: Instant::now() + timeout,
            log_bytes: 0,
            log_lines: 0,
            log_dropped: 0,
        }
    }

    pub(crate) fn plugin(&self) -> &str {
        &self.perms.plugin
    }

    /// Past the call's deadline (checked by the engine at each epoch tick).
    pub(crate) fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    pub(crate) fn may_read_clock(&self) -> bool {
        self.perms.allows(Capability::Clock)
    }

    /// Log lines dropped by the per-call cap.
    pub(crate) fn log_dropped(&self) -> usize {
        self.log_dropped
    }

    /// Refuses a call of a capability that was not both declared and granted.
    pub(super) fn require(&self, c: Capability) -> Result<(), types::HostError> {
        if self.perms.allows(c) {
            Ok(())
        } else {
            tracing::debug!(plugin = %self.perms.plugin, capability = %c, "plugin called an ungranted capability");
            Err(types::HostError::NotGranted(c.into()))
        }
    }
}
