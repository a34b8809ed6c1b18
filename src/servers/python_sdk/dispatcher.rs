//! mcp 2.3.0's dispatch of requests to handlers: `JSONRPCDispatcher`
//! (`mcp/shared/jsonrpc_dispatcher.py`) driving a `ServerRunner`
//! (`mcp/server/runner.py`), as `serve_loop` (a stateful session) and
//! `serve_connection` (a stateless request, born ready) start them, with the
//! per-request `ServerSession` of `mcp/server/session.py` that tools reach.
//! It replaces 1.20's `ServerSession` + `Server.run` ([`super::session`]).
//!
//! The read loop takes one message at a time: `initialize` is handled inline
//! (the loop waits for it); every other request runs in a task of its own, in
//! a cancel scope of its own filed in `_in_flight` (what
//! `notifications/cancelled` cancels); responses resolve the server's own
//! pending requests; an exception the transport passed on is dropped at
//! debug. A handler's result or error is written to the session's write
//! stream; a request the peer cancelled is never answered by the dispatcher
//! — it "settles unanswered", and the transport's `on_request_unanswered`
//! hook answers it with `REQUEST_CANCELLED`. When the read stream ends (a
//! DELETE, a stateless teardown) or the loop is cancelled (idle timeout,
//! shutdown), every handler still running is cancelled and, unless it was
//! already answering, answered `CONNECTION_CLOSED` in a shielded, bounded
//! write; pending server requests get `CONNECTION_CLOSED` too.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use serde_json::{Value, json};

use super::anyio::{
    CancelScope, Cx, Event, Exc, MemoryRecv, MemorySend, PyResult, TaskGroup, memory_object_stream,
    task_group,
};
use super::cost::Step;
use super::event_loop;
use super::pydict::PyDict;
use super::release::Release;
use super::session::{HandlerCount, Running};
use super::tools::{self, ToolContext, ToolSession};
use super::transport::{InboundMeta, ReadItem, SessionMessage};
use crate::asgi::LocalBoxFuture;
use crate::mcp::{self, Message, codes, id_key};

/// mcp-types' `CONNECTION_CLOSED`.
const CONNECTION_CLOSED: i64 = -32000;
/// `_SHUTDOWN_WRITE_TIMEOUT`: "Tighter bound for the shutdown-arm error write
/// so a wedged transport can't hold session close."
const SHUTDOWN_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// `_ABANDON_WRITE_TIMEOUT`: the bound of a courtesy cancel.
const ABANDON_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The request handlers `MCPServer` registers with its low-level `Server`
/// (plus the default `ping`); anything else is METHOD_NOT_FOUND.
const HANDLED: [&str; 8] = [
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
];

/// `coerce_request_id`: "7" and 7 are one id for correlation.
fn coerce_key(id: &Value) -> String {
    match id {
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(n) => format!("int:{n}"),
            Err(_) => format!("str:{s}"),
        },
        Value::Number(n) => format!("int:{n}"),
        other => format!("other:{other}"),
    }
}

/// `Connection` (mcp/server/connection.py): what the handshake committed.
struct Connection {
    protocol_version: RefCell<String>,
    client_params: Cell<bool>,
    initialized: Cell<bool>,
}

impl Connection {
    /// `initialize_accepted`: "`initialize` recorded the peer info, or the
    /// handshake completed outright".
    fn initialize_accepted(&self) -> bool {
        self.client_params.get() || self.initialized.get()
    }
}

/// `_JSONRPCDispatchContext`: one inbound message's context.
struct DispatchContext {
    dispatcher: Rc<Dispatcher>,
    request_id: Option<Value>,
    /// `transport.can_send_request` (from the transport builder).
    can_send: bool,
    meta: Option<Rc<InboundMeta>>,
    progress_token: Option<Value>,
    closed: Cell<bool>,
    cancel_requested: Cell<bool>,
}

impl DispatchContext {
    fn can_send_request(&self) -> bool {
        self.can_send && !self.closed.get()
    }

