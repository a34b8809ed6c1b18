//! The MCP side: what a request means, and the task that answers it.
//!
//! A request's task is spawned apart from the HTTP exchange that brought it,
//! so a client that disconnects does not stop it (the spec: disconnection is
//! not cancellation); its answer lands in the request's stream, where a
//! resumption finds it. Only `notifications/cancelled`, DELETE, idle reaping
//! or the process's end stop it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::fixtures;
use super::session::Session;
use super::stream::STANDALONE;
use crate::asgi::tracking::Clock;
use crate::mcp::{Message, codes, tools};

/// Protocol versions this server speaks, oldest first.
pub const PROTOCOL_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// The version an `initialize` with `params` gets: the one asked for if
/// spoken, else the newest.
pub fn negotiate(params: Option<&Value>) -> &'static str {
    let asked = params
        .and_then(|p| p.get("protocolVersion"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    PROTOCOL_VERSIONS
        .iter()
        .find(|v| **v == asked)
        .copied()
        .unwrap_or(PROTOCOL_VERSIONS[PROTOCOL_VERSIONS.len() - 1])
}

/// Does `version` know priming events (2025-11-25 and later)?
pub fn primes(version: &str) -> bool {
    version >= "2025-11-25"
}

/// How long a tool waits for the client to answer an elicitation.
pub const ELICITATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a request's answer goes.
pub enum Reply {
    /// Its SSE stream.
    Stream(u64),
    /// The waiting HTTP exchange, as one JSON body.
    Json(oneshot::Sender<Value>),
}

/// Counts running request tasks for the probe and for shutdown; the count
/// drops however the task ends (answered, aborted, or the process's end).
/// A request's work counts as use of its session: the idle clock restarts
/// when it ends. However the task ends — answered, aborted, or (a bug) a
/// panic — its registration goes and its stream is finished.
pub struct Running {
    work: Work,
    session: Rc<Session>,
    id: Value,
    token: u64,
    stream: Option<u64>,
}

impl Running {
    fn new(work: &Work, session: &Rc<Session>, id: &Value, stream: Option<u64>) -> Self {
        work.running.set(work.running.get() + 1);
        Self {
            work: work.clone(),
            session: session.clone(),
            id: id.clone(),
            token: session.next_token(),
            stream,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let now = (self.work.clock)();
        self.session.unregister(&self.id, self.token);
        if let Some(n) = self.stream {
            self.session.log.borrow_mut().finish(n, now);
        }
        self.session.touch(now);
        let left = self.work.running.get().saturating_sub(1);
        self.work.running.set(left);
        if left == 0 {
            self.work.idle.notify_waiters();
        }
    }
}

/// A request to the client being waited for; forgotten when dropped.
struct Waiting<'a> {
    session: &'a Session,
    id: i64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.session.forget_answer(self.id);
    }
}

/// What a request task needs from the process.
#[derive(Clone)]
pub struct Work {
    /// Running tasks.
    pub running: Rc<Cell<usize>>,
    /// Notified when none runs.
    pub idle: Rc<tokio::sync::Notify>,
    /// The process's clock.
    pub clock: Clock,
}

/// Start answering request `id` in its own task.
pub fn start(
    work: &Work,
    session: &Rc<Session>,
    id: Value,
    method: String,
    params: Option<Value>,
    reply: Reply,
) {
    let stream = match &reply {
        Reply::Stream(n) => Some(*n),
        Reply::Json(_) => None,
    };
    let guard = Running::new(work, session, &id, stream);
    let token = guard.token;
    let s = session.clone();
    let clock = work.clock.clone();
    let task_id = id.clone();
    let task = crate::task::spawn("native.request", async move {
        let _guard = guard;
        let answer = answer(&s, &task_id, &method, params.as_ref(), stream).await;
        match reply {
            Reply::Stream(n) => s.log.borrow_mut().answer(n, &answer.to_json(), clock()),
            Reply::Json(tx) => {
                let _ = tx.send(answer.to_value());
            }
        }
    });
    session.register(&id, stream, task.abort_handle(), token);
}

