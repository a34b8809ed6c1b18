//! `mcpsim drive` against real servers on loopback — here mcpsim's own
//! `serve`, started and owned by drive through `--server-cmd`: the scenario's
//! clients run through the fault proxy, client-side oracles judge them, the
//! server's faults become signals, and what cannot be observed or applied is
//! said, never passed over.

use std::process::{Command, Output};

use serde_json::Value;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn mcpsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcpsim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run mcpsim")
}

/// `drive SCENARIO --seed N --json` against `serve --server STACK`, owned by
/// drive; with `observe`, serve exposes its observations and drive reads them.
fn drive_owned(scenario: &str, seed: u64, stack: &str, observe: bool) -> (i32, Value) {
    let port = free_port();
    let obs_port = free_port();
    let mut cmd = format!(
        "{} serve --server {stack} --listen 127.0.0.1:{port} --log warn",
        env!("CARGO_BIN_EXE_mcpsim")
    );
    let seed = seed.to_string();
    let target = format!("http://127.0.0.1:{port}/mcp");
    let observe_url = format!("http://127.0.0.1:{obs_port}/");
    let mut args = vec!["drive", scenario, "--seed", &seed, "--target", &target];
    if observe {
        cmd.push_str(&format!(" --observe 127.0.0.1:{obs_port}"));
        args.extend(["--observe", observe_url.as_str()]);
    }
    args.extend(["--server-cmd", cmd.as_str(), "--json"]);
    let out = mcpsim(&args);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

fn oracles(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["oracle"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_python_model_over_real_tcp_loses_progress_as_in_simulation() {
    // progress seed 0: a partition while the call reports progress; FastMCP
    // 1.20 sends progress on the GET stream, which this client never opened.
    let (code, v) = drive_owned("progress", 0, "python-sdk-1.20", false);
    assert_eq!(code, 1, "{v}");
    assert_eq!(oracles(&v, "failures"), ["lost-notification"], "{v}");
    // serve exposes no observations: the server side is not judged, and says so.
    let not_judged = oracles(&v, "not_judged");
    for o in [
        "missing-final-body",
        "protocol-violation",
        "server-error-log",
        "leak",
    ] {
        assert!(not_judged.contains(&o.to_string()), "{o} in {v}");
    }
    assert_eq!(v["complete"], true);
}

#[test]
fn the_model_driven_over_real_tcp_fails_as_it_does_in_simulation() {
    // The python-sdk model served on a real port, observed whole, under the
    // missing-body schedule: the same failures, with the same signatures, as
    // the simulated run of the same seed.
    let (code, real) = drive_owned("missing-body", 1, "python-sdk-1.20", true);
    assert_eq!(code, 1, "{real}");
    assert_eq!(real["not_judged"].as_array().unwrap().len(), 0, "{real}");
    let sim = mcpsim(&["run", "missing-body", "--seed", "1", "--json"]);
    let sim: Value = serde_json::from_slice(&sim.stdout).unwrap();
    let signatures = |v: &Value| -> Vec<String> {
        let mut s: Vec<String> = v["failures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["signature"].as_str().unwrap().to_string())
            .collect();
        s.sort();
        s
    };
    assert_eq!(signatures(&real), signatures(&sim), "{real}");
    assert!(
        signatures(&sim)
            .iter()
            .any(|s| s.starts_with("missing-final-body")),
        "{sim}"
    );
}

#[test]
fn a_session_the_server_will_reap_is_no_leak_over_real_tcp_either() {
    // The observation contract's expiry: the 2.3 model reports when each
    // session's idle timeout falls (`expires_at`), and drive's `leak` judges
    // it as the simulator does — the crashed client's session will be reaped,
    // so only #1437 remains; 1.20 reports none, and the session leaks.
    let (code, v23) = drive_owned("missing-body", 1, "python-sdk-2.3", true);
    assert_eq!(code, 1, "{v23}");
    assert_eq!(oracles(&v23, "failures"), ["missing-final-body"], "{v23}");
    let (_, v120) = drive_owned("missing-body", 1, "python-sdk-1.20", true);
    assert!(
        oracles(&v120, "failures").contains(&"leak".to_string()),
        "{v120}"
    );
}

#[test]
fn native_passes_the_missing_body_schedule() {
    let (code, v) = drive_owned("missing-body", 1, "native", false);
    assert_eq!(code, 0, "{v}");
    let faults: Vec<&str> = v["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fault"].as_str().unwrap())
        .collect();
    assert_eq!(faults, ["crash c1"]);
    // The crashed client's call never ended; initialize was answered.
    let requests = v["requests"].as_array().unwrap();
    assert_eq!(requests[0]["status"], 200);
    assert!(requests[2]["end"].is_null(), "{}", requests[2]);
}

#[test]
fn a_server_drive_owns_is_shut_down_on_schedule() {
    let (_, v) = drive_owned("shutdown-during-call", 0, "native", false);
    assert_eq!(v["complete"], true, "{v}");
    assert!(
        v["faults"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["fault"] == "shutdown server"),
        "{v}"
    );
}

#[test]
fn a_server_fault_against_a_server_drive_does_not_own_is_skipped_and_said() {
    // Nothing is started: the server is someone else's.
    let port = free_port();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_mcpsim"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log",
            "warn",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let target = format!("http://127.0.0.1:{port}/mcp");
    let mut listening = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            listening = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(listening);
    let out = mcpsim(&[
        "drive",
        "shutdown-during-call",
        "--target",
        &target,
        "--json",
    ]);
    let _ = serve.kill();
    let _ = serve.wait();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["complete"], false, "{v}");
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped[0]["fault"], "shutdown server");
    assert!(
        skipped[0]["why"].as_str().unwrap().contains("--server-cmd"),
        "{v}"
    );
}

#[test]
fn bad_drive_input_is_one_line_and_exit_2() {
    let port = free_port();
    let target = format!("http://127.0.0.1:{port}/mcp");
    for (args, field) in [
        (
            vec!["drive", "missing-body", "--target", "ftp://x/mcp"],
            "--target",
        ),
        (
            vec![
                "drive",
                "missing-body",
                "--target",
                &target,
                "--time-scale",
                "0",
            ],
            "--time-scale",
        ),
        // Nothing listens there.
        (
            vec!["drive", "missing-body", "--target", &target],
            "--target",
        ),
        (
            vec![
                "drive",
                "missing-body",
                "--target",
                &target,
                "--log",
                "loud",
            ],
            "--log",
        ),
    ] {
        let out = mcpsim(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(field), "{args:?}: {err}");
    }
}
