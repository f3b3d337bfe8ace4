//! Coordinating load shards: a common start, per-second intervals, stop.
//!
//! Load shards are pinned executors (`torsion::pinned`). Each one sets
//! up its connections and then *arrives*; once every shard has arrived the
//! driving thread fixes the run's phases (start, end of warm-up, end) and the
//! shards begin together, so every schedule is measured against the same
//! clock. Each shard reports its interval histogram once a second over a
//! crossbeam channel; the driving thread merges them into the HdrHistogram
//! interval log and the live line. A stop flag (Ctrl-C) ends the run early
//! with the results so far.

use std::cell::RefCell;
use std::future::Future;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Sender;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use torsion::{Clock, JoinHandle, ShardInfo};

use super::recorder::{histogram, Interval, Recorder};

/// The run's time line, fixed when every shard has arrived.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    /// Schedules start here (warm-up begins).
    pub start: Instant,
    /// Measurement begins here (end of warm-up).
    pub measure_from: Instant,
    /// Sending stops here.
    pub end: Instant,
}

/// An open-loop sending schedule: intended send times fixed in advance,
/// whatever the responses do (what coordinated-omission correction
/// measures against). Sender `index` of `count` sends every `interval`,
/// offset by `index / count` of it so the senders interleave, from the
/// phases' start until their end or a stop.
#[derive(Debug)]
pub struct Schedule {
    first: Instant,
    interval: Duration,
    end: Instant,
    next_seq: u64,
}

impl Schedule {
    /// `count` senders sharing `rate` sends per second; this is sender
    /// `index`.
    pub fn new(phases: Phases, rate: f64, index: usize, count: usize) -> Schedule {
        let interval = Duration::from_secs_f64(count as f64 / rate);
        Schedule {
            first: phases.start + interval.mul_f64(index as f64 / count as f64),
            interval,
            end: phases.end,
            next_seq: 0,
        }
    }

    /// The next send, without waiting for it: its sequence number and
    /// intended time, or `None` once sending is over (the end, or a stop).
    /// [`Schedule::advance`] moves past it once it is sent.
    pub fn peek(&self, coord: &Coordinator) -> Option<(u64, Instant)> {
        let seq = self.next_seq;
        let intended = self.first + self.interval.mul_f64(seq as f64);
        if intended >= self.end || coord.stopping() {
            return None;
        }
        Some((seq, intended))
    }

    /// Moves past the send [`Schedule::peek`] returned.
    pub fn advance(&mut self) {
        self.next_seq += 1;
    }

    /// Waits for the next send time; returns its sequence number and
    /// intended time, or `None` once sending is over.
    pub async fn next(&mut self, coord: &Coordinator) -> Option<(u64, Instant)> {
        let (seq, intended) = self.peek(coord)?;
        sleep_until(intended).await;
        self.advance();
        Some((seq, intended))
    }
}

/// Sleeps until `when` on the shard's clock (at once if it has passed,
/// without arming a timer).
pub async fn sleep_until(when: Instant) {
    if when > Instant::now() {
        Clock::real().sleep_until(when).await;
    }
}

/// A timer for a connection's future, which is polled at every read, far
/// more often than its timers fire.
///
/// A [`torsion::Sleep`] on the real clock registers itself with the shard's
/// timer map on every poll (a clock read, a map removal and insertion, a
/// waker clone: a tenth of a chat generator's core when a receiver's
/// deadline was polled per read). An `Alarm` registers its sleep once per
/// waker and otherwise only compares the time it is given; the sleep still
/// wakes the task when the time comes (the shard's timers fire once their
/// deadline has passed by its clock, so the comparison agrees).
#[derive(Debug)]
pub struct Alarm {
    when: Instant,
    sleep: Option<torsion::Sleep>,
    waker: Option<Waker>,
}

impl Alarm {
    /// An alarm for `when` (nothing is armed before its first poll).
    pub fn at(when: Instant) -> Alarm {
        Alarm {
            when,
            sleep: None,
            waker: None,
        }
    }

    /// When it goes off.
    pub fn when(&self) -> Instant {
        self.when
    }

