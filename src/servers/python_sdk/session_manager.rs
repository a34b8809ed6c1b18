//! mcp 1.20.0 `StreamableHTTPSessionManager` (`streamable_http_manager.py`).
//!
//! Stateful: a request without `mcp-session-id` creates a transport, files it
//! under a fresh `uuid4().hex`, starts its server task in the manager's task
//! group and lets it handle the request — whatever the request is, so a
//! session-less `tools/list` creates a session only to be answered 400
//! "Missing session ID". A known id routes to its transport; an unknown one
//! gets 400 "No valid session ID provided". Sessions are never reaped.
//! Stateless: a transport per request, terminated after it.
//!
//! The manager's task group lives in the application's lifespan; shutting the
//! lifespan down cancels it, and with it every session's server task.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use crate::servers::Ids;

use super::anyio::{Cx, Event, Exc, Lock, PyResult, TaskGroup, TaskStatus, task_group};
use super::event_store::InMemoryEventStore;
use super::pydict::PyDict;
use super::session::{HandlerCount, run_server};
use super::sse_starlette::AppStatus;
use super::starlette::Response;
use super::transport::Transport;
use super::transport::security::SecuritySettings;
use super::uvicorn::Lifespan;
use super::variant::Variant;
use crate::asgi::{LocalBoxFuture, Receive, Scope, Send};
use crate::servers::ServerConfig;

/// `StreamableHTTPSessionManager`.
pub struct SessionManager {
    config: ServerConfig,
    variant: Variant,
    app_status: Rc<AppStatus>,
    ids: Rc<RefCell<Ids>>,
    event_store: Option<Rc<InMemoryEventStore>>,
    server_instances: RefCell<PyDict<Rc<Transport>>>,
    task_group: RefCell<Option<TaskGroup>>,
    session_creation_lock: Lock,
    started: Event,
    stop: Event,
    stopped: Event,
    /// Every transport this process created, for the probe.
    pub(crate) all_transports: RefCell<Vec<Weak<Transport>>>,
    pub(crate) handlers: HandlerCount,
}

impl SessionManager {
    /// A manager for one process.
    pub fn new(
        config: ServerConfig,
        variant: Variant,
        app_status: Rc<AppStatus>,
        ids: Ids,
    ) -> Rc<Self> {
        let ids = Rc::new(RefCell::new(ids));
        let event_store = config
            .event_store
            .then(|| Rc::new(InMemoryEventStore::new(ids.clone())));
        Rc::new(Self {
            config,
            variant,
            app_status,
            ids,
            event_store,
            server_instances: RefCell::new(PyDict::default()),
            task_group: RefCell::new(None),
            session_creation_lock: Lock::new(),
            started: Event::new(),
            stop: Event::new(),
            stopped: Event::new(),
            all_transports: RefCell::new(Vec::new()),
            handlers: HandlerCount::default(),
        })
    }

