"""Interop: the official Python SDK client (`mcp`, pinned in interop/requirements.txt)
against `mcpsim serve`.

It initializes, lists tools, calls a fast tool, a slow tool (over an SSE
response that stays open for a second) and a tool that reports progress, and
checks every answer. Exit 0 if all holds; otherwise one line per problem and
exit 1.

    python interop/python_client.py http://127.0.0.1:PORT/mcp
"""

import asyncio
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client


def text(result):
    return "".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def main(url: str) -> list[str]:
    problems: list[str] = []

    def expect(what: str, got, want):
        status = "ok" if got == want else "MISMATCH"
        print(f"{status:8} {what}: {got!r}" + ("" if got == want else f" (wanted {want!r})"))
        if got != want:
            problems.append(what)

    async with streamablehttp_client(url) as (read, write, get_session_id):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            print(f"ok       initialize: {init.serverInfo.name} {init.serverInfo.version}, "
                  f"protocol {init.protocolVersion}, session {get_session_id()}")
            if not get_session_id():
                problems.append("no session id")

            tools = await session.list_tools()
            names = sorted(t.name for t in tools.tools)
            for want in ["get_greeting", "progress_operation", "slow_operation"]:
                expect(f"tools/list has {want}", want in names, True)

            r = await session.call_tool("get_greeting", {"name": "interop"})
            expect("get_greeting", text(r), "Hello, interop!")

            r = await session.call_tool("slow_operation", {"seconds": 1})
            expect("slow_operation", text(r), "Completed after 1 seconds")

            seen: list[float] = []

            async def on_progress(progress, total, message):
                seen.append(progress)

            r = await session.call_tool(
                "progress_operation", {"seconds": 0.6, "steps": 3}, progress_callback=on_progress
            )
            expect("progress_operation", text(r), "Completed 3 steps")
            expect("progress notifications received", len(seen), 3)
            expect("progress values increase", seen == sorted(seen) and len(set(seen)) == len(seen), True)

    return problems


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python_client.py URL", file=sys.stderr)
        sys.exit(2)
    bad = asyncio.run(main(sys.argv[1]))
    if bad:
        print(f"FAILED: {', '.join(bad)}")
        sys.exit(1)
    print("all checks passed")
