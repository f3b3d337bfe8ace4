//! [`Runner`]: a set of apps as a command, and the serve sequence every app
//! goes through.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result};
use clap::{ArgMatches, Command, FromArgMatches};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use torsion::metrics::Metrics;
use torsion::{Endpoint, Server, ServerHandle};
use torsion_protocols::metrics_endpoint::serve_metrics;
use tracing_subscriber::EnvFilter;

use super::flags::ServeFlags;
use super::{App, ServeContext};
use crate::args::LogFormat;

/// The id of the global `--log-format` argument (the same in `torsion`'s
/// own command line).
const LOG_FORMAT: &str = "log_format";

/// An app with its flags' types erased, so a runner can hold several.
trait RegisteredApp: Send + Sync {
    fn name(&self) -> &'static str;
    fn command(&self) -> Command;
    fn serve(&self, matches: &ArgMatches) -> Result<()>;
}

struct Registered<A>(A);

impl<A: App> RegisteredApp for Registered<A> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn command(&self) -> Command {
        let app = &self.0;
        let cmd = <A::Flags as clap::Args>::augment_args(Command::new(app.name()));
        let default = app.default_listen();
        // The flags' derives set the command's description from their doc
        // comments: the app's own goes on last.
        <ServeFlags as clap::Args>::augment_args(cmd)
            .about(app.about())
            .long_about(None)
            .mut_arg("listen", move |arg| {
                arg.help(format!(
                    "Where to listen, in Twisted's endpoint syntax: tcp:PORT[:interface=IP], \
                     tcp6:…, tls:PORT:certKey=…:privateKey=…, udp:PORT (default: {default})"
                ))
            })
    }

    fn serve(&self, matches: &ArgMatches) -> Result<()> {
        let flags = A::Flags::from_arg_matches(matches)?;
        let common = ServeFlags::from_arg_matches(matches)?;
        serve(&self.0, flags, common)
    }
}

