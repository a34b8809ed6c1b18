//! `native`: mcpsim's reference server — Streamable HTTP written for Rust and
//! for the spec (2025-06-18 and 2025-11-25), not ported from an SDK. Every
//! oracle must hold on it, under every fault; where a Python stack fails a
//! scenario, this is what passing looks like.
//!
//! ```text
//!  hyper HTTP/1.1 (auto_date_header off: no wall clock)
//!   └ http.rs       checks (403/421/405/406/415/413/400/404), POST / GET / DELETE
//!      ├ session.rs  sessions: in-flight requests, requests to the client, idle reaping
//!      │  └ stream.rs  streams and their event log: ids `<stream>-<seq>`, replay exactly once
//!      └ handler.rs  the request task: initialize, ping, tools (progress, elicitation)
//! ```
//!
//! What it promises, and where each promise lives:
//! * Disconnection is not cancellation: a request runs in its own task, apart
//!   from the exchange that brought it ([`handler`]); only
//!   `notifications/cancelled`, DELETE, reaping or the process's end stop it.
//! * No answer is lost to a client that comes back within [`stream::RETENTION`]:
//!   every event is logged before it is sent, every stream is primed with an
//!   id, and `GET` with `Last-Event-ID` replays exactly what followed
//!   ([`stream`]).
//! * A request's notifications and requests to the client travel on its own
//!   stream; a response never travels on the GET stream.
//! * Bounded memory: events per stream, streams per session, requests in
//!   flight per session, body size.
//! * Sessions no one uses are reaped after the idle timeout; a second GET
//!   stream replaces the first (the client lost it, even if the server cannot
//!   tell).
//! * SIGTERM: stop accepting, close GET streams, let requests in flight finish
//!   (within `graceful_timeout`, 30 s by default) and their answers drain,
//!   then exit.
//!
//! Like every stack it knows nothing of the simulator: a listener, a clock,
//! an id source and a signal queue are all it is given.

mod fixtures;
mod handler;
mod http;
mod session;
mod stream;

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

use hyper_util::rt::TokioIo;

use session::Session;

use crate::asgi::LocalBoxFuture;
use crate::asgi::tracking::Clock;
use crate::servers::{
    Conn, Ids, Layers, Listener, OpenStream, ServerConfig, ServerEnv, ServerStack, SessionInfo,
    Signal, StackProbe,
};

/// How long a session may go unheard before it is reaped, by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long shutdown waits for requests in flight, by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// How long shutdown waits for answered streams to drain.
const FLUSH: Duration = Duration::from_secs(1);

/// The native stack.
pub struct NativeStack;

impl ServerStack for NativeStack {
    fn name(&self) -> &'static str {
        "native"
    }

    fn about(&self) -> &'static str {
        "mcpsim's reference server (Rust, hyper): resumable streams, replay exactly once, idle sessions reaped, Origin checked"
    }

    fn layers(&self) -> Layers {
        Layers {
            http_host: Cow::Borrowed("hyper"),
            sse: Cow::Borrowed("native"),
            transport: Cow::Borrowed("native"),
        }
    }

    fn not_judged(&self) -> Vec<(&'static str, &'static str)> {
        let why = "they read ASGI records, and native is no ASGI application";
        vec![("missing-final-body", why), ("protocol-violation", why)]
    }

    fn run(&self, env: ServerEnv) -> LocalBoxFuture<'static, ()> {
        Box::pin(async move {
            // The process: its tasks die with it, closing its sockets.
            let process = tokio::task::LocalSet::new();
            process.run_until(serve(env)).await;
        })
    }
}

/// One server process.
pub(crate) struct Native {
    config: ServerConfig,
    clock: Clock,
    ids: RefCell<Ids>,
    sessions: RefCell<BTreeMap<String, Rc<Session>>>,
    work: handler::Work,
    draining: Cell<bool>,
    open_responses: Rc<Cell<usize>>,
    idle_timeout: Duration,
}

impl Native {
    /// End a session: forget it, stop its work, close its streams.
    fn end_session(&self, s: &Session, why: &str) {
        if let Some(id) = &s.id {
            self.sessions.borrow_mut().remove(id);
            tracing::info!(target: "native", "session {id} {why}");
        }
        s.close();
    }

    /// When `s` may be reaped: once unheard for the idle timeout, and not
    /// before an answer no connection took has had its retention.
    fn expires_at(&self, s: &Session) -> Duration {
        let idle = s.last_heard() + self.idle_timeout;
        idle.max(s.log.borrow().undelivered_until().unwrap_or_default())
    }