    /// `uuid4().hex`, from the process's id source.
    fn new_session_id(&self) -> String {
        let mut bytes = [0u8; 16];
        self.ids.borrow_mut().fill(&mut bytes);
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn new_transport(&self, session_id: Option<String>) -> Rc<Transport> {
        let security = self
            .config
            .dns_rebinding
            .as_ref()
            .map(|a| SecuritySettings {
                allowed_hosts: a.hosts.clone(),
                allowed_origins: a.origins.clone(),
            });
        // Stateless transports get no event store (as in 1.20).
        let store = if session_id.is_some() {
            self.event_store.clone()
        } else {
            None
        };
        let t = Transport::new(
            session_id,
            self.config.json_response,
            self.variant,
            self.app_status.clone(),
            store,
            security,
        );
        let mut all = self.all_transports.borrow_mut();
        all.retain(|w| w.strong_count() > 0);
        all.push(Rc::downgrade(&t));
        t
    }

    /// `async with manager.run():` held open by the lifespan task.
    async fn run(self: Rc<Self>, cx: Cx) -> PyResult<()> {
        let r = task_group(&cx, async |_cx, tg| {
            *self.task_group.borrow_mut() = Some(tg.clone());
            tracing::info!(target: "mcp.server.streamable_http_manager", "StreamableHTTP session manager started");
            self.started.set();
            // yield: the application runs until the lifespan shuts down.
            self.stop.wait_raw().await;
            tracing::info!(target: "mcp.server.streamable_http_manager", "StreamableHTTP session manager shutting down");
            tg.cancel_scope().cancel();
            *self.task_group.borrow_mut() = None;
            self.server_instances.borrow_mut().clear();
            Ok(())
        })
        .await;
        self.stopped.set();
        r
    }

    /// The sessions registered now (id, transport).
    pub(crate) fn instances(&self) -> Vec<(String, Rc<Transport>)> {
        let inst = self.server_instances.borrow();
        inst.keys()
            .into_iter()
            .filter_map(|k| inst.get(&k).map(|t| (k, t)))
            .collect()
    }

    /// `handle_request(scope, receive, send)`.
    pub async fn handle_request(
        self: &Rc<Self>,
        cx: &Cx,
        scope: Scope,
        receive: Rc<dyn Receive>,
        send: Rc<dyn Send>,
    ) -> PyResult<()> {
        let tg = self.task_group.borrow().clone().ok_or_else(|| {
            Exc::Runtime("Task group is not initialized. Make sure to use run().".into())
        })?;
        if self.config.stateless {
            self.handle_stateless(cx, &tg, scope, receive, send).await
        } else {
            self.handle_stateful(cx, &tg, scope, receive, send).await
        }
    }

    async fn handle_stateless(
        self: &Rc<Self>,
        cx: &Cx,
        tg: &TaskGroup,
        scope: Scope,
        receive: Rc<dyn Receive>,
        send: Rc<dyn Send>,
    ) -> PyResult<()> {
        let transport = self.new_transport(None);
        let (t, handlers) = (transport.clone(), self.handlers.clone());
        tg.start(cx, "run_stateless_server", move |cx, status| async move {
            serve_transport(t, &cx, status, handlers, || {}).await
        })
        .await?;
        transport.handle_request(cx, scope, receive, send).await?;
        transport.terminate();
        Ok(())
    }

    async fn handle_stateful(
        self: &Rc<Self>,
        cx: &Cx,
        tg: &TaskGroup,
        scope: Scope,
        receive: Rc<dyn Receive>,
        send: Rc<dyn Send>,
    ) -> PyResult<()> {
        let requested = scope.header("mcp-session-id").map(str::to_string);
        if let Some(sid) = &requested {
            let existing = self.server_instances.borrow().get(sid);
            if let Some(transport) = existing {
                tracing::debug!(target: "mcp.server.streamable_http_manager", "Session already exists, handling request directly");
                return transport.handle_request(cx, scope, receive, send).await;
            }
            return Response::new(
                "Bad Request: No valid session ID provided",
                400,
                vec![],
                None,
            )
            .call(cx, &*send)
            .await;
        }
        tracing::debug!(target: "mcp.server.streamable_http_manager", "Creating new transport");
        self.session_creation_lock
            .with(cx, async |cx| {
                let sid = self.new_session_id();
                let transport = self.new_transport(Some(sid.clone()));
                self.server_instances
                    .borrow_mut()
                    .insert(sid.clone(), transport.clone());
                tracing::info!(target: "mcp.server.streamable_http_manager", "Created new transport with session ID: {sid}");
                let (me, t, handlers) = (self.clone(), transport.clone(), self.handlers.clone());
                tg.start(cx, "run_server", move |cx, status| async move {
                    // finally (inside `connect()`): forget a session that ended
                    // without terminate()
                    let forget = {
                        let t = t.clone();
                        move || {
                            if let Some(id) = &t.session_id
                                && me.server_instances.borrow().contains(id)
                                && !t.is_terminated()
                            {
                                tracing::info!(target: "mcp.server.streamable_http_manager", "Cleaning up crashed session {id} from active instances.");
                                me.server_instances.borrow_mut().pop(id);
                            }
                        }
                    };
                    serve_transport(t, &cx, status, handlers, forget).await
                })
                .await?;
                transport.handle_request(cx, scope, receive, send).await
            })
            .await
    }
}

/// The server task of a transport: `async with transport.connect() as
/// (read, write): task_status.started(); try: await app.run(read, write, ...)
/// except Exception: log; finally: <finally>` — the same in both modes but
/// for the log line and the `finally`.
async fn serve_transport(
    transport: Rc<Transport>,
    cx: &Cx,
    status: TaskStatus<()>,
    handlers: HandlerCount,
    finally: impl FnOnce(),
) -> PyResult<()> {
    let stateless = transport.session_id.is_none();
    transport
        .clone()
        .connect(cx, async |cx, read, write| {
            status.started(());
            let r = match run_server(cx, read, write, stateless, handlers).await {
                Err(e) if e.is_exception() => {
                    match &transport.session_id {
                        None => tracing::error!(target: "mcp.server.streamable_http_manager", "Stateless session crashed\n{e}"),
                        Some(sid) => tracing::error!(target: "mcp.server.streamable_http_manager", "Session {sid} crashed: {}", e.py_str()),
                    }
                    Ok(())
                }
                other => other,
            };
            finally();
            r
        })
        .await
}

/// The Starlette application's lifespan: `async with session_manager.run(): yield`.
pub struct ManagerLifespan(pub Rc<SessionManager>);

impl Lifespan for ManagerLifespan {
    fn startup<'a>(&'a self, _cx: &'a Cx) -> LocalBoxFuture<'a, PyResult<()>> {
        Box::pin(async move {
            let m = self.0.clone();
            crate::task::spawn("lifespan", async move {
                let cx = Cx::root();
                if let Err(e) = m.run(cx).await {
                    tracing::error!(target: "uvicorn.error", "lifespan failed: {e}");
                }
            });
            self.0.started.wait_raw().await;
            Ok(())
        })
    }

    fn shutdown<'a>(&'a self, _cx: &'a Cx) -> LocalBoxFuture<'a, PyResult<()>> {
        Box::pin(async move {
            self.0.stop.set();
            self.0.stopped.wait_raw().await;
            Ok(())
        })
    }
}
