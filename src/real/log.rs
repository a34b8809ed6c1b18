//! Tracing on real TCP: every event as one line on stderr, stamped with the
//! wall-clock time since the command started — the same rendering as a
//! simulation's trace, so a real run reads like a simulated one.
//!
//! `drive` also keeps the lines, to judge the run with the simulator's oracles.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::sim::trace::{Fields, TraceLine};

/// A subscriber that prints (and optionally keeps) each event.
#[derive(Clone)]
pub struct RealLog {
    start: Instant,
    max: Level,
    host: Arc<str>,
    echo: Option<Level>,
    kept: Option<Arc<Mutex<Vec<TraceLine>>>>,
}

impl RealLog {
    /// Events up to `max` on stderr, under the host name `host`.
    pub fn new(max: Level, host: &str) -> Self {
        Self {
            start: Instant::now(),
            max,
            host: host.into(),
            echo: Some(max),
            kept: None,
        }
    }

    /// Keep every line too (read them with [`RealLog::lines`]).
    pub fn keep(mut self) -> Self {
        self.kept = Some(Arc::default());
        self
    }

    /// Print only events up to `level` (`None`: nothing; only keep).
    pub fn echo(mut self, level: Option<Level>) -> Self {
        self.echo = level;
        self
    }

    /// The lines kept so far.
    pub fn lines(&self) -> Vec<TraceLine> {
        self.kept
            .as_ref()
            .and_then(|k| k.lock().ok().map(|v| v.clone()))
            .unwrap_or_default()
    }

    /// When the log started.
    pub fn start(&self) -> Instant {
        self.start
    }
}

impl Subscriber for RealLog {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= self.max
    }

    fn new_span(&self, _attrs: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut f = Fields::default();
        event.record(&mut f);
        let line = TraceLine {
            t: self.start.elapsed(),
            host: self.host.to_string(),
            level: meta.level().to_string(),
            target: meta.target().to_string(),
            msg: f.msg,
            fields: f.other,
        };
        if self.echo.is_some_and(|l| *meta.level() <= l) {
            eprintln!("{}", line.human());
        }
        if let Some(k) = &self.kept
            && let Ok(mut v) = k.lock()
        {
            v.push(line);
        }
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// Parse a `--log` level.
pub fn level(s: &str) -> Option<Level> {
    match s.to_ascii_lowercase().as_str() {
        "error" => Some(Level::ERROR),
        "warn" => Some(Level::WARN),
        "info" => Some(Level::INFO),
        "debug" => Some(Level::DEBUG),
        "trace" => Some(Level::TRACE),
        _ => None,
    }
}
