//! Rate sweeps and capacity: `--rate FROM..TO/STEP` runs one measured load
//! per offered rate, and `--slo p99=5ms` finds the highest offered rate
//! whose latency holds the bound.
//!
//! A step *holds* the objective when its corrected percentile is within the
//! bound, it counted no error, and it achieved at least 95% of the rate it
//! offered (a generator or server that cannot keep up has not held the
//! rate, whatever its latency says). After the sweep, the capacity lies
//! between the highest step that held (with every step below it holding
//! too: the search stops at the first failure) and the next step; three
//! bisection runs narrow it to an eighth of a step. The capacity is the
//! highest offered rate that held.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::echo::Rate;
use super::report::{Percentiles, Report};

/// The share of the offered rate a step must achieve to hold.
pub const MIN_ACHIEVED: f64 = 0.95;
/// Bisection runs after the sweep.
pub const BISECTIONS: usize = 3;

/// `--rate`: one rate, or a sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RatePlan {
    /// One run at this rate.
    One(Rate),
    /// One run per rate `from, from+step, …, ≤ to`.
    Sweep {
        /// The first rate.
        from: f64,
        /// The last rate (inclusive, when on a step).
        to: f64,
        /// The distance between rates.
        step: f64,
    },
}

/// Parses `20000`, `20k`, `1.5M`.
fn rate_number(s: &str) -> Option<f64> {
    let s = s.trim();
    let (digits, scale) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1e3),
        b'm' | b'M' => (&s[..s.len() - 1], 1e6),
        _ => (s, 1.0),
    };
    digits
        .parse::<f64>()
        .ok()
        .map(|n| n * scale)
        .filter(|n| n.is_finite() && *n > 0.0)
}

impl std::str::FromStr for RatePlan {
    type Err = String;

    fn from_str(s: &str) -> Result<RatePlan, String> {
        if s == "max" {
            return Ok(RatePlan::One(Rate::Max));
        }
        let Some((from, rest)) = s.split_once("..") else {
            return match rate_number(s) {
                Some(r) => Ok(RatePlan::One(Rate::PerSecond(r))),
                None => Err(format!(
                    "invalid rate \"{s}\" (expected requests per second > 0 such as 50000 or 50k, \"max\", or a sweep FROM..TO/STEP such as 20k..200k/20k)"
                )),
            };
        };
        let bad = |why: &str| {
            format!("invalid sweep \"{s}\": {why} (expected FROM..TO/STEP, e.g. 20k..200k/20k)")
        };
        let (to, step) = rest.split_once('/').ok_or_else(|| bad("no /STEP"))?;
        let (from, to, step) = (
            rate_number(from).ok_or_else(|| bad("FROM is not a rate > 0"))?,
            rate_number(to).ok_or_else(|| bad("TO is not a rate > 0"))?,
            rate_number(step).ok_or_else(|| bad("STEP is not a rate > 0"))?,
        );
        if to < from {
            return Err(bad("TO is below FROM"));
        }
        if (to - from) / step > 1000.0 {
            return Err(bad("over 1000 steps"));
        }
        Ok(RatePlan::Sweep { from, to, step })
    }
}

impl RatePlan {
    /// The rates of a sweep, in order (one rate for `One`).
    pub fn steps(&self) -> Vec<Rate> {
        match *self {
            RatePlan::One(r) => vec![r],
            RatePlan::Sweep { from, to, step } => {
                let n = ((to - from) / step + 1e-9).floor() as usize;
                (0..=n)
                    .map(|k| Rate::PerSecond(from + k as f64 * step))
                    .collect()
            }
        }
    }
}

/// `--slo p99=5ms`: a corrected percentile that must stay within a bound.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// The percentile, e.g. 99.0.
    pub percentile: f64,
    /// The bound, in microseconds.
    pub bound_us: f64,
}

impl std::str::FromStr for Slo {
    type Err = String;

    fn from_str(s: &str) -> Result<Slo, String> {
        let bad = || {
            format!(
                "invalid --slo \"{s}\" (expected pP=DURATION, e.g. p99=5ms, p99.9=20ms, p50=500us)"
            )
        };
        let (p, bound) = s.split_once('=').ok_or_else(bad)?;
        let percentile: f64 = p
            .strip_prefix('p')
            .and_then(|n| n.parse().ok())
            .filter(|n: &f64| *n > 0.0 && *n < 100.0)
            .ok_or_else(bad)?;
        let bound: Duration = humantime::parse_duration(bound.trim()).map_err(|_| bad())?;
        if bound.is_zero() {
            return Err(bad());
        }
        Ok(Slo {
            percentile,
            bound_us: bound.as_secs_f64() * 1e6,
        })
    }
}

