//! python-sdk 2.3: what the current release changes, seen in runs. Each test
//! names the Python it follows (src/servers/python_sdk/release.rs lists them
//! all) and checks the same run on 1.20, so that a difference that vanished
//! from the model would fail here.

mod common;

use common::{oracles, request, requests, run_named, traced};

const V23: &str = "python-sdk-2.3";
const V120: &str = "python-sdk-1.20";

#[test]
fn issue_1437_is_still_there_and_the_fix_still_closes_it() {
    let o = run_named("missing-body", 1, V23);
    let f = o
        .failures
        .iter()
        .find(|f| f.oracle == "missing-final-body")
        .expect("#1437 on 2.3");
    assert_eq!(
        f.signature,
        "missing-final-body @ sse-starlette/uvicorn · tools/call slow_operation · after-disconnect"
    );
    for line in [
        "Got event: http.disconnect. Stop streaming.",
        "Closing SSE writer",
        "Request stream 1 not found for message. Still processing message as the client might reconnect and replay.",
    ] {
        assert!(traced(&o, line), "missing log line: {line}");
    }
    // The crashed client's session is no leak on 2.3: the idle timeout
    // (30 min by default) will reap it, and the probe says when.
    assert!(!oracles(&o).contains(&"leak"), "{:?}", o.failures);
    let fixed = run_named("missing-body", 1, "python-sdk-2.3+fixed");
    assert!(fixed.passed(), "{:?}", fixed.failures);
    let call = fixed
        .observations
        .asgi
        .iter()
        .find(|r| r.rpc.as_deref() == Some("tools/call slow_operation"))
        .expect("the call's record");
    assert!(call.final_body_at.is_some());
    // The seed's change does not help on 2.3 either.
    let seed = run_named("missing-body", 1, "python-sdk-2.3+seed-fix");
    assert!(oracles(&seed).contains(&"missing-final-body"));
}

#[test]
fn the_shutdown_watcher_cuts_a_streaming_call_at_its_next_poll() {
    // sse-starlette 3.7's _shutdown_watcher polls every 0.5 s from the first
    // SSE response on; 3.0.3 let a streaming response run through shutdown.
    let o = run_named("shutdown-during-call", 0, V23);
    let f = o
        .failures
        .iter()
        .find(|f| f.oracle == "missing-final-body")
        .expect("the cut call");
    assert!(f.signature.ends_with("client-connected"), "{}", f.signature);
    assert!(traced(
        &o,
        "ASGI callable returned without completing response."
    ));
    let first_sse = o
        .observations
        .asgi
        .iter()
        .filter_map(|r| r.start.as_ref())
        .filter(|s| {
            s.content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("text/event-stream"))
        })
        .map(|s| s.at)
        .min()
        .expect("an SSE response");
    let call = o
        .observations
        .asgi
        .iter()
        .find(|r| r.rpc.as_deref() == Some("tools/call slow_operation"))
        .expect("the call");
    let returned = call.returned.as_ref().expect("returned").at;
    // At a poll of the 0.5 s watcher: each poll's timer fires up to 1.4 ms
    // late (the cost model's timer lateness), and the cut takes a step.
    let since = (returned - first_sse).as_millis();
    assert!(
        since >= 500 && since % 500 < 10,
        "cut {since} ms after the watcher started"
    );
    assert!(returned >= std::time::Duration::from_secs(1));
    // 1.20 lets the call finish.
    assert!(run_named("shutdown-during-call", 0, V120).passed());
    // With the fix the response ends cleanly (the answer is lost, but the
    // server is gone for good, so no oracle blames it).
    assert!(run_named("shutdown-during-call", 0, "python-sdk-2.3+fixed").passed());
}

#[test]
fn sessions_idle_out_and_unknown_ones_get_404() {
    let o = run_named("idle-session", 0, V23);
    assert!(o.passed(), "{:?}", o.failures);
    assert!(traced(&o, "idle timeout"));
    assert!(traced(
        &o,
        "Rejected request with unknown or expired session ID"
    ));
    assert!(
        requests(&o, "c1", "tools/call get_greeting")
            .iter()
            .any(|r| r.status == Some(404))
    );
    // 1.20 never reaps: the vanished client's session leaks.
    assert!(oracles(&run_named("idle-session", 0, V120)).contains(&"leak"));
    // After a restart 2.3 answers the old session 404 (1.20: 400).
    let r = run_named("restart-mid-call", 0, V23);
    assert!(!oracles(&r).contains(&"stale-session"), "{:?}", r.failures);
    assert!(oracles(&run_named("restart-mid-call", 0, V120)).contains(&"stale-session"));
}

