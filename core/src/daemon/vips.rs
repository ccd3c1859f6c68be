//! Applies VIP and route changes through netlink on its own task, strictly in order, so that the
//! event loop never waits on the kernel and an add is never overtaken by an earlier remove.

use std::net::IpAddr;

use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::config::Route;
use crate::net::netlink::Netlink;

/// Everything an instance puts on the host while master, resolved to interface indexes.
#[derive(Debug, Clone)]
pub struct Owned {
    pub instance: String,
    pub addrs: Vec<(u32, IpAddr, u8)>,
    pub routes: Vec<(u32, Route)>,
}

pub enum Op {
    Add(std::sync::Arc<Owned>),
    Remove(std::sync::Arc<Owned>),
    /// Answered once every earlier op is done.
    Flush(oneshot::Sender<()>),
}

pub fn spawn(nl: Netlink) -> mpsc::UnboundedSender<Op> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Op>();
    tokio::spawn(async move {
        while let Some(op) = rx.recv().await {
            match op {
                Op::Add(o) => add(&nl, &o).await,
                Op::Remove(o) => remove(&nl, &o).await,
                Op::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    });
    tx
}

pub async fn add(nl: &Netlink, o: &Owned) {
    for (index, addr, len) in &o.addrs {
        if let Err(e) = nl.add_address(*index, *addr, *len).await {
            warn!(instance = %o.instance, "{e}");
        }
    }
    // Routes after addresses: a route via the VIP's subnet needs the address first.
    for (index, route) in &o.routes {
        if let Err(e) = nl.add_route(route, *index).await {
            warn!(instance = %o.instance, "{e}");
        }
    }
}

pub async fn remove(nl: &Netlink, o: &Owned) {
    for (index, route) in &o.routes {
        if let Err(e) = nl.del_route(route, *index).await {
            warn!(instance = %o.instance, "{e}");
        }
    }
    for (index, addr, len) in &o.addrs {
        if let Err(e) = nl.del_address(*index, *addr, *len).await {
            warn!(instance = %o.instance, "{e}");
        }
    }
}
