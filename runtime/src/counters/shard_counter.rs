//! [`ShardCounter`]: a number one shard writes and scrapes read.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A counter or gauge written by one thread (its shard) and read by any:
/// a relaxed atomic whose writes are a plain load and store, with no locked
/// read-modify-write on the hot path. Two threads adding to the same
/// counter would lose counts: give each shard its own (see
/// [`PerShard`](crate::counters::PerShard)).
#[derive(Debug, Default)]
pub struct ShardCounter(AtomicU64);

impl ShardCounter {
    /// Adds `n` (wrapping at `u64::MAX`). Call from the owning shard only.
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Sets the value (a gauge). Call from the owning shard only.
    pub fn set(&self, n: u64) {
        self.0.store(n, Relaxed);
    }

    /// The value now, from any thread.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_sets_and_wraps() {
        let c = ShardCounter::default();
        c.add(3);
        c.add(4);
        assert_eq!(c.get(), 7);
        c.set(u64::MAX);
        c.add(2);
        assert_eq!(c.get(), 1);
    }
}
