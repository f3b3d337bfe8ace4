//! Server policies (Twisted's `protocols.policies`): idle timeouts,
//! connection caps, read throttling — configured once, applied on every
//! shard, accounted per shard.
//!
//! # How the caps are shared between shards
//!
//! Caps are **split**, not coordinated: shard *i* of *n* may hold its share of
//! `max_connections` (the total divided as evenly as integers allow), and a
//! share of `max_per_ip` rounded up (so one address may hold up to
//! `max_per_ip` rounded up to a multiple of the shard count). Splitting keeps
//! the accept path free of cross-shard messages and locks — a connection is
//! admitted or refused on the spot. The cost: the kernel spreads connections
//! over the shards' `SO_REUSEPORT` listeners by hash, so when a shard's share
//! is full a connection it receives is refused even if another shard has
//! room. With many connections the hash spreads evenly and the difference is
//! small; the policy errs on the side of refusing, which is what a cap is for.
//!
//! The default `max_connections` is sized from the process's file-descriptor
//! limit with headroom (as Redis sizes `maxclients`): the soft
//! `RLIMIT_NOFILE` minus 64, at least 16.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Descriptors kept free for the process itself when sizing the default cap.
pub(crate) const FD_HEADROOM: usize = 64;

/// Policies for a server. `Default` is: no idle timeout, a total connection
/// cap sized from the fd limit, no per-IP cap, no read throttling. Build one
/// from `Default` and the `with_*` setters
/// (`Policies::default().with_idle_timeout(Some(d))`): more policies may
/// come, so the struct cannot be written out literally outside torsion.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Policies {
    /// Close connections with no reads or writes for this long
    /// ([`DisconnectReason::TimedOut`](crate::DisconnectReason::TimedOut)).
    /// Protocols can change or cancel their own with
    /// [`Transport::set_idle_timeout`](crate::Transport::set_idle_timeout).
    pub idle_timeout: Option<Duration>,
    /// Most connections open at once, over all shards (`None`: sized from the
    /// fd limit: the soft `RLIMIT_NOFILE` minus 64 kept for the process, at
    /// least 16).
    pub max_connections: Option<usize>,
    /// Most connections open at once from one IP address.
    pub max_per_ip: Option<usize>,
    /// Most bytes per second read from one connection; reading pauses (the
    /// peer is slowed by TCP) rather than buffering more.
    pub max_read_rate: Option<u64>,
}

crate::with_setters!(Policies {
    with_idle_timeout => idle_timeout: Option<Duration>,
    with_max_connections => max_connections: Option<usize>,
    with_max_per_ip => max_per_ip: Option<usize>,
    #[doc = "(bytes per second)"]
    with_max_read_rate => max_read_rate: Option<u64>,
});

/// The soft fd limit minus [`FD_HEADROOM`], at least 16.
pub(crate) fn default_max_connections() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    let soft = if rc == 0 && lim.rlim_cur != libc::RLIM_INFINITY {
        usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1 << 20
    };
    soft.saturating_sub(FD_HEADROOM).max(16)
}

/// Shard `shard`'s share of `total` over `shards` (an even integer split).
pub(crate) fn share(total: usize, shards: usize, shard: usize) -> usize {
    let shards = shards.max(1);
    total / shards + usize::from(shard < total % shards)
}

/// Why a connection was turned away by a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverCapacity {
    /// The shard's share of `max_connections` is in use.
    Total,
    /// The shard's share of `max_per_ip` for this address is in use.
    PerIp,
}

/// One shard's admission accounting.
#[derive(Debug)]
pub(crate) struct Admission {
    max_connections: usize,
    max_per_ip: Option<usize>,
    open: Cell<usize>,
    per_ip: RefCell<HashMap<IpAddr, usize>>,
}

impl Admission {
    pub(crate) fn new(p: &Policies, shards: usize, shard: usize) -> Admission {
        let total = p.max_connections.unwrap_or_else(default_max_connections);
        Admission {
            max_connections: share(total, shards, shard),
            max_per_ip: p.max_per_ip.map(|n| n.div_ceil(shards.max(1))),
            open: Cell::new(0),
            per_ip: RefCell::new(HashMap::new()),
        }
    }

    /// Admits a connection from `ip` — the permit gives its place back when
    /// dropped, however the connection ends — or says which cap it hit.
    pub(crate) fn admit(self: &Rc<Self>, ip: IpAddr) -> Result<AdmissionPermit, OverCapacity> {
        self.take(ip)?;
        Ok(AdmissionPermit {
            admission: self.clone(),
            ip,
        })
    }

    fn take(&self, ip: IpAddr) -> Result<(), OverCapacity> {
        if self.open.get() >= self.max_connections {
            return Err(OverCapacity::Total);
        }
        if let Some(cap) = self.max_per_ip {
            let mut per_ip = self.per_ip.borrow_mut();
            let n = per_ip.entry(ip).or_insert(0);
            if *n >= cap {
                return Err(OverCapacity::PerIp);
            }
            *n += 1;
        }
        self.open.set(self.open.get() + 1);
        Ok(())
    }

