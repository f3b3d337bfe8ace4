//! A shard's TCP listener (its socket comes from `bind.rs`) and the accept
//! loop: admission (caps, permits), TLS handshakes, building the protocol
//! and starting its connection driver.
//!
//! The accept loop backs off when `accept` fails for lack of resources
//! (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`): it pauses accepting for
//! [`ACCEPT_BACKOFF`] instead of spinning, logs once per episode, and resumes
//! by itself. Established connections are unaffected.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::net::TcpListener;

use crate::clock::Clock;
use crate::connection::policy::AdmissionPermit;
use crate::connection::protocol::Factory;
use crate::connection::transport::Transport;
use crate::connection::{self, Wire};
use crate::shard;
use crate::shard::runtime::ShardRuntime;

/// How long accepting pauses after running out of descriptors or memory
/// ("Limits and failure behaviour" in the README says 100 ms).
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A shard's listener, bound to the shard's reactor.
pub(crate) struct ShardListener {
    listener: TcpListener,
    fd: RawFd,
}

/// Wraps a bound socket for the current shard's reactor.
pub(crate) fn adopt(fd: OwnedFd) -> ShardListener {
    let fd = fd.into_raw_fd();
    // SAFETY: fd is a bound, listening TCP socket we own; ownership moves to
    // the glommio listener, which closes it on drop.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    ShardListener { listener, fd }
}

impl Drop for ShardListener {
    fn drop(&mut self) {
        // An io_uring accept still in flight holds a reference to the socket,
        // and the kernel cancels it asynchronously, after the ring is gone:
        // until then the socket would keep listening (and queue connections
        // nobody will accept). shutdown(2) on a listening socket takes it out
        // of LISTEN at once and fails the pending accept, so the port is
        // really closed when the shard stops.
        // SAFETY: fd is still open (the glommio listener closes it after this).
        unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
    }
}

