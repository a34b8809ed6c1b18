//! Every fault kind changes what the client or the server observes, each in a
//! test of its own: the same scenario is run without the fault and with it,
//! and the observable difference is asserted.

mod common;

use common::{request, requests, run};
use mcpsim::client::BodyEnd;

const STACK: &str = "python-sdk-1.20";

/// initialize, then a 2 s tool call, then a quick call; fixed 5 ms links.
fn scenario(faults: &str) -> String {
    format!(
        r#"
name = "fault-test"
duration = "8s"
[[client]]
name = "c1"
script = [
  {{ initialize = {{}} }},
  {{ notify = "notifications/initialized" }},
  {{ call = "slow_operation", args = {{ seconds = 2 }} }},
  {{ call = "get_greeting", args = {{ name = "x" }} }},
]
[network]
latency = {{ min = "5ms", max = "5ms" }}
{faults}
"#
    )
}

/// The scenario with these faults, seed 1, on the released stack.
fn with_faults(faults: &str) -> mcpsim::sim::Outcome {
    run(&scenario(faults), 1, STACK)
}

const SLOW: &str = "tools/call slow_operation";
const QUICK: &str = "tools/call get_greeting";

#[test]
fn baseline_answers_everything() {
    let o = with_faults("");
    assert!(o.passed(), "{:?}", o.failures);
    assert!(request(&o, "c1", SLOW).response.is_some());
    assert!(request(&o, "c1", QUICK).response.is_some());
}

#[test]
fn crash_of_a_client_leaves_its_call_unfinished_and_the_server_sees_a_disconnect() {
    let o = with_faults("[[fault]]\nat = \"1s\"\ncrash = \"c1\"");
    let slow = request(&o, "c1", SLOW);
    assert!(slow.end.is_none() && slow.response.is_none());
    assert!(requests(&o, "c1", QUICK).is_empty());
    let call = o
        .observations
        .asgi
        .iter()
        .find(|r| r.rpc.as_deref() == Some(SLOW))
        .unwrap();
    assert!(call.returned.as_ref().unwrap().host_saw_disconnect);
}

#[test]
fn crash_of_the_server_cuts_the_stream_and_nothing_answers_afterwards() {
    let o = with_faults("[[fault]]\nat = \"1s\"\ncrash = \"server\"");
    let slow = request(&o, "c1", SLOW);
    assert!(
        matches!(slow.end, Some(BodyEnd::Truncated(_))),
        "{:?}",
        slow.end
    );
    assert!(request(&o, "c1", QUICK).response.is_none());
    // A crash explains the cut: no truncated-response failure.
    assert!(o.failures.iter().all(|f| f.oracle != "truncated-response"));
}

#[test]
fn restart_of_the_server_forgets_the_session() {
    let o = with_faults("[[fault]]\nat = \"1s\"\nrestart = \"server\"");
    let quick = request(&o, "c1", QUICK);
    assert_eq!(quick.status, Some(400));
    let summary = &quick.response.as_ref().unwrap().summary;
    assert!(
        summary.contains("No valid session ID provided"),
        "{summary}"
    );
    assert!(o.observations.asgi.iter().any(|r| r.incarnation == 1));
}

#[test]
fn restart_of_a_client_runs_its_script_again_with_a_new_session() {
    let o = with_faults("[[fault]]\nat = \"1s\"\ncrash = \"c1\"\nfor = \"1s\"");
    let inits = requests(&o, "c1", "initialize");
    assert_eq!(inits.len(), 2);
    assert_eq!((inits[0].incarnation, inits[1].incarnation), (0, 1));
    let quick = request(&o, "c1", QUICK);
    assert_eq!(quick.incarnation, 1);
    assert!(quick.response.is_some());
}

#[test]
fn partition_across_the_response_loses_it_and_repair_does_not_bring_it_back() {
    let o = with_faults("[[fault]]\nat = \"1s\"\npartition = \"c1\"\nfor = \"2s\"");
    let slow = request(&o, "c1", SLOW);
    assert!(slow.end.is_none() && slow.response.is_none());
    assert!(o.observations.end.cut_links.is_empty());
    // The connection died with the partition, and neither side can know:
    // the network lost this answer, not the server.
    assert!(
        !o.failures
            .iter()
            .any(|f| f.oracle == "lost-response" || f.oracle == "hang")
    );
}

/// Partitioned (and maybe repaired) while idle: does a later connection work?
fn idle_partition(faults: &str) -> mcpsim::sim::Outcome {
    let text = format!(
        r#"
name = "idle-partition"
duration = "5s"
[[client]]
name = "c1"
script = [ {{ initialize = {{}} }}, {{ sleep = "2s" }}, {{ call = "get_greeting", args = {{ name = "x" }} }} ]
[network]
latency = {{ min = "5ms", max = "5ms" }}
{faults}
"#
    );
    run(&text, 1, STACK)
}

#[test]
fn partition_refuses_new_connections_until_repair() {
    let cut = idle_partition("[[fault]]\nat = \"1s\"\npartition = \"c1\"");
    let quick = request(&cut, "c1", QUICK);
    assert!(
        matches!(&quick.end, Some(BodyEnd::Failed(e)) if e.contains("connect")),
        "{:?}",
        quick.end
    );
    let healed = idle_partition(
        "[[fault]]\nat = \"1s\"\npartition = \"c1\"\n[[fault]]\nat = \"1.5s\"\nrepair = \"c1\"",
    );
    assert!(request(&healed, "c1", QUICK).response.is_some());
}

