//! A plugin that misbehaves on request, for upkeep's containment tests
//! (core/tests/wasm_plugins.rs). Never deploy it.
//!
//! Config `behaviour`:
//! - `ok`: healthy, does nothing.
//! - `loop`: spins forever.
//! - `alloc`: allocates (and touches) memory until it runs out.
//! - `recurse`: recurses without end.
//! - `panic`: panics (a trap, with a message on stderr).
//! - `unreachable`: executes `unreachable`.
//! - `log-flood`: logs a million 1 KiB lines, then reports healthy.
//! - `stdout-flood`: writes 64 MiB to stdout and stderr, then reports healthy.
//! - `sneaky-read`: calls `read-file` on `path` (default /etc/hostname) without declaring the
//!   capability; healthy if the host refused, unhealthy with the content if not.
//! - `fs`: reads `path` through WASI (std::fs); healthy if the sandbox refused.
//! - `net`: connects to `addr` (default 127.0.0.1:22) through WASI (std::net); healthy if refused.
//! - `env`: healthy if it sees no environment variables and no arguments.
//! - `sleep`: sleeps for an hour in a WASI call (blocks in the host, not in wasm code).
//!
//! As a notify hook, the transition's `instance` names the behaviour: `loop`, `panic`, or anything
//! else to log the transition and return.
//!
//! Capabilities: `log` only.

use std::hint::black_box;
use std::io::Write;
use upkeep_plugin_sdk::{
    export_plugin, host, Capability, Check, Config, HostError, Metadata, Notify, Transition,
};

struct Hostile;

impl Check for Hostile {
    fn metadata() -> Metadata {
        Metadata::new(
            "hostile",
            env!("CARGO_PKG_VERSION"),
            "misbehaves on request (test plugin, never deploy)",
            &[Capability::Log],
        )
    }

    fn check(config: &Config) -> Result<String, String> {
        let behaviour = config.get("behaviour").unwrap_or("ok");
        match behaviour {
            "ok" => Ok("fine".into()),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![0xA5; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "recurse" => Ok(format!("{}", recurse(black_box(1)))),
            "panic" => panic!("hostile plugin panics on purpose"),
            "unreachable" => core::arch::wasm32::unreachable(),
            "log-flood" => {
                let line = "x".repeat(1024);
                for _ in 0..1_000_000 {
                    host::info(&line);
                }
                Ok("logged a million lines".into())
            }
            "stdout-flood" => {
                let chunk = vec![b'y'; 64 * 1024];
                for _ in 0..1024 {
                    let _ = std::io::stdout().write_all(&chunk);
                    let _ = std::io::stderr().write_all(&chunk);
                }
                Ok("wrote 64 MiB".into())
            }
            "sneaky-read" => {
                let path = config.get("path").unwrap_or("/etc/hostname");
                match host::read_file(path) {
                    Err(HostError::NotGranted(_)) => Ok("host refused read-file".into()),
                    Err(e) => Err(format!("unexpected error: {}", e.message())),
                    Ok(content) => Err(format!("read {} bytes: {content}", content.len())),
                }
            }
            "fs" => {
                let path = config.get("path").unwrap_or("/etc/hostname");
                match std::fs::read_to_string(path) {
                    Err(e) => Ok(format!("sandbox refused: {e}")),
                    Ok(content) => Err(format!("read {} bytes through WASI", content.len())),
                }
            }
            "net" => {
                let addr = config.get("addr").unwrap_or("127.0.0.1:22");
                match std::net::TcpStream::connect(addr) {
                    Err(e) => Ok(format!("sandbox refused: {e}")),
                    Ok(_) => Err(format!("connected to {addr} through WASI")),
                }
            }
            "env" => {
                let vars = std::env::vars().count();
                let args = std::env::args().count();
                if vars == 0 && args == 0 {
                    Ok("no environment, no arguments".into())
                } else {
                    Err(format!("{vars} variables, {args} arguments"))
                }
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok("slept an hour".into())
            }
            other => Err(format!("unknown behaviour `{other}`")),
        }
    }
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let mut frame = [n; 16];
    black_box(&mut frame);
    recurse(black_box(n + 1)).wrapping_add(frame[3])
}

impl Notify for Hostile {
    fn metadata() -> Metadata {
        <Hostile as Check>::metadata()
    }

    fn notify(t: &Transition) {
        match t.instance.as_str() {
            "loop" => loop {
                black_box(t);
            },
            "panic" => panic!("hostile notify hook panics on purpose"),
            _ => host::info(&format!(
                "{}: {} -> {} (priority {})",
                t.instance, t.old_state, t.new_state, t.priority
            )),
        }
    }
}

export_plugin!(Hostile);
