//! The library API for your own tests: load a scenario (or build one in
//! code), pick a stack, run one seed or sweep a range, assert.
//!
//! ```
//! use std::time::Duration;
//! use mcpsim::{Simulation, scenario::{Scenario, FaultKind}, client::script::Step};
//!
//! // A catalogue scenario, one seed (MCPSIM_SEED overrides it).
//! let run = Simulation::named("missing-body")?.stack("python-sdk-1.20").run(1)?;
//! run.assert_fails_with("missing-final-body");
//!
//! // A scenario built in code, swept over seeds (MCPSIM_SEEDS="A..B" overrides them).
//! let sc = Scenario::builder("crash-mid-call")
//!     .duration(Duration::from_secs(5))
//!     .client("c1", vec![Step::initialize(), Step::call("slow_operation", serde_json::json!({"seconds": 2}))])
//!     .fault_at(Duration::from_millis(1250), FaultKind::Crash { host: "c1".into() })
//!     .build()?;
//! let fixed = Simulation::new(sc.clone()).stack("python-sdk-1.20+fixed").sweep(0..20)?;
//! fixed.assert_none_fail_with("missing-final-body"); // the gap is closed...
//! Simulation::new(sc).stack("native").sweep(0..20)?.assert_all_pass(); // ...the reference passes outright
//! # Ok::<(), mcpsim::error::Error>(())
//! ```
//!
//! A failed assertion panics with the failure and the command that replays
//! it, so a red test is one paste away from the exact run.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use crate::client::script::{Action, Step};
use crate::error::{Error, InputError};
use crate::explore::bisect::{self, BisectReport};
use crate::explore::determinism::{self, Divergence};
use crate::explore::sweep::{self, SweepConfig, SweepResults};
use crate::mcp::LATEST_PROTOCOL_VERSION;
use crate::report;
use crate::scenario::{self, ClientSpec, FaultKind, FaultSpec, Latency, Scenario, SeedRange, When};
use crate::servers::{self, ServerConfig, ServerStack, StackRef};
use crate::sim::{self, Outcome};

/// A scenario and a stack, ready to run.
#[derive(Clone)]
pub struct Simulation {
    scenario: Scenario,
    stack: Option<Choice>,
}

/// Which stack a simulation runs on.
#[derive(Clone)]
enum Choice {
    /// One of mcpsim's, by name.
    Named(String),
    /// One given in code ([`Simulation::server`]).
    Given(StackRef),
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stack = match &self.stack {
            None => self.scenario.stack.as_str(),
            Some(Choice::Named(n)) => n.as_str(),
            Some(Choice::Given(s)) => s.name(),
        };
        f.debug_struct("Simulation")
            .field("scenario", &self.scenario.name)
            .field("stack", &stack)
            .finish()
    }
}

/// The seed to use: `MCPSIM_SEED` if set, else `seed`.
fn seed_override(seed: u64) -> Result<u64, Error> {
    match std::env::var("MCPSIM_SEED") {
        Ok(s) => s.trim().parse().map_err(|_| {
            InputError::msg(format!("\"{s}\" is not a seed"))
                .field("MCPSIM_SEED")
                .into()
        }),
        Err(_) => Ok(seed),
    }
}

/// The seeds to use: `MCPSIM_SEEDS` (`A..B`) if set, else `seeds`.
fn seeds_override(seeds: Range<u64>) -> Result<Range<u64>, Error> {
    match std::env::var("MCPSIM_SEEDS") {
        Ok(s) => SeedRange::parse(&s)
            .map(|r| r.iter())
            .map_err(|m| InputError::msg(m).field("MCPSIM_SEEDS").into()),
        Err(_) => Ok(seeds),
    }
}

impl Simulation {
    /// A scenario by catalogue name or path.
    pub fn named(name: &str) -> Result<Self, Error> {
        Ok(Self::new(scenario::load(name)?))
    }

