//! `anyio.create_memory_object_stream(max_buffer_size)`.
//!
//! Every stream in the modelled MCP transport has buffer 0: a rendezvous where
//! `send` completes only once a receiver has taken the item. The details
//! modelled here follow anyio 4's `streams/memory.py`:
//! * `send`/`receive` pass a checkpoint first, so they raise `Cancelled` at once
//!   in a cancelled scope, even on a closed stream;
//! * a sender hands its item straight to the oldest waiting receiver, skipping
//!   receivers whose task has a cancellation pending;
//! * closing one end wakes the other: receivers see `EndOfStream`, senders
//!   `BrokenResourceError`; using a closed end raises `ClosedResourceError`;
//! * dropping a handle closes nothing (Python only warns when it collects an
//!   unclosed stream), so a forgotten stream blocks its peer forever.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use super::event::Event;
use super::exc::{Exc, PyResult};
use super::scope::{CancelScope, Cx};

struct RecvSlot<T> {
    item: RefCell<Option<T>>,
    event: Event,
    scope: CancelScope,
}

struct SendSlot<T> {
    item: RefCell<Option<T>>,
    event: Event,
}

struct Shared<T> {
    buffer: VecDeque<T>,
    max_buffer: usize,
    open_send: usize,
    open_recv: usize,
    waiting_receivers: VecDeque<(u64, Rc<RecvSlot<T>>)>,
    waiting_senders: VecDeque<(u64, Rc<SendSlot<T>>)>,
    next_id: u64,
}

impl<T> Shared<T> {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// The sending end (`MemoryObjectSendStream`).
pub struct MemorySend<T> {
    shared: Rc<RefCell<Shared<T>>>,
    closed: Cell<bool>,
    /// Ids of this end's blocked sends; after `close`, the ids whose item was
    /// withdrawn (their `send` raises `ClosedResourceError`).
    waiters: RefCell<Vec<u64>>,
}

/// The receiving end (`MemoryObjectReceiveStream`).
pub struct MemoryRecv<T> {
    shared: Rc<RefCell<Shared<T>>>,
    closed: Cell<bool>,
    waiters: RefCell<Vec<u64>>,
}

/// `anyio.create_memory_object_stream[T](max_buffer_size)`.
pub fn memory_object_stream<T>(max_buffer: usize) -> (MemorySend<T>, MemoryRecv<T>) {
    let shared = Rc::new(RefCell::new(Shared {
        buffer: VecDeque::new(),
        max_buffer,
        open_send: 1,
        open_recv: 1,
        waiting_receivers: VecDeque::new(),
        waiting_senders: VecDeque::new(),
        next_id: 0,
    }));
    (
        MemorySend {
            shared: shared.clone(),
            closed: Cell::new(false),
            waiters: RefCell::new(Vec::new()),
        },
        MemoryRecv {
            shared,
            closed: Cell::new(false),
            waiters: RefCell::new(Vec::new()),
        },
    )
}

impl<T> MemorySend<T> {
    /// `send_nowait`: `Ok(None)` when delivered or buffered, `Ok(Some(item))`
    /// when it would block.
    pub fn send_nowait(&self, item: T) -> PyResult<Option<T>> {
        if self.closed.get() {
            return Err(Exc::ClosedResource);
        }
        let mut sh = self.shared.borrow_mut();
        if sh.open_recv == 0 {
            return Err(Exc::BrokenResource);
        }
        while let Some((_, receiver)) = sh.waiting_receivers.pop_front() {
            if !receiver.scope.effectively_cancelled() {
                *receiver.item.borrow_mut() = Some(item);
                receiver.event.set();
                return Ok(None);
            }
        }
        if sh.buffer.len() < sh.max_buffer {
            sh.buffer.push_back(item);
            return Ok(None);
        }
        Ok(Some(item))
    }

    /// `await send(item)`.
    pub async fn send(&self, cx: &Cx, item: T) -> PyResult<()> {
        cx.checkpoint().await?;
        let Some(item) = self.send_nowait(item)? else {
            return Ok(());
        };
        let slot = Rc::new(SendSlot {
            item: RefCell::new(Some(item)),
            event: Event::new(),
        });
        let id = {
            let mut sh = self.shared.borrow_mut();
            let id = sh.id();
            sh.waiting_senders.push_back((id, slot.clone()));
            id
        };
        self.waiters.borrow_mut().push(id);
        let waited = cx.wait(slot.event.wait_raw()).await;
        // finally:
        let item_not_consumed = {
            let mut sh = self.shared.borrow_mut();
            let before = sh.waiting_senders.len();
            sh.waiting_senders.retain(|(i, _)| *i != id);
            sh.waiting_senders.len() != before
        };
        let withdrawn = {
            let mut w = self.waiters.borrow_mut();
            let present = w.contains(&id);
            w.retain(|i| *i != id);
            self.closed.get() && present
        };
        waited?;
        if item_not_consumed {
            Err(Exc::BrokenResource)
        } else if withdrawn {
            Err(Exc::ClosedResource)
        } else {
            Ok(())
        }
    }

