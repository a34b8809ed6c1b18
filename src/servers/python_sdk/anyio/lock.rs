//! `anyio.Lock`.
//!
//! sse-starlette sends its final `more_body: False` message under
//! `async with self._send_lock:`. Acquiring an uncontended anyio lock passes
//! `checkpoint_if_cancelled()` first, so in a cancelled scope the final body is
//! never reached; that is why the lock is modelled and not skipped.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use super::event::Event;
use super::exc::PyResult;
use super::scope::Cx;

#[derive(Default)]
struct Inner {
    locked: bool,
    waiters: VecDeque<(u64, Event)>,
    next_id: u64,
}

/// An anyio lock (not reentrant, FIFO hand-over).
#[derive(Clone, Default)]
pub struct Lock(Rc<RefCell<Inner>>);

impl Lock {
    /// A new, free lock.
    pub fn new() -> Self {
        Self::default()
    }

    /// `await lock.acquire()`.
    pub async fn acquire(&self, cx: &Cx) -> PyResult<()> {
        let free = {
            let l = self.0.borrow();
            !l.locked && l.waiters.is_empty()
        };
        if free {
            cx.checkpoint_if_cancelled().await?;
            self.0.borrow_mut().locked = true;
            cx.cancel_shielded_checkpoint().await;
            return Ok(());
        }
        let (id, ev) = {
            let mut l = self.0.borrow_mut();
            l.next_id += 1;
            let id = l.next_id;
            let ev = Event::new();
            l.waiters.push_back((id, ev.clone()));
            (id, ev)
        };
        match cx.wait(ev.wait_raw()).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // Cancelled while queued: if ownership was already handed to us,
                // pass it on; otherwise leave the queue.
                if ev.is_set() {
                    self.release();
                } else {
                    self.0.borrow_mut().waiters.retain(|(i, _)| *i != id);
                }
                Err(e)
            }
        }
    }

    /// `lock.release()`: hands the lock to the oldest waiter.
    pub fn release(&self) {
        let mut l = self.0.borrow_mut();
        match l.waiters.pop_front() {
            Some((_, ev)) => ev.set(),
            None => l.locked = false,
        }
    }

    /// `async with lock: body` — the lock is released however the body ends.
    pub async fn with<T>(
        &self,
        cx: &Cx,
        body: impl AsyncFnOnce(&Cx) -> PyResult<T>,
    ) -> PyResult<T> {
        self.acquire(cx).await?;
        let r = body(cx).await;
        self.release();
        r
    }
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lock(locked={})", self.0.borrow().locked)
    }
}
