//! Command-line definitions (clap).

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use torsion_protocols::Framing;

// The flag parsers and shared flags live with the app runner (every app's
// flags use them); the commands here use them too.
pub use torsion_app::args::{
    parse_count, parse_duration, parse_duration_or_off, parse_on_off, parse_size, LogFormat,
    PlacementArgs, MAX_DURATION, MIN_DURATION,
};

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
    /// HTTP/1.1 requests (any method, headers, body; http:// or https://),
    /// every response parsed, its status counted and checked (--accept).
    Http(Box<LoadHttpArgs>),
    /// Redis (RESP) commands from templates over a key space, every reply
    /// framed and checked (-ERR counted with its text).
    Redis(Box<LoadRedisArgs>),
    /// Echo over WebSocket (ws:// or wss://): each request one binary
    /// message, every echo checked byte for byte.
    Ws(Box<LoadWsArgs>),
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

    /// With a rate sweep (--rate FROM..TO/STEP): the objective each step
    /// must hold, e.g. p99=5ms (corrected latency; also no errors and ≥95%
    /// of the offered rate achieved); the sweep stops at the first step
    /// that fails and bisects to the capacity.
    #[arg(long, value_name = "pP=DUR")]
    pub slo: Option<crate::load::sweep::Slo>,

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
    /// The server's address (e.g. 127.0.0.1:7000). Repeat it for several
    /// servers: connections are dealt out round-robin (or by --weights) and
    /// the report adds a row per target.
    #[arg(long, value_name = "ADDR", value_parser = parse_target, required = true)]
    pub target: Vec<std::net::SocketAddr>,

    #[command(flatten)]
    pub common: CommonLoadArgs,

    /// Connections in total, spread over the load shards.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "N", default_value = "50")]
    pub connections: usize,

    #[command(flatten)]
    pub requests: RequestRateArgs,

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

/// `torsion load ws`.
#[derive(Debug, Args)]
pub struct LoadWsArgs {
    /// The WebSocket echo server's URL, ws:// or wss:// (e.g.
    /// ws://127.0.0.1:9001/). Repeat it for several servers.
    #[arg(long, value_name = "URL", value_parser = crate::load::ws_wire::WsTarget::parse, required = true)]
    pub target: Vec<crate::load::ws_wire::WsTarget>,

    #[command(flatten)]
    pub common: CommonLoadArgs,

    /// Connections in total, spread over the load shards.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "N", default_value = "50")]
    pub connections: usize,

    #[command(flatten)]
    pub requests: RequestRateArgs,

    /// Payload bytes per message (at least 24: they carry a sequence number).
    #[arg(long, value_name = "BYTES", default_value = "64", value_parser = parse_size)]
    pub size: usize,

    /// Trust the certificates in this PEM file (wss://).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,

    /// Do not verify the server's certificate (wss://; load tests only).
    #[arg(long)]
    pub insecure: bool,
}

/// `torsion load http`.
#[derive(Debug, Args)]
pub struct LoadHttpArgs {
    /// The URL requests go to, http:// or https:// (e.g.
    /// http://127.0.0.1:8080/plaintext; host names are resolved once, at
    /// start). Repeat it for several URLs: connections are dealt out
    /// round-robin (or by --weights) and the report adds a row per URL.
    #[arg(long, value_name = "URL", value_parser = crate::load::http_wire::HttpTarget::parse, required = true)]
    pub target: Vec<crate::load::http_wire::HttpTarget>,

    /// The request method.
    #[arg(long, short = 'X', value_name = "METHOD", default_value = "GET")]
    pub method: String,

    /// A request header, 'Name: value' (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,

    /// The request body (Content-Length is set from it).
    #[arg(long, value_name = "TEXT", conflicts_with = "body_file")]
    pub body: Option<String>,

    /// The request body, read from a file.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<std::path::PathBuf>,

    /// Statuses that are answers, not errors: classes and codes (e.g.
    /// 2xx,3xx,404).
    #[arg(long, value_name = "LIST", default_value = "2xx", value_parser = crate::load::http_wire::Accept::parse)]
    pub accept: crate::load::http_wire::Accept,

    /// https://: trust the certificates in this PEM file (default: the
    /// system's roots are not loaded; give --ca or --insecure).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,

    /// https://: do not verify the server's certificate (load tests only).
    #[arg(long)]
    pub insecure: bool,

