//! The fault proxy on real loopback sockets: it forwards, holds, black-holes
//! and resets as the simulator's links do.

use std::net::SocketAddr;
use std::time::Duration;

use mcpsim::real::proxy::FaultProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// Run `f` on a fresh current-thread runtime inside a `LocalSet`.
fn local<F: std::future::Future<Output = ()>>(f: F) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f);
}

/// An echo server; returns its address.
async fn echo() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::task::spawn_local(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::task::spawn_local(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn read_some(s: &mut TcpStream, within: Duration) -> Option<std::io::Result<Vec<u8>>> {
    let mut buf = [0u8; 64];
    match timeout(within, s.read(&mut buf)).await {
        Ok(Ok(n)) => Some(Ok(buf[..n].to_vec())),
        Ok(Err(e)) => Some(Err(e)),
        Err(_) => None,
    }
}

const SHORT: Duration = Duration::from_millis(200);
const LONG: Duration = Duration::from_secs(5);

#[test]
fn forwards_both_ways() {
    local(async {
        let p = FaultProxy::start(echo().await).await.unwrap();
        let mut c = TcpStream::connect(p.addr()).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        assert_eq!(read_some(&mut c, LONG).await.unwrap().unwrap(), b"hello");
    });
}

#[test]
fn a_hold_keeps_bytes_until_release() {
    local(async {
        let p = FaultProxy::start(echo().await).await.unwrap();
        let mut c = TcpStream::connect(p.addr()).await.unwrap();
        c.write_all(b"a").await.unwrap();
        assert_eq!(read_some(&mut c, LONG).await.unwrap().unwrap(), b"a");
        p.hold();
        c.write_all(b"held").await.unwrap();
        assert!(
            read_some(&mut c, SHORT).await.is_none(),
            "nothing while held"
        );
        p.release();
        let mut got = Vec::new();
        while got.len() < 4 {
            got.extend(read_some(&mut c, LONG).await.unwrap().unwrap());
        }
        assert_eq!(got, b"held");
    });
}

#[test]
fn a_partition_kills_a_connection_that_carried_bytes_even_after_repair() {
    local(async {
        let p = FaultProxy::start(echo().await).await.unwrap();
        let mut c = TcpStream::connect(p.addr()).await.unwrap();
        c.write_all(b"up").await.unwrap();
        assert_eq!(read_some(&mut c, LONG).await.unwrap().unwrap(), b"up");
        p.partition();
        c.write_all(b"lost").await.unwrap();
        assert!(read_some(&mut c, SHORT).await.is_none(), "black-holed");
        p.repair();
        c.write_all(b"again").await.unwrap();
        assert!(
            read_some(&mut c, SHORT).await.is_none(),
            "dead after repair"
        );
        // A new connection after repair works.
        let mut d = TcpStream::connect(p.addr()).await.unwrap();
        d.write_all(b"new").await.unwrap();
        assert_eq!(read_some(&mut d, LONG).await.unwrap().unwrap(), b"new");
    });
}

#[test]
fn a_crash_resets_every_open_connection() {
    local(async {
        let p = FaultProxy::start(echo().await).await.unwrap();
        let mut c = TcpStream::connect(p.addr()).await.unwrap();
        c.write_all(b"x").await.unwrap();
        assert_eq!(read_some(&mut c, LONG).await.unwrap().unwrap(), b"x");
        p.crash();
        match read_some(&mut c, LONG).await {
            Some(Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
            other => panic!("expected a reset, got {other:?}"),
        }
    });
}

/// A server that echoes, and reports when a connection's stream ended (FIN).
async fn echo_reporting_eof() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::task::spawn_local(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::task::spawn_local(async move {
                let mut buf = [0u8; 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) => {
                            let _ = tx.send(());
                            break;
                        }
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
            });
        }
    });
    (addr, rx)
}

