//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod served;

use mcpsim::client::RequestRecord;
use mcpsim::scenario::{self, Scenario};
use mcpsim::sim::{self, Outcome};

/// A scenario from TOML text.
pub fn scenario(text: &str) -> Scenario {
    scenario::parse(text, "inline.toml").unwrap_or_else(|e| panic!("test scenario invalid: {e}"))
}

/// Run TOML text with `seed` on `stack`.
pub fn run(text: &str, seed: u64, stack: &str) -> Outcome {
    sim::run(&scenario(text), seed, stack).unwrap_or_else(|e| panic!("run failed: {e}"))
}

/// Run a catalogue scenario.
pub fn run_named(name: &str, seed: u64, stack: &str) -> Outcome {
    let sc = scenario::load(name).unwrap_or_else(|e| panic!("{e}"));
    sim::run(&sc, seed, stack).unwrap_or_else(|e| panic!("run failed: {e}"))
}

/// Run a catalogue scenario with `[server] cost` set to `cost`.
pub fn run_named_with_cost(
    name: &str,
    seed: u64,
    stack: &str,
    cost: mcpsim::servers::CostMode,
) -> Outcome {
    let mut sc = scenario::load(name).unwrap_or_else(|e| panic!("{e}"));
    sc.server.cost = cost;
    sim::run(&sc, seed, stack).unwrap_or_else(|e| panic!("run failed: {e}"))
}

/// The client's requests whose description is `what`.
pub fn requests<'a>(o: &'a Outcome, client: &str, what: &str) -> Vec<&'a RequestRecord> {
    o.observations
        .requests
        .iter()
        .filter(|r| r.client == client && r.what == what)
        .collect()
}

/// The single request `what` of `client`.
pub fn request<'a>(o: &'a Outcome, client: &str, what: &str) -> &'a RequestRecord {
    let v = requests(o, client, what);
    assert_eq!(
        v.len(),
        1,
        "expected one {what} of {client}, found {}",
        v.len()
    );
    v[0]
}

/// Oracle names that fired.
pub fn oracles(o: &Outcome) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = o.failures.iter().map(|f| f.oracle).collect();
    v.dedup();
    v
}

/// Does a trace line's message contain `needle`?
pub fn traced(o: &Outcome, needle: &str) -> bool {
    o.trace.iter().any(|l| l.msg.contains(needle))
}
