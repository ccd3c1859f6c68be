//! The VRRP protocol (RFC 3768 v2, RFC 5798 v3), sans-IO: packet codec, receive checks, the
//! per-router state machine, the rules between a host's routers and their checks (`node`:
//! weights, faults, sync groups), and the bytes of the frames that announce a router's
//! addresses.
//!
//! Nothing in here opens a socket or reads a clock: the caller passes `now` and performs the
//! returned actions. The crate's dependencies keep that true (no runtime, socket or netlink crate),
//! as quinn-proto keeps QUIC apart from its IO. The daemon (`upkeep`) drives it.

pub mod frames;
pub mod fsm;
pub mod node;
pub mod packet;
pub mod receive;
#[cfg(test)]
mod sim;
