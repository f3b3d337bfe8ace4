//! A server and a client protocol wired through memory (Twisted's `iosim`).

use std::time::Duration;

use crate::clock::ManualClock;
use crate::connection::protocol::Protocol;
use crate::connection::reason::DisconnectReason;

use super::harness::{HarnessOptions, ProtocolHarness};

/// Two protocols connected back to back on one manual clock. Nothing moves
/// until the test calls [`ConnectedPair::pump`] (or `advance`).
pub struct ConnectedPair<S: Protocol, C: Protocol> {
    /// The server side.
    pub server: ProtocolHarness<S>,
    /// The client side.
    pub client: ProtocolHarness<C>,
    clock: ManualClock,
    server_end_told: bool,
    client_end_told: bool,
}

impl<S: Protocol, C: Protocol> ConnectedPair<S, C> {
    /// Connects `server` and `client` (both get `connection_made`).
    pub fn new(server: S, client: C) -> Self {
        let clock = ManualClock::new();
        let server_opts = HarnessOptions {
            clock: clock.clone(),
            ..HarnessOptions::default()
        };
        let client_opts = HarnessOptions {
            clock: clock.clone(),
            peer: server_opts.local,
            local: server_opts.peer,
            ..HarnessOptions::default()
        };
        ConnectedPair {
            server: ProtocolHarness::with_options(server, server_opts),
            client: ProtocolHarness::with_options(client, client_opts),
            clock,
            server_end_told: false,
            client_end_told: false,
        }
    }

    /// The shared clock.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// Moves bytes both ways until neither side has anything more to say;
    /// an ended side's close reaches the other as end-of-file (clean) or a
    /// reset. Returns the bytes moved.
    pub fn pump(&mut self) -> usize {
        let mut moved = 0;
        loop {
            self.server.settle_now();
            self.client.settle_now();
            let to_client = self.server.take_delivered();
            let to_server = self.client.take_delivered();
            if to_client.is_empty() && to_server.is_empty() {
                let told = self.propagate_ends();
                if !told {
                    return moved;
                }
                continue;
            }
            moved += to_client.len() + to_server.len();
            if !to_client.is_empty() {
                self.client.receive(&to_client);
            }
            if !to_server.is_empty() {
                self.server.receive(&to_server);
            }
        }
    }

    fn propagate_ends(&mut self) -> bool {
        let mut told = false;
        if let (false, Some(reason)) = (self.server_end_told, self.server.lost_reason().cloned()) {
            self.server_end_told = true;
            tell_end(&mut self.client, &reason);
            told = true;
        }
        if let (false, Some(reason)) = (self.client_end_told, self.client.lost_reason().cloned()) {
            self.client_end_told = true;
            tell_end(&mut self.server, &reason);
            told = true;
        }
        told
    }

    /// Advances the shared clock, then pumps.
    pub fn advance(&mut self, by: Duration) -> usize {
        self.clock.advance(by);
        self.pump()
    }
}

fn tell_end<P: Protocol>(side: &mut ProtocolHarness<P>, their_reason: &DisconnectReason) {
    if their_reason.is_clean() || *their_reason == DisconnectReason::Shutdown {
        side.receive_eof();
    } else {
        side.disconnect(DisconnectReason::Reset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::transport::Transport;
    use bytes::BytesMut;

    struct Echo;
    impl Protocol for Echo {
        fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
            t.write_bytes(data.split().freeze()).unwrap();
        }
    }

    /// Sends a count, expects it back, counts down to zero, then closes.
    struct Counter {
        left: u32,
        got: Vec<u8>,
    }
    impl Protocol for Counter {
        fn connection_made(&mut self, t: &Transport) {
            t.write(&[self.left as u8]).unwrap();
        }
        fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
            self.got.extend_from_slice(&data.split());
            self.left -= 1;
            if self.left == 0 {
                t.close();
            } else {
                t.write(&[self.left as u8]).unwrap();
            }
        }
    }

    #[test]
    fn a_conversation_runs_to_its_end() {
        let mut pair = ConnectedPair::new(
            Echo,
            Counter {
                left: 3,
                got: Vec::new(),
            },
        );
        pair.pump();
        assert_eq!(pair.client.protocol().got, vec![3, 2, 1]);
        assert_eq!(pair.client.lost_reason(), Some(&DisconnectReason::Closed));
        // The client's FIN reached echo, whose default closes in turn.
        assert_eq!(pair.server.lost_reason(), Some(&DisconnectReason::Closed));
    }

    #[test]
    fn an_abort_reaches_the_peer_as_a_reset() {
        let mut pair = ConnectedPair::new(Echo, Echo);
        pair.server.transport().abort();
        pair.pump();
        assert_eq!(pair.server.lost_reason(), Some(&DisconnectReason::Aborted));
        assert_eq!(pair.client.lost_reason(), Some(&DisconnectReason::Reset));
    }
}
