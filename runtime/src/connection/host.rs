//! What a connection driver needs from whoever hosts it.
//!
//! A server shard ([`ShardRuntime`](crate::shard::runtime::ShardRuntime))
//! and a thread's TCP clients ([`ClientHost`]) both run connections through
//! the same driver; this is all the driver asks of them: the buffer reads
//! land in, the read-rate limit, where to count bytes, and what to do when a
//! connection ends.

use std::cell::RefCell;
use std::rc::Rc;

use crate::connection::reason::DisconnectReason;

/// Size of the per-thread buffer every read lands in before it is appended
/// to the connection's own buffer.
pub(crate) const READ_SCRATCH: usize = 64 * 1024;

/// The services a connection driver uses from its host.
pub(crate) trait ConnectionHost: 'static {
    /// The shard id, for logs.
    fn shard_id(&self) -> usize;

    /// The read-rate limit each connection gets (bytes per second).
    fn max_read_rate(&self) -> Option<u64>;

    /// The buffer every read lands in (one per thread: reads are copied out
    /// at once, so an idle connection holds no read buffer).
    fn scratch(&self) -> &RefCell<Box<[u8]>>;

    /// `n` bytes were received.
    fn bytes_in(&self, n: usize);

    /// `n` bytes were sent.
    fn bytes_out(&self, n: usize);

    /// Connection `id` ended with `reason` (before `connection_lost` runs).
    fn connection_ended(&self, id: u64, reason: &DisconnectReason);
}

/// A new read scratch buffer.
pub(crate) fn new_scratch() -> RefCell<Box<[u8]>> {
    RefCell::new(vec![0u8; READ_SCRATCH].into_boxed_slice())
}

/// The host of a thread's TCP client connections: a scratch buffer and
/// nothing else (client connections are counted in no server's stats and
/// take no part in a server's shutdown).
pub(crate) struct ClientHost {
    scratch: RefCell<Box<[u8]>>,
}

thread_local! {
    static CLIENT_HOST: RefCell<Option<Rc<ClientHost>>> = const { RefCell::new(None) };
}

impl ClientHost {
    /// This thread's client host (made on first use).
    pub(crate) fn current() -> Rc<ClientHost> {
        CLIENT_HOST.with(|slot| {
            slot.borrow_mut()
                .get_or_insert_with(|| {
                    Rc::new(ClientHost {
                        scratch: new_scratch(),
                    })
                })
                .clone()
        })
    }
}

impl ConnectionHost for ClientHost {
    fn shard_id(&self) -> usize {
        crate::shard::current().map_or(0, |s| s.id)
    }
    fn max_read_rate(&self) -> Option<u64> {
        None
    }
    fn scratch(&self) -> &RefCell<Box<[u8]>> {
        &self.scratch
    }
    fn bytes_in(&self, _n: usize) {}
    fn bytes_out(&self, _n: usize) {}
    fn connection_ended(&self, _id: u64, _reason: &DisconnectReason) {}
}
