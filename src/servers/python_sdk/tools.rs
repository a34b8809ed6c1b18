//! The tools of the modelled FastMCP server: the seed repro's `get_greeting`
//! (answers at once) and `slow_operation` (sleeps for `seconds`, 2 by default
//! as in the seed's server); `progress_operation`, which reports progress
//! through FastMCP's `ctx.report_progress` — which in 1.20 sends the
//! notification without `related_request_id`, so the router files it under
//! the GET stream; and `ask_user`, which asks the client through
//! `ctx.elicit` (an `elicitation/create` request on the call's own stream).

use std::time::Duration;

use serde_json::{Value, json};

use super::anyio::{Cx, PyResult};
use super::session::ToolContext;
use crate::mcp::tools::{self, text_result};

/// The `tools/list` result.
pub fn list() -> Value {
    tools::list()
}

/// The `tools/call` handler: errors inside a tool become an `isError` result,
/// as FastMCP's handler does; cancellation propagates.
pub async fn call(cx: &Cx, params: Option<&Value>, ctx: &ToolContext) -> PyResult<Value> {
    let name = params
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let args = params.and_then(|p| p.get("arguments"));
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
                // ctx.report_progress: only when the client asked, and with no
                // related_request_id (FastMCP 1.20).
                if let Some(token) = &ctx.progress_token {
                    ctx.session
                        .send_notification(
                            cx,
                            "notifications/progress",
                            // `progress: float` and `total: float | None`: pydantic
                            // writes 1.0, not 1.
                            json!({"progressToken": token, "progress": i as f64, "total": steps as f64}),
                            None,
                        )
                        .await?;
                }
            }
            Ok(text_result(
                tools::text(name, args).unwrap_or_default(),
                false,
            ))
        }
        "ask_user" => {
            let answer = ctx
                .session
                .send_request(
                    cx,
                    "elicitation/create",
                    tools::elicitation_params(tools::question(args)),
                    Some(&ctx.request_id),
                )
                .await?;
            Ok(tools::elicitation_result(&answer))
        }
        other => Ok(text_result(format!("Unknown tool: {other}"), true)),
    }
}
