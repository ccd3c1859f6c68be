//! upkeep: a VRRP high-availability daemon (RFC 3768 / RFC 5798), keepalived's successor.
//!
//! The protocol is the `upkeep-vrrp` crate (sans-IO), the config model and its KDL reader the
//! `upkeep-config` crate, the keepalived.conf translator `upkeep-keepalived`. This crate is the
//! daemon that drives them:
//!
//! - [`host`]: what a config needs of this host (script users, script security).
//! - [`checks`]: health checks (scripts) and their rise/fall tracking.
//! - [`net`]: thin drivers for raw sockets, netlink and address announcements.
//! - [`exec`]: running check scripts and notify commands, contained, and who may run what.
//! - [`daemon`]: the event loop that wires them on tokio.

pub mod checks;
pub mod daemon;
pub mod exec;
pub mod hooks;
pub mod host;
pub mod net;
