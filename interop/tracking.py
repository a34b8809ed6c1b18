"""What interop/real_server.py (mcp 1.20.0) and interop/real_server_2.py
(mcp 2.3.0) share: the ASGI tracking middleware, the observations document
it serves, the WARNING+ log capture, the in-memory event store and the tools'
number formatting.

The middleware is the corrected version of the seed repro's: a response is
complete only when an `http.response.body` with `more_body: False` was sent.
For every call it records the response start, the bodies, the final body,
the `http.disconnect` the app received, when the app returned and whether
uvicorn had registered the client's disconnect by then (the #1437 line).

The document is served at GET /__mcpsim/observations (outside the app); the
observations file, when there is one, is its journal: every change appended
as a line. Both formats are documented in src/real/observe.rs; times are
epoch seconds. What a
probe reads of the stack's insides (sessions, request streams) differs
between releases, so each server subclasses `Observations` for it.

This module imports mcp (for the event store's base class), so a server that
patches the stack must do so before importing it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
import weakref
from collections import deque
from dataclasses import dataclass
from importlib.metadata import version
from uuid import uuid4

from mcp.server.streamable_http import EventMessage, EventStore

OBSERVATIONS_PATH = "/__mcpsim/observations"


class Observations:
    """Everything the middleware and the probes saw, as one JSON document.

    Both releases keep their sessions in the session manager's
    `_server_instances` and their request streams in each transport's
    `_request_streams`; a release that reaps idle sessions says when
    (`expires_at`) and after how long (`session_idle_timeout`)."""

    #: Seconds a session may idle before the stack reaps it; None: never.
    session_idle_timeout: float | None = None

    def __init__(self, file: str | None, patched: list[str] | None = None):
        self.file = file
        self.patched = list(patched or [])
        self.calls: list[dict] = []
        self.log: list[dict] = []
        self.handlers = 0
        self.transports: weakref.WeakSet = weakref.WeakSet()
        self.session_seen: dict[str, float] = {}
        self.manager = None
        self.started = time.time()
        self.journal = None

    def sessions(self) -> list[dict]:
        """The sessions the stack holds (both releases keep them in the session
        manager's `_server_instances`): id, terminated, created_at, expires_at."""
        if self.manager is None:
            return []
        return [
            {
                "id": sid,
                "terminated": bool(t.is_terminated),
                "created_at": self.session_seen.get(sid, self.started),
                "expires_at": self.expires_at(t),
            }
            for sid, t in list(self.manager._server_instances.items())
        ]

    def expires_at(self, transport) -> float | None:
        """When the stack will reap this session if nothing else arrives
        (epoch seconds); None: it will not. A release that reaps overrides it."""
        return None

    def open_streams(self) -> list[dict]:
        """The request streams the stack's transports still hold: session, stream."""
        return [
            {"session": t.mcp_session_id, "stream": str(key)}
            for t in list(self.transports)
            for key in list(t._request_streams.keys())
        ]

    def server(self) -> str:
        patched = f"; patched: {', '.join(self.patched)}" if self.patched else ""
        return "mcp {} / sse-starlette {} / uvicorn {} / anyio {} (real, Python {}{})".format(
            version("mcp"),
            version("sse-starlette"),
            version("uvicorn"),
            version("anyio"),
            sys.version.split()[0],
            patched,
        )

    def document(self) -> dict:
        return {
            "server": self.server(),
            "layers": {
                "http_host": "uvicorn",
                "sse": "sse-starlette",
                "transport": "mcp.server.streamable_http",
            },
            "calls": self.calls,
            "log": self.log,
            "probe": {
                "in_flight": self.handlers,
                "sessions": self.sessions(),
                "open_streams": self.open_streams(),
                "session_idle_timeout": self.session_idle_timeout,
            },
        }

    def open_journal(self) -> None:
        """Start the observations file: a journal, one JSON object per line —
        first what the server is, then every call record each time it
        changes and every log record — so that a process killed at any
        moment leaves what it saw. Appending one line costs microseconds;
        rewriting the whole document at every change, as this file once did,
        cost the stack 2-3 ms per change and showed up as its own processing
        time (FINDINGS §19)."""
        if not self.file:
            return
        self.journal = open(self.file, "w", buffering=1)
        self.journal.write(
            json.dumps({"journal": 1, "server": self.server(), "layers": self.document()["layers"]})
            + "\n"
        )

    def changed(self, call: dict | None = None, log: dict | None = None) -> None:
        """A call record changed, or a log record was kept: append it."""
        if self.journal is None:
            return
        self.journal.write(json.dumps({"call": call} if call is not None else {"log": log}) + "\n")


class KeepLog(logging.Handler):
    """WARNING and above, kept for the server-error-log oracle."""

    def __init__(self, obs: Observations):
        super().__init__(logging.WARNING)
        self.obs = obs

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            last = traceback.format_exception_only(record.exc_info[1])[-1].strip()
            msg = f"{msg}\n{last}"
        entry = {"t": record.created, "level": record.levelname, "logger": record.name, "msg": msg}
        self.obs.log.append(entry)
        self.obs.changed(log=entry)


def keep_log(obs: Observations) -> None:
    """Capture WARNING+ records. Call after uvicorn configured its loggers:
    "uvicorn" does not propagate to the root logger, so it gets the handler too."""
    keep = KeepLog(obs)
    logging.getLogger().addHandler(keep)
    logging.getLogger("uvicorn").addHandler(keep)


def describe_rpc(body: bytes) -> str | None:
    try:
        v = json.loads(body)
    except ValueError:
        return None
    if not isinstance(v, dict) or not isinstance(v.get("method"), str):
        return None
    params = v.get("params")
    tool = params.get("name") if isinstance(params, dict) else None
    if v["method"] == "tools/call" and isinstance(tool, str):
        return f"tools/call {tool}"
    return v["method"]


class Tracking:
    """The ASGI tracking middleware."""

    def __init__(self, app, obs: Observations):
        self.app = app
        self.obs = obs

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] == OBSERVATIONS_PATH:
            return await self.serve_observations(send)
        obs = self.obs
        client = scope.get("client") or ("?", 0)
        rec = {
            "seq": len(obs.calls),
            "method": scope["method"],
            "path": scope["path"],
            "client": f"{client[0]}:{client[1]}",
            "rpc": None,
            "called_at": time.time(),
            "start": None,
            "partial_bodies": 0,
            "first_body_at": None,
            "final_body_at": None,
            "disconnect_received_at": None,
            "returned": None,
            "violations": [],
        }
        obs.calls.append(rec)
        obs.changed(rec)
        # uvicorn hands the app its RequestResponseCycle's bound `send`: the
        # cycle's `disconnected` flag is what uvicorn itself registered.
        cycle = getattr(send, "__self__", None)
        body = bytearray()

        async def tracked_receive():
            msg = await receive()
            if msg["type"] == "http.disconnect":
                if rec["disconnect_received_at"] is None:
                    rec["disconnect_received_at"] = time.time()
                    obs.changed(rec)
            elif msg["type"] == "http.request":
                body.extend(msg.get("body", b""))
                if not msg.get("more_body", False) and rec["rpc"] is None:
                    rec["rpc"] = describe_rpc(bytes(body))
            return msg

        async def tracked_send(msg):
            now = time.time()
            kind = msg["type"]
            if rec["final_body_at"] is not None:
                rec["violations"].append({"at": now, "what": f"'{kind}' sent after the final body"})
            elif kind == "http.response.start":
                if rec["start"] is not None:
                    rec["violations"].append({"at": now, "what": "second 'http.response.start'"})
                else:
                    headers = {k.decode().lower(): v.decode() for k, v in msg.get("headers", [])}
                    rec["start"] = {
                        "at": now,
                        "status": msg["status"],
                        "content_type": headers.get("content-type"),
                    }
                    sid = headers.get("mcp-session-id")
                    if sid and sid not in obs.session_seen:
                        obs.session_seen[sid] = rec["called_at"]
            elif kind == "http.response.body":
                if rec["first_body_at"] is None:
                    rec["first_body_at"] = now
                if rec["start"] is None:
                    rec["violations"].append(
                        {"at": now, "what": "'http.response.body' before 'http.response.start'"}
                    )
                elif msg.get("more_body", False):
                    rec["partial_bodies"] += 1
                else:
                    rec["final_body_at"] = now
            obs.changed(rec)
            await send(msg)

        error = None
        try:
            await self.app(scope, tracked_receive, tracked_send)
        except BaseException as e:  # recorded, then re-raised untouched
            error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            raise
        finally:
            if cycle is not None and hasattr(cycle, "disconnected"):
                saw = bool(cycle.disconnected)
            else:
                saw = rec["disconnect_received_at"] is not None
            rec["returned"] = {"at": time.time(), "error": error, "host_saw_disconnect": saw}
            obs.changed(rec)

    async def serve_observations(self, send):
        data = json.dumps(self.obs.document()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data, "more_body": False})


