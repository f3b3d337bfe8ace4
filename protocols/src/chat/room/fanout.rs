//! Lines to every named reader: written once as one `Bytes`, crossed to
//! each other shard once, held in corked transports for the flush window.
//!
//! # Back-pressure: a fast sender cannot get healthy readers cut
//!
//! Every line reaches every named client, so a recipient that is behind is
//! behind on *every* sender's lines. The room therefore throttles its
//! senders, not its readers, the way Twisted's producer/consumer would:
//!
//! * **Locally.** A write that takes a recipient's queue above the
//!   high-water mark marks it *congested* on the spot
//!   (`Transport::is_writing_paused`). While any recipient on this shard is
//!   congested, the room *holds*: it pauses reading from every named client
//!   here (`pause_reading`; the line framing then delivers no further line,
//!   and TCP slows the senders down). When the recipient drains to the
//!   low-water mark (`resume_writing`) the hold ends.
//! * **Across shards.** Lines sent to another shard are counted against a
//!   window per destination ([`fanout_window`]: a quarter of the outbound
//!   cap, shared between the other shards). The destination acknowledges
//!   what it has written to its recipients — but not while it is congested.
//!   A shard with more than a window unacknowledged at any destination holds
//!   its senders too. Bus traffic for lines is bounded by the windows.
//! * **Stalled readers.** A recipient that stays congested for the stall
//!   timeout (default 2 s) stops holding the room back: it is marked
//!   *stalled*, the room moves on, and if it still does not read, its queue
//!   reaches the hard cap and it is cut as a slow consumer. So a client that
//!   never reads stalls the room for at most the stall timeout, once.
//!
//! A fast reader's queue thus stays under about `high water + one line +
//! (shards − 1) × (window + one line)`, a fraction of the hard cap, however
//! fast anyone sends.
//!
//! # The flush window: one send for several messages
//!
//! Every line goes to every named client, so at a steady rate a reader gets
//! one line every few hundred microseconds, and sending each on its own
//! costs one `send` (and one wake-up of its connection) per line per
//! reader: the bulk of the room's CPU. With a flush window (default 1.25 ms,
//! `--flush-window`), the first line written opens the window, every
//! reader's transport is *corked* (`Transport::cork`), and when the window
//! closes the room uncorks them all: each reader's lines of the whole window
//! leave in one `sendmsg`. The trade is latency for CPU, as NATS's flusher
//! and Kafka's `linger.ms` make it: a line waits at most the window before
//! it is sent. A cork gives way at the high-water mark, so a burst is never
//! held back and back-pressure works as below. Zero turns the window off.
//!
//! The default, 1.25 ms, and the choices below were measured against
//! 1 ms and against Twisted in the same runs (BENCHMARKS.md, the chat
//! passes of issue 15). Closing a window early once it
//! held a number of lines (Kafka's `batch.size`) was tried and measured
//! worse on both counts: the early uncork of every reader mid-turn cost
//! more sends and a longer tail.
//!
//! # Sleeping through the window
//!
//! Corking saves the sends, not the wake-ups: the shard still woke for
//! each incoming line (a readable socket) only to queue it. While a window
//! is open the room therefore asks the shard to sleep through single
//! wake-ups until the window closes (`Clock::coalesce_wakeups_for`, default
//! on, `--coalesce-wakeups off` to turn it off): the lines that arrive
//! meanwhile, other shards' lines and cluster lines too, are read together
//! when it wakes at the window's end, join that window and leave with it.
//! A line still waits at most about the window (plus the time to read what
//! came), so the latency bound is the same; what goes is a wake-up, a
//! reactor turn and a read per line. Everything else on the shard (a new
//! client's greeting, `/who` answers, a metrics scrape, a protocol a
//! library user serves beside chat) waits with the window too, by at most
//! one window and never more than [`MAX_COALESCED_SLEEP`] (5 ms: a longer
//! window is slept through for its first 5 ms only); turn it off when
//! that matters. BENCHMARKS.md measures it against `--coalesce-wakeups
//! off` in the same runs.

use std::rc::Rc;

use bytes::Bytes;

use super::{Recipient, Room, MAX_COALESCED_SLEEP};
use crate::chat::message::ChatMessage;
use crate::chat::wire::ChatWire;

impl Room {
    /// Writes `line` to every named client here but `from`, and sends it once
    /// to every other shard.
    pub(super) fn deliver_from(&self, from: u64, line: Bytes) {
        self.stats.message_sent();
        self.write_to_named(Some(from), &line, 1);
        if let Some(cluster) = self.cluster.get() {
            cluster.line(line.clone());
        }
        if self.shards > 1 {
            if let Some(bus) = self.bus.get() {
                if let Err(e) = bus.broadcast(ChatMessage::Deliver {
                    line: line.clone(),
                    from: self.shard,
                }) {
                    tracing::error!(shard = self.shard, "chat broadcast failed: {e}");
                }
            }
            let mut unacked = self.unacked.borrow_mut();
            let mut crossed = 0;
            for (shard, n) in unacked.iter_mut().enumerate() {
                if shard != self.shard {
                    let before = *n;
                    *n += line.len();
                    if before <= self.window && *n > self.window {
                        crossed += 1;
                    }
                }
            }
            drop(unacked);
            if crossed > 0 {
                self.over_window.set(self.over_window.get() + crossed);
                self.update_hold();
            }
        }
    }