#[test]
fn delete_and_stateless_teardown_log_no_error() {
    for sc in ["delete-session", "stateless"] {
        let old = run_named(sc, 0, V120);
        let new = run_named(sc, 0, V23);
        assert!(traced(&old, "Error in message router"), "{sc} on 1.20");
        assert!(!traced(&new, "Error in message router"), "{sc} on 2.3");
        assert!(
            !new.trace
                .iter()
                .any(|l| l.level == "ERROR" && l.target.starts_with("mcp.")),
            "{sc}: {:?}",
            new.trace
                .iter()
                .filter(|l| l.level == "ERROR")
                .collect::<Vec<_>>()
        );
    }
    // A DELETEd session leaves the manager's table at once.
    let o = run_named("delete-session", 0, V23);
    assert!(!oracles(&o).contains(&"leak"), "{:?}", o.failures);
}

#[test]
fn progress_rides_the_requests_own_stream() {
    // FastMCP 1.20 sends progress without related_request_id (to the GET
    // stream, which this client never opens); 2.3 relates it to the request.
    let old = run_named("progress", 0, V120);
    let new = run_named("progress", 0, V23);
    assert!(oracles(&old).contains(&"lost-notification"));
    assert!(!oracles(&new).contains(&"lost-notification"));
    let call = request(&new, "c1", "tools/call progress_operation");
    let progress = call
        .events
        .iter()
        .filter(|e| e.kind == "notifications/progress")
        .count();
    assert_eq!(progress, 4, "{:?}", call.events);
    // Written as given (1, not 1.0).
    assert!(
        call.events
            .iter()
            .any(|e| e.data.contains("\"progress\":1,")),
        "{:?}",
        call.events
    );
}

#[test]
fn a_primed_stream_can_be_resumed_but_the_replay_never_ends() {
    let o = run_named("resume-after-break", 0, V23);
    let call = request(&o, "c1", "tools/call slow_operation");
    // The priming event (an id and empty data) is the stream's first event.
    let first = call.events.first().expect("a priming event");
    assert!(
        first.id.is_some() && first.data.is_empty(),
        "{:?}",
        call.events
    );
    assert!(
        !requests(&o, "c1", "resume tools/call slow_operation").is_empty(),
        "c1 resumes"
    );
    assert!(
        call.response.as_ref().is_some_and(|a| a.via_resume),
        "the answer arrives through the resumption: {:?}",
        call.response
    );
    let f = o
        .failures
        .iter()
        .find(|f| f.oracle == "missing-final-body")
        .expect("the replay stream ends without its final body");
    assert!(f.signature.contains("GET /mcp"), "{}", f.signature);
    // 1.20 primes nothing: the client has no id and never resumes.
    let old = run_named("resume-after-break", 0, V120);
    assert!(requests(&old, "c1", "resume tools/call slow_operation").is_empty());
}

#[test]
fn loopback_protection_is_on_by_default() {
    // 2.3's streamable_http_app(host="127.0.0.1") turns DNS-rebinding
    // protection on: a foreign Origin gets 403; 1.20 lets it through.
    let text = r#"
name = "foreign-origin"
duration = "2s"
[[client]]
name = "c1"
origin = "http://evil.example"
script = [{ initialize = {} }]
"#;
    let new = common::run(text, 0, V23);
    let old = common::run(text, 0, V120);
    assert_eq!(request(&new, "c1", "initialize").status, Some(403));
    assert_eq!(request(&old, "c1", "initialize").status, Some(200));
    let local = text.replace("http://evil.example", "http://localhost:6274");
    assert_eq!(
        request(&common::run(&local, 0, V23), "c1", "initialize").status,
        Some(200)
    );
}

#[test]
fn the_issues_acceptance_command() {
    // `mcpsim run missing-body --seed 1 --server python-sdk-2.3 --json`: exit 1
    // with missing-final-body; with +fixed, no missing-final-body.
    let run = |stack: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpsim"))
            .args([
                "run",
                "missing-body",
                "--seed",
                "1",
                "--server",
                stack,
                "--json",
            ])
            .output()
            .expect("mcpsim runs");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        let oracles: Vec<String> = v["failures"]
            .as_array()
            .expect("failures")
            .iter()
            .map(|f| f["oracle"].as_str().unwrap_or_default().to_string())
            .collect();
        (out.status.code(), oracles)
    };
    let (code, oracles) = run(V23);
    assert_eq!(code, Some(1));
    assert!(
        oracles.iter().any(|o| o == "missing-final-body"),
        "{oracles:?}"
    );
    let (code, oracles) = run("python-sdk-2.3+fixed");
    assert!(
        !oracles.iter().any(|o| o == "missing-final-body"),
        "{oracles:?}"
    );
    assert_eq!(code, Some(0));
}
