//! `server-error-log`: the server stack logged an error (uvicorn's
//! "ASGI callable returned without completing response.", an exception
//! logged by the transport, ...).

use super::{Failure, Observations, Oracle};

pub(super) struct ServerErrorLog;

impl Oracle for ServerErrorLog {
    fn name(&self) -> &'static str {
        "server-error-log"
    }

    fn about(&self) -> &'static str {
        "the server stack logged an ERROR line"
    }

    fn check(&self, obs: &Observations) -> Vec<Failure> {
        obs.trace
            .iter()
            .filter(|l| l.host == "server" && l.level == "ERROR" && !l.target.starts_with("mcpsim"))
            .map(|l| {
                let first = l.msg.lines().next().unwrap_or("").to_string();
                Failure {
                    oracle: "server-error-log",
                    at: l.t,
                    host: l.host.clone(),
                    detail: format!("{}: {}", l.target, l.msg.replace('\n', " | ")),
                    signature: format!("server-error-log · {}: {first}", l.target),
                }
            })
            .collect()
    }
}
