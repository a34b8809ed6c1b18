//! The ASGI tracking layer: a [`tower::Layer`] between the host and the
//! application that records every `http.response.start`, every
//! `http.response.body`, every `http.disconnect` the application received and
//! the moment the application returned.
//!
//! It is the corrected version of the seed repro's middleware, which counted
//! *any* `http.response.body` as success. Here only a body with
//! `more_body: False` completes a response, and the record also keeps whether
//! the host had registered the client's disconnect when the application
//! returned — the line between the #1437 shape (client gone, host silent) and a
//! truncated response to a client that is still there.
//!
//! The layer also checks message order (start once, bodies after it, nothing
//! after the final body) and records violations for the `protocol-violation`
//! oracle.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;

use super::{AsgiCall, AsgiFuture, Incoming, LocalBoxFuture, Outgoing, Receive, Send};
use crate::servers::python_sdk::anyio::{Cx, Exc, PyResult};
use crate::time::fmt_duration;

/// A source of (virtual) time for records.
pub type Clock = Rc<dyn Fn() -> Duration>;

/// How an application call ended.
#[derive(Debug, Clone, Serialize)]
pub struct Returned {
    /// When the application returned (or raised).
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub at: Duration,
    /// The exception it raised, if any.
    pub error: Option<String>,
    /// Had the host registered the client's disconnect by then?
    pub host_saw_disconnect: bool,
}

/// Everything observed about one application call.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    /// Order of the call on this host (0-based).
    pub seq: u64,
    /// Which server process incarnation served it (0 = first start).
    pub incarnation: u32,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Client address.
    pub client: String,
    /// The JSON-RPC method (and tool) read from the request body, if any.
    pub rpc: Option<String>,
    /// When the host called the application.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub called_at: Duration,
    /// `http.response.start`: time, status and content type.
    pub start: Option<StartRecord>,
    /// Number of `http.response.body` messages with `more_body: True`.
    pub partial_bodies: u32,
    /// When the first `http.response.body` (partial or final) was sent.
    #[serde(serialize_with = "crate::time::ser_opt_duration")]
    pub first_body_at: Option<Duration>,
    /// When the final body (`more_body: False`) was sent.
    #[serde(serialize_with = "crate::time::ser_opt_duration")]
    pub final_body_at: Option<Duration>,
    /// When `receive()` first returned `http.disconnect`.
    #[serde(serialize_with = "crate::time::ser_opt_duration")]
    pub disconnect_received_at: Option<Duration>,
    /// How the call ended (`None`: still running, or the process died).
    pub returned: Option<Returned>,
    /// ASGI contract violations seen in the message order.
    pub violations: Vec<Violation>,
}

/// The response start.
#[derive(Debug, Clone, Serialize)]
pub struct StartRecord {
    /// When it was sent.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub at: Duration,
    /// HTTP status.
    pub status: u16,
    /// The `content-type` header, if any.
    pub content_type: Option<String>,
}

/// A message sent out of order.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    /// When.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub at: Duration,
    /// What was wrong.
    pub what: String,
}

/// The records of one host, shared by the layer and whoever reads them.
///
/// Records are keyed by their `seq`, so a log may forget some of them:
/// [`AsgiLog::forgetting`] drops each call's record once the application has
/// returned, for a long-running `mcpsim serve` whose records nobody reads —
/// keeping one per request forever would be a leak of our own making (found by
/// `mcpsim bench --serve`: RSS grew linearly with the request count).
#[derive(Clone, Default)]
pub struct AsgiLog(Rc<RefCell<LogState>>);

#[derive(Default)]
struct LogState {
    next_seq: u64,
    records: BTreeMap<u64, CallRecord>,
    forget_returned: bool,
}

impl AsgiLog {
    /// A log that keeps only the calls still running.
    pub fn forgetting() -> Self {
        Self(Rc::new(RefCell::new(LogState {
            forget_returned: true,
            ..LogState::default()
        })))
    }

