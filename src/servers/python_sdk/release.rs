//! The releases the Python model follows, and — in this one file — every
//! behaviour in which mcp 2.3.0 differs from mcp 1.20.0 on the paths mcpsim
//! exercises.
//!
//! | release | mcp | sse-starlette | uvicorn | anyio | starlette |
//! |---|---|---|---|---|---|
//! | [`Release::V1_20`] (the seed's) | 1.20.0 | 3.0.3 | 0.38.0 | 4.16 | 1.10.0 |
//! | [`Release::V2_3`] (current) | 2.3.0 + mcp-types 2.3.0 | 3.7.0 | 0.54.0 | 4.16 | 1.10.0 |
//!
//! The release is a dimension of the model, like the variants: each method
//! below names one difference, says what each release does and quotes the
//! Python it follows; the layer that behaves differently asks its release
//! (`self.release.…()`) at the line that differs, and that line carries the
//! Python of both releases beside it. Where 2.3 rewrote a layer whole — the
//! dispatch of requests to handlers (`ServerSession` + `Server.run` in 1.20,
//! `JSONRPCDispatcher` + `ServerRunner` in 2.3) — each release has its own
//! file ([`super::session`], [`super::dispatcher`]) and [`Release::dispatch`]
//! picks it. Everything not listed here is the same in both releases
//! (checked by diffing the released sources): uvicorn's cycle, its
//! after-return rules, its shutdown and main-loop tick; Starlette's `Request`
//! and `Response`; `EventSourceResponse`'s task group and its final body only
//! after the iterator is exhausted; `_listen_for_disconnect`; the
//! one-GET-stream rule (409); the router's "Request stream … not found" drop;
//! the event-store interface, which takes no session.
//!
//! What 2.3 has that the model leaves out, because no mcpsim client reaches
//! it: the 2026-07-28 protocol era (`handle_modern_request`, requests whose
//! `MCP-Protocol-Version` header is not a handshake version — mcpsim's client
//! only ever sends the version the server negotiated), authentication and
//! session owners, `close_sse_stream` (SEP-1699 polling, only a tool can call
//! it), OpenTelemetry spans, `HEAD` on an SSE route, `ping = 0`.

use std::time::Duration;

/// A release of python-sdk and the stack it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Release {
    /// mcp 1.20.0 on sse-starlette 3.0.3 and uvicorn 0.38.0: the seed's.
    V1_20,
    /// mcp 2.3.0 on sse-starlette 3.7.0 and uvicorn 0.54.0: today's.
    V2_3,
}

/// Which file models the dispatch of requests to handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// `mcp/server/session.py` + `mcp/shared/session.py` + `Server.run`
    /// (`mcp/server/lowlevel/server.py`): [`super::session`].
    ServerSession,
    /// `mcp/shared/jsonrpc_dispatcher.py` + `mcp/server/runner.py`
    /// (`serve_loop`, `ServerRunner`): [`super::dispatcher`].
    JsonRpcDispatcher,
}

/// What a stateful manager answers for an unknown session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownSession {
    /// 1.20: `Response("Bad Request: No valid session ID provided",
    /// status_code=HTTPStatus.BAD_REQUEST)` — text, 400.
    BadRequest400,
    /// 2.3: `_error_response("Session not found", 404)` — a JSON-RPC error
    /// with `"id": null` (upstream #1808); logged at INFO "Rejected request
    /// with unknown or expired session ID".
    NotFound404,
}

impl Release {
    /// Both releases, oldest first.
    pub const ALL: [Release; 2] = [Release::V1_20, Release::V2_3];

