"""The four tools mcpsim's scenarios call, for a real python-sdk server of
either release: the same names, arguments and answers as mcpsim's own
(src/mcp/tools.rs), so a real answer can be told from another request's.

    register_tools(server, Context)

registers them on `server` (FastMCP in mcp 1.20, MCPServer in 2.x) with its
release's `Context` class, which the SDK recognises by annotation to hand a
tool its request context. This module leaves annotations as objects (no
`from __future__ import annotations`), so that `Context` here is the class
itself, not a name the SDK would resolve in this module's globals.
"""

import anyio
from pydantic import BaseModel


def seconds_text(s: float) -> str:
    """A float as Rust's Display writes it (mcpsim's tool texts): 2 → "2"."""
    t = repr(float(s))
    return t[:-2] if t.endswith(".0") else t


class Answer(BaseModel):
    """What `ask_user` asks the client for."""

    answer: str


def register_tools(server, Context) -> None:  # noqa: N803 - the SDK's class, passed in
    """Register get_greeting, slow_operation, progress_operation, ask_user."""

    @server.tool()
    def get_greeting(name: str = "world") -> str:
        """Return a greeting at once."""
        return f"Hello, {name}!"

    @server.tool()
    async def slow_operation(seconds: float = 2) -> str:
        """Sleep for `seconds`, then answer."""
        await anyio.sleep(seconds)
        return f"Completed after {seconds_text(seconds)} seconds"

    @server.tool()
    async def progress_operation(ctx: Context, seconds: float = 2, steps: int = 4) -> str:
        """Sleep for `seconds` in `steps`, reporting progress after each."""
        steps = max(1, min(100, steps))
        for i in range(1, steps + 1):
            await anyio.sleep(seconds / steps)
            await ctx.report_progress(i, steps)
        return f"Completed {steps} steps"

    @server.tool()
    async def ask_user(ctx: Context, question: str = "What is your name?") -> str:
        """Ask the client a question (elicitation) and answer with what it said."""
        r = await ctx.elicit(message=question, schema=Answer)
        if r.action == "accept":
            return f"You said: {r.data.answer}"
        return f"The user chose to {r.action}"