    /// A scenario from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        Ok(Self::new(scenario::parse(text, "<inline>")?))
    }

    /// A scenario already built.
    pub fn new(scenario: Scenario) -> Self {
        Self {
            scenario,
            stack: None,
        }
    }

    /// Run on mcpsim's stack called `stack` (default: the scenario's).
    pub fn stack(mut self, stack: &str) -> Self {
        self.stack = Some(Choice::Named(stack.to_string()));
        self
    }

    /// Run on a stack of your own — a [`TowerStack`](crate::servers::TowerStack)
    /// serving your tower service, or any [`ServerStack`].
    pub fn server(mut self, stack: impl ServerStack + 'static) -> Self {
        self.stack = Some(Choice::Given(Arc::new(stack)));
        self
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    fn stack_ref(&self) -> Result<StackRef, Error> {
        let name = match &self.stack {
            Some(Choice::Given(s)) => return Ok(s.clone()),
            Some(Choice::Named(n)) => n.clone(),
            None => self.scenario.stack.clone(),
        };
        servers::stack(&name).ok_or_else(|| {
            InputError::msg(format!(
                "unknown stack \"{name}\" (known: {})",
                servers::stack_names().join(", ")
            ))
            .into()
        })
    }

    /// Run one seed (`MCPSIM_SEED` overrides it).
    pub fn run(&self, seed: u64) -> Result<Outcome, Error> {
        sim::run_on(&self.scenario, seed_override(seed)?, &self.stack_ref()?)
    }

    /// Run one seed twice and compare the traces line by line: `None` if
    /// they agree, else the first divergence (a wall-clock read, OS
    /// randomness or an unseeded choice in the code under test).
    pub fn check_determinism(&self, seed: u64) -> Result<(Outcome, Option<Divergence>), Error> {
        determinism::check(
            &self.scenario,
            seed_override(seed)?,
            &self.stack_ref()?,
            None,
        )
    }

    /// Shrink a failing seed to the smallest schedule that still fails with
    /// `signature` (default: its first failure); the report's
    /// [`file_text`](BisectReport::file_text) is a regression file.
    pub fn bisect(&self, seed: u64, signature: Option<&str>) -> Result<BisectReport, Error> {
        bisect::bisect(
            &self.scenario,
            seed,
            &self.stack_ref()?,
            signature,
            &mut |_| {},
        )
    }

    /// Run a range of seeds on all cores (`MCPSIM_SEEDS` overrides it).
    pub fn sweep(&self, seeds: Range<u64>) -> Result<Sweep, Error> {
        let stack_ref = self.stack_ref()?;
        let stack = stack_ref.name().to_string();
        let cfg = SweepConfig {
            stack: stack_ref,
            seeds: sweep::Seeds::new(seeds_override(seeds)?, None),
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            fail_fast: false,
            check_determinism: false,
            child: None,
            keep: true,
            rows: false,
        };
        let results = sweep::sweep(&self.scenario, &cfg, |_| {});
        if let Some(e) = results.errors.first() {
            return Err(Error::Internal(format!("seed {}: {}", e.seed, e.error)));
        }
        Ok(Sweep {
            results,
            scenario: self.scenario.name.clone(),
            stack,
        })
    }
}

/// The results of [`Simulation::sweep`].
#[derive(Debug)]
pub struct Sweep {
    /// Every seed's result, in seed order.
    pub results: SweepResults,
    scenario: String,
    stack: String,
}

impl Sweep {
    /// Seeds that failed.
    pub fn failing_seeds(&self) -> Vec<u64> {
        self.results.failing().map(|r| r.seed).collect()
    }

    /// Panic, with the summary and replay commands, unless every seed passed.
    pub fn assert_all_pass(&self) {
        if self.results.failing().next().is_some() {
            panic!("{}", self.results.summary(&self.scenario, &self.stack));
        }
    }

    /// Panic, with the seeds and replay commands, if any seed failed with
    /// `oracle` (other failures are allowed).
    pub fn assert_none_fail_with(&self, oracle: &str) {
        if self
            .results
            .failing()
            .any(|r| r.failures.iter().any(|f| f.oracle == oracle))
        {
            panic!(
                "some seeds failed with {oracle}:\n{}",
                self.results.summary(&self.scenario, &self.stack)
            );
        }
    }

    /// Panic unless some seed failed with `oracle`.
    pub fn assert_some_fail_with(&self, oracle: &str) {
        if !self
            .results
            .failing()
            .any(|r| r.failures.iter().any(|f| f.oracle == oracle))
        {
            panic!(
                "no seed failed with {oracle}:\n{}",
                self.results.summary(&self.scenario, &self.stack)
            );
        }
    }
}

impl Outcome {
    fn explain(&self) -> String {
        report::human_with(self, &report::replay_hint(self))
    }

    /// Panic, with the report and the replay command, unless every oracle held.
    pub fn assert_passes(&self) {
        if !self.passed() {
            panic!("{}", self.explain());
        }
    }

