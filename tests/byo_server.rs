//! Bring your own server: the README's example, compiled and run by `cargo
//! test` (the README block must appear in this file verbatim), and the HTTP
//! tracking layer shown to catch a server that cuts its own response short.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;

// README example: begin
use mcpsim::servers::{TowerStack, rmcp::SeededSessions};
use mcpsim::{
    Simulation,
    client::script::Step,
    scenario::{FaultKind, Scenario},
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use std::time::Duration as Wait;

#[derive(Clone)]
struct MyServer; // your rmcp ServerHandler, tools and all
impl rmcp::ServerHandler for MyServer {}

#[test]
fn my_server_under_faults() -> Result<(), mcpsim::error::Error> {
    let stack = TowerStack::new("my-server", |env| {
        let config = StreamableHttpServerConfig::default()
            .with_sse_keep_alive(None) // its timer reads the wall clock
            .with_allowed_hosts(["server"]) // the simulated server's host name
            .with_cancellation_token(env.shutdown); // SIGTERM: graceful shutdown
        let sessions = SeededSessions::new(LocalSessionManager::default(), env.ids); // ids from the seed
        StreamableHttpService::new(|| Ok(MyServer), sessions.into(), config)
    });
    let sc = Scenario::builder("list-then-crash")
        .client(
            "c1",
            vec![
                Step::initialize(),
                Step::request("tools/list", serde_json::json!({})),
            ],
        )
        .fault_within(
            Wait::ZERO,
            Wait::from_millis(100),
            FaultKind::Crash { host: "c1".into() },
        )
        .build()?;
    let sim = Simulation::new(sc).server(stack);
    sim.sweep(0..50)?.assert_all_pass();
    assert!(
        sim.check_determinism(7)?.1.is_none(),
        "the same seed, the same trace"
    );
    Ok(())
}
// README example: end

/// rmcp's own session manager names sessions with `uuid::new_v4` (the OS's
/// randomness): the determinism check finds it, and says where.
#[test]
fn unseeded_session_ids_are_caught_by_the_determinism_check() -> Result<(), mcpsim::error::Error> {
    let stack = TowerStack::new("unseeded", |env| {
        let config = StreamableHttpServerConfig::default()
            .with_sse_keep_alive(None)
            .with_allowed_hosts(["server"])
            .with_cancellation_token(env.shutdown);
        StreamableHttpService::new(
            || Ok(MyServer),
            LocalSessionManager::default().into(),
            config,
        )
    });
    let sc = Scenario::builder("init")
        .client("c1", vec![Step::initialize()])
        .build()?;
    let (_, divergence) = Simulation::new(sc).server(stack).check_determinism(1)?;
    let d = divergence.expect("OS-random session ids must not replay");
    assert!(d.first.contains("session"), "{d:?}");
    Ok(())
}

/// A server with a bug: its SSE response sends one event and then drops
/// its stream while the client is still connected.
fn cutting_server() -> TowerStack {
    TowerStack::new("cuts-its-stream", |_env| {
        tower::service_fn(|_req: http::Request<mcpsim::servers::tower::Body>| async {
            let events = futures_stream(vec![
                Ok::<_, std::io::Error>(Frame::data(Bytes::from("event: message\ndata: {}\n\n"))),
                Err(std::io::Error::other("the handler's channel closed")),
            ]);
            let resp = http::Response::builder()
                .header("content-type", "text/event-stream")
                .body(StreamBody::new(events))
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok::<_, std::io::Error>(resp)
        })
    })
}

/// A stream of ready items (no futures-util in the dependencies).
fn futures_stream<T: Unpin>(items: Vec<T>) -> impl futures_core::Stream<Item = T> + Unpin {
    struct Ready<T>(std::collections::VecDeque<T>);
    impl<T: Unpin> futures_core::Stream for Ready<T> {
        type Item = T;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<T>> {
            std::task::Poll::Ready(self.0.pop_front())
        }
    }
    Ready(items.into())
}

#[test]
fn the_http_layer_sees_a_body_cut_while_the_client_listens() -> Result<(), mcpsim::error::Error> {
    let sc = Scenario::builder("one-request")
        .duration(Duration::from_secs(2))
        .client("c1", vec![Step::request("ping", serde_json::json!({}))])
        .build()?;
    let run = Simulation::new(sc).server(cutting_server()).run(1)?;
    run.assert_fails_with("missing-final-body");
    let f = run
        .failures
        .iter()
        .find(|f| f.oracle == "missing-final-body")
        .map(|f| f.signature.clone());
    assert_eq!(
        f.as_deref(),
        // The service never read the request, so the exchange is named by
        // method and path only.
        Some("missing-final-body @ cuts-its-stream/hyper · POST /mcp · client-connected")
    );
    // hyper had not flushed the head when the body failed, so the client saw
    // only a closed connection — which a client-side oracle cannot blame on
    // the server (a network fault looks the same). The server side can.
    let client_end = format!("{:?}", run.observations.requests[0].end);
    assert!(client_end.contains("connection closed"), "{client_end}");
    // What the stack cannot show is listed, never passed.
    let not: Vec<_> = run.not_judged.iter().map(|(o, _)| *o).collect();
    assert!(
        not.contains(&"protocol-violation") && not.contains(&"leak"),
        "{not:?}"
    );
    Ok(())
}

/// The same service, but the client crashes before the cut: hyper drops the
/// body after the peer vanished, which is not the server's failure.
#[test]
fn a_body_dropped_after_the_peer_vanished_is_not_a_failure() -> Result<(), mcpsim::error::Error> {
    let server = TowerStack::new("slow-stream", |_env| {
        tower::service_fn(|_req: http::Request<mcpsim::servers::tower::Body>| async {
            // An SSE body that never ends.
            let body = http_body_util::StreamBody::new(
                Pending::<Result<Frame<Bytes>, Infallible>>::default(),
            );
            let resp = http::Response::builder()
                .header("content-type", "text/event-stream")
                .body(body)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok::<_, std::io::Error>(resp)
        })
    });
    let sc = Scenario::builder("crash-on-open-stream")
        .duration(Duration::from_secs(3))
        .client("c1", vec![Step::request("ping", serde_json::json!({}))])
        .fault_at(
            Duration::from_millis(500),
            FaultKind::Crash { host: "c1".into() },
        )
        .build()?;
    let run = Simulation::new(sc).server(server).run(1)?;
    run.assert_no("missing-final-body");
    let http = &run.observations.http;
    assert_eq!(http.len(), 1, "{http:?}");
    Ok(())
}

/// A stream that never yields.
struct Pending<T>(std::marker::PhantomData<T>);
impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}
impl<T> futures_core::Stream for Pending<T> {
    type Item = T;
    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        std::task::Poll::Pending
    }
}
impl<T> Unpin for Pending<T> {}

#[test]
fn the_readme_shows_this_example() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let this = include_str!("byo_server.rs");
    let example = this
        .split("// README example: begin\n")
        .nth(1)
        .and_then(|s| s.split("// README example: end").next())
        .expect("markers");
    assert!(
        readme.contains(example),
        "the README's bring-your-own-server block differs from tests/byo_server.rs"
    );
}