    /// `notify(method, params)`: on the request's own stream.
    async fn notify(&self, cx: &Cx, method: &str, params: Value) -> PyResult<()> {
        if self.closed.get() {
            tracing::debug!(target: "mcp.shared.jsonrpc_dispatcher", "dropped {method}: dispatch context closed");
            return Ok(());
        }
        self.dispatcher
            .notify(cx, method, params, self.request_id.as_ref())
            .await
    }
}

/// `_InFlight`: a request being handled, with its (not yet entered) scope.
struct InFlight {
    scope: CancelScope,
    dctx: Rc<DispatchContext>,
}

/// `_Pending`: a request of the server's own awaiting its answer.
struct Pending {
    send: MemorySend<Result<Value, Value>>,
}

/// `JSONRPCDispatcher` with its `ServerRunner`.
struct Dispatcher {
    write: Rc<MemorySend<SessionMessage>>,
    /// Stateless: `transport_builder=lambda _md: TransportContext(...,
    /// can_send_request=False)`; stateful reads the message's metadata.
    can_send_override: Option<bool>,
    next_id: Cell<i64>,
    pending: RefCell<PyDict<Rc<Pending>>>,
    in_flight: RefCell<PyDict<Rc<InFlight>>>,
    tg: RefCell<Option<TaskGroup>>,
    running: Cell<bool>,
    closed: Cell<bool>,
    connection: Connection,
    handlers: HandlerCount,
}

/// `serve_loop(server, read_stream, write_stream, session_id=...)`: a
/// stateful session; `Connection.for_loop` is not born ready.
pub async fn serve_loop(
    cx: &Cx,
    read: Rc<MemoryRecv<ReadItem>>,
    write: Rc<MemorySend<SessionMessage>>,
    handlers: HandlerCount,
) -> PyResult<()> {
    let d = Dispatcher::new(
        write,
        None,
        mcp::DEFAULT_NEGOTIATED_VERSION,
        false,
        handlers,
    );
    d.run(cx, read).await
}

/// The stateless request's `serve_connection(...)`: "Born-ready, no
/// standalone channel"; its protocol version is the request's header (or
/// the spec's default), and no server request has anywhere to go.
pub async fn serve_stateless(
    cx: &Cx,
    read: Rc<MemoryRecv<ReadItem>>,
    write: Rc<MemorySend<SessionMessage>>,
    version: String,
    handlers: HandlerCount,
) -> PyResult<()> {
    let d = Dispatcher::new(write, Some(false), &version, true, handlers);
    d.run(cx, read).await
}

impl Dispatcher {
    fn new(
        write: Rc<MemorySend<SessionMessage>>,
        can_send_override: Option<bool>,
        version: &str,
        born_ready: bool,
        handlers: HandlerCount,
    ) -> Rc<Self> {
        Rc::new(Self {
            write,
            can_send_override,
            next_id: Cell::new(0),
            pending: RefCell::new(PyDict::default()),
            in_flight: RefCell::new(PyDict::default()),
            tg: RefCell::new(None),
            running: Cell::new(false),
            closed: Cell::new(false),
            connection: Connection {
                protocol_version: RefCell::new(version.to_string()),
                client_params: Cell::new(false),
                initialized: Cell::new(born_ready),
            },
            handlers,
        })
    }

    /// `run(on_request, on_notify)`: "Drive the receive loop until the read
    /// stream closes."
    async fn run(self: &Rc<Self>, cx: &Cx, read: Rc<MemoryRecv<ReadItem>>) -> PyResult<()> {
        // async with self._write_stream: async with create_task_group() as tg:
        let r = task_group(cx, async |cx, tg| {
            *self.tg.borrow_mut() = Some(tg.clone());
            self.running.set(true);
            let body: PyResult<()> = async {
                // async with self._read_stream: try: async for item in ...
                let loop_result: PyResult<()> = async {
                    while let Some(item) = read.next(cx).await? {
                        self.dispatch(cx, item).await?;
                    }
                    Ok(())
                }
                .await;
                read.close();
                match loop_result {
                    Err(Exc::ClosedResource) => {
                        tracing::debug!(target: "mcp.shared.jsonrpc_dispatcher", "read stream closed by transport; treating as EOF");
                    }
                    other => other?,
                }
                // EOF: wake blocked `send_raw_request` waiters.
                self.running.set(false);
                self.closed.set(true);
                self.fan_out_closed();
                Ok(())
            }
            .await;
            // finally: "Cancel in-flight handlers; otherwise the task-group
            // join waits on handlers whose callers are already gone."
            tg.cancel_scope().cancel();
            body
        })
        .await;
        // finally: (and `async with self._write_stream` closing it)
        self.running.set(false);
        self.closed.set(true);
        *self.tg.borrow_mut() = None;
        self.fan_out_closed();
        self.write.close();
        r
    }

