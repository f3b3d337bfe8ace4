//! One chat connection: a line handler that hands everything to its room.

use std::rc::Rc;

use bytes::Bytes;
use torsion::DisconnectReason;

use super::room::Room;
use crate::codec::FrameError;
use crate::line_receiver::{LineConnection, LineHandler};

/// A chat client's connection (wrap it in a `LineReceiver`).
pub struct ChatClient {
    room: Rc<Room>,
    id: Option<u64>,
}

impl ChatClient {
    /// A client of `room`.
    pub fn new(room: Rc<Room>) -> ChatClient {
        ChatClient { room, id: None }
    }
}

impl LineHandler for ChatClient {
    fn connection_made(&mut self, conn: &LineConnection) {
        self.id = Some(self.room.join(conn.clone()));
    }

    fn line_received(&mut self, _conn: &LineConnection, line: Bytes) {
        if let Some(id) = self.id {
            self.room.on_line(id, line);
        }
    }

    fn line_length_exceeded(&mut self, conn: &LineConnection, _error: &FrameError) {
        let _ = conn.send_line(b"Line too long.");
        conn.transport().close();
    }

    fn pause_writing(&mut self, _conn: &LineConnection) {
        if let Some(id) = self.id {
            self.room.recipient_congested(id);
        }
    }

    fn resume_writing(&mut self, _conn: &LineConnection) {
        if let Some(id) = self.id {
            self.room.recipient_drained(id);
        }
    }

    fn shutdown_requested(&mut self, conn: &LineConnection) {
        let _ = conn.send_line(b"Server shutting down.");
        conn.transport().close();
    }

    fn connection_lost(&mut self, _reason: &DisconnectReason) {
        if let Some(id) = self.id.take() {
            self.room.leave(id);
        }
    }
}
