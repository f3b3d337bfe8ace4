//! The connection driver: pumps one socket through one protocol.
//!
//! One glommio task per connection runs [`drive`]. What happens when is
//! decided by the connection's [`Machine`] (`machine.rs`, shared with the
//! test kit); the driver performs it with real I/O. Each step:
//!
//! 1. an abort (from the protocol, the hard cap or the drain deadline) ends
//!    the connection at once, with a reset (`SO_LINGER` 0);
//! 2. a pending shutdown notice is delivered (`shutdown_requested`);
//! 3. the outbound queue is flushed with vectored `sendmsg(MSG_DONTWAIT |
//!    MSG_NOSIGNAL)` — one syscall for everything the last callback wrote
//!    (plain `send` when the queue is one chunk: cheaper in the kernel).
//!    (Not while the protocol corks the transport below its high-water
//!    mark: see `transport.rs`.)
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
//!    64 KiB scratch buffer (the host's, see `host.rs`) and are appended to the connection's own
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

use futures_lite::io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use glommio::timer::Timer;

use super::host::ConnectionHost;
use super::machine::{Action, Machine};
use crate::connection::policy::ReadThrottle;
use crate::connection::protocol::Protocol;
use crate::connection::reason::DisconnectReason;
use crate::connection::transport::Transport;

/// Most slices handed to one `sendmsg`.
const SEND_MAX_SLICES: usize = 64;
/// Steps one poll may take before yielding to other tasks.
const BUDGET: usize = 64;

/// The socket a connection runs over: plain TCP (the fast path: vectored
/// `sendmsg` on the fd) or TLS (rustls over the same socket, through
/// `futures-rustls`; plaintext in, ciphertext out), as a server or as a
/// client.
pub(crate) enum Wire {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, server side, after a completed handshake.
    #[cfg(feature = "tls")]
    Tls(Box<futures_rustls::server::TlsStream<TcpStream>>),
    /// TLS, client side, after a completed handshake.
    #[cfg(feature = "tls")]
    TlsClient(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

impl Wire {
    fn fd(&self) -> RawFd {
        match self {
            Wire::Plain(s) => s.as_raw_fd(),
            #[cfg(feature = "tls")]
            Wire::Tls(t) => t.get_ref().0.as_raw_fd(),
            #[cfg(feature = "tls")]
            Wire::TlsClient(t) => t.get_ref().0.as_raw_fd(),
        }
    }

    fn is_tls(&self) -> bool {
        !matches!(self, Wire::Plain(_))
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self {
            Wire::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Wire::Tls(t) => Pin::new(&mut **t).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Wire::TlsClient(t) => Pin::new(&mut **t).poll_read(cx, buf),
        }
    }

    /// Hands plaintext to TLS (which may send ciphertext).
    #[cfg_attr(not(feature = "tls"), allow(unused_variables))]
    fn poll_write_tls(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Wire::Plain(_) => unreachable!("plain connections send with sendmsg"),
            #[cfg(feature = "tls")]
            Wire::Tls(t) => Pin::new(&mut **t).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Wire::TlsClient(t) => Pin::new(&mut **t).poll_write(cx, buf),
        }
    }

    /// Sends the ciphertext TLS holds.
    #[cfg_attr(not(feature = "tls"), allow(unused_variables))]
    fn poll_flush_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Wire::Plain(_) => Poll::Ready(Ok(())),
            #[cfg(feature = "tls")]
            Wire::Tls(t) => Pin::new(&mut **t).poll_flush(cx),
            #[cfg(feature = "tls")]
            Wire::TlsClient(t) => Pin::new(&mut **t).poll_flush(cx),
        }
    }

    /// Queues TLS's `close_notify` (flushed by `poll_flush_tls`).
    fn send_close_notify(&mut self) {
        match self {
            Wire::Plain(_) => {}
            #[cfg(feature = "tls")]
            Wire::Tls(t) => t.get_mut().1.send_close_notify(),
            #[cfg(feature = "tls")]
            Wire::TlsClient(t) => t.get_mut().1.send_close_notify(),
        }
    }
}

