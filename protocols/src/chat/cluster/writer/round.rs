//! One round: a pipeline of the oldest batch, the renewal when due and every
//! control, and what each answer means (a lapsed lease reasserts the names);
//! the last round at shutdown.

use super::*;

/// What one command of a round was for.
pub(super) enum Op {
    Xadd,
    Renew,
    Claim { name: String, answer: ClaimAnswer },
    Release(String),
    Who(WhoAnswer),
    DropKey,
}

impl Writer {
    /// One pipeline: the oldest batch, the renewal if due, every control.
    pub(super) fn round(&mut self) {
        self.seal();
        self.last_round = self.now();
        let mut pipe = redis::pipe();
        let mut ops = Vec::new();
        for name in std::mem::take(&mut self.to_release) {
            self.release(&mut pipe, &mut ops, name);
        }
        if let Some((batch, _)) = self.pending.front() {
            let cmd = pipe.cmd("XADD").arg(&self.keys.stream);
            if let Some(ms) = self.last_entry_ms {
                let keep = self.config.retention().as_millis() as u64;
                cmd.arg("MINID").arg("~").arg(ms.saturating_sub(keep));
            }
            cmd.arg("*")
                .arg("n")
                .arg(&self.keys.me)
                .arg("s")
                .arg(batch.first)
                .arg("c")
                .arg(batch.count)
                .arg("t")
                .arg(unix_micros())
                .arg("l")
                .arg(&batch.lines[..]);
            ops.push(Op::Xadd);
        }
        if self.last_round >= self.next_renew {
            pipe.cmd("SET")
                .arg(&self.keys.alive)
                .arg(1)
                .arg("PX")
                .arg(self.config.lease.as_millis() as u64)
                .arg("GET");
            ops.push(Op::Renew);
            self.next_renew = self.last_round + self.renew_every();
        }
        while let Some(c) = self.controls.pop_front() {
            match c {
                Request::Claim { name, answer } => {
                    pipe.cmd("EVALSHA")
                        .arg(&self.shas.claim)
                        .arg(1)
                        .arg(&self.keys.names)
                        .arg(&name)
                        .arg(&self.keys.me)
                        .arg(&self.keys.node_prefix);
                    self.stats.claims.add(1);
                    ops.push(Op::Claim { name, answer });
                }
                Request::Release { name } => {
                    self.held.remove(&name);
                    self.release(&mut pipe, &mut ops, name);
                }
                Request::Who(answer) => {
                    pipe.cmd("EVALSHA")
                        .arg(&self.shas.who)
                        .arg(1)
                        .arg(&self.keys.names)
                        .arg(&self.keys.me)
                        .arg(&self.keys.node_prefix);
                    ops.push(Op::Who(answer));
                }
                Request::Line(_) => unreachable!("lines are batched, not controls"),
            }
        }
        self.send(pipe, ops);
    }

    /// Adds the release of `name` (if this node holds it) to a round.
    pub(super) fn release(&self, pipe: &mut redis::Pipeline, ops: &mut Vec<Op>, name: String) {
        pipe.cmd("EVALSHA")
            .arg(&self.shas.release)
            .arg(1)
            .arg(&self.keys.names)
            .arg(&name)
            .arg(&self.keys.me);
        ops.push(Op::Release(name));
    }

    /// Sends a pipeline and acts on each answer; a lost connection fails
    /// what had no answer.
    pub(super) fn send(&mut self, pipe: redis::Pipeline, ops: Vec<Op>) {
        if ops.is_empty() {
            return;
        }
        let Some(con) = self.con.as_mut() else {
            return self.fail_ops(ops);
        };
        self.stats.writer_commands.add(ops.len() as u64);
        match con.req_packed_commands(&pipe.get_packed_pipeline(), 0, ops.len()) {
            Ok(values) => {
                for (op, v) in ops.into_iter().zip(values) {
                    self.answered(op, v);
                }
                if std::mem::take(&mut self.refused) {
                    let e = redis::RedisError::from((
                        redis::ErrorKind::ResponseError,
                        "Redis refused XADD",
                    ));
                    self.link_lost(&e);
                }
            }
            Err(e) => {
                self.link_lost(&e);
                self.fail_ops(ops);
            }
        }
    }

