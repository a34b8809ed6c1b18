//! mcp 1.20.0 `StreamableHTTPServerTransport` (`mcp/server/streamable_http.py`):
//! the POST path, with SSE and JSON responses, and the per-session message
//! router.
//!
//! The SSE path, as released: register a buffer-0 request stream under
//! `str(request_id)`; build an `EventSourceResponse` whose data sender is
//! `sse_writer` (forward request-stream messages as SSE events, stop after the
//! response, and in `finally:` log "Closing SSE writer" and drop the request
//! stream); then, inside an outer task group, start the response and hand the
//! request to the session with `await writer.send(...)`. The router delivers
//! the session's response to the request stream; when the stream is gone it
//! logs "Request stream … not found … might reconnect and replay" and drops
//! the message.
//!
//! GET (standalone stream, replay) and DELETE belong to a later issue: no
//! mcpsim client sends them yet, and the model answers them with uvicorn's
//! 500 so a scenario that tried would fail loudly rather than silently.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde_json::{Value, json};

use super::anyio::{Cx, Exc, MemoryRecv, MemorySend, PyResult, memory_object_stream, task_group};
use super::pydict::PyDict;
use super::sse_starlette::{AppStatus, EventSourceResponse, ServerSentEvent};
use super::starlette::{Request, Response};
use super::variant::Variant;
use crate::asgi::{Receive, Scope, Send};
use crate::mcp::{self, Message, codes, id_key};

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
    /// `StreamableHTTPServerTransport(mcp_session_id, is_json_response_enabled, ...)`.
    pub fn new(
        session_id: Option<String>,
        json_response: bool,
        variant: Variant,
        app_status: Rc<AppStatus>,
    ) -> Rc<Self> {
        Rc::new(Self {
            session_id,
            json_response,
            variant,
            app_status,
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
        // TransportSecurityMiddleware with no settings: only the POST
        // Content-Type check.
        if request.method() == "POST"
            && !request
                .header("content-type")
                .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/json"))
        {
            match request.header("content-type") {
                None | Some("") => {
                    tracing::warn!(target: "mcp.server.transport_security", "Missing Content-Type header in POST request")
                }
                Some(ct) => {
                    tracing::warn!(target: "mcp.server.transport_security", "Invalid Content-Type header: {ct}")
                }
            }
            return Response::new("Invalid Content-Type header", 400, vec![], None)
                .call(cx, &*send)
                .await;
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
            other => Err(Exc::Other {
                class: "NotModelled",
                msg: format!("{other} is not modelled yet (POST only)"),
            }),
        }
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

    async fn handle_post_request(
        self: &Rc<Self>,
        cx: &Cx,
        request: &Request,
        receive: Rc<dyn Receive>,
        send: Rc<dyn Send>,
    ) -> PyResult<()> {
        let writer = self
            .read_stream_writer
            .borrow()
            .clone()
            .ok_or_else(|| Exc::Other {
                class: "ValueError",
                msg: "No read stream writer available. Ensure connect() is called first.".into(),
            })?;
        let result = self
            .post_body(cx, request, receive, send.clone(), &writer)
            .await;
        match result {
            Err(err) if err.is_exception() => {
                tracing::error!(target: "mcp.server.streamable_http", "Error handling POST request\n{err}");
                self.error_response(
                    &format!("Error handling POST request: {}", err.py_str()),
                    500,
                    codes::INTERNAL_ERROR,
                )
                .call(cx, &*send)
                .await?;
                writer.send(cx, ReadItem::Exception(err)).await
            }
            other => other,
        }
    }

    /// The `try:` body of `_handle_post_request`.
    async fn post_body(
        self: &Rc<Self>,
        cx: &Cx,
        request: &Request,
        receive: Rc<dyn Receive>,
        send: Rc<dyn Send>,
        writer: &Rc<MemorySend<ReadItem>>,
    ) -> PyResult<()> {
        if !self.validate_accept_header(cx, request, &*send).await? {
            return Ok(());
        }
        let content_type = request.header("content-type").unwrap_or("");
        let ct_ok = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .split(',')
            .any(|p| p.trim() == "application/json");
        if !ct_ok {
            return self
                .error_response(
                    "Unsupported Media Type: Content-Type must be application/json",
                    415,
                    codes::INVALID_REQUEST,
                )
                .call(cx, &*send)
                .await;
        }
        let body = request.body(cx).await?;
        let raw: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return self
                    .error_response(&format!("Parse error: {e}"), 400, codes::PARSE_ERROR)
                    .call(cx, &*send)
                    .await;
            }
        };
        let message = match Message::parse(&raw) {
            Ok(m) => m,
            Err(e) => {
                return self
                    .error_response(
                        &format!("Validation error: {e}"),
                        400,
                        codes::INVALID_PARAMS,
                    )
                    .call(cx, &*send)
                    .await;
            }
        };
        let is_init = matches!(&message, Message::Request { method, .. } if method == "initialize");
        if is_init {
            if let Some(sid) = &self.session_id
                && let Some(given) = request.header("mcp-session-id")
                && !given.is_empty()
                && given != sid
            {
                return self
                    .error_response(
                        "Not Found: Invalid or expired session ID",
                        404,
                        codes::INVALID_REQUEST,
                    )
                    .call(cx, &*send)
                    .await;
            }
        } else if !self.validate_request_headers(cx, request, &*send).await? {
            return Ok(());
        }

        let Message::Request { id, .. } = &message else {
            // Notifications and responses: 202 first, then hand over.
            self.json_response(None, 202).call(cx, &*send).await?;
            return writer
                .send(
                    cx,
                    ReadItem::Message(SessionMessage {
                        message,
                        related_request_id: None,
                    }),
                )
                .await;
        };

        let request_id = id_key(id);
        let (tx, rx) = memory_object_stream::<EventMessage>(0);
        let (tx, rx) = (Rc::new(tx), Rc::new(rx));
        self.request_streams
            .borrow_mut()
            .insert(request_id.clone(), (tx, rx.clone()));
        let request_stream_reader = rx;
        let session_message = SessionMessage {
            message,
            related_request_id: None,
        };

        if self.json_response {
            return self
                .post_json(
                    cx,
                    request_id,
                    request_stream_reader,
                    session_message,
                    send,
                    writer,
                )
                .await;
        }

        let (sse_tx, sse_rx) = memory_object_stream::<ServerSentEvent>(0);
        let (sse_tx, sse_rx) = (Rc::new(sse_tx), Rc::new(sse_rx));
        let data_sender = {
            let me = self.clone();
            let (sse_tx, reader, rid) = (
                sse_tx.clone(),
                request_stream_reader.clone(),
                request_id.clone(),
            );
            Box::new(move |cx: Cx| {
                Box::pin(async move { me.sse_writer(cx, sse_tx, reader, rid).await })
                    as crate::asgi::LocalBoxFuture<'static, PyResult<()>>
            }) as super::sse_starlette::DataSender
        };
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
        let response = EventSourceResponse::new(
            sse_rx.clone(),
            headers,
            Some(data_sender),
            self.app_status.clone(),
            self.variant.final_body_guard(),
        );
        let outer = task_group(cx, async |cx, tg| {
            let (receive, send) = (receive.clone(), send.clone());
            tg.start_soon("EventSourceResponse", move |cx| async move {
                response.call(&cx, receive, send).await
            });
            writer.send(cx, ReadItem::Message(session_message)).await
        })
        .await;
        match outer {
            Err(e) if e.is_exception() => {
                tracing::error!(target: "mcp.server.streamable_http", "SSE response error\n{e}");
                sse_tx.close();
                sse_rx.close();
                self.clean_up_memory_streams(&request_id);
                Ok(())
            }
            other => other,
        }
    }

    async fn post_json(
        self: &Rc<Self>,
        cx: &Cx,
        request_id: String,
        reader: Rc<MemoryRecv<EventMessage>>,
        session_message: SessionMessage,
        send: Rc<dyn Send>,
        writer: &Rc<MemorySend<ReadItem>>,
    ) -> PyResult<()> {
        writer.send(cx, ReadItem::Message(session_message)).await?;
        let body: PyResult<()> = async {
            let mut response = None;
            while let Some(ev) = reader.next(cx).await? {
                if ev.message.is_response() {
                    response = Some(ev.message);
                    break;
                }
            }
            match response {
                Some(m) => self.json_response(Some(&m), 200).call(cx, &*send).await,
                None => {
                    tracing::error!(target: "mcp.server.streamable_http", "No response message received before stream closed");
                    self.error_response(
                        "Error processing request: No response received",
                        500,
                        codes::INVALID_REQUEST,
                    )
                    .call(cx, &*send)
                    .await
                }
            }
        }
        .await;
        let body = match body {
            Err(e) if e.is_exception() => {
                tracing::error!(target: "mcp.server.streamable_http", "Error processing JSON response\n{e}");
                self.error_response("Error processing request", 500, codes::INTERNAL_ERROR)
                    .call(cx, &*send)
                    .await
            }
            other => other,
        };
        self.clean_up_memory_streams(&request_id);
        body
    }

    /// `sse_writer()` — the data sender of the POST's SSE response.
    async fn sse_writer(
        self: Rc<Self>,
        cx: Cx,
        sse_tx: Rc<MemorySend<ServerSentEvent>>,
        reader: Rc<MemoryRecv<EventMessage>>,
        request_id: String,
    ) -> PyResult<()> {
        let body_sent = Cell::new(false);
        let body: PyResult<()> = async {
            // async with sse_stream_writer, request_stream_reader:
            let inner: PyResult<()> = async {
                while let Some(ev) = reader.next(&cx).await? {
                    sse_tx.send(&cx, sse_event(&ev)).await?;
                    body_sent.set(true);
                    if ev.message.is_response() {
                        break;
                    }
                }
                Ok(())
            }
            .await;
            sse_tx.close();
            reader.close();
            inner
        }
        .await;
        let body = match body {
            Err(e) if e.is_exception() => {
                tracing::error!(target: "mcp.server.streamable_http", "Error in SSE writer\n{e}");
                Ok(())
            }
            other => other,
        };
        // finally:
        let fin: PyResult<()> = async {
            if self.variant.sse_writer_close_event() && !body_sent.get() {
                sse_tx
                    .send(
                        &cx,
                        ServerSentEvent {
                            event: Some("close".into()),
                            data: Some(String::new()),
                            ..Default::default()
                        },
                    )
                    .await?;
            }
            tracing::debug!(target: "mcp.server.streamable_http", "Closing SSE writer");
            self.clean_up_memory_streams(&request_id);
            Ok(())
        }
        .await;
        // An exception raised in `finally:` replaces the one in flight.
        fin?;
        body
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
        tracing::info!(target: "mcp.server.streamable_http", "Terminating session: {:?}", self.session_id);
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
                let entry = self.request_streams.borrow().get(&stream_id);
                match entry {
                    Some((tx, _)) => {
                        let ev = EventMessage {
                            message: sm.message,
                            event_id: None,
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
