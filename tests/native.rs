//! The native server's HTTP contract, request by request, over real hyper and
//! turmoil TCP: the status codes the spec asks for, the session lifecycle, a
//! second GET stream replacing the first, and resumption from a priming
//! event's id.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mcpsim::asgi::tracking::AsgiLog;
use mcpsim::servers::{self, ProbeSlot, ServerConfig, ServerEnv, Signals};
use mcpsim::sim::net::SimListener;
use rand::SeedableRng;

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
/// A 2025-11-25 client: its streams are primed.
const INIT_PRIMED: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
const BOTH: &str = "application/json, text/event-stream";

/// What came back.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    session: Option<String>,
    allow: Option<String>,
    body: String,
}

/// One request on a fresh connection; an SSE body is read until `until`
/// appears in it (or to its end).
async fn send(method: &str, headers: &[(&str, &str)], body: &str, until: Option<&str>) -> Reply {
    let io = turmoil::net::TcpStream::connect("server:8000")
        .await
        .expect("connect");
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .expect("handshake");
    let task = tokio::task::spawn_local(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri("/mcp")
        .header("host", "server:8000");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = tx
        .send_request(
            req.body(Full::new(Bytes::from(body.to_string())))
                .expect("request"),
        )
        .await
        .expect("response head");
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (status, session, allow) = (
        resp.status().as_u16(),
        header("mcp-session-id"),
        header("allow"),
    );
    let mut b = resp.into_body();
    let mut text = String::new();
    while let Some(Ok(frame)) = b.frame().await {
        if let Ok(d) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&d));
        }
        if until.is_some_and(|u| text.contains(u)) {
            break;
        }
    }
    task.abort();
    Reply {
        status,
        session,
        allow,
        body: text,
    }
}

fn post_headers(session: Option<&str>) -> Vec<(&str, &str)> {
    let mut h = vec![("accept", BOTH), ("content-type", "application/json")];
    if let Some(s) = session {
        h.push(("mcp-session-id", s));
    }
    h
}

/// Run `client` against a native server with `config`; returns what it
/// collected.
fn with_native(
    config: ServerConfig,
    client: impl AsyncFnOnce() -> Vec<(String, Reply)> + 'static,
) -> Vec<(String, Reply)> {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(120))
        .rng_seed(1)
        .tcp_capacity(1024)
        .build();
    sim.host("server", move || {
        let config = config.clone();
        async move {
            let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 8000)).await?;
            let env = ServerEnv {
                listener: Box::new(SimListener(listener)),
                ids: mcpsim::servers::Ids::Seeded(Box::new(
                    rand_chacha::ChaCha8Rng::seed_from_u64(7),
                )),
                signals: Signals::default(),
                http_log: mcpsim::servers::HttpLog::new(std::sync::Arc::new(|| {
                    turmoil::sim_elapsed().unwrap_or_default()
                })),
                asgi_log: AsgiLog::default(),
                clock: Rc::new(|| turmoil::sim_elapsed().unwrap_or_default()),
                probe: ProbeSlot::default(),
                incarnation: 0,
                listening: Rc::new(Cell::new(false)),
                config,
                processing: mcpsim::servers::Processing::default(),
            };
            servers::stack("native").expect("native").run(env).await;
            Ok(())
        }
    });
    let out = Rc::new(RefCell::new(Vec::new()));
    let sink = out.clone();
    let client = RefCell::new(Some(client));
    sim.client("client", async move {
        let run = client.borrow_mut().take().expect("runs once");
        let got = tokio::task::LocalSet::new().run_until(run()).await;
        *sink.borrow_mut() = got;
        Ok(())
    });
    sim.run().expect("simulation");
    out.take()
}

fn find<'a>(got: &'a [(String, Reply)], name: &str) -> &'a Reply {
    &got.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no reply {name}"))
        .1
}

