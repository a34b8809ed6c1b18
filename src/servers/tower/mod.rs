//! Bring your own server: any tower `Service` over HTTP, in the simulated
//! world.
//!
//! A [`TowerStack`] is a name and a factory. On every start of the server
//! process (the first, and each restart) mcpsim calls the factory with a
//! [`TowerEnv`] — seeded randomness for ids, a shutdown token that SIGTERM
//! cancels, the scenario's `[server]` settings, a slot for an optional probe
//! — and serves the service it returns on the simulated listener, over real
//! hyper HTTP/1.1, exactly as `hyper::server::conn::http1` would serve it on
//! a real port. The service knows nothing of the simulator.
//!
//! Between hyper and the service sits the HTTP tracking layer
//! ([`tracking`]): the oracles judge a tower stack from outside, by what it
//! put on the wire and how each response body ended. What they cannot see
//! without the stack's help is listed as *not judged*: `protocol-violation`
//! always (it reads ASGI messages), and `leak` unless the factory registers a
//! [`StackProbe`](super::StackProbe).
//!
//! Shutdown, as a real server does it: SIGTERM cancels [`TowerEnv::shutdown`]
//! (hand it to a framework that takes a token, or await it), stops
//! accepting, asks every open connection to close after its current
//! response (hyper's `graceful_shutdown`), and ends the process when they
//! have, or when `[server] graceful_timeout` (default 10 s) has passed —
//! dropping whatever is still open, which the oracles then see.
//!
//! ```
//! use std::convert::Infallible;
//! use mcpsim::servers::tower::{Body, TowerStack};
//!
//! // A server that answers every request "ok" — the factory runs on each
//! // process start, so state made here starts afresh on a restart.
//! let stack = TowerStack::new("hello", |_env| {
//!     tower::service_fn(|_req: http::Request<Body>| async {
//!         Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from("ok"))))
//!     })
//! });
//! assert_eq!(mcpsim::servers::ServerStack::name(&stack), "hello");
//! ```

pub mod tracking;

use std::borrow::Cow;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

use super::{Conn, Ids, Layers, Listener, ProbeSlot, ServerConfig, ServerEnv, ServerStack, Signal};
use crate::asgi::LocalBoxFuture;
pub use tracking::{Body, EndHow, EndRecord, ExchangeRecord, HttpClock, HttpLog};
use tracking::{BytesBody, TrackedIo, Tracker};

/// A boxed error, as tower and hyper pass them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a terminated process waits for its connections by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// What a server process is started with.
pub struct TowerEnv {
    /// Random bytes for ids (session ids, event ids): from the seed in
    /// simulation, from the OS under `mcpsim serve`. A server that makes its
    /// ids any other way cannot replay.
    pub ids: Ids,
    /// Cancelled when the process receives SIGTERM.
    pub shutdown: CancellationToken,
    /// The scenario's `[server]` settings.
    pub config: ServerConfig,
    /// Which start of the process this is (0 = first).
    pub incarnation: u32,
    /// Register a [`StackProbe`](super::StackProbe) here to let `leak` judge
    /// the sessions (and streams) the server still holds at the end.
    pub probe: ProbeSlot,
    /// Virtual time (real time under `mcpsim serve`), for the probe's
    /// session expiry.
    pub clock: crate::asgi::tracking::Clock,
}

/// A service with its types erased, as the harness serves it.
type LocalService = Rc<
    dyn Fn(
        http::Request<Body>,
    ) -> LocalBoxFuture<'static, Result<http::Response<LocalBody>, BoxError>>,
>;

/// A response body with its type erased.
type LocalBody = std::pin::Pin<Box<dyn http_body::Body<Data = Bytes, Error = BoxError>>>;

type Factory = dyn Fn(TowerEnv) -> LocalService + Send + Sync;

/// A user's tower service, put under test (see the module docs).
#[derive(Clone)]
pub struct TowerStack {
    name: &'static str,
    about: &'static str,
    layers: Layers,
    make: Arc<Factory>,
}

impl TowerStack {
    /// A stack called `name` whose process serves what `make` returns.
    ///
    /// The service may be `!Send` (it runs on the server host's one thread);
    /// it is cloned per request, as hyper-util's `TowerToHyperService` does.
    pub fn new<F, S, B>(name: &'static str, make: F) -> Self
    where
        F: Fn(TowerEnv) -> S + Send + Sync + 'static,
        S: tower::Service<http::Request<Body>, Response = http::Response<B>> + Clone + 'static,
        S::Error: Into<BoxError>,
        S::Future: 'static,
        B: http_body::Body + 'static,
        B::Error: Into<BoxError>,
    {
        let make = move |env: TowerEnv| -> LocalService {
            let service = make(env);
            Rc::new(move |req| {
                let mut s = service.clone();
                Box::pin(async move {
                    std::future::poll_fn(|cx| s.poll_ready(cx))
                        .await
                        .map_err(Into::into)?;
                    let resp = s.call(req).await.map_err(Into::into)?;
                    Ok(resp.map(|b| Box::pin(BytesBody(Box::pin(b))) as LocalBody))
                })
            })
        };
        Self {
            name,
            about: "a tower service under test",
            layers: Layers {
                http_host: Cow::Borrowed("hyper"),
                sse: Cow::Borrowed(name),
                transport: Cow::Borrowed(name),
            },
            make: Arc::new(make),
        }
    }

    /// The line `mcpsim list` and reports show.
    pub fn about(mut self, about: &'static str) -> Self {
        self.about = about;
        self
    }

    /// Name the layers failures are located in (default: `hyper` for HTTP,
    /// the stack's name for the SSE producer and the MCP transport).
    pub fn layers(mut self, sse: &'static str, transport: &'static str) -> Self {
        self.layers.sse = Cow::Borrowed(sse);
        self.layers.transport = Cow::Borrowed(transport);
        self
    }
}

impl ServerStack for TowerStack {
    fn name(&self) -> &'static str {
        self.name
    }