fn is_resource_exhaustion(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

/// Accepts until the shard stops accepting, building a protocol for each
/// connection and spawning its driver.
pub(crate) async fn accept_loop<F: Factory>(
    listener: ShardListener,
    which: ListenerTls,
    factory: Rc<RefCell<F>>,
    rt: Rc<ShardRuntime>,
) {
    let mut exhausted_since: Option<Instant> = None;
    loop {
        let next = futures_lite::future::or(
            async { Some(listener.listener.shared_accept().await) },
            async {
                rt.stopped_accepting().await;
                None
            },
        )
        .await;
        let Some(result) = next else { break };
        match result {
            Ok(accepted) => {
                if let Some(since) = exhausted_since.take() {
                    tracing::info!(
                        shard = rt.info().id,
                        paused_ms = since.elapsed().as_millis() as u64,
                        "accepting again"
                    );
                }
                let stream = accepted.bind_to_executor();
                start_connection(stream, &which, &factory, &rt);
            }
            Err(err) => {
                let err = io::Error::from(err);
                rt.stats().accept_error();
                if is_resource_exhaustion(&err) {
                    if exhausted_since.is_none() {
                        exhausted_since = Some(Instant::now());
                        tracing::warn!(
                            shard = rt.info().id,
                            open = rt.connection_count(),
                            "accept failed ({err}); pausing accepts, retrying every {:?}",
                            ACCEPT_BACKOFF
                        );
                    } else {
                        tracing::debug!(
                            shard = rt.info().id,
                            "accept still failing ({err}); pausing"
                        );
                    }
                    pause(&rt, ACCEPT_BACKOFF).await;
                } else if matches!(
                    err.raw_os_error(),
                    Some(libc::ECONNABORTED) | Some(libc::EINTR) | Some(libc::EPROTO)
                ) {
                    // The peer gave up before we accepted: nothing to do.
                } else {
                    tracing::error!(shard = rt.info().id, "accept failed: {err}");
                    pause(&rt, Duration::from_millis(10)).await;
                }
            }
        }
    }
}

async fn pause(rt: &ShardRuntime, how_long: Duration) {
    futures_lite::future::or(
        async {
            glommio::timer::Timer::new(how_long).await;
        },
        rt.stopped_accepting(),
    )
    .await;
}

fn start_connection<F: Factory>(
    stream: glommio::net::TcpStream,
    which: &ListenerTls,
    factory: &Rc<RefCell<F>>,
    rt: &Rc<ShardRuntime>,
) {
    // Close-on-exec from the accept itself (accept4 / io_uring accept with
    // SOCK_CLOEXEC in our glommio): a child process never inherits it.
    let fd = stream.as_raw_fd();
    rt.stats().connection_accepted();
    let (peer, local) = match (stream.peer_addr(), stream.local_addr()) {
        (Ok(p), Ok(l)) => (p, l),
        // The peer is already gone (e.g. reset while queued): drop it.
        _ => {
            rt.stats().connection_refused();
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let permit = match rt.admission().admit(peer.ip()) {
        Ok(permit) => permit,
        Err(cap) => {
            rt.stats().over_capacity();
            tracing::debug!(shard = rt.info().id, %peer, ?cap, "connection over capacity");
            let goodbye = shard::call_guarded("Factory::over_capacity", || {
                factory.borrow_mut().over_capacity_on(which.index, peer)
            })
            .flatten();
            if let Some(msg) = goodbye {
                // Best effort: one non-blocking send, never waited for.
                // SAFETY: fd is open; msg outlives the call.
                unsafe {
                    libc::send(
                        fd,
                        msg.as_ptr() as *const libc::c_void,
                        msg.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                };
            }
            return;
        }
    };
    let accepted = Accepted {
        peer,
        local,
        fd,
        permit,
        listener: which.index,
    };
    match which.tls.clone() {
        None => build_and_drive(Wire::Plain(stream), accepted, factory, rt),
        #[cfg(feature = "tls")]
        Some(tls) => handshake_and_drive(tls, stream, accepted, factory, rt),
        #[cfg(not(feature = "tls"))]
        Some(never) => match never {},
    }
}

/// An admitted connection on its way to a protocol.
struct Accepted {
    peer: std::net::SocketAddr,
    local: std::net::SocketAddr,
    fd: std::os::fd::RawFd,
    /// Its place under the connection caps (given back when dropped).
    permit: AdmissionPermit,
    /// Which of the server's listeners it came in on.
    listener: usize,
}

/// One of a shard's listeners: its place among the server's endpoints
/// (0: the first) and the TLS it terminates, if any.
#[derive(Clone)]
pub(crate) struct ListenerTls {
    pub(crate) index: usize,
    pub(crate) tls: Option<crate::net::ShardTls>,
}

/// Terminates TLS on an accepted connection, then builds its protocol.
#[cfg(feature = "tls")]
fn handshake_and_drive<F: Factory>(
    tls: crate::net::ShardTls,
    stream: glommio::net::TcpStream,
    accepted: Accepted,
    factory: &Rc<RefCell<F>>,
    rt: &Rc<ShardRuntime>,
) {
    // Handshake first (bounded, and abandoned if the shard stops);
    // the protocol is built only for a completed handshake.
    let (factory, rt) = (factory.clone(), rt.clone());
    glommio::spawn_local(async move {
        let handshake =
            futures_lite::future::or(async { Some(tls.acceptor.accept(stream).await) }, async {
                futures_lite::future::or(
                    glommio::timer::sleep(tls.handshake_timeout),
                    rt.stopped_accepting(),
                )
                .await;
                None
            })
            .await;
        match handshake {
            Some(Ok(tls_stream)) => {
                build_and_drive(Wire::Tls(Box::new(tls_stream)), accepted, &factory, &rt)
            }
            failed => {
                rt.stats().tls_failure();
                let peer = accepted.peer;
                drop(accepted); // gives its place back
                match failed {
                    Some(Err(e)) => {
                        tracing::debug!(shard = rt.info().id, %peer, "TLS handshake failed: {e}")
                    }
                    _ => tracing::debug!(shard = rt.info().id, %peer, "TLS handshake timed out"),
                }
            }
        }
    })
    .detach();
}

/// Builds the protocol for an accepted (and, for TLS, handshaken)
/// connection and starts its driver.
fn build_and_drive<F: Factory>(
    wire: Wire,
    accepted: Accepted,
    factory: &Rc<RefCell<F>>,
    rt: &Rc<ShardRuntime>,
) {
    let Accepted {
        peer,
        local,
        fd,
        permit,
        listener,
    } = accepted;
    let built = shard::call_guarded("Factory::build_protocol", || {
        factory.borrow_mut().build_protocol_on(listener, peer)
    });
    let Some(Some(protocol)) = built else {
        // (The permit, dropped here, gives the place back.)
        rt.stats().connection_refused();
        tracing::debug!(shard = rt.info().id, %peer, "connection refused by factory");
        return;
    };
    let transport = Transport::new(
        peer,
        local,
        rt.info().id,
        Clock::real(),
        rt.limits(),
        Some(fd),
    );
    if let Some(idle) = rt.policies().idle_timeout {
        transport.set_idle_timeout(Some(idle));
    }
    let id = rt.add_connection(transport.clone(), permit);
    glommio::spawn_local(connection::drive(id, wire, protocol, transport, rt.clone())).detach();
}
