//! The python-sdk stack, modelled layer by layer after the released code, in
//! two releases: mcp 2.3.0 on uvicorn 0.54.0, sse-starlette 3.7.0 and anyio
//! 4.16 (today's), and mcp 1.20.0 on uvicorn 0.38.0, sse-starlette 3.0.3 and
//! anyio 4 (the seed's). What 2.3 changes is listed in one place,
//! [`release`]; the layer that differs asks its release at the line that
//! differs.
//!
//! ```text
//!  hyper HTTP/1.1 (real framing over the connection it is given)
//!   └ uvicorn        uvicorn/       ASGI host: cycles, disconnects, after-return rules, shutdown
//!      └ tracking    crate::asgi::tracking (the harness's eyes; a tower Layer)
//!         └ Starlette starlette.rs  error middleware, route /mcp, Request/Response
//!            └ session_manager.rs   sessions by id, uuid4 ids from the process's id source
//!               └ transport/        POST → request stream, SSE writer, router; GET; DELETE
//!                  ├ sse_starlette.rs  EventSourceResponse's task group
//!                  └ session.rs (1.20: ServerSession + Server.run) or
//!                    dispatcher.rs (2.3: JSONRPCDispatcher + ServerRunner) → tools.rs
//! ```
//!
//! All of it runs on [`anyio`], the model of Python's async semantics, on
//! one [`event_loop`] per process, where each step of Python code takes the
//! time [`cost`] says the real release takes (`[server] cost = "zero"`
//! leaves it out). A stack is a [`Model`]: a [`Release`] in a [`Variant`],
//! each variant one named change.

pub mod anyio;
pub mod cost;
mod dispatcher;
pub mod event_loop;
mod event_store;
mod pydict;
pub mod release;
mod session;
mod session_manager;
mod sse_starlette;
mod starlette;
mod tools;
mod transport;
pub mod uvicorn;
mod variant;

use std::borrow::Cow;
use std::rc::Rc;
use std::task::{Context, Poll};

pub use release::Release;
pub use variant::{Model, Variant};

use anyio::{Cx, Exc};
use session_manager::{ManagerLifespan, SessionManager};
use sse_starlette::AppStatus;
use starlette::Response;

use crate::asgi::tracking::TrackingLayer;
use crate::asgi::{AsgiCall, AsgiFuture, LocalBoxFuture, Outgoing};
use crate::servers::{Layers, OpenStream, ServerEnv, ServerStack, SessionInfo, StackProbe};

/// The stack a scenario runs on when it names none: the seed's release, which
/// the catalogue was written against (every file names its stack anyway).
pub const DEFAULT_STACK: &str = "python-sdk-1.20";

/// The python-sdk stack: one release in one of its variants.
pub struct PythonSdk {
    model: Model,
}

impl PythonSdk {
    /// The stack for `model`.
    pub fn new(model: Model) -> Self {
        Self { model }
    }
}

impl ServerStack for PythonSdk {
    fn name(&self) -> &'static str {
        self.model.name()
    }

    fn about(&self) -> &'static str {
        self.model.about()
    }

    fn layers(&self) -> Layers {
        Layers {
            http_host: Cow::Borrowed("uvicorn"),
            sse: Cow::Borrowed("sse-starlette"),
            transport: Cow::Borrowed("mcp.server.streamable_http"),
        }
    }

    fn run(&self, mut env: ServerEnv) -> LocalBoxFuture<'static, ()> {
        let model = self.model;
        Box::pin(async move {
            // The process: everything it spawns lives in this local set and
            // dies with it when the process exits, closing its sockets; all
            // of it runs on the process's one event loop.
            let processing = std::mem::take(&mut env.processing);
            let event_loop = event_loop::EventLoop::new(model.release, processing);
            let process = tokio::task::LocalSet::new();
            process
                .run_until(event_loop.run(process_main(model, env)))
                .await;
        })
    }

    fn models_cost(&self) -> bool {
        true
    }
}

