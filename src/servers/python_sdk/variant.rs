//! The variants of the python-sdk 1.20 model: one model, small named
//! differences.
//!
//! * `python-sdk-1.20` — as released.
//! * `python-sdk-1.20+seed-fix` — the seed repro's proposed change to
//!   `sse_writer`, literally: in its `finally:`, when no event was sent,
//!   `await sse_stream_writer.send({"event": "close", "data": ""})`.
//! * `python-sdk-1.20+fixed` — a change that closes every no-final-body path
//!   of the model: `EventSourceResponse.__call__` finishes a started response
//!   with the final `more_body: False` message, in a shielded scope, however
//!   its task group ended.

/// Which variant of the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// As released.
    AsReleased,
    /// The seed's proposed `sse_writer` change.
    SeedFix,
    /// A final-body guard in `EventSourceResponse`.
    Fixed,
}

impl Variant {
    /// Every variant, in listing order.
    pub const ALL: [Variant; 3] = [Variant::AsReleased, Variant::SeedFix, Variant::Fixed];

    /// The stack name.
    pub fn name(self) -> &'static str {
        match self {
            Variant::AsReleased => "python-sdk-1.20",
            Variant::SeedFix => "python-sdk-1.20+seed-fix",
            Variant::Fixed => "python-sdk-1.20+fixed",
        }
    }

    /// One line for `mcpsim list`.
    pub fn about(self) -> &'static str {
        match self {
            Variant::AsReleased => {
                "mcp 1.20.0 on uvicorn 0.38.0 + sse-starlette 3.0.3 + anyio 4, modelled as released"
            }
            Variant::SeedFix => {
                "as released + the seed repro's proposed sse_writer change (send a close event in finally)"
            }
            Variant::Fixed => {
                "as released + EventSourceResponse always sends the final body, shielded from cancellation"
            }
        }
    }

    /// The seed's change: `sse_writer` sends a `close` event in `finally` when
    /// it sent nothing.
    pub fn sse_writer_close_event(self) -> bool {
        self == Variant::SeedFix
    }

    /// The fix: a started SSE response always gets its final body.
    pub fn final_body_guard(self) -> bool {
        self == Variant::Fixed
    }
}