    #[command(flatten)]
    pub common: CommonLoadArgs,

    /// Connections in total, spread over the load shards.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "N", default_value = "64")]
    pub connections: usize,

    #[command(flatten)]
    pub requests: RequestRateArgs,
}

/// `torsion load redis`.
#[derive(Debug, Args)]
pub struct LoadRedisArgs {
    /// The server's address (e.g. 127.0.0.1:6379; redis-server,
    /// torsion-kv, any RESP server). Repeat it for several servers.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_target, required = true)]
    pub target: Vec<std::net::SocketAddr>,

    /// A command template, arguments split at spaces; {key} is a key
    /// number from the key space, {data} is --data-size bytes (repeatable;
    /// default: SET key:{key} {data} and GET key:{key}).
    #[arg(long = "command", value_name = "TEMPLATE")]
    pub commands: Vec<String>,

    /// How many of each command, in --command order (e.g. 1:10; default
    /// one each).
    #[arg(long, value_name = "N:M:…")]
    pub ratio: Option<String>,

    /// Key space size: {key} is drawn from 0..N.
    #[arg(long, value_name = "N", default_value = "100000")]
    pub keys: u64,

    /// How keys are drawn: uniform, sequential, zipf (s = 0.99) or zipf:S.
    #[arg(long, value_name = "DIST", default_value = "uniform")]
    pub distribution: crate::load::resp_wire::KeyDistribution,

    /// Bytes of {data} (redis-benchmark's -d).
    #[arg(long, value_name = "BYTES", default_value = "3", value_parser = parse_size)]
    pub data_size: usize,

    #[command(flatten)]
    pub common: CommonLoadArgs,

    /// Connections in total, spread over the load shards (redis-benchmark's
    /// -c).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "N", default_value = "50")]
    pub connections: usize,

    #[command(flatten)]
    pub requests: RequestRateArgs,
}

/// How requests are offered, for echo, http and redis.
#[derive(Debug, Args, Clone)]
pub struct RequestRateArgs {
    /// Requests per second in total (open loop; 50k, 1.5M), "max" (closed
    /// loop), or a sweep FROM..TO/STEP (e.g. 20k..200k/20k).
    #[arg(long, value_name = "R|max|FROM..TO/STEP", default_value = "max")]
    pub rate: crate::load::sweep::RatePlan,

    /// Closed loop: requests in flight per connection (pipelined;
    /// redis-benchmark's -P).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "K", default_value = "1")]
    pub pipeline: usize,

    /// The targets' shares of the connections, one per --target (e.g. 3,1;
    /// default all equal).
    #[arg(long, value_name = "W1,W2,…")]
    pub weights: Option<String>,

    /// Closed loop: send --pipeline requests at once and the next batch
    /// when every one is answered (redis-benchmark's and memtier's -P), instead
    /// of keeping --pipeline in flight (a new request per response).
    #[arg(long)]
    pub pipeline_batches: bool,

    /// Connection churn: the share of requests sent on a new connection
    /// (0.1: every 10th; 1: one connection per request; 0: keep-alive).
    /// A connection is replaced once its responses are in; the new
    /// connection's cost shows in the corrected latency.
    #[arg(long, value_name = "SHARE", default_value = "0")]
    pub churn: f64,
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

    /// Messages per second in total (2000, 20k), or a sweep FROM..TO/STEP.
    #[arg(long, value_name = "R|FROM..TO/STEP", default_value = "2000")]
    pub rate: crate::load::sweep::RatePlan,

    /// The targets are the chat's WebSocket listeners (`serve chat
    /// --websocket`): each client opens with the handshake, and each line
    /// is one text message.
    #[arg(long)]
    pub websocket: bool,
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

/// Parses a target address (`127.0.0.1:7000`, `[::1]:7000`, `localhost:7000`).
pub fn parse_target(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .map_err(|e| format!("invalid target \"{s}\": {e} (expected HOST:PORT)"))?
        .next()
        .ok_or_else(|| format!("target \"{s}\" resolves to no address"))
}

/// Parses a framing name (raw, line, netstring, int8, int16, int32).
pub fn parse_framing(s: &str) -> Result<Framing, String> {
    s.parse()
        .map_err(|e: torsion_protocols::UnknownFraming| e.to_string())
}
