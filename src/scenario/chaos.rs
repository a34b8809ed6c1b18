//! `[chaos]`: faults drawn from the seed for a scenario whose clients are
//! written out — the swarm's fault menu, aimed at a fixed workload, so each
//! catalogue scenario meets every kind of fault across its seeds.
//!
//! ```toml
//! [chaos]
//! faults = [1, 2]                 # how many, drawn per seed
//! kinds = ["crash", "partition"]  # from which kinds (default: all)
//! window = ["0s", "4s"]           # when
//! load = [2, 50]                  # the factor of a drawn `slow` fault
//! ```
//!
//! The draws come from their own streams (`chaos/shape`, `chaos/fault/<j>`),
//! and the realised scenario lists the faults exactly.

use std::time::Duration;

use serde::Serialize;
use toml::Spanned;

use super::Scenario;
use super::file::RawChaos;
use super::parse::Ctx;
use super::swarm::{between, duration_range, fault, kinds, load_range, range};
use crate::error::InputError;
use crate::rng::Seeds;
use crate::servers::Factor;

/// The bounds of a chaos table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChaosSpec {
    /// How many faults.
    pub faults: (u32, u32),
    /// Which kinds.
    pub kinds: Vec<String>,
    /// When.
    pub window: (Duration, Duration),
    /// The factor of a drawn `slow` fault.
    pub load: (Factor, Factor),
}

/// Validate a `[chaos]` table.
pub(super) fn parse(
    c: &Ctx,
    raw: &Spanned<RawChaos>,
    duration: Duration,
) -> Result<ChaosSpec, InputError> {
    let r = raw.get_ref();
    let span = raw.span();
    let kinds = kinds(c, span.clone(), "chaos.kinds", &r.kinds)?;
    let faults = range(c, span.clone(), "chaos.faults", &r.faults, (1, 2), (0, 20))?;
    let window = duration_range(
        c,
        span.clone(),
        "chaos.window",
        &r.window,
        (Duration::ZERO, duration),
    )?;
    if window.1 > duration {
        return c.err(span, "chaos.window", "ends after the scenario's duration");
    }
    if faults.1 > 0 && kinds.is_empty() {
        return c.err(
            span,
            "chaos.kinds",
            "faults are drawn but no kind is allowed",
        );
    }
    Ok(ChaosSpec {
        faults,
        kinds,
        window,
        load: load_range(c, span, "chaos.load", &r.load)?,
    })
}

/// Add the drawn faults to `scenario`.
pub(super) fn generate(scenario: &mut Scenario, ch: &ChaosSpec, seeds: &Seeds) {
    let n = between(&mut seeds.stream("chaos/shape"), ch.faults);
    let hosts = scenario.client_hosts();
    for j in 0..n {
        let mut r = seeds.stream(&format!("chaos/fault/{j}"));
        let f = fault(
            &mut r,
            &ch.kinds,
            ch.window,
            &scenario.clients,
            &hosts,
            ch.load,
        );
        scenario.faults.push(f);
    }
}
