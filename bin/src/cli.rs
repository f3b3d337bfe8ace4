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

    /// How log lines (stderr) look: text (coloured only on a terminal) or
    /// json (one object per line, for log shippers).
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; ANSI colours only when stderr is a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands other than `serve` (which the app runner adds: see
/// [`crate::apps::builtin_runner`]).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load-test a server and report latency: closed loop at the highest
    /// rate it sustains (--rate max, the default) or open loop at a fixed
    /// rate, with latency corrected for coordinated omission.
    Load(LoadArgs),
    /// Start servers and load them in one process on disjoint cores, and
    /// print the latency report.
    Bench(BenchArgs),
    /// Write a self-signed certificate and key for tls: endpoints (a leaf
    /// certificate, which TLS accepts as a server's; for tests and load
    /// runs).
    Cert(CertArgs),
}

/// `torsion cert`.
#[derive(Debug, Args)]
pub struct CertArgs {
    /// A DNS name or IP address the certificate is valid for (repeat for
    /// more; default: localhost and 127.0.0.1).
    #[arg(long = "name", value_name = "NAME")]
    pub names: Vec<String>,

    /// The directory to write cert.pem and key.pem into (created if
    /// missing).
    #[arg(long, value_name = "DIR")]
    pub out: std::path::PathBuf,

    /// How long the certificate is valid (from now).
    #[arg(long, value_name = "DUR", default_value = "365d", value_parser = parse_duration)]
    pub valid_for: Duration,

    /// Replace cert.pem and key.pem if they exist.
    #[arg(long)]
    pub force: bool,
}

/// `torsion load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// What to load.
    #[command(subcommand)]
    pub kind: LoadKind,
}

/// Kinds of load.
#[derive(Debug, Subcommand)]
pub enum LoadKind {
    /// Echo requests, every response checked byte for byte.
    Echo(LoadEchoArgs),
    /// Chat fan-out: named clients, some sending at a fixed total rate.
    Chat(LoadChatArgs),
    /// HTTP/1.1 GETs of one URL, every response parsed and checked (status
    /// 2xx, length).
    Http(LoadHttpArgs),
}

/// Settings every load shares.
#[derive(Debug, Args, Clone)]
pub struct CommonLoadArgs {
    /// Measured time (e.g. 10s).
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Time before measuring, excluded from the results (0 or off: none).
    #[arg(long, value_name = "DUR", default_value = "2s", value_parser = parse_duration_or_off)]
    pub warmup: Duration,

    /// How long connecting (and, for chat, registering) may take.
    #[arg(long, value_name = "DUR", default_value = "3s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// After sending stops, how long to wait for outstanding responses;
    /// what is still missing then counts as timed out (lost for chat).
    /// 0 or off: do not wait.
    #[arg(long, value_name = "DUR", default_value = "3s", value_parser = parse_duration_or_off)]
    pub drain: Duration,

    #[command(flatten)]
    pub placement: PlacementArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Where the results go.
#[derive(Debug, Args, Clone, Default)]
pub struct OutputArgs {
    /// Also write the summary as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<std::path::PathBuf>,

    /// Write an HdrHistogram interval log (one interval per second).
    #[arg(long, value_name = "FILE")]
    pub hdr_log: Option<std::path::PathBuf>,

    /// Draw the percentile spectrum (corrected and uncorrected) as SVG.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<std::path::PathBuf>,

    /// No live line per second.
    #[arg(long)]
    pub quiet: bool,
}

/// `torsion load echo`.
#[derive(Debug, Args)]
pub struct LoadEchoArgs {
    /// The server's address (e.g. 127.0.0.1:7000).
    #[arg(long, value_name = "ADDR", value_parser = parse_target)]
    pub target: std::net::SocketAddr,

    #[command(flatten)]
    pub common: CommonLoadArgs,

    /// Connections in total, spread over the load shards.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "N", default_value = "50")]
    pub connections: usize,

    /// Requests per second in total (open loop), or "max" (closed loop).
    #[arg(long, value_name = "R|max", default_value = "max")]
    pub rate: crate::load::echo::Rate,