    /// A copy of every record kept, in call order.
    pub fn records(&self) -> Vec<CallRecord> {
        self.0.borrow().records.values().cloned().collect()
    }

    /// Calls of `incarnation` that have not returned yet.
    pub fn running_in(&self, incarnation: u32) -> usize {
        self.0
            .borrow()
            .records
            .values()
            .filter(|r| r.incarnation == incarnation && r.returned.is_none())
            .count()
    }

    /// Open a record for a new call; its `seq`.
    fn open(&self, make: impl FnOnce(u64) -> CallRecord) -> u64 {
        let mut st = self.0.borrow_mut();
        let seq = st.next_seq;
        st.next_seq += 1;
        st.records.insert(seq, make(seq));
        seq
    }

    /// Update the record of call `seq`, if it is still kept.
    fn with(&self, seq: u64, f: impl FnOnce(&mut CallRecord)) {
        if let Some(r) = self.0.borrow_mut().records.get_mut(&seq) {
            f(r)
        }
    }

    /// Call `seq` returned: record how, and forget it if this log forgets.
    fn close(&self, seq: u64, returned: Returned) {
        let mut st = self.0.borrow_mut();
        if st.forget_returned {
            st.records.remove(&seq);
        } else if let Some(r) = st.records.get_mut(&seq) {
            r.returned = Some(returned);
        }
    }
}

/// The layer. `incarnation` tags records with the server process they came from.
#[derive(Clone)]
pub struct TrackingLayer {
    log: AsgiLog,
    clock: Clock,
    incarnation: u32,
}

impl TrackingLayer {
    /// Record into `log`, stamping with `clock`.
    pub fn new(log: AsgiLog, clock: Clock, incarnation: u32) -> Self {
        Self {
            log,
            clock,
            incarnation,
        }
    }
}

impl<S> tower::Layer<S> for TrackingLayer {
    type Service = Tracking<S>;

    fn layer(&self, inner: S) -> Tracking<S> {
        Tracking {
            inner,
            layer: self.clone(),
        }
    }
}

/// The application wrapped by [`TrackingLayer`].
#[derive(Clone)]
pub struct Tracking<S> {
    inner: S,
    layer: TrackingLayer,
}

impl<S> tower::Service<AsgiCall> for Tracking<S>
where
    S: tower::Service<AsgiCall, Response = (), Error = Exc, Future = AsgiFuture>,
{
    type Response = ();
    type Error = Exc;
    type Future = AsgiFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Exc>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: AsgiCall) -> AsgiFuture {
        let layer = self.layer.clone();
        let idx = layer.log.open(|seq| CallRecord {
            seq,
            incarnation: layer.incarnation,
            method: call.scope.method.clone(),
            path: call.scope.path.clone(),
            client: call.scope.client.clone(),
            rpc: None,
            called_at: (layer.clock)(),
            start: None,
            partial_bodies: 0,
            first_body_at: None,
            final_body_at: None,
            disconnect_received_at: None,
            returned: None,
            violations: Vec::new(),
        });
        let probe = Probe {
            layer: layer.clone(),
            idx,
        };
        let host_view = call.scope.host_view.clone();
        let wrapped = AsgiCall {
            cx: call.cx,
            scope: call.scope,
            receive: Rc::new(TrackedReceive {
                inner: call.receive,
                probe: probe.clone(),
            }),
            send: Rc::new(TrackedSend {
                inner: call.send,
                probe: probe.clone(),
            }),
        };
        tracing::debug!(target: "mcpsim::asgi", call = idx, "app called: {} {}", wrapped.scope.method, wrapped.scope.path);
        let fut = self.inner.call(wrapped);
        Box::pin(async move {
            let result = fut.await;
            let at = (layer.clock)();
            let host_saw_disconnect = host_view.client_disconnected();
            tracing::debug!(
                target: "mcpsim::asgi",
                call = idx,
                "app returned{} (host saw disconnect: {host_saw_disconnect})",
                match &result {
                    Ok(()) => String::new(),
                    Err(e) => format!(" raising {e}"),
                }
            );
            layer.log.close(
                idx,
                Returned {
                    at,
                    error: result.as_ref().err().map(|e| e.to_string()),
                    host_saw_disconnect,
                },
            );
            result
        })
    }
}

