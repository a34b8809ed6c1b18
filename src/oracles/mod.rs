//! Oracles: each turns a run's observations into failures with a stable
//! signature.
//!
//! An oracle reads only what the harness observed — the ASGI records of the
//! tracking layer, what each client saw, the trace, the server's probe at the
//! end, the faults applied — never a stack's insides, and never a verdict
//! written in advance. A failure's signature names the oracle and *where*
//! (stack layer, request kind), so that a sweep can group equal failures.

mod cross_stream_replay;
mod duplicate_event_id;
mod duplicate_response;
mod hang;
mod leak;
mod lost_notification;
mod lost_response;
mod misrouted_response;
mod missing_final_body;
mod protocol_violation;
mod server_error_log;
mod stale_session;
mod truncated_response;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use crate::asgi::tracking::CallRecord;
use crate::client::{Departure, RequestRecord};
use crate::scenario::FaultKind;
use crate::servers::tower::ExchangeRecord;
use crate::servers::{Layers, OpenStream, SessionInfo};
use crate::sim::trace::TraceLine;

/// The oracles this version implements, by their stable names.
pub const NAMES: [&str; 13] = [
    "missing-final-body",
    "protocol-violation",
    "truncated-response",
    "server-error-log",
    "lost-response",
    "duplicate-response",
    "misrouted-response",
    "cross-stream-replay",
    "duplicate-event-id",
    "lost-notification",
    "stale-session",
    "leak",
    "hang",
];

/// One failure found by an oracle.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Failure {
    /// The oracle's name.
    pub oracle: &'static str,
    /// Virtual time it happened.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub at: Duration,
    /// The host it happened on.
    pub host: String,
    /// What happened, in one line.
    pub detail: String,
    /// Oracle + where: equal signatures are the same failure.
    pub signature: String,
}

/// A fault as it was applied.
#[derive(Debug, Clone, Serialize)]
pub struct AppliedFault {
    /// When.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub at: Duration,
    /// What.
    pub kind: FaultKind,
}

/// The state of the world when the run ended.
#[derive(Debug, Clone, Serialize)]
pub struct EndState {
    /// Virtual time.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub at: Duration,
    /// Did the run reach quiescence?
    pub quiescent: bool,
    /// Is the server process running?
    pub server_running: bool,
    /// The server process's incarnation at the end (0 = first start).
    pub server_incarnation: u32,
    /// Request handlers the server's probe counted at the end.
    pub server_in_flight: usize,
    /// Since when the server has had nothing in flight (`None`: busy at the end).
    #[serde(serialize_with = "crate::time::ser_opt_duration")]
    pub server_idle_since: Option<Duration>,
    /// How long anything can still be on the wire (a whole exchange: four
    /// one-way trips on the slowest link, and a few ticks): what began within it
    /// of the end is not settled.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub settle: Duration,
    /// Client hosts still running (their scripts not finished).
    pub hosts_running: BTreeMap<String, bool>,
    /// Directed links still partitioned or held.
    pub cut_links: BTreeSet<(String, String)>,
}

/// Everything the oracles read.
#[derive(Debug, Clone, Serialize)]
pub struct Observations {
    /// The server stack's layer names.
    #[serde(skip)]
    pub layers: Layers,
    /// HTTP exchange records (the HTTP tracking layer; stacks served over
    /// hyper through it).
    pub http: Vec<ExchangeRecord>,
    /// ASGI call records (ASGI tracking layer; ASGI stacks only).
    pub asgi: Vec<CallRecord>,
    /// Client request records.
    pub requests: Vec<RequestRecord>,
    /// The trace.
    #[serde(skip)]
    pub trace: Vec<TraceLine>,
    /// Request streams still registered at the end (read at quiescence only).
    pub open_streams: Option<Vec<OpenStream>>,
    /// Sessions the server still holds (read at quiescence only).
    pub sessions: Option<Vec<SessionInfo>>,
    /// Clients that left without a goodbye (`vanish`).
    pub departures: Vec<Departure>,
    /// Until when the clients announced they may be silent (sleeps, slow
    /// tools, timeouts, backoff).
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub quiet_until: Duration,
    /// Silence, with something waiting, that counts as a hang.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub hang_after: Duration,
    /// Network address (IP) → host name, to tell which host a server-side
    /// connection came from.
    pub hosts_by_ip: BTreeMap<String, String>,
    /// Faults applied, in order.
    pub faults: Vec<AppliedFault>,
    /// Client name → host.
    pub client_hosts: BTreeMap<String, String>,
    /// The end state.
    pub end: EndState,
}

impl Observations {
    /// Had the server been idle, and the world quiet, long enough before the
    /// end that nothing sent by `t` can still be on its way?
    pub fn settled_since(&self, t: Duration) -> bool {
        let Some(idle) = self.end.server_idle_since else {
            return false;
        };
        self.end.at >= idle + self.end.settle && self.end.at >= t + self.end.settle
    }

    /// Did `host` crash (or restart) within `[from, to]`?
    pub fn host_killed_between(&self, host: &str, from: Duration, to: Duration) -> bool {
        self.faults.iter().any(|f| {
            f.at >= from
                && f.at <= to
                && matches!(&f.kind, FaultKind::Crash { host: h } | FaultKind::Restart { host: h } if h == host)
        })
    }

