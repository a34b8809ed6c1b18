//! Sweeping seeds: many runs of one scenario, on all cores.
//!
//! Each worker thread takes the next seed from a shared counter and runs a
//! whole simulation on its own (a simulation is single-threaded and shares
//! nothing: its trace subscriber is thread-local). Results are handed back in
//! seed order whatever the number of workers, so output never depends on
//! `--jobs`. With `fail_fast`, workers stop taking seeds after the first
//! failure; seeds already taken finish and are reported.
//!
//! A sweep streams: the seeds are computed as they are taken ([`Seeds`]:
//! a range, or one shard of it, reached by arithmetic, never listed), there
//! are never more workers than seeds, a worker takes a seed only while
//! fewer than [`AHEAD`] × jobs results wait to be handed back in order, and
//! the summary is kept as counts and first seeds per signature. Memory is
//! O(jobs) however long the range; only a caller that asks to keep every
//! result ([`SweepConfig::keep`], the library's `Simulation::sweep`) holds
//! them all.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;

use super::determinism::{self, Divergence};
use super::seed_row::SeedRow;
use crate::oracles::Failure;
use crate::report;
use crate::scenario::Scenario;
use crate::servers::StackRef;
use crate::sim;

/// How far ahead of the oldest result not yet handed back a worker may take
/// seeds, in multiples of the number of workers.
pub const AHEAD: u64 = 4;

/// How many first seeds the summary keeps per signature.
const FIRST_SEEDS: usize = 5;

/// The seeds of a sweep: a half-open range, or the seeds `s` of it with
/// `s mod n = k` (shard `k/n`), in order — the `i`-th found by arithmetic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeds {
    range: Range<u64>,
    shard: Option<(u64, u64)>,
}

impl Seeds {
    /// `range`, or its shard `(k, n)` (`k < n`, `n > 0`).
    pub fn new(range: Range<u64>, shard: Option<(u64, u64)>) -> Self {
        Self { range, shard }
    }

    fn first(&self) -> Option<u64> {
        match self.shard {
            None => (self.range.start < self.range.end).then_some(self.range.start),
            Some((k, n)) => {
                let r = self.range.start % n;
                let first = self.range.start.checked_add((k + n - r) % n)?;
                (first < self.range.end).then_some(first)
            }
        }
    }

    /// How many seeds.
    pub fn len(&self) -> u64 {
        let Some(first) = self.first() else { return 0 };
        let step = self.shard.map_or(1, |(_, n)| n);
        (self.range.end - 1 - first) / step + 1
    }

    /// No seeds at all?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th seed.
    pub fn get(&self, i: u64) -> Option<u64> {
        (i < self.len()).then(|| self.first().unwrap_or(0) + i * self.shard.map_or(1, |(_, n)| n))
    }

    /// Every seed, in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// What a sweep runs.
#[derive(Clone)]
pub struct SweepConfig {
    /// The stack.
    pub stack: StackRef,
    /// The seeds, in order.
    pub seeds: Seeds,
    /// Worker threads (at least 1).
    pub jobs: usize,
    /// Stop after the first failing seed.
    pub fail_fast: bool,
    /// Check each seed's determinism (two runs in-process, one in a child
    /// process when `child` is given).
    pub check_determinism: bool,
    /// How to re-run a seed in a child process (the CLI's own binary).
    pub child: Option<determinism::Child>,
    /// Keep every seed's result in [`SweepResults::results`] (else only the
    /// summary: memory O(jobs)).
    pub keep: bool,
    /// Keep every seed's [`SeedRow`] in [`SweepResults::rows`], for the
    /// reports (`sweep --html`, `--junit`): a few bytes a passing seed.
    pub rows: bool,
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
    /// Judged seeds, when the sweep kept them ([`SweepConfig::keep`]).
    pub results: Vec<SeedResult>,
    /// Seeds mcpsim could not judge.
    pub errors: Vec<SeedError>,
    /// Wall time of the whole sweep.
    pub wall: Duration,
    /// How many seeds were judged.
    pub judged: u64,
    /// How many of them failed.
    pub failed: u64,
    /// Every seed's row, when the sweep kept them ([`SweepConfig::rows`]) or
    /// the results were merged.
    pub rows: Vec<SeedRow>,
    /// Merged from this many files (`mcpsim merge`), not swept here.
    pub merged_from: Option<usize>,
    /// Per signature: how many seeds show it, and the first of them.
    by_signature: BTreeMap<String, (u64, Vec<u64>)>,
}

/// A group of failures with one signature.
#[derive(Debug, Clone)]
pub struct Group {
    /// The signature.
    pub signature: String,
    /// How many seeds show it.
    pub count: u64,
    /// The first of them (at most five).
    pub first: Vec<u64>,
}

impl SweepResults {
    /// Seeds that failed, among the kept results.
    pub fn failing(&self) -> impl Iterator<Item = &SeedResult> {
        self.results.iter().filter(|r| !r.passed())
    }

