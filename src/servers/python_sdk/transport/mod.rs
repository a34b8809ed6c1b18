//! mcp's `StreamableHTTPServerTransport` (`mcp/server/streamable_http.py`),
//! 1.20.0 and 2.3.0.
//!
//! * POST ([`post`]): a request gets a request stream filed under
//!   `str(request_id)` and an SSE (or JSON) response fed from it;
//!   notifications and responses get 202 and go to the session.
//! * GET ([`get`]): the standalone stream (one per session — a second gets
//!   409), or, with `Last-Event-ID`, a replay from the event store that then
//!   forwards the stream's live messages.
//! * DELETE: `terminate()` — 404 from then on.
//! * The message router (one per session) files every outgoing message in the
//!   event store first, then sends it to the request stream of its request (a
//!   response by id, a notification by `related_request_id`), or to the GET
//!   stream; when that stream is not registered it logs "Request stream … not
//!   found … might reconnect and replay" and drops the message.
//!
//! 2.3 adds, on these paths (each at its line, asked of [`Release`]): request
//! streams with a buffer of 16, priming events, the answer to a request that
//! settled unanswered, an idle scope that ends a session no request has held
//! for its idle timeout (`handle_request` counts the requests in flight), a
//! router and SSE writers that stay quiet when a terminated session closes
//! their streams, related messages dropped in JSON mode, and a replay stream
//! that cleans up after itself.
//!
//! Request validation follows the transport's own checks and the
//! `TransportSecurityMiddleware` ([`security`]).

mod get;
mod post;
pub mod security;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde_json::json;

use std::time::Duration;

use super::anyio::{
    CancelScope, Cx, Exc, MemoryRecv, MemorySend, PyResult, memory_object_stream, task_group,
};
use super::cost::Step;
use super::event_loop;
use super::event_store::InMemoryEventStore;
use super::pydict::PyDict;
use super::release::Release;
use super::sse_starlette::{AppStatus, ServerSentEvent};
use super::starlette::{Request, Response};
use super::variant::Model;
use crate::asgi::tracking::Clock;
use crate::asgi::{LocalBoxFuture, Receive, Scope, Send};
use crate::mcp::{self, Message, codes, id_key};
use security::SecuritySettings;

/// 2.3's `REQUEST_CANCELLED: Final = -32800`: the answer to a request that
/// settled without one, on this era's wire.
pub const REQUEST_CANCELLED: i64 = -32800;

/// The key of the standalone GET stream.
pub const GET_STREAM_KEY: &str = "_GET_stream";

/// A message on a request stream, with its event id (none without an event
/// store).
#[derive(Debug, Clone)]
pub struct EventMessage {
    /// The JSON-RPC message.
    pub message: Message,
    /// Its event id.
    pub event_id: Option<String>,
}

/// A message between the transport and the session, with its metadata.
#[derive(Clone)]
pub struct SessionMessage {
    /// The JSON-RPC message.
    pub message: Message,
    /// `ServerMessageMetadata.related_request_id` (outgoing messages).
    pub related_request_id: Option<String>,
    /// What 2.3's transport stamps on an incoming message
    /// (`_message_metadata`); `None` in 1.20.
    pub inbound: Option<Rc<InboundMeta>>,
}

impl SessionMessage {
    /// A message with no metadata (`SessionMessage(message)`).
    pub fn new(message: Message) -> Self {
        Self {
            message,
            related_request_id: None,
            inbound: None,
        }
    }

    /// An outgoing message routed to the stream of `related`.
    pub fn related(message: Message, related: Option<String>) -> Self {
        Self {
            message,
            related_request_id: related,
            inbound: None,
        }
    }
}

impl std::fmt::Debug for SessionMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMessage")
            .field("message", &self.message)
            .field("related_request_id", &self.related_request_id)
            .finish()
    }
}

/// The hook 2.3 calls when a request settled without a response
/// (`on_request_unanswered`).
pub type Unanswered = Rc<dyn Fn(Cx) -> LocalBoxFuture<'static, PyResult<()>>>;

/// 2.3's `ServerMessageMetadata` on an incoming message.
pub struct InboundMeta {
    /// `can_send_request=not self.is_json_response_enabled`: a JSON body has
    /// no room for a server request.
    pub can_send_request: bool,
    /// `on_request_unanswered` (requests only).
    pub on_request_unanswered: Option<Unanswered>,
}

