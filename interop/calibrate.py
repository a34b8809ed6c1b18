"""How long the real Python stack takes to answer, by request kind: the
figures the model's cost table (src/servers/python_sdk/cost.rs) is
calibrated against.

    python3 interop/calibrate.py --release 1.20|2.3 [--processes 8] [--rounds 8]
        [--mode sse|json|stateless] [--event-store] [--observations-file]
        [--model | --compare] [--print-scenario] [--out DIR]

For each of `--processes` fresh server processes (interop/real_server.py for
1.20, interop/real_server_2.py for 2.3, on a free loopback port) one client
sends, one request at a time and one connection per request as mcpsim's
client does, 5 ms apart (so that the work a request leaves behind — the app
returning, the connection closing — is done before the next arrives, as in
simulation, where a link's round trip separates them): initialize, notifications/initialized, then `--rounds` times
tools/list, tools/call get_greeting, tools/call slow_operation (50 ms),
tools/call progress_operation (50 ms, 2 steps), ping; then (stateful SSE
only) a GET stream held open 50 ms, and DELETE. The client stamps each
request when its bytes are handed to the kernel (`sent`) and when the
response head, the first body bytes and the end of the body arrive; the
server's tracking middleware (interop/tracking.py) stamps when uvicorn
called the app, `http.response.start`, the first and the final
`http.response.body`. Both read the same clock (time.time(), one machine),
so per request:

    arrival → app called      uvicorn: read and parse the request, create the task
    app called → start        Starlette, the session manager, the transport's checks
                              (and, for a JSON response, the whole dispatch)
    start → first body        the first SSE event: dispatch, handler, routing, encoding
    first → final body        the rest of the response
    final body → client end   the write, and the loopback, back to the client

A tool's own sleep is subtracted from the segment it falls in. Loopback
latency (tens of microseconds) is inside `arrival → app called`.

`--model` measures the model the same way, in simulation: the same
sequence as a scenario (one client, a 1 ms link; printed by
`--print-scenario`), run with `mcpsim run ... --observations FILE` over one
seed per "process", each request stamped from the client's record (sent,
plus the link's two one-way trips before the request is read) and the
ASGI tracking layer's (called, start, first and final body). Virtual time
moves in 1 ms ticks; the model's cost ledger rounds each wait to a tick
stochastically, so the mean of a segment over many requests compares with the
real mean (the percentiles are whole ticks), a single stamp does not. `--compare` runs both and prints
one table, "real | model" in each cell.

`--observations-file` makes the server write its observations file, as it
does under `mcpsim drive --server-cmd` (the fidelity runs): the difference
between the two tables is what that instrumentation costs. `--interop-dir
DIR` takes the real server and its middleware from another checkout's
`interop/` (e.g. `git worktree add /tmp/old 325ae77`, whose middleware
rewrote the whole document at every change; it has no first-body stamp, so
the segments around the first body print "—").

Writes DIR/real.json and DIR/model.json (every request with its stamps)
and prints a table per request kind: n, then for each segment the mean and
the 10th–90th percentiles in milliseconds; the first request of each kind
in a process (cold) is its own row.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
SERVERS = {"1.20": ROOT / "interop" / "real_server.py", "2.3": ROOT / "interop" / "real_server_2.py"}
VENVS = {"1.20": ROOT / "target" / "interop" / "venv", "2.3": ROOT / "target" / "interop" / "venv-2.3"}
MCPSIM = ROOT / "target" / "release" / "mcpsim"
SLOW = 0.05  # the slow tool's sleep, seconds
PROGRESS = 0.05  # the progress tool's total sleep, seconds
GAP_S = 0.005  # the pause before each request, seconds (--gap)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port: int, proc: subprocess.Popen, what: str) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"calibrate.py: {what} exited {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"calibrate.py: {what} is not listening on {port} after 15 s")


class Response:
    def __init__(self):
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.head_at: float | None = None
        self.first_at: float | None = None
        self.end_at: float | None = None


def exchange(port: int, method: str, headers: dict[str, str], body: bytes | None,
             hold: float | None = None) -> tuple[float, Response]:
    """One request on its own connection. Returns when it was sent and the
    response with the time of its head, its first body bytes and its end
    (the chunked terminator, Content-Length reached, or — after `hold`
    seconds of an open stream — our own close)."""
    lines = [f"{method} /mcp HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    for k, v in headers.items():
        lines.append(f"{k}: {v}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    r = Response()
    sent = time.time()
    s.sendall(raw)
    buf = b""
    head_end = -1
    deadline = None
    while True:
        if hold is not None and r.head_at is not None:
            deadline = deadline or (r.head_at + hold)
            s.settimeout(max(0.0, deadline - time.time()))
        try:
            chunk = s.recv(65536)
        except (TimeoutError, socket.timeout):
            r.end_at = time.time()
            break
        now = time.time()
        if not chunk:
            r.end_at = r.end_at or now
            break
        buf += chunk
        if head_end < 0:
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                continue
            r.head_at = now
            head = buf[:head_end].decode("latin-1").split("\r\n")
            r.status = int(head[0].split()[1])
            for line in head[1:]:
                k, _, v = line.partition(":")
                r.headers[k.strip().lower()] = v.strip()
            head_end += 4
        rest = buf[head_end:]
        if rest and r.first_at is None:
            r.first_at = now
        if r.headers.get("transfer-encoding") == "chunked":
            if rest.endswith(b"0\r\n\r\n"):
                r.end_at = now
                r.body = rest
                break
        elif len(rest) >= int(r.headers.get("content-length", "0")):
            r.end_at = now
            r.body = rest
            break
    s.close()
    return sent, r


def rpc(i: int | None, method: str, params: dict | None = None) -> bytes:
    m: dict = {"jsonrpc": "2.0", "method": method}
    if i is not None:
        m["id"] = i
    if params is not None:
        m["params"] = params
    return json.dumps(m).encode()


def run_process(port: int, mode: str, rounds: int) -> list[dict]:
    """The request sequence against one fresh process."""
    out: list[dict] = []
    base = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    sid: str | None = None
    proto = "2025-06-18"
    n = 0

    def post(kind: str, method: str, params=None, notify=False, tool_sleep=0.0):
        nonlocal n, sid, proto
        h = dict(base)
        if sid and mode != "stateless":
            h["mcp-session-id"] = sid
        if method != "initialize":
            h["mcp-protocol-version"] = proto
        n += 1
        # Let the last request's own tail (the app returning, the connection
        # closing) finish first, as the simulated link's round trip does.
        time.sleep(GAP_S)
        sent, r = exchange(port, "POST", h, rpc(None if notify else n, method, params))
        if method == "initialize":
            sid = r.headers.get("mcp-session-id")
            text = r.body.decode("utf-8", "replace")
            at = text.find('"protocolVersion":"')
            if at >= 0:
                proto = text[at + 19 : text.find('"', at + 19)]
        out.append({"kind": kind, "sent": sent, "status": r.status, "head_at": r.head_at,
                    "first_at": r.first_at, "end_at": r.end_at, "tool_sleep": tool_sleep})

    init = {"protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "calibrate", "version": "0"}}
    post("initialize", "initialize", init)
    post("notifications/initialized", "notifications/initialized", notify=True)
    for _ in range(rounds):
        post("tools/list", "tools/list", {})
        post("tools/call get_greeting", "tools/call", {"name": "get_greeting", "arguments": {"name": "c"}})
        post("tools/call slow_operation", "tools/call",
             {"name": "slow_operation", "arguments": {"seconds": SLOW}}, tool_sleep=SLOW)
        post("tools/call progress_operation", "tools/call",
             {"name": "progress_operation", "arguments": {"seconds": PROGRESS, "steps": 2},
              "_meta": {"progressToken": n + 1}}, tool_sleep=PROGRESS)
        post("ping", "ping", {})
    # More sessions in the same (now warm) process: their initialize is warm.
    for _ in range(2):
        sid = None
        post("initialize", "initialize", init)
        post("notifications/initialized", "notifications/initialized", notify=True)
    if mode == "sse" and sid:
        h = {"Accept": "text/event-stream", "mcp-session-id": sid, "mcp-protocol-version": proto}
        sent, r = exchange(port, "GET", h, None, hold=0.05)
        out.append({"kind": "GET stream", "sent": sent, "status": r.status, "head_at": r.head_at,
                    "first_at": r.first_at, "end_at": None, "tool_sleep": 0.0})
        time.sleep(0.05)
        h = {"mcp-session-id": sid, "mcp-protocol-version": proto}
        sent, r = exchange(port, "DELETE", h, None)
        out.append({"kind": "DELETE", "sent": sent, "status": r.status, "head_at": r.head_at,
                    "first_at": r.first_at, "end_at": r.end_at, "tool_sleep": 0.0})
    return out


def observations(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__mcpsim/observations", timeout=10) as f:
        return json.load(f)


def scenario_text(release: str, mode: str, event_store: bool, rounds: int) -> str:
    """The request sequence of run_process, as a scenario for the model."""
    lines = [
        "# interop/calibrate.py's request sequence: one client, one request at a time,",
        "# one connection per request, on a 1 ms link.",
        'name = "calibration"',
        'duration = "60s"',
        "",
        "[server]",
        f'stack = "python-sdk-{release}"',
        f'mode = "{"stateless" if mode == "stateless" else "stateful"}"',
        f'response = "{"sse" if mode == "sse" else "json"}"',
        f"event_store = {'true' if event_store else 'false'}",
        "",
        "[[client]]",
        'name = "c1"',
        "script = [",
        '  { initialize = { protocol = "2025-11-25" } },',
        '  { notify = "notifications/initialized" },',
    ]
    for _ in range(rounds):
        lines += [
            '  { request = "tools/list", params = {} },',
            '  { call = "get_greeting", args = { name = "c" } },',
            f'  {{ call = "slow_operation", args = {{ seconds = {SLOW} }} }},',
            f'  {{ call = "progress_operation", args = {{ seconds = {PROGRESS}, steps = 2 }}, progress = true }},',
            "  { ping = {} },",
        ]
    for _ in range(2):
        lines += ['  { initialize = { protocol = "2025-11-25" } },', '  { notify = "notifications/initialized" },']
    lines += ["]", "", "[network]", 'links = { c1 = "1ms" }', ""]
    return "\n".join(lines)


LINK = 0.001  # the scenario's one-way link latency, seconds


def seconds(t: str | None) -> float | None:
    return None if t is None else float(t[:-1])


def model_process(args, k: int, path: str) -> list[dict]:
    """One seed of the model: its requests with the same stamps as a real process's."""
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [str(MCPSIM), "run", path, "--seed", str(k), "--server",
               f"python-sdk-{args.release}", "--observations", f.name]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode not in (0, 1):
            sys.exit(f"calibrate.py: {' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
        o = json.load(open(f.name))
    reqs = [q for q in o["requests"] if q["http"] == "POST"]
    calls = o["asgi"]
    if len(calls) != len(reqs):
        sys.exit(f"calibrate.py: the model made {len(calls)} calls for {len(reqs)} requests (seed {k})")
    out = []
    seen = set()
    for q, c in zip(reqs, calls):
        kind = q["what"]
        sleep = SLOW if kind == "tools/call slow_operation" else PROGRESS if kind == "tools/call progress_operation" else 0.0
        out.append({
            "kind": kind, "process": k, "cold": kind not in seen, "tool_sleep": sleep,
            # The request is read two one-way trips after the client began:
            # turmoil's connect, then the request itself.
            "sent": seconds(q["sent_at"]) + 2 * LINK,
            "called_at": seconds(c["called_at"]),
            "start_at": seconds((c.get("start") or {}).get("at")),
            "first_body_at": seconds(c.get("first_body_at")),
            "final_body_at": seconds(c.get("final_body_at")),
            "end_at": None, "status": (c.get("start") or {}).get("status"),
        })
        seen.add(kind)
    return out


def one_process(args, k: int) -> list[dict]:
    port = free_port()
    env = dict(os.environ)
    obs_file = None
    server = SERVERS[args.release]
    if args.interop_dir:
        server = args.interop_dir / server.name
    cmd = [str(VENVS[args.release] / "bin" / "python"), str(server), "--port", str(port)]
    env["MCPSIM_STATELESS"] = "1" if args.mode == "stateless" else "0"
    env["MCPSIM_JSON_RESPONSE"] = "1" if args.mode == "json" else "0"
    env["MCPSIM_EVENT_STORE"] = "1" if args.event_store else "0"
    if args.observations_file:
        obs_file = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        env["MCPSIM_OBSERVATIONS_FILE"] = obs_file
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc, " ".join(cmd[:2]))
        time.sleep(0.2)  # past the startup's own work
        reqs = run_process(port, args.mode, args.rounds)
        time.sleep(0.1)
        doc = observations(port)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if obs_file:
            os.unlink(obs_file)
    calls = doc.get("calls", [])
    if len(calls) != len(reqs):
        sys.exit(f"calibrate.py: {len(reqs)} requests sent, {len(calls)} calls recorded")
    seen = set()
    for r, c in zip(reqs, calls):
        r["process"] = k
        r["cold"] = r["kind"] not in seen
        seen.add(r["kind"])
        r["called_at"] = c.get("called_at")
        r["start_at"] = (c.get("start") or {}).get("at")
        r["first_body_at"] = c.get("first_body_at")
        r["final_body_at"] = c.get("final_body_at")
    return reqs


