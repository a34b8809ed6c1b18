//! Sweeping seeds: many runs of one scenario, on all cores.
//!
//! Each worker thread takes the next seed from a shared counter and runs a
//! whole simulation on its own (a simulation is single-threaded and shares
//! nothing: its trace subscriber is thread-local). Results are handed back in
//! seed order whatever the number of workers, so output never depends on
//! `--jobs`. With `fail_fast`, workers stop taking seeds after the first
//! failure; seeds already taken finish and are reported.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::determinism::{self, Divergence};
use crate::oracles::Failure;
use crate::report;
use crate::scenario::Scenario;
use crate::sim;

/// What a sweep runs.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// The stack.
    pub stack: String,
    /// The seeds, in order.
    pub seeds: Vec<u64>,
    /// Worker threads (at least 1).
    pub jobs: usize,
    /// Stop after the first failing seed.
    pub fail_fast: bool,
    /// Check each seed's determinism (two runs in-process, one in a child
    /// process when `child` is given).
    pub check_determinism: bool,
    /// How to re-run a seed in a child process (the CLI's own binary).
    pub child: Option<determinism::Child>,
}

/// One seed's result, without its trace.
#[derive(Debug, Clone)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// The failures (empty: pass).
    pub failures: Vec<Failure>,
    /// The trace hash.
    pub trace_hash: String,
    /// Virtual time at the end.
    pub virtual_time: Duration,
    /// Steps.
    pub steps: u64,
    /// Wall time.
    pub wall: Duration,
    /// The `run --json` object.
    pub json: Value,
    /// A determinism divergence, if checked and found.
    pub divergence: Option<Divergence>,
}

impl SeedResult {
    /// Did every oracle hold (and, if checked, was the run deterministic)?
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.divergence.is_none()
    }
}

/// A seed that could not be judged: mcpsim itself failed.
#[derive(Debug, Clone)]
pub struct SeedError {
    /// The seed.
    pub seed: u64,
    /// What went wrong.
    pub error: String,
}

/// Everything a sweep produced, in seed order.
#[derive(Debug, Default)]
pub struct SweepResults {
    /// Judged seeds.
    pub results: Vec<SeedResult>,
    /// Seeds mcpsim could not judge.
    pub errors: Vec<SeedError>,
    /// Wall time of the whole sweep.
    pub wall: Duration,
}

/// A group of failures with one signature.
#[derive(Debug, Clone)]
pub struct Group {
    /// The signature.
    pub signature: String,
    /// How many seeds show it.
    pub seeds: Vec<u64>,
}

impl SweepResults {
    /// Seeds that failed.
    pub fn failing(&self) -> impl Iterator<Item = &SeedResult> {
        self.results.iter().filter(|r| !r.passed())
    }

    /// Failures grouped by signature, most frequent first (ties by name).
    pub fn groups(&self) -> Vec<Group> {
        let mut by: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for r in &self.results {
            let mut sigs: Vec<String> = r.failures.iter().map(|f| f.signature.clone()).collect();
            if let Some(d) = &r.divergence {
                sigs.push(format!("nondeterminism · {}", d.kind));
            }
            sigs.sort();
            sigs.dedup();
            for s in sigs {
                by.entry(s).or_default().push(r.seed);
            }
        }
        let mut groups: Vec<Group> = by
            .into_iter()
            .map(|(signature, seeds)| Group { signature, seeds })
            .collect();
        groups.sort_by(|a, b| {
            b.seeds
                .len()
                .cmp(&a.seeds.len())
                .then(a.signature.cmp(&b.signature))
        });
        groups
    }

    /// The human summary: counts per signature, first seeds, replay commands.
    pub fn summary(&self, scenario_arg: &str, stack: &str) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let n = self.results.len();
        let failing = self.failing().count();
        let _ = writeln!(
            s,
            "{} seeds on {stack}: {} pass, {failing} fail{} — wall {:.2}s ({:.0} seeds/s)",
            n + self.errors.len(),
            n - failing,
            if self.errors.is_empty() {
                String::new()
            } else {
                format!(", {} could not be judged", self.errors.len())
            },
            self.wall.as_secs_f64(),
            (n + self.errors.len()) as f64 / self.wall.as_secs_f64().max(1e-9)
        );
        for g in self.groups() {
            let first: Vec<String> = g.seeds.iter().take(5).map(u64::to_string).collect();
            let _ = writeln!(s, "  {:>6}  {}", g.seeds.len(), g.signature);
            let _ = writeln!(
                s,
                "          first seeds {}{}; replay: {}",
                first.join(", "),
                if g.seeds.len() > 5 { ", …" } else { "" },
                report::replay_command(scenario_arg, g.seeds[0], stack)
            );
        }
        for e in &self.errors {
            let _ = writeln!(s, "  internal error on seed {}: {}", e.seed, e.error);
        }
        s
    }
}

