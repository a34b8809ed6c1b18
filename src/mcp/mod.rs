//! The MCP pieces shared by servers and clients: JSON-RPC messages
//! ([`jsonrpc`]) and the tool set every mcpsim server offers ([`tools`]), whose
//! answers are a pure function of the call — which is how a client tells that
//! an answer belongs to another request.

pub mod jsonrpc;
pub mod tools;

pub use jsonrpc::*;
