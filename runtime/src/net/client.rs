//! TCP clients (Twisted's `connectTCP`, `clientFromString`) and a
//! reconnecting client with Twisted's back-off (`ReconnectingClientFactory`).
//!
//! [`connect`] gives an async [`Connection`] (read and write with
//! `.await`); [`connect_tcp`] runs a callback [`Protocol`] instead.
//!
//! [`connect_tcp`] connects from the current shard and runs the same
//! [`Protocol`] trait over the connection, driven by the same connection
//! driver as server connections (batching, flow control, panics contained).
//! Client connections are hosted by the thread's `ClientHost` (a read
//! buffer; see `connection/host.rs`): no server counts them and a server's
//! shutdown does not close them.
//!
//! [`ReconnectingClient`] keeps a connection up: after a failed attempt or a
//! lost connection it waits, then tries again, with Twisted's policy —
//! the delay starts at `initial`, is multiplied by `factor` (e) before each
//! retry, is capped at `max`, and is spread by a normal jitter of `jitter`
//! (0.12) of itself; `max_retries` bounds the attempts; a successful
//! connection resets the delay. [`ReconnectingClient::stop_trying`] stops it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;

use crate::clock::Clock;
use crate::connection::async_conn::Connection;
use crate::connection::async_protocol::{AsyncProtocol, PassiveProtocol};
use crate::connection::protocol::Protocol;
use crate::connection::reason::DisconnectReason;
use crate::connection::transport::{FlowLimits, Transport};
use crate::connection::{
    self,
    host::{ClientHost, ConnectionHost},
};
use crate::shard::local_event::LocalEvent;

/// Connects to `addr` from the current shard and runs `protocol` on the
/// connection; returns its transport once connected. Fails with the OS
/// error (e.g. `ConnectionRefused`) or `TimedOut` after `timeout`.
///
/// # Panics
/// When called off a shard (no glommio executor on this thread).
pub async fn connect_tcp<P: Protocol>(
    addr: SocketAddr,
    timeout: Duration,
    protocol: P,
) -> io::Result<Transport> {
    let stream = open(addr, timeout).await?;
    let transport = new_transport(&stream, addr)?;
    spawn_driver(stream, protocol, transport.clone());
    Ok(transport)
}

