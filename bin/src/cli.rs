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
    /// The docs' chat server, sharded: names and messages across all shards.
    Chat,
}

impl ServeProtocol {
    /// The endpoint used when `--listen` is not given.
    pub fn default_listen(self) -> &'static str {
        match self {
            ServeProtocol::Echo => "tcp:7000:interface=127.0.0.1",
            ServeProtocol::Chat => "tcp:8123:interface=127.0.0.1",
        }
    }
}

/// Arguments of `torsion serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The protocol to serve.
    #[arg(value_enum)]
    pub protocol: ServeProtocol,

    /// Where to listen, in Twisted's endpoint syntax (default for echo:
    /// tcp:7000:interface=127.0.0.1, for chat: tcp:8123:interface=127.0.0.1).
    #[arg(long, value_name = "ENDPOINT")]
    pub listen: Option<String>,

    /// How echo frames messages: each received frame is sent back as one
    /// frame (raw echoes bytes as they arrive).
    #[arg(long, value_name = "FRAMING", default_value = "raw", value_parser = parse_framing)]
    pub framing: Framing,

    /// Chat: longest input line in bytes; longer ones get "Line too long."
    /// and the connection is closed.
    #[arg(long, value_name = "BYTES", default_value = "4096", value_parser = parse_size)]
    pub max_line: usize,

    /// Chat: how long a client may stay nameless before it is disconnected.
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration)]
    pub register_timeout: Duration,

    /// Outbound queue hard cap per connection (e.g. 1MiB, 65536): a client
    /// whose unread output passes it is disconnected as a slow consumer.
    /// Default: 1MiB for chat, 4MiB for echo.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_outbound: Option<usize>,

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

/// Parses byte sizes: `65536`, `64KiB`, `1MiB`, `2M`, `512k`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("invalid size \"{s}\" (expected e.g. 4096, 64KiB, 1MiB)"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => {
            return Err(format!(
                "invalid size unit in \"{s}\" (use B, KiB, MiB or GiB)"
            ))
        }
    };
    let bytes = n
        .checked_mul(mult)
        .ok_or_else(|| format!("size \"{s}\" is too large"))?;
    if bytes == 0 {
        return Err(format!("size \"{s}\" must be greater than zero"));
    }
    Ok(bytes)
}

/// Parses durations such as `5s`, `250ms`, `1m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration \"{s}\": {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units_and_reject_nonsense() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2m"), Ok(2 << 20));
        for bad in [
            "",
            "0",
            "MiB",
            "1.5MiB",
            "-3",
            "10 parsecs",
            "99999999999999999999G",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
