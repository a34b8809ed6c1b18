//! Swarm scenarios: the whole shape of a run drawn from the seed.
//!
//! A `[swarm]` table bounds the draws; [`generate`] turns it, for one seed,
//! into ordinary clients and faults:
//!
//! * the server's mode, if `modes` lists more than one — SSE or JSON answers,
//!   stateful or stateless, with or without an event store;
//! * the workload — 1 to N logical clients spread over 1 to M client hosts
//!   (turmoil's cost grows with the cube of the host count, so logical clients
//!   share hosts), each with a standing behaviour (request ids by counter or
//!   constant, resuming broken streams, re-initializing after 404, a read
//!   timeout, how it answers elicitations, an Origin) and a script mixed from
//!   initialize, `notifications/initialized`, listening on the GET stream,
//!   tools/list, ping, fast, slow, progress-reporting and elicitation tool
//!   calls, sleeps, abandoned, cancelled and timed-out calls, and an ending —
//!   DELETE, vanishing without a goodbye, or simply stopping;
//! * the network — the latency bounds;
//! * the faults — how many, which kinds, their targets, exact times and
//!   durations.
//!
//! Every choice comes from a named stream (`swarm/shape`, `swarm/server`,
//! `swarm/client/<i>`, `swarm/behaviour/<i>`, `swarm/fault/<j>`), so the realised scenario can be printed, written out and
//! replayed without the swarm.

use std::time::Duration;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::json;
use toml::Spanned;

use super::file::RawSwarm;
use super::parse::Ctx;
use super::{
    Behaviour, ClientSpec, Elicitation, FaultKind, FaultSpec, IdStrategy, Latency, SERVER_HOST,
    Scenario, When,
};
use crate::client::script::{Action, Step};
use crate::error::InputError;
use crate::mcp::LATEST_PROTOCOL_VERSION;
use crate::rng::Seeds;
use crate::servers::Factor;
use crate::time::parse_duration;

/// The fault kinds a swarm may draw.
pub const KINDS: [&str; 8] = [
    "crash",
    "restart",
    "partition",
    "partition_oneway",
    "hold",
    "abandon",
    "shutdown",
    "slow",
];

/// The load factors a drawn `slow` fault takes when the table names none: a
/// host from twice as slow to fifty times.
pub const DEFAULT_LOAD: (Factor, Factor) = (Factor(200), Factor(5000));

/// The server modes a swarm may draw, and their weights.
pub const MODES: [(&str, u32); 4] = [("sse", 7), ("resumable", 7), ("json", 3), ("stateless", 3)];

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
    /// Server modes to draw from (`None`: the `[server]` table as written).
    pub modes: Option<Vec<String>>,
    /// The factor of a drawn `slow` fault.
    pub load: (Factor, Factor),
}

/// `load = [low, high]`: the bounds of a drawn `slow` fault's factor.
pub(super) fn load_range(
    c: &Ctx,
    span: std::ops::Range<usize>,
    field: &str,
    v: &Option<Vec<toml::Value>>,
) -> Result<(Factor, Factor), InputError> {
    match v {
        None => Ok(DEFAULT_LOAD),
        Some(v) if v.len() == 2 => {
            let lo = super::parse::factor_value(&v[0])
                .or_else(|m| c.err(span.clone(), field.to_string(), m))?;
            let hi = super::parse::factor_value(&v[1])
                .or_else(|m| c.err(span.clone(), field.to_string(), m))?;
            if lo > hi {
                return c.err(span, field.to_string(), "low is above high");
            }
            Ok((lo, hi))
        }
        Some(_) => c.err(span, field.to_string(), "use [low, high], e.g. [2, 50]"),
    }
}

pub(super) fn range<T: Copy + PartialOrd + std::fmt::Display>(
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
            field.to_string(),
            format!(
                "use [low, high] with {} <= low <= high <= {}",
                bounds.0, bounds.1
            ),
        ),
    }
}

pub(super) fn duration_range(
    c: &Ctx,
    span: std::ops::Range<usize>,
    field: &str,
    v: &Option<Vec<String>>,
    default: (Duration, Duration),
) -> Result<(Duration, Duration), InputError> {
    match v {
        None => Ok(default),
        Some(v) if v.len() == 2 => {
            let a = parse_duration(&v[0]).or_else(|m| c.err(span.clone(), field.to_string(), m))?;
            let b = parse_duration(&v[1]).or_else(|m| c.err(span.clone(), field.to_string(), m))?;
            if a > b {
                return c.err(span, field.to_string(), "low is above high");
            }
            Ok((a, b))
        }
        Some(_) => c.err(span, field.to_string(), "use [\"low\", \"high\"]"),
    }
}

