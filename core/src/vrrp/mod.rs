//! The VRRP protocol, sans-IO: packet codec, receive checks and the per-router state machine.
//! Nothing in here opens a socket or reads a clock; `net` and `daemon` drive it.

pub mod fsm;
pub mod packet;
pub mod receive;
#[cfg(test)]
pub mod sim;
