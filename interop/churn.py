"""Session churn against a running MCP server, then what it still holds.

    python3 interop/churn.py --url http://127.0.0.1:PORT/mcp --observe http://127.0.0.1:PORT2 --rounds N

Each round opens a session (initialize + notifications/initialized), lists the
tools and DELETEs the session, on one kept-alive connection. Then it reads the
observation document (src/real/observe.rs) and prints one line: the sessions
the server still registers and how many of those are terminated. A server
that forgets a DELETEd session registers none.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import urllib.parse
import urllib.request

VERSION = "2025-06-18"


def rounds(url: str, n: int) -> None:
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    base = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
    }

    def call(method: str, headers: dict, body: dict | None) -> http.client.HTTPResponse:
        data = json.dumps(body) if body is not None else None
        conn.request(method, u.path, data, headers)
        r = conn.getresponse()
        r.read()
        if r.status >= 300:
            sys.exit(f"churn.py: {method} {body and body.get('method')} answered {r.status}")
        return r

    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "churn", "version": "1"}},
    }
    for _ in range(n):
        r = call("POST", base, init)
        sid = r.getheader("mcp-session-id")
        if not sid:
            sys.exit("churn.py: initialize answered without mcp-session-id")
        h = dict(base, **{"mcp-session-id": sid, "mcp-protocol-version": VERSION})
        call("POST", h, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        call("POST", h, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        call("DELETE", h, None)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--observe", required=True, help="base URL of the observation endpoint")
    p.add_argument("--rounds", type=int, default=1000)
    p.add_argument("--label", default="")
    a = p.parse_args()
    rounds(a.url, a.rounds)
    with urllib.request.urlopen(a.observe.rstrip("/") + "/__mcpsim/observations", timeout=10) as r:
        doc = json.load(r)
    sessions = (doc.get("probe") or {}).get("sessions") or []
    terminated = sum(1 for s in sessions if s.get("terminated"))
    print(f"{a.label or doc.get('server')}: after {a.rounds} initialize+DELETE rounds, "
          f"{len(sessions)} sessions registered ({terminated} terminated)")


if __name__ == "__main__":
    main()