    pub(super) fn answered(&mut self, op: Op, v: Value) {
        if let Value::ServerError(e) = &v {
            tracing::error!("chat cluster: Redis refused a command: {e:?}");
        }
        match op {
            Op::Xadd => {
                if let Value::BulkString(id) = &v {
                    self.last_entry_ms = std::str::from_utf8(id)
                        .ok()
                        .and_then(|id| id.split('-').next()?.parse().ok());
                    if let Some(batch) = self.pop_pending() {
                        self.stats.lines_sent.add(batch.count);
                        self.stats.entries_written.add(1);
                    }
                    self.stats.backlog.set(self.backlog_lines());
                } else {
                    // Refused (out of memory, say): an outage like any
                    // other — the batch stays first, the link is dropped and
                    // retried with back-off, and the outage bound applies.
                    self.refused = true;
                }
            }
            Op::Renew => {
                let lapsed = matches!(v, Value::Nil) && self.renewed_once;
                self.renewed_once = true;
                if lapsed {
                    self.lease_lapsed();
                }
            }
            Op::Claim { name, answer } => {
                let outcome = match v {
                    Value::Int(1) => {
                        self.held.insert(name);
                        ClaimOutcome::Granted
                    }
                    Value::Int(_) => ClaimOutcome::Taken,
                    _ => ClaimOutcome::Unavailable,
                };
                self.stats.names_held.set(self.held.len() as u64);
                answer.send(outcome);
            }
            Op::Release(_) | Op::DropKey => {
                self.stats.names_held.set(self.held.len() as u64);
            }
            Op::Who(answer) => {
                let (names, reachable) = match v {
                    Value::Array(names) => {
                        let mut out = Vec::new();
                        for n in names {
                            if let Value::BulkString(n) = n {
                                if !out.is_empty() {
                                    out.push(b' ');
                                }
                                out.extend_from_slice(&n);
                            }
                        }
                        (Bytes::from(out), true)
                    }
                    _ => (Bytes::new(), false),
                };
                answer.send(OtherNodes { names, reachable });
            }
        }
    }

    /// The node's key had expired: claim every held name again; revoke the
    /// ones another node took.
    pub(super) fn lease_lapsed(&mut self) {
        self.stats.lease_lapses.add(1);
        tracing::warn!(
            node = %self.keys.me,
            names = self.held.len(),
            "chat cluster: this node's lease had lapsed; claiming its names again"
        );
        if self.held.is_empty() {
            return;
        }
        let Some(con) = self.con.as_mut() else { return };
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.shas.reassert)
            .arg(1)
            .arg(&self.keys.names)
            .arg(&self.keys.me)
            .arg(&self.keys.node_prefix);
        for name in &self.held {
            cmd.arg(name);
        }
        self.stats.writer_commands.add(1);
        match cmd.query::<Vec<String>>(con) {
            Ok(lost) => {
                let shards = self.bus.shard_count();
                for name in lost {
                    tracing::warn!(
                        name,
                        "chat cluster: another node took this name during the outage"
                    );
                    self.held.remove(&name);
                    self.stats.names_lost.add(1);
                    self.tell(owner_shard(&name, shards), ChatMessage::NameLost { name });
                }
                self.stats.names_held.set(self.held.len() as u64);
            }
            Err(e) => {
                // Tried again at the next renewal (which will find the key).
                self.renewed_once = false;
                self.link_lost(&e);
            }
        }
    }

    /// Answers what a failed round left unanswered.
    pub(super) fn fail_ops(&mut self, ops: Vec<Op>) {
        for op in ops {
            match op {
                // Still first in line: sent again after reconnecting.
                Op::Xadd | Op::Renew | Op::DropKey => {}
                Op::Claim { name, answer } => {
                    // It may have been granted: give it back when we can.
                    self.to_release.push(name);
                    self.refuse_claim(answer);
                }
                Op::Release(name) => self.to_release.push(name),
                Op::Who(answer) => self.who_unreachable(answer),
            }
        }
    }

    /// Every shard is gone: send what is left (within a budget), then
    /// delete the node key so its names are free at once.
    pub(super) fn leave(mut self) {
        let deadline = self.now() + SHUTDOWN_BUDGET;
        self.seal();
        while self.con.is_some()
            && (!self.pending.is_empty()
                || !self.controls.is_empty()
                || !self.to_release.is_empty())
            && self.now() < deadline
        {
            self.round();
        }
        if !self.pending.is_empty() {
            let lost = self.backlog_lines();
            self.stats.lines_dropped.add(lost);
            tracing::error!(
                lost,
                "chat cluster: stopping with lines other nodes never got"
            );
        }
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(&self.keys.alive);
        self.send(pipe, vec![Op::DropKey]);
        drop(self.stop);
        self.stats.writer_up.set(0);
    }
}