    /// `_dispatch(item, ...)`.
    async fn dispatch(self: &Rc<Self>, cx: &Cx, item: ReadItem) -> PyResult<()> {
        let sm = match item {
            ReadItem::Exception(e) => {
                // No `on_stream_exception` observer on a server.
                tracing::debug!(target: "mcp.shared.jsonrpc_dispatcher", "transport yielded exception: {e}");
                return Ok(());
            }
            ReadItem::Message(sm) => sm,
        };
        // `_dispatch(item)`: the message's `DispatchContext(...)`, its
        // `CancelScope`, `_in_flight[...]`, `tg.start_soon(...)`.
        event_loop::charge(Step::ValidateRequest).await;
        let meta = sm.inbound.clone();
        match sm.message {
            Message::Request { id, method, params } => {
                self.dispatch_request(cx, id, method, params, meta).await
            }
            Message::Notification { method, params } => {
                self.dispatch_notification(method, params);
                Ok(())
            }
            Message::Response { id, result } => {
                self.resolve_pending(&id, Ok(result));
                Ok(())
            }
            Message::Error { id, error } => {
                self.resolve_pending(&id, Err(error));
                Ok(())
            }
        }
    }

    fn can_send_for(&self, meta: &Option<Rc<InboundMeta>>) -> bool {
        // `_default_transport_builder`: "A message reads as riding a full
        // duplex pipe unless the transport that framed it says otherwise".
        self.can_send_override
            .unwrap_or_else(|| meta.as_ref().is_none_or(|m| m.can_send_request))
    }

    async fn dispatch_request(
        self: &Rc<Self>,
        cx: &Cx,
        id: Value,
        method: String,
        params: Option<Value>,
        meta: Option<Rc<InboundMeta>>,
    ) -> PyResult<()> {
        let progress_token = params
            .as_ref()
            .and_then(|p| p.pointer("/_meta/progressToken"))
            .filter(|t| t.is_string() || t.is_i64() || t.is_u64())
            .cloned();
        let dctx = Rc::new(DispatchContext {
            dispatcher: self.clone(),
            request_id: Some(id.clone()),
            can_send: self.can_send_for(&meta),
            meta,
            progress_token,
            closed: Cell::new(false),
            cancel_requested: Cell::new(false),
        });
        let scope = CancelScope::detached();
        // "duplicate ids blind-overwrite (v1/TS parity)".
        self.in_flight.borrow_mut().insert(
            coerce_key(&id),
            Rc::new(InFlight {
                scope: scope.clone(),
                dctx: dctx.clone(),
            }),
        );
        let Some(tg) = self.tg.borrow().clone() else {
            return Err(Exc::Runtime("dispatcher task group gone".into()));
        };
        let me = self.clone();
        if method == "initialize" {
            // Inline: "park the read loop until the handler returns".
            let done = Event::new();
            let d = done.clone();
            tg.start_soon("_run_inline", move |cx| async move {
                let r = me
                    .handle_request(&cx, id, method, params, dctx, scope)
                    .await;
                d.set();
                r
            });
            done.wait(cx).await
        } else {
            tg.start_soon("_handle_request", move |cx| async move {
                me.handle_request(&cx, id, method, params, dctx, scope)
                    .await
            });
            Ok(())
        }
    }

