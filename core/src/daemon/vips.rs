//! Applies VIP and route changes on a thread of its own, strictly in order: the event loop
//! never waits on the kernel (nor on rtnl_lock), an add is never overtaken by an earlier
//! remove, and whatever is queued when the thread wakes goes to the kernel as one netlink
//! batch (a takeover of 255 instances is one `sendmsg`).

use std::net::IpAddr;
use std::sync::mpsc;
use std::sync::Arc;

use tokio::sync::oneshot;
use tracing::warn;

use crate::config::Route;
use crate::net::netlink::Netlink;
use crate::net::netlink_batch::{BatchSocket, Change};

/// Everything an instance puts on the host while master, resolved to interface indexes.
#[derive(Debug, Clone)]
pub struct Owned {
    pub instance: String,
    pub addrs: Vec<(u32, IpAddr, u8)>,
    pub routes: Vec<(u32, Route)>,
}

impl Owned {
    /// Addresses first: a route via the VIP's subnet needs the address.
    fn adds(&self, out: &mut Vec<(Arc<str>, Change)>, who: &Arc<str>) {
        for &(index, addr, prefix_len) in &self.addrs {
            out.push((
                who.clone(),
                Change::AddAddress {
                    index,
                    addr,
                    prefix_len,
                },
            ));
        }
        for (index, route) in &self.routes {
            out.push((
                who.clone(),
                Change::AddRoute {
                    index: *index,
                    route: route.clone(),
                },
            ));
        }
    }

    /// Routes first, the reverse of [`Owned::adds`].
    fn removes(&self, out: &mut Vec<(Arc<str>, Change)>, who: &Arc<str>) {
        for (index, route) in &self.routes {
            out.push((
                who.clone(),
                Change::DelRoute {
                    index: *index,
                    route: route.clone(),
                },
            ));
        }
        for &(index, addr, prefix_len) in &self.addrs {
            out.push((
                who.clone(),
                Change::DelAddress {
                    index,
                    addr,
                    prefix_len,
                },
            ));
        }
    }
}

pub enum Op {
    Add(Arc<Owned>),
    Remove(Arc<Owned>),
    /// Answered once every earlier op is done.
    Flush(oneshot::Sender<()>),
}

pub type Sender = mpsc::Sender<Op>;

/// Starts the thread. It ends when every [`Sender`] is dropped.
pub fn spawn() -> std::io::Result<Sender> {
    let mut sock = BatchSocket::open()?;
    let (tx, rx) = mpsc::channel::<Op>();
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name("upkeep-netlink".into())
        .spawn(move || {
            let _enter = span.enter();
            let mut batch: Vec<(Arc<str>, Change)> = Vec::new();
            let mut flushes = Vec::new();
            while let Ok(first) = rx.recv() {
                // Everything queued meanwhile goes in the same batch, in order.
                for op in std::iter::once(first).chain(rx.try_iter()) {
                    match op {
                        Op::Add(o) => o.adds(&mut batch, &Arc::from(o.instance.as_str())),
                        Op::Remove(o) => o.removes(&mut batch, &Arc::from(o.instance.as_str())),
                        Op::Flush(done) => flushes.push(done),
                    }
                }
                if !batch.is_empty() {
                    let changes: Vec<Change> = batch.iter().map(|(_, c)| c.clone()).collect();
                    for (change, e) in sock.apply(&changes) {
                        let instance = batch
                            .iter()
                            .find(|(_, c)| *c == change)
                            .map(|(who, _)| who.as_ref())
                            .unwrap_or("?");
                        warn!(instance, "{change}: {e}");
                    }
                    batch.clear();
                }
                for done in flushes.drain(..) {
                    let _ = done.send(());
                }
            }
        })?;
    Ok(tx)
}

/// Removes what `o` holds, waiting for each answer (start-up clean-up, before the loop runs).
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