/// The answer to one request.
async fn answer(
    s: &Rc<Session>,
    id: &Value,
    method: &str,
    params: Option<&Value>,
    stream: Option<u64>,
) -> Message {
    let ok = |result: Value| Message::Response {
        id: id.clone(),
        result,
    };
    match method {
        "initialize" => {
            let version = negotiate(params);
            *s.protocol.borrow_mut() = Some(version.to_string());
            *s.client_capabilities.borrow_mut() =
                params.and_then(|p| p.get("capabilities")).cloned();
            ok(json!({
                "protocolVersion": version,
                "capabilities": fixtures::capabilities(),
                "serverInfo": {"name": "mcpsim-native", "version": env!("CARGO_PKG_VERSION")}
            }))
        }
        "ping" => ok(json!({})),
        "tools/list" => ok(fixtures::with_tools(tools::list())),
        "tools/call" => match params.and_then(|p| p.get("name")).and_then(Value::as_str) {
            Some(tool) => ok(call(s, tool, params, stream).await),
            None => Message::error(
                id.clone(),
                codes::INVALID_PARAMS,
                "tools/call needs a tool name",
            ),
        },
        other => match fixtures::answer(s, other, params) {
            Some(Ok(result)) => ok(result),
            Some(Err((code, message))) => Message::error(id.clone(), code, &message),
            None => Message::error(
                id.clone(),
                codes::METHOD_NOT_FOUND,
                &format!("Method not found: {other}"),
            ),
        },
    }
}

/// Run a tool. Its notifications and requests go on the request's own
/// stream (the standalone stream when the answer is a JSON body).
async fn call(s: &Rc<Session>, tool: &str, params: Option<&Value>, stream: Option<u64>) -> Value {
    let args = params.and_then(|p| p.get("arguments"));
    let related = stream.unwrap_or(STANDALONE);
    match tool {
        "get_greeting" => tools::text_result(tools::text(tool, args).unwrap_or_default(), false),
        "slow_operation" | "progress_operation" => {
            let seconds = match tools::seconds(tool, args) {
                Ok(x) => x,
                Err(e) => return tools::text_result(e, true),
            };
            let steps = if tool == "progress_operation" {
                tools::steps(args)
            } else {
                1
            };
            let token = params
                .and_then(|p| p.pointer("/_meta/progressToken"))
                .filter(|_| tool == "progress_operation")
                .cloned();
            for i in 1..=steps {
                tokio::time::sleep(Duration::from_secs_f64(seconds / steps as f64)).await;
                if let Some(t) = &token {
                    let note = json!({
                        "jsonrpc": "2.0", "method": "notifications/progress",
                        "params": {"progressToken": t, "progress": i, "total": steps}
                    });
                    s.log.borrow_mut().send(related, &note.to_string());
                }
            }
            tools::text_result(tools::text(tool, args).unwrap_or_default(), false)
        }
        "ask_user" => {
            let params = tools::elicitation_params(tools::question(args));
            match ask(s, related, "elicitation", "elicitation/create", params).await {
                Ok(m) => tools::elicitation_result(&m),
                Err(why) => {
                    tools::text_result(format!("Error executing tool ask_user: {why}"), true)
                }
            }
        }
        other => match fixtures::call(s, other, params, related).await {
            Some(result) => result,
            None => tools::text_result(format!("Unknown tool: {other}"), true),
        },
    }
}

/// Send the client a request (`method`, which needs its `capability`) on
/// stream `related` and wait for its answer, at most
/// [`ELICITATION_TIMEOUT`]; on timeout the client is told the request is
/// abandoned (`notifications/cancelled`, as the spec asks).
pub(super) async fn ask(
    s: &Rc<Session>,
    related: u64,
    capability: &str,
    method: &str,
    params: Value,
) -> Result<Message, String> {
    if s.id.is_none() {
        return Err("a stateless server cannot wait for the client's answer".into());
    }
    let capable = s
        .client_capabilities
        .borrow()
        .as_ref()
        .is_some_and(|c| c.get(capability).is_some());
    if !capable {
        return Err(format!(
            "the client did not declare the {capability} capability"
        ));
    }
    let rid = s.next_request_id();
    // Forgotten however the wait ends, the task's abort included.
    let _waiting = Waiting {
        session: s,
        id: rid,
    };
    let answer = s.expect_answer(rid);
    let request = json!({"jsonrpc": "2.0", "id": rid, "method": method, "params": params});
    s.log.borrow_mut().send(related, &request.to_string());
    match tokio::time::timeout(ELICITATION_TIMEOUT, answer).await {
        Ok(Ok(m)) => Ok(m),
        Ok(Err(_)) => Err("the session ended".into()),
        Err(_) => {
            tracing::info!(target: "native", "{method} {rid} unanswered after {ELICITATION_TIMEOUT:?}");
            let cancelled = json!({
                "jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": rid, "reason": "timeout"}
            });
            s.log.borrow_mut().send(related, &cancelled.to_string());
            Err(format!(
                "no answer within {}s",
                ELICITATION_TIMEOUT.as_secs()
            ))
        }
    }
}
