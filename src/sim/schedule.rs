//! The fault schedule of a realised scenario: every fault at its exact
//! virtual time, with the healing faults (`for = ...`) and the restarts after a
//! shutdown added.

use std::time::Duration;

use serde::Serialize;

use crate::error::Error;
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

/// The schedule of a realised `scenario`, sorted by time (ties keep the
/// file's order); faults that would land at or after the end are dropped.
pub fn expand(scenario: &Scenario) -> Result<Vec<ScheduledFault>, Error> {
    let mut out = Vec::new();
    for (i, f) in scenario.faults.iter().enumerate() {
        let When::At(at) = f.when else {
            return Err(Error::Internal(format!(
                "fault {i} has no exact time: the scenario was not realised"
            )));
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
    Ok(out)
}