    /// Closed loop: requests in flight per connection.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "K", default_value = "1")]
    pub pipeline: usize,

    /// Payload bytes per request (at least 24: they carry a sequence number).
    #[arg(long, value_name = "BYTES", default_value = "64", value_parser = parse_size)]
    pub size: usize,

    /// How requests are framed (the server must use the same): raw, line,
    /// netstring, int8, int16 or int32.
    #[arg(long, value_name = "FRAMING", default_value = "raw", value_parser = parse_framing)]
    pub framing: Framing,

    /// Datagrams instead of TCP (the server listens on udp:…); open loop
    /// only; replies that never come are counted as lost.
    #[arg(long)]
    pub udp: bool,

    /// TLS (the server listens on tls:…); needs --ca or --insecure.
    #[arg(long)]
    pub tls: bool,

    /// Trust the certificates in this PEM file (with --tls).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,

    /// Do not verify the server's certificate (with --tls; load tests only).
    #[arg(long)]
    pub insecure: bool,

    /// The name the certificate must match (default: the target's IP).
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
}

/// `torsion load http`.
#[derive(Debug, Args)]
pub struct LoadHttpArgs {
    /// The URL every request gets (GET), e.g.
    /// http://127.0.0.1:8080/plaintext.
    #[arg(long, value_name = "URL", value_parser = crate::load::http_wire::HttpTarget::parse)]
    pub target: crate::load::http_wire::HttpTarget,

    #[command(flatten)]
    pub common: CommonLoadArgs,

    /// Connections in total, spread over the load shards.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "N", default_value = "64")]
    pub connections: usize,

    /// Requests per second in total (open loop), or "max" (closed loop).
    #[arg(long, value_name = "R|max", default_value = "max")]
    pub rate: crate::load::echo::Rate,

    /// Closed loop: requests in flight per connection (pipelined).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "K", default_value = "1")]
    pub pipeline: usize,
}

/// `torsion load chat`.
#[derive(Debug, Args)]
pub struct LoadChatArgs {
    /// The server's address (e.g. 127.0.0.1:8123). Repeat it for the nodes
    /// of a chat cluster: client i connects to the (i mod n)th, and the
    /// report adds same-node and cross-node latency.
    #[arg(long, value_name = "ADDR", value_parser = parse_target, required = true)]
    pub target: Vec<std::net::SocketAddr>,

    #[command(flatten)]
    pub common: CommonLoadArgs,

    /// Named clients in total.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "N", default_value = "100")]
    pub clients: usize,

    /// How many of the clients send.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "N", default_value = "10")]
    pub senders: usize,

    /// Messages per second in total.
    #[arg(long, value_name = "R", default_value = "2000")]
    pub rate: f64,
}

/// `torsion bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to benchmark.
    #[arg(value_enum)]
    pub protocol: BenchProtocol,

    /// Cores for the server shards.
    #[arg(long, value_name = "LIST", default_value = "0")]
    pub server_cores: String,

    /// Cores for the load shards (disjoint from the server's).
    #[arg(long, value_name = "LIST", default_value = "1")]
    pub load_cores: String,

    /// Measured time of each run.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Warm-up before each run (0 or off: none).
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = parse_duration_or_off)]
    pub warmup: Duration,

    /// Echo: connections.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "N", default_value = "50")]
    pub connections: usize,

    /// Echo: payload bytes.
    #[arg(long, value_name = "BYTES", default_value = "64", value_parser = parse_size)]
    pub size: usize,

    /// Echo: the fixed-rate run offers this fraction of the saturated rate.
    #[arg(long, value_name = "F", default_value = "0.5")]
    pub fraction: f64,

    /// Chat: named clients.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "N", default_value = "100")]
    pub clients: usize,

    /// Chat: senders among them.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "N", default_value = "10")]
    pub senders: usize,

    /// Chat: the message rates to run, in order (comma-separated).
    #[arg(long, value_name = "R,R", default_value = "2000,20000")]
    pub rates: String,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// What `torsion bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchProtocol {
    /// Echo: saturated, then at a fraction of the saturated rate.
    Echo,
    /// Chat fan-out at the given message rates.
    Chat,
    /// HTTP/1.1 GET /plaintext (serve http's route): saturated, then at a
    /// fraction of the saturated rate, like echo.
    Http,
}

