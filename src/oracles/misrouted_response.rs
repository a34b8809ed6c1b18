//! `misrouted-response`: an answer reached the wrong place — a request's
//! stream (or JSON body) carried the answer to another request, an answer's
//! content does not fit the request it came back for, or the standalone GET
//! stream carried a response (the spec allows responses only on a request's
//! own stream, or a resumption of it). Resumptions are judged by
//! `cross-stream-replay`.

use super::{Failure, Observations, Oracle};

pub(super) struct MisroutedResponse;

impl Oracle for MisroutedResponse {
    fn name(&self) -> &'static str {
        "misrouted-response"
    }

    fn about(&self) -> &'static str {
        "a stream carried the answer to another request, or the GET stream carried a response"
    }

    fn check(&self, obs: &Observations) -> Vec<Failure> {
        let mut out = Vec::new();
        for r in obs.requests.iter().filter(|r| r.resume_of.is_none()) {
            // Error statuses carry the server's own error ids.
            if r.status != Some(200) {
                continue;
            }
            let host = obs.client_hosts.get(&r.client).cloned().unwrap_or_default();
            let mut fail = |at, detail: String, kind: &str| {
                out.push(Failure {
                    oracle: "misrouted-response",
                    at,
                    host: host.clone(),
                    detail,
                    signature: format!("misrouted-response · {} · {kind}", r.what),
                });
            };
            for e in r.events.iter().filter(|e| e.is_answer()) {
                let id = e.rpc_id.as_ref().map(|v| v.to_string()).unwrap_or_default();
                match &r.rpc_id {
                    None if r.http == "GET" => fail(
                        e.at,
                        format!(
                            "the GET stream of {} carried a response (id {id})",
                            r.client
                        ),
                        "response on the GET stream",
                    ),
                    Some(want) if r.expects_response && e.rpc_id.as_ref() != Some(want) => fail(
                        e.at,
                        format!(
                            "{} of {} (id {want}) received the answer to id {id}",
                            r.what, r.client
                        ),
                        "another request's answer",
                    ),
                    _ => {}
                }
            }
            if let Some(resp) = &r.response
                && resp.matches == Some(false)
                && !resp.via_resume
            {
                fail(
                    resp.at,
                    format!(
                        "{} of {} was answered \"{}\", which does not fit it",
                        r.what, r.client, resp.summary
                    ),
                    "answer does not fit",
                );
            }
        }
        out
    }
}
