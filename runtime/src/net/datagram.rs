//! UDP: datagram protocols per shard (Twisted's `listenUDP` and
//! `DatagramProtocol`).
//!
//! Each shard binds its own `SO_REUSEPORT` UDP socket on the endpoint's
//! address (the kernel spreads senders over them by address hash) and runs
//! one protocol instance, on that shard, for every datagram its socket
//! receives. Reads go through glommio (io_uring); writes are non-blocking
//! `sendto` calls made right away from the callback.
//!
//! * **Sizes.** Datagrams are read into a 64 KiB buffer, larger than any UDP
//!   payload (65,507 bytes over IPv4, 65,527 over IPv6), so nothing received
//!   is ever truncated. [`DatagramTransport::write_to`] refuses a payload over
//!   the limit with [`DatagramError::TooLarge`] instead of letting it fail or
//!   be cut.
//! * **ICMP errors.** The socket sets `IP_RECVERR`/`IPV6_RECVERR`, so an ICMP
//!   error for a datagram we sent (port unreachable: Twisted's
//!   `connectionRefused`) comes back as a receive error, handed to
//!   [`DatagramProtocol::error_received`]; the socket keeps serving.
//! * **Back-pressure.** UDP has none: a write the kernel cannot take at once
//!   (`EAGAIN`) is reported as [`DatagramError::WouldBlock`] — the datagram
//!   is not sent, and the caller knows.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use crate::net::pacer::{FailurePacer, FAILURE_PAUSE};
use crate::shard;
use crate::shard::runtime::ShardRuntime;

/// Largest UDP payload over IPv4.
pub const MAX_DATAGRAM_V4: usize = 65_507;
/// Largest UDP payload over IPv6.
pub const MAX_DATAGRAM_V6: usize = 65_527;

/// The code that handles a shard's datagrams.
pub trait DatagramProtocol: 'static {
    /// The socket is ready (Twisted's `startProtocol`).
    fn started(&mut self, transport: &DatagramTransport) {
        let _ = transport;
    }

    /// A datagram arrived from `from` (Twisted's `datagramReceived`).
    fn datagram_received(&mut self, transport: &DatagramTransport, data: &[u8], from: SocketAddr);

    /// The kernel reported an error for an earlier send, e.g. an ICMP port
    /// unreachable (`ConnectionRefused`: Twisted's `connectionRefused`).
    fn error_received(&mut self, transport: &DatagramTransport, error: &io::Error) {
        let _ = (transport, error);
    }

    /// The server is stopping (Twisted's `stopProtocol`).
    fn stopped(&mut self) {}
}

/// Why a datagram was not sent.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DatagramError {
    /// Over the largest UDP payload.
    #[error("datagram of {len} bytes is over the UDP limit of {max}")]
    TooLarge {
        /// The payload's length.
        len: usize,
        /// The limit for the socket's address family.
        max: usize,
    },
    /// The socket's send buffer is full; the datagram was not sent.
    #[error("the socket cannot take the datagram now (not sent)")]
    WouldBlock,
    /// The server has stopped.
    #[error("the datagram socket is closed")]
    Closed,
    /// Another error from the kernel (the source).
    #[error("sendto failed")]
    Io(#[source] std::sync::Arc<io::Error>),
}

/// Equal when the same kind of failure (an `Io` error: the same kind of OS
/// error).
impl PartialEq for DatagramError {
    fn eq(&self, other: &Self) -> bool {
        use DatagramError::*;
        match (self, other) {
            (TooLarge { len, max }, TooLarge { len: l2, max: m2 }) => len == l2 && max == m2,
            (WouldBlock, WouldBlock) | (Closed, Closed) => true,
            (Io(a), Io(b)) => a.kind() == b.kind(),
            _ => false,
        }
    }
}

impl Eq for DatagramError {}

/// A shard's UDP socket, as its protocol writes to it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DatagramTransport {
    fd: RawFd,
    local: SocketAddr,
    shard_id: usize,
    closed: Rc<Cell<bool>>,
    rt: Rc<ShardRuntime>,
}