    /// Ready once `now` (a reading of `Instant::now()` taken for this poll)
    /// has reached the alarm's time; otherwise makes sure the task is woken
    /// then.
    pub fn poll_at(&mut self, now: Instant, cx: &mut Context<'_>) -> Poll<()> {
        if now >= self.when {
            self.sleep = None;
            return Poll::Ready(());
        }
        if self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        let when = self.when;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Clock::real().sleep_until(when));
        match Pin::new(sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(()),
            Poll::Pending => {
                self.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Shared by the driving thread and every load shard.
pub struct Coordinator {
    shards: usize,
    arrived: AtomicUsize,
    failure: Mutex<Option<String>>,
    phases: OnceLock<Phases>,
    stop: Arc<AtomicBool>,
    intervals: Sender<Interval>,
}

impl Coordinator {
    /// Records a set-up failure; the run is abandoned.
    pub fn fail(&self, message: String) {
        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        f.get_or_insert(message);
    }

    fn failed(&self) -> bool {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// True once a stop was asked for (Ctrl-C).
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Called by a shard once set up; waits for the others and returns the
    /// phases, or `None` if the run was abandoned.
    pub async fn arrive(&self) -> Option<Phases> {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        loop {
            if let Some(p) = self.phases.get() {
                return Some(*p);
            }
            if self.failed() || self.stopping() {
                return None;
            }
            Clock::real().sleep(Duration::from_millis(1)).await;
        }
    }

    /// Reports one second of a shard's measurements.
    pub fn report_interval(&self, interval: Interval) {
        // Err: the live report ended; totals are kept apart.
        let _ = self.intervals.send(interval);
    }
}

/// Spawns, on the current shard, the task that sends `recorder`'s interval
/// at each whole second of the measured period. It returns the index of the
/// last (unsent) interval: once its connections are done the shard sends that
/// one with [`report_final_interval`], so responses that arrive while the run
/// drains are in the log too.
pub fn spawn_ticker(
    coord: Arc<Coordinator>,
    phases: Phases,
    recorder: Rc<RefCell<Recorder>>,
) -> JoinHandle<u64> {
    torsion::spawn_local(async move {
        let mut index = 0u64;
        loop {
            let due = phases.measure_from + Duration::from_secs(index + 1);
            if due >= phases.end {
                return index;
            }
            sleep_until(due).await;
            if coord.stopping() {
                return index;
            }
            send_interval(&coord, &recorder, index);
            index += 1;
        }
    })
}

fn send_interval(coord: &Coordinator, recorder: &RefCell<Recorder>, index: u64) {
    let (histogram, completed) = recorder.borrow_mut().take_interval();
    let errors = recorder.borrow().errors.total();
    coord.report_interval(Interval {
        index,
        histogram,
        completed,
        errors,
    });
}

/// Sends the shard's last interval (see [`spawn_ticker`]).
pub async fn report_final_interval(
    coord: &Coordinator,
    ticker: JoinHandle<u64>,
    recorder: &RefCell<Recorder>,
) {
    let index = ticker.await;
    send_interval(coord, recorder, index);
}

/// Where per-second figures go.
pub struct IntervalOutput {
    /// Write an HdrHistogram interval log here.
    pub hdr_log: Option<PathBuf>,
    /// Print a live line per second (only on a terminal, unless quiet).
    pub live: bool,
}

/// Runs `task` on a load shard per core; returns the shards' recorders (in
/// shard order), the phases, or the set-up error.
pub fn drive<F, Fut>(
    cores: &[usize],
    warmup: Duration,
    duration: Duration,
    stop: Arc<AtomicBool>,
    output: IntervalOutput,
    task: F,
) -> anyhow::Result<(Vec<Recorder>, Phases)>
where
    F: Fn(ShardInfo, Arc<Coordinator>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Recorder> + 'static,
{
    let (tx, rx) = crossbeam_channel::unbounded();
    let coord = Arc::new(Coordinator {
        shards: cores.len(),
        arrived: AtomicUsize::new(0),
        failure: Mutex::new(None),
        phases: OnceLock::new(),
        stop,
        intervals: tx,
    });
    let pool_coord = coord.clone();
    let pool_cores = cores.to_vec();
    let pool = std::thread::spawn(move || {
        torsion::run_on_cores(&pool_cores, move |info| task(info, pool_coord.clone()))
    });

    // Wait for every shard to arrive (or fail), then fix the time line.
    let phases = loop {
        if coord.failed() || pool.is_finished() {
            break None;
        }
        if coord.arrived.load(Ordering::SeqCst) == coord.shards {
            let start = Instant::now() + Duration::from_millis(20);
            let p = Phases {
                start,
                measure_from: start + warmup,
                end: start + warmup + duration,
            };
            let _ = coord.phases.set(p);
            break Some(p);
        }
        std::thread::sleep(Duration::from_millis(1));
    };

    let mut collector = IntervalCollector::new(coord.shards, output)?;
    while !pool.is_finished() {
        if let Ok(iv) = rx.recv_timeout(Duration::from_millis(50)) {
            collector.add(iv)?;
        }
    }
    let recorders = pool
        .join()
        .map_err(|_| anyhow::anyhow!("the load pool panicked"))??;
    while let Ok(iv) = rx.try_recv() {
        collector.add(iv)?;
    }
    collector.finish()?;
    let failure = coord
        .failure
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(message) = failure {
        anyhow::bail!(message);
    }
    let phases = phases.ok_or_else(|| anyhow::anyhow!("the load shards did not start"))?;
    Ok((recorders, phases))
}

struct Slot {
    histogram: Histogram<u64>,
    completed: u64,
    errors: u64,
    shards: usize,
}

/// An interval's index and merged histogram.
type IndexedHistogram = (u64, Histogram<u64>);

/// Merges the shards' per-second intervals, writes the log and live lines.
struct IntervalCollector {
    shards: usize,
    slots: Vec<Option<Slot>>,
    next: u64,
    log: Option<(std::fs::File, Vec<IndexedHistogram>)>,
    live: bool,
    started: SystemTime,
}

impl IntervalCollector {
    fn new(shards: usize, output: IntervalOutput) -> anyhow::Result<IntervalCollector> {
        let log = match output.hdr_log {
            Some(path) => Some((
                std::fs::File::create(&path)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?,
                Vec::new(),
            )),
            None => None,
        };
        Ok(IntervalCollector {
            shards,
            slots: Vec::new(),
            next: 0,
            log,
            live: output.live && std::io::stderr().is_terminal(),
            started: SystemTime::now(),
        })
    }

    fn add(&mut self, iv: Interval) -> anyhow::Result<()> {
        let i = iv.index as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        let slot = self.slots[i].get_or_insert_with(|| Slot {
            histogram: histogram(),
            completed: 0,
            errors: 0,
            shards: 0,
        });
        let _ = slot.histogram.add(&iv.histogram);
        slot.completed += iv.completed;
        slot.errors += iv.errors;
        slot.shards += 1;
        while let Some(Some(s)) = self.slots.get(self.next as usize) {
            if s.shards < self.shards {
                break;
            }
            let s = self.slots[self.next as usize].take().expect("checked");
            self.emit(self.next, s);
            self.next += 1;
        }
        Ok(())
    }

    fn emit(&mut self, index: u64, s: Slot) {
        if self.live {
            let p99 = s.histogram.value_at_quantile(0.99) as f64 / 1000.0;
            eprintln!(
                "[{:>4}s] {:>9} /s   p99 {:>10.1} µs   errors {}",
                index + 1,
                s.completed,
                p99,
                s.errors
            );
        }
        if let Some((_, hs)) = &mut self.log {
            hs.push((index, s.histogram));
        }
    }

    fn finish(mut self) -> anyhow::Result<()> {
        // Intervals some shard never reported (an early stop): emit as is.
        for i in self.next as usize..self.slots.len() {
            if let Some(s) = self.slots[i].take() {
                self.emit(i as u64, s);
            }
        }
        if let Some((mut file, hs)) = self.log.take() {
            let mut serializer = V2DeflateSerializer::new();
            let mut builder = IntervalLogWriterBuilder::new();
            builder
                .add_comment(
                    "torsion load: corrected latency, nanoseconds, one interval per second",
                )
                .with_start_time(self.started)
                .with_base_time(self.started)
                .with_max_value_divisor(1000.0);
            let mut writer = builder.begin_log_with(&mut file, &mut serializer)?;
            for (index, h) in hs {
                writer
                    .write_histogram(&h, Duration::from_secs(index), Duration::from_secs(1), None)
                    .map_err(|e| anyhow::anyhow!("cannot write the interval log: {e:?}"))?;
            }
        }
        Ok(())
    }
}
