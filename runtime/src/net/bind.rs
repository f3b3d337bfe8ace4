//! The shards' sockets: one per shard on the same address, with
//! `SO_REUSEPORT` (TCP, TLS or UDP), made on the starting thread before any
//! shard runs, so a bind error is reported synchronously and port 0 works:
//! the first socket binds an ephemeral port and the others bind the port it
//! got. The kernel then spreads connections (or datagrams) over them: no
//! accept thread, no hand-off.
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

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use socket2::{Domain, Protocol as SockProtocol, Socket, Type};

use crate::net::endpoint::Endpoint;

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
