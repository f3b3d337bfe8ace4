//! Listening sockets (one per shard, `SO_REUSEPORT`; TCP or UDP) and the
//! accept loop.
//!
//! Every shard binds its own socket on the same address; the kernel spreads
//! incoming connections over them, so there is no accept thread and no
//! hand-off. The sockets are made on the starting thread, before any shard
//! runs, so a bind error is reported synchronously and port 0 works: the first
//! socket binds an ephemeral port and the others bind the port it got.
//!
//! # No silent port sharing
//!
//! `SO_REUSEPORT` lets *any* later socket of the same user that sets it join
//! the group and take a share of the connections: a second server started on
//! the same port would silently steal half the traffic. So before binding a
//! fixed port, [`bind_all`] first binds a probe socket **without**
//! `SO_REUSEPORT` (TCP: with `SO_REUSEADDR`, so connections of a previous
//! run still in `TIME_WAIT` do not count; UDP: with neither). The probe
//! fails with `EADDRINUSE` when anything is bound there, as Twisted's
//! `listenTCP` raises `CannotListenError`; it is closed at once and the
//! shards' sockets bind right after. What this cannot stop: another program
//! that itself sets `SO_REUSEPORT`, runs as the same user and binds *after*
//! us — the kernel admits it, and only that program can refuse to.
//!
//! The accept loop backs off when `accept` fails for lack of resources
//! (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`): it pauses accepting for
//! [`ACCEPT_BACKOFF`] instead of spinning, logs once per episode, and resumes
//! by itself. Established connections are unaffected.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::net::TcpListener;
use socket2::{Domain, Protocol as SockProtocol, Socket, Type};

use crate::clock::Clock;
use crate::connection::{self, Wire};
use crate::endpoint::Endpoint;
use crate::policy::AdmissionPermit;
use crate::protocol::Factory;
use crate::shard;
use crate::shard_runtime::ShardRuntime;
use crate::transport::Transport;

/// How long accepting pauses after running out of descriptors or memory.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Binds one listening socket per shard on `endpoint`. Returns the sockets
/// and the address they share.
pub(crate) fn bind_all(
    endpoint: &Endpoint,
    count: usize,
) -> io::Result<(Vec<OwnedFd>, SocketAddr)> {
    if endpoint.addr().port() != 0 {
        ensure_unused(endpoint)?;
    }
    let first = bind_one(endpoint)?;
    let addr = first
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("listener has no IP address"))?;
    let shared = endpoint.with_port(addr.port());
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(bind_one(&shared)?);
    }
    Ok((sockets.into_iter().map(OwnedFd::from).collect(), addr))
}

/// A socket of the endpoint's kind (TCP or UDP, v4 or v6-only), unbound.
fn new_socket(endpoint: &Endpoint) -> io::Result<Socket> {
    let addr = endpoint.addr();
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = match endpoint {
        Endpoint::Tcp { .. } | Endpoint::Tls { .. } => {
            Socket::new(domain, Type::STREAM, Some(SockProtocol::TCP))?
        }
        Endpoint::Udp { .. } => Socket::new(domain, Type::DGRAM, Some(SockProtocol::UDP))?,
    };
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    Ok(socket)
}

/// Fails with `AddrInUse` if anything is bound to the endpoint's address
/// (see the module docs: the probe binds without `SO_REUSEPORT`).
fn ensure_unused(endpoint: &Endpoint) -> io::Result<()> {
    let probe = new_socket(endpoint)?;
    if !endpoint.is_datagram() {
        probe.set_reuse_address(true)?;
    }
    match probe.bind(&endpoint.addr().into()) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "address already in use (another server is bound to this port)",
        )),
        other => other,
    }
}

