//! Starting a node's bridge to Redis: connect (a clear error if Redis
//! cannot be reached), then the writer and reader threads.

use std::sync::Arc;

use thiserror::Error;
use torsion::BusSender;

use super::config::{ClusterConfig, ClusterConfigError, Keys};
use super::entry::unix_micros;
use super::link::{BridgeGuard, ClusterLink};
use super::reader::{newest_id, Reader};
use super::stats::ClusterStats;
use super::writer::{connect, Writer, WriterEnds};
use crate::chat::message::ChatMessage;

/// Why a node could not join its cluster.
#[derive(Debug, Error)]
pub enum ClusterError {
    /// The settings are wrong.
    #[error(transparent)]
    Config(#[from] ClusterConfigError),
    /// Redis did not answer (or refused the connection).
    #[error("cannot reach Redis at {url}: {reason}")]
    Unreachable {
        /// Where (without a password).
        url: String,
        /// Redis's client's words.
        reason: String,
    },
    /// Redis answered but is older than 6.2 (`XADD … MINID`, `SET … GET`).
    #[error("Redis at {url} is version {version}; the chat cluster needs 6.2 or later")]
    TooOld {
        /// Where.
        url: String,
        /// What it says it is.
        version: String,
    },
    /// A bridge thread could not be started.
    #[error("cannot start the cluster bridge: {0}")]
    Thread(#[from] std::io::Error),
}

/// `url` with any password replaced by `***`.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

fn version_at_least(version: &str, major: u32, minor: u32) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// A node's bridge, running: its links for the shards and its counters.
#[derive(Debug)]
pub struct Bridge {
    /// What shards hold to talk to the bridge (clone one per shard).
    pub link: ClusterLink,
    /// The node's key in Redis (`<node id>/<epoch>`).
    pub node: String,
}

impl Bridge {
    /// Connects to Redis and starts the bridge's threads; what other
    /// nodes send is delivered through `bus` from then on.
    pub fn start(
        config: ClusterConfig,
        bus: BusSender<ChatMessage>,
    ) -> Result<Bridge, ClusterError> {
        let info = config.validate()?;
        let url = redacted(&config.url);
        let unreachable = |e: redis::RedisError| ClusterError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        };
        let client = redis::Client::open(info).map_err(unreachable)?;
        let keys = Keys::new(&config.node_id, unix_micros());
        let mut writer_con = connect(&client, "w", &keys).map_err(unreachable)?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query(&mut writer_con)
            .map_err(unreachable)?;
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("unknown")
            .trim()
            .to_string();
        if !version_at_least(&version, 6, 2) {
            return Err(ClusterError::TooOld { url, version });
        }
        let mut reader_con = connect(&client, "r", &keys).map_err(unreachable)?;
        let last_id = newest_id(&mut reader_con, &keys).map_err(unreachable)?;

        let stats = Arc::new(ClusterStats::default());
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let (tx, rx) = crossbeam_channel::unbounded();
        let writer = Writer::new(
            config.clone(),
            keys.clone(),
            client.clone(),
            writer_con,
            WriterEnds {
                requests: rx,
                bus: bus.clone(),
                stats: stats.clone(),
                stop,
            },
        )
        .map_err(unreachable)?;
        let reader = Reader {
            keys: keys.clone(),
            client,
            con: Some(reader_con),
            last_id,
            bus,
            stats: stats.clone(),
            stop: stopped,
        };
        let writer = std::thread::Builder::new()
            .name("torsion-cluster-w".into())
            .spawn(move || writer.run())?;
        std::thread::Builder::new()
            .name("torsion-cluster-r".into())
            .spawn(move || reader.run())?;
        tracing::info!(node = %keys.me, redis = %url, "chat cluster: joined");
        let guard = Arc::new(BridgeGuard {
            writer: Some(writer),
        });
        Ok(Bridge {
            link: ClusterLink::new(tx, stats, guard),
            node: keys.me,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(redacted("redis://:secret@h:1/0"), "redis://***@h:1/0");
        assert_eq!(redacted("redis://h:1"), "redis://h:1");
    }

    #[test]
    fn versions_compare_by_number() {
        assert!(version_at_least("7.0.15", 6, 2));
        assert!(version_at_least("6.2.0", 6, 2));
        assert!(!version_at_least("6.0.16", 6, 2));
        assert!(!version_at_least("5.9", 6, 2));
        assert!(version_at_least("10.0", 6, 2));
    }
}
