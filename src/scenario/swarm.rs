//! Swarm scenarios: the whole shape of a run drawn from the seed.
//!
//! A `[swarm]` table bounds the draws; [`generate`] turns it, for one seed,
//! into ordinary clients and faults:
//!
//! * the workload — 1 to N logical clients spread over 1 to M client hosts
//!   (turmoil's cost grows with the cube of the host count, so logical clients
//!   share hosts), each with a request-id strategy (a counter, or the same id
//!   for every request) and a script mixed from initialize,
//!   `notifications/initialized`, tools/list, fast and slow tool calls,
//!   sleeps, abandoned and cancelled calls, and vanishing without a goodbye;
//! * the network — the latency bounds;
//! * the faults — how many, which kinds, their targets, exact times and
//!   durations.
//!
//! Every choice comes from a named stream (`swarm/shape`, `swarm/client/<i>`,
//! `swarm/fault/<j>`), so the realised scenario can be printed, written out and
//! replayed without the swarm.

use std::time::Duration;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::json;
use toml::Spanned;

use super::file::RawSwarm;
use super::parse::Ctx;
use super::{ClientSpec, FaultKind, FaultSpec, IdStrategy, Latency, SERVER_HOST, Scenario, When};
use crate::client::script::{Action, Step};
use crate::error::InputError;
use crate::mcp::LATEST_PROTOCOL_VERSION;
use crate::rng::Seeds;
use crate::time::parse_duration;

/// The fault kinds a swarm may draw.
pub const KINDS: [&str; 7] = [
    "crash",
    "restart",
    "partition",
    "partition_oneway",
    "hold",
    "abandon",
    "shutdown",
];

/// The bounds of a swarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwarmSpec {
    /// Logical clients.
    pub clients: (u32, u32),
    /// Client hosts.
    pub hosts: (u32, u32),
    /// Script steps after the opening.
    pub steps: (u32, u32),
    /// Faults.
    pub faults: (u32, u32),
    /// Fault kinds to draw from.
    pub kinds: Vec<String>,
    /// Duration of a slow tool call.
    pub slow: (Duration, Duration),
    /// The upper latency bound.
    pub latency_max: (Duration, Duration),
}

fn range<T: Copy + PartialOrd + std::fmt::Display>(
    c: &Ctx,
    span: std::ops::Range<usize>,
    field: &str,
    v: &Option<Vec<T>>,
    default: (T, T),
    bounds: (T, T),
) -> Result<(T, T), InputError> {
    match v {
        None => Ok(default),
        Some(v) if v.len() == 2 && v[0] <= v[1] && v[0] >= bounds.0 && v[1] <= bounds.1 => {
            Ok((v[0], v[1]))
        }
        Some(_) => c.err(
            span,
            format!("swarm.{field}"),
            format!(
                "use [low, high] with {} <= low <= high <= {}",
                bounds.0, bounds.1
            ),
        ),
    }
}

fn duration_range(
    c: &Ctx,
    span: std::ops::Range<usize>,
    field: &str,
    v: &Option<Vec<String>>,
    default: (Duration, Duration),
) -> Result<(Duration, Duration), InputError> {
    match v {
        None => Ok(default),
        Some(v) if v.len() == 2 => {
            let a = parse_duration(&v[0])
                .or_else(|m| c.err(span.clone(), format!("swarm.{field}"), m))?;
            let b = parse_duration(&v[1])
                .or_else(|m| c.err(span.clone(), format!("swarm.{field}"), m))?;
            if a > b {
                return c.err(span, format!("swarm.{field}"), "low is above high");
            }
            Ok((a, b))
        }
        Some(_) => c.err(span, format!("swarm.{field}"), "use [\"low\", \"high\"]"),
    }
}

