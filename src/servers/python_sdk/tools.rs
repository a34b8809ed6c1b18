//! The tools of the seed repro's FastMCP server: `get_greeting` (answers at
//! once) and `slow_operation` (sleeps for `seconds`, 2 by default as in the
//! seed's server).

use std::time::Duration;

use serde_json::{Value, json};

use super::anyio::{Cx, PyResult};

/// The `tools/list` result.
pub fn list() -> Value {
    json!({
        "tools": [
            {
                "name": "get_greeting",
                "description": "Return a greeting at once.",
                "inputSchema": {"type": "object", "properties": {"name": {"type": "string"}}}
            },
            {
                "name": "slow_operation",
                "description": "Sleep for `seconds`, then answer.",
                "inputSchema": {
                    "type": "object",
                    "properties": {"seconds": {"type": "number", "default": 2}}
                }
            }
        ]
    })
}

fn text_result(text: String, is_error: bool) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": is_error})
}

/// The `tools/call` handler: errors inside a tool become an `isError` result,
/// as FastMCP's handler does; cancellation propagates.
pub async fn call(cx: &Cx, params: Option<&Value>) -> PyResult<Value> {
    let name = params
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let args = params.and_then(|p| p.get("arguments"));
    match name {
        "get_greeting" => {
            let who = args
                .and_then(|a| a.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("world");
            Ok(text_result(format!("Hello, {who}!"), false))
        }
        "slow_operation" => {
            // The seed repro's slow_operation took no argument and slept 2 s.
            let seconds = match args.and_then(|a| a.get("seconds")) {
                None => 2.0,
                Some(v) => match v.as_f64() {
                    Some(s) => s,
                    None => {
                        return Ok(text_result(
                            format!(
                                "Error executing tool slow_operation: seconds must be a number, got {v}"
                            ),
                            true,
                        ));
                    }
                },
            };
            if !(0.0..=86_400.0).contains(&seconds) {
                return Ok(text_result(
                    format!("Error executing tool slow_operation: bad seconds {seconds}"),
                    true,
                ));
            }
            tracing::info!(target: "mcpsim::tool", "slow_operation started ({seconds}s)");
            cx.sleep(Duration::from_secs_f64(seconds)).await?;
            tracing::info!(target: "mcpsim::tool", "slow_operation finished");
            Ok(text_result(
                format!("Completed after {seconds} seconds"),
                false,
            ))
        }
        other => Ok(text_result(format!("Unknown tool: {other}"), true)),
    }
}
