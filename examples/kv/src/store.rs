//! One shard's keys: what a shard does when asked ([`Op`] → [`Answer`]).
//!
//! Values are byte strings. A key lives in `values`, key and value each a
//! `SmallVec<[u8; 16]>`: up to 16 bytes sit in the map's slot itself (24
//! bytes), longer ones on the heap. Short keys are then compared without
//! following a pointer — a lookup costs the cache misses of the table, not
//! one more for the key — and take no allocation of their own. A key with
//! a time to live also has an entry in `expires` (Redis keeps a second
//! dictionary the same way). Expired keys
//! go when touched, and a sweep every 100 ms removes up to 64 more — a
//! quiet key's memory comes back without a scan of the whole map.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use smallvec::SmallVec;

/// A key or a value: inline up to 16 bytes.
type Blob = SmallVec<[u8; 16]>;

/// `SET`'s condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Always.
    Always,
    /// Only if the key is missing (`NX`).
    Missing,
    /// Only if the key exists (`XX`).
    Present,
}

/// What happens to a key's time to live on `SET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Cleared.
    Clear,
    /// Kept (`KEEPTTL`).
    Keep,
    /// Set to this (`EX`/`PX`).
    In(Duration),
}

/// One shard's part of a command.
#[derive(Debug, Clone)]
pub enum Op {
    /// `GET`.
    Get(Bytes),
    /// `SET`.
    Set(Bytes, Bytes, Condition, Ttl),
    /// `DEL` of these keys: how many existed.
    Del(Vec<Bytes>),
    /// `EXISTS`: how many of these exist (repeats counted).
    Exists(Vec<Bytes>),
    /// `INCRBY`.
    IncrBy(Bytes, i64),
    /// `MGET`: each value or none.
    MGet(Vec<Bytes>),
    /// `MSET`.
    MSet(Vec<(Bytes, Bytes)>),
    /// `EXPIRE` in seconds (≤ 0 deletes).
    Expire(Bytes, i64),
    /// `TTL`.
    Ttl(Bytes),
    /// How many keys.
    DbSize,
    /// Remove every key.
    FlushAll,
}

/// A shard's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `+OK`.
    Ok,
    /// A number.
    Int(i64),
    /// A value, or none (`$-1`).
    Value(Option<Bytes>),
    /// Several values (`MGET`).
    Values(Vec<Option<Bytes>>),
    /// An error reply (the text after `-`).
    Error(&'static str),
}

/// How many expired keys one sweep removes at most.
const SWEEP: usize = 64;

/// One shard's keys.
#[derive(Debug, Default)]
pub struct Store {
    values: HashMap<Blob, Blob>,
    expires: HashMap<Blob, Instant>,
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        Store::default()
    }

    /// Drops `key` if its time is up; true if it (still) exists.
    fn live(&mut self, key: &[u8], now: Instant) -> bool {
        if let Some(&at) = self.expires.get(key) {
            if at <= now {
                self.expires.remove(key);
                self.values.remove(key);
                return false;
            }
        }
        self.values.contains_key(key)
    }

    /// Runs `f` on `key`'s value (or none) without copying it out.
    pub fn read<R>(&mut self, key: &[u8], now: Instant, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
        if self.live(key, now) {
            f(self.values.get(key).map(|v| &v[..]))
        } else {
            f(None)
        }
    }

    fn get(&mut self, key: &[u8], now: Instant) -> Option<Bytes> {
        self.live(key, now)
            .then(|| Bytes::copy_from_slice(&self.values[key]))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) {
        match self.values.get_mut(key) {
            Some(slot) => *slot = Blob::from_slice(value),
            None => {
                self.values
                    .insert(Blob::from_slice(key), Blob::from_slice(value));
            }
        }
    }

    fn remove(&mut self, key: &[u8], now: Instant) -> bool {
        let existed = self.live(key, now);
        self.values.remove(key);
        self.expires.remove(key);
        existed
    }

    /// Serves one op at `now`.
    pub fn apply(&mut self, op: Op, now: Instant) -> Answer {
        match op {
            Op::Get(key) => Answer::Value(self.get(&key, now)),
            Op::Set(key, value, condition, ttl) => {
                let exists = self.live(&key, now);
                let allowed = match condition {
                    Condition::Always => true,
                    Condition::Missing => !exists,
                    Condition::Present => exists,
                };
                if !allowed {
                    return Answer::Value(None);
                }
                self.put(&key, &value);
                match ttl {
                    Ttl::Keep => {}
                    Ttl::Clear => {
                        self.expires.remove(&key[..]);
                    }
                    Ttl::In(d) => {
                        self.expires.insert(Blob::from_slice(&key), now + d);
                    }
                }
                Answer::Ok
            }
            Op::Del(keys) => {
                Answer::Int(keys.iter().filter(|k| self.remove(k, now)).count() as i64)
            }
            Op::Exists(keys) => {
                Answer::Int(keys.iter().filter(|k| self.live(k, now)).count() as i64)
            }
            Op::IncrBy(key, delta) => {
                let current = match self.get(&key, now) {
                    None => 0,
                    Some(v) => match parse_i64(&v) {
                        Some(n) => n,
                        None => {
                            return Answer::Error("ERR value is not an integer or out of range")
                        }
                    },
                };
                match current.checked_add(delta) {
                    Some(n) => {
                        // INCR keeps the key's time to live.
                        self.put(&key, itoa::Buffer::new().format(n).as_bytes());
                        Answer::Int(n)
                    }
                    None => Answer::Error("ERR increment or decrement would overflow"),
                }
            }
            Op::MGet(keys) => Answer::Values(keys.iter().map(|k| self.get(k, now)).collect()),
            Op::MSet(pairs) => {
                for (key, value) in pairs {
                    self.put(&key, &value);
                    self.expires.remove(&key[..]);
                }
                Answer::Ok
            }
            Op::Expire(key, seconds) => {
                if !self.live(&key, now) {
                    return Answer::Int(0);
                }
                if seconds <= 0 {
                    self.remove(&key, now);
                } else {
                    let d = Duration::from_secs(seconds.min(100 * 365 * 24 * 3600) as u64);
                    self.expires.insert(Blob::from_slice(&key), now + d);
                }
                Answer::Int(1)
            }
            Op::Ttl(key) => {
                if !self.live(&key, now) {
                    return Answer::Int(-2);
                }
                match self.expires.get(&key[..]) {
                    None => Answer::Int(-1),
                    Some(at) => {
                        let ms = at.saturating_duration_since(now).as_millis() as i64;
                        Answer::Int((ms + 500) / 1000)
                    }
                }
            }
            Op::DbSize => Answer::Int(self.values.len() as i64),
            Op::FlushAll => {
                self.values = HashMap::new();
                self.expires = HashMap::new();
                Answer::Ok
            }
        }
    }

    /// How many keys are held (expired ones until touched or swept).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Removes up to 64 keys whose time is up; how many it removed.
    pub fn sweep(&mut self, now: Instant) -> usize {
        let due: Vec<Blob> = self
            .expires
            .iter()
            .filter(|(_, &at)| at <= now)
            .take(SWEEP)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &due {
            self.expires.remove(key);
            self.values.remove(key);
        }
        due.len()
    }
}