/// Validate a `[swarm]` table.
pub(super) fn parse(c: &Ctx, raw: &Spanned<RawSwarm>) -> Result<SwarmSpec, InputError> {
    let r = raw.get_ref();
    let span = raw.span();
    let kinds = match &r.kinds {
        None => KINDS.iter().map(|s| s.to_string()).collect(),
        Some(k) => {
            for kind in k {
                if !KINDS.contains(&kind.as_str()) {
                    return c.err(
                        span,
                        "swarm.kinds",
                        format!("unknown kind \"{kind}\" (known: {})", KINDS.join(", ")),
                    );
                }
            }
            k.clone()
        }
    };
    let faults = range(c, span.clone(), "faults", &r.faults, (0, 3), (0, 20))?;
    if faults.1 > 0 && kinds.is_empty() {
        return c.err(
            span,
            "swarm.kinds",
            "faults are drawn but no kind is allowed",
        );
    }
    Ok(SwarmSpec {
        clients: range(c, span.clone(), "clients", &r.clients, (1, 4), (1, 200))?,
        hosts: range(c, span.clone(), "hosts", &r.hosts, (1, 2), (1, 8))?,
        steps: range(c, span.clone(), "steps", &r.steps, (1, 6), (0, 50))?,
        faults,
        kinds,
        slow: duration_range(
            c,
            span.clone(),
            "slow",
            &r.slow,
            (Duration::from_millis(500), Duration::from_secs(3)),
        )?,
        latency_max: duration_range(
            c,
            span,
            "latency_max",
            &r.latency_max,
            (Duration::from_millis(1), Duration::from_millis(50)),
        )?,
    })
}

fn between(r: &mut ChaCha8Rng, (lo, hi): (u32, u32)) -> u32 {
    r.random_range(lo..=hi)
}

/// A duration in `[lo, hi]`, on whole milliseconds.
fn ms_between(r: &mut ChaCha8Rng, (lo, hi): (Duration, Duration)) -> Duration {
    let (a, b) = (
        lo.as_millis() as u64,
        (hi.as_millis() as u64).max(lo.as_millis() as u64),
    );
    Duration::from_millis(r.random_range(a..=b))
}

fn call(tool: &str, args: serde_json::Value) -> Action {
    Action::Request {
        method: "tools/call".into(),
        params: Some(json!({"name": tool, "arguments": args})),
    }
}

fn script(r: &mut ChaCha8Rng, sw: &SwarmSpec) -> Vec<Step> {
    let mut steps = Vec::new();
    if r.random_bool(0.95) {
        steps.push(Step::new(Action::Initialize {
            protocol: LATEST_PROTOCOL_VERSION.into(),
        }));
        if r.random_bool(0.85) {
            steps.push(Step::new(Action::Notify {
                method: "notifications/initialized".into(),
                params: None,
            }));
        }
    }
    let slow = |r: &mut ChaCha8Rng| {
        let d = ms_between(r, sw.slow);
        call(
            "slow_operation",
            json!({"seconds": d.as_millis() as f64 / 1000.0}),
        )
    };
    for _ in 0..between(r, sw.steps) {
        // Weights: list 2, fast call 3, slow call 3, sleep 2, abandoned slow
        // call 2, cancelled call 1, vanish 1.
        let step = match r.random_range(0..14u32) {
            0..=1 => Step::new(Action::Request {
                method: "tools/list".into(),
                params: Some(json!({})),
            }),
            2..=4 => Step::new(call("get_greeting", json!({"name": "swarm"}))),
            5..=7 => Step::new(slow(r)),
            8..=9 => {
                let d = ms_between(r, (Duration::from_millis(10), Duration::from_millis(500)));
                Step::new(Action::Sleep { min: d, max: d })
            }
            10..=11 => {
                let mut s = Step::new(slow(r));
                s.abandon_after = Some(ms_between(r, (Duration::ZERO, sw.slow.1)));
                s
            }
            12 => {
                let mut s = Step::new(call("get_greeting", json!({"name": "swarm"})));
                s.cancel_after = Some(ms_between(r, (Duration::ZERO, Duration::from_millis(30))));
                s
            }
            _ => {
                steps.push(Step::new(Action::Vanish));
                break;
            }
        };
        steps.push(step);
    }
    if steps.is_empty() {
        steps.push(Step::new(Action::Vanish));
    }
    steps
}

