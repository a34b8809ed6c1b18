//! The response body channel between the ASGI `send` and hyper, with
//! uvicorn's write flow control.
//!
//! uvicorn writes each body message to the asyncio transport; once the
//! transport buffers more than its high-water mark, `send` waits in
//! `flow.drain()` until the buffer falls below the low-water mark. Here the
//! queue hyper has not polled yet plays the transport buffer.
//!
//! How the body ends is what the client sees: [`BodyChannel::finish`] lets
//! hyper write the terminating chunk; [`BodyChannel::abort`] (uvicorn's
//! `transport.close()` on an incomplete response) makes hyper drop the
//! connection after what was written, so the client reads a chunked body that
//! never terminates.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use crate::servers::python_sdk::anyio::{Cx, Event, PyResult};

/// asyncio's default transport high-water mark (64 KiB).
const HIGH_WATER: usize = 64 * 1024;
/// asyncio's default low-water mark (a quarter of the high-water mark).
const LOW_WATER: usize = HIGH_WATER / 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Complete,
    Aborted,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Bytes>,
    buffered: usize,
    end: Option<End>,
    reader: Option<Waker>,
    drained: Event,
}

/// Shared between the cycle (writer) and hyper (reader).
#[derive(Clone, Default)]
pub(crate) struct BodyChannel(Rc<RefCell<Inner>>);

impl BodyChannel {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn wake_reader(inner: &mut Inner) {
        if let Some(w) = inner.reader.take() {
            w.wake();
        }
    }

    /// Queue a body chunk.
    pub(crate) fn push(&self, data: Bytes) {
        let mut i = self.0.borrow_mut();
        if i.end.is_some() || data.is_empty() {
            return;
        }
        i.buffered += data.len();
        i.queue.push_back(data);
        if i.buffered > HIGH_WATER {
            i.drained = Event::new();
        }
        Self::wake_reader(&mut i);
    }

    /// The final body was sent: hyper writes the terminating chunk.
    pub(crate) fn finish(&self) {
        let mut i = self.0.borrow_mut();
        if i.end.is_none() {
            i.end = Some(End::Complete);
        }
        Self::wake_reader(&mut i);
    }

    /// `transport.close()` on a started response: flush, then drop the
    /// connection without terminating the body.
    pub(crate) fn abort(&self) {
        let mut i = self.0.borrow_mut();
        if i.end.is_none() {
            i.end = Some(End::Aborted);
        }
        i.drained.set();
        Self::wake_reader(&mut i);
    }

    /// `flow.write_paused`.
    pub(crate) fn write_paused(&self) -> bool {
        self.0.borrow().buffered > HIGH_WATER
    }

    /// `await flow.drain()`: until the buffer falls under the low-water mark
    /// (or the connection goes away, see [`BodyChannel::resume`]).
    pub(crate) async fn drain(&self, cx: &Cx) -> PyResult<()> {
        let ev = self.0.borrow().drained.clone();
        ev.wait_asyncio(cx).await
    }

    /// `flow.resume_writing()` (connection lost: nothing will drain).
    pub(crate) fn resume(&self) {
        self.0.borrow().drained.set();
    }

    /// The hyper body reading this channel.
    pub(crate) fn body(&self) -> AsgiBody {
        AsgiBody(self.clone())
    }
}

/// The response body hyper writes.
pub(crate) struct AsgiBody(BodyChannel);

impl Body for AsgiBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let mut i = (self.0).0.borrow_mut();
        if let Some(data) = i.queue.pop_front() {
            i.buffered -= data.len();
            if i.buffered <= LOW_WATER {
                i.drained.set();
            }
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        match i.end {
            Some(End::Complete) => Poll::Ready(None),
            Some(End::Aborted) => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "transport closed with the response incomplete",
            )))),
            None => {
                i.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let i = (self.0).0.borrow();
        i.queue.is_empty() && i.end == Some(End::Complete)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
