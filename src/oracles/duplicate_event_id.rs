//! `duplicate-event-id`: SSE event ids must identify events within a
//! session — the spec makes them "globally unique across all streams within
//! that session", since a client resumes from one. This fails when two
//! different events a client received in one session carried the same id, or
//! when a resumption delivered an event again that the client had already
//! received on that stream (replay from the wrong point).

use std::collections::BTreeMap;

use super::{Failure, Observations, Oracle};

pub(super) struct DuplicateEventId;

/// (client, incarnation, session, event id).
type Key<'a> = (&'a str, u32, Option<&'a str>, &'a str);

impl Oracle for DuplicateEventId {
    fn name(&self) -> &'static str {
        "duplicate-event-id"
    }

    fn about(&self) -> &'static str {
        "two events in one session shared an id, or a resumption delivered an event again"
    }

    fn check(&self, obs: &Observations) -> Vec<Failure> {
        // (client, incarnation, session, event id) → (data, chain, record).
        let mut seen: BTreeMap<Key, (&str, usize, usize)> = BTreeMap::new();
        let mut out = Vec::new();
        for (i, r) in obs.requests.iter().enumerate() {
            let chain = r.resume_of.unwrap_or(i);
            let session = r.session.as_deref().or(r.session_issued.as_deref());
            let host = obs.client_hosts.get(&r.client).cloned().unwrap_or_default();
            for e in &r.events {
                let Some(id) = e.id.as_deref() else { continue };
                let key = (r.client.as_str(), r.incarnation, session, id);
                match seen.get(&key) {
                    None => {
                        seen.insert(key, (e.data.as_str(), chain, i));
                    }
                    Some((data, _, j)) if *data != e.data => out.push(Failure {
                        oracle: self.name(),
                        at: e.at,
                        host: host.clone(),
                        detail: format!(
                            "{} received two different events with id {id} ({} and {})",
                            r.client, obs.requests[*j].what, r.what
                        ),
                        signature: format!("duplicate-event-id · reused · {}", r.what),
                    }),
                    Some((_, c, _)) if *c == chain => out.push(Failure {
                        oracle: self.name(),
                        at: e.at,
                        host: host.clone(),
                        detail: format!(
                            "{} received event {id} of {} again",
                            r.client, obs.requests[chain].what
                        ),
                        signature: format!(
                            "duplicate-event-id · redelivered · {}",
                            obs.requests[chain].what
                        ),
                    }),
                    Some(_) => {}
                }
            }
        }
        out
    }
}
