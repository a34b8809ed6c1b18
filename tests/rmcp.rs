//! rmcp 3.11.0, the official Rust SDK, run unmodified as the `rmcp-3.11`
//! stack: its own code in the simulation, replayed exactly.

use std::process::Command;

fn run_json(args: &[&str]) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_mcpsim"))
        .args(args)
        .output()
        .expect("run mcpsim");
    let out = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn rmcp_runs_in_the_simulation_and_replays_in_another_process() {
    let args = [
        "run",
        "missing-body",
        "--seed",
        "1",
        "--server",
        "rmcp-3.11",
        "--json",
    ];
    let a = run_json(&args);
    let b = run_json(&args);
    assert_eq!(a["server"], "rmcp-3.11");
    assert_eq!(a["trace_hash"], b["trace_hash"]);
    // What no oracle can see on rmcp is said, not passed.
    let not_judged: Vec<&str> = a["not_judged"]
        .as_array()
        .expect("not_judged")
        .iter()
        .filter_map(|n| n["oracle"].as_str())
        .collect();
    assert!(not_judged.contains(&"protocol-violation"), "{a}");
    // missing-final-body judges rmcp in its HTTP form: it is not listed.
    assert!(!not_judged.contains(&"missing-final-body"), "{a}");
    // rmcp's own log lines are in the trace: its code ran.
    let sc = mcpsim::scenario::load("missing-body").expect("catalogue");
    let o = mcpsim::sim::run(&sc, 1, "rmcp-3.11").expect("run");
    assert!(
        o.trace.iter().any(|l| l.target.starts_with("rmcp")),
        "no rmcp trace line"
    );
    assert_eq!(o.trace_hash, a["trace_hash"].as_str().unwrap_or_default());
}

#[test]
fn rmcp_swarm_seeds_replay_exactly() {
    // rmcp's `select!`s are unbiased: they replay only because tokio is
    // built with `--cfg tokio_unstable` (.cargo/config.toml), so that
    // turmoil seeds each host's runtime.
    let o = Command::new(env!("CARGO_BIN_EXE_mcpsim"))
        .args([
            "sweep",
            "swarm",
            "--seeds",
            "0..100",
            "--server",
            "rmcp-3.11",
            "--check-determinism",
        ])
        .output()
        .expect("sweep");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!all.contains("nondeterminism"), "{all}");
    assert!(all.contains("100 seeds on rmcp-3.11"), "{all}");
}
