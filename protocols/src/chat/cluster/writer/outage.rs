//! When Redis is away: claims refused, `/who` marked incomplete, releases
//! kept, lines dropped past the outage bound, and reconnecting with a
//! back-off.

use super::*;

impl Writer {
    /// Answers a claim `Unavailable`: Redis cannot be asked.
    pub(super) fn refuse_claim(&self, answer: ClaimAnswer) {
        self.stats.claims_unavailable.add(1);
        answer.send(ClaimOutcome::Unavailable);
    }

    /// Answers a `/who` with no other node's names, marked incomplete.
    pub(super) fn who_unreachable(&self, answer: WhoAnswer) {
        answer.send(OtherNodes {
            names: Bytes::new(),
            reachable: false,
        });
    }

    /// While the link is down: refuse claims, answer `/who` with nothing,
    /// keep releases for later, drop lines past the outage bound.
    pub(super) fn while_down(&mut self) {
        while let Some(c) = self.controls.pop_front() {
            match c {
                Request::Claim { answer, .. } => self.refuse_claim(answer),
                Request::Release { name } => {
                    self.held.remove(&name);
                    self.to_release.push(name);
                }
                Request::Who(answer) => self.who_unreachable(answer),
                Request::Line(_) => unreachable!("lines are batched, not controls"),
            }
        }
        self.drop_expired();
    }

    /// Drops the lines queued longer than the outage bound (or past the
    /// backlog's size), counted and logged.
    pub(super) fn drop_expired(&mut self) {
        self.seal();
        let now = self.now();
        let mut dropped = 0;
        while let Some((batch, since)) = self.pending.front() {
            let too_old = now.saturating_duration_since(*since) > self.config.outage;
            if !too_old && self.pending_bytes <= MAX_BACKLOG_BYTES {
                break;
            }
            dropped += batch.count;
            self.pop_pending();
        }
        if dropped > 0 {
            self.stats.lines_dropped.add(dropped);
            tracing::error!(
                dropped,
                outage = ?self.config.outage,
                "chat cluster: Redis unreachable past the outage bound; lines for other nodes dropped"
            );
        }
        self.stats.backlog.set(self.backlog_lines());
    }

    pub(super) fn link_lost(&mut self, e: &redis::RedisError) {
        if self.con.take().is_some() {
            tracing::warn!(node = %self.keys.me, "chat cluster: lost Redis (writer): {e}");
            self.down_since = Some(self.now());
        }
        self.stats.writer_up.set(0);
        // A link that keeps coming back only to fail again is an outage
        // too: the bound applies however it fails.
        self.drop_expired();
        self.backoff.reset();
        self.next_connect = self.now() + self.next_wait();
    }

    pub(super) fn reconnect(&mut self) {
        let attempt = connect(&self.client, "w", &self.keys).and_then(|mut con| {
            let shas = load_scripts(&mut con)?;
            Ok((con, shas))
        });
        match attempt {
            Ok((con, shas)) => {
                let away = self
                    .down_since
                    .take()
                    .map(|t| self.now().saturating_duration_since(t));
                tracing::info!(node = %self.keys.me, ?away, "chat cluster: Redis is back (writer)");
                self.con = Some(con);
                self.shas = shas;
                self.stats.writer_up.set(1);
                self.stats.writer_reconnects.add(1);
                // Renew (and notice a lapse) in the first round.
                self.next_renew = self.now();
            }
            Err(e) => {
                tracing::debug!("chat cluster: reconnecting (writer): {e}");
                self.next_connect = self.now() + self.next_wait();
            }
        }
    }

    /// The wait before the next attempt to reach Redis.
    pub(super) fn next_wait(&mut self) -> Duration {
        next_reconnect_wait(&mut self.backoff)
    }
}