/// A whole decimal `i64` as Redis reads one (`string2ll`), the RESP
/// codec's own reader.
pub use torsion_protocols::codec::resp::parse_i64;

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn set_get_conditions_and_ttls() {
        let mut s = Store::new();
        let t0 = Instant::now();
        assert_eq!(
            s.apply(Op::Set(b("k"), b("v"), Condition::Present, Ttl::Clear), t0),
            Answer::Value(None)
        );
        assert_eq!(
            s.apply(
                Op::Set(
                    b("k"),
                    b("v"),
                    Condition::Missing,
                    Ttl::In(Duration::from_secs(10))
                ),
                t0
            ),
            Answer::Ok
        );
        assert_eq!(s.apply(Op::Ttl(b("k")), t0), Answer::Int(10));
        assert_eq!(
            s.apply(Op::IncrBy(b("k"), 1), t0),
            Answer::Error("ERR value is not an integer or out of range")
        );
        assert_eq!(
            s.apply(Op::Get(b("k")), t0 + Duration::from_secs(9)),
            Answer::Value(Some(b("v")))
        );
        assert_eq!(
            s.apply(Op::Get(b("k")), t0 + Duration::from_secs(10)),
            Answer::Value(None)
        );
        assert_eq!(s.apply(Op::DbSize, t0), Answer::Int(0), "expired on touch");
        assert_eq!(
            s.apply(Op::IncrBy(b("n"), i64::MAX), t0),
            Answer::Int(i64::MAX)
        );
        assert_eq!(
            s.apply(Op::IncrBy(b("n"), 1), t0),
            Answer::Error("ERR increment or decrement would overflow")
        );
        assert_eq!(
            s.apply(Op::Exists(vec![b("n"), b("n"), b("x")]), t0),
            Answer::Int(2)
        );
        assert_eq!(s.apply(Op::Expire(b("n"), 0), t0), Answer::Int(1));
        assert_eq!(s.apply(Op::Ttl(b("n")), t0), Answer::Int(-2));
    }

    #[test]
    fn the_sweep_removes_expired_keys_a_bounded_number_at_a_time() {
        let mut s = Store::new();
        let t0 = Instant::now();
        for i in 0..100 {
            s.apply(
                Op::Set(
                    b(&format!("k{i}")),
                    b("v"),
                    Condition::Always,
                    Ttl::In(Duration::from_secs(1)),
                ),
                t0,
            );
        }
        let later = t0 + Duration::from_secs(2);
        assert_eq!(s.sweep(later), 64);
        assert_eq!(s.sweep(later), 36);
        assert_eq!(s.apply(Op::DbSize, later), Answer::Int(0));
    }

    #[test]
    fn numbers_are_read_as_redis_reads_them() {
        assert_eq!(parse_i64(b"-12"), Some(-12));
        for bad in [
            &b""[..],
            b"+1",
            b" 1",
            b"01",
            b"-0",
            b"1.0",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }
}
