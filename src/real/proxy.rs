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
//!   A connection opened while the link to the target is cut is refused
//!   (reset), as turmoil refuses a connect whose SYN was lost; one opened
//!   during a hold waits for the release.
//! * **crash** — every connection is reset (RST on both sides), as when the
//!   host's process and kernel state vanish.
//! * **latency** — each chunk is forwarded no earlier than the link's one-way
//!   latency after it arrived, so a realised link delay holds on loopback too.
//! * **refused** — a connection the target refuses is reset; with
//!   `patience`, the proxy first keeps trying for a while, so that a real
//!   server restarting (which takes real time, where the simulator's restart
//!   is instant) is waited for rather than refused.
//! * **source address** — the proxy connects to the target from its own
//!   loopback address (127.0.0.2, 127.0.0.3, ...), so the server's records
//!   say which client host a connection came from, as in the simulator.
//!
//! The proxy makes no random choice: it does what it is told, when it is
//! told.

use std::cell::Cell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, watch};

/// One direction of a proxied link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to target.
    ToTarget,
    /// Target to client.
    FromTarget,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::ToTarget => 0,
            Direction::FromTarget => 1,
        }
    }
}

/// The shared state of one proxied link.
struct Link {
    target: SocketAddr,
    source: Option<IpAddr>,
    latency: Duration,
    patience: Cell<Duration>,
    held: watch::Sender<bool>,
    partitioned: [Cell<bool>; 2],
    crashes: watch::Sender<u64>,
}

/// How to build a [`FaultProxy`].
#[derive(Debug, Clone)]
pub struct ProxyBuilder {
    target: SocketAddr,
    source: Option<IpAddr>,
    latency: Duration,
    patience: Duration,
}

impl ProxyBuilder {
    /// Connect to the target from this address (a loopback address of its
    /// own, so the server can tell client hosts apart).
    pub fn source(mut self, ip: IpAddr) -> Self {
        self.source = Some(ip);
        self
    }

    /// Forward each chunk no earlier than `d` after it arrived.
    pub fn latency(mut self, d: Duration) -> Self {
        self.latency = d;
        self
    }

    /// While the target refuses connections, keep trying for this long
    /// before refusing the client (default: refuse at once).
    pub fn patience(mut self, d: Duration) -> Self {
        self.patience = d;
        self
    }

    /// Listen on a free loopback port.
    pub async fn start(self) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let link = Rc::new(Link {
            target: self.target,
            source: self.source,
            latency: self.latency,
            patience: Cell::new(self.patience),
            held: watch::channel(false).0,
            partitioned: [Cell::new(false), Cell::new(false)],
            crashes: watch::channel(0).0,
        });
        let l = link.clone();
        tokio::task::spawn_local(async move {
            while let Ok((client, _)) = listener.accept().await {
                let _ = client.set_nodelay(true);
                tokio::task::spawn_local(relay(client, l.clone()));
            }
        });
        Ok(FaultProxy { addr, link })
    }
}

/// A running proxy (its tasks run on the current `LocalSet`).
pub struct FaultProxy {
    addr: SocketAddr,
    link: Rc<Link>,
}

impl FaultProxy {
    /// Listen on a free loopback port and forward to `target`, at once and
    /// from the default source address.
    pub async fn start(target: SocketAddr) -> io::Result<Self> {
        Self::builder(target).start().await
    }

    /// A proxy to `target`, configured before it starts.
    pub fn builder(target: SocketAddr) -> ProxyBuilder {
        ProxyBuilder {
            target,
            source: None,
            latency: Duration::ZERO,
            patience: Duration::ZERO,
        }
    }

    /// Where clients should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on, wait this long for a target that refuses (see
    /// [`ProxyBuilder::patience`]).
    pub fn set_patience(&self, d: Duration) {
        self.link.patience.set(d);
    }

    /// Stop forwarding (keep what arrives).
    ///
    /// As in turmoil, a hold replaces a partition of the link (both
    /// directions): what arrives from now on is kept, not dropped.
    pub fn hold(&self) {
        for p in &self.link.partitioned {
            p.set(false);
        }
        self.link.held.send_replace(true);
    }

    /// Forward again, what was kept first. As in turmoil, a release heals
    /// the link in both directions, a partition included (connections that
    /// lost bytes stay dead).
    pub fn release(&self) {
        for p in &self.link.partitioned {
            p.set(false);
        }
        self.link.held.send_replace(false);
    }

    /// Drop everything that arrives; the connections that lose bytes die.
    /// As in turmoil, a partition replaces a hold (what was kept is dropped).
    pub fn partition(&self) {
        for p in &self.link.partitioned {
            p.set(true);
        }
        self.link.held.send_replace(false);
    }

    /// Stop dropping (dead connections stay dead). As in turmoil, a repair
    /// makes the link healthy both ways, releasing a hold too.
    pub fn repair(&self) {
        for p in &self.link.partitioned {
            p.set(false);
        }
        self.link.held.send_replace(false);
    }

