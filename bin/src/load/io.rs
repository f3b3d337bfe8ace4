//! Small async helpers over a glommio stream shared (by `RefCell`) between
//! a connection's writer and reader tasks. The borrow lasts one poll, never
//! across an await, so both tasks can wait on the same socket at once.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;

use futures_lite::io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

/// Writes all of `buf`.
pub async fn write_all(stream: &RefCell<TcpStream>, mut buf: &[u8]) -> io::Result<()> {
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
    Ok(())
}

/// Reads what is there (at least one byte, or 0 at end of stream).
pub async fn read_some(stream: &RefCell<TcpStream>, buf: &mut [u8]) -> io::Result<usize> {
    futures_lite::future::poll_fn(|cx| Pin::new(&mut *stream.borrow_mut()).poll_read(cx, buf)).await
}

/// Sleeps until `when` (returns at once if it has passed).
pub async fn sleep_until(when: std::time::Instant) {
    let now = std::time::Instant::now();
    if when > now {
        glommio::timer::sleep(when - now).await;
    }
}