/// A command whose `serve` subcommand runs the registered apps:
/// `<name> serve <app> [flags]`.
pub struct Runner {
    name: &'static str,
    about: Option<&'static str>,
    apps: Vec<Box<dyn RegisteredApp>>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("name", &self.name)
            .field(
                "apps",
                &self.apps.iter().map(|a| a.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Runner {
    /// A command called `name` (used in `--help` and error messages).
    pub fn new(name: &'static str) -> Runner {
        Runner {
            name,
            about: None,
            apps: Vec::new(),
        }
    }

    /// The command's one-line description.
    pub fn about(mut self, text: &'static str) -> Runner {
        self.about = Some(text);
        self
    }

    /// Registers `app` as `serve <app.name()>`.
    ///
    /// # Panics
    /// When an app of that name is registered already.
    pub fn app<A: App>(mut self, app: A) -> Runner {
        assert!(
            self.apps.iter().all(|a| a.name() != app.name()),
            "two apps named {:?}",
            app.name()
        );
        self.apps.push(Box::new(Registered(app)));
        self
    }

    /// The `serve` subcommand: one subcommand per app.
    pub fn serve_command(&self) -> Command {
        let serve = Command::new("serve")
            .about("Run a sharded server until SIGINT/SIGTERM")
            .subcommand_required(true)
            .arg_required_else_help(true);
        self.apps
            .iter()
            .fold(serve, |cmd, app| cmd.subcommand(app.command()))
    }

    /// The whole command: `--log-format` and `serve`.
    pub fn command(&self) -> Command {
        let cmd = Command::new(self.name)
            .subcommand_required(true)
            .arg_required_else_help(true)
            .arg(
                clap::Arg::new(LOG_FORMAT)
                    .long("log-format")
                    .global(true)
                    .value_parser(clap::value_parser!(LogFormat))
                    .default_value("text")
                    .help(
                        "How log lines (stderr) look: text (coloured only on a terminal) \
                         or json (one object per line, for log shippers)",
                    ),
            )
            .subcommand(self.serve_command());
        match self.about {
            Some(about) => cmd.about(about),
            None => cmd,
        }
    }

    /// Runs the app `serve_matches` (the `serve` subcommand's matches)
    /// names, until a signal drains it.
    pub fn serve(&self, serve_matches: &ArgMatches) -> Result<()> {
        let (name, matches) = serve_matches
            .subcommand()
            .context("serve needs an app: see serve --help")?;
        let app = self
            .apps
            .iter()
            .find(|a| a.name() == name)
            .with_context(|| format!("no app named {name:?}"))?;
        app.serve(matches)
    }

    /// Parses the process's arguments, sets up logging, serves; exits 0
    /// after a drain, 2 with the error on stderr otherwise.
    pub fn main(self) -> ! {
        let matches = self.command().get_matches();
        init_logging(&matches);
        let result = match matches.subcommand() {
            Some(("serve", serve)) => self.serve(serve),
            _ => Err(anyhow::anyhow!("nothing to do: see --help")),
        };
        match result {
            Ok(()) => std::process::exit(0),
            Err(err) => {
                eprintln!("{}: error: {err:#}", self.name);
                std::process::exit(2);
            }
        }
    }
}

/// Sends `tracing` logs to stderr in the `--log-format` of `matches`
/// (filtered by `RUST_LOG`, default `info`).
pub fn init_logging(matches: &ArgMatches) {
    let format = matches
        .get_one::<LogFormat>(LOG_FORMAT)
        .copied()
        .unwrap_or(LogFormat::Text);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().init(),
    }
}

/// The serve sequence: build, start, announce, serve metrics, wait for a
/// signal, drain, stop.
fn serve<A: App>(app: &A, flags: A::Flags, common: ServeFlags) -> Result<()> {
    let endpoint = common.endpoint(app.default_listen())?;
    let metrics_endpoint = common.metrics_endpoint()?;
    let metrics = metrics_endpoint.as_ref().map(|_| Metrics::new());
    let builder = common.builder(endpoint.clone(), metrics.is_some())?;

    // Install the handlers before any shard thread exists, so the signals
    // reach the signal thread and never interrupt a shard.
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;

    let settings = app.describe(&flags);
    let server = app.start(
        flags,
        ServeContext {
            builder,
            endpoint,
            max_outbound: common.max_outbound,
            metrics: metrics.clone(),
        },
    )?;
    // The metrics endpoint starts before anything is announced: if its
    // port is taken, no listening line has claimed the server is up.
    let metrics_server = match (metrics, metrics_endpoint) {
        (Some(metrics), Some(endpoint)) => Some(start_metrics(&server, metrics, endpoint)?),
        _ => None,
    };
    announce(&server, metrics_server.as_ref())?;
    let cores = server.shards().iter().map(|s| s.core).collect::<Vec<_>>();
    let addr = server.local_addr();
    let shards = server.shard_count();
    if settings.is_empty() {
        tracing::info!(app = app.name(), %addr, shards, ?cores, "serving");
    } else {
        tracing::info!(app = app.name(), %settings, %addr, shards, ?cores, "serving");
    }

    let trigger = server.trigger();
    let handle = signals.handle();
    let signal_thread = std::thread::Builder::new()
        .name("torsion-signals".into())
        .spawn(move || {
            let mut seen = 0;
            for signal in signals.forever() {
                seen += 1;
                if seen == 1 {
                    tracing::info!(signal, "shutting down: draining connections");
                    trigger.shutdown();
                } else {
                    tracing::warn!(signal, "second signal: exiting without draining");
                    std::process::exit(1);
                }
            }
        })
        .context("cannot start the signal thread")?;

    let stats = server.stats_reader();
    let result = server.join();
    handle.close();
    let _ = signal_thread.join();
    if let Some((metrics_server, _)) = metrics_server {
        metrics_server.stop()?;
    }
    result?;
    let total = stats.total();
    tracing::info!(
        accepted = total.accepted,
        refused = total.refused,
        panics = total.panics,
        bytes_in = total.bytes_in,
        bytes_out = total.bytes_out,
        "stopped"
    );
    Ok(())
}

/// The stdout lines scripts and tests read: where the server listens, then
/// (with `--metrics`) where its metrics are.
fn announce(server: &ServerHandle, metrics: Option<&(ServerHandle, &'static str)>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let n = server.shard_count();
    // One line per listener, in the order of its endpoints.
    for addr in server.local_addrs() {
        writeln!(
            out,
            "torsion: listening on {addr} ({n} shard{})",
            if n == 1 { "" } else { "s" }
        )?;
    }
    if let Some((metrics_server, scheme)) = metrics {
        writeln!(
            out,
            "torsion: metrics on {scheme}://{}/metrics",
            metrics_server.local_addr()
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Registers the server's own collectors and starts the scrape endpoint on
/// one shard, on the first serving shard's core; with its URL's scheme.
fn start_metrics(
    server: &ServerHandle,
    metrics: Metrics,
    endpoint: Endpoint,
) -> Result<(ServerHandle, &'static str)> {
    metrics.register_server(server.stats_reader());
    metrics.register_default_blocking_pool();
    let scheme = match endpoint {
        Endpoint::Tls { .. } => "https",
        _ => "http",
    };
    let core = server.shards().first().map_or(0, |s| s.core);
    let builder = Server::builder()
        .listen(endpoint)
        .shards(1)
        .cores(vec![core]);
    let metrics_server = serve_metrics(builder, metrics).context("cannot serve --metrics")?;
    Ok((metrics_server, scheme))
}
