//! Running the config's checks and hooks: what each kind needs before it may run (script
//! security, users, compiled plugins), and the task that runs it.
//!
//! Preparation happens for the whole config before anything is applied, so a reload with a
//! plugin that does not compile, or a script anyone may rewrite, is refused as a whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::warn;

use crate::checks::wasm::{self, Plugin, PluginError, PluginHost};
use crate::checks::{listener, script, trackers, CheckResult, Tracker};
use crate::exec::security::{self, check_plugin_file};
use crate::hooks::queue::{self, QueueStats};
use upkeep_config::{self as config, CheckDef, CheckKind, Config, ConfigError};
use upkeep_vrrp::node::CheckState;

/// A plugin file's identity: a changed file (a new build) is recompiled on reload even when the
/// config text did not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

pub(super) fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: m.len(),
        modified: m.modified().ok(),
    })
}

/// A compiled plugin with the file identity it was compiled from.
#[derive(Clone)]
pub(super) struct LoadedPlugin {
    pub plugin: Arc<Plugin>,
    pub stamp: Option<Stamp>,
}

pub(super) struct Check {
    pub def: CheckDef,
    /// Results carry this id, so a result of a replaced check is recognised as stale.
    pub id: u64,
    pub tracker: Tracker,
    pub last: Option<CheckResult>,
    pub runs: u64,
    /// File checks: the integer the file holds.
    pub value: i64,
    /// Interface checks: the interface's index (results come from link events; followed by
    /// name, None while no interface of that name exists).
    pub ifindex: Option<u32>,
    pub plugin: Option<LoadedPlugin>,
    pub task: Option<AbortHandle>,
}

impl Drop for Check {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

impl Check {
    pub(super) fn kind(&self) -> &'static str {
        self.def.kind.keyword()
    }

    /// What the node's weight rules go by: a file tracker's value, any other check's health.
    pub(super) fn state(&self) -> CheckState {
        match self.def.kind {
            CheckKind::File { .. } => CheckState::Value(self.value),
            _ => CheckState::Healthy(self.tracker.healthy()),
        }
    }
}