    /// Drop what travels in one direction only.
    pub fn partition_oneway(&self, d: Direction) {
        self.link.partitioned[d.index()].set(true);
    }

    /// Stop dropping in one direction.
    pub fn repair_oneway(&self, d: Direction) {
        self.link.partitioned[d.index()].set(false);
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
    // The SYN waits out a hold, and is lost to a partition — which turmoil
    // answers with a refused connect, as the proxy does.
    let mut held = link.held.subscribe();
    let server = tokio::select! {
        biased;
        _ = crashes.changed() => None,
        r = async {
            let _ = held.wait_for(|h| !*h).await;
            wait_out(tokio::time::Instant::now() + link.latency).await;
            if link.partitioned[Direction::ToTarget.index()].get() {
                return Err(io::Error::from(io::ErrorKind::ConnectionRefused));
            }
            connect_patiently(&link).await
        } => r.ok(),
    };
    let Some(server) = server else {
        let (cr, cw) = client.into_split();
        reset(&cr);
        cw.forget();
        return;
    };
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let conn = Conn {
        dead: Cell::new(false),
        ended: [Cell::new(false), Cell::new(false)],
        refused: Notify::new(),
    };
    let crashed = tokio::select! {
        biased;
        _ = crashes.changed() => true,
        _ = conn.refused.notified() => true,
        _ = async {
            tokio::join!(
                pump(&mut cr, &mut sw, &link, Direction::ToTarget, &conn),
                pump(&mut sr, &mut cw, &link, Direction::FromTarget, &conn),
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

/// Wait until `due`, to a tenth of a millisecond. tokio's timer counts
/// whole milliseconds and fires on its next turn after the deadline, so a
/// sleep there costs each chunk up to a millisecond more than its link's
/// latency, and even a zero one costs a turn (measured through this proxy:
/// a request reached the app 3.1 ms after its client sent it over a 0 ms
/// link, 4.9 ms over a 1 ms link — against 0.6 ms on loopback without the
/// proxy). An OS thread's sleep is precise: the wait happens on tokio's
/// blocking pool (this is a real-network path, never a simulated one), and
/// not at all when `due` has come.
async fn wait_out(due: tokio::time::Instant) {
    let left = due.saturating_duration_since(tokio::time::Instant::now());
    if left.is_zero() {
        return;
    }
    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(left)).await;
}

/// Connect to the target; while it refuses, try again for the link's
/// patience (a restarting server takes real time to listen again, where the
/// simulator's restart is instant).
async fn connect_patiently(link: &Link) -> io::Result<TcpStream> {
    let deadline = tokio::time::Instant::now() + link.patience.get();
    loop {
        match connect(link).await {
            Err(e)
                if e.kind() == io::ErrorKind::ConnectionRefused
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

/// Connect to the target, from the link's source address if it has one.
async fn connect(link: &Link) -> io::Result<TcpStream> {
    let Some(ip) = link.source else {
        return TcpStream::connect(link.target).await;
    };
    let socket = if ip.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(ip, 0))?;
    socket.connect(link.target).await
}

/// Close with RST instead of FIN when the halves are dropped.
fn reset(r: &OwnedReadHalf) {
    #[allow(deprecated)] // SO_LINGER 0 is exactly the abortive close wanted here.
    let _ = r.as_ref().set_linger(Some(Duration::ZERO));
}

/// One proxied connection's state.
struct Conn {
    /// It lost bytes (or an end of stream) to a partition.
    dead: Cell<bool>,
    /// The sender of each direction has closed its end.
    ended: [Cell<bool>; 2],
    /// Bytes reached an end that had closed: reset the connection.
    refused: Notify,
}

/// Forward one direction until its end (or forever, once the connection is
/// dead). On a dead connection whose other end has closed, bytes that get
/// through (the partition repaired) meet no socket and are answered with a
/// reset — as turmoil, and a real kernel, answer a segment for a closed one.
async fn pump(
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    link: &Link,
    dir: Direction,
    conn: &Conn,
) {
    let dead = &conn.dead;
    let back = match dir {
        Direction::ToTarget => Direction::FromTarget,
        Direction::FromTarget => Direction::ToTarget,
    };
    let mut buf = vec![0u8; 16 * 1024];
    let mut held = link.held.subscribe();
    loop {
        let read = from.read(&mut buf).await;
        let due = tokio::time::Instant::now() + link.latency;
        // A hold keeps these bytes (or this end of stream) here until release.
        let _ = held.wait_for(|h| !*h).await;
        wait_out(due).await;
        // What a partition catches is lost — the end of the stream too: a FIN
        // dropped by a partition never arrives.
        if link.partitioned[dir.index()].get() {
            dead.set(true);
        }
        let n = match read {
            Ok(0) | Err(_) => {
                conn.ended[dir.index()].set(true);
                break;
            }
            Ok(n) => n,
        };
        if dead.get() {
            if conn.ended[back.index()].get() && !link.partitioned[dir.index()].get() {
                conn.refused.notify_one();
            }
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
