//! What a real server lets `drive` see of its insides: the same ASGI records,
//! error log and end-of-run probe the simulator reads from its modelled
//! stacks, in a JSON document the target serves (or writes to a file).
//!
//! The document is a contract between `mcpsim drive` and whatever wraps the
//! server under test (this repo's `interop/real_server.py` for the real Python
//! stack). Times are Unix epoch seconds, so records from several server
//! processes and the driver's own line up on one machine:
//!
//! ```json
//! {
//!   "server": "mcp 1.20.0 / sse-starlette 3.0.3 / uvicorn 0.38.0",
//!   "layers": {"http_host": "uvicorn", "sse": "sse-starlette",
//!              "transport": "mcp.server.streamable_http"},
//!   "calls": [{"seq": 0, "method": "POST", "path": "/mcp", "client": "127.0.0.2:40100",
//!              "rpc": "tools/call slow_operation", "called_at": 1764000000.1,
//!              "start": {"at": 1764000000.2, "status": 200, "content_type": "text/event-stream"},
//!              "partial_bodies": 1, "first_body_at": 1764000000.3, "final_body_at": null, "disconnect_received_at": 1764000001.3,
//!              "returned": {"at": 1764000001.3, "error": null, "host_saw_disconnect": true},
//!              "violations": []}],
//!   "log": [{"t": 1764000001.3, "level": "ERROR", "logger": "mcp.server.streamable_http",
//!            "msg": "Error in message router"}],
//!   "probe": {"in_flight": 0, "session_idle_timeout": 1800.0,
//!             "sessions": [{"id": "…", "terminated": false, "created_at": 1764000000.1,
//!                           "expires_at": 1764001800.4}],
//!             "open_streams": [{"session": "…", "stream": "0"}]}
//! }
//! ```
//!
//! A server served over plain hyper (a tower stack under `mcpsim serve`) has
//! no ASGI calls: it sends `"calls": []` and its HTTP tracking layer's records
//! as `exchanges`, each `{"seq", "method", "path", "client", "rpc",
//! "received_at", "start", "frames", "end": {"at", "how": "complete" | "error"
//! | "dropped" | "no-response", "error", "peer_gone"}}` — what the HTTP form
//! of `missing-final-body` reads.
//!
//! **The file.** A server that must be read after it was killed writes
//! the same observations to a file as a *journal*, one JSON object per line:
//! first `{"journal": 1, "server": …, "layers": …}`, then `{"call": {…}}`
//! each time a call record changes (the whole record; the last line for a
//! `seq` counts) and `{"log": {…}}` for each log record. Appending a line is
//! cheap where rewriting the document at every change was not: that cost
//! the real Python stack 2–3 ms per change, inside the very timings the
//! simulator is compared with (FINDINGS §19). A journal has no probe: the
//! probe is only ever read from the process still running.
//!
//! Everything but `calls` may be left out; what is missing is reported as not
//! observed, never guessed — `open_streams: null` too, from a server that
//! cannot show its request streams (rmcp keeps them inside its session
//! workers): `leak` then judges its sessions only. Sessions that were already there when a drive
//! began are another run's: `drive` notes their ids at its start and leaves
//! them out (`created_at` is informational).
//!
//! **Expiry.** A server that reaps idle sessions says when: a session's
//! `expires_at` is the epoch time at which the server will drop it if nothing
//! else arrives, `null` (or absent) when it will not — it has no idle timeout
//! (mcp 1.20), or a request or GET stream holds the session open now (mcp 2.3
//! suspends its countdown while any is in flight). `leak` then judges a real
//! session by the simulator's rule: one the server will reap is no leak,
//! unless its time has passed and it is still held. `session_idle_timeout`
//! (seconds, or `null` for none) is informational, for the report.
//! `interop/real_server_2.py` reads both off mcp 2.3's transports (the idle
//! scope's deadline); `interop/real_server.py` reports `null` for 1.20.
//!
//! `mcpsim serve --observe ADDR` serves this document for its own stack
//! ([`document`]), so the model over real TCP can be driven and judged whole.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use crate::asgi::tracking::{CallRecord, Returned, StartRecord, Violation};
use crate::servers::tower::{EndHow, EndRecord, ExchangeRecord};
use crate::servers::{Layers, OpenStream, SessionInfo};
use crate::sim::trace::TraceLine;

/// The wall clock, as epoch seconds: the document's time base, on which a
/// real run's records (the driver's and every server process's) meet. Read
/// only on real-network paths, never inside a simulation.
pub fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The path a target serves its observations on, next to its MCP endpoint.
pub const OBSERVATIONS_PATH: &str = "/__mcpsim/observations";