/// A TCP connection to `addr` (Nagle off).
async fn open(addr: SocketAddr, timeout: Duration) -> io::Result<glommio::net::TcpStream> {
    let stream = glommio::net::TcpStream::connect_timeout(addr, timeout)
        .await
        .map_err(io::Error::from)?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The transport of a client connection on `stream`.
fn new_transport(stream: &glommio::net::TcpStream, peer: SocketAddr) -> io::Result<Transport> {
    let local = stream.local_addr()?;
    // glommio's connect makes its socket with SOCK_CLOEXEC: no child
    // process inherits it.
    let fd = std::os::fd::AsRawFd::as_raw_fd(stream);
    Ok(Transport::new(
        peer,
        local,
        ClientHost::current().shard_id(),
        Clock::real(),
        FlowLimits::default(),
        Some(fd),
    ))
}

/// Runs `protocol` on `stream` on a task of this shard.
fn spawn_driver<P: Protocol>(stream: glommio::net::TcpStream, protocol: P, transport: Transport) {
    spawn_wire(connection::Wire::Plain(stream), protocol, transport)
}

/// Runs `protocol` on `wire` on a task of this shard.
fn spawn_wire<P: Protocol>(wire: connection::Wire, protocol: P, transport: Transport) {
    glommio::spawn_local(connection::drive(
        0,
        wire,
        protocol,
        transport,
        ClientHost::current(),
    ))
    .detach();
}

/// Connects to `endpoint` from the current shard and returns the
/// connection to read and write with `.await` (the client side of
/// [`Connection`]: the same transport, driver and flow control as a
/// server's connections). A host name is resolved on the blocking pool
/// and every address tried Happy-Eyeballs style (IPv6 first, the next
/// address 250 ms later or at once after a failure, the first to connect
/// wins); `tls:` then completes the handshake, the certificate checked
/// against the endpoint's name. Fails with `NotFound` (the name does not
/// resolve), the OS error (e.g. `ConnectionRefused`), a TLS error in words
/// (wrong name, unknown issuer, expired), or `TimedOut` after the
/// endpoint's timeout.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use torsion::client::connect;
/// use torsion::ClientEndpoint;
///
/// let endpoint = ClientEndpoint::parse("tcp:127.0.0.1:7000:timeout=5").unwrap();
/// let mut conn = connect(&endpoint).await?;
/// conn.write(b"hello\r\n").await.ok();
/// let reply = conn.read().await; // None if the server closed first
/// # Ok(()) }
/// ```
///
/// # Panics
/// When called off a shard (no glommio executor on this thread): run a
/// client program with [`crate::block_on`] or [`crate::run_on_cores`].
pub async fn connect(endpoint: &crate::net::endpoint::ClientEndpoint) -> io::Result<Connection> {
    let (connector, stream) = open_endpoint(endpoint).await?;
    let (wire, transport) = connector.wrap(stream).await?;
    let (protocol, conn) = PassiveProtocol::passive(&transport);
    spawn_wire(wire, protocol, transport);
    Ok(conn)
}

/// Resolves `endpoint`'s host off the shard, connects Happy-Eyeballs style
/// (`resolve.rs`), and gives the connected socket with the [`Connector`]
/// that finishes it (TLS, with the endpoint's trust roots and name).
async fn open_endpoint(
    endpoint: &crate::net::endpoint::ClientEndpoint,
) -> io::Result<(Connector, glommio::net::TcpStream)> {
    let timeout = endpoint.timeout;
    let addrs = crate::net::resolve::resolve(&endpoint.host, endpoint.port, timeout).await?;
    let (stream, addr) =
        crate::net::resolve::connect_first(&addrs, timeout, &Clock::real(), move |addr| {
            open(addr, timeout)
        })
        .await?;
    #[allow(unused_mut)]
    let mut connector = Connector::new(addr).timeout(timeout);
    #[cfg(feature = "tls")]
    if let Some(tls) = &endpoint.tls {
        let ca = tls.ca_certs.clone();
        let config = crate::blocking::defer_to_thread(move || {
            crate::net::tls::client_config(ca.as_deref(), false)
        })
        .await
        .map_err(io::Error::other)?
        .map_err(io::Error::other)?;
        let name =
            rustls::pki_types::ServerName::try_from(tls.server_name.clone()).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("\"{}\" is not a TLS server name: {e}", tls.server_name),
                )
            })?;
        connector = connector.tls(config, name);
    }
    Ok((connector, stream))
}

/// [`connect`] to an address, with a connect timeout.
///
/// # Panics
/// When called off a shard.
pub async fn connect_addr(addr: SocketAddr, timeout: Duration) -> io::Result<Connection> {
    Connector::new(addr).timeout(timeout).connect().await
}

/// How a client connects: an address, a connect timeout (default 30 s, as
/// Twisted's `clientFromString`), and TLS or not. [`Connector::connect`]
/// gives a [`Connection`] for the calling task; [`Connector::run`] runs the
/// connection's logic as its own future, on the connection's task (no hand-off
/// between tasks per read: what a load generator with thousands of
/// connections wants); [`Connector::connect_protocol`] runs a callback
/// [`Protocol`].
#[derive(Clone)]
pub struct Connector {
    addr: SocketAddr,
    timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("Connector");
        f.field("addr", &self.addr).field("timeout", &self.timeout);
        #[cfg(feature = "tls")]
        f.field("tls", &self.tls.as_ref().map(|(_, name)| name));
        f.finish()
    }
}

