//! Thin IO drivers around the sans-IO protocol: raw VRRP sockets, netlink (addresses, routes,
//! link state), gratuitous ARP / unsolicited NA, and the nftables drop set for VIPs.

pub mod announce;
pub mod filter;
pub mod firewall;
pub mod netlink;
pub mod netlink_batch;
pub mod proc_events;
pub mod sock_diag;
pub mod socket;
pub mod vmac;

use rtnetlink::packet_core::{NetlinkDeserializable, NetlinkMessage};

/// The netlink messages one `recv` returned, in order; ends at the first that does not parse.
pub(crate) fn netlink_messages<I: NetlinkDeserializable>(
    buf: &[u8],
) -> impl Iterator<Item = NetlinkMessage<I>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let msg = NetlinkMessage::<I>::deserialize(buf.get(at..)?).ok()?;
        let len = msg.header.length as usize;
        // A zero length would never advance: treat it as the end.
        at = if len == 0 {
            buf.len()
        } else {
            at + ((len + 3) & !3)
        };
        Some(msg)
    })
}
