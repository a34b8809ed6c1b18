//! The seed repro's attempts, in the simulator.

mod common;

use common::run_named;

#[test]
fn session_less_requests_get_400_and_never_reach_the_tool() {
    for seed in 0..5 {
        let o = run_named("seed-repro", seed, "python-sdk-1.20");
        let session_less: Vec<_> = o
            .observations
            .requests
            .iter()
            .filter(|r| !r.sent_session && r.what != "initialize" && r.status.is_some())
            .collect();
        assert!(
            session_less
                .iter()
                .any(|r| r.what == "tools/call slow_operation")
                && session_less.iter().any(|r| r.what == "tools/list"),
            "seed {seed}: both kinds reached the server"
        );
        for r in &session_less {
            assert_eq!(
                r.status,
                Some(400),
                "seed {seed}: {} of {}",
                r.what,
                r.client
            );
            let summary = &r.response.as_ref().expect("an answer").summary;
            assert!(summary.contains("Missing session ID"), "{summary}");
        }
        assert!(
            !common::traced(&o, "slow_operation started"),
            "seed {seed}: the tool ran"
        );
    }
}

#[test]
fn closing_initialize_after_its_headers_never_leaves_a_response_open() {
    for seed in 0..5 {
        let o = run_named("seed-repro", seed, "python-sdk-1.20");
        let inits: Vec<_> = o
            .observations
            .asgi
            .iter()
            .filter(|r| r.rpc.as_deref() == Some("initialize"))
            .collect();
        assert_eq!(inits.len(), 4, "seed {seed}");
        for r in inits {
            // Start and final body in the same virtual instant: no window.
            let start = r.start.as_ref().unwrap().at;
            assert_eq!(r.final_body_at, Some(start), "seed {seed}");
        }
        assert!(o.failures.iter().all(|f| f.oracle != "missing-final-body"));
    }
}