#[test]
fn one_way_partition_loses_the_response_while_the_server_completes_it() {
    let o = with_faults(
        "[[fault]]\nat = \"1s\"\npartition_oneway = [\"server\", \"c1\"]\nfor = \"2s\"",
    );
    assert!(request(&o, "c1", SLOW).response.is_none());
    let call = o
        .observations
        .asgi
        .iter()
        .find(|r| r.rpc.as_deref() == Some(SLOW))
        .unwrap();
    assert!(
        call.final_body_at.is_some(),
        "the server finished its response"
    );
    let healed = idle_partition(
        "[[fault]]\nat = \"1s\"\npartition_oneway = [\"server\", \"c1\"]\n[[fault]]\nat = \"1.5s\"\nrepair_oneway = [\"server\", \"c1\"]",
    );
    assert!(request(&healed, "c1", QUICK).response.is_some());
}

#[test]
fn hold_delays_the_response_until_release() {
    let base = with_faults("");
    let held = with_faults("[[fault]]\nat = \"1s\"\nhold = \"c1\"\nfor = \"1.5s\"");
    let t0 = request(&base, "c1", SLOW).response.as_ref().unwrap().at;
    let t1 = request(&held, "c1", SLOW).response.as_ref().unwrap().at;
    assert!(
        t1 >= std::time::Duration::from_millis(2500) && t1 > t0,
        "{t0:?} -> {t1:?}"
    );
    let never = with_faults("[[fault]]\nat = \"1s\"\nhold = \"c1\"");
    assert!(request(&never, "c1", SLOW).response.is_none());
}

#[test]
fn abandon_closes_the_clients_stream_and_the_server_sees_a_disconnect() {
    let o = with_faults("[[fault]]\nat = \"1s\"\nabandon = \"c1\"");
    assert_eq!(request(&o, "c1", SLOW).end, Some(BodyEnd::Abandoned));
    // The client goes on with its script.
    assert!(request(&o, "c1", QUICK).response.is_some());
    let call = o
        .observations
        .asgi
        .iter()
        .find(|r| r.rpc.as_deref() == Some(SLOW))
        .unwrap();
    assert!(call.disconnect_received_at.is_some());
}

#[test]
fn shutdown_lets_the_call_finish_then_refuses_new_connections() {
    let o = with_faults("[[fault]]\nat = \"1s\"\nshutdown = \"server\"");
    assert!(request(&o, "c1", SLOW).response.is_some());
    assert!(
        matches!(&request(&o, "c1", QUICK).end, Some(BodyEnd::Failed(e)) if e.contains("connect"))
    );
    assert!(common::traced(&o, "Shutting down"));
    assert!(!o.observations.end.server_running);
}

#[test]
fn shutdown_with_restart_serves_again_with_a_new_process() {
    let text = r#"
name = "shutdown-restart"
duration = "8s"
[[client]]
name = "c1"
script = [ { initialize = {} }, { sleep = "3s" }, { call = "get_greeting", args = { name = "x" } } ]
[network]
latency = { min = "5ms", max = "5ms" }
[[fault]]
at = "1s"
shutdown = "server"
restart_after = "1s"
"#;
    let o = run(text, 1, STACK);
    let quick = request(&o, "c1", QUICK);
    assert_eq!(
        quick.status,
        Some(400),
        "the new process does not know the old session"
    );
    assert!(o.observations.asgi.iter().any(|r| r.incarnation == 1));
}

/// A busy host stretches the server's own time: a quick call takes forty
/// times longer, and the load ends when its `for` does.
#[test]
fn slow_multiplies_the_servers_processing_time_until_it_ends() {
    let quick_server_time = |o: &mcpsim::sim::Outcome| {
        let call = o
            .observations
            .asgi
            .iter()
            .find(|r| r.rpc.as_deref() == Some(QUICK))
            .expect("the quick call");
        call.final_body_at.expect("answered") - call.called_at
    };
    let idle = with_faults("");
    let busy = with_faults("[[fault]]\nat = \"0s\"\nslow = \"server\"\nfactor = 40\nfor = \"7s\"");
    let over = with_faults("[[fault]]\nat = \"0s\"\nslow = \"server\"\nfactor = 40\nfor = \"1s\"");
    let (a, b, c) = (
        quick_server_time(&idle),
        quick_server_time(&busy),
        quick_server_time(&over),
    );
    // A few milliseconds idle, forty times that busy, back to idle after.
    assert!(a < std::time::Duration::from_millis(10), "idle {a:?}");
    assert!(b >= a * 15, "busy {b:?} against idle {a:?}");
    assert!(
        c < std::time::Duration::from_millis(10),
        "after the load {c:?}"
    );
    assert!(request(&busy, "c1", QUICK).response.is_some());
    assert!(busy.notes.is_empty(), "{:?}", busy.notes);
}

/// A stack with no cost model, or a scenario that switched it off, has
/// nothing to slow: the run says so instead of passing in silence.
#[test]
fn slow_on_a_stack_without_processing_time_is_noted() {
    let fault = "[[fault]]\nat = \"0s\"\nslow = \"server\"\nfactor = 40\nfor = \"1s\"";
    let o = run(&scenario(fault), 1, "native");
    assert!(
        o.notes
            .iter()
            .any(|n| n.contains("native models no processing time")),
        "{:?}",
        o.notes
    );
    let zero = scenario(fault).replace(
        "duration = \"8s\"",
        "duration = \"8s\"\n[server]\ncost = \"zero\"",
    );
    let o = run(&zero, 1, STACK);
    assert!(
        o.notes.iter().any(|n| n.contains("cost is \"zero\"")),
        "{:?}",
        o.notes
    );
}
