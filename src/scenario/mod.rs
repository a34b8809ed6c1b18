//! Scenarios: what to run — the server, the clients and their scripts, the
//! network, the faults — and what each stack is expected to do.
//!
//! A scenario is a TOML file (see `sims/` and the README for the format) or
//! built in code. Loading validates everything up front and turns every problem
//! into one [`InputError`] naming the file, the line and the field: a run never
//! starts on a half-understood scenario, and nothing the user wrote is
//! silently ignored.

mod chaos;
mod expect;
mod file;
mod parse;
mod realise;
mod scale;
mod shape;
mod swarm;
mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use crate::client::script::{Behaviour, Elicitation, IdStrategy};
pub use chaos::ChaosSpec;
pub use expect::{Expect, Expectations, SeedRange, SeedVerdict};
pub use parse::parse;
pub use swarm::SwarmSpec;

use crate::client::script::Step;
use crate::error::InputError;
use crate::servers::{Factor, ServerConfig};

/// How long the whole world must stay silent, with something still waiting,
/// before the `hang` oracle calls it blocked forever.
pub const DEFAULT_HANG_AFTER: Duration = Duration::from_secs(10);

/// The host name of the server under test.
pub const SERVER_HOST: &str = "server";

/// A validated scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// What it probes.
    pub about: String,
    /// Where it came from (a path, or "<code>").
    pub source: String,
    /// Virtual time budget.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub duration: Duration,
    /// Simulation tick.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub tick: Duration,
    /// Silence, with something still waiting, that counts as a hang.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub hang_after: Duration,
    /// The default server stack.
    pub stack: String,
    /// Server configuration.
    pub server: ServerConfig,
    /// The logical clients.
    pub clients: Vec<ClientSpec>,
    /// Link latency bounds (each link's latency is drawn within them).
    pub latency: Latency,
    /// Exact one-way latency of a client host's link to the server (drawn
    /// within `latency` for hosts not listed).
    #[serde(serialize_with = "ser_links")]
    pub links: BTreeMap<String, Duration>,
    /// Faults.
    pub faults: Vec<FaultSpec>,
    /// Expectations per stack.
    pub expect: Option<Expectations>,
    /// Draw the clients and faults from the seed instead.
    pub swarm: Option<SwarmSpec>,
    /// Faults drawn from the seed for the written clients.
    pub chaos: Option<ChaosSpec>,
    /// What this scenario is a regression for (written by `mcpsim bisect`).
    pub regression: Option<Regression>,
}

fn ser_links<S: serde::Serializer>(
    links: &BTreeMap<String, Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(links.len()))?;
    for (k, v) in links {
        m.serialize_entry(k, &crate::time::fmt_duration(*v))?;
    }
    m.end()
}

/// A regression recorded by `mcpsim bisect`: it must keep failing with
/// `signature` on `stack` with `seed`, and that failure must stay absent on
/// the stacks in `fixed_on`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Regression {
    /// The stack it fails on.
    pub stack: String,
    /// The seed it was found with.
    pub seed: u64,
    /// The failure signature it reproduces.
    pub signature: String,
    /// Stacks on which this failure did not occur when it was written.
    pub fixed_on: Vec<String>,
}

/// Link latency bounds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Lower bound.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub min: Duration,
    /// Upper bound.
    #[serde(serialize_with = "crate::time::ser_duration")]
    pub max: Duration,
}

/// One logical client.
#[derive(Debug, Clone, Serialize)]
pub struct ClientSpec {
    /// Its name.
    pub name: String,
    /// The simulated host it runs on.
    pub host: String,
    /// How it behaves (ids, resumption, elicitation answers, ...).
    pub behaviour: Behaviour,
    /// Its script.
    pub steps: Vec<Step>,
}

