//! The POST path of `StreamableHTTPServerTransport._handle_post_request`: an
//! SSE response (`sse_writer` feeding an `EventSourceResponse`, inside an outer
//! task group that hands the request to the session) or a JSON response.

use std::cell::Cell;
use std::rc::Rc;

use serde_json::Value;

use super::super::anyio::{
    Cx, Exc, MemoryRecv, MemorySend, PyResult, memory_object_stream, task_group,
};
use super::super::sse_starlette::ServerSentEvent;
use super::super::starlette::Request;
use super::{EventMessage, ReadItem, SessionMessage, Transport, sse_event};
use crate::asgi::{Receive, Send};
use crate::mcp::{Message, codes, id_key};

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
}
