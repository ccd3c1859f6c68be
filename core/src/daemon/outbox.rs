//! The adverts due in one pass of the state machines, sent together: one `sendmmsg` per
//! socket rather than one `sendto` per advert. A master of many instances on a fast advert
//! interval wakes up once for all of them, and each wake-up used to cost one system call
//! (with its entry, route lookup and copy) per instance.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use crate::net::socket::{SendBatch, VrrpSocket};

/// Datagrams queued per socket, and which instance's advert each run of them belongs to.
#[derive(Default)]
pub(super) struct Outbox {
    sockets: Vec<Queue>,
    adverts: Vec<Queued>,
    /// Emptied batches kept for the next pass (their buffers stay allocated).
    spare: Vec<SendBatch>,
}

struct Queue {
    socket: Arc<VrrpSocket>,
    batch: SendBatch,
    results: Vec<io::Result<()>>,
}

/// One advert: `count` datagrams (one per destination) from `first` in socket `queue`.
struct Queued {
    instance: usize,
    priority: u8,
    periodic: bool,
    queue: usize,
    first: usize,
    count: usize,
}

/// What became of one queued advert.
pub(super) struct Sent<'a> {
    pub(super) instance: usize,
    pub(super) priority: u8,
    /// A master's own advert (not a notice to one router): its failure counts towards
    /// stepping down.
    pub(super) periodic: bool,
    batch: &'a SendBatch,
    results: &'a [io::Result<()>],
    first: usize,
}

impl Sent<'_> {
    /// Each destination with the kernel's answer.
    pub(super) fn results(&self) -> impl Iterator<Item = (IpAddr, &io::Result<()>)> {
        self.results
            .iter()
            .enumerate()
            .filter_map(|(k, r)| Some((self.batch.destination(self.first + k)?, r)))
    }
}

impl Outbox {
    pub(super) fn is_empty(&self) -> bool {
        self.adverts.is_empty()
    }

    /// The batch for `socket`, to queue an advert of `instance` in; [`Outbox::queued`] then
    /// records how many datagrams it pushed.
    pub(super) fn batch(&mut self, socket: &Arc<VrrpSocket>) -> (usize, &mut SendBatch) {
        let q = match self
            .sockets
            .iter()
            .position(|q| Arc::ptr_eq(&q.socket, socket))
        {
            Some(q) => q,
            None => {
                self.sockets.push(Queue {
                    socket: Arc::clone(socket),
                    batch: self.spare.pop().unwrap_or_default(),
                    results: Vec::new(),
                });
                self.sockets.len() - 1
            }
        };
        let batch = &mut self.sockets[q].batch;
        (q, batch)
    }

    /// Record that `instance`'s advert at `priority` (`periodic`: its own, not a notice) is the last `count` datagrams of queue
    /// `queue` (as [`Outbox::batch`] returned it).
    pub(super) fn queued(
        &mut self,
        instance: usize,
        priority: u8,
        periodic: bool,
        queue: usize,
        count: usize,
    ) {
        let len = self.sockets[queue].batch.len();
        self.adverts.push(Queued {
            instance,
            priority,
            periodic,
            queue,
            first: len - count,
            count,
        });
    }

    /// Send everything queued and hand each advert's results to `each`, in the order the
    /// adverts were queued; the outbox is empty afterwards.
    pub(super) fn flush(&mut self, mut each: impl FnMut(Sent<'_>)) {
        for q in &mut self.sockets {
            q.socket.send_batch(&q.batch, &mut q.results);
        }
        for a in self.adverts.drain(..) {
            let q = &self.sockets[a.queue];
            each(Sent {
                instance: a.instance,
                priority: a.priority,
                periodic: a.periodic,
                batch: &q.batch,
                results: q
                    .results
                    .get(a.first..a.first + a.count)
                    .unwrap_or_default(),
                first: a.first,
            });
        }
        // Drop the sockets (an interface made again has new ones), keep the buffers.
        for mut q in self.sockets.drain(..) {
            q.batch.clear();
            self.spare.push(q.batch);
        }
    }
}
