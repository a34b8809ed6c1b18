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

use super::{Failure, Observations, Oracle};
use crate::time::fmt_duration;

pub(super) struct MissingFinalBody;

impl Oracle for MissingFinalBody {
    fn name(&self) -> &'static str {
        "missing-final-body"
    }

    fn about(&self) -> &'static str {
        "an ASGI app returned after http.response.start without the final http.response.body (more_body: False)"
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
            let sse = start
                .content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("text/event-stream"));
            let layer = if sse {
                format!("{}/{}", obs.layers.sse, obs.layers.http_host)
            } else {
                obs.layers.http_host.to_string()
            };
            let what = r
                .rpc
                .clone()
                .unwrap_or_else(|| format!("{} {}", r.method, r.path));
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
        out
    }
}
