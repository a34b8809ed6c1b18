//! `mcpsim merge`: the `--json` output of `sweep --shard K/N` runs, possibly
//! from many machines, combined into the results of one sweep of the whole
//! range.
//!
//! Every line `sweep --json` prints carries a `sweep` object naming the
//! scenario (as typed), the stack, the whole range and the shard. Merge
//! insists that all lines name the same sweep, and that the seeds they hold
//! cover the range exactly once: a missing shard, a shard run twice or a
//! shard of another range is bad input (exit 2), never a smaller or a
//! double-counted summary. The rows are then counted exactly as the sweep
//! counts its own ([`SweepResults::merged`]).

use std::path::Path;

use serde_json::Value;

use super::seed_row::SeedRow;
use super::sweep::SweepResults;
use crate::error::InputError;
use crate::scenario::SeedRange;

/// How many seeds a coverage error lists.
const LISTED: usize = 5;

/// Which sweep a line belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SweepId {
    scenario: String,
    server: String,
    seeds: String,
}

impl SweepId {
    fn of(v: &Value) -> Result<(SweepId, Option<String>), String> {
        let s = v
            .get("sweep")
            .ok_or("field \"sweep\": missing (not a line of `mcpsim sweep --json`)")?;
        let text = |f: &str| {
            s.get(f)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("field \"sweep.{f}\": missing or not text"))
        };
        let shard = match s.get("shard") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => return Err("field \"sweep.shard\": not text".into()),
        };
        Ok((
            SweepId {
                scenario: text("scenario")?,
                server: text("server")?,
                seeds: text("seeds")?,
            },
            shard,
        ))
    }
}

/// Shards merged into one sweep's results.
#[derive(Debug)]
pub struct Merged {
    /// The results, counted as one sweep's.
    pub results: SweepResults,
    /// The scenario as the sweeps were given it (for replay commands).
    pub scenario: String,
    /// The stack.
    pub stack: String,
    /// The whole range.
    pub seeds: SeedRange,
}

/// The `sweep` object of a `--json` line: what [`merge`] reads.
pub fn sweep_id(
    scenario: &str,
    server: &str,
    seeds: &SeedRange,
    shard: Option<(u64, u64)>,
) -> Value {
    serde_json::json!({
        "scenario": scenario,
        "server": server,
        "seeds": format!("{}..{}", seeds.start, seeds.end),
        "shard": shard.map(|(k, n)| format!("{k}/{n}")),
    })
}

fn at(file: &str, line: usize, field: Option<&str>, message: impl Into<String>) -> InputError {
    let mut e = InputError::msg(message);
    e.file = Some(file.to_string());
    e.line = Some(line);
    e.field = field.map(str::to_string);
    e
}

/// Read and merge `paths`.
pub fn merge(paths: &[impl AsRef<Path>]) -> Result<Merged, InputError> {
    if paths.is_empty() {
        return Err(
            InputError::msg("name at least one file of `sweep --json` output").field("FILES"),
        );
    }
    let mut id: Option<(SweepId, String)> = None;
    let mut rows: Vec<SeedRow> = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError::msg(format!("{file}: cannot read: {e}")).field("FILES"))?;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line)
                .map_err(|e| at(&file, n, None, format!("not a JSON line: {e}")))?;
            let (this, _shard) = SweepId::of(&v).map_err(|m| at(&file, n, None, m))?;
            match &id {
                None => id = Some((this, format!("{file}:{n}"))),
                Some((first, where_)) if *first != this => {
                    let (field, mine, theirs) = if first.scenario != this.scenario {
                        ("sweep.scenario", &this.scenario, &first.scenario)
                    } else if first.server != this.server {
                        ("sweep.server", &this.server, &first.server)
                    } else {
                        ("sweep.seeds", &this.seeds, &first.seeds)
                    };
                    return Err(at(
                        &file,
                        n,
                        Some(field),
                        format!("\"{mine}\", where {where_} says \"{theirs}\": not one sweep"),
                    ));
                }
                Some(_) => {}
            }
            rows.push(SeedRow::from_json(&v).map_err(|m| at(&file, n, None, m))?);
        }
    }
    let Some((id, _)) = id else {
        return Err(InputError::msg(
            "no seed lines in the files (were they written by `sweep --json`?)",
        )
        .field("FILES"));
    };
    let seeds = SeedRange::parse(&id.seeds).map_err(|m| InputError::msg(m).field("sweep.seeds"))?;
    rows.sort_by_key(|r| r.seed);
    coverage(&rows, &seeds).map_err(|m| InputError::msg(m).field("FILES"))?;
    Ok(Merged {
        results: SweepResults::merged(rows, paths.len()),
        scenario: id.scenario,
        stack: id.server,
        seeds,
    })
}

