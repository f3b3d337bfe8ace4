//! # torsion-app
//!
//! The app runner: `torsion serve` for your own protocol (twistd plugins),
//! as a library: a program that serves its own protocols depends on this,
//! not on the `torsion` command.
//!
//! An [`App`] is a protocol with a name, its own flags (a clap `Args`
//! struct) and a `start` that builds its server on a [`ServeContext`]. A
//! [`Runner`] turns a set of apps into a command — `<binary> serve <app>
//! [flags]` — and does everything else `torsion serve` does: endpoints
//! (`tcp:`, `tcp6:`, `tls:`, `udp:`), `--shards`/`--cores`, the policies
//! and flow limits, `--metrics`, logging (`--log-format`), the listening
//! line, drain on SIGINT/SIGTERM (a second signal exits at once). The
//! built-in echo, chat and http servers are apps registered the same way
//! (`bin/src/apps/`), so what the runner offers is what `torsion serve` is.
//!
//! | file | what |
//! |---|---|
//! | `lib.rs` | [`App`], [`ServeContext`] |
//! | `flags.rs` | [`ServeFlags`]: the flags every app gets |
//! | `runner.rs` | [`Runner`]: the command, parsing, the serve sequence |
//! | `args.rs` | [`args`]: placement and log-format flags, the parsers of counts, sizes, durations |
//!
//! ```no_run
//! use bytes::BytesMut;
//! use torsion::{FnFactory, Protocol, ServerHandle, Transport};
//! use torsion_app::{App, Runner, ServeContext};
//!
//! /// Greets, then answers every chunk with its length.
//! struct Count {
//!     greeting: String,
//! }
//! impl Protocol for Count {
//!     fn connection_made(&mut self, t: &Transport) {
//!         let _ = t.write(self.greeting.as_bytes());
//!     }
//!     fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
//!         let _ = t.write(format!("{}\n", data.len()).as_bytes());
//!         data.clear();
//!     }
//! }
//!
//! /// `serve count`'s own flags (shown in `serve count --help`).
//! #[derive(clap::Args)]
//! struct CountFlags {
//!     /// The line each connection is greeted with.
//!     #[arg(long, default_value = "hello")]
//!     greeting: String,
//! }
//!
//! struct CountApp;
//! impl App for CountApp {
//!     type Flags = CountFlags;
//!     fn name(&self) -> &'static str { "count" }
//!     fn about(&self) -> &'static str { "Answers each chunk with its length." }
//!     fn default_listen(&self) -> &'static str { "tcp:7700:interface=127.0.0.1" }
//!     fn start(&self, flags: CountFlags, ctx: ServeContext) -> anyhow::Result<ServerHandle> {
//!         let greeting = format!("{}\n", flags.greeting);
//!         Ok(ctx.builder.serve(move |_shard| {
//!             let greeting = greeting.clone();
//!             FnFactory(move |_peer| Some(Count { greeting: greeting.clone() }))
//!         })?)
//!     }
//! }
//!
//! fn main() {
//!     // count-server serve count --listen tcp:0 --shards 2 --metrics tcp:9100
//!     Runner::new("count-server").app(CountApp).main()
//! }
//! ```

pub mod args;
mod flags;
mod runner;

pub use flags::ServeFlags;
pub use runner::{init_logging, Runner};

use torsion::metrics::Metrics;
use torsion::{Endpoint, ServerBuilder, ServerHandle};

/// What an app gets to start its server with.
#[derive(Debug)]
pub struct ServeContext {
    /// The builder, already set up from the common flags: the endpoint,
    /// shards and cores, policies (idle timeout, connection caps, read
    /// rate), the drain timeout, and the reactor-lag probe when
    /// `--metrics` is on. Call one of its `serve*` methods.
    pub builder: ServerBuilder,
    /// The endpoint it listens on (to refuse kinds the app cannot serve).
    pub endpoint: Endpoint,
    /// `--max-outbound`, if given (each app chooses its default).
    pub max_outbound: Option<usize>,
    /// Where to register the app's own collectors when `--metrics` is on
    /// (the runner registers the server's and `defer_to_thread`'s pool
    /// itself).
    pub metrics: Option<Metrics>,
}

/// A protocol `serve` can run: `<binary> serve <name> [flags]`.
pub trait App: Send + Sync + 'static {
    /// The app's own flags, parsed by clap and shown in `--help` beside the
    /// common ones. Their names must not clash with [`ServeFlags`]'.
    type Flags: clap::Args + clap::FromArgMatches;

    /// The subcommand name.
    fn name(&self) -> &'static str;

    /// One line for `serve --help`.
    fn about(&self) -> &'static str;

    /// The endpoint used when `--listen` is not given.
    fn default_listen(&self) -> &'static str;

    /// What the `serving` log line adds about the flags (e.g.
    /// `framing=line`); nothing by default.
    fn describe(&self, _flags: &Self::Flags) -> String {
        String::new()
    }

    /// Starts the server; the runner prints the listening line, serves
    /// metrics, and drains it on a signal.
    fn start(&self, flags: Self::Flags, ctx: ServeContext) -> anyhow::Result<ServerHandle>;
}
