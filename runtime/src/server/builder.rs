//! Configuring and starting a server: plan the shards, bind their sockets,
//! start their threads, wait until every one is accepting.

use std::sync::Arc;
use std::time::Duration;

use crate::bus::doorbell::doorbell;
use crate::bus::Bus;
use crate::connection::policy::Policies;
use crate::connection::transport::FlowLimits;
use crate::net::bind;
use crate::net::endpoint::{Endpoint, EndpointError};
use crate::net::ShardTls;
use crate::server::stats::ShardStats;
use crate::shard::cores;
use crate::shard::ShardInfo;

use super::drain_barrier::DrainBarrier;
use super::error::ServerError;
use super::handle::{ServerHandle, ShardControl, ShardEntry, ShutdownTrigger};
use super::into_factory::IntoFactory;
use super::shard_thread::{run_shard, DatagramService, ShardService, ShardStart, StreamService};
use crate::net::datagram::DatagramProtocol;

/// How long a shutdown waits for connections to finish by default.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Configures and starts a server. See the crate docs for an example.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    endpoint: Option<Endpoint>,
    /// Listeners beside the first (`also_listen`), in order.
    more_endpoints: Vec<Endpoint>,
    shards: Option<usize>,
    cores: Option<Vec<usize>>,
    drain_timeout: Duration,
    limits: FlowLimits,
    policies: Policies,
    #[cfg(feature = "tls")]
    tls_handshake_timeout: Duration,
    reactor_lag_probe: Option<Duration>,
    thread_name: String,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            endpoint: None,
            more_endpoints: Vec::new(),
            shards: None,
            cores: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            limits: FlowLimits::default(),
            policies: Policies::default(),
            #[cfg(feature = "tls")]
            tls_handshake_timeout: crate::net::tls::DEFAULT_HANDSHAKE_TIMEOUT,
            reactor_lag_probe: None,
            thread_name: "torsion-shard".into(),
        }
    }
}

/// Entry point: `Server::builder()`.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// A builder with the defaults (one shard per allowed core, 5 s drain).
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }
}

impl ServerBuilder {
    /// Where to listen.
    pub fn listen(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = Some(endpoint);
        self
    }

    /// Where to listen, as a Twisted endpoint string (`tcp:0:interface=127.0.0.1`).
    pub fn listen_on(self, endpoint: &str) -> Result<Self, EndpointError> {
        Ok(self.listen(endpoint.parse()?))
    }

    /// Listens on `endpoint` too (`tcp:` or `tls:`), on every shard with
    /// its own `SO_REUSEPORT` group, served by the same factory on each
    /// shard: the factory learns which listener a connection came in on
    /// ([`Factory::build_protocol_on`](crate::Factory::build_protocol_on):
    /// 1 for the first of these, 2 for the next…), so one shard's state
    /// serves every listener (a chat room for line and WebSocket clients).
    pub fn also_listen(mut self, endpoint: Endpoint) -> Self {
        self.more_endpoints.push(endpoint);
        self
    }

    /// [`ServerBuilder::also_listen`] with an endpoint string.
    pub fn also_listen_on(self, endpoint: &str) -> Result<Self, EndpointError> {
        Ok(self.also_listen(endpoint.parse()?))
    }

    /// How many shards (default: one per core in the affinity mask).
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// Exactly which cores to run shards on (one shard per core).
    pub fn cores(mut self, cores: Vec<usize>) -> Self {
        self.cores = Some(cores);
        self
    }

    /// How long shutdown waits for connections before aborting them.
    pub fn drain_timeout(mut self, d: Duration) -> Self {
        self.drain_timeout = d;
        self
    }