    fn dispatch_notification(self: &Rc<Self>, method: String, params: Option<Value>) {
        if method == "notifications/cancelled" {
            let rid = params
                .as_ref()
                .and_then(|p| p.get("requestId"))
                .filter(|v| v.is_string() || v.is_i64() || v.is_u64());
            if let Some(rid) = rid {
                let entry = self.in_flight.borrow().get(&coerce_key(rid));
                if let Some(entry) = entry {
                    entry.dctx.cancel_requested.set(true);
                    // peer_cancel_mode "interrupt" (the default).
                    entry.scope.cancel();
                }
            }
        }
        // Teed to `on_notify` afterwards (contained).
        let Some(tg) = self.tg.borrow().clone() else {
            return;
        };
        let me = self.clone();
        tg.start_soon("on_notify", move |_cx| async move {
            me.on_notify(&method, params.as_ref());
            Ok(())
        });
    }

    /// `ServerRunner._on_notify`.
    fn on_notify(&self, method: &str, params: Option<&Value>) {
        if method == "notifications/cancelled"
            && params
                .and_then(|p| p.get("requestId"))
                .is_none_or(|v| !(v.is_string() || v.is_i64() || v.is_u64()))
        {
            tracing::warn!(target: "mcp.server.runner", "dropped {method:?}: malformed params");
            return;
        }
        if method == "notifications/initialized" {
            self.connection.initialized.set(true);
        } else if !self.connection.initialize_accepted() {
            tracing::debug!(target: "mcp.server.runner", "dropped {method}: received before initialization");
            return;
        }
        // MCPServer registers no notification handler mcpsim's client uses.
        tracing::debug!(target: "mcp.server.runner", "no handler for notification {method}");
    }

    /// `_resolve_pending(request_id, outcome)`.
    fn resolve_pending(&self, id: &Value, outcome: Result<Value, Value>) {
        let pending = if id.is_null() {
            None
        } else {
            self.pending.borrow().get(&coerce_key(id))
        };
        let Some(p) = pending else {
            tracing::debug!(target: "mcp.shared.jsonrpc_dispatcher", "dropping response for unknown/late request id {id}");
            return;
        };
        if !matches!(p.send.send_nowait(outcome), Ok(None)) {
            tracing::debug!(target: "mcp.shared.jsonrpc_dispatcher", "waiter for request id {id} already gone");
        }
    }

    /// `_fan_out_closed()`: every pending request of the server's own gets
    /// `CONNECTION_CLOSED`.
    fn fan_out_closed(&self) {
        let pending: Vec<Rc<Pending>> = {
            let mut p = self.pending.borrow_mut();
            let keys = p.keys();
            keys.into_iter().filter_map(|k| p.pop(&k)).collect()
        };
        for p in pending {
            let _ = p.send.send_nowait(Err(
                json!({"code": CONNECTION_CLOSED, "message": "Connection closed"}),
            ));
        }
    }

