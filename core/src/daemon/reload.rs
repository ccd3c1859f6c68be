//! Reloading the config without disturbing what did not change.
//!
//! The new file is parsed and validated in full (syntax, schema, interfaces, source addresses)
//! before anything is touched, on a task beside the event loop, which keeps sending adverts
//! meanwhile; a file that fails is refused and the running config stays. Then
//! only the differences are applied: unchanged instances are not touched at all (no event, no
//! advert, no GARP, no address change), changed ones take their new settings in place, removed
//! ones resign, new ones start.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tracing::{error, info, warn};

use crate::checks::wasm::PluginHost;
use crate::hooks::Subject;
use crate::net::netlink::Netlink;
use upkeep_config::{self as config, diff, CheckDef, CheckKind, Config};
use upkeep_vrrp::fsm::State;

use super::checks::{self, LoadedPlugin};
use super::instance::{self, Instance};
use super::status::ReloadStatus;
use super::wiring::{self, Resolved};
use super::{all_vips, announce_addrs, Daemon};

/// What a reload's preparation, beside the event loop, hands back to it.
pub(super) struct PreparedReload {
    trigger: String,
    /// The plugin engine, started for the new config if none ran yet.
    host: Option<PluginHost>,
    outcome: Outcome,
}

enum Outcome {
    /// Refused, with the message to record (located in the file where it can be).
    Refused(String),
    /// The file is the one running, and no plugin file changed.
    Unchanged,
    Ready(Box<Ready>),
}

/// A config parsed and validated, its plugins compiled, what it needs of the host looked up.
struct Ready {
    new: Config,
    source: String,
    plugins_changed: Vec<String>,
    prepared: checks::Prepared,
    resolved: Resolved,
}

/// What the preparation needs of the running daemon, copied: it runs on a task of its own.
struct Job {
    forced: bool,
    path: PathBuf,
    file: String,
    dir: PathBuf,
    state_dir: PathBuf,
    running: Config,
    running_source: String,
    /// Plugin checks' files as they were compiled: (check, file, stamp then).
    plugin_files: Vec<(String, PathBuf, Option<checks::Stamp>)>,
    /// Running plugin checks with their compiled plugins.
    check_plugins: Vec<(CheckDef, LoadedPlugin)>,
    hook_plugins: HashMap<String, LoadedPlugin>,
    host: Option<PluginHost>,
    nl: Netlink,
}

impl Daemon {
    /// First half of a reload: the file is read, parsed and validated, its plugins compiled
    /// and what it needs of the host looked up on a task beside the event loop (none of it may
    /// hold up the adverts: a large file, a slow compile, a link-local address that takes
    /// seconds to appear); [`Daemon::finish_reload`] applies the result when it comes. A
    /// reload asked for while one is being prepared runs after it.
    pub(super) fn reload(&mut self, trigger: &str, forced: bool) {
        if self.node.is_stopping() {
            return;
        }
        if self.reload_running {
            self.reload_again = Some((
                trigger.to_string(),
                forced || self.reload_again.as_ref().is_some_and(|r| r.1),
            ));
            return;
        }
        let dir = checks::config_dir(&self.opts.config);
        let job = Job {
            forced,
            path: self.opts.config.clone(),
            file: self.opts.config.display().to_string(),
            state_dir: self.opts.state_dir.clone(),
            running: self.cfg.clone(),
            running_source: self.source.clone(),
            plugin_files: self
                .checks
                .iter()
                .filter_map(|c| {
                    let loaded = c.plugin.as_ref()?;
                    let CheckKind::Plugin { path, .. } = &c.def.kind else {
                        return None;
                    };
                    Some((c.def.name.clone(), dir.join(path), loaded.stamp))
                })
                .collect(),
            check_plugins: self
                .checks
                .iter()
                .filter_map(|c| Some((c.def.clone(), c.plugin.clone()?)))
                .collect(),
            hook_plugins: self.hook_plugins.clone(),
            host: self.plugin_host.clone(),
            nl: self.wires.nl.clone(),
            dir,
        };
        self.reload_running = true;
        let tx = self.prepared_tx.clone();
        let trigger = trigger.to_string();
        tokio::spawn(async move {
            // A panic in the preparation is a refused reload, not one that never ends.
            let (host, outcome) = match tokio::spawn(prepare(job)).await {
                Ok(done) => done,
                Err(e) => (
                    None,
                    Outcome::Refused(format!("reload preparation failed: {e}")),
                ),
            };
            let _ = tx.send(PreparedReload {
                trigger,
                host,
                outcome,
            });
        });
    }

