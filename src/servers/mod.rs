//! Servers under test.
//!
//! A server stack is a whole server process: it takes a listener, a source of
//! randomness for ids, a signal queue and a place to put its observations, and
//! serves until it exits. It knows nothing of the simulator — the same code
//! could accept real TCP connections. The harness reads what happened through
//! the [`ServerEnv`] it handed over and the [`StackProbe`] the process may
//! register, never through the stack's insides.
//!
//! The contract is HTTP-level where it must hold for every server and ASGI
//! where it is Python's: every stack served over hyper records its exchanges
//! in the [`HttpLog`] (the [`tower`] harness does it for any tower service);
//! only an ASGI stack fills the [`AsgiLog`]. An oracle reads whichever record
//! it judges, so adding a stack touches no oracle and no world code — and
//! what a stack cannot show is reported as not judged.

mod ids;
pub mod native;
pub mod processing;
pub mod python_sdk;
pub mod rmcp;
pub mod tower;

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::asgi::LocalBoxFuture;
use crate::asgi::tracking::{AsgiLog, Clock};

pub use ids::Ids;
pub use processing::{CostMode, Factor, Load, Processing};
pub use tower::{HttpLog, TowerStack};

/// A byte stream a server can speak HTTP over.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + 'static> Conn for T {}

/// Accepts connections (a turmoil listener in simulation, tokio's for real).
pub trait Listener {
    /// The next connection and the peer's `host:port`.
    fn accept(&self) -> LocalBoxFuture<'_, io::Result<(Box<dyn Conn>, String)>>;
}

/// A process signal the harness (or a terminal) can deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: graceful shutdown.
    Terminate,
}

/// The signal queue of one server host.
#[derive(Clone, Default)]
pub struct Signals {
    queue: Rc<RefCell<VecDeque<Signal>>>,
    // Woken on each delivery (a stored permit, so a signal raised before
    // `recv` waits is not missed).
    ready: Rc<RefCell<Rc<tokio::sync::Notify>>>,
}

impl Signals {
    /// Deliver a signal.
    pub fn raise(&self, s: Signal) {
        self.queue.borrow_mut().push_back(s);
        self.ready.borrow().notify_one();
    }

    /// Forget undelivered signals (a new process starts with none).
    pub fn reset(&self) {
        self.queue.borrow_mut().clear();
        *self.ready.borrow_mut() = Rc::new(tokio::sync::Notify::new());
    }

    /// Wait for the next signal.
    pub async fn recv(&self) -> Signal {
        loop {
            if let Some(s) = self.queue.borrow_mut().pop_front() {
                return s;
            }
            let ready = self.ready.borrow().clone();
            ready.notified().await;
        }
    }
}

/// How the scenario configures the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServerConfig {
    /// Sessions (stateful) or a fresh transport per request (stateless).
    pub stateless: bool,
    /// Answer requests with one JSON body instead of an SSE stream.
    pub json_response: bool,
    /// Keep an event store for resumption.
    pub event_store: bool,
    /// uvicorn's `timeout_graceful_shutdown` (`None`: wait forever).
    pub graceful_timeout: Option<Duration>,
    /// Reap a session not heard from for this long (`None`: the stack's
    /// default — the native server's 2 minutes, python-sdk 2.3's 30 minutes;
    /// python-sdk 1.20 never reaps).
    pub session_idle_timeout: Option<Duration>,
    /// DNS-rebinding protection: allowed `Host` and `Origin` values (`None`:
    /// the stack's default — off in python-sdk 1.20, loopback only in 2.3;
    /// same host or loopback Origins only in the native server).
    pub dns_rebinding: Option<AllowList>,
    /// Whether a stack that models its processing time charges it.
    pub cost: CostMode,
}

/// Allowed `Host` and `Origin` values (`:*` matches any port).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AllowList {
    /// Allowed `Host` header values.
    pub hosts: Vec<String>,
    /// Allowed `Origin` header values.
    pub origins: Vec<String>,
}

impl AllowList {
    /// Does `value` match an entry of `allowed` (exactly, or `base:*` for
    /// `base` on any port)?
    pub fn matches(value: &str, allowed: &[String]) -> bool {
        allowed.iter().any(|a| {
            a == value
                || a.strip_suffix(":*").is_some_and(|base| {
                    value
                        .strip_prefix(base)
                        .is_some_and(|rest| rest.starts_with(':'))
                })
        })
    }
}

/// A request stream still registered in a server (for the `leak` oracle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OpenStream {
    /// The session it belongs to (`None` for stateless transports).
    pub session: Option<String>,
    /// The stream key (a request id, or the GET stream's key).
    pub stream: String,
}