    /// Panic if the run failed with `oracle` (other failures are allowed).
    pub fn assert_no(&self, oracle: &str) {
        if self.failures.iter().any(|f| f.oracle == oracle) {
            panic!("expected no {oracle} failure:\n{}", self.explain());
        }
    }

    /// Panic unless the run failed with `oracle`.
    pub fn assert_fails_with(&self, oracle: &str) {
        if !self.failures.iter().any(|f| f.oracle == oracle) {
            panic!("expected a {oracle} failure:\n{}", self.explain());
        }
    }
}

impl Step {
    /// `initialize` (latest protocol version).
    pub fn initialize() -> Step {
        Step::new(Action::Initialize {
            protocol: LATEST_PROTOCOL_VERSION.into(),
        })
    }

    /// A notification.
    pub fn notify(method: &str) -> Step {
        Step::new(Action::Notify {
            method: method.into(),
            params: None,
        })
    }

    /// `tools/call` of `tool` with `args`.
    pub fn call(tool: &str, args: serde_json::Value) -> Step {
        Step::new(Action::Request {
            method: "tools/call".into(),
            params: Some(serde_json::json!({"name": tool, "arguments": args})),
        })
    }

    /// Any request.
    pub fn request(method: &str, params: serde_json::Value) -> Step {
        Step::new(Action::Request {
            method: method.into(),
            params: Some(params),
        })
    }

    /// A fixed wait.
    pub fn sleep(d: Duration) -> Step {
        Step::new(Action::Sleep { min: d, max: d })
    }

    /// Close the response stream `d` after its head arrived.
    pub fn abandon_after(mut self, d: Duration) -> Step {
        self.abandon_after = Some(d);
        self
    }
}

/// Builds a [`Scenario`] in code; `build` validates it exactly as a file is
/// validated (it is written as TOML and parsed back).
#[derive(Debug, Clone)]
pub struct ScenarioBuilder {
    sc: Scenario,
}

impl Scenario {
    /// Start building a scenario called `name` (10 s, 1 ms tick, 1–20 ms
    /// links, the released python-sdk stack).
    pub fn builder(name: &str) -> ScenarioBuilder {
        ScenarioBuilder {
            sc: Scenario {
                name: name.into(),
                about: String::new(),
                source: "<code>".into(),
                duration: Duration::from_secs(10),
                tick: Duration::from_millis(1),
                hang_after: crate::scenario::DEFAULT_HANG_AFTER,
                stack: servers::python_sdk::DEFAULT_STACK.into(),
                server: ServerConfig::default(),
                clients: Vec::new(),
                latency: Latency {
                    min: Duration::from_millis(1),
                    max: Duration::from_millis(20),
                },
                links: Default::default(),
                faults: Vec::new(),
                expect: None,
                swarm: None,
                chaos: None,
                regression: None,
            },
        }
    }
}

impl ScenarioBuilder {
    /// Virtual time budget.
    pub fn duration(mut self, d: Duration) -> Self {
        self.sc.duration = d;
        self
    }

    /// The default stack.
    pub fn stack(mut self, s: &str) -> Self {
        self.sc.stack = s.into();
        self
    }

    /// Server configuration.
    pub fn server(mut self, c: ServerConfig) -> Self {
        self.sc.server = c;
        self
    }

    /// Link latency bounds.
    pub fn latency(mut self, min: Duration, max: Duration) -> Self {
        self.sc.latency = Latency { min, max };
        self
    }

    /// A client on its own host.
    pub fn client(mut self, name: &str, steps: Vec<Step>) -> Self {
        self.sc.clients.push(ClientSpec {
            name: name.into(),
            host: name.into(),
            behaviour: Default::default(),
            steps,
        });
        self
    }

    /// A fault at an exact time.
    pub fn fault_at(mut self, at: Duration, kind: FaultKind) -> Self {
        self.sc.faults.push(FaultSpec {
            when: When::At(at),
            kind,
            lasting: None,
            line: 0,
        });
        self
    }

    /// A fault at a time drawn from the seed in `[from, to]`.
    pub fn fault_within(mut self, from: Duration, to: Duration, kind: FaultKind) -> Self {
        self.sc.faults.push(FaultSpec {
            when: When::Window(from, to),
            kind,
            lasting: None,
            line: 0,
        });
        self
    }

    /// Validate and return the scenario.
    pub fn build(self) -> Result<Scenario, InputError> {
        let mut sc = scenario::parse(&self.sc.to_toml(), &format!("<scenario {}>", self.sc.name))?;
        sc.source = "<code>".into();
        Ok(sc)
    }
}
