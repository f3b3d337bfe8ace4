//! Command-line definitions (clap).

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use torsion_protocols::Framing;

/// torsion: Twisted's protocol/factory/transport model as a thread-per-core
/// sharded server runtime.
#[derive(Debug, Parser)]
#[command(name = "torsion", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a sharded server until SIGINT/SIGTERM.
    Serve(ServeArgs),
}

/// Which protocol `serve` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServeProtocol {
    /// Twisted's Echo: writes back what it receives.
    Echo,
}

impl ServeProtocol {
    /// The endpoint used when `--listen` is not given.
    pub fn default_listen(self) -> &'static str {
        match self {
            ServeProtocol::Echo => "tcp:7000:interface=127.0.0.1",
        }
    }
}

/// Arguments of `torsion serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The protocol to serve.
    #[arg(value_enum)]
    pub protocol: ServeProtocol,

    /// Where to listen, in Twisted's endpoint syntax
    /// (default for echo: tcp:7000:interface=127.0.0.1).
    #[arg(long, value_name = "ENDPOINT")]
    pub listen: Option<String>,

    /// How echo frames messages: each received frame is sent back as one
    /// frame (raw echoes bytes as they arrive).
    #[arg(long, value_name = "FRAMING", default_value = "raw", value_parser = parse_framing)]
    pub framing: Framing,

    #[command(flatten)]
    pub placement: PlacementArgs,

    /// How long shutdown waits for connections to flush and close before
    /// aborting them (e.g. 5s, 500ms).
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
}

/// Shard placement flags shared by every command that runs shards.
#[derive(Debug, Args, Clone)]
pub struct PlacementArgs {
    /// Number of shards (default: one per CPU in the process's affinity mask).
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,

    /// Cores to run shards on, one shard each (e.g. 0,2,3 or 0-3).
    #[arg(long, value_name = "LIST")]
    pub cores: Option<String>,
}

/// Parses a framing name (raw, line, netstring, int8, int16, int32).
pub fn parse_framing(s: &str) -> Result<Framing, String> {
    s.parse()
        .map_err(|e: torsion_protocols::framing::UnknownFraming| e.to_string())
}

/// Parses durations such as `5s`, `250ms`, `1m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration \"{s}\": {e}"))
}
