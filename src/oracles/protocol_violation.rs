//! `protocol-violation`: ASGI messages sent out of order (a body before the
//! start, a second start, anything after the final body).

use super::{Failure, Observations, Oracle};

pub(super) struct ProtocolViolation;

impl Oracle for ProtocolViolation {
    fn name(&self) -> &'static str {
        "protocol-violation"
    }

    fn about(&self) -> &'static str {
        "an ASGI app sent messages out of the contract's order"
    }

    fn check(&self, obs: &Observations) -> Vec<Failure> {
        obs.asgi
            .iter()
            .flat_map(|r| {
                let what = r
                    .rpc
                    .clone()
                    .unwrap_or_else(|| format!("{} {}", r.method, r.path));
                r.violations.iter().map(move |v| Failure {
                    oracle: "protocol-violation",
                    at: v.at,
                    host: "server".into(),
                    detail: format!("{what}: {}", v.what),
                    signature: format!("protocol-violation @ {} · {}", what, v.what),
                })
            })
            .collect()
    }
}
