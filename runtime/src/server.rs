//! Starting, observing and stopping a sharded server.
//!
//! [`ServerBuilder::serve`] plans one shard per core, binds one
//! `SO_REUSEPORT` socket per shard, then starts one OS thread per shard, each
//! running a glommio `LocalExecutor` pinned to its core
//! (`Placement::Fixed`). On its thread each shard builds its own factory from
//! the shared `Send + Sync` closure and runs its accept loop. `serve` returns
//! once every shard is accepting, with a [`ServerHandle`].
//!
//! # Shutdown
//!
//! The handle talks to each shard over a crossbeam channel and wakes it with
//! its doorbell (see `doorbell.rs`). On shutdown each shard at once stops
//! accepting and closes its listener, calls `shutdown_requested` on every
//! connection (default: flush and close), waits for them to end until the
//! drain deadline, aborts the rest with [`DisconnectReason::Shutdown`], runs
//! `Factory::stop` and exits its thread.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use glommio::{LocalExecutorBuilder, Placement};

use crate::cores::{self, CoreError};
use crate::datagram::{self, DatagramProtocol};
use crate::doorbell::{doorbell, Doorbell, DoorbellReceiver};
use crate::endpoint::{Endpoint, EndpointError};
use crate::listener;
use crate::policy::Policies;
use crate::protocol::Factory;
use crate::reason::DisconnectReason;
use crate::shard::{self, ShardInfo};
use crate::shard_runtime::ShardRuntime;
use crate::stats::{ShardStats, ShardStatsSnapshot};
use crate::tls::ShardTls;
use crate::transport::FlowLimits;

/// Any error, as a [`ServerError`]'s source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl ServerError {
    fn shard_start(shard: usize, what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        ServerError::ShardStart {
            shard,
            what: what.into(),
            source: Some(source.into()),
        }
    }
}

/// How long a shutdown waits for connections to finish by default.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// glommio reserves this much registered memory per shard for storage I/O;
/// torsion does none, so it asks for glommio's minimum (64 KiB) and stays far
/// below an 8 MiB `RLIMIT_MEMLOCK` however many shards run.
const IO_MEMORY: usize = 64 * 1024;