    /// `_handle_request(req, dctx, scope, on_request)`: "The single
    /// exception-to-wire boundary".
    async fn handle_request(
        self: &Rc<Self>,
        cx: &Cx,
        id: Value,
        method: String,
        params: Option<Value>,
        dctx: Rc<DispatchContext>,
        scope: CancelScope,
    ) -> PyResult<()> {
        let answer_write_started = Cell::new(false);
        // try: with scope: ...
        let inner = cx.enter_detached(&scope);
        let within: PyResult<()> = async {
            let result = {
                let _running = Running::new(&self.handlers);
                self.on_request(&inner, &method, params.as_ref(), &dctx)
                    .await
            };
            // finally: close the back-channel, drop from `_in_flight`
            // ("Identity guard: don't evict a duplicate id's newer entry").
            dctx.closed.set(true);
            let key = coerce_key(&id);
            let same = self
                .in_flight
                .borrow()
                .get(&key)
                .is_some_and(|e| Rc::ptr_eq(&e.dctx, &dctx));
            if same {
                self.in_flight.borrow_mut().pop(&key);
            }
            let result = result?;
            if !dctx.cancel_requested.get() {
                answer_write_started.set(true);
                self.write_result(
                    &inner,
                    Message::Response {
                        id: id.clone(),
                        result,
                    },
                )
                .await?;
            }
            Ok(())
        }
        .await;
        let outcome = scope.exit(within);
        match outcome {
            Ok(_) => {}
            Err(e) if e.is_cancelled() => {
                // "Shutdown: answer the request so the peer isn't left waiting"
                if !answer_write_started.get() && !dctx.cancel_requested.get() {
                    self.final_write(
                        cx,
                        true,
                        SHUTDOWN_WRITE_TIMEOUT,
                        &format!("shutdown error response for request {id}"),
                        async |cx| {
                            self.write_result(
                                cx,
                                Message::error(id.clone(), CONNECTION_CLOSED, "Connection closed"),
                            )
                            .await
                        },
                    )
                    .await;
                }
                return Err(e);
            }
            Err(e) => {
                let error = match &e {
                    Exc::Mcp { code, message } => json!({"code": code, "message": message}),
                    Exc::Other {
                        class: "ValidationError",
                        ..
                    } => {
                        json!({"code": codes::INVALID_PARAMS, "message": "Invalid request parameters", "data": ""})
                    }
                    other => {
                        tracing::error!(target: "mcp.shared.jsonrpc_dispatcher", "handler for {method:?} raised\n{other}");
                        // "code=0 pins existing-server compat"
                        json!({"code": 0, "message": other.py_str()})
                    }
                };
                if !dctx.cancel_requested.get() {
                    answer_write_started.set(true);
                    self.write_result(
                        cx,
                        Message::Error {
                            id: id.clone(),
                            error,
                        },
                    )
                    .await?;
                }
            }
        }
        // "The one place a cancelled request settles".
        if !answer_write_started.get() {
            self.settle_unanswered(cx, &dctx).await?;
        }
        Ok(())
    }

    /// `ServerRunner._on_request(dctx, method, params)`.
    async fn on_request(
        self: &Rc<Self>,
        cx: &Cx,
        method: &str,
        params: Option<&Value>,
        dctx: &Rc<DispatchContext>,
    ) -> PyResult<Value> {
        // `validate_client_request(...)`, the handler lookup, the `Context`.
        event_loop::charge(Step::Dispatch).await;
        if Release::V2_3.is_client_request_method(method) {
            // `_methods.validate_client_request(method, version, params)`.
            tools::validate_params(method, params)?;
        }
        if method == "initialize" {
            let requested = params
                .and_then(|p| p.get("protocolVersion"))
                .and_then(Value::as_str)
                .unwrap_or("");
            // `_negotiate_initialize`: the client's version if it is a
            // handshake version, else LATEST_HANDSHAKE_VERSION.
            let negotiated = if mcp::HANDSHAKE_PROTOCOL_VERSIONS.contains(&requested) {
                requested
            } else {
                mcp::HANDSHAKE_PROTOCOL_VERSIONS[mcp::HANDSHAKE_PROTOCOL_VERSIONS.len() - 1]
            };
            let result = json!({
                "protocolVersion": negotiated,
                "capabilities": {
                    "prompts": {"listChanged": false},
                    "resources": {"subscribe": false, "listChanged": false},
                    "tools": {"listChanged": false}
                },
                "serverInfo": {"name": "mcpsim-python-model", "version": "2.3.0"}
            });
            // "Commit only on chain success".
            self.connection.client_params.set(true);
            *self.connection.protocol_version.borrow_mut() = negotiated.to_string();
            return Ok(result);
        }
        if !HANDLED.contains(&method) {
            return Err(Exc::Mcp {
                code: codes::METHOD_NOT_FOUND,
                message: "Method not found".into(),
            });
        }
        if !self.connection.initialize_accepted() && method != "ping" {
            return Err(Exc::Mcp {
                code: codes::INVALID_PARAMS,
                message: "Invalid request parameters".into(),
            });
        }
        match method {
            "ping" => Ok(json!({})),
            "tools/list" => {
                // `ToolManager.list_tools()`, `ListToolsResult(...)`.
                event_loop::charge(Step::ListTools).await;
                Ok(tools::list())
            }
            "tools/call" => {
                let session = Session { dctx: dctx.clone() };
                let ctx = ToolContext { session: &session };
                tools::call(cx, params, &ctx).await
            }
            "resources/list" => Ok(json!({"resources": []})),
            "resources/templates/list" => Ok(json!({"resourceTemplates": []})),
            "prompts/list" => Ok(json!({"prompts": []})),
            // `ResourceNotFoundError` → MCPError(INVALID_PARAMS); the same for
            // an unknown prompt.
            "resources/read" => Err(Exc::Mcp {
                code: codes::INVALID_PARAMS,
                message: "Unknown resource".into(),
            }),
            _ => Err(Exc::Mcp {
                code: codes::INVALID_PARAMS,
                message: "Unknown prompt".into(),
            }),
        }
    }

