//! One chat connection: a line handler (over `LineReceiver`) that hands
//! everything to its room.

use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use torsion::DisconnectReason;

use super::requests::{poll_request, PendingRequest};
use super::room::Room;
use crate::codec::FrameError;
use crate::framed::{FrameHandler, FramedConnection};

/// A chat client's connection (wrap it in a `LineReceiver`).
pub struct ChatClient {
    room: Rc<Room>,
    id: Option<u64>,
    /// Its name claim or `/who`, under way on the connection's task.
    request: Option<PendingRequest>,
}

impl ChatClient {
    /// A client of `room`.
    pub fn new(room: Rc<Room>) -> ChatClient {
        ChatClient {
            room,
            id: None,
            request: None,
        }
    }
}

impl FrameHandler for ChatClient {
    fn connection_made(&mut self, conn: &FramedConnection) {
        self.id = Some(
            self.room
                .join(conn.transport().clone(), crate::chat::wire::ChatWire::Lines),
        );
    }

    fn frame_received(&mut self, _conn: &FramedConnection, line: Bytes) {
        if let Some(id) = self.id {
            if let Some(request) = self.room.on_line(id, line) {
                // At most one: reading pauses while it runs.
                self.request = Some(request);
            }
        }
    }

    fn poll_future(&mut self, _conn: &FramedConnection, cx: &mut Context<'_>) -> Poll<()> {
        poll_request(&mut self.request, cx)
    }

    /// An over-long line is answered, then the connection closes; a last
    /// line cut short by the peer's EOF just closes.
    fn frame_error(&mut self, conn: &FramedConnection, error: &FrameError) {
        if error.is_length_exceeded() {
            // Err: the connection is closing, and its end reason says why.
            let _ = conn.send(b"Line too long.");
        }
        conn.transport().close();
    }

    fn pause_writing(&mut self, _conn: &FramedConnection) {
        if let Some(id) = self.id {
            self.room.recipient_congested(id);
        }
    }

    fn resume_writing(&mut self, _conn: &FramedConnection) {
        if let Some(id) = self.id {
            self.room.recipient_drained(id);
        }
    }

    fn shutdown_requested(&mut self, conn: &FramedConnection) {
        // Err: the connection is closing, and its end reason says why.
        let _ = conn.send(b"Server shutting down.");
        conn.transport().close();
    }

    fn connection_lost(&mut self, _reason: &DisconnectReason) {
        if let Some(id) = self.id.take() {
            self.room.leave(id);
        }
    }
}