/// Why a server could not start or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// No endpoint was given to the builder.
    #[error("no endpoint to listen on")]
    NoEndpoint,
    /// The endpoint string is malformed.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The shard/core plan is impossible.
    #[error(transparent)]
    Cores(#[from] CoreError),
    /// A listening socket could not be made (the OS error is the
    /// [`source`](std::error::Error::source): print the chain, as
    /// `anyhow`'s `{:#}` does).
    #[error("cannot listen on {endpoint}")]
    Bind {
        /// The endpoint.
        endpoint: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A shard failed to start (its thread, executor, or factory); the
    /// underlying error, when there is one, is the
    /// [`source`](std::error::Error::source).
    #[error("shard {shard} failed to start: {what}")]
    ShardStart {
        /// The shard id.
        shard: usize,
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: Option<BoxError>,
    },
    /// The endpoint does not fit the service (a `udp:` endpoint for a
    /// stream protocol, or the other way round).
    #[error("{endpoint}: {problem}")]
    WrongEndpoint {
        /// The endpoint.
        endpoint: String,
        /// What does not fit.
        problem: &'static str,
    },
    /// The cross-shard bus could not be made.
    #[error(transparent)]
    Bus(#[from] crate::bus::BusError),
    /// The TLS certificate or key could not be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// A shard thread died (a panic outside any guarded callback).
    #[error("shard {shard} thread panicked: {message}")]
    ShardPanicked {
        /// The shard id.
        shard: usize,
        /// The panic message.
        message: String,
    },
}

/// Configures and starts a server. See the crate docs for an example.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    endpoint: Option<Endpoint>,
    shards: Option<usize>,
    cores: Option<Vec<usize>>,
    drain_timeout: Duration,
    limits: FlowLimits,
    policies: Policies,
    tls_handshake_timeout: Duration,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            endpoint: None,
            shards: None,
            cores: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            limits: FlowLimits::default(),
            policies: Policies::default(),
            tls_handshake_timeout: crate::tls::DEFAULT_HANDSHAKE_TIMEOUT,
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

enum ShardCommand {
    Shutdown { drain: Duration },
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
    pub fn tls_handshake_timeout(mut self, d: Duration) -> Self {
        self.tls_handshake_timeout = d;
        self
    }

    /// Idle timeout, connection caps, read throttling (see [`Policies`]).
    pub fn policies(mut self, policies: Policies) -> Self {
        self.policies = policies;
        self
    }

    /// The cores the shards will run on, one per shard, as `serve` will plan
    /// them (e.g. to size a [`Bus`](crate::Bus) before starting).
    pub fn planned_cores(&self) -> Result<Vec<usize>, ServerError> {
        let allowed = cores::allowed_cores()?;
        Ok(cores::plan_cores(
            &allowed,
            self.shards,
            self.cores.as_deref(),
        )?)
    }

    /// Starts the shards. `make_factory` runs once on each shard's thread to
    /// build that shard's factory. Returns once every shard is accepting.
    pub fn serve<F, B>(self, make_factory: B) -> Result<ServerHandle, ServerError>
    where
        F: Factory,
        B: Fn(&ShardInfo) -> F + Send + Sync + 'static,
    {
        self.try_serve(move |shard| Ok::<F, BoxError>(make_factory(shard)))
    }

    /// Like [`ServerBuilder::serve`], for a factory constructor that can
    /// fail on a shard (e.g. attaching to a bus): the error fails the start
    /// as [`ServerError::ShardStart`] naming the shard, and the shards that
    /// did start are stopped.
    pub fn try_serve<F, E, B>(self, make_factory: B) -> Result<ServerHandle, ServerError>
    where
        F: Factory,
        E: Into<BoxError>,
        B: Fn(&ShardInfo) -> Result<F, E> + Send + Sync + 'static,
    {
        if let Some(e @ Endpoint::Udp { .. }) = &self.endpoint {
            return Err(ServerError::WrongEndpoint {
                endpoint: e.to_string(),
                problem: "a udp: endpoint needs a datagram protocol (serve_datagram)",
            });
        }
        let tls = match &self.endpoint {
            Some(Endpoint::Tls { cert, key, .. }) => Some(ShardTls {
                acceptor: futures_rustls::TlsAcceptor::from(crate::tls::server_config(cert, key)?),
                handshake_timeout: self.tls_handshake_timeout,
            }),
            _ => None,
        };
        self.start(Arc::new(StreamService {
            make_factory: Arc::new(make_factory),
            tls,
        }))
    }

    /// Like [`ServerBuilder::try_serve`], with a cross-shard [`Bus`] of
    /// messages `M` that the builder makes and sizes to its shard plan:
    /// `make_factory(shard, bus)` runs on each shard, where it attaches
    /// (`bus.attach(shard, handler)`) and keeps the handle it gets back.
    ///
    /// ```no_run
    /// use torsion::{FnFactory, Server};
    /// # use torsion::Protocol;
    /// # struct Echo;
    /// # impl Protocol for Echo {}
    /// let server = Server::builder()
    ///     .listen_on("tcp:0:interface=127.0.0.1")?
    ///     .serve_with_bus(|shard, bus: &torsion::Bus<String>| {
    ///         let me = shard.id;
    ///         let handle = bus.attach(shard, move |msg| println!("shard {me} got {msg}"))?;
    ///         handle.broadcast(format!("hello from shard {me}"))?; // every other shard
    ///         // keep `handle` (e.g. in the factory) to send later
    ///         Ok::<_, torsion::BusError>(FnFactory(|_peer| Some(Echo)))
    ///     })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// [`Bus`]: crate::Bus
    pub fn serve_with_bus<M, F, E, B>(self, make_factory: B) -> Result<ServerHandle, ServerError>
    where
        M: Send + 'static,
        F: Factory,
        E: Into<BoxError>,
        B: Fn(&ShardInfo, &crate::bus::Bus<M>) -> Result<F, E> + Send + Sync + 'static,
    {
        let bus = crate::bus::Bus::<M>::new(self.planned_cores()?.len())?;
        self.try_serve(move |shard| make_factory(shard, &bus))
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
        self.start(Arc::new(DatagramService {
            make_protocol: Arc::new(make_protocol),
        }))
    }

    fn start<S: ShardService>(self, service: Arc<S>) -> Result<ServerHandle, ServerError> {
        let endpoint = self.endpoint.clone().ok_or(ServerError::NoEndpoint)?;
        let plan = self.planned_cores()?;
        let (sockets, local_addr) =
            listener::bind_all(&endpoint, plan.len()).map_err(|source| ServerError::Bind {
                endpoint: endpoint.to_string(),
                source,
            })?;

        let (ready_tx, ready_rx) = crossbeam_channel::bounded(plan.len());
        let mut shards = Vec::with_capacity(plan.len());
        let mut controls = Vec::with_capacity(plan.len());
        for (id, (core, socket)) in plan.iter().copied().zip(sockets).enumerate() {
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
                socket,
                bell: bell_rx,
                control: ctl_rx,
                ready: ready_tx.clone(),
            };
            let service = service.clone();
            let thread = std::thread::Builder::new()
                .name(format!("torsion-shard-{id}"))
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
            local_addr,
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

struct ShardStart {
    info: ShardInfo,
    stats: Arc<ShardStats>,
    limits: FlowLimits,
    policies: Policies,
    drain_timeout: Duration,
    socket: OwnedFd,
    bell: DoorbellReceiver,
    control: Receiver<ShardCommand>,
    ready: Sender<Result<(), ServerError>>,
}

struct ShardControl {
    control: Sender<ShardCommand>,
    bell: Doorbell,
}

struct ShardEntry {
    info: ShardInfo,
    stats: Arc<ShardStats>,
    thread: Option<JoinHandle<()>>,
}

/// Asks every shard of a server to shut down; `Send + Sync + Clone`, so a
/// signal-handling thread can hold one while another thread joins.
#[derive(Clone)]
pub struct ShutdownTrigger {
    controls: Arc<Vec<ShardControl>>,
    drain_timeout: Duration,
}

impl std::fmt::Debug for ShutdownTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownTrigger")
            .field("shards", &self.controls.len())
            .field("drain_timeout", &self.drain_timeout)
            .finish()
    }
}

impl ShutdownTrigger {
    /// Starts a graceful shutdown with the server's drain timeout.
    pub fn shutdown(&self) {
        self.shutdown_with(self.drain_timeout);
    }

    /// Starts a graceful shutdown that aborts what is left after `drain`.
    pub fn shutdown_with(&self, drain: Duration) {
        for c in self.controls.iter() {
            let _ = c.control.send(ShardCommand::Shutdown { drain });
            c.bell.ring();
        }
    }
}

/// Reads a server's per-shard counters from any thread.
#[derive(Debug, Clone)]
pub struct StatsReader {
    shards: Vec<(ShardInfo, Arc<ShardStats>)>,
}

impl StatsReader {
    /// A snapshot of every shard's counters, in shard order.
    pub fn snapshot(&self) -> Vec<ShardStatsSnapshot> {
        self.shards
            .iter()
            .map(|(info, stats)| stats.snapshot(info.id, info.core))
            .collect()
    }

    /// All shards' counters added up.
    pub fn total(&self) -> ShardStatsSnapshot {
        let mut total = ShardStatsSnapshot::default();
        for s in self.snapshot() {
            total.accumulate(&s);
        }
        total
    }
}

/// A running server: its address, its stats, and the way to stop it.
/// Dropping the handle shuts the server down and waits for it.
pub struct ServerHandle {
    local_addr: SocketAddr,
    shards: Vec<ShardEntry>,
    trigger: ShutdownTrigger,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("shards", &self.shards.len())
            .finish()
    }
}

impl ServerHandle {
    /// The address every shard listens on (with the real port if 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many shards run.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Each shard's id, count and core.
    pub fn shards(&self) -> Vec<ShardInfo> {
        self.shards.iter().map(|s| s.info).collect()
    }

    /// A snapshot of every shard's counters, in shard order.
    pub fn stats(&self) -> Vec<ShardStatsSnapshot> {
        self.stats_reader().snapshot()
    }

    /// All shards' counters added up.
    pub fn total_stats(&self) -> ShardStatsSnapshot {
        self.stats_reader().total()
    }

    /// A `Send + Clone` reader of the counters that outlives the handle.
    pub fn stats_reader(&self) -> StatsReader {
        StatsReader {
            shards: self
                .shards
                .iter()
                .map(|s| (s.info, s.stats.clone()))
                .collect(),
        }
    }

    /// A handle that can start the shutdown from another thread.
    pub fn trigger(&self) -> ShutdownTrigger {
        self.trigger.clone()
    }

    /// Starts a graceful shutdown (stop accepting, drain, abort at the deadline).
    pub fn shutdown(&self) {
        self.trigger.shutdown();
    }

    /// Waits for every shard to finish (after a shutdown was started).
    pub fn join(mut self) -> Result<(), ServerError> {
        self.join_threads()
    }

    /// Shuts down and waits.
    pub fn stop(self) -> Result<(), ServerError> {
        self.shutdown();
        self.join()
    }

    fn join_threads(&mut self) -> Result<(), ServerError> {
        let mut result = Ok(());
        for s in &mut self.shards {
            if let Some(thread) = s.thread.take() {
                if let Err(payload) = thread.join() {
                    let message = shard::panic_message(payload.as_ref());
                    if result.is_ok() {
                        result = Err(ServerError::ShardPanicked {
                            shard: s.info.id,
                            message,
                        });
                    }
                }
            }
        }
        result
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if self.shards.iter().any(|s| s.thread.is_some()) {
            self.trigger.shutdown();
            let _ = self.join_threads();
        }
    }
}

fn gettid() -> u64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}

