//! [`ChatConfig`]: the chat settings, the same on every shard, and the
//! defaults.

use std::time::Duration;

use crate::chat::metrics::ChatMetrics;

/// The default outbound hard cap for a chat client (`--max-outbound`): a
/// reader whose unread output passes it is cut as a slow consumer.
pub const DEFAULT_MAX_OUTBOUND: usize = 1 << 20;

/// Chat settings (the same on every shard). Build from `Default` and the
/// `with_*` setters (`ChatConfig::default().with_max_line(1024)`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChatConfig {
    /// Longest input line, in bytes (default 4096).
    pub max_line: usize,
    /// How long a client may stay nameless (default 30 s; zero: no limit).
    pub register_timeout: Duration,
    /// How long a congested reader may hold the room's senders back before
    /// the room stops waiting for it (default 2 s; zero: never wait).
    pub stall_timeout: Duration,
    /// Each client's outbound hard cap (`--max-outbound`, default 1 MiB):
    /// unread output past it cuts the client as a slow consumer. It also
    /// sizes the cross-shard window ([`fanout_window`]).
    pub max_outbound: usize,
    /// How long lines to one reader may wait so that the lines of several
    /// messages leave in one send (`--flush-window`; zero: each message is
    /// sent on its own). See "The flush window" in the module docs.
    pub flush_window: Duration,
    /// While a flush window is open, let the shard sleep through single
    /// wake-ups (readable sockets, other shards' lines) and handle what came
    /// together when the window closes (`--coalesce-wakeups`, default on;
    /// no effect without a window). See "Sleeping through the window" in
    /// the module docs.
    pub coalesce_wakeups: bool,
    /// Where each shard's room keeps its counters for scrapes (default: a
    /// set of its own, read only through [`Room::stats`](super::Room::stats)).
    pub metrics: ChatMetrics,
    /// The web origins (`http://chat.example:8124`) whose pages may open
    /// the WebSocket listener (`--websocket-origin`, repeatable; empty, the
    /// default: any, and requests without an `Origin`). A browser sends
    /// its page's origin; naming it keeps other sites' pages from opening
    /// the chat from a visitor's browser.
    pub websocket_origins: Vec<String>,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            max_line: 4096,
            register_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(2),
            max_outbound: DEFAULT_MAX_OUTBOUND,
            flush_window: DEFAULT_FLUSH_WINDOW,
            coalesce_wakeups: true,
            metrics: ChatMetrics::new(),
            websocket_origins: Vec::new(),
        }
    }
}

torsion::with_setters!(ChatConfig {
    with_max_line => max_line: usize,
    #[doc = "(zero: no limit)"]
    with_register_timeout => register_timeout: Duration,
    #[doc = "(zero: never wait)"]
    with_stall_timeout => stall_timeout: Duration,
    with_max_outbound => max_outbound: usize,
    #[doc = "(zero: no window)"]
    with_flush_window => flush_window: Duration,
    #[doc = "(off: the shard wakes for each input while a window is open)"]
    with_coalesce_wakeups => coalesce_wakeups: bool,
    #[doc = "(register the same set with a `torsion::metrics::Metrics` to scrape it)"]
    with_metrics => metrics: ChatMetrics,
    #[doc = "(empty: any)"]
    with_websocket_origins => websocket_origins: Vec<String>,
});

/// The longest a shard sleeps through wake-ups for one flush window (see
/// "Sleeping through the window" in the module docs): with a longer window
/// it wakes per input again for the rest of it, so a new client's greeting
/// or a `/who` answer never waits longer than this for the window.
pub const MAX_COALESCED_SLEEP: Duration = Duration::from_millis(5);

/// The default flush window (see the module docs for how it was chosen).
pub const DEFAULT_FLUSH_WINDOW: Duration = Duration::from_micros(1250);

/// Smallest cross-shard window: a few whole lines.
const MIN_WINDOW: usize = 16 * 1024;

/// Bytes of lines one shard may have sent to another and not yet had
/// acknowledged before it holds its senders: a quarter of the outbound cap,
/// shared among the other shards (at least 16 KiB).
pub fn fanout_window(max_outbound: usize, shards: usize) -> usize {
    (max_outbound / 4 / shards.saturating_sub(1).max(1)).max(MIN_WINDOW)
}
