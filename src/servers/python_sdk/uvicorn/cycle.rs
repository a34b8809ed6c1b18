//! uvicorn's `RequestResponseCycle`: one request's ASGI `receive`/`send` and
//! what happens after the application returns (uvicorn 0.38.0,
//! `protocols/http/h11_impl.py`).
//!
//! The flags are uvicorn's: `response_started`, `response_complete`,
//! `disconnected`. `receive()` answers `http.disconnect` once the connection
//! was lost *or* the response completed; `send()` returns silently once
//! disconnected. After the application returns, uvicorn logs an error and
//! closes the connection only if the client is still connected — so after a
//! registered disconnect an incomplete response passes without a word.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use bytes::{Bytes, BytesMut};
use tokio::sync::oneshot;

use super::body::{AsgiBody, BodyChannel};
use super::server::{ConnState, ServerState};
use crate::asgi::{self, HostView, Incoming, LocalBoxFuture, Outgoing};
use crate::servers::python_sdk::anyio::{Cx, Event, Exc, PyResult};
use crate::servers::python_sdk::cost::Step;
use crate::servers::python_sdk::event_loop;

/// The hyper response head, handed back to the connection on
/// `http.response.start`.
pub(crate) type Head = hyper::Response<AsgiBody>;

pub(crate) struct Cycle {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) client: String,
    request_wants_close: bool,
    pub(crate) disconnected: Cell<bool>,
    pub(crate) keep_alive: Cell<bool>,
    body: RefCell<BytesMut>,
    more_body: Cell<bool>,
    pub(crate) response_started: Cell<bool>,
    pub(crate) response_complete: Cell<bool>,
    pub(crate) message_event: Event,
    head: RefCell<Option<oneshot::Sender<Head>>>,
    pub(crate) out: BodyChannel,
    conn: Weak<ConnState>,
    server: Rc<ServerState>,
}