/// One connection's socket side: the wire, the host, and the timers of
/// lingering and throttling; the machine holds everything else.
struct Driver<P: Protocol, H: ConnectionHost> {
    id: u64,
    stream: Option<Wire>,
    fd: RawFd,
    machine: Machine<P>,
    host: Rc<H>,
    shut_write: bool,
    linger: Option<Timer>,
    throttle: Option<ReadThrottle>,
    /// Reading waits for this before the next read (read throttling).
    throttle_wait: Option<Timer>,
}

/// Runs `protocol` on `stream` until the connection ends; calls
/// `connection_lost` exactly once.
pub(crate) async fn drive<P: Protocol, H: ConnectionHost>(
    id: u64,
    stream: Wire,
    protocol: P,
    transport: Transport,
    host: Rc<H>,
) {
    let fd = stream.fd();
    let mut driver = Driver {
        id,
        stream: Some(stream),
        fd,
        machine: Machine::new(protocol, transport),
        throttle: host.max_read_rate().map(ReadThrottle::new),
        host,
        shut_write: false,
        linger: None,
        throttle_wait: None,
    };
    let reason = match driver.machine.start() {
        Action::Finish(reason) => reason,
        _ => futures_lite::future::poll_fn(|cx| driver.poll_drive(cx)).await,
    };
    let machine = driver.finish(reason);
    // A future the protocol runs goes on after the connection (its reads
    // see the end); on this task, which holds nothing else any more.
    if machine.future_pending() {
        machine.run_out().await;
    }
}