/// What the session reads: a message, or an exception the transport passed on.
#[derive(Debug, Clone)]
pub enum ReadItem {
    /// A client message.
    Message(SessionMessage),
    /// `await writer.send(Exception(err))`.
    Exception(Exc),
}

type RequestStream = (Rc<MemorySend<EventMessage>>, Rc<MemoryRecv<EventMessage>>);

/// One transport (one session, or one stateless request).
pub struct Transport {
    /// `mcp_session_id`.
    pub session_id: Option<String>,
    json_response: bool,
    model: Model,
    release: Release,
    app_status: Rc<AppStatus>,
    event_store: Option<Rc<InMemoryEventStore>>,
    security: Option<SecuritySettings>,
    request_streams: RefCell<PyDict<RequestStream>>,
    terminated: Cell<bool>,
    read_stream_writer: RefCell<Option<Rc<MemorySend<ReadItem>>>>,
    streams: RefCell<Option<ConnectedStreams>>,
    idle: Idle,
}

/// 2.3's idle bookkeeping: `_idle_timeout`, `_requests_in_flight` and
/// `idle_scope`.
struct Idle {
    timeout: Option<Duration>,
    in_flight: Cell<usize>,
    scope: RefCell<Option<CancelScope>>,
    /// When the scope's deadline falls, on the probe's clock (`None`:
    /// `math.inf`, or no scope).
    due: Cell<Option<Duration>>,
    clock: Clock,
}

/// How a transport is made: `StreamableHTTPServerTransport(mcp_session_id,
/// is_json_response_enabled, event_store, security_settings, …,
/// idle_timeout)`, plus what the model needs to run it.
pub struct TransportConfig {
    /// `mcp_session_id`.
    pub session_id: Option<String>,
    /// `is_json_response_enabled`.
    pub json_response: bool,
    /// Which stack.
    pub model: Model,
    /// sse-starlette's module state.
    pub app_status: Rc<AppStatus>,
    /// `event_store`.
    pub event_store: Option<Rc<InMemoryEventStore>>,
    /// `security_settings`.
    pub security: Option<SecuritySettings>,
    /// `idle_timeout` (2.3).
    pub idle_timeout: Option<Duration>,
    /// The probe's clock.
    pub clock: Clock,
}

struct ConnectedStreams {
    read_writer: Rc<MemorySend<ReadItem>>,
    read_stream: Rc<MemoryRecv<ReadItem>>,
    write_stream: Rc<MemorySend<SessionMessage>>,
    write_reader: Rc<MemoryRecv<SessionMessage>>,
}

fn sse_event(m: &EventMessage) -> ServerSentEvent {
    ServerSentEvent {
        event: Some("message".into()),
        data: Some(m.message.to_json()),
        id: m.event_id.clone(),
        ..Default::default()
    }
}

impl Transport {
    /// `EventSourceResponse(content=sse_stream_reader, data_sender_callable=...,
    /// headers=...)` with the transport's SSE headers.
    fn event_source(
        &self,
        rx: Rc<MemoryRecv<ServerSentEvent>>,
        data_sender: super::sse_starlette::DataSender,
    ) -> super::sse_starlette::EventSourceResponse {
        let mut headers = vec![
            (
                "Cache-Control".to_string(),
                "no-cache, no-transform".to_string(),
            ),
            ("Connection".to_string(), "keep-alive".to_string()),
            ("Content-Type".to_string(), "text/event-stream".to_string()),
        ];
        if let Some(sid) = &self.session_id {
            headers.push(("mcp-session-id".into(), sid.clone()));
        }
        super::sse_starlette::EventSourceResponse::new(
            rx,
            headers,
            Some(data_sender),
            self.app_status.clone(),
            self.model.variant.final_body_guard(),
        )
    }

    /// `StreamableHTTPServerTransport(...)`.
    pub fn new(c: TransportConfig) -> Rc<Self> {
        Rc::new(Self {
            session_id: c.session_id,
            json_response: c.json_response,
            model: c.model,
            release: c.model.release,
            app_status: c.app_status,
            event_store: c.event_store,
            security: c.security,
            request_streams: RefCell::new(PyDict::default()),
            terminated: Cell::new(false),
            read_stream_writer: RefCell::new(None),
            streams: RefCell::new(None),
            idle: Idle {
                timeout: c.idle_timeout,
                in_flight: Cell::new(0),
                scope: RefCell::new(None),
                due: Cell::new(None),
                clock: c.clock,
            },
        })
    }

