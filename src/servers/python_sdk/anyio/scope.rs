//! Cancel scopes and the task context that carries them.
//!
//! anyio's cancellation is *level-triggered*: once a scope is cancelled, every
//! later checkpoint of every task inside it raises `Cancelled` at once, again and
//! again, also inside `finally:` blocks, until the code leaves the scope or enters
//! a shielded one. That property decides whether the seed's proposed fix can
//! work, so it is modelled directly rather than approximated with tokio's
//! drop-based cancellation (which would simply stop running the `finally`).
//!
//! Python finds the current scope from the current task; Rust has no such
//! implicit state, so modelled code takes a [`Cx`] — "the task, standing inside
//! this scope" — and every blocking operation goes through it.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::exc::{Exc, PyResult};
use crate::servers::python_sdk::event_loop;

struct Node {
    /// The enclosing scope, known once the scope is entered (a scope made
    /// with [`CancelScope::detached`] has none until then).
    parent: RefCell<Option<CancelScope>>,
    shield: bool,
    cancel_called: Cell<bool>,
    /// Bumped by every [`CancelScope::set_deadline`]; a deadline timer fires
    /// only if no later deadline replaced it.
    deadline_gen: Cell<u64>,
    /// The timer of the current deadline. A replaced deadline's timer is
    /// aborted, as asyncio cancels the replaced `call_at` handle: a transport
    /// re-arms its idle deadline after every request, and a timer left
    /// sleeping out each one would hold memory for the whole idle timeout
    /// (found by `mcpsim bench --serve`: RSS grew with the request count).
    deadline_timer: RefCell<Option<tokio::task::AbortHandle>>,
    children: RefCell<Vec<Weak<Node>>>,
    /// Tasks blocked inside this scope, woken when it becomes cancelled.
    waiters: RefCell<BTreeMap<u64, Waker>>,
    next_waiter: Cell<u64>,
}

impl Drop for Node {
    /// A scope gone for good needs no timer.
    fn drop(&mut self) {
        if let Some(t) = self.deadline_timer.get_mut().take() {
            t.abort();
        }
    }
}

/// An anyio `CancelScope`.
#[derive(Clone)]
pub struct CancelScope(Rc<Node>);

impl CancelScope {
    fn new(parent: Option<CancelScope>, shield: bool) -> Self {
        let node = Rc::new(Node {
            parent: RefCell::new(parent.clone()),
            shield,
            cancel_called: Cell::new(false),
            deadline_gen: Cell::new(0),
            deadline_timer: RefCell::new(None),
            children: RefCell::new(Vec::new()),
            waiters: RefCell::new(BTreeMap::new()),
            next_waiter: Cell::new(0),
        });
        if let Some(p) = parent {
            let mut children = p.0.children.borrow_mut();
            children.retain(|c| c.strong_count() > 0);
            children.push(Rc::downgrade(&node));
        }
        CancelScope(node)
    }

    /// `anyio.CancelScope()` made now and entered later (`with scope:`, see
    /// [`Cx::enter_detached`]): it can be cancelled, or given a deadline,
    /// before anything runs in it — as the dispatcher's per-request scope and
    /// the transport's idle scope are.
    pub fn detached() -> Self {
        CancelScope::new(None, false)
    }

    /// `scope.deadline = at` (`None`: `math.inf`): the scope cancels itself
    /// when the (virtual) clock reaches `at`, unless a later assignment
    /// replaced the deadline first.
    pub fn set_deadline(&self, at: Option<tokio::time::Instant>) {
        let generation = self.0.deadline_gen.get() + 1;
        self.0.deadline_gen.set(generation);
        if let Some(old) = self.0.deadline_timer.borrow_mut().take() {
            old.abort();
        }
        let Some(at) = at else { return };
        // Weak: a scope nobody holds any more has nobody left to cancel.
        let scope = Rc::downgrade(&self.0);
        let timer = event_loop::spawn("anyio.deadline", async move {
            event_loop::sleep_until(at).await;
            if let Some(node) = scope.upgrade()
                && node.deadline_gen.get() == generation
            {
                node.deadline_timer.borrow_mut().take();
                CancelScope(node).cancel();
            }
        });
        *self.0.deadline_timer.borrow_mut() = Some(timer.abort_handle());
    }

