//! GET: the standalone SSE stream, and replay with `Last-Event-ID`
//! (`_handle_get_request`, `_replay_events`).
//!
//! In both releases: the 409 check looks at the request streams, but the GET
//! stream registers itself only when its data sender starts, so two GETs in
//! one instant can both pass; its `finally` drops whatever is registered under
//! the key, even a newer stream's. Without an event store, a GET with
//! `Last-Event-ID` returns without starting a response (uvicorn then answers
//! 500). A replay stream registers the replayed stream's key if it is free and
//! forwards its live messages, without ever ending.
//!
//! 1.20 never removes that key when the replay stream closes. 2.3 primes the
//! resumed stream, gives its live tail a buffer of 16, removes the key in a
//! `finally:`, and treats a stream closed under a writer as a normal end.

use std::rc::Rc;

use super::super::anyio::{Cx, Exc, PyResult, memory_object_stream};
use super::super::cost::Step;
use super::super::event_loop;
use super::super::release::Release;
use super::super::sse_starlette::ServerSentEvent;
use super::super::starlette::Request;
use super::{EventMessage, GET_STREAM_KEY, Transport, sse_event};
use crate::asgi::{LocalBoxFuture, Send};
use crate::mcp::codes;

impl Transport {
    pub(super) async fn handle_get_request(
        self: &Rc<Self>,
        cx: &Cx,
        request: &Request,
        send: Rc<dyn Send>,
    ) -> PyResult<()> {
        let (_, has_sse) = self.check_accept_headers(request);
        if !has_sse {
            return self
                .error_response(
                    "Not Acceptable: Client must accept text/event-stream",
                    406,
                    codes::INVALID_REQUEST,
                )
                .call(cx, &*send)
                .await;
        }
        if !self.validate_request_headers(cx, request, &*send).await? {
            return Ok(());
        }
        if let Some(last) = request.header("last-event-id").filter(|s| !s.is_empty()) {
            return self
                .replay_events(cx, last.to_string(), request, send)
                .await;
        }
        if self.request_streams.borrow().contains(GET_STREAM_KEY) {
            return self
                .error_response(
                    "Conflict: Only one SSE stream is allowed per session",
                    409,
                    codes::INVALID_REQUEST,
                )
                .call(cx, &*send)
                .await;
        }
        // The standalone stream's `EventSourceResponse(...)` and its tasks.
        event_loop::charge(Step::OpenStream).await;
        let (sse_tx, sse_rx) = memory_object_stream::<ServerSentEvent>(0);
        let (sse_tx, sse_rx) = (Rc::new(sse_tx), Rc::new(sse_rx));
        let data_sender = {
            let me = self.clone();
            let sse_tx = sse_tx.clone();
            Box::new(move |cx: Cx| {
                Box::pin(async move { me.standalone_sse_writer(cx, sse_tx).await })
                    as LocalBoxFuture<'static, PyResult<()>>
            }) as super::super::sse_starlette::DataSender
        };
        let response = self.event_source(sse_rx.clone(), data_sender);
        let r = match response.call(cx, request.receive(), send).await {
            Err(e) if e.is_exception() => {
                tracing::error!(target: "mcp.server.streamable_http", "Error in standalone SSE response\n{e}");
                sse_tx.close();
                sse_rx.close();
                self.clean_up_memory_streams(GET_STREAM_KEY);
                Ok(())
            }
            other => other,
        };
        if self.release == Release::V2_3 {
            // finally: close both ends (1.20 does it in the except only).
            sse_tx.close();
            sse_rx.close();
        }
        r
    }

    async fn standalone_sse_writer(
        self: Rc<Self>,
        cx: Cx,
        sse_tx: Rc<super::super::anyio::MemorySend<ServerSentEvent>>,
    ) -> PyResult<()> {
        let body: PyResult<()> = async {
            // async with sse_stream_writer, standalone_stream_reader:
            let inner = self.forward(&cx, GET_STREAM_KEY, &sse_tx).await;
            sse_tx.close();
            inner
        }
        .await;
        let body = match body {
            // 2.3: `except anyio.ClosedResourceError: pass` — "Session teardown
            // can close the stream while the writer is between dequeues".
            Err(Exc::ClosedResource) if self.release.sse_writers_quiet_on_closed() => Ok(()),
            Err(e) if e.is_exception() => {
                tracing::error!(target: "mcp.server.streamable_http", "Error in standalone SSE writer\n{e}");
                Ok(())
            }
            other => other,
        };
        tracing::debug!(target: "mcp.server.streamable_http", "Closing standalone SSE writer");
        self.clean_up_memory_streams(GET_STREAM_KEY);
        body
    }

