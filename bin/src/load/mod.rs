//! The latency load generator (`torsion load`, `torsion bench`).
//!
//! | module | what |
//! |---|---|
//! | [`echo`] | open- and closed-loop echo load, byte-for-byte checks |
//! | [`chat`] | chat fan-out load: delivery latency, order, loss |
//! | [`engine`] | load shards on pinned cores, common start, per-second intervals |
//! | [`recorder`] | histograms (corrected and uncorrected) and error counts |
//! | [`report`] | the human report and the JSON summary |
//! | [`plot`] | the percentile spectrum as SVG |
//! | [`payload`] | self-checking request payloads |
//! | [`udp`] | open-loop UDP echo load: loss, duplicates, corruption |
//! | [`http_wire`] | HTTP/1.1 requests and responses for `load http` |
//! | [`io`] | how load connections are made (`Connector`, TLS settings) |
//! | [`target`] | the servers of a load (`--target`, `--weights`) and which one each connection uses |
//! | [`sweep`] | rate sweeps (`--rate FROM..TO/STEP`) and the capacity at an objective (`--slo p99=5ms`) |
//! | [`resp_wire`] | RESP commands from templates, keys by distribution, replies for `load redis` |
//!
//! The generator runs on torsion's own runtime, through its public API
//! only (connections, frames, timers, tasks, UDP sockets; never the reactor
//! underneath): one pinned executor per load core, many connections per
//! core, event-driven — never a thread per connection, and one future per
//! connection, run on the connection's own task.

pub mod chat;
pub mod chat_wire;
pub mod echo;
pub mod engine;
pub mod http_wire;
pub mod io;
pub mod payload;
pub mod plot;
pub mod recorder;
pub mod report;
pub mod resp_wire;
pub mod sweep;
pub mod target;
pub mod udp;
pub mod ws_wire;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use self::chat::{ChatLoad, ChatTotals};
use self::echo::{EchoLoad, Rate};
use self::engine::IntervalOutput;
use self::recorder::Recorder;
use self::report::{ChatFigures, Report};

/// Where results go besides the returned report.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// `--json FILE`.
    pub json: Option<PathBuf>,
    /// `--hdr-log FILE`.
    pub hdr_log: Option<PathBuf>,
    /// `--plot FILE.svg`.
    pub plot: Option<PathBuf>,
    /// Live line per second (on a terminal).
    pub live: bool,
}

impl Outputs {
    /// What the per-second intervals feed.
    fn intervals(&self) -> IntervalOutput {
        IntervalOutput {
            hdr_log: self.hdr_log.clone(),
            live: self.live,
        }
    }
}

fn merge(recorders: &[Recorder]) -> Recorder {
    let mut merged = Recorder::default();
    for r in recorders {
        merged.merge(r);
    }
    merged
}

fn write_outputs(report: &Report, merged: &Recorder, out: &Outputs) -> anyhow::Result<()> {
    if let Some(path) = &out.json {
        report.write_json(path)?;
    }
    if let Some(path) = &out.plot {
        let title = format!(
            "torsion load {} → {} ({})",
            report.mode,
            report.target,
            match report.offered_rate {
                Some(r) => format!("{r:.0}/s"),
                None => "closed loop".into(),
            }
        );
        plot::write_svg(path, &title, &merged.corrected, &merged.uncorrected)?;
    }
    Ok(())
}

