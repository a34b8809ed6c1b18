//! `rmcp-3.11`: the official Rust MCP SDK's Streamable HTTP server, rmcp
//! 3.11.0 pinned exactly, run unmodified in the simulated world.
//!
//! rmcp's server is a tower `Service` (`StreamableHttpService`); this stack
//! serves it over hyper on the listener it is given — turmoil's in
//! simulation, tokio's under `mcpsim serve` — exactly as a user would serve it
//! on a real port. What is mcpsim's: the four tools ([`tools`], through
//! rmcp's public handler API), session ids from the seed ([`sessions`]),
//! and the configuration below, each choice with its reason.
//!
//! Configuration from `[server]`: `mode = "stateless"` turns rmcp's
//! `legacy_session_mode` off; `response = "json"` sets `json_response`
//! (rmcp answers JSON only without sessions); `session_idle_timeout` sets
//! the session manager's `keep_alive` (rmcp's default: 300 s);
//! `allowed_hosts` / `allowed_origins` go to rmcp's own checks. The
//! simulated server is reached as `server:PORT`, which rmcp's default host
//! list (loopback only) refuses, so without `allowed_hosts` the list is
//! rmcp's default plus `server` — what a user deploying rmcp behind a name
//! must configure too.
//!
//! **SSE keep-alive is off** (`sse_keep_alive: None`): sse-stream re-arms its
//! keep-alive at `std::time::Instant::now() + interval` and rmcp converts
//! that into tokio's clock, so under turmoil's paused virtual clock the
//! deadline mixes wall time into virtual time and the pings would land at
//! wall-clock-dependent virtual times (FINDINGS: the rmcp section). No other
//! setting differs from rmcp's defaults.
//!
//! SIGTERM cancels rmcp's `cancellation_token` (its graceful shutdown: every
//! session worker and open SSE stream ends), stops accepting, and ends the
//! process once its connections have closed or the grace period (the
//! scenario's `graceful_timeout`, default 10 s) has passed.

mod sessions;
mod tools;

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::{
    Conn, Layers, Listener, OpenStream, ServerEnv, ServerStack, SessionInfo, Signal, StackProbe,
};
use crate::asgi::LocalBoxFuture;
use sessions::SeededSessions;
use tools::Tools;

/// How long a terminated process waits for its connections by default.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// rmcp 3.11.0's default session `keep_alive`, reported by the probe.
const RMCP_KEEP_ALIVE: Duration = Duration::from_secs(300);

/// The stack.
pub struct RmcpStack;

impl ServerStack for RmcpStack {
    fn name(&self) -> &'static str {
        "rmcp-3.11"
    }

    fn about(&self) -> &'static str {
        "the official Rust SDK, rmcp 3.11.0, unmodified: its StreamableHttpService over hyper, four tools via its handler API"
    }

    fn layers(&self) -> Layers {
        Layers {
            http_host: Cow::Borrowed("hyper"),
            sse: Cow::Borrowed("rmcp"),
            transport: Cow::Borrowed("rmcp::transport::streamable_http_server"),
        }
    }

    fn not_judged(&self) -> Vec<(&'static str, &'static str)> {
        let why = "they read ASGI records, and rmcp is no ASGI application";
        vec![("missing-final-body", why), ("protocol-violation", why)]
    }

    fn run(&self, env: ServerEnv) -> LocalBoxFuture<'static, ()> {
        Box::pin(async move {
            let process = tokio::task::LocalSet::new();
            process.run_until(serve(env)).await;
        })
    }
}

type Service = StreamableHttpService<Tools, SeededSessions>;

