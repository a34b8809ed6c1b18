//! Realising a scenario for a seed: every random part fixed.
//!
//! The realised scenario is what a run actually executes: the swarm expanded
//! into clients and faults, every fault window resolved to an exact time, each
//! client host's link latency drawn (in whole ticks: turmoil moves messages
//! once per tick), and every drawn sleep fixed. It can be written out as TOML
//! ([`Scenario::to_toml`]) and replayed exactly — that is what `mcpsim bisect`
//! shrinks and writes.

use std::time::Duration;

use rand::RngExt;

use super::{Scenario, When, chaos, swarm};
use crate::client::script::Action;
use crate::rng::Seeds;

/// A time in `[from, to]` on tick boundaries, from the fault's own stream.
fn draw_time(
    seeds: &Seeds,
    index: usize,
    from: Duration,
    to: Duration,
    tick: Duration,
) -> Duration {
    let t = tick.as_nanos();
    let lo = from.as_nanos().div_ceil(t);
    let hi = (to.as_nanos() / t).max(lo);
    let n = seeds
        .stream(&format!("faults/{index}"))
        .random_range(lo as u64..=hi as u64);
    Duration::from_nanos(n * t as u64)
}

impl Scenario {
    /// Is anything left to draw?
    pub fn is_exact(&self) -> bool {
        self.swarm.is_none()
            && self.chaos.is_none()
            && self.faults.iter().all(|f| matches!(f.when, When::At(_)))
            && self
                .client_hosts()
                .iter()
                .all(|h| self.links.contains_key(h))
            && self
                .clients
                .iter()
                .flat_map(|c| &c.steps)
                .all(|s| !matches!(s.action, Action::Sleep { min, max } if min != max))
    }

    /// Client hosts in order of first appearance.
    pub fn client_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = Vec::new();
        for c in &self.clients {
            if !hosts.contains(&c.host) {
                hosts.push(c.host.clone());
            }
        }
        hosts
    }

    /// This scenario with every random part fixed for `seed`.
    pub fn realise(&self, seed: u64) -> Scenario {
        let seeds = Seeds::new(seed);
        let mut s = self.clone();
        if let Some(sw) = self.swarm.clone() {
            swarm::generate(&mut s, &sw, &seeds);
            s.swarm = None;
        }
        if let Some(ch) = self.chaos.clone() {
            chaos::generate(&mut s, &ch, &seeds);
            s.chaos = None;
        }
        for (i, f) in s.faults.iter_mut().enumerate() {
            if let When::Window(a, b) = f.when {
                f.when = When::At(draw_time(&seeds, i, a, b, s.tick));
            }
        }
        for host in s.client_hosts() {
            if s.links.contains_key(&host) {
                continue;
            }
            let tick = s.tick.as_nanos();
            let lo = s.latency.min.as_nanos().div_ceil(tick) as u64;
            let hi = ((s.latency.max.as_nanos() / tick) as u64).max(lo);
            let ticks = seeds
                .stream(&format!("network/link/{host}"))
                .random_range(lo..=hi);
            s.links.insert(host, s.tick * ticks as u32);
        }
        for c in &mut s.clients {
            for (j, step) in c.steps.iter_mut().enumerate() {
                if let Action::Sleep { min, max } = &mut step.action
                    && min != max
                {
                    let us = seeds
                        .stream(&format!("workload/{}/step/{j}", c.name))
                        .random_range(min.as_micros() as u64..=max.as_micros() as u64);
                    *min = Duration::from_micros(us);
                    *max = *min;
                }
            }
        }
        s
    }
}
