//! `hang`: something is blocked forever at the end of the run. The run did
//! not reach quiescence, and for the last `hang_after` (a scenario setting,
//! 10 s by default) no client made progress — no client host logged anything
//! (a response head, an event, an answer, a new request), no fault landed,
//! and no client had announced a wait (a sleep, a slow tool, a timeout, a
//! backoff) reaching into that time — yet the server still had requests in
//! flight, or a client was still waiting. What the server does on its own
//! (keepalive pings on a stream whose request is stuck, say) is not progress.
//!
//! A wait the network explains is not counted: on a connection a partition
//! killed (turmoil kills it silently and for good — no retransmission, no
//! keepalive — so neither side could ever learn of it), or over a link still
//! cut or held at the end.

use std::collections::BTreeMap;

use super::{Failure, Observations, Oracle};
use crate::time::fmt_duration;

pub(super) struct Hang;

impl Oracle for Hang {
    fn name(&self) -> &'static str {
        "hang"
    }

    fn about(&self) -> &'static str {
        "a client or server task blocked forever (silence with something still waiting)"
    }

    fn check(&self, obs: &Observations) -> Vec<Failure> {
        let end = &obs.end;
        if end.quiescent {
            return Vec::new();
        }
        let explained = |host: &str, since| {
            obs.link_cut_between(host, since, end.at)
                || end.cut_links.iter().any(|(a, b)| a == host || b == host)
        };
        // A server-side exchange with the peer `ip:port`: explained by the
        // network if that peer's host is cut off.
        let explained_peer = |client: &str, since| {
            client
                .rsplit_once(':')
                .and_then(|(ip, _)| obs.hosts_by_ip.get(ip))
                .is_some_and(|h| explained(h, since))
        };
        let last = [
            obs.trace
                .iter()
                .rev()
                .find(|l| l.host != crate::scenario::SERVER_HOST)
                .map(|l| l.t),
            obs.faults.last().map(|f| f.at),
            Some(obs.quiet_until),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or_default();
        if end.at < last + obs.hang_after {
            return Vec::new();
        }
        let silent = end.at - last;
        let mut out = Vec::new();
        if end.server_running {
            let (exempt, blocked): (Vec<_>, Vec<_>) = obs
                .asgi
                .iter()
                .filter(|c| c.incarnation == end.server_incarnation && c.returned.is_none())
                .partition(|c| explained_peer(&c.client, c.called_at));
            let mut blocked: Vec<String> = blocked
                .iter()
                .map(|c| {
                    c.rpc
                        .clone()
                        .unwrap_or_else(|| format!("{} {}", c.method, c.path))
                })
                .collect();
            // A stack without ASGI: its unfinished HTTP exchanges, by the
            // same rule.
            let (exempt_http, blocked_http): (Vec<_>, Vec<_>) = obs
                .http
                .iter()
                .filter(|x| x.incarnation == end.server_incarnation && x.end.is_none())
                .partition(|x| explained_peer(&x.client, x.received_at));
            blocked.extend(blocked_http.iter().map(|x| {
                x.rpc
                    .clone()
                    .unwrap_or_else(|| format!("{} {}", x.method, x.path))
            }));
            let exempt_count = exempt.len() + exempt_http.len();
            // Handlers cannot be told apart: as many as there are explained
            // calls may belong to those.
            let handlers = end.server_in_flight.saturating_sub(exempt_count);
            if !blocked.is_empty() || handlers > 0 {
                let what = if blocked.is_empty() {
                    format!("{handlers} request handler(s) in flight")
                } else {
                    format!(
                        "{} request(s) unfinished ({})",
                        blocked.len(),
                        blocked.join(", ")
                    )
                };
                out.push(Failure {
                    oracle: self.name(),
                    at: last,
                    host: "server".into(),
                    detail: format!(
                        "{what}, and no client has made progress for {}",
                        fmt_duration(silent)
                    ),
                    signature: format!(
                        "hang · server · {}",
                        blocked.first().map(String::as_str).unwrap_or("handler")
                    ),
                });
            }
        }
        // Each running client host: the waits the network does not explain.
        let mut hosts: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (client, host) in &obs.client_hosts {
            if end.hosts_running.get(host) == Some(&true) {
                hosts
                    .entry(host.as_str())
                    .or_default()
                    .push(client.as_str());
            }
        }
        for (host, clients) in hosts {
            let mine = |r: &&crate::client::RequestRecord| clients.contains(&r.client.as_str());
            let incarnation = obs
                .requests
                .iter()
                .filter(mine)
                .map(|r| r.incarnation)
                .max();
            let waiting: Vec<&crate::client::RequestRecord> = obs
                .requests
                .iter()
                .filter(mine)
                .filter(|r| Some(r.incarnation) == incarnation && r.end.is_none())
                .collect();
            let unexplained: Vec<_> = waiting
                .iter()
                .filter(|r| !explained(host, r.sent_at))
                .collect();
            if !waiting.is_empty() && unexplained.is_empty() {
                continue;
            }
            let what = match unexplained.first() {
                Some(r) => format!(
                    "{} is waiting on {} (sent at {})",
                    r.client,
                    r.what,
                    fmt_duration(r.sent_at)
                ),
                None => format!("{} is still running", clients.join(", ")),
            };
            out.push(Failure {
                oracle: self.name(),
                at: last,
                host: host.to_string(),
                detail: format!(
                    "{what}, and no client has made progress for {}",
                    fmt_duration(silent)
                ),
                signature: format!(
                    "hang · client · {}",
                    unexplained
                        .first()
                        .map(|r| r.what.as_str())
                        .unwrap_or("script")
                ),
            });
        }
        out
    }
}
