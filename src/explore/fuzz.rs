//! Fuzzing the scenario format: every file mcpsim ships, mutated by a seeded
//! mutator, plus documents made from scratch, each put through what a user's
//! file goes through — parse, realise, write back, parse again and, when it
//! is short enough, run.
//!
//! The contract checked, case by case: bad input is one bounded line (no line
//! break, at most [`MAX_ERROR_CHARS`] characters) naming where; valid input
//! realises into a scenario mcpsim itself accepts again, and runs to its end
//! (verdict pass or fail) within its duration. A panic, an internal error, a
//! realised scenario mcpsim rejects, or a run past its duration is a finding
//! about mcpsim. Every mutation comes from the case's seed through one ChaCha
//! stream, so a failing case replays with its number.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::Error;
use crate::scenario;
use crate::sim;

/// The longest an error line may be (the message's bound plus file, line and
/// field).
pub const MAX_ERROR_CHARS: usize = 700;

/// Valid mutants run only when their duration is at most this (the others are
/// parsed, realised and written back, not run), to keep a case short.
pub const RUN_UP_TO: Duration = Duration::from_secs(20);

/// What one case came to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Rejected with one bounded line (exit 2).
    Rejected,
    /// Valid, and ran to a verdict.
    Ran,
    /// Valid; too long to run here, realised and written back.
    Realised,
    /// A broken contract: what and why.
    Broken(String),
}

/// Counts by outcome, and the first broken cases.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// Cases rejected as bad input.
    pub rejected: u64,
    /// Valid cases that ran.
    pub ran: u64,
    /// Valid cases realised but not run.
    pub realised: u64,
    /// Broken contracts: (case, what).
    pub broken: Vec<(u64, String)>,
}

impl Counts {
    /// All cases.
    pub fn total(&self) -> u64 {
        self.rejected + self.ran + self.realised + self.broken.len() as u64
    }
}

/// The documents the mutator starts from: every catalogue and regression file.
pub fn corpus() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in scenario::catalogue_dirs() {
        for sub in [dir.clone(), dir.join("regressions")] {
            let Ok(entries) = std::fs::read_dir(&sub) else {
                continue;
            };
            let mut files: Vec<_> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            for f in files {
                if let Ok(text) = std::fs::read_to_string(&f) {
                    out.push((f.display().to_string(), text));
                }
            }
        }
        if !out.is_empty() {
            break;
        }
    }
    out
}

