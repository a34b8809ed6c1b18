//! The determinism self-check: a seed must give the same trace every time —
//! twice in this process, and again in a fresh child process (where hash-map
//! seeds, allocation addresses and thread-locals all differ). On a difference
//! it reports the first diverging trace line and its virtual time, as madsim
//! does.

use std::path::PathBuf;
use std::process::Command;

use serde::Serialize;

use crate::error::Error;
use crate::scenario::Scenario;
use crate::servers::StackRef;
use crate::sim::{self, Outcome};

/// How to run a seed again in a child process: mcpsim's own binary, given the
/// scenario as the user named it.
#[derive(Debug, Clone)]
pub struct Child {
    /// The mcpsim binary.
    pub exe: PathBuf,
    /// The scenario argument (a name in sims/ or a path).
    pub scenario_arg: String,
}

/// Where two traces of one seed part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Divergence {
    /// "in-process" or "child-process".
    pub kind: &'static str,
    /// Index of the first differing line (0-based).
    pub line: usize,
    /// Its virtual time (as text), from the first trace.
    pub at: String,
    /// The line in the first run (or "<end>").
    pub first: String,
    /// The line in the other run (or "<end>").
    pub other: String,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} divergence at trace line {} ({}):\n  first: {}\n  other: {}",
            self.kind, self.line, self.at, self.first, self.other
        )
    }
}

/// The first difference between two traces given as JSON lines.
pub fn first_difference(kind: &'static str, a: &[String], b: &[String]) -> Option<Divergence> {
    let n = a.len().max(b.len());
    (0..n).find(|&i| a.get(i) != b.get(i)).map(|i| {
        let at = a
            .get(i)
            .or(b.get(i))
            .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .and_then(|v| v["t"].as_str().map(str::to_string))
            .unwrap_or_default();
        Divergence {
            kind,
            line: i,
            at,
            first: a.get(i).cloned().unwrap_or_else(|| "<end>".into()),
            other: b.get(i).cloned().unwrap_or_else(|| "<end>".into()),
        }
    })
}

fn lines(o: &Outcome) -> Vec<String> {
    o.trace.iter().map(|l| l.json()).collect()
}

/// Check a run already made: run the seed again in-process, then in a child
/// process if `child` is given. `None`: no divergence.
pub fn check_outcome(
    scenario: &Scenario,
    first: &Outcome,
    stack: &StackRef,
    child: Option<&Child>,
) -> Result<Option<Divergence>, Error> {
    let a = lines(first);
    let again = sim::run_on(scenario, first.seed, stack)?;
    if let Some(d) = first_difference("in-process", &a, &lines(&again)) {
        return Ok(Some(d));
    }
    let Some(child) = child else { return Ok(None) };
    let path = std::env::temp_dir().join(format!(
        "mcpsim-determinism-{}-{}-{}.jsonl",
        std::process::id(),
        first.seed,
        std::thread::current()
            .name()
            .unwrap_or("main")
            .replace(['/', ' '], "_")
    ));
    let out = Command::new(&child.exe)
        .args([
            "run",
            &child.scenario_arg,
            "--seed",
            &first.seed.to_string(),
            "--server",
            &first.stack,
            "--json",
            "--trace",
        ])
        .arg(&path)
        .output()
        .map_err(|e| {
            Error::Internal(format!(
                "cannot start the child process {}: {e}",
                child.exe.display()
            ))
        })?;
    if !matches!(out.status.code(), Some(0 | 1)) {
        let _ = std::fs::remove_file(&path);
        return Err(Error::Internal(format!(
            "the child process failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::Internal(format!(
            "cannot read the child's trace {}: {e}",
            path.display()
        ))
    })?;
    let _ = std::fs::remove_file(&path);
    let b: Vec<String> = text.lines().map(str::to_string).collect();
    Ok(first_difference("child-process", &a, &b))
}

/// `run --check-determinism`: the seed twice in-process and once in a child.
pub fn check(
    scenario: &Scenario,
    seed: u64,
    stack: &StackRef,
    child: Option<&Child>,
) -> Result<(Outcome, Option<Divergence>), Error> {
    let first = sim::run_on(scenario, seed, stack)?;
    let d = check_outcome(scenario, &first, stack, child)?;
    Ok((first, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_first_differing_line() {
        let a: Vec<String> = [
            "{\"t\":\"0.001s\",\"msg\":\"x\"}",
            "{\"t\":\"0.002s\",\"msg\":\"y\"}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut b = a.clone();
        assert_eq!(first_difference("in-process", &a, &b), None);
        b[1] = "{\"t\":\"0.002s\",\"msg\":\"z\"}".into();
        let d = first_difference("in-process", &a, &b).unwrap();
        assert_eq!((d.line, d.at.as_str()), (1, "0.002s"));
        b.pop();
        let d = first_difference("child-process", &a, &b).unwrap();
        assert_eq!(d.other, "<end>");
    }
}