    /// `scope.cancel()`: every task inside (and inside non-shielded nested
    /// scopes) raises `Cancelled` at its next checkpoint.
    pub fn cancel(&self) {
        if self.0.cancel_called.replace(true) {
            return;
        }
        self.wake_tree();
    }

    fn wake_tree(&self) {
        let waiters: Vec<Waker> = self.0.waiters.borrow().values().cloned().collect();
        for w in waiters {
            w.wake();
        }
        let children: Vec<Rc<Node>> = self
            .0
            .children
            .borrow()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for child in children {
            if !child.shield {
                CancelScope(child).wake_tree();
            }
        }
    }

    /// `scope.cancel_called`.
    pub fn cancel_called(&self) -> bool {
        self.0.cancel_called.get()
    }

    /// Is code running in this scope cancelled, by it or by an enclosing scope
    /// that no shield separates it from?
    pub fn effectively_cancelled(&self) -> bool {
        let mut s = self.clone();
        loop {
            if s.0.cancel_called.get() {
                return true;
            }
            if s.0.shield {
                return false;
            }
            let parent = s.0.parent.borrow().clone();
            match parent {
                Some(p) => s = p,
                None => return false,
            }
        }
    }

    /// Is an enclosing scope (not this one) cancelled and visible from here?
    fn parent_cancelled(&self) -> bool {
        !self.0.shield
            && self
                .0
                .parent
                .borrow()
                .as_ref()
                .is_some_and(CancelScope::effectively_cancelled)
    }

    fn register(&self, key: u64, waker: &Waker) {
        let mut w = self.0.waiters.borrow_mut();
        match w.get(&key) {
            Some(old) if old.will_wake(waker) => {}
            _ => {
                w.insert(key, waker.clone());
            }
        }
    }

    fn unregister(&self, key: u64) {
        self.0.waiters.borrow_mut().remove(&key);
    }

    fn waiter_key(&self) -> u64 {
        let k = self.0.next_waiter.get();
        self.0.next_waiter.set(k + 1);
        k
    }

