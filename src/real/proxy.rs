//! A TCP fault proxy: the simulator's link faults, applied to real sockets.
//!
//! `drive` puts one proxy between each client host and the real server. Every
//! connection the host opens goes through it, and the host's faults act on
//! all of them at once, as turmoil's do on a simulated link:
//!
//! * **hold / release** — stop forwarding in both directions, keeping what
//!   arrives (the kernel's buffers, then TCP flow control, hold the rest);
//!   release flushes it in order.
//! * **partition / repair** — black-hole both directions: bytes that arrive are
//!   dropped. A connection that lost bytes is dead for good, silently, even
//!   after repair — TCP would retransmit, turmoil does not, and the proxy
//!   follows turmoil so a real run means what a simulated one does.
//!   Connections opened while partitioned hang the same way.
//! * **crash** — every connection is reset (RST on both sides), as when the
//!   host's process and kernel state vanish.
//!
//! The proxy keeps no clock and makes no random choice: it does what it is
//! told, when it is told.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The shared state of one proxied link.
struct Link {
    target: SocketAddr,
    held: watch::Sender<bool>,
    partitioned: Cell<bool>,
    crashes: watch::Sender<u64>,
}

/// A running proxy (its tasks run on the current `LocalSet`).
pub struct FaultProxy {
    addr: SocketAddr,
    link: Rc<Link>,
}

impl FaultProxy {
    /// Listen on a free loopback port and forward to `target`.
    pub async fn start(target: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let link = Rc::new(Link {
            target,
            held: watch::channel(false).0,
            partitioned: Cell::new(false),
            crashes: watch::channel(0).0,
        });
        let l = link.clone();
        tokio::task::spawn_local(async move {
            while let Ok((client, _)) = listener.accept().await {
                let _ = client.set_nodelay(true);
                tokio::task::spawn_local(relay(client, l.clone()));
            }
        });
        Ok(Self { addr, link })
    }

    /// Where clients should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop forwarding (keep what arrives).
    pub fn hold(&self) {
        self.link.held.send_replace(true);
    }

    /// Forward again, what was kept first.
    pub fn release(&self) {
        self.link.held.send_replace(false);
    }

    /// Drop everything that arrives; the connections that lose bytes die.
    pub fn partition(&self) {
        self.link.partitioned.set(true);
    }

    /// Stop dropping (dead connections stay dead).
    pub fn repair(&self) {
        self.link.partitioned.set(false);
    }

    /// Reset every connection open now.
    pub fn crash(&self) {
        self.link.crashes.send_modify(|n| *n += 1);
    }
}

/// One connection: client ⇄ proxy ⇄ target.
async fn relay(client: TcpStream, link: Rc<Link>) {
    let mut crashes = link.crashes.subscribe();
    crashes.mark_unchanged();
    // A connection opened during a partition gets nowhere.
    let dead = Rc::new(Cell::new(link.partitioned.get()));
    let server = if dead.get() {
        None
    } else {
        TcpStream::connect(link.target).await.ok()
    };
    let Some(server) = server else {
        // No way through: the client's bytes go nowhere until a crash or its own close.
        let (mut cr, cw) = client.into_split();
        let mut sink = [0u8; 4096];
        tokio::select! {
            biased;
            _ = crashes.changed() => {
                reset(&cr);
                cw.forget();
            }
            _ = async { while matches!(cr.read(&mut sink).await, Ok(n) if n > 0) {} } => {}
        }
        return;
    };
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let crashed = tokio::select! {
        biased;
        _ = crashes.changed() => true,
        _ = async {
            tokio::join!(
                pump(&mut cr, &mut sw, &link, &dead),
                pump(&mut sr, &mut cw, &link, &dead),
            )
        } => false,
    };
    if crashed {
        reset(&cr);
        reset(&sr);
        // Dropping a write half would send a FIN before the reset.
        cw.forget();
        sw.forget();
    }
}

/// Close with RST instead of FIN when the halves are dropped.
fn reset(r: &OwnedReadHalf) {
    #[allow(deprecated)] // SO_LINGER 0 is exactly the abortive close wanted here.
    let _ = r.as_ref().set_linger(Some(Duration::ZERO));
}

/// Forward one direction until its end (or forever, once the connection is dead).
async fn pump(from: &mut OwnedReadHalf, to: &mut OwnedWriteHalf, link: &Link, dead: &Cell<bool>) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut held = link.held.subscribe();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // A hold keeps these bytes here until release.
        let _ = held.wait_for(|h| !*h).await;
        if link.partitioned.get() {
            dead.set(true);
        }
        if dead.get() {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    if dead.get() {
        // A black hole swallows the FIN too: keep the other side waiting.
        std::future::pending::<()>().await;
    }
    let _ = to.shutdown().await;
}