impl Connector {
    /// Plain TCP to `addr`, within 30 s.
    pub fn new(addr: SocketAddr) -> Connector {
        Connector {
            addr,
            timeout: Duration::from_secs(30),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The connect timeout (the TLS handshake gets as long again).
    pub fn timeout(mut self, timeout: Duration) -> Connector {
        self.timeout = timeout;
        self
    }

    /// TLS over the connection: `config` says whom to trust
    /// ([`crate::tls::client_config`]), the server's certificate must be for
    /// `server_name` (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn tls(
        mut self,
        config: Arc<rustls::ClientConfig>,
        server_name: rustls::pki_types::ServerName<'static>,
    ) -> Connector {
        self.tls = Some((config, server_name));
        self
    }

    /// The address connected to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connects: the connection to read and write with `.await` from the
    /// calling task.
    ///
    /// # Panics
    /// Off a shard.
    pub async fn connect(&self) -> io::Result<Connection> {
        let (wire, transport) = self.open().await?;
        let (protocol, conn) = PassiveProtocol::passive(&transport);
        spawn_wire(wire, protocol, transport);
        Ok(conn)
    }

    /// Connects and runs `f(connection)` on the connection's own task, as a
    /// server connection's future runs; the returned [`ClientTask`] resolves
    /// with its output (or `None` if it panicked). The connection closes when
    /// the future returns.
    ///
    /// # Panics
    /// Off a shard.
    pub async fn run<F, Fut>(&self, f: F) -> io::Result<ClientTask<Fut::Output>>
    where
        F: FnOnce(Connection) -> Fut + 'static,
        Fut: Future + 'static,
        Fut::Output: 'static,
    {
        let (wire, transport) = self.open().await?;
        let (tx, rx) = crate::oneshot::channel();
        let protocol = AsyncProtocol::new(move |conn| async move {
            tx.send(f(conn).await);
        });
        spawn_wire(wire, protocol, transport.clone());
        Ok(ClientTask { rx, transport })
    }

    /// Connects and runs the callback `protocol` on the connection; returns
    /// its transport.
    ///
    /// # Panics
    /// Off a shard.
    pub async fn connect_protocol<P: Protocol>(&self, protocol: P) -> io::Result<Transport> {
        let (wire, transport) = self.open().await?;
        spawn_wire(wire, protocol, transport.clone());
        Ok(transport)
    }

    /// The socket (and TLS handshake) and its transport.
    async fn open(&self) -> io::Result<(connection::Wire, Transport)> {
        let stream = open(self.addr, self.timeout).await?;
        self.wrap(stream).await
    }

    /// A connected socket's transport, after the TLS handshake if any.
    async fn wrap(
        &self,
        stream: glommio::net::TcpStream,
    ) -> io::Result<(connection::Wire, Transport)> {
        let transport = new_transport(&stream, self.addr)?;
        #[cfg(feature = "tls")]
        if let Some((config, name)) = &self.tls {
            return Ok((self.handshake(stream, config, name).await?, transport));
        }
        Ok((connection::Wire::Plain(stream), transport))
    }

    /// The client side of a TLS handshake, within the connect timeout.
    #[cfg(feature = "tls")]
    async fn handshake(
        &self,
        stream: glommio::net::TcpStream,
        config: &Arc<rustls::ClientConfig>,
        name: &rustls::pki_types::ServerName<'static>,
    ) -> io::Result<connection::Wire> {
        let connector = futures_rustls::TlsConnector::from(config.clone());
        let handshake = futures_lite::future::or(
            async { Some(connector.connect(name.clone(), stream).await) },
            async {
                Clock::real().sleep(self.timeout).await;
                None
            },
        )
        .await;
        match handshake {
            Some(Ok(tls)) => Ok(connection::Wire::TlsClient(Box::new(tls))),
            Some(Err(e)) => Err(io::Error::other(format!(
                "TLS handshake failed: {}",
                crate::net::tls::explain_handshake_error(&e)
            ))),
            None => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            )),
        }
    }
}

/// The output of a client connection's future ([`Connector::run`]): `None`
/// if the future panicked (the panic is contained and counted).
#[must_use = "the connection runs on its own; await this for what its future returned"]
pub struct ClientTask<T> {
    rx: crate::oneshot::Receiver<T>,
    transport: Transport,
}

impl<T> ClientTask<T> {
    /// The connection's transport, to close or abort it from outside (at a
    /// deadline, say) or to look at it.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }
}

impl<T> std::fmt::Debug for ClientTask<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTask").finish_non_exhaustive()
    }
}

impl<T> Future for ClientTask<T> {
    type Output = Option<T>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        std::pin::Pin::new(&mut self.rx).poll(cx).map(Result::ok)
    }
}