/// Shard placement flags shared by every command that runs shards.
#[derive(Debug, Args, Clone)]
pub struct PlacementArgs {
    /// Number of shards (default: one per CPU in the process's affinity mask).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "N")]
    pub shards: Option<usize>,

    /// Cores to run shards on, one shard each (e.g. 0,2,3 or 0-3).
    #[arg(long, value_name = "LIST")]
    pub cores: Option<String>,
}

/// Parses a target address (`127.0.0.1:7000`, `[::1]:7000`, `localhost:7000`).
pub fn parse_target(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .map_err(|e| format!("invalid target \"{s}\": {e} (expected HOST:PORT)"))?
        .next()
        .ok_or_else(|| format!("target \"{s}\" resolves to no address"))
}

/// Parses a count: a whole number, at least 1 (negative numbers get this
/// message too, not clap's hint about `--`).
pub fn parse_count(s: &str) -> Result<usize, String> {
    match s.trim().parse::<i128>() {
        Ok(n) if n >= 1 => usize::try_from(n).map_err(|_| format!("{s} is too large")),
        Ok(_) => Err(format!(
            "{s} is not allowed: must be a whole number, at least 1"
        )),
        Err(_) => Err(format!(
            "invalid number \"{s}\" (expected a whole number, at least 1)"
        )),
    }
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

/// The longest duration any flag takes.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The shortest non-zero duration any flag takes.
pub const MIN_DURATION: Duration = Duration::from_millis(1);

/// Parses a duration that must not be zero (`5s`, `250ms`, `1m`): 1ms to
/// 365d. The rule every duration flag follows: zero turns off what the
/// flag times where that can be turned off ([`parse_duration_or_off`]),
/// and is refused where it cannot (a run's length, a connect timeout).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration_or_off(s)?;
    if d.is_zero() {
        return Err(format!(
            "duration \"{s}\" must be at least 1ms (this flag cannot be turned off; range 1ms to 365d)"
        ));
    }
    Ok(d)
}

/// Parses a switch: `on` or `off`.
pub fn parse_on_off(s: &str) -> Result<bool, String> {
    match s.trim() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected on or off, not \"{s}\"")),
    }
}

/// Parses a duration where zero (`0`, `0s` or `off`) turns the thing off;
/// otherwise 1ms to 365d.
pub fn parse_duration_or_off(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "off" || t == "0" {
        return Ok(Duration::ZERO);
    }
    let d = humantime::parse_duration(t).map_err(|e| {
        format!("invalid duration \"{s}\": {e} (expected e.g. 500ms, 30s, 5m; range 1ms to 365d)")
    })?;
    if d > MAX_DURATION {
        return Err(format!("duration \"{s}\" is out of range (1ms to 365d)"));
    }
    if !d.is_zero() && d < MIN_DURATION {
        return Err(format!(
            "duration \"{s}\" is below 1ms (range 1ms to 365d; 0 turns it off where that is allowed)"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_whole_and_positive() {
        assert_eq!(parse_count("3"), Ok(3));
        for bad in ["0", "-1", "1.5", "many", ""] {
            assert!(parse_count(bad).is_err(), "{bad}");
        }
        assert!(parse_count("-1").unwrap_err().contains("at least 1"));
    }

    #[test]
    fn durations_follow_one_rule() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1ms"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_duration("365d"), Ok(MAX_DURATION));
        for off in ["0", "0s", "0ms", "off"] {
            assert_eq!(parse_duration_or_off(off), Ok(Duration::ZERO), "{off}");
            assert!(parse_duration(off).is_err(), "{off}");
        }
        for bad in ["18446744073709551615s", "366d", "500us", "-1s", "soon", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
            assert!(parse_duration_or_off(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("18446744073709551615s")
            .unwrap_err()
            .contains("1ms to 365d"));
    }

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
