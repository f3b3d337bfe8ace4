//! Per-shard runtime state: the connection registry and shutdown sequencing.
//!
//! Owned by one shard thread (`Rc`, `Cell`, `RefCell`: never shared, never
//! locked). The registry maps connection ids to their transports so that a
//! shutdown can notify every live connection and, at the drain deadline,
//! abort the stragglers.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::connection::host::{new_scratch, ConnectionHost};
use crate::connection::policy::{Admission, AdmissionPermit, Policies};
use crate::connection::reason::DisconnectReason;
use crate::connection::transport::{FlowLimits, Transport};
use crate::server::stats::ShardStats;
use crate::shard::local_event::LocalEvent;
use crate::shard::ShardInfo;

/// One server shard's state: what it is, its stats, limits and policies,
/// and its live connections (each listener keeps its own TLS set-up).
pub(crate) struct ShardRuntime {
    info: ShardInfo,
    stats: Arc<ShardStats>,
    limits: FlowLimits,
    policies: Policies,
    admission: Rc<Admission>,
    /// The buffer every read of this shard's connections lands in.
    scratch: RefCell<Box<[u8]>>,
    /// Live connections, each with its admission permit (dropping it frees
    /// the connection's place under the caps).
    connections: RefCell<HashMap<u64, (Transport, AdmissionPermit)>>,
    next_id: Cell<u64>,
    shutting_down: Cell<bool>,
    /// Set when the shard stops accepting (shutdown began).
    stop_accepting: LocalEvent,
    all_closed: LocalEvent,
}

impl std::fmt::Debug for ShardRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardRuntime")
            .field("shard", &self.info.id)
            .finish()
    }
}

impl ShardRuntime {
    pub(crate) fn new(
        info: ShardInfo,
        stats: Arc<ShardStats>,
        limits: FlowLimits,
        policies: Policies,
    ) -> ShardRuntime {
        ShardRuntime {
            info,
            stats,
            limits,
            admission: Rc::new(Admission::new(&policies, info.count, info.id)),
            policies,
            scratch: new_scratch(),
            connections: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
            shutting_down: Cell::new(false),
            stop_accepting: LocalEvent::default(),
            all_closed: LocalEvent::default(),
        }
    }

    /// Which shard this is.
    pub(crate) fn info(&self) -> ShardInfo {
        self.info
    }

    /// The shard's counters.
    pub(crate) fn stats(&self) -> &ShardStats {
        &self.stats
    }

    /// The flow limits every connection gets.
    pub(crate) fn limits(&self) -> FlowLimits {
        self.limits
    }

    /// The connection policies (idle timeout, caps, read rate).
    pub(crate) fn policies(&self) -> &Policies {
        &self.policies
    }

    /// Admission control: the connection caps.
    pub(crate) fn admission(&self) -> &Rc<Admission> {
        &self.admission
    }

    /// Resolves once the shard stops accepting.
    pub(crate) async fn stopped_accepting(&self) {
        self.stop_accepting.wait().await
    }

    /// Registers a new connection and the permit it was admitted with;
    /// returns its id.
    pub(crate) fn add_connection(&self, transport: Transport, permit: AdmissionPermit) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        if self.shutting_down.get() {
            transport.core.request_shutdown();
        }
        self.connections
            .borrow_mut()
            .insert(id, (transport, permit));
        self.stats.connection_opened();
        id
    }

    /// Forgets a connection that has ended (its permit frees its place).
    pub(crate) fn remove_connection(&self, id: u64) {
        let (gone, empty) = {
            let mut conns = self.connections.borrow_mut();
            let gone = conns.remove(&id);
            (gone, conns.is_empty())
        };
        drop(gone);
        if empty && self.shutting_down.get() {
            self.all_closed.set();
        }
    }

    /// Live connections on this shard.
    pub(crate) fn connection_count(&self) -> usize {
        self.connections.borrow().len()
    }

    /// The live connections' transports (a copy: callers act on them
    /// without holding the registry borrowed).
    fn transports(&self) -> Vec<Transport> {
        self.connections
            .borrow()
            .values()
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Stops accepting and tells every connection the server is stopping.
    pub(crate) fn begin_shutdown(&self) {
        if self.shutting_down.replace(true) {
            return;
        }
        self.stop_accepting.set();
        let transports = self.transports();
        for t in &transports {
            t.core.request_shutdown();
        }
        if transports.is_empty() {
            self.all_closed.set();
        }
    }

    /// Aborts every remaining connection with `reason`.
    pub(crate) fn abort_all(&self, reason: DisconnectReason) {
        for t in self.transports() {
            t.abort_with(reason.clone());
        }
    }

    /// Resolves once shutdown began and no connection is left.
    pub(crate) async fn all_closed(&self) {
        self.all_closed.wait().await
    }
}

/// Server connections count their bytes and endings in the shard's stats
/// and leave its registry when they end.
impl ConnectionHost for ShardRuntime {
    fn shard_id(&self) -> usize {
        self.info.id
    }
    fn max_read_rate(&self) -> Option<u64> {
        self.policies.max_read_rate
    }
    fn scratch(&self) -> &RefCell<Box<[u8]>> {
        &self.scratch
    }
    fn bytes_in(&self, n: usize) {
        self.stats.add_bytes_in(n);
    }
    fn bytes_out(&self, n: usize) {
        self.stats.add_bytes_out(n);
    }
    fn connection_ended(&self, id: u64, reason: &DisconnectReason) {
        self.stats.connection_closed(reason);
        self.remove_connection(id);
    }
}
