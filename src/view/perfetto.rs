//! `run --perfetto`: the run in Chrome's trace-event JSON format, which the
//! Perfetto UI (ui.perfetto.dev) and `chrome://tracing` open.
//!
//! Virtual time is the clock (`ts` in microseconds from the run's start).
//! Each host is a process; each HTTP exchange is a thread of its host
//! holding one complete slice (`ph: "X"`) from its start to its end, with the
//! exchange's marks as thread-scoped instants on it — one thread per exchange
//! because exchanges overlap and slices on one thread must nest. The trace's
//! WARN and ERROR lines are instants on a `log` thread of their host; faults
//! are global instants, failures process-scoped instants on the host the
//! oracle names. An open exchange runs to the end of the run and says so.

use serde_json::{Value, json};

use super::RunView;
use crate::time::fmt_duration;

fn us(t: std::time::Duration) -> f64 {
    t.as_secs_f64() * 1e6
}

/// The trace-event document of one run.
pub fn render(v: &RunView) -> Value {
    let tl = v.timeline();
    let mut ev: Vec<Value> = Vec::new();
    let mut pid_of = std::collections::BTreeMap::new();
    for (i, lane) in tl.lanes.iter().enumerate() {
        let pid = i as u64 + 1;
        pid_of.insert(lane.host.clone(), pid);
        ev.push(
            json!({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                       "args": {"name": lane.host}}),
        );
        ev.push(
            json!({"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0,
                       "args": {"sort_index": i}}),
        );
        ev.push(
            json!({"name": "thread_name", "ph": "M", "pid": pid, "tid": 1,
                       "args": {"name": "log"}}),
        );
        for (j, row) in lane.rows.iter().enumerate() {
            let tid = j as u64 + 2;
            ev.push(
                json!({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                           "args": {"name": format!("{} {}", j + 1, row.label)}}),
            );
            ev.push(
                json!({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                           "args": {"sort_index": tid}}),
            );
            let to = row.to.unwrap_or(tl.end);
            ev.push(json!({
                "name": row.label, "cat": "exchange", "ph": "X", "pid": pid, "tid": tid,
                "ts": us(row.from), "dur": us(to.saturating_sub(row.from)),
                "args": {
                    "from": fmt_duration(row.from),
                    "to": row.to.map(fmt_duration).unwrap_or_else(|| "still open at the end".into()),
                    "note": row.note,
                },
            }));
            for m in &row.marks {
                ev.push(json!({
                    "name": m.label, "cat": m.kind.name(), "ph": "i", "s": "t", "pid": pid, "tid": tid,
                    "ts": us(m.at), "args": {"at": fmt_duration(m.at)},
                }));
            }
        }
    }
    for l in v.trace {
        if l.level != "ERROR" && l.level != "WARN" {
            continue;
        }
        if let Some(pid) = pid_of.get(&l.host) {
            ev.push(json!({
                "name": format!("{} {}", l.level, super::timeline::short(&l.msg, 120)),
                "cat": "log", "ph": "i", "s": "t", "pid": pid, "tid": 1, "ts": us(l.t),
                "args": {"target": l.target, "at": fmt_duration(l.t)},
            }));
        }
    }
    for f in &v.observations.faults {
        ev.push(json!({
            "name": format!("fault: {}", f.kind), "cat": "fault", "ph": "i", "s": "g",
            "pid": 0, "tid": 0, "ts": us(f.at), "args": {"at": fmt_duration(f.at)},
        }));
    }
    for f in v.failures {
        let pid = pid_of.get(&f.host).copied().unwrap_or(1);
        ev.push(json!({
            "name": format!("failure: {}", f.oracle), "cat": "failure", "ph": "i", "s": "p",
            "pid": pid, "tid": 0, "ts": us(f.at),
            "args": {"at": fmt_duration(f.at), "detail": f.detail, "signature": f.signature},
        }));
    }
    json!({
        "traceEvents": ev,
        "displayTimeUnit": "ms",
        "otherData": {
            "tool": "mcpsim",
            "clock": "virtual time (microseconds from the run's start)",
            "scenario": v.scenario,
            "seed": v.seed,
            "server": v.stack,
            "verdict": if v.passed() { "pass" } else { "fail" },
            "replay": v.replay,
        },
    })
}
