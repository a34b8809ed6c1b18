//! Bisect: from a failing seed to the smallest exact schedule that still
//! fails, and the window of virtual time in which each remaining fault
//! triggers the failure.
//!
//! 1. Realise the seed's scenario (every fault at its exact time, the workload
//!    fixed) and take the failure's signature.
//! 2. Shrink with delta debugging: first the faults, then the script steps,
//!    keeping the same signature; the result is 1-minimal (removing any one
//!    remaining fault makes the failure go away).
//! 3. For each remaining fault, binary-search (at tick resolution) the earliest
//!    and the latest time at which it still triggers the failure, the others
//!    fixed: the race window.
//! 4. Write the minimal scenario — exact, no random parts — with a
//!    `[regression]` table naming the stack, seed, signature and the stacks it
//!    passes on.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;

use super::shrink::ddmin;
use crate::error::{Error, InputError};
use crate::scenario::{FaultKind, Regression, SERVER_HOST, Scenario, When};
use crate::servers;
use crate::servers::StackRef;
use crate::sim;
use crate::time::fmt_duration;

/// The window of one fault.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// The fault, as text.
    pub fault: String,
    /// Its time in the seed's schedule.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub at: Duration,
    /// The earliest time it still triggers the failure.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub earliest: Duration,
    /// The latest.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub latest: Duration,
}

/// What bisect found.
#[derive(Debug, Clone)]
pub struct BisectReport {
    /// The signature kept throughout.
    pub signature: String,
    /// Faults and script steps of the realised scenario.
    pub original: (usize, usize),
    /// The minimal exact scenario (with its `[regression]` table).
    pub minimal: Scenario,
    /// One window per remaining fault.
    pub windows: Vec<Window>,
    /// Simulation runs used.
    pub runs: usize,
}

struct Judge<'a> {
    seed: u64,
    stack: &'a StackRef,
    signature: &'a str,
    runs: usize,
}

impl Judge<'_> {
    fn fails(&mut self, sc: &Scenario) -> bool {
        if !references_ok(sc) {
            return false;
        }
        self.runs += 1;
        match sim::run_on(sc, self.seed, self.stack) {
            Ok(o) => o.failures.iter().any(|f| f.signature == self.signature),
            Err(_) => false,
        }
    }
}

/// Do the faults only name hosts and clients the scenario still has?
fn references_ok(sc: &Scenario) -> bool {
    let hosts: BTreeSet<&str> = sc
        .clients
        .iter()
        .map(|c| c.host.as_str())
        .chain([SERVER_HOST])
        .collect();
    let clients: BTreeSet<&str> = sc.clients.iter().map(|c| c.name.as_str()).collect();
    !sc.clients.is_empty()
        && sc.faults.iter().all(|f| match &f.kind {
            FaultKind::Crash { host } | FaultKind::Restart { host } => {
                hosts.contains(host.as_str())
            }
            FaultKind::Partition { a, b }
            | FaultKind::Repair { a, b }
            | FaultKind::Hold { a, b }
            | FaultKind::Release { a, b } => {
                hosts.contains(a.as_str()) && hosts.contains(b.as_str())
            }
            FaultKind::PartitionOneway { from, to } | FaultKind::RepairOneway { from, to } => {
                hosts.contains(from.as_str()) && hosts.contains(to.as_str())
            }
            FaultKind::Abandon { client } => clients.contains(client.as_str()),
            FaultKind::Shutdown { .. } | FaultKind::Slow { .. } => true,
        })
}

fn with_faults(base: &Scenario, keep: &[usize]) -> Scenario {
    let mut s = base.clone();
    s.faults = keep.iter().map(|&i| base.faults[i].clone()).collect();
    s
}

fn with_steps(base: &Scenario, keep: &[(usize, usize)]) -> Scenario {
    let mut s = base.clone();
    for (ci, c) in s.clients.iter_mut().enumerate() {
        c.steps = base.clients[ci]
            .steps
            .iter()
            .enumerate()
            .filter(|(si, _)| keep.contains(&(ci, *si)))
            .map(|(_, st)| st.clone())
            .collect();
    }
    s.clients.retain(|c| !c.steps.is_empty());
    s.links
        .retain(|h, _| s.clients.iter().any(|c| &c.host == h));
    s
}