/// Fault kinds as listed (all of [`KINDS`] when not).
pub(super) fn kinds(
    c: &Ctx,
    span: std::ops::Range<usize>,
    field: &str,
    v: &Option<Vec<String>>,
) -> Result<Vec<String>, InputError> {
    match v {
        None => Ok(KINDS.iter().map(|s| s.to_string()).collect()),
        Some(k) => {
            if let Some(kind) = k.iter().find(|k| !KINDS.contains(&k.as_str())) {
                return c.err(
                    span,
                    field,
                    format!("unknown kind \"{kind}\" (known: {})", KINDS.join(", ")),
                );
            }
            Ok(k.clone())
        }
    }
}

/// Validate a `[swarm]` table.
pub(super) fn parse(c: &Ctx, raw: &Spanned<RawSwarm>) -> Result<SwarmSpec, InputError> {
    let r = raw.get_ref();
    let span = raw.span();
    let kinds = kinds(c, span.clone(), "swarm.kinds", &r.kinds)?;
    let faults = range(c, span.clone(), "swarm.faults", &r.faults, (0, 3), (0, 20))?;
    let known: Vec<&str> = MODES.iter().map(|(m, _)| *m).collect();
    if let Some(modes) = &r.modes {
        if modes.is_empty() {
            return c.err(
                span,
                "swarm.modes",
                format!("list at least one of {}", known.join(", ")),
            );
        }
        if let Some(m) = modes.iter().find(|m| !known.contains(&m.as_str())) {
            return c.err(
                span,
                "swarm.modes",
                format!("unknown mode \"{m}\" (known: {})", known.join(", ")),
            );
        }
    }
    if faults.1 > 0 && kinds.is_empty() {
        return c.err(
            span,
            "swarm.kinds",
            "faults are drawn but no kind is allowed",
        );
    }
    Ok(SwarmSpec {
        clients: range(
            c,
            span.clone(),
            "swarm.clients",
            &r.clients,
            (1, 4),
            (1, 200),
        )?,
        hosts: range(c, span.clone(), "swarm.hosts", &r.hosts, (1, 2), (1, 8))?,
        steps: range(c, span.clone(), "swarm.steps", &r.steps, (1, 6), (0, 50))?,
        faults,
        kinds,
        slow: duration_range(
            c,
            span.clone(),
            "swarm.slow",
            &r.slow,
            (Duration::from_millis(500), Duration::from_secs(3)),
        )?,
        latency_max: duration_range(
            c,
            span,
            "swarm.latency_max",
            &r.latency_max,
            (Duration::from_millis(1), Duration::from_millis(50)),
        )?,
        modes: r.modes.clone(),
        load: load_range(c, raw.span(), "swarm.load", &r.load)?,
    })
}

pub(super) fn between(r: &mut ChaCha8Rng, (lo, hi): (u32, u32)) -> u32 {
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
        if r.random_bool(0.2) {
            steps.push(Step::new(Action::Listen));
        }
    }
    let slow_for = |r: &mut ChaCha8Rng| ms_between(r, sw.slow);
    let slow = |d: Duration| {
        call(
            "slow_operation",
            json!({"seconds": d.as_millis() as f64 / 1000.0}),
        )
    };
    let mut vanished = false;
    for _ in 0..between(r, sw.steps) {
        // Weights: list 2, fast call 3, slow call 3, sleep 2, abandoned slow
        // call 2, cancelled call 1, vanish 1, progress call 2, elicitation 1,
        // ping 1, timed-out slow call 1.
        let step = match r.random_range(0..19u32) {
            0..=1 => Step::new(Action::Request {
                method: "tools/list".into(),
                params: Some(json!({})),
            }),
            2..=4 => Step::new(call("get_greeting", json!({"name": "swarm"}))),
            5..=7 => Step::new(slow(slow_for(r))),
            8..=9 => {
                let d = ms_between(r, (Duration::from_millis(10), Duration::from_millis(500)));
                Step::new(Action::Sleep { min: d, max: d })
            }
            10..=11 => {
                let mut s = Step::new(slow(slow_for(r)));
                s.abandon_after = Some(ms_between(r, (Duration::ZERO, sw.slow.1)));
                s
            }
            12 => {
                let mut s = Step::new(call("get_greeting", json!({"name": "swarm"})));
                s.cancel_after = Some(ms_between(r, (Duration::ZERO, Duration::from_millis(30))));
                s
            }
            13 => {
                steps.push(Step::new(Action::Vanish));
                vanished = true;
                break;
            }
            14..=15 => {
                let d = slow_for(r);
                let mut s = Step::new(call(
                    "progress_operation",
                    json!({"seconds": d.as_millis() as f64 / 1000.0, "steps": r.random_range(2..=5u32)}),
                ));
                s.progress = true;
                s
            }
            16 => Step::new(call("ask_user", json!({"question": "Go on?"}))),
            17 => Step::new(Action::Request {
                method: "ping".into(),
                params: None,
            }),
            _ => {
                let d = slow_for(r);
                let mut s = Step::new(slow(d));
                s.timeout = Some(ms_between(r, (d / 2, d + d / 2)));
                s
            }
        };
        steps.push(step);
    }
    if steps.is_empty() {
        steps.push(Step::new(Action::Vanish));
    } else if !vanished && r.random_bool(0.3) {
        steps.push(Step::new(Action::Goodbye));
    }
    steps
}

