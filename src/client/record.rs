//! What a client saw, exchange by exchange — the client half of the
//! observations the oracles read. Records are written as things happen, so a
//! client that crashes mid-request leaves a record with no end.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

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
    /// The client gave up waiting (timeout) and sent `notifications/cancelled`.
    TimedOut,
    /// The stream was still open a while after the answer arrived; the client
    /// closed it.
    LeftOpen,
    /// The stream stayed silent for the client's `read_timeout`; the client
    /// closed it (a connection a partition killed looks like this).
    Stalled,
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
    /// The JSON-RPC method, or "response"/"error", or "other".
    pub kind: String,
    /// The JSON-RPC id of a response, error or server request.
    pub rpc_id: Option<Value>,
    /// For progress notifications: the token.
    pub progress_token: Option<Value>,
    /// The `data:` text (to tell two events with one id apart).
    pub data: String,
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
    /// Does the answer fit the request (`None`: no way to tell)?
    pub matches: Option<bool>,
    /// Did it arrive on a resumed stream?
    pub via_resume: bool,
}

/// One HTTP exchange a client made.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    /// Logical client name.
    pub client: String,
    /// Which start of the client's host (0 = first).
    pub incarnation: u32,
    /// Step index in the script.
    pub step: usize,
    /// HTTP method.
    pub http: &'static str,
    /// "initialize", "tools/call slow_operation", "GET stream", "resume …", ...
    pub what: String,
    /// The JSON-RPC id (requests only).
    pub rpc_id: Option<Value>,
    /// The request's params (to check the answer against).
    #[serde(skip)]
    pub params: Option<Value>,
    /// Does it expect a JSON-RPC response?
    pub expects_response: bool,
    /// The session id sent with it.
    pub session: Option<String>,
    /// Was the session id sent?
    pub sent_session: bool,
    /// The progress token it asked for.
    pub progress_token: Option<Value>,
    /// For a resumption: the record of the exchange it resumes.
    pub resume_of: Option<usize>,
    /// When it was sent.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub sent_at: Duration,
    /// HTTP status.
    pub status: Option<u16>,
    /// Response content type.
    pub content_type: Option<String>,
    /// The session id the response carried.
    pub session_issued: Option<String>,
    /// SSE events received.
    pub events: Vec<EventRecord>,
    /// The last event id seen on this stream.
    pub last_event_id: Option<String>,
    /// The `retry:` the stream asked for, in milliseconds.
    pub retry_ms: Option<u64>,
    /// When the JSON-RPC response arrived, and whether it was an error.
    pub response: Option<ResponseRecord>,
    /// How the body ended (`None`: still open, or the client died).
    pub end: Option<BodyEnd>,
    /// When it ended.
    #[serde(serialize_with = "crate::time::ser_opt_duration")]
    pub ended_at: Option<Duration>,
}

/// A client that left its session behind on purpose (a `vanish` step).
#[derive(Debug, Clone, Serialize)]
pub struct Departure {
    /// Logical client name.
    pub client: String,
    /// Which start of its host.
    pub incarnation: u32,
    /// When.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub at: Duration,
}

#[derive(Default)]
struct Inner {
    records: Vec<RequestRecord>,
    departures: Vec<Departure>,
    quiet_until: Duration,
}

/// Every client's records, shared by the clients and the harness.
#[derive(Clone, Default)]
pub struct ClientLog(Rc<RefCell<Inner>>);

impl ClientLog {
    /// Append a record; returns its index.
    pub fn push(&self, r: RequestRecord) -> usize {
        let mut v = self.0.borrow_mut();
        v.records.push(r);
        v.records.len() - 1
    }

    /// Update record `idx`.
    pub fn with<R>(&self, idx: usize, f: impl FnOnce(&mut RequestRecord) -> R) -> R {
        f(&mut self.0.borrow_mut().records[idx])
    }

    /// A copy of all records.
    pub fn records(&self) -> Vec<RequestRecord> {
        self.0.borrow().records.clone()
    }

    /// Note that a client left without a goodbye.
    pub fn depart(&self, d: Departure) {
        self.0.borrow_mut().departures.push(d);
    }

    /// Every departure.
    pub fn departures(&self) -> Vec<Departure> {
        self.0.borrow().departures.clone()
    }

    /// Note that nothing need happen until `t` (a sleep, a tool that takes
    /// its time, a timeout or backoff): silence before it is not a hang.
    pub fn expect_quiet_until(&self, t: Duration) {
        let mut v = self.0.borrow_mut();
        v.quiet_until = v.quiet_until.max(t);
    }

    /// The latest time anything announced it may be silent until.
    pub fn quiet_until(&self) -> Duration {
        self.0.borrow().quiet_until
    }
}

impl EventRecord {
    /// Is it a JSON-RPC response or error?
    pub fn is_answer(&self) -> bool {
        self.kind == "response" || self.kind == "error"
    }
}
