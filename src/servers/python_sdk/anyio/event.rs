//! `anyio.Event` and `asyncio.Event`.
//!
//! They differ in one way that matters: awaiting an already-set asyncio event
//! returns without yielding (so it is not a checkpoint), while anyio's `wait`
//! always passes a checkpoint. uvicorn's `receive()` uses the asyncio one.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::exc::PyResult;
use super::scope::Cx;

/// The waiters: one slot per waiting future, keyed in the order they first
/// waited (so `set` wakes them in that order). A future re-polled with a
/// different waker replaces its own slot, and a future dropped before the
/// event is set takes its slot with it: a long-lived event waited on by
/// many short-lived futures, or re-polled by a root future whose waker is
/// new each time, must not collect wakers (it did: `mcpsim bench --serve`
/// showed native's RSS growing by 64 bytes per session).
#[derive(Default)]
struct Inner {
    set: Cell<bool>,
    wakers: RefCell<BTreeMap<u64, Waker>>,
    next_key: Cell<u64>,
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
        for w in self.0.wakers.take().into_values() {
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
        WaitSet {
            inner: self.0.clone(),
            key: None,
        }
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
pub struct WaitSet {
    inner: Rc<Inner>,
    /// This future's slot among the waiters, once it has waited.
    key: Option<u64>,
}

impl Future for WaitSet {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.set.get() {
            self.key = None;
            return Poll::Ready(());
        }
        let key = match self.key {
            Some(k) => k,
            None => {
                let k = self.inner.next_key.get();
                self.inner.next_key.set(k + 1);
                self.key = Some(k);
                k
            }
        };
        let mut wakers = self.inner.wakers.borrow_mut();
        match wakers.get_mut(&key) {
            Some(w) if w.will_wake(cx.waker()) => {}
            Some(w) => w.clone_from(cx.waker()),
            None => {
                wakers.insert(key, cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

impl Drop for WaitSet {
    fn drop(&mut self) {
        if let Some(k) = self.key {
            self.inner.wakers.borrow_mut().remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    #[test]
    fn a_waiter_holds_one_slot_however_often_it_is_polled_and_none_once_dropped() {
        let ev = Event::new();
        let mut w = Box::pin(ev.wait_raw());
        for _ in 0..1000 {
            // A new waker each time, as a root future may get.
            let waker = Waker::from(Arc::new(Noop));
            assert!(
                w.as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending()
            );
        }
        assert_eq!(ev.0.wakers.borrow().len(), 1);
        let mut other = Box::pin(ev.wait_raw());
        let waker = Waker::from(Arc::new(Noop));
        assert!(
            other
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        assert_eq!(ev.0.wakers.borrow().len(), 2);
        drop(w);
        assert_eq!(ev.0.wakers.borrow().len(), 1);
        ev.set();
        assert!(
            other
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
        );
        assert!(ev.0.wakers.borrow().is_empty());
    }
}
