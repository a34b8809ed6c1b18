//! The HTTP face of the native server: one endpoint, `/mcp`, checked in the
//! order a careful server checks — where from (Origin 403, Host 421 when
//! configured), how (405), what it accepts (406), what it sends (415, 413),
//! which protocol (400), which session (400 without one, 404 for one that
//! is gone) — and then POST, GET or DELETE.

use std::convert::Infallible;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::Native;
use super::handler::{self, PROTOCOL_VERSIONS, Reply};
use super::session::Session;
use super::stream::{Feed, Resume, parse_id};
use crate::mcp::{Message, codes};
use crate::servers::AllowList;

/// The largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;
/// How much of a body too large is read (and dropped) before the 413, so
/// that a client still sending reads the answer rather than a reset.
const DRAIN: usize = 8 * MAX_BODY;

enum BodyError {
    TooLarge,
    Read(hyper::Error),
}

/// The request body, at most [`MAX_BODY`] of it.
async fn read_body(mut body: Incoming) -> Result<Bytes, BodyError> {
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        if let Ok(d) = frame.into_data() {
            seen += d.len();
            if seen <= MAX_BODY {
                buf.extend_from_slice(&d);
            } else if seen > DRAIN {
                break;
            }
        }
    }
    if seen > MAX_BODY {
        return Err(BodyError::TooLarge);
    }
    Ok(Bytes::from(buf))
}
/// Sessions one process holds at once.
pub const MAX_SESSIONS: usize = 1024;
/// Requests one session may have in flight at once.
pub const MAX_IN_FLIGHT: usize = 32;

/// A response body: all at once, or an SSE stream fed from a stream's
/// connection queue, which ends when the stream lets go of the connection.
pub enum Body {
    /// A whole body.
    Full(Full<Bytes>),
    /// An SSE stream (and its place in the count of open responses, given
    /// back when hyper drops the body).
    Feed(Feed, #[allow(dead_code)] OpenResponse),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(f) => Pin::new(f).poll_frame(cx),
            // Taken over by another connection: stop, unwritten frames and all.
            Body::Feed(feed, _) if feed.superseded.get() => Poll::Ready(None),
            Body::Feed(feed, _) => feed.rx.poll_recv(cx).map(|f| f.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(f) => f.is_end_stream(),
            Body::Feed(..) => false,
        }
    }
}

/// Counts SSE responses hyper still holds (shutdown waits for them to end).
pub struct OpenResponse(Rc<std::cell::Cell<usize>>);

impl OpenResponse {
    fn new(count: &Rc<std::cell::Cell<usize>>) -> Self {
        count.set(count.get() + 1);
        Self(count.clone())
    }
}

impl Drop for OpenResponse {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

fn full(status: StatusCode, content_type: Option<&'static str>, body: String) -> Response<Body> {
    let mut r = Response::new(Body::Full(Full::new(Bytes::from(body))));
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static(ct));
    }
    r
}

