//! `/who`: each shard builds its names once per change and shares them by
//! reference; a client's `/who` gathers every shard's (and, clustered,
//! every other node's) with a future on the client's connection task.

use bytes::{BufMut, Bytes, BytesMut};

use super::{Room, State};
use crate::chat::cluster::ClusterLink;
use crate::chat::requests::{self, PendingRequest};

impl Room {
    /// `/who`: every shard's names (and, clustered, every other node's),
    /// gathered by a future on the client's connection task.
    pub(super) fn ask_who(&self, id: u64) -> Option<PendingRequest> {
        let (room, rpc) = (self.me.upgrade()?, self.rpc.get()?.clone());
        self.start_request(id);
        // Asked now, awaited after the shards' answers.
        let others = self.cluster.get().map(ClusterLink::who);
        Some(Box::pin(async move {
            let mut parts = requests::every_shards_names(&rpc).await;
            let mut reachable = true;
            if let Some(others) = others {
                match others.await {
                    Ok(o) => {
                        parts.push(o.names);
                        reachable = o.reachable;
                    }
                    Err(_) => reachable = false,
                }
            }
            room.who_answered(id, &parts, reachable);
        }))
    }

    /// This shard's names, space-separated (built once per change).
    pub(crate) fn names(&self) -> Bytes {
        self.names_cache
            .borrow_mut()
            .get_or_insert_with(|| {
                let clients = self.clients.borrow();
                let mut out = BytesMut::new();
                for r in self.named.borrow().iter() {
                    if let Some(State::Named(n)) = clients.get(&r.id).map(|c| &c.state) {
                        if !out.is_empty() {
                            out.put_u8(b' ');
                        }
                        out.extend_from_slice(n.as_bytes());
                    }
                }
                out.freeze()
            })
            .clone()
    }

    pub(super) fn who_answered(&self, id: u64, parts: &[Bytes], reachable: bool) {
        let mut all: Vec<&[u8]> = parts
            .iter()
            .flat_map(|p| p.split(|&b| b == b' '))
            .filter(|n| !n.is_empty())
            .collect();
        all.sort_unstable();
        let list = all.join(&b' ');
        let mut text = format!("Users: {}", String::from_utf8_lossy(&list));
        if !reachable {
            text.push_str(" (other servers unreachable)");
        }
        self.reply(id, &text);
        self.end_request(id);
    }
}
