//! The HTTP tracking layer: what any server looks like from the outside.
//!
//! The ASGI tracking layer ([`crate::asgi::tracking`]) sees inside a Python
//! host, between uvicorn and the application. A foreign server has no such
//! seam, so this layer sits where every HTTP server has one: between hyper
//! and the service. For each exchange it records the request (method, path,
//! the JSON-RPC method read as the service reads the body), the response
//! start (status, content type), each body frame, and how the response body
//! ended:
//!
//! - **complete**: the body reported its end, so hyper wrote the end of the
//!   message (the chunked terminator, or the last byte of a sized body);
//! - **error**: the body yielded an error, so hyper aborted the connection
//!   without the end;
//! - **dropped**: the body was dropped before its end — by hyper because the
//!   connection died, or with the process.
//!
//! Whether the peer had vanished by then comes from the connection itself
//! ([`TrackedIo`]): a read that found EOF or an error, or a write that
//! failed. That is the line the `missing-final-body` oracle draws at HTTP
//! level: a body that ends without its end while the client is still
//! connected is a response cut short by the server; one that hyper drops
//! after the peer vanished is hyper doing its job.
//!
//! Records are shared across hyper's `Send` bounds (a service such as rmcp's
//! wants a `Send` request body), so they live behind `Arc<Mutex>` — on one
//! thread, never contended.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::asgi::tracking::StartRecord;
use crate::servers::Conn;

/// A source of (virtual) time that can cross `Send` bounds.
pub type HttpClock = Arc<dyn Fn() -> Duration + Send + Sync>;

/// How a response body ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "how", content = "error", rename_all = "kebab-case")]
pub enum EndHow {
    /// It reported its end; hyper wrote the end of the message.
    Complete,
    /// It yielded an error; hyper aborted the connection.
    Error(String),
    /// It was dropped before its end.
    Dropped,
    /// The service failed or was dropped before it produced a response.
    NoResponse(String),
}

/// The end of an exchange.
#[derive(Debug, Clone, Serialize)]
pub struct EndRecord {
    /// When.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub at: Duration,
    /// How.
    #[serde(flatten)]
    pub how: EndHow,
    /// Had the connection seen its peer vanish by then?
    pub peer_gone: bool,
}

/// One request and its response, as hyper and the service exchanged them.
#[derive(Debug, Clone, Serialize)]
pub struct ExchangeRecord {
    /// Order of arrival, per server host.
    pub seq: u64,
    /// The server process it came to (0 = first start).
    pub incarnation: u32,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// The peer's `host:port`.
    pub client: String,
    /// "tools/call slow_operation", once the service has read the body.
    pub rpc: Option<String>,
    /// When the request head reached the service.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub received_at: Duration,
    /// The response head, once the service produced it.
    pub start: Option<StartRecord>,
    /// Data frames of the response body.
    pub frames: u32,
    /// How the exchange ended (`None`: still open).
    pub end: Option<EndRecord>,
}

/// The exchanges of one server host.
#[derive(Clone)]
pub struct HttpLog(Arc<Mutex<LogState>>);

struct LogState {
    clock: HttpClock,
    next_seq: u64,
    records: BTreeMap<u64, (ExchangeRecord, Arc<Mutex<Tap>>)>,
    forget_ended: bool,
    sealed: bool,
}

impl HttpLog {
    /// A log timed by `clock` that keeps every record.
    pub fn new(clock: HttpClock) -> Self {
        Self(Arc::new(Mutex::new(LogState {
            clock,
            next_seq: 0,
            records: BTreeMap::new(),
            forget_ended: false,
            sealed: false,
        })))
    }

    /// The world has ended: what is dropped from now on (as a simulation is
    /// torn down) is not an event of the run — neither recorded nor traced.
    pub fn seal(&self) {
        self.state().sealed = true;
    }

    /// A log that keeps only the exchanges still open (a long-running
    /// `mcpsim serve` whose records nobody reads).
    pub fn forgetting(clock: HttpClock) -> Self {
        let log = Self::new(clock);
        log.state().forget_ended = true;
        log
    }

    fn state(&self) -> MutexGuard<'_, LogState> {
        // One thread: a poisoned lock means a panic already failed the run,
        // and the records are still readable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every record kept, in arrival order.
    pub fn records(&self) -> Vec<ExchangeRecord> {
        self.state()
            .records
            .values()
            .map(|(r, tap)| {
                let mut r = r.clone();
                r.rpc = lock(tap).rpc.clone();
                r
            })
            .collect()
    }