/// A session a server still holds (for the `leak` oracle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// Its id.
    pub id: String,
    /// Ended by DELETE (and still held).
    pub terminated: bool,
    /// When the server will drop it by itself (idle reaping), on its clock;
    /// `None`: it stays until the process ends.
    #[serde(serialize_with = "crate::time::ser_opt_duration")]
    pub expires_at: Option<Duration>,
}

/// What a running server process lets the harness read.
pub trait StackProbe {
    /// Requests being worked on (handler tasks running).
    fn in_flight(&self) -> usize;
    /// Request streams still registered (`None`: the stack does not let
    /// them be seen, so `leak` does not judge streams).
    fn open_streams(&self) -> Option<Vec<OpenStream>>;
    /// Sessions still held.
    fn sessions(&self) -> Vec<SessionInfo>;
}

/// Where a process registers its probe; the harness reads the latest one.
#[derive(Clone, Default)]
pub struct ProbeSlot(Rc<RefCell<Option<Rc<dyn StackProbe>>>>);

impl ProbeSlot {
    /// Register the running process's probe.
    pub fn set(&self, p: Rc<dyn StackProbe>) {
        *self.0.borrow_mut() = Some(p);
    }

    /// The probe of the latest process, if one ever started.
    pub fn get(&self) -> Option<Rc<dyn StackProbe>> {
        self.0.borrow().clone()
    }
}

/// Everything a server process is started with.
pub struct ServerEnv {
    /// Where connections come from.
    pub listener: Box<dyn Listener>,
    /// Randomness for session and event ids.
    pub ids: Ids,
    /// Signals to the process.
    pub signals: Signals,
    /// The HTTP record of every exchange (every stack served over hyper).
    pub http_log: HttpLog,
    /// The ASGI record of every request (ASGI stacks only).
    pub asgi_log: AsgiLog,
    /// Virtual (or real) time for records.
    pub clock: Clock,
    /// Where to register the process's probe.
    pub probe: ProbeSlot,
    /// Which start of the process this is (0 = first).
    pub incarnation: u32,
    /// Set when the process has started listening.
    pub listening: Rc<Cell<bool>>,
    /// The scenario's server configuration.
    pub config: ServerConfig,
    /// Draws and load for a stack that models its processing time.
    pub processing: Processing,
}

/// The layers a stack is made of, for naming where a failure happened.
///
/// Owned or static: a modelled stack names its layers in code, a real target
/// (`mcpsim drive`) names them in what it reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Layers {
    /// The HTTP/ASGI host (e.g. "uvicorn").
    pub http_host: Cow<'static, str>,
    /// What produces SSE responses (e.g. "sse-starlette").
    pub sse: Cow<'static, str>,
    /// The MCP transport (e.g. "mcp.server.streamable_http").
    pub transport: Cow<'static, str>,
}

/// A server stack that can be put under test.
///
/// `Send + Sync` so that one stack value can serve every worker of a sweep;
/// each process it runs stays on its host's one thread.
pub trait ServerStack: Send + Sync {
    /// The name used on the command line and in scenario files.
    fn name(&self) -> &'static str;
    /// One line for `mcpsim list`.
    fn about(&self) -> &'static str;
    /// Its layers.
    fn layers(&self) -> Layers;
    /// Run one server process until it exits (called again on restart).
    fn run(&self, env: ServerEnv) -> LocalBoxFuture<'static, ()>;
    /// The oracles that cannot see this stack, each with why: a run reports
    /// them as *not judged*, never as passed.
    fn not_judged(&self) -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }
    /// Does the stack model its own processing time (so that `[server] cost`
    /// and a `slow` fault change what it does)? A stack that does not runs
    /// its code in no virtual time, and a busy host cannot slow it.
    fn models_cost(&self) -> bool {
        false
    }
}

/// A stack, shareable by a sweep's workers.
pub type StackRef = Arc<dyn ServerStack>;

/// Every stack mcpsim knows, by name.
pub fn stacks() -> Vec<StackRef> {
    let mut all: Vec<StackRef> = python_sdk::Model::ALL
        .iter()
        .map(|m| Arc::new(python_sdk::PythonSdk::new(*m)) as StackRef)
        .collect();
    all.push(Arc::new(native::NativeStack));
    all.push(Arc::new(rmcp::stack()));
    all
}

/// The stack called `name`.
pub fn stack(name: &str) -> Option<StackRef> {
    stacks().into_iter().find(|s| s.name() == name)
}

/// The names of every stack, for error messages.
pub fn stack_names() -> Vec<&'static str> {
    stacks().iter().map(|s| s.name()).collect()
}