impl<P: Protocol, H: ConnectionHost> Driver<P, H> {
    fn core(&self) -> &crate::connection::transport::TransportCore {
        &self.machine.transport().core
    }

    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<DisconnectReason> {
        self.core().set_waker(cx.waker());
        self.machine.woken();
        for _ in 0..BUDGET {
            match self.step(cx) {
                Action::Continue => continue,
                Action::Finish(reason) => return Poll::Ready(reason),
                _ => return Poll::Pending,
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// One step: the machine decides, the driver performs. Returns
    /// `Continue`, `Wait` (pending: a waker is registered) or `Finish`.
    fn step(&mut self, cx: &mut Context<'_>) -> Action {
        if let Some(action) = self.machine.before_flush() {
            return action;
        }
        if let Some(action) = self.machine.poll_if_due(cx) {
            return action;
        }
        let flushed = if !self.machine.flush_allowed() {
            false
        } else {
            match self.poll_flush(cx) {
                Poll::Ready(Ok(())) => true,
                Poll::Ready(Err(e)) => return Action::Finish(DisconnectReason::from_io(&e)),
                Poll::Pending => false,
            }
        };
        match self.machine.after_flush(flushed) {
            Action::Close => self.poll_closing(cx),
            Action::Read => self.read(cx),
            other => other,
        }
    }

    /// Reads once (after a throttle wait, if one is running) and hands the
    /// bytes or the EOF to the machine.
    fn read(&mut self, cx: &mut Context<'_>) -> Action {
        if let Some(wait) = &mut self.throttle_wait {
            match Pin::new(wait).poll(cx) {
                Poll::Pending => return Action::Wait,
                Poll::Ready(_) => {
                    self.throttle_wait = None;
                    self.core().set_throttled(false);
                }
            }
        }
        match self.poll_read(cx) {
            Poll::Pending => Action::Wait,
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Action::Continue,
            Poll::Ready(Err(e)) => Action::Finish(DisconnectReason::from_io(&e)),
            Poll::Ready(Ok(0)) => self.machine.eof_arrived(),
            Poll::Ready(Ok(_)) => self.machine.data_arrived(),
        }
    }

    /// Reads once into the host's scratch buffer and appends to the
    /// machine's input buffer.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Driver {
            host,
            stream,
            machine,
            throttle,
            throttle_wait,
            ..
        } = self;
        let mut scratch = host.scratch().borrow_mut();
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
                    host.bytes_in(n);
                    machine.input_buffer().extend_from_slice(&scratch[..n]);
                    let core = &machine.transport().core;
                    core.touch();
                    if let Some(t) = throttle {
                        let wait = t.consume(n, std::time::Instant::now());
                        if !wait.is_zero() {
                            *throttle_wait = Some(Timer::new(wait));
                            core.set_throttled(true);
                        }
                    }
                }
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    /// Counts `n` bytes sent.
    fn sent(&self, n: usize) {
        self.host.bytes_out(n);
        self.core().touch();
    }

    /// Sends the queue; `Ready(Ok)` once it is empty.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.stream.as_ref().is_some_and(Wire::is_tls) {
            return self.poll_flush_tls(cx);
        }
        let fd = self.fd;
        loop {
            match self.core().send_queued(|chunks| send_vectored(fd, chunks)) {
                None => return Poll::Ready(Ok(())),
                Some(Ok(n)) => self.sent(n),
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Socket full: let glommio arm a writability poll by
                    // offering it the front chunk (it may also just send it).
                    let front = self.core().front_chunk().expect("queue is not empty");
                    let Some(Wire::Plain(stream)) = self.stream.as_mut() else {
                        unreachable!("plain path")
                    };
                    match Pin::new(stream).poll_write(cx, &front) {
                        Poll::Ready(Ok(n)) => {
                            self.core().consume(n);
                            self.sent(n);
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
        let core = self.machine.transport().core.clone();
        while let Some(front) = core.front_chunk() {
            let tls = self.stream.as_mut().expect("stream open while driving");
            match tls.poll_write_tls(cx, &front) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    core.consume(n);
                    self.sent(n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let tls = self.stream.as_mut().expect("stream open while driving");
        tls.poll_flush_tls(cx)
    }

    /// After a flushed `close`: FIN, then linger until the peer's FIN.
    fn poll_closing(&mut self, cx: &mut Context<'_>) -> Action {
        if let Some(tls) = self.stream.as_mut().filter(|w| w.is_tls()) {
            if !self.shut_write {
                // close_notify first, so the peer sees an orderly TLS close.
                tls.send_close_notify();
                match tls.poll_flush_tls(cx) {
                    Poll::Pending => return Action::Wait,
                    Poll::Ready(Err(e)) => return Action::Finish(DisconnectReason::from_io(&e)),
                    Poll::Ready(Ok(())) => {}
                }
            }
        }
        if !self.shut_write {
            self.shut_write = true;
            // SAFETY: fd is this connection's open socket.
            unsafe { libc::shutdown(self.fd, libc::SHUT_WR) };
        }
        if self.machine.eof_seen() {
            return Action::Finish(DisconnectReason::Closed);
        }
        for _ in 0..BUDGET {
            match self.poll_read(cx) {
                Poll::Ready(Ok(0)) => return Action::Finish(DisconnectReason::Closed),
                // Discard what the peer still sends.
                Poll::Ready(Ok(_)) => self.machine.input_buffer().clear(),
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Action::Finish(DisconnectReason::from_io(&e)),
                Poll::Pending => break,
            }
        }
        let linger = self.core().limits().linger;
        let timer = self.linger.get_or_insert_with(|| Timer::new(linger));
        match Pin::new(timer).poll(cx) {
            Poll::Ready(_) => Action::Finish(DisconnectReason::Closed),
            Poll::Pending => Action::Wait,
        }
    }

    /// Ends the connection: closes the socket, tells the host and the
    /// protocol; gives back the machine (its protocol's future may still
    /// run).
    fn finish(mut self, reason: DisconnectReason) -> Machine<P> {
        let abortive = !matches!(
            reason,
            DisconnectReason::Closed | DisconnectReason::Reset | DisconnectReason::Io { .. }
        );
        if abortive {
            set_linger_zero(self.fd);
        }
        let reason = self.machine.end(reason);
        drop(self.stream.take());
        self.host.connection_ended(self.id, &reason);
        tracing::debug!(
            shard = self.host.shard_id(),
            peer = %self.machine.transport().peer_addr(),
            %reason,
            "connection ended"
        );
        self.machine.connection_lost(&reason);
        self.machine
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
    // Best effort: failing, the close is an orderly one.
    let _ = crate::connection::sockopt::set(fd, libc::SOL_SOCKET, libc::SO_LINGER, &linger);
}
