//! The semantics of Python's anyio (and the bits of asyncio uvicorn uses), in
//! Rust, on tokio's current-thread runtime.
//!
//! The missing final body of python-sdk #1437 is a consequence of how anyio
//! cancels: a task group's scope is cancelled when one wrapped task returns,
//! and from then on every checkpoint inside it raises, in `finally:` blocks
//! too. This module gives the rest of the Python model exactly those rules:
//!
//! * [`Cx`] — the running task inside its innermost [`CancelScope`]; every
//!   blocking operation takes one, as every Python `await` implicitly does;
//! * [`task_group`] / [`TaskGroup`] — structured concurrency with anyio's
//!   exit rules (wait for all children, group the errors);
//! * [`memory_object_stream`] — buffer-0 rendezvous streams with the
//!   closed/broken/end-of-stream errors;
//! * [`Event`] and [`Lock`] with their checkpoint behaviour;
//! * [`Exc`] — exceptions as values, with `except Exception` semantics.
//!
//! Python tasks map to tokio local tasks; tokio's FIFO local run queue stands in
//! for asyncio's ready queue.

mod event;
mod exc;
mod lock;
mod memory;
mod scope;
mod task_group;

pub use event::Event;
pub use exc::{Exc, PyResult};
pub use lock::Lock;
pub use memory::{MemoryRecv, MemorySend, memory_object_stream};
pub use scope::{CancelScope, Cx, TaskHandle};
pub use task_group::{TaskGroup, TaskStatus, task_group};

/// Run a future on a paused current-thread runtime (unit tests).
#[cfg(test)]
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    tokio::task::LocalSet::new().block_on(&rt, f)
}
