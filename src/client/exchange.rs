//! One HTTP exchange: a POST, GET or DELETE on a fresh connection, its
//! response read to the end (an SSE stream event by event), everything seen
//! recorded.
//!
//! The exchange can be cut short four ways, checked in this order: the
//! harness's abandon signal, the step's `abandon_after` (counted from the
//! response head, as httpx's `stream()` returns there), its `cancel_after`
//! (counted from the start, as `asyncio.wait_for`), and its `timeout` (after
//! which the client sends `notifications/cancelled`). Dropping the exchange
//! closes its connection.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::Client;
use super::record::{BodyEnd, EventRecord, RequestRecord, ResponseRecord};
use super::script::{Elicitation, Step};
use super::sse::SseParser;
use crate::mcp::{LATEST_PROTOCOL_VERSION, Message, tools};

/// How long the client keeps reading a stream after its answer arrived.
const LINGER: Duration = Duration::from_secs(1);
/// How long a connection may take to open (httpx's default connect timeout).
/// turmoil never refuses a connection to a host whose process is gone — it
/// lets it hang — so without this a client would wait forever where a real
/// one would be refused.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What one exchange sends.
pub(super) struct Exchange<'a> {
    step_index: usize,
    step: &'a Step,
    http: &'static str,
    what: String,
    body: Option<Value>,
    /// The JSON-RPC id whose answer this exchange waits for.
    pub rpc_id: Option<Value>,
    /// The JSON-RPC method (for checking the answer).
    pub method: Option<String>,
    /// The request params (for checking the answer).
    pub params: Option<Value>,
    /// The progress token asked for.
    pub progress_token: Option<Value>,
    last_event_id: Option<String>,
    resume_of: Option<usize>,
}

impl<'a> Exchange<'a> {
    pub(super) fn post(
        step_index: usize,
        step: &'a Step,
        what: String,
        body: Value,
        rpc_id: Option<Value>,
    ) -> Self {
        let method = body
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_string);
        let params = body.get("params").cloned();
        Self {
            step_index,
            step,
            http: "POST",
            what,
            body: Some(body),
            rpc_id,
            method,
            params,
            progress_token: None,
            last_event_id: None,
            resume_of: None,
        }
    }

    pub(super) fn get(
        step_index: usize,
        step: &'a Step,
        what: String,
        last_event_id: Option<String>,
        resume_of: Option<usize>,
    ) -> Self {
        Self {
            step_index,
            step,
            http: "GET",
            what,
            body: None,
            rpc_id: None,
            method: None,
            params: None,
            progress_token: None,
            last_event_id,
            resume_of,
        }
    }

    pub(super) fn delete(step_index: usize, step: &'a Step) -> Self {
        Self {
            step_index,
            step,
            http: "DELETE",
            what: "DELETE session".into(),
            body: None,
            rpc_id: None,
            method: None,
            params: None,
            progress_token: None,
            last_event_id: None,
            resume_of: None,
        }
    }

    fn is_init(&self) -> bool {
        self.method.as_deref() == Some("initialize") && self.http == "POST"
    }
}

struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn end_text(end: &BodyEnd) -> String {
    match end {
        BodyEnd::Complete => "complete".into(),
        BodyEnd::Truncated(e) => format!("truncated ({e})"),
        BodyEnd::Abandoned => "abandoned by the client".into(),
        BodyEnd::Cancelled => "cancelled by the client".into(),
        BodyEnd::TimedOut => "given up (timeout)".into(),
        BodyEnd::LeftOpen => "left open by the server after the answer".into(),
        BodyEnd::Stalled => "silent for the read timeout; closed by the client".into(),
        BodyEnd::Failed(e) => format!("failed ({e})"),
    }
}

