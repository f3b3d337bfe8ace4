//! [`UdpSocket`]: one UDP socket used from a task on the current shard — a
//! client's socket (the load generator's UDP echo load), as opposed to a
//! server's per-shard [`DatagramProtocol`](crate::DatagramProtocol).
//!
//! # Design
//!
//! It is a thin wrapper over glommio's socket, so that code above the
//! runtime (the `torsion` command, examples, tests) never names glommio:
//! the reactor stays an implementation detail of this crate. Receives go
//! through the shard's io_uring as any of glommio's socket reads; sends try
//! the non-blocking `sendto` first. Errors are plain [`io::Error`]s (glommio's
//! converted with `io::Error::from`), so an ICMP error for an earlier send
//! (`ConnectionRefused`: nobody listens there) arrives as a receive error and
//! the socket keeps working.
//!
//! Addresses are [`SocketAddr`]s, never names: nothing resolves DNS on a
//! shard. The socket is bound with `SO_REUSEPORT` (glommio's default), which
//! changes nothing for a socket bound to port 0. Methods take `&self`, so
//! one task can send while another receives on the same socket (share it
//! with an `Rc`).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! torsion::block_on(async {
//!     let socket = torsion::UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
//!     socket.connect("127.0.0.1:7000".parse().unwrap()).await?;
//!     socket.send(b"ping").await?;
//!     let mut buf = [0u8; 1500];
//!     let n = socket.recv(&mut buf).await?;
//!     println!("{:?}", &buf[..n]);
//!     Ok::<_, std::io::Error>(())
//! })??;
//! # Ok(()) }
//! ```

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// A UDP socket on the current shard.
pub struct UdpSocket {
    inner: glommio::net::UdpSocket,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

impl UdpSocket {
    /// A socket bound to `addr` (port 0: any free port).
    ///
    /// # Panics
    /// When called off a shard (no glommio executor on this thread): run a
    /// client program with [`crate::block_on`] or
    /// [`crate::run_on_cores`].
    pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        let inner = glommio::net::UdpSocket::bind(addr).map_err(io::Error::from)?;
        Ok(UdpSocket { inner })
    }

    /// Connects the socket to `addr`: [`UdpSocket::send`] and
    /// [`UdpSocket::recv`] then talk to it, and datagrams from anyone else
    /// are filtered out by the kernel.
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        self.inner.connect(addr).await.map_err(io::Error::from)
    }

    /// Sends `buf` as one datagram to the connected address; the number of
    /// bytes sent. Fails if the socket is not connected.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.send(buf).await.map_err(io::Error::from)
    }

    /// Receives one datagram from the connected address into `buf`; its
    /// length (bytes past `buf`'s end are discarded). Fails if the socket is
    /// not connected.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.recv(buf).await.map_err(io::Error::from)
    }

    /// Sends `buf` as one datagram to `addr`; the number of bytes sent.
    pub async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        self.inner.send_to(buf, addr).await.map_err(io::Error::from)
    }

    /// Receives one datagram into `buf`: its length (bytes past `buf`'s end
    /// are discarded) and its sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.recv_from(buf).await.map_err(io::Error::from)
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr().map_err(io::Error::from)
    }

    /// The connected address, if connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr().map_err(io::Error::from)
    }
}

impl std::os::fd::AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.inner.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[test]
    fn a_datagram_goes_there_and_back_on_loopback() {
        crate::block_on(async {
            let a = UdpSocket::bind(loopback()).unwrap();
            let b = UdpSocket::bind(loopback()).unwrap();
            let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            assert_ne!(a_addr.port(), 0, "bound to a real port");

            assert_eq!(a.send_to(b"ping", b_addr).await.unwrap(), 4);
            let mut buf = [0u8; 64];
            let (n, from) = b.recv_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], from), (&b"ping"[..], a_addr));

            b.connect(a_addr).await.unwrap();
            assert_eq!(b.peer_addr().unwrap(), a_addr);
            assert_eq!(b.send(b"pong").await.unwrap(), 4);
            let (n, from) = a.recv_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], from), (&b"pong"[..], b_addr));

            a.connect(b_addr).await.unwrap();
            a.send(b"again").await.unwrap();
            let n = b.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"again");
        })
        .unwrap();
    }

    #[test]
    fn an_unconnected_socket_cannot_send_or_recv_without_an_address() {
        crate::block_on(async {
            let a = UdpSocket::bind(loopback()).unwrap();
            assert!(a.peer_addr().is_err());
            assert!(a.send(b"x").await.is_err());
            let mut buf = [0u8; 8];
            assert!(a.recv(&mut buf).await.is_err());
        })
        .unwrap();
    }
}
