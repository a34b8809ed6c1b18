//! mcpsim's MCP client: runs a script over HTTP/1.1 (hyper) on whatever
//! connections its [`Connector`] makes, and records what it saw.
//!
//! It behaves like the official SDK clients where that matters for the
//! server: `Accept: application/json, text/event-stream`, JSON bodies, the
//! session id and `MCP-Protocol-Version` on every request after `initialize`,
//! request ids counting from 0. Unlike them it reads every response body to its
//! end, so the records can tell a properly terminated stream from a truncated
//! one. Abandoning (a script's `abandon_after`, or the harness's abandon
//! signal) drops the response and its connection, as httpx's `aclose` does.
//!
//! It knows nothing of the simulator: it takes a connector, a clock for its
//! records and a source of randomness for its waits.

mod record;
pub mod script;
pub mod sse;

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use record::{BodyEnd, ClientLog, EventRecord, RequestRecord, ResponseRecord};
use script::{Action, Step};
use sse::SseParser;

use crate::asgi::LocalBoxFuture;
use crate::asgi::tracking::Clock;
use crate::mcp::{LATEST_PROTOCOL_VERSION, Message};
use crate::servers::Conn;

/// Opens connections to the server.
pub trait Connector {
    /// A new connection.
    fn connect(&self) -> LocalBoxFuture<'_, io::Result<Box<dyn Conn>>>;
}

/// Everything one logical client runs with.
pub struct ClientEnv {
    /// Its name (for records).
    pub name: String,
    /// Which start of its host this is.
    pub incarnation: u32,
    /// How it reaches the server.
    pub connector: Rc<dyn Connector>,
    /// The `Host` header value.
    pub authority: String,
    /// Time for records.
    pub clock: Clock,
    /// Where records go.
    pub log: ClientLog,
    /// Randomness for drawn waits.
    pub workload: ChaCha8Rng,
    /// Abandon the response in flight when notified.
    pub abandon: Rc<Notify>,
    /// Set once the script has run to its end.
    pub done: Rc<Cell<bool>>,
    /// How requests are numbered.
    pub ids: crate::scenario::IdStrategy,
}

#[derive(Default)]
struct Session {
    id: Option<String>,
    protocol: Option<String>,
    next_id: i64,
    constant_ids: bool,
}

