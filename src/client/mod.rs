//! mcpsim's MCP client: runs a script over HTTP/1.1 (hyper) on whatever
//! connections its [`Connector`] makes, and records what it saw.
//!
//! It behaves like the official SDK clients where that matters for the
//! server: `Accept: application/json, text/event-stream`, JSON bodies, the
//! session id and `MCP-Protocol-Version` on every request after `initialize`,
//! request ids counting from 0, the request id as progress token. Beyond the
//! script's steps it can listen on the GET stream, resume a broken SSE stream
//! with `Last-Event-ID` (backoff drawn from its seed stream, `retry:`
//! honoured), initialize again after a 404, answer the server's elicitation
//! requests, and send an `Origin` ([`script::Behaviour`]).
//!
//! Unlike the SDKs it reads a response body on to its end after the answer (for
//! a while), so the records can tell a properly terminated stream from a
//! truncated one, and it checks every answer against the request it sent
//! ([`crate::mcp::tools::answers`]). It knows nothing of the simulator: it takes
//! a connector, a clock for its records and a source of randomness.

mod exchange;
mod record;
pub mod script;
pub mod sse;

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use exchange::Exchange;
pub use record::{BodyEnd, ClientLog, Departure, EventRecord, RequestRecord, ResponseRecord};
use script::{Action, Behaviour, IdStrategy, Step};

use crate::asgi::LocalBoxFuture;
use crate::asgi::tracking::Clock;
use crate::servers::Conn;

/// Opens connections to the server.
pub trait Connector {
    /// A new connection.
    fn connect(&self) -> LocalBoxFuture<'_, io::Result<Box<dyn Conn>>>;
}

/// Everything one logical client runs with.
pub struct ClientEnv {
    /// Its name (for records).
    pub name: String,
    /// Which start of its host this is.
    pub incarnation: u32,
    /// How it reaches the server.
    pub connector: Rc<dyn Connector>,
    /// The `Host` header value.
    pub authority: String,
    /// The MCP endpoint's path (`/mcp`).
    pub path: String,
    /// Time for records.
    pub clock: Clock,
    /// Where records go.
    pub log: ClientLog,
    /// Randomness for drawn waits and backoff.
    pub workload: ChaCha8Rng,
    /// Abandon the response in flight when notified.
    pub abandon: Rc<Notify>,
    /// Set once the script has run to its end.
    pub done: Rc<Cell<bool>>,
    /// Standing behaviour.
    pub behaviour: Behaviour,
}

#[derive(Default)]
struct Session {
    id: Option<String>,
    protocol: Option<String>,
    next_id: i64,
}

/// A running client: its environment, session and background tasks.
pub(crate) struct Client {
    env: ClientEnv,
    session: RefCell<Session>,
    rng: RefCell<ChaCha8Rng>,
    background: RefCell<Vec<JoinHandle<Option<()>>>>,
}

impl Client {
    fn take_id(&self) -> i64 {
        if self.env.behaviour.ids == IdStrategy::Constant {
            return 1;
        }
        let mut s = self.session.borrow_mut();
        let id = s.next_id;
        s.next_id += 1;
        id
    }

    fn now(&self) -> Duration {
        (self.env.clock)()
    }

    fn spawn(&self, name: &'static str, fut: impl std::future::Future<Output = ()> + 'static) {
        let mut bg = self.background.borrow_mut();
        bg.retain(|h| !h.is_finished());
        bg.push(crate::task::spawn(name, fut));
    }

    fn stop_background(&self) {
        for h in self.background.borrow_mut().drain(..) {
            h.abort();
        }
    }

    /// A backoff before reconnect attempt `n`: drawn from the client's seed
    /// stream, doubling, unless the stream asked for `retry:`.
    fn backoff(&self, attempt: u32, retry_ms: Option<u64>) -> Duration {
        let d = match retry_ms {
            Some(ms) => Duration::from_millis(ms),
            None => {
                let base = self.rng.borrow_mut().random_range(50..=250u64);
                Duration::from_millis(base << attempt.min(6))
            }
        };
        self.quiet_for(d);
        d
    }

