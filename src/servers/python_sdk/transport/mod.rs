//! mcp 1.20.0 `StreamableHTTPServerTransport` (`mcp/server/streamable_http.py`).
//!
//! * POST ([`post`]): a request gets a buffer-0 request stream filed under
//!   `str(request_id)` and an SSE (or JSON) response fed from it; notifications
//!   and responses get 202 and go to the session.
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
//! Request validation follows the transport's own checks and the
//! `TransportSecurityMiddleware` ([`security`]).

mod get;
mod post;
pub mod security;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde_json::json;

use super::anyio::{Cx, Exc, MemoryRecv, MemorySend, PyResult, memory_object_stream, task_group};
use super::event_store::InMemoryEventStore;
use super::pydict::PyDict;
use super::sse_starlette::{AppStatus, ServerSentEvent};
use super::starlette::{Request, Response};
use super::variant::Variant;
use crate::asgi::{Receive, Scope, Send};
use crate::mcp::{self, Message, codes, id_key};
use security::SecuritySettings;

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
#[derive(Debug, Clone)]
pub struct SessionMessage {
    /// The JSON-RPC message.
    pub message: Message,
    /// `ServerMessageMetadata.related_request_id`.
    pub related_request_id: Option<String>,
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
    variant: Variant,
    app_status: Rc<AppStatus>,
    event_store: Option<Rc<InMemoryEventStore>>,
    security: Option<SecuritySettings>,
    request_streams: RefCell<PyDict<RequestStream>>,
    terminated: Cell<bool>,
    read_stream_writer: RefCell<Option<Rc<MemorySend<ReadItem>>>>,
    streams: RefCell<Option<ConnectedStreams>>,
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
            self.variant.final_body_guard(),
        )
    }

    /// `StreamableHTTPServerTransport(mcp_session_id, is_json_response_enabled,
    /// event_store, security_settings)`.
    pub fn new(
        session_id: Option<String>,
        json_response: bool,
        variant: Variant,
        app_status: Rc<AppStatus>,
        event_store: Option<Rc<InMemoryEventStore>>,
        security: Option<SecuritySettings>,
    ) -> Rc<Self> {
        Rc::new(Self {
            session_id,
            json_response,
            variant,
            app_status,
            event_store,
            security,
            request_streams: RefCell::new(PyDict::default()),
            terminated: Cell::new(false),
            read_stream_writer: RefCell::new(None),
            streams: RefCell::new(None),
        })
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
        let body = json!({"jsonrpc": "2.0", "id": "server-error", "error": {"code": code, "message": message}});
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

    /// `handle_request(scope, receive, send)`.
    pub async fn handle_request(
        self: &Rc<Self>,
        cx: &Cx,
        scope: Scope,
        receive: Rc<dyn Receive>,
        send: Rc<dyn Send>,
    ) -> PyResult<()> {
        let request = Request::new(scope, receive.clone());
        let is_post = request.method() == "POST";
        if let Some(response) =
            security::validate_request(self.security.as_ref(), &request, is_post)
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
        self.terminate();
        self.json_response(None, 200).call(cx, &*send).await
    }

    async fn validate_accept_header(
        &self,
        cx: &Cx,
        request: &Request,
        send: &dyn Send,
    ) -> PyResult<bool> {
        let accept = request.header("accept").unwrap_or("");
        let types: Vec<&str> = accept.split(',').map(str::trim).collect();
        let has_json = types.iter().any(|t| t.starts_with("application/json"));
        let has_sse = types.iter().any(|t| t.starts_with("text/event-stream"));
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

    async fn message_router(
        self: Rc<Self>,
        cx: Cx,
        reader: Rc<MemoryRecv<SessionMessage>>,
    ) -> PyResult<()> {
        let r: PyResult<()> = async {
            while let Some(sm) = reader.next(&cx).await? {
                let target = if sm.message.is_response() {
                    sm.message.id().map(id_key)
                } else {
                    sm.related_request_id.clone()
                };
                let stream_id = target.unwrap_or_else(|| GET_STREAM_KEY.to_string());
                // Store first, whether or not a client is connected: a client
                // may reconnect and replay.
                let event_id = self.event_store.as_ref().map(|store| {
                    let id = store.store_event(&stream_id, &sm.message);
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
                    None => {
                        tracing::debug!(
                            target: "root",
                            "Request stream {stream_id} not found for message. Still processing message as the client might reconnect and replay."
                        );
                    }
                }
            }
            Ok(())
        }
        .await;
        match r {
            Err(e) if e.is_exception() => {
                tracing::error!(target: "mcp.server.streamable_http", "Error in message router\n{e}");
                Ok(())
            }
            other => other,
        }
    }
}
