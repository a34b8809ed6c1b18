//! A client script: the steps one logical MCP client performs, in order.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// POST `initialize`; keeps the `mcp-session-id` and protocol version.
    Initialize {
        /// The `protocolVersion` asked for.
        protocol: String,
    },
    /// POST a notification (expects 202).
    Notify {
        /// e.g. `notifications/initialized`.
        method: String,
        /// Its params.
        params: Option<Value>,
    },
    /// POST a request and read its answer (SSE or JSON).
    Request {
        /// e.g. `tools/call`.
        method: String,
        /// Its params.
        params: Option<Value>,
    },
    /// Stop here, saying no goodbye (the session is left behind).
    Vanish,
    /// Open the GET stream and keep listening in the background.
    Listen,
    /// End the session with DELETE.
    Goodbye,
    /// Wait; a range is drawn from the workload stream.
    Sleep {
        /// Shortest wait.
        min: Duration,
        /// Longest wait.
        max: Duration,
    },
}

/// One step and its options.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The action.
    pub action: Action,
    /// Close the response stream this long after its head arrived (httpx
    /// `stream()` then `aclose`).
    pub abandon_after: Option<Duration>,
    /// Cancel the whole request this long after the step began
    /// (`asyncio.wait_for` with a timeout).
    pub cancel_after: Option<Duration>,
    /// Give up after this long: send `notifications/cancelled` and close.
    pub timeout: Option<Duration>,
    /// Ask for progress (`_meta.progressToken`).
    pub progress: bool,
    /// Send the session id (when the client has one). The seed repro's
    /// tools/list and tools/call went without.
    pub with_session: bool,
    /// The line of the step in its scenario file (for messages).
    #[serde(skip)]
    pub line: usize,
}

impl Step {
    /// A step with default options.
    pub fn new(action: Action) -> Self {
        Self {
            action,
            abandon_after: None,
            cancel_after: None,
            timeout: None,
            progress: false,
            with_session: true,
            line: 0,
        }
    }

    /// A short description: "tools/call slow_operation", "initialize", ...
    pub fn describe(&self) -> String {
        match &self.action {
            Action::Initialize { .. } => "initialize".into(),
            Action::Notify { method, .. } => method.clone(),
            Action::Request { method, params } => {
                match params
                    .as_ref()
                    .and_then(|p| p.get("name"))
                    .and_then(Value::as_str)
                {
                    Some(tool) if method == "tools/call" => format!("{method} {tool}"),
                    _ => method.clone(),
                }
            }
            Action::Sleep { .. } => "sleep".into(),
            Action::Vanish => "vanish".into(),
            Action::Listen => "GET stream".into(),
            Action::Goodbye => "DELETE session".into(),
        }
    }
}

/// How a client numbers its JSON-RPC requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdStrategy {
    /// 0, 1, 2, ... as the official SDKs do.
    #[default]
    Counter,
    /// The same id (1) for every request, as some clients (and the seed
    /// repro) send.
    Constant,
}

/// How a client answers the server's `elicitation/create` requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Elicitation {
    /// Accept, with an answer.
    #[default]
    Accept,
    /// Decline.
    Decline,
    /// Never answer.
    Ignore,
}

/// A client's standing behaviour (as opposed to its script).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Behaviour {
    /// Request ids.
    pub ids: IdStrategy,
    /// Resume a broken SSE stream with GET and `Last-Event-ID`.
    pub resume: bool,
    /// Initialize again (and retry once) after a 404.
    pub reinit: bool,
    /// Answers to elicitation requests.
    pub elicitation: Elicitation,
    /// An `Origin` header on every request.
    pub origin: Option<String>,
    /// Give up on an SSE stream silent for this long (the python client's
    /// `sse_read_timeout`), and treat it as broken: resume it if `resume`.
    pub read_timeout: Option<Duration>,
}
