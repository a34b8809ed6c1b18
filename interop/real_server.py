"""The real Python stack under test: FastMCP (mcp 1.20.0) on uvicorn, with the
tools mcpsim's scenarios call, behind an ASGI tracking middleware written here.

    python interop/real_server.py --port 8000 [--stateless] [--json-response]
                                  [--event-store] [--graceful-timeout SECONDS]

Under `mcpsim drive --server-cmd`, the scenario's [server] settings arrive as
MCPSIM_STATELESS, MCPSIM_JSON_RESPONSE, MCPSIM_EVENT_STORE (0/1),
MCPSIM_GRACEFUL_TIMEOUT (seconds) and MCPSIM_ALLOWED_HOSTS/_ORIGINS (comma
lists; DNS-rebinding protection on). MCPSIM_SESSION_IDLE_TIMEOUT has no
counterpart in mcp 1.20.0, which never reaps a session.

The middleware is the corrected version of the seed repro's: a response is
complete only when an `http.response.body` with `more_body: False` was sent.
For every call it records the response start, the bodies, the final body,
the `http.disconnect` the app received, when the app returned and whether
uvicorn had registered the client's disconnect by then (the #1437 line). It
also keeps WARNING+ log records and reads, when asked, the sessions and
request streams the transport still holds and the request handlers running.

All of it is served at GET /__mcpsim/observations (outside the app), and
written after every change to $MCPSIM_OBSERVATIONS_FILE when that is set, so
that `mcpsim drive --server-cmd` can read a process it has killed. The format
is documented in src/real/observe.rs. Times are epoch seconds.

The tools match mcpsim's (src/mcp/tools.rs): get_greeting, slow_operation,
progress_operation, ask_user, with the same texts.
"""

from __future__ import annotations

import argparse
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

import anyio
import uvicorn
from pydantic import BaseModel

from mcp.server.fastmcp import Context, FastMCP
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http import EventMessage, EventStore, StreamableHTTPServerTransport
from mcp.server.transport_security import TransportSecuritySettings

OBSERVATIONS_PATH = "/__mcpsim/observations"