fn fault(
    r: &mut ChaCha8Rng,
    sw: &SwarmSpec,
    duration: Duration,
    clients: &[ClientSpec],
    hosts: &[String],
) -> FaultSpec {
    let kind = sw.kinds[r.random_range(0..sw.kinds.len())].as_str();
    let host = |r: &mut ChaCha8Rng| hosts[r.random_range(0..hosts.len())].clone();
    let host_or_server = |r: &mut ChaCha8Rng| {
        if r.random_bool(0.3) {
            SERVER_HOST.to_string()
        } else {
            host(r)
        }
    };
    let at = Duration::from_millis(r.random_range(0..=(duration.as_millis() as u64 * 6 / 10)));
    let heal = |r: &mut ChaCha8Rng| {
        r.random_bool(0.5)
            .then(|| ms_between(r, (Duration::from_millis(50), Duration::from_secs(2))))
    };
    let (kind, lasting) = match kind {
        "crash" => {
            let h = host_or_server(r);
            (FaultKind::Crash { host: h }, heal(r))
        }
        "restart" => (
            FaultKind::Restart {
                host: host_or_server(r),
            },
            None,
        ),
        "partition" => (
            FaultKind::Partition {
                a: host(r),
                b: SERVER_HOST.into(),
            },
            heal(r),
        ),
        "partition_oneway" => {
            let h = host(r);
            let (from, to) = if r.random_bool(0.5) {
                (h, SERVER_HOST.to_string())
            } else {
                (SERVER_HOST.to_string(), h)
            };
            (FaultKind::PartitionOneway { from, to }, heal(r))
        }
        "hold" => (
            FaultKind::Hold {
                a: host(r),
                b: SERVER_HOST.into(),
            },
            heal(r),
        ),
        "abandon" => (
            FaultKind::Abandon {
                client: clients[r.random_range(0..clients.len())].name.clone(),
            },
            None,
        ),
        _ => (
            FaultKind::Shutdown {
                restart_after: r
                    .random_bool(0.5)
                    .then(|| ms_between(r, (Duration::from_millis(300), Duration::from_secs(2)))),
            },
            None,
        ),
    };
    FaultSpec {
        when: When::At(at),
        kind,
        lasting,
        line: 0,
    }
}

/// Draw the clients, latency bounds and faults of `scenario` from `seeds`.
pub(super) fn generate(scenario: &mut Scenario, sw: &SwarmSpec, seeds: &Seeds) {
    let mut shape = seeds.stream("swarm/shape");
    let n_clients = between(&mut shape, sw.clients);
    let n_hosts = between(
        &mut shape,
        (sw.hosts.0, sw.hosts.1.min(n_clients).max(sw.hosts.0)),
    );
    let max = ms_between(&mut shape, sw.latency_max);
    scenario.latency = Latency {
        min: Duration::from_millis(max.as_millis() as u64 / 4),
        max,
    };
    let hosts: Vec<String> = (1..=n_hosts).map(|h| format!("h{h}")).collect();
    scenario.clients = (0..n_clients)
        .map(|i| {
            let mut r = seeds.stream(&format!("swarm/client/{i}"));
            let ids = if r.random_bool(0.2) {
                IdStrategy::Constant
            } else {
                IdStrategy::Counter
            };
            ClientSpec {
                name: format!("c{}", i + 1),
                host: hosts[i as usize % hosts.len()].clone(),
                behaviour: crate::client::script::Behaviour {
                    ids,
                    ..Default::default()
                },
                steps: script(&mut r, sw),
            }
        })
        .collect();
    let n_faults = between(&mut shape, sw.faults);
    scenario.faults = (0..n_faults)
        .map(|j| {
            let mut r = seeds.stream(&format!("swarm/fault/{j}"));
            fault(&mut r, sw, scenario.duration, &scenario.clients, &hosts)
        })
        .collect();
}
