//! The POST path of `StreamableHTTPServerTransport._handle_post_request`: an
//! SSE response (the SSE writer — 1.20's `sse_writer`, 2.3's
//! `_run_sse_writer` — feeding an `EventSourceResponse`, inside an outer task
//! group that hands the request to the session) or a JSON response.

use std::cell::Cell;
use std::rc::Rc;

use serde_json::Value;

use super::super::anyio::{
    Cx, Exc, MemoryRecv, MemorySend, PyResult, memory_object_stream, task_group,
};
use super::super::cost::Step;
use super::super::event_loop;
use super::super::release::Release;
use super::super::sse_starlette::ServerSentEvent;
use super::super::starlette::Request;
use super::{EventMessage, ReadItem, SessionMessage, Transport, sse_event};
use crate::asgi::{Receive, Send};
use crate::mcp::{self, Message, codes, id_key};

impl Transport {
    pub(super) async fn handle_post_request(
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
                // 1.20: f"Error handling POST request: {err}"; 2.3 leaves the
                // exception out of the body.
                let message = if self.release.post_error_names_the_exception() {
                    format!("Error handling POST request: {}", err.py_str())
                } else {
                    "Error handling POST request".to_string()
                };
                self.error_response(&message, 500, codes::INTERNAL_ERROR)
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
        // `json.loads(body)`, `JSONRPCMessage.model_validate(raw_message)`,
        // the session and protocol-version header checks below.
        event_loop::charge(Step::ParseMessage).await;
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

        let Message::Request { id, params, .. } = &message else {
            // Notifications and responses: 202 first, then hand over.
            self.json_response(None, 202).call(cx, &*send).await?;
            let inbound = self.inbound_meta(None);
            return writer
                .send(
                    cx,
                    ReadItem::Message(SessionMessage {
                        message,
                        related_request_id: None,
                        inbound,
                    }),
                )
                .await;
        };

        // 2.3: "Extract protocol version for priming event decision. For
        // initialize requests, get from request params. For other requests,
        // get from header".
        let protocol_version = if is_init && params.is_some() {
            params
                .as_ref()
                .and_then(|p| p.get("protocolVersion"))
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .unwrap_or_else(|| mcp::DEFAULT_NEGOTIATED_VERSION.to_string())
        } else {
            request
                .header("mcp-protocol-version")
                .unwrap_or(mcp::DEFAULT_NEGOTIATED_VERSION)
                .to_string()
        };
        let request_id = id_key(id);
        let inbound = self.inbound_meta(Some(id));
        // "Mint the priming event before any per-request state exists" (2.3;
        // never in 1.20, nor in JSON mode).
        let priming = if self.json_response {
            None
        } else {
            self.mint_priming_event(&request_id, &protocol_version)
        };
        let (tx, rx) = self.request_stream();
        let (tx, rx) = (Rc::new(tx), Rc::new(rx));
        self.request_streams
            .borrow_mut()
            .insert(request_id.clone(), (tx, rx.clone()));
        let request_stream_reader = rx;
        let session_message = SessionMessage {
            message,
            related_request_id: None,
            inbound,
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

        // The request stream, `EventSourceResponse(...)`, `async with
        // anyio.create_task_group() as tg: tg.start_soon(response, ...)`.
        event_loop::charge(Step::OpenStream).await;
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
                Box::pin(async move { me.sse_writer(cx, sse_tx, reader, rid, priming).await })
                    as crate::asgi::LocalBoxFuture<'static, PyResult<()>>
            }) as super::super::sse_starlette::DataSender
        };
        let response = self.event_source(sse_rx.clone(), data_sender);
        let outer = task_group(cx, async |cx, tg| {
            let (receive, send) = (receive.clone(), send.clone());
            tg.start_soon("EventSourceResponse", move |cx| async move {
                response.call(&cx, receive, send).await
            });
            writer.send(cx, ReadItem::Message(session_message)).await
        })
        .await;
        let r = match outer {
            Err(e) if e.is_exception() => {
                tracing::error!(target: "mcp.server.streamable_http", "SSE response error\n{e}");
                sse_tx.close();
                // 1.20 closes the reader here only; 2.3 in `finally:`.
                sse_rx.close();
                self.clean_up_memory_streams(&request_id);
                Ok(())
            }
            other => other,
        };
        if self.release == Release::V2_3 {
            // finally: await sse_stream_reader.aclose()
            sse_rx.close();
        }
        r
    }

    /// `_mint_priming_event(stream_id, protocol_version)` (2.3): "Store the
    /// priming cursor for `stream_id` and return its SSE wire form" — only
    /// with an event store and a client at 2025-11-25 or later ("older
    /// clients cannot parse the empty-data event"); no `retry:` unless the
    /// application set `retry_interval` (it sets none).
    pub(super) fn mint_priming_event(
        &self,
        stream_id: &str,
        protocol_version: &str,
    ) -> Option<ServerSentEvent> {
        if !self.release.primes_streams() {
            return None;
        }
        let store = self.event_store.as_ref()?;
        if !mcp::is_version_at_least(protocol_version, "2025-11-25") {
            return None;
        }
        let id = store.store_event(stream_id, None);
        Some(ServerSentEvent {
            id: Some(id),
            data: Some(String::new()),
            ..Default::default()
        })
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
        if self.release.json_mode_drops_related_messages() {
            // 2.3: "`message_router` deposits only this request's own
            // response here".
            let response = match reader.receive(cx).await {
                Ok(ev) => {
                    // `self._create_json_response(event_message.message)`
                    event_loop::charge(Step::EncodeEvent).await;
                    self.json_response(Some(&ev.message), 200)
                }
                Err(Exc::EndOfStream | Exc::ClosedResource) => {
                    tracing::debug!(target: "mcp.server.streamable_http", "Session terminated with request {request_id} in flight; no response to send");
                    self.error_response(
                        "Session terminated before the request completed",
                        500,
                        codes::INTERNAL_ERROR,
                    )
                }
                Err(e) => {
                    self.clean_up_memory_streams(&request_id);
                    return Err(e);
                }
            };
            // finally: await self._clean_up_memory_streams(request_id)
            self.clean_up_memory_streams(&request_id);
            return response.call(cx, &*send).await;
        }
        let body: PyResult<()> = async {
            let mut response = None;
            while let Some(ev) = reader.next(cx).await? {
                if ev.message.is_response() {
                    response = Some(ev.message);
                    break;
                }
            }
            match response {
                Some(m) => {
                    // `self._create_json_response(event_message.message)`
                    event_loop::charge(Step::EncodeEvent).await;
                    self.json_response(Some(&m), 200).call(cx, &*send).await
                }
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

    /// The data sender of the POST's SSE response: 1.20's `sse_writer()`,
    /// 2.3's `_run_sse_writer(request_id, sse_stream_writer,
    /// request_stream_reader, priming_event)`.
    async fn sse_writer(
        self: Rc<Self>,
        cx: Cx,
        sse_tx: Rc<MemorySend<ServerSentEvent>>,
        reader: Rc<MemoryRecv<EventMessage>>,
        request_id: String,
        priming: Option<ServerSentEvent>,
    ) -> PyResult<()> {
        let body_sent = Cell::new(false);
        let body: PyResult<()> = async {
            // async with sse_stream_writer, request_stream_reader:
            let inner: PyResult<()> = async {
                // 2.3: if priming_event is not None: await sse_stream_writer.send(priming_event)
                if let Some(p) = priming {
                    sse_tx.send(&cx, p).await?;
                    body_sent.set(true);
                }
                while let Some(ev) = reader.next(&cx).await? {
                    // `event_data = self._create_event_data(event_message)`:
                    // `message.model_dump_json(by_alias=True, exclude_none=True)`.
                    event_loop::charge(Step::EncodeEvent).await;
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
            // 2.3: `except anyio.ClosedResourceError: logger.debug("SSE stream
            // closed by close_sse_stream()")`.
            Err(Exc::ClosedResource) if self.release.sse_writers_quiet_on_closed() => {
                tracing::debug!(target: "mcp.server.streamable_http", "SSE stream closed by close_sse_stream()");
                Ok(())
            }
            Err(e) if e.is_exception() => {
                tracing::error!(target: "mcp.server.streamable_http", "Error in SSE writer\n{e}");
                Ok(())
            }
            other => other,
        };
        // finally:
        let fin: PyResult<()> = async {
            if self.model.variant.sse_writer_close_event() && !body_sent.get() {
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
            // 2.3 also pops `_sse_stream_writers[request_id]` (close_sse_stream's
            // registry, which nothing in the model reads).
            self.clean_up_memory_streams(&request_id);
            Ok(())
        }
        .await;
        // An exception raised in `finally:` replaces the one in flight.
        fin?;
        body
    }
}
