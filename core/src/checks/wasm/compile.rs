//! Compiling plugins outside the daemon, with the result kept on disk.
//!
//! Compiling a component pulls Cranelift's code into memory and leaves its working set in the
//! heap, kept for the life of the daemon (figures: docs/design.md). So the daemon has a
//! short-lived `upkeep compile-plugin` process compile it (a compiler crash or a component
//! built to exhaust the compiler stays in that process), and
//! loads the ready machine code from `STATE_DIR/plugins/`, keyed by the component's SHA-256 and
//! the engine's compatibility hash: a restart or a reload with the same file compiles nothing.
//!
//! Trust: machine code loaded this way runs unchecked, so only files this daemon's user owns,
//! in a directory only that user can write, are ever loaded; anything else is recompiled.
// unsafe here: `Component::deserialize` runs kept machine code unchecked; the trust rule above says
// which files it may load.
#![allow(unsafe_code)]

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// How long the compiler process may take before it is killed and the plugin refused.
const COMPILE_TIMEOUT: Duration = Duration::from_secs(60);

/// The engine settings every plugin is compiled and run with: the daemon's engine and the
/// compiler process must agree, or the machine code would not load.
pub(super) fn engine_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true).wasm_component_model(true);
    config
}

/// Compiles the component `bytes` to ready machine code in `output` (the `compile-plugin`
/// subcommand, which reads them from its stdin). Errors are the compiler's own words.
pub fn compile_to_file(bytes: &[u8], output: &Path) -> Result<(), String> {
    let engine = Engine::new(&engine_config()).map_err(|e| format!("{e:#}"))?;
    let code = engine
        .precompile_component(bytes)
        .map_err(|e| format!("{e:#}"))?;
    std::fs::write(output, code).map_err(|e| format!("{}: {e}", output.display()))
}

/// Ready machine code for plugins, in a directory of the daemon's own.
#[derive(Debug, Clone)]
pub struct CodeCache {
    dir: PathBuf,
    /// The program that compiles (this very binary, as `upkeep compile-plugin`).
    compiler: PathBuf,
}

impl CodeCache {
    /// A cache in `dir` (created 0700 if missing), compiling with the running executable.
    pub fn new(dir: PathBuf) -> Result<Self, String> {
        let compiler =
            std::env::current_exe().map_err(|e| format!("cannot find upkeep's own path: {e}"))?;
        Self::with_compiler(dir, compiler)
    }

    pub fn with_compiler(dir: PathBuf, compiler: PathBuf) -> Result<Self, String> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if !private(&dir) {
            return Err(format!(
                "{} is writable by others or not owned by this user: compiled plugins are not \
                 kept there",
                dir.display()
            ));
        }
        Ok(Self { dir, compiler })
    }

    /// The component `bytes`, compiled: from the cache, else by the compiler
    /// process (and then kept). `Err` carries the reason, in the compiler's words.
    pub fn component(&self, engine: &Engine, bytes: &[u8]) -> Result<Component, String> {
        let file = self.dir.join(format!("{}.cwasm", self.key(engine, bytes)));
        if let Some(component) = self.load(engine, &file) {
            return Ok(component);
        }
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(format!(".{}-{seq}.tmp", std::process::id()));
        let result = self.compile(bytes, &tmp).and_then(|()| {
            std::fs::rename(&tmp, &file).map_err(|e| format!("{}: {e}", file.display()))
        });
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        self.load(engine, &file)
            .ok_or_else(|| format!("the compiled plugin {} did not load", file.display()))
    }

    /// SHA-256 of the component and a hash of everything the machine code depends on (the
    /// wasmtime version and settings, the CPU features), so stale code is never picked up.
    fn key(&self, engine: &Engine, bytes: &[u8]) -> String {
        let mut compat = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut compat);
        env!("CARGO_PKG_VERSION").hash(&mut compat);
        format!("{}-{:016x}", sha256_hex(bytes), compat.finish())
    }

    fn load(&self, engine: &Engine, file: &Path) -> Option<Component> {
        if !private(file) {
            return None;
        }
        // Read, not mapped: a file changed under a mapping would kill the daemon with SIGBUS.
        let code = std::fs::read(file).ok()?;
        // SAFETY: the file was written by our compiler process into a directory only this user
        // can write (checked above, and for the directory in `with_compiler`); wasmtime checks
        // its header and compatibility hash too.
        match unsafe { Component::deserialize(engine, &code) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(file = %file.display(), "compiled plugin not usable, compiling again: {e:#}");
                let _ = std::fs::remove_file(file);
                None
            }
        }
    }

    /// Runs `upkeep compile-plugin OUT` with the component on its stdin (the very bytes that
    /// were hashed, whatever happens to the file meanwhile), killed after [`COMPILE_TIMEOUT`].
    fn compile(&self, bytes: &[u8], output: &Path) -> Result<(), String> {
        let mut child = Command::new(&self.compiler)
            .arg("compile-plugin")
            .arg(output)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start the plugin compiler {}: {e}",
                    self.compiler.display()
                )
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A compiler that stops reading early fails below with its own message.
            let _ = stdin.write_all(bytes);
        }
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() > COMPILE_TIMEOUT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "compiling took longer than {} s; stopped",
                        COMPILE_TIMEOUT.as_secs()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(format!("waiting for the plugin compiler: {e}")),
            }
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        if status.success() {
            return Ok(());
        }
        let said = stderr.trim();
        Err(match (said.is_empty(), status.code()) {
            (false, _) => said.to_string(),
            (true, Some(code)) => format!("the plugin compiler exited with status {code}"),
            (true, None) => "the plugin compiler was killed by a signal".to_string(),
        })
    }
}

/// Owned by this user and writable by nobody else.
fn private(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| {
        m.uid() == crate::exec::security::effective_uid() && m.permissions().mode() & 0o022 == 0
    })
}

/// The SHA-256 of `bytes`, lower-case hex: the code cache's key and what a config's `sha256`
/// pins.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_content_and_are_stable() {
        let dir = std::env::temp_dir().join(format!("upkeep-codecache-{}", std::process::id()));
        let cache = CodeCache::with_compiler(dir.clone(), "/bin/false".into()).unwrap();
        let engine = Engine::new(&engine_config()).unwrap();
        assert_eq!(cache.key(&engine, b"a"), cache.key(&engine, b"a"));
        assert_ne!(cache.key(&engine, b"a"), cache.key(&engine, b"b"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let dir =
            std::env::temp_dir().join(format!("upkeep-codecache-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = CodeCache::with_compiler(dir.clone(), "/bin/false".into()).unwrap_err();
        assert!(err.contains("writable by others"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failing_compiler_is_reported() {
        let dir =
            std::env::temp_dir().join(format!("upkeep-codecache-fail-{}", std::process::id()));
        let cache = CodeCache::with_compiler(dir.clone(), "/bin/false".into()).unwrap();
        let engine = Engine::new(&engine_config()).unwrap();
        let err = cache.component(&engine, b"x").unwrap_err();
        assert!(err.contains("exited with status 1"), "{err}");
        // Nothing half-written is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
