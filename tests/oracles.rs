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

/// A request's record holds the session id it carried on the wire. The id
/// goes on the request after the connect; in swarm seed 9494 on
/// python-sdk-2.3, c2 starts a new session after a 404 while its resume GET is
/// connecting, and the GET goes out with the new id. The record used to keep
/// the id of the moment the exchange began, and `stale-session` reported a
/// 200 for an old session the server never saw on that request.
#[test]
fn a_record_holds_the_session_its_request_carried() {
    let o = common::run_named("swarm", 9494, "python-sdk-2.3");
    let c2: Vec<_> = o
        .observations
        .requests
        .iter()
        .filter(|r| r.client == "c2")
        .collect();
    let resume = c2
        .iter()
        .find(|r| r.what == "resume GET stream" && r.status == Some(200))
        .expect("c2 resumes its GET stream");
    let reinit = c2
        .iter()
        .filter(|r| r.what == "initialize" && r.session_issued.is_some())
        // Begun before the GET, done no earlier than the tick the GET began
        // in: the race.
        .find(|r| r.sent_at < resume.sent_at && r.ended_at >= Some(resume.sent_at))
        .expect("seed 9494 no longer starts a session while the resume GET connects: find another seed with the race");
    assert_eq!(
        resume.session, reinit.session_issued,
        "the record must hold the id that went out: the new session"
    );
    assert!(
        !common::oracles(&o).contains(&"stale-session"),
        "no stale session was sent"
    );
}
