//! The ASGI HTTP contract, as Rust types.
//!
//! ASGI is the boundary where python-sdk #1437 is visible: the host (uvicorn)
//! calls the application with `(scope, receive, send)`; the application must
//! send `http.response.start`, then `http.response.body` messages, the last one
//! with `more_body: False`. An application that returns after the start but
//! before that final body breaks the contract.
//!
//! An application is a [`tower::Service`] over an [`AsgiCall`], so middleware
//! is an ordinary [`tower::Layer`] — the [`tracking`] layer that observes every
//! call for the oracles is one.

pub mod tracking;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;

use crate::servers::python_sdk::anyio::{Cx, PyResult};

/// A boxed, non-`Send` future: the model runs on one thread per simulation.
pub type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// What `receive()` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// `{"type": "http.request", "body": ..., "more_body": ...}`
    Request { body: Bytes, more_body: bool },
    /// `{"type": "http.disconnect"}`
    Disconnect,
}

/// What the application passes to `send()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// `{"type": "http.response.start", "status": ..., "headers": ...}`
    Start {
        status: u16,
        headers: Vec<(String, String)>,
    },
    /// `{"type": "http.response.body", "body": ..., "more_body": ...}`
    Body { body: Bytes, more_body: bool },
}

impl Outgoing {
    /// The ASGI message type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Outgoing::Start { .. } => "http.response.start",
            Outgoing::Body { .. } => "http.response.body",
        }
    }
}

/// The application's `receive` callable.
pub trait Receive {
    /// `await receive()`.
    fn receive<'a>(&'a self, cx: &'a Cx) -> LocalBoxFuture<'a, PyResult<Incoming>>;
}

/// The application's `send` callable.
pub trait Send {
    /// `await send(message)`.
    fn send<'a>(&'a self, cx: &'a Cx, message: Outgoing) -> LocalBoxFuture<'a, PyResult<()>>;
}

/// What the host knows about the connection a request came on. The ASGI spec
/// gives applications no such view; the tracking layer reads it to tell apart a
/// response the host has already written off (client gone) from one a
/// connected client is still waiting for.
pub trait HostView {
    /// Has the host registered that the client disconnected?
    fn client_disconnected(&self) -> bool;
}

/// The `scope` of an HTTP request.
#[derive(Clone)]
pub struct Scope {
    /// `scope["method"]`.
    pub method: String,
    /// `scope["path"]`.
    pub path: String,
    /// `scope["headers"]`, names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// `scope["client"]` as `host:port`.
    pub client: String,
    /// The host's view of the connection (see [`HostView`]).
    pub host_view: Rc<dyn HostView>,
}

impl Scope {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One application call: the task running it plus `(scope, receive, send)`.
#[derive(Clone)]
pub struct AsgiCall {
    /// The task the host created for this request.
    pub cx: Cx,
    /// The request scope.
    pub scope: Scope,
    /// `receive`.
    pub receive: Rc<dyn Receive>,
    /// `send`.
    pub send: Rc<dyn Send>,
}

/// The future an ASGI application returns.
pub type AsgiFuture = LocalBoxFuture<'static, PyResult<()>>;

/// Anything that can serve as an ASGI application.
pub trait AsgiApp:
    tower::Service<
        AsgiCall,
        Response = (),
        Error = crate::servers::python_sdk::anyio::Exc,
        Future = AsgiFuture,
    > + Clone
    + 'static
{
}

impl<T> AsgiApp for T where
    T: tower::Service<
            AsgiCall,
            Response = (),
            Error = crate::servers::python_sdk::anyio::Exc,
            Future = AsgiFuture,
        > + Clone
        + 'static
{
}