    /// The results of rows read back from shards' `--json` output (in seed
    /// order), counted as a sweep counts its own.
    pub fn merged(rows: Vec<SeedRow>, files: usize) -> Self {
        let mut out = SweepResults {
            merged_from: Some(files),
            ..Default::default()
        };
        for row in &rows {
            out.count(row);
        }
        out.rows = rows;
        out
    }

    /// Count one seed into the summary.
    fn count(&mut self, r: &SeedRow) {
        if let Some(error) = &r.error {
            self.errors.push(SeedError {
                seed: r.seed,
                error: error.clone(),
            });
            return;
        }
        self.judged += 1;
        if !r.passed() {
            self.failed += 1;
        }
        for s in r.signatures() {
            let (n, first) = self.by_signature.entry(s).or_default();
            *n += 1;
            if first.len() < FIRST_SEEDS {
                first.push(r.seed);
            }
        }
    }

    /// Failures grouped by signature, most frequent first (ties by name).
    pub fn groups(&self) -> Vec<Group> {
        let mut groups: Vec<Group> = self
            .by_signature
            .iter()
            .map(|(signature, (count, first))| Group {
                signature: signature.clone(),
                count: *count,
                first: first.clone(),
            })
            .collect();
        groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.signature.cmp(&b.signature)));
        groups
    }

    /// The human summary: counts per signature, first seeds, replay commands.
    pub fn summary(&self, scenario_arg: &str, stack: &str) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let n = self.judged;
        let failing = self.failed;
        let errors = self.errors.len() as u64;
        // What the sweep cost comes last, after " — ", so that a sweep and
        // the merge of its shards can be compared line for line without it.
        let cost = match self.merged_from {
            Some(1) => "merged from 1 file".to_string(),
            Some(files) => format!("merged from {files} files"),
            None => format!(
                "wall {:.2}s ({:.0} seeds/s)",
                self.wall.as_secs_f64(),
                (n + errors) as f64 / self.wall.as_secs_f64().max(1e-9)
            ),
        };
        let _ = writeln!(
            s,
            "{} seeds on {stack}: {} pass, {failing} fail{} — {cost}",
            n + errors,
            n - failing,
            if self.errors.is_empty() {
                String::new()
            } else {
                format!(", {} could not be judged", self.errors.len())
            },
        );
        for g in self.groups() {
            let first: Vec<String> = g.first.iter().map(u64::to_string).collect();
            let _ = writeln!(s, "  {:>6}  {}", g.count, g.signature);
            let _ = writeln!(
                s,
                "          first seeds {}{}; replay: {}",
                first.join(", "),
                if g.count > g.first.len() as u64 {
                    ", …"
                } else {
                    ""
                },
                report::replay_command(scenario_arg, g.first.first().copied().unwrap_or(0), stack)
            );
        }
        for e in &self.errors {
            let _ = writeln!(s, "  internal error on seed {}: {}", e.seed, e.error);
        }
        s
    }
}

