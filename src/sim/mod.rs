//! The simulated world: the fault schedule ([`schedule`]), turmoil adapters ([`net`]), the per-run trace
//! ([`trace`]) and the run loop ([`run`]).

pub mod net;
pub mod schedule;
pub mod trace;
mod world;

pub use world::{EndReason, Outcome, run, run_on};