/// Where relative script, plugin and file paths start: the config file's directory.
pub(super) fn config_dir(config: &Path) -> PathBuf {
    config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `(uid, gid)` a script runs as (a check's `user`, else `script-user`, else the unprivileged
/// default); None to stay the daemon's user. See [`security::run_as`].
pub(super) fn run_as(user: Option<&str>) -> Result<Option<(u32, u32)>, security::ScriptUserError> {
    security::run_as(user)
}

/// Why a config's checks and hooks cannot run as written: what [`prepare`] and
/// [`ensure_plugin_host`] refuse, before anything of the running config changes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(super) enum PrepareError {
    /// What the config needs of this host (script users, script security) is not there.
    #[error("{0}")]
    Host(ConfigError),
    /// The WebAssembly engine could not start.
    #[error("{0}")]
    Engine(PluginError),
    /// The task checking script users and script security panicked.
    #[error("checking the config's scripts failed: {0}")]
    CheckerPanicked(String),
    /// A check's or hook's plugin cannot be used; `at` is the block's `file:line:col`.
    #[error("{at}: {block} `{name}`: {reason}")]
    Plugin {
        at: String,
        /// `check` or `hook`.
        block: &'static str,
        name: String,
        reason: Box<PluginRefusal>,
    },
}

/// Why one plugin file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(super) enum PluginRefusal {
    /// The file fails script security (its owner or mode, or a directory above it).
    #[error("plugin refused: {0}")]
    Insecure(security::ScriptSecurityError),
    /// No engine to load it with ([`ensure_plugin_host`] was not run for this config).
    #[error("the plugin engine is not running")]
    NoEngine,
    /// The loader task panicked.
    #[error("plugin loader panicked: {0}")]
    LoaderPanicked(String),
    /// The component could not be read, compiled or linked, or wants more than it is granted.
    #[error("{0}")]
    Load(PluginError),
    /// It does not export what the block needs (`check` for a check, `notify` for a hook).
    #[error("plugin {} exports no `{export}`", path.display())]
    NotExported { path: PathBuf, export: &'static str },
}

/// Set once the daemon has warned that scripts run as root.
static WARNED_ROOT: std::sync::Once = std::sync::Once::new();

/// Everything a config's checks and hooks need, prepared; or the first reason it cannot run,
/// located in the file.
pub(super) struct Prepared {
    /// Compiled plugins by check name and by hook name.
    pub check_plugins: HashMap<String, LoadedPlugin>,
    pub hook_plugins: HashMap<String, LoadedPlugin>,
}

pub(super) async fn prepare(
    cfg: &Config,
    source: &str,
    file: &str,
    dir: &Path,
    host: Option<&PluginHost>,
    reuse: &HashMap<String, LoadedPlugin>,
    reuse_hooks: &HashMap<String, LoadedPlugin>,
) -> Result<Prepared, PrepareError> {
    let at = |span: miette::SourceSpan| {
        let (line, col) = config::parse::line_col(source, span.offset());
        format!("{file}:{line}:{col}")
    };
    // The file itself, users, what they may run, script security: the same as `upkeep check`.
    // It reads the user database and walks directories: on a blocking thread, not the event
    // loop's.
    let checked = {
        let (cfg, source) = (cfg.clone(), source.to_owned());
        let (file, dir) = (file.to_owned(), dir.to_path_buf());
        tokio::task::spawn_blocking(move || {
            crate::host::check_config_file(&cfg, &source, Path::new(&file))?;
            crate::host::check(&cfg, &source, &file, &dir)
        })
        .await
    };
    let warnings = checked
        .map_err(|e| PrepareError::CheckerPanicked(e.to_string()))?
        .map_err(PrepareError::Host)?;
    for w in warnings {
        WARNED_ROOT.call_once(|| warn!("{w}"));
    }
    let mut check_plugins = HashMap::new();
    for def in &cfg.checks {
        match &def.kind {
            CheckKind::Script { .. } => {}
            CheckKind::Plugin {
                path,
                grants,
                memory_limit,
                sha256,
                ..
            } => {
                let path = dir.join(path);
                let limits = wasm::Limits {
                    timeout: def.timeout,
                    memory: usize::try_from(*memory_limit).unwrap_or(usize::MAX),
                };
                let refused = |reason| PrepareError::Plugin {
                    at: at(def.span),
                    block: "check",
                    name: def.name.clone(),
                    reason: Box::new(reason),
                };
                let loaded = load_plugin(
                    host,
                    &path,
                    grants.clone(),
                    limits,
                    sha256.as_deref(),
                    reuse.get(&def.name),
                )
                .await
                .map_err(refused)?;
                if !loaded.plugin.metadata().check {
                    return Err(refused(PluginRefusal::NotExported {
                        path,
                        export: "check",
                    }));
                }
                check_plugins.insert(def.name.clone(), loaded);
            }
            CheckKind::Interface { .. }
            | CheckKind::File { .. }
            | CheckKind::Process { .. }
            | CheckKind::Listener { .. } => {}
        }
    }
    let mut hook_plugins = HashMap::new();
    for hook in &cfg.hooks {
        let path = dir.join(&hook.path);
        let limits = wasm::Limits {
            timeout: hook.timeout,
            memory: usize::try_from(hook.memory_limit).unwrap_or(usize::MAX),
        };
        let refused = |reason| PrepareError::Plugin {
            at: at(hook.span),
            block: "hook",
            name: hook.name.clone(),
            reason: Box::new(reason),
        };
        let loaded = load_plugin(
            host,
            &path,
            hook.grants.clone(),
            limits,
            hook.sha256.as_deref(),
            reuse_hooks.get(&hook.name),
        )
        .await
        .map_err(refused)?;
        if !loaded.plugin.metadata().notify {
            return Err(refused(PluginRefusal::NotExported {
                path,
                export: "notify",
            }));
        }
        hook_plugins.insert(hook.name.clone(), loaded);
    }
    Ok(Prepared {
        check_plugins,
        hook_plugins,
    })
}

/// Starts the daemon's plugin engine in `host` when `cfg` has a WASM plugin (a check or a
/// hook) and there is none yet: plugins compiled by a separate process and kept in
/// `STATE_DIR/plugins` (see [`wasm::CodeCache`]), or compiled in-process if that directory
/// cannot be used.
pub(super) fn ensure_plugin_host(
    host: &mut Option<PluginHost>,
    cfg: &Config,
    state_dir: &Path,
) -> Result<(), PrepareError> {
    let needed = !cfg.hooks.is_empty()
        || cfg
            .checks
            .iter()
            .any(|c| matches!(c.kind, CheckKind::Plugin { .. }));
    if !needed || host.is_some() {
        return Ok(());
    }
    let started = match wasm::CodeCache::new(state_dir.join("plugins")) {
        Ok(cache) => PluginHost::with_code_cache(cache),
        Err(e) => {
            warn!("plugins are compiled inside the daemon: {e}");
            PluginHost::new()
        }
    };
    *host = Some(started.map_err(PrepareError::Engine)?);
    Ok(())
}

/// Compile a plugin off the event loop (it takes tens of milliseconds), or reuse the one
/// already compiled from the same file (if it has the digest `sha256` pins).
async fn load_plugin(
    host: Option<&PluginHost>,
    path: &Path,
    grants: wasm::Grants,
    limits: wasm::Limits,
    sha256: Option<&str>,
    reuse: Option<&LoadedPlugin>,
) -> Result<LoadedPlugin, PluginRefusal> {
    check_plugin_file(path).map_err(PluginRefusal::Insecure)?;
    let now = stamp(path);
    if let Some(old) = reuse {
        let pinned_ok = sha256.is_none_or(|want| want == old.plugin.sha256());
        if old.stamp == now && now.is_some() && pinned_ok {
            return Ok(old.clone());
        }
    }
    let sha256 = sha256.map(str::to_owned);
    // `ensure_plugin_host` started it for any config with a plugin.
    let h = host.cloned().ok_or(PluginRefusal::NoEngine)?;
    let path = path.to_path_buf();
    let plugin = tokio::task::spawn_blocking(move || {
        Plugin::load_pinned(&h, &path, grants, limits, sha256.as_deref())
    })
    .await
    .map_err(|e| PluginRefusal::LoaderPanicked(e.to_string()))?
    .map_err(PluginRefusal::Load)?;
    Ok(LoadedPlugin {
        plugin: Arc::new(plugin),
        stamp: now,
    })
}

/// Start a check's task. Interface checks have none: link events feed them.
pub(super) fn spawn(
    def: &CheckDef,
    id: u64,
    dir: &Path,
    global: &config::Global,
    plugin: Option<&LoadedPlugin>,
    tx: &mpsc::UnboundedSender<CheckResult>,
) -> Option<AbortHandle> {
    let tx = tx.clone();
    let handle = match &def.kind {
        CheckKind::Script { command } => {
            let user = def.user.as_deref().or(global.script_user.as_deref());
            let sc = script::ScriptCheck {
                id,
                command: command.clone(),
                interval: def.interval,
                timeout: def.timeout,
                cwd: dir.to_path_buf(),
                // Validated by `prepare`; a user deleted since then runs nothing.
                run_as: run_as(user).unwrap_or_else(|e| {
                    warn!(check = %def.name, "{e}");
                    Some((u32::MAX, u32::MAX))
                }),
            };
            tokio::spawn(script::run(sc, tx))
        }
        CheckKind::File { path } => {
            tokio::spawn(trackers::run_file(id, dir.join(path), def.interval, tx))
        }
        CheckKind::Process {
            name,
            full,
            min_count,
        } => tokio::spawn(trackers::run_process(
            id,
            name.clone(),
            *full,
            *min_count,
            def.interval,
            tx,
        )),
        CheckKind::Listener {
            port,
            proto,
            address,
        } => {
            let spec = listener::ListenerSpec {
                port: *port,
                proto: *proto,
                address: *address,
            };
            tokio::spawn(listener::run(id, spec, def.interval, tx))
        }
        CheckKind::Interface { .. } => return None,
        CheckKind::Plugin { config, .. } => {
            let plugin = plugin?.plugin.clone();
            return Some(
                plugin.spawn_checker(config.clone(), def.interval, move |out| {
                    let result = CheckResult {
                        check: id,
                        ok: out.healthy,
                        message: out.message,
                        duration: out.duration,
                        value: None,
                    };
                    tx.send(result).is_ok()
                }),
            );
        }
    };
    Some(handle.abort_handle())
}

/// A WASM notify hook's call, queued under its key (the hook's and the instance's name).
pub(super) type HookJob = (String, (Arc<Plugin>, wasm::StateChange));

/// Runs WASM notify hooks one at a time, in the order transitions happened; per hook and
/// instance the latest state wins over one still waiting (see [`crate::hooks::queue`]).
pub(super) fn spawn_hook_runner(stats: Arc<QueueStats>) -> mpsc::UnboundedSender<HookJob> {
    let (tx, rx) = mpsc::unbounded_channel();
    let run = |_key: String, (plugin, t): (Arc<Plugin>, wasm::StateChange)| async move {
        let instance = t.instance.clone();
        if let Err(e) = plugin.notify_async(t).await {
            warn!(%instance, "notify hook failed: {e}");
        }
    };
    tokio::spawn(queue::dispatch(rx, stats, 1, "notify hook", run));
    tx
}
