//! `anyio.create_task_group()`.
//!
//! The semantics that matter, read from anyio 4's asyncio backend:
//! * children run in the group's cancel scope; a child that raises anything
//!   cancels the scope, and its exception (unless a cancellation) is collected;
//! * if the body raises, the scope is cancelled too;
//! * leaving the group waits for *every* child, however long, even when an
//!   outer scope is cancelled meanwhile;
//! * collected exceptions leave as one exception group; a cancellation the
//!   group's own scope caused is swallowed at the exit.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::exc::{Exc, PyResult};
use super::scope::{CancelScope, Cx};

#[derive(Default)]
struct State {
    active: Cell<bool>,
    live: Cell<usize>,
    exceptions: RefCell<Vec<Exc>>,
    idle_waker: RefCell<Option<Waker>>,
}

/// The `tg` of `async with anyio.create_task_group() as tg:`. Cloning gives
/// another handle to the same group (Python code passes `tg` around freely).
#[derive(Clone)]
pub struct TaskGroup {
    scope: CancelScope,
    st: Rc<State>,
}

/// What `task_status.started(value)` reports back to [`TaskGroup::start`].
pub struct TaskStatus<T> {
    slot: Rc<RefCell<StartSlot<T>>>,
}

enum StartSlot<T> {
    Waiting(Option<Waker>),
    Started(Option<T>),
    Failed(Exc),
}

impl<T> TaskStatus<T> {
    /// `task_status.started(value)`.
    pub fn started(&self, value: T) {
        let mut slot = self.slot.borrow_mut();
        if let StartSlot::Waiting(w) = &mut *slot {
            let w = w.take();
            *slot = StartSlot::Started(Some(value));
            if let Some(w) = w {
                w.wake();
            }
        }
    }
}

impl TaskGroup {
    /// `tg.cancel_scope`.
    pub fn cancel_scope(&self) -> &CancelScope {
        &self.scope
    }

    /// `tg.start_soon(func)`: `func` runs as a new task inside the group.
    pub fn start_soon<F, Fut>(&self, name: &'static str, func: F)
    where
        F: FnOnce(Cx) -> Fut,
        Fut: Future<Output = PyResult<()>> + 'static,
    {
        if !self.st.active.get() {
            tracing::error!(target: "anyio", "start_soon({name}) on a task group that is not active");
            return;
        }
        let child = Cx::new_task_in(&self.scope);
        self.spawn_child(name, func(child), None::<Rc<RefCell<StartSlot<()>>>>);
    }

    /// `await tg.start(func)`: like `start_soon`, but waits until the child calls
    /// `task_status.started(value)` and returns that value; an exception the
    /// child raises before that goes to the caller instead of the group.
    pub async fn start<T, F, Fut>(&self, cx: &Cx, name: &'static str, func: F) -> PyResult<T>
    where
        T: 'static,
        F: FnOnce(Cx, TaskStatus<T>) -> Fut,
        Fut: Future<Output = PyResult<()>> + 'static,
    {
        if !self.st.active.get() {
            return Err(Exc::Runtime("This task group is not active".into()));
        }
        let slot = Rc::new(RefCell::new(StartSlot::Waiting(None)));
        let status = TaskStatus { slot: slot.clone() };
        let child = Cx::new_task_in(&self.scope);
        self.spawn_child(name, func(child, status), Some(slot.clone()));
        cx.wait(WaitStarted(slot)).await?
    }

    fn spawn_child<T: 'static>(
        &self,
        name: &'static str,
        fut: impl Future<Output = PyResult<()>> + 'static,
        start: Option<Rc<RefCell<StartSlot<T>>>>,
    ) {
        self.st.live.set(self.st.live.get() + 1);
        let st = self.st.clone();
        let scope = self.scope.clone();
        crate::servers::python_sdk::event_loop::spawn(name, async move {
            let result = fut.await;
            st.live.set(st.live.get() - 1);
            let mut to_group = result.err();
            if let Some(slot) = &start {
                let mut s = slot.borrow_mut();
                if let StartSlot::Waiting(w) = &mut *s {
                    let w = w.take();
                    *s = StartSlot::Failed(to_group.take().unwrap_or_else(|| {
                        Exc::Runtime("Child exited without calling task_status.started()".into())
                    }));
                    if let Some(w) = w {
                        w.wake();
                    }
                }
            }
            if let Some(exc) = to_group {
                if !exc.is_cancelled() {
                    st.exceptions.borrow_mut().push(exc);
                }
                if !scope.effectively_cancelled() {
                    scope.cancel();
                }
            }
            if st.live.get() == 0
                && let Some(w) = st.idle_waker.borrow_mut().take()
            {
                w.wake();
            }
        });
    }
}

struct WaitStarted<T>(Rc<RefCell<StartSlot<T>>>);

impl<T> Future for WaitStarted<T> {
    type Output = PyResult<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<PyResult<T>> {
        let mut slot = self.0.borrow_mut();
        match &mut *slot {
            StartSlot::Waiting(w) => {
                *w = Some(cx.waker().clone());
                Poll::Pending
            }
            StartSlot::Started(v) => match v.take() {
                Some(v) => Poll::Ready(Ok(v)),
                None => Poll::Ready(Err(Exc::Runtime("started() value taken twice".into()))),
            },
            StartSlot::Failed(e) => Poll::Ready(Err(e.clone())),
        }
    }
}

/// `__aexit__`'s wait for the children: not interrupted by anything, but a
/// native `task.cancel()` of the host task cancels the group's scope and is
/// remembered, to be re-raised once every child has ended.
struct WaitIdle<'a> {
    st: Rc<State>,
    host: &'a Cx,
    scope: CancelScope,
    native: bool,
}