    /// Tell the harness that nothing need happen for `d` (not a hang).
    fn quiet_for(&self, d: Duration) {
        self.env.log.expect_quiet_until(self.now() + d);
    }

    async fn initialize(self: &Rc<Self>, step_index: usize, step: &Step, protocol: &str) {
        let id = self.take_id();
        let body = json!({
            "jsonrpc": "2.0", "id": id, "method": "initialize",
            "params": {
                "protocolVersion": protocol,
                "capabilities": {"elicitation": {}},
                "clientInfo": {"name": "mcpsim", "version": env!("CARGO_PKG_VERSION")}
            }
        });
        let ex = Exchange::post(step_index, step, "initialize".into(), body, Some(json!(id)));
        self.exchange(ex).await;
    }

    async fn request(
        self: &Rc<Self>,
        step_index: usize,
        step: &Step,
        method: &str,
        params: Option<Value>,
    ) {
        let mut retried = false;
        loop {
            let id = self.take_id();
            let mut params = params.clone();
            let token = step.progress.then(|| json!(id));
            if let Some(t) = &token {
                let p = params.get_or_insert_with(|| json!({}));
                p["_meta"] = json!({"progressToken": t});
            }
            let mut body = json!({"jsonrpc": "2.0", "id": id, "method": method});
            if let Some(p) = &params {
                body["params"] = p.clone();
            }
            let mut wait = crate::mcp::tools::duration(method, params.as_ref());
            if let Some(t) = step.timeout {
                wait = wait.max(t);
            }
            self.quiet_for(wait);
            let mut ex = Exchange::post(step_index, step, step.describe(), body, Some(json!(id)));
            ex.method = Some(method.to_string());
            ex.params = params;
            ex.progress_token = token;
            let idx = self.exchange(ex).await;
            let status = self.env.log.with(idx, |r| r.status);
            if status == Some(404) && self.env.behaviour.reinit && !retried {
                retried = true;
                tracing::debug!(target: "mcpsim::client", client = %self.env.name, "404: initializing again");
                self.initialize(step_index, step, crate::mcp::LATEST_PROTOCOL_VERSION)
                    .await;
                continue;
            }
            self.resume_if_broken(step_index, step, idx).await;
            return;
        }
    }

    async fn notify(
        self: &Rc<Self>,
        step_index: usize,
        step: &Step,
        method: &str,
        params: Option<Value>,
    ) {
        let mut body = json!({"jsonrpc": "2.0", "method": method});
        if let Some(p) = params {
            body["params"] = p;
        }
        self.exchange(Exchange::post(
            step_index,
            step,
            method.to_string(),
            body,
            None,
        ))
        .await;
    }

    async fn goodbye(self: &Rc<Self>, step_index: usize, step: &Step) {
        if self.session.borrow().id.is_none() {
            tracing::debug!(target: "mcpsim::client", client = %self.env.name, "no session to end");
            return;
        }
        let idx = self.exchange(Exchange::delete(step_index, step)).await;
        if self.env.log.with(idx, |r| r.status) == Some(200) {
            self.session.borrow_mut().id = None;
        }
    }

    /// `listen`: the GET stream, in the background, resumed when it breaks.
    fn listen(self: &Rc<Self>, step_index: usize, step: &Step) {
        let me = self.clone();
        let step = step.clone();
        self.spawn("client.listen", async move {
            let idx = me
                .exchange(Exchange::get(
                    step_index,
                    &step,
                    "GET stream".into(),
                    None,
                    None,
                ))
                .await;
            me.resume_if_broken(step_index, &step, idx).await;
        });
    }