impl std::fmt::Display for Slo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p{}≤{}", self.percentile, format_us(self.bound_us))
    }
}

fn format_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{}ms", us / 1000.0)
    } else {
        format!("{us}µs")
    }
}

/// One step of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Offered requests (messages) per second.
    pub offered: f64,
    /// The step's whole report.
    pub report: Report,
    /// The objective's percentile of this step, in microseconds (corrected).
    pub slo_value_us: Option<f64>,
    /// Whether the step held the objective (`None` without `--slo`).
    pub held: Option<bool>,
    /// Found by bisection after the sweep.
    pub bisection: bool,
}

/// A whole sweep's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// `http`, `redis`, …
    pub mode: String,
    /// The server(s).
    pub target: String,
    /// The objective, if any.
    pub slo: Option<Slo>,
    /// Every step, in the order run.
    pub steps: Vec<Step>,
    /// The highest offered rate that held the objective (`None`: none did,
    /// or no objective).
    pub capacity: Option<f64>,
    /// Every step held: the capacity is at least `capacity` (sweep higher).
    #[serde(default)]
    pub capacity_is_lower_bound: bool,
}

/// What a corrected percentile reads, in microseconds.
fn percentile_us(p: &Percentiles, percentile: f64) -> Option<f64> {
    if p.count == 0 {
        return None;
    }
    // The report's fixed points; the objective names one of them.
    Some(match percentile {
        x if x <= 50.0 => p.p50_us,
        x if x <= 90.0 => p.p90_us,
        x if x <= 99.0 => p.p99_us,
        x if x <= 99.9 => p.p999_us,
        _ => p.p9999_us,
    })
}

impl Slo {
    /// Checks the percentile is one the report reads.
    pub fn check(&self) -> Result<(), String> {
        if [50.0, 90.0, 99.0, 99.9, 99.99].contains(&self.percentile) {
            Ok(())
        } else {
            Err(format!(
                "--slo p{}: the report reads p50, p90, p99, p99.9 and p99.99",
                self.percentile
            ))
        }
    }

    /// Whether `report` holds it, and the percentile it read.
    pub fn held_by(&self, report: &Report, offered: f64) -> (bool, Option<f64>) {
        let value = percentile_us(&report.corrected, self.percentile);
        let held = value.is_some_and(|v| v <= self.bound_us)
            && !report.has_errors()
            && report.achieved_rate >= MIN_ACHIEVED * offered;
        (held, value)
    }
}

/// The capacity search every sweep runs, over any probe: tries `rates` in
/// order until one fails, then bisects `bisections` times between the
/// highest rate that held and the first that failed. `probe(rate, label)`
/// runs one load and says whether it held; what else it returns is kept
/// with its rate, in the order run. Returns the capacity (the highest rate
/// that held; `None` if none did) and every probe. The chat bench's
/// capacity search runs on this too.
pub fn search<T>(
    rates: &[f64],
    bisections: usize,
    stopped: impl Fn() -> bool,
    mut probe: impl FnMut(f64, &str) -> anyhow::Result<(bool, T)>,
) -> anyhow::Result<Search<T>> {
    let mut probes = Vec::new();
    let mut capacity: Option<f64> = None;
    let mut failed = None;
    for (i, &rate) in rates.iter().enumerate() {
        if stopped() {
            break;
        }
        let (held, what) = probe(rate, &format!("step {}/{}", i + 1, rates.len()))?;
        probes.push(Probe { rate, held, what });
        if !held {
            failed = Some(rate);
            break;
        }
        capacity = Some(rate);
    }
    if let (Some(mut lo), Some(mut hi)) = (capacity, failed) {
        for k in 0..bisections {
            if stopped() {
                break;
            }
            let mid = (lo + hi) / 2.0;
            let (held, what) = probe(mid, &format!("bisection {}/{bisections}", k + 1))?;
            probes.push(Probe {
                rate: mid,
                held,
                what,
            });
            if held {
                lo = mid;
                capacity = Some(mid);
            } else {
                hi = mid;
            }
        }
    }
    Ok(Search { capacity, probes })
}

/// One probe of a [`search`].
#[derive(Debug)]
pub struct Probe<T> {
    /// The rate tried.
    pub rate: f64,
    /// Whether it held.
    pub held: bool,
    /// What the probe returned besides.
    pub what: T,
}