#[test]
fn a_fin_sent_during_a_partition_never_arrives() {
    local(async {
        let (target, mut eof) = echo_reporting_eof().await;
        let p = FaultProxy::start(target).await.unwrap();
        // Control: without a partition the end of stream gets through.
        let mut c = TcpStream::connect(p.addr()).await.unwrap();
        c.write_all(b"x").await.unwrap();
        assert_eq!(read_some(&mut c, LONG).await.unwrap().unwrap(), b"x");
        c.shutdown().await.unwrap();
        assert!(timeout(LONG, eof.recv()).await.is_ok(), "FIN forwarded");
        // During a partition it is lost, and stays lost after repair.
        let mut d = TcpStream::connect(p.addr()).await.unwrap();
        d.write_all(b"y").await.unwrap();
        assert_eq!(read_some(&mut d, LONG).await.unwrap().unwrap(), b"y");
        p.partition();
        d.shutdown().await.unwrap();
        assert!(timeout(SHORT, eof.recv()).await.is_err(), "FIN dropped");
        p.repair();
        assert!(timeout(SHORT, eof.recv()).await.is_err(), "still dropped");
    });
}

#[test]
fn latency_delays_each_chunk() {
    local(async {
        let latency = Duration::from_millis(150);
        let p = FaultProxy::builder(echo().await)
            .latency(latency)
            .start()
            .await
            .unwrap();
        let mut c = TcpStream::connect(p.addr()).await.unwrap();
        let sent = tokio::time::Instant::now();
        c.write_all(b"slow").await.unwrap();
        assert_eq!(read_some(&mut c, LONG).await.unwrap().unwrap(), b"slow");
        // There and back: two one-way trips.
        assert!(sent.elapsed() >= latency * 2, "{:?}", sent.elapsed());
    });
}

#[test]
fn bytes_for_a_client_that_closed_during_a_partition_are_refused_after_repair() {
    local(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = l.local_addr().unwrap();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let (res_tx, res_rx) = tokio::sync::oneshot::channel();
        tokio::task::spawn_local(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 16];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(&buf[..n]).await.unwrap();
            let _ = go_rx.await;
            // The server writes to the connection long after the client left.
            let _ = s.write_all(b"late").await;
            let got = timeout(LONG, s.read(&mut buf)).await;
            let _ = res_tx.send(got.map(|r| r.map_err(|e| e.kind())));
        });
        let p = FaultProxy::start(target).await.unwrap();
        let mut c = TcpStream::connect(p.addr()).await.unwrap();
        c.write_all(b"x").await.unwrap();
        assert_eq!(read_some(&mut c, LONG).await.unwrap().unwrap(), b"x");
        p.partition();
        drop(c); // its FIN is lost
        tokio::time::sleep(SHORT).await;
        p.repair();
        go_tx.send(()).unwrap();
        match res_rx.await.unwrap() {
            Ok(Err(std::io::ErrorKind::ConnectionReset)) => {}
            other => panic!("expected a reset, got {other:?}"),
        }
    });
}

#[test]
fn a_refused_connection_is_reset_and_a_patient_proxy_waits_for_the_target() {
    local(async {
        // A port nothing listens on.
        let target = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let p = FaultProxy::start(target).await.unwrap();
        let mut c = TcpStream::connect(p.addr()).await.unwrap();
        match read_some(&mut c, LONG).await {
            Some(Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
            other => panic!("expected a reset, got {other:?}"),
        }
        // With patience, the target starting a little later is waited for.
        let patient = FaultProxy::builder(target)
            .patience(LONG)
            .start()
            .await
            .unwrap();
        let mut c = TcpStream::connect(patient.addr()).await.unwrap();
        c.write_all(b"early").await.unwrap();
        tokio::time::sleep(SHORT).await;
        let l = TcpListener::bind(target).await.unwrap();
        tokio::task::spawn_local(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 16];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(&buf[..n]).await.unwrap();
        });
        assert_eq!(read_some(&mut c, LONG).await.unwrap().unwrap(), b"early");
    });
}

#[test]
fn a_connection_opened_during_a_partition_is_refused() {
    local(async {
        let p = FaultProxy::start(echo().await).await.unwrap();
        p.partition();
        let mut c = TcpStream::connect(p.addr()).await.unwrap();
        match read_some(&mut c, LONG).await {
            Some(Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
            other => panic!("expected a reset, got {other:?}"),
        }
    });
}
