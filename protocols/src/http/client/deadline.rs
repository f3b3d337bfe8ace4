//! Running a future against a deadline on a torsion [`Clock`] (the real one,
//! or a manual one in tests).

use std::future::Future;
use std::time::Instant;

use torsion::Clock;

/// `Some(output)`, or `None` when `deadline` passed first (no deadline:
/// the future's output).
pub(crate) async fn before<T>(
    clock: &Clock,
    deadline: Option<Instant>,
    work: impl Future<Output = T>,
) -> Option<T> {
    match deadline {
        None => Some(work.await),
        Some(at) => {
            futures_lite::future::or(async { Some(work.await) }, async {
                clock.sleep_until(at).await;
                None
            })
            .await
        }
    }
}

/// The earlier of two optional deadlines.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