    /// `CancelScope.__exit__`: a `Cancelled` that this scope caused stops here,
    /// unless an enclosing scope is cancelled too. `None` means "the block was
    /// cancelled and execution continues after it".
    pub fn exit<T>(&self, result: PyResult<T>) -> PyResult<Option<T>> {
        match result {
            Ok(v) => Ok(Some(v)),
            Err(Exc::Cancelled) if self.cancel_called() && !self.parent_cancelled() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[derive(Default)]
struct TaskState {
    native_cancel: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// A handle on a task, for `task.cancel()`.
#[derive(Clone)]
pub struct TaskHandle(Rc<TaskState>);

impl TaskHandle {
    /// asyncio's `task.cancel()`: the task's current (or next) await raises
    /// `CancelledError` once. Unlike a cancel scope it is edge-triggered and
    /// reaches only this task, not the tasks it started.
    pub fn cancel(&self) {
        self.0.native_cancel.set(true);
        if let Some(w) = self.0.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

/// The current task standing inside its innermost cancel scope.
#[derive(Clone)]
pub struct Cx {
    scope: CancelScope,
    task: Rc<TaskState>,
}

impl Cx {
    /// A fresh task outside every scope (what `loop.create_task` gives uvicorn).
    pub fn root() -> Cx {
        Cx {
            scope: CancelScope::new(None, false),
            task: Rc::new(TaskState::default()),
        }
    }

    /// A new task inside `scope` (a task group's child).
    pub(super) fn new_task_in(scope: &CancelScope) -> Cx {
        Cx {
            scope: scope.clone(),
            task: Rc::new(TaskState::default()),
        }
    }

    /// This task, for `task.cancel()`.
    pub fn task(&self) -> TaskHandle {
        TaskHandle(self.task.clone())
    }

    /// Consume a pending native cancellation.
    pub(super) fn take_native_cancel(&self) -> bool {
        self.task.native_cancel.replace(false)
    }

    /// Wake this task on a native cancellation.
    pub(super) fn register_task_waker(&self, waker: &Waker) {
        *self.task.waker.borrow_mut() = Some(waker.clone());
    }

    /// The exception a cancelled await raises now, if any (consumes a native
    /// cancellation).
    fn pending_cancel(&self) -> Option<Exc> {
        if self.take_native_cancel() {
            Some(Exc::TaskCancelled)
        } else if self.scope.effectively_cancelled() {
            Some(Exc::Cancelled)
        } else {
            None
        }
    }

    /// The innermost scope.
    pub fn scope(&self) -> &CancelScope {
        &self.scope
    }

    /// A new scope nested in the current one (`with CancelScope(shield=..):`).
    pub fn open_scope(&self, shield: bool) -> CancelScope {
        CancelScope::new(Some(self.scope.clone()), shield)
    }

    /// `with scope:` for a scope made with [`CancelScope::detached`]: it now
    /// sits inside the current one (a cancellation it already had stays).
    pub fn enter_detached(&self, scope: &CancelScope) -> Cx {
        {
            let mut parent = scope.0.parent.borrow_mut();
            if parent.is_none() {
                *parent = Some(self.scope.clone());
                let mut children = self.scope.0.children.borrow_mut();
                children.retain(|c| c.strong_count() > 0);
                children.push(Rc::downgrade(&scope.0));
            }
        }
        self.enter(scope)
    }

    /// The same task, now inside `scope`.
    pub fn enter(&self, scope: &CancelScope) -> Cx {
        Cx {
            scope: scope.clone(),
            task: self.task.clone(),
        }
    }

    /// Is a scope enclosing the innermost one cancelled (and visible)?
    pub(super) fn parent_scope_cancelled(&self) -> bool {
        self.scope.parent_cancelled()
    }

    /// Would the next checkpoint raise?
    pub fn is_cancelled(&self) -> bool {
        self.task.native_cancel.get() || self.scope.effectively_cancelled()
    }

    /// `anyio.lowlevel.checkpoint()` (= `sleep(0)`): yield to the loop, then
    /// raise if cancelled.
    pub async fn checkpoint(&self) -> PyResult<()> {
        tokio::task::yield_now().await;
        event_loop::settle().await;
        match self.pending_cancel() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// `checkpoint_if_cancelled()`: yields (and raises) only when cancelled.
    pub async fn checkpoint_if_cancelled(&self) -> PyResult<()> {
        if self.is_cancelled() {
            tokio::task::yield_now().await;
            return Err(self.pending_cancel().unwrap_or(Exc::Cancelled));
        }
        Ok(())
    }

    /// `with CancelScope(shield=True): await sleep(0)`: yield without raising.
    pub async fn cancel_shielded_checkpoint(&self) {
        tokio::task::yield_now().await;
    }

    /// Block on `fut` as a Python `await` on a future does. A scope's
    /// cancellation reaches a task only while the awaited future is still
    /// pending (anyio's `_deliver_cancellation` skips a task whose waiter is
    /// done), one loop iteration after the scope was cancelled; a native
    /// `task.cancel()` is thrown in even over a completed wait.
    pub async fn wait<F: Future>(&self, fut: F) -> PyResult<F::Output> {
        let key = self.scope.waiter_key();
        let mut waited = std::pin::pin!(Cancellable {
            cx: self,
            key,
            yielded: false,
            suspended: false,
            fut,
        });
        let r = waited.as_mut().await;
        // A task that was suspended resumes from the loop's ready queue:
        // after the step running now, and those queued before it.
        if *waited.as_mut().project().suspended {
            event_loop::settle().await;
        }
        r
    }

    /// `anyio.sleep(delay)`.
    pub async fn sleep(&self, delay: Duration) -> PyResult<()> {
        if delay.is_zero() {
            return self.checkpoint().await;
        }
        self.wait(event_loop::sleep(delay)).await
    }

    /// `with anyio.move_on_after(timeout) as scope:` — `None` never times out
    /// (sse-starlette's default `send_timeout`). Returns the scope so the caller
    /// can read `cancel_called` afterwards, and `None` for a cancelled block.
    pub async fn move_on_after<T>(
        &self,
        timeout: Option<Duration>,
        body: impl AsyncFnOnce(&Cx) -> PyResult<T>,
    ) -> (CancelScope, PyResult<Option<T>>) {
        self.move_on_after_in(false, timeout, body).await
    }

    /// `with anyio.move_on_after(timeout, shield=True) as scope:` — what a
    /// cancelled task uses for one last bounded write.
    pub async fn move_on_after_shielded<T>(
        &self,
        timeout: Option<Duration>,
        body: impl AsyncFnOnce(&Cx) -> PyResult<T>,
    ) -> (CancelScope, PyResult<Option<T>>) {
        self.move_on_after_in(true, timeout, body).await
    }

    async fn move_on_after_in<T>(
        &self,
        shield: bool,
        timeout: Option<Duration>,
        body: impl AsyncFnOnce(&Cx) -> PyResult<T>,
    ) -> (CancelScope, PyResult<Option<T>>) {
        let scope = self.open_scope(shield);
        let inner = self.enter(&scope);
        let timer = timeout.map(|t| {
            let s = scope.clone();
            event_loop::spawn("anyio.move_on_after", async move {
                event_loop::sleep(t).await;
                s.cancel();
            })
        });
        let r = body(&inner).await;
        if let Some(t) = timer {
            t.abort();
        }
        let r = scope.exit(r);
        (scope, r)
    }
}

pin_project_lite::pin_project! {
    struct Cancellable<'a, F> {
        cx: &'a Cx,
        key: u64,
        yielded: bool,
        suspended: bool,
        #[pin]
        fut: F,
    }

    impl<'a, F> PinnedDrop for Cancellable<'a, F> {
        fn drop(this: Pin<&mut Self>) {
            this.cx.scope.unregister(this.key);
        }
    }
}

impl<F: Future> Future for Cancellable<'_, F> {
    type Output = PyResult<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.cx.take_native_cancel() {
            return Poll::Ready(Err(Exc::TaskCancelled));
        }
        // A wait that completed is not cancelled (anyio skips tasks whose
        // waiter is done); the next checkpoint will raise.
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        *this.suspended = true;
        if this.cx.scope.effectively_cancelled() {
            // Delivered on the next iteration of the loop.
            if *this.yielded {
                return Poll::Ready(Err(Exc::Cancelled));
            }
            *this.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        // The innermost scope suffices: cancelling any enclosing scope walks
        // down to it (`wake_tree`), stopping only at shields.
        this.cx.scope.register(*this.key, cx.waker());
        this.cx.register_task_waker(cx.waker());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::block_on;

    #[test]
    fn cancellation_is_level_triggered() {
        block_on(async {
            let cx = Cx::root();
            let scope = cx.open_scope(false);
            let inner = cx.enter(&scope);
            scope.cancel();
            assert_eq!(inner.checkpoint().await, Err(Exc::Cancelled));
            // A "finally" that awaits again raises again.
            assert_eq!(inner.checkpoint().await, Err(Exc::Cancelled));
            // A shield protects the await.
            let shield = inner.open_scope(true);
            assert_eq!(inner.enter(&shield).checkpoint().await, Ok(()));
            // Leaving the cancelled scope swallows its own cancellation.
            assert_eq!(scope.exit::<()>(Err(Exc::Cancelled)), Ok(None));
            assert_eq!(cx.checkpoint().await, Ok(()));
        });
    }

    #[test]
    fn cancel_wakes_a_blocked_wait_in_a_nested_scope() {
        block_on(async {
            let cx = Cx::root();
            let outer = cx.open_scope(false);
            let inner_cx = cx.enter(&outer);
            let nested = inner_cx.open_scope(false);
            let nested_cx = inner_cx.enter(&nested);
            let o = outer.clone();
            tokio::task::spawn_local(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                o.cancel();
            });
            let r = nested_cx.wait(std::future::pending::<()>()).await;
            assert_eq!(r, Err(Exc::Cancelled));
            // The nested scope was not itself cancelled: the error passes it.
            assert_eq!(nested.exit::<()>(Err(Exc::Cancelled)), Err(Exc::Cancelled));
            assert_eq!(outer.exit::<()>(Err(Exc::Cancelled)), Ok(None));
        });
    }

    #[test]
    fn move_on_after_none_never_fires() {
        block_on(async {
            let cx = Cx::root();
            let (scope, r) = cx
                .move_on_after(None, async |cx| cx.sleep(Duration::from_secs(60)).await)
                .await;
            assert_eq!(r, Ok(Some(())));
            assert!(!scope.cancel_called());
            let (scope, r) = cx
                .move_on_after(Some(Duration::from_secs(1)), async |cx| {
                    cx.sleep(Duration::from_secs(60)).await
                })
                .await;
            assert_eq!(r, Ok(None));
            assert!(scope.cancel_called());
        });
    }
}
