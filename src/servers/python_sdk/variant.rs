//! The stacks of the Python model: a [`Release`] of python-sdk and its
//! stack, times a [`Variant`] — one model, named differences.
//!
//! The variants:
//! * as released — `python-sdk-1.20`, `python-sdk-2.3`;
//! * `+seed-fix` — the seed repro's proposed change to the SSE writer,
//!   literally: in its `finally:`, when no event was sent,
//!   `await sse_stream_writer.send({"event": "close", "data": ""})`. It
//!   applies to 2.3 too: `_run_sse_writer` keeps `sse_writer`'s shape (an
//!   `async with` over the two streams, a `finally:` that logs "Closing SSE
//!   writer" and cleans up);
//! * `+fixed` — a change that closes every no-final-body path of the model:
//!   `EventSourceResponse.__call__` finishes a started response with the
//!   final `more_body: False` message, in a shielded scope, however its task
//!   group ended. sse-starlette 3.7's `__call__` has the same task group as
//!   3.0.3's, so it is the same change on both releases
//!   (`interop/patches/` holds it as a patch for the real package).

use super::release::Release;

/// Which variant of a release runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// As released.
    AsReleased,
    /// The seed's proposed SSE-writer change.
    SeedFix,
    /// A final-body guard in `EventSourceResponse`.
    Fixed,
}

impl Variant {
    /// The seed's change: the SSE writer sends a `close` event in `finally`
    /// when it sent nothing.
    pub fn sse_writer_close_event(self) -> bool {
        self == Variant::SeedFix
    }

    /// The fix: a started SSE response always gets its final body.
    pub fn final_body_guard(self) -> bool {
        self == Variant::Fixed
    }
}

/// One stack of the Python model: a release in one of its variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    /// What the model follows.
    pub release: Release,
    /// What is changed on it.
    pub variant: Variant,
}

impl Model {
    /// Every stack of the model, in listing order: the current release first.
    pub const ALL: [Model; 6] = [
        Model::new(Release::V2_3, Variant::AsReleased),
        Model::new(Release::V2_3, Variant::SeedFix),
        Model::new(Release::V2_3, Variant::Fixed),
        Model::new(Release::V1_20, Variant::AsReleased),
        Model::new(Release::V1_20, Variant::SeedFix),
        Model::new(Release::V1_20, Variant::Fixed),
    ];

    /// `release` in `variant`.
    pub const fn new(release: Release, variant: Variant) -> Self {
        Self { release, variant }
    }

    /// The stack name.
    pub fn name(self) -> &'static str {
        match (self.release, self.variant) {
            (Release::V1_20, Variant::AsReleased) => "python-sdk-1.20",
            (Release::V1_20, Variant::SeedFix) => "python-sdk-1.20+seed-fix",
            (Release::V1_20, Variant::Fixed) => "python-sdk-1.20+fixed",
            (Release::V2_3, Variant::AsReleased) => "python-sdk-2.3",
            (Release::V2_3, Variant::SeedFix) => "python-sdk-2.3+seed-fix",
            (Release::V2_3, Variant::Fixed) => "python-sdk-2.3+fixed",
        }
    }

    /// One line for `mcpsim list`.
    pub fn about(self) -> &'static str {
        match (self.release, self.variant) {
            (Release::V2_3, Variant::AsReleased) => {
                "the current release: mcp 2.3.0 on uvicorn 0.54.0 + sse-starlette 3.7.0 + anyio 4.16, modelled as released"
            }
            (Release::V1_20, Variant::AsReleased) => {
                "mcp 1.20.0 on uvicorn 0.38.0 + sse-starlette 3.0.3 + anyio 4, modelled as released (the seed's version)"
            }
            (_, Variant::SeedFix) => {
                "as released + the seed repro's proposed sse_writer change (send a close event in finally)"
            }
            (_, Variant::Fixed) => {
                "as released + EventSourceResponse always sends the final body, shielded from cancellation"
            }
        }
    }

    /// The model as released, for a variant's "as released" comparisons.
    pub fn as_released(self) -> Model {
        Model::new(self.release, Variant::AsReleased)
    }
}
