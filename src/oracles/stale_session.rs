//! `stale-session`: a request carried a session id the answering server
//! process cannot hold — the session was issued before the server restarted,
//! or its client ended it with DELETE — and was answered with something other
//! than 404. The spec reserves 404 for exactly this: it is the client's one
//! signal to start a new session; any other answer leaves it stuck with a
//! session that will never work again.

use super::{Failure, Observations, Oracle};
use crate::scenario::{FaultKind, SERVER_HOST};

pub(super) struct StaleSession;

impl Oracle for StaleSession {
    fn name(&self) -> &'static str {
        "stale-session"
    }

    fn about(&self) -> &'static str {
        "a session the server had forgotten or ended was answered with something other than 404"
    }

    fn check(&self, obs: &Observations) -> Vec<Failure> {
        let mut out = Vec::new();
        for r in &obs.requests {
            let (Some(sid), Some(status)) = (r.session.as_deref(), r.status) else {
                continue;
            };
            if status == 404 {
                continue;
            }
            // When the session was issued (the end of its initialize).
            let Some(issued) = obs
                .requests
                .iter()
                .filter(|i| i.what == "initialize" && i.session_issued.as_deref() == Some(sid))
                .filter_map(|i| i.ended_at)
                .min()
            else {
                continue;
            };
            let restarted = obs.faults.iter().any(|f| {
                f.at > issued
                    && f.at < r.sent_at
                    && matches!(&f.kind, FaultKind::Restart { host } if host == SERVER_HOST)
            });
            let deleted = obs.requests.iter().any(|d| {
                d.http == "DELETE"
                    && d.session.as_deref() == Some(sid)
                    && d.status == Some(200)
                    && d.ended_at.is_some_and(|t| t < r.sent_at)
            });
            let why = match (restarted, deleted) {
                (true, _) => "issued before the server restarted",
                (false, true) => "ended by the client's DELETE",
                _ => continue,
            };
            out.push(Failure {
                oracle: self.name(),
                at: r.ended_at.unwrap_or(r.sent_at),
                host: obs.client_hosts.get(&r.client).cloned().unwrap_or_default(),
                detail: format!(
                    "{} of {} carried session {sid} ({why}) and got HTTP {status}, not 404",
                    r.what, r.client
                ),
                signature: format!("stale-session · {why} · HTTP {status}"),
            });
        }
        out
    }
}
