//! `torsion load echo|http|redis|chat`: run the generator against servers
//! (one rate, or a sweep of rates with an objective), print the report,
//! exit 1 if any error was counted.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Result;
use torsion::cores;

use bytes::Bytes;

use crate::cli::{
    CommonLoadArgs, LoadArgs, LoadHttpArgs, LoadKind, LoadRedisArgs, LoadWsArgs, OutputArgs,
    PlacementArgs, RequestRateArgs,
};
use crate::load::chat::ChatLoad;
use crate::load::echo::{EchoLoad, Rate};
use crate::load::http_wire::{HttpLoad, HttpTarget, RequestSpec};
use crate::load::io::TlsClient;
use crate::load::report::Report;
use crate::load::resp_wire::RedisLoad;
use crate::load::sweep::{self, RatePlan, Slo};
use crate::load::target::{self, LoadTarget};
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
fn tls_client(
    a: &crate::cli::LoadEchoArgs,
    target: std::net::SocketAddr,
) -> Result<Option<TlsClient>> {
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
        None => rustls::pki_types::ServerName::IpAddress(target.ip().into()),
    };
    Ok(Some(TlsClient {
        config,
        server_name: name,
    }))
}

/// The TLS settings of an `https://` URL: `--ca` or `--insecure`, the
/// certificate checked against the URL's host.
fn https_client(a: &LoadHttpArgs, url: &HttpTarget) -> Result<Option<TlsClient>> {
    url_tls(url, "https", a.ca.as_deref(), a.insecure)
}

/// The TLS settings of an `https://` or `wss://` URL (`scheme`): `--ca`
/// or `--insecure`, the certificate checked against the URL's host.
fn url_tls(
    url: &HttpTarget,
    scheme: &str,
    ca: Option<&std::path::Path>,
    insecure: bool,
) -> Result<Option<TlsClient>> {
    if !url.https {
        return Ok(None);
    }
    if insecure == ca.is_some() {
        anyhow::bail!(
            "{scheme}://{}: {scheme} needs exactly one of --ca FILE (verify) or --insecure (do not)",
            url.host
        );
    }
    let config = torsion::tls::client_config(ca, insecure)?;
    let server_name = rustls::pki_types::ServerName::try_from(url.server_name.clone())
        .map_err(|e| anyhow::anyhow!("https://{}: not a TLS server name: {e}", url.host))?;
    Ok(Some(TlsClient {
        config,
        server_name,
    }))
}

/// Plain targets from addresses, with `--weights`.
fn plain_targets(addrs: &[std::net::SocketAddr], weights: Option<&str>) -> Result<Vec<LoadTarget>> {
    let mut targets: Vec<LoadTarget> = addrs.iter().copied().map(LoadTarget::plain).collect();
    target::apply_weights(&mut targets, weights).map_err(anyhow::Error::msg)?;
    Ok(targets)
}

/// The body of `--body` or `--body-file`.
fn http_body(a: &LoadHttpArgs) -> Result<Bytes> {
    Ok(match (&a.body, &a.body_file) {
        (Some(text), _) => Bytes::from(text.clone().into_bytes()),
        (None, Some(path)) => Bytes::from(
            std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read --body-file {}: {e}", path.display()))?,
        ),
        (None, None) => Bytes::new(),
    })
}

/// A load over TCP to `targets`, with the flags every mode shares; the
/// caller sets what its mode adds.
fn tcp_load(
    targets: Vec<LoadTarget>,
    connections: usize,
    requests: &RequestRateArgs,
    common: &CommonLoadArgs,
) -> EchoLoad {
    EchoLoad {
        targets,
        connections,
        rate: Rate::Max,
        pipeline: requests.pipeline,
        duration: common.duration,
        warmup: common.warmup,
        size: 0,
        framing: torsion_protocols::Framing::Raw,
        connect_timeout: common.connect_timeout,
        drain: common.drain,
        udp: false,
        http: None,
        redis: None,
        websocket: None,
        churn: requests.churn,
        batches: requests.pipeline_batches,
    }
}

