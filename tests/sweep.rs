//! The sweep as a user runs it: JSON lines, exit codes, independence from
//! --jobs, shards that partition the range, the determinism check, swarms.

use std::process::{Command, Output};

fn mcpsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcpsim"))
        .args(args)
        .output()
        .expect("run mcpsim")
}

fn lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn key(v: &serde_json::Value) -> (u64, String, String) {
    (
        v["seed"].as_u64().unwrap(),
        v["verdict"].as_str().unwrap().to_string(),
        v["trace_hash"].as_str().unwrap().to_string(),
    )
}

#[test]
fn a_thousand_seeds_give_a_thousand_lines_whatever_the_jobs() {
    let all = mcpsim(&[
        "sweep",
        "slow-tool-disconnect",
        "--seeds",
        "0..1000",
        "--json",
    ]);
    assert_eq!(all.status.code(), Some(1));
    let a = lines(&all);
    assert_eq!(a.len(), 1000);
    assert_eq!(
        a.iter()
            .map(|v| v["seed"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        (0..1000).collect::<Vec<_>>()
    );
    let summary = String::from_utf8_lossy(&all.stderr);
    assert!(
        summary.contains("missing-final-body") && summary.contains("replay:"),
        "{summary}"
    );
    let one = mcpsim(&[
        "sweep",
        "slow-tool-disconnect",
        "--seeds",
        "0..1000",
        "--json",
        "--jobs",
        "1",
    ]);
    let b = lines(&one);
    assert_eq!(
        a.iter().map(key).collect::<Vec<_>>(),
        b.iter().map(key).collect::<Vec<_>>()
    );
}

#[test]
fn shards_partition_the_range_and_agree_with_the_whole() {
    let whole = lines(&mcpsim(&[
        "sweep",
        "slow-tool-disconnect",
        "--seeds",
        "0..60",
        "--json",
    ]));
    let mut parts: Vec<(u64, String, String)> = (0..3)
        .flat_map(|k| {
            lines(&mcpsim(&[
                "sweep",
                "slow-tool-disconnect",
                "--seeds",
                "0..60",
                "--json",
                "--shard",
                &format!("{k}/3"),
            ]))
        })
        .map(|v| key(&v))
        .collect();
    parts.sort();
    assert_eq!(parts, whole.iter().map(key).collect::<Vec<_>>());
}

#[test]
fn fail_fast_stops_early_and_a_passing_range_exits_0() {
    let o = mcpsim(&[
        "sweep",
        "slow-tool-disconnect",
        "--seeds",
        "0..1000",
        "--json",
        "--fail-fast",
        "--jobs",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let n = lines(&o).len();
    assert!(n < 10, "{n} seeds ran");
    let o = mcpsim(&[
        "sweep",
        "missing-body",
        "--seeds",
        "0..50",
        "--server",
        "native",
    ]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn determinism_is_checked_in_a_child_process_too() {
    let o = mcpsim(&[
        "run",
        "slow-tool-disconnect",
        "--seed",
        "1",
        "--check-determinism",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["deterministic"], true, "{v}");
    let o = mcpsim(&[
        "sweep",
        "swarm",
        "--seeds",
        "0..8",
        "--json",
        "--check-determinism",
    ]);
    for v in lines(&o) {
        assert_eq!(v["deterministic"], true, "seed {}", v["seed"]);
    }
}

#[test]
fn a_swarm_sweep_runs_every_seed() {
    let o = mcpsim(&["sweep", "swarm", "--seeds", "0..300", "--json"]);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(lines(&o).len(), 300);
}

#[test]
fn bad_sweep_flags_exit_2() {
    for args in [
        vec!["sweep", "swarm", "--seeds", "5..5"],
        vec!["sweep", "swarm", "--seeds", "0..9", "--shard", "3/3"],
        vec!["sweep", "swarm", "--seeds", "0..9", "--jobs", "0"],
        vec!["sweep", "swarm"],
    ] {
        let o = mcpsim(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&o.stderr)
                .trim_end()
                .lines()
                .count(),
            1,
            "{args:?}"
        );
    }
}
