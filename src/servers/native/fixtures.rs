//! What the official conformance suite (`@modelcontextprotocol/conformance`
//! 0.1.16) asks a server to offer, beyond mcpsim's own tools: test tools for
//! each content type, logging, progress, sampling and elicitation; three
//! resources and a template; four prompts; completion; `logging/setLevel`.
//!
//! They are written from the suite's published expectations (names,
//! arguments, the content each check looks for), so that `mcpsim serve
//! --server native` can be scored by the suite as it is. No simulation
//! scenario calls them; they change nothing a scenario observes except the
//! length of `tools/list`.

use std::rc::Rc;
use std::time::Duration;

use serde_json::{Value, json};

use super::handler::ask;
use super::session::Session;
use crate::mcp::{Message, codes, tools::text_result};

/// A 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A minimal WAV file (header, no samples).
const WAV: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA=";

/// The server's `initialize` capabilities.
pub fn capabilities() -> Value {
    json!({
        "tools": {"listChanged": false},
        "resources": {"subscribe": true, "listChanged": false},
        "prompts": {"listChanged": false},
        "logging": {},
        "completions": {}
    })
}

fn tool(name: &str, description: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "properties": properties, "required": required}
    })
}

/// mcpsim's tools followed by the suite's.
pub fn with_tools(mut list: Value) -> Value {
    let string = |d: &str| json!({"type": "string", "description": d});
    let extra = [
        tool(
            "test_simple_text",
            "Answers with one text item.",
            json!({}),
            &[],
        ),
        tool(
            "test_image_content",
            "Answers with a PNG image.",
            json!({}),
            &[],
        ),
        tool(
            "test_audio_content",
            "Answers with a WAV clip.",
            json!({}),
            &[],
        ),
        tool(
            "test_embedded_resource",
            "Answers with an embedded text resource.",
            json!({}),
            &[],
        ),
        tool(
            "test_multiple_content_types",
            "Answers with text, an image and a resource.",
            json!({}),
            &[],
        ),
        tool(
            "test_tool_with_logging",
            "Logs three messages while it runs.",
            json!({}),
            &[],
        ),
        tool(
            "test_error_handling",
            "Always answers with a tool error.",
            json!({}),
            &[],
        ),
        tool(
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100.",
            json!({}),
            &[],
        ),
        tool(
            "test_sampling",
            "Asks the client's model to complete a prompt.",
            json!({"prompt": string("The prompt to send")}),
            &["prompt"],
        ),
        tool(
            "test_elicitation",
            "Asks the user for a username and an email.",
            json!({"message": string("What to ask")}),
            &["message"],
        ),
        tool(
            "test_elicitation_sep1034_defaults",
            "Elicits fields that all have defaults.",
            json!({}),
            &[],
        ),
        tool(
            "test_elicitation_sep1330_enums",
            "Elicits each kind of enum.",
            json!({}),
            &[],
        ),
    ];
    let schema_2020_12 = json!({
        "name": "json_schema_2020_12_tool",
        "description": "Takes arguments described in JSON Schema 2020-12.",
        "inputSchema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {"address": {"type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
            "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
            "additionalProperties": false
        }
    });
    if let Some(tools) = list.get_mut("tools").and_then(Value::as_array_mut) {
        tools.extend(extra);
        tools.push(schema_2020_12);
    }
    list
}

fn text(s: &str) -> Value {
    json!({"type": "text", "text": s})
}

fn resource(uri: &str, mime: &str, body: &str) -> Value {
    json!({"type": "resource", "resource": {"uri": uri, "mimeType": mime, "text": body}})
}

fn content(items: Vec<Value>) -> Value {
    json!({"content": items, "isError": false})
}

/// Severity order of MCP log levels (RFC 5424), least severe first.
const LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

fn severity(level: &str) -> Option<usize> {
    LEVELS.iter().position(|l| *l == level)
}

/// Send a log message on stream `related` if the client's level lets it through.
fn log(s: &Session, related: u64, level: &str, message: &str) {
    let wanted = s
        .log_level
        .borrow()
        .as_deref()
        .and_then(severity)
        .unwrap_or(0);
    if severity(level).unwrap_or(0) < wanted {
        return;
    }
    let note = json!({
        "jsonrpc": "2.0", "method": "notifications/message",
        "params": {"level": level, "logger": "mcpsim-native", "data": message}
    });
    s.log.borrow_mut().send(related, &note.to_string());
}

