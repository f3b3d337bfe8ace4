//! Shared pieces of torsion's benchmarks: the ratio table every benchmark
//! prints, comparing torsion with a peer measured in the same run.

use std::time::{Duration, Instant};

use torsion_tests::cpu_time_from_stat;

/// One row of a comparison: torsion's and the peer's figure for one case.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// What was measured.
    pub case: String,
    /// torsion's throughput, bytes per second.
    pub torsion: f64,
    /// The peer's throughput, bytes per second.
    pub peer: f64,
    /// The peer's name.
    pub peer_name: String,
}

/// Throughput of `f` over `bytes` bytes per call: runs it in interleaved
/// rounds with `g` (so both see the same machine state) and returns the
/// median bytes/s of each.
pub fn interleaved_throughput(
    bytes: usize,
    rounds: usize,
    mut f: impl FnMut(),
    mut g: impl FnMut(),
) -> (f64, f64) {
    let mut a = Vec::with_capacity(rounds);
    let mut b = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        a.push(time_once(&mut f));
        b.push(time_once(&mut g));
    }
    (rate(bytes, median(a)), rate(bytes, median(b)))
}

fn time_once(f: &mut impl FnMut()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// The median of `v` (for an even count, the upper of the two middle
/// values). `v` must not be empty.
pub fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// The value following `name` on the bench's command line
/// (`cargo bench … -- --seconds 5`), if any.
pub fn arg(name: &str) -> Option<String> {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter()
        .position(|a| a == name)
        .and_then(|i| argv.get(i + 1))
        .cloned()
}

fn rate(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64()
}

/// Prints the comparison table (throughput in MiB/s and torsion ÷ peer).
pub fn print_table(title: &str, rows: &[Comparison]) {
    println!();
    println!("{title}");
    println!(
        "{:<28} {:>14} {:>14}  {:<34} {:>7}",
        "case", "torsion MiB/s", "peer MiB/s", "peer", "ratio"
    );
    for r in rows {
        println!(
            "{:<28} {:>14.0} {:>14.0}  {:<34} {:>6.2}x",
            r.case,
            r.torsion / (1024.0 * 1024.0),
            r.peer / (1024.0 * 1024.0),
            r.peer_name,
            r.torsion / r.peer
        );
    }
}

/// CPU time (user + system) a thread of this process has used, from
/// `/proc/self/task/TID/stat`.
pub fn thread_cpu_time(tid: u64) -> Duration {
    cpu_time_from_stat(&format!("/proc/self/task/{tid}/stat"))
}

/// CPU time (user + system) another process has used, from
/// `/proc/PID/stat`.
pub fn pid_cpu_time(pid: u32) -> Duration {
    cpu_time_from_stat(&format!("/proc/{pid}/stat"))
}

/// The calling thread's Linux thread id.
pub fn gettid() -> u64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}

/// CPU time (user + system) the whole process has used, from
/// `/proc/self/stat`.
pub fn process_cpu_time() -> Duration {
    cpu_time_from_stat("/proc/self/stat")
}
