//! The realised fault schedule: every fault of a scenario at its exact
//! virtual time, windows drawn from the seed (one stream per fault), healing
//! faults (`for = ...`) and restarts after a shutdown added.

use std::time::Duration;

use rand::RngExt;
use serde::Serialize;

use super::rng::Seeds;
use crate::scenario::{FaultKind, SERVER_HOST, Scenario, When};

/// A fault at its exact time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduledFault {
    /// When it is applied (the first tick boundary at or after this time).
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub at: Duration,
    /// What.
    pub kind: FaultKind,
    /// The index of the scenario fault it comes from.
    pub origin: usize,
    /// Added by the scheduler (a heal after `for`, a restart after shutdown).
    pub derived: bool,
}

/// Draw a time in `[from, to]` on tick boundaries.
fn draw(seeds: &Seeds, index: usize, from: Duration, to: Duration, tick: Duration) -> Duration {
    let t = tick.as_nanos();
    let lo = from.as_nanos().div_ceil(t);
    let hi = (to.as_nanos() / t).max(lo);
    let n = seeds
        .stream(&format!("faults/{index}"))
        .random_range(lo as u64..=hi as u64);
    Duration::from_nanos(n * t as u64)
}

/// The schedule of `scenario` under `seeds`, sorted by time (ties keep the
/// file's order); faults that would land at or after the end are dropped.
pub fn realise(scenario: &Scenario, seeds: &Seeds) -> Vec<ScheduledFault> {
    let mut out = Vec::new();
    for (i, f) in scenario.faults.iter().enumerate() {
        let at = match f.when {
            When::At(t) => t,
            When::Window(a, b) => draw(seeds, i, a, b, scenario.tick),
        };
        out.push(ScheduledFault {
            at,
            kind: f.kind.clone(),
            origin: i,
            derived: false,
        });
        if let (Some(l), Some(heal)) = (f.lasting, f.kind.healing()) {
            out.push(ScheduledFault {
                at: at + l,
                kind: heal,
                origin: i,
                derived: true,
            });
        }
        if let FaultKind::Shutdown {
            restart_after: Some(d),
        } = f.kind
        {
            out.push(ScheduledFault {
                at: at + d,
                kind: FaultKind::Restart {
                    host: SERVER_HOST.into(),
                },
                origin: i,
                derived: true,
            });
        }
    }
    out.retain(|f| f.at < scenario.duration);
    out.sort_by_key(|f| (f.at, f.origin, f.derived));
    out
}
