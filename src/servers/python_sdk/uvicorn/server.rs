//! uvicorn's `Server` (`uvicorn/server.py`) and its HTTP protocol
//! (`protocols/http/h11_impl.py`), with hyper doing the HTTP/1.1 framing.
//!
//! What is modelled: one task per connection; per request a cycle and a task
//! running the application (created when the head arrives, before the body);
//! `connection_lost` marking the current cycle disconnected unless its
//! response completed; the main loop's 0.1 s tick; graceful shutdown (stop
//! accepting, ask each connection to close after its response, wait for
//! connections and tasks, optionally cancel them after
//! `timeout_graceful_shutdown`, then the lifespan shutdown). `handle_exit` can
//! be patched, as sse-starlette does at import time.
//!
//! Not modelled: the 5 s keep-alive timeout (mcpsim's client opens one
//! connection per request), pipelining, `limit_concurrency`, 100-continue.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use super::body::AsgiBody;
use super::cycle::{Callables, Cycle};
use crate::asgi::{AsgiApp, AsgiCall, LocalBoxFuture, Scope};
use crate::servers::python_sdk::anyio::{Cx, Event, PyResult, TaskHandle};
use crate::servers::python_sdk::cost::Step;
use crate::servers::python_sdk::event_loop;
use crate::servers::{Conn, Listener, Signal, Signals};

/// The parts of uvicorn's `Config` the model honours.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `timeout_graceful_shutdown` (`None`, the default: wait forever).
    pub timeout_graceful_shutdown: Option<Duration>,
}

/// The application's lifespan (`startup` / `shutdown` events).
pub trait Lifespan {
    /// `lifespan.startup()`.
    fn startup<'a>(&'a self, cx: &'a Cx) -> LocalBoxFuture<'a, PyResult<()>>;
    /// `lifespan.shutdown()`.
    fn shutdown<'a>(&'a self, cx: &'a Cx) -> LocalBoxFuture<'a, PyResult<()>>;
}

/// `server_state`: live connections and running application tasks.
#[derive(Default)]
pub(crate) struct ServerState {
    connections: RefCell<BTreeMap<u64, Rc<ConnState>>>,
    tasks: RefCell<BTreeMap<u64, TaskHandle>>,
    next_id: Cell<u64>,
    total_requests: Cell<u64>,
}

impl ServerState {
    fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    pub(crate) fn request_done(&self) {
        self.total_requests.set(self.total_requests.get() + 1);
    }
}

/// One connection (`H11Protocol`).
pub(crate) struct ConnState {
    id: u64,
    cycle: RefCell<Option<Rc<Cycle>>>,
    pub(crate) closing: Cell<bool>,
    close_requested: Event,
}

impl ConnState {
    /// Close once the current response is done (or now, if idle).
    pub(crate) fn request_close(&self) {
        self.close_requested.set();
    }

    /// `H11Protocol.shutdown()`.
    fn shutdown(&self) {
        if let Some(c) = self.cycle.borrow().as_ref()
            && !c.response_complete.get()
        {
            c.keep_alive.set(false);
        }
        self.request_close();
    }
}

/// A uvicorn server process.
pub struct Server {
    config: Config,
    state: Rc<ServerState>,
    should_exit: Rc<Cell<bool>>,
    exit_hooks: Vec<Rc<dyn Fn()>>,
}

