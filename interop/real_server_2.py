"""The real Python stack under test at mcp 2.3.0: MCPServer on uvicorn, with
the tools mcpsim's scenarios call, behind the ASGI tracking middleware of
interop/tracking.py. interop/real_server.py is the same for mcp 1.20.0; this
one runs in the virtualenv `MCPSIM_RELEASE=2.3 . interop/venv.sh` makes.

    python interop/real_server_2.py --port 8000 [--stateless] [--json-response]
                                    [--event-store] [--graceful-timeout SECONDS]
                                    [--session-idle-timeout SECONDS]
                                    [--allowed-hosts H,..] [--allowed-origins O,..]
                                    [--patch FILE]...

Under `mcpsim drive --server-cmd`, the scenario's [server] settings arrive as
MCPSIM_STATELESS, MCPSIM_JSON_RESPONSE, MCPSIM_EVENT_STORE (0/1),
MCPSIM_GRACEFUL_TIMEOUT and MCPSIM_SESSION_IDLE_TIMEOUT (seconds) and
MCPSIM_ALLOWED_HOSTS/_ORIGINS (comma lists; DNS-rebinding protection on with
exactly those). What is not set is left to mcp 2.3's own defaults: sessions
idle for 30 minutes are reaped, and with host 127.0.0.1 (or localhost, ::1)
DNS-rebinding protection allows only loopback hosts and origins.

--patch FILE (repeatable; or MCPSIM_PATCH, a comma list) runs the stack with
a patch applied, without touching site-packages: before anything of the
stack is imported, the installed package each patch touches (its paths are
a/<package>/..., b/<package>/...) is copied into a fresh temporary directory,
the patch applied there with `git apply -p1`, and that directory put first
on sys.path. A patch that does not apply stops the server (exit code 2). The
observations name the patches in their "server" line.

The observations are those of interop/tracking.py (format in
src/real/observe.rs), served at GET /__mcpsim/observations and written to
$MCPSIM_OBSERVATIONS_FILE when set. The probes read mcp 2.3's insides: the
request handlers running (ServerRunner._on_request, where 2.x dispatches
every request), the session manager's transports and their request streams,
and each session's idle deadline, as `expires_at` (epoch seconds; null while
a request or GET stream holds the session, or without an idle timeout).

The tools match mcpsim's (src/mcp/tools.rs): get_greeting, slow_operation,
progress_operation, ask_user, with the same texts.
"""

from __future__ import annotations

# Only the standard library until the patches are in place.
import argparse
import atexit
import glob
import importlib
import importlib.util
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time


def cli() -> argparse.ArgumentParser:
    env = os.environ.get
    on = lambda name: env(name, "0") == "1"  # noqa: E731
    seconds = lambda name: float(env(name)) if env(name) else None  # noqa: E731
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--stateless", action="store_true", default=on("MCPSIM_STATELESS"))
    p.add_argument("--json-response", action="store_true", default=on("MCPSIM_JSON_RESPONSE"))
    p.add_argument("--event-store", action="store_true", default=on("MCPSIM_EVENT_STORE"))
    p.add_argument("--graceful-timeout", type=float, default=seconds("MCPSIM_GRACEFUL_TIMEOUT"))
    p.add_argument(
        "--session-idle-timeout",
        type=float,
        default=seconds("MCPSIM_SESSION_IDLE_TIMEOUT"),
        metavar="SECONDS",
        help="reap a session idle this long (default: mcp's own, 30 minutes)",
    )
    p.add_argument("--allowed-hosts", default=env("MCPSIM_ALLOWED_HOSTS"))
    p.add_argument("--allowed-origins", default=env("MCPSIM_ALLOWED_ORIGINS"))
    p.add_argument(
        "--patch",
        action="append",
        metavar="FILE",
        help="apply this patch to the installed stack, in a copy (repeatable; default: $MCPSIM_PATCH)",
    )
    return p


def fail(msg: str) -> None:
    print(f"real_server_2.py: {msg}", file=sys.stderr)
    sys.exit(2)


def touched_packages(text: str) -> list[str]:
    """The top-level directories a -p1 patch's paths name, in order."""
    names: list[str] = []
    for line in text.splitlines():
        if line.startswith("diff --git "):
            paths = line.split()[2:4]
        elif line.startswith(("--- ", "+++ ")):
            paths = [line[4:].split("\t")[0].strip()]
        else:
            continue
        for path in paths:
            if path == "/dev/null" or "/" not in path:
                continue
            parts = path.split("/")
            if parts[0] in ("a", "b") and len(parts) > 2 and parts[1] not in names:
                names.append(parts[1])
    return names


PATCH_DIR_PREFIX = "mcpsim-patch-"


