//! upkeep check: is something listening on a port?
//!
//! Config:
//! - `port` (required): the port, e.g. `80`.
//! - `address` (optional): the local address to look for. Absent, `0.0.0.0` or `::` mean any.
//!   A socket bound to the wildcard address of the same family (or `::`, which also takes IPv4
//!   unless IPV6_V6ONLY is set) counts as listening on every address.
//! - `protocol` (optional): `tcp` (default) or `udp`. For UDP, "listening" means bound and
//!   unconnected.
//!
//! Capabilities: `listening-sockets`, `log`.

use std::net::{IpAddr, SocketAddr};
use upkeep_plugin_sdk::{export_check, host, Capability, Check, Config, Metadata, Protocol};

struct PortListener;

impl Check for PortListener {
    fn metadata() -> Metadata {
        Metadata::new(
            "port-listener",
            env!("CARGO_PKG_VERSION"),
            "healthy while a socket listens on the configured port (TCP or UDP)",
            &[Capability::ListeningSockets, Capability::Log],
        )
    }

    fn check(config: &Config) -> Result<String, String> {
        let port: u16 = config.require("port")?;
        let address: Option<IpAddr> = config.parse("address")?;
        let (protocol, name) = match config.get("protocol").map(str::trim) {
            None | Some("tcp") => (Protocol::Tcp, "tcp"),
            Some("udp") => (Protocol::Udp, "udp"),
            Some(other) => {
                return Err(format!(
                    "config `protocol`: expected tcp or udp, got `{other}`"
                ))
            }
        };
        let sockets = host::listening_sockets(protocol)
            .map_err(|e| format!("cannot list sockets: {}", e.message()))?;
        let wanted = address.filter(|a| !a.is_unspecified());
        match sockets.iter().find(|s| covers(s, port, wanted)) {
            Some(s) => Ok(format!("{name} {s} is listening")),
            None => {
                let target = match wanted {
                    Some(a) => SocketAddr::new(a, port).to_string(),
                    None => format!("port {port}"),
                };
                host::debug(&format!("nothing listens on {name} {target}"));
                Err(format!("nothing listens on {name} {target}"))
            }
        }
    }
}

/// Whether socket `s` accepts traffic for `port` on `wanted` (any address when `None`).
fn covers(s: &SocketAddr, port: u16, wanted: Option<IpAddr>) -> bool {
    if s.port() != port {
        return false;
    }
    let Some(wanted) = wanted else { return true };
    let bound = s.ip();
    if bound == wanted {
        return true;
    }
    match (bound, wanted) {
        (IpAddr::V4(b), IpAddr::V4(_)) => b.is_unspecified(),
        // `::` is dual-stack by default: it takes IPv4 too.
        (IpAddr::V6(b), _) => b.is_unspecified(),
        (IpAddr::V4(b), IpAddr::V6(w)) => {
            b.is_unspecified() && w.to_ipv4_mapped().is_some() || w.to_ipv4_mapped() == Some(b)
        }
    }
}

export_check!(PortListener);
