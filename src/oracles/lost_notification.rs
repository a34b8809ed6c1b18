//! `lost-notification`: a request asked for progress, its SSE stream stayed
//! live until the answer came, and yet fewer progress notifications reached
//! the client (on any of its streams) than the tool reports. The spec lets
//! a server send a request's notifications on that request's stream; a
//! server that sends them anywhere else — or nowhere — loses them although a
//! live stream was right there.
//!
//! How many the tool reports is the tool's contract
//! ([`crate::mcp::tools::steps`]), not the stack's.

use std::collections::BTreeSet;

use super::{Failure, Observations, Oracle};
use crate::client::BodyEnd;
use crate::mcp::tools;

pub(super) struct LostNotification;

impl Oracle for LostNotification {
    fn name(&self) -> &'static str {
        "lost-notification"
    }

    fn about(&self) -> &'static str {
        "progress notifications missing although the request's stream stayed live"
    }

    fn check(&self, obs: &Observations) -> Vec<Failure> {
        let mut out = Vec::new();
        for (orig, resumes) in obs.chains() {
            let r = &obs.requests[orig];
            let Some(token) = &r.progress_token else {
                continue;
            };
            let params = r.params.as_ref();
            if params.and_then(|p| p.get("name")).and_then(|n| n.as_str())
                != Some("progress_operation")
            {
                continue;
            }
            let live = resumes.is_empty()
                && r.status == Some(200)
                && r.content_type
                    .as_deref()
                    .is_some_and(|c| c.starts_with("text/event-stream"))
                && matches!(r.end, Some(BodyEnd::Complete | BodyEnd::LeftOpen))
                && r.response.as_ref().is_some_and(|a| !a.is_error);
            if !live {
                continue;
            }
            let expected = tools::steps(params.and_then(|p| p.get("arguments")));
            let got: BTreeSet<&str> = obs
                .requests
                .iter()
                .filter(|o| o.client == r.client && o.incarnation == r.incarnation)
                .flat_map(|o| o.events.iter())
                .filter(|e| {
                    e.kind == "notifications/progress" && e.progress_token.as_ref() == Some(token)
                })
                .map(|e| e.data.as_str())
                .collect();
            if (got.len() as u64) < expected {
                out.push(Failure {
                    oracle: self.name(),
                    at: r.ended_at.unwrap_or(obs.end.at),
                    host: obs.client_hosts.get(&r.client).cloned().unwrap_or_default(),
                    detail: format!(
                        "{} of {} reported {expected} progress steps; {} reached the client over a live stream",
                        r.what,
                        r.client,
                        got.len()
                    ),
                    signature: format!("lost-notification · {}", r.what),
                });
            }
        }
        out
    }
}
