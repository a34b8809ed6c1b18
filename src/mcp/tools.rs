//! The tools every mcpsim server offers, as a contract: names, schemas, and
//! the text each call answers with. The answer depends only on the call's
//! arguments (and, for `ask_user`, on the client's own reply), so a client can
//! check that an answer fits the request it sent.
//!
//! * `get_greeting(name)` — at once: `Hello, <name>!`
//! * `slow_operation(seconds = 2)` — after `seconds`: `Completed after <seconds> seconds`
//! * `progress_operation(seconds = 2, steps = 4)` — reports progress after each
//!   step: `Completed <steps> steps`
//! * `ask_user(question)` — asks the client (elicitation): `You said: <answer>`
//!   or `The user chose to <action>`

use serde_json::{Value, json};

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
                "inputSchema": {"type": "object", "properties": {"seconds": {"type": "number", "default": 2}}}
            },
            {
                "name": "progress_operation",
                "description": "Sleep for `seconds` in `steps`, reporting progress after each.",
                "inputSchema": {"type": "object", "properties": {"seconds": {"type": "number"}, "steps": {"type": "integer"}}}
            },
            {
                "name": "ask_user",
                "description": "Ask the client a question (elicitation) and answer with what it said.",
                "inputSchema": {"type": "object", "properties": {"question": {"type": "string"}}}
            }
        ]
    })
}

/// `get_greeting`'s `name` (default "world").
pub fn greeting_name(args: Option<&Value>) -> String {
    args.and_then(|a| a.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("world")
        .to_string()
}

/// A tool's `seconds` argument (default 2), or the error text.
pub fn seconds(tool: &str, args: Option<&Value>) -> Result<f64, String> {
    match args.and_then(|a| a.get("seconds")) {
        None => Ok(2.0),
        Some(v) => match v.as_f64() {
            Some(s) if (0.0..=86_400.0).contains(&s) => Ok(s),
            _ => Err(format!("Error executing tool {tool}: bad seconds {v}")),
        },
    }
}

/// `progress_operation`'s `steps` (default 4, 1..=100).
pub fn steps(args: Option<&Value>) -> u64 {
    args.and_then(|a| a.get("steps"))
        .and_then(Value::as_u64)
        .unwrap_or(4)
        .clamp(1, 100)
}

/// How long a `tools/call` is meant to take (zero for instant tools and
/// anything else).
pub fn duration(method: &str, params: Option<&Value>) -> std::time::Duration {
    let Some(tool) = params.and_then(|p| p.get("name")).and_then(Value::as_str) else {
        return std::time::Duration::ZERO;
    };
    match (method, tool) {
        ("tools/call", "slow_operation" | "progress_operation") => {
            let s = seconds(tool, params.and_then(|p| p.get("arguments"))).unwrap_or(0.0);
            std::time::Duration::from_secs_f64(s)
        }
        _ => std::time::Duration::ZERO,
    }
}

/// The text of a successful call.
pub fn text(tool: &str, args: Option<&Value>) -> Option<String> {
    Some(match tool {
        "get_greeting" => format!("Hello, {}!", greeting_name(args)),
        "slow_operation" => format!("Completed after {} seconds", seconds(tool, args).ok()?),
        "progress_operation" => format!("Completed {} steps", steps(args)),
        _ => return None,
    })
}

/// `ask_user`'s question.
pub fn question(args: Option<&Value>) -> &str {
    args.and_then(|a| a.get("question"))
        .and_then(Value::as_str)
        .unwrap_or("What is your name?")
}

/// The params of `ask_user`'s `elicitation/create` request.
pub fn elicitation_params(question: &str) -> Value {
    json!({
        "message": question,
        "requestedSchema": {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    })
}

/// `ask_user`'s result, from the client's answer to its elicitation.
pub fn elicitation_result(answer: &super::Message) -> Value {
    match answer {
        super::Message::Response { result, .. } => {
            match result.get("action").and_then(Value::as_str) {
                Some("accept") => {
                    let said = result
                        .pointer("/content/answer")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    text_result(format!("You said: {said}"), false)
                }
                Some(other) => text_result(format!("The user chose to {other}"), false),
                None => text_result(
                    "Error executing tool ask_user: malformed elicitation result".into(),
                    true,
                ),
            }
        }
        super::Message::Error { error, .. } => text_result(
            format!(
                "Error executing tool ask_user: {}",
                error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("error")
            ),
            true,
        ),
        _ => text_result(
            "Error executing tool ask_user: unexpected message".into(),
            true,
        ),
    }
}

/// A `CallToolResult` with one text item.
pub fn text_result(text: String, is_error: bool) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": is_error})
}

/// Does `result` answer the request `method`/`params`? `None` when the result
/// says nothing either way.
pub fn answers(method: &str, params: Option<&Value>, result: &Value) -> Option<bool> {
    match method {
        "initialize" => Some(result.get("protocolVersion").is_some()),
        "tools/list" => Some(result.get("tools").is_some_and(Value::is_array)),
        "ping" => Some(result.as_object().is_some_and(|o| o.is_empty())),
        "tools/call" => {
            let tool = params?.get("name")?.as_str()?;
            let args = params?.get("arguments");
            let got = result.pointer("/content/0/text")?.as_str()?;
            if result.get("isError").and_then(Value::as_bool) == Some(true) {
                return None;
            }
            match tool {
                "ask_user" => {
                    Some(got.starts_with("You said: ") || got.starts_with("The user chose to "))
                }
                _ => Some(text(tool, args)? == got),
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_tell_calls_apart() {
        let call = |tool: &str, args: Value| json!({"name": tool, "arguments": args});
        let greet = call("get_greeting", json!({"name": "a"}));
        assert_eq!(
            answers(
                "tools/call",
                Some(&greet),
                &text_result("Hello, a!".into(), false)
            ),
            Some(true)
        );
        assert_eq!(
            answers(
                "tools/call",
                Some(&greet),
                &text_result("Hello, b!".into(), false)
            ),
            Some(false)
        );
        let slow = call("slow_operation", json!({"seconds": 1.5}));
        assert_eq!(
            answers(
                "tools/call",
                Some(&slow),
                &text_result("Completed after 1.5 seconds".into(), false)
            ),
            Some(true)
        );
        assert_eq!(
            answers(
                "tools/call",
                Some(&slow),
                &text_result("Completed after 2 seconds".into(), false)
            ),
            Some(false)
        );
    }
}