impl Future for WaitIdle<'_> {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        if self.host.take_native_cancel() {
            self.native = true;
            self.scope.cancel();
        }
        if self.st.live.get() == 0 {
            return Poll::Ready(self.native);
        }
        *self.st.idle_waker.borrow_mut() = Some(cx.waker().clone());
        self.host.register_task_waker(cx.waker());
        Poll::Pending
    }
}

/// `async with anyio.create_task_group() as tg: <body>`.
pub async fn task_group(
    cx: &Cx,
    body: impl AsyncFnOnce(&Cx, &TaskGroup) -> PyResult<()>,
) -> PyResult<()> {
    let scope = cx.open_scope(false);
    let tg = TaskGroup {
        scope: scope.clone(),
        st: Rc::new(State::default()),
    };
    tg.st.active.set(true);
    let inner = cx.enter(&scope);
    let body_result = body(&inner, &tg).await;

    // __aexit__
    if let Err(e) = &body_result {
        scope.cancel();
        if !e.is_cancelled() {
            tg.st.exceptions.borrow_mut().push(e.clone());
        }
    }
    let had_children = tg.st.live.get() > 0;
    let native = if had_children {
        WaitIdle {
            st: tg.st.clone(),
            host: &inner,
            scope: scope.clone(),
            native: false,
        }
        .await
    } else {
        inner.cancel_shielded_checkpoint().await;
        false
    };
    tg.st.active.set(false);
    let exceptions = tg.st.exceptions.take();
    if !exceptions.is_empty() {
        return scope.exit::<()>(Err(Exc::Group(exceptions))).map(|_| ());
    }
    if native {
        return Err(Exc::TaskCancelled);
    }
    // A cancellation of an enclosing scope that reached the host while it
    // waited for the children is re-raised once they are done (anyio's
    // __aexit__ records it as exc_val); the group's own scope does not stop it.
    if body_result.is_ok() && had_children && inner.parent_scope_cancelled() {
        return Err(Exc::Cancelled);
    }
    scope.exit(body_result).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use super::super::block_on;

    #[test]
    fn a_child_returning_early_can_cancel_its_siblings() {
        block_on(async {
            let cx = Cx::root();
            let finally_ran = Rc::new(Cell::new(false));
            let finally_completed = Rc::new(Cell::new(false));
            let (fr, fc) = (finally_ran.clone(), finally_completed.clone());
            let r = task_group(&cx, async |_cx, tg| {
                tg.start_soon("sleeper", move |cx| async move {
                    let r = cx.sleep(Duration::from_secs(10)).await;
                    // finally: an await in a cancelled scope raises again.
                    fr.set(true);
                    cx.checkpoint().await?;
                    fc.set(true);
                    r
                });
                let scope = tg.cancel_scope().clone();
                tg.start_soon("canceller", move |cx| async move {
                    cx.sleep(Duration::from_millis(1)).await?;
                    scope.cancel();
                    Ok(())
                });
                Ok(())
            })
            .await;
            assert_eq!(r, Ok(()));
            assert!(finally_ran.get());
            assert!(!finally_completed.get());
        });
    }

    #[test]
    fn child_errors_leave_as_a_group() {
        block_on(async {
            let cx = Cx::root();
            let r = task_group(&cx, async |_cx, tg| {
                tg.start_soon("failing", |_cx| async { Err(Exc::BrokenResource) });
                tg.start_soon("sleeper", |cx| async move {
                    cx.sleep(Duration::from_secs(10)).await
                });
                Ok(())
            })
            .await;
            assert_eq!(r, Err(Exc::Group(vec![Exc::BrokenResource])));
        });
    }

    #[test]
    fn start_returns_the_started_value() {
        block_on(async {
            let cx = Cx::root();
            task_group(&cx, async |cx, tg| {
                let v = tg
                    .start(cx, "server", |cx, status| async move {
                        status.started(7u32);
                        cx.sleep(Duration::from_millis(5)).await
                    })
                    .await?;
                assert_eq!(v, 7);
                Ok(())
            })
            .await
            .expect("group");
        });
    }
}
