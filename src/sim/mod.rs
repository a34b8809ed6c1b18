//! The simulated world: named seed streams ([`rng`]), the realised fault
//! schedule ([`schedule`]), turmoil adapters ([`net`]), the per-run trace
//! ([`trace`]) and the run loop ([`run`]).

pub mod net;
pub mod rng;
pub mod schedule;
pub mod trace;
mod world;

pub use world::{EndReason, Outcome, run};