/// Connects to a client endpoint string (Twisted's `clientFromString`,
/// e.g. `tcp:127.0.0.1:7000:timeout=5`).
pub async fn connect_endpoint<P: Protocol>(
    endpoint: &crate::net::endpoint::ClientEndpoint,
    protocol: P,
) -> io::Result<Transport> {
    let (connector, stream) = open_endpoint(endpoint).await?;
    let (wire, transport) = connector.wrap(stream).await?;
    spawn_wire(wire, protocol, transport.clone());
    Ok(transport)
}

/// Twisted's reconnection policy.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// First delay (before the factor is applied). Default 1 s.
    pub initial: Duration,
    /// Multiplier per retry. Default e (2.718…), as Twisted.
    pub factor: f64,
    /// Longest delay. Default 3600 s.
    pub max: Duration,
    /// Standard deviation of the delay, as a fraction of it. Default
    /// 0.11962656472, as Twisted.
    pub jitter: f64,
    /// Give up after this many retries (`None`: never).
    pub max_retries: Option<u32>,
    /// The last delay given (`None`: start again from `initial`), so every
    /// public field is honoured whenever it is changed.
    delay: Option<f64>,
    retries: u32,
    rng: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(3600))
    }
}

impl Backoff {
    /// Twisted's defaults with the given initial and maximum delays.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            factor: std::f64::consts::E,
            max,
            jitter: 0.119_626_564_72,
            max_retries: None,
            delay: None,
            retries: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Seeds the jitter (for reproducible tests).
    pub fn with_seed(mut self, seed: u64) -> Backoff {
        self.rng = seed | 1;
        self
    }

    /// Back to the initial delay (after a successful connection).
    pub fn reset(&mut self) {
        self.delay = None;
        self.retries = 0;
    }