async fn process_main(model: Model, env: ServerEnv) {
    // sse_starlette's module state: per process.
    let app_status = Rc::new(AppStatus::new(model.release));
    let manager = SessionManager::new(
        env.config.clone(),
        model,
        app_status.clone(),
        env.ids,
        env.clock.clone(),
    );
    env.probe.set(Rc::new(Probe(manager.clone())));
    let app = tower::ServiceBuilder::new()
        .layer(TrackingLayer::new(env.asgi_log, env.clock, env.incarnation))
        .service(StarletteApp {
            manager: manager.clone(),
        });
    let mut server = uvicorn::Server::new(uvicorn::Config {
        timeout_graceful_shutdown: env.config.graceful_timeout,
    });
    let status = app_status.clone();
    server.patch_handle_exit(Rc::new(move || status.handle_exit()));
    server
        .serve(
            app,
            Rc::new(ManagerLifespan(manager)),
            env.listener,
            env.signals,
            env.listening,
        )
        .await;
}

/// FastMCP's Starlette application: `ServerErrorMiddleware` around a router
/// with one route, `/mcp`, whose endpoint is the session manager.
#[derive(Clone)]
struct StarletteApp {
    manager: Rc<SessionManager>,
}

impl tower::Service<AsgiCall> for StarletteApp {
    type Response = ();
    type Error = Exc;
    type Future = AsgiFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Exc>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: AsgiCall) -> AsgiFuture {
        let manager = self.manager.clone();
        Box::pin(async move {
            // Starlette → ServerErrorMiddleware → ExceptionMiddleware → Router
            // (matches /mcp) → StreamableHTTPASGIApp → handle_request → the
            // transport's request checks.
            event_loop::charge(cost::Step::Route).await;
            let started = Rc::new(std::cell::Cell::new(false));
            let send: Rc<dyn crate::asgi::Send> = Rc::new(NoteStart {
                inner: call.send.clone(),
                started: started.clone(),
            });
            let cx = &call.cx;
            let result = if call.scope.path == "/mcp" {
                manager
                    .handle_request(cx, call.scope.clone(), call.receive.clone(), send.clone())
                    .await
            } else {
                Response::new("Not Found", 404, vec![], Some("text/plain"))
                    .call(cx, &*send)
                    .await
            };
            // ServerErrorMiddleware: a 500 if nothing was sent yet, then re-raise.
            if let Err(e) = &result
                && e.is_exception()
                && !started.get()
            {
                let _ = Response::new("Internal Server Error", 500, vec![], Some("text/plain"))
                    .call(cx, &*call.send)
                    .await;
            }
            result
        })
    }
}

/// `ServerErrorMiddleware`'s `_send` wrapper: notes whether a response started.
struct NoteStart {
    inner: Rc<dyn crate::asgi::Send>,
    started: Rc<std::cell::Cell<bool>>,
}

impl crate::asgi::Send for NoteStart {
    fn send<'a>(
        &'a self,
        cx: &'a Cx,
        message: Outgoing,
    ) -> LocalBoxFuture<'a, anyio::PyResult<()>> {
        if matches!(message, Outgoing::Start { .. }) {
            self.started.set(true);
        }
        self.inner.send(cx, message)
    }
}

struct Probe(Rc<SessionManager>);

impl StackProbe for Probe {
    fn in_flight(&self) -> usize {
        self.0.handlers.get()
    }

    fn open_streams(&self) -> Option<Vec<OpenStream>> {
        let streams = self
            .0
            .all_transports
            .borrow()
            .iter()
            .filter_map(|w| w.upgrade())
            .flat_map(|t| {
                t.open_streams().into_iter().map(move |s| OpenStream {
                    session: t.session_id.clone(),
                    stream: s,
                })
            })
            .collect();
        Some(streams)
    }

    fn sessions(&self) -> Vec<SessionInfo> {
        // 1.20 never reaps a session: only a crash of its server task removes
        // it, and a terminated one stays registered. 2.3 reaps one when its
        // idle scope's deadline passes; while a request is in flight the
        // deadline is infinite, and so is the session's life.
        self.0
            .instances()
            .into_iter()
            .map(|(id, t)| SessionInfo {
                id,
                terminated: t.is_terminated(),
                expires_at: t.idle_deadline(),
            })
            .collect()
    }
}