    /// Reap `s` once it has expired with nothing in flight.
    fn watch_idle(self: &Rc<Self>, s: &Rc<Session>) {
        let me = self.clone();
        let s = s.clone();
        crate::task::spawn("native.reaper", async move {
            loop {
                if s.is_closed() {
                    return;
                }
                let due = me.expires_at(&s);
                let now = (me.clock)();
                // A session that ends meanwhile (DELETE, shutdown) stops its
                // reaper at once: the reaper holds it, and would keep its
                // memory until the timeout otherwise.
                let wait = if now < due {
                    due - now
                } else if s.busy() > 0 {
                    // Its work counts as use; look again when it may be done.
                    me.idle_timeout
                } else {
                    me.end_session(&s, "reaped (idle)");
                    return;
                };
                tokio::select! {
                    biased;
                    _ = s.ended() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        });
    }
}

async fn serve(env: ServerEnv) {
    let work = handler::Work {
        running: Rc::new(Cell::new(0)),
        idle: Rc::new(tokio::sync::Notify::new()),
        clock: env.clock.clone(),
    };
    let native = Rc::new(Native {
        idle_timeout: env
            .config
            .session_idle_timeout
            .unwrap_or(DEFAULT_IDLE_TIMEOUT),
        config: env.config,
        clock: env.clock,
        ids: RefCell::new(env.ids),
        sessions: RefCell::new(BTreeMap::new()),
        work,
        draining: Cell::new(false),
        open_responses: Rc::new(Cell::new(0)),
    });
    env.probe.set(Rc::new(Probe(native.clone())));
    let accept = crate::task::spawn("native.accept", accept(env.listener, native.clone()));
    env.listening.set(true);
    tracing::info!(target: "native", "listening (process {})", env.incarnation);

    let Signal::Terminate = env.signals.recv().await;
    tracing::info!(target: "native", "SIGTERM: draining");
    native.draining.set(true);
    accept.abort();
    env.listening.set(false);
    for s in native.sessions.borrow().values() {
        s.log.borrow_mut().close_standalone();
    }
    let grace = native.config.graceful_timeout.unwrap_or(DEFAULT_GRACE);
    let work = native.work.clone();
    let drained = async {
        loop {
            let idle = work.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if work.running.get() == 0 {
                return;
            }
            idle.await;
        }
    };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!(
            target: "native",
            "{} request(s) still running after {grace:?}: exiting without them",
            work.running.get()
        );
    }
    // Let answered streams reach their connections.
    let flushed = async {
        while native.open_responses.get() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let _ = tokio::time::timeout(FLUSH, flushed).await;
    tracing::info!(target: "native", "stopped");
}

async fn accept(listener: Box<dyn Listener>, native: Rc<Native>) {
    loop {
        match listener.accept().await {
            Ok((io, _peer)) => {
                crate::task::spawn("native.connection", connection(io, native.clone()));
            }
            Err(e) => {
                tracing::warn!(target: "native", "accept failed: {e}");
                return;
            }
        }
    }
}

async fn connection(io: Box<dyn Conn>, native: Rc<Native>) {
    let svc = hyper::service::service_fn(move |req| {
        let n = native.clone();
        async move { Ok::<_, Infallible>(n.handle(req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .auto_date_header(false)
        .serve_connection(TokioIo::new(io), svc);
    if let Err(e) = conn.await {
        tracing::debug!(target: "native", "connection ended: {e}");
    }
}

struct Probe(Rc<Native>);

impl StackProbe for Probe {
    fn in_flight(&self) -> usize {
        self.0.work.running.get()
    }

    fn open_streams(&self) -> Option<Vec<OpenStream>> {
        let streams = self
            .0
            .sessions
            .borrow()
            .values()
            .flat_map(|s| {
                s.log.borrow().unfinished().into_iter().map(|n| OpenStream {
                    session: s.id.clone(),
                    stream: n.to_string(),
                })
            })
            .collect();
        Some(streams)
    }

    fn sessions(&self) -> Vec<SessionInfo> {
        self.0
            .sessions
            .borrow()
            .values()
            .map(|s| SessionInfo {
                id: s.id.clone().unwrap_or_default(),
                terminated: false,
                expires_at: Some(self.0.expires_at(s)),
            })
            .collect()
    }
}
