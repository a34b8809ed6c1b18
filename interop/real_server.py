"""The real Python stack under test: FastMCP (mcp 1.20.0) on uvicorn, with the
tools mcpsim's scenarios call, behind the ASGI tracking middleware of
interop/tracking.py. (interop/real_server_2.py is the same for mcp 2.3.0.)

    python interop/real_server.py --port 8000 [--stateless] [--json-response]
                                  [--event-store] [--graceful-timeout SECONDS]

Under `mcpsim drive --server-cmd`, the scenario's [server] settings arrive as
MCPSIM_STATELESS, MCPSIM_JSON_RESPONSE, MCPSIM_EVENT_STORE (0/1),
MCPSIM_GRACEFUL_TIMEOUT (seconds) and MCPSIM_ALLOWED_HOSTS/_ORIGINS (comma
lists; DNS-rebinding protection on). MCPSIM_SESSION_IDLE_TIMEOUT has no
counterpart in mcp 1.20.0, which never reaps a session: every session's
`expires_at` and the probe's `session_idle_timeout` are null.

The middleware is the corrected version of the seed repro's: a response is
complete only when an `http.response.body` with `more_body: False` was sent.
For every call it records the response start, the bodies, the final body,
the `http.disconnect` the app received, when the app returned and whether
uvicorn had registered the client's disconnect by then (the #1437 line). It
also keeps WARNING+ log records; this file's probes read, when asked, the
sessions and request streams the transport still holds and the request
handlers running (Server._handle_request, which mcp 1.20 dispatches to).

All of it is served at GET /__mcpsim/observations (outside the app), and
written after every change to $MCPSIM_OBSERVATIONS_FILE when that is set, so
that `mcpsim drive --server-cmd` can read a process it has killed. The format
is documented in src/real/observe.rs. Times are epoch seconds.

The tools match mcpsim's (src/mcp/tools.rs): get_greeting, slow_operation,
progress_operation, ask_user, with the same texts.
"""

from __future__ import annotations

import argparse
import os

import uvicorn

from mcp.server.fastmcp import Context, FastMCP
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.transport_security import TransportSecuritySettings

from scenario_tools import register_tools
from tracking import InMemoryEventStore, Observations, Tracking, instrument, keep_log


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

    register_tools(mcp, Context)

    app = mcp.streamable_http_app()
    obs.manager = mcp.session_manager
    return app


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
    # mcp 1.20 dispatches a request to its handler in Server._handle_request.
    instrument(obs, StreamableHTTPServerTransport, Server, "_handle_request")
    app = Tracking(build(args, obs), obs)
    obs.open_journal()
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=args.graceful_timeout,
    )
    keep_log(obs)  # after uvicorn configured its loggers
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
