//! Same seed, same trace: three times in one process and in separate
//! processes (the built binary), for a failing and a passing seed.

mod common;

use std::process::Command;

use mcpsim::scenario;
use mcpsim::sim;

const SCENARIO: &str = "shutdown-race";
const STACK: &str = "python-sdk-1.20";

/// The first failing and the first passing seed (found, not assumed).
fn seeds() -> (u64, u64) {
    let sc = scenario::load(SCENARIO).unwrap();
    let (mut fail, mut pass) = (None, None);
    for seed in 0..100 {
        let o = sim::run(&sc, seed, STACK).unwrap();
        match o.passed() {
            false if fail.is_none() => fail = Some(seed),
            true if pass.is_none() => pass = Some(seed),
            _ => {}
        }
        if let (Some(f), Some(p)) = (fail, pass) {
            return (f, p);
        }
    }
    panic!("seeds 0..100 of {SCENARIO} need both a failing and a passing seed");
}

fn hash_from_binary(seed: u64) -> (String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_mcpsim"))
        .args([
            "run",
            SCENARIO,
            "--seed",
            &seed.to_string(),
            "--server",
            STACK,
            "--json",
        ])
        .output()
        .expect("run the binary");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    (
        v["trace_hash"].as_str().unwrap().to_string(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn same_seed_same_trace_in_process_and_across_processes() {
    let sc = scenario::load(SCENARIO).unwrap();
    let (fail, pass) = seeds();
    for (seed, expect_pass) in [(fail, false), (pass, true)] {
        let runs: Vec<_> = (0..3)
            .map(|_| sim::run(&sc, seed, STACK).unwrap())
            .collect();
        assert_eq!(runs[0].passed(), expect_pass);
        for r in &runs[1..] {
            assert_eq!(
                r.trace_hash, runs[0].trace_hash,
                "seed {seed} in one process"
            );
            assert_eq!(
                r.trace, runs[0].trace,
                "seed {seed}: traces differ line by line"
            );
        }
        for _ in 0..2 {
            let (hash, code) = hash_from_binary(seed);
            assert_eq!(
                hash, runs[0].trace_hash,
                "seed {seed} in a separate process"
            );
            assert_eq!(code, if expect_pass { 0 } else { 1 });
        }
    }
}

#[test]
fn different_seeds_give_different_traces() {
    let sc = scenario::load(SCENARIO).unwrap();
    let a = sim::run(&sc, 1, STACK).unwrap();
    let b = sim::run(&sc, 2, STACK).unwrap();
    assert_ne!(a.trace_hash, b.trace_hash);
}