/// What a [`search`] found.
#[derive(Debug)]
pub struct Search<T> {
    /// The highest rate that held (`None`: none did).
    pub capacity: Option<f64>,
    /// Every probe, in the order run.
    pub probes: Vec<Probe<T>>,
}

/// Runs the sweep: `run(rate, label)` is one measured load. Prints each
/// step's progress line and returns every step and the capacity. Without
/// an objective every step runs and none fails.
pub fn run_sweep(
    plan: &RatePlan,
    slo: Option<Slo>,
    mut run: impl FnMut(f64, &str) -> anyhow::Result<Report>,
    stopped: impl Fn() -> bool,
) -> anyhow::Result<SweepReport> {
    let rates: Vec<f64> = plan
        .steps()
        .into_iter()
        .filter_map(|r| match r {
            Rate::PerSecond(r) => Some(r),
            Rate::Max => None,
        })
        .collect();
    let bisections = if slo.is_some() { BISECTIONS } else { 0 };
    let found = search(&rates, bisections, stopped, |offered, label| {
        eprintln!("torsion load: {label}, offered {}/s", human_rate(offered));
        let report = run(offered, label)?;
        let (held, value) = match slo {
            Some(s) => s.held_by(&report, offered),
            None => (true, None),
        };
        let bisection = label.starts_with("bisection");
        Ok((held, (report, value, bisection)))
    })?;
    let steps: Vec<Step> = found
        .probes
        .into_iter()
        .map(|p| {
            let (report, slo_value_us, bisection) = p.what;
            Step {
                offered: p.rate,
                report,
                slo_value_us,
                held: slo.map(|_| p.held),
                bisection,
            }
        })
        .collect();
    let capacity = slo.and(found.capacity);
    let capacity_is_lower_bound = capacity.is_some() && steps.iter().all(|s| s.held != Some(false));
    let first = steps.first().map(|s| &s.report);
    Ok(SweepReport {
        capacity_is_lower_bound,
        mode: first.map(|r| r.mode.clone()).unwrap_or_default(),
        target: first.map(|r| r.target.clone()).unwrap_or_default(),
        slo,
        steps,
        capacity,
    })
}

/// `20000` → `20k`, `1500000` → `1.5M`.
pub fn human_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{}M", (r / 1e4).round() / 100.0)
    } else if r >= 1e3 {
        format!("{}k", (r / 10.0).round() / 100.0)
    } else {
        format!("{}", r.round())
    }
}

impl SweepReport {
    /// The human report: one row per step, then the capacity.
    pub fn render(&self) -> String {
        super::report::render_with(|out| self.render_into(out))
    }

