//! Virtual-MAC interfaces (keepalived's `use_vmac`): a macvlan on the instance's interface whose
//! MAC is the RFC's virtual router MAC. The VIPs go on it while master, so clients and switches
//! keep one MAC for the VIP whichever host holds it.
//!
//! The macvlan is up on every host, master or not; a backup never speaks from it: it has no
//! IPv4 address until master, and no IPv6 link-local (address generation off), so it sends
//! no ARP, neighbour discovery or router solicitation with the virtual MAC. The base interface
//! answers ARP only for its own addresses (`arp_ignore` 1, `arp_filter` 1, as keepalived sets
//! them), or it would answer for the VIP with its own MAC, and asks with its own address
//! (`arp_announce` 2), or clients would learn its MAC for the VIP from its requests. These
//! are left set when the daemon stops.

use std::path::PathBuf;

use netlink_packet_route::link::MacVlanMode;
use rtnetlink::LinkMacVlan;

use super::netlink::{Link, Netlink, NetlinkError};

/// What went wrong making a virtual-MAC interface.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VmacError {
    /// A netlink request failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// An interface of the name exists and is not this instance's macvlan.
    #[error(
        "interface `{name}` exists with MAC {found}, not the virtual MAC {want}: \
         remove it or name another in `use-vmac`"
    )]
    Taken {
        /// The interface's name.
        name: String,
        /// Its MAC.
        found: String,
        /// The virtual router MAC it should have.
        want: String,
    },
    /// A sysctl of the interface could not be written.
    #[error("cannot write {path}: {source}")]
    Sysctl {
        /// The file under /proc/sys.
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Makes the macvlan `name` on interface `base` with `mac` (private mode, as keepalived's
/// default), or takes the one already there with that MAC (a restart finds its own), and
/// brings it up with no IPv6 link-local; `v6` keeps IPv6 on it for IPv6 VIPs. Returns it as
/// it is then (`created`: whether this call made it).
pub async fn ensure(
    nl: &Netlink,
    name: &str,
    base: &Link,
    mac: [u8; 6],
    v6: bool,
) -> Result<(Link, bool), VmacError> {
    let created = match nl.link(name).await {
        Ok(l) if l.mac == mac => false,
        Ok(l) => {
            return Err(VmacError::Taken {
                name: name.to_string(),
                found: mac_string(&l.mac),
                want: mac_string(&mac),
            })
        }
        Err(NetlinkError::NoSuchInterface(_)) => {
            let msg = LinkMacVlan::new(name, base.index, MacVlanMode::Private)
                .address(mac.to_vec())
                .build();
            nl.add_link(msg, &format!("creating macvlan {name} on {}", base.name))
                .await?;
            true
        }
        Err(e) => return Err(e.into()),
    };
    // Before it is up, so no link-local is ever made (address generation happens at up).
    let ipv6 = format!("/proc/sys/net/ipv6/conf/{name}");
    if v6 {
        sysctl(&format!("{ipv6}/addr_gen_mode"), "1")?;
        // A VIP needs no duplicate address detection against the other hosts' macvlans.
        sysctl(&format!("{ipv6}/accept_dad"), "0")?;
    } else if std::path::Path::new(&ipv6).exists() {
        sysctl(&format!("{ipv6}/disable_ipv6"), "1")?;
    }
    let base_v4 = format!("/proc/sys/net/ipv4/conf/{}", base.name);
    sysctl(&format!("{base_v4}/arp_ignore"), "1")?;
    sysctl(&format!("{base_v4}/arp_filter"), "1")?;
    // Its own ARP requests (for a client it answers through the VIP) say its own address,
    // not the VIP: a client updates its entry for the sender's IP from any request it hears.
    sysctl(&format!("{base_v4}/arp_announce"), "2")?;
    let link = nl.link(name).await?;
    nl.set_up(link.index, &format!("bringing up {name}"))
        .await?;
    Ok((nl.link(name).await?, created))
}

fn sysctl(path: &str, value: &str) -> Result<(), VmacError> {
    std::fs::write(path, value).map_err(|source| VmacError::Sysctl {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_written_as_ip_link_does() {
        assert_eq!(
            mac_string(&upkeep_config::Vmac::mac(51, false)),
            "00:00:5e:00:01:33"
        );
        assert_eq!(
            mac_string(&upkeep_config::Vmac::mac(255, true)),
            "00:00:5e:00:02:ff"
        );
    }
}
