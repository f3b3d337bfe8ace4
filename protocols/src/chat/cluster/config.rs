//! [`ClusterConfig`]: where Redis is, who this node is, and the bounds
//! (lease, outage) the bridge keeps.

use std::time::Duration;

use thiserror::Error;

/// The default name lease: a node killed without warning frees its names
/// within this.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// The default outage bound: lines a node could not send for this long
/// are dropped (counted and logged), and the stream keeps entries twice as
/// long, so a node whose reader was away for up to this long misses
/// nothing.
pub const DEFAULT_OUTAGE: Duration = Duration::from_secs(30);

/// The prefix of every Redis key the chat cluster uses.
pub const KEY_PREFIX: &str = "torsion:chat:";

/// How a chat node joins its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// `redis://HOST:PORT[/DB]` (a password as `redis://:PASSWORD@HOST`).
    pub url: String,
    /// This node's name in logs and in Redis (default: host name and pid).
    pub node_id: String,
    /// How long the node's names outlive it if it dies (renewed every
    /// quarter of it while the node runs).
    pub lease: Duration,
    /// How long an outage the node rides out without losing lines.
    pub outage: Duration,
}

/// A `--cluster` setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClusterConfigError {
    /// Not a `redis://` URL Redis's client understands.
    #[error("bad cluster URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// An empty node id, or one with whitespace or `/`.
    #[error("bad node id {0:?}: use 1-64 characters without whitespace or '/'")]
    BadNodeId(String),
    /// A lease under one second, or an outage bound of zero.
    #[error("{0}")]
    BadBound(&'static str),
}

/// The host name and process id, e.g. `web-3-41872`.
pub fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string());
    format!("{host}-{}", std::process::id())
}

impl ClusterConfig {
    /// A node of the cluster at `url`, with the default node id, lease
    /// and outage bound.
    pub fn new(url: impl Into<String>) -> ClusterConfig {
        ClusterConfig {
            url: url.into(),
            node_id: default_node_id(),
            lease: DEFAULT_LEASE,
            outage: DEFAULT_OUTAGE,
        }
    }

    /// Checks the settings; the URL is parsed, not yet connected to.
    pub fn validate(&self) -> Result<redis::ConnectionInfo, ClusterConfigError> {
        let bad = |reason: String| ClusterConfigError::BadUrl {
            url: self.url.clone(),
            reason,
        };
        if !self.url.starts_with("redis://") {
            return Err(bad("only redis:// URLs are supported".into()));
        }
        let info = redis::IntoConnectionInfo::into_connection_info(self.url.as_str())
            .map_err(|e| bad(e.to_string()))?;
        let id = &self.node_id;
        if id.is_empty() || id.len() > 64 || id.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(ClusterConfigError::BadNodeId(id.clone()));
        }
        if self.lease < Duration::from_secs(1) {
            return Err(ClusterConfigError::BadBound(
                "the name lease must be at least 1s",
            ));
        }
        if self.outage.is_zero() {
            return Err(ClusterConfigError::BadBound(
                "the outage bound must be more than 0",
            ));
        }
        Ok(info)
    }

    /// How long the stream keeps entries: twice the outage bound, at least
    /// a minute.
    pub fn retention(&self) -> Duration {
        (self.outage * 2).max(Duration::from_secs(60))
    }
}

torsion::with_setters!(ClusterConfig {
    with_node_id => node_id: String,
    with_lease => lease: Duration,
    with_outage => outage: Duration,
});

/// The Redis keys of one node of the cluster.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    /// The stream of every node's lines.
    pub stream: String,
    /// The hash name → holder.
    pub names: String,
    /// Prefix of node liveness keys.
    pub node_prefix: String,
    /// This node: `<node id>/<epoch>` (the epoch tells restarts apart).
    pub me: String,
    /// This node's liveness key.
    pub alive: String,
}

impl Keys {
    pub fn new(node_id: &str, epoch: u64) -> Keys {
        let me = format!("{node_id}/{epoch}");
        let node_prefix = format!("{KEY_PREFIX}node:");
        Keys {
            stream: format!("{KEY_PREFIX}lines"),
            names: format!("{KEY_PREFIX}names"),
            alive: format!("{node_prefix}{me}"),
            node_prefix,
            me,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_errors_that_say_what_is_wrong() {
        let ok = ClusterConfig::new("redis://127.0.0.1:6379/2");
        assert!(ok.validate().is_ok());
        for url in [
            "http://x",
            "redis://",
            "redis://host:notaport",
            "rediss://host",
        ] {
            let e = ClusterConfig::new(url).validate().unwrap_err();
            assert!(matches!(e, ClusterConfigError::BadUrl { .. }), "{url}: {e}");
        }
        for id in ["", "a b", "a/b", &"x".repeat(65)] {
            let e = ok
                .clone()
                .with_node_id(id.to_string())
                .validate()
                .unwrap_err();
            assert_eq!(e, ClusterConfigError::BadNodeId(id.to_string()));
        }
        assert!(ok
            .clone()
            .with_lease(Duration::from_millis(10))
            .validate()
            .is_err());
        assert!(ok.clone().with_outage(Duration::ZERO).validate().is_err());
        assert!(default_node_id().ends_with(&format!("-{}", std::process::id())));
        assert_eq!(ok.retention(), Duration::from_secs(60));
    }
}
