//! One shard's thread: a glommio executor pinned to its core, the service
//! it runs (stream or datagram), and the control loop that takes the
//! handle's commands (woken by the shard's doorbell).

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use glommio::{LocalExecutorBuilder, Placement};

use crate::bus::doorbell::DoorbellReceiver;
use crate::bus::invoke::InvokeBus;
use crate::connection::policy::Policies;
use crate::connection::protocol::Factory;
use crate::connection::reason::DisconnectReason;
use crate::connection::transport::FlowLimits;
use crate::net::datagram::{self, DatagramProtocol};
use crate::net::listener;
use crate::net::ShardTls;
use crate::server::stats::ShardStats;
use crate::shard::runtime::ShardRuntime;
use crate::shard::{self, ShardInfo};

use super::drain_barrier::Arrival;
use super::error::{BoxError, ServerError};
use super::handle::ShardCommand;

/// glommio reserves this much registered memory per shard for storage I/O;
/// torsion does none, so it asks for glommio's minimum (64 KiB) and stays far
/// below an 8 MiB `RLIMIT_MEMLOCK` however many shards run.
const IO_MEMORY: usize = 64 * 1024;

pub(super) struct ShardStart {
    pub(super) info: ShardInfo,
    pub(super) stats: Arc<ShardStats>,
    pub(super) limits: FlowLimits,
    pub(super) policies: Policies,
    pub(super) drain_timeout: Duration,
    pub(super) lag_probe: Option<Duration>,
    /// One bound socket per endpoint of the server, in its order.
    pub(super) sockets: Vec<OwnedFd>,
    pub(super) bell: DoorbellReceiver,
    pub(super) control: Receiver<ShardCommand>,
    pub(super) ready: Sender<Result<(), ServerError>>,
    /// The server's bus for `invoke_on` and `map_reduce`.
    pub(super) invoke: InvokeBus,
    /// Where the shard waits for the others after draining.
    pub(super) arrival: Arrival,
}

fn gettid() -> u64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}

/// Why a shard's service could not be set up.
pub(super) struct SetupFailure {
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
pub(super) trait ShardService: Send + Sync + 'static {
    type Local: 'static;

    fn setup(&self, info: &ShardInfo) -> Result<Self::Local, SetupFailure>;

    /// Serves until the shard is told to stop and has drained; gives back
    /// the service's state, which the shard keeps until every shard has
    /// drained (a factory's captured state, an `Rpc` say, may still serve
    /// the others).
    fn run(
        local: Self::Local,
        sockets: Vec<OwnedFd>,
        rt: Rc<ShardRuntime>,
        drain: Rc<std::cell::Cell<Duration>>,
    ) -> impl std::future::Future<Output = Self::Local>;
}

pub(super) struct StreamService<B> {
    pub(super) make_factory: Arc<B>,
    /// Each endpoint's TLS, in the endpoints' order.
    pub(super) tls: Vec<Option<ShardTls>>,
}

/// A stream shard's state while it serves: its factory, and each
/// listener's TLS.
pub(super) struct StreamLocal<F> {
    factory: Rc<RefCell<F>>,
    tls: Vec<Option<ShardTls>>,
}

impl<F, E, B> ShardService for StreamService<B>
where
    F: Factory,
    E: Into<BoxError>,
    B: Fn(&ShardInfo) -> Result<F, E> + Send + Sync + 'static,
{
    type Local = StreamLocal<F>;

    fn setup(&self, info: &ShardInfo) -> Result<Self::Local, SetupFailure> {
        let factory = shard::call_guarded("factory constructor", || (self.make_factory)(info))
            .ok_or_else(|| SetupFailure::panicked("the factory constructor"))?
            .map_err(|e| SetupFailure {
                what: "the factory constructor failed".into(),
                source: Some(e.into()),
            })?;
        let factory = Rc::new(RefCell::new(factory));
        shard::run_guarded("Factory::start", || factory.borrow_mut().start(info));
        Ok(StreamLocal {
            factory,
            tls: self.tls.clone(),
        })
    }

    async fn run(
        local: Self::Local,
        sockets: Vec<OwnedFd>,
        rt: Rc<ShardRuntime>,
        drain: Rc<std::cell::Cell<Duration>>,
    ) -> Self::Local {
        let info = rt.info();
        let factory = local.factory.clone();
        // Every listener accepts on this shard's task set; each stops when
        // the shard stops accepting.
        let loops: Vec<_> = sockets
            .into_iter()
            .zip(local.tls.iter().cloned())
            .enumerate()
            .map(|(index, (socket, tls))| {
                let which = listener::ListenerTls { index, tls };
                glommio::spawn_local(listener::accept_loop(
                    listener::adopt(socket),
                    which,
                    factory.clone(),
                    rt.clone(),
                ))
                .detach()
            })
            .collect();
        for accepting in loops {
            accepting.await;
        }
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
        local
    }
}