    /// Second half of a reload, back on the event loop: apply what was prepared.
    pub(super) async fn finish_reload(&mut self, p: PreparedReload) {
        self.reload_running = false;
        if self.plugin_host.is_none() {
            self.plugin_host = p.host;
        }
        let trigger = p.trigger.as_str();
        let ready = match p.outcome {
            Outcome::Refused(msg) => return self.refuse(trigger, msg),
            Outcome::Unchanged => {
                // Touched but not changed. If the last attempt was refused, the file is now
                // back to what runs: say so, so status no longer shows the old error.
                if self
                    .last_reload
                    .as_ref()
                    .is_some_and(|r| r.result == "refused")
                {
                    self.reloads += 1;
                    self.record(trigger, "unchanged", &diff::Diff::default(), None);
                }
                return;
            }
            Outcome::Ready(ready) => *ready,
        };
        let Ready {
            new,
            source,
            plugins_changed,
            prepared,
            resolved,
        } = ready;
        if self.node.is_stopping() {
            return;
        }
        let mut d = diff::diff(&self.cfg, &new);
        // A rebuilt plugin is a changed check even when its config is not.
        for name in plugins_changed {
            if !d.checks_changed.contains(&name) && new.check(&name).is_some() {
                d.checks_changed.push(name);
            }
        }
        d.global_changed |= self.cfg.hooks != new.hooks;
        self.hook_plugins = prepared.hook_plugins;
        self.reloads += 1;
        if d.is_empty() {
            info!(trigger, "reload: nothing changed");
            self.source = source;
            self.record(trigger, "unchanged", &d, None);
            return;
        }
        let applied = self
            .apply_diff(new, &d, prepared.check_plugins, resolved)
            .await;
        // Checks may have been replaced even when no announcement changed.
        self.announce.configure(
            &self.cfg,
            &super::announcements::Inputs {
                checks: &self.checks,
                instances: &self.instances,
            },
        );
        self.vips
            .guard_speakers(super::announcements::guarded(&self.cfg));
        match applied {
            Ok(()) => {
                info!(
                    trigger,
                    added = ?d.added,
                    changed = ?d.changed,
                    removed = ?d.removed,
                    "reload applied"
                );
                self.source = source;
                self.record(trigger, "applied", &d, None);
            }
            Err(e) => {
                // Validation above makes this rare (a socket that cannot be opened, say).
                error!(trigger, "reload partly failed: {e:#}");
                self.source = source;
                self.record(trigger, "applied", &d, Some(format!("{e:#}")));
            }
        }
    }

    fn refuse(&mut self, trigger: &str, msg: String) {
        error!(trigger, "reload refused, the running config stays: {msg}");
        self.reloads += 1;
        self.record(trigger, "refused", &diff::Diff::default(), Some(msg));
    }

    fn record(
        &mut self,
        trigger: &str,
        result: &'static str,
        d: &diff::Diff,
        error: Option<String>,
    ) {
        if let Some(m) = &self.metrics {
            m.reload(result);
        }
        self.last_reload = Some(ReloadStatus {
            seq: self.reloads,
            trigger: trigger.to_string(),
            result: result.into(),
            added: d.added.clone(),
            changed: d.changed.iter().map(|(_, n)| n.clone()).collect(),
            removed: d.removed.clone(),
            error,
            at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        });
        self.status_due = Some(Instant::now());
    }