    /// Per-connection buffer limits.
    pub fn limits(mut self, limits: FlowLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The per-connection buffer limits this builder will use (to change
    /// one of them and keep the others).
    pub fn current_limits(&self) -> FlowLimits {
        self.limits
    }

    /// How long a TLS handshake may take before the connection is closed
    /// (default 10 s).
    #[cfg(feature = "tls")]
    pub fn tls_handshake_timeout(mut self, d: Duration) -> Self {
        self.tls_handshake_timeout = d;
        self
    }

    /// Runs a reactor-lag probe on every shard: a timer due every
    /// `interval` records how late it fired into the shard's
    /// [`reactor_lag`](crate::ShardStats::reactor_lag) histogram (the
    /// number that says a shard is overloaded) and publishes the shard's
    /// latency histograms (see [`metrics`](crate::metrics)). Off by default
    /// (`None`): it wakes an idle shard once per interval. `--metrics` turns
    /// it on at [`DEFAULT_LAG_PROBE`](crate::DEFAULT_LAG_PROBE).
    pub fn reactor_lag_probe(mut self, interval: Option<Duration>) -> Self {
        self.reactor_lag_probe = interval.filter(|d| !d.is_zero());
        self
    }

    /// Names the shard threads `<prefix>-<id>` (default `torsion-shard`), as
    /// `top -H` and `/proc/<pid>/task/*/comm` show them; Linux keeps the
    /// first 15 bytes (NUL bytes, which no thread name may hold, are
    /// dropped). The metrics endpoint's shard is `torsion-metrics-0`.
    pub fn thread_name(mut self, prefix: &str) -> Self {
        self.thread_name = prefix.replace('\0', "");
        self
    }

    /// Idle timeout, connection caps, read throttling (see [`Policies`]).
    pub fn policies(mut self, policies: Policies) -> Self {
        self.policies = policies;
        self
    }

    /// The cores the shards will run on, one per shard, as `serve` will plan
    /// them.
    pub fn planned_cores(&self) -> Result<Vec<usize>, ServerError> {
        let allowed = cores::allowed_cores()?;
        Ok(cores::plan_cores(
            &allowed,
            self.shards,
            self.cores.as_deref(),
        )?)
    }

    /// A cross-shard [`Bus`] of messages `M` with one inbox per shard this
    /// builder will start. Make it before [`ServerBuilder::serve`], move it
    /// into the factory constructor, and attach there on each shard
    /// (`bus.attach(shard, handler)`), keeping the handle; a server with
    /// several kinds of message makes several buses.
    ///
    /// ```no_run
    /// use torsion::{Bus, BusError, FnFactory, Server};
    /// # use torsion::Protocol;
    /// # struct Echo;
    /// # impl Protocol for Echo {}
    /// let builder = Server::builder().listen_on("tcp:0:interface=127.0.0.1")?;
    /// let bus: Bus<String> = builder.bus()?;
    /// let server = builder.serve(move |shard| {
    ///     let me = shard.id;
    ///     let handle = bus.attach(shard, move |msg| println!("shard {me} got {msg}"))?;
    ///     handle.broadcast(format!("hello from shard {me}"))?; // every other shard
    ///     // keep `handle` (e.g. in the factory) to send later
    ///     Ok::<_, BusError>(FnFactory(|_peer| Some(Echo)))
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bus<M: Send + 'static>(&self) -> Result<Bus<M>, ServerError> {
        Ok(Bus::new(self.planned_cores()?.len())?)
    }

    /// Starts the shards. `make_factory` runs once on each shard's thread to
    /// build that shard's factory, and returns it or a `Result` of it (see
    /// [`IntoFactory`]): an error (e.g. attaching to a bus failed) fails the
    /// start as [`ServerError::ShardStart`] naming the shard, and the shards
    /// that did start are stopped. Returns once every shard is accepting.
    pub fn serve<R, B>(self, make_factory: B) -> Result<ServerHandle, ServerError>
    where
        R: IntoFactory,
        B: Fn(&ShardInfo) -> R + Send + Sync + 'static,
    {
        let endpoints = self.endpoint.iter().chain(&self.more_endpoints);
        if let Some(e) = endpoints
            .clone()
            .find(|e| matches!(e, Endpoint::Udp { .. }))
        {
            return Err(ServerError::WrongEndpoint {
                endpoint: e.to_string(),
                problem: "a udp: endpoint needs a datagram protocol (serve_datagram)",
            });
        }
        let tls = endpoints
            .map(|e| self.shard_tls(e))
            .collect::<Result<Vec<_>, _>>()?;
        self.start(Arc::new(StreamService {
            make_factory: Arc::new(move |shard: &ShardInfo| make_factory(shard).into_factory()),
            tls,
        }))
    }

    /// Starts the shards with every connection running `handler(conn)`,
    /// an async function of its [`Connection`](crate::Connection): the
    /// connection's logic written top to bottom (see
    /// [`Connection`](crate::Connection)). The handler is shared by every
    /// shard; for per-shard state, give [`ServerBuilder::serve`] a
    /// [`ConnectionFn`](crate::ConnectionFn) built on each shard.
    pub fn serve_fn<H, Fut>(self, handler: H) -> Result<ServerHandle, ServerError>
    where
        H: Fn(crate::Connection) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future + 'static,
        Fut::Output: crate::ConnectionOutcome,
    {
        let handler = Arc::new(handler);
        self.serve(move |_shard| {
            let handler = handler.clone();
            crate::ConnectionFn::new(move |conn| handler(conn))
        })
    }

    /// Starts the shards of a datagram (UDP) server: each shard binds its own
    /// `SO_REUSEPORT` socket and runs the protocol `make_protocol` builds on
    /// its thread (Twisted's `listenUDP`).
    pub fn serve_datagram<P, B>(self, make_protocol: B) -> Result<ServerHandle, ServerError>
    where
        P: DatagramProtocol,
        B: Fn(&ShardInfo) -> P + Send + Sync + 'static,
    {
        if let Some(e @ (Endpoint::Tcp { .. } | Endpoint::Tls { .. })) = &self.endpoint {
            return Err(ServerError::WrongEndpoint {
                endpoint: e.to_string(),
                problem: "a datagram protocol needs a udp: endpoint",
            });
        }
        if let Some(e) = self.more_endpoints.first() {
            return Err(ServerError::WrongEndpoint {
                endpoint: e.to_string(),
                problem: "a datagram server listens on one endpoint",
            });
        }
        self.start(Arc::new(DatagramService {
            make_protocol: Arc::new(make_protocol),
        }))
    }

    /// What each shard needs to terminate TLS, for a `tls:` endpoint.
    #[cfg(feature = "tls")]
    fn shard_tls(&self, endpoint: &Endpoint) -> Result<Option<ShardTls>, ServerError> {
        Ok(match endpoint {
            Endpoint::Tls { cert, key, .. } => Some(ShardTls {
                acceptor: futures_rustls::TlsAcceptor::from(crate::net::tls::server_config(
                    cert, key,
                )?),
                handshake_timeout: self.tls_handshake_timeout,
            }),
            _ => None,
        })
    }

    /// Without the `tls` feature a `tls:` endpoint cannot be parsed, so
    /// none reaches here.
    #[cfg(not(feature = "tls"))]
    fn shard_tls(&self, _endpoint: &Endpoint) -> Result<Option<ShardTls>, ServerError> {
        Ok(None)
    }

    fn start<S: ShardService>(self, service: Arc<S>) -> Result<ServerHandle, ServerError> {
        let endpoint = self.endpoint.clone().ok_or(ServerError::NoEndpoint)?;
        let plan = self.planned_cores()?;
        // Each endpoint bound once per shard; shard i gets the i-th socket
        // of every endpoint.
        let mut per_endpoint = Vec::new();
        let mut local_addrs = Vec::new();
        for e in std::iter::once(&endpoint).chain(&self.more_endpoints) {
            let (sockets, addr) =
                bind::bind_all(e, plan.len()).map_err(|source| ServerError::Bind {
                    endpoint: e.to_string(),
                    source,
                })?;
            per_endpoint.push(sockets.into_iter());
            local_addrs.push(addr);
        }
        let sockets: Vec<Vec<_>> = (0..plan.len())
            .map(|_| per_endpoint.iter_mut().filter_map(Iterator::next).collect())
            .collect();

        let (ready_tx, ready_rx) = crossbeam_channel::bounded(plan.len());
        let invoke = crate::bus::invoke::InvokeBus::new(plan.len())?;
        let barrier = DrainBarrier::new(plan.len());
        let mut shards = Vec::with_capacity(plan.len());
        let mut controls = Vec::with_capacity(plan.len());
        for (id, (core, sockets)) in plan.iter().copied().zip(sockets).enumerate() {
            let info = ShardInfo {
                id,
                count: plan.len(),
                core,
            };
            let stats = Arc::new(ShardStats::default());
            let (bell, bell_rx) = doorbell()
                .map_err(|e| ServerError::shard_start(id, "cannot create its doorbell", e))?;
            let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
            let ctx = ShardStart {
                info,
                stats: stats.clone(),
                limits: self.limits,
                policies: self.policies.clone(),
                drain_timeout: self.drain_timeout,
                lag_probe: self.reactor_lag_probe,
                sockets,
                bell: bell_rx,
                control: ctl_rx,
                ready: ready_tx.clone(),
                invoke: invoke.clone(),
                arrival: barrier.arrival(),
            };
            let service = service.clone();
            let thread = std::thread::Builder::new()
                .name(format!("{}-{id}", self.thread_name))
                .spawn(move || run_shard(ctx, service))
                .map_err(|e| ServerError::shard_start(id, "cannot spawn its thread", e))?;
            controls.push(ShardControl {
                control: ctl_tx,
                bell,
            });
            shards.push(ShardEntry {
                info,
                stats,
                thread: Some(thread),
            });
        }
        drop(ready_tx);

        let mut handle = ServerHandle {
            local_addrs,
            shards,
            trigger: ShutdownTrigger {
                controls: Arc::new(controls),
                drain_timeout: self.drain_timeout,
            },
        };
        for _ in 0..handle.shards.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    handle.trigger.shutdown_with(Duration::ZERO);
                    let _ = handle.join_threads();
                    return Err(err);
                }
                Err(_) => {
                    handle.trigger.shutdown_with(Duration::ZERO);
                    let joined = handle.join_threads();
                    return Err(joined.err().unwrap_or(ServerError::ShardStart {
                        shard: 0,
                        what: "a shard exited during start-up".into(),
                        source: None,
                    }));
                }
            }
        }
        Ok(handle)
    }
}