    fn render_into(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "torsion load {} → {}: rate sweep, {} step{}{}",
            self.mode,
            self.target,
            self.steps.len(),
            if self.steps.len() == 1 { "" } else { "s" },
            match &self.slo {
                Some(s) =>
                    format!(", objective {s} (corrected), no errors, ≥95% of offered achieved"),
                None => String::new(),
            }
        )?;
        writeln!(
            out,
            "       offered     achieved   errors   p50 (µs)   p99 (µs) p99.9 (µs){}",
            if self.slo.is_some() { "  held" } else { "" }
        )?;
        for s in &self.steps {
            let r = &s.report;
            let p = &r.corrected;
            let cell = |v: f64| {
                if p.count == 0 {
                    "-".to_string()
                } else {
                    format!("{v:.1}")
                }
            };
            writeln!(
                out,
                "  {:>12} {:>12.0} {:>8} {:>10} {:>10} {:>10}{}",
                format!(
                    "{}{}/s",
                    if s.bisection { "~" } else { "" },
                    human_rate(s.offered)
                ),
                r.achieved_rate,
                r.errors.total(),
                cell(p.p50_us),
                cell(p.p99_us),
                cell(p.p999_us),
                match s.held {
                    Some(true) => "  yes",
                    Some(false) => "  no",
                    None => "",
                }
            )?;
        }
        if let Some(slo) = &self.slo {
            match self.capacity {
                Some(c) if self.capacity_is_lower_bound => writeln!(
                    out,
                    "  capacity: at least {}/s: every step held {slo} (sweep higher to find it)",
                    human_rate(c)
                )?,
                Some(c) => writeln!(
                    out,
                    "  capacity: {}/s offered holds {slo} (~: found by bisection)",
                    human_rate(c)
                )?,
                None => writeln!(out, "  capacity: no step held {slo}")?,
            }
        }
        Ok(())
    }

    /// Writes the JSON summary.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        super::report::write_json_file(path, self)
    }

    /// Whether any step counted an error.
    pub fn has_errors(&self) -> bool {
        self.steps.iter().any(|s| s.report.has_errors())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_sweeps_parse_and_bad_ones_are_refused() {
        assert_eq!("max".parse::<RatePlan>().unwrap(), RatePlan::One(Rate::Max));
        assert_eq!(
            "50k".parse::<RatePlan>().unwrap(),
            RatePlan::One(Rate::PerSecond(50_000.0))
        );
        let sweep: RatePlan = "20k..100k/20k".parse().unwrap();
        let rates: Vec<Rate> = sweep.steps();
        assert_eq!(rates.len(), 5);
        assert_eq!(rates[4], Rate::PerSecond(100_000.0));
        assert_eq!(
            "1M..1.5M/250k".parse::<RatePlan>().unwrap().steps().len(),
            3
        );
        for (bad, why) in [
            ("0", "> 0"),
            ("20k..10k/1k", "below FROM"),
            ("1k..2k", "no /STEP"),
            ("1k..2k/0", "STEP"),
            ("1..100000/1", "1000 steps"),
            ("fast", "expected"),
        ] {
            let err = bad.parse::<RatePlan>().unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn objectives_parse_and_are_checked_against_a_report() {
        let slo: Slo = "p99=5ms".parse().unwrap();
        assert_eq!((slo.percentile, slo.bound_us), (99.0, 5000.0));
        assert_eq!(slo.to_string(), "p99≤5ms");
        slo.check().unwrap();
        assert!("p99.5=1ms".parse::<Slo>().unwrap().check().is_err());
        for bad in ["99=5ms", "p99", "p99=fast", "p0=1ms", "p99=0s"] {
            assert!(bad.parse::<Slo>().is_err(), "{bad}");
        }
        let mut report = Report {
            achieved_rate: 990.0,
            ..Report::default()
        };
        report.corrected.count = 1000;
        report.corrected.p99_us = 4000.0;
        assert!(slo.held_by(&report, 1000.0).0);
        // Too slow, an error, or a rate not achieved: not held.
        report.corrected.p99_us = 6000.0;
        assert!(!slo.held_by(&report, 1000.0).0);
        report.corrected.p99_us = 4000.0;
        assert!(!slo.held_by(&report, 2000.0).0);
        report.errors.timeout = 1;
        assert!(!slo.held_by(&report, 1000.0).0);
    }

    #[test]
    fn the_sweep_stops_at_the_first_failure_and_bisects_to_the_capacity() {
        // A server that holds p99 ≤ 5 ms up to 67k/s.
        let run = |rate: f64, _: &str| {
            let mut r = Report {
                achieved_rate: rate,
                ..Report::default()
            };
            r.corrected.count = 100;
            r.corrected.p99_us = if rate <= 67_000.0 { 1000.0 } else { 9000.0 };
            Ok(r)
        };
        let plan: RatePlan = "20k..200k/20k".parse().unwrap();
        let sweep = run_sweep(&plan, Some("p99=5ms".parse().unwrap()), run, || false).unwrap();
        let offered: Vec<f64> = sweep.steps.iter().map(|s| s.offered).collect();
        assert_eq!(&offered[..4], [20e3, 40e3, 60e3, 80e3]);
        assert_eq!(sweep.steps.len(), 4 + BISECTIONS);
        // 60k..80k → 70k (no) → 65k (yes) → 67.5k (no).
        assert_eq!(sweep.capacity, Some(65_000.0));
        let text = sweep.render();
        assert!(
            text.contains("capacity: 65k/s offered holds p99≤5ms"),
            "{text}"
        );
        assert!(text.contains("~67.5k/s"), "{text}");
        assert!(!sweep.capacity_is_lower_bound);
        // A server that holds everything: the capacity is a lower bound.
        let plan: RatePlan = "1k..3k/1k".parse().unwrap();
        let easy = |rate: f64, _: &str| {
            let mut r = Report {
                achieved_rate: rate,
                ..Report::default()
            };
            r.corrected.count = 100;
            r.corrected.p99_us = 10.0;
            Ok(r)
        };
        let sweep = run_sweep(&plan, Some("p99=5ms".parse().unwrap()), easy, || false).unwrap();
        assert_eq!((sweep.steps.len(), sweep.capacity), (3, Some(3000.0)));
        assert!(sweep.capacity_is_lower_bound);
        assert!(
            sweep.render().contains("at least 3k/s"),
            "{}",
            sweep.render()
        );
    }
}
