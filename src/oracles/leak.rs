//! `leak`: request streams still registered in the server when the run is
//! quiescent — no client can ever use them.

use super::{Failure, Observations, Oracle};

pub(super) struct Leak;

impl Oracle for Leak {
    fn name(&self) -> &'static str {
        "leak"
    }

    fn about(&self) -> &'static str {
        "request streams still registered after quiescence"
    }

    fn check(&self, obs: &Observations) -> Vec<Failure> {
        if !obs.end.quiescent {
            return Vec::new();
        }
        let Some(open) = &obs.open_streams else {
            return Vec::new();
        };
        open.iter()
            .map(|s| Failure {
                oracle: "leak",
                at: obs.end.at,
                host: "server".into(),
                detail: format!(
                    "request stream \"{}\" of session {} is still registered at quiescence",
                    s.stream,
                    s.session.as_deref().unwrap_or("(stateless)")
                ),
                signature: format!("leak @ {} · request stream", obs.layers.transport),
            })
            .collect()
    }
}
