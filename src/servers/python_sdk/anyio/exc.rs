//! Python exceptions, as values.
//!
//! The modelled Python code raises and catches exceptions; in Rust every modelled
//! `await` returns `PyResult<T>` and `?` is `raise`. What matters for fidelity is
//! which handler catches what: `except Exception:` does **not** catch a
//! cancellation (`CancelledError` is a `BaseException` on asyncio), and a task
//! group wraps its children's errors in an exception group. [`Exc::is_exception`]
//! answers the first question, [`Exc::Group`] carries the second.

use std::fmt;

/// A Python exception raised inside the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exc {
    /// A cancel scope's cancellation (asyncio `CancelledError` raised by anyio
    /// for a cancelled scope): a `BaseException`, stopped by that scope.
    Cancelled,
    /// A native `task.cancel()` (uvicorn's graceful-shutdown timeout): also a
    /// `CancelledError`, delivered once to that task, which no anyio scope
    /// swallows and which a task group re-raises after its children end.
    TaskCancelled,
    /// `anyio.ClosedResourceError`: this end of the stream was closed.
    ClosedResource,
    /// `anyio.BrokenResourceError`: the other end of the stream is gone.
    BrokenResource,
    /// `anyio.EndOfStream`: every sender closed and the buffer is empty.
    EndOfStream,
    /// `RuntimeError(msg)`.
    Runtime(String),
    /// `starlette.requests.ClientDisconnect`.
    ClientDisconnect,
    /// `(Base)ExceptionGroup("unhandled errors in a TaskGroup", [...])`.
    Group(Vec<Exc>),
    /// `mcp.shared.exceptions.MCPError` (2.3): carries the JSON-RPC error it
    /// answers with (`NoBackChannelError` and a peer's error response among
    /// them).
    Mcp { code: i64, message: String },
    /// Any other exception, named by its Python class.
    Other { class: &'static str, msg: String },
}

/// The result of a modelled Python call.
pub type PyResult<T> = Result<T, Exc>;

impl Exc {
    /// True for anyio/asyncio cancellation.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Exc::Cancelled | Exc::TaskCancelled)
    }

    /// Would `except Exception:` catch this? Cancellation is a `BaseException`;
    /// a group is an `ExceptionGroup` only when none of its members is a
    /// `BaseException`.
    pub fn is_exception(&self) -> bool {
        match self {
            Exc::Cancelled | Exc::TaskCancelled => false,
            Exc::Group(members) => members.iter().all(Exc::is_exception),
            _ => true,
        }
    }

    /// Python's `str(exc)`: the message alone (empty for an exception raised
    /// without arguments), as f-strings and `logger.error(f"...{e}")` show it.
    pub fn py_str(&self) -> String {
        match self {
            Exc::Runtime(msg) | Exc::Other { msg, .. } => msg.clone(),
            Exc::Mcp { message, .. } => message.clone(),
            Exc::Group(m) => format!(
                "unhandled errors in a TaskGroup ({} sub-exception{})",
                m.len(),
                if m.len() == 1 { "" } else { "s" }
            ),
            _ => String::new(),
        }
    }

    /// The Python class name, as a traceback would print it.
    pub fn class(&self) -> &'static str {
        match self {
            Exc::Cancelled | Exc::TaskCancelled => "CancelledError",
            Exc::ClosedResource => "ClosedResourceError",
            Exc::BrokenResource => "BrokenResourceError",
            Exc::EndOfStream => "EndOfStream",
            Exc::Runtime(_) => "RuntimeError",
            Exc::ClientDisconnect => "ClientDisconnect",
            Exc::Group(m) if m.iter().all(Exc::is_exception) => "ExceptionGroup",
            Exc::Group(_) => "BaseExceptionGroup",
            Exc::Mcp { .. } => "MCPError",
            Exc::Other { class, .. } => class,
        }
    }
}

impl fmt::Display for Exc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exc::Runtime(msg) | Exc::Other { msg, .. } => write!(f, "{}: {}", self.class(), msg),
            Exc::Mcp { message, .. } => write!(f, "{}: {}", self.class(), message),
            Exc::Group(members) => {
                write!(f, "{}: unhandled errors in a TaskGroup (", self.class())?;
                for (i, m) in members.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{m}")?;
                }
                write!(f, ")")
            }
            _ => write!(f, "{}()", self.class()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn except_exception_does_not_catch_cancellation() {
        assert!(!Exc::Cancelled.is_exception());
        assert!(Exc::ClosedResource.is_exception());
        assert!(Exc::Group(vec![Exc::BrokenResource]).is_exception());
        assert!(!Exc::Group(vec![Exc::BrokenResource, Exc::Cancelled]).is_exception());
    }
}
