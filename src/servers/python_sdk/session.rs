//! mcp 1.20.0 `ServerSession` (`mcp/server/session.py`, `mcp/shared/session.py`)
//! and the low-level `Server.run` loop (`mcp/server/lowlevel/server.py`).
//!
//! The receive loop reads the transport's read stream: `initialize` is
//! answered inline (and marks the session initialized at once), other requests
//! become `RequestResponder`s handed through a buffer-0 stream to `Server.run`,
//! which starts one `_handle_message` task per message. Each request handler
//! runs in the responder's own cancel scope (what `notifications/cancelled`
//! cancels) and sends its response through the session's write stream to the
//! transport's router. A handler that sees a cancellation logs "Request …
//! cancelled - duplicate response suppressed" and sends nothing.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde_json::{Value, json};

use super::anyio::{
    CancelScope, Cx, Exc, MemoryRecv, MemorySend, PyResult, memory_object_stream, task_group,
};
use super::cost::Step;
use super::event_loop;
use super::pydict::PyDict;
use super::release::Release;
use super::tools::{self, ToolContext, ToolSession};
use super::transport::{ReadItem, SessionMessage};
use crate::asgi::LocalBoxFuture;
use crate::mcp::{self, Message, codes, id_key};

/// mcp's `CONNECTION_CLOSED` error code.
const CONNECTION_CLOSED: i64 = -32000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InitState {
    NotInitialized,
    Initializing,
    Initialized,
}

/// A request on its way to a handler (`RequestResponder`).
pub struct Responder {
    id: Value,
    method: String,
    params: Option<Value>,
    completed: Cell<bool>,
    entered: Cell<bool>,
    scope: RefCell<Option<CancelScope>>,
}

/// `_in_flight` is keyed by the raw request id: `1` and `"1"` differ here
/// (unlike the transport's `str(id)` stream keys).
fn flight_key(id: &Value) -> String {
    id.to_string()
}

impl Responder {
    fn cancelled(&self) -> bool {
        self.scope
            .borrow()
            .as_ref()
            .is_some_and(CancelScope::cancel_called)
    }
}

enum Incoming {
    Request(Rc<Responder>),
    Notification(String),
    Exception(Exc),
}

/// The server side of one MCP session.
pub struct ServerSession {
    init_state: Cell<InitState>,
    write_stream: Rc<MemorySend<SessionMessage>>,
    in_flight: RefCell<PyDict<Rc<Responder>>>,
    incoming_tx: Rc<MemorySend<Incoming>>,
    incoming_rx: Rc<MemoryRecv<Incoming>>,
    /// BaseSession._request_id: ids of requests this server sends.
    next_request_id: Cell<i64>,
    /// BaseSession._response_streams, keyed by the raw request id.
    response_streams: RefCell<PyDict<Rc<MemorySend<Message>>>>,
}

/// What a tool's `ctx` reaches in 1.20: the session, the request's id and its
/// progress token.
struct ToolCtx {
    session: Rc<ServerSession>,
    request_id: Value,
    progress_token: Option<Value>,
}

impl ToolSession for ToolCtx {
    fn report_progress<'a>(
        &'a self,
        cx: &'a Cx,
        progress: u64,
        total: u64,
    ) -> LocalBoxFuture<'a, PyResult<()>> {
        Box::pin(async move {
            // ctx.report_progress: only when the client asked, and with no
            // related_request_id (FastMCP 1.20).
            let Some(token) = &self.progress_token else {
                return Ok(());
            };
            self.session
                .send_notification(
                    cx,
                    "notifications/progress",
                    tools::progress_params(token, progress, total, true),
                    None,
                )
                .await
        })
    }

    fn elicit<'a>(&'a self, cx: &'a Cx, params: Value) -> LocalBoxFuture<'a, PyResult<Message>> {
        Box::pin(async move {
            self.session
                .send_request(cx, "elicitation/create", params, Some(&self.request_id))
                .await
        })
    }
}

/// Counts request handlers running in a process (for the probe).
pub type HandlerCount = Rc<Cell<usize>>;

