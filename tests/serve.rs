//! `mcpsim serve` on real loopback TCP: the same server code answers a real
//! client, refuses a foreign Origin, and shuts down cleanly on a signal.

mod common;

use common::served::Served;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

fn serve(stack: &str) -> Served {
    Served::start(Command::new(env!("CARGO_BIN_EXE_mcpsim")).args([
        "serve",
        "--server",
        stack,
        "--listen",
        "127.0.0.1:0",
    ]))
}

/// One POST with `Connection: close`; the whole response as text.
fn post(addr: &std::net::SocketAddr, extra_headers: &str, body: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nConnection: close\r\n{extra_headers}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read the response");
    out
}

fn check_stack(stack: &str, foreign_origin_status: &str) {
    let served = serve(stack);
    let ok = post(&served.addr, "", INIT);
    assert!(ok.starts_with("HTTP/1.1 200"), "{stack}: {ok}");
    let sid = ok
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("mcp-session-id:")
                .then(|| l[15..].trim().to_string())
        })
        .unwrap_or_else(|| panic!("{stack}: no session id in {ok}"));
    assert_eq!(sid.len(), 32, "{stack}: {sid}");
    assert!(ok.contains(r#""protocolVersion":"2025-06-18""#), "{ok}");
    let foreign = post(&served.addr, "Origin: http://evil.example\r\n", INIT);
    assert!(
        foreign.starts_with(&format!("HTTP/1.1 {foreign_origin_status}")),
        "{stack}: {foreign}"
    );
}

#[test]
fn native_answers_initialize_with_a_session_and_refuses_a_foreign_origin() {
    check_stack("native", "403");
}

#[test]
fn the_python_model_serves_real_tcp_and_accepts_any_origin_as_1_20_does() {
    // 1.20's DNS-rebinding protection is off unless configured.
    check_stack("python-sdk-1.20", "200");
}

#[test]
fn two_servers_hand_out_different_session_ids() {
    // Ids come from the OS here, not from a seed.
    let a = post(&serve("native").addr, "", INIT);
    let b = post(&serve("native").addr, "", INIT);
    let sid = |r: &str| {
        r.lines()
            .find(|l| l.to_ascii_lowercase().starts_with("mcp-session-id:"))
            .map(str::to_string)
    };
    assert!(sid(&a).is_some());
    assert_ne!(sid(&a), sid(&b));
}

#[cfg(unix)]
#[test]
fn a_signal_stops_the_server_cleanly() {
    let mut served = serve("native");
    let _ = post(&served.addr, "", INIT);
    let pid = served.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    for _ in 0..100 {
        if let Some(status) = served.child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0));
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server did not stop within 5 s of SIGTERM");
}

#[test]
fn a_bad_listen_address_is_one_line_and_exit_2() {
    let o = Command::new(env!("CARGO_BIN_EXE_mcpsim"))
        .args(["serve", "--listen", "localhost"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--listen"), "{err}");
}
