//! `truncated-response`: a client that was still connected saw a response
//! body end without its proper termination (a chunked body cut before its
//! terminating chunk), while the server process was alive — a crash or restart
//! of the server explains a cut, a graceful shutdown does not.

use super::{Failure, Observations, Oracle};
use crate::client::BodyEnd;

pub(super) struct TruncatedResponse;

impl Oracle for TruncatedResponse {
    fn name(&self) -> &'static str {
        "truncated-response"
    }

    fn about(&self) -> &'static str {
        "a connected client saw a body end without proper termination while the server was alive"
    }

    fn check(&self, obs: &Observations) -> Vec<Failure> {
        let mut out = Vec::new();
        for r in &obs.requests {
            let Some(BodyEnd::Truncated(err)) = &r.end else {
                continue;
            };
            let ended = r.ended_at.unwrap_or(obs.end.at);
            if obs.host_killed_between("server", r.sent_at, ended) {
                continue;
            }
            out.push(Failure {
                oracle: self.name(),
                at: ended,
                host: obs
                    .client_hosts
                    .get(&r.client)
                    .cloned()
                    .unwrap_or_else(|| r.client.clone()),
                detail: format!(
                    "{} of {} (HTTP {}): body cut: {err}",
                    r.what,
                    r.client,
                    r.status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into())
                ),
                signature: format!("truncated-response · {}", r.what),
            });
        }
        out
    }
}