std::thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` with the panics it provokes on this thread kept off stderr (they
/// are caught and counted; other threads' panics still print).
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let r = f();
    QUIET.with(|q| q.set(false));
    r
}

/// Run cases `first..first + n`; `on_case` sees each as it ends.
pub fn fuzz(first: u64, n: u64, mut on_case: impl FnMut(u64, &Outcome)) -> Counts {
    let corpus = corpus();
    let mut counts = Counts::default();
    for case in first..first + n {
        let text = mutant(case, &corpus);
        let o = quietly(|| judge(&text));
        on_case(case, &o);
        match o {
            Outcome::Rejected => counts.rejected += 1,
            Outcome::Ran => counts.ran += 1,
            Outcome::Realised => counts.realised += 1,
            Outcome::Broken(why) => counts.broken.push((case, why)),
        }
    }
    counts
}

/// The text of case `case`.
pub fn mutant(case: u64, corpus: &[(String, String)]) -> String {
    let mut r = ChaCha8Rng::seed_from_u64(case);
    // One case in eight starts from nothing.
    if corpus.is_empty() || r.random_range(0..8u32) == 0 {
        return from_scratch(&mut r);
    }
    let (_, base) = &corpus[r.random_range(0..corpus.len())];
    let mut text = base.clone();
    for _ in 0..r.random_range(1..=4u32) {
        text = mutate(&mut r, &text);
    }
    text
}

/// Judge one document.
pub fn judge(text: &str) -> Outcome {
    let parsed = catch_unwind(AssertUnwindSafe(|| scenario::parse(text, "fuzz.toml")));
    let sc = match parsed {
        Err(_) => return Outcome::Broken("parse panicked".into()),
        Ok(Err(e)) => {
            let line = e.to_string();
            if line.contains('\n') || line.chars().count() > MAX_ERROR_CHARS {
                return Outcome::Broken(format!(
                    "an error of {} characters over {} lines",
                    line.chars().count(),
                    line.lines().count()
                ));
            }
            if e.file.is_none() {
                return Outcome::Broken(format!("an error naming no file: {line}"));
            }
            return Outcome::Rejected;
        }
        Ok(Ok(sc)) => sc,
    };
    // A realised scenario is exact: mcpsim must accept what it writes.
    let written = catch_unwind(AssertUnwindSafe(|| sc.realise(1).to_toml()));
    let Ok(written) = written else {
        return Outcome::Broken("realise or write panicked".into());
    };
    match catch_unwind(AssertUnwindSafe(|| {
        scenario::parse(&written, "realised.toml")
    })) {
        Err(_) => return Outcome::Broken("parsing a realised scenario panicked".into()),
        Ok(Err(e)) => return Outcome::Broken(format!("the realised scenario is rejected: {e}")),
        Ok(Ok(_)) => {}
    }
    if sc.duration > RUN_UP_TO {
        return Outcome::Realised;
    }
    let stack = sc.stack.clone();
    match catch_unwind(AssertUnwindSafe(|| sim::run(&sc, 1, &stack))) {
        Err(_) => Outcome::Broken("the run panicked".into()),
        Ok(Err(Error::Internal(e))) => Outcome::Broken(format!("internal error: {e}")),
        Ok(Err(Error::Input(e))) => Outcome::Broken(format!("valid input refused at run: {e}")),
        Ok(Ok(o)) if o.virtual_time > sc.duration + sc.tick => Outcome::Broken(format!(
            "ran {} past its duration {}",
            crate::time::fmt_duration(o.virtual_time),
            crate::time::fmt_duration(sc.duration)
        )),
        Ok(Ok(_)) => Outcome::Ran,
    }
}

/// Values a mutation may put in place of another.
fn value(r: &mut ChaCha8Rng) -> String {
    const MENU: [&str; 28] = [
        "0",
        "-1",
        "4294967296",
        "99999999999999999999",
        "1.5",
        "true",
        "\"\"",
        "\"0s\"",
        "\"1ms\"",
        "\"99999h\"",
        "\"-1s\"",
        "\"1e9s\"",
        "\"c1\"",
        "\"server\"",
        "\"x\\r\\ny\"",
        "\"\\u0000\"",
        "[]",
        "[\"1ms\", \"20ms\", \"extra\", 42]",
        "[1, 2, 3]",
        "[[1]]",
        "{}",
        "{ min = \"1ms\" }",
        "{ protocol = 7 }",
        "[\"a\", 1]",
        "\"python-sdk-2.3\"",
        "\"native\"",
        "[0, 1025]",
        "[8, 8]",
    ];
    match r.random_range(0..10u32) {
        0 => format!("\"{}\"", "x".repeat(r.random_range(1..20_000usize))),
        1 => format!("[{}]", vec!["1"; r.random_range(1..3000usize)].join(",")),
        _ => MENU[r.random_range(0..MENU.len())].to_string(),
    }
}

/// One mutation of `text`.
fn mutate(r: &mut ChaCha8Rng, text: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        return value(r);
    }
    let i = r.random_range(0..lines.len());
    match r.random_range(0..9u32) {
        // Replace a value.
        0..=2 => {
            if let Some(eq) = lines[i].find('=') {
                lines[i] = format!("{}= {}", &lines[i][..eq], value(r));
            }
        }
        // Wrap a value in an array.
        3 => {
            if let Some(eq) = lines[i].find('=') {
                let (k, v) = lines[i].split_at(eq + 1);
                lines[i] = format!("{k} [{}, {}]", v.trim(), value(r));
            }
        }
        // Delete, duplicate or move a line.
        4 => {
            lines.remove(i);
        }
        5 => {
            let l = lines[i].clone();
            lines.insert(r.random_range(0..=lines.len()), l);
        }
        6 => {
            let j = r.random_range(0..lines.len());
            lines.swap(i, j);
        }
        // Insert a key somewhere.
        7 => {
            const KEYS: [&str; 12] = [
                "clients",
                "hosts",
                "faults",
                "tick",
                "duration",
                "window",
                "latency",
                "origin",
                "read_timeout",
                "regression",
                "seeds",
                "stack",
            ];
            let k = KEYS[r.random_range(0..KEYS.len())];
            lines.insert(i, format!("{k} = {}", value(r)));
        }
        // Cut the file short.
        _ => {
            let cut = r.random_range(0..=text.len());
            let mut cut = cut;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            return text[..cut].to_string();
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// A document from scratch: the format's tables in random shapes.
fn from_scratch(r: &mut ChaCha8Rng) -> String {
    let mut t = format!(
        "name = \"fz\"\nduration = {}\n",
        if r.random_bool(0.8) {
            format!("\"{}s\"", r.random_range(1..15u32))
        } else {
            value(r)
        }
    );
    if r.random_bool(0.5) {
        t.push_str(&format!(
            "[swarm]\nclients = {}\nhosts = {}\nsteps = {}\nfaults = {}\n",
            pick(r, &["[1, 4]", "[0, 1025]", "[2, 2]", "[1, 200]"]),
            pick(r, &["[1, 2]", "[2, 2]", "[8, 8]", "[3, 1]"]),
            pick(r, &["[1, 6]", "[0, 50]", "[51, 60]"]),
            pick(r, &["[0, 3]", "[1, 1]", "[4, 2]"]),
        ));
    } else {
        for i in 0..r.random_range(0..4u32) {
            t.push_str(&format!(
                "[[client]]\nname = \"c{i}\"\nhost = {}\nscript = [{}]\n",
                pick(r, &["\"h1\"", "\"h2\"", "\"server\"", "\"c0\""]),
                pick(
                    r,
                    &[
                        "{ initialize = {} }",
                        "{ initialize = {} }, { call = \"slow_operation\", args = { seconds = 1 } }",
                        "{ initialize = [\"x\"] }",
                        "{ sleep = [\"1ms\", \"5ms\", \"9ms\"] }",
                        "",
                    ]
                ),
            ));
        }
        if r.random_bool(0.5) {
            t.push_str(&format!(
                "[[fault]]\nat = {}\n{} = {}\n",
                pick(r, &["\"0.5s\"", "\"99h\"", "\"-1s\""]),
                pick(r, &["crash", "partition", "hold", "shutdown", "abandon"]),
                pick(r, &["\"c0\"", "\"server\"", "[\"c0\", \"c1\"]", "\"h9\""]),
            ));
        }
    }
    t
}

fn pick<'a>(r: &mut ChaCha8Rng, from: &[&'a str]) -> &'a str {
    from[r.random_range(0..from.len())]
}