/// Run one of the suite's tools; `None` if `tool` is not one.
pub async fn call(
    s: &Rc<Session>,
    tool: &str,
    params: Option<&Value>,
    related: u64,
) -> Option<Value> {
    let args = params.and_then(|p| p.get("arguments"));
    let arg = |k: &str| {
        args.and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let pause = || tokio::time::sleep(Duration::from_millis(50));
    Some(match tool {
        "test_simple_text" => content(vec![text("This is a simple text response for testing.")]),
        "test_image_content" => content(vec![
            json!({"type": "image", "data": PNG, "mimeType": "image/png"}),
        ]),
        "test_audio_content" => content(vec![
            json!({"type": "audio", "data": WAV, "mimeType": "audio/wav"}),
        ]),
        "test_embedded_resource" => content(vec![resource(
            "test://embedded-resource",
            "text/plain",
            "This is an embedded resource content.",
        )]),
        "test_multiple_content_types" => content(vec![
            text("Multiple content types test:"),
            json!({"type": "image", "data": PNG, "mimeType": "image/png"}),
            resource(
                "test://mixed-content-resource",
                "application/json",
                r#"{"test":"data","value":123}"#,
            ),
        ]),
        "test_tool_with_logging" => {
            log(s, related, "info", "Tool execution started");
            pause().await;
            log(s, related, "info", "Tool processing data");
            pause().await;
            log(s, related, "info", "Tool execution completed");
            content(vec![text("Tool with logging executed successfully")])
        }
        "json_schema_2020_12_tool" => content(vec![text(&format!(
            "JSON Schema 2020-12 tool called with: {}",
            args.cloned().unwrap_or(Value::Null)
        ))]),
        "test_error_handling" => text_result(
            "This tool intentionally returns an error for testing".into(),
            true,
        ),
        "test_tool_with_progress" => {
            let token = params
                .and_then(|p| p.pointer("/_meta/progressToken"))
                .cloned();
            for (i, progress) in [0, 50, 100].into_iter().enumerate() {
                if i > 0 {
                    pause().await;
                }
                if let Some(t) = &token {
                    let note = json!({
                        "jsonrpc": "2.0", "method": "notifications/progress",
                        "params": {"progressToken": t, "progress": progress, "total": 100}
                    });
                    s.log.borrow_mut().send(related, &note.to_string());
                }
            }
            content(vec![text("Tool with progress completed")])
        }
        "test_sampling" => {
            let request = json!({
                "messages": [{"role": "user", "content": {"type": "text", "text": arg("prompt")}}],
                "maxTokens": 100
            });
            match ask(s, related, "sampling", "sampling/createMessage", request).await {
                Ok(Message::Response { result, .. }) => {
                    let said = result
                        .pointer("/content/text")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    content(vec![text(&format!("LLM response: {said}"))])
                }
                Ok(other) => text_result(format!("sampling failed: {}", other.to_json()), true),
                Err(why) => text_result(format!("sampling failed: {why}"), true),
            }
        }
        "test_elicitation" => {
            let schema = json!({
                "type": "object",
                "properties": {
                    "username": {"type": "string", "description": "User's response"},
                    "email": {"type": "string", "description": "User's email address"}
                },
                "required": ["username", "email"]
            });
            elicit(s, related, arg("message"), schema).await
        }
        "test_elicitation_sep1034_defaults" => {
            let schema = json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "User name", "default": "John Doe"},
                    "age": {"type": "integer", "description": "User age", "default": 30},
                    "score": {"type": "number", "description": "User score", "default": 95.5},
                    "status": {"type": "string", "description": "User status",
                               "enum": ["active", "inactive", "pending"], "default": "active"},
                    "verified": {"type": "boolean", "description": "Verification status", "default": true}
                },
                "required": []
            });
            elicit(
                s,
                related,
                "Please confirm these values (each has a default)",
                schema,
            )
            .await
        }
        "test_elicitation_sep1330_enums" => {
            let titled = |prefix: &str, words: [&str; 3]| {
                (1..=3)
                    .zip(words)
                    .map(|(i, w)| json!({"const": format!("value{i}"), "title": format!("{w} {prefix}")}))
                    .collect::<Vec<_>>()
            };
            let schema = json!({
                "type": "object",
                "properties": {
                    "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
                    "titledSingle": {"type": "string", "oneOf": titled("Option", ["First", "Second", "Third"])},
                    "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
                                   "enumNames": ["Option One", "Option Two", "Option Three"]},
                    "untitledMulti": {"type": "array", "minItems": 1, "maxItems": 3,
                                      "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                    "titledMulti": {"type": "array", "minItems": 1, "maxItems": 3,
                                    "items": {"anyOf": titled("Choice", ["First", "Second", "Third"])}}
                },
                "required": []
            });
            elicit(s, related, "Please pick from each list", schema).await
        }
        _ => return None,
    })
}