/// The document, as served.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// What the server is, in words.
    #[serde(default)]
    pub server: Option<String>,
    /// Its layers, to name where a failure happened.
    #[serde(default)]
    pub layers: Option<Layers>,
    /// ASGI (or equivalent) call records.
    pub calls: Vec<WireCall>,
    /// HTTP exchange records (a server without ASGI).
    #[serde(default)]
    pub exchanges: Option<Vec<WireExchange>>,
    /// Log lines at WARNING and above.
    #[serde(default)]
    pub log: Option<Vec<WireLog>>,
    /// The server's state now.
    #[serde(default)]
    pub probe: Option<WireProbe>,
}

/// One call, times in epoch seconds.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct WireCall {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub client: String,
    pub rpc: Option<String>,
    pub called_at: f64,
    pub start: Option<WireStart>,
    pub partial_bodies: u32,
    /// The first `http.response.body` (absent from older documents).
    #[serde(default)]
    pub first_body_at: Option<f64>,
    pub final_body_at: Option<f64>,
    pub disconnect_received_at: Option<f64>,
    pub returned: Option<WireReturned>,
    #[serde(default)]
    pub violations: Vec<WireViolation>,
}

/// One HTTP exchange, times in epoch seconds.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct WireExchange {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub client: String,
    pub rpc: Option<String>,
    pub received_at: f64,
    pub start: Option<WireStart>,
    pub frames: u32,
    pub end: Option<WireEnd>,
}

/// How an exchange ended.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct WireEnd {
    pub at: f64,
    pub how: String,
    #[serde(default)]
    pub error: Option<String>,
    pub peer_gone: bool,
}

/// `http.response.start`.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct WireStart {
    pub at: f64,
    pub status: u16,
    pub content_type: Option<String>,
}

/// How the call ended.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct WireReturned {
    pub at: f64,
    pub error: Option<String>,
    pub host_saw_disconnect: bool,
}

/// An ASGI message out of order.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct WireViolation {
    pub at: f64,
    pub what: String,
}

/// A log line.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct WireLog {
    pub t: f64,
    pub level: String,
    pub logger: String,
    pub msg: String,
}

/// The server's state when asked.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct WireProbe {
    pub in_flight: usize,
    pub sessions: Vec<WireSession>,
    /// `null` (or absent): the server cannot show its request streams, and
    /// `leak` does not judge them.
    #[serde(default)]
    pub open_streams: Option<Vec<OpenStream>>,
    /// Seconds a session may idle before the server reaps it (`None`: never).
    #[serde(default)]
    pub session_idle_timeout: Option<f64>,
}

/// A session the server holds.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct WireSession {
    pub id: String,
    pub terminated: bool,
    #[serde(default)]
    pub created_at: Option<f64>,
    /// When the server will reap it if nothing arrives (epoch seconds;
    /// `None`: it will not).
    #[serde(default)]
    pub expires_at: Option<f64>,
}

/// A document turned into the simulator's types, on the driver's clock.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Call records.
    pub calls: Vec<CallRecord>,
    /// HTTP exchange records.
    pub exchanges: Vec<ExchangeRecord>,
    /// Were exchanges served at all?
    pub has_exchanges: bool,
    /// Log lines, as trace lines of the host "server".
    pub log: Vec<TraceLine>,
    /// Was a log served at all?
    pub has_log: bool,
    /// The probe, if served.
    pub probe: Option<Probe>,
    /// Layers, if named.
    pub layers: Option<Layers>,
    /// What the server said it is.
    pub server: Option<String>,
}

/// The probe, on the driver's clock.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    /// Calls in flight.
    pub in_flight: usize,
    /// Sessions made during this run.
    pub sessions: Vec<SessionInfo>,
    /// Sessions made before this run began (another run's), left out.
    pub older_sessions: usize,
    /// Request streams still registered (`None`: not shown).
    pub open_streams: Option<Vec<OpenStream>>,
    /// The server's idle timeout, if it named one.
    pub session_idle_timeout: Option<Duration>,
}

impl Document {
    /// Parse a document.
    pub fn parse(text: &[u8]) -> Result<Self, String> {
        match serde_json::from_slice(text) {
            Ok(doc) => Ok(doc),
            Err(e) if text.starts_with(b"{\"journal\"") => Self::from_journal(text)
                .map_err(|j| format!("not an observations journal: {j} (as a document: {e})")),
            Err(e) => Err(format!("not an observations document: {e}")),
        }
    }