#[derive(Clone)]
struct Probe {
    layer: TrackingLayer,
    idx: u64,
}

impl Probe {
    fn now(&self) -> Duration {
        (self.layer.clock)()
    }

    fn record(&self, f: impl FnOnce(&mut CallRecord)) {
        self.layer.log.with(self.idx, f)
    }
}

struct TrackedReceive {
    inner: Rc<dyn Receive>,
    probe: Probe,
}

impl Receive for TrackedReceive {
    fn receive<'a>(&'a self, cx: &'a Cx) -> LocalBoxFuture<'a, PyResult<Incoming>> {
        Box::pin(async move {
            let msg = self.inner.receive(cx).await?;
            let at = self.probe.now();
            match &msg {
                Incoming::Disconnect => {
                    tracing::debug!(target: "mcpsim::asgi", call = self.probe.idx, "receive -> http.disconnect");
                    self.probe.record(|r| {
                        r.disconnect_received_at.get_or_insert(at);
                    })
                }
                Incoming::Request { body, .. } => {
                    if let Some(rpc) = describe_rpc(body) {
                        self.probe.record(|r| {
                            r.rpc.get_or_insert(rpc);
                        });
                    }
                }
            }
            Ok(msg)
        })
    }
}

/// "tools/call slow_operation" from a JSON-RPC request body.
pub(crate) fn describe_rpc(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let method = v.get("method")?.as_str()?;
    let tool = v
        .get("params")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str());
    Some(match (method, tool) {
        ("tools/call", Some(t)) => format!("{method} {t}"),
        _ => method.to_string(),
    })
}

struct TrackedSend {
    inner: Rc<dyn Send>,
    probe: Probe,
}

impl Send for TrackedSend {
    fn send<'a>(&'a self, cx: &'a Cx, message: Outgoing) -> LocalBoxFuture<'a, PyResult<()>> {
        let at = self.probe.now();
        match &message {
            Outgoing::Start { status, .. } => {
                tracing::debug!(target: "mcpsim::asgi", call = self.probe.idx, "send http.response.start {status}")
            }
            Outgoing::Body { body, more_body } => tracing::debug!(
                target: "mcpsim::asgi",
                call = self.probe.idx,
                "send http.response.body ({} bytes, more_body={})",
                body.len(),
                if *more_body { "True" } else { "False" }
            ),
        }
        self.probe.record(|r| {
            let after_final = r.final_body_at.is_some();
            if after_final {
                r.violations.push(Violation {
                    at,
                    what: format!("'{}' sent after the final body", message.type_name()),
                });
                return;
            }
            match &message {
                Outgoing::Start { status, headers } => {
                    if r.start.is_some() {
                        r.violations.push(Violation {
                            at,
                            what: "second 'http.response.start'".into(),
                        });
                    } else {
                        r.start = Some(StartRecord {
                            at,
                            status: *status,
                            content_type: headers
                                .iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                                .map(|(_, v)| v.clone()),
                        });
                    }
                }
                Outgoing::Body { more_body, .. } => {
                    r.first_body_at.get_or_insert(at);
                    if r.start.is_none() {
                        r.violations.push(Violation {
                            at,
                            what: "'http.response.body' before 'http.response.start'".into(),
                        });
                    } else if *more_body {
                        r.partial_bodies += 1;
                    } else {
                        r.final_body_at = Some(at);
                    }
                }
            }
        });
        self.inner.send(cx, message)
    }
}

impl std::fmt::Display for CallRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({}) called at {}",
            self.method,
            self.path,
            self.rpc.as_deref().unwrap_or("no JSON-RPC body read"),
            fmt_duration(self.called_at)
        )
    }
}