impl Server {
    /// A server with `config`.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            state: Rc::new(ServerState::default()),
            should_exit: Rc::new(Cell::new(false)),
            exit_hooks: Vec::new(),
        }
    }

    /// Run `hook` first whenever `handle_exit` is called (how sse-starlette
    /// monkeypatches `uvicorn.Server.handle_exit`).
    pub fn patch_handle_exit(&mut self, hook: Rc<dyn Fn()>) {
        self.exit_hooks.push(hook);
    }

    /// `Server.serve()`: start, serve until told to exit, shut down.
    pub async fn serve<A: AsgiApp>(
        self,
        app: A,
        lifespan: Rc<dyn Lifespan>,
        listener: Box<dyn Listener>,
        signals: Signals,
        listening: Rc<Cell<bool>>,
    ) {
        let cx = Cx::root();
        tracing::info!(target: "uvicorn.error", "Started server process");
        tracing::info!(target: "uvicorn.error", "Waiting for application startup.");
        if let Err(e) = lifespan.startup(&cx).await {
            tracing::error!(target: "uvicorn.error", "Application startup failed. Exiting. {e}");
            return;
        }
        tracing::info!(target: "uvicorn.error", "Application startup complete.");

        let accept = {
            let state = self.state.clone();
            event_loop::spawn("uvicorn.accept", async move {
                loop {
                    match listener.accept().await {
                        Ok((io, peer)) => {
                            // `connection_made` runs when the loop gets to it.
                            event_loop::settle().await;
                            event_loop::spawn(
                                "uvicorn.connection",
                                serve_connection(io, peer, state.clone(), app.clone()),
                            );
                        }
                        Err(e) => {
                            tracing::error!(target: "uvicorn.error", "accept failed: {e}");
                            return;
                        }
                    }
                }
            })
        };
        listening.set(true);
        tracing::info!(target: "uvicorn.error", "Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)");

        let signal_task = {
            let should_exit = self.should_exit.clone();
            let hooks = self.exit_hooks.clone();
            event_loop::spawn("uvicorn.signals", async move {
                loop {
                    let Signal::Terminate = signals.recv().await;
                    // Server.handle_exit, possibly patched.
                    for h in &hooks {
                        h();
                    }
                    should_exit.set(true);
                }
            })
        };

        // main_loop(): check `should_exit` every 0.1 s.
        while !self.should_exit.get() {
            event_loop::sleep(Duration::from_millis(100)).await;
        }

        // shutdown()
        tracing::info!(target: "uvicorn.error", "Shutting down");
        accept.abort();
        listening.set(false);
        let conns: Vec<Rc<ConnState>> = self.state.connections.borrow().values().cloned().collect();
        for c in conns {
            c.shutdown();
        }
        event_loop::sleep(Duration::from_millis(100)).await;
        let wait = wait_tasks_to_complete(&self.state);
        match self.config.timeout_graceful_shutdown {
            None => wait.await,
            Some(t) => {
                // asyncio.wait_for(self._wait_tasks_to_complete(), timeout=...)
                let timed_out = tokio::select! {
                    biased;
                    () = wait => false,
                    () = event_loop::sleep(t) => true,
                };
                if timed_out {
                    let tasks: Vec<TaskHandle> =
                        self.state.tasks.borrow().values().cloned().collect();
                    tracing::error!(
                        target: "uvicorn.error",
                        "Cancel {} running task(s), timeout graceful shutdown exceeded",
                        tasks.len()
                    );
                    for t in tasks {
                        t.cancel();
                    }
                }
            }
        }
        tracing::info!(target: "uvicorn.error", "Waiting for application shutdown.");
        match lifespan.shutdown(&cx).await {
            Ok(()) => tracing::info!(target: "uvicorn.error", "Application shutdown complete."),
            Err(e) => tracing::error!(target: "uvicorn.error", "Application shutdown failed. {e}"),
        }
        signal_task.abort();
        tracing::info!(target: "uvicorn.error", "Finished server process");
    }
}