class Observations:
    """Everything the middleware and the probes saw, as one JSON document."""

    def __init__(self, file: str | None):
        self.file = file
        self.calls: list[dict] = []
        self.log: list[dict] = []
        self.handlers = 0
        self.transports: weakref.WeakSet = weakref.WeakSet()
        self.session_seen: dict[str, float] = {}
        self.manager = None
        self.started = time.time()

    def document(self) -> dict:
        sessions = []
        if self.manager is not None:
            for sid, t in list(self.manager._server_instances.items()):
                sessions.append(
                    {
                        "id": sid,
                        "terminated": bool(t.is_terminated),
                        "created_at": self.session_seen.get(sid, self.started),
                    }
                )
        streams = []
        for t in list(self.transports):
            for key in list(t._request_streams.keys()):
                streams.append({"session": t.mcp_session_id, "stream": str(key)})
        return {
            "server": "mcp {} / sse-starlette {} / uvicorn {} / anyio {} (real, Python {})".format(
                version("mcp"),
                version("sse-starlette"),
                version("uvicorn"),
                version("anyio"),
                sys.version.split()[0],
            ),
            "layers": {
                "http_host": "uvicorn",
                "sse": "sse-starlette",
                "transport": "mcp.server.streamable_http",
            },
            "calls": self.calls,
            "log": self.log,
            "probe": {"in_flight": self.handlers, "sessions": sessions, "open_streams": streams},
        }

    def changed(self) -> None:
        if not self.file:
            return
        tmp = self.file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.document(), f)
        os.replace(tmp, self.file)


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
        self.obs.log.append(
            {"t": record.created, "level": record.levelname, "logger": record.name, "msg": msg}
        )
        self.obs.changed()


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
            "final_body_at": None,
            "disconnect_received_at": None,
            "returned": None,
            "violations": [],
        }
        obs.calls.append(rec)
        obs.changed()
        # uvicorn hands the app its RequestResponseCycle's bound `send`: the
        # cycle's `disconnected` flag is what uvicorn itself registered.
        cycle = getattr(send, "__self__", None)
        body = bytearray()

        async def tracked_receive():
            msg = await receive()
            if msg["type"] == "http.disconnect":
                if rec["disconnect_received_at"] is None:
                    rec["disconnect_received_at"] = time.time()
                    obs.changed()
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
                if rec["start"] is None:
                    rec["violations"].append(
                        {"at": now, "what": "'http.response.body' before 'http.response.start'"}
                    )
                elif msg.get("more_body", False):
                    rec["partial_bodies"] += 1
                else:
                    rec["final_body_at"] = now
            obs.changed()
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
            obs.changed()

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
    finds the stream of the given id and sends what came after it there."""

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
            logging.getLogger(__name__).warning(f"Event ID {last_event_id} not found in store")
            return None
        after = False
        for e in self.streams.get(last.stream_id, deque()):
            if after:
                await send_callback(EventMessage(e.message, e.event_id))
            elif e.event_id == last_event_id:
                after = True
        return last.stream_id


def seconds_text(s: float) -> str:
    """A float as Rust's Display writes it (mcpsim's tool texts): 2 → "2"."""
    t = repr(float(s))
    return t[:-2] if t.endswith(".0") else t


class Answer(BaseModel):
    answer: str


def build(args, obs: Observations):
    security = None
    if args.allowed_hosts is not None or args.allowed_origins is not None:
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=[h for h in (args.allowed_hosts or "").split(",") if h],
            allowed_origins=[o for o in (args.allowed_origins or "").split(",") if o],
        )
    mcp = FastMCP(
        "mcpsim-real",
        stateless_http=args.stateless,
        json_response=args.json_response,
        event_store=InMemoryEventStore() if args.event_store else None,
        transport_security=security,
    )

    @mcp.tool()
    def get_greeting(name: str = "world") -> str:
        """Return a greeting at once."""
        return f"Hello, {name}!"

    @mcp.tool()
    async def slow_operation(seconds: float = 2) -> str:
        """Sleep for `seconds`, then answer."""
        await anyio.sleep(seconds)
        return f"Completed after {seconds_text(seconds)} seconds"

    @mcp.tool()
    async def progress_operation(ctx: Context, seconds: float = 2, steps: int = 4) -> str:
        """Sleep for `seconds` in `steps`, reporting progress after each."""
        steps = max(1, min(100, steps))
        for i in range(1, steps + 1):
            await anyio.sleep(seconds / steps)
            await ctx.report_progress(i, steps)
        return f"Completed {steps} steps"

    @mcp.tool()
    async def ask_user(ctx: Context, question: str = "What is your name?") -> str:
        """Ask the client a question (elicitation) and answer with what it said."""
        r = await ctx.elicit(message=question, schema=Answer)
        if r.action == "accept":
            return f"You said: {r.data.answer}"
        return f"The user chose to {r.action}"

    app = mcp.streamable_http_app()
    obs.manager = mcp.session_manager
    return app


def instrument(obs: Observations) -> None:
    """Probes on the stack's insides, read only when asked: live transports
    (for the request streams they hold) and request handlers running."""
    init = StreamableHTTPServerTransport.__init__

    def tracked_init(self, *a, **kw):
        init(self, *a, **kw)
        obs.transports.add(self)

    StreamableHTTPServerTransport.__init__ = tracked_init
    handle = Server._handle_request

    async def counted(self, *a, **kw):
        obs.handlers += 1
        try:
            return await handle(self, *a, **kw)
        finally:
            obs.handlers -= 1

    Server._handle_request = counted


def main() -> None:
    env = os.environ.get
    on = lambda name: env(name, "0") == "1"  # noqa: E731
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--stateless", action="store_true", default=on("MCPSIM_STATELESS"))
    p.add_argument("--json-response", action="store_true", default=on("MCPSIM_JSON_RESPONSE"))
    p.add_argument("--event-store", action="store_true", default=on("MCPSIM_EVENT_STORE"))
    timeout = env("MCPSIM_GRACEFUL_TIMEOUT")
    p.add_argument("--graceful-timeout", type=float, default=float(timeout) if timeout else None)
    p.add_argument("--allowed-hosts", default=env("MCPSIM_ALLOWED_HOSTS"))
    p.add_argument("--allowed-origins", default=env("MCPSIM_ALLOWED_ORIGINS"))
    args = p.parse_args()
    obs = Observations(os.environ.get("MCPSIM_OBSERVATIONS_FILE"))
    instrument(obs)
    app = Tracking(build(args, obs), obs)
    obs.changed()
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=args.graceful_timeout,
    )
    # After uvicorn configured its loggers: "uvicorn" does not propagate to
    # the root logger, so it gets the handler too.
    keep = KeepLog(obs)
    logging.getLogger().addHandler(keep)
    logging.getLogger("uvicorn").addHandler(keep)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
