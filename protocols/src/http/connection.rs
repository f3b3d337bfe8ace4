//! One HTTP/1.1 connection as a torsion [`Protocol`] (Twisted's
//! `HTTPChannel`).
//!
//! # How a connection runs
//!
//! Input is read in two states — a head ([`HeadScanner`] finds its end,
//! [`parse_head`] checks it), then its body ([`BodyReader`]) — and each
//! complete request is dispatched to the shard's [`Router`] at once, so
//! pipelined requests are all under way together. Responses leave in
//! request order through one queue of slots: a slot is `Waiting` (its
//! handler's future is still running), `Ready`, or an interim
//! `100 Continue`; [`Shared::flush`] writes every ready slot at the front
//! and stops at the first one still waiting. All the responses a read
//! produced are written in the same turn, so the driver sends them in one
//! `sendmsg`.
//!
//! Bounded: at most `max_pipeline` responses are queued; past that,
//! reading pauses (the next requests wait in the socket) until the queue
//! drains. A streamed body is pulled one piece at a time, only while the
//! transport is below its high-water mark (`pause_writing` /
//! `resume_writing`). One timer per connection covers both timeouts: its
//! deadline moves as the connection changes phase, and when it fires early
//! it re-arms for the rest rather than being cancelled and re-created per
//! request.
//!
//! Errors: a refused head or body gets its status (400, 413, 431, 501…)
//! with `Connection: close`, after the responses before it; nothing more is
//! read. A handler that panics (now or in its future) gets 500 and the
//! connection goes on.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_lite::{FutureExt, StreamExt};
use http::{Method, StatusCode, Version};
use torsion::{Clock, DisconnectReason, Protocol, Transport};

use super::body::{BodyError, BodyReader};
use super::head::{parse_head, BodyFraming, HeadScanner, RequestHead};
use super::metrics::{HttpMetrics, ShardHttpMetrics};
use super::response::{http_date, status_page, write_head, Body, BodyStream, Framing, Response};
use super::router::{Reply, Router};

/// Limits and timeouts of an HTTP server (per connection).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Request line + headers, at most (default 16 KiB; over it: 431).
    pub max_head: usize,
    /// Headers per request, at most (default 100; over it: 431).
    pub max_headers: usize,
    /// Request body, at most (default 1 MiB; over it: 413).
    pub max_body: usize,
    /// From a request's first byte to its last (head and body), at most
    /// (default 10 s; then 408 and close: slowloris).
    pub request_timeout: Duration,
    /// An idle keep-alive connection is closed after this (default 60 s;
    /// zero: never).
    pub keep_alive_timeout: Duration,
    /// Responses queued per connection before reading pauses (default 32).
    pub max_pipeline: usize,
    /// Where responses are counted and requests timed (default: nowhere).
    pub metrics: Option<HttpMetrics>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_head: 16 * 1024,
            max_headers: 100,
            max_body: 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            max_pipeline: 32,
            metrics: None,
        }
    }
}

torsion::with_setters!(HttpConfig {
    with_max_head => max_head: usize,
    with_max_headers => max_headers: usize,
    with_max_body => max_body: usize,
    with_request_timeout => request_timeout: Duration,
    #[doc = "(zero: never)"]
    with_keep_alive_timeout => keep_alive_timeout: Duration,
    with_max_pipeline => max_pipeline: usize,
});

impl HttpConfig {
    /// Counts responses by status class and times requests in `metrics`
    /// (register it with a `torsion::metrics::Metrics` to scrape it).
    pub fn with_metrics(mut self, metrics: HttpMetrics) -> HttpConfig {
        self.metrics = Some(metrics);
        self
    }
}

/// What a response needs to know about its request.
#[derive(Debug, Clone, Copy)]
struct Meta {
    version: Version,
    head_request: bool,
    close: bool,
    /// When the request was dispatched (only with metrics; not refusals).
    dispatched: Option<Instant>,
}

enum Slot {
    /// The handler's future is running.
    Waiting(Meta),
    /// The response is ready to write.
    Ready(Meta, Response),
    /// Interim bytes (`100 Continue`).
    Raw(Bytes),
}

/// What the connection's timer is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing in flight, no request started: keep-alive idle.
    Idle,
    /// A request has started arriving and is not complete.
    Request,
    /// Waiting for our own responses: no timeout.
    Busy,
}

