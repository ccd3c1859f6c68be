//! Health checks and notify hooks as sandboxed WebAssembly components.
//!
//! A plugin is a component built against `plugin-sdk/wit/upkeep-plugin.wit` (world
//! `check-plugin`, `notify-plugin` or `plugin`), in any language. It is compiled once at
//! [`Plugin::load`] and instantiated once from the cached pre-linked instance; that instance
//! answers call after call (as a long-running checker process would) until a call fails in any
//! way, when it is thrown away and the next call starts afresh. Every call has a deadline (epoch
//! interruption: one ticker thread per [`PluginHost`], parked while no call runs; the plugin
//! yields at every tick, so a looping plugin never holds up another's call), a memory cap and a
//! locked-down WASI: no files, no network,
//! no environment, stdin closed, stdout discarded, stderr kept only for error messages. What a
//! plugin may touch is the `host` interface, one capability per function: the plugin declares
//! what it wants in its metadata, the operator grants it ([`Grants`]), and both are checked at
//! load and again on every call.
//!
//! A plugin that loops, allocates without end, recurses, traps or blocks is stopped and reported
//! (an unhealthy [`CheckOutcome`] or a [`PluginError`]); the daemon goes on.
//!
//! Not for: scheduling checks or rise/fall counting (the daemon and [`super::Tracker`] do that).

mod call;
mod compile;
mod host;
mod sandbox;
mod v0_1;

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use self::call::{CallContext, Permissions};
pub(crate) use self::compile::sha256_hex;
pub use self::compile::{compile_to_file, CodeCache};
use self::sandbox::State;
use self::v0_1::check::{CheckPlugin, CheckPluginPre};
use self::v0_1::notify::{NotifyPlugin, NotifyPluginPre};

/// The WIT package version this host implements.
pub const WIT_VERSION: &str = "upkeep:plugin@0.1.0";

/// The longest check message kept.
const MESSAGE_MAX: usize = 4096;
/// How often the epoch ticker ticks: the granularity of deadlines.
const TICK: Duration = Duration::from_millis(10);
/// Past the deadline, how long a call blocked in the host (not in wasm code) may take before it
/// is abandoned.
const HOST_GRACE: Duration = Duration::from_millis(100);

pub use upkeep_config::model::{Capability, Grants};

/// Per-call resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall time of one call (instantiation included).
    pub timeout: Duration,
    /// Linear memory of one call, all memories together.
    pub memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(1),
            memory: 16 * 1024 * 1024,
        }
    }
}

/// Who a plugin is, from its `metadata` export, and what it exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub name: String,
    pub version: String,
    pub description: String,
    /// The capabilities it declares, without duplicates, in WIT order.
    pub capabilities: Vec<Capability>,
    /// Exports `check` (a health check).
    pub check: bool,
    /// Exports `notify` (a notify hook).
    pub notify: bool,
}

/// A VRRP state change for [`Plugin::notify`] (keepalived's notify arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub instance: String,
    /// `INIT`, `BACKUP`, `MASTER`, `FAULT` or `STOP`.
    pub old_state: String,
    pub new_state: String,
    pub priority: u8,
}

/// The result of one [`Plugin::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub healthy: bool,
    /// The plugin's message, or why the run failed.
    pub message: String,
    /// Set when the plugin did not answer (timeout, trap, memory cap...): `healthy` is false.
    pub fault: Option<Fault>,
    /// Wall time of the call.
    pub duration: Duration,
}

/// How a call went wrong on the plugin's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// It ran past its timeout (in wasm code, or blocked in a host call).
    Timeout,
    /// It needed more memory than its cap.
    MemoryLimit,
    /// It exhausted its call stack.
    StackOverflow,
    /// It trapped (a Rust panic, `unreachable`, an invalid memory access...).
    Trap,
    /// The host failed to run it (instantiation or an internal error).
    Host,
}