impl Client {
    /// Run one exchange; returns its record's index.
    pub(super) async fn exchange(self: &Rc<Self>, ex: Exchange<'_>) -> usize {
        let is_init = ex.is_init();
        let session = self.session.borrow().id.clone();
        let sent_session =
            (ex.step.with_session || ex.http != "POST") && !is_init && session.is_some();
        let idx = self.env.log.push(RequestRecord {
            client: self.env.name.clone(),
            incarnation: self.env.incarnation,
            step: ex.step_index,
            http: ex.http,
            what: ex.what.clone(),
            rpc_id: if ex.resume_of.is_some() {
                None
            } else {
                ex.rpc_id.clone()
            },
            params: ex.params.clone(),
            expects_response: ex.rpc_id.is_some() && ex.resume_of.is_none(),
            session: if sent_session { session } else { None },
            sent_session,
            progress_token: ex.progress_token.clone(),
            resume_of: ex.resume_of,
            sent_at: self.now(),
            status: None,
            content_type: None,
            session_issued: None,
            events: Vec::new(),
            last_event_id: None,
            retry_ms: None,
            response: None,
            end: None,
            ended_at: None,
        });
        let abandon = self.env.abandon.notified();
        tokio::pin!(abandon);
        abandon.as_mut().enable();
        let head = Rc::new(Notify::new());
        let step = ex.step;
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
        let timeout = async {
            match step.timeout {
                Some(d) if ex.resume_of.is_none() => tokio::time::sleep(d).await,
                _ => std::future::pending().await,
            }
        };
        let rpc_id = ex.rpc_id.clone();
        let work = self.talk(idx, &ex, sent_session, head.clone());
        let end = tokio::select! {
            biased;
            _ = abandon => BodyEnd::Abandoned,
            _ = abandon_timer => BodyEnd::Abandoned,
            _ = cancel_timer => BodyEnd::Cancelled,
            _ = timeout => BodyEnd::TimedOut,
            end = work => end,
        };
        let (answered, expects) = self
            .env
            .log
            .with(idx, |r| (r.response.is_some(), r.expects_response));
        tracing::debug!(
            target: "mcpsim::client",
            client = %self.env.name,
            "{}: body {}{}",
            ex.what,
            end_text(&end),
            if expects && !answered && matches!(end, BodyEnd::Complete | BodyEnd::Truncated(_)) {
                ", no response"
            } else {
                ""
            }
        );
        let at = self.now();
        let timed_out = end == BodyEnd::TimedOut;
        self.env.log.with(idx, |r| {
            r.end = Some(end);
            r.ended_at = Some(at);
        });
        if timed_out && let Some(id) = rpc_id {
            let body = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id, "reason": "timeout"}});
            let quiet = Step::new(super::script::Action::Vanish);
            Box::pin(self.exchange(Exchange::post(
                ex.step_index,
                &quiet,
                "notifications/cancelled".into(),
                body,
                None,
            )))
            .await;
        }
        idx
    }

    /// The HTTP work of an exchange.
    async fn talk(
        self: &Rc<Self>,
        idx: usize,
        ex: &Exchange<'_>,
        sent_session: bool,
        head: Rc<Notify>,
    ) -> BodyEnd {
        self.quiet_for(CONNECT_TIMEOUT);
        let io = match tokio::time::timeout(CONNECT_TIMEOUT, self.env.connector.connect()).await {
            Ok(Ok(io)) => io,
            Ok(Err(e)) => return BodyEnd::Failed(format!("connect: {e}")),
            Err(_) => {
                return BodyEnd::Failed(format!("connect: no answer within {CONNECT_TIMEOUT:?}"));
            }
        };
        let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(io)).await
        {
            Ok(x) => x,
            Err(e) => return BodyEnd::Failed(format!("handshake: {e}")),
        };
        let _conn = AbortOnDrop(crate::task::spawn("client.connection", conn));
        let accept = if ex.http == "GET" {
            "text/event-stream"
        } else {
            "application/json, text/event-stream"
        };
        let mut req = hyper::Request::builder()
            .method(ex.http)
            .uri(self.env.path.as_str())
            .header("host", &self.env.authority)
            .header("accept", accept);
        if ex.body.is_some() {
            req = req.header("content-type", "application/json");
        }
        {
            let s = self.session.borrow();
            // The id goes out as it is now, after the connect: another task of
            // this client may have started a new session meanwhile (a 404 on
            // another request). The record says what was sent — it was
            // written when the exchange began, and `stale-session` read an
            // id the server never saw.
            let sent = if sent_session { s.id.clone() } else { None };
            if let Some(id) = &sent {
                req = req.header("mcp-session-id", id);
            }
            self.env.log.with(idx, |r| {
                r.sent_session = sent.is_some();
                r.session = sent;
            });
            if let Some(v) = &s.protocol {
                req = req.header("mcp-protocol-version", v);
            }
        }
        if let Some(o) = &self.env.behaviour.origin {
            req = req.header("origin", o);
        }
        if let Some(l) = &ex.last_event_id {
            req = req.header("last-event-id", l);
        }
        let body = ex.body.as_ref().map(|b| b.to_string()).unwrap_or_default();
        let req = match req.body(Full::new(Bytes::from(body))) {
            Ok(r) => r,
            Err(e) => return BodyEnd::Failed(format!("request: {e}")),
        };
        let read_timeout = self.env.behaviour.read_timeout;
        let resp = match self.within_read_timeout(sender.send_request(req)).await {
            Some(Ok(r)) => r,
            Some(Err(e)) => return BodyEnd::Failed(format!("no response head: {e}")),
            None => return BodyEnd::Stalled,
        };
        // notify_one keeps a permit if the abandon timer is not waiting yet.
        head.notify_one();
        let status = resp.status().as_u16();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type");
        let issued = header("mcp-session-id");
        tracing::debug!(
            target: "mcpsim::client",
            client = %self.env.name,
            "{}: HTTP {status} {}",
            ex.what,
            content_type.as_deref().unwrap_or("-")
        );
        if ex.is_init()
            && status == 200
            && let Some(sid) = &issued
        {
            self.session.borrow_mut().id = Some(sid.clone());
        }
        self.env.log.with(idx, |r| {
            r.status = Some(status);
            r.content_type = content_type.clone();
            r.session_issued = issued;
        });
        let answer_to = ex.resume_of.unwrap_or(idx);
        let mut body = resp.into_body();
        if content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("text/event-stream"))
        {
            let mut parser = SseParser::new();
            let mut deadline: Option<tokio::time::Instant> = None;
            loop {
                let frame = match (deadline, read_timeout) {
                    (Some(d), _) => match tokio::time::timeout_at(d, body.frame()).await {
                        Ok(f) => f,
                        Err(_) => return BodyEnd::LeftOpen,
                    },
                    (None, Some(t)) => {
                        self.quiet_for(t);
                        match tokio::time::timeout(t, body.frame()).await {
                            Ok(f) => f,
                            Err(_) => return BodyEnd::Stalled,
                        }
                    }
                    (None, None) => body.frame().await,
                };
                match frame {
                    None => return BodyEnd::Complete,
                    Some(Err(e)) => return BodyEnd::Truncated(e.to_string()),
                    Some(Ok(frame)) => {
                        let Ok(data) = frame.into_data() else {
                            continue;
                        };
                        for ev in parser.feed(&data) {
                            if self.on_event(idx, answer_to, ex, &ev) && deadline.is_none() {
                                deadline = Some(tokio::time::Instant::now() + LINGER);
                            }
                        }
                    }
                }
            }
        }
        let bytes = match self.within_read_timeout(body.collect()).await {
            Some(Ok(b)) => b.to_bytes(),
            Some(Err(e)) => return BodyEnd::Truncated(e.to_string()),
            None => return BodyEnd::Stalled,
        };
        let at = self.now();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let parsed = if content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json"))
        {
            // A JSON body is recorded like an event, so the oracles see
            // every answer however it came.
            self.record_event(idx, "json", None, None, &text)
        } else {
            None
        };
        match parsed {
            Some(m) if m.is_response() && (status >= 400 || m.id() == ex.rpc_id.as_ref()) => {
                self.answer(answer_to, ex, &m, at, ex.resume_of.is_some());
            }
            _ if status >= 400 && ex.rpc_id.is_some() => {
                self.env.log.with(answer_to, |r| {
                    r.response.get_or_insert(ResponseRecord {
                        at,
                        is_error: true,
                        summary: format!("HTTP {status}: {text}"),
                        matches: None,
                        via_resume: ex.resume_of.is_some(),
                    });
                });
            }
            _ => {}
        }
        BodyEnd::Complete
    }

    /// `fut`, or `None` if the client's read timeout passes first.
    async fn within_read_timeout<T>(&self, fut: impl std::future::Future<Output = T>) -> Option<T> {
        match self.env.behaviour.read_timeout {
            Some(t) => {
                self.quiet_for(t);
                tokio::time::timeout(t, fut).await.ok()
            }
            None => Some(fut.await),
        }
    }

    /// One SSE event: record it, take the answer, reply to server requests.
    /// Returns whether it was the awaited answer.
    fn on_event(
        self: &Rc<Self>,
        idx: usize,
        answer_to: usize,
        ex: &Exchange<'_>,
        ev: &super::sse::SseEvent,
    ) -> bool {
        let at = self.now();
        // The record keeps the event's own id: one without an `id:` line has
        // none (the inherited buffer only changes when an event carries one).
        let own = ev.id.clone().filter(|_| ev.own_id);
        let msg = self.record_event(idx, &ev.event, own, ev.retry, &ev.data);
        match msg {
            Some(m @ (Message::Response { .. } | Message::Error { .. })) => {
                let expected = self.env.log.with(answer_to, |r| r.rpc_id.clone());
                if expected.is_some() && m.id() == expected.as_ref() {
                    self.answer(answer_to, ex, &m, at, ex.resume_of.is_some());
                    return true;
                }
                false
            }
            Some(Message::Request { id, method, .. }) => {
                self.reply_to_server(ex.step_index, id, method);
                false
            }
            _ => false,
        }
    }

    /// Record a message received on record `idx` (an SSE event or a JSON
    /// body); returns it parsed.
    fn record_event(
        &self,
        idx: usize,
        event: &str,
        id: Option<String>,
        retry: Option<u64>,
        data: &str,
    ) -> Option<Message> {
        let at = self.now();
        let msg = serde_json::from_str::<Value>(data)
            .ok()
            .and_then(|v| Message::parse(&v).ok());
        let (kind, rpc_id, token) = match &msg {
            Some(Message::Request { id, method, .. }) => (method.clone(), Some(id.clone()), None),
            Some(Message::Notification { method, params }) => (
                method.clone(),
                None,
                params
                    .as_ref()
                    .and_then(|p| p.get("progressToken"))
                    .cloned(),
            ),
            Some(Message::Response { id, .. }) => ("response".into(), Some(id.clone()), None),
            Some(Message::Error { id, .. }) => ("error".into(), Some(id.clone()), None),
            None => ("other".into(), None, None),
        };
        self.env.log.with(idx, |r| {
            if id.is_some() {
                r.last_event_id = id.clone();
            }
            if retry.is_some() {
                r.retry_ms = retry;
            }
            r.events.push(EventRecord {
                at,
                event: event.to_string(),
                id,
                kind,
                rpc_id,
                progress_token: token,
                data: data.to_string(),
            });
        });
        msg
    }

    fn answer(&self, idx: usize, ex: &Exchange<'_>, m: &Message, at: Duration, via_resume: bool) {
        let is_init = ex.is_init() || self.env.log.with(idx, |r| r.what == "initialize");
        let (is_error, summary, matches) = match m {
            Message::Error { error, .. } => (
                true,
                error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("error")
                    .to_string(),
                None,
            ),
            Message::Response { result, .. } => {
                if is_init {
                    self.session.borrow_mut().protocol = Some(
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
                let (method, params) = self
                    .env
                    .log
                    .with(idx, |r| (r.what.clone(), r.params.clone()));
                let method = ex
                    .method
                    .clone()
                    .unwrap_or_else(|| method.split_whitespace().next().unwrap_or("").to_string());
                (
                    tool_error,
                    text,
                    tools::answers(&method, params.as_ref(), result),
                )
            }
            _ => return,
        };
        tracing::debug!(
            target: "mcpsim::client",
            client = %self.env.name,
            "response{}{}: {summary}",
            if is_error { " (error)" } else { "" },
            if matches == Some(false) { " THAT DOES NOT FIT THE REQUEST" } else { "" }
        );
        self.env.log.with(idx, |r| {
            r.response.get_or_insert(ResponseRecord {
                at,
                is_error,
                summary,
                matches,
                via_resume,
            });
        });
    }

    /// Answer a request the server sent on a stream (in the background).
    fn reply_to_server(self: &Rc<Self>, step_index: usize, id: Value, method: String) {
        let result = match (method.as_str(), self.env.behaviour.elicitation) {
            ("elicitation/create", Elicitation::Ignore) => return,
            ("elicitation/create", Elicitation::Accept) => {
                json!({"action": "accept", "content": {"answer": self.env.name}})
            }
            ("elicitation/create", Elicitation::Decline) => json!({"action": "decline"}),
            ("ping", _) => json!({}),
            _ => {
                let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}});
                return self.post_in_background(step_index, format!("answer {method}"), body);
            }
        };
        let body = json!({"jsonrpc": "2.0", "id": id, "result": result});
        self.post_in_background(step_index, format!("answer {method}"), body);
    }

    fn post_in_background(self: &Rc<Self>, step_index: usize, what: String, body: Value) {
        let me = self.clone();
        self.spawn("client.reply", async move {
            let step = Step::new(super::script::Action::Vanish);
            me.exchange(Exchange::post(step_index, &step, what, body, None))
                .await;
        });
    }
}