    /// Queues `line` (which holds `lines` lines) for every named client
    /// here but `except`; marks the ones it takes above their high-water
    /// mark congested.
    pub(super) fn write_to_named(&self, except: Option<u64>, line: &Bytes, lines: usize) {
        let windowed = !self.config.flush_window.is_zero();
        let mut newly_congested = Vec::new();
        let mut clock = None;
        let mut readers = 0;
        // Framed once for all of this shard's readers on a wire.
        let mut framed: Option<Bytes> = None;
        for r in self.named.borrow().iter() {
            if Some(r.id) == except {
                continue;
            }
            readers += 1;
            if windowed {
                r.transport.cork();
                clock.get_or_insert_with(|| r.transport.clock());
            }
            // Err: the connection is closing, and its end reason says why.
            let _ = match r.wire {
                ChatWire::Lines => r.transport.write_shared(line),
                #[allow(unreachable_patterns)]
                wire => r
                    .transport
                    .write_shared(framed.get_or_insert_with(|| wire.frame(line))),
            };
            if r.transport.is_writing_paused() && !r.congested.get() {
                newly_congested.push(r.id);
            }
        }
        self.stats.delivered(readers * lines);
        if let Some(clock) = clock {
            self.open_window(&clock);
        }
        for id in newly_congested {
            self.recipient_congested(id);
        }
    }

    /// Opens the flush window unless it is open: it closes (and every
    /// reader's held lines are sent) `flush_window` from now.
    pub(super) fn open_window(&self, clock: &torsion::Clock) {
        if self.window_open.replace(true) {
            return;
        }
        if self.config.coalesce_wakeups {
            clock.coalesce_wakeups_for(self.config.flush_window.min(MAX_COALESCED_SLEEP));
        }
        let room = self.me.clone();
        // The window closes by itself; the handle is not needed.
        let _ = clock.call_later(self.config.flush_window, move || {
            if let Some(room) = room.upgrade() {
                room.close_window();
            }
        });
    }

    /// Sends what the flush window held: uncorks every named reader.
    pub(super) fn close_window(&self) {
        self.window_open.set(false);
        for r in self.named.borrow().iter() {
            r.transport.uncork();
        }
    }

    /// Named client `id` as a recipient (a clone of its entry, so no
    /// borrow of the list is held while it is acted on).
    pub(super) fn recipient(&self, id: u64) -> Option<Rc<Recipient>> {
        self.named.borrow().iter().find(|r| r.id == id).cloned()
    }

    /// Recipient `id`'s queue is above its high-water mark.
    pub(crate) fn recipient_congested(&self, id: u64) {
        let Some(r) = self.recipient(id) else { return };
        if r.congested.replace(true) {
            return;
        }
        if self.config.stall_timeout.is_zero() {
            r.stalled.set(true);
            return;
        }
        let room = self.me.clone();
        let timer = r
            .transport
            .clock()
            .call_later(self.config.stall_timeout, move || {
                if let Some(room) = room.upgrade() {
                    room.stall_expired(id);
                }
            });
        *r.stall_timer.borrow_mut() = Some(timer);
        self.congested.set(self.congested.get() + 1);
        self.update_hold();
    }

    /// Recipient `id` drained to its low-water mark.
    pub(crate) fn recipient_drained(&self, id: u64) {
        let Some(r) = self.recipient(id) else { return };
        if !r.congested.replace(false) {
            return;
        }
        if let Some(t) = r.stall_timer.borrow_mut().take() {
            t.cancel();
        }
        if !r.stalled.replace(false) {
            self.congestion_eased();
        }
    }

    /// One congested recipient fewer: acknowledge what others sent once
    /// none is left, and perhaps end the hold.
    pub(super) fn congestion_eased(&self) {
        self.congested.set(self.congested.get() - 1);
        if self.congested.get() == 0 {
            self.send_owed_acks();
        }
        self.update_hold();
    }

    pub(super) fn stall_expired(&self, id: u64) {
        let Some(r) = self.recipient(id) else { return };
        r.stall_timer.borrow_mut().take();
        if !r.congested.get() || r.stalled.replace(true) {
            return;
        }
        tracing::debug!(
            shard = self.shard,
            conn = id,
            queued = r.transport.buffered_len(),
            "chat reader stalled: no longer holding the room back"
        );
        self.congestion_eased();
    }

    /// Acknowledges every shard's lines written since the last ack.
    pub(super) fn send_owed_acks(&self) {
        let owed: Vec<(usize, usize)> = self
            .owed
            .borrow_mut()
            .iter_mut()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| (s, std::mem::take(n)))
            .collect();
        for (shard, bytes) in owed {
            self.send(
                shard,
                ChatMessage::Ack {
                    from: self.shard,
                    bytes,
                },
            );
        }
    }

    /// `Deliver`: another shard's line for every named reader here; owed
    /// back as an acknowledgement once a quarter window has been written
    /// (and nobody here is congested).
    pub(super) fn line_from_shard(&self, from: usize, line: Bytes) {
        self.write_to_named(None, &line, 1);
        let mut owed = self.owed.borrow_mut();
        if let Some(n) = owed.get_mut(from) {
            *n += line.len();
            if self.congested.get() == 0 && *n >= self.window / 4 {
                let bytes = std::mem::take(n);
                drop(owed);
                self.send(
                    from,
                    ChatMessage::Ack {
                        from: self.shard,
                        bytes,
                    },
                );
            }
        }
    }

    /// `Ack`: shard `from` wrote `bytes` of this shard's lines.
    pub(super) fn acknowledged(&self, from: usize, bytes: usize) {
        let mut unacked = self.unacked.borrow_mut();
        let Some(n) = unacked.get_mut(from) else {
            return;
        };
        let before = *n;
        *n = n.saturating_sub(bytes);
        let uncrossed = before > self.window && *n <= self.window;
        drop(unacked);
        if uncrossed {
            self.over_window.set(self.over_window.get() - 1);
            self.update_hold();
        }
    }
}
