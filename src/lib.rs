//! mcpsim — a deterministic simulator for the Model Context Protocol's
//! Streamable HTTP transport.
//!
//! MCP servers answer clients over HTTP, often as a stream of Server-Sent
//! Events, and their hardest bugs live at the edges of a stream: a client
//! that vanishes between the response headers and the first event, a
//! partition during a long tool call, a shutdown. Those bugs depend on timing;
//! mcpsim takes timing away from chance. A run is one seed: it fixes link
//! latencies, fault times and the workload, so the same seed replays the same
//! run byte for byte, and a failing seed fails every time.
//!
//! # A tour of the crate
//!
//! The story of one run, and where each part lives:
//!
//! * [`scenario`] — a scenario file (TOML, in `sims/`) says what runs: the
//!   server stack, logical clients with their scripts, link latency bounds,
//!   faults at exact virtual times or in windows drawn from the seed, and what
//!   each stack is expected to do. Loading validates everything and names the
//!   file, line and field of any problem.
//! * [`sim`] — the world. [`rng`] derives one named ChaCha stream per
//!   concern from the seed; [`sim::schedule`] realises the faults;
//!   [`sim::run`] builds a turmoil simulation (one host for the server, one
//!   per client host), drives it tick by tick, injects each fault at its exact
//!   time, and stops at the scenario's duration or once nothing is left to
//!   happen. [`sim::trace`] stamps every tracing event with virtual time and
//!   host, and hashes the trace.
//! * [`servers`] — the servers under test, behind a small trait: a server is a
//!   process that takes a listener, an id source, signals and a place for its
//!   observations, and knows nothing of the simulator.
//!   [`servers::python_sdk`] models python-sdk layer by layer — anyio's
//!   cancellation semantics, uvicorn as the ASGI host over real hyper
//!   HTTP/1.1, sse-starlette's `EventSourceResponse`, the MCP transport,
//!   session manager and request dispatch — in two releases (mcp 2.3.0,
//!   today's, and 1.20.0, the seed's; what 2.3 changes is listed in one
//!   file, [`servers::python_sdk::release`]) times three variants (as
//!   released, the seed repro's fix, a real fix). Each step of its Python
//!   takes the time the real release takes, on one event loop per process
//!   ([`servers::python_sdk::event_loop`], [`servers::python_sdk::cost`]),
//!   and a `slow` fault stretches it as a busy host does
//!   ([`servers::processing`]). [`servers::tower`] puts
//!   any tower service under test — your own server, and rmcp 3.11.0, the
//!   official Rust SDK, unmodified ([`servers::rmcp`]) — seen from outside
//!   through an HTTP tracking layer.
//! * [`asgi`] — the ASGI contract as types; applications are tower services,
//!   and [`asgi::tracking`] is the tower layer through which the harness sees
//!   every response start, body, final body and disconnect.
//! * [`client`] — the MCP client: runs a script over hyper, parses SSE, and
//!   records what it saw (including how each body ended).
//! * [`oracles`] — one file per oracle; each turns the observations into
//!   failures with a stable signature (oracle + where).
//! * [`report`] and [`cli`] — the JSON and human reports, the command that
//!   replays a failure, and the command line.
//! * [`real`] — the same parts outside the simulator: [`real::serve`] puts a
//!   stack on a real port, and [`real::drive`] replays a scenario's clients
//!   and faults against any real server, through a fault proxy
//!   ([`real::proxy`]) with turmoil's link semantics, judging it with the same
//!   oracles from what the server exposes ([`real::observe`]).
//! * [`view`] — pictures of a run: a self-contained HTML timeline, a
//!   Mermaid sequence diagram for bug reports, Chrome/Perfetto trace JSON.
//! * [`explore`] — many runs: `sweep` streams seeds over worker threads,
//!   `bisect` shrinks a failure to its window, `fuzz` throws mutated scenario
//!   files at the loader. [`bench`] measures mcpsim itself, in simulation and
//!   as `mcpsim serve` under load, always against a baseline of the same run.
//!
//! # Rules of the house
//!
//! Nothing inside a simulation reads the wall clock or the OS's randomness,
//! iterates a hash map where the order could reach the trace, uses an unbiased
//! `select!`, or starts a thread. Every random choice comes from the seed
//! through a named stream, so adding a client does not move a fault. The
//! servers and clients never look at the simulator, and the harness never
//! looks inside a server: it reads what the tracking layer, the clients and
//! the server's probe observed.

pub mod asgi;
pub mod bench;
pub mod cli;
pub mod client;
pub mod error;
pub mod explore;
pub mod mcp;
pub mod oracles;
pub mod real;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod servers;
pub mod sim;
pub mod simulation;
pub mod task;
pub mod time;
pub mod view;

pub use simulation::{ScenarioBuilder, Simulation, Sweep};