    /// `_write(message, metadata)`: onto the session's write stream, routed
    /// by the message's id or, for a notification or request, `related`.
    async fn write_message(
        &self,
        cx: &Cx,
        message: Message,
        related: Option<&Value>,
    ) -> PyResult<()> {
        self.write
            .send(cx, SessionMessage::related(message, related.map(id_key)))
            .await
    }

    /// `_write_result` / `_write_error`: a closed write stream drops it at
    /// debug.
    async fn write_result(&self, cx: &Cx, message: Message) -> PyResult<()> {
        // `JSONRPCResponse(...)` / `JSONRPCError(...)`, its `model_dump`.
        event_loop::charge(Step::Respond).await;
        match self.write_message(cx, message, None).await {
            Err(Exc::BrokenResource | Exc::ClosedResource) => {
                tracing::debug!(target: "mcp.shared.jsonrpc_dispatcher", "dropped answer: write stream closed");
                Ok(())
            }
            other => other,
        }
    }

    /// `_final_write(write, shield=..., timeout=..., describe=...)`.
    async fn final_write(
        &self,
        cx: &Cx,
        shield: bool,
        timeout: Duration,
        describe: &str,
        write: impl AsyncFnOnce(&Cx) -> PyResult<()>,
    ) {
        let (scope, _r) = if shield {
            cx.move_on_after_shielded(Some(timeout), write).await
        } else {
            cx.move_on_after(Some(timeout), write).await
        };
        if scope.cancel_called() {
            tracing::warn!(target: "mcp.shared.jsonrpc_dispatcher", "{describe} gave up: transport write blocked");
        }
    }

    /// `_settle_unanswered(dctx)`: the transport's `on_request_unanswered`.
    async fn settle_unanswered(&self, cx: &Cx, dctx: &DispatchContext) -> PyResult<()> {
        let Some(hook) = dctx
            .meta
            .as_ref()
            .and_then(|m| m.on_request_unanswered.clone())
        else {
            return Ok(());
        };
        match hook(cx.clone()).await {
            Err(Exc::BrokenResource | Exc::ClosedResource) => {
                tracing::debug!(target: "mcp.shared.jsonrpc_dispatcher", "on_request_unanswered dropped: connection closing");
                Ok(())
            }
            Err(e) if e.is_exception() => {
                tracing::error!(target: "mcp.shared.jsonrpc_dispatcher", "on_request_unanswered hook raised\n{e}");
                Ok(())
            }
            other => other,
        }
    }

    /// `notify(method, params, _related_request_id=...)`: "Fire-and-forget
    /// all the way".
    async fn notify(
        &self,
        cx: &Cx,
        method: &str,
        params: Value,
        related: Option<&Value>,
    ) -> PyResult<()> {
        if self.closed.get() {
            tracing::debug!(target: "mcp.shared.jsonrpc_dispatcher", "dropped {method}: dispatcher closed");
            return Ok(());
        }
        // `JSONRPCNotification(...)`, its `model_dump`, the write.
        event_loop::charge(Step::Notify).await;
        let message = Message::Notification {
            method: method.into(),
            params: Some(params),
        };
        match self.write_message(cx, message, related).await {
            Err(Exc::BrokenResource | Exc::ClosedResource) => {
                tracing::debug!(target: "mcp.shared.jsonrpc_dispatcher", "dropped {method}: write stream closed");
                Ok(())
            }
            other => other,
        }
    }

