//! Pictures of runs and sweeps, for people and for their tools.
//!
//! A failing seed is a wall of trace lines; these turn it into something one
//! can see and pass on:
//!
//! * [`html`] — one self-contained page per run (`run --html`, `drive --html`):
//!   a lane per host, a row per HTTP exchange, faults across the lanes, each
//!   failure at its virtual time linked to its detail, the trace below with
//!   filters, and the replay command. No network access when opened.
//! * [`mermaid`] — a sequence diagram of bounded size for a bug report
//!   (`run --mermaid`); GitHub renders it in issues and pull requests.
//! * [`perfetto`] — Chrome trace-event JSON (`run --perfetto`) for the
//!   Perfetto UI and `chrome://tracing`, with virtual time as the clock.
//! * [`sweep_report`] — a sweep's page (`sweep --html`, `merge --html`):
//!   signatures, first seeds with replay commands, outcomes plotted against
//!   each drawn fault time; and its JUnit XML (`--junit`), a test case per seed.
//!
//! Every renderer draws one [`timeline::Timeline`], built from the
//! observations the oracles read — the pictures show what was observed and
//! the failures the oracles found, and decide nothing themselves.

pub mod html;
pub mod mermaid;
pub mod perfetto;
pub mod sweep_report;
pub mod timeline;

use std::time::Duration;

use crate::oracles::{Failure, Observations};
use crate::sim::trace::TraceLine;

/// What the renderers of one run need: the timeline's source and the
/// run's identity, verdict and replay command.
pub struct RunView<'a> {
    /// "simulated" or "driven against http://…".
    pub kind: String,
    /// Scenario name.
    pub scenario: &'a str,
    /// The seed.
    pub seed: u64,
    /// The server stack (or what a driven server said it is).
    pub stack: String,
    /// The failures the oracles found.
    pub failures: &'a [Failure],
    /// Oracles that could not judge, and why.
    pub not_judged: Vec<(String, String)>,
    /// What the oracles read.
    pub observations: &'a Observations,
    /// The trace.
    pub trace: &'a [TraceLine],
    /// Virtual time at the end.
    pub end: Duration,
    /// The command that replays the run.
    pub replay: String,
    /// The run's trace hash, if it has one (a simulated run).
    pub trace_hash: Option<&'a str>,
}

impl<'a> RunView<'a> {
    /// A simulated run.
    pub fn of_run(o: &'a crate::sim::Outcome, replay: String) -> Self {
        Self {
            kind: "simulated".to_string(),
            scenario: &o.scenario,
            seed: o.seed,
            stack: o.stack.clone(),
            failures: &o.failures,
            not_judged: o
                .not_judged
                .iter()
                .map(|(n, w)| (n.to_string(), w.to_string()))
                .collect(),
            observations: &o.observations,
            trace: &o.trace,
            end: o.virtual_time,
            replay,
            trace_hash: Some(&o.trace_hash),
        }
    }

    /// A run driven against a real server (times are the scaled wall clock
    /// since the drive began).
    pub fn of_drive(d: &'a crate::real::drive::DriveOutcome, replay: String) -> Self {
        Self {
            kind: format!("driven against {}", d.target),
            scenario: &d.scenario,
            seed: d.seed,
            stack: d.server.clone().unwrap_or_else(|| d.target.clone()),
            failures: &d.failures,
            not_judged: d
                .not_judged
                .iter()
                .map(|(n, w)| (n.to_string(), w.clone()))
                .collect(),
            observations: &d.observations,
            trace: &d.observations.trace,
            end: d.observations.end.at,
            replay,
            trace_hash: None,
        }
    }

    /// Did every judged oracle hold?
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The timeline.
    pub fn timeline(&self) -> timeline::Timeline {
        timeline::build(self.observations, self.end)
    }
}