    /// The version string of mcp, for `serverInfo` and reports.
    pub fn mcp_version(self) -> &'static str {
        match self {
            Release::V1_20 => "1.20.0",
            Release::V2_3 => "2.3.0",
        }
    }

    /// The stack in words.
    pub fn stack(self) -> &'static str {
        match self {
            Release::V1_20 => "mcp 1.20.0 on uvicorn 0.38.0, sse-starlette 3.0.3 and anyio 4",
            Release::V2_3 => "mcp 2.3.0 on uvicorn 0.54.0, sse-starlette 3.7.0 and anyio 4.16",
        }
    }

    // ----- the session manager (mcp/server/streamable_http_manager.py) -----

    /// An unknown `mcp-session-id`: 400 in 1.20, 404 in 2.3 (see
    /// [`UnknownSession`]).
    pub fn unknown_session(self) -> UnknownSession {
        match self {
            Release::V1_20 => UnknownSession::BadRequest400,
            Release::V2_3 => UnknownSession::NotFound404,
        }
    }

    /// The idle timeout a stateful session gets when the application sets
    /// none. 1.20 has no idle reaping at all. 2.3:
    /// `DEFAULT_SESSION_IDLE_TIMEOUT: Final = 30 * 60` (#1994/#2022, default
    /// in #3395): the transport's `idle_scope` is cancelled once no request
    /// has been in flight (an open GET stream counts) for that long, which
    /// ends the session's `serve_loop`; the manager then logs "Session … idle
    /// timeout" and discards it.
    pub fn default_session_idle_timeout(self) -> Option<Duration> {
        match self {
            Release::V1_20 => None,
            Release::V2_3 => Some(Duration::from_secs(30 * 60)),
        }
    }

    /// Can a session expire at all? (`session_idle_timeout` has no
    /// counterpart in 1.20.)
    pub fn has_idle_timeout(self) -> bool {
        self == Release::V2_3
    }

    /// Is a session DELETEd by its client dropped from the manager's table at
    /// once? 1.20 keeps it until the process ends (#3300): only a crashed
    /// server task is removed, "Only remove from instances if not
    /// terminated". 2.3, after `transport.handle_request`: `if
    /// transport.is_terminated: await self._discard_session(...)` (#3395).
    pub fn discards_terminated_sessions(self) -> bool {
        self == Release::V2_3
    }

    /// Is a session whose opening request did not establish it discarded?
    /// 1.20 creates a transport for *any* session-less request and keeps it,
    /// so a session-less `tools/list` leaves a session nobody knows behind.
    /// 2.3's `_serve_opening_request`: `established = status is not None and
    /// status < 400` … `finally: if not established: await
    /// self._discard_session(...)`.
    pub fn discards_unestablished_sessions(self) -> bool {
        self == Release::V2_3
    }

    /// Is the opening request of a session served under
    /// `_session_creation_lock`? In 1.20 the whole `handle_request` of a new
    /// session runs inside `async with self._session_creation_lock:`; 2.3
    /// takes the lock only for admission ("the request itself is served
    /// outside it, so one client that is slow to send its opening request
    /// does not hold up the others").
    pub fn serves_opening_request_under_lock(self) -> bool {
        self == Release::V1_20
    }

    /// The cap on open stateful sessions: none in 1.20; 2.3's
    /// `DEFAULT_MAX_SESSIONS: Final = 10_000`, past which a new session gets
    /// 503 "Too many open sessions" and a WARNING.
    pub fn max_sessions(self) -> Option<usize> {
        match self {
            Release::V1_20 => None,
            Release::V2_3 => Some(10_000),
        }
    }

    /// Is a stateless request's transport terminated even when the request is
    /// cancelled? 1.20: `await http_transport.handle_request(...)` then
    /// `await http_transport.terminate()` (skipped by a cancellation). 2.3:
    /// `try: … finally: with anyio.CancelScope(shield=True): await
    /// http_transport.terminate()`.
    pub fn stateless_terminate_in_shielded_finally(self) -> bool {
        self == Release::V2_3
    }

    /// Does the manager read the whole request body before anything else?
    /// 2.3 wraps `_handle_request` in `RequestBodyLimitMiddleware` (4 MiB,
    /// 413 "Request body too large"), which `receive()`s until `more_body`
    /// is false and replays the body to the app; 1.20 reads it only where
    /// the transport calls `request.body()`.
    pub fn reads_body_up_front(self) -> Option<usize> {
        match self {
            Release::V1_20 => None,
            Release::V2_3 => Some(4 * 1024 * 1024),
        }
    }

    // ----- the transport (mcp/server/streamable_http.py) -----

    /// The buffer of a request's stream in `_request_streams`. 1.20:
    /// `anyio.create_memory_object_stream[EventMessage](0)`, so the one
    /// message router blocks until that request's writer takes the message.
    /// 2.3: `REQUEST_STREAM_BUFFER_SIZE: Final = 16` "so the serial
    /// `message_router` can deposit a response and move on" (#1764).
    pub fn request_stream_buffer(self) -> usize {
        match self {
            Release::V1_20 => 0,
            Release::V2_3 => 16,
        }
    }

    /// Does an SSE stream open with a priming event (an id and empty data)?
    /// 2.3's `_mint_priming_event`: with an event store and a protocol of
    /// 2025-11-25 or later, `store_event(stream_id, None)` and `{"id": …,
    /// "data": ""}` first on every POST stream and every replay (not on the
    /// standalone GET stream). 1.20 has none (and negotiates 2025-06-18 at
    /// most).
    pub fn primes_streams(self) -> bool {
        self == Release::V2_3
    }

    /// Does the transport answer a request that settled without a response?
    /// 2.3 stamps every request with `on_request_unanswered =
    /// partial(self._terminate_unanswered_request, message.id)`, which writes
    /// `JSONRPCError(id, code=REQUEST_CANCELLED (-32800), "Request
    /// cancelled")` through the write stream "so a request that settles
    /// without a response is still terminated on this era's wire". 1.20 has
    /// no such hook (its session answers a cancellation itself).
    pub fn terminates_unanswered_requests(self) -> bool {
        self == Release::V2_3
    }

    /// In JSON-response mode, does the router drop messages related to a
    /// request (progress, server requests)? 2.3: "A JSON body carries only
    /// the response: this message has no wire form … drop it" (debug). 1.20
    /// routes them to the request stream, where the JSON path skips them.
    pub fn json_mode_drops_related_messages(self) -> bool {
        self == Release::V2_3
    }

    /// Does the transport itself check `MCP-Protocol-Version`? 1.20's
    /// `_validate_protocol_version` answers 400 "Bad Request: Unsupported
    /// protocol version" for a version outside `SUPPORTED_PROTOCOL_VERSIONS`.
    /// 2.3 moved it to the manager's era routing: a header outside
    /// `HANDSHAKE_PROTOCOL_VERSIONS` goes to `handle_modern_request` (not
    /// modelled: see the module docs).
    pub fn transport_validates_protocol_version(self) -> bool {
        self == Release::V1_20
    }

    /// The `id` of the transport's own error bodies: 1.20 `id="server-error"`,
    /// 2.3 `id=None` (`exclude_unset` writes `null`).
    pub fn error_body_id(self) -> serde_json::Value {
        match self {
            Release::V1_20 => serde_json::Value::from("server-error"),
            Release::V2_3 => serde_json::Value::Null,
        }
    }

    /// The 500 body of "Error handling POST request": 1.20 appends `{err}`,
    /// 2.3 says only "Error handling POST request".
    pub fn post_error_names_the_exception(self) -> bool {
        self == Release::V1_20
    }

    /// How the message router ends when its stream is closed under it. 1.20:
    /// `except Exception: logger.exception("Error in message router")` —
    /// ERROR on every DELETE and every stateless request (#1294/#1363/#1219).
    /// 2.3: `except anyio.ClosedResourceError: if self._terminated:
    /// logger.debug("Read stream closed by client") else:
    /// logger.exception("Unexpected closure of read stream in message
    /// router")` (#1384).
    pub fn router_quiet_when_terminated(self) -> bool {
        self == Release::V2_3
    }

    /// Do the SSE writers treat `ClosedResourceError` as a normal end? 2.3's
    /// `_run_sse_writer` logs it at debug ("SSE stream closed by
    /// close_sse_stream()"); its `standalone_sse_writer` has `except
    /// anyio.ClosedResourceError: pass` ("Session teardown can close the
    /// stream while the writer is between dequeues"). 1.20 logs both as
    /// ERROR ("Error in SSE writer", "Error in standalone SSE writer").
    pub fn sse_writers_quiet_on_closed(self) -> bool {
        self == Release::V2_3
    }

    /// Does a replay stream register its live tail and clean it up? 2.3's
    /// `replay_sender` files the SSE writer under the stream, primes the
    /// resumed connection, gives the new request stream a buffer of 16, and
    /// `finally:` pops both and `_clean_up_memory_streams(stream_id)`. 1.20
    /// registers a buffer-0 stream and never removes the key when the replay
    /// stream closes.
    pub fn replay_cleans_up(self) -> bool {
        self == Release::V2_3
    }

    /// Does `Accept` parsing honour wildcards (`*/*`, `application/*`,
    /// `text/*`)? 2.3's `check_accept_headers` does (RFC 7231); 1.20 matches
    /// prefixes of the two media types only.
    pub fn accept_wildcards(self) -> bool {
        self == Release::V2_3
    }

    // ----- transport_security.py and the app factory -----

    /// DNS-rebinding protection when the application configures none. 1.20's
    /// FastMCP leaves it off. 2.3's `Server.streamable_http_app(host=
    /// "127.0.0.1")`: "Auto-enable DNS rebinding protection for localhost" —
    /// `allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"]`,
    /// `allowed_origins=["http://127.0.0.1:*", "http://localhost:*",
    /// "http://[::1]:*"]`. The model's app is built as `interop/
    /// real_server_2.py` builds its real one, for the loopback address it
    /// serves; in simulation that address is the host `server`, so its own
    /// `Host` (`server:8000`) stands in for `127.0.0.1:PORT` in the hosts
    /// list. Origins are what a client writes, the same in both worlds, so
    /// that list stays as Python has it.
    pub fn default_dns_rebinding_protection(self) -> bool {
        self == Release::V2_3
    }

    /// Does the security middleware log a bad `Content-Type` before its 400?
    /// 1.20: `logger.warning("Missing Content-Type header in POST request")`
    /// / `"Invalid Content-Type header: …"`; 2.3 returns quietly.
    pub fn warns_on_bad_content_type(self) -> bool {
        self == Release::V1_20
    }

    // ----- dispatch (session.py → jsonrpc_dispatcher.py + runner.py) -----

    /// Which file models the dispatch of requests to handlers.
    pub fn dispatch(self) -> Dispatch {
        match self {
            Release::V1_20 => Dispatch::ServerSession,
            Release::V2_3 => Dispatch::JsonRpcDispatcher,
        }
    }

    /// Is `method` one the spec's types know, so that the dispatch layer
    /// validates it before it looks for a handler? 1.20's `ClientRequest`
    /// union (anything else fails validation, "Invalid request
    /// parameters"); 2.3's `SPEC_CLIENT_METHODS`, which adds `server/discover`
    /// and `subscriptions/listen` (anything else is looked up as a custom
    /// method, and without a handler is METHOD_NOT_FOUND).
    pub fn is_client_request_method(self, method: &str) -> bool {
        const BOTH: [&str; 13] = [
            "initialize",
            "ping",
            "tools/list",
            "tools/call",
            "resources/list",
            "resources/templates/list",
            "resources/read",
            "resources/subscribe",
            "resources/unsubscribe",
            "prompts/list",
            "prompts/get",
            "completion/complete",
            "logging/setLevel",
        ];
        BOTH.contains(&method)
            || (self == Release::V2_3
                && matches!(method, "server/discover" | "subscriptions/listen"))
    }

    // ----- the application's tools (FastMCP 1.20, MCPServer 2.3) -----

    /// Where `ctx.report_progress` sends its notification. FastMCP 1.20:
    /// `send_progress_notification(...)` without `related_request_id`, so the
    /// router files it under the GET stream. 2.3: the request's
    /// `DispatchContext.progress` → `notify(..., _related_request_id=
    /// self._request_id)`: on the request's own stream (in 1.x since PR
    /// #2994).
    pub fn progress_on_request_stream(self) -> bool {
        self == Release::V2_3
    }

    /// How progress numbers are written. 1.20 validates them into
    /// `ProgressNotificationParams(progress: float, total: float | None)`, so
    /// `report_progress(1, 4)` goes out as `1.0` / `4.0`; 2.3's dispatch
    /// context builds the params dict from the values as given (`1`, `4`).
    pub fn progress_as_float(self) -> bool {
        self == Release::V1_20
    }

    // ----- sse-starlette (sse_starlette/sse.py) -----

    /// Does a shutdown wake responses that are already streaming? 3.0.3
    /// keeps its exit event in a per-task context variable that the signal
    /// handler never sets, so only a response that starts after the signal
    /// exits. 3.1+ (3.7.0 here, sse-starlette #167): one `_shutdown_watcher`
    /// task per loop polls `AppStatus.should_exit` and uvicorn's own
    /// `should_exit` every 0.5 s and then sets every registered response's
    /// event — each open SSE response ends at the next poll after SIGTERM.
    pub fn shutdown_watcher_period(self) -> Option<Duration> {
        match self {
            Release::V1_20 => None,
            Release::V2_3 => Some(Duration::from_millis(500)),
        }
    }

    /// Does `_stream_response` close its body iterator when encoding or a
    /// send fails? 3.7: `except BaseException: … with
    /// anyio.move_on_after(self._cleanup_timeout, shield=True): await
    /// aclose()` then re-raise (#217). 3.0.3 closes it only on a send
    /// timeout.
    pub fn closes_iterator_on_send_failure(self) -> bool {
        self == Release::V2_3
    }

    /// Does the response's task group leave a one-exception group bare?
    /// 3.7 wraps it in `collapse_excgroups()`; 3.0.3 lets anyio's
    /// `ExceptionGroup` out.
    pub fn collapses_exception_groups(self) -> bool {
        self == Release::V2_3
    }

    // ----- the example event store -----

    /// Does the store hold priming entries (`store_event(stream_id, None)`,
    /// skipped on replay)? Only 2.3 stores them (the interface's `message:
    /// JSONRPCMessage | None`).
    pub fn stores_priming_events(self) -> bool {
        self == Release::V2_3
    }
}