fn run_seed(scenario: &Scenario, seed: u64, cfg: &SweepConfig) -> Result<SeedResult, String> {
    let outcome = sim::run_on(scenario, seed, &cfg.stack).map_err(|e| e.to_string())?;
    let divergence = if cfg.check_determinism {
        determinism::check_outcome(scenario, &outcome, &cfg.stack, cfg.child.as_ref())
            .map_err(|e| e.to_string())?
    } else {
        None
    };
    let mut json = report::json(&outcome);
    if cfg.check_determinism {
        json["deterministic"] = Value::Bool(divergence.is_none());
        if let Some(d) = &divergence {
            json["divergence"] = serde_json::to_value(d).map_err(|e| e.to_string())?;
        }
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
    let total = cfg.seeds.len();
    let workers = (cfg.jobs.max(1) as u64).min(total.max(1));
    let window = AHEAD * workers;
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    // How many results have been handed back, for the workers' window.
    let emitted = (Mutex::new(0u64), Condvar::new());
    let (tx, rx) = mpsc::channel::<(u64, Result<SeedResult, SeedError>)>();
    let mut out = SweepResults::default();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, stop, emitted) = (&next, &stop, &emitted);
            s.spawn(move || {
                loop {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(seed) = cfg.seeds.get(i) else {
                        return;
                    };
                    // Wait until this seed is within the window: results
                    // waiting to be handed back stay bounded.
                    {
                        let (lock, cv) = emitted;
                        let mut done = lock.lock().unwrap_or_else(|p| p.into_inner());
                        while i >= *done + window && !stop.load(Ordering::SeqCst) {
                            done = cv.wait(done).unwrap_or_else(|p| p.into_inner());
                        }
                    }
                    let r =
                        run_seed(scenario, seed, cfg).map_err(|error| SeedError { seed, error });
                    if cfg.fail_fast && !r.as_ref().is_ok_and(SeedResult::passed) {
                        stop.store(true, Ordering::SeqCst);
                        emitted.1.notify_all();
                    }
                    if tx.send((i, r)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<u64, Result<SeedResult, SeedError>> = BTreeMap::new();
        let mut emit = 0u64;
        for (i, r) in rx {
            pending.insert(i, r);
            while let Some(r) = pending.remove(&emit) {
                // The summary counts what the seed's JSON line says, as
                // `merge` will when it reads the line back.
                let row = match &r {
                    Ok(r) => SeedRow::from_json(&r.json).map_err(|e| SeedError {
                        seed: r.seed,
                        error: format!("its own JSON line does not read back: {e}"),
                    }),
                    Err(e) => Err(e.clone()),
                };
                let row = row.unwrap_or_else(|e| SeedRow::of_error(e.seed, e.error));
                on_result(r.as_ref());
                out.count(&row);
                if cfg.rows {
                    out.rows.push(row);
                }
                if let Ok(r) = r
                    && cfg.keep
                {
                    out.results.push(r);
                }
                emit += 1;
                let (lock, cv) = &emitted;
                *lock.lock().unwrap_or_else(|p| p.into_inner()) = emit;
                cv.notify_all();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(range: Range<u64>, k: u64, n: u64) -> Vec<u64> {
        Seeds::new(range, Some((k, n))).iter().collect()
    }

    #[test]
    fn shards_partition_the_range() {
        let all: Vec<u64> = (10..50).collect();
        let mut union: Vec<u64> = (0..4).flat_map(|k| shard(10..50, k, 4)).collect();
        union.sort();
        assert_eq!(union, all);
        for a in 0..4 {
            for b in (a + 1)..4 {
                let sa = shard(10..50, a, 4);
                assert!(shard(10..50, b, 4).iter().all(|s| !sa.contains(s)));
            }
        }
        // Each shard's seeds are those s with s mod n = k, found by arithmetic.
        for k in 0..7 {
            let expect: Vec<u64> = (3..40).filter(|s| s % 7 == k).collect();
            assert_eq!(shard(3..40, k, 7), expect);
            assert_eq!(Seeds::new(3..40, Some((k, 7))).len(), expect.len() as u64);
        }
        // A huge range costs nothing to describe.
        let huge = Seeds::new(0..1_000_000_000_000, Some((999, 1_000_000_000_000)));
        assert_eq!(huge.len(), 1);
        assert_eq!(huge.get(0), Some(999));
        assert_eq!(Seeds::new(5..5, None).len(), 0);
        assert!(
            parse_shard("4/4").is_err() && parse_shard("1/0").is_err() && parse_shard("x").is_err()
        );
        assert_eq!(parse_shard("1/3"), Ok((1, 3)));
    }
}
