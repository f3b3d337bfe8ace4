//! The connection driver: pumps one socket through one protocol.
//!
//! One glommio task per connection runs [`drive`]. Each turn of its loop:
//!
//! 1. an abort (from the protocol, the hard cap or the drain deadline) ends
//!    the connection at once, with a reset (`SO_LINGER` 0);
//! 2. a pending shutdown notice is delivered (`shutdown_requested`);
//! 3. the outbound queue is flushed with vectored `sendmsg(MSG_DONTWAIT |
//!    MSG_NOSIGNAL)` — one syscall for everything the last callback wrote
//!    (plain `send` when the queue is one chunk: cheaper in the kernel).
//!    Only when the kernel says `EAGAIN` does the driver hand the front chunk
//!    to glommio's `poll_write`, which arms an io_uring poll for
//!    writability; no poll is armed while writes succeed;
//!    When the socket will take no more and more than the hard cap is still
//!    queued, the peer is not reading: the connection ends as a
//!    `SlowConsumer` (the cap is judged here, after the bytes were offered
//!    to the socket, never on a burst that was not yet flushed);
//! 4. the high/low water marks turn into `pause_writing`/`resume_writing`
//!    (a write above the high-water mark flags the pause on the spot; see
//!    `transport.rs`);
//! 5. after `close`, once flushed: `shutdown(SHUT_WR)`, then *linger* —
//!    read and discard until the peer's FIN or [`FlowLimits::linger`] — so
//!    unread input does not turn our close into a reset that destroys the
//!    reply in flight (nginx's lingering close);
//! 6. otherwise read: glommio's `poll_read` tries `recv` when the socket may
//!    hold data and otherwise waits on the stream's one multishot read poll
//!    (armed once per connection: our vendored glommio, see
//!    `vendor/glommio/TORSION.md`). Bytes land in one per-shard
//!    64 KiB scratch buffer and are appended to the connection's own
//!    `BytesMut`, so an idle connection holds no read buffer at all.
//!    With a read-rate limit, a read takes at most the bytes the token
//!    bucket holds (one second's worth at most) and the driver then waits
//!    for the bucket to refill; the idle timeout does not run meanwhile.
//!
//! While the protocol has paused reading nothing is read, and input it left
//! unconsumed when it paused is offered to `data_received` again once it
//! resumes (Twisted's `resumeProducing`), so framing layers that stop
//! delivering frames at a pause lose nothing.
//!
//! A turn runs until the socket would block, with a budget of 64 steps
//! before yielding, so one busy connection cannot starve its shard. Every
//! protocol callback runs under `catch_unwind`: a panic ends this connection
//! with [`DisconnectReason::Panic`] and nothing else.
//!
//! [`FlowLimits::linger`]: crate::FlowLimits::linger

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_lite::io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use glommio::timer::Timer;

use crate::policy::ReadThrottle;
use crate::protocol::Protocol;
use crate::reason::DisconnectReason;
use crate::shard;
use crate::shard_runtime::ShardRuntime;
use crate::transport::Transport;

/// Most slices handed to one `sendmsg`.
const SEND_MAX_SLICES: usize = 64;
/// Steps one poll may take before yielding to other tasks.
const BUDGET: usize = 64;

enum Step {
    Continue,
    Pending,
    Done(DisconnectReason),
}

/// The socket a connection runs over: plain TCP (the fast path: vectored
/// `sendmsg` on the fd) or TLS (rustls over the same socket, through
/// `futures-rustls`; plaintext in, ciphertext out).
pub(crate) enum Wire {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, after a completed handshake.
    Tls(Box<futures_rustls::server::TlsStream<TcpStream>>),
}