    async fn replay_events(
        self: &Rc<Self>,
        cx: &Cx,
        last_event_id: String,
        request: &Request,
        send: Rc<dyn Send>,
    ) -> PyResult<()> {
        let Some(store) = self.event_store.clone() else {
            return Ok(());
        };
        // 2.3: "The manager only routes supported (or absent) header values to
        // this transport".
        let protocol_version = request
            .header("mcp-protocol-version")
            .unwrap_or(crate::mcp::DEFAULT_NEGOTIATED_VERSION)
            .to_string();
        // The replay's `EventSourceResponse(...)` and its tasks.
        event_loop::charge(Step::OpenStream).await;
        let (sse_tx, sse_rx) = memory_object_stream::<ServerSentEvent>(0);
        let (sse_tx, sse_rx) = (Rc::new(sse_tx), Rc::new(sse_rx));
        let data_sender = {
            let me = self.clone();
            let sse_tx = sse_tx.clone();
            Box::new(move |cx: Cx| {
                Box::pin(async move {
                    let r: PyResult<()> = async {
                        // async with sse_stream_writer:
                        let inner: PyResult<()> = async {
                            let Some((stream_id, events, changes)) =
                                store.events_after(&last_event_id)
                            else {
                                return Ok(());
                            };
                            for ev in &events {
                                // `await send_callback(EventMessage(...))` →
                                // `_create_event_data(...)`.
                                event_loop::charge(Step::EncodeEvent).await;
                                sse_tx.send(&cx, sse_event(ev)).await?;
                                // The deque's iterator, resumed after the
                                // await, fails if the router stored meanwhile.
                                if store.changed_since(&stream_id, changes) {
                                    return Err(Exc::Runtime(
                                        "deque mutated during iteration".into(),
                                    ));
                                }
                            }
                            if !me.request_streams.borrow().contains(&stream_id) {
                                if me.release.replay_cleans_up() {
                                    // 2.3: try: prime the resumed connection,
                                    // forward; finally: clean up the stream.
                                    let fwd: PyResult<()> = async {
                                        if let Some(p) =
                                            me.mint_priming_event(&stream_id, &protocol_version)
                                        {
                                            sse_tx.send(&cx, p).await?;
                                        }
                                        me.forward(&cx, &stream_id, &sse_tx).await
                                    }
                                    .await;
                                    me.clean_up_memory_streams(&stream_id);
                                    fwd?;
                                } else {
                                    me.forward(&cx, &stream_id, &sse_tx).await?;
                                }
                            }
                            Ok(())
                        }
                        .await;
                        sse_tx.close();
                        inner
                    }
                    .await;
                    match r {
                        // 2.3: "Expected when close_sse_stream() is called".
                        Err(Exc::ClosedResource) if me.release.sse_writers_quiet_on_closed() => {
                            tracing::debug!(target: "mcp.server.streamable_http", "Replay SSE stream closed by close_sse_stream()");
                            Ok(())
                        }
                        Err(e) if e.is_exception() => {
                            tracing::error!(target: "mcp.server.streamable_http", "Error in replay sender\n{e}");
                            Ok(())
                        }
                        other => other,
                    }
                }) as LocalBoxFuture<'static, PyResult<()>>
            }) as super::super::sse_starlette::DataSender
        };
        let response = self.event_source(sse_rx.clone(), data_sender);
        let r = match response.call(cx, request.receive(), send).await {
            Err(e) if e.is_exception() => {
                tracing::error!(target: "mcp.server.streamable_http", "Error in replay response\n{e}");
                Ok(())
            }
            other => other,
        };
        // finally:
        sse_tx.close();
        sse_rx.close();
        r
    }
}

impl Transport {
    /// File a new request stream under `key` and forward its messages to
    /// the SSE response as they come (`self._request_streams[key] =
    /// create_memory_object_stream(...)`; `async with reader: async for
    /// event_message in reader: await sse_stream_writer.send(...)`), as the
    /// standalone writer and a replay's live tail do.
    async fn forward(
        &self,
        cx: &Cx,
        key: &str,
        sse_tx: &super::super::anyio::MemorySend<ServerSentEvent>,
    ) -> PyResult<()> {
        let (tx, rx) = self.request_stream();
        let rx = Rc::new(rx);
        self.request_streams
            .borrow_mut()
            .insert(key.to_string(), (Rc::new(tx), rx.clone()));
        let r = pump(cx, &rx, sse_tx).await;
        rx.close();
        r
    }
}

/// `async for event_message in reader: await sse_stream_writer.send(...)`:
/// forward a stream's messages to its SSE response as they come.
async fn pump(
    cx: &Cx,
    rx: &super::super::anyio::MemoryRecv<EventMessage>,
    sse_tx: &super::super::anyio::MemorySend<ServerSentEvent>,
) -> PyResult<()> {
    while let Some(ev) = rx.next(cx).await? {
        // `self._create_event_data(event_message)`.
        event_loop::charge(Step::EncodeEvent).await;
        sse_tx.send(cx, sse_event(&ev)).await?;
    }
    Ok(())
}