/// The load of `torsion load http`.
fn http_load(a: &LoadHttpArgs) -> Result<EchoLoad> {
    let spec =
        RequestSpec::new(&a.method, &a.headers, http_body(a)?).map_err(anyhow::Error::msg)?;
    if !a.target.iter().any(|u| u.https) && (a.ca.is_some() || a.insecure) {
        anyhow::bail!("--ca and --insecure go with https:// URLs");
    }
    let mut targets = Vec::with_capacity(a.target.len());
    for url in &a.target {
        targets.push(LoadTarget {
            addr: url.addr,
            label: format!(
                "{}://{}{}",
                if url.https { "https" } else { "http" },
                url.host,
                url.path
            ),
            tls: https_client(a, url)?,
            weight: 1,
        });
    }
    target::apply_weights(&mut targets, a.requests.weights.as_deref())
        .map_err(anyhow::Error::msg)?;
    Ok(EchoLoad {
        http: Some(HttpLoad {
            requests: a.target.iter().map(|u| u.request(&spec)).collect(),
            accept: a.accept.clone(),
            head_request: spec.method == "HEAD",
        }),
        ..tcp_load(targets, a.connections, &a.requests, &a.common)
    })
}

/// The load of `torsion load ws`: echo over WebSocket.
fn ws_load(a: &LoadWsArgs) -> Result<EchoLoad> {
    if !a.target.iter().any(|u| u.http.https) && (a.ca.is_some() || a.insecure) {
        anyhow::bail!("--ca and --insecure go with wss:// URLs");
    }
    let mut targets = Vec::with_capacity(a.target.len());
    for url in &a.target {
        let u = &url.http;
        targets.push(LoadTarget {
            addr: u.addr,
            label: format!(
                "{}://{}{}",
                if u.https { "wss" } else { "ws" },
                u.host,
                u.path
            ),
            tls: url_tls(u, "wss", a.ca.as_deref(), a.insecure)?,
            weight: 1,
        });
    }
    target::apply_weights(&mut targets, a.requests.weights.as_deref())
        .map_err(anyhow::Error::msg)?;
    Ok(EchoLoad {
        size: a.size,
        websocket: Some(a.target.clone()),
        ..tcp_load(targets, a.connections, &a.requests, &a.common)
    })
}

/// The load of `torsion load redis`.
fn redis_load(a: &LoadRedisArgs) -> Result<EchoLoad> {
    let commands = if a.commands.is_empty() {
        vec![
            "SET key:{key} {data}".to_string(),
            "GET key:{key}".to_string(),
        ]
    } else {
        a.commands.clone()
    };
    let redis = RedisLoad::new(
        &commands,
        a.ratio.as_deref(),
        a.keys,
        a.distribution,
        a.data_size,
    )
    .map_err(anyhow::Error::msg)?;
    let targets = plain_targets(&a.target, a.requests.weights.as_deref())?;
    Ok(EchoLoad {
        redis: Some(redis),
        ..tcp_load(targets, a.connections, &a.requests, &a.common)
    })
}

/// Runs one load, or a sweep of them when `plan` is a sweep; prints the
/// report(s); returns whether any error was counted.
fn run_plan(
    plan: RatePlan,
    slo: Option<Slo>,
    out: &Outputs,
    stop: Arc<AtomicBool>,
    mut one: impl FnMut(Rate, &Outputs, Arc<AtomicBool>) -> Result<Report>,
) -> Result<bool> {
    if let Some(s) = &slo {
        s.check().map_err(anyhow::Error::msg)?;
    }
    match plan {
        RatePlan::One(rate) => {
            if slo.is_some() {
                anyhow::bail!("--slo goes with a rate sweep (--rate FROM..TO/STEP)");
            }
            let report = one(rate, out, stop)?;
            print!("{}", report.render());
            Ok(report.has_errors())
        }
        sweep => {
            // Each step reports in the sweep's table; files are the sweep's.
            let step_out = Outputs {
                live: out.live,
                ..Outputs::default()
            };
            let stopped = stop.clone();
            let report = sweep::run_sweep(
                &sweep,
                slo,
                |rate, _label| one(Rate::PerSecond(rate), &step_out, stop.clone()),
                move || stopped.load(std::sync::atomic::Ordering::SeqCst),
            )?;
            if let Some(path) = &out.json {
                report.write_json(path)?;
            }
            if let Some(path) = &out.plot {
                crate::load::plot::write_sweep_svg(path, &report)?;
            }
            print!("{}", report.render());
            Ok(report.has_errors())
        }
    }
}

