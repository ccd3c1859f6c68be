//! Thin IO drivers around the sans-IO protocol: raw VRRP sockets, netlink (addresses, routes,
//! link state) and gratuitous ARP / unsolicited NA.

pub mod announce;
pub mod frames;
pub mod netlink;
pub mod netlink_batch;
pub mod sock_diag;
pub mod socket;
