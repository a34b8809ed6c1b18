//! The pieces of Starlette the transport uses: `Request` (headers and the
//! body read through `receive`) and `Response` (start + one final body, with
//! no checkpoint in between).

use std::cell::RefCell;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use super::anyio::{Cx, Exc, PyResult};
use crate::asgi::{Incoming, Outgoing, Receive, Scope, Send};

/// `starlette.requests.Request`.
pub struct Request {
    /// The ASGI scope.
    pub scope: Scope,
    receive: Rc<dyn Receive>,
    body: RefCell<Option<Bytes>>,
}

impl Request {
    /// `Request(scope, receive)`.
    pub fn new(scope: Scope, receive: Rc<dyn Receive>) -> Self {
        Self {
            scope,
            receive,
            body: RefCell::new(None),
        }
    }

    /// The `receive` callable.
    pub fn receive(&self) -> Rc<dyn Receive> {
        self.receive.clone()
    }

    /// `request.headers.get(name)` (lower-case name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.scope.header(name)
    }

    /// `request.method`.
    pub fn method(&self) -> &str {
        &self.scope.method
    }

    /// `await request.body()`: reads `http.request` messages until
    /// `more_body` is false; `http.disconnect` raises `ClientDisconnect`.
    pub async fn body(&self, cx: &Cx) -> PyResult<Bytes> {
        if let Some(b) = self.body.borrow().clone() {
            return Ok(b);
        }
        let mut buf = BytesMut::new();
        loop {
            match self.receive.receive(cx).await? {
                Incoming::Request { body, more_body } => {
                    buf.extend_from_slice(&body);
                    if !more_body {
                        break;
                    }
                }
                Incoming::Disconnect => return Err(Exc::ClientDisconnect),
            }
        }
        let b = buf.freeze();
        *self.body.borrow_mut() = Some(b.clone());
        Ok(b)
    }
}

/// `starlette.responses.Response`.
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Response {
    /// `Response(content, status_code, headers, media_type)`.
    pub fn new(
        content: impl Into<Bytes>,
        status: u16,
        headers: Vec<(String, String)>,
        media_type: Option<&str>,
    ) -> Self {
        let body: Bytes = content.into();
        let mut raw: Vec<(String, String)> = headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let has = |raw: &Vec<(String, String)>, k: &str| raw.iter().any(|(n, _)| n == k);
        if !(status < 200 || status == 204 || status == 304 || has(&raw, "content-length")) {
            raw.push(("content-length".into(), body.len().to_string()));
        }
        if let Some(mt) = media_type
            && !has(&raw, "content-type")
        {
            let ct = if mt.starts_with("text/") {
                format!("{mt}; charset=utf-8")
            } else {
                mt.to_string()
            };
            raw.push(("content-type".into(), ct));
        }
        Self {
            status,
            headers: raw,
            body,
        }
    }

    /// `await response(scope, receive, send)`.
    pub async fn call(&self, cx: &Cx, send: &dyn Send) -> PyResult<()> {
        send.send(
            cx,
            Outgoing::Start {
                status: self.status,
                headers: self.headers.clone(),
            },
        )
        .await?;
        send.send(
            cx,
            Outgoing::Body {
                body: self.body.clone(),
                more_body: false,
            },
        )
        .await
    }
}
