//! JSON-RPC 2.0 and the MCP messages mcpsim's servers and clients exchange.
//!
//! Messages stay `serde_json::Value`s on the wire; [`Message`] is the parsed
//! shape both sides route on (request, notification, response, error).

use serde_json::{Value, json};

/// The newest protocol version of the spec: what mcpsim's client asks for
/// (a server that speaks only older ones answers with its own newest).
pub const LATEST_PROTOCOL_VERSION: &str = "2025-11-25";
/// The newest protocol version python-sdk 1.20.0 speaks.
pub const PY_LATEST_PROTOCOL_VERSION: &str = "2025-06-18";
/// Versions python-sdk 1.20.0 accepts in `MCP-Protocol-Version`.
pub const SUPPORTED_PROTOCOL_VERSIONS: [&str; 3] = ["2024-11-05", "2025-03-26", "2025-06-18"];
/// What a server assumes when the header is absent.
pub const DEFAULT_NEGOTIATED_VERSION: &str = "2025-03-26";
/// Versions python-sdk 2.3.0 negotiates through `initialize`
/// (`mcp_types.version.HANDSHAKE_PROTOCOL_VERSIONS`); its newest,
/// `LATEST_HANDSHAKE_VERSION`, is what it offers back otherwise.
pub const HANDSHAKE_PROTOCOL_VERSIONS: [&str; 4] =
    ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// Every released protocol revision, oldest first
/// (`mcp_types.version.KNOWN_PROTOCOL_VERSIONS`).
pub const KNOWN_PROTOCOL_VERSIONS: [&str; 5] = [
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

/// `is_version_at_least(version, minimum)`: an unknown `version` is never
/// new enough.
pub fn is_version_at_least(version: &str, minimum: &str) -> bool {
    let at = |v: &str| KNOWN_PROTOCOL_VERSIONS.iter().position(|k| *k == v);
    matches!((at(version), at(minimum)), (Some(v), Some(m)) if v >= m)
}

/// JSON-RPC error codes used by the model.
pub mod codes {
    /// Invalid JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// Unknown method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Bad parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Server error.
    pub const INTERNAL_ERROR: i64 = -32603;
}

/// A parsed JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Has an id and a method.
    Request {
        id: Value,
        method: String,
        params: Option<Value>,
    },
    /// A method without an id.
    Notification {
        method: String,
        params: Option<Value>,
    },
    /// A result for an id.
    Response { id: Value, result: Value },
    /// An error for an id.
    Error { id: Value, error: Value },
}

impl Message {
    /// Validate a JSON value as a JSON-RPC message (as pydantic's
    /// `JSONRPCMessage` does, loosely).
    pub fn parse(v: &Value) -> Result<Message, String> {
        let obj = v.as_object().ok_or("not a JSON object")?;
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err("jsonrpc must be \"2.0\"".into());
        }
        let id = obj.get("id").cloned();
        if let Some(id) = &id
            && !(id.is_string() || id.is_i64() || id.is_u64())
        {
            return Err("id must be a string or an integer".into());
        }
        let method = obj.get("method").map(|m| {
            m.as_str()
                .map(str::to_string)
                .ok_or("method must be a string")
        });
        let params = obj.get("params").cloned();
        match (id, method) {
            (Some(id), Some(m)) => Ok(Message::Request {
                id,
                method: m?,
                params,
            }),
            (None, Some(m)) => Ok(Message::Notification { method: m?, params }),
            (Some(id), None) => {
                if let Some(result) = obj.get("result") {
                    Ok(Message::Response {
                        id,
                        result: result.clone(),
                    })
                } else if let Some(error) = obj.get("error") {
                    Ok(Message::Error {
                        id,
                        error: error.clone(),
                    })
                } else {
                    Err("a message with an id needs a method, a result or an error".into())
                }
            }
            (None, None) => Err("no method and no id".into()),
        }
    }

    /// The JSON value.
    pub fn to_value(&self) -> Value {
        match self {
            Message::Request { id, method, params } => {
                let mut v = json!({"jsonrpc": "2.0", "id": id, "method": method});
                if let Some(p) = params {
                    v["params"] = p.clone();
                }
                v
            }
            Message::Notification { method, params } => {
                let mut v = json!({"jsonrpc": "2.0", "method": method});
                if let Some(p) = params {
                    v["params"] = p.clone();
                }
                v
            }
            Message::Response { id, result } => {
                json!({"jsonrpc": "2.0", "id": id, "result": result})
            }
            Message::Error { id, error } => json!({"jsonrpc": "2.0", "id": id, "error": error}),
        }
    }

    /// Compact JSON text.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    /// A response or an error?
    pub fn is_response(&self) -> bool {
        matches!(self, Message::Response { .. } | Message::Error { .. })
    }

    /// The id of a request, response or error.
    pub fn id(&self) -> Option<&Value> {
        match self {
            Message::Request { id, .. }
            | Message::Response { id, .. }
            | Message::Error { id, .. } => Some(id),
            Message::Notification { .. } => None,
        }
    }

    /// An error response.
    pub fn error(id: Value, code: i64, message: &str) -> Message {
        Message::Error {
            id,
            error: json!({"code": code, "message": message}),
        }
    }
}

/// Python's `str(request_id)`: the key python-sdk files request streams under.
/// Note that the integer `1` and the string `"1"` share a key.
pub fn id_key(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_messages() {
        let r = Message::parse(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"})).unwrap();
        assert!(matches!(r, Message::Request { .. }));
        let n =
            Message::parse(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})).unwrap();
        assert!(matches!(n, Message::Notification { .. }));
        let resp = Message::parse(&json!({"jsonrpc":"2.0","id":"a","result":{}})).unwrap();
        assert!(resp.is_response());
        assert!(Message::parse(&json!({"jsonrpc":"1.0","id":1,"method":"x"})).is_err());
        assert_eq!(id_key(&json!(1)), id_key(&json!("1")));
    }
}