    /// A connection admitted from `ip` has ended.
    fn release(&self, ip: IpAddr) {
        self.open.set(self.open.get().saturating_sub(1));
        if self.max_per_ip.is_some() {
            let mut per_ip = self.per_ip.borrow_mut();
            if let Some(n) = per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
    }
}

/// Smallest read a throttled connection waits for (or the whole rate, when
/// the rate is lower): keeps a slow rate from turning into one-byte reads.
const THROTTLE_QUANTUM: f64 = 4096.0;

/// A connection's place under the caps (as mini-redis's semaphore
/// permit): held while the connection lives, given back on drop.
#[derive(Debug)]
pub(crate) struct AdmissionPermit {
    admission: Rc<Admission>,
    ip: IpAddr,
}

impl Drop for AdmissionPermit {
    fn drop(&mut self) {
        self.admission.release(self.ip);
    }
}

/// A per-connection token bucket for `max_read_rate`: it holds at most one
/// second's worth of bytes, every read takes at most what it holds, and
/// after a read that leaves less than a quantum (4 KiB, or the rate if
/// lower) reading waits until a quantum has refilled.
#[derive(Debug)]
pub(crate) struct ReadThrottle {
    rate: f64,
    tokens: f64,
    quantum: f64,
    last: Instant,
}

impl ReadThrottle {
    pub(crate) fn new(bytes_per_sec: u64) -> ReadThrottle {
        let rate = bytes_per_sec.max(1) as f64;
        ReadThrottle {
            rate,
            tokens: rate,
            quantum: rate.min(THROTTLE_QUANTUM),
            last: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate);
        self.last = now;
    }

    /// The most bytes the next read may take at `now`.
    pub(crate) fn allowance(&mut self, now: Instant) -> usize {
        self.refill(now);
        self.tokens.max(0.0) as usize
    }

    /// Takes `n` bytes read at `now`; returns how long reading must wait
    /// before the next read (zero if a quantum is left).
    pub(crate) fn consume(&mut self, n: usize, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= n as f64;
        if self.tokens < self.quantum {
            Duration::from_secs_f64((self.quantum - self.tokens) / self.rate)
        } else {
            Duration::ZERO
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_total() {
        for total in [0usize, 1, 5, 100, 1001] {
            for shards in 1..6 {
                let sum: usize = (0..shards).map(|s| share(total, shards, s)).sum();
                assert_eq!(sum, total, "{total} over {shards}");
            }
        }
    }

    #[test]
    fn admission_caps_total_and_per_ip() {
        let p = Policies {
            max_connections: Some(6),
            max_per_ip: Some(3),
            ..Policies::default()
        };
        // Shard 0 of 2: 3 connections, 2 per IP.
        let a = Rc::new(Admission::new(&p, 2, 0));
        let x: IpAddr = "10.0.0.1".parse().unwrap();
        let y: IpAddr = "10.0.0.2".parse().unwrap();
        let x1 = a.admit(x).unwrap();
        let _x2 = a.admit(x).unwrap();
        assert_eq!(a.admit(x).unwrap_err(), OverCapacity::PerIp);
        let _y1 = a.admit(y).unwrap();
        assert_eq!(a.admit(y).unwrap_err(), OverCapacity::Total);
        drop(x1); // the permit gives its place back
        let _y2 = a.admit(y).unwrap();
        assert_eq!(a.admit(x).unwrap_err(), OverCapacity::Total);
    }

    #[test]
    fn the_throttle_allows_a_second_of_burst_then_paces() {
        let t0 = Instant::now();
        let mut t = ReadThrottle::new(1000);
        t.last = t0;
        // The first read may take one second's worth, no more.
        assert_eq!(t.allowance(t0), 1000);
        let wait = t.consume(1000, t0);
        assert!((wait.as_secs_f64() - 1.0).abs() < 1e-9, "{wait:?}");
        assert_eq!(t.allowance(t0 + Duration::from_millis(500)), 500);
        assert_eq!(t.allowance(t0 + Duration::from_secs(1)), 1000);
        // Never more than a second's worth, however long it waited.
        assert_eq!(t.allowance(t0 + Duration::from_secs(60)), 1000);
    }

    #[test]
    fn a_fast_rate_reads_in_quanta_not_in_single_bytes() {
        let t0 = Instant::now();
        let mut t = ReadThrottle::new(64 * 1024);
        t.last = t0;
        assert_eq!(t.allowance(t0), 64 * 1024);
        let wait = t.consume(64 * 1024, t0);
        // Waits for a 4 KiB quantum: 4096 / 65536 s.
        assert!((wait.as_secs_f64() - 0.0625).abs() < 1e-9, "{wait:?}");
        assert_eq!(
            t.consume(1024, t0 + Duration::from_millis(500)),
            Duration::ZERO
        );
    }
}