async fn wait_tasks_to_complete(state: &ServerState) {
    if !state.connections.borrow().is_empty() {
        tracing::info!(target: "uvicorn.error", "Waiting for connections to close. (CTRL+C to force quit)");
        while !state.connections.borrow().is_empty() {
            event_loop::sleep(Duration::from_millis(100)).await;
        }
    }
    if !state.tasks.borrow().is_empty() {
        tracing::info!(target: "uvicorn.error", "Waiting for background tasks to complete. (CTRL+C to force quit)");
        while !state.tasks.borrow().is_empty() {
            event_loop::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn serve_connection<A: AsgiApp>(
    io: Box<dyn Conn>,
    peer: String,
    state: Rc<ServerState>,
    app: A,
) {
    let conn = Rc::new(ConnState {
        id: state.next_id(),
        cycle: RefCell::new(None),
        closing: Cell::new(false),
        close_requested: Event::new(),
    });
    state.connections.borrow_mut().insert(conn.id, conn.clone());
    let svc = {
        let conn = conn.clone();
        let state = state.clone();
        let peer = peer.clone();
        hyper::service::service_fn(move |req| {
            // Like h11's Request event: the cycle and its task exist as soon
            // as the head is parsed, even if hyper never polls this future.
            let head = on_request(req, peer.clone(), conn.clone(), state.clone(), app.clone());
            async move {
                head.await.map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the application ended without a response head",
                    )
                })
            }
        })
    };
    // No Date header: hyper would read the wall clock for it.
    let http = hyper::server::conn::http1::Builder::new()
        .auto_date_header(false)
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(http);
    let mut graceful = false;
    let outcome = loop {
        tokio::select! {
            biased;
            r = http.as_mut() => break r,
            _ = conn.close_requested.wait_raw(), if !graceful => {
                graceful = true;
                http.as_mut().graceful_shutdown();
            }
        }
    };
    tracing::debug!(
        target: "mcpsim::http",
        peer = %peer,
        "connection closed: {}",
        match &outcome {
            Ok(()) => "clean".to_string(),
            Err(e) => e.to_string(),
        }
    );
    // asyncio delivers connection_lost through its ready queue: the task that
    // a request just created runs first, and the step running now ends first.
    tokio::task::yield_now().await;
    event_loop::settle().await;
    state.connections.borrow_mut().remove(&conn.id);
    let cycle = conn.cycle.borrow().clone();
    if let Some(cycle) = cycle {
        if !cycle.response_complete.get() {
            cycle.disconnected.set(true);
        }
        cycle.message_event.set();
        cycle.out.resume();
    }
}

fn on_request<A: AsgiApp>(
    req: hyper::Request<hyper::body::Incoming>,
    peer: String,
    conn: Rc<ConnState>,
    state: Rc<ServerState>,
    mut app: A,
) -> oneshot::Receiver<hyper::Response<AsgiBody>> {
    let (head_tx, head_rx) = oneshot::channel();
    let cycle = Cycle::new(&req, peer.clone(), head_tx, &conn, state.clone());
    if conn.closing.get() {
        cycle.keep_alive.set(false);
    }
    *conn.cycle.borrow_mut() = Some(cycle.clone());
    let scope = Scope {
        method: cycle.method.clone(),
        path: cycle.path.clone(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        client: peer,
        host_view: cycle.clone(),
    };

    // h11 feeds body events to the cycle as they arrive.
    let mut body = req.into_body();
    let pump_cycle = cycle.clone();
    event_loop::spawn("uvicorn.request_body", async move {
        loop {
            let frame = body.frame().await;
            // `data_received` / `connection_lost` run when the loop gets to them.
            event_loop::settle().await;
            match frame {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        pump_cycle.body_received(&data);
                    }
                }
                Some(Err(e)) => {
                    // A body that breaks — a bad chunk size, a body cut short
                    // by a close — ends the request as it ends uvicorn's: h11
                    // raises (a protocol error: "Invalid HTTP request
                    // received.", and the connection closes), or the loss is
                    // `connection_lost`. Either way the app's next `receive()`
                    // is `http.disconnect`, and the connection is released.
                    if e.is_parse() {
                        tracing::warn!(target: "uvicorn.error", "Invalid HTTP request received.");
                    }
                    pump_cycle.body_broken();
                    return;
                }
                None => {
                    pump_cycle.body_complete();
                    return;
                }
            }
        }
    });

    let cx = Cx::root();
    let task_id = state.next_id();
    state.tasks.borrow_mut().insert(task_id, cx.task());
    let run_cycle = cycle.clone();
    let run_state = state.clone();
    event_loop::spawn("uvicorn.run_asgi", async move {
        let call = AsgiCall {
            cx: cx.clone(),
            scope,
            receive: Rc::new(Callables(run_cycle.clone())),
            send: Rc::new(Callables(run_cycle.clone())),
        };
        // h11 parsed the head in `data_received` → `handle_events`, made the
        // cycle and `self.loop.create_task(self.cycle.run_asgi(app))`; the
        // task runs when the loop gets to it.
        event_loop::charge(Step::RequestHead).await;
        let result = match poll_fn(|c| app.poll_ready(c)).await {
            Ok(()) => app.call(call).await,
            Err(e) => Err(e),
        };
        run_cycle.run_asgi(cx, result).await;
        run_state.tasks.borrow_mut().remove(&task_id);
    });

    head_rx
}