    /// A journal (see the module docs): the header, then each call record
    /// every time it changed (the last version counts) and each log record.
    /// A last line cut short — the process was killed while writing it — is
    /// left out; any other bad line is an error.
    fn from_journal(text: &[u8]) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Header {
            #[allow(dead_code)]
            journal: u32,
            #[serde(default)]
            server: Option<String>,
            #[serde(default)]
            layers: Option<Layers>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "lowercase")]
        enum Entry {
            Call(WireCall),
            Log(WireLog),
        }
        let lines: Vec<&[u8]> = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .collect();
        let Some((first, rest)) = lines.split_first() else {
            return Err("empty".into());
        };
        let header: Header = serde_json::from_slice(first).map_err(|e| format!("line 1: {e}"))?;
        let mut calls: std::collections::BTreeMap<u64, WireCall> = Default::default();
        let mut log = Vec::new();
        for (i, line) in rest.iter().enumerate() {
            match serde_json::from_slice::<Entry>(line) {
                Ok(Entry::Call(c)) => {
                    calls.insert(c.seq, c);
                }
                Ok(Entry::Log(l)) => log.push(l),
                Err(e) if e.is_eof() && i + 1 == rest.len() => {}
                Err(e) => return Err(format!("line {}: {e}", i + 2)),
            }
        }
        Ok(Document {
            server: header.server,
            layers: header.layers,
            calls: calls.into_values().collect(),
            exchanges: None,
            log: Some(log),
            probe: None,
        })
    }

    /// The ids of the sessions the server holds.
    pub fn session_ids(&self) -> Vec<String> {
        self.probe
            .iter()
            .flat_map(|p| p.sessions.iter().map(|s| s.id.clone()))
            .collect()
    }

    /// Times relative to `epoch0` (the driver's start, epoch seconds); only
    /// what happened since then, and not the sessions in `older`; records
    /// tagged with `incarnation`.
    pub fn observed(self, epoch0: f64, older: &[String], incarnation: u32) -> Observed {
        let t = |x: f64| Duration::from_secs_f64((x - epoch0).max(0.0));
        let calls = self
            .calls
            .into_iter()
            .filter(|c| c.called_at >= epoch0)
            .map(|c| CallRecord {
                seq: c.seq,
                incarnation,
                method: c.method,
                path: c.path,
                client: c.client,
                rpc: c.rpc,
                called_at: t(c.called_at),
                start: c.start.map(|s| StartRecord {
                    at: t(s.at),
                    status: s.status,
                    content_type: s.content_type,
                }),
                partial_bodies: c.partial_bodies,
                first_body_at: c.first_body_at.map(t),
                final_body_at: c.final_body_at.map(t),
                disconnect_received_at: c.disconnect_received_at.map(t),
                returned: c.returned.map(|r| Returned {
                    at: t(r.at),
                    error: r.error,
                    host_saw_disconnect: r.host_saw_disconnect,
                }),
                violations: c
                    .violations
                    .into_iter()
                    .map(|v| Violation {
                        at: t(v.at),
                        what: v.what,
                    })
                    .collect(),
            })
            .collect();
        let has_exchanges = self.exchanges.is_some();
        let exchanges = self
            .exchanges
            .unwrap_or_default()
            .into_iter()
            .filter(|x| x.received_at >= epoch0)
            .map(|x| ExchangeRecord {
                seq: x.seq,
                incarnation,
                method: x.method,
                path: x.path,
                client: x.client,
                rpc: x.rpc,
                received_at: t(x.received_at),
                start: x.start.map(|s| StartRecord {
                    at: t(s.at),
                    status: s.status,
                    content_type: s.content_type,
                }),
                frames: x.frames,
                end: x.end.map(|e| EndRecord {
                    at: t(e.at),
                    how: match e.how.as_str() {
                        "complete" => EndHow::Complete,
                        "error" => EndHow::Error(e.error.unwrap_or_default()),
                        "dropped" => EndHow::Dropped,
                        _ => EndHow::NoResponse(e.error.unwrap_or_default()),
                    },
                    peer_gone: e.peer_gone,
                }),
            })
            .collect();
        let has_log = self.log.is_some();
        let log = self
            .log
            .unwrap_or_default()
            .into_iter()
            .filter(|l| l.t >= epoch0)
            .map(|l| TraceLine {
                t: t(l.t),
                host: crate::scenario::SERVER_HOST.into(),
                level: l.level.to_ascii_uppercase(),
                target: l.logger,
                msg: l.msg,
                fields: Default::default(),
            })
            .collect();
        let probe = self.probe.map(|p| {
            let (older, mine): (Vec<_>, Vec<_>) =
                p.sessions.into_iter().partition(|s| older.contains(&s.id));
            Probe {
                in_flight: p.in_flight,
                older_sessions: older.len(),
                sessions: mine
                    .into_iter()
                    .map(|s| SessionInfo {
                        id: s.id,
                        terminated: s.terminated,
                        // On the driver's clock, as the oracles compare it
                        // with the run's end.
                        expires_at: s.expires_at.map(t),
                    })
                    .collect(),
                open_streams: p.open_streams,
                session_idle_timeout: p
                    .session_idle_timeout
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map(Duration::from_secs_f64),
            }
        });
        Observed {
            calls,
            exchanges,
            has_exchanges,
            log,
            has_log,
            probe,
            layers: self.layers,
            server: self.server,
        }
    }
}