fn run_seed(scenario: &Scenario, seed: u64, cfg: &SweepConfig) -> Result<SeedResult, String> {
    let outcome = sim::run(scenario, seed, &cfg.stack).map_err(|e| e.to_string())?;
    let divergence = if cfg.check_determinism {
        determinism::check_outcome(scenario, &outcome, cfg.child.as_ref())
            .map_err(|e| e.to_string())?
    } else {
        None
    };
    let mut json = report::json(&outcome);
    if cfg.check_determinism {
        json["deterministic"] = Value::Bool(divergence.is_none());
    }
    Ok(SeedResult {
        seed,
        trace_hash: outcome.trace_hash.clone(),
        virtual_time: outcome.virtual_time,
        steps: outcome.steps,
        wall: outcome.wall,
        failures: outcome.failures,
        json,
        divergence,
    })
}

/// Sweep `scenario` over `cfg.seeds`; `on_result` sees each result in seed
/// order as soon as it and every earlier seed are done.
pub fn sweep(
    scenario: &Scenario,
    cfg: &SweepConfig,
    mut on_result: impl FnMut(Result<&SeedResult, &SeedError>),
) -> SweepResults {
    // Wall time of the whole sweep, for the report only.
    let start = std::time::Instant::now();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(usize, Result<SeedResult, SeedError>)>();
    let mut out = SweepResults::default();
    std::thread::scope(|s| {
        for _ in 0..cfg.jobs.max(1) {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            s.spawn(move || {
                loop {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&seed) = cfg.seeds.get(i) else {
                        return;
                    };
                    let r =
                        run_seed(scenario, seed, cfg).map_err(|error| SeedError { seed, error });
                    if cfg.fail_fast && !r.as_ref().is_ok_and(SeedResult::passed) {
                        stop.store(true, Ordering::SeqCst);
                    }
                    if tx.send((i, r)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<usize, Result<SeedResult, SeedError>> = BTreeMap::new();
        let mut emit = 0;
        for (i, r) in rx {
            pending.insert(i, r);
            while let Some(r) = pending.remove(&emit) {
                match r {
                    Ok(r) => {
                        on_result(Ok(&r));
                        out.results.push(r);
                    }
                    Err(e) => {
                        on_result(Err(&e));
                        out.errors.push(e);
                    }
                }
                emit += 1;
            }
        }
    });
    out.wall = start.elapsed();
    out
}

/// Parse `K/N` for `--shard`: seed `s` belongs to shard `s mod N`.
pub fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("\"{s}\": use K/N, e.g. 0/4"))?;
    let k: u64 = k
        .trim()
        .parse()
        .map_err(|_| format!("\"{k}\" is not a number"))?;
    let n: u64 = n
        .trim()
        .parse()
        .map_err(|_| format!("\"{n}\" is not a number"))?;
    if n == 0 || k >= n {
        return Err(format!("\"{s}\": need 0 <= K < N"));
    }
    Ok((k, n))
}

/// The seeds of `range` that belong to `shard`.
pub fn shard_seeds(range: std::ops::Range<u64>, shard: Option<(u64, u64)>) -> Vec<u64> {
    range
        .filter(|s| shard.is_none_or(|(k, n)| s % n == k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_range() {
        let all: Vec<u64> = (10..50).collect();
        let mut union: Vec<u64> = (0..4)
            .flat_map(|k| shard_seeds(10..50, Some((k, 4))))
            .collect();
        union.sort();
        assert_eq!(union, all);
        for a in 0..4 {
            for b in (a + 1)..4 {
                let sa = shard_seeds(10..50, Some((a, 4)));
                assert!(
                    shard_seeds(10..50, Some((b, 4)))
                        .iter()
                        .all(|s| !sa.contains(s))
                );
            }
        }
        assert!(
            parse_shard("4/4").is_err() && parse_shard("1/0").is_err() && parse_shard("x").is_err()
        );
        assert_eq!(parse_shard("1/3"), Ok((1, 3)));
    }
}
