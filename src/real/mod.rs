//! The real world: the same servers and clients on real TCP.
//!
//! Inside a simulation the servers and clients meet turmoil only through a
//! [`Listener`](crate::servers::Listener) and a
//! [`Connector`](crate::client::Connector). Here those are tokio's sockets, the
//! clock is the wall clock, and ids come from the OS:
//!
//! * [`serve`] — `mcpsim serve`: a server stack on a real port, for the
//!   official conformance suite, the official SDK clients, or curl.
//! * [`net`] — tokio TCP behind the two traits, hardened for a public port.
//! * [`framing`] — where each request on a served connection begins and ends.
//! * [`log`] — tracing to stderr, stamped with wall-clock time since start.
//! * [`proxy`] — a TCP fault proxy: hold, partition and crash on real sockets.
//! * [`drive`] — `mcpsim drive`: a realised scenario's clients and faults on
//!   the wall clock, against a real server, judged by the simulator's oracles.
//! * [`observe`] — the document a real server serves so that `drive` can see
//!   its ASGI records, error log and state.
//! * [`report`] — how a drive is reported.
//! * [`throttle`] — a busy host for a real server (the `slow` fault).

pub mod drive;
pub mod framing;
pub mod log;
pub mod net;
pub mod observe;
pub mod proxy;
pub mod report;
pub mod serve;
pub mod throttle;