    /// A memory stream for `_request_streams`, with the release's buffer.
    fn request_stream(&self) -> (MemorySend<EventMessage>, MemoryRecv<EventMessage>) {
        // 1.20: create_memory_object_stream[EventMessage](0)
        // 2.3:  create_memory_object_stream[EventMessage](REQUEST_STREAM_BUFFER_SIZE)
        memory_object_stream::<EventMessage>(self.release.request_stream_buffer())
    }

    /// When the session will be reaped unless a request arrives, on the
    /// probe's clock (`None`: never, as far as it knows now).
    pub fn idle_deadline(&self) -> Option<Duration> {
        self.idle.due.get()
    }

    /// The scope 2.3's server task enters around the session's loop
    /// (`connect()` makes it when an idle timeout is set: `self.idle_scope =
    /// anyio.CancelScope()`).
    pub fn make_idle_scope(&self) -> Option<CancelScope> {
        self.idle.timeout?;
        let scope = CancelScope::detached();
        *self.idle.scope.borrow_mut() = Some(scope.clone());
        Some(scope)
    }

    /// Keys of the request streams still registered.
    pub fn open_streams(&self) -> Vec<String> {
        self.request_streams.borrow().keys()
    }

    /// `is_terminated`.
    pub fn is_terminated(&self) -> bool {
        self.terminated.get()
    }

    fn error_response(&self, message: &str, status: u16, code: i64) -> Response {
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        if let Some(sid) = &self.session_id {
            headers.push(("mcp-session-id".into(), sid.clone()));
        }
        self.error_response_with(message, status, code, headers)
    }

    fn error_response_with(
        &self,
        message: &str,
        status: u16,
        code: i64,
        headers: Vec<(String, String)>,
    ) -> Response {
        // 1.20: id="server-error"; 2.3: id=None.
        let body = json!({"jsonrpc": "2.0", "id": self.release.error_body_id(), "error": {"code": code, "message": message}});
        Response::new(body.to_string(), status, headers, None)
    }

    fn json_response(&self, message: Option<&Message>, status: u16) -> Response {
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        if let Some(sid) = &self.session_id {
            headers.push(("mcp-session-id".into(), sid.clone()));
        }
        let body = message.map(Message::to_json).unwrap_or_default();
        Response::new(body, status, headers, None)
    }

    /// `_clean_up_memory_streams(request_id)`. An `async def` in Python whose
    /// awaits (`aclose()` on memory streams) never yield, so it runs to the end
    /// even inside a cancelled scope.
    fn clean_up_memory_streams(&self, request_id: &str) {
        let entry = self.request_streams.borrow().get(request_id);
        if let Some((tx, rx)) = entry {
            tx.close();
            rx.close();
            self.request_streams.borrow_mut().pop(request_id);
        }
    }

    /// `handle_request(scope, receive, send)`. In 2.3 it holds the session
    /// open while the request is in flight: "the idle countdown is suspended
    /// while any is being served and restarts when the last one completes".
    pub async fn handle_request(
        self: &Rc<Self>,
        cx: &Cx,
        scope: Scope,
        receive: Rc<dyn Receive>,
        send: Rc<dyn Send>,
    ) -> PyResult<()> {
        let idle_scope = self.idle.scope.borrow().clone();
        let (Some(idle_scope), Some(timeout)) = (idle_scope, self.idle.timeout) else {
            return self.handle_request_inner(cx, scope, receive, send).await;
        };
        if idle_scope.cancel_called() {
            // "The idle period already ran out and the host is ending this
            // session: answer as terminated".
            if !self.terminated.get() {
                self.terminate();
            }
            return self.handle_request_inner(cx, scope, receive, send).await;
        }
        self.idle.in_flight.set(self.idle.in_flight.get() + 1);
        // self.idle_scope.deadline = math.inf
        idle_scope.set_deadline(None);
        self.idle.due.set(None);
        let r = self.handle_request_inner(cx, scope, receive, send).await;
        // finally:
        self.idle.in_flight.set(self.idle.in_flight.get() - 1);
        if self.idle.in_flight.get() == 0 {
            // self.idle_scope.deadline = anyio.current_time() + self._idle_timeout
            idle_scope.set_deadline(Some(tokio::time::Instant::now() + timeout));
            self.idle.due.set(Some((self.idle.clock)() + timeout));
        }
        r
    }