    async fn apply_diff(
        &mut self,
        new: Config,
        d: &diff::Diff,
        plugins: HashMap<String, LoadedPlugin>,
        resolved: Resolved,
    ) -> anyhow::Result<()> {
        let now = Instant::now();
        let vips = all_vips(&new);
        // What the preparation looked up: wiring the instances below waits for nothing.
        self.wires.forget_addresses();
        self.wires.preload(resolved);

        // Checks first, so instances see the new set when their tracks are rebuilt.
        for name in d.checks_removed.iter().chain(&d.checks_changed) {
            self.node.remove_check(name);
        }
        self.checks.retain(|c| {
            !(d.checks_removed.contains(&c.def.name) || d.checks_changed.contains(&c.def.name))
        });
        // Spawned after `self.cfg` is replaced (below), with the new global settings.
        let to_spawn: Vec<_> = d
            .checks_added
            .iter()
            .chain(&d.checks_changed)
            .filter_map(|n| new.check(n).cloned())
            .collect();

        // Removed instances resign (priority 0 if master) and are dropped once done.
        for name in &d.removed {
            if let Some(i) = self.active_index(name) {
                self.node.retire(i);
            }
        }

        // Changed instances take their new settings in place.
        let mut first_err = None;
        for (old_name, new_name) in &d.changed {
            let (Some(i), Some(cfg)) = (self.active_index(old_name), new.instance(new_name)) else {
                continue;
            };
            let src = match self.wires.wire(cfg, &vips).await {
                Ok((w, _)) => w.src,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            let owned = match self.wires.owned(cfg).await {
                Ok(o) => o,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            let params = instance::params(cfg, &new.global, src);
            self.node.reconfigure(i, params, cfg.priority);
            let inst = &mut self.instances[i];
            let (added, removed) = inst.reconfigure(cfg.clone(), src, owned);
            info!(parent: &inst.span, "settings changed by reload");
            if inst.stats.vips_held {
                // Only the difference: an address in both configs is not touched. One whose
                // options changed is removed and added again, and its removal is ours.
                for &(index, addr, ..) in &removed.addrs {
                    if added.addrs.iter().any(|a| a.0 == index && a.1 == addr) {
                        inst.own_removals.push((index, addr));
                    }
                }
                self.vips.remove(&removed);
                self.vips.add(&added);
                self.vips.flush();
                let addrs: Vec<_> = added.addrs.iter().map(|a| a.1).collect();
                if !addrs.is_empty() {
                    let inst = &mut self.instances[i];
                    let rounds = inst.cfg.garp.repeat;
                    announce_addrs(inst, &addrs, rounds);
                }
            }
        }

        // New instances start like at boot.
        let mut started = Vec::new();
        for name in &d.added {
            let Some(cfg) = new.instance(name) else {
                continue;
            };
            match self.wires.wire(cfg, &vips).await {
                Ok((wiring, up)) => {
                    // A crash may have left its VIPs behind (in the pass's netlink batch).
                    self.vips.remove(&wiring.owned);
                    let params = instance::params(cfg, &new.global, wiring.src);
                    started.push(self.node.add(params, cfg.priority, up));
                    self.instances.push(Instance::new(cfg.clone(), wiring));
                }
                Err(e) => {
                    warn!(instance = %name, "cannot start: {e:#}");
                    first_err.get_or_insert(e);
                }
            }
        }

        // Notify commands run as the new `script-user`, under the new timeout: a new runner
        // takes the next ones; the old one finishes what it has queued.
        let (old_g, new_g) = (&self.cfg.global, &new.global);
        if old_g.script_user != new_g.script_user || old_g.notify_timeout != new_g.notify_timeout {
            let fresh = crate::hooks::Notifier::spawn_counted(
                new_g.notify_timeout,
                new_g.script_user.clone(),
                self.notify_stats.clone(),
            );
            if let Some(old) = self.notifier.replace(fresh) {
                tokio::spawn(old.shutdown());
            }
        }
        if old_g.notify_fifo != new_g.notify_fifo
            || old_g.notify_fifo_script != new_g.notify_fifo_script
            || old_g.script_user != new_g.script_user
        {
            if let Some(old) = self.fifo.take() {
                old.close();
            }
            match super::open_fifo(new_g) {
                Ok(f) => self.fifo = f,
                Err(e) => {
                    warn!("{e:#}; no notify FIFO until it can be opened");
                    first_err.get_or_insert(e);
                }
            }
        }
        self.cfg = new;
        for def in to_spawn {
            let plugin = plugins.get(&def.name).cloned();
            self.spawn_check(def, plugin).await;
        }
        self.rewatch();
        self.rebuild_indexes();
        self.start_instances(started);
        // Priorities and faults of kept instances may move with changed checks or settings.
        self.node.refresh();
        self.pump(now);
        if self.cfg.global.notify_fifo_states_on_reload {
            self.fifo_states();
        }
        first_err.map_or(Ok(()), Err)
    }

    /// `notify-fifo-states-on-reload` (keepalived's `fifo_write_vrrp_states_on_reload`): every
    /// instance's state as a FIFO line, for a reader that keeps state per instance.
    fn fifo_states(&mut self) {
        let Some(fifo) = &mut self.fifo else {
            return;
        };
        for (i, inst) in self.instances.iter().enumerate() {
            if self.node.is_retiring(i) {
                continue;
            }
            let fsm = self.node.fsm(i);
            let state = match fsm.state() {
                State::Master | State::Handover => "MASTER",
                State::Backup => "BACKUP",
                State::Fault => "FAULT",
                State::Initialize => continue,
            };
            fifo.write(Subject::Instance, &inst.cfg.name, state, fsm.priority());
        }
    }

    pub(super) fn active_index(&self, name: &str) -> Option<usize> {
        (0..self.instances.len())
            .find(|&i| self.instances[i].cfg.name == name && !self.node.is_retiring(i))
    }
}

/// The preparation of a reload, beside the event loop: what [`Daemon::reload`] once did inline,
/// in the same order and with the same messages. Also returns the plugin engine (started here
/// when the new config is the first with a plugin).
async fn prepare(job: Job) -> (Option<PluginHost>, Outcome) {
    let Job {
        forced,
        path,
        file,
        dir,
        state_dir,
        running,
        running_source,
        plugin_files,
        check_plugins,
        hook_plugins,
        mut host,
        nl,
    } = job;
    // Reading and parsing (up to 16 MiB), and the plugin files' stamps, on a blocking thread.
    let read = {
        let file = file.clone();
        tokio::task::spawn_blocking(move || {
            let loaded = match config::load_with_source(&path) {
                Ok(loaded) => Ok(loaded),
                Err(config::ConfigError::Io { source: e, .. }) => {
                    Err(format!("{file}: cannot read: {e}"))
                }
                Err(e) => Err(e.to_string()),
            };
            let changed: Vec<String> = plugin_files
                .into_iter()
                .filter(|(_, path, stamp)| checks::stamp(path) != *stamp)
                .map(|(name, _, _)| name)
                .collect();
            (loaded, changed)
        })
        .await
    };
    let (loaded, plugins_changed) = match read {
        Ok(r) => r,
        Err(e) => {
            return (
                host,
                Outcome::Refused(format!("{file}: reading failed: {e}")),
            )
        }
    };
    let (new, source) = match loaded {
        Ok(l) => l,
        Err(msg) => return (host, Outcome::Refused(msg)),
    };
    if source == running_source && !forced && plugins_changed.is_empty() {
        return (host, Outcome::Unchanged);
    }
    // A host that only announces over BGP runs no instance; one that had some does not lose
    // them all by a reload.
    if new.instances.is_empty() && !running.instances.is_empty() {
        let msg = format!("{file}: the new config has no instances; refusing to drop every VIP (stop the daemon instead)");
        return (host, Outcome::Refused(msg));
    }
    // Everything the new config names must exist before anything is applied; the new and
    // changed instances' source addresses are looked up (and waited for) here too.
    let d = diff::diff(&running, &new);
    let wanted: Vec<usize> = new
        .instances
        .iter()
        .enumerate()
        .filter(|(_, i)| d.added.contains(&i.name) || d.changed.iter().any(|c| c.1 == i.name))
        .map(|(k, _)| k)
        .collect();
    let resolved = match wiring::resolve(&nl, &new, &wanted).await {
        Ok(r) => r,
        Err((k, e)) => {
            let inst = &new.instances[k];
            let (line, col) = config::parse::line_col(&source, inst.span.offset());
            let msg = format!("{file}:{line}:{col}: instance `{}`: {e:#}", inst.name);
            return (host, Outcome::Refused(msg));
        }
    };
    // Plugins are compiled, or reused when their file is the same.
    let reuse_checks: HashMap<String, LoadedPlugin> = check_plugins
        .into_iter()
        .filter(|(def, _)| {
            new.check(&def.name)
                .is_some_and(|n| diff::same_check(def, n))
        })
        .map(|(def, loaded)| (def.name, loaded))
        .collect();
    let reuse_hooks: HashMap<String, LoadedPlugin> = hook_plugins
        .into_iter()
        .filter(|(name, _)| running.hook(name) == new.hook(name))
        .collect();
    if host.is_none() {
        let started = {
            let new = new.clone();
            tokio::task::spawn_blocking(move || {
                let mut host = None;
                checks::ensure_plugin_host(&mut host, &new, &state_dir).map(|()| host)
            })
            .await
        };
        match started {
            Ok(Ok(started)) => host = started,
            Ok(Err(e)) => return (host, Outcome::Refused(e.to_string())),
            Err(e) => return (host, Outcome::Refused(format!("plugin engine: {e}"))),
        }
    }
    let result = checks::prepare(
        &new,
        &source,
        &file,
        &dir,
        host.as_ref(),
        &reuse_checks,
        &reuse_hooks,
    )
    .await;
    let outcome = match result {
        Ok(prepared) => Outcome::Ready(Box::new(Ready {
            new,
            source,
            plugins_changed,
            prepared,
            resolved,
        })),
        Err(e) => Outcome::Refused(e.to_string()),
    };
    (host, outcome)
}
