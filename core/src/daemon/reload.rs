//! Reloading the config without disturbing what did not change.
//!
//! The new file is parsed and validated in full (syntax, schema, interfaces, source addresses)
//! before anything is touched; a file that fails is refused and the running config stays. Then
//! only the differences are applied: unchanged instances are not touched at all (no event, no
//! advert, no GARP, no address change), changed ones take their new settings in place, removed
//! ones resign, new ones start.

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tracing::{error, info, warn};

use upkeep_config::{self as config, diff, CheckKind, Config};

use super::checks::{self, LoadedPlugin};
use super::instance::{self, Instance};
use super::status::ReloadStatus;
use super::{all_vips, announce_addrs, Daemon};

/// A reload whose config is parsed and validated and whose plugins are compiled.
pub(super) struct PreparedReload {
    trigger: String,
    new: Config,
    source: String,
    plugins_changed: Vec<String>,
    result: Result<checks::Prepared, checks::PrepareError>,
}

impl Daemon {
    /// First half of a reload: read, parse and validate, then compile plugins off the loop;
    /// [`Daemon::finish_reload`] applies the result. A reload asked for while one is being
    /// prepared runs after it.
    pub(super) async fn reload(&mut self, trigger: &str, forced: bool) {
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
        // Parsed before the "unchanged" test below, which used to come first: the outcome is
        // the same (the running config's text parses), and the file is read in one place.
        let file = self.opts.config.display().to_string();
        let (new, source) = match config::load_with_source(&self.opts.config) {
            Ok(loaded) => loaded,
            Err(config::ConfigError::Io { source: e, .. }) => {
                let msg = format!("{file}: cannot read: {e}");
                return self.refuse(trigger, msg);
            }
            Err(e) => return self.refuse(trigger, e.to_string()),
        };
        let plugins_changed = self.stale_plugins();
        if source == self.source && !forced && plugins_changed.is_empty() {
            // Touched but not changed. If the last attempt was refused, the file is now back to
            // what runs: say so, so status no longer shows the old error.
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
        if new.instances.is_empty() {
            let msg = format!("{file}: the new config has no instances; refusing to drop every VIP (stop the daemon instead)");
            return self.refuse(trigger, msg);
        }
        // Everything the new config names must exist before anything is applied.
        for inst in &new.instances {
            if let Err(e) = self.wires.validate(inst).await {
                let (line, col) = config::parse::line_col(&source, inst.span.offset());
                let msg = format!("{file}:{line}:{col}: instance `{}`: {e:#}", inst.name);
                return self.refuse(trigger, msg);
            }
        }
        // Plugins are compiled (or reused when their file is the same) on a task of their own:
        // compiling takes long enough to starve the adverts if the event loop waited for it.
        let reuse_checks: HashMap<String, LoadedPlugin> = self
            .checks
            .iter()
            .filter(|c| {
                new.check(&c.def.name)
                    .is_some_and(|n| diff::same_check(&c.def, n))
            })
            .filter_map(|c| Some((c.def.name.clone(), c.plugin.clone()?)))
            .collect();
        let reuse_hooks: HashMap<String, LoadedPlugin> = self
            .hook_plugins
            .iter()
            .filter(|(name, _)| self.cfg.hook(name) == new.hook(name))
            .map(|(n, l)| (n.clone(), l.clone()))
            .collect();
        if let Err(e) =
            checks::ensure_plugin_host(&mut self.plugin_host, &new, &self.opts.state_dir)
        {
            return self.refuse(trigger, e.to_string());
        }
        self.reload_running = true;
        let host = self.plugin_host.clone();
        let dir = checks::config_dir(&self.opts.config);
        let tx = self.prepared_tx.clone();
        let trigger = trigger.to_string();
        tokio::spawn(async move {
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
            let _ = tx.send(PreparedReload {
                trigger,
                new,
                source,
                plugins_changed,
                result,
            });
        });
    }

    /// Second half of a reload, back on the event loop: apply what was prepared.
    pub(super) async fn finish_reload(&mut self, p: PreparedReload) {
        self.reload_running = false;
        let PreparedReload {
            trigger,
            new,
            source,
            plugins_changed,
            result,
        } = p;
        let trigger = trigger.as_str();
        let prepared = match result {
            Ok(p) => p,
            Err(e) => return self.refuse(trigger, e.to_string()),
        };
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
        match self.apply_diff(new, &d, prepared.check_plugins).await {
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

    /// Names of plugin checks whose .wasm file changed since it was compiled.
    fn stale_plugins(&self) -> Vec<String> {
        let dir = checks::config_dir(&self.opts.config);
        self.checks
            .iter()
            .filter_map(|c| {
                let loaded = c.plugin.as_ref()?;
                let CheckKind::Plugin { path, .. } = &c.def.kind else {
                    return None;
                };
                (checks::stamp(&dir.join(path)) != loaded.stamp).then(|| c.def.name.clone())
            })
            .collect()
    }

    async fn apply_diff(
        &mut self,
        new: Config,
        d: &diff::Diff,
        plugins: HashMap<String, LoadedPlugin>,
    ) -> anyhow::Result<()> {
        let now = Instant::now();
        let vips = all_vips(&new);
        self.wires.forget_addresses();

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
                // Only the difference: an address in both configs is not touched.
                self.vips.remove(&removed);
                self.vips.add(&added);
                self.vips.flush();
                let addrs: Vec<_> = added.addrs.iter().map(|a| a.1).collect();
                if !addrs.is_empty() {
                    announce_addrs(&mut self.instances[i], &addrs, &new.global);
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
                    super::vips::remove(&self.wires.nl, &wiring.owned).await;
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
            let fresh =
                crate::hooks::Notifier::spawn(new_g.notify_timeout, new_g.script_user.clone());
            if let Some(old) = self.notifier.replace(fresh) {
                tokio::spawn(old.shutdown());
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
        first_err.map_or(Ok(()), Err)
    }

    pub(super) fn active_index(&self, name: &str) -> Option<usize> {
        (0..self.instances.len())
            .find(|&i| self.instances[i].cfg.name == name && !self.node.is_retiring(i))
    }
}
