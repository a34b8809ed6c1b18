//! uvicorn 0.38.0 as the ASGI host, over hyper HTTP/1.1.
//!
//! * [`server`] — the process: accept loop, main loop, graceful shutdown;
//! * `cycle` — one request's `receive`/`send` and the after-return rules that
//!   decide whether an incomplete response is logged and cut or passes
//!   silently;
//! * `body` — the response body channel and write flow control.

mod body;
mod cycle;
pub mod server;

pub use server::{Config, Lifespan, Server};
