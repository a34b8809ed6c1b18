//! Exploration: from one seed to many, and from a failure to its essence.
//!
//! * [`sweep`] — run a range of seeds on all cores, group failures by
//!   signature;
//! * [`seed_row`] — one seed's result as the summary counts it, read from
//!   its JSON line, so a sweep and the [`merge`] of its shards agree;
//! * [`merge`] — combine shards' `sweep --json` output into one sweep's
//!   results, and say where they do not cover the range exactly once;
//! * [`bisect`] — shrink a failing seed's schedule to a 1-minimal exact one
//!   ([`shrink`]) and find each fault's race window;
//! * [`determinism`] — check that a seed replays the same trace, in this
//!   process and in a fresh one;
//! * [`fuzz`] — mutate the scenario format and check that bad input is one
//!   bounded line and valid input runs.

pub mod bisect;
pub mod determinism;
pub mod fuzz;
pub mod merge;
pub mod seed_row;
pub mod shrink;
pub mod sweep;
