//! mcpsim (tour written once the pieces settle).
pub mod asgi;
pub mod cli;
pub mod client;
pub mod error;
pub mod mcp;
pub mod oracles;
pub mod report;
pub mod scenario;
pub mod servers;
pub mod sim;
pub mod task;
pub mod time;
