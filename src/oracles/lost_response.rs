//! `lost-response`: a live client that is still connected never got an answer
//! to a request, although at the end nothing explains it — the network is
//! whole, the server runs and has had nothing in flight for long enough that no
//! answer can still be on the wire. An HTTP error status counts as an answer; a
//! stream that ended cleanly without the JSON-RPC response does not.
//!
//! A request whose stream broke counts again once the client resumed it and
//! the server accepted the resumption (200): the server then promised to
//! deliver what was left, the answer included.
//!
//! A client still waiting on a connection that a partition cut is not
//! "connected": turmoil kills such a connection silently and for good, so the
//! answer could not reach it whatever the server did (a client with a
//! `read_timeout` notices, and can resume).

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
        for (orig, resumes) in obs.chains() {
            let r = &obs.requests[orig];
            if !r.expects_response || r.response.is_some() {
                continue;
            }
            let live =
                |x: &crate::client::RequestRecord| matches!(x.end, None | Some(BodyEnd::Complete));
            // The exchange the client is waiting on: the request's own
            // stream, or the resumption the server accepted in its place.
            let (waiting, resumed) = if live(r) {
                (r, false)
            } else {
                match resumes.last().map(|&i| &obs.requests[i]) {
                    Some(l) if l.status == Some(200) && live(l) => (l, true),
                    _ => continue,
                }
            };
            let Some(host) = obs.client_hosts.get(&r.client) else {
                continue;
            };
            if !obs.settled_since(waiting.sent_at) {
                continue;
            }
            if waiting.end.is_none() && obs.link_cut_between(host, waiting.sent_at, obs.end.at) {
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
            let mut how = match &waiting.end {
                None => "is still waiting".to_string(),
                _ => "saw its response stream end cleanly without the response".to_string(),
            };
            if resumed {
                how = format!("resumed its broken stream, and {how}");
            }
            out.push(Failure {
                oracle: self.name(),
                at: waiting.ended_at.unwrap_or(obs.end.at),
                host: host.clone(),
                detail: format!(
                    "{} of {} (sent at {}) {how}",
                    r.what,
                    r.client,
                    crate::time::fmt_duration(r.sent_at)
                ),
                signature: format!(
                    "lost-response · {}{}",
                    r.what,
                    if resumed { " · resumed" } else { "" }
                ),
            });
        }
        out
    }
}