/// Why a plugin cannot be loaded or did not complete a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not a component wasmtime can compile (a core module, another format, corrupt).
    #[error("{path} is not a valid WebAssembly component: {reason}")]
    Invalid { path: PathBuf, reason: String },
    /// A component, but not of a plugin world this host implements.
    #[error("{path} is not an upkeep plugin this daemon can run ({WIT_VERSION}): {reason}")]
    Incompatible { path: PathBuf, reason: String },
    /// It declares a capability the config does not grant it.
    #[error("plugin `{plugin}` wants capability `{capability}`, which is not granted to it")]
    CapabilityNotGranted {
        plugin: String,
        capability: Capability,
    },
    /// Called for a function it does not export (`check` or `notify`).
    #[error("plugin `{plugin}` does not export `{function}`")]
    NotExported {
        plugin: String,
        function: &'static str,
    },
    /// A call that trapped, timed out, ran out of memory or failed in the host; `fault` says which.
    #[error("plugin `{plugin}` failed: {message}")]
    Call {
        plugin: String,
        fault: Fault,
        message: String,
    },
    /// The engine or its epoch ticker could not start.
    #[error("cannot start the WebAssembly engine: {0}")]
    Engine(String),
    /// The file's SHA-256 is not the one the config pins (`sha256`).
    #[error("{path} has SHA-256 {found}, not the {want} the config pins (`sha256`): refused")]
    DigestMismatch {
        path: PathBuf,
        want: String,
        found: String,
    },
}

/// The engine all plugins share, with its epoch ticker thread and the small runtime that drives
/// calls. One per daemon; cheap to clone.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<HostInner>,
}

struct HostInner {
    engine: Engine,
    linker: Linker<State>,
    /// Drives host calls that wait (timers, `tcp-connect`). `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    stop: Arc<AtomicBool>,
    /// Calls in progress: the epoch ticker sleeps (parked) while there are none.
    active: Arc<AtomicUsize>,
    ticker: std::thread::Thread,
    /// Where compiled plugins are kept (the daemon); None: compile in this process (tools).
    code_cache: Option<CodeCache>,
}

/// Keeps the epoch ticker running while a call is in progress.
struct Busy(Arc<HostInner>);

impl Busy {
    fn new(inner: &Arc<HostInner>) -> Self {
        if inner.active.fetch_add(1, Ordering::SeqCst) == 0 {
            inner.ticker.unpark();
        }
        Busy(inner.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl HostInner {
    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the host")
    }
}

impl Drop for HostInner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.ticker.unpark();
        // Not a blocking shutdown: the last plugin may well be dropped in async code.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl PluginHost {
    /// Builds the engine (epoch interruption on) and the linker (WASI p2, locked down per call,
    /// and the `host` interface), and starts the ticker thread. It stops when the last clone of
    /// the host and the last [`Plugin`] are dropped.
    pub fn new() -> Result<Self, PluginError> {
        Self::build(None)
    }

    /// As [`PluginHost::new`], with plugins compiled by a separate process and kept in `cache`
    /// (the daemon: see [`CodeCache`]).
    pub fn with_code_cache(cache: CodeCache) -> Result<Self, PluginError> {
        Self::build(Some(cache))
    }

    fn build(code_cache: Option<CodeCache>) -> Result<Self, PluginError> {
        let engine_err = |e: wasmtime::Error| PluginError::Engine(format!("{e:#}"));
        let engine = Engine::new(&compile::engine_config()).map_err(engine_err)?;

        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_err)?;
        CheckPlugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(engine_err)?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            // A looping plugin yields at every epoch tick; a call that arrives meanwhile must be
            // picked up at the next yield, not after dozens of them.
            .global_queue_interval(1)
            .thread_name("upkeep-wasm")
            .enable_time()
            .enable_io()
            .build()
            .map_err(|e| PluginError::Engine(format!("runtime: {e}")))?;

        let stop = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let ticker_engine = engine.weak();
        let (ticker_stop, ticker_active) = (stop.clone(), active.clone());
        let ticker = std::thread::Builder::new()
            .name("upkeep-wasm-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    // Idle: no wake-ups at all until a call starts (Busy unparks).
                    if ticker_active.load(Ordering::SeqCst) == 0 {
                        std::thread::park();
                        continue;
                    }
                    std::thread::sleep(TICK);
                    let Some(engine) = ticker_engine.upgrade() else {
                        break;
                    };
                    engine.increment_epoch();
                }
            })
            .map_err(|e| PluginError::Engine(format!("epoch ticker thread: {e}")))?;

        Ok(PluginHost {
            inner: Arc::new(HostInner {
                engine,
                linker,
                runtime: Some(runtime),
                stop,
                active,
                ticker: ticker.thread().clone(),
                code_cache,
            }),
        })
    }
}

