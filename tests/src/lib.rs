//! Integration-test harness for upkeep: real daemons in network namespaces, real sockets, real
//! keepalived peers. Needs root.
//!
//! ```no_run
//! use std::time::Duration;
//! use upkeep_tests::{lab_test, upkeep_config, Instance, SIGTERM};
//!
//! lab_test(2, |lab| {
//!     let web = |prio| Instance::new("web", 51, prio).interval_ms(200).vip("192.0.2.100/24");
//!     let h1 = lab.start_upkeep(1, &upkeep_config("h1", &[web(100)]))?;
//!     h1.wait_state("web", "master", Duration::from_secs(5))?;
//!     let _h2 = lab.start_upkeep(2, &upkeep_config("h2", &[web(90)]))?;
//!     lab.wait_holders("192.0.2.100", &[1], Duration::from_secs(5))?;
//!     h1.signal(SIGTERM)?;
//!     lab.wait_holders("192.0.2.100", &[2], Duration::from_secs(3))?;
//!     Ok(())
//! });
//! ```
//!
//! - [`Lab`]: the topology (bridge, hosts h1..hN at 192.0.2.i, client at 192.0.2.200), address
//!   and route queries, link up/down, pings, starting daemons, capture and injection.
//! - [`Daemon`]: a running upkeep/keepalived: signals, exit, status file, log.
//! - [`packet`]: an independent VRRP v2/v3 builder and parser (for malformed input).
//! - [`Capture`]: the VRRP packets in and out of a host's eth0 (and the gratuitous ARP it sends).
//! - [`Flood`]: a paced raw-socket flood of IPv4 packets from a namespace.
//! - [`Pinger`]: fast pings from the client, to measure the outage a failover causes.
//! - [`wait_until`] / [`wait_for`]: polling with errors that list what was seen.
//! - [`Instance`]: one VRRP instance rendered as upkeep KDL or keepalived.conf.
//! - Reloads and checks: [`Daemon::write_config`] / [`Daemon::wait_reload`] / [`Daemon::check`],
//!   [`plugin_path`], [`Lab::write_script`], [`Lab::add_veth`], [`Lab::listen_tcp`], and
//!   [`AddrMonitor`] (`ip monitor address` in a host).
//! - Faults: [`Lab::set_port_forwarding`] (a partition), [`Lab::nft_vrrp_loss`] /
//!   [`Lab::nft_vrrp_drop`] (VRRP loss), [`Lab::busy_loops`] (CPU starvation).

pub mod bird;
mod capture;
mod config;
mod daemon;
mod disrupt;
mod extras;
mod flood;
pub mod frr;
mod lab;
pub mod netns;
pub mod packet;
mod pinger;
mod wait;

pub use capture::{Capture, Captured};
pub use config::{kdl_duration, keepalived_config, port_listener_check, upkeep_config, Instance};
pub use daemon::{status_drops, Daemon, Kind};
pub use disrupt::BusyLoops;
pub use extras::{
    plugin_path, plugins_dir, replace_file, wait_monitor_listening, with_custom_section,
    AddrMonitor,
};
pub use flood::{Flood, FloodReport};
pub use lab::{
    keepalived_available, lab_test, list_netns, upkeep_bin, Lab, LabBuilder, CLIENT_IP, CLIENT_IP6,
};
pub use libc::{SIGHUP, SIGINT, SIGKILL, SIGTERM};
pub use packet::AdvertSpec;
pub use pinger::{PingReport, Pinger, Probe};
pub use wait::{
    expect_file_lines, file_lines, ms, secs, wait_for, wait_for_elapsed, wait_until, Timeline, POLL,
};