/// Why a shard's service could not be set up.
struct SetupFailure {
    what: String,
    source: Option<BoxError>,
}

impl SetupFailure {
    fn panicked(what: &str) -> SetupFailure {
        SetupFailure {
            what: format!("{what} panicked"),
            source: None,
        }
    }
}

/// What a shard runs: the stream (TCP) service or the datagram (UDP) one.
/// `setup` runs on the shard before it reports ready (an error fails
/// `serve`); `run` serves until the shard is told to stop.
trait ShardService: Send + Sync + 'static {
    type Local: 'static;

    fn setup(&self, info: &ShardInfo) -> Result<Self::Local, SetupFailure>;

    /// TLS for this shard's connections, if any.
    fn tls(&self) -> Option<ShardTls> {
        None
    }

    fn run(
        local: Self::Local,
        socket: OwnedFd,
        rt: Rc<ShardRuntime>,
        drain: Rc<std::cell::Cell<Duration>>,
    ) -> impl std::future::Future<Output = ()>;
}

struct StreamService<B> {
    make_factory: Arc<B>,
    tls: Option<ShardTls>,
}

impl<F, E, B> ShardService for StreamService<B>
where
    F: Factory,
    E: Into<BoxError>,
    B: Fn(&ShardInfo) -> Result<F, E> + Send + Sync + 'static,
{
    type Local = Rc<RefCell<F>>;

    fn tls(&self) -> Option<ShardTls> {
        self.tls.clone()
    }

    fn setup(&self, info: &ShardInfo) -> Result<Self::Local, SetupFailure> {
        let factory = shard::call_guarded("factory constructor", || (self.make_factory)(info))
            .ok_or_else(|| SetupFailure::panicked("the factory constructor"))?
            .map_err(|e| SetupFailure {
                what: "the factory constructor failed".into(),
                source: Some(e.into()),
            })?;
        let factory = Rc::new(RefCell::new(factory));
        shard::run_guarded("Factory::start", || factory.borrow_mut().start(info));
        Ok(factory)
    }

    async fn run(
        factory: Self::Local,
        socket: OwnedFd,
        rt: Rc<ShardRuntime>,
        drain: Rc<std::cell::Cell<Duration>>,
    ) {
        let info = rt.info;
        listener::accept_loop(listener::adopt(socket), factory.clone(), rt.clone()).await;
        tracing::debug!(shard = info.id, "stopped accepting");
        rt.begin_shutdown();
        let drained = futures_lite::future::or(
            async {
                rt.all_closed().await;
                true
            },
            async {
                glommio::timer::Timer::new(drain.get()).await;
                false
            },
        )
        .await;
        if !drained {
            tracing::warn!(
                shard = info.id,
                remaining = rt.connection_count(),
                "drain deadline passed; aborting remaining connections"
            );
            rt.abort_all(DisconnectReason::Shutdown);
            rt.all_closed().await;
        }
        shard::run_guarded("Factory::stop", || factory.borrow_mut().stop());
    }
}

