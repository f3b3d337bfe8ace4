//! Small async helpers over a client stream shared (by `RefCell`) between a
//! connection's writer and reader tasks. The borrow lasts one poll, never
//! across an await, so both tasks can wait on the same socket at once.
//! [`ClientStream`] is plain TCP or TLS (rustls through `futures-rustls`)
//! over a glommio socket.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

/// Writes all of `buf`, then flushes (for TLS: the ciphertext leaves now).
pub async fn write_all<S: AsyncWrite + Unpin>(
    stream: &RefCell<S>,
    mut buf: &[u8],
) -> io::Result<()> {
    while !buf.is_empty() {
        let n = futures_lite::future::poll_fn(|cx| {
            Pin::new(&mut *stream.borrow_mut()).poll_write(cx, buf)
        })
        .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
    }
    futures_lite::future::poll_fn(|cx| Pin::new(&mut *stream.borrow_mut()).poll_flush(cx)).await
}

/// Reads what is there (at least one byte, or 0 at end of stream).
pub async fn read_some<S: AsyncRead + Unpin>(
    stream: &RefCell<S>,
    buf: &mut [u8],
) -> io::Result<usize> {
    futures_lite::future::poll_fn(|cx| Pin::new(&mut *stream.borrow_mut()).poll_read(cx, buf)).await
}

/// Sleeps until `when` (returns at once if it has passed).
pub async fn sleep_until(when: std::time::Instant) {
    let now = std::time::Instant::now();
    if when > now {
        glommio::timer::sleep(when - now).await;
    }
}

/// TLS settings for client connections.
#[derive(Debug, Clone)]
pub struct TlsClient {
    /// rustls client configuration (trust roots, or `--insecure`).
    pub config: Arc<rustls::ClientConfig>,
    /// The name the server's certificate must match.
    pub server_name: rustls::pki_types::ServerName<'static>,
}

/// A load connection: plain TCP, or TLS over it.
pub enum ClientStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS.
    Tls(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

impl ClientStream {
    /// Connects (and, with `tls`, completes the handshake) within `timeout`.
    pub async fn connect(
        target: SocketAddr,
        timeout: Duration,
        tls: Option<&TlsClient>,
    ) -> io::Result<ClientStream> {
        let stream = TcpStream::connect_timeout(target, timeout)
            .await
            .map_err(io::Error::from)?;
        let _ = stream.set_nodelay(true);
        let Some(t) = tls else {
            return Ok(ClientStream::Plain(stream));
        };
        let connector = futures_rustls::TlsConnector::from(t.config.clone());
        let handshake = futures_lite::future::or(
            async { Some(connector.connect(t.server_name.clone(), stream).await) },
            async {
                glommio::timer::sleep(timeout).await;
                None
            },
        )
        .await;
        match handshake {
            Some(Ok(s)) => Ok(ClientStream::Tls(Box::new(s))),
            Some(Err(e)) => Err(io::Error::other(format!(
                "TLS handshake failed: {}",
                torsion::tls::explain_handshake_error(&e)
            ))),
            None => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            )),
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_close(cx),
            ClientStream::Tls(s) => Pin::new(&mut **s).poll_close(cx),
        }
    }
}