def sweep_patch_dirs() -> None:
    """Remove the patched copies of servers that are gone. A server removes
    its own at exit, but not when it is killed, nor on SIGTERM: uvicorn ends
    its graceful shutdown by re-raising the signal, which skips atexit."""
    for d in glob.glob(os.path.join(tempfile.gettempdir(), PATCH_DIR_PREFIX + "*-*")):
        pid = os.path.basename(d)[len(PATCH_DIR_PREFIX) :].split("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except OSError:  # alive, someone else's
            pass


def apply_patch(path: str) -> None:
    """Put a patched copy of the packages `path` touches first on sys.path."""
    patch = os.path.abspath(path)
    try:
        with open(patch) as f:
            names = touched_packages(f.read())
    except OSError as e:
        fail(f"cannot read patch {path}: {e.strerror}")
    if not names:
        fail(f"patch {path} names no package (expected paths like a/<package>/file.py)")
    tmp = tempfile.mkdtemp(prefix=f"{PATCH_DIR_PREFIX}{os.getpid()}-")
    atexit.register(shutil.rmtree, tmp, True)
    for name in names:
        spec = importlib.util.find_spec(name)  # a top-level name: finds, does not import
        if spec is None or not spec.submodule_search_locations:
            fail(f"patch {path} touches {name}, which is not an installed package")
        shutil.copytree(
            spec.submodule_search_locations[0],
            os.path.join(tmp, name),
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    # The ceiling keeps git from taking an enclosing repository's work tree
    # for the place the paths are relative to.
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=os.path.dirname(tmp))
    r = subprocess.run(
        ["git", "apply", "-p1", patch], cwd=tmp, env=env, capture_output=True, text=True
    )
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or [f"git apply exited {r.returncode}"])[0]
        fail(f"patch {path} does not apply to {', '.join(names)}: {why}")
    sys.path.insert(0, tmp)
    importlib.invalidate_caches()


ARGS = cli().parse_args()
if ARGS.patch is None:
    ARGS.patch = [p for p in os.environ.get("MCPSIM_PATCH", "").split(",") if p]
if ARGS.patch:
    sweep_patch_dirs()
for _patch in ARGS.patch:
    apply_patch(_patch)

import anyio  # noqa: E402
import uvicorn  # noqa: E402

from mcp.server.mcpserver import Context, MCPServer  # noqa: E402
from mcp.server.runner import ServerRunner  # noqa: E402
from mcp.server.streamable_http import StreamableHTTPServerTransport  # noqa: E402
from mcp.server.transport_security import TransportSecuritySettings  # noqa: E402

from scenario_tools import register_tools  # noqa: E402
from tracking import InMemoryEventStore, Observations, Tracking, instrument, keep_log  # noqa: E402


def expires_at(t: StreamableHTTPServerTransport) -> float | None:
    """When the transport's idle scope will fire (epoch seconds), if nothing
    else arrives; None when it will not: no idle timeout, or a request (or a
    GET stream) in flight, which holds the deadline at infinity."""
    scope = t.idle_scope
    if scope is None or math.isinf(scope.deadline):
        return None
    try:
        return time.time() + (scope.deadline - anyio.current_time())
    except Exception:  # no running event loop to read the deadline's clock
        return None


class Observations2(Observations):
    """What mcp 2.3.0 holds: the session manager's transports by session id,
    each with its request streams and its idle scope."""

    def expires_at(self, transport) -> float | None:
        return expires_at(transport)


def build(args, obs: Observations2):
    mcp = MCPServer("mcpsim-real")

    register_tools(mcp, Context)

    options = {}
    if args.allowed_hosts is not None or args.allowed_origins is not None:
        options["transport_security"] = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=[h for h in (args.allowed_hosts or "").split(",") if h],
            allowed_origins=[o for o in (args.allowed_origins or "").split(",") if o],
        )
    if args.session_idle_timeout is not None:
        options["session_idle_timeout"] = args.session_idle_timeout
    app = mcp.streamable_http_app(
        json_response=args.json_response,
        stateless_http=args.stateless,
        event_store=InMemoryEventStore() if args.event_store else None,
        host=args.host,
        **options,
    )
    obs.manager = mcp.session_manager
    # A stateless manager keeps no session to reap.
    obs.session_idle_timeout = None if args.stateless else obs.manager.session_idle_timeout
    return app


def main() -> None:
    args = ARGS
    obs = Observations2(
        os.environ.get("MCPSIM_OBSERVATIONS_FILE"),
        patched=[os.path.basename(p) for p in args.patch],
    )
    # 2.x dispatches every request through `ServerRunner.on_request`, a cached
    # property returning the bound `_on_request`, looked up on first use:
    # replacing the class attribute before any runner exists reaches every
    # dispatch path.
    instrument(obs, StreamableHTTPServerTransport, ServerRunner, "_on_request")
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