/// The document for a stack mcpsim runs itself (`serve --observe`): its
/// tracking layer's records, its log at WARN and above (not mcpsim's own),
/// and its probe. `epoch_start` is the epoch time of the records' zero.
pub fn document(
    server: &str,
    layers: &Layers,
    calls: &[CallRecord],
    exchanges: &[ExchangeRecord],
    log: &[TraceLine],
    probe: Option<&dyn crate::servers::StackProbe>,
    epoch_start: f64,
) -> serde_json::Value {
    use serde_json::json;
    let t = |d: Duration| epoch_start + d.as_secs_f64();
    let calls: Vec<_> = calls
        .iter()
        .map(|c| {
            json!({
                "seq": c.seq,
                "method": c.method,
                "path": c.path,
                "client": c.client,
                "rpc": c.rpc,
                "called_at": t(c.called_at),
                "start": c.start.as_ref().map(|s| json!({
                    "at": t(s.at), "status": s.status, "content_type": s.content_type,
                })),
                "partial_bodies": c.partial_bodies,
                "first_body_at": c.first_body_at.map(t),
                "final_body_at": c.final_body_at.map(t),
                "disconnect_received_at": c.disconnect_received_at.map(t),
                "returned": c.returned.as_ref().map(|r| json!({
                    "at": t(r.at), "error": r.error, "host_saw_disconnect": r.host_saw_disconnect,
                })),
                "violations": c.violations.iter().map(|v| json!({"at": t(v.at), "what": v.what})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let exchanges: Vec<_> = exchanges
        .iter()
        .map(|x| {
            json!({
                "seq": x.seq,
                "method": x.method,
                "path": x.path,
                "client": x.client,
                "rpc": x.rpc,
                "received_at": t(x.received_at),
                "start": x.start.as_ref().map(|s| json!({
                    "at": t(s.at), "status": s.status, "content_type": s.content_type,
                })),
                "frames": x.frames,
                "end": x.end.as_ref().map(|e| {
                    let (how, error) = match &e.how {
                        EndHow::Complete => ("complete", None),
                        EndHow::Error(m) => ("error", Some(m.clone())),
                        EndHow::Dropped => ("dropped", None),
                        EndHow::NoResponse(m) => ("no-response", Some(m.clone())),
                    };
                    json!({"at": t(e.at), "how": how, "error": error, "peer_gone": e.peer_gone})
                }),
            })
        })
        .collect();
    let log: Vec<_> = log
        .iter()
        .filter(|l| matches!(l.level.as_str(), "ERROR" | "WARN") && !l.target.starts_with("mcpsim"))
        .map(|l| json!({"t": t(l.t), "level": l.level, "logger": l.target, "msg": l.msg}))
        .collect();
    let probe = probe.map(|p| {
        json!({
            "in_flight": p.in_flight(),
            "sessions": p.sessions().iter().map(|s| json!({"id": s.id, "terminated": s.terminated, "expires_at": s.expires_at.map(t)})).collect::<Vec<_>>(),
            "open_streams": p.open_streams().map(|v| v.iter().map(|s| json!({"session": s.session, "stream": s.stream})).collect::<Vec<_>>()),
        })
    });
    json!({
        "server": server,
        "layers": {"http_host": layers.http_host, "sse": layers.sse, "transport": layers.transport},
        "calls": calls,
        "exchanges": exchanges,
        "log": log,
        "probe": probe,
    })
}

/// GET `path` from `addr`: the status and body.
pub async fn http_get(
    addr: SocketAddr,
    authority: &str,
    path: &str,
) -> Result<(u16, Bytes), String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
    let conn = tokio::task::spawn_local(conn);
    let req = hyper::Request::get(path)
        .header("host", authority)
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("GET {path} from {addr}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("GET {path} from {addr}: body: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
    .await;
    conn.abort();
    result
}

/// Fetch and parse the document at `path` (`Ok(None)`: the target serves none).
pub async fn fetch(
    addr: SocketAddr,
    authority: &str,
    path: &str,
) -> Result<Option<Document>, String> {
    let (status, body) = http_get(addr, authority, path).await?;
    match status {
        200 => Document::parse(&body).map(Some),
        404 => Ok(None),
        s => Err(format!("GET {path} answered {s}")),
    }
}
