//! upkeep: a VRRP high-availability daemon (RFC 3768 / RFC 5798), keepalived's successor.
//!
//! - [`vrrp`]: the protocol, sans-IO (codec, receive checks, state machine).
//! - [`config`]: the KDL config model and parser, and the keepalived importer.
//! - [`checks`]: health checks (scripts) and their rise/fall tracking.
//! - [`net`]: thin drivers for raw sockets, netlink and address announcements.
//! - [`process`]: running check scripts and notify commands, contained.
//! - [`daemon`]: the event loop that wires them on tokio.

pub mod checks;
pub mod config;
pub mod daemon;
pub mod hooks;
pub mod metrics;
pub mod net;
pub mod process;
pub mod vrrp;