    fn about(&self) -> &'static str {
        self.about
    }

    fn layers(&self) -> Layers {
        self.layers.clone()
    }

    fn not_judged(&self) -> Vec<(&'static str, &'static str)> {
        vec![(
            "protocol-violation",
            "it reads ASGI messages, and a tower service has none",
        )]
    }

    fn run(&self, env: ServerEnv) -> LocalBoxFuture<'static, ()> {
        let make = self.make.clone();
        let name = self.name;
        Box::pin(async move {
            // The process's tasks live in its own LocalSet, so that when it
            // exits, whatever it left open is dropped with it — as a real
            // process's sockets are closed by the kernel.
            let process = tokio::task::LocalSet::new();
            process.run_until(serve(env, name, &*make)).await;
        })
    }
}

/// Serve one process of a tower stack until it exits.
async fn serve(env: ServerEnv, name: &'static str, make: &Factory) {
    let shutdown = CancellationToken::new();
    let service = make(TowerEnv {
        ids: env.ids,
        shutdown: shutdown.clone(),
        config: env.config.clone(),
        incarnation: env.incarnation,
        probe: env.probe.clone(),
        clock: env.clock.clone(),
    });
    let tracker = Rc::new(Tracker {
        log: env.http_log.clone(),
        incarnation: env.incarnation,
    });
    let open = Rc::new(Cell::new(0usize));
    let accept = crate::task::spawn(
        "tower.accept",
        accept(
            env.listener,
            service,
            tracker,
            open.clone(),
            shutdown.clone(),
        ),
    );
    env.listening.set(true);
    tracing::info!(target: "mcpsim::tower", "{name}: listening (process {})", env.incarnation);

    let Signal::Terminate = env.signals.recv().await;
    tracing::info!(target: "mcpsim::tower", "{name}: SIGTERM: shutting down");
    shutdown.cancel();
    accept.abort();
    env.listening.set(false);
    let grace = env.config.graceful_timeout.unwrap_or(DEFAULT_GRACE);
    let deadline = tokio::time::Instant::now() + grace;
    while open.get() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::info!(
        target: "mcpsim::tower",
        "{name}: process exits ({} connection(s) open)",
        open.get()
    );
}

async fn accept(
    listener: Box<dyn Listener>,
    service: LocalService,
    tracker: Rc<Tracker>,
    open: Rc<Cell<usize>>,
    shutdown: CancellationToken,
) {
    loop {
        match listener.accept().await {
            Ok((io, peer)) => {
                crate::task::spawn(
                    "tower.connection",
                    connection(
                        io,
                        peer,
                        service.clone(),
                        tracker.clone(),
                        open.clone(),
                        shutdown.clone(),
                    ),
                );
            }
            Err(e) => {
                tracing::warn!(target: "mcpsim::tower", "accept failed: {e}");
                return;
            }
        }
    }
}

/// Counts a connection as open for as long as it lives (even if its task
/// is dropped with the process).
struct OpenGuard(Rc<Cell<usize>>);

impl OpenGuard {
    fn new(open: Rc<Cell<usize>>) -> Self {
        open.set(open.get() + 1);
        Self(open)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

async fn connection(
    io: Box<dyn Conn>,
    peer: String,
    service: LocalService,
    tracker: Rc<Tracker>,
    open: Rc<Cell<usize>>,
    shutdown: CancellationToken,
) {
    let _open = OpenGuard::new(open);
    let (io, peer_gone): (TrackedIo, Arc<AtomicBool>) = TrackedIo::new(io);
    let peer: Rc<str> = peer.into();
    let hyper_service = hyper::service::service_fn(move |req| {
        let (req, pending) = tracker.request(req, &peer, &peer_gone);
        let fut = service(req);
        async move {
            match fut.await {
                Ok(resp) => Ok(pending.respond(resp)),
                Err(e) => {
                    pending.fail(&e.to_string());
                    Err(e)
                }
            }
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .auto_date_header(false)
        .serve_connection(TokioIo::new(io), hyper_service);
    let mut conn = std::pin::pin!(conn);
    let ended = tokio::select! {
        biased;
        r = conn.as_mut() => Some(r),
        _ = shutdown.cancelled() => None,
    };
    let result = match ended {
        Some(r) => r,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(target: "mcpsim::tower", "connection ended: {e}");
    }
}
