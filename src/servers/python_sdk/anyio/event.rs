//! `anyio.Event` and `asyncio.Event`.
//!
//! They differ in one way that matters: awaiting an already-set asyncio event
//! returns without yielding (so it is not a checkpoint), while anyio's `wait`
//! always passes a checkpoint. uvicorn's `receive()` uses the asyncio one.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::exc::PyResult;
use super::scope::Cx;

#[derive(Default)]
struct Inner {
    set: Cell<bool>,
    wakers: RefCell<Vec<Waker>>,
}

/// A one-shot flag that tasks can wait on.
#[derive(Clone, Default)]
pub struct Event(Rc<Inner>);

impl Event {
    /// A new, unset event.
    pub fn new() -> Self {
        Self::default()
    }

    /// `event.set()`: wakes every waiter.
    pub fn set(&self) {
        if self.0.set.replace(true) {
            return;
        }
        for w in self.0.wakers.take() {
            w.wake();
        }
    }

    /// `event.is_set()`.
    pub fn is_set(&self) -> bool {
        self.0.set.get()
    }

    /// `asyncio.Event.clear()`.
    pub fn clear(&self) {
        self.0.set.set(false);
    }

    /// A future that resolves once the event is set (no cancellation).
    pub fn wait_raw(&self) -> WaitSet {
        WaitSet(self.0.clone())
    }

    /// `await anyio.Event().wait()`: a checkpoint even when already set.
    pub async fn wait(&self, cx: &Cx) -> PyResult<()> {
        if self.is_set() {
            return cx.checkpoint().await;
        }
        cx.wait(self.wait_raw()).await
    }

    /// `await asyncio.Event().wait()`: returns at once, without yielding, when
    /// already set.
    pub async fn wait_asyncio(&self, cx: &Cx) -> PyResult<()> {
        if self.is_set() {
            return Ok(());
        }
        cx.wait(self.wait_raw()).await
    }
}

/// See [`Event::wait_raw`].
pub struct WaitSet(Rc<Inner>);

impl Future for WaitSet {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.set.get() {
            return Poll::Ready(());
        }
        let mut wakers = self.0.wakers.borrow_mut();
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
