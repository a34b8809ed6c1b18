//! The headline: python-sdk #1437 reproduced by structure, and the variants'
//! verdicts.

mod common;

use common::{oracles, request, run_named};

#[test]
fn missing_body_fails_on_the_released_stack_at_the_sse_starlette_uvicorn_layer() {
    let o = run_named("missing-body", 1, "python-sdk-1.20");
    assert!(!o.passed());
    let f = o
        .failures
        .iter()
        .find(|f| f.oracle == "missing-final-body")
        .expect("a missing-final-body failure");
    assert!(
        f.signature.contains("sse-starlette/uvicorn"),
        "{}",
        f.signature
    );
    assert!(
        f.signature.contains("tools/call slow_operation"),
        "{}",
        f.signature
    );
    assert!(f.signature.ends_with("after-disconnect"), "{}", f.signature);
    assert_eq!(f.host, "server");
    // The reporter's log lines come out of the model's structure.
    for line in [
        "Got event: http.disconnect. Stop streaming.",
        "Closing SSE writer",
        "Request stream 1 not found for message. Still processing message as the client might reconnect and replay.",
    ] {
        assert!(common::traced(&o, line), "missing log line: {line}");
    }
    // ...and uvicorn, having seen the disconnect, says nothing.
    assert!(!common::traced(
        &o,
        "ASGI callable returned without completing response."
    ));
}

#[test]
fn the_fix_closes_the_gap_and_native_passes_outright() {
    // What +fixed leaves is 1.20's session leak (the crashed client's session
    // is never reaped), which the fix does not touch.
    let o = run_named("missing-body", 1, "python-sdk-1.20+fixed");
    assert_eq!(oracles(&o), vec!["leak"], "{:?}", o.failures);
    let n = run_named("missing-body", 1, "native");
    assert!(n.passed(), "{:?}", n.failures);
    let call = o
        .observations
        .asgi
        .iter()
        .find(|r| r.rpc.as_deref() == Some("tools/call slow_operation"))
        .unwrap();
    assert!(call.final_body_at.is_some());
}

#[test]
fn the_seed_fix_does_not_close_the_gap_and_skips_its_own_cleanup() {
    let o = run_named("missing-body", 1, "python-sdk-1.20+seed-fix");
    assert_eq!(oracles(&o), vec!["missing-final-body", "leak"]);
    // The finally's send raises Cancelled before the log line and the cleanup:
    // only initialize's writer (which sent its event) logs it.
    let closing = |o: &mcpsim::sim::Outcome| {
        o.trace
            .iter()
            .filter(|l| l.msg == "Closing SSE writer")
            .count()
    };
    assert_eq!(closing(&run_named("missing-body", 1, "python-sdk-1.20")), 2);
    assert_eq!(closing(&o), 1);
    assert!(!common::traced(&o, "not found for message"));
    assert!(!common::traced(&o, "event: close"));
}

#[test]
fn the_slow_call_is_not_cancelled_by_the_disconnect() {
    // Disconnection is not cancellation, in 1.20 and with the fix alike: the
    // tool runs to its end and its response is dropped.
    for stack in ["python-sdk-1.20", "python-sdk-1.20+fixed"] {
        let o = run_named("missing-body", 1, stack);
        assert!(common::traced(&o, "slow_operation finished"), "{stack}");
        assert!(
            request(&o, "c1", "tools/call slow_operation")
                .response
                .is_none()
        );
    }
}
