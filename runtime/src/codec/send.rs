//! Sending one frame through a transport, header and trailer around a
//! payload that is queued by reference when it is large.

use crate::connection::transport::{Transport, WriteError};
use bytes::Bytes;

use super::{Encoder, FrameError, MAX_HEADER};

/// Why a frame was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The payload cannot be framed (too long for the prefix, contains the
    /// delimiter); nothing was written.
    #[error("cannot frame the payload: {0}")]
    Frame(#[from] FrameError),
    /// The transport refused the write (closing, or over its hard cap).
    #[error("cannot write: {0}")]
    Write(#[from] WriteError),
}

/// Payloads at least this long are queued by reference, not copied.
const BY_REFERENCE: usize = 4096;

/// Frames `payload` with `encoder` and queues it on `transport`.
pub fn send_frame<E: Encoder + ?Sized>(
    transport: &Transport,
    encoder: &E,
    payload: &[u8],
) -> Result<(), SendError> {
    encoder.check_payload(payload)?;
    let mut header = [0u8; MAX_HEADER];
    let n = encoder.header(payload.len(), &mut header)?;
    transport.write_many(&[&header[..n], payload, encoder.trailer()])?;
    Ok(())
}

/// Like [`send_frame`], queueing a large payload without copying it.
pub fn send_frame_bytes<E: Encoder + ?Sized>(
    transport: &Transport,
    encoder: &E,
    payload: Bytes,
) -> Result<(), SendError> {
    if payload.len() < BY_REFERENCE {
        return send_frame(transport, encoder, &payload);
    }
    encoder.check_payload(&payload)?;
    let mut header = [0u8; MAX_HEADER];
    let n = encoder.header(payload.len(), &mut header)?;
    transport.write(&header[..n])?;
    transport.write_bytes(payload)?;
    let trailer = encoder.trailer();
    if !trailer.is_empty() {
        transport.write(trailer)?;
    }
    Ok(())
}