/// A client's standing behaviour.
fn behaviour(r: &mut ChaCha8Rng, sw: &SwarmSpec) -> Behaviour {
    let ids = if r.random_bool(0.2) {
        IdStrategy::Constant
    } else {
        IdStrategy::Counter
    };
    let resume = r.random_bool(0.5);
    let reinit = r.random_bool(0.5);
    // Longer than the slowest call, so only a dead connection trips it.
    let read_timeout = r.random_bool(0.4).then(|| {
        ms_between(
            r,
            (
                sw.slow.1 + Duration::from_secs(1),
                sw.slow.1 + Duration::from_secs(4),
            ),
        )
    });
    let elicitation = match r.random_range(0..20u32) {
        0..=13 => Elicitation::Accept,
        14..=16 => Elicitation::Decline,
        _ => Elicitation::Ignore,
    };
    let origin = match r.random_range(0..20u32) {
        0 => Some("http://evil.example".to_string()),
        1 => Some(format!("http://{SERVER_HOST}:8000")),
        _ => None,
    };
    Behaviour {
        ids,
        resume,
        reinit,
        elicitation,
        origin,
        read_timeout,
    }
}

/// Draw the server's mode from `modes`.
fn server_mode(r: &mut ChaCha8Rng, modes: &[String], server: &mut crate::servers::ServerConfig) {
    let weighted: Vec<(&str, u32)> = MODES
        .iter()
        .filter(|(m, _)| modes.iter().any(|x| x == m))
        .copied()
        .collect();
    let total: u32 = weighted.iter().map(|(_, w)| w).sum();
    let mut pick = r.random_range(0..total.max(1));
    let mut mode = weighted.first().map(|(m, _)| *m).unwrap_or("sse");
    for (m, w) in &weighted {
        if pick < *w {
            mode = m;
            break;
        }
        pick -= w;
    }
    server.stateless = mode == "stateless";
    server.json_response = mode == "json";
    server.event_store = mode == "resumable";
}

/// One fault of a kind drawn from `kinds`, at a time in `window`, aimed at
/// the server or one of `hosts` (or `clients`, for abandon).
pub(super) fn fault(
    r: &mut ChaCha8Rng,
    kinds: &[String],
    window: (Duration, Duration),
    clients: &[ClientSpec],
    hosts: &[String],
    load: (Factor, Factor),
) -> FaultSpec {
    let kind = kinds[r.random_range(0..kinds.len())].as_str();
    let host = |r: &mut ChaCha8Rng| hosts[r.random_range(0..hosts.len())].clone();
    let host_or_server = |r: &mut ChaCha8Rng| {
        if r.random_bool(0.3) {
            SERVER_HOST.to_string()
        } else {
            host(r)
        }
    };
    let at = ms_between(r, window);
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
        "slow" => {
            // Whole factors when the bounds are a whole factor apart or more.
            let mut f = r.random_range(load.0.0..=load.1.0);
            if load.1.0 - load.0.0 >= 100 {
                f = (f + 50) / 100 * 100;
            }
            let factor = Factor(f.clamp(load.0.0, load.1.0));
            let lasting = if factor > Factor::ONE { heal(r) } else { None };
            (
                FaultKind::Slow {
                    host: SERVER_HOST.into(),
                    factor,
                },
                lasting,
            )
        }
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
    // Never more hosts than clients: a host without a client would be a
    // target for drawn faults with no link to fault.
    let lo = sw.hosts.0.min(n_clients);
    let n_hosts = between(&mut shape, (lo, sw.hosts.1.min(n_clients).max(lo)));
    let max = ms_between(&mut shape, sw.latency_max);
    scenario.latency = Latency {
        min: Duration::from_millis(max.as_millis() as u64 / 4),
        max,
    };
    if let Some(modes) = &sw.modes {
        server_mode(
            &mut seeds.stream("swarm/server"),
            modes,
            &mut scenario.server,
        );
    }
    let hosts: Vec<String> = (1..=n_hosts).map(|h| format!("h{h}")).collect();
    scenario.clients = (0..n_clients)
        .map(|i| ClientSpec {
            name: format!("c{}", i + 1),
            host: hosts[i as usize % hosts.len()].clone(),
            behaviour: behaviour(&mut seeds.stream(&format!("swarm/behaviour/{i}")), sw),
            steps: script(&mut seeds.stream(&format!("swarm/client/{i}")), sw),
        })
        .collect();
    let n_faults = between(&mut shape, sw.faults);
    scenario.faults = (0..n_faults)
        .map(|j| {
            let mut r = seeds.stream(&format!("swarm/fault/{j}"));
            let window = (Duration::ZERO, scenario.duration * 6 / 10);
            fault(
                &mut r,
                &sw.kinds,
                window,
                &scenario.clients,
                &hosts,
                sw.load,
            )
        })
        .collect();
}
