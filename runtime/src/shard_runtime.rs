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

use crate::local_event::LocalEvent;
use crate::policy::{Admission, AdmissionPermit, Policies};
use crate::reason::DisconnectReason;
use crate::shard::ShardInfo;
use crate::stats::ShardStats;
use crate::tls::ShardTls;
use crate::transport::{FlowLimits, Transport};

/// Size of the per-shard buffer every read lands in before it is appended
/// to the connection's own buffer.
pub(crate) const READ_SCRATCH: usize = 64 * 1024;

pub(crate) struct ShardRuntime {
    pub(crate) info: ShardInfo,
    pub(crate) stats: Arc<ShardStats>,
    pub(crate) limits: FlowLimits,
    pub(crate) policies: Policies,
    pub(crate) admission: Rc<Admission>,
    pub(crate) tls: Option<ShardTls>,
    pub(crate) scratch: RefCell<Box<[u8]>>,
    /// Live connections, each with its admission permit (none for client
    /// connections, which no cap counts).
    connections: RefCell<HashMap<u64, (Transport, Option<AdmissionPermit>)>>,
    next_id: Cell<u64>,
    shutting_down: Cell<bool>,
    pub(crate) stop_accepting: LocalEvent,
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
        tls: Option<ShardTls>,
    ) -> ShardRuntime {
        ShardRuntime {
            info,
            stats,
            limits,
            tls,
            admission: Rc::new(Admission::new(&policies, info.count, info.id)),
            policies,
            scratch: RefCell::new(vec![0u8; READ_SCRATCH].into_boxed_slice()),
            connections: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
            shutting_down: Cell::new(false),
            stop_accepting: LocalEvent::default(),
            all_closed: LocalEvent::default(),
        }
    }

    /// Registers a new connection and the permit it was admitted with;
    /// returns its id.
    pub(crate) fn add_connection(
        &self,
        transport: Transport,
        permit: Option<AdmissionPermit>,
    ) -> u64 {
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