    /// Resume a stream that broke before it was done: GET with the last event
    /// id it carried, up to three times.
    async fn resume_if_broken(self: &Rc<Self>, step_index: usize, step: &Step, idx: usize) {
        if !self.env.behaviour.resume {
            return;
        }
        let original = self.env.log.with(idx, |r| r.clone());
        let broke = matches!(
            original.end,
            Some(BodyEnd::Truncated(_) | BodyEnd::Complete | BodyEnd::LeftOpen | BodyEnd::Stalled)
        );
        let pending = if original.expects_response {
            original.response.is_none()
        } else {
            // A GET stream is pending until the client stops listening.
            !matches!(original.end, Some(BodyEnd::Complete))
        };
        if !broke || !pending || original.status != Some(200) {
            return;
        }
        // A POST stream can only be resumed from an event id; a GET listener
        // without one simply listens again.
        let mut last = original.last_event_id.clone();
        if last.is_none() && original.expects_response {
            return;
        }
        // A request's stream is resumed up to three times; a listener keeps
        // listening for as long as the script runs, its backoff starting over
        // after each stream that opened.
        let listener = !original.expects_response;
        let mut retry = original.retry_ms;
        let mut attempt = 0;
        loop {
            if !listener && attempt == 3 {
                return;
            }
            tokio::time::sleep(self.backoff(attempt, retry)).await;
            let mut ex = Exchange::get(
                step_index,
                step,
                format!("resume {}", original.what),
                last.clone(),
                Some(idx),
            );
            ex.rpc_id = original.rpc_id.clone();
            ex.method = original_method(&original);
            ex.params = original.params.clone();
            let ridx = self.exchange(ex).await;
            let resumed = self.env.log.with(ridx, |r| r.clone());
            let answered = self.env.log.with(idx, |r| r.response.is_some());
            if answered && original.expects_response {
                return;
            }
            if resumed.status != Some(200) && resumed.status.is_some() {
                return;
            }
            // The server ended the listener's stream on purpose.
            if listener && resumed.end == Some(BodyEnd::Complete) {
                return;
            }
            attempt = if listener && resumed.status == Some(200) {
                0
            } else {
                attempt + 1
            };
            if resumed.last_event_id.is_some() {
                last = resumed.last_event_id;
            }
            retry = resumed.retry_ms.or(retry);
        }
    }
}

fn original_method(r: &RequestRecord) -> Option<String> {
    let w = r.what.as_str();
    if w == "initialize" {
        return Some(w.into());
    }
    w.split_whitespace().next().map(str::to_string)
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop_background();
    }
}

/// Run `steps` to the end.
pub async fn run(env: ClientEnv, steps: Rc<Vec<Step>>) {
    let rng = RefCell::new(env.workload.clone());
    let c = Rc::new(Client {
        env,
        session: RefCell::new(Session::default()),
        rng,
        background: RefCell::new(Vec::new()),
    });
    for (i, step) in steps.iter().enumerate() {
        match &step.action {
            Action::Vanish => {
                tracing::debug!(target: "mcpsim::client", client = %c.env.name, "vanishes without a goodbye");
                c.env.log.depart(Departure {
                    client: c.env.name.clone(),
                    incarnation: c.env.incarnation,
                    at: c.now(),
                });
                break;
            }
            Action::Sleep { min, max } => {
                let d = if min == max {
                    *min
                } else {
                    let us = c
                        .rng
                        .borrow_mut()
                        .random_range(min.as_micros() as u64..=max.as_micros() as u64);
                    Duration::from_micros(us)
                };
                c.quiet_for(d);
                tokio::time::sleep(d).await;
            }
            Action::Listen => c.listen(i, step),
            Action::Goodbye => c.goodbye(i, step).await,
            Action::Initialize { protocol } => c.initialize(i, step, protocol).await,
            Action::Notify { method, params } => c.notify(i, step, method, params.clone()).await,
            Action::Request { method, params } => c.request(i, step, method, params.clone()).await,
        }
    }
    c.env.done.set(true);
    c.stop_background();
}