fn at(sc: &Scenario, i: usize) -> Duration {
    match sc.faults[i].when {
        When::At(t) | When::Window(t, _) => t,
    }
}

fn moved(sc: &Scenario, i: usize, t: Duration) -> Scenario {
    let mut s = sc.clone();
    s.faults[i].when = When::At(t);
    s
}

/// Which edge of a window [`edge`] looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The earliest failing time.
    Before,
    /// The latest failing time.
    After,
}

/// The edge of the contiguous failing interval around `t0` (which fails) on
/// one side, at `tick` resolution, without leaving `[0, limit]` on that side:
/// probe outward in doubling steps until a time passes, then bisect between
/// it and the last failing time. A failure at some far time for another
/// reason does not widen the window, as long as a passing time lies between.
pub fn edge(
    t0: Duration,
    tick: Duration,
    limit: Duration,
    side: Side,
    fails: &mut dyn FnMut(Duration) -> bool,
) -> Duration {
    let step = |t: Duration, d: Duration| match side {
        Side::Before => t.saturating_sub(d).max(limit),
        Side::After => (t + d).min(limit),
    };
    let (mut inside, mut outside) = (t0, None);
    let mut d = tick;
    while inside != limit {
        let probe = step(t0, d);
        if fails(probe) {
            inside = probe;
            d *= 2;
        } else {
            outside = Some(probe);
            break;
        }
    }
    let Some(mut out) = outside else {
        return inside;
    };
    // Bisect between `inside` (fails) and `out` (passes), on tick boundaries.
    let ticks = |a: Duration, b: Duration| (a.max(b) - a.min(b)).as_nanos() / tick.as_nanos();
    while ticks(inside, out) > 1 {
        let half = tick * (ticks(inside, out) / 2) as u32;
        let mid = match side {
            Side::Before => inside - half,
            Side::After => inside + half,
        };
        if fails(mid) { inside = mid } else { out = mid }
    }
    inside
}