async fn elicit(s: &Rc<Session>, related: u64, message: &str, schema: Value) -> Value {
    let params = json!({"message": message, "requestedSchema": schema});
    match ask(s, related, "elicitation", "elicitation/create", params).await {
        Ok(Message::Response { result, .. }) => {
            let action = result.get("action").and_then(Value::as_str).unwrap_or("?");
            let said = result.get("content").cloned().unwrap_or(Value::Null);
            content(vec![text(&format!(
                "User response: action={action}, content={said}"
            ))])
        }
        Ok(other) => text_result(format!("elicitation failed: {}", other.to_json()), true),
        Err(why) => text_result(format!("elicitation failed: {why}"), true),
    }
}

/// Answer one of the suite's non-tool methods; `None` if `method` is not one.
pub fn answer(
    s: &Session,
    method: &str,
    params: Option<&Value>,
) -> Option<Result<Value, (i64, String)>> {
    let param = |k: &str| {
        params
            .and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let bad = |m: String| Err((codes::INVALID_PARAMS, m));
    Some(match method {
        "logging/setLevel" => {
            let level = param("level");
            if severity(level).is_none() {
                return Some(bad(format!("unknown log level \"{level}\"")));
            }
            *s.log_level.borrow_mut() = Some(level.to_string());
            Ok(json!({}))
        }
        "completion/complete" => {
            Ok(json!({"completion": {"values": [], "total": 0, "hasMore": false}}))
        }
        "resources/list" => Ok(json!({"resources": [
            {"uri": "test://static-text", "name": "static-text", "title": "Static text",
             "description": "A fixed text resource.", "mimeType": "text/plain"},
            {"uri": "test://static-binary", "name": "static-binary", "title": "Static binary",
             "description": "A fixed PNG image.", "mimeType": "image/png"},
            {"uri": "test://watched-resource", "name": "watched-resource", "title": "Watched",
             "description": "A resource that can be subscribed to.", "mimeType": "text/plain"}
        ]})),
        "resources/templates/list" => Ok(json!({"resourceTemplates": [
            {"uriTemplate": "test://template/{id}/data", "name": "template-data",
             "description": "Data for one id.", "mimeType": "application/json"}
        ]})),
        "resources/read" => {
            let uri = param("uri");
            let one = |mime: &str, body: Value| {
                let mut c = json!({"uri": uri, "mimeType": mime});
                if let (Some(c), Some(b)) = (c.as_object_mut(), body.as_object()) {
                    c.extend(b.clone());
                }
                Ok(json!({"contents": [c]}))
            };
            match uri {
                "test://static-text" => one(
                    "text/plain",
                    json!({"text": "This is the content of the static text resource."}),
                ),
                "test://static-binary" => one("image/png", json!({"blob": PNG})),
                "test://watched-resource" => {
                    one("text/plain", json!({"text": "Watched resource content."}))
                }
                _ => match uri
                    .strip_prefix("test://template/")
                    .and_then(|r| r.strip_suffix("/data"))
                {
                    Some(id) if !id.is_empty() && !id.contains('/') => {
                        let body = json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
                        one("application/json", json!({"text": body.to_string()}))
                    }
                    _ => Err((-32002, format!("Resource not found: {uri}"))),
                },
            }
        }
        "resources/subscribe" | "resources/unsubscribe" => Ok(json!({})),
        "prompts/list" => Ok(json!({"prompts": [
            {"name": "test_simple_prompt", "description": "A prompt without arguments."},
            {"name": "test_prompt_with_arguments", "description": "A prompt with two arguments.",
             "arguments": [
                {"name": "arg1", "description": "First test argument", "required": true},
                {"name": "arg2", "description": "Second test argument", "required": true}]},
            {"name": "test_prompt_with_embedded_resource", "description": "A prompt that embeds a resource.",
             "arguments": [{"name": "resourceUri", "description": "The resource to embed", "required": true}]},
            {"name": "test_prompt_with_image", "description": "A prompt with an image."}
        ]})),
        "prompts/get" => {
            let arg = |k: &str| {
                params
                    .and_then(|p| p.pointer(&format!("/arguments/{k}")))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            };
            let user = |c: Value| json!({"role": "user", "content": c});
            let messages = match param("name") {
                "test_simple_prompt" => vec![user(text("This is a simple prompt for testing."))],
                "test_prompt_with_arguments" => vec![user(text(&format!(
                    "Prompt with arguments: arg1='{}', arg2='{}'",
                    arg("arg1"),
                    arg("arg2")
                )))],
                "test_prompt_with_embedded_resource" => vec![
                    user(resource(
                        arg("resourceUri"),
                        "text/plain",
                        "Embedded resource content for testing.",
                    )),
                    user(text("Please process the embedded resource above.")),
                ],
                "test_prompt_with_image" => vec![
                    user(json!({"type": "image", "data": PNG, "mimeType": "image/png"})),
                    user(text("Please analyze the image above.")),
                ],
                other => return Some(bad(format!("unknown prompt \"{other}\""))),
            };
            Ok(json!({"messages": messages}))
        }
        _ => return None,
    })
}