/// The part of a connection that handler tasks, stream pumps and the timer
/// reach too (the protocol object itself belongs to the driver).
struct Shared {
    transport: Transport,
    clock: Clock,
    config: Rc<HttpConfig>,
    slots: RefCell<VecDeque<Slot>>,
    /// Sequence number of the slot at the front of `slots`.
    front_id: Cell<u64>,
    /// A stream pump owns the output until its body is sent.
    streaming: Cell<bool>,
    /// Reading paused because `max_pipeline` responses are queued.
    paused_for_pipeline: Cell<bool>,
    /// Reading paused because the output is above its high-water mark (a
    /// client that sends requests and does not read the responses).
    paused_for_output: Cell<bool>,
    /// No more requests are read (an error, `Connection: close`, EOF).
    stop_reading: Cell<bool>,
    /// Close once every queued response is written.
    close_when_drained: Cell<bool>,
    /// When the request now arriving started (`Phase::Request`).
    request_started: Cell<Option<Instant>>,
    phase: Cell<Phase>,
    deadline: Cell<Option<Instant>>,
    timer_armed: Cell<bool>,
    /// Where response heads are written before they are queued (reused).
    head_buf: RefCell<BytesMut>,
    /// The stream pump waits here for `resume_writing`.
    writable: RefCell<Option<Waker>>,
    lost: Cell<bool>,
    me: Weak<Shared>,
    metrics: Option<Rc<ShardHttpMetrics>>,
}

impl Shared {
    fn push(&self, slot: Slot) -> u64 {
        let mut slots = self.slots.borrow_mut();
        slots.push_back(slot);
        self.front_id.get() + slots.len() as u64 - 1
    }

    /// The handler of slot `id` answered.
    fn complete(&self, id: u64, response: Response) {
        if self.lost.get() {
            return;
        }
        {
            let mut slots = self.slots.borrow_mut();
            let Some(index) = id.checked_sub(self.front_id.get()) else {
                return;
            };
            let Some(slot) = slots.get_mut(index as usize) else {
                return;
            };
            if let Slot::Waiting(meta) = *slot {
                *slot = Slot::Ready(meta, response);
            }
        }
        self.flush();
        self.update_phase();
    }

    /// Writes every ready response at the front of the queue, in order.
    fn flush(&self) {
        let mut date = None;
        let mut now = None;
        while !self.streaming.get() && !self.lost.get() {
            let slot = {
                let mut slots = self.slots.borrow_mut();
                match slots.front() {
                    None | Some(Slot::Waiting(_)) => break,
                    Some(_) => {}
                }
                self.front_id.set(self.front_id.get() + 1);
                slots.pop_front()
            };
            match slot {
                Some(Slot::Raw(bytes)) => {
                    // Err: the connection is closing, and its end reason says why.
                    let _ = self.transport.write_bytes(bytes);
                }
                Some(Slot::Ready(meta, response)) => {
                    if let Some(metrics) = &self.metrics {
                        let now = *now.get_or_insert_with(|| self.clock.now());
                        metrics.responded(response.status(), meta.dispatched, now);
                    }
                    let date = date.get_or_insert_with(http_date);
                    let more = self.write_response(meta, response, date);
                    if !more {
                        break;
                    }
                }
                _ => {}
            }
        }
        let queued = self.slots.borrow().len();
        if self.paused_for_pipeline.get() && queued < self.config.max_pipeline {
            self.paused_for_pipeline.set(false);
            self.resume_reading_if_free();
        }
        if queued == 0 && !self.streaming.get() && self.close_when_drained.get() {
            self.transport.close();
        }
    }

    /// Writes one response; false when the output is now taken (a stream
    /// pump owns it, or the connection closes).
    fn write_response(&self, meta: Meta, response: Response, date: &[u8]) -> bool {
        let (parts, body) = response.into_parts();
        let mut head = self.head_buf.borrow_mut();
        head.clear();
        let framing = write_head(
            &mut head,
            date,
            parts.status,
            &parts.headers,
            body.length(),
            meta.version,
            meta.head_request,
            meta.close,
        );
        let close = meta.close || framing == Framing::UntilClose;
        match (framing, body) {
            (Framing::NoBody, _) | (_, Body::Empty) => {
                // Err: the connection is closing, and its end reason says why.
                let _ = self.transport.write(&head);
            }
            (_, Body::Full(b)) if b.len() <= 16 * 1024 => {
                // Err: the connection is closing, and its end reason says why.
                let _ = self.transport.write_many(&[&head, &b]);
            }
            (_, Body::Full(b)) => {
                // Err: the connection is closing, and its end reason says why.
                let _ = self.transport.write(&head);
                // Err: the connection is closing, and its end reason says why.
                let _ = self.transport.write_bytes(b);
            }
            (_, Body::Stream { length, pieces }) => {
                // Err: the connection is closing, and its end reason says why.
                let _ = self.transport.write(&head);
                drop(head);
                self.streaming.set(true);
                let me = self
                    .me
                    .upgrade()
                    .expect("a connection's shared state is alive while it writes");
                torsion::spawn_local(pump(me, pieces, framing, length, close)).detach();
                return false;
            }
        }
        if close {
            self.stop_reading.set(true);
            self.slots.borrow_mut().clear();
            self.transport.close();
            return false;
        }
        true
    }