async fn serve(env: ServerEnv) {
    let c = &env.config;
    let mut local = LocalSessionManager::default();
    local.session_config.keep_alive = Some(c.session_idle_timeout.unwrap_or(RMCP_KEEP_ALIVE));
    let keep_alive = local.session_config.keep_alive;
    let sessions = Arc::new(SeededSessions::new(local, env.ids));
    let mut config = StreamableHttpServerConfig::default()
        .with_sse_keep_alive(None)
        .with_legacy_session_mode(!c.stateless)
        .with_json_response(c.json_response);
    config = match &c.dns_rebinding {
        Some(allow) => {
            let config = config.with_allowed_hosts(allow.hosts.iter().map(|h| host_only(h)));
            if allow.origins.is_empty() {
                config
            } else {
                config.with_allowed_origins(allow.origins.clone())
            }
        }
        None => {
            let mut hosts = config.allowed_hosts.clone();
            hosts.push("server".into());
            config.with_allowed_hosts(hosts)
        }
    };
    let token = config.cancellation_token.clone();
    let tools = Tools::default();
    let in_flight = tools.in_flight.clone();
    let service: Service =
        StreamableHttpService::new(move || Ok(tools.clone()), sessions.clone(), config);
    env.probe.set(Rc::new(Probe {
        sessions: sessions.clone(),
        in_flight,
        keep_alive,
        clock: env.clock.clone(),
    }));
    let open = Rc::new(std::cell::Cell::new(0usize));
    let accept = crate::task::spawn("rmcp.accept", accept(env.listener, service, open.clone()));
    env.listening.set(true);
    tracing::info!(target: "mcpsim::rmcp", "listening (process {})", env.incarnation);

    let Signal::Terminate = env.signals.recv().await;
    tracing::info!(target: "mcpsim::rmcp", "SIGTERM: cancelling rmcp's cancellation_token");
    token.cancel();
    accept.abort();
    env.listening.set(false);
    let grace = env.config.graceful_timeout.unwrap_or(DEFAULT_GRACE);
    let deadline = tokio::time::Instant::now() + grace;
    while open.get() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::info!(target: "mcpsim::rmcp", "process exits ({} connection(s) open)", open.get());
}

/// `host:*` and `host:port` entries of mcpsim's allow-list as rmcp's host
/// entries (rmcp matches an entry without a port on any port).
fn host_only(h: &str) -> String {
    h.strip_suffix(":*").unwrap_or(h).to_string()
}

async fn accept(listener: Box<dyn Listener>, service: Service, open: Rc<std::cell::Cell<usize>>) {
    loop {
        match listener.accept().await {
            Ok((io, _peer)) => {
                crate::task::spawn(
                    "rmcp.connection",
                    connection(io, service.clone(), open.clone()),
                );
            }
            Err(e) => {
                tracing::warn!(target: "mcpsim::rmcp", "accept failed: {e}");
                return;
            }
        }
    }
}

async fn connection(io: Box<dyn Conn>, service: Service, open: Rc<std::cell::Cell<usize>>) {
    open.set(open.get() + 1);
    let conn = hyper::server::conn::http1::Builder::new()
        .auto_date_header(false)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    if let Err(e) = conn.await {
        tracing::debug!(target: "mcpsim::rmcp", "connection ended: {e}");
    }
    open.set(open.get() - 1);
}

struct Probe {
    sessions: Arc<SeededSessions>,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    keep_alive: Option<Duration>,
    clock: crate::asgi::tracking::Clock,
}

impl StackProbe for Probe {
    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    fn open_streams(&self) -> Option<Vec<OpenStream>> {
        // rmcp keeps its request streams inside each session worker's task,
        // out of reach: `leak` judges sessions only.
        None
    }

    fn sessions(&self) -> Vec<SessionInfo> {
        let Ok(map) = self.sessions.inner.sessions.try_read() else {
            return Vec::new();
        };
        // A HashMap: sorted, so the order never depends on its hashing.
        let mut ids: Vec<String> = map.keys().map(|k| k.to_string()).collect();
        ids.sort();
        // rmcp reaps a session `keep_alive` after its worker last saw an
        // event; when that was is inside the worker, so the bound reported
        // is from now — a session rmcp will reap is not a leak.
        let expires_at = self.keep_alive.map(|k| (self.clock)() + k);
        ids.into_iter()
            .map(|id| SessionInfo {
                id,
                terminated: false,
                expires_at,
            })
            .collect()
    }
}
