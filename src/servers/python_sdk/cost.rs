//! What each step of the Python stack costs: the bounds the model's
//! [`super::event_loop`] draws a step's processing time from, one row per
//! step, one column per release.
//!
//! Each [`Step`] is charged in the modelled code beside the line of Python
//! it stands for (`event_loop::charge(Step::…)`); its doc here names that
//! Python. A cost is drawn uniformly within `[lo, hi]`; the first step of a
//! kind in a process also pays its `cold` cost (lazy imports, pydantic
//! building a validator the first time it is used).
//!
//! **How the bounds were calibrated** (FINDINGS §19, with the figures):
//! `python3 interop/calibrate.py --release R` drives the real stack of each
//! release (mcp 1.20.0 / 2.3.0 on uvicorn, asyncio, h11, Python 3.11, this
//! repo's tracking middleware) over loopback, one request at a time and one
//! connection per request as mcpsim's client does, and stamps each request
//! at five points: sent by the client, app called by uvicorn,
//! `http.response.start`, first `http.response.body`, final body. The
//! segments between them, per request kind, fix the sums of the steps each
//! segment passes through: `arrival → called` is [`Step::RequestHead`];
//! `called → start` of a 202 is [`Step::Route`] + [`Step::ParseMessage`],
//! of an SSE POST also [`Step::OpenStream`], of an `initialize` also
//! [`Step::NewSession`]; `start → first body` of a 202 is
//! [`Step::SendStart`] alone, of `initialize` the chain that answers it
//! without a handler, of `ping` that chain plus [`Step::Dispatch`], of
//! `tools/list` and `tools/call` plus their handlers; the tool's own sleep
//! is subtracted, and what a slow tool's call adds beyond a fast one's is
//! the timer's lateness. `python3 interop/calibrate.py --release R --model`
//! measures the model the same way (in simulation, over many seeds) and
//! prints both tables side by side; the bounds below are those for which
//! the model's medians and 10th–90th percentiles sit on the real ones.
//!
//! The machine measured is this project's (2 cores, Linux, CPython 3.11,
//! idle); a slower host is what the `slow` fault is for.

use std::time::Duration;

use super::release::Release;

/// A step of the Python stack that takes time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// uvicorn `H11Protocol.connection_made` + `data_received` →
    /// `handle_events`: h11 parses the request head, `RequestResponseCycle(
    /// ...)`, `self.loop.create_task(self.cycle.run_asgi(app))` — until the
    /// app is called.
    RequestHead,
    /// `Starlette.__call__` → `ServerErrorMiddleware` → `Router` matches
    /// `/mcp` → `StreamableHTTPASGIApp` → `session_manager.handle_request`
    /// (2.3: through `RequestBodyLimitMiddleware`) → the session lookup →
    /// `transport.handle_request`: `Request(scope, receive)`, the security
    /// middleware, the Accept / Content-Type checks.
    Route,
    /// `body = await request.body()`, then `json.loads(body)` and
    /// `JSONRPCMessage.model_validate(raw_message)` (pydantic), the session
    /// and protocol-version header checks.
    ParseMessage,
    /// A new session: `uuid4().hex`, `StreamableHTTPServerTransport(...)`,
    /// `await self._task_group.start(run_server)` → `transport.connect()`
    /// (its streams, the message router's task) → `server.run(...)` setting
    /// up its session (1.20: `ServerSession`, `Server.run`'s exit stack and
    /// lifespan; 2.3: `ServerRunner`, `JSONRPCDispatcher`). A stateless
    /// request pays it too: its transport is new every time.
    NewSession,
    /// An SSE POST's response set up: `self._request_streams[request_id] =
    /// anyio.create_memory_object_stream(...)`, `EventSourceResponse(...)`,
    /// `async with anyio.create_task_group() as tg: tg.start_soon(response,
    /// ...)` and sse-starlette's own group of five tasks; a GET's the same
    /// for its standalone stream.
    OpenStream,
    /// uvicorn `RequestResponseCycle.send` of `http.response.start`: h11
    /// serialises the head (`self.conn.send(h11.Response(...))`),
    /// `self.transport.write(output)`, the access log line.
    SendStart,
    /// uvicorn `send` of an `http.response.body`: `h11.Data` (a chunk) →
    /// `transport.write`; for the final one `h11.EndOfMessage`,
    /// `response_complete`, `message_event.set()`.
    SendBody,
    /// The session's read loop takes a request: 1.20 `BaseSession.
    /// _receive_loop`: `self._receive_request_type.model_validate(message.
    /// root.model_dump(...))`, `RequestResponder(...)`; 2.3 `JSONRPCDispatcher.
    /// _dispatch_request`: `DispatchContext(...)`, its `CancelScope`,
    /// `_in_flight[...]`, `tg.start_soon(self._handle_request, ...)`.
    ValidateRequest,
    /// A request reaches its handler: 1.20 `Server.run` →
    /// `tg.start_soon(self._handle_message, ...)` → `_handle_request`: the
    /// handler lookup, `request_ctx.set(...)`, "Processing request of type
    /// …"; 2.3 `ServerRunner._on_request`: `validate_client_request`, the
    /// handler lookup, the `Context` it builds.
    Dispatch,
    /// `tools/list`: `ToolManager.list_tools()` → a `Tool` with its JSON
    /// schema per tool, `ListToolsResult(...)`.
    ListTools,
    /// `tools/call` up to the tool function: `ToolManager.call_tool` →
    /// `Tool.run` → `FuncMetadata.call_fn_with_arg_validation` (pydantic
    /// validates the arguments).
    CallTool,
    /// `tools/call` after the tool function returned:
    /// `_convert_to_content`, `CallToolResult(...)`, the structured output.
    ToolResult,
    /// A handler's answer written: `JSONRPCResponse(..., result=response.
    /// model_dump(by_alias=True, mode="json", exclude_none=True))`, `await
    /// self._write_stream.send(SessionMessage(...))`.
    Respond,
    /// A notification or request from a tool to the client
    /// (`ctx.report_progress`, `ctx.elicit`): the pydantic model, its
    /// `model_dump`, the write.
    Notify,
    /// The transport's `message_router` takes one message: its target
    /// stream, `event_store.store_event(...)` when there is a store, `await
    /// self._request_streams[request_stream_id][0].send(EventMessage(...))`.
    RouteMessage,
    /// The SSE writer encodes a message: `self._create_event_data(event_
    /// message)` → `message.model_dump_json(by_alias=True,
    /// exclude_none=True)`; a JSON response's `_create_json_response` the
    /// same.
    EncodeEvent,
    /// sse-starlette `_stream_response`: `chunk = ensure_bytes(data,
    /// self.sep)` → `ServerSentEvent.encode()`.
    SseChunk,
    /// sse-starlette after the body iterator is exhausted: `async with
    /// self._send_lock: self.active = False`, the final `send`; then
    /// `cancel_on_finish` cancels the response's task group and its tasks
    /// unwind.
    Finish,
    /// The transport's `terminate()` on DELETE: every request stream and
    /// the session's streams closed.
    Terminate,
    /// Not processing: how late an asyncio timer's task gets going again.
    /// `_run_once` waits in `selector.select(timeout)` with the time left,
    /// which `EpollSelector` rounds up to a whole millisecond, plus the
    /// kernel's wake-up latency — `await asyncio.sleep(0.05)` returned
    /// 0.29–0.40 ms late (10th–90th percentile of 100, on this machine) —
    /// and the code after a sleep runs on caches that went cold: a
    /// `slow_operation` call answers 0.6–1.0 ms later, beyond its sleep,
    /// than a `get_greeting` call. The loop is idle meanwhile; a busy host
    /// does not stretch it.
    TimerLate,
}

