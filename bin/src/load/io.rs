//! How load connections are made: torsion's own [`Connector`] (plain TCP,
//! or TLS over it through rustls), with the TLS settings of `--tls`.
//! Each connection's logic runs as a future on the connection's own task
//! ([`Connector::run`]), so reads need no hand-off between tasks and the
//! writes of one turn leave in one `sendmsg`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use torsion::client::Connector;

/// TLS settings for client connections.
#[derive(Debug, Clone)]
pub struct TlsClient {
    /// rustls client configuration (trust roots, or `--insecure`).
    pub config: Arc<rustls::ClientConfig>,
    /// The name the server's certificate must match.
    pub server_name: rustls::pki_types::ServerName<'static>,
}

/// The connector of a load connection to `target`: connect (and, with
/// `tls`, complete the handshake) within `timeout`.
pub fn connector(target: SocketAddr, timeout: Duration, tls: Option<&TlsClient>) -> Connector {
    let connector = Connector::new(target).timeout(timeout);
    match tls {
        Some(t) => connector.tls(t.config.clone(), t.server_name.clone()),
        None => connector,
    }
}
