//! One seed's result as a sweep's summary and reports count it, read from the
//! seed's `sweep --json` line.
//!
//! A sweep in one process and `mcpsim merge` of many shards' `--json` output
//! must give the same summary. Both therefore count the same thing: the JSON
//! line each seed printed. The sweep builds its row from the object it is
//! about to print; `merge` builds it from the line it reads back. There is
//! no second path that could count differently.

use std::time::Duration;

use serde_json::Value;

use crate::time::parse_duration;

/// One failure of a seed, as the reports show it.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureRow {
    /// The oracle.
    pub oracle: String,
    /// Its signature.
    pub signature: String,
    /// What it saw.
    pub detail: String,
    /// Virtual time, as printed.
    pub at: String,
    /// The host.
    pub host: String,
}

/// One seed of a sweep: judged (failures, maybe a divergence) or not judged
/// (an internal error of mcpsim).
#[derive(Debug, Clone, PartialEq)]
pub struct SeedRow {
    /// The seed.
    pub seed: u64,
    /// mcpsim could not judge it: why.
    pub error: Option<String>,
    /// The failures, in the order the run reported them.
    pub failures: Vec<FailureRow>,
    /// A determinism divergence's kind, if one was found.
    pub divergence: Option<String>,
    /// The faults the run applied: what, and at which virtual time.
    pub faults: Vec<(String, Duration)>,
    /// Wall time of the run, in milliseconds.
    pub wall_ms: f64,
    /// Virtual time at the end, as printed.
    pub virtual_time: String,
    /// The trace hash.
    pub trace_hash: String,
}

impl SeedRow {
    /// Did every oracle hold (and was the run deterministic, if checked)?
    /// An internal error is not a pass.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.failures.is_empty() && self.divergence.is_none()
    }

    /// The seed's signatures, sorted, each once: what the summary counts.
    pub fn signatures(&self) -> Vec<String> {
        let mut sigs: Vec<String> = self.failures.iter().map(|f| f.signature.clone()).collect();
        if let Some(kind) = &self.divergence {
            sigs.push(format!("nondeterminism · {kind}"));
        }
        sigs.sort();
        sigs.dedup();
        sigs
    }

    /// A seed mcpsim could not judge.
    pub fn of_error(seed: u64, error: String) -> SeedRow {
        SeedRow {
            seed,
            error: Some(error),
            failures: Vec::new(),
            divergence: None,
            faults: Vec::new(),
            wall_ms: 0.0,
            virtual_time: String::new(),
            trace_hash: String::new(),
        }
    }

    /// The JSON line of a seed mcpsim could not judge (what
    /// [`SeedRow::from_json`] reads back as this row): `run --json`'s
    /// identity fields, `"verdict": "error"` and the error, so that every
    /// seed of a sweep has its line.
    pub fn error_json(scenario: &str, server: &str, seed: u64, error: &str) -> Value {
        serde_json::json!({
            "scenario": scenario,
            "seed": seed,
            "server": server,
            "verdict": "error",
            "error": error,
        })
    }

    /// Read a seed's `--json` object: a judged run (`run --json`'s fields) or
    /// an internal error (`{"seed": N, "error": "…"}`). The error names the
    /// field that is missing or wrong.
    pub fn from_json(v: &Value) -> Result<SeedRow, String> {
        let seed = v
            .get("seed")
            .and_then(Value::as_u64)
            .ok_or("field \"seed\": missing or not a number")?;
        let text = |field: &str| -> Result<String, String> {
            v.get(field)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("field \"{field}\": missing or not text"))
        };
        if v.get("verdict").and_then(Value::as_str) == Some("error") || v.get("error").is_some() {
            return Ok(SeedRow::of_error(seed, text("error")?));
        }
        let failures = v
            .get("failures")
            .and_then(Value::as_array)
            .ok_or("field \"failures\": missing or not a list")?
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let field = |name: &str| {
                    f.get(name)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| {
                            format!("field \"failures[{i}].{name}\": missing or not text")
                        })
                };
                Ok(FailureRow {
                    oracle: field("oracle")?,
                    signature: field("signature")?,
                    detail: field("detail")?,
                    at: field("at")?,
                    host: field("host")?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let faults = v
            .get("faults")
            .and_then(Value::as_array)
            .ok_or("field \"faults\": missing or not a list")?
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let what = f.get("fault").and_then(Value::as_str);
                let at = f.get("at").and_then(Value::as_str).map(parse_duration);
                match (what, at) {
                    (Some(what), Some(Ok(at))) => Ok((what.to_string(), at)),
                    _ => Err(format!(
                        "field \"faults[{i}]\": needs \"fault\" and a duration \"at\""
                    )),
                }
            })
            .collect::<Result<Vec<_>, String>>()?;
        let divergence = match v.get("deterministic").and_then(Value::as_bool) {
            Some(false) => Some(
                v.pointer("/divergence/kind")
                    .and_then(Value::as_str)
                    .ok_or("field \"divergence.kind\": missing where \"deterministic\" is false")?
                    .to_string(),
            ),
            _ => None,
        };
        Ok(SeedRow {
            seed,
            error: None,
            failures,
            divergence,
            faults,
            wall_ms: v
                .get("wall_ms")
                .and_then(Value::as_f64)
                .ok_or("field \"wall_ms\": missing or not a number")?,
            virtual_time: text("virtual_time")?,
            trace_hash: text("trace_hash")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_line_reads_back_as_an_unjudged_seed() {
        let v = SeedRow::error_json("s", "native", 7, "a task panicked");
        let r = SeedRow::from_json(&v).expect("reads back");
        assert_eq!(r, SeedRow::of_error(7, "a task panicked".into()));
        assert!(!r.passed() && r.signatures().is_empty());
    }

    #[test]
    fn a_judged_line_needs_its_fields() {
        let v = serde_json::json!({"seed": 1, "failures": [], "faults": [{"at": "1.250s", "fault": "crash c1"}],
            "virtual_time": "2s", "trace_hash": "ab", "wall_ms": 1.5});
        let r = SeedRow::from_json(&v).expect("a passing seed");
        assert!(r.passed());
        assert_eq!(
            r.faults,
            vec![("crash c1".to_string(), Duration::from_millis(1250))]
        );
        let mut bad = v.clone();
        bad["faults"][0]["at"] = "soon".into();
        assert!(SeedRow::from_json(&bad).unwrap_err().contains("faults[0]"));
        let mut diverged = v;
        diverged["deterministic"] = false.into();
        assert!(
            SeedRow::from_json(&diverged)
                .unwrap_err()
                .contains("divergence.kind")
        );
        diverged["divergence"] = serde_json::json!({"kind": "child-process"});
        assert_eq!(
            SeedRow::from_json(&diverged).expect("reads").signatures(),
            vec!["nondeterminism · child-process".to_string()]
        );
    }
}