/// The bounds of one step's cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The least a step costs.
    pub lo: Duration,
    /// The most.
    pub hi: Duration,
    /// What the first step of this kind in a process costs on top.
    pub cold: Option<(Duration, Duration)>,
}

const fn us(lo: u64, hi: u64) -> Bounds {
    Bounds {
        lo: Duration::from_micros(lo),
        hi: Duration::from_micros(hi),
        cold: None,
    }
}

const fn cold(b: Bounds, lo: u64, hi: u64) -> Bounds {
    Bounds {
        cold: Some((Duration::from_micros(lo), Duration::from_micros(hi))),
        ..b
    }
}

/// The bounds of `step` on `release`, in microseconds (see the module docs
/// for where each figure comes from).
pub fn bounds(release: Release, step: Step) -> Bounds {
    use Release::{V1_20, V2_3};
    use Step::*;
    match (step, release) {
        (RequestHead, V1_20) => us(350, 980),
        (RequestHead, V2_3) => us(300, 850),
        (Route, V1_20) => us(40, 100),
        (Route, V2_3) => us(60, 130),
        (ParseMessage, V1_20) => us(55, 125),
        (ParseMessage, V2_3) => us(50, 110),
        (NewSession, V1_20) => cold(us(2100, 3500), 1600, 2600),
        (NewSession, V2_3) => cold(us(300, 850), 900, 1500),
        (OpenStream, V1_20) => us(170, 420),
        (OpenStream, V2_3) => us(180, 380),
        (SendStart, V1_20) => us(110, 310),
        (SendStart, V2_3) => us(60, 180),
        (SendBody, V1_20) => us(55, 140),
        (SendBody, V2_3) => us(40, 100),
        (ValidateRequest, V1_20) => us(85, 195),
        (ValidateRequest, V2_3) => us(60, 140),
        (Dispatch, V1_20) => us(350, 630),
        (Dispatch, V2_3) => cold(us(350, 650), 300, 900),
        (ListTools, V1_20) => cold(us(210, 420), 200, 600),
        (ListTools, V2_3) => cold(us(50, 200), 200, 500),
        (CallTool, V1_20) => cold(us(490, 980), 200, 600),
        (CallTool, V2_3) => cold(us(100, 250), 700, 1300),
        (ToolResult, V1_20) => us(350, 700),
        (ToolResult, V2_3) => us(80, 200),
        (Respond, V1_20) => us(70, 170),
        (Respond, V2_3) => us(50, 120),
        (Notify, V1_20) => us(210, 490),
        (Notify, V2_3) => us(150, 350),
        (RouteMessage, V1_20) => us(14, 42),
        (RouteMessage, V2_3) => us(10, 30),
        (EncodeEvent, V1_20) => us(28, 70),
        (EncodeEvent, V2_3) => us(20, 50),
        (SseChunk, V1_20) => us(14, 42),
        (SseChunk, V2_3) => us(10, 30),
        (Finish, V1_20) => us(28, 84),
        (Finish, V2_3) => us(20, 60),
        (Terminate, V1_20) => us(140, 350),
        (Terminate, V2_3) => us(100, 250),
        (TimerLate, _) => us(400, 1400),
    }
}