impl Cycle {
    pub(crate) fn new(
        req: &hyper::Request<hyper::body::Incoming>,
        client: String,
        head: oneshot::Sender<Head>,
        conn: &Rc<ConnState>,
        server: Rc<ServerState>,
    ) -> Rc<Self> {
        let request_wants_close = req
            .headers()
            .get(http::header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        Rc::new(Cycle {
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            client,
            request_wants_close,
            disconnected: Cell::new(false),
            keep_alive: Cell::new(true),
            body: RefCell::new(BytesMut::new()),
            more_body: Cell::new(true),
            response_started: Cell::new(false),
            response_complete: Cell::new(false),
            message_event: Event::new(),
            head: RefCell::new(Some(head)),
            out: BodyChannel::new(),
            conn: Rc::downgrade(conn),
            server,
        })
    }

    /// h11 `Data` event: request body bytes arrived.
    pub(crate) fn body_received(&self, data: &[u8]) {
        self.body.borrow_mut().extend_from_slice(data);
        self.message_event.set();
    }

    /// h11 `EndOfMessage`: the request body is complete.
    pub(crate) fn body_complete(&self) {
        self.more_body.set(false);
        self.message_event.set();
    }

    /// The request body broke: the request is over for the app, as after
    /// `connection_lost` (see `server::on_request`).
    pub(crate) fn body_broken(&self) {
        if !self.response_complete.get() {
            self.disconnected.set(true);
        }
        self.message_event.set();
    }

    /// `transport.close()`.
    pub(crate) fn close_transport(&self) {
        if let Some(conn) = self.conn.upgrade() {
            conn.closing.set(true);
        }
        if self.response_started.get() {
            self.out.abort();
        } else {
            // No head was sent: dropping the sender makes hyper drop the
            // connection.
            self.head.borrow_mut().take();
        }
    }

    /// `await receive()`.
    pub(crate) async fn receive(&self, cx: &Cx) -> PyResult<Incoming> {
        if !self.disconnected.get() && !self.response_complete.get() {
            self.message_event.wait_asyncio(cx).await?;
            self.message_event.clear();
        }
        if self.disconnected.get() || self.response_complete.get() {
            return Ok(Incoming::Disconnect);
        }
        let body = self.body.borrow_mut().split().freeze();
        Ok(Incoming::Request {
            body,
            more_body: self.more_body.get(),
        })
    }

    /// `await send(message)`.
    pub(crate) async fn send(&self, cx: &Cx, message: Outgoing) -> PyResult<()> {
        if self.out.write_paused() && !self.disconnected.get() {
            self.out.drain(cx).await?;
        }
        if self.disconnected.get() {
            return Ok(());
        }
        if !self.response_started.get() {
            let Outgoing::Start { status, headers } = message else {
                return Err(Exc::Runtime(format!(
                    "Expected ASGI message 'http.response.start', but got '{}'.",
                    message.type_name()
                )));
            };
            // `self.conn.send(h11.Response(...))`, `self.transport.write(output)`,
            // the access log line.
            event_loop::charge(Step::SendStart).await;
            self.response_started.set(true);
            tracing::info!(
                target: "uvicorn.access",
                "{} - \"{} {} HTTP/1.1\" {}",
                self.client,
                self.method,
                self.path,
                status
            );
            let mut builder = hyper::Response::builder().status(status);
            builder = builder.header("server", "uvicorn");
            for (k, v) in &headers {
                builder = builder.header(k.as_str(), v.as_str());
            }
            if self.request_wants_close {
                builder = builder.header("connection", "close");
            }
            let head = builder.body(self.out.body()).map_err(|e| Exc::Other {
                class: "h11.LocalProtocolError",
                msg: e.to_string(),
            })?;
            if let Some(tx) = self.head.borrow_mut().take() {
                // The connection may be gone already; asyncio's write to a
                // closing transport is equally silent.
                let _ = tx.send(head);
            }
        } else if !self.response_complete.get() {
            let Outgoing::Body { body, more_body } = message else {
                return Err(Exc::Runtime(format!(
                    "Expected ASGI message 'http.response.body', but got '{}'.",
                    message.type_name()
                )));
            };
            // `self.conn.send(h11.Data(data=body))` (and `h11.EndOfMessage()`),
            // `self.transport.write(output)`.
            event_loop::charge(Step::SendBody).await;
            if self.method != "HEAD" {
                self.out.push(body);
            }
            if !more_body {
                self.response_complete.set(true);
                self.message_event.set();
                self.out.finish();
            }
        } else {
            return Err(Exc::Runtime(format!(
                "Unexpected ASGI message '{}' sent, after response already completed.",
                message.type_name()
            )));
        }
        if self.response_complete.get() {
            if !self.keep_alive.get()
                && let Some(conn) = self.conn.upgrade()
            {
                conn.request_close();
            }
            self.server.request_done();
        }
        Ok(())
    }

    /// `send_500_response()`.
    async fn send_500(&self, cx: &Cx) -> PyResult<()> {
        self.send(
            cx,
            Outgoing::Start {
                status: 500,
                headers: vec![
                    ("content-type".into(), "text/plain; charset=utf-8".into()),
                    ("connection".into(), "close".into()),
                ],
            },
        )
        .await?;
        self.send(
            cx,
            Outgoing::Body {
                body: Bytes::from_static(b"Internal Server Error"),
                more_body: false,
            },
        )
        .await
    }

    /// `run_asgi(app)`: run the application, then apply uvicorn's rules for
    /// what it left undone.
    pub(crate) async fn run_asgi(self: &Rc<Self>, cx: Cx, result: PyResult<()>) {
        match result {
            Err(exc) => {
                tracing::error!(target: "uvicorn.error", "Exception in ASGI application\n{exc}");
                if !self.response_started.get() {
                    let _ = self.send_500(&cx).await;
                } else {
                    self.close_transport();
                }
            }
            Ok(()) => {
                if !self.response_started.get() && !self.disconnected.get() {
                    tracing::error!(target: "uvicorn.error", "ASGI callable returned without starting response.");
                    let _ = self.send_500(&cx).await;
                } else if !self.response_complete.get() && !self.disconnected.get() {
                    tracing::error!(target: "uvicorn.error", "ASGI callable returned without completing response.");
                    self.close_transport();
                }
            }
        }
        // A request that ended with no response head (its client gone):
        // uvicorn's transport is closed already; here hyper still waits for
        // the head, so say there will be none and let it close the
        // connection.
        if !self.response_started.get() {
            self.head.borrow_mut().take();
        }
    }
}

impl HostView for Cycle {
    fn client_disconnected(&self) -> bool {
        self.disconnected.get()
    }
}

/// The cycle as the application's `receive` and `send` callables.
pub(crate) struct Callables(pub(crate) Rc<Cycle>);

impl asgi::Receive for Callables {
    fn receive<'a>(&'a self, cx: &'a Cx) -> LocalBoxFuture<'a, PyResult<Incoming>> {
        Box::pin(self.0.receive(cx))
    }
}

impl asgi::Send for Callables {
    fn send<'a>(&'a self, cx: &'a Cx, message: Outgoing) -> LocalBoxFuture<'a, PyResult<()>> {
        Box::pin(self.0.send(cx, message))
    }
}
