//! The run's trace: every tracing event from the simulated hosts, stamped with
//! virtual time and the host it happened on, kept per run.
//!
//! The capture is installed as the thread's default subscriber for the
//! duration of one run, so parallel runs on other threads never share trace
//! state. turmoil wraps each host's tick in a `node` span named after the host;
//! the capture reads the host from it. turmoil's own per-step events are
//! switched off at their call sites. Wall-clock time never enters a line.
//!
//! The trace hash is FNV-1a over the canonical JSON lines: equal hashes mean
//! byte-identical traces.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

use crate::rng::fnv1a64;

/// One trace line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TraceLine {
    /// Virtual time.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub t: Duration,
    /// The host ("harness" for the fault injector).
    pub host: String,
    /// ERROR, WARN, INFO, DEBUG or TRACE.
    pub level: String,
    /// The logger: a Python logger name for the model, `mcpsim::…` otherwise.
    pub target: String,
    /// The message.
    pub msg: String,
    /// Other fields.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

impl TraceLine {
    /// The canonical JSON text of the line.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A one-line human rendering.
    pub fn human(&self) -> String {
        let mut s = format!(
            "{:>9} {:<7} {:<5} {}: {}",
            crate::time::fmt_duration(self.t),
            self.host,
            self.level,
            self.target,
            self.msg.lines().next().unwrap_or("")
        );
        for (k, v) in &self.fields {
            let _ = write!(s, " {k}={v}");
        }
        s
    }
}

/// Where the capture puts lines; shared with the harness.
#[derive(Clone, Default)]
pub struct TraceSink {
    lines: Arc<Mutex<Vec<TraceLine>>>,
    harness_now: Arc<Mutex<Duration>>,
    panic: Arc<Mutex<Option<String>>>,
}

impl TraceSink {
    /// Set the time stamped on events emitted outside any host.
    pub fn set_harness_time(&self, t: Duration) {
        if let Ok(mut h) = self.harness_now.lock() {
            *h = t;
        }
    }

    /// Take every line captured so far.
    pub fn take(&self) -> Vec<TraceLine> {
        self.lines
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    /// Has a simulated task panicked, or a model left its ground?
    pub fn panicked(&self) -> Option<String> {
        self.panic.lock().ok()?.clone()
    }

    /// The subscriber writing into this sink.
    pub fn subscriber(&self) -> Capture {
        Capture {
            sink: self.clone(),
            state: Mutex::new(SpanState::default()),
        }
    }
}

/// The stable hash of a trace.
pub fn trace_hash(lines: &[TraceLine]) -> String {
    let mut buf = Vec::new();
    for l in lines {
        buf.extend_from_slice(l.json().as_bytes());
        buf.push(b'\n');
    }
    format!("{:016x}", fnv1a64(&buf))
}

/// The subscriber of one run. It keeps only what a trace line needs: which
/// host's tick is running (turmoil enters a `node` span named after the host
/// around each host's tick) and the events themselves. A purpose-built
/// subscriber rather than a registry: the span of every host on every tick
/// costs nothing beyond a vector push.
pub struct Capture {
    sink: TraceSink,
    state: Mutex<SpanState>,
}

#[derive(Default)]
struct SpanState {
    /// Host names, by span id - 1 (a host's `node` span reuses its id).
    hosts: Vec<String>,
    /// Entered spans, innermost last (0 = a span mcpsim ignores).
    stack: Vec<u64>,
}

struct HostName<'a>(&'a mut Option<String>);

impl Visit for HostName<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "name" {
            *self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "name" {
            *self.0 = Some(format!("{value:?}"));
        }
    }
}

/// An event's message and other fields.
#[derive(Default)]
pub(crate) struct Fields {
    pub(crate) msg: String,
    pub(crate) other: BTreeMap<String, String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_string();
        } else {
            self.other
                .insert(field.name().to_string(), value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.msg = format!("{value:?}");
        } else {
            self.other
                .insert(field.name().to_string(), format!("{value:?}"));
        }
    }
}

/// The id of spans mcpsim ignores (every span but turmoil's `node`).
const IGNORED: u64 = u64::MAX;

fn is_turmoil_event(meta: &Metadata<'_>) -> bool {
    meta.is_event() && meta.target().starts_with("turmoil")
}

impl Subscriber for Capture {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if is_turmoil_event(meta) {
            Interest::never()
        } else {
            Interest::always()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        !is_turmoil_event(meta)
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        if attrs.metadata().name() != "node" {
            return Id::from_u64(IGNORED);
        }
        let mut name = None;
        attrs.record(&mut HostName(&mut name));
        let name = name.unwrap_or_default();
        let Ok(mut st) = self.state.lock() else {
            return Id::from_u64(IGNORED);
        };
        let idx = match st.hosts.iter().position(|h| *h == name) {
            Some(i) => i,
            None => {
                st.hosts.push(name);
                st.hosts.len() - 1
            }
        };
        Id::from_u64(idx as u64 + 1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        if is_turmoil_event(meta) {
            return;
        }
        let host = self.state.lock().ok().and_then(|st| {
            st.stack
                .iter()
                .rev()
                .find(|id| **id != IGNORED)
                .and_then(|id| st.hosts.get(*id as usize - 1).cloned())
        });
        let (host, t) = match host {
            Some(h) => (h, turmoil::sim_elapsed().unwrap_or_default()),
            None => (
                "harness".to_string(),
                self.sink.harness_now.lock().map(|t| *t).unwrap_or_default(),
            ),
        };
        let mut f = Fields::default();
        event.record(&mut f);
        let line = TraceLine {
            t,
            host,
            level: meta.level().to_string(),
            target: meta.target().to_string(),
            msg: f.msg,
            fields: f.other,
        };
        if line.target == crate::task::PANIC_TARGET
            && let Ok(mut p) = self.sink.panic.lock()
        {
            p.get_or_insert_with(|| {
                format!(
                    "a simulated task panicked: {} (task {}, host {})",
                    line.msg,
                    line.fields.get("task").cloned().unwrap_or_default(),
                    line.host
                )
            });
        }
        if line.target == crate::task::UNMODELLED_TARGET
            && let Ok(mut p) = self.sink.panic.lock()
        {
            p.get_or_insert_with(|| {
                format!(
                    "the run reached a path the model does not cover: {} (host {})",
                    line.msg, line.host
                )
            });
        }
        if let Ok(mut l) = self.sink.lines.lock() {
            l.push(line);
        }
    }

    fn enter(&self, span: &Id) {
        if let Ok(mut st) = self.state.lock() {
            st.stack.push(span.into_u64());
        }
    }

    fn exit(&self, span: &Id) {
        if let Ok(mut st) = self.state.lock()
            && let Some(pos) = st.stack.iter().rposition(|id| *id == span.into_u64())
        {
            st.stack.remove(pos);
        }
    }
}
