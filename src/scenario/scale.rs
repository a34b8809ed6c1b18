//! Stretching a realised scenario in time, for `mcpsim drive --time-scale`.
//!
//! A real server takes real time, and a real machine adds jitter the
//! simulator does not have. Scaling every duration of the scenario by one
//! factor keeps its schedule's *shape* — which fault lands during which
//! call — while giving the real world more (or less) room. That includes the
//! tools' own `seconds` arguments: a 2 s call crashed at 1.25 s stays a call
//! crashed 62.5 % of the way through.

use std::time::Duration;

use serde_json::{Value, json};

use super::{FaultKind, Scenario, When};
use crate::client::script::Action;
use crate::error::InputError;

fn scale(d: Duration, k: f64) -> Duration {
    Duration::from_secs_f64(d.as_secs_f64() * k)
}

fn scale_opt(d: &mut Option<Duration>, k: f64) {
    if let Some(x) = d {
        *x = scale(*x, k);
    }
}

/// A tool call's `seconds` argument, scaled (the default, 2, written out).
fn scale_tool_args(params: &mut Option<Value>, k: f64) {
    let Some(p) = params else { return };
    let tool = p.get("name").and_then(Value::as_str).unwrap_or("");
    if !matches!(tool, "slow_operation" | "progress_operation") {
        return;
    }
    let args = p
        .as_object_mut()
        .map(|o| o.entry("arguments").or_insert_with(|| json!({})));
    let Some(Value::Object(args)) = args else {
        return;
    };
    let seconds = match args.get("seconds") {
        None => 2.0,
        Some(v) => match v.as_f64() {
            Some(s) => s,
            // Malformed on purpose (the server's error path): leave it.
            None => return,
        },
    };
    args.insert("seconds".into(), json!(seconds * k));
}

impl Scenario {
    /// This realised scenario with every duration multiplied by `k`: the
    /// budget, fault times and spans, link latencies, sleeps, client
    /// timeouts, server timeouts and the tools' `seconds`. What the stacks do
    /// on their own clocks (uvicorn's 0.1 s main-loop tick, sse-starlette's
    /// pings) is theirs, and does not scale.
    ///
    /// The result must still be within the format's limits (a duration of at
    /// most 1 hour, link latencies of at most 10 s): a factor that stretches
    /// it past them is bad input, said as such, never a run the parser would
    /// have refused.
    pub fn time_scaled(&self, k: f64) -> Result<Scenario, InputError> {
        let s = self.time_scaled_unchecked(k);
        let too_far = |what: &str, d: Duration, limit: &str| {
            Err(InputError::msg(format!(
                "{k} stretches {what} to {}, past the format's limit of {limit}",
                crate::time::fmt_duration(d)
            ))
            .field("--time-scale"))
        };
        if s.duration > Duration::from_secs(3600) {
            return too_far("the duration", s.duration, "1 hour");
        }
        let max_link = s.links.values().copied().max().unwrap_or_default();
        let max_latency = s.latency.max.max(max_link);
        if max_latency > Duration::from_secs(10) {
            return too_far("a link latency", max_latency, "10s");
        }
        Ok(s)
    }

    fn time_scaled_unchecked(&self, k: f64) -> Scenario {
        let mut s = self.clone();
        if k == 1.0 {
            return s;
        }
        // The tick is the simulator's resolution, not a time of the scenario.
        s.duration = scale(s.duration, k);
        s.hang_after = scale(s.hang_after, k);
        s.latency.min = scale(s.latency.min, k);
        s.latency.max = scale(s.latency.max, k);
        for d in s.links.values_mut() {
            *d = scale(*d, k);
        }
        scale_opt(&mut s.server.graceful_timeout, k);
        scale_opt(&mut s.server.session_idle_timeout, k);
        for f in &mut s.faults {
            f.when = match f.when {
                When::At(t) => When::At(scale(t, k)),
                When::Window(a, b) => When::Window(scale(a, k), scale(b, k)),
            };
            scale_opt(&mut f.lasting, k);
            if let FaultKind::Shutdown { restart_after } = &mut f.kind {
                scale_opt(restart_after, k);
            }
        }
        for c in &mut s.clients {
            scale_opt(&mut c.behaviour.read_timeout, k);
            for step in &mut c.steps {
                scale_opt(&mut step.abandon_after, k);
                scale_opt(&mut step.cancel_after, k);
                scale_opt(&mut step.timeout, k);
                match &mut step.action {
                    Action::Sleep { min, max } => {
                        *min = scale(*min, k);
                        *max = scale(*max, k);
                    }
                    Action::Request { method, params } if method == "tools/call" => {
                        scale_tool_args(params, k)
                    }
                    _ => {}
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_seconds_scale_and_the_default_is_written_out() {
        let mut p = Some(json!({"name": "slow_operation", "arguments": {"seconds": 1.5}}));
        scale_tool_args(&mut p, 2.0);
        assert_eq!(p.unwrap()["arguments"]["seconds"], json!(3.0));
        let mut p = Some(json!({"name": "slow_operation"}));
        scale_tool_args(&mut p, 0.5);
        assert_eq!(p.unwrap()["arguments"]["seconds"], json!(1.0));
        let mut p = Some(json!({"name": "get_greeting", "arguments": {"seconds": 1}}));
        scale_tool_args(&mut p, 2.0);
        assert_eq!(p.unwrap()["arguments"]["seconds"], json!(1));
    }
}