fn bind_one(endpoint: &Endpoint) -> io::Result<Socket> {
    let addr = endpoint.addr();
    let socket = new_socket(endpoint)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    if let Endpoint::Tcp { backlog, .. } | Endpoint::Tls { backlog, .. } = endpoint {
        socket.listen(*backlog as i32)?;
    }
    Ok(socket)
}

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
    factory: Rc<RefCell<F>>,
    rt: Rc<ShardRuntime>,
) {
    let mut exhausted_since: Option<Instant> = None;
    loop {
        let next = futures_lite::future::or(
            async { Some(listener.listener.shared_accept().await) },
            async {
                rt.stop_accepting.wait().await;
                None
            },
        )
        .await;
        let Some(result) = next else { break };
        match result {
            Ok(accepted) => {
                if let Some(since) = exhausted_since.take() {
                    tracing::info!(
                        shard = rt.info.id,
                        paused_ms = since.elapsed().as_millis() as u64,
                        "accepting again"
                    );
                }
                let stream = accepted.bind_to_executor();
                start_connection(stream, &factory, &rt);
            }
            Err(err) => {
                let err = io::Error::from(err);
                rt.stats.accept_error();
                if is_resource_exhaustion(&err) {
                    if exhausted_since.is_none() {
                        exhausted_since = Some(Instant::now());
                        tracing::warn!(
                            shard = rt.info.id,
                            open = rt.connection_count(),
                            "accept failed ({err}); pausing accepts, retrying every {:?}",
                            ACCEPT_BACKOFF
                        );
                    } else {
                        tracing::debug!(
                            shard = rt.info.id,
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
                    tracing::error!(shard = rt.info.id, "accept failed: {err}");
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
        rt.stop_accepting.wait(),
    )
    .await;
}

fn start_connection<F: Factory>(
    stream: glommio::net::TcpStream,
    factory: &Rc<RefCell<F>>,
    rt: &Rc<ShardRuntime>,
) {
    // Close-on-exec from the accept itself (accept4 / io_uring accept with
    // SOCK_CLOEXEC in our glommio): a child process never inherits it.
    let fd = stream.as_raw_fd();
    rt.stats.connection_accepted();
    let (peer, local) = match (stream.peer_addr(), stream.local_addr()) {
        (Ok(p), Ok(l)) => (p, l),
        // The peer is already gone (e.g. reset while queued): drop it.
        _ => {
            rt.stats.connection_refused();
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let permit = match rt.admission.admit(peer.ip()) {
        Ok(permit) => permit,
        Err(cap) => {
            rt.stats.over_capacity();
            tracing::debug!(shard = rt.info.id, %peer, ?cap, "connection over capacity");
            let goodbye = shard::call_guarded("Factory::over_capacity", || {
                factory.borrow_mut().over_capacity(peer)
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
    match rt.tls.clone() {
        None => build_and_drive(Wire::Plain(stream), peer, local, fd, permit, factory, rt),
        Some(tls) => {
            // Handshake first (bounded, and abandoned if the shard stops);
            // the protocol is built only for a completed handshake.
            let (factory, rt) = (factory.clone(), rt.clone());
            glommio::spawn_local(async move {
                let handshake = futures_lite::future::or(
                    async { Some(tls.acceptor.accept(stream).await) },
                    async {
                        futures_lite::future::or(
                            glommio::timer::sleep(tls.handshake_timeout),
                            rt.stop_accepting.wait(),
                        )
                        .await;
                        None
                    },
                )
                .await;
                match handshake {
                    Some(Ok(tls_stream)) => build_and_drive(
                        Wire::Tls(Box::new(tls_stream)),
                        peer,
                        local,
                        fd,
                        permit,
                        &factory,
                        &rt,
                    ),
                    failed => {
                        rt.stats.tls_failure();
                        drop(permit);
                        match failed {
                            Some(Err(e)) => {
                                tracing::debug!(shard = rt.info.id, %peer, "TLS handshake failed: {e}")
                            }
                            _ => tracing::debug!(shard = rt.info.id, %peer, "TLS handshake timed out"),
                        }
                    }
                }
            })
            .detach();
        }
    }
}

/// Builds the protocol for an accepted (and, for TLS, handshaken)
/// connection and starts its driver.
fn build_and_drive<F: Factory>(
    wire: Wire,
    peer: std::net::SocketAddr,
    local: std::net::SocketAddr,
    fd: std::os::fd::RawFd,
    permit: AdmissionPermit,
    factory: &Rc<RefCell<F>>,
    rt: &Rc<ShardRuntime>,
) {
    let built = shard::call_guarded("Factory::build_protocol", || {
        factory.borrow_mut().build_protocol(peer)
    });
    let Some(Some(protocol)) = built else {
        // (The permit, dropped here, gives the place back.)
        rt.stats.connection_refused();
        tracing::debug!(shard = rt.info.id, %peer, "connection refused by factory");
        return;
    };
    let transport = Transport::new(peer, local, rt.info.id, Clock::real(), rt.limits, Some(fd));
    if let Some(idle) = rt.policies.idle_timeout {
        transport.set_idle_timeout(Some(idle));
    }
    let id = rt.add_connection(transport.clone(), Some(permit));
    glommio::spawn_local(connection::drive(id, wire, protocol, transport, rt.clone())).detach();
}
