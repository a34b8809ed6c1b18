//! The tools of the modelled application — FastMCP in 1.20, `MCPServer` in
//! 2.3, with the same four tool functions as `interop/real_server.py` and
//! `interop/real_server_2.py`: the seed repro's `get_greeting` (answers at
//! once) and `slow_operation` (sleeps for `seconds`, 2 by default as in the
//! seed's server); `progress_operation`, which reports progress through
//! `ctx.report_progress`; and `ask_user`, which asks the client through
//! `ctx.elicit` (an `elicitation/create` request on the call's own stream).
//!
//! Where the two releases differ is in what a tool's `ctx` does, which is the
//! dispatch layer's ([`ToolSession`]): 1.20 sends progress without
//! `related_request_id` (so the router files it under the GET stream), 2.3 on
//! the request's own stream; 2.3 refuses an elicitation where the response
//! has no room for one (JSON mode, stateless) and raises `MCPError` for an
//! error answer, which leaves the tool as a JSON-RPC error rather than an
//! `isError` result.

use std::time::Duration;

use serde_json::{Value, json};

use super::anyio::{Cx, PyResult};
use super::cost::Step;
use super::event_loop;
use crate::asgi::LocalBoxFuture;
use crate::mcp::Message;
use crate::mcp::tools::{self, text_result};

/// What a tool's `ctx` can do, as each release's dispatch layer does it.
pub trait ToolSession {
    /// `await ctx.report_progress(progress, total)` (a no-op when the client
    /// asked for no progress).
    fn report_progress<'a>(
        &'a self,
        cx: &'a Cx,
        progress: u64,
        total: u64,
    ) -> LocalBoxFuture<'a, PyResult<()>>;

    /// `await ctx.elicit(message=..., schema=Answer)`: the client's answer
    /// (1.20: the response or error message; 2.3 raises `MCPError` for an
    /// error).
    fn elicit<'a>(&'a self, cx: &'a Cx, params: Value) -> LocalBoxFuture<'a, PyResult<Message>>;
}

/// What a tool sees of its request (FastMCP's / MCPServer's `Context`).
pub struct ToolContext<'a> {
    /// The request's session, as the release's dispatch layer offers it.
    pub session: &'a dyn ToolSession,
}

/// What pydantic checks of a request's params for mcpsim's client, in both
/// releases (1.20's `ClientRequest` union, 2.3's `validate_client_request`):
/// a `tools/call` needs a `name`.
pub fn validate_params(method: &str, params: Option<&Value>) -> PyResult<()> {
    if method == "tools/call"
        && params
            .and_then(|p| p.get("name"))
            .and_then(Value::as_str)
            .is_none()
    {
        return Err(super::anyio::Exc::Other {
            class: "ValidationError",
            msg: "tools/call needs params.name".into(),
        });
    }
    Ok(())
}

/// The `tools/list` result.
pub fn list() -> Value {
    tools::list()
}

/// The `tools/call` handler: errors inside a tool become an `isError` result,
/// as FastMCP's and MCPServer's handlers do; cancellation and (2.3)
/// `MCPError` propagate.
pub async fn call(cx: &Cx, params: Option<&Value>, ctx: &ToolContext<'_>) -> PyResult<Value> {
    let name = params
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let args = params.and_then(|p| p.get("arguments"));
    // `ToolManager.call_tool` → `Tool.run` → `call_fn_with_arg_validation`:
    // pydantic validates the arguments before the function runs.
    event_loop::charge(Step::CallTool).await;
    let result = run_tool(cx, name, args, ctx).await?;
    // `_convert_to_content(result)`, `CallToolResult(...)`.
    event_loop::charge(Step::ToolResult).await;
    Ok(result)
}

/// The tool function itself.
async fn run_tool(
    cx: &Cx,
    name: &str,
    args: Option<&Value>,
    ctx: &ToolContext<'_>,
) -> PyResult<Value> {
    match name {
        "get_greeting" => Ok(text_result(
            tools::text(name, args).unwrap_or_default(),
            false,
        )),
        "slow_operation" => {
            // The seed repro's slow_operation took no argument and slept 2 s.
            let seconds = match tools::seconds(name, args) {
                Ok(s) => s,
                Err(e) => return Ok(text_result(e, true)),
            };
            tracing::info!(target: "mcpsim::tool", "slow_operation started ({seconds}s)");
            cx.sleep(Duration::from_secs_f64(seconds)).await?;
            tracing::info!(target: "mcpsim::tool", "slow_operation finished");
            Ok(text_result(
                tools::text(name, args).unwrap_or_default(),
                false,
            ))
        }
        "progress_operation" => {
            let seconds = match tools::seconds(name, args) {
                Ok(s) => s,
                Err(e) => return Ok(text_result(e, true)),
            };
            let steps = tools::steps(args);
            for i in 1..=steps {
                cx.sleep(Duration::from_secs_f64(seconds / steps as f64))
                    .await?;
                ctx.session.report_progress(cx, i, steps).await?;
            }
            Ok(text_result(
                tools::text(name, args).unwrap_or_default(),
                false,
            ))
        }
        "ask_user" => {
            let answer = ctx
                .session
                .elicit(cx, tools::elicitation_params(tools::question(args)))
                .await?;
            Ok(tools::elicitation_result(&answer))
        }
        other => Ok(text_result(format!("Unknown tool: {other}"), true)),
    }
}

/// The `notifications/progress` parameters `report_progress(i, steps)`
/// writes: 1.20 validates them into floats (`1.0`), 2.3 passes them as given.
pub fn progress_params(token: &Value, progress: u64, total: u64, as_float: bool) -> Value {
    if as_float {
        json!({"progressToken": token, "progress": progress as f64, "total": total as f64})
    } else {
        json!({"progressToken": token, "progress": progress, "total": total})
    }
}