    /// `_handle_request` (2.3; all of `handle_request` in 1.20).
    async fn handle_request_inner(
        self: &Rc<Self>,
        cx: &Cx,
        scope: Scope,
        receive: Rc<dyn Receive>,
        send: Rc<dyn Send>,
    ) -> PyResult<()> {
        let request = Request::new(scope, receive.clone());
        let is_post = request.method() == "POST";
        if let Some(response) =
            security::validate_request(self.release, self.security.as_ref(), &request, is_post)
        {
            return response.call(cx, &*send).await;
        }
        if self.terminated.get() {
            return self
                .error_response(
                    "Not Found: Session has been terminated",
                    404,
                    codes::INVALID_REQUEST,
                )
                .call(cx, &*send)
                .await;
        }
        match request.method() {
            "POST" => self.handle_post_request(cx, &request, receive, send).await,
            "GET" => self.handle_get_request(cx, &request, send).await,
            "DELETE" => self.handle_delete_request(cx, &request, send).await,
            _ => {
                let mut headers = vec![
                    ("Content-Type".to_string(), "application/json".to_string()),
                    ("Allow".to_string(), "GET, POST, DELETE".to_string()),
                ];
                if let Some(sid) = &self.session_id {
                    headers.push(("mcp-session-id".into(), sid.clone()));
                }
                self.error_response_with("Method Not Allowed", 405, codes::INVALID_REQUEST, headers)
                    .call(cx, &*send)
                    .await
            }
        }
    }

    async fn handle_delete_request(
        self: &Rc<Self>,
        cx: &Cx,
        request: &Request,
        send: Rc<dyn Send>,
    ) -> PyResult<()> {
        if self.session_id.is_none() {
            return self
                .error_response(
                    "Method Not Allowed: Session termination not supported",
                    405,
                    codes::INVALID_REQUEST,
                )
                .call(cx, &*send)
                .await;
        }
        if !self.validate_request_headers(cx, request, &*send).await? {
            return Ok(());
        }
        // `await self.terminate()`: every stream closed.
        event_loop::charge(Step::Terminate).await;
        self.terminate();
        self.json_response(None, 200).call(cx, &*send).await
    }