/// When a fault happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// At this exact virtual time.
    At(#[serde(serialize_with = "crate::time::ser_duration")] Duration),
    /// At a time drawn from the seed within `[from, to]`.
    Window(
        #[serde(serialize_with = "crate::time::ser_duration")] Duration,
        #[serde(serialize_with = "crate::time::ser_duration")] Duration,
    ),
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FaultKind {
    /// Kill a host (no goodbye; its sockets close).
    Crash { host: String },
    /// Restart a host's software (bounce).
    Restart { host: String },
    /// Cut a link both ways (turmoil TCP does not recover from it).
    Partition { a: String, b: String },
    /// Heal a link both ways.
    Repair { a: String, b: String },
    /// Cut one direction.
    PartitionOneway { from: String, to: String },
    /// Heal one direction.
    RepairOneway { from: String, to: String },
    /// Hold messages on a link (a short outage; delivered on release).
    Hold { a: String, b: String },
    /// Release held messages.
    Release { a: String, b: String },
    /// A client closes the response stream it is reading (httpx `aclose`).
    Abandon { client: String },
    /// SIGTERM to the server (uvicorn's `handle_exit`), optionally followed by
    /// a restart.
    Shutdown {
        #[serde(serialize_with = "crate::time::ser_opt_duration")]
        restart_after: Option<Duration>,
    },
    /// A busy host: the server process's processing costs are multiplied by
    /// `factor` from now on (×1 ends the load). Only a stack that models its
    /// processing time can be slowed.
    Slow { host: String, factor: Factor },
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultKind::Crash { host } => write!(f, "crash {host}"),
            FaultKind::Restart { host } => write!(f, "restart {host}"),
            FaultKind::Partition { a, b } => write!(f, "partition {a}<->{b}"),
            FaultKind::Repair { a, b } => write!(f, "repair {a}<->{b}"),
            FaultKind::PartitionOneway { from, to } => write!(f, "partition {from}->{to}"),
            FaultKind::RepairOneway { from, to } => write!(f, "repair {from}->{to}"),
            FaultKind::Hold { a, b } => write!(f, "hold {a}<->{b}"),
            FaultKind::Release { a, b } => write!(f, "release {a}<->{b}"),
            FaultKind::Abandon { client } => write!(f, "abandon {client}"),
            FaultKind::Shutdown {
                restart_after: None,
            } => write!(f, "shutdown server"),
            FaultKind::Shutdown {
                restart_after: Some(d),
            } => write!(
                f,
                "shutdown server (restart after {})",
                crate::time::fmt_duration(*d)
            ),
            FaultKind::Slow { host, factor } if *factor == Factor::ONE => {
                write!(f, "slow {host} ×1 (load ends)")
            }
            FaultKind::Slow { host, factor } => write!(f, "slow {host} ×{factor}"),
        }
    }
}

impl FaultKind {
    /// The fault that undoes this one after `for = "..."`.
    pub fn healing(&self) -> Option<FaultKind> {
        match self {
            FaultKind::Crash { host } => Some(FaultKind::Restart { host: host.clone() }),
            FaultKind::Partition { a, b } => Some(FaultKind::Repair {
                a: a.clone(),
                b: b.clone(),
            }),
            FaultKind::PartitionOneway { from, to } => Some(FaultKind::RepairOneway {
                from: from.clone(),
                to: to.clone(),
            }),
            FaultKind::Hold { a, b } => Some(FaultKind::Release {
                a: a.clone(),
                b: b.clone(),
            }),
            FaultKind::Slow { host, factor } if *factor > Factor::ONE => Some(FaultKind::Slow {
                host: host.clone(),
                factor: Factor::ONE,
            }),
            _ => None,
        }
    }
}

/// A fault as written: what, when, for how long.
#[derive(Debug, Clone, Serialize)]
pub struct FaultSpec {
    /// When.
    pub when: When,
    /// What.
    pub kind: FaultKind,
    /// Heal after this long (`for = "..."`).
    #[serde(serialize_with = "crate::time::ser_opt_duration")]
    pub lasting: Option<Duration>,
    /// Its line in the file (0 when built in code).
    #[serde(skip)]
    pub line: usize,
}

/// Find a scenario: a path to a file, or the name of one in `sims/` (in the
/// current directory, then in the crate's own).
pub fn resolve(arg: &str) -> Result<PathBuf, InputError> {
    let direct = Path::new(arg);
    if direct.is_file() {
        return Ok(direct.to_path_buf());
    }
    if arg.ends_with(".toml") || arg.contains('/') {
        return Err(InputError::msg(format!("{arg}: no such scenario file")));
    }
    let dirs = catalogue_dirs();
    for dir in &dirs {
        let p = dir.join(format!("{arg}.toml"));
        if p.is_file() {
            return Ok(p);
        }
    }
    let known = catalogue_names();
    Err(InputError::msg(format!(
        "no scenario named \"{arg}\" in {} (known: {})",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(" or "),
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )))
}

/// The directories searched for named scenarios.
pub fn catalogue_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("sims")];
    let own = Path::new(env!("CARGO_MANIFEST_DIR")).join("sims");
    if own.canonicalize().ok() != PathBuf::from("sims").canonicalize().ok() {
        dirs.push(own);
    }
    dirs
}

/// Names of the scenarios in the catalogue (sorted, first directory wins).
pub fn catalogue_names() -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    for dir in catalogue_dirs() {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "toml")
                    && let Some(stem) = p.file_stem()
                {
                    names.insert(stem.to_string_lossy().into_owned());
                }
            }
        }
        if !names.is_empty() {
            break;
        }
    }
    names.into_iter().collect()
}

/// Load a scenario by name or path.
pub fn load(arg: &str) -> Result<Scenario, InputError> {
    let path = resolve(arg)?;
    let file = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| InputError {
        file: Some(file.clone()),
        line: None,
        field: None,
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, &file)
}
