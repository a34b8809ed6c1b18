//! How a run is reported: the JSON object of `run --json` (the contract in
//! design.md) and the human report with the failure, the trace around it and
//! the command that replays it.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::sim::Outcome;
use crate::time::fmt_duration;

/// The command that replays a run, in the form the user can paste: through
/// cargo when run from the source tree, else the binary's name.
pub fn replay_command(scenario_arg: &str, seed: u64, stack: &str) -> String {
    let prefix = if std::env::var_os("CARGO_MANIFEST_DIR").is_some() {
        "cargo run --release --".to_string()
    } else {
        "mcpsim".to_string()
    };
    format!("{prefix} run {scenario_arg} --seed {seed} --server {stack}")
}

/// Failures as `run --json` (and `drive --json`) show them.
pub fn failures_json(failures: &[crate::oracles::Failure]) -> Value {
    Value::Array(
        failures
            .iter()
            .map(|f| {
                json!({
                    "oracle": f.oracle,
                    "at": fmt_duration(f.at),
                    "host": f.host,
                    "detail": f.detail,
                    "signature": f.signature,
                })
            })
            .collect(),
    )
}

/// `run --json`.
pub fn json(o: &Outcome) -> Value {
    json!({
        "scenario": o.scenario,
        "seed": o.seed,
        "server": o.stack,
        "verdict": if o.passed() { "pass" } else { "fail" },
        "failures": failures_json(&o.failures),
        "not_judged": o.not_judged.iter().map(|(n, why)| json!({"oracle": n, "why": why})).collect::<Vec<_>>(),
        "notes": o.notes,
        "trace_hash": o.trace_hash,
        "virtual_time": fmt_duration(o.virtual_time),
        "wall_ms": (o.wall.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        "steps": o.steps,
        "end": o.end,
        "links": o.links.iter().map(|(h, d)| (h.clone(), Value::String(fmt_duration(*d)))).collect::<serde_json::Map<_, _>>(),
        "faults": o.schedule.iter().map(|f| json!({
            "at": fmt_duration(f.at),
            "fault": f.kind.to_string(),
        })).collect::<Vec<_>>(),
    })
}

/// Each failure as the human reports show it: oracle, time and host, then
/// the detail and the signature.
pub fn failure_lines(failures: &[crate::oracles::Failure]) -> String {
    let mut s = String::new();
    for f in failures {
        let _ = writeln!(
            s,
            "  ✗ {} at {} on {}",
            f.oracle,
            fmt_duration(f.at),
            f.host
        );
        let _ = writeln!(s, "      {}", f.detail);
        let _ = writeln!(s, "      signature: {}", f.signature);
    }
    s
}

/// Trace lines around `at`: up to `before` lines up to it and `after` lines after.
fn around(o: &Outcome, at: Duration, before: usize, after: usize) -> Vec<String> {
    let split = o.trace.partition_point(|l| l.t <= at);
    let from = split.saturating_sub(before);
    let to = (split + after).min(o.trace.len());
    o.trace[from..to].iter().map(|l| l.human()).collect()
}

/// How to replay a run from a library test: the CLI command when the
/// scenario is a file, else the test itself with `MCPSIM_SEED`.
pub fn replay_hint(o: &Outcome) -> String {
    let source = &o.realised.source;
    if std::path::Path::new(source).is_file() {
        replay_command(source, o.seed, &o.stack)
    } else {
        format!(
            "MCPSIM_SEED={} cargo test (scenario {} built in code)",
            o.seed, o.scenario
        )
    }
}

/// The human report.
pub fn human(o: &Outcome, scenario_arg: &str) -> String {
    human_with(o, &replay_command(scenario_arg, o.seed, &o.stack))
}

/// The human report with a given replay line.
pub fn human_with(o: &Outcome, replay: &str) -> String {
    let mut s = String::new();
    let verdict = if o.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(
        s,
        "{verdict} {} seed {} on {} — virtual {} ({:?}), {} steps, wall {:.1} ms, trace {}",
        o.scenario,
        o.seed,
        o.stack,
        fmt_duration(o.virtual_time),
        o.end,
        o.steps,
        o.wall.as_secs_f64() * 1000.0,
        o.trace_hash
    );
    if !o.schedule.is_empty() {
        let sched: Vec<String> = o
            .schedule
            .iter()
            .map(|f| format!("{} {}", fmt_duration(f.at), f.kind))
            .collect();
        let _ = writeln!(s, "  faults: {}", sched.join("; "));
    }
    s.push_str(&failure_lines(&o.failures));
    for (n, why) in &o.not_judged {
        let _ = writeln!(s, "  not judged: {n} ({why})");
    }
    for n in &o.notes {
        let _ = writeln!(s, "  note: {n}");
    }
    if let Some(first) = o.failures.first() {
        let _ = writeln!(s, "  trace around {}:", fmt_duration(first.at));
        for l in around(o, first.at, 10, 3) {
            let _ = writeln!(s, "    {l}");
        }
        let _ = writeln!(s, "replay: {replay}");
    }
    s
}
