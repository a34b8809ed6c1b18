//! The command line as a user meets it: exit codes, JSON, one-line errors.

use std::process::{Command, Output};

fn mcpsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcpsim"))
        .args(args)
        .output()
        .expect("run mcpsim")
}

fn write(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("mcpsim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn one_line_error(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(o.stdout.is_empty(), "nothing on stdout for bad input");
    err
}

#[test]
fn run_json_has_the_contract_fields_and_exit_1_on_failure() {
    let o = mcpsim(&["run", "missing-body", "--seed", "1", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    for k in [
        "scenario",
        "seed",
        "server",
        "verdict",
        "failures",
        "trace_hash",
        "virtual_time",
        "wall_ms",
        "steps",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["verdict"], "fail");
    let f = &v["failures"][0];
    for k in ["oracle", "at", "host", "detail"] {
        assert!(f.get(k).is_some(), "failure missing {k}");
    }
    assert_eq!(f["oracle"], "missing-final-body");
    assert!(f["at"].as_str().unwrap().ends_with('s'));
}

#[test]
fn the_reference_stack_exits_0() {
    let o = mcpsim(&[
        "run",
        "missing-body",
        "--seed",
        "1",
        "--json",
        "--server",
        "native",
    ]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn a_failing_human_report_shows_trace_and_replay_command() {
    let o = mcpsim(&["run", "missing-body", "--seed", "1"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("missing-final-body"));
    assert!(out.contains("trace around"));
    assert!(out.contains("run missing-body --seed 1 --server python-sdk-1.20"));
}

#[test]
fn trace_file_is_json_lines() {
    let path = std::env::temp_dir().join(format!("mcpsim-trace-{}.jsonl", std::process::id()));
    let o = mcpsim(&[
        "run",
        "missing-body",
        "--seed",
        "1",
        "--trace",
        path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.lines().count() > 10);
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["t"].is_string() && v["host"].is_string() && v["msg"].is_string());
    }
}

#[test]
fn malformed_scenario_exits_2_naming_the_file_and_line() {
    let p = write(
        "broken.toml",
        "name = \"x\"\nduration = \"1s\"\n[[client]\nname = \"c\"\n",
    );
    let o = mcpsim(&["run", &p]);
    assert_eq!(o.status.code(), Some(2));
    let e = one_line_error(&o);
    assert!(e.contains("broken.toml:3:"), "{e}");
}

#[test]
fn invalid_scenario_fields_exit_2_naming_line_and_field() {
    let cases = [
        (
            "unknown-target.toml",
            "name = \"x\"\nduration = \"5s\"\n[[client]]\nname = \"c1\"\nscript = [ { initialize = {} } ]\n[[fault]]\nat = \"1s\"\ncrash = \"c9\"\n",
            ":8: fault[0].crash",
        ),
        (
            "bad-duration.toml",
            "name = \"x\"\nduration = \"five\"\n[[client]]\nname = \"c1\"\nscript = [ { initialize = {} } ]\n",
            ":2: duration",
        ),
        (
            "unknown-field.toml",
            "name = \"x\"\nduration = \"5s\"\nspeed = 3\n[[client]]\nname = \"c1\"\nscript = [ { initialize = {} } ]\n",
            ":3:",
        ),
        (
            "late-fault.toml",
            "name = \"x\"\nduration = \"5s\"\n[[client]]\nname = \"c1\"\nscript = [ { initialize = {} } ]\n[[fault]]\nat = \"9s\"\ncrash = \"c1\"\n",
            ":7: fault[0].at",
        ),
        (
            "sub-ms-tick.toml",
            "name = \"x\"\nduration = \"5s\"\ntick = \"100us\"\n[[client]]\nname = \"c1\"\nscript = [ { initialize = {} } ]\n",
            ":3: tick",
        ),
        (
            "unknown-stack.toml",
            "name = \"x\"\nduration = \"5s\"\n[server]\nstack = \"flask\"\n[[client]]\nname = \"c1\"\nscript = [ { initialize = {} } ]\n",
            ":4: server.stack",
        ),
    ];
    for (name, text, want) in cases {
        let p = write(name, text);
        let o = mcpsim(&["run", &p]);
        assert_eq!(o.status.code(), Some(2), "{name}");
        let e = one_line_error(&o);
        assert!(e.contains(name) && e.contains(want), "{name}: {e}");
    }
}

#[test]
fn bad_flags_and_names_exit_2_on_one_line() {
    for args in [
        vec!["run", "missing-body", "--seed", "minus-one"],
        vec!["run", "missing-body", "--server", "flask"],
        vec!["run", "no-such-scenario"],
        vec!["run", "missing-body", "--frobnicate"],
        vec!["walk"],
    ] {
        let o = mcpsim(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        one_line_error(&o);
    }
}

#[test]
fn list_shows_scenarios_stacks_and_oracles() {
    let o = mcpsim(&["list"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    for want in [
        "missing-body",
        "slow-tool-disconnect",
        "seed-repro",
        "python-sdk-1.20+fixed",
        "missing-final-body",
        "lost-response",
    ] {
        assert!(out.contains(want), "{want}");
    }
}

#[test]
fn hostile_input_is_one_bounded_line_and_huge_ranges_stream() {
    // D8: a 1 MB value is not echoed whole.
    let big = write(
        "big.toml",
        &format!(
            "name = \"big\"\nduration = \"{}\"\n[[client]]\nname = \"c1\"\nscript = [{{ initialize = {{}} }}]\n",
            "9".repeat(1_000_000)
        ),
    );
    let o = mcpsim(&["run", &big]);
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line_error(&o).len() < 1000);
    let o = mcpsim(&["run", "missing-body", "--seed", &"7".repeat(100_000)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line_error(&o).len() < 1000);
    // D7: a time scale past the format's own limits is bad input.
    let o = mcpsim(&["run", "missing-body", "--time-scale", "1000"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line_error(&o).contains("--time-scale"));
    // D3: a sweep sizes itself by its seeds, not its range; threads by both.
    let o = mcpsim(&[
        "sweep",
        "missing-body",
        "--seeds",
        "0..1000000000000",
        "--shard",
        "7/1000000000000",
        "--server",
        "native",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["seed"], 7);
    let o = mcpsim(&[
        "sweep",
        "missing-body",
        "--seeds",
        "0..2",
        "--jobs",
        "1000000",
        "--server",
        "native",
    ]);
    assert_eq!(o.status.code(), Some(0));
}
