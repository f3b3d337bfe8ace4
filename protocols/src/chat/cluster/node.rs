//! Starting a chat server that is one node of a cluster.

use thiserror::Error;
use torsion::{ServerBuilder, ServerError, ServerHandle};

use super::bridge::{Bridge, ClusterError};
use super::config::ClusterConfig;
use crate::chat::room::ChatConfig;
use crate::chat::server::{chat_factory, ChatBuses};

/// Why a chat node did not start.
#[derive(Debug, Error)]
pub enum ChatNodeError {
    /// Joining the cluster failed (Redis unreachable, bad settings…).
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The server did not start.
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// Starts a chat server on `builder`'s shards as one node of the cluster
/// `cluster` describes: as [`start_chat_server`], plus the bridge to
/// Redis, whose link every shard's room gets. A Redis that cannot be
/// reached fails the start with [`ClusterError::Unreachable`] (nothing
/// listens); once started, the node rides out Redis outages.
///
/// [`start_chat_server`]: crate::chat::start_chat_server
pub fn start_chat_node(
    builder: ServerBuilder,
    config: ChatConfig,
    cluster: ClusterConfig,
) -> Result<ServerHandle, ChatNodeError> {
    let limits = builder.current_limits().with_hard_cap(config.max_outbound);
    let buses = ChatBuses::for_server(&builder)?;
    config.metrics.attach_bus(&buses.messages);
    let bridge = Bridge::start(cluster, buses.messages.sender())?;
    config
        .metrics
        .attach_cluster(bridge.link.stats().clone(), bridge.node.clone());
    let link = bridge.link;
    Ok(builder.limits(limits).serve(move |shard| {
        let factory = chat_factory(shard, &buses, config.clone())?;
        factory.room().set_cluster(link.clone());
        Ok::<_, torsion::BusError>(factory)
    })?)
}