pub(super) struct DatagramService<B> {
    pub(super) make_protocol: Arc<B>,
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
        sockets: Vec<OwnedFd>,
        rt: Rc<ShardRuntime>,
        _drain: Rc<std::cell::Cell<Duration>>,
    ) -> P {
        // A datagram server has one endpoint (the builder refuses more).
        let Some(socket) = sockets.into_iter().next() else {
            return protocol;
        };
        datagram::serve(protocol, socket, rt).await
    }
}

pub(super) fn run_shard<S: ShardService>(start: ShardStart, service: Arc<S>) {
    let ShardStart {
        info,
        stats,
        limits,
        policies,
        drain_timeout,
        lag_probe,
        sockets,
        bell,
        control,
        ready,
        invoke,
        arrival,
    } = start;
    let executor = LocalExecutorBuilder::new(Placement::Fixed(info.core))
        .name(std::thread::current().name().unwrap_or("torsion-shard"))
        .io_memory(IO_MEMORY)
        .make();
    let executor = match executor {
        Ok(ex) => ex,
        Err(e) => {
            let what = format!("cannot start its executor on core {}", info.core);
            // Err: serve() stopped waiting (another shard failed first).
            let _ = ready.send(Err(ServerError::shard_start(
                info.id,
                what,
                std::io::Error::from(e),
            )));
            return;
        }
    };
    executor.run(async move {
        let counted = stats.clone();
        shard::enter(info, Box::new(move || counted.panic_caught()));
        stats.set_thread_id(gettid());
        if let Err(e) = crate::bus::invoke::attach(&invoke, info) {
            // Err: serve() stopped waiting (another shard failed first).
            let _ = ready.send(Err(ServerError::ShardStart {
                shard: info.id,
                what: "cannot attach to the invocation bus".into(),
                source: Some(e.into()),
            }));
            shard::leave();
            return;
        }
        let rt = Rc::new(ShardRuntime::new(info, stats, limits, policies));
        let local = match service.setup(&info) {
            Ok(local) => local,
            Err(failure) => {
                // Err: serve() stopped waiting (another shard failed first).
                let _ = ready.send(Err(ServerError::ShardStart {
                    shard: info.id,
                    what: failure.what,
                    source: failure.source,
                }));
                crate::bus::close_inboxes_here();
                crate::bus::invoke::detach();
                shard::leave();
                return;
            }
        };
        let drain = Rc::new(std::cell::Cell::new(drain_timeout));
        let control_task =
            glommio::spawn_local(control_loop(rt.clone(), bell, control, drain.clone())).detach();
        let probe_task = lag_probe.map(|interval| {
            let histogram = rt.stats().reactor_lag().clone();
            glommio::spawn_local(super::lag_probe::run_probe(interval, histogram)).detach()
        });
        // Err: serve() stopped waiting (another shard failed first).
        let _ = ready.send(Ok(()));
        drop(ready);
        let local = S::run(local, sockets, rt, drain).await;
        // Drained: serve the other shards (their connections may still call
        // this one) until every shard has drained too.
        arrival.arrive().all_arrived().await;
        drop(local);
        crate::bus::close_inboxes_here();
        crate::bus::invoke::detach();
        control_task.cancel();
        if let Some(task) = probe_task {
            task.cancel();
        }
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
