//! `torsion load echo|chat`: run the generator against a server, print the
//! report, exit 1 if any error was counted.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Result;
use torsion::cores;

use crate::cli::{CommonLoadArgs, LoadArgs, LoadKind, OutputArgs, PlacementArgs};
use crate::load::chat::ChatLoad;
use crate::load::echo::EchoLoad;
use crate::load::{self, Outputs};

/// The load shards' cores from `--shards` / `--cores` (default: every
/// allowed core).
pub fn load_cores(p: &PlacementArgs) -> Result<Vec<usize>> {
    let allowed = cores::allowed_cores()?;
    let list = match &p.cores {
        Some(l) => Some(cores::parse_core_list(l)?),
        None => None,
    };
    Ok(cores::plan_cores(&allowed, p.shards, list.as_deref())?)
}

/// The outputs from the flags.
pub fn outputs(o: &OutputArgs) -> Outputs {
    Outputs {
        json: o.json.clone(),
        hdr_log: o.hdr_log.clone(),
        plot: o.plot.clone(),
        live: !o.quiet,
    }
}

/// A stop flag raised by Ctrl-C (SIGINT) or SIGTERM: the run ends early and
/// the results so far are reported.
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    Ok(stop)
}

fn common(c: &CommonLoadArgs) -> Result<(Vec<usize>, Outputs)> {
    Ok((load_cores(&c.placement)?, outputs(&c.output)))
}

/// The TLS settings from `--tls`, `--ca`, `--insecure`, `--server-name`.
fn tls_client(a: &crate::cli::LoadEchoArgs) -> Result<Option<crate::load::io::TlsClient>> {
    if !a.tls {
        if a.insecure || a.ca.is_some() {
            anyhow::bail!("--insecure and --ca go with --tls");
        }
        return Ok(None);
    }
    if a.insecure == a.ca.is_some() {
        anyhow::bail!("--tls needs exactly one of --ca FILE (verify) or --insecure (do not)");
    }
    let config = torsion::tls::client_config(a.ca.as_deref(), a.insecure)?;
    let name = match &a.server_name {
        Some(n) => rustls::pki_types::ServerName::try_from(n.clone())
            .map_err(|e| anyhow::anyhow!("invalid --server-name \"{n}\": {e}"))?,
        None => rustls::pki_types::ServerName::IpAddress(a.target.ip().into()),
    };
    Ok(Some(crate::load::io::TlsClient {
        config,
        server_name: name,
    }))
}

/// Runs `torsion load`; returns the exit status.
pub fn run(args: LoadArgs) -> Result<i32> {
    let report = match args.kind {
        LoadKind::Echo(a) => {
            let (cores, out) = common(&a.common)?;
            let l = EchoLoad {
                target: a.target,
                connections: a.connections,
                rate: a.rate,
                pipeline: a.pipeline,
                duration: a.common.duration,
                warmup: a.common.warmup,
                size: a.size,
                framing: a.framing,
                connect_timeout: a.common.connect_timeout,
                drain: a.common.drain,
                udp: a.udp,
                tls: tls_client(&a)?,
                http: None,
            };
            l.validate().map_err(anyhow::Error::msg)?;
            load::run_echo(l, &cores, stop_flag()?, &out)?
        }
        LoadKind::Http(a) => {
            let (cores, out) = common(&a.common)?;
            let l = EchoLoad {
                target: a.target.addr,
                connections: a.connections,
                rate: a.rate,
                pipeline: a.pipeline,
                duration: a.common.duration,
                warmup: a.common.warmup,
                size: 0,
                framing: torsion_protocols::Framing::Raw,
                connect_timeout: a.common.connect_timeout,
                drain: a.common.drain,
                udp: false,
                tls: None,
                http: Some(a.target),
            };
            l.validate().map_err(anyhow::Error::msg)?;
            load::run_echo(l, &cores, stop_flag()?, &out)?
        }
        LoadKind::Chat(a) => {
            let (cores, out) = common(&a.common)?;
            let l = ChatLoad {
                targets: a.target,
                clients: a.clients,
                senders: a.senders,
                rate: a.rate,
                duration: a.common.duration,
                warmup: a.common.warmup,
                connect_timeout: a.common.connect_timeout,
                drain: a.common.drain,
            };
            l.validate().map_err(anyhow::Error::msg)?;
            load::run_chat(l, &cores, stop_flag()?, &out)?
        }
    };
    print!("{}", report.render());
    Ok(if report.has_errors() { 1 } else { 0 })
}
