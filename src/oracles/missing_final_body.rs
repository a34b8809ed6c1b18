//! `missing-final-body`: the application returned after `http.response.start`
//! without the final `http.response.body` (`more_body: False`) — python-sdk
//! #1437.
//!
//! The failure says whether the host had registered the client's disconnect
//! when the application returned. After a registered disconnect (the #1437
//! shape) uvicorn says nothing and the client is gone; what is broken is the
//! ASGI contract, which middleware that waits for completion and cleanup rely
//! on. With the client still connected, the host closes the connection and the
//! client reads a truncated body.
//!
//! For a stack served over hyper without ASGI (a tower service: rmcp, your
//! own) the same failure has an HTTP form, judged from the HTTP tracking
//! layer's records: the response body ended without its end — it yielded an
//! error, or was dropped unfinished — while the connection had not seen its
//! peer vanish and the server process was not killed. The client then reads
//! a body cut short by the server. A body that hyper drops *after* the peer
//! vanished is not a failure at HTTP level: dropping it is how hyper tells
//! the service the client left, and there is no end left to owe — unlike
//! ASGI, where the application itself still owes the host its final
//! message. Those ends are kept in the records (and the trace) so a report
//! can show the difference.

use super::{Failure, Observations, Oracle};
use crate::servers::tower::EndHow;
use crate::time::fmt_duration;

pub(super) struct MissingFinalBody;

impl Oracle for MissingFinalBody {
    fn name(&self) -> &'static str {
        "missing-final-body"
    }

    fn about(&self) -> &'static str {
        "an ASGI app returned after http.response.start without the final http.response.body (more_body: False); over plain hyper, a response body ended without its end while the client was connected"
    }

    fn check(&self, obs: &Observations) -> Vec<Failure> {
        let mut out = Vec::new();
        for r in &obs.asgi {
            let (Some(ret), Some(start)) = (&r.returned, &r.start) else {
                continue;
            };
            if r.final_body_at.is_some() {
                continue;
            }
            let (layer, what) = locate(obs, start, r.rpc.as_deref(), &r.method, &r.path);
            let (shape, consequence) = if ret.host_saw_disconnect {
                (
                    "after-disconnect",
                    "the host had registered the client's disconnect, so it stays silent; middleware waiting for completion never sees it",
                )
            } else {
                (
                    "client-connected",
                    "the client was still connected: the host closes the connection and the client reads a truncated body",
                )
            };
            let raised = ret
                .error
                .as_ref()
                .map(|e| format!(" (raised {e})"))
                .unwrap_or_default();
            out.push(Failure {
                oracle: self.name(),
                at: ret.at,
                host: "server".into(),
                detail: format!(
                    "{what}: the app returned at {}{raised} after http.response.start ({} at {}) and {} partial bod{}, without the final body; {consequence}",
                    fmt_duration(ret.at),
                    start.status,
                    fmt_duration(start.at),
                    r.partial_bodies,
                    if r.partial_bodies == 1 { "y" } else { "ies" },
                ),
                signature: format!("missing-final-body @ {layer} · {what} · {shape}"),
            });
        }
        out.extend(self.check_http(obs));
        out
    }
}

impl MissingFinalBody {
    /// The HTTP form (see the module docs).
    fn check_http(&self, obs: &Observations) -> Vec<Failure> {
        let mut out = Vec::new();
        for r in &obs.http {
            let (Some(start), Some(end)) = (&r.start, &r.end) else {
                continue;
            };
            let how = match &end.how {
                EndHow::Dropped => "was dropped unfinished".to_string(),
                EndHow::Error(e) => format!("yielded an error ({e})"),
                EndHow::Complete | EndHow::NoResponse(_) => continue,
            };
            if end.peer_gone || obs.host_killed_between("server", r.received_at, end.at) {
                continue;
            }
            let (layer, what) = locate(obs, start, r.rpc.as_deref(), &r.method, &r.path);
            out.push(Failure {
                oracle: self.name(),
                at: end.at,
                host: "server".into(),
                detail: format!(
                    "{what}: the response body {how} at {} after the head ({} at {}) and {} data frame{}, while the client was still connected: hyper cannot end the message, and the client reads a body cut short",
                    fmt_duration(end.at),
                    start.status,
                    fmt_duration(start.at),
                    r.frames,
                    if r.frames == 1 { "" } else { "s" },
                ),
                signature: format!("missing-final-body @ {layer} · {what} · client-connected"),
            });
        }
        out
    }
}

/// Where a failure is: the layer that produced the response (the SSE
/// producer over the HTTP host for an event stream) and the request kind.
fn locate(
    obs: &Observations,
    start: &crate::asgi::tracking::StartRecord,
    rpc: Option<&str>,
    method: &str,
    path: &str,
) -> (String, String) {
    let sse = start
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("text/event-stream"));
    let layer = if sse {
        format!("{}/{}", obs.layers.sse, obs.layers.http_host)
    } else {
        obs.layers.http_host.to_string()
    };
    let what = rpc.map_or_else(|| format!("{method} {path}"), str::to_string);
    (layer, what)
}