/// Runs `torsion load`; returns the exit status.
pub fn run(args: LoadArgs) -> Result<i32> {
    let failed = match args.kind {
        LoadKind::Echo(a) => {
            let (cores, out) = common(&a.common)?;
            let mut targets = plain_targets(&a.target, a.requests.weights.as_deref())?;
            for t in &mut targets {
                t.tls = tls_client(&a, t.addr)?;
            }
            let base = EchoLoad {
                size: a.size,
                framing: a.framing,
                udp: a.udp,
                ..tcp_load(targets, a.connections, &a.requests, &a.common)
            };
            run_echo_plan(base, a.requests.rate, a.common.slo, &cores, &out)?
        }
        LoadKind::Http(a) => {
            let (cores, out) = common(&a.common)?;
            let base = http_load(&a)?;
            run_echo_plan(base, a.requests.rate, a.common.slo, &cores, &out)?
        }
        LoadKind::Ws(a) => {
            let (cores, out) = common(&a.common)?;
            let base = ws_load(&a)?;
            run_echo_plan(base, a.requests.rate, a.common.slo, &cores, &out)?
        }
        LoadKind::Redis(a) => {
            let (cores, out) = common(&a.common)?;
            let base = redis_load(&a)?;
            run_echo_plan(base, a.requests.rate, a.common.slo, &cores, &out)?
        }
        LoadKind::Chat(a) => {
            let (cores, out) = common(&a.common)?;
            let base = ChatLoad {
                targets: a.target,
                clients: a.clients,
                senders: a.senders,
                rate: 1.0,
                duration: a.common.duration,
                warmup: a.common.warmup,
                connect_timeout: a.common.connect_timeout,
                drain: a.common.drain,
                websocket: a.websocket,
            };
            if a.rate == RatePlan::One(Rate::Max) {
                anyhow::bail!("chat is open loop: give --rate in messages per second");
            }
            let stop = stop_flag()?;
            run_plan(a.rate, a.common.slo, &out, stop, |rate, out, stop| {
                let Rate::PerSecond(rate) = rate else {
                    anyhow::bail!("chat is open loop: give --rate in messages per second");
                };
                let l = ChatLoad {
                    rate,
                    ..base.clone()
                };
                l.validate().map_err(anyhow::Error::msg)?;
                load::run_chat(l, &cores, stop, out)
            })?
        }
    };
    Ok(if failed { 1 } else { 0 })
}

/// Runs an echo-engine load (echo, http, redis) at one rate or a sweep.
fn run_echo_plan(
    base: EchoLoad,
    plan: RatePlan,
    slo: Option<Slo>,
    cores: &[usize],
    out: &Outputs,
) -> Result<bool> {
    // Checked once before anything starts (at the first rate).
    EchoLoad {
        rate: plan.steps()[0],
        ..base.clone()
    }
    .validate()
    .map_err(anyhow::Error::msg)?;
    let stop = stop_flag()?;
    run_plan(plan, slo, out, stop, |rate, out, stop| {
        let l = EchoLoad {
            rate,
            ..base.clone()
        };
        l.validate().map_err(anyhow::Error::msg)?;
        load::run_echo(l, cores, stop, out)
    })
}
