//! tokio TCP behind the server's [`Listener`] and the client's [`Connector`].
//!
//! On a real port the server faces what the simulator never sends: a host out
//! of file descriptors, clients that connect and say nothing, or trickle a
//! request head a byte at a time, or hold a connection open forever. The
//! stacks model a server's semantics, not its defences, so `serve` puts them
//! behind a [`TcpListener`] that:
//!
//! * never gives up on a transient accept error (EMFILE, ENFILE, ENOBUFS,
//!   ENOMEM, a connection aborted before it was accepted): it backs off, from
//!   10 ms doubling to 1 s, and accepts again — an accept loop that ends on one
//!   EMFILE switches the server off for good;
//! * holds at most [`Limits::max_connections`] connections open, and waits for
//!   one to close before it accepts the next;
//! * closes a connection whose first request head has not arrived within
//!   [`Limits::head_timeout`] of the accept (a silent client), a later head
//!   within the head timeout of its first byte, or a body within
//!   [`Limits::body_timeout`] of the end of its head (a client that trickles
//!   a byte at a time keeps no other deadline from passing: the phases are
//!   followed by [`super::framing`]); and one on which nothing was read or
//!   written for [`Limits::idle_timeout`] (an SSE stream with nothing to say
//!   for that long included).
//!
//! Inside a simulation none of this applies: the listener there is turmoil's.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::asgi::LocalBoxFuture;
use crate::client::Connector;
use crate::servers::{Conn, Listener};

use super::framing::{Framing, Phase};

/// What a served connection may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// From the accept to the end of the first request head.
    pub head_timeout: Duration,
    /// From the end of a request head to the end of its body.
    pub body_timeout: Duration,
    /// Nothing read and nothing written for this long.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// A real listening socket, hardened (see the module docs).
pub struct TcpListener {
    inner: tokio::net::TcpListener,
    limits: Limits,
    open: Rc<Cell<usize>>,
    freed: Rc<tokio::sync::Notify>,
}

impl TcpListener {
    /// Serve `inner` within `limits`.
    pub fn new(inner: tokio::net::TcpListener, limits: Limits) -> Self {
        Self {
            inner,
            limits,
            open: Rc::new(Cell::new(0)),
            freed: Rc::new(tokio::sync::Notify::new()),
        }
    }
}

/// An accept error that says nothing about the listening socket: resources
/// run out for a moment (EMFILE 24, ENFILE 23, ENOMEM 12, ENOBUFS 105 on
/// Linux), or one client gave up before it was accepted.
fn transient(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(12 | 23 | 24 | 105))
        || matches!(
            e.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::Interrupted
                | io::ErrorKind::OutOfMemory
        )
}

impl Listener for TcpListener {
    fn accept(&self) -> LocalBoxFuture<'_, io::Result<(Box<dyn Conn>, String)>> {
        Box::pin(async move {
            let mut backoff = Duration::from_millis(10);
            let mut warned = false;
            loop {
                while self.open.get() >= self.limits.max_connections {
                    self.freed.notified().await;
                }
                match self.inner.accept().await {
                    Ok((s, peer)) => {
                        if warned {
                            tracing::warn!(target: "mcpsim::serve", "accepting again");
                        }
                        // Small writes (SSE events) should leave at once, as
                        // uvicorn's do.
                        s.set_nodelay(true)?;
                        self.open.set(self.open.get() + 1);
                        let conn = Guarded::new(
                            s,
                            self.limits,
                            Open {
                                open: self.open.clone(),
                                freed: self.freed.clone(),
                            },
                        );
                        return Ok((Box::new(conn) as Box<dyn Conn>, peer.to_string()));
                    }
                    Err(e) if transient(&e) => {
                        if !warned {
                            tracing::warn!(
                                target: "mcpsim::serve",
                                "accept failed ({e}); backing off and accepting again"
                            );
                            warned = true;
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                    }
                    Err(e) => return Err(e),
                }
            }
        })
    }
}

/// One open connection, counted until dropped.
struct Open {
    open: Rc<Cell<usize>>,
    freed: Rc<tokio::sync::Notify>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.open.set(self.open.get().saturating_sub(1));
        self.freed.notify_one();
    }
}

/// A served connection with its deadlines.
struct Guarded {
    io: tokio::net::TcpStream,
    limits: Limits,
    /// Where the client is in its requests.
    framing: Framing,
    /// The deadline of the head or body now arriving, and what its expiry
    /// means. The first head's runs from the accept.
    phase: Option<(Pin<Box<Sleep>>, &'static str)>,
    idle: Pin<Box<Sleep>>,
    _open: Open,
}

const HEAD_LATE: &str = "no whole request head within the head timeout";
const BODY_LATE: &str = "no whole request body within the body timeout";

impl Guarded {
    fn new(io: tokio::net::TcpStream, limits: Limits, open: Open) -> Self {
        Self {
            io,
            limits,
            framing: Framing::default(),
            phase: Some((Box::pin(tokio::time::sleep(limits.head_timeout)), HEAD_LATE)),
            idle: Box::pin(tokio::time::sleep(limits.idle_timeout)),
            _open: open,
        }
    }

    fn activity(&mut self) {
        self.idle
            .as_mut()
            .reset(Instant::now() + self.limits.idle_timeout);
    }

    /// An expired deadline, as the error the read or write returns.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if let Some((deadline, what)) = self.phase.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Some(io::Error::new(io::ErrorKind::TimedOut, *what));
        }
        if self.idle.as_mut().poll(cx).is_ready() {
            return Some(io::Error::new(
                io::ErrorKind::TimedOut,
                "nothing read or written within the idle timeout",
            ));
        }
        None
    }

    /// Follow the bytes read, and start or end the phase's deadline.
    fn saw(&mut self, bytes: &[u8]) {
        let (was, heads) = (self.framing.phase(), self.framing.heads());
        self.framing.feed(bytes);
        let now = self.framing.phase();
        let new_head = self.framing.heads() != heads;
        let first = heads == 0 && self.framing.heads() == 1;
        self.phase = match now {
            // The first head's deadline runs from the accept.
            Phase::Head if new_head && first => self.phase.take(),
            Phase::Head if new_head => Some(self.deadline(self.limits.head_timeout, HEAD_LATE)),
            Phase::Body if was != Phase::Body || new_head => {
                Some(self.deadline(self.limits.body_timeout, BODY_LATE))
            }
            Phase::Head | Phase::Body => self.phase.take(),
            Phase::Between | Phase::Lost => None,
        };
    }

    fn deadline(&self, after: Duration, what: &'static str) -> (Pin<Box<Sleep>>, &'static str) {
        (Box::pin(tokio::time::sleep(after)), what)
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.expired(cx) {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let new = &buf.filled()[before..];
            if !new.is_empty() {
                self.activity();
                self.saw(new);
            }
        }
        r
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.expired(cx) {
            return Poll::Ready(Err(e));
        }
        let r = Pin::new(&mut self.io).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &r
            && *n > 0
        {
            self.activity();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Connects to a real address.
pub struct TcpConnector {
    /// Where to connect.
    pub addr: SocketAddr,
}

impl Connector for TcpConnector {
    fn connect(&self) -> LocalBoxFuture<'_, io::Result<Box<dyn Conn>>> {
        Box::pin(async move {
            let s = tokio::net::TcpStream::connect(self.addr).await?;
            s.set_nodelay(true)?;
            Ok(Box::new(s) as Box<dyn Conn>)
        })
    }
}