/// Counts one running request handler while it lives (both releases'
/// dispatch layers; the interop servers count the same way).
pub(super) struct Running(HandlerCount);

impl Running {
    pub(super) fn new(c: &HandlerCount) -> Self {
        c.set(c.get() + 1);
        Running(c.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// `await server.run(read_stream, write_stream, init_options, stateless=...)`.
pub async fn run_server(
    cx: &Cx,
    read_stream: Rc<MemoryRecv<ReadItem>>,
    write_stream: Rc<MemorySend<SessionMessage>>,
    stateless: bool,
    handlers: HandlerCount,
) -> PyResult<()> {
    let (itx, irx) = memory_object_stream::<Incoming>(0);
    let session = Rc::new(ServerSession {
        init_state: Cell::new(if stateless {
            InitState::Initialized
        } else {
            InitState::NotInitialized
        }),
        write_stream,
        in_flight: RefCell::new(PyDict::default()),
        incoming_tx: Rc::new(itx),
        incoming_rx: Rc::new(irx),
        next_request_id: Cell::new(0),
        response_streams: RefCell::new(PyDict::default()),
    });
    // ServerSession.__aenter__: BaseSession's task group runs _receive_loop.
    task_group(cx, async |cx, session_tg| {
        let s = session.clone();
        session_tg.start_soon("_receive_loop", move |cx| async move {
            s.receive_loop(&cx, read_stream).await
        });
        let r = task_group(cx, async |cx, tg| {
            while let Some(msg) = session.incoming_rx.next(cx).await? {
                let s = session.clone();
                let guard = matches!(msg, Incoming::Request(_)).then(|| Running::new(&handlers));
                tg.start_soon("_handle_message", move |cx| async move {
                    let r = s.handle_message(&cx, msg).await;
                    drop(guard);
                    r
                });
            }
            Ok(())
        })
        .await;
        // BaseSession.__aexit__ cancels its task group.
        session_tg.cancel_scope().cancel();
        r
    })
    .await
}

impl ServerSession {
    async fn send_message(&self, cx: &Cx, message: Message) -> PyResult<()> {
        self.write_stream
            .send(cx, SessionMessage::new(message))
            .await
    }

    async fn respond(&self, cx: &Cx, r: &Responder, result: Result<Value, Value>) -> PyResult<()> {
        if r.cancelled() {
            return Ok(());
        }
        r.completed.set(true);
        // `_send_response`: `JSONRPCResponse(..., result=response.model_dump(
        // by_alias=True, mode="json", exclude_none=True))`, then the write.
        event_loop::charge(Step::Respond).await;
        let message = match result {
            Ok(result) => Message::Response {
                id: r.id.clone(),
                result,
            },
            Err(error) => Message::Error {
                id: r.id.clone(),
                error,
            },
        };
        self.send_message(cx, message).await
    }

    async fn receive_loop(
        self: &Rc<Self>,
        cx: &Cx,
        read_stream: Rc<MemoryRecv<ReadItem>>,
    ) -> PyResult<()> {
        let r = self.receive_messages(cx, &read_stream).await;
        let r = match r {
            Err(Exc::ClosedResource) => {
                tracing::debug!(target: "root", "Read stream closed by client");
                Ok(())
            }
            Err(e) if e.is_exception() => {
                tracing::error!(target: "root", "Unhandled exception in receive loop: {}", e.py_str());
                Ok(())
            }
            other => other,
        };
        // finally: tell every pending outgoing request that the connection closed.
        let pending: Vec<(String, Rc<MemorySend<Message>>)> = {
            let mut streams = self.response_streams.borrow_mut();
            let keys = streams.keys();
            keys.into_iter()
                .filter_map(|k| streams.pop(&k).map(|s| (k, s)))
                .collect()
        };
        for (key, stream) in pending {
            let id: Value = serde_json::from_str(&key).unwrap_or(Value::Null);
            let _ = stream
                .send(
                    cx,
                    Message::error(id, CONNECTION_CLOSED, "Connection closed"),
                )
                .await;
            stream.close();
        }
        // BaseSession: async with (self._read_stream, self._write_stream): exit
        read_stream.close();
        self.write_stream.close();
        // ServerSession: async with self._incoming_message_stream_writer: exit —
        // which ends Server.run's loop over incoming messages.
        self.incoming_tx.close();
        r
    }

    async fn receive_messages(
        self: &Rc<Self>,
        cx: &Cx,
        read_stream: &MemoryRecv<ReadItem>,
    ) -> PyResult<()> {
        while let Some(item) = read_stream.next(cx).await? {
            match item {
                ReadItem::Exception(e) => self.incoming_tx.send(cx, Incoming::Exception(e)).await?,
                ReadItem::Message(sm) => match sm.message {
                    Message::Request { id, method, params } => {
                        // `self._receive_request_type.model_validate(message.
                        // message.root.model_dump(...))`, `RequestResponder(...)`.
                        event_loop::charge(Step::ValidateRequest).await;
                        let validated = validate_request(&method, params.as_ref());
                        let responder = Rc::new(Responder {
                            id: id.clone(),
                            method,
                            params,
                            completed: Cell::new(false),
                            entered: Cell::new(false),
                            scope: RefCell::new(None),
                        });
                        // try: validate, register, _received_request, hand over
                        let r = match validated {
                            Err(e) => Err(e),
                            Ok(()) => {
                                self.in_flight
                                    .borrow_mut()
                                    .insert(flight_key(&id), responder.clone());
                                match self.received_request(cx, &responder).await {
                                    Ok(()) if !responder.completed.get() => {
                                        self.incoming_tx
                                            .send(cx, Incoming::Request(responder))
                                            .await
                                    }
                                    other => other,
                                }
                            }
                        };
                        match r {
                            Ok(()) => {}
                            Err(e) if e.is_exception() => {
                                tracing::warn!(target: "root", "Failed to validate request: {}", e.py_str());
                                self.send_message(
                                    cx,
                                    Message::Error {
                                        id,
                                        error: json!({"code": codes::INVALID_PARAMS, "message": "Invalid request parameters", "data": ""}),
                                    },
                                )
                                .await?;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    Message::Notification { method, params } => {
                        // `self._receive_notification_type.model_validate(...)`.
                        event_loop::charge(Step::ValidateRequest).await;
                        let r: PyResult<()> = async {
                            if method == "notifications/cancelled" {
                                let target = params
                                    .as_ref()
                                    .and_then(|p| p.get("requestId"))
                                    .map(flight_key);
                                let responder =
                                    target.and_then(|k| self.in_flight.borrow().get(&k));
                                if let Some(r) = responder {
                                    self.cancel_request(cx, &r).await?;
                                }
                            } else {
                                self.received_notification(cx, &method).await?;
                                self.incoming_tx
                                    .send(cx, Incoming::Notification(method))
                                    .await?;
                            }
                            Ok(())
                        }
                        .await;
                        match r {
                            Err(e) if e.is_exception() => {
                                tracing::warn!(target: "root", "Failed to validate notification: {}.", e.py_str());
                            }
                            other => other?,
                        }
                    }
                    message @ (Message::Response { .. } | Message::Error { .. }) => {
                        let key = message.id().map(flight_key).unwrap_or_default();
                        let stream = self.response_streams.borrow_mut().pop(&key);
                        match stream {
                            Some(stream) => stream.send(cx, message).await?,
                            None => {
                                self.incoming_tx
                                    .send(
                                        cx,
                                        Incoming::Exception(Exc::Runtime(format!(
                                            "Received response with an unknown request ID: {}",
                                            message.to_json()
                                        ))),
                                    )
                                    .await?
                            }
                        }
                    }
                },
            }
        }
        Ok(())
    }

    async fn received_request(&self, cx: &Cx, r: &Rc<Responder>) -> PyResult<()> {
        match r.method.as_str() {
            "initialize" => {
                self.init_state.set(InitState::Initializing);
                let requested = r
                    .params
                    .as_ref()
                    .and_then(|p| p.get("protocolVersion"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let version = if mcp::SUPPORTED_PROTOCOL_VERSIONS.contains(&requested) {
                    requested
                } else {
                    mcp::PY_LATEST_PROTOCOL_VERSION
                };
                // with responder: await responder.respond(InitializeResult)
                let scope = cx.open_scope(false);
                *r.scope.borrow_mut() = Some(scope.clone());
                let inner = cx.enter(&scope);
                let result = self
                    .respond(
                        &inner,
                        r,
                        Ok(json!({
                            "protocolVersion": version,
                            "capabilities": {
                                "experimental": {},
                                "prompts": {"listChanged": false},
                                "resources": {"subscribe": false, "listChanged": false},
                                "tools": {"listChanged": false}
                            },
                            "serverInfo": {"name": "mcpsim-python-model", "version": "1.20.0"}
                        })),
                    )
                    .await;
                if r.completed.get() {
                    self.in_flight.borrow_mut().pop(&flight_key(&r.id));
                }
                scope.exit(result)?;
                self.init_state.set(InitState::Initialized);
                Ok(())
            }
            "ping" => Ok(()),
            _ if self.init_state.get() != InitState::Initialized => Err(Exc::Runtime(
                "Received request before initialization was complete".into(),
            )),
            _ => Ok(()),
        }
    }

    async fn received_notification(&self, cx: &Cx, method: &str) -> PyResult<()> {
        cx.checkpoint().await?;
        if method == "notifications/initialized" {
            self.init_state.set(InitState::Initialized);
        } else if self.init_state.get() != InitState::Initialized {
            return Err(Exc::Runtime(
                "Received notification before initialization was complete".into(),
            ));
        }
        Ok(())
    }

    async fn cancel_request(&self, cx: &Cx, r: &Responder) -> PyResult<()> {
        let scope = r.scope.borrow().clone();
        let Some(scope) = scope.filter(|_| r.entered.get()) else {
            return Err(Exc::Runtime(
                "RequestResponder must be used as a context manager".into(),
            ));
        };
        scope.cancel();
        r.completed.set(true);
        self.send_message(cx, Message::error(r.id.clone(), 0, "Request cancelled"))
            .await
    }

    async fn handle_message(self: &Rc<Self>, cx: &Cx, msg: Incoming) -> PyResult<()> {
        match msg {
            Incoming::Request(responder) => {
                // with responder:
                let scope = cx.open_scope(false);
                *responder.scope.borrow_mut() = Some(scope.clone());
                responder.entered.set(true);
                let inner = cx.enter(&scope);
                let r = self.handle_request(&inner, &responder).await;
                if responder.completed.get() {
                    self.in_flight.borrow_mut().pop(&flight_key(&responder.id));
                }
                responder.entered.set(false);
                scope.exit(r).map(|_| ())
            }
            Incoming::Notification(_method) => Ok(()),
            Incoming::Exception(e) => {
                tracing::error!(target: "mcp.server.lowlevel.server", "Received exception from stream: {}", e.py_str());
                self.send_message(
                    cx,
                    Message::Notification {
                        method: "notifications/message".into(),
                        params: Some(json!({"level": "error", "logger": "mcp.server.exception_handler", "data": "Internal Server Error"})),
                    },
                )
                .await
            }
        }
    }

    /// `send_notification(notification, related_request_id)`.
    pub async fn send_notification(
        &self,
        cx: &Cx,
        method: &str,
        params: Value,
        related_request_id: Option<&Value>,
    ) -> PyResult<()> {
        // `ServerNotification(...)`, `model_dump(...)`, the write.
        event_loop::charge(Step::Notify).await;
        self.write_stream
            .send(
                cx,
                SessionMessage::related(
                    Message::Notification {
                        method: method.into(),
                        params: Some(params),
                    },
                    related_request_id.map(id_key),
                ),
            )
            .await
    }

    /// `send_request(request, result_type, metadata)`: send a request to the
    /// client and wait for its response (no timeout, as 1.20's default).
    pub async fn send_request(
        &self,
        cx: &Cx,
        method: &str,
        params: Value,
        related_request_id: Option<&Value>,
    ) -> PyResult<Message> {
        // `ServerRequest(...)`, `model_dump(...)`, the write.
        event_loop::charge(Step::Notify).await;
        let id = self.next_request_id.get();
        self.next_request_id.set(id + 1);
        let key = flight_key(&json!(id));
        let (tx, rx) = memory_object_stream::<Message>(1);
        let tx = Rc::new(tx);
        self.response_streams
            .borrow_mut()
            .insert(key.clone(), tx.clone());
        let r = async {
            self.write_stream
                .send(
                    cx,
                    SessionMessage::related(
                        Message::Request {
                            id: json!(id),
                            method: method.into(),
                            params: Some(params),
                        },
                        related_request_id.map(id_key),
                    ),
                )
                .await?;
            rx.receive(cx).await
        }
        .await;
        // finally:
        self.response_streams.borrow_mut().pop(&key);
        tx.close();
        rx.close();
        r
    }

    async fn handle_request(self: &Rc<Self>, cx: &Cx, r: &Responder) -> PyResult<()> {
        // `Server.run` → `tg.start_soon(self._handle_message, ...)` →
        // `_handle_request`: the handler lookup, `request_ctx.set(...)`.
        event_loop::charge(Step::Dispatch).await;
        tracing::info!(target: "mcp.server.lowlevel.server", "Processing request of type {}", request_type(&r.method));
        let handled: PyResult<Result<Value, Value>> = match r.method.as_str() {
            "ping" => Ok(Ok(json!({}))),
            "tools/list" => {
                // `ToolManager.list_tools()`, `ListToolsResult(...)`.
                event_loop::charge(Step::ListTools).await;
                Ok(Ok(tools::list()))
            }
            "tools/call" => {
                let session = ToolCtx {
                    session: self.clone(),
                    request_id: r.id.clone(),
                    progress_token: r
                        .params
                        .as_ref()
                        .and_then(|p| p.pointer("/_meta/progressToken"))
                        .cloned(),
                };
                let ctx = ToolContext { session: &session };
                tools::call(cx, r.params.as_ref(), &ctx).await.map(Ok)
            }
            // FastMCP registers these too; the seed's server has none of either.
            "resources/list" => Ok(Ok(json!({"resources": []}))),
            "resources/templates/list" => Ok(Ok(json!({"resourceTemplates": []}))),
            "prompts/list" => Ok(Ok(json!({"prompts": []}))),
            "resources/read" => Ok(Err(json!({"code": 0, "message": "Unknown resource"}))),
            "prompts/get" => Ok(Err(json!({"code": 0, "message": "Unknown prompt"}))),
            _ => {
                let e = json!({"code": codes::METHOD_NOT_FOUND, "message": "Method not found"});
                return self.respond(cx, r, Err(e)).await;
            }
        };
        let response = match handled {
            Ok(v) => v,
            Err(e) if e.is_cancelled() => {
                tracing::info!(
                    target: "mcp.server.lowlevel.server",
                    "Request {} cancelled - duplicate response suppressed",
                    id_key(&r.id)
                );
                return Ok(());
            }
            Err(e) if e.is_exception() => Err(json!({"code": 0, "message": e.to_string()})),
            Err(e) => return Err(e),
        };
        self.respond(cx, r, response).await?;
        tracing::debug!(target: "mcp.server.lowlevel.server", "Response sent");
        Ok(())
    }
}

fn request_type(method: &str) -> &'static str {
    match method {
        "ping" => "PingRequest",
        "tools/list" => "ListToolsRequest",
        "tools/call" => "CallToolRequest",
        "resources/list" => "ListResourcesRequest",
        "prompts/list" => "ListPromptsRequest",
        _ => "ClientRequest",
    }
}

fn validate_request(method: &str, params: Option<&Value>) -> PyResult<()> {
    if !Release::V1_20.is_client_request_method(method) {
        return Err(Exc::Other {
            class: "ValidationError",
            msg: format!("unknown request method {method:?}"),
        });
    }
    tools::validate_params(method, params)
}
