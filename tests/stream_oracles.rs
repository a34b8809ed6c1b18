//! The stream oracles on hand-made observations: what the client saw on its
//! streams is all they read, so a few records show each one firing on the
//! fault it names — and staying quiet on the same records without it. (No
//! catalogue stack produces these failures, so the catalogue cannot show
//! them firing.) The other oracles are left out: these records are not whole
//! runs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use mcpsim::client::{BodyEnd, EventRecord, RequestRecord, ResponseRecord};
use mcpsim::oracles::{self, EndState, Observations};
use mcpsim::servers::Layers;
use serde_json::{Value, json};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn record(
    http: &'static str,
    what: &str,
    rpc_id: Option<i64>,
    resume_of: Option<usize>,
) -> RequestRecord {
    RequestRecord {
        client: "c1".into(),
        incarnation: 0,
        step: 0,
        http,
        what: what.into(),
        rpc_id: rpc_id.map(|i| json!(i)),
        params: None,
        expects_response: rpc_id.is_some() && resume_of.is_none(),
        session: Some("s1".into()),
        sent_session: true,
        progress_token: None,
        resume_of,
        sent_at: ms(10),
        status: Some(200),
        content_type: Some("text/event-stream".into()),
        session_issued: None,
        events: Vec::new(),
        last_event_id: None,
        retry_ms: None,
        response: None,
        end: Some(BodyEnd::Complete),
        ended_at: Some(ms(100)),
    }
}

fn event(id: &str, kind: &str, rpc_id: Option<i64>, data: &str) -> EventRecord {
    EventRecord {
        at: ms(50),
        event: "message".into(),
        id: Some(id.into()),
        kind: kind.into(),
        rpc_id: rpc_id.map(|i| json!(i)),
        progress_token: None,
        data: data.into(),
    }
}

fn answered(mut r: RequestRecord) -> RequestRecord {
    r.response = Some(ResponseRecord {
        at: ms(60),
        is_error: false,
        summary: "ok".into(),
        matches: Some(true),
        via_resume: false,
    });
    r
}

fn judge(requests: Vec<RequestRecord>) -> Vec<&'static str> {
    let obs = Observations {
        layers: Layers {
            http_host: "h".into(),
            sse: "s".into(),
            transport: "t".into(),
        },
        http: Vec::new(),
        asgi: Vec::new(),
        requests,
        trace: Vec::new(),
        open_streams: None,
        sessions: None,
        departures: Vec::new(),
        quiet_until: Duration::ZERO,
        hang_after: Duration::from_secs(10),
        hosts_by_ip: BTreeMap::new(),
        faults: Vec::new(),
        client_hosts: BTreeMap::from([("c1".to_string(), "h1".to_string())]),
        end: EndState {
            at: ms(1000),
            quiescent: true,
            server_running: true,
            server_incarnation: 0,
            server_in_flight: 0,
            server_idle_since: Some(ms(100)),
            settle: ms(20),
            hosts_running: BTreeMap::new(),
            cut_links: BTreeSet::new(),
        },
    };
    // Only the stream oracles: these records are not whole runs, and the
    // others would judge what they leave out.
    let mut fired: Vec<&'static str> = oracles::check_all(&obs)
        .iter()
        .map(|f| f.oracle)
        .filter(|o| STREAM_ORACLES.contains(o))
        .collect();
    fired.dedup();
    fired
}

const STREAM_ORACLES: [&str; 4] = [
    "duplicate-response",
    "misrouted-response",
    "cross-stream-replay",
    "duplicate-event-id",
];

const ANSWER_1: &str = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
const ANSWER_2: &str = r#"{"jsonrpc":"2.0","id":2,"result":{}}"#;

#[test]
fn duplicate_response_counts_answers_across_a_stream_and_its_resumption() {
    let mut call = record("POST", "ping", Some(1), None);
    call.events
        .push(event("1-2", "response", Some(1), ANSWER_1));
    call.end = Some(BodyEnd::Truncated("reset".into()));
    let mut resumed = record("GET", "resume ping", None, Some(0));
    resumed
        .events
        .push(event("1-3", "response", Some(1), ANSWER_1));
    assert_eq!(
        judge(vec![answered(call.clone()), resumed.clone()]),
        vec!["duplicate-response"]
    );
    resumed.events.clear();
    assert!(judge(vec![answered(call), resumed]).is_empty());
}

#[test]
fn misrouted_response_sees_another_requests_answer_and_answers_on_the_get_stream() {
    let mut call = record("POST", "ping", Some(1), None);
    call.events
        .push(event("1-1", "response", Some(2), ANSWER_2));
    assert_eq!(judge(vec![call]), vec!["misrouted-response"]);
    let mut listen = record("GET", "GET stream", None, None);
    listen
        .events
        .push(event("0-1", "response", Some(1), ANSWER_1));
    assert_eq!(judge(vec![listen]), vec!["misrouted-response"]);
    let mut fine = record("POST", "ping", Some(1), None);
    fine.events
        .push(event("1-1", "response", Some(1), ANSWER_1));
    assert!(judge(vec![answered(fine)]).is_empty());
}

#[test]
fn cross_stream_replay_sees_events_and_answers_of_another_stream_on_a_resumption() {
    let mut first = record("POST", "ping", Some(1), None);
    first.end = Some(BodyEnd::Truncated("reset".into()));
    let mut second = record("POST", "tools/list", Some(2), None);
    second
        .events
        .push(event("2-1", "response", Some(2), ANSWER_2));
    // Resuming the first stream replays the second's answer.
    let mut resumed = record("GET", "resume ping", None, Some(0));
    resumed
        .events
        .push(event("2-1", "response", Some(2), ANSWER_2));
    resumed
        .events
        .push(event("1-2", "response", Some(1), ANSWER_1));
    let fired = judge(vec![first.clone(), answered(second.clone()), resumed]);
    assert_eq!(fired, vec!["cross-stream-replay"], "{fired:?}");
    let mut clean = record("GET", "resume ping", None, Some(0));
    clean
        .events
        .push(event("1-2", "response", Some(1), ANSWER_1));
    assert!(judge(vec![first, answered(second), clean]).is_empty());
}

#[test]
fn duplicate_event_id_sees_one_id_on_two_events_and_a_replay_from_the_wrong_point() {
    let mut a = record("POST", "ping", Some(1), None);
    a.events
        .push(event("7", "notifications/message", None, r#"{"a":1}"#));
    let mut b = record("POST", "tools/list", Some(2), None);
    b.events
        .push(event("7", "notifications/message", None, r#"{"b":2}"#));
    assert_eq!(judge(vec![a.clone(), b]), vec!["duplicate-event-id"]);
    // The resumption sends again what the stream had already delivered.
    let mut resumed = record("GET", "resume ping", None, Some(0));
    resumed
        .events
        .push(event("7", "notifications/message", None, r#"{"a":1}"#));
    assert_eq!(judge(vec![a.clone(), resumed]), vec!["duplicate-event-id"]);
    assert!(judge(vec![a]).is_empty());
}

#[test]
fn records_carry_json_values_as_sent() {
    // The oracles compare ids as JSON values: 1 and "1" are different ids.
    let mut call = record("POST", "ping", Some(1), None);
    call.events.push(EventRecord {
        rpc_id: Some(Value::String("1".into())),
        ..event(
            "1-1",
            "response",
            None,
            r#"{"jsonrpc":"2.0","id":"1","result":{}}"#,
        )
    });
    assert_eq!(judge(vec![call]), vec!["misrouted-response"]);
}