SEGMENTS = [
    ("arrival→called", "sent", "called_at"),
    ("called→start", "called_at", "start_at"),
    ("start→first", "start_at", "first_body_at"),
    ("first→final", "first_body_at", "final_body_at"),
    ("final→client", "final_body_at", "end_at"),
    ("arrival→final", "sent", "final_body_at"),
]


def segment(r: dict, a: str, b: str) -> float | None:
    if r.get(a) is None or r.get(b) is None:
        return None
    d = r[b] - r[a]
    # The tool's sleep falls in the segment that ends with its answer.
    if r["tool_sleep"] and (b == ("start_at" if r.get("json") else "first_body_at")
                            or (a, b) == ("sent", "final_body_at")):
        d -= r["tool_sleep"]
    return d * 1000


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))]


def label(r: dict) -> str:
    return r["kind"] + (" (cold)" if r["cold"] else "")


def cell(rs: list[dict], a: str, b: str) -> str:
    xs = [x for x in (segment(r, a, b) for r in rs) if x is not None]
    if not xs:
        return "—"
    return f"{statistics.fmean(xs):.2f} [{pct(xs, 0.1):.2f}–{pct(xs, 0.9):.2f}]"


def table(sets: list[list[dict]]) -> str:
    """One row per request kind; each cell the median [p10–p90] of each set, "|"
    between sets."""
    kinds: list[str] = []
    for reqs in sets:
        for r in reqs:
            if label(r) not in kinds:
                kinds.append(label(r))
    out = ["| request | n | " + " | ".join(s for s, _, _ in SEGMENTS) + " |",
           "|---|---|" + "---|" * len(SEGMENTS)]
    for k in kinds:
        groups = [[r for r in reqs if label(r) == k] for reqs in sets]
        if not all(groups):
            continue
        n = " / ".join(str(len(g)) for g in groups)
        cells = [" \\| ".join(cell(g, a, b) for g in groups) for _, a, b in SEGMENTS]
        out.append(f"| {k} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def check(real: list[dict], model: list[dict], tolerance: float, machine: float | None) -> str | None:
    """The calibration check: the model's level, then its shape.

    A machine's speed drifts from one session to the next, and it moves every request kind together: three
    sessions of the 1.20 stack on one machine gave `tools/list` 2.91, 2.71, 2.27 ms and `get_greeting` 3.78, 3.56,
    2.98 ms (FINDINGS 19.2). A per-kind bound on model/real alone therefore fails on a fast afternoon although no
    cost moved (CI did, on 2.3's `initialize`: real 2.07 ms, model 2.83). So the check splits the ratio in two: the
    machine factor, the geometric mean of the kinds' model/real ratios, says how this machine compares with the
    one the costs were calibrated on; each kind's ratio divided by that factor says whether the costs keep their
    proportions. The factor must lie within 1/(1+machine) .. 1+machine, each kind's ratio over it within
    1/(1+tolerance) .. 1+tolerance; the factor is bounded only if `machine` is given, because this one machine has
    measured factors from 0.90 to 1.82 within a day (1.20's warm `tools/list` 2.38 ms in one run, 1.34 in
    another) with every kind within 0.83-1.23 of the factor: on a machine whose speed is not under control, a
    table off by a constant factor cannot be told from a faster afternoon, and the level is printed, not judged.
    Returns the failure line, or None."""
    def bounded(x: float, tol: float = tolerance) -> bool:
        return 1 / (1 + tol) <= x <= 1 + tol

    def mean(rs: list[dict], k: str) -> float | None:
        xs = [segment(r, "sent", "final_body_at") for r in rs if r["kind"] == k and not r["cold"]]
        xs = [x for x in xs if x is not None]
        return statistics.fmean(xs) if xs else None

    ratios: dict[str, tuple[float, float, float]] = {}
    for k in sorted({r["kind"] for r in real}):
        a, b = mean(real, k), mean(model, k)
        if a is not None and b is not None and a > 0 and b > 0:
            ratios[k] = (a, b, b / a)
    if not ratios:
        return "calibrate.py: --check found no request kind measured warm on both sides"
    factor = statistics.geometric_mean(r for _, _, r in ratios.values())
    bad = []
    for k, (a, b, ratio) in ratios.items():
        ok = bounded(ratio / factor)
        print(f"check {k}: real {a:.2f} ms, model {b:.2f} ms, ratio {ratio:.2f}, "
              f"over the machine factor {ratio / factor:.2f} {'ok' if ok else 'OUT OF BOUNDS'}")
        if not ok:
            bad.append(k)
    level = machine is None or bounded(factor, machine)
    verdict = "not judged (no --check-machine)" if machine is None else ("ok" if level else "OUT OF BOUNDS")
    print(f"check machine factor (model/real over {len(ratios)} kinds): {factor:.2f} {verdict}")
    if not level:
        return (f"calibrate.py: the model's costs are {factor:.2f} times the real stack's on this machine, "
                f"outside 1/{1 + machine:.2f}..{1 + machine:.2f}")
    if bad:
        return (f"calibrate.py: against the machine factor, the model is more than {tolerance:.0%} off the real "
                f"stack for: {', '.join(bad)}")
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--release", choices=sorted(SERVERS), required=True)
    p.add_argument("--processes", type=int, default=8)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--mode", choices=["sse", "json", "stateless"], default="sse")
    p.add_argument("--event-store", action="store_true")
    p.add_argument("--observations-file", action="store_true")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", action="store_true")
    which.add_argument("--compare", action="store_true")
    p.add_argument("--print-scenario", action="store_true")
    p.add_argument("--gap", type=float, default=5.0, help="ms before each real request (default 5)")
    p.add_argument("--interop-dir", type=pathlib.Path,
                   help="take the real server and its tracking middleware from this directory (another "
                        "checkout's interop/, to measure an older middleware)")
    p.add_argument("--check", type=float, metavar="TOLERANCE",
                   help="with --compare: exit 1 unless the machine factor (the geometric mean, over the "
                        "request kinds seen warm, of model mean / real mean arrival→final) is within --check-machine "
                        "of 1 (if given) and every kind's own ratio divided by that factor within this fraction of 1 (0.35: "
                        "from 1/1.35 to 1.35)")
    p.add_argument("--check-machine", type=float, metavar="TOLERANCE", default=None,
                   help="with --check: the bound on the machine factor (0.6: from 1/1.6 to 1.6); without it "
                        "the factor is printed, not judged (one machine measured 0.90 to 1.82 within a day)")
    p.add_argument("--out", type=pathlib.Path)
    args = p.parse_args()
    if (args.check is not None and args.check < 0) or (args.check_machine is not None and args.check_machine < 0):
        p.error("--check and --check-machine take a fraction of 0 or more (0.35: from 1/1.35 to 1.35)")
    global GAP_S
    GAP_S = args.gap / 1000
    text = scenario_text(args.release, args.mode, args.event_store, args.rounds)
    if args.print_scenario:
        print(text)
        return
    sets: list[tuple[str, list[dict]]] = []
    json_mode = args.mode in ("json", "stateless")
    if not args.model:
        real: list[dict] = []
        for k in range(args.processes):
            real.extend(one_process(args, k))
        sets.append(("real", real))
    if args.model or args.compare:
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write(text)
        model: list[dict] = []
        try:
            for k in range(args.processes):
                model.extend(model_process(args, k, f.name))
        finally:
            os.unlink(f.name)
        sets.append(("model", model))
    for _, reqs in sets:
        for r in reqs:
            r["json"] = json_mode
    extra = (" + event store" if args.event_store else "") + (
        " + observations file" if args.observations_file else "")
    what = " | ".join(
        f"real mcp {args.release}" if name == "real" else f"model python-sdk-{args.release}"
        for name, _ in sets)
    print(f"{what}, {args.mode}{extra}: {args.processes} processes × {args.rounds} rounds; "
          f"ms, mean [p10–p90]")
    print(table([reqs for _, reqs in sets]))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, reqs in sets:
            (args.out / f"{name}.json").write_text(json.dumps(reqs, indent=1))
    if args.check is not None:
        if not args.compare:
            sys.exit("calibrate.py: --check needs --compare")
        real, model = sets[0][1], sets[1][1]
        sys.exit(check(real, model, args.check, args.check_machine))


if __name__ == "__main__":
    main()