    /// `send_raw_request(method, params, _related_request_id=...)`, with no
    /// timeout (MCPServer's `elicit` sets none).
    async fn send_raw_request(
        self: &Rc<Self>,
        cx: &Cx,
        method: &str,
        params: Value,
        related: Option<&Value>,
    ) -> PyResult<Value> {
        let closed = || Exc::Mcp {
            code: CONNECTION_CLOSED,
            message: "Connection closed".into(),
        };
        if self.closed.get() {
            return Err(closed());
        }
        if !self.running.get() {
            return Err(Exc::Runtime(
                "JSONRPCDispatcher.send_raw_request called before run()".into(),
            ));
        }
        // `JSONRPCRequest(...)`, its `model_dump`, the write.
        event_loop::charge(Step::Notify).await;
        // `_allocate_id`: ids start at 1.
        let mut request_id = self.next_id.get() + 1;
        while self
            .pending
            .borrow()
            .contains(&coerce_key(&json!(request_id)))
        {
            request_id += 1;
        }
        self.next_id.set(request_id);
        let key = coerce_key(&json!(request_id));
        // buffer=1: "a close signal can arrive before the waiter parks".
        let (send, receive) = memory_object_stream::<Result<Value, Value>>(1);
        self.pending
            .borrow_mut()
            .insert(key.clone(), Rc::new(Pending { send }));
        let write_started = Cell::new(false);
        let r: PyResult<Result<Value, Value>> = async {
            cx.checkpoint_if_cancelled().await?;
            write_started.set(true);
            let message = Message::Request {
                id: json!(request_id),
                method: method.into(),
                params: Some(params),
            };
            match self.write_message(cx, message, related).await {
                Err(Exc::BrokenResource | Exc::ClosedResource) => return Err(closed()),
                other => other?,
            }
            receive.receive(cx).await
        }
        .await;
        if matches!(&r, Err(e) if e.is_cancelled()) && write_started.get() {
            // "Caller cancelled: … the shielded helper lets the courtesy
            // cancel go out before we propagate."
            self.final_write(
                cx,
                true,
                ABANDON_WRITE_TIMEOUT,
                &format!("courtesy cancel for caller-cancelled request {request_id}"),
                async |cx| {
                    self.notify(
                        cx,
                        "notifications/cancelled",
                        json!({"requestId": request_id, "reason": "caller cancelled"}),
                        related,
                    )
                    .await
                },
            )
            .await;
        }
        // finally: "Remove the waiter on every path".
        self.pending.borrow_mut().pop(&key);
        receive.close();
        match r? {
            Ok(result) => Ok(result),
            Err(error) => Err(Exc::Mcp {
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            }),
        }
    }
}

/// The per-request `ServerSession` a tool's `ctx` reaches (2.3): progress and
/// server requests ride the request-scoped channel, the dispatch context.
struct Session {
    dctx: Rc<DispatchContext>,
}

impl ToolSession for Session {
    fn report_progress<'a>(
        &'a self,
        cx: &'a Cx,
        progress: u64,
        total: u64,
    ) -> LocalBoxFuture<'a, PyResult<()>> {
        Box::pin(async move {
            // `DispatchContext.progress`: "if self._progress_token is None:
            // return".
            let Some(token) = &self.dctx.progress_token else {
                return Ok(());
            };
            self.dctx
                .notify(
                    cx,
                    "notifications/progress",
                    tools::progress_params(token, progress, total, false),
                )
                .await
        })
    }

    fn elicit<'a>(&'a self, cx: &'a Cx, params: Value) -> LocalBoxFuture<'a, PyResult<Message>> {
        Box::pin(async move {
            const METHOD: &str = "elicitation/create";
            if !self.dctx.can_send_request() {
                // NoBackChannelError: "serializes to an INVALID_REQUEST error".
                return Err(Exc::Mcp {
                    code: codes::INVALID_REQUEST,
                    message: format!(
                        "Cannot send '{METHOD}': this transport context has no back-channel for server-initiated requests."
                    ),
                });
            }
            let result = self
                .dctx
                .dispatcher
                .send_raw_request(cx, METHOD, params, self.dctx.request_id.as_ref())
                .await?;
            Ok(Message::Response {
                id: Value::Null,
                result,
            })
        })
    }
}
