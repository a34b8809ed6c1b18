//! What a client saw, request by request — the client half of the
//! observations the oracles read. Records are written as things happen, so a
//! client that crashes mid-request leaves a record with no end.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;

/// How a response body ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum BodyEnd {
    /// The body ended properly (terminating chunk or full length).
    Complete,
    /// The connection broke before the body ended properly.
    Truncated(String),
    /// The client closed the response stream itself (abandon).
    Abandoned,
    /// The client's request task was cancelled (before or after a response
    /// head).
    Cancelled,
    /// No connection could be made, or it broke before a response head.
    Failed(String),
}

/// One SSE event the client received.
#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    /// When.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub at: Duration,
    /// `event:` name.
    pub event: String,
    /// `id:`, if any.
    pub id: Option<String>,
    /// The JSON-RPC method or "response"/"error", or "other".
    pub kind: String,
}

/// One HTTP request a client made.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    /// Logical client name.
    pub client: String,
    /// Which start of the client's host (0 = first).
    pub incarnation: u32,
    /// Step index in the script.
    pub step: usize,
    /// "initialize", "tools/call slow_operation", ...
    pub what: String,
    /// The JSON-RPC id (requests only).
    pub rpc_id: Option<serde_json::Value>,
    /// Does it expect a JSON-RPC response?
    pub expects_response: bool,
    /// Was the session id sent?
    pub sent_session: bool,
    /// When it was sent.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub sent_at: Duration,
    /// HTTP status.
    pub status: Option<u16>,
    /// Response content type.
    pub content_type: Option<String>,
    /// SSE events received.
    pub events: Vec<EventRecord>,
    /// When the JSON-RPC response arrived, and whether it was an error.
    pub response: Option<ResponseRecord>,
    /// How the body ended (`None`: still open, or the client died).
    pub end: Option<BodyEnd>,
    /// When it ended.
    #[serde(serialize_with = "crate::time::ser_opt_duration")]
    pub ended_at: Option<Duration>,
}

/// The JSON-RPC answer to a request.
#[derive(Debug, Clone, Serialize)]
pub struct ResponseRecord {
    /// When.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub at: Duration,
    /// A JSON-RPC error (or an HTTP error status)?
    pub is_error: bool,
    /// A short summary (error message or first text content).
    pub summary: String,
}

/// Every client's records, shared by the clients and the harness.
#[derive(Clone, Default)]
pub struct ClientLog(Rc<RefCell<Vec<RequestRecord>>>);

impl ClientLog {
    /// Append a record; returns its index.
    pub fn push(&self, r: RequestRecord) -> usize {
        let mut v = self.0.borrow_mut();
        v.push(r);
        v.len() - 1
    }

    /// Update record `idx`.
    pub fn with<R>(&self, idx: usize, f: impl FnOnce(&mut RequestRecord) -> R) -> R {
        f(&mut self.0.borrow_mut()[idx])
    }

    /// A copy of all records.
    pub fn records(&self) -> Vec<RequestRecord> {
        self.0.borrow().clone()
    }
}
