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
