//! `cross-stream-replay`: a resumption (GET with `Last-Event-ID`) delivered
//! what belongs to another stream. The spec: the server replays the messages
//! that would have been sent on the stream being resumed, and "MUST NOT
//! replay messages that would have been delivered on a different stream".
//! Seen from the client: the resumption of a request's stream carried
//! another request's answer or progress, an answer that does not fit, or an
//! event the client had already received on a different stream; the
//! resumption of the GET stream carried a response.

use std::collections::BTreeMap;

use super::{Failure, Observations, Oracle};

pub(super) struct CrossStreamReplay;

impl Oracle for CrossStreamReplay {
    fn name(&self) -> &'static str {
        "cross-stream-replay"
    }

    fn about(&self) -> &'static str {
        "a resumption replayed messages that belong to another stream"
    }

    fn check(&self, obs: &Observations) -> Vec<Failure> {
        // Where each (client, incarnation, event id) was first received.
        let mut first_seen: BTreeMap<(&str, u32, &str), usize> = BTreeMap::new();
        let mut out = Vec::new();
        let chains = obs.chains();
        let chain_of: BTreeMap<usize, usize> = chains
            .iter()
            .flat_map(|(o, rs)| std::iter::once((*o, *o)).chain(rs.iter().map(move |r| (*r, *o))))
            .collect();
        // Records in log order: an event "first seen" elsewhere was received
        // by a record opened earlier.
        for (i, r) in obs.requests.iter().enumerate() {
            let orig_idx = chain_of.get(&i).copied().unwrap_or(i);
            let orig = &obs.requests[orig_idx];
            let host = obs.client_hosts.get(&r.client).cloned().unwrap_or_default();
            for e in &r.events {
                let mut fail = |detail: String, kind: &str| {
                    out.push(Failure {
                        oracle: "cross-stream-replay",
                        at: e.at,
                        host: host.clone(),
                        detail,
                        signature: format!("cross-stream-replay · {} · {kind}", orig.what),
                    });
                };
                if let Some(id) = &e.id {
                    match first_seen.get(&(r.client.as_str(), r.incarnation, id.as_str())) {
                        Some(&j)
                            if r.resume_of.is_some() && chain_of.get(&j) != Some(&orig_idx) =>
                        {
                            fail(
                                format!(
                                    "resuming {} of {} replayed event {id}, first received on {}",
                                    orig.what, r.client, obs.requests[j].what
                                ),
                                "event of another stream",
                            )
                        }
                        Some(_) => {}
                        None => {
                            first_seen.insert((r.client.as_str(), r.incarnation, id.as_str()), i);
                        }
                    }
                }
                if r.resume_of.is_none() || r.status != Some(200) {
                    continue;
                }
                let theirs = e.rpc_id.as_ref().map(|v| v.to_string()).unwrap_or_default();
                match (&orig.rpc_id, e.is_answer()) {
                    (None, true) => fail(
                        format!(
                            "resuming the GET stream of {} delivered a response (id {theirs})",
                            r.client
                        ),
                        "response on the GET stream",
                    ),
                    (Some(want), true) if e.rpc_id.as_ref() != Some(want) => fail(
                        format!(
                            "resuming {} of {} (id {want}) delivered the answer to id {theirs}",
                            orig.what, r.client
                        ),
                        "another request's answer",
                    ),
                    _ => {}
                }
                if orig.rpc_id.is_some()
                    && let Some(token) = &e.progress_token
                    && orig.progress_token.as_ref() != Some(token)
                {
                    fail(
                        format!(
                            "resuming {} of {} delivered progress for token {token}",
                            orig.what, r.client
                        ),
                        "another request's progress",
                    );
                }
            }
        }
        for (o, resumes) in &chains {
            let orig = &obs.requests[*o];
            if let Some(resp) = &orig.response
                && resp.via_resume
                && resp.matches == Some(false)
                && !resumes.is_empty()
            {
                out.push(Failure {
                    oracle: self.name(),
                    at: resp.at,
                    host: obs
                        .client_hosts
                        .get(&orig.client)
                        .cloned()
                        .unwrap_or_default(),
                    detail: format!(
                        "resuming {} of {} delivered \"{}\", which does not fit it",
                        orig.what, orig.client, resp.summary
                    ),
                    signature: format!("cross-stream-replay · {} · answer does not fit", orig.what),
                });
            }
        }
        out
    }
}
