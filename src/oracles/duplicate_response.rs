//! `duplicate-response`: one request's JSON-RPC answer reached the client
//! more than once — on its stream and again on a resumption, or twice on
//! one stream. A client may act on each (a tool call's effect applied twice
//! in its own state), and the spec's resumption rules exist to prevent it.

use super::{Failure, Observations, Oracle};

pub(super) struct DuplicateResponse;

impl Oracle for DuplicateResponse {
    fn name(&self) -> &'static str {
        "duplicate-response"
    }

    fn about(&self) -> &'static str {
        "a request's answer reached the client more than once (its stream and resumptions)"
    }

    fn check(&self, obs: &Observations) -> Vec<Failure> {
        let mut out = Vec::new();
        for (orig, resumes) in obs.chains() {
            let r = &obs.requests[orig];
            let Some(id) = r.rpc_id.as_ref().filter(|_| r.expects_response) else {
                continue;
            };
            let answers: Vec<_> = std::iter::once(orig)
                .chain(resumes.iter().copied())
                .flat_map(|i| obs.requests[i].events.iter())
                .filter(|e| e.is_answer() && e.rpc_id.as_ref() == Some(id))
                .collect();
            if let Some(second) = answers.get(1) {
                let host = obs.client_hosts.get(&r.client).cloned().unwrap_or_default();
                out.push(Failure {
                    oracle: self.name(),
                    at: second.at,
                    host,
                    detail: format!(
                        "{} of {} (id {id}) was answered {} times{}",
                        r.what,
                        r.client,
                        answers.len(),
                        if resumes.is_empty() {
                            ""
                        } else {
                            " across its stream and resumptions"
                        }
                    ),
                    signature: format!("duplicate-response · {}", r.what),
                });
            }
        }
        out
    }
}