    /// `close()` / `aclose()` (no checkpoint in either).
    pub fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        let mut sh = self.shared.borrow_mut();
        sh.open_send -= 1;
        if sh.open_send == 0 {
            for (_, r) in std::mem::take(&mut sh.waiting_receivers) {
                r.event.set();
            }
        }
        let mut withdrawn = Vec::new();
        for id in self.waiters.borrow().iter() {
            if let Some(pos) = sh.waiting_senders.iter().position(|(i, _)| i == id) {
                if let Some((_, slot)) = sh.waiting_senders.remove(pos) {
                    slot.event.set();
                }
                withdrawn.push(*id);
            }
        }
        *self.waiters.borrow_mut() = withdrawn;
    }

    /// Is this end closed?
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }
}

impl<T> MemoryRecv<T> {
    /// `receive_nowait`: `Ok(None)` when it would block.
    pub fn receive_nowait(&self) -> PyResult<Option<T>> {
        if self.closed.get() {
            return Err(Exc::ClosedResource);
        }
        let mut sh = self.shared.borrow_mut();
        if let Some((_, sender)) = sh.waiting_senders.pop_front() {
            if let Some(item) = sender.item.borrow_mut().take() {
                sh.buffer.push_back(item);
            }
            sender.event.set();
        }
        if let Some(item) = sh.buffer.pop_front() {
            return Ok(Some(item));
        }
        if sh.open_send == 0 {
            return Err(Exc::EndOfStream);
        }
        Ok(None)
    }

    /// `await receive()`.
    pub async fn receive(&self, cx: &Cx) -> PyResult<T> {
        cx.checkpoint().await?;
        if let Some(item) = self.receive_nowait()? {
            return Ok(item);
        }
        let slot = Rc::new(RecvSlot {
            item: RefCell::new(None),
            event: Event::new(),
            scope: cx.scope().clone(),
        });
        let id = {
            let mut sh = self.shared.borrow_mut();
            let id = sh.id();
            sh.waiting_receivers.push_back((id, slot.clone()));
            id
        };
        self.waiters.borrow_mut().push(id);
        let waited = cx.wait(slot.event.wait_raw()).await;
        // finally:
        self.shared
            .borrow_mut()
            .waiting_receivers
            .retain(|(i, _)| *i != id);
        self.waiters.borrow_mut().retain(|i| *i != id);
        // A receiver whose wait completed keeps its item (anyio does not
        // cancel a task whose waiter is done; senders skip receivers with a
        // cancellation pending).
        waited?;
        match slot.item.borrow_mut().take() {
            Some(item) => Ok(item),
            None if self.closed.get() => Err(Exc::ClosedResource),
            None => Err(Exc::EndOfStream),
        }
    }

    /// One step of `async for item in stream`: `Ok(None)` ends the loop
    /// (`EndOfStream`); other errors propagate.
    pub async fn next(&self, cx: &Cx) -> PyResult<Option<T>> {
        match self.receive(cx).await {
            Ok(item) => Ok(Some(item)),
            Err(Exc::EndOfStream) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `close()` / `aclose()`.
    pub fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        let mut sh = self.shared.borrow_mut();
        sh.open_recv -= 1;
        if sh.open_recv == 0 {
            for (_, s) in sh.waiting_senders.iter() {
                s.event.set();
            }
        }
        for id in self.waiters.take() {
            if let Some(pos) = sh.waiting_receivers.iter().position(|(i, _)| *i == id)
                && let Some((_, slot)) = sh.waiting_receivers.remove(pos)
            {
                slot.event.set();
            }
        }
    }

    /// Is this end closed?
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use super::super::block_on;

    #[test]
    fn buffer_zero_is_a_rendezvous() {
        block_on(async {
            let cx = Cx::root();
            let (tx, rx) = memory_object_stream::<u32>(0);
            let rx = Rc::new(rx);
            let r2 = rx.clone();
            let got = tokio::task::spawn_local(async move {
                let cx = Cx::root();
                tokio::time::sleep(Duration::from_millis(10)).await;
                r2.receive(&cx).await
            });
            tx.send(&cx, 5).await.expect("send");
            assert_eq!(got.await.expect("join"), Ok(5));
            tx.close();
            assert_eq!(rx.receive(&cx).await, Err(Exc::EndOfStream));
        });
    }

    #[test]
    fn closing_the_receiver_breaks_a_blocked_sender() {
        block_on(async {
            let cx = Cx::root();
            let (tx, rx) = memory_object_stream::<u32>(0);
            tokio::task::spawn_local(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                rx.close();
            });
            assert_eq!(tx.send(&cx, 1).await, Err(Exc::BrokenResource));
        });
    }

    #[test]
    fn send_on_a_closed_end_in_a_cancelled_scope_raises_cancelled_first() {
        block_on(async {
            let cx = Cx::root();
            let scope = cx.open_scope(false);
            let inner = cx.enter(&scope);
            let (tx, _rx) = memory_object_stream::<u32>(0);
            tx.close();
            scope.cancel();
            assert_eq!(tx.send(&inner, 1).await, Err(Exc::Cancelled));
            assert_eq!(tx.send(&cx, 1).await, Err(Exc::ClosedResource));
        });
    }
}
