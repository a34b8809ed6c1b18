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
//! session worker and open SSE stream ends); the tower harness stops
//! accepting, closes idle connections, and ends the process once they have
//! closed or the grace period (`graceful_timeout`, default 10 s) has passed.

mod sessions;
pub use sessions::SeededSessions;
mod tools;

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::tower::{TowerEnv, TowerStack};
use super::{OpenStream, SessionInfo, StackProbe};
use tools::Tools;

/// rmcp 3.11.0's default session `keep_alive`, reported by the probe.
const RMCP_KEEP_ALIVE: Duration = Duration::from_secs(300);

/// The stack: rmcp's service through the same tower harness a user's own
/// server goes through ([`super::tower`]) — rmcp is the first such stack,
/// not a special one.
pub fn stack() -> TowerStack {
    TowerStack::new("rmcp-3.11", service)
        .about("the official Rust SDK, rmcp 3.11.0, unmodified: its StreamableHttpService over hyper, four tools via its handler API")
        .layers("rmcp", "rmcp::transport::streamable_http_server")
}

type Service = StreamableHttpService<Tools, SeededSessions>;

/// One process's service, configured from `[server]` (see the module docs).
fn service(env: TowerEnv) -> Service {
    let c = &env.config;
    let mut local = LocalSessionManager::default();
    local.session_config.keep_alive = Some(c.session_idle_timeout.unwrap_or(RMCP_KEEP_ALIVE));
    let keep_alive = local.session_config.keep_alive;
    let sessions = Arc::new(SeededSessions::new(local, env.ids));
    let mut config = StreamableHttpServerConfig::default()
        .with_sse_keep_alive(None)
        .with_legacy_session_mode(!c.stateless)
        .with_json_response(c.json_response)
        // SIGTERM cancels it: rmcp's own graceful shutdown.
        .with_cancellation_token(env.shutdown.clone());
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
    let tools = Tools::default();
    let in_flight = tools.in_flight.clone();
    env.probe.set(Rc::new(Probe {
        sessions: sessions.clone(),
        in_flight,
        keep_alive,
        clock: env.clock.clone(),
    }));
    StreamableHttpService::new(move || Ok(tools.clone()), sessions, config)
}

/// `host:*` and `host:port` entries of mcpsim's allow-list as rmcp's host
/// entries (rmcp matches an entry without a port on any port).
fn host_only(h: &str) -> String {
    h.strip_suffix(":*").unwrap_or(h).to_string()
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
        // event (the worker quits, and the task that served the session
        // then calls `close_session`: streamable_http_server/tower.rs,
        // `spawn_session_worker`). When that last event was is inside the
        // worker, so the bound reported is from now: a session rmcp will
        // reap is not a leak, unless the run outlives the bound.
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