    async fn validate_accept_header(
        &self,
        cx: &Cx,
        request: &Request,
        send: &dyn Send,
    ) -> PyResult<bool> {
        let (has_json, has_sse) = self.check_accept_headers(request);
        if self.json_response {
            if !has_json {
                self.error_response(
                    "Not Acceptable: Client must accept application/json",
                    406,
                    codes::INVALID_REQUEST,
                )
                .call(cx, send)
                .await?;
                return Ok(false);
            }
        } else if !(has_json && has_sse) {
            self.error_response(
                "Not Acceptable: Client must accept both application/json and text/event-stream",
                406,
                codes::INVALID_REQUEST,
            )
            .call(cx, send)
            .await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// `(has_json, has_sse)` for the request's `Accept` header: 1.20's
    /// `_check_accept_headers` (prefixes of the two types), 2.3's
    /// `check_accept_headers` (media types without parameters, with RFC 7231
    /// wildcards).
    fn check_accept_headers(&self, request: &Request) -> (bool, bool) {
        let accept = request.header("accept").unwrap_or("");
        if !self.release.accept_wildcards() {
            let types: Vec<&str> = accept.split(',').map(str::trim).collect();
            let has_json = types.iter().any(|t| t.starts_with("application/json"));
            let has_sse = types.iter().any(|t| t.starts_with("text/event-stream"));
            return (has_json, has_sse);
        }
        let types: Vec<String> = accept
            .split(',')
            .map(|t| {
                t.trim()
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .collect();
        let wildcard = types.iter().any(|t| t == "*/*");
        let has_json = wildcard
            || types
                .iter()
                .any(|t| t == "application/json" || t == "application/*");
        let has_sse = wildcard
            || types
                .iter()
                .any(|t| t == "text/event-stream" || t == "text/*");
        (has_json, has_sse)
    }

    async fn validate_request_headers(
        &self,
        cx: &Cx,
        request: &Request,
        send: &dyn Send,
    ) -> PyResult<bool> {
        if let Some(sid) = &self.session_id {
            match request.header("mcp-session-id") {
                None | Some("") => {
                    self.error_response(
                        "Bad Request: Missing session ID",
                        400,
                        codes::INVALID_REQUEST,
                    )
                    .call(cx, send)
                    .await?;
                    return Ok(false);
                }
                Some(given) if given != sid => {
                    self.error_response(
                        "Not Found: Invalid or expired session ID",
                        404,
                        codes::INVALID_REQUEST,
                    )
                    .call(cx, send)
                    .await?;
                    return Ok(false);
                }
                Some(_) => {}
            }
        }
        // 2.3: "Protocol-version validation lives in the manager's
        // era-routing … so the legacy version-gate is gone."
        if !self.release.transport_validates_protocol_version() {
            return Ok(true);
        }
        let version = request
            .header("mcp-protocol-version")
            .unwrap_or(mcp::DEFAULT_NEGOTIATED_VERSION);
        if !mcp::SUPPORTED_PROTOCOL_VERSIONS.contains(&version) {
            self.error_response(
                &format!(
                    "Bad Request: Unsupported protocol version: {version}. Supported versions: {}",
                    mcp::SUPPORTED_PROTOCOL_VERSIONS.join(", ")
                ),
                400,
                codes::INVALID_REQUEST,
            )
            .call(cx, send)
            .await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// `async with transport.connect() as (read_stream, write_stream):` — sets
    /// up the session streams and the message router, runs `body`, then
    /// cleans up.
    pub async fn connect(
        self: &Rc<Self>,
        cx: &Cx,
        body: impl AsyncFnOnce(
            &Cx,
            Rc<MemoryRecv<ReadItem>>,
            Rc<MemorySend<SessionMessage>>,
        ) -> PyResult<()>,
    ) -> PyResult<()> {
        let (read_writer, read_stream) = memory_object_stream::<ReadItem>(0);
        let (write_stream, write_reader) = memory_object_stream::<SessionMessage>(0);
        let s = ConnectedStreams {
            read_writer: Rc::new(read_writer),
            read_stream: Rc::new(read_stream),
            write_stream: Rc::new(write_stream),
            write_reader: Rc::new(write_reader),
        };
        *self.read_stream_writer.borrow_mut() = Some(s.read_writer.clone());
        let (read_stream, write_stream, write_reader) = (
            s.read_stream.clone(),
            s.write_stream.clone(),
            s.write_reader.clone(),
        );
        *self.streams.borrow_mut() = Some(s);
        task_group(cx, async |cx, tg| {
            let me = self.clone();
            tg.start_soon("message_router", move |cx| async move {
                me.message_router(cx, write_reader).await
            });
            let r = body(cx, read_stream, write_stream).await;
            // finally:
            let keys = self.request_streams.borrow().keys();
            for key in keys {
                self.clean_up_memory_streams(&key);
            }
            self.request_streams.borrow_mut().clear();
            self.close_session_streams();
            r
        })
        .await
    }

    fn close_session_streams(&self) {
        if let Some(s) = self.streams.borrow().as_ref() {
            s.read_writer.close();
            s.read_stream.close();
            s.write_reader.close();
            s.write_stream.close();
        }
    }

    /// `terminate()`: 404 from now on, close every stream.
    pub fn terminate(&self) {
        self.terminated.set(true);
        tracing::info!(target: "mcp.server.streamable_http", "Terminating session: {}", self.session_id.as_deref().unwrap_or("None"));
        let keys = self.request_streams.borrow().keys();
        for key in keys {
            self.clean_up_memory_streams(&key);
        }
        self.request_streams.borrow_mut().clear();
        self.close_session_streams();
    }

    /// `_message_metadata(request, on_request_unanswered=...)` (2.3): what
    /// every incoming message is framed with; `None` in 1.20, whose
    /// `ServerMessageMetadata(request_context=request)` the model needs
    /// nothing of.
    fn inbound_meta(
        self: &Rc<Self>,
        request_id: Option<&serde_json::Value>,
    ) -> Option<Rc<InboundMeta>> {
        if !self.release.terminates_unanswered_requests() {
            return None;
        }
        let on_request_unanswered = request_id.map(|id| {
            let me = Rc::downgrade(self);
            let id = id.clone();
            Rc::new(move |cx: Cx| {
                let (me, id) = (me.clone(), id.clone());
                Box::pin(async move {
                    match me.upgrade() {
                        Some(t) => t.terminate_unanswered_request(&cx, id).await,
                        None => Err(Exc::ClosedResource),
                    }
                }) as LocalBoxFuture<'static, PyResult<()>>
            }) as Unanswered
        });
        Some(Rc::new(InboundMeta {
            can_send_request: !self.json_response,
            on_request_unanswered,
        }))
    }

    /// `_terminate_unanswered_request(request_id)` (2.3): "this era answers a
    /// cancelled request with `REQUEST_CANCELLED` … written through the same
    /// ordered channel as the request's other messages".
    async fn terminate_unanswered_request(
        &self,
        cx: &Cx,
        request_id: serde_json::Value,
    ) -> PyResult<()> {
        let write_stream = self
            .streams
            .borrow()
            .as_ref()
            .map(|s| s.write_stream.clone())
            .ok_or(Exc::ClosedResource)?;
        write_stream
            .send(
                cx,
                SessionMessage::new(Message::error(
                    request_id,
                    REQUEST_CANCELLED,
                    "Request cancelled",
                )),
            )
            .await
    }

    async fn message_router(
        self: Rc<Self>,
        cx: Cx,
        reader: Rc<MemoryRecv<SessionMessage>>,
    ) -> PyResult<()> {
        let r: PyResult<()> = async {
            while let Some(sm) = reader.next(&cx).await? {
                // `async for session_message in write_stream_reader:` — its
                // target, `store_event(...)`, the send to its stream.
                event_loop::charge(Step::RouteMessage).await;
                let target = if sm.message.is_response() {
                    // 1.20: str(message.root.id); 2.3: "Null-id errors (e.g.,
                    // parse errors) fall through to the GET stream".
                    sm.message
                        .id()
                        .filter(|id| !(id.is_null() && self.release == Release::V2_3))
                        .map(id_key)
                } else if let Some(related) = &sm.related_request_id {
                    if self.json_response && self.release.json_mode_drops_related_messages() {
                        // 2.3: "A JSON body carries only the response: this
                        // message has no wire form (nor a replay), so drop it".
                        tracing::debug!(target: "mcp.server.streamable_http", "Dropped message related to request {related} in JSON mode");
                        continue;
                    }
                    Some(related.clone())
                } else {
                    None
                };
                let stream_id = target.unwrap_or_else(|| GET_STREAM_KEY.to_string());
                // Store first, whether or not a client is connected: a client
                // may reconnect and replay.
                let event_id = self.event_store.as_ref().map(|store| {
                    let id = store.store_event(&stream_id, Some(&sm.message));
                    tracing::debug!(target: "mcp.server.streamable_http", "Stored {id} from {stream_id}");
                    id
                });
                let entry = self.request_streams.borrow().get(&stream_id);
                match entry {
                    Some((tx, _)) => {
                        let ev = EventMessage {
                            message: sm.message,
                            event_id,
                        };
                        match tx.send(&cx, ev).await {
                            Ok(()) => {}
                            Err(Exc::BrokenResource | Exc::ClosedResource) => {
                                self.request_streams.borrow_mut().pop(&stream_id);
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    // 1.20 logs through the root logger (`logging.debug`), 2.3
                    // through the module's (`logger.debug`).
                    None if self.release == Release::V1_20 => {
                        tracing::debug!(
                            target: "root",
                            "Request stream {stream_id} not found for message. Still processing message as the client might reconnect and replay."
                        );
                    }
                    None => {
                        tracing::debug!(
                            target: "mcp.server.streamable_http",
                            "Request stream {stream_id} not found for message. Still processing message as the client might reconnect and replay."
                        );
                    }
                }
            }
            Ok(())
        }
        .await;
        match r {
            // 2.3: `except anyio.ClosedResourceError: if self._terminated:
            // logger.debug(...) else: logger.exception("Unexpected closure of
            // read stream in message router")`.
            Err(Exc::ClosedResource) if self.release.router_quiet_when_terminated() => {
                if self.terminated.get() {
                    tracing::debug!(target: "mcp.server.streamable_http", "Read stream closed by client");
                } else {
                    tracing::error!(target: "mcp.server.streamable_http", "Unexpected closure of read stream in message router\n{}", Exc::ClosedResource);
                }
                Ok(())
            }
            // 1.20 (and 2.3 for anything else): `except Exception:
            // logger.exception("Error in message router")`.
            Err(e) if e.is_exception() => {
                tracing::error!(target: "mcp.server.streamable_http", "Error in message router\n{e}");
                Ok(())
            }
            other => other,
        }
    }
}
