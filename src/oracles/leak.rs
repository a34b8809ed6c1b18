//! `leak`: what a server still holds at quiescence that no live client can
//! use, and that it will never let go of by itself.
//!
//! * Request streams still registered (every exchange is over).
//! * Sessions orphaned: terminated by DELETE yet still held; never learned by
//!   any client (the `initialize` answer was lost, or the session was made
//!   for a request that was refused); or whose client has gone — crashed or
//!   restarted, left without a goodbye (`vanish`), or started another
//!   session. A client whose script simply ended still holds its session: it
//!   might send the next request at any time.
//!
//! A session the server will reap by itself (the probe reports when) is not
//! a leak — unless that time has passed and it is still there.

use super::{Failure, Observations, Oracle};
use crate::servers::SessionInfo;

pub(super) struct Leak;

impl Oracle for Leak {
    fn name(&self) -> &'static str {
        "leak"
    }

    fn about(&self) -> &'static str {
        "request streams or orphaned sessions still held after quiescence"
    }

    fn check(&self, obs: &Observations) -> Vec<Failure> {
        if !obs.end.quiescent {
            return Vec::new();
        }
        let mut out = Vec::new();
        for s in obs.open_streams.iter().flatten() {
            out.push(Failure {
                oracle: "leak",
                at: obs.end.at,
                host: "server".into(),
                detail: format!(
                    "request stream \"{}\" of session {} is still registered at quiescence",
                    s.stream,
                    s.session.as_deref().unwrap_or("(stateless)")
                ),
                signature: format!("leak @ {} · request stream", obs.layers.transport),
            });
        }
        for s in obs.sessions.iter().flatten() {
            if let Some(why) = orphaned(obs, s) {
                out.push(Failure {
                    oracle: "leak",
                    at: obs.end.at,
                    host: "server".into(),
                    detail: format!("session {} is still held at quiescence: {why}", s.id),
                    signature: format!(
                        "leak @ {} · session ({})",
                        obs.layers.transport,
                        why.split(':').next().unwrap_or(&why)
                    ),
                });
            }
        }
        out
    }
}

/// Why no live client can use session `s`, if none can.
fn orphaned(obs: &Observations, s: &SessionInfo) -> Option<String> {
    if let Some(t) = s.expires_at {
        if t > obs.end.at {
            return None;
        }
        return Some(format!(
            "not reaped: it was due at {}",
            crate::time::fmt_duration(t)
        ));
    }
    if s.terminated {
        return Some("terminated by DELETE".into());
    }
    let adopted = |r: &&crate::client::RequestRecord| {
        r.http == "POST"
            && r.what == "initialize"
            && r.status == Some(200)
            && r.session_issued.is_some()
    };
    let Some(owner) = obs
        .requests
        .iter()
        .filter(adopted)
        .find(|r| r.session_issued.as_deref() == Some(s.id.as_str()))
    else {
        return Some("no client ever learned its id".into());
    };
    let host = obs.client_hosts.get(&owner.client)?;
    if obs.host_killed_between(host, owner.sent_at, obs.end.at) {
        return Some(format!(
            "its client's host crashed: {} on {host}",
            owner.client
        ));
    }
    if obs.departures.iter().any(|d| {
        d.client == owner.client && d.incarnation == owner.incarnation && d.at >= owner.sent_at
    }) {
        return Some(format!(
            "its client left without a goodbye: {}",
            owner.client
        ));
    }
    if obs.requests.iter().filter(adopted).any(|r| {
        r.client == owner.client
            && r.incarnation == owner.incarnation
            && r.sent_at > owner.sent_at
            && r.session_issued != owner.session_issued
    }) {
        return Some(format!(
            "its client started another session: {}",
            owner.client
        ));
    }
    None
}
