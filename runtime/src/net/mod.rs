//! Endpoints and listeners: where connections come from and go to.
//!
//! | file | what |
//! |---|---|
//! | `endpoint.rs` | [`Endpoint`](endpoint::Endpoint), [`ClientEndpoint`](endpoint::ClientEndpoint): Twisted's endpoint strings, parsed with clear errors |
//! | `bind.rs` | the shards' `SO_REUSEPORT` sockets (TCP, TLS, UDP) and the port probe that refuses a port already in use |
//! | `listener.rs` | the accept loop: admission (caps, permits), TLS handshakes, building the protocol, spawning its driver; back-off when accept fails |
//! | `tls.rs` | (feature `tls`) rustls termination for `tls:`/`ssl:` endpoints, client configs, handshake errors in words |
//! | `client.rs` | [`connect_tcp`](client::connect_tcp), [`ReconnectingClient`](client::ReconnectingClient) with Twisted's back-off |
//! | `datagram.rs` | UDP: [`DatagramProtocol`](datagram::DatagramProtocol) per shard, ICMP errors |
//! | `udp_socket.rs` | [`UdpSocket`](udp_socket::UdpSocket): a client's UDP socket on the current shard (bind, connect, send, receive) |
//! | `resolve.rs` | host names resolved off the shard (the blocking pool, with a timeout); Happy Eyeballs (RFC 8305) over every address |
//! | `pacer.rs` | loops around an operation that keeps failing (accept, UDP receive): pause, never spin |

pub(crate) mod bind;
pub mod client;
pub mod datagram;
pub mod endpoint;
pub(crate) mod listener;
pub(crate) mod pacer;
pub(crate) mod resolve;
#[cfg(feature = "tls")]
pub mod tls;

#[cfg(feature = "tls")]
pub(crate) use tls::ShardTls;
/// Without the `tls` feature no listener terminates TLS: the shard's TLS
/// settings can only be absent.
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
pub(crate) enum ShardTls {}
pub mod udp_socket;
