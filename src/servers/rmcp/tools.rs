//! mcpsim's four tools as an rmcp `ServerHandler`, written as any rmcp user
//! would write them: `get_greeting`, `slow_operation`, `progress_operation`
//! and `ask_user`, with the names, arguments and answers of the contract in
//! [`crate::mcp::tools`] (so every oracle that checks an answer against its
//! request works unchanged).
//!
//! The handler goes through rmcp's public API only: `RequestContext::ct` for
//! cancellation, `Peer::notify_progress` for progress, and
//! `Peer::create_elicitation` for `ask_user`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ErrorData, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler};
use serde_json::{Value, json};

use crate::mcp::tools;

/// The handler. `in_flight` counts the tool calls running, for the probe.
#[derive(Clone, Default)]
pub struct Tools {
    pub in_flight: Arc<AtomicUsize>,
}

/// Counts one running call for as long as it lives.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn new(n: &Arc<AtomicUsize>) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Running(n.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A JSON value (from mcpsim's tool contract) as an rmcp model type.
fn model<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ErrorData> {
    serde_json::from_value(v).map_err(|e| ErrorData::internal_error(e.to_string(), None))
}

fn text(t: String, is_error: bool) -> Result<CallToolResponse, ErrorData> {
    let r: CallToolResult = model(tools::text_result(t, is_error))?;
    Ok(r.into())
}

impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        model(tools::list())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let _running = Running::new(&self.in_flight);
        let args = request.arguments.map(Value::Object);
        let args = args.as_ref();
        let name = request.name.as_ref();
        match name {
            "get_greeting" => text(tools::text(name, args).unwrap_or_default(), false),
            "slow_operation" => {
                let s = match tools::seconds(name, args) {
                    Ok(s) => s,
                    Err(e) => return text(e, true),
                };
                tokio::select! {
                    biased;
                    _ = context.ct.cancelled() => Err(ErrorData::internal_error("cancelled", None)),
                    _ = tokio::time::sleep(Duration::from_secs_f64(s)) => {
                        text(tools::text(name, args).unwrap_or_default(), false)
                    }
                }
            }
            "progress_operation" => {
                let s = match tools::seconds(name, args) {
                    Ok(s) => s,
                    Err(e) => return text(e, true),
                };
                let steps = tools::steps(args);
                let token = context.meta.get_progress_token();
                let step = Duration::from_secs_f64(s / steps as f64);
                for i in 1..=steps {
                    tokio::select! {
                        biased;
                        _ = context.ct.cancelled() => {
                            return Err(ErrorData::internal_error("cancelled", None));
                        }
                        _ = tokio::time::sleep(step) => {}
                    }
                    if let Some(token) = &token {
                        let p =
                            model(json!({"progressToken": token, "progress": i, "total": steps}))?;
                        // A client that has gone cannot be told; the call goes on.
                        let _ = context.peer.notify_progress(p).await;
                    }
                }
                text(tools::text(name, args).unwrap_or_default(), false)
            }
            "ask_user" => {
                let params = model(tools::elicitation_params(tools::question(args)))?;
                match context.peer.create_elicitation(params).await {
                    Ok(answer) => {
                        let result = serde_json::to_value(answer)
                            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
                        let msg = crate::mcp::Message::Response {
                            id: json!(0),
                            result,
                        };
                        let r: CallToolResult = model(tools::elicitation_result(&msg))?;
                        Ok(r.into())
                    }
                    Err(e) => text(format!("Error executing tool ask_user: {e}"), true),
                }
            }
            other => text(format!("Unknown tool: {other}"), true),
        }
    }
}