    /// Retries so far since the last reset.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The delay before the next attempt, or `None` once `max_retries` is
    /// used up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        self.retries += 1;
        if self.max_retries.is_some_and(|m| self.retries > m) {
            return None;
        }
        let max = self.max.as_secs_f64();
        let last = self.delay.unwrap_or(self.initial.as_secs_f64());
        let mut delay = (last * self.factor).min(max);
        if self.jitter > 0.0 {
            let spread = delay * self.jitter * self.normal();
            delay = (delay + spread).clamp(0.0, max);
        }
        self.delay = Some(delay);
        Some(Duration::from_secs_f64(delay))
    }

    /// A standard normal sample (Box–Muller over xorshift64*).
    fn normal(&mut self) -> f64 {
        let mut uniform = || {
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
            ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let (u1, u2) = (uniform(), uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Wraps a client protocol to learn when its connection ends.
struct Watched<P> {
    inner: P,
    lost: Rc<LocalEvent>,
}

impl<P: Protocol> Protocol for Watched<P> {
    fn connection_made(&mut self, t: &Transport) {
        self.inner.connection_made(t)
    }
    fn data_received(&mut self, t: &Transport, data: &mut BytesMut) {
        self.inner.data_received(t, data)
    }
    fn eof_received(&mut self, t: &Transport, data: &mut BytesMut) {
        self.inner.eof_received(t, data)
    }
    fn pause_writing(&mut self, t: &Transport) {
        self.inner.pause_writing(t)
    }
    fn resume_writing(&mut self, t: &Transport) {
        self.inner.resume_writing(t)
    }
    fn shutdown_requested(&mut self, t: &Transport) {
        self.inner.shutdown_requested(t)
    }
    fn connection_lost(&mut self, reason: &DisconnectReason) {
        self.lost.set();
        self.inner.connection_lost(reason)
    }
}

#[derive(Default)]
struct ReconnectState {
    stopped: Cell<bool>,
    attempts: Cell<u64>,
    connections: Cell<u64>,
    gave_up: Cell<bool>,
    transport: RefCell<Option<Transport>>,
    wake_stop: LocalEvent,
}

/// A client that reconnects with [`Backoff`] (Twisted's
/// `ReconnectingClientFactory`). Cheap to clone; lives on its shard.
#[derive(Clone)]
pub struct ReconnectingClient {
    state: Rc<ReconnectState>,
}

impl std::fmt::Debug for ReconnectingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectingClient")
            .field("attempts", &self.attempts())
            .field("connections", &self.connections())
            .field("connected", &self.is_connected())
            .finish()
    }
}

/// What one connection attempt produced: a signal that fires when the
/// connection is lost.
type Connected = Rc<LocalEventHandle>;

/// Resolves when a connection made by a [`ReconnectingClient`] ends.
struct LocalEventHandle(Rc<LocalEvent>);

impl LocalEventHandle {
    async fn wait(&self) {
        self.0.wait().await
    }
}

impl ReconnectingClient {
    /// Keeps connecting to `addr` (each attempt bounded by `timeout`),
    /// running a fresh protocol from `make_protocol` on each connection.
    ///
    /// # Panics
    /// When called off a shard.
    pub fn start<P, F>(
        addr: SocketAddr,
        timeout: Duration,
        backoff: Backoff,
        mut make_protocol: F,
    ) -> Self
    where
        P: Protocol,
        F: FnMut() -> P + 'static,
    {
        let state = Rc::new(ReconnectState::default());
        let client = ReconnectingClient {
            state: state.clone(),
        };
        let st = state.clone();
        let connector = move || {
            let protocol = make_protocol();
            let st = st.clone();
            async move {
                let lost = Rc::new(LocalEvent::default());
                let watched = Watched {
                    inner: protocol,
                    lost: lost.clone(),
                };
                let t = connect_tcp(addr, timeout, watched).await?;
                *st.transport.borrow_mut() = Some(t);
                Ok(Rc::new(LocalEventHandle(lost)))
            }
        };
        glommio::spawn_local(reconnect_loop(Clock::real(), backoff, state, connector)).detach();
        client
    }

    /// Stops reconnecting; closes the current connection if any.
    pub fn stop_trying(&self) {
        self.state.stopped.set(true);
        self.state.wake_stop.set();
        if let Some(t) = self.state.transport.borrow().as_ref() {
            t.close();
        }
    }

    /// Connection attempts so far.
    pub fn attempts(&self) -> u64 {
        self.state.attempts.get()
    }

    /// Successful connections so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.get()
    }

    /// True while a connection is open.
    pub fn is_connected(&self) -> bool {
        self.state
            .transport
            .borrow()
            .as_ref()
            .is_some_and(|t| !t.is_closed())
    }

    /// True once `max_retries` ran out.
    pub fn gave_up(&self) -> bool {
        self.state.gave_up.get()
    }

    /// The current connection's transport, if connected.
    pub fn transport(&self) -> Option<Transport> {
        self.state
            .transport
            .borrow()
            .as_ref()
            .filter(|t| !t.is_closed())
            .cloned()
    }
}

