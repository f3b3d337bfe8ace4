//! [`PerShard`]: one value per shard, made by each shard when it starts and
//! read by collectors at scrape time.
//!
//! A protocol's counters live in a `T` of relaxed atomics (or other
//! `Sync` state) that its shard writes alone; the shard gets its own
//! `Arc<T>` once, from [`PerShard::register`] (one lock at start-up), and
//! never touches the set again. A collector takes the set's lock at scrape
//! time to copy the list of `Arc`s. So the set needs no shard count up
//! front, and a shard writes its counters without any lock.

use std::sync::{Arc, Mutex};

/// The registered shards and their values, kept in shard order.
type Slots<T> = Arc<Mutex<Vec<(usize, Arc<T>)>>>;

/// One `T` per shard, registered by the shards themselves. Cheap to clone;
/// clones share the set.
#[derive(Debug)]
pub struct PerShard<T> {
    slots: Slots<T>,
}

impl<T> Clone for PerShard<T> {
    fn clone(&self) -> Self {
        PerShard {
            slots: self.slots.clone(),
        }
    }
}

impl<T> Default for PerShard<T> {
    fn default() -> Self {
        PerShard {
            slots: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl<T: Default> PerShard<T> {
    /// An empty set.
    pub fn new() -> PerShard<T> {
        PerShard::default()
    }

    /// `shard`'s value, made on first use (a shard that starts again, as in
    /// a test that serves twice with one set, keeps counting where it was).
    pub fn register(&self, shard: usize) -> Arc<T> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, value)) = slots.iter().find(|(s, _)| *s == shard) {
            return value.clone();
        }
        let value = Arc::new(T::default());
        slots.push((shard, value.clone()));
        slots.sort_by_key(|(s, _)| *s);
        value
    }
}

impl<T> PerShard<T> {
    /// True when both are the same set (clones of one another).
    pub fn same_set(&self, other: &PerShard<T>) -> bool {
        Arc::ptr_eq(&self.slots, &other.slots)
    }

    /// Every registered shard's value, in shard order.
    pub fn shards(&self) -> Vec<(usize, Arc<T>)> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::ShardCounter;

    #[test]
    fn shards_register_once_and_are_listed_in_order() {
        let set: PerShard<ShardCounter> = PerShard::new();
        let b = set.register(1);
        let a = set.register(0);
        a.add(2);
        b.add(5);
        set.register(1).add(1);
        let listed: Vec<(usize, u64)> = set.shards().iter().map(|(s, v)| (*s, v.get())).collect();
        assert_eq!(listed, vec![(0, 2), (1, 6)]);
    }
}
