//! [`Frames`]: an async [`Connection`] cut into frames by a codec
//! (tokio-util's `Framed`, over torsion's transport).
//!
//! `next().await` decodes the next frame from what was received (waiting
//! for more as needed; at the peer's EOF the codec's `decode_eof` frames
//! the rest, so a frame cut short is reported, not dropped), and
//! `send(payload).await` frames a payload with the codec's encoder and
//! writes it, waiting while the peer is behind. Frames are decoded in place
//! in the connection's input buffer: the line codecs split them off it
//! without a copy.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;

use crate::codec::{send_frame, send_frame_bytes, Decoder, Encoder, SendError};
use crate::connection::async_conn::Connection;

/// A [`Connection`] read and written as frames of codec `D`.
pub struct Frames<D> {
    conn: Connection,
    codec: D,
}

impl<D> std::fmt::Debug for Frames<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frames").field("conn", &self.conn).finish()
    }
}

impl Connection {
    /// Cuts the input into frames with `codec` (any [`Decoder`]; with an
    /// encoder it frames what is sent too).
    pub fn framed<D: Decoder>(self, codec: D) -> Frames<D> {
        Frames::new(self, codec)
    }
}

impl<D> Frames<D> {
    pub(crate) fn new(conn: Connection, codec: D) -> Frames<D> {
        Frames { conn, codec }
    }

    /// The connection underneath (addresses, transport, close…).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The connection, mutably (to read raw bytes between frames).
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The codec.
    pub fn codec(&self) -> &D {
        &self.codec
    }

    /// The codec, mutably (to change a limit mid-stream).
    pub fn codec_mut(&mut self) -> &mut D {
        &mut self.codec
    }

    /// The connection and the codec, apart again.
    pub fn into_parts(self) -> (Connection, D) {
        (self.conn, self.codec)
    }
}

impl<D: Decoder> Frames<D> {
    /// The next frame, `Some(Err(..))` for input the codec cannot frame (an
    /// over-long line, a frame cut short by EOF…), or `None` once the input
    /// has ended (EOF, shutdown, the connection's end) with nothing left.
    pub async fn next(&mut self) -> Option<Result<D::Item, D::Error>> {
        std::future::poll_fn(|cx| self.poll_frame(cx)).await
    }

    /// The next frame if one was received whole already, without waiting:
    /// `None` when the buffered input holds no whole frame. For a pipelined
    /// protocol that takes every command a read brought before it answers.
    pub fn try_next(&mut self) -> Option<Result<D::Item, D::Error>> {
        let state = self.conn.state();
        let mut input = state.input.borrow_mut();
        if input.is_empty() {
            return None;
        }
        match self.codec.decode(&mut input) {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<D::Item, D::Error>>> {
        let codec = &mut self.codec;
        self.conn.state().poll_decode(cx, &mut |buf, at_end| {
            if at_end {
                codec.decode_eof(buf)
            } else {
                codec.decode(buf)
            }
        })
    }
}

impl<D: Encoder> Frames<D> {
    /// Frames `payload` and writes it, then waits while the outbound queue
    /// is above the high-water mark. A payload the codec cannot frame (a
    /// line holding the delimiter, too long for its prefix) is refused,
    /// never sent in part.
    pub async fn send(&self, payload: &[u8]) -> Result<(), SendError> {
        send_frame(self.conn.transport(), &self.codec, payload)?;
        Ok(self.conn.writable().await?)
    }

    /// Like [`Frames::send`], queueing a large payload by reference.
    pub async fn send_bytes(&self, payload: Bytes) -> Result<(), SendError> {
        send_frame_bytes(self.conn.transport(), &self.codec, payload)?;
        Ok(self.conn.writable().await?)
    }
}

/// `Frames` is a stream of frames (for stream combinators).
impl<D: Decoder + Unpin> futures_lite::Stream for Frames<D> {
    type Item = Result<D::Item, D::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_frame(cx)
    }
}