    /// A request is partly read: its timeout counts from now unless it
    /// already counts (read once per partial request, not per request: a
    /// request read whole in one go never reads the clock here).
    fn request_begun(&self) {
        if self.request_started.get().is_none() {
            self.request_started.set(Some(self.clock.now()));
        }
    }

    /// Resumes reading unless something else still holds it paused.
    fn resume_reading_if_free(&self) {
        if !self.paused_for_pipeline.get() && !self.paused_for_output.get() {
            self.transport.resume_reading();
        }
    }

    /// The timer fires at most this long after it was armed, whatever the
    /// deadline: every deadline is at least this far from when it is set,
    /// so a deadline that moves earlier (idle → a request started) is
    /// still met without cancelling and re-creating the timer per request.
    fn timer_step(&self) -> Option<Duration> {
        [self.config.request_timeout, self.config.keep_alive_timeout]
            .into_iter()
            .filter(|d| !d.is_zero())
            .min()
    }

    /// Moves the timer's deadline to what the connection is doing now.
    fn update_phase(&self) {
        let phase = if self.request_started.get().is_some() {
            Phase::Request
        } else if self.slots.borrow().is_empty() && !self.streaming.get() {
            Phase::Idle
        } else {
            Phase::Busy
        };
        // Recomputed on every call, not only on a change of phase: a read or
        // a response restarts the idle count.
        if phase == Phase::Busy && self.phase.get() == Phase::Busy {
            return;
        }
        self.phase.set(phase);
        let deadline = match phase {
            Phase::Busy => None,
            Phase::Idle if self.config.keep_alive_timeout.is_zero() => None,
            Phase::Idle => Some(self.clock.now() + self.config.keep_alive_timeout),
            Phase::Request if self.config.request_timeout.is_zero() => None,
            Phase::Request => self
                .request_started
                .get()
                .map(|t| t + self.config.request_timeout),
        };
        self.deadline.set(deadline);
        if let Some(d) = deadline {
            self.arm(d.saturating_duration_since(self.clock.now()));
        }
    }

    fn arm(&self, after: Duration) {
        let Some(step) = self.timer_step() else {
            return;
        };
        if self.timer_armed.replace(true) || self.lost.get() {
            return;
        }
        let after = after.min(step);
        let me = self.me.clone();
        let _ = self.clock.call_later(after, move || {
            if let Some(shared) = me.upgrade() {
                shared.timer_fired();
            }
        });
    }

    fn timer_fired(&self) {
        self.timer_armed.set(false);
        let Some(deadline) = self.deadline.get() else {
            return;
        };
        let now = self.clock.now();
        if now < deadline {
            self.arm(deadline - now);
            return;
        }
        self.deadline.set(None);
        match self.phase.get() {
            Phase::Idle => self.transport.close(),
            Phase::Request => {
                self.request_started.set(None);
                self.refuse(StatusCode::REQUEST_TIMEOUT);
            }
            Phase::Busy => {}
        }
    }

    /// Answers `status` after the responses already queued, then closes;
    /// nothing more is read.
    fn refuse(&self, status: StatusCode) {
        self.stop_reading.set(true);
        let meta = Meta {
            version: Version::HTTP_11,
            head_request: false,
            close: true,
            dispatched: None,
        };
        self.push(Slot::Ready(meta, status_page(status)));
        self.flush();
    }

