//! The TOML shape of a scenario file, as written. Every field a user can get
//! wrong keeps its span, so validation can name the line.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub name: Spanned<String>,
    pub about: Option<String>,
    pub duration: Spanned<String>,
    pub tick: Option<Spanned<String>>,
    pub hang_after: Option<Spanned<String>>,
    pub server: Option<RawServer>,
    #[serde(default)]
    pub client: Vec<Spanned<RawClient>>,
    pub network: Option<RawNetwork>,
    #[serde(default)]
    pub fault: Vec<Spanned<RawFault>>,
    pub expect: Option<Spanned<toml::Table>>,
    pub swarm: Option<Spanned<RawSwarm>>,
    pub chaos: Option<Spanned<RawChaos>>,
    pub regression: Option<Spanned<RawRegression>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChaos {
    pub faults: Option<Vec<u32>>,
    pub kinds: Option<Vec<String>>,
    pub window: Option<Vec<String>>,
    pub load: Option<Vec<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSwarm {
    pub clients: Option<Vec<u32>>,
    pub hosts: Option<Vec<u32>>,
    pub steps: Option<Vec<u32>>,
    pub faults: Option<Vec<u32>>,
    pub kinds: Option<Vec<String>>,
    pub slow: Option<Vec<String>>,
    pub latency_max: Option<Vec<String>>,
    pub modes: Option<Vec<String>>,
    pub load: Option<Vec<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegression {
    pub stack: String,
    pub seed: u64,
    pub signature: String,
    #[serde(default)]
    pub fixed_on: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub stack: Option<Spanned<String>>,
    pub mode: Option<Spanned<String>>,
    pub response: Option<Spanned<String>>,
    pub event_store: Option<Spanned<bool>>,
    pub graceful_timeout: Option<Spanned<String>>,
    pub session_idle_timeout: Option<Spanned<String>>,
    pub allowed_hosts: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub cost: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClient {
    pub name: Spanned<String>,
    pub host: Option<Spanned<String>>,
    pub ids: Option<Spanned<String>>,
    pub resume: Option<bool>,
    pub reinit: Option<bool>,
    pub elicitation: Option<Spanned<String>>,
    pub origin: Option<Spanned<String>>,
    pub read_timeout: Option<Spanned<String>>,
    pub script: Vec<Spanned<RawStep>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub initialize: Option<RawInitialize>,
    pub notify: Option<String>,
    pub call: Option<String>,
    pub request: Option<String>,
    pub sleep: Option<Spanned<RawSleep>>,
    pub vanish: Option<toml::Table>,
    pub listen: Option<toml::Table>,
    pub goodbye: Option<toml::Table>,
    pub ping: Option<toml::Table>,
    pub timeout: Option<Spanned<String>>,
    pub progress: Option<bool>,
    pub args: Option<toml::Value>,
    pub params: Option<toml::Value>,
    pub abandon_after: Option<Spanned<String>>,
    pub cancel_after: Option<Spanned<String>>,
    pub session: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInitialize {
    pub protocol: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawSleep {
    Fixed(String),
    Range(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    pub latency: Option<Spanned<RawLatency>>,
    pub links: Option<Spanned<std::collections::BTreeMap<String, String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLatency {
    pub min: String,
    pub max: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawTarget {
    One(String),
    Pair(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    pub at: Option<Spanned<String>>,
    pub window: Option<Spanned<Vec<String>>>,
    pub crash: Option<Spanned<String>>,
    pub restart: Option<Spanned<String>>,
    pub partition: Option<Spanned<RawTarget>>,
    pub repair: Option<Spanned<RawTarget>>,
    pub partition_oneway: Option<Spanned<RawTarget>>,
    pub repair_oneway: Option<Spanned<RawTarget>>,
    pub hold: Option<Spanned<RawTarget>>,
    pub release: Option<Spanned<RawTarget>>,
    pub abandon: Option<Spanned<String>>,
    pub shutdown: Option<Spanned<String>>,
    pub restart_after: Option<Spanned<String>>,
    pub slow: Option<Spanned<String>>,
    pub factor: Option<Spanned<toml::Value>>,
    #[serde(rename = "for")]
    pub lasting: Option<Spanned<String>>,
}