/// A loaded plugin: compiled and linked once, instantiated afresh for every call.
/// `Send + Sync`: share it in an `Arc` and call it from blocking threads.
pub struct Plugin {
    host: PluginHost,
    path: PathBuf,
    /// The SHA-256 of the bytes compiled, lower-case hex.
    sha256: String,
    metadata: Metadata,
    perms: Arc<Permissions>,
    limits: Limits,
    check: Option<CheckPluginPre<State>>,
    notify: Option<NotifyPluginPre<State>>,
    /// The instance that answered the last call, kept for the next one.
    warm_check: Mutex<Option<(Store<State>, CheckPlugin)>>,
    warm_notify: Mutex<Option<(Store<State>, NotifyPlugin)>>,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("path", &self.path)
            .field("metadata", &self.metadata)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Reads and compiles the component at `path`, links it, calls its `metadata` once (with no
    /// capability, under `limits`), and refuses it if it wants a capability `grants` lack.
    pub fn load(
        host: &PluginHost,
        path: &Path,
        grants: Grants,
        limits: Limits,
    ) -> Result<Plugin, PluginError> {
        Self::load_pinned(host, path, grants, limits, None)
    }

    /// [`Plugin::load`], refusing a file whose SHA-256 is not `sha256` (lower-case hex): the
    /// digest is of the very bytes compiled, so a file swapped after the check is not run.
    pub fn load_pinned(
        host: &PluginHost,
        path: &Path,
        grants: Grants,
        limits: Limits,
        sha256: Option<&str>,
    ) -> Result<Plugin, PluginError> {
        let loaded = Linked::new(host, path, limits, sha256)?;
        let metadata = loaded.metadata.clone();
        if let Some(&capability) = metadata.capabilities.iter().find(|&&c| !grants.allows(c)) {
            return Err(PluginError::CapabilityNotGranted {
                plugin: metadata.name,
                capability,
            });
        }
        let perms = Permissions::new(metadata.name.clone(), metadata.capabilities.clone(), grants);
        Ok(Plugin {
            host: host.clone(),
            path: path.to_path_buf(),
            sha256: loaded.sha256,
            metadata,
            perms: Arc::new(perms),
            limits,
            check: loaded.check,
            notify: loaded.notify,
            warm_check: Mutex::new(None),
            warm_notify: Mutex::new(None),
        })
    }

    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The SHA-256 of the component as loaded, lower-case hex (what `sha256` pins).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs the check once, blocking the calling thread for at most about `limits.timeout`.
    /// For tools and tests; the daemon uses [`Plugin::check_async`]. Never fails: a plugin that
    /// does not answer is unhealthy, with the reason in `message`.
    pub fn check(&self, config: &[(String, String)]) -> CheckOutcome {
        let started = Instant::now();
        let result = block_on_host(&self.host, || self.check_call(config))
            .unwrap_or_else(|panic| Err((Fault::Host, panic)));
        outcome(result, started)
    }

    /// Runs the check once on the plugin host's own thread; the caller's runtime only awaits
    /// the answer. Never fails, as [`Plugin::check`].
    pub async fn check_async(self: Arc<Self>, config: Arc<Vec<(String, String)>>) -> CheckOutcome {
        let started = Instant::now();
        let this = self.clone();
        let task = self
            .host
            .inner
            .runtime()
            .spawn(async move { this.check_call(&config).await });
        let result = task.await.unwrap_or_else(|e| {
            Err((
                Fault::Host,
                format!("internal error in the plugin host: {e}"),
            ))
        });
        outcome(result, started)
    }

    /// Runs the check every `interval` on the plugin host's thread, handing each outcome to
    /// `report` until it returns false or the task is aborted. The caller's runtime is not woken
    /// for the schedule, only for the outcomes.
    pub fn spawn_checker(
        self: Arc<Self>,
        config: Vec<(String, String)>,
        interval: Duration,
        mut report: impl FnMut(CheckOutcome) -> bool + Send + 'static,
    ) -> tokio::task::AbortHandle {
        let runtime = self.host.inner.runtime().handle().clone();
        let task = runtime.spawn(async move {
            let mut schedule = super::Schedule::new(interval);
            loop {
                let started = Instant::now();
                let result = self.check_call(&config).await;
                if !report(outcome(result, started)) {
                    return;
                }
                schedule.wait().await;
            }
        });
        task.abort_handle()
    }

    async fn check_call(
        &self,
        config: &[(String, String)],
    ) -> Result<CheckResult, (Fault, String)> {
        let Some(pre) = &self.check else {
            return Err((
                Fault::Host,
                format!("plugin `{}` does not export `check`", self.metadata.name),
            ));
        };
        let _busy = Busy::new(&self.host.inner);
        let (mut store, instance) = self
            .warm_or_new(&self.warm_check, async |s: &mut Store<State>| {
                pre.instantiate_async(s).await
            })
            .await?;
        let result = call_in(&mut store, self.limits, async |s: &mut Store<State>| {
            instance.call_check(s, config).await
        })
        .await?;
        *lock(&self.warm_check) = Some((store, instance));
        Ok(result)
    }

    /// Tells a notify hook of a state change, blocking for at most about `limits.timeout`.
    /// For tools and tests; the daemon uses [`Plugin::notify_async`].
    pub fn notify(&self, t: &StateChange) -> Result<(), PluginError> {
        self.exports_notify()?;
        block_on_host(&self.host, || self.notify_call(t))
            .unwrap_or_else(|panic| Err((Fault::Host, panic)))
            .map_err(|(fault, message)| self.call_error(fault, message))
    }

    /// [`Plugin::notify`] on the plugin host's own thread.
    pub async fn notify_async(self: Arc<Self>, t: StateChange) -> Result<(), PluginError> {
        self.exports_notify()?;
        let this = self.clone();
        let task = self
            .host
            .inner
            .runtime()
            .spawn(async move { this.notify_call(&t).await });
        task.await
            .unwrap_or_else(|e| {
                Err((
                    Fault::Host,
                    format!("internal error in the plugin host: {e}"),
                ))
            })
            .map_err(|(fault, message)| self.call_error(fault, message))
    }

    async fn notify_call(&self, t: &StateChange) -> Result<(), (Fault, String)> {
        let Some(pre) = &self.notify else {
            return Err((Fault::Host, "it does not export `notify`".to_string()));
        };
        let event = v0_1::check::upkeep::plugin::types::Transition {
            instance: t.instance.clone(),
            old_state: t.old_state.clone(),
            new_state: t.new_state.clone(),
            priority: t.priority,
        };
        let _busy = Busy::new(&self.host.inner);
        let (mut store, instance) = self
            .warm_or_new(&self.warm_notify, async |s: &mut Store<State>| {
                pre.instantiate_async(s).await
            })
            .await?;
        call_in(&mut store, self.limits, async |s: &mut Store<State>| {
            instance.call_notify(s, &event).await
        })
        .await?;
        *lock(&self.warm_notify) = Some((store, instance));
        Ok(())
    }

    fn exports_notify(&self) -> Result<(), PluginError> {
        match self.notify {
            Some(_) => Ok(()),
            None => Err(PluginError::NotExported {
                plugin: self.metadata.name.clone(),
                function: "notify",
            }),
        }
    }

    fn call_error(&self, fault: Fault, message: String) -> PluginError {
        PluginError::Call {
            plugin: self.metadata.name.clone(),
            fault,
            message,
        }
    }

    /// The instance kept in `slot`, ready for another call, or a new one (instantiated under
    /// the call's deadline).
    async fn warm_or_new<I>(
        &self,
        slot: &Mutex<Option<(Store<State>, I)>>,
        instantiate: impl AsyncFnOnce(&mut Store<State>) -> wasmtime::Result<I>,
    ) -> Result<(Store<State>, I), (Fault, String)> {
        if let Some(mut warm) = take(slot) {
            self.begin_call(&mut warm.0);
            return Ok(warm);
        }
        let mut store = new_store(&self.host, self.perms.clone(), self.limits);
        let instance = call_in(&mut store, self.limits, instantiate).await?;
        Ok((store, instance))
    }

    /// A kept store starts its next call: new deadline, log budget and stderr.
    fn begin_call(&self, store: &mut Store<State>) {
        store
            .data_mut()
            .begin_call(CallContext::new(self.perms.clone(), self.limits.timeout));
        store.set_epoch_deadline(1);
    }
}

type CheckResult = v0_1::check::upkeep::plugin::types::CheckResult;

fn outcome(result: Result<CheckResult, (Fault, String)>, started: Instant) -> CheckOutcome {
    let (healthy, message, fault) = match result {
        // Bounded: it goes to logs and the status file.
        Ok(r) => (r.healthy, clip(&r.message, MESSAGE_MAX), None),
        Err((fault, message)) => (false, message, Some(fault)),
    };
    CheckOutcome {
        healthy,
        message,
        fault,
        duration: started.elapsed(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn take<T>(m: &Mutex<Option<T>>) -> Option<T> {
    lock(m).take()
}

/// A store for `perms`' plugin: locked-down WASI, the memory cap, and an epoch callback that
/// yields to the host's executor at every tick and interrupts the call past its deadline.
fn new_store(host: &PluginHost, perms: Arc<Permissions>, limits: Limits) -> Store<State> {
    let state = State::new(CallContext::new(perms, limits.timeout), limits.memory);
    let mut store = Store::new(&host.inner.engine, state);
    store.limiter(|s| &mut s.limiter);
    store.epoch_deadline_callback(|ctx| {
        Ok(if ctx.data().call.expired() {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });
    store.set_epoch_deadline(1);
    store
}

/// Runs `call` on `store` under the wall-clock limit (deadline plus [`HOST_GRACE`], for calls
/// stuck in the host, where epochs do not reach) and turns a failure into a fault and a message.
async fn call_in<R>(
    store: &mut Store<State>,
    limits: Limits,
    call: impl AsyncFnOnce(&mut Store<State>) -> wasmtime::Result<R>,
) -> Result<R, (Fault, String)> {
    let wall = limits.timeout + HOST_GRACE;
    let outcome = tokio::time::timeout(wall, call(&mut *store)).await;
    let state = store.data();
    if state.call.log_dropped() > 0 {
        tracing::warn!(
            target: "upkeep::plugin",
            plugin = state.call.plugin(),
            dropped = state.call.log_dropped(),
            "log output over the per-call cap was dropped"
        );
    }
    match outcome {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(describe_failure(&e, state, limits)),
        Err(_elapsed) => Err((
            Fault::Timeout,
            format!(
                "timed out after {} (blocked in a host call)",
                ms(limits.timeout)
            ),
        )),
    }
}

/// Runs the future `make` makes to completion on the calling thread with the plugin host's runtime (its timers and
/// sockets). `block_on` panics on a thread that is driving a runtime (async code); a
/// blocking-pool thread would do, but the two cannot be told apart, so with any runtime around
/// it runs on a thread of its own. A panic in the host comes back as its message, so that
/// nothing a plugin does unwinds into the daemon.
fn block_on_host<T: Send, F: Future<Output = T>>(
    host: &PluginHost,
    make: impl FnOnce() -> F + Send,
) -> Result<T, String> {
    let execute = move || {
        std::panic::catch_unwind(AssertUnwindSafe(|| host.inner.runtime().block_on(make())))
    };
    let outcome = match tokio::runtime::Handle::try_current() {
        Err(_) => execute(),
        Ok(_) => std::thread::scope(|s| match s.spawn(execute).join() {
            Ok(outcome) => outcome,
            Err(panic) => Err(panic),
        }),
    };
    outcome.map_err(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!("panic in the WebAssembly host: {what}");
        format!("internal error in the plugin host: {what}")
    })
}

/// One call in a store of its own (metadata at load).
fn run<R: Send>(
    host: &PluginHost,
    perms: Arc<Permissions>,
    limits: Limits,
    call: impl AsyncFnOnce(&mut Store<State>) -> wasmtime::Result<R> + Send,
) -> Result<R, (Fault, String)> {
    let mut store = new_store(host, perms, limits);
    let _busy = Busy::new(&host.inner);
    block_on_host(host, || call_in(&mut store, limits, call))
        .unwrap_or_else(|panic| Err((Fault::Host, panic)))
}

/// A failed call as a fault and a message an operator can act on.
fn describe_failure(e: &wasmtime::Error, state: &State, limits: Limits) -> (Fault, String) {
    let stderr = stderr_summary(&state.stderr.text());
    let with_stderr = |m: String| {
        if stderr.is_empty() {
            m
        } else {
            format!("{m}: {stderr}")
        }
    };
    if state.limiter.refused {
        let mib = limits.memory as f64 / (1024.0 * 1024.0);
        return (
            Fault::MemoryLimit,
            with_stderr(format!("exceeded its memory limit of {mib} MiB")),
        );
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return match trap {
            Trap::Interrupt => (
                Fault::Timeout,
                format!("timed out after {}", ms(limits.timeout)),
            ),
            Trap::StackOverflow => (Fault::StackOverflow, "exhausted its call stack".to_string()),
            _ => (Fault::Trap, with_stderr(format!("trapped: {trap}"))),
        };
    }
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return (Fault::Trap, with_stderr(format!("called exit({})", exit.0)));
    }
    (Fault::Trap, with_stderr(format!("{e:#}")))
}

/// The guest's stderr on one line, without Rust's backtrace hint: usually a panic message.
fn stderr_summary(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    let mut s = lines.join(" / ");
    if s.len() > 512 {
        let mut cut = s.len() - 512;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        s = format!("...{}", &s[cut..]);
    }
    s
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// A compiled, linked component and its metadata, before grants are checked.
struct Linked {
    sha256: String,
    metadata: Metadata,
    check: Option<CheckPluginPre<State>>,
    notify: Option<NotifyPluginPre<State>>,
}

impl Linked {
    fn new(
        host: &PluginHost,
        path: &Path,
        limits: Limits,
        pin: Option<&str>,
    ) -> Result<Self, PluginError> {
        let inner = &host.inner;
        let bytes = std::fs::read(path).map_err(|source| PluginError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let sha256 = sha256_hex(&bytes);
        if let Some(want) = pin.filter(|w| !w.eq_ignore_ascii_case(&sha256)) {
            return Err(PluginError::DigestMismatch {
                path: path.to_path_buf(),
                want: want.to_ascii_lowercase(),
                found: sha256,
            });
        }
        let invalid = |reason: String| PluginError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let incompatible = |reason: String| PluginError::Incompatible {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.starts_with(b"\0asm\x01\0\0\0") {
            return Err(invalid(
                "this is a core WebAssembly module, not a component: build it for \
                 wasm32-wasip2, or wrap it with `wasm-tools component new`"
                    .into(),
            ));
        }
        let component = match &inner.code_cache {
            Some(cache) => cache.component(&inner.engine, &bytes),
            None => Component::new(&inner.engine, &bytes).map_err(|e| format!("{e:#}")),
        }
        .map_err(invalid)?;
        let pre = inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| incompatible(format!("{e:#}")))?;

        let exports: BTreeSet<String> = component
            .component_type()
            .exports(&inner.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let check = match exports.contains("check") {
            true => {
                Some(CheckPluginPre::new(pre.clone()).map_err(|e| incompatible(format!("{e:#}")))?)
            }
            false => None,
        };
        let notify = match exports.contains("notify") {
            true => Some(NotifyPluginPre::new(pre).map_err(|e| incompatible(format!("{e:#}")))?),
            false => None,
        };

        let file_name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let perms = Arc::new(Permissions::none(file_name.clone()));
        let raw = match (&check, &notify) {
            (Some(pre), _) => run(host, perms, limits, async |store: &mut Store<State>| {
                pre.instantiate_async(&mut *store)
                    .await?
                    .call_metadata(&mut *store)
                    .await
            }),
            (None, Some(pre)) => run(host, perms, limits, async |store: &mut Store<State>| {
                pre.instantiate_async(&mut *store)
                    .await?
                    .call_metadata(&mut *store)
                    .await
            }),
            (None, None) => {
                return Err(incompatible(
                    "it exports neither `check` nor `notify`".into(),
                ));
            }
        }
        .map_err(|(fault, message)| PluginError::Call {
            plugin: file_name.clone(),
            fault,
            message: format!("metadata: {message}"),
        })?;

        let capabilities: BTreeSet<Capability> =
            raw.capabilities.into_iter().map(Capability::from).collect();
        let name = match raw.name.trim() {
            "" => file_name,
            name => clip(name, 64),
        };
        let metadata = Metadata {
            name,
            version: clip(&raw.version, 64),
            description: clip(&raw.description, 512),
            capabilities: capabilities.into_iter().collect(),
            check: check.is_some(),
            notify: notify.is_some(),
        };
        Ok(Linked {
            sha256,
            metadata,
            check,
            notify,
        })
    }
}

/// At most `max` bytes of `s`, on a character boundary.
fn clip(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Loads the plugin at `path` without grants and returns its metadata and SHA-256 (`upkeep
/// plugin inspect`). Compiles it with a short-lived engine of its own.
pub fn inspect(path: &Path) -> Result<(Metadata, String), PluginError> {
    let host = PluginHost::new()?;
    let linked = Linked::new(&host, path, Limits::default(), None)?;
    Ok((linked.metadata, linked.sha256))
}

fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Plugin>();
    is::<PluginHost>();
}
