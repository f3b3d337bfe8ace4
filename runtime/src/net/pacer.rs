//! Pacing a loop around an operation that keeps failing.
//!
//! A receive loop that meets an error it cannot fix (a doorbell read that
//! fails, a UDP socket whose `recv` keeps erroring) must neither give up
//! serving nor spin at 100% of a core. A [`FailurePacer`] lets the first
//! failure of an episode be retried at once (most errors are one-offs) and
//! makes every further consecutive failure wait a fixed pause first; the
//! next success ends the episode. Callers log once per episode: at its
//! first failure, and when it ends.

use std::time::Duration;

/// How long a loop pauses between consecutive failures.
pub(crate) const FAILURE_PAUSE: Duration = Duration::from_millis(100);

/// Counts consecutive failures and says how long to wait before retrying.
#[derive(Debug)]
pub(crate) struct FailurePacer {
    pause: Duration,
    failures: u64,
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retry {
    /// This failure starts an episode (log it).
    pub(crate) first: bool,
    /// Wait this long before trying again.
    pub(crate) wait: Duration,
}

impl FailurePacer {
    pub(crate) fn new(pause: Duration) -> FailurePacer {
        FailurePacer { pause, failures: 0 }
    }

    /// Records a failure.
    pub(crate) fn failed(&mut self) -> Retry {
        self.failures += 1;
        Retry {
            first: self.failures == 1,
            wait: if self.failures == 1 {
                Duration::ZERO
            } else {
                self.pause
            },
        }
    }

    /// Records a success; returns how many failures the episode it ends
    /// had (`None` if there was none).
    pub(crate) fn succeeded(&mut self) -> Option<u64> {
        match std::mem::take(&mut self.failures) {
            0 => None,
            n => Some(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_retries_at_once_the_next_ones_wait() {
        let mut p = FailurePacer::new(FAILURE_PAUSE);
        assert_eq!(
            p.failed(),
            Retry {
                first: true,
                wait: Duration::ZERO
            }
        );
        for _ in 0..5 {
            assert_eq!(
                p.failed(),
                Retry {
                    first: false,
                    wait: FAILURE_PAUSE
                }
            );
        }
        assert_eq!(p.succeeded(), Some(6));
        assert_eq!(p.succeeded(), None);
        assert!(p.failed().first, "a new episode");
    }
}
