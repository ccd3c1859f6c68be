//! upkeep: a VRRP high-availability daemon (RFC 3768 / RFC 5798), keepalived's successor.
//!
//! The protocol is the `upkeep-vrrp` crate (sans-IO: codec, receive checks, the state machine
//! and the node of many instances), the config model and its KDL reader the `upkeep-config`
//! crate, the keepalived.conf translator `upkeep-keepalived`. This crate is the daemon that
//! drives them, and the CLI (`main.rs`). It is not a library for other programs: its modules
//! are public for the binary and the integration tests.
//!
//! - [`net`]: thin drivers: raw VRRP sockets, netlink (addresses, routes, links), sock_diag,
//!   gratuitous ARP / unsolicited NA.
//! - [`checks`]: health checks (scripts, trackers, the WASM plugin host) and their rise/fall
//!   tracking.
//! - [`exec`]: running check scripts and notify commands, contained, and who may run what.
//! - [`hooks`]: notify commands and WASM hooks, in order per instance.
//! - [`host`]: what a config needs of this host (script users, script security).
//! - [`daemon`]: the event loop on tokio that owns all state and drives the node; reload,
//!   config watch, control socket, status, metrics, systemd.
//!
//! Imports run one way: `daemon` uses the others; `checks`, `hooks` and `host` use `exec`
//! (and `checks` uses `net`); `net` and `exec` use nothing else of the crate.

pub mod announce;
pub mod checks;
pub mod daemon;
pub mod exec;
pub mod hooks;
pub mod host;
pub mod net;