/// Bisect a failing `seed` of `scenario` on `stack`. `signature` picks the
/// failure to keep (default: the run's first). `progress` hears each phase.
pub fn bisect(
    scenario: &Scenario,
    seed: u64,
    stack_ref: &StackRef,
    signature: Option<&str>,
    progress: &mut dyn FnMut(&str),
) -> Result<BisectReport, Error> {
    let stack = stack_ref.name();
    let first = sim::run_on(scenario, seed, stack_ref)?;
    let signature = match signature {
        Some(s) if first.failures.iter().any(|f| f.signature == s) => s.to_string(),
        Some(s) => {
            return Err(InputError::msg(format!(
                "seed {seed} on {stack} does not fail with \"{s}\""
            ))
            .into());
        }
        None => match first.failures.first() {
            Some(f) => f.signature.clone(),
            None => {
                return Err(InputError::msg(format!(
                    "seed {seed} passes on {stack}: nothing to bisect"
                ))
                .into());
            }
        },
    };
    let realised = first.realised.clone();
    let mut judge = Judge {
        seed,
        stack: stack_ref,
        signature: &signature,
        runs: 1,
    };
    if !judge.fails(&realised) {
        return Err(Error::Internal(format!(
            "the realised scenario of seed {seed} does not fail like the seed does"
        )));
    }
    let original = (
        realised.faults.len(),
        realised.clients.iter().map(|c| c.steps.len()).sum(),
    );

    progress(&format!("shrinking {} faults", realised.faults.len()));
    let all: Vec<usize> = (0..realised.faults.len()).collect();
    let keep = ddmin(&all, &mut |k: &[usize]| {
        judge.fails(&with_faults(&realised, k))
    });
    let mut minimal = with_faults(&realised, &keep);

    let steps: Vec<(usize, usize)> = minimal
        .clients
        .iter()
        .enumerate()
        .flat_map(|(ci, c)| (0..c.steps.len()).map(move |si| (ci, si)))
        .collect();
    progress(&format!("shrinking {} script steps", steps.len()));
    let keep = ddmin(&steps, &mut |k: &[(usize, usize)]| {
        judge.fails(&with_steps(&minimal, k))
    });
    minimal = with_steps(&minimal, &keep);

    let mut windows = Vec::new();
    let last = minimal.duration.saturating_sub(minimal.tick);
    for i in 0..minimal.faults.len() {
        progress(&format!(
            "searching the window of {}",
            minimal.faults[i].kind
        ));
        let t0 = at(&minimal, i);
        let tick = minimal.tick;
        let mut fails_at = |t: Duration| judge.fails(&moved(&minimal, i, t));
        let earliest = edge(t0, tick, Duration::ZERO, Side::Before, &mut fails_at);
        let latest = edge(t0, tick, last, Side::After, &mut fails_at);
        windows.push(Window {
            fault: minimal.faults[i].kind.to_string(),
            at: t0,
            earliest,
            latest,
        });
    }

    progress("checking the other stacks");
    // A stack whose reports cannot see the signature's oracle is not "fixed"
    // by its absence: it is left out (its report lists the oracle as not
    // judged).
    let oracle = crate::oracles::NAMES
        .iter()
        .find(|n| signature.starts_with(*n))
        .copied();
    let mut fixed_on = Vec::new();
    for other in servers::stack_names() {
        let blind = servers::stack(other)
            .is_some_and(|s| s.not_judged().iter().any(|(o, _)| Some(*o) == oracle));
        if other != stack && !blind {
            judge.runs += 1;
            if sim::run(&minimal, seed, other)
                .is_ok_and(|o| o.failures.iter().all(|f| f.signature != signature))
            {
                fixed_on.push(other.to_string());
            }
        }
    }
    minimal.name = format!("{}-{seed}", scenario.name);
    minimal.about = format!(
        "Regression: {} seed {seed} on {stack} shrunk by mcpsim bisect; fails with {signature}",
        scenario.name
    );
    minimal.stack = stack.to_string();
    minimal.expect = None;
    minimal.regression = Some(Regression {
        stack: stack.to_string(),
        seed,
        signature: signature.clone(),
        fixed_on,
    });
    let runs = judge.runs;
    Ok(BisectReport {
        signature: signature.clone(),
        original,
        minimal,
        windows,
        runs,
    })
}

impl BisectReport {
    /// The regression file's text: a comment with the window table, then the
    /// scenario.
    pub fn file_text(&self) -> String {
        let mut s = String::from(
            "# Written by `mcpsim bisect`: the smallest exact schedule that still fails.\n",
        );
        for w in &self.windows {
            s.push_str(&format!(
                "# {}: fails when at {} .. {} (seed's time {})\n",
                w.fault,
                fmt_duration(w.earliest),
                fmt_duration(w.latest),
                fmt_duration(w.at)
            ));
        }
        s.push_str(&self.minimal.to_toml());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn window_edges_are_exact_and_ignore_failures_beyond_a_pass() {
        // Fails on [300ms, 512ms] and, for another reason, at 0..5ms.
        let mut runs = 0;
        let mut fails = |t: Duration| {
            runs += 1;
            (ms(300)..=ms(512)).contains(&t) || t <= ms(5)
        };
        let tick = ms(1);
        assert_eq!(
            edge(ms(400), tick, Duration::ZERO, Side::Before, &mut fails),
            ms(300)
        );
        assert_eq!(
            edge(ms(400), tick, ms(9_999), Side::After, &mut fails),
            ms(512)
        );
        assert!(runs < 40, "{runs} runs");
        // A window reaching the limit ends there.
        let mut always = |_: Duration| true;
        assert_eq!(
            edge(ms(400), tick, ms(9_999), Side::After, &mut always),
            ms(9_999)
        );
        assert_eq!(
            edge(ms(400), tick, Duration::ZERO, Side::Before, &mut always),
            Duration::ZERO
        );
        // A single failing tick.
        let mut one = |t: Duration| t == ms(7);
        assert_eq!(
            edge(ms(7), tick, Duration::ZERO, Side::Before, &mut one),
            ms(7)
        );
        assert_eq!(edge(ms(7), tick, ms(100), Side::After, &mut one), ms(7));
    }
}