impl Wire {
    fn fd(&self) -> RawFd {
        match self {
            Wire::Plain(s) => s.as_raw_fd(),
            Wire::Tls(t) => t.get_ref().0.as_raw_fd(),
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self {
            Wire::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Wire::Tls(t) => Pin::new(&mut **t).poll_read(cx, buf),
        }
    }
}

struct Connection<P: Protocol> {
    id: u64,
    stream: Option<Wire>,
    fd: RawFd,
    protocol: P,
    transport: Transport,
    read_buf: BytesMut,
    shard: Rc<ShardRuntime>,
    eof: bool,
    /// `pause_writing` was delivered; `resume_writing` is owed.
    pause_notified: bool,
    /// Input was left unconsumed while reading was paused: offer it again
    /// when reading resumes.
    offer_buffered: bool,
    shutdown_notified: bool,
    shut_write: bool,
    linger: Option<Timer>,
    throttle: Option<ReadThrottle>,
    /// Reading waits for this before the next read (read throttling).
    throttle_wait: Option<Timer>,
}

/// Runs `protocol` on `stream` until the connection ends; calls
/// `connection_lost` exactly once.
pub(crate) async fn drive<P: Protocol>(
    id: u64,
    stream: Wire,
    protocol: P,
    transport: Transport,
    shard: Rc<ShardRuntime>,
) {
    let fd = stream.fd();
    let mut conn = Connection {
        id,
        stream: Some(stream),
        fd,
        protocol,
        transport,
        read_buf: BytesMut::new(),
        shard,
        eof: false,
        pause_notified: false,
        offer_buffered: false,
        shutdown_notified: false,
        shut_write: false,
        linger: None,
        throttle: None,
        throttle_wait: None,
    };
    if let Some(rate) = conn.shard.policies.max_read_rate {
        conn.throttle = Some(ReadThrottle::new(rate));
    }
    let reason = match conn.callback("connection_made", |p, t, _| p.connection_made(t)) {
        Step::Done(reason) => reason,
        _ => futures_lite::future::poll_fn(|cx| conn.poll_drive(cx)).await,
    };
    conn.finish(reason);
}

impl<P: Protocol> Connection<P> {
    fn callback(&mut self, what: &str, f: impl FnOnce(&mut P, &Transport, &mut BytesMut)) -> Step {
        let core = &self.transport.core;
        core.set_driving(true);
        let ok = shard::run_guarded(what, || {
            f(&mut self.protocol, &self.transport, &mut self.read_buf)
        });
        self.transport.core.set_driving(false);
        if ok {
            Step::Continue
        } else {
            Step::Done(DisconnectReason::Panic)
        }
    }

    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<DisconnectReason> {
        self.transport.core.set_waker(cx.waker());
        for _ in 0..BUDGET {
            match self.step(cx) {
                Step::Continue => continue,
                Step::Pending => return Poll::Pending,
                Step::Done(reason) => return Poll::Ready(reason),
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn step(&mut self, cx: &mut Context<'_>) -> Step {
        let core = self.transport.core.clone();
        if let Some(reason) = core.abort_reason() {
            return Step::Done(reason);
        }
        if core.shutdown_requested() && !self.shutdown_notified {
            self.shutdown_notified = true;
            return self.callback("shutdown_requested", |p, t, _| p.shutdown_requested(t));
        }

        let flushed = match self.poll_flush(cx) {
            Poll::Ready(Ok(())) => true,
            Poll::Ready(Err(e)) => return Step::Done(DisconnectReason::from_io(&e)),
            Poll::Pending => false,
        };

        let limits = core.limits();
        let queued = core.buffered_len();
        if !flushed && queued > limits.hard_cap {
            tracing::warn!(
                shard = self.shard.info.id,
                peer = %self.transport.peer_addr(),
                queued,
                cap = limits.hard_cap,
                "slow consumer: the peer is not reading and the outbound queue is over its hard cap; aborting connection"
            );
            return Step::Done(DisconnectReason::SlowConsumer);
        }
        if !self.pause_notified && core.writing_paused() {
            self.pause_notified = true;
            return self.callback("pause_writing", |p, t, _| p.pause_writing(t));
        }
        if self.pause_notified && queued <= limits.low_water {
            self.pause_notified = false;
            core.clear_writing_paused();
            return self.callback("resume_writing", |p, t, _| p.resume_writing(t));
        }

        if core.close_requested() {
            return if flushed {
                self.poll_closing(cx)
            } else {
                Step::Pending
            };
        }
        if core.reading_paused() {
            return Step::Pending;
        }
        if self.offer_buffered {
            self.offer_buffered = false;
            return self.deliver_input();
        }
        if self.eof {
            return Step::Pending;
        }
        if let Some(wait) = &mut self.throttle_wait {
            match Pin::new(wait).poll(cx) {
                Poll::Pending => return Step::Pending,
                Poll::Ready(_) => {
                    self.throttle_wait = None;
                    core.set_throttled(false);
                }
            }
        }

        match self.poll_read(cx) {
            Poll::Pending => Step::Pending,
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Step::Continue,
            Poll::Ready(Err(e)) => Step::Done(DisconnectReason::from_io(&e)),
            Poll::Ready(Ok(0)) => {
                self.eof = true;
                self.callback("eof_received", |p, t, _| p.eof_received(t))
            }
            Poll::Ready(Ok(_)) => self.deliver_input(),
        }
    }

    /// Hands the read buffer to `data_received`, then enforces the read
    /// bound and notes input left behind by a pause.
    fn deliver_input(&mut self) -> Step {
        let step = self.callback("data_received", |p, t, buf| p.data_received(t, buf));
        if matches!(step, Step::Continue) {
            let core = &self.transport.core;
            if self.read_buf.len() > core.limits().max_read_buffer && !core.is_abort_or_close() {
                return Step::Done(DisconnectReason::ReadBufferFull);
            }
            self.offer_buffered = core.reading_paused() && !self.read_buf.is_empty();
        }
        step
    }

    /// Reads once into the shard's scratch buffer and appends to `read_buf`.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Connection {
            shard,
            stream,
            read_buf,
            transport,
            throttle,
            throttle_wait,
            ..
        } = self;
        let mut scratch = shard.scratch.borrow_mut();
        let limit = match throttle {
            Some(t) => t
                .allowance(std::time::Instant::now())
                .clamp(1, scratch.len()),
            None => scratch.len(),
        };
        let stream = stream.as_mut().expect("stream open while driving");
        match stream.poll_read(cx, &mut scratch[..limit]) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    shard.stats.add_bytes_in(n);
                    read_buf.extend_from_slice(&scratch[..n]);
                    transport.core.touch();
                    if let Some(t) = throttle {
                        let wait = t.consume(n, std::time::Instant::now());
                        if !wait.is_zero() {
                            *throttle_wait = Some(Timer::new(wait));
                            transport.core.set_throttled(true);
                        }
                    }
                }
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    /// Sends the queue; `Ready(Ok)` once it is empty.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(Wire::Tls(_)) = &self.stream {
            return self.poll_flush_tls(cx);
        }
        let core = &self.transport.core;
        let fd = self.fd;
        loop {
            match core.send_queued(|chunks| send_vectored(fd, chunks)) {
                None => return Poll::Ready(Ok(())),
                Some(Ok(n)) => {
                    self.shard.stats.add_bytes_out(n);
                    core.touch();
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Socket full: let glommio arm a writability poll by
                    // offering it the front chunk (it may also just send it).
                    let front = core.front_chunk().expect("queue is not empty");
                    let Some(Wire::Plain(stream)) = self.stream.as_mut() else {
                        unreachable!("plain path")
                    };
                    match Pin::new(stream).poll_write(cx, &front) {
                        Poll::Ready(Ok(n)) => {
                            core.consume(n);
                            self.shard.stats.add_bytes_out(n);
                            core.touch();
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Some(Err(e)) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// TLS: hands the queue to rustls chunk by chunk, then flushes the
    /// ciphertext to the socket.
    fn poll_flush_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let core = &self.transport.core;
        let Some(Wire::Tls(tls)) = self.stream.as_mut() else {
            unreachable!("tls path")
        };
        while let Some(front) = core.front_chunk() {
            match Pin::new(&mut **tls).poll_write(cx, &front) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    core.consume(n);
                    self.shard.stats.add_bytes_out(n);
                    core.touch();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Pin::new(&mut **tls).poll_flush(cx)
    }

    /// After a flushed `close`: FIN, then linger until the peer's FIN.
    fn poll_closing(&mut self, cx: &mut Context<'_>) -> Step {
        if let Some(Wire::Tls(tls)) = self.stream.as_mut() {
            if !self.shut_write {
                // close_notify first, so the peer sees an orderly TLS close.
                tls.get_mut().1.send_close_notify();
                match Pin::new(&mut **tls).poll_flush(cx) {
                    Poll::Pending => return Step::Pending,
                    Poll::Ready(Err(e)) => return Step::Done(DisconnectReason::from_io(&e)),
                    Poll::Ready(Ok(())) => {}
                }
            }
        }
        if !self.shut_write {
            self.shut_write = true;
            // SAFETY: fd is this connection's open socket.
            unsafe { libc::shutdown(self.fd, libc::SHUT_WR) };
        }
        if self.eof {
            return Step::Done(DisconnectReason::Closed);
        }
        for _ in 0..BUDGET {
            match self.poll_read(cx) {
                Poll::Ready(Ok(0)) => {
                    self.eof = true;
                    return Step::Done(DisconnectReason::Closed);
                }
                // Discard what the peer still sends.
                Poll::Ready(Ok(_)) => self.read_buf.clear(),
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Step::Done(DisconnectReason::from_io(&e)),
                Poll::Pending => break,
            }
        }
        let linger = self.transport.core.limits().linger;
        let timer = self.linger.get_or_insert_with(|| Timer::new(linger));
        match Pin::new(timer).poll(cx) {
            Poll::Ready(_) => Step::Done(DisconnectReason::Closed),
            Poll::Pending => Step::Pending,
        }
    }

    fn finish(mut self, reason: DisconnectReason) {
        let core = self.transport.core.clone();
        let abortive = !matches!(
            reason,
            DisconnectReason::Closed | DisconnectReason::Reset | DisconnectReason::Io { .. }
        );
        let reason = if core.shutdown_requested() && reason == DisconnectReason::Closed {
            DisconnectReason::Shutdown
        } else {
            reason
        };
        if abortive {
            set_linger_zero(self.fd);
        }
        core.mark_closed();
        drop(self.stream.take());
        self.shard.stats.connection_closed(&reason);
        self.shard.remove_connection(self.id);
        tracing::debug!(
            shard = self.shard.info.id,
            peer = %self.transport.peer_addr(),
            %reason,
            "connection ended"
        );
        shard::run_guarded("connection_lost", || self.protocol.connection_lost(&reason));
    }
}

/// One vectored, non-blocking, SIGPIPE-free send of up to
/// [`SEND_MAX_SLICES`] chunks (the iovec array lives on the stack). A single
/// chunk — the common case: one reply per turn — goes through `send(2)`
/// instead: `sendmsg` also copies the message header and imports the iovec
/// from userspace, ≈4% of an echo server's CPU at saturation in `perf`.
fn send_vectored<'a>(
    fd: RawFd,
    chunks: impl Iterator<Item = &'a bytes::Bytes>,
) -> io::Result<usize> {
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; SEND_MAX_SLICES];
    let mut count = 0;
    for (slot, chunk) in iov.iter_mut().zip(chunks) {
        slot.iov_base = chunk.as_ptr() as *mut libc::c_void;
        slot.iov_len = chunk.len();
        count += 1;
    }
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    // SAFETY: msghdr is plain data; zeroed is a valid "no name, no control"
    // header. iov points at `count` initialised iovecs whose buffers outlive
    // the call (so does the single buffer handed to send).
    let n = unsafe {
        if count == 1 {
            libc::send(fd, iov[0].iov_base, iov[0].iov_len, flags)
        } else {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = iov.as_mut_ptr();
            msg.msg_iovlen = count as _;
            libc::sendmsg(fd, &msg, flags)
        }
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Makes the coming close(2) send a reset and drop unsent data.
fn set_linger_zero(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: fd is open; the option value outlives the call.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