#[test]
fn status_codes_follow_the_spec() {
    let got = with_native(ServerConfig::default(), async || {
        let mut out = Vec::new();
        let mut note = |n: &str, r: Reply| out.push((n.to_string(), r));
        let init = send("POST", &post_headers(None), INIT, Some("protocolVersion")).await;
        let sid = init.session.clone().expect("a session id");
        note("initialize", init);
        let foreign = [
            ("accept", BOTH),
            ("content-type", "application/json"),
            ("origin", "http://evil.example"),
        ];
        note("foreign origin", send("POST", &foreign, INIT, None).await);
        // Under DNS rebinding a page's origin and the Host it sends are both
        // the attacker's name for the server: matching them proves nothing.
        let rebound = [
            ("accept", BOTH),
            ("content-type", "application/json"),
            ("origin", "http://server:8000"),
        ];
        note("same-host origin", send("POST", &rebound, INIT, None).await);
        let local = [
            ("accept", BOTH),
            ("content-type", "application/json"),
            ("origin", "http://localhost:6274"),
        ];
        note(
            "loopback origin",
            send("POST", &local, INIT, Some("protocolVersion")).await,
        );
        note(
            "put",
            send("PUT", &post_headers(Some(&sid)), "{}", None).await,
        );
        let json_only = [
            ("accept", "application/json"),
            ("content-type", "application/json"),
        ];
        note(
            "accept json only",
            send("POST", &json_only, INIT, None).await,
        );
        let text = [("accept", BOTH), ("content-type", "text/plain")];
        note("text body", send("POST", &text, INIT, None).await);
        let big = format!(
            r#"{{"jsonrpc":"2.0","method":"x","params":{{"pad":"{}"}}}}"#,
            "a".repeat(2 << 20)
        );
        note(
            "too large",
            send("POST", &post_headers(Some(&sid)), &big, None).await,
        );
        note(
            "not json",
            send("POST", &post_headers(Some(&sid)), "{oops", None).await,
        );
        let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        note(
            "no session",
            send("POST", &post_headers(None), list, None).await,
        );
        note(
            "unknown session",
            send("POST", &post_headers(Some("feedface")), list, None).await,
        );
        let mut bad_version = post_headers(Some(&sid));
        bad_version.push(("mcp-protocol-version", "1999-01-01"));
        note("bad version", send("POST", &bad_version, list, None).await);
        note(
            "list",
            send(
                "POST",
                &post_headers(Some(&sid)),
                list,
                Some("get_greeting"),
            )
            .await,
        );
        note(
            "delete",
            send("DELETE", &post_headers(Some(&sid)), "", None).await,
        );
        note(
            "after delete",
            send("POST", &post_headers(Some(&sid)), list, None).await,
        );
        out
    });
    let status = |n: &str| find(&got, n).status;
    assert_eq!(status("initialize"), 200);
    assert_eq!(status("foreign origin"), 403);
    assert_eq!(status("same-host origin"), 403);
    assert_eq!(status("loopback origin"), 200);
    // A 2025-06-18 session gets no priming event: its first event is the answer.
    let list = &find(&got, "list").body;
    assert!(
        list.starts_with("id: 2-1\nevent: message\ndata: {"),
        "{list}"
    );
    assert_eq!(status("put"), 405);
    assert_eq!(
        find(&got, "put").allow.as_deref(),
        Some("GET, POST, DELETE")
    );
    assert_eq!(status("accept json only"), 406);
    assert_eq!(status("text body"), 415);
    assert_eq!(status("too large"), 413);
    assert_eq!(status("not json"), 400);
    assert_eq!(status("no session"), 400);
    assert_eq!(status("unknown session"), 404);
    assert_eq!(status("bad version"), 400);
    assert_eq!(status("list"), 200);
    assert_eq!(status("delete"), 200);
    assert_eq!(status("after delete"), 404);
}

#[test]
fn a_second_get_stream_replaces_the_first_and_a_broken_stream_resumes_from_its_priming_id() {
    let got = with_native(ServerConfig::default(), async || {
        let mut out = Vec::new();
        let init = send(
            "POST",
            &post_headers(None),
            INIT_PRIMED,
            Some("protocolVersion"),
        )
        .await;
        let sid = init.session.clone().expect("a session id");
        let get = [
            ("accept", "text/event-stream"),
            ("mcp-session-id", sid.as_str()),
        ];
        // The first listener reads until the stream ends: when the second
        // GET replaces it.
        let first = tokio::task::spawn_local({
            let sid = sid.clone();
            async move {
                let get = [
                    ("accept", "text/event-stream"),
                    ("mcp-session-id", sid.as_str()),
                ];
                send("GET", &get, "", None).await
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        out.push((
            "second GET".to_string(),
            send("GET", &get, "", Some("\n\n")).await,
        ));
        out.push((
            "first GET".to_string(),
            first.await.expect("first listener"),
        ));
        // A slow call whose stream is dropped right after its priming event.
        let call = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"slow_operation","arguments":{"seconds":1}}}"#;
        let primed = send("POST", &post_headers(Some(&sid)), call, Some("\n\n")).await;
        let id = primed
            .body
            .lines()
            .find_map(|l| l.strip_prefix("id: "))
            .expect("a priming event id")
            .to_string();
        out.push(("primed".to_string(), primed));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let resume = [
            ("accept", "text/event-stream"),
            ("mcp-session-id", sid.as_str()),
            ("last-event-id", id.as_str()),
        ];
        out.push(("resumed".to_string(), send("GET", &resume, "", None).await));
        out
    });
    assert_eq!(find(&got, "second GET").status, 200);
    assert_eq!(
        find(&got, "first GET").status,
        200,
        "the first GET ended cleanly when replaced"
    );
    let resumed = find(&got, "resumed");
    assert_eq!(resumed.status, 200);
    assert_eq!(
        resumed.body.matches("Completed after 1 seconds").count(),
        1,
        "the answer, exactly once: {}",
        resumed.body
    );
    assert!(
        !resumed.body.contains(&format!("id: {}\n", "1-1")),
        "nothing before the resumption point"
    );
}
