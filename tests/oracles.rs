//! Oracles judge only what is settled: an answer still on the wire when the
//! run ends is not a lost response.

mod common;

use common::run;

fn cut_short(duration: &str) -> mcpsim::sim::Outcome {
    let text = format!(
        r#"
name = "cut-short"
duration = "{duration}"
[[client]]
name = "c1"
script = [ {{ initialize = {{}} }}, {{ call = "slow_operation", args = {{ seconds = 1 }} }} ]
[network]
latency = {{ min = "20ms", max = "20ms" }}
"#
    );
    run(&text, 1, "python-sdk-1.20")
}

#[test]
fn an_answer_still_on_the_wire_at_the_end_is_not_lost() {
    // The tool answers about 1.06 s in; the answer needs 20 ms to arrive.
    let full = cut_short("2s");
    let answered = full
        .observations
        .requests
        .iter()
        .find(|r| r.what == "tools/call slow_operation")
        .unwrap();
    let at = answered
        .response
        .as_ref()
        .expect("answered with time to spare")
        .at;
    for end in [
        at - std::time::Duration::from_millis(5),
        at - std::time::Duration::from_millis(15),
    ] {
        let o = cut_short(&mcpsim::time::fmt_duration(end));
        assert!(o.passed(), "ended at {end:?}: {:?}", o.failures);
    }
}

#[test]
fn a_request_still_on_the_wire_at_the_end_is_not_lost() {
    let o = cut_short("0.050s");
    assert!(o.passed(), "{:?}", o.failures);
}