impl DatagramTransport {
    /// Sends `data` to `to` now (non-blocking).
    pub fn write_to(&self, data: &[u8], to: SocketAddr) -> Result<(), DatagramError> {
        if self.closed.get() {
            return Err(DatagramError::Closed);
        }
        let max = if self.local.is_ipv6() {
            MAX_DATAGRAM_V6
        } else {
            MAX_DATAGRAM_V4
        };
        if data.len() > max {
            return Err(DatagramError::TooLarge {
                len: data.len(),
                max,
            });
        }
        let addr = socket2::SockAddr::from(to);
        // SAFETY: fd is the shard's open UDP socket (closed only after the
        // protocol has stopped); data and addr outlive the call.
        let n = unsafe {
            libc::sendto(
                self.fd,
                data.as_ptr() as *const libc::c_void,
                data.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                addr.as_ptr(),
                addr.len(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.kind() {
                io::ErrorKind::WouldBlock => DatagramError::WouldBlock,
                _ if e.raw_os_error() == Some(libc::EMSGSIZE) => DatagramError::TooLarge {
                    len: data.len(),
                    max,
                },
                _ => DatagramError::Io(std::sync::Arc::new(e)),
            });
        }
        self.rt.stats().add_bytes_out(n as usize);
        Ok(())
    }

    /// The socket's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The shard that owns the socket.
    pub fn shard_id(&self) -> usize {
        self.shard_id
    }
}

fn set_recverr(fd: RawFd, ipv6: bool) {
    let on: libc::c_int = 1;
    let (level, name) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
    } else {
        (libc::IPPROTO_IP, libc::IP_RECVERR)
    };
    // Best effort: without it ICMP reports are simply not surfaced.
    let _ = crate::connection::sockopt::set(fd, level, name, &on);
}

/// True for the errors a peer's ICMP report surfaces (`IP_RECVERR`): each
/// is consumed from the socket's error queue, so receiving right after it
/// is fine. Any other error says the socket itself is in trouble.
fn is_peer_report(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNREFUSED
                | libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::ENETDOWN
                | libc::EMSGSIZE
                | libc::EPROTO
        )
    )
}

/// Serves `protocol` on the shard's UDP socket until the shard stops.
/// A receive error is handed to `error_received`; one that is not a peer's
/// ICMP report and keeps recurring is retried with a pause between repeats
/// ([`FAILURE_PAUSE`], logged once per episode), never in a spin.
pub(crate) async fn serve<P: DatagramProtocol>(
    mut protocol: P,
    socket: OwnedFd,
    rt: Rc<ShardRuntime>,
) -> P {
    let fd = socket.as_raw_fd();
    let local = socket2::SockRef::from(&socket)
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    set_recverr(fd, local.is_ipv6());
    // SAFETY: ownership of the bound UDP socket moves to glommio, which
    // closes it on drop (after the protocol has stopped).
    let udp = unsafe { glommio::net::UdpSocket::from_raw_fd(socket.into_raw_fd()) };
    let transport = DatagramTransport {
        fd,
        local,
        shard_id: rt.info().id,
        closed: Rc::new(Cell::new(false)),
        rt: rt.clone(),
    };
    // A panic in any callback is contained (logged and counted); the shard
    // keeps serving the next datagram.
    shard::run_guarded("DatagramProtocol::started", || protocol.started(&transport));
    let mut buf = vec![0u8; 64 * 1024];
    let mut failures = FailurePacer::new(FAILURE_PAUSE);
    loop {
        let next = futures_lite::future::or(async { Some(udp.recv_from(&mut buf).await) }, async {
            rt.stopped_accepting().await;
            None
        })
        .await;
        let Some(result) = next else { break };
        match result {
            Ok((n, from)) => {
                if let Some(n) = failures.succeeded() {
                    tracing::info!(shard = rt.info().id, failures = n, "receiving again");
                }
                rt.stats().add_bytes_in(n);
                shard::run_guarded("DatagramProtocol::datagram_received", || {
                    protocol.datagram_received(&transport, &buf[..n], from)
                });
            }
            Err(e) => {
                let e = io::Error::from(e);
                shard::run_guarded("DatagramProtocol::error_received", || {
                    protocol.error_received(&transport, &e)
                });
                if !is_peer_report(&e) {
                    // Not an ICMP report consumed from the error queue: the
                    // socket itself is failing, and may fail again at once.
                    let retry = failures.failed();
                    if retry.first {
                        tracing::warn!(
                            shard = rt.info().id,
                            "receive failed: {e}; retrying, pausing {FAILURE_PAUSE:?} between repeats"
                        );
                    }
                    if !retry.wait.is_zero() {
                        futures_lite::future::or(
                            async {
                                glommio::timer::sleep(retry.wait).await;
                            },
                            rt.stopped_accepting(),
                        )
                        .await;
                    }
                }
            }
        }
    }
    shard::run_guarded("DatagramProtocol::stopped", || protocol.stopped());
    transport.closed.set(true);
    drop(udp);
    protocol
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_reports_are_told_apart_from_socket_failures() {
        let err = |code| io::Error::from_raw_os_error(code);
        assert!(is_peer_report(&err(libc::ECONNREFUSED)));
        assert!(is_peer_report(&err(libc::EHOSTUNREACH)));
        assert!(!is_peer_report(&err(libc::EBADF)));
        assert!(!is_peer_report(&err(libc::ENOMEM)));
    }
}