/// The reconnection loop, over any connector (real or, in tests, fake) and
/// any clock (real or manual).
async fn reconnect_loop<C, Fut>(
    clock: Clock,
    mut backoff: Backoff,
    state: Rc<ReconnectState>,
    mut connect: C,
) where
    C: FnMut() -> Fut,
    Fut: Future<Output = io::Result<Connected>>,
{
    while !state.stopped.get() {
        state.attempts.set(state.attempts.get() + 1);
        match connect().await {
            Ok(lost) => {
                state.connections.set(state.connections.get() + 1);
                backoff.reset();
                futures_lite::future::or(lost.wait(), state.wake_stop.wait()).await;
            }
            Err(e) => tracing::debug!("reconnecting client: attempt failed: {e}"),
        }
        if state.stopped.get() {
            return;
        }
        let Some(delay) = backoff.next_delay() else {
            state.gave_up.set(true);
            tracing::info!(
                "reconnecting client: giving up after {} retries",
                backoff.retries() - 1
            );
            return;
        };
        futures_lite::future::or(clock.sleep(delay), state.wake_stop.wait()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::task::{Context, Poll};

    #[test]
    fn backoff_follows_twisted_without_jitter() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        b.jitter = 0.0;
        let delays: Vec<f64> = (0..5)
            .map(|_| b.next_delay().unwrap().as_secs_f64())
            .collect();
        let e = std::f64::consts::E;
        assert!((delays[0] - e).abs() < 1e-9);
        assert!((delays[1] - e * e).abs() < 1e-9);
        assert!((delays[2] - e * e * e).abs() < 1e-9);
        assert_eq!(delays[3], 30.0, "capped");
        b.reset();
        assert!((b.next_delay().unwrap().as_secs_f64() - e).abs() < 1e-9);
    }

    #[test]
    fn every_public_field_is_honoured_when_changed_after_new() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(100));
        b.initial = Duration::from_secs(2);
        b.factor = 3.0;
        b.jitter = 0.0;
        b.max_retries = Some(2);
        assert_eq!(b.next_delay(), Some(Duration::from_secs(6)));
        assert_eq!(b.next_delay(), Some(Duration::from_secs(18)));
        assert_eq!(b.next_delay(), None);
        b.reset();
        b.max = Duration::from_secs(5);
        assert_eq!(b.next_delay(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn jitter_spreads_delays_around_the_exponential() {
        let mut spread = Vec::new();
        for seed in 0..200 {
            let mut b = Backoff::default().with_seed(seed);
            spread.push(b.next_delay().unwrap().as_secs_f64() / std::f64::consts::E);
        }
        let mean: f64 = spread.iter().sum::<f64>() / spread.len() as f64;
        assert!((mean - 1.0).abs() < 0.05, "mean {mean}");
        assert!(spread.iter().any(|r| *r > 1.05) && spread.iter().any(|r| *r < 0.95));
        assert!(spread.iter().all(|r| *r > 0.4 && *r < 1.6));
    }

    #[test]
    fn max_retries_ends_the_attempts() {
        let mut b = Backoff {
            max_retries: Some(2),
            ..Backoff::default()
        };
        assert!(b.next_delay().is_some());
        assert!(b.next_delay().is_some());
        assert!(b.next_delay().is_none());
    }

    /// Drives the loop by hand: a connector that fails twice, then connects;
    /// the manual clock decides when retries happen.
    #[test]
    fn the_loop_retries_on_the_clock_and_resets_after_success() {
        let clock = ManualClock::new();
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        backoff.jitter = 0.0;
        let state = Rc::new(ReconnectState::default());
        let attempts_at: Rc<RefCell<Vec<Duration>>> = Rc::default();
        let lost = Rc::new(LocalEvent::default());
        let (c, at, l) = (clock.clone(), attempts_at.clone(), lost.clone());
        let connector = move || {
            at.borrow_mut().push(c.elapsed());
            let n = at.borrow().len();
            let l = l.clone();
            async move {
                if n <= 2 {
                    Err(io::Error::from(io::ErrorKind::ConnectionRefused))
                } else {
                    Ok(Rc::new(LocalEventHandle(l)))
                }
            }
        };
        let mut fut = Box::pin(reconnect_loop(
            clock.clock(),
            backoff,
            state.clone(),
            connector,
        ));
        let waker = futures_lite::future::block_on(futures_lite::future::poll_fn(|cx| {
            Poll::Ready(cx.waker().clone())
        }));
        let mut cx = Context::from_waker(&waker);
        let mut step = |by: Duration| {
            clock.advance(by);
            assert!(fut.as_mut().poll(&mut cx).is_pending());
        };
        step(Duration::ZERO);
        assert_eq!(attempts_at.borrow().len(), 1, "first attempt at once");
        step(Duration::from_millis(2700));
        assert_eq!(attempts_at.borrow().len(), 1, "not before e seconds");
        step(Duration::from_millis(20));
        assert_eq!(attempts_at.borrow().len(), 2, "second attempt after e s");
        step(Duration::from_secs_f64(std::f64::consts::E.powi(2)));
        assert_eq!(attempts_at.borrow().len(), 3, "third after e² s: connects");
        assert_eq!(state.connections.get(), 1);
        // Connected: no attempts however long we wait, until it is lost.
        step(Duration::from_secs(1000));
        assert_eq!(attempts_at.borrow().len(), 3);
        lost.set();
        step(Duration::ZERO);
        step(Duration::from_millis(2719));
        assert_eq!(
            attempts_at.borrow().len(),
            4,
            "delay reset to e s after the success"
        );
    }
}
