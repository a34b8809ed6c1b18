//! Spawning local tasks whose panics are reported, not swallowed.
//!
//! turmoil runs each host on a current-thread runtime and, unless built with
//! `--cfg tokio_unstable`, a panic in a spawned task vanishes with the task. A
//! simulator that hides its own bugs would report a verdict on a half-dead world,
//! so every task mcpsim spawns goes through [`spawn`]: a panic becomes an ERROR
//! event on the `mcpsim::panic` target, which the harness turns into an internal
//! error of the run.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::task::JoinHandle;

/// The tracing target that marks a panic inside a simulated task.
pub const PANIC_TARGET: &str = "mcpsim::panic";

/// The tracing target a model uses when a run reaches a path it does not
/// cover: like a panic, the run becomes an internal error (exit 3), never a
/// verdict.
pub const UNMODELLED_TARGET: &str = "mcpsim::unmodelled";

/// `tokio::task::spawn_local`, with panics reported (see the module docs).
pub fn spawn<F>(name: &'static str, fut: F) -> JoinHandle<Option<F::Output>>
where
    F: Future + 'static,
    F::Output: 'static,
{
    tokio::task::spawn_local(CatchPanic {
        name,
        fut: Box::pin(fut),
    })
}

struct CatchPanic<F: Future> {
    name: &'static str,
    fut: Pin<Box<F>>,
}

impl<F: Future> Future for CatchPanic<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let name = self.name;
        match catch_unwind(AssertUnwindSafe(|| self.fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Some(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".to_string());
                tracing::error!(target: PANIC_TARGET, task = name, "task panicked: {msg}");
                Poll::Ready(None)
            }
        }
    }
}