/// Runs an echo load on `cores` and returns the report (after writing the
/// requested outputs).
pub fn run_echo(
    load: EchoLoad,
    cores: &[usize],
    stop: Arc<AtomicBool>,
    out: &Outputs,
) -> anyhow::Result<Report> {
    load.validate().map_err(anyhow::Error::msg)?;
    let load = Arc::new(load);
    let task_load = load.clone();
    let (recorders, phases) = engine::drive(
        cores,
        load.warmup,
        load.duration,
        stop,
        out.intervals(),
        move |info, coord| {
            let load = task_load.clone();
            async move {
                if load.udp {
                    udp::shard(info, load, coord).await
                } else {
                    echo::shard(info, load, coord).await
                }
            }
        },
    )?;
    let merged = merge(&recorders);
    let measured = measured_secs(phases);
    let echoes = load.http.is_none() && load.redis.is_none();
    let labels: Vec<String> = load.targets.iter().map(|t| t.label.clone()).collect();
    let mut report = Report {
        mode: load.mode().into(),
        target: labels.join(","),
        connections: load.connections,
        framing: if load.http.is_some() {
            "http/1.1".into()
        } else if load.redis.is_some() {
            "resp".into()
        } else if load.websocket.is_some() {
            "websocket".into()
        } else {
            load.framing.to_string()
        },
        size: match &load.redis {
            Some(r) => r.data.len(),
            None if echoes => load.size,
            None => 0,
        },
        offered_rate: match load.rate {
            Rate::PerSecond(r) => Some(r),
            Rate::Max => None,
        },
        pipeline: load.pipeline,
        pipeline_batches: load.batches,
        duration_s: measured,
        warmup_s: load.warmup.as_secs_f64(),
        statuses: load.http.as_ref().map(|_| merged.statuses),
        key_space: load
            .redis
            .as_ref()
            .map(|r| format!("{} keys, {}", r.keys, r.distribution)),
        ..Report::default()
    };
    if load.churn > 0.0 {
        report.churn = Some((load.churn, merged.reconnects));
    }
    if labels.len() > 1 {
        report.targets = Report::rows(&merged, 0, &labels, measured);
    }
    if let Some(redis) = &load.redis {
        let names: Vec<String> = redis.templates.iter().map(|t| t.text.clone()).collect();
        report.commands = Report::rows(&merged, labels.len(), &names, measured);
    }
    report.measured(&merged, measured);
    write_outputs(&report, &merged, out)?;
    Ok(report)
}

/// Runs a chat load on `cores` and returns the report.
pub fn run_chat(
    load: ChatLoad,
    cores: &[usize],
    stop: Arc<AtomicBool>,
    out: &Outputs,
) -> anyhow::Result<Report> {
    load.validate().map_err(anyhow::Error::msg)?;
    let load = Arc::new(load);
    let totals = Arc::new(ChatTotals::default());
    totals
        .senders_running
        .store(load.senders as u64, std::sync::atomic::Ordering::SeqCst);
    let (task_load, task_totals) = (load.clone(), totals.clone());
    let (recorders, phases) = engine::drive(
        cores,
        load.warmup,
        load.duration,
        stop,
        out.intervals(),
        move |info, coord| chat::shard(info, task_load.clone(), task_totals.clone(), coord),
    )?;
    let mut merged = merge(&recorders);
    let sent = totals.sent.load(std::sync::atomic::Ordering::SeqCst);
    let received = totals.received.load(std::sync::atomic::Ordering::SeqCst);
    let expected = sent * (load.clients as u64 - 1);
    merged.errors.lost = expected.saturating_sub(received);
    let measured = measured_secs(phases);
    let mut report = Report {
        mode: "chat".into(),
        target: load
            .targets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        connections: load.clients,
        framing: "line".into(),
        offered_rate: Some(load.rate),
        duration_s: measured,
        warmup_s: load.warmup.as_secs_f64(),
        ..Report::default()
    };
    report.measured(&merged, measured);
    if load.targets.len() > 1 {
        let labels: Vec<String> = load.targets.iter().map(ToString::to_string).collect();
        report.targets = Report::rows(&merged, 0, &labels, measured);
    }
    report.chat = Some(ChatFigures {
        clients: load.clients,
        senders: load.senders,
        messages_sent: sent,
        deliveries_expected: expected,
        deliveries_received: received,
        deliveries_per_second: report.achieved_rate,
    });
    write_outputs(&report, &merged, out)?;
    Ok(report)
}

/// Seconds actually measured (shorter than asked after Ctrl-C).
fn measured_secs(phases: engine::Phases) -> f64 {
    let now = std::time::Instant::now();
    let end = phases.end.min(now);
    end.saturating_duration_since(phases.measure_from)
        .as_secs_f64()
        .max(1e-3)
}