@dataclass
class Stored:
    event_id: str
    stream_id: str
    message: object


class InMemoryEventStore(EventStore):
    """The semantics of python-sdk's example event store (v1.20.0), which the
    model's event store follows: one store per process, shared by every
    session; uuid4 event ids; the last 100 events of each stream; a replay
    finds the stream of the given id and sends what came after it there.

    mcp 2.x also stores each stream's priming event, as a None message: it
    takes an id and a place like any event, and a replay skips it (1.20 never
    stores one)."""

    def __init__(self, keep: int = 100):
        self.keep = keep
        self.streams: dict[str, deque[Stored]] = {}
        self.index: dict[str, Stored] = {}

    async def store_event(self, stream_id, message):
        entry = Stored(str(uuid4()), stream_id, message)
        q = self.streams.setdefault(stream_id, deque(maxlen=self.keep))
        if len(q) == self.keep:
            self.index.pop(q[0].event_id, None)
        q.append(entry)
        self.index[entry.event_id] = entry
        return entry.event_id

    async def replay_events_after(self, last_event_id, send_callback):
        last = self.index.get(last_event_id)
        if last is None:
            # Logged as the servers always did, from their script's module.
            logging.getLogger("__main__").warning(f"Event ID {last_event_id} not found in store")
            return None
        after = False
        for e in self.streams.get(last.stream_id, deque()):
            if after:
                if e.message is not None:
                    await send_callback(EventMessage(e.message, e.event_id))
            elif e.event_id == last_event_id:
                after = True
        return last.stream_id


def instrument(obs: Observations, transport_cls, dispatch_cls, dispatch_method: str) -> None:
    """Probes on the stack's insides, read only when asked: every transport
    the stack makes (`transport_cls.__init__`, for the request streams and
    sessions it holds) and the request handlers running (`dispatch_method`
    of `dispatch_cls`, where the release dispatches a request to its
    handler)."""
    init = transport_cls.__init__

    def tracked_init(self, *a, **kw):
        init(self, *a, **kw)
        obs.transports.add(self)

    transport_cls.__init__ = tracked_init
    handle = getattr(dispatch_cls, dispatch_method)

    async def counted(self, *a, **kw):
        obs.handlers += 1
        try:
            return await handle(self, *a, **kw)
        finally:
            obs.handlers -= 1

    setattr(dispatch_cls, dispatch_method, counted)
