//! Bisect end to end: shrinking reaches a 1-minimal schedule that keeps the
//! signature, and each window's edges are exact to the tick.

use std::time::Duration;

use mcpsim::explore::bisect::bisect;
use mcpsim::scenario::{self, When};
use mcpsim::sim;

const STACK: &str = "python-sdk-1.20";

/// The headline crash among decoy faults and a decoy client.
const TEXT: &str = r#"
name = "bisect-test"
duration = "6s"
[[client]]
name = "c1"
script = [ { initialize = {} }, { notify = "notifications/initialized" }, { call = "slow_operation", args = { seconds = 2 } } ]
[[client]]
name = "c2"
script = [ { initialize = {} }, { call = "get_greeting" }, { sleep = "1s" }, { call = "get_greeting" } ]
[network]
latency = { min = "5ms", max = "5ms" }
[[fault]]
at = "0.5s"
hold = "c2"
for = "100ms"
[[fault]]
at = "1s"
crash = "c1"
[[fault]]
at = "1.5s"
abandon = "c2"
[[fault]]
at = "3s"
partition = "c2"
for = "200ms"
"#;

fn fails(sc: &scenario::Scenario, signature: &str) -> bool {
    sim::run(sc, 0, STACK)
        .unwrap()
        .failures
        .iter()
        .any(|f| f.signature == signature)
}

#[test]
fn shrinks_to_a_one_minimal_exact_schedule_with_exact_windows() {
    let sc = scenario::parse(TEXT, "bisect-test.toml").unwrap();
    let stack = mcpsim::servers::stack(STACK).unwrap();
    let report = bisect(&sc, 0, &stack, None, &mut |_| {}).unwrap();
    assert!(
        report.signature.starts_with("missing-final-body"),
        "{}",
        report.signature
    );
    let m = &report.minimal;
    assert!(m.is_exact());
    assert_eq!(m.faults.len(), 1, "{:?}", m.faults);
    assert_eq!(m.faults[0].kind.to_string(), "crash c1");
    assert_eq!(m.clients.len(), 1, "the decoy client is gone");
    assert!(fails(m, &report.signature));

    // 1-minimal: removing any remaining fault or step makes it pass.
    for i in 0..m.faults.len() {
        let mut less = m.clone();
        less.faults.remove(i);
        assert!(!fails(&less, &report.signature), "fault {i} is removable");
    }
    for j in 0..m.clients[0].steps.len() {
        let mut less = m.clone();
        less.clients[0].steps.remove(j);
        if !less.clients[0].steps.is_empty() {
            assert!(!fails(&less, &report.signature), "step {j} is removable");
        }
    }

    // The window: its edges fail, one tick beyond them passes.
    let w = &report.windows[0];
    assert_eq!(w.at, Duration::from_secs(1));
    assert!(w.earliest < w.at && w.at < w.latest);
    let at = |t: Duration| {
        let mut s = m.clone();
        s.faults[0].when = When::At(t);
        fails(&s, &report.signature)
    };
    let tick = m.tick;
    assert!(at(w.earliest) && at(w.latest));
    assert!(!at(w.earliest - tick) && !at(w.latest + tick));
    // The 2 s of the call, to the tick (whether the tick in which the tool
    // finishes counts depends on the order of events inside that tick), and
    // the few milliseconds the Python stack then takes to send the answer
    // (its timer's lateness and the steps after it: the cost model's).
    let width = w.latest - w.earliest;
    assert!(
        width + tick >= Duration::from_secs(2) && width <= Duration::from_millis(2010),
        "width {width:?}"
    );

    // The written file replays the failure and records where it is absent.
    let text = report.file_text();
    let back = scenario::parse(&text, "written.toml").unwrap();
    assert!(fails(&back, &report.signature));
    let reg = back.regression.unwrap();
    // 2.3 as released and with the seed's change fail the same way; the fix
    // closes it on both releases; rmcp, judged by the oracle's HTTP form,
    // does not have it. native cannot be judged by missing-final-body (it
    // keeps no records of either kind), so it is not listed.
    assert_eq!(
        reg.fixed_on,
        vec![
            "python-sdk-2.3+fixed".to_string(),
            "python-sdk-1.20+fixed".to_string(),
            "rmcp-3.11".to_string(),
        ]
    );
}

#[test]
fn a_passing_seed_cannot_be_bisected() {
    let sc = scenario::load("missing-body").unwrap();
    let native = mcpsim::servers::stack("native").unwrap();
    let err = bisect(&sc, 1, &native, None, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("nothing to bisect"), "{err}");
}
