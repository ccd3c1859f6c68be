//! What a plugin call runs in: the store's data, a locked-down WASI context, a bounded stderr
//! and the memory cap.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::call::CallContext;

/// How much of the guest's stderr is kept (its tail: a panic message is the last thing written).
const STDERR_TAIL: usize = 2048;

/// The data of one call's `Store`.
pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) call: CallContext,
    pub(crate) limiter: MemoryCap,
    pub(crate) stderr: Tail,
}

impl State {
    pub(crate) fn new(call: CallContext, memory: usize) -> Self {
        let stderr = Tail::new(STDERR_TAIL);
        let mut wasi = WasiCtx::builder();
        // The builder's defaults are already closed (no args, env, preopens; stdin closed;
        // stdout discarded; no address allowed): spelled out so it stays that way.
        wasi.stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .max_random_size(64 * 1024);
        if !call.may_read_clock() {
            wasi.wall_clock(FrozenClock);
        }
        State {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            call,
            limiter: MemoryCap::new(memory),
            stderr,
        }
    }
}

impl State {
    /// Starts another call on a store kept from an earlier one: a new deadline and log budget,
    /// an empty stderr, no memory refusal recorded (memory already granted stays counted).
    pub(crate) fn begin_call(&mut self, call: CallContext) {
        self.call = call;
        self.stderr.clear();
        self.limiter.refused = false;
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The wall clock of a plugin without the `clock` capability: the Unix epoch, always.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

/// Caps the total linear memory of a store (all memories together) and records a refusal, so
/// that the guest's abort that follows is reported as what it is.
pub(crate) struct MemoryCap {
    limit: usize,
    used: usize,
    pub(crate) refused: bool,
}

impl MemoryCap {
    fn new(limit: usize) -> Self {
        MemoryCap {
            limit,
            used: 0,
            refused: false,
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current);
        if self.used.saturating_add(grow) > self.limit {
            self.refused = true;
            return Ok(false);
        }
        self.used += grow;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        100
    }

    fn tables(&self) -> usize {
        100
    }

    fn memories(&self) -> usize {
        10
    }
}

/// An output stream that keeps the last `cap` bytes written to it and drops the rest. Always
/// ready, never fails: a chatty guest neither blocks nor traps.
#[derive(Clone)]
pub(crate) struct Tail {
    cap: usize,
    buf: Arc<Mutex<Vec<u8>>>,
}

impl Tail {
    fn new(cap: usize) -> Self {
        Tail {
            cap,
            buf: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = &bytes[bytes.len().saturating_sub(self.cap)..];
        buf.extend_from_slice(bytes);
        let excess = buf.len().saturating_sub(self.cap);
        buf.drain(..excess);
    }

    fn clear(&self) {
        self.buf
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// What was kept, as text, trimmed.
    pub(crate) fn text(&self) -> String {
        let buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buf).trim().to_string()
    }
}

impl IsTerminal for Tail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Tail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for Tail {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Tail {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for Tail {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
