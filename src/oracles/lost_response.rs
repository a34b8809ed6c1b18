//! `lost-response`: a live client that is still connected never got an answer
//! to a request, although at the end nothing explains it — the network is
//! whole, the server runs and has had nothing in flight for long enough that no
//! answer can still be on the wire. An HTTP error status counts as an answer; a
//! stream that ended cleanly without the JSON-RPC response does not.

use super::{Failure, Observations, Oracle};
use crate::client::BodyEnd;

pub(super) struct LostResponse;

impl Oracle for LostResponse {
    fn name(&self) -> &'static str {
        "lost-response"
    }

    fn about(&self) -> &'static str {
        "a live, connected client never got an answer after the network healed"
    }

    fn check(&self, obs: &Observations) -> Vec<Failure> {
        if !obs.end.server_running {
            return Vec::new();
        }
        let mut out = Vec::new();
        for r in &obs.requests {
            if !r.expects_response || r.response.is_some() {
                continue;
            }
            match &r.end {
                None | Some(BodyEnd::Complete) => {}
                Some(_) => continue,
            }
            let Some(host) = obs.client_hosts.get(&r.client) else {
                continue;
            };
            if !obs.settled_since(r.sent_at) {
                continue;
            }
            if obs.host_dead_since(host, r.sent_at)
                || obs.host_killed_between(host, r.sent_at, obs.end.at)
                || obs
                    .end
                    .cut_links
                    .iter()
                    .any(|(a, b)| a == host || b == host)
            {
                continue;
            }
            let how = match &r.end {
                None => "is still waiting".to_string(),
                _ => "saw its response stream end cleanly without the response".to_string(),
            };
            out.push(Failure {
                oracle: self.name(),
                at: r.ended_at.unwrap_or(obs.end.at),
                host: host.clone(),
                detail: format!(
                    "{} of {} (sent at {}) {how}",
                    r.what,
                    r.client,
                    crate::time::fmt_duration(r.sent_at)
                ),
                signature: format!("lost-response · {}", r.what),
            });
        }
        out
    }
}