impl Session {
    /// The next request id: 0, 1, 2, ... or always 1.
    fn take_id(&mut self) -> i64 {
        if self.constant_ids {
            return 1;
        }
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}

struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Run `steps` to the end.
pub async fn run(mut env: ClientEnv, steps: Rc<Vec<Step>>) {
    let mut session = Session {
        constant_ids: env.ids == crate::scenario::IdStrategy::Constant,
        ..Session::default()
    };
    for (i, step) in steps.iter().enumerate() {
        match &step.action {
            Action::Vanish => {
                tracing::debug!(target: "mcpsim::client", client = %env.name, "vanishes without a goodbye");
                break;
            }
            Action::Sleep { min, max } => {
                let d = if min == max {
                    *min
                } else {
                    let us = env
                        .workload
                        .random_range(min.as_micros() as u64..=max.as_micros() as u64);
                    Duration::from_micros(us)
                };
                tokio::time::sleep(d).await;
            }
            Action::Initialize { protocol } => {
                let id = session.take_id();
                let body = json!({
                    "jsonrpc": "2.0", "id": id, "method": "initialize",
                    "params": {
                        "protocolVersion": protocol,
                        "capabilities": {},
                        "clientInfo": {"name": "mcpsim", "version": env!("CARGO_PKG_VERSION")}
                    }
                });
                exchange(&env, &mut session, i, step, body, Some(json!(id))).await;
            }
            Action::Notify { method, params } => {
                let mut body = json!({"jsonrpc": "2.0", "method": method});
                if let Some(p) = params {
                    body["params"] = p.clone();
                }
                exchange(&env, &mut session, i, step, body, None).await;
            }
            Action::Request { method, params } => {
                let id = session.take_id();
                let mut body = json!({"jsonrpc": "2.0", "id": id, "method": method});
                if let Some(p) = params {
                    body["params"] = p.clone();
                }
                exchange(&env, &mut session, i, step, body, Some(json!(id))).await;
            }
        }
    }
    env.done.set(true);
}

async fn exchange(
    env: &ClientEnv,
    session: &mut Session,
    step_index: usize,
    step: &Step,
    body: Value,
    rpc_id: Option<Value>,
) {
    // A new initialize starts a new session: like a fresh SDK client, it
    // carries no session id.
    let is_init = matches!(step.action, Action::Initialize { .. });
    let sent_session = step.with_session && !is_init && session.id.is_some();
    let idx = env.log.push(RequestRecord {
        client: env.name.clone(),
        incarnation: env.incarnation,
        step: step_index,
        what: step.describe(),
        rpc_id: rpc_id.clone(),
        expects_response: rpc_id.is_some(),
        sent_session,
        sent_at: (env.clock)(),
        status: None,
        content_type: None,
        events: Vec::new(),
        response: None,
        end: None,
        ended_at: None,
    });
    let abandon = env.abandon.notified();
    tokio::pin!(abandon);
    abandon.as_mut().enable();
    // abandon_after counts from the response head (httpx's stream() returns
    // there); cancel_after from the start of the step (asyncio.wait_for).
    let head = Rc::new(Notify::new());
    let abandon_timer = async {
        match step.abandon_after {
            Some(d) => {
                head.notified().await;
                tokio::time::sleep(d).await
            }
            None => std::future::pending().await,
        }
    };
    let cancel_timer = async {
        match step.cancel_after {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let work = talk(
        env,
        session,
        idx,
        step,
        sent_session,
        body,
        rpc_id,
        head.clone(),
    );
    let end = tokio::select! {
        biased;
        _ = abandon => BodyEnd::Abandoned,
        _ = abandon_timer => BodyEnd::Abandoned,
        _ = cancel_timer => BodyEnd::Cancelled,
        end = work => end,
    };
    let at = (env.clock)();
    let (answered, expects) = env
        .log
        .with(idx, |r| (r.response.is_some(), r.expects_response));
    tracing::debug!(
        target: "mcpsim::client",
        client = %env.name,
        "{}: body {}{}",
        step.describe(),
        match &end {
            BodyEnd::Complete => "complete".to_string(),
            BodyEnd::Truncated(e) => format!("truncated ({e})"),
            BodyEnd::Abandoned => "abandoned by the client".to_string(),
            BodyEnd::Cancelled => "cancelled by the client".to_string(),
            BodyEnd::Failed(e) => format!("failed ({e})"),
        },
        if expects && unanswered(&end, answered) { ", no response" } else { "" }
    );
    env.log.with(idx, |r| {
        r.end = Some(end);
        r.ended_at = Some(at);
    });
}

/// Worth flagging in the trace: a body that ended without the answer.
fn unanswered(end: &BodyEnd, answered: bool) -> bool {
    matches!(end, BodyEnd::Complete | BodyEnd::Truncated(_)) && !answered
}

/// One HTTP exchange. Dropping this future closes its connection.
#[allow(clippy::too_many_arguments)]
async fn talk(
    env: &ClientEnv,
    session: &mut Session,
    idx: usize,
    step: &Step,
    sent_session: bool,
    body: Value,
    rpc_id: Option<Value>,
    head: Rc<Notify>,
) -> BodyEnd {
    let io = match env.connector.connect().await {
        Ok(io) => io,
        Err(e) => return BodyEnd::Failed(format!("connect: {e}")),
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(io)).await {
        Ok(x) => x,
        Err(e) => return BodyEnd::Failed(format!("handshake: {e}")),
    };
    let _conn = AbortOnDrop(crate::task::spawn("client.connection", conn));
    let mut req = hyper::Request::post("/mcp")
        .header("host", &env.authority)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json");
    if sent_session && let Some(id) = &session.id {
        req = req.header("mcp-session-id", id);
    }
    if let Some(v) = &session.protocol {
        req = req.header("mcp-protocol-version", v);
    }
    let req = match req.body(Full::new(Bytes::from(body.to_string()))) {
        Ok(r) => r,
        Err(e) => return BodyEnd::Failed(format!("request: {e}")),
    };
    let resp = match sender.send_request(req).await {
        Ok(r) => r,
        Err(e) => return BodyEnd::Failed(format!("no response head: {e}")),
    };
    // notify_one keeps a permit if the abandon timer is not waiting yet.
    head.notify_one();
    let status = resp.status().as_u16();
    tracing::debug!(
        target: "mcpsim::client",
        client = %env.name,
        "{}: HTTP {status} {}",
        step.describe(),
        resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("-")
    );
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type");
    let is_init = matches!(step.action, Action::Initialize { .. });
    if is_init && let Some(sid) = header("mcp-session-id") {
        session.id = Some(sid);
    }
    env.log.with(idx, |r| {
        r.status = Some(status);
        r.content_type = content_type.clone();
    });
    let mut body = resp.into_body();
    let sse = content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("text/event-stream"));
    if sse {
        let mut parser = SseParser::new();
        loop {
            match body.frame().await {
                None => return BodyEnd::Complete,
                Some(Err(e)) => return BodyEnd::Truncated(e.to_string()),
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    for ev in parser.feed(&data) {
                        let at = (env.clock)();
                        let msg = serde_json::from_str::<Value>(&ev.data)
                            .ok()
                            .and_then(|v| Message::parse(&v).ok());
                        let kind = match &msg {
                            Some(
                                Message::Request { method, .. }
                                | Message::Notification { method, .. },
                            ) => method.clone(),
                            Some(Message::Response { .. }) => "response".into(),
                            Some(Message::Error { .. }) => "error".into(),
                            None => "other".into(),
                        };
                        env.log.with(idx, |r| {
                            r.events.push(EventRecord {
                                at,
                                event: ev.event.clone(),
                                id: ev.id.clone(),
                                kind,
                            })
                        });
                        if let Some(m) = msg
                            && m.is_response()
                            && m.id() == rpc_id.as_ref()
                        {
                            answer(env, session, idx, is_init, &m, at);
                        }
                    }
                }
            }
        }
    }
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return BodyEnd::Truncated(e.to_string()),
    };
    let at = (env.clock)();
    if let Some(m) = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| Message::parse(&v).ok())
        && m.is_response()
        && (status >= 400 || m.id() == rpc_id.as_ref())
    {
        answer(env, session, idx, is_init, &m, at);
    } else if status >= 400 {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        env.log.with(idx, |r| {
            r.response = Some(ResponseRecord {
                at,
                is_error: true,
                summary: format!("HTTP {status}: {text}"),
            })
        });
    }
    BodyEnd::Complete
}

fn answer(
    env: &ClientEnv,
    session: &mut Session,
    idx: usize,
    is_init: bool,
    m: &Message,
    at: Duration,
) {
    let (is_error, summary) = match m {
        Message::Error { error, .. } => (
            true,
            error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("error")
                .to_string(),
        ),
        Message::Response { result, .. } => {
            if is_init {
                session.protocol = Some(
                    result
                        .get("protocolVersion")
                        .and_then(Value::as_str)
                        .unwrap_or(LATEST_PROTOCOL_VERSION)
                        .to_string(),
                );
            }
            let text = result
                .pointer("/content/0/text")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| "ok".into());
            let tool_error = result
                .get("isError")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            (tool_error, text)
        }
        _ => return,
    };
    tracing::debug!(target: "mcpsim::client", client = %env.name, "response{}: {summary}", if is_error { " (error)" } else { "" });
    env.log.with(idx, |r| {
        r.response.get_or_insert(ResponseRecord {
            at,
            is_error,
            summary,
        });
    });
}