struct DatagramService<B> {
    make_protocol: Arc<B>,
}

impl<P, B> ShardService for DatagramService<B>
where
    P: DatagramProtocol,
    B: Fn(&ShardInfo) -> P + Send + Sync + 'static,
{
    type Local = P;

    fn setup(&self, info: &ShardInfo) -> Result<P, SetupFailure> {
        shard::call_guarded("datagram protocol constructor", || {
            (self.make_protocol)(info)
        })
        .ok_or_else(|| SetupFailure::panicked("the datagram protocol constructor"))
    }

    async fn run(
        protocol: P,
        socket: OwnedFd,
        rt: Rc<ShardRuntime>,
        _drain: Rc<std::cell::Cell<Duration>>,
    ) {
        datagram::serve(protocol, socket, rt).await
    }
}

fn run_shard<S: ShardService>(start: ShardStart, service: Arc<S>) {
    let ShardStart {
        info,
        stats,
        limits,
        policies,
        drain_timeout,
        socket,
        bell,
        control,
        ready,
    } = start;
    let executor = LocalExecutorBuilder::new(Placement::Fixed(info.core))
        .name(&format!("torsion-shard-{}", info.id))
        .io_memory(IO_MEMORY)
        .make();
    let executor = match executor {
        Ok(ex) => ex,
        Err(e) => {
            let what = format!("cannot start its executor on core {}", info.core);
            let _ = ready.send(Err(ServerError::shard_start(
                info.id,
                what,
                std::io::Error::from(e),
            )));
            return;
        }
    };
    executor.run(async move {
        shard::enter(info, stats.clone());
        stats.set_thread_id(gettid());
        let rt = Rc::new(ShardRuntime::new(
            info,
            stats,
            limits,
            policies,
            service.tls(),
        ));
        let local = match service.setup(&info) {
            Ok(local) => local,
            Err(failure) => {
                let _ = ready.send(Err(ServerError::ShardStart {
                    shard: info.id,
                    what: failure.what,
                    source: failure.source,
                }));
                shard::leave();
                return;
            }
        };
        let drain = Rc::new(std::cell::Cell::new(drain_timeout));
        let control_task =
            glommio::spawn_local(control_loop(rt.clone(), bell, control, drain.clone())).detach();
        let _ = ready.send(Ok(()));
        drop(ready);
        S::run(local, socket, rt, drain).await;
        control_task.cancel();
        tracing::debug!(shard = info.id, "shard stopped");
        shard::leave();
    });
}

async fn control_loop(
    rt: Rc<ShardRuntime>,
    bell: DoorbellReceiver,
    control: Receiver<ShardCommand>,
    drain: Rc<std::cell::Cell<Duration>>,
) {
    let mut bell = bell.listen();
    loop {
        let alive = bell.rung().await;
        while let Ok(cmd) = control.try_recv() {
            match cmd {
                ShardCommand::Shutdown { drain: d } => {
                    drain.set(d);
                    rt.begin_shutdown();
                }
            }
        }
        if !alive {
            // Every handle is gone: nobody can stop us later, so stop now.
            rt.begin_shutdown();
            return;
        }
    }
}