    /// Resolves when the transport is below its high-water mark (or gone).
    async fn writable(&self) {
        futures_lite::future::poll_fn(|cx| {
            if self.lost.get() || self.transport.is_closed() || !self.transport.is_writing_paused()
            {
                Poll::Ready(())
            } else {
                *self.writable.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// Sends a streamed body piece by piece under flow control, then hands the
/// output back to the queue.
async fn pump(
    shared: Rc<Shared>,
    mut pieces: BodyStream,
    framing: Framing,
    length: Option<u64>,
    close: bool,
) {
    let mut sent: u64 = 0;
    let complete = loop {
        shared.writable().await;
        if shared.lost.get() || shared.transport.is_closed() {
            return;
        }
        match pieces.next().await {
            Some(Ok(piece)) if piece.is_empty() => {}
            Some(Ok(piece)) => {
                sent += piece.len() as u64;
                if length.is_some_and(|l| sent > l) {
                    break false;
                }
                let _ = if framing == Framing::Chunked {
                    let size = format!("{:x}\r\n", piece.len());
                    shared
                        .transport
                        .write_many(&[size.as_bytes(), &piece, b"\r\n"])
                } else {
                    shared.transport.write_bytes(piece)
                };
            }
            Some(Err(e)) => {
                tracing::warn!("http: a streamed response body failed after {sent} bytes: {e}");
                break false;
            }
            None => break length.map_or(true, |l| l == sent),
        }
    };
    if !complete {
        // The head promised a body this connection can no longer deliver:
        // the client must see the connection fail, not a short response.
        shared.transport.abort();
        return;
    }
    if framing == Framing::Chunked {
        // Err: the connection is closing, and its end reason says why.
        let _ = shared.transport.write(b"0\r\n\r\n");
    }
    shared.streaming.set(false);
    if close {
        shared.stop_reading.set(true);
        shared.transport.close();
        return;
    }
    shared.flush();
    shared.update_phase();
}

enum ReadState {
    Head,
    /// The head is boxed: most of a connection's life is spent in `Head`.
    Body {
        head: Option<Box<RequestHead>>,
        reader: BodyReader,
    },
}

/// The protocol of one HTTP/1.1 connection.
pub struct HttpConnection {
    router: Rc<Router>,
    config: Rc<HttpConfig>,
    shared: Option<Rc<Shared>>,
    read: ReadState,
    scanner: HeadScanner,
    metrics: Option<Rc<ShardHttpMetrics>>,
}

impl HttpConnection {
    /// A connection answering with `router` under `config`.
    pub fn new(router: Rc<Router>, config: Rc<HttpConfig>) -> HttpConnection {
        HttpConnection {
            router,
            config,
            shared: None,
            read: ReadState::Head,
            scanner: HeadScanner::default(),
            metrics: None,
        }
    }

    /// Counts this connection's responses in its shard's metrics.
    pub(crate) fn with_metrics(mut self, metrics: Option<Rc<ShardHttpMetrics>>) -> HttpConnection {
        self.metrics = metrics;
        self
    }

    /// Reads requests from `data` until it runs out, the pipeline is full
    /// or reading stops.
    fn read_requests(&mut self, shared: &Rc<Shared>, data: &mut BytesMut) {
        loop {
            if shared.stop_reading.get() {
                data.clear();
                return;
            }
            if shared.slots.borrow().len() >= self.config.max_pipeline {
                shared.flush();
                if shared.slots.borrow().len() >= self.config.max_pipeline {
                    shared.paused_for_pipeline.set(true);
                    shared.transport.pause_reading();
                    return;
                }
            }
            if shared.transport.is_writing_paused() {
                shared.flush();
                shared.paused_for_output.set(true);
                shared.transport.pause_reading();
                return;
            }
            match &mut self.read {
                ReadState::Head => {
                    if data.is_empty() {
                        return;
                    }
                    let end = match self.scanner.scan(data, self.config.max_head) {
                        Ok(Some(end)) => end,
                        Ok(None) => return shared.request_begun(),
                        Err(e) => return self.refuse(shared, e.status(), data),
                    };
                    let head =
                        match parse_head(data.split_to(end).freeze(), self.config.max_headers) {
                            Ok(head) => head,
                            Err(e) => return self.refuse(shared, e.status(), data),
                        };
                    let reader = match BodyReader::new(head.framing, self.config.max_body) {
                        Ok(reader) => reader,
                        Err(e) => return self.refuse(shared, body_status(&e), data),
                    };
                    if head.expect_continue && head.framing != BodyFraming::None {
                        shared.push(Slot::Raw(Bytes::from_static(
                            b"HTTP/1.1 100 Continue\r\n\r\n",
                        )));
                    }
                    self.read = ReadState::Body {
                        head: Some(Box::new(head)),
                        reader,
                    };
                }
                ReadState::Body { head, reader } => match reader.read(data) {
                    Ok(false) => return shared.request_begun(),
                    Ok(true) => {
                        let body = reader.take();
                        let head = head.take().expect("a body state holds its head");
                        self.read = ReadState::Head;
                        shared.request_started.set(None);
                        self.dispatch(shared, *head, body);
                    }
                    Err(e) => return self.refuse(shared, body_status(&e), data),
                },
            }
        }
    }

    fn refuse(&mut self, shared: &Rc<Shared>, status: StatusCode, data: &mut BytesMut) {
        tracing::debug!(
            "http: refusing a request from {}: {status}",
            shared.transport.peer_addr()
        );
        data.clear();
        shared.request_started.set(None);
        shared.refuse(status);
    }

    /// Runs the handler of a complete request and queues its response.
    fn dispatch(&mut self, shared: &Rc<Shared>, head: RequestHead, body: Bytes) {
        let meta = Meta {
            version: head.parts.version,
            head_request: head.parts.method == Method::HEAD,
            close: !head.keep_alive,
            dispatched: shared.metrics.as_ref().map(|_| shared.clock.now()),
        };
        if meta.close {
            shared.stop_reading.set(true);
        }
        let request = http::Request::from_parts(head.parts, body);
        let router = &self.router;
        let reply = std::panic::catch_unwind(AssertUnwindSafe(|| router.dispatch(request)))
            .unwrap_or_else(|_| {
                tracing::error!("http: a handler panicked; answering 500");
                Reply::Now(status_page(StatusCode::INTERNAL_SERVER_ERROR))
            });
        match reply {
            Reply::Now(response) => {
                shared.push(Slot::Ready(meta, response));
            }
            Reply::Later(future) => {
                let id = shared.push(Slot::Waiting(meta));
                let me = Rc::downgrade(shared);
                torsion::spawn_local(async move {
                    let response = AssertUnwindSafe(future)
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| {
                            tracing::error!("http: a handler's future panicked; answering 500");
                            status_page(StatusCode::INTERNAL_SERVER_ERROR)
                        });
                    if let Some(shared) = me.upgrade() {
                        shared.complete(id, response);
                    }
                })
                .detach();
            }
        }
    }
}

fn body_status(e: &BodyError) -> StatusCode {
    match e {
        BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        BodyError::Malformed(_) => StatusCode::BAD_REQUEST,
    }
}

impl Protocol for HttpConnection {
    fn connection_made(&mut self, transport: &Transport) {
        let config = self.config.clone();
        let shared = Rc::new_cyclic(|me| Shared {
            transport: transport.clone(),
            clock: transport.clock(),
            config,
            slots: RefCell::new(VecDeque::new()),
            front_id: Cell::new(0),
            streaming: Cell::new(false),
            paused_for_pipeline: Cell::new(false),
            paused_for_output: Cell::new(false),
            stop_reading: Cell::new(false),
            close_when_drained: Cell::new(false),
            request_started: Cell::new(None),
            phase: Cell::new(Phase::Busy),
            deadline: Cell::new(None),
            timer_armed: Cell::new(false),
            head_buf: RefCell::new(BytesMut::with_capacity(256)),
            writable: RefCell::new(None),
            lost: Cell::new(false),
            me: me.clone(),
            metrics: self.metrics.clone(),
        });
        shared.update_phase();
        self.shared = Some(shared);
    }

    fn data_received(&mut self, _transport: &Transport, data: &mut BytesMut) {
        let Some(shared) = self.shared.clone() else {
            data.clear();
            return;
        };
        self.read_requests(&shared, data);
        shared.flush();
        shared.update_phase();
    }

    fn eof_received(&mut self, _transport: &Transport, data: &mut BytesMut) {
        data.clear();
        let Some(shared) = &self.shared else { return };
        // A request cut off by the EOF gets nothing; the complete ones
        // before it still get their responses, then the connection closes.
        shared.stop_reading.set(true);
        shared.request_started.set(None);
        shared.close_when_drained.set(true);
        shared.flush();
    }

    fn resume_writing(&mut self, _transport: &Transport) {
        if let Some(shared) = &self.shared {
            if shared.paused_for_output.replace(false) {
                shared.resume_reading_if_free();
            }
            if let Some(w) = shared.writable.borrow_mut().take() {
                w.wake();
            }
        }
    }

    fn shutdown_requested(&mut self, transport: &Transport) {
        let Some(shared) = &self.shared else {
            transport.close();
            return;
        };
        // Finish the requests already read; read no more.
        shared.stop_reading.set(true);
        shared.close_when_drained.set(true);
        shared.flush();
    }

    fn connection_lost(&mut self, _reason: &DisconnectReason) {
        if let Some(shared) = self.shared.take() {
            shared.lost.set(true);
            shared.deadline.set(None);
            shared.slots.borrow_mut().clear();
            if let Some(w) = shared.writable.borrow_mut().take() {
                w.wake();
            }
        }
    }
}