    /// Was the link between `host` and the server partitioned (either
    /// direction) at any moment within `[from, to]` — including a partition
    /// still in force at `from`? A partition drops what is in flight, and a
    /// connection that loses a segment is dead for good without either side
    /// knowing (turmoil TCP has no retransmission or keepalive). Following
    /// turmoil: `hold` replaces a partition, `release` and `repair` heal both
    /// directions.
    pub fn link_cut_between(&self, host: &str, from: Duration, to: Duration) -> bool {
        // (host → server cut, server → host cut)
        let mut cut = (false, false);
        let mut opened = false;
        for f in self.faults.iter().take_while(|f| f.at <= to) {
            if f.at > from && !opened {
                opened = true;
                if cut.0 || cut.1 {
                    return true;
                }
            }
            let touches = |a: &str, b: &str| {
                (a == host && b == crate::scenario::SERVER_HOST)
                    || (b == host && a == crate::scenario::SERVER_HOST)
            };
            match &f.kind {
                FaultKind::Partition { a, b } if touches(a, b) => cut = (true, true),
                FaultKind::Repair { a, b }
                | FaultKind::Hold { a, b }
                | FaultKind::Release { a, b }
                    if touches(a, b) =>
                {
                    cut = (false, false)
                }
                FaultKind::PartitionOneway { from: a, to: b } if touches(a, b) => {
                    if a == host {
                        cut.0 = true
                    } else {
                        cut.1 = true
                    }
                }
                FaultKind::RepairOneway { from: a, to: b } if touches(a, b) => {
                    if a == host {
                        cut.0 = false
                    } else {
                        cut.1 = false
                    }
                }
                _ => {}
            }
            if f.at >= from && (cut.0 || cut.1) {
                return true;
            }
        }
        // A cut in force when the window opened, with nothing after it.
        !opened && (cut.0 || cut.1)
    }

    /// The records of one exchange and its resumptions: the index of the
    /// original, then the indices of the records resuming it, in order.
    pub fn chains(&self) -> Vec<(usize, Vec<usize>)> {
        let mut out: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, r) in self.requests.iter().enumerate() {
            match r.resume_of {
                None => {
                    out.entry(i).or_default();
                }
                Some(o) => out.entry(o).or_default().push(i),
            }
        }
        out.into_iter().collect()
    }

    /// Was `host` crashed after `t` and not restarted since?
    pub fn host_dead_since(&self, host: &str, t: Duration) -> bool {
        let mut dead = false;
        for f in self.faults.iter().filter(|f| f.at >= t) {
            match &f.kind {
                FaultKind::Crash { host: h } if h == host => dead = true,
                FaultKind::Restart { host: h } if h == host => dead = false,
                _ => {}
            }
        }
        dead
    }
}

/// Directed links still cut or held at the end.
pub fn cut_links(applied: &[AppliedFault]) -> BTreeSet<(String, String)> {
    let mut cut = BTreeSet::new();
    for f in applied {
        match &f.kind {
            FaultKind::Partition { a, b } | FaultKind::Hold { a, b } => {
                cut.insert((a.clone(), b.clone()));
                cut.insert((b.clone(), a.clone()));
            }
            FaultKind::Repair { a, b } | FaultKind::Release { a, b } => {
                cut.remove(&(a.clone(), b.clone()));
                cut.remove(&(b.clone(), a.clone()));
            }
            FaultKind::PartitionOneway { from, to } => {
                cut.insert((from.clone(), to.clone()));
            }
            FaultKind::RepairOneway { from, to } => {
                cut.remove(&(from.clone(), to.clone()));
            }
            _ => {}
        }
    }
    cut
}

/// An oracle.
pub trait Oracle {
    /// Its stable name (one of [`NAMES`]).
    fn name(&self) -> &'static str;
    /// One line for `mcpsim list`.
    fn about(&self) -> &'static str;
    /// The failures in `obs`.
    fn check(&self, obs: &Observations) -> Vec<Failure>;
}

/// Every oracle, in [`NAMES`] order.
pub fn all() -> Vec<Box<dyn Oracle>> {
    vec![
        Box::new(missing_final_body::MissingFinalBody),
        Box::new(protocol_violation::ProtocolViolation),
        Box::new(truncated_response::TruncatedResponse),
        Box::new(server_error_log::ServerErrorLog),
        Box::new(lost_response::LostResponse),
        Box::new(duplicate_response::DuplicateResponse),
        Box::new(misrouted_response::MisroutedResponse),
        Box::new(cross_stream_replay::CrossStreamReplay),
        Box::new(duplicate_event_id::DuplicateEventId),
        Box::new(lost_notification::LostNotification),
        Box::new(stale_session::StaleSession),
        Box::new(leak::Leak),
        Box::new(hang::Hang),
    ]
}

/// Run every oracle; failures sorted by time, then oracle order.
pub fn check_all(obs: &Observations) -> Vec<Failure> {
    let mut out: Vec<Failure> = all().iter().flat_map(|o| o.check(obs)).collect();
    out.sort_by_key(|f| (f.at, NAMES.iter().position(|n| *n == f.oracle)));
    out
}