    /// Exchanges of `incarnation` still open.
    pub fn open_in(&self, incarnation: u32) -> usize {
        self.state()
            .records
            .values()
            .filter(|(r, _)| r.incarnation == incarnation && r.end.is_none())
            .count()
    }

    fn open(&self, incarnation: u32, method: String, path: String, client: String) -> Exchange {
        let tap = Arc::new(Mutex::new(Tap::default()));
        let mut st = self.state();
        let seq = st.next_seq;
        st.next_seq += 1;
        let received_at = (st.clock)();
        let rec = ExchangeRecord {
            seq,
            incarnation,
            method,
            path,
            client,
            rpc: None,
            received_at,
            start: None,
            frames: 0,
            end: None,
        };
        st.records.insert(seq, (rec, tap.clone()));
        Exchange {
            log: self.clone(),
            seq,
            tap,
        }
    }

    fn with(&self, seq: u64, f: impl FnOnce(&mut ExchangeRecord, Duration)) {
        let mut st = self.state();
        let now = (st.clock)();
        if let Some((r, _)) = st.records.get_mut(&seq) {
            f(r, now)
        }
    }

    /// End exchange `seq` (once: the first end is the one that happened).
    fn end(&self, seq: u64, how: EndHow, peer_gone: bool) {
        let mut st = self.state();
        if st.sealed {
            return;
        }
        let now = (st.clock)();
        let forget = st.forget_ended;
        let Some((r, tap)) = st.records.get_mut(&seq) else {
            return;
        };
        if r.end.is_some() {
            return;
        }
        r.rpc = lock(tap).rpc.clone();
        tracing::debug!(
            target: "mcpsim::http",
            "{} {} ({}) ended {how:?} at {:?}{}",
            r.method,
            r.path,
            r.rpc.as_deref().unwrap_or("-"),
            now,
            if peer_gone { " after the peer vanished" } else { "" }
        );
        r.end = Some(EndRecord {
            at: now,
            how,
            peer_gone,
        });
        if forget {
            st.records.remove(&seq);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the service has read of a request body, to name its JSON-RPC method.
#[derive(Default)]
struct Tap {
    /// Bytes read so far, up to [`TAP_LIMIT`].
    buf: Vec<u8>,
    rpc: Option<String>,
}

/// How much of a request body is kept to find its method: MCP requests are
/// small, and a larger body is named by method and path only.
const TAP_LIMIT: usize = 64 * 1024;

/// One exchange's handle on its record.
struct Exchange {
    log: HttpLog,
    seq: u64,
    tap: Arc<Mutex<Tap>>,
}

/// The connection side of the layer: wraps a server connection and notes
/// when its peer vanished (EOF or an error on read, an error on write).
pub struct TrackedIo {
    inner: Box<dyn Conn>,
    peer_gone: Arc<AtomicBool>,
}

impl TrackedIo {
    /// Wrap `inner`; the flag is shared with every exchange on it.
    pub fn new(inner: Box<dyn Conn>) -> (Self, Arc<AtomicBool>) {
        let peer_gone = Arc::new(AtomicBool::new(false));
        (
            Self {
                inner,
                peer_gone: peer_gone.clone(),
            },
            peer_gone,
        )
    }
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &r {
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                self.peer_gone.store(true, Ordering::SeqCst)
            }
            Poll::Ready(Err(_)) => self.peer_gone.store(true, Ordering::SeqCst),
            _ => {}
        }
        r
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Err(_)) = &r {
            self.peer_gone.store(true, Ordering::SeqCst);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        if let Poll::Ready(Err(_)) = &r {
            self.peer_gone.store(true, Ordering::SeqCst);
        }
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The request body a tracked service reads: hyper's, with its bytes noted
/// on the way through (the service reads it exactly as it would untracked).
pub struct Body {
    inner: hyper::body::Incoming,
    tap: Arc<Mutex<Tap>>,
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    let mut tap = lock(&self.tap);
                    let room = TAP_LIMIT.saturating_sub(tap.buf.len());
                    tap.buf.extend_from_slice(&d[..d.len().min(room)]);
                }
                if self.inner.is_end_stream() {
                    self.name_rpc();
                }
            }
            Poll::Ready(None) => self.name_rpc(),
            _ => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Body {
    fn name_rpc(&self) {
        let mut tap = lock(&self.tap);
        if tap.rpc.is_none() {
            tap.rpc = crate::asgi::tracking::describe_rpc(&tap.buf);
            tap.buf = Vec::new();
        }
    }
}

/// A response body on its way to hyper, recording its frames and its end.
pub struct TrackedBody<B> {
    inner: Pin<Box<B>>,
    exchange: Exchange,
    peer_gone: Arc<AtomicBool>,
    ended: bool,
}

impl<B> TrackedBody<B> {
    fn finish(&mut self, how: EndHow) {
        if !self.ended {
            self.ended = true;
            self.exchange.log.end(
                self.exchange.seq,
                how,
                self.peer_gone.load(Ordering::SeqCst),
            );
        }
    }
}

impl<B> HttpBody for TrackedBody<B>
where
    B: HttpBody,
    B::Error: std::fmt::Display,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let r = self.inner.as_mut().poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if f.is_data() {
                    self.exchange
                        .log
                        .with(self.exchange.seq, |r, _| r.frames += 1);
                }
                if self.inner.is_end_stream() {
                    self.finish(EndHow::Complete);
                }
            }
            Poll::Ready(Some(Err(e))) => {
                let e = e.to_string();
                self.finish(EndHow::Error(e));
            }
            Poll::Ready(None) => self.finish(EndHow::Complete),
            Poll::Pending => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for TrackedBody<B> {
    fn drop(&mut self) {
        // A body that reported its end is already recorded (hyper does not
        // poll one that says it has ended); any other is dropped unfinished.
        self.finish(EndHow::Dropped);
    }
}

/// Opens and closes exchange records around a service call.
pub(crate) struct Tracker {
    pub log: HttpLog,
    pub incarnation: u32,
}

/// An exchange whose service call is under way: dropped before it produced
/// a response, it records that.
pub(crate) struct Pending {
    exchange: Option<Exchange>,
    peer_gone: Arc<AtomicBool>,
}

impl Tracker {
    /// A request arrived on a connection (peer `client`): open its record
    /// and hand the service its tracked body.
    pub fn request(
        &self,
        req: http::Request<hyper::body::Incoming>,
        client: &str,
        peer_gone: &Arc<AtomicBool>,
    ) -> (http::Request<Body>, Pending) {
        let exchange = self.log.open(
            self.incarnation,
            req.method().to_string(),
            req.uri().path().to_string(),
            client.to_string(),
        );
        let tap = exchange.tap.clone();
        let req = req.map(|inner| Body { inner, tap });
        (
            req,
            Pending {
                exchange: Some(exchange),
                peer_gone: peer_gone.clone(),
            },
        )
    }
}

impl Pending {
    /// The service answered: record the head and track the body.
    pub fn respond<B>(mut self, resp: http::Response<B>) -> http::Response<TrackedBody<B>>
    where
        B: HttpBody,
    {
        let Some(exchange) = self.exchange.take() else {
            unreachable!("a pending exchange responds once")
        };
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        exchange.log.with(exchange.seq, |r, now| {
            r.start = Some(StartRecord {
                at: now,
                status,
                content_type,
            })
        });
        let peer_gone = self.peer_gone.clone();
        resp.map(|b| {
            let mut body = TrackedBody {
                ended: false,
                inner: Box::pin(b),
                exchange,
                peer_gone,
            };
            if body.inner.is_end_stream() {
                // An empty body: hyper will not poll it.
                body.finish(EndHow::Complete);
            }
            body
        })
    }

    /// The service failed: hyper closes the connection without a response.
    pub fn fail(mut self, error: &str) {
        if let Some(x) = self.exchange.take() {
            x.log.end(
                x.seq,
                EndHow::NoResponse(error.to_string()),
                self.peer_gone.load(Ordering::SeqCst),
            );
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(x) = self.exchange.take() {
            x.log.end(
                x.seq,
                EndHow::NoResponse("dropped before the service answered".into()),
                self.peer_gone.load(Ordering::SeqCst),
            );
        }
    }
}

/// Turn a body's data into `Bytes` (the one data type the type-erased
/// service hands hyper).
pub(crate) struct BytesBody<B>(pub Pin<Box<B>>);

impl<B> HttpBody for BytesBody<B>
where
    B: HttpBody,
    B::Error: Into<super::BoxError>,
{
    type Data = Bytes;
    type Error = super::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, super::BoxError>>> {
        match self.0.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(f))) => {
                Poll::Ready(Some(Ok(f.map_data(|mut d| d.copy_to_bytes(d.remaining())))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}