/// An HTTP error with a JSON-RPC error body (id null unless it concerns a
/// request).
fn error(status: StatusCode, code: i64, message: &str, id: Option<&Value>) -> Response<Body> {
    let body = json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": {"code": code, "message": message}});
    full(status, Some("application/json"), body.to_string())
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn accepts(h: &HeaderMap, kind: &str) -> bool {
    header(h, "accept").is_some_and(|a| {
        a.split(',').any(|m| {
            let m = m.split(';').next().unwrap_or("").trim();
            m == kind
                || m == "*/*"
                || m.strip_suffix("/*")
                    .is_some_and(|t| kind.starts_with(&format!("{t}/")))
        })
    })
}

/// The host part of `scheme://host[:port]` or `host[:port]`.
fn hostname(s: &str) -> &str {
    let s = s.split_once("://").map(|(_, r)| r).unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    if s.starts_with('[') {
        return s.split_once(']').map(|(h, _)| &h[1..]).unwrap_or(s);
    }
    s.rsplit_once(':').map(|(h, _)| h).unwrap_or(s)
}

impl Native {
    /// Where the request comes from: `Some(response)` to refuse it.
    fn check_origin(&self, h: &HeaderMap) -> Option<Response<Body>> {
        let host = header(h, "host");
        if let Some(allow) = &self.config.dns_rebinding
            && !host.is_some_and(|v| AllowList::matches(v, &allow.hosts))
        {
            return Some(error(
                StatusCode::MISDIRECTED_REQUEST,
                codes::INVALID_REQUEST,
                "Host not allowed",
                None,
            ));
        }
        let origin = header(h, "origin")?;
        let ok = match &self.config.dns_rebinding {
            Some(allow) => AllowList::matches(origin, &allow.origins),
            // By default only pages served from the loopback. Matching the
            // Host header would not do: under DNS rebinding the page's origin
            // and the Host it sends are the attacker's name for this server.
            None => matches!(hostname(origin), "localhost" | "127.0.0.1" | "::1"),
        };
        (!ok).then(|| {
            error(
                StatusCode::FORBIDDEN,
                codes::INVALID_REQUEST,
                "Origin not allowed",
                None,
            )
        })
    }

    /// The session a request names: 400 without one, 404 for one that is
    /// gone.
    fn session_of(&self, h: &HeaderMap) -> Result<Rc<Session>, Box<Response<Body>>> {
        let Some(id) = header(h, "mcp-session-id") else {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                codes::INVALID_REQUEST,
                "Mcp-Session-Id header required",
                None,
            )));
        };
        match self.sessions.borrow().get(id) {
            Some(s) => {
                s.touch((self.clock)());
                Ok(s.clone())
            }
            None => Err(Box::new(error(
                StatusCode::NOT_FOUND,
                -32001,
                "Session not found",
                None,
            ))),
        }
    }

    /// Answer one HTTP request.
    pub async fn handle(self: Rc<Self>, req: Request<Incoming>) -> Response<Body> {
        if req.uri().path() != "/mcp" {
            return full(
                StatusCode::NOT_FOUND,
                Some("text/plain"),
                "Not Found".into(),
            );
        }
        if let Some(refused) = self.check_origin(req.headers()) {
            tracing::info!(target: "native", "{} refused: origin", req.method());
            return refused;
        }
        if let Some(v) = header(req.headers(), "mcp-protocol-version")
            && !PROTOCOL_VERSIONS.contains(&v)
        {
            return error(
                StatusCode::BAD_REQUEST,
                codes::INVALID_REQUEST,
                &format!("Unsupported MCP-Protocol-Version: {v}"),
                None,
            );
        }
        match req.method().as_str() {
            "POST" => self.post(req).await,
            "GET" => self.get(req),
            "DELETE" => self.delete(req),
            _ => {
                let mut r = error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    codes::INVALID_REQUEST,
                    "Method not allowed",
                    None,
                );
                r.headers_mut()
                    .insert("allow", HeaderValue::from_static("GET, POST, DELETE"));
                r
            }
        }
    }

    async fn post(self: Rc<Self>, req: Request<Incoming>) -> Response<Body> {
        let h = req.headers().clone();
        if !(accepts(&h, "application/json") && accepts(&h, "text/event-stream")) {
            return error(
                StatusCode::NOT_ACCEPTABLE,
                codes::INVALID_REQUEST,
                "Accept must list application/json and text/event-stream",
                None,
            );
        }
        let ct = header(&h, "content-type").unwrap_or("");
        if !ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/json")
        {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::INVALID_REQUEST,
                "Content-Type must be application/json",
                None,
            );
        }
        let bytes = match read_body(req.into_body()).await {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    codes::INVALID_REQUEST,
                    "Request body too large",
                    None,
                );
            }
            Err(BodyError::Read(e)) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    codes::INVALID_REQUEST,
                    &format!("Reading the body: {e}"),
                    None,
                );
            }
        };
        let value: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    codes::PARSE_ERROR,
                    &format!("Parse error: {e}"),
                    None,
                );
            }
        };
        if value.is_array() {
            return error(
                StatusCode::BAD_REQUEST,
                codes::INVALID_REQUEST,
                "Batches are not supported",
                None,
            );
        }
        let msg = match Message::parse(&value) {
            Ok(m) => m,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    codes::INVALID_REQUEST,
                    &format!("Invalid request: {e}"),
                    None,
                );
            }
        };
        let is_init = matches!(&msg, Message::Request { method, .. } if method == "initialize");
        let session = if self.config.stateless {
            Rc::new(Session::new(None, (self.clock)()))
        } else if is_init {
            if self.draining.get() {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    codes::INTERNAL_ERROR,
                    "Shutting down",
                    None,
                );
            }
            if self.sessions.borrow().len() >= MAX_SESSIONS {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    codes::INTERNAL_ERROR,
                    "Too many sessions",
                    None,
                );
            }
            let params = match &msg {
                Message::Request { params, .. } => params.as_ref(),
                _ => None,
            };
            self.new_session(handler::primes(handler::negotiate(params)))
        } else {
            match self.session_of(&h) {
                Ok(s) => s,
                Err(r) => return *r,
            }
        };
        match msg {
            Message::Notification { method, params } => {
                if method == "notifications/cancelled"
                    && let Some(id) = params.as_ref().and_then(|p| p.get("requestId"))
                    && session.cancel(id, (self.clock)())
                {
                    tracing::info!(target: "native", "request {id} cancelled by the client");
                }
                full(StatusCode::ACCEPTED, None, String::new())
            }
            m @ (Message::Response { .. } | Message::Error { .. }) => {
                if !session.resolve(m) {
                    tracing::debug!(target: "native", "an answer nobody waits for (late or unknown)");
                }
                full(StatusCode::ACCEPTED, None, String::new())
            }
            Message::Request { id, method, params } => {
                self.request(session, id, method, params).await
            }
        }
    }

    fn new_session(self: &Rc<Self>, priming: bool) -> Rc<Session> {
        let mut raw = [0u8; 16];
        self.ids.borrow_mut().fill(&mut raw);
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let s = Rc::new(Session::new(Some(id.clone()), (self.clock)()));
        s.log.borrow_mut().set_priming(priming);
        self.sessions.borrow_mut().insert(id.clone(), s.clone());
        tracing::info!(target: "native", "session {id} created");
        self.watch_idle(&s);
        s
    }

    async fn request(
        self: Rc<Self>,
        s: Rc<Session>,
        id: Value,
        method: String,
        params: Option<Value>,
    ) -> Response<Body> {
        if self.draining.get() {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::INTERNAL_ERROR,
                "Shutting down",
                Some(&id),
            );
        }
        if s.has_in_flight(&id) {
            return error(
                StatusCode::BAD_REQUEST,
                codes::INVALID_REQUEST,
                &format!("Request id {id} is already in use in this session"),
                Some(&id),
            );
        }
        if s.busy() >= MAX_IN_FLIGHT {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                codes::INTERNAL_ERROR,
                "Too many requests in flight",
                Some(&id),
            );
        }
        let mut head = Response::builder().status(StatusCode::OK);
        if let Some(sid) = &s.id {
            head = head.header("mcp-session-id", sid.as_str());
        }
        tracing::debug!(target: "native", "{method} (id {id})");
        if self.config.json_response {
            let (tx, rx) = oneshot::channel();
            handler::start(&self.work, &s, id.clone(), method, params, Reply::Json(tx));
            let body = match rx.await {
                Ok(v) => v,
                // Cancelled: the spec wants no answer, so the body is empty.
                Err(_) => return full(StatusCode::NO_CONTENT, None, String::new()),
            };
            return head
                .header("content-type", "application/json")
                .body(Body::Full(Full::new(Bytes::from(body.to_string()))))
                .unwrap_or_else(|_| full(StatusCode::INTERNAL_SERVER_ERROR, None, String::new()));
        }
        let Some((n, feed)) = s.log.borrow_mut().open((self.clock)()) else {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                codes::INTERNAL_ERROR,
                "Too many answers waiting for a client to collect them",
                Some(&id),
            );
        };
        handler::start(&self.work, &s, id, method, params, Reply::Stream(n));
        self.sse(head, feed)
    }

    fn sse(&self, head: hyper::http::response::Builder, feed: Feed) -> Response<Body> {
        let body = Body::Feed(feed, OpenResponse::new(&self.open_responses));
        head.header("content-type", "text/event-stream")
            .header("cache-control", "no-cache")
            .body(body)
            .unwrap_or_else(|_| full(StatusCode::INTERNAL_SERVER_ERROR, None, String::new()))
    }

    fn get(self: Rc<Self>, req: Request<Incoming>) -> Response<Body> {
        if self.config.stateless {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                codes::INVALID_REQUEST,
                "No GET stream without a session",
                None,
            );
        }
        let h = req.headers();
        if !accepts(h, "text/event-stream") {
            return error(
                StatusCode::NOT_ACCEPTABLE,
                codes::INVALID_REQUEST,
                "Accept must list text/event-stream",
                None,
            );
        }
        // While draining, answers finished during the grace can still be
        // collected; only new listeners are turned away.
        if self.draining.get() && header(h, "last-event-id").is_none() {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::INTERNAL_ERROR,
                "Shutting down",
                None,
            );
        }
        let s = match self.session_of(h) {
            Ok(s) => s,
            Err(r) => return *r,
        };
        let head = Response::builder()
            .status(StatusCode::OK)
            .header("mcp-session-id", s.id.as_deref().unwrap_or_default());
        let feed = match header(h, "last-event-id") {
            None => {
                tracing::debug!(target: "native", "GET stream opened");
                s.log.borrow_mut().listen()
            }
            Some(last) => {
                let Some((n, seq)) = parse_id(last) else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        codes::INVALID_REQUEST,
                        "Malformed Last-Event-ID",
                        None,
                    );
                };
                match s.log.borrow_mut().resume(n, seq, (self.clock)()) {
                    Resume::Attached { feed, gap } => {
                        if gap {
                            tracing::warn!(target: "native", "stream {n} resumed after {last}: events after it were already evicted");
                        } else {
                            tracing::debug!(target: "native", "stream {n} resumed after {last}");
                        }
                        feed
                    }
                    Resume::Unknown => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            codes::INVALID_REQUEST,
                            "Last-Event-ID names a stream this session no longer holds",
                            None,
                        );
                    }
                }
            }
        };
        self.sse(head, feed)
    }

    fn delete(self: Rc<Self>, req: Request<Incoming>) -> Response<Body> {
        if self.config.stateless {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                codes::INVALID_REQUEST,
                "No session to end",
                None,
            );
        }
        let s = match self.session_of(req.headers()) {
            Ok(s) => s,
            Err(r) => return *r,
        };
        self.end_session(&s, "ended by the client");
        full(StatusCode::OK, None, String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert_eq!(hostname("http://server:8000"), "server");
        assert_eq!(hostname("https://evil.example"), "evil.example");
        assert_eq!(hostname("server:8000"), "server");
        assert_eq!(hostname("http://[::1]:3000"), "::1");
    }
}