/// Do `rows` (sorted by seed) hold every seed of `range` exactly once?
fn coverage(rows: &[SeedRow], range: &SeedRange) -> Result<(), String> {
    let mut outside = Vec::new();
    let mut repeated = Vec::new();
    let mut missing = Vec::new();
    let (mut n_outside, mut n_repeated, mut n_missing) = (0u64, 0u64, 0u64);
    let mut expect = range.start;
    let mut last: Option<u64> = None;
    let mut last_repeated: Option<u64> = None;
    for r in rows {
        if !range.iter().contains(&r.seed) {
            n_outside += 1;
            if outside.len() < LISTED {
                outside.push(r.seed);
            }
            continue;
        }
        if last == Some(r.seed) {
            // Count each repeated seed once, however often it comes.
            if last_repeated != Some(r.seed) {
                n_repeated += 1;
                last_repeated = Some(r.seed);
                if repeated.len() < LISTED {
                    repeated.push(r.seed);
                }
            }
            continue;
        }
        // Seeds between the last one seen and this one are missing.
        n_missing += r.seed - expect;
        for s in expect..r.seed {
            if missing.len() >= LISTED {
                break;
            }
            missing.push(s);
        }
        expect = r.seed + 1;
        last = Some(r.seed);
    }
    n_missing += range.end - expect.min(range.end);
    for s in expect..range.end {
        if missing.len() >= LISTED {
            break;
        }
        missing.push(s);
    }
    let list = |n: u64, seeds: &[u64]| {
        let shown: Vec<String> = seeds.iter().map(u64::to_string).collect();
        format!(
            "{}{}",
            shown.join(", "),
            if n > seeds.len() as u64 { ", …" } else { "" }
        )
    };
    let mut problems = Vec::new();
    if n_missing > 0 {
        problems.push(format!(
            "{n_missing} seeds missing ({})",
            list(n_missing, &missing)
        ));
    }
    if n_repeated > 0 {
        problems.push(format!(
            "{n_repeated} seeds more than once ({})",
            list(n_repeated, &repeated)
        ));
    }
    if n_outside > 0 {
        problems.push(format!(
            "{n_outside} seeds outside {}..{} ({})",
            range.start,
            range.end,
            list(n_outside, &outside)
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the shards do not cover {}..{} exactly once: {}",
            range.start,
            range.end,
            problems.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(seeds: &[u64]) -> Vec<SeedRow> {
        seeds
            .iter()
            .map(|&s| SeedRow::of_error(s, String::new()))
            .collect()
    }

    #[test]
    fn coverage_names_missing_repeated_and_outside_seeds() {
        let r = SeedRange { start: 0, end: 10 };
        assert!(coverage(&rows(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), &r).is_ok());
        let e = coverage(&rows(&[0, 2, 2, 2, 3, 12]), &r).unwrap_err();
        assert!(e.contains("7 seeds missing (1, 4, 5, 6, 7, …)"), "{e}");
        assert!(e.contains("1 seeds more than once (2)"), "{e}");
        assert!(e.contains("1 seeds outside 0..10 (12)"), "{e}");
        let e = coverage(&rows(&[]), &r).unwrap_err();
        assert!(e.contains("10 seeds missing (0, 1, 2, 3, 4, …)"), "{e}");
    }
}
