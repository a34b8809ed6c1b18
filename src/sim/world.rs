//! One run: a scenario and a seed become a turmoil simulation; the fault
//! injector drives it tick by tick; what the hosts observed becomes the
//! input of the oracles.
//!
//! The loop is VOPR-shaped: every choice comes from the seed's named streams,
//! faults land at the first tick boundary at or after their exact time, and a
//! run ends at the scenario's duration or earlier once it is quiescent —
//! every client host has stopped (script done or crashed), no fault is still
//! to come, and the server has nothing in flight — and has stayed so long
//! enough for the last packets to land.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::Notify;

use super::net::{SERVER_PORT, SimConnector, SimListener};
use super::schedule::{ScheduledFault, expand};
use super::trace::{TraceLine, TraceSink, trace_hash};
use crate::asgi::tracking::{AsgiLog, Clock};
use crate::client::{self, ClientEnv, ClientLog};
use crate::error::Error;
use crate::oracles::{self, AppliedFault, EndState, Failure, Observations};
use crate::rng::Seeds;
use crate::scenario::{FaultKind, SERVER_HOST, Scenario};
use crate::servers::{
    self, HttpLog, Ids, Load, ProbeSlot, Processing, ServerConfig, ServerEnv, Signal, Signals,
    StackRef,
};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Nothing left to happen.
    Quiescent,
    /// The scenario's duration ran out.
    Duration,
}

/// Everything a run produced.
pub struct Outcome {
    /// Scenario name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// The stack that ran.
    pub stack: String,
    /// What the oracles found (empty: pass).
    pub failures: Vec<Failure>,
    /// Oracles that cannot see this stack, and why: not judged, never passed.
    pub not_judged: Vec<(&'static str, &'static str)>,
    /// What the run could not do as written, and why (a `slow` fault on a
    /// stack that models no processing time).
    pub notes: Vec<String>,
    /// The trace.
    pub trace: Vec<TraceLine>,
    /// Its hash.
    pub trace_hash: String,
    /// Virtual time at the end.
    pub virtual_time: Duration,
    /// Simulation steps.
    pub steps: u64,
    /// Wall-clock time the run took (reporting only; never inside the run).
    pub wall: Duration,
    /// Why the run ended.
    pub end: EndReason,
    /// The realised fault schedule.
    pub schedule: Vec<ScheduledFault>,
    /// The realised one-way latency of each client host's link to the server.
    pub links: BTreeMap<String, Duration>,
    /// The scenario as it ran: every random part fixed for the seed.
    pub realised: Scenario,
    /// What the oracles read.
    pub observations: Observations,
}

impl Outcome {
    /// Did every oracle hold?
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

thread_local! {
    /// Virtual time as of the world's last step, for a clock read outside
    /// any host (a stack's probe, read by the harness between steps).
    static WORLD_NOW: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// Virtual time: the host's inside a host, else the world's at its last
/// step (turmoil answers only inside a host).
fn sim_clock() -> Clock {
    Rc::new(|| turmoil::sim_elapsed().unwrap_or_else(|| WORLD_NOW.with(Cell::get)))
}

struct ServerHost {
    stack: StackRef,
    seeds: Seeds,
    incarnation: Cell<u32>,
    signals: Signals,
    http_log: HttpLog,
    asgi_log: AsgiLog,
    probe: ProbeSlot,
    listening: Rc<Cell<bool>>,
    config: ServerConfig,
    /// How busy the host is (`slow` faults); outlives every process.
    load: Load,
    tick: Duration,
}

struct ClientSlot {
    name: String,
    behaviour: crate::client::script::Behaviour,
    steps: Rc<Vec<client::script::Step>>,
    abandon: Rc<Notify>,
}

struct ClientHost {
    name: String,
    clients: Vec<ClientSlot>,
    seeds: Seeds,
    incarnation: Cell<u32>,
    log: ClientLog,
}

/// Run `scenario` with `seed` on the stack called `stack`.
pub fn run(scenario: &Scenario, seed: u64, stack: &str) -> Result<Outcome, Error> {
    let stack = servers::stack(stack).ok_or_else(|| {
        Error::Input(crate::error::InputError::msg(format!(
            "unknown stack \"{stack}\" (known: {})",
            servers::stack_names().join(", ")
        )))
    })?;
    run_on(scenario, seed, &stack)
}

/// Run `scenario` with `seed` on `stack` (a built-in one or your own).
pub fn run_on(scenario: &Scenario, seed: u64, stack: &StackRef) -> Result<Outcome, Error> {
    // Wall time is measured around the run for the report, never read inside.
    let wall_start = std::time::Instant::now();
    let realised = scenario.realise(seed);
    let sink = TraceSink::default();
    let subscriber = sink.subscriber();
    let mut outcome =
        tracing::subscriber::with_default(subscriber, || simulate(realised, seed, stack, &sink))?;
    outcome.wall = wall_start.elapsed();
    Ok(outcome)
}

fn simulate(
    realised: Scenario,
    seed: u64,
    stack: &StackRef,
    sink: &TraceSink,
) -> Result<Outcome, Error> {
    let scenario = &realised;
    let stack = stack.clone();
    let stack_name = stack.name();
    let layers = stack.layers();
    let not_judged = stack.not_judged();
    let models_cost = stack.models_cost();
    let seeds = Seeds::new(seed);
    let schedule = expand(scenario)?;

    let mut builder = turmoil::Builder::new();
    builder
        .tick_duration(scenario.tick)
        .simulation_duration(Duration::from_secs(365 * 24 * 3600))
        .rng_seed(rand::Rng::next_u64(&mut seeds.stream("network/turmoil")))
        .min_message_latency(scenario.latency.min)
        .max_message_latency(scenario.latency.max)
        .tcp_capacity(1024);
    let mut sim = builder.build();

    // The server.
    let server = Rc::new(ServerHost {
        stack,
        seeds,
        incarnation: Cell::new(0),
        signals: Signals::default(),
        http_log: HttpLog::new(std::sync::Arc::new(|| {
            turmoil::sim_elapsed().unwrap_or_default()
        })),
        asgi_log: AsgiLog::default(),
        probe: ProbeSlot::default(),
        listening: Rc::new(Cell::new(false)),
        config: scenario.server.clone(),
        load: Load::default(),
        tick: scenario.tick,
    });
    {
        let server = server.clone();
        sim.host(SERVER_HOST, move || {
            let st = server.clone();
            let inc = st.incarnation.get();
            st.incarnation.set(inc + 1);
            st.signals.reset();
            st.listening.set(false);
            async move {
                let listener = turmoil::net::TcpListener::bind(("0.0.0.0", SERVER_PORT)).await?;
                let env = ServerEnv {
                    listener: Box::new(SimListener(listener)),
                    ids: Ids::Seeded(Box::new(st.seeds.stream(&format!("server-ids/{inc}")))),
                    signals: st.signals.clone(),
                    http_log: st.http_log.clone(),
                    asgi_log: st.asgi_log.clone(),
                    clock: sim_clock(),
                    probe: st.probe.clone(),
                    incarnation: inc,
                    listening: st.listening.clone(),
                    config: st.config.clone(),
                    processing: Processing {
                        mode: st.config.cost,
                        rng: st.seeds.stream(&format!("server-cost/{inc}")),
                        tick: st.tick,
                        load: st.load.clone(),
                    },
                };
                st.stack.run(env).await;
                Ok(())
            }
        });
    }

    // Client hosts, in order of first appearance.
    let log = ClientLog::default();
    let mut hosts: Vec<Rc<ClientHost>> = Vec::new();
    let mut abandon: BTreeMap<String, Rc<Notify>> = BTreeMap::new();
    let mut client_hosts: BTreeMap<String, String> = BTreeMap::new();
    for c in &scenario.clients {
        let notify = Rc::new(Notify::new());
        abandon.insert(c.name.clone(), notify.clone());
        client_hosts.insert(c.name.clone(), c.host.clone());
        let slot = ClientSlot {
            name: c.name.clone(),
            behaviour: c.behaviour.clone(),
            steps: Rc::new(c.steps.clone()),
            abandon: notify,
        };
        match hosts.iter_mut().find(|h| h.name == c.host) {
            Some(h) => Rc::get_mut(h)
                .ok_or_else(|| Error::Internal("client host shared too early".into()))?
                .clients
                .push(slot),
            None => hosts.push(Rc::new(ClientHost {
                name: c.host.clone(),
                clients: vec![slot],
                seeds,
                incarnation: Cell::new(0),
                log: log.clone(),
            })),
        }
    }
    let authority = format!("{SERVER_HOST}:{SERVER_PORT}");
    for h in &hosts {
        let h = h.clone();
        let authority = authority.clone();
        let name = h.name.clone();
        sim.host(name.as_str(), move || {
            let h = h.clone();
            let authority = authority.clone();
            let inc = h.incarnation.get();
            h.incarnation.set(inc + 1);
            async move {
                let process = tokio::task::LocalSet::new();
                process
                    .run_until(async {
                        let mut running = Vec::new();
                        for c in &h.clients {
                            let env = ClientEnv {
                                name: c.name.clone(),
                                incarnation: inc,
                                connector: Rc::new(SimConnector {
                                    addr: authority.clone(),
                                }),
                                authority: authority.clone(),
                                path: "/mcp".into(),
                                clock: sim_clock(),
                                log: h.log.clone(),
                                workload: h.seeds.stream(&format!("workload/{}/{inc}", c.name)),
                                abandon: c.abandon.clone(),
                                done: Rc::new(Cell::new(false)),
                                behaviour: c.behaviour.clone(),
                            };
                            running.push(crate::task::spawn(
                                "client",
                                client::run(env, c.steps.clone()),
                            ));
                        }
                        for r in running {
                            let _ = r.await;
                        }
                    })
                    .await;
                Ok(())
            }
        });
    }
    for h in &hosts {
        let latency = *scenario
            .links
            .get(&h.name)
            .ok_or_else(|| Error::Internal(format!("no link latency for host {}", h.name)))?;
        sim.set_link_latency(h.name.as_str(), SERVER_HOST, latency);
    }

    // The loop.
    // A whole exchange — SYN, SYN-ACK, request, response — is four one-way
    // trips: anything begun less than that before the end may be in flight.
    let max_link = scenario
        .links
        .values()
        .copied()
        .max()
        .unwrap_or_default()
        .max(scenario.latency.max);
    let settle = max_link * 4 + scenario.tick * 5;
    let mut applied: Vec<AppliedFault> = Vec::new();
    let mut next = 0;
    let mut steps: u64 = 0;
    WORLD_NOW.with(|n| n.set(Duration::ZERO));
    let mut quiet_since: Option<Duration> = None;
    // Since when the server has had nothing in flight (for lost-response).
    let mut idle_since: Option<Duration> = None;
    // A SIGTERM the server process has not finished acting on.
    let mut shutdown_pending = false;
    let end = loop {
        let now = sim.elapsed();
        sink.set_harness_time(now);
        while next < schedule.len() && schedule[next].at <= now {
            let f = &schedule[next];
            tracing::info!(target: "mcpsim::fault", "{}", f.kind);
            apply(&mut sim, &f.kind, &server.signals, &server.load, &abandon);
            match &f.kind {
                FaultKind::Shutdown { .. } => shutdown_pending = true,
                FaultKind::Crash { host } | FaultKind::Restart { host } if host == SERVER_HOST => {
                    shutdown_pending = false
                }
                _ => {}
            }
            applied.push(AppliedFault {
                at: now,
                kind: f.kind.clone(),
            });
            next += 1;
        }
        if now >= scenario.duration {
            break EndReason::Duration;
        }
        sim.step()
            .map_err(|e| Error::Internal(format!("a simulated host failed: {e}")))?;
        WORLD_NOW.with(|n| n.set(sim.elapsed()));
        steps += 1;
        if let Some(p) = sink.panicked() {
            return Err(Error::Internal(p));
        }
        if shutdown_pending && !sim.is_host_running(SERVER_HOST) {
            shutdown_pending = false;
        }
        let idle = server_idle(&mut sim, &server);
        match (idle, idle_since) {
            (true, None) => idle_since = Some(sim.elapsed()),
            (false, _) => idle_since = None,
            _ => {}
        }
        let quiet = next == schedule.len()
            && !shutdown_pending
            && hosts.iter().all(|h| !sim.is_host_running(h.name.as_str()))
            && idle;
        match (quiet, quiet_since) {
            (true, None) => quiet_since = Some(sim.elapsed()),
            (true, Some(t)) if sim.elapsed() >= t + settle => break EndReason::Quiescent,
            (false, _) => quiet_since = None,
            _ => {}
        }
    };

    let virtual_time = sim.elapsed();
    let server_running = sim.is_host_running(SERVER_HOST);
    let mut hosts_running = BTreeMap::new();
    for h in &hosts {
        hosts_running.insert(h.name.clone(), sim.is_host_running(h.name.as_str()));
    }
    let probe = if server_running {
        server.probe.get()
    } else {
        None
    };
    let quiescent = end == EndReason::Quiescent;
    let open_streams = probe.as_ref().and_then(|p| p.open_streams());
    let sessions = probe.as_ref().filter(|_| quiescent).map(|p| p.sessions());
    let current = server.incarnation.get().saturating_sub(1);
    let server_in_flight = probe
        .as_ref()
        .map(|p| p.in_flight())
        .unwrap_or_else(|| server.http_log.open_in(current));
    // A stack that registered no probe cannot show what it still holds.
    let mut not_judged = not_judged;
    if server.probe.get().is_none() && !not_judged.iter().any(|(o, _)| *o == "leak") {
        not_judged.push((
            "leak",
            "the stack registered no probe: what it still holds cannot be seen",
        ));
    }
    let mut hosts_by_ip = BTreeMap::new();
    for name in std::iter::once(SERVER_HOST).chain(hosts.iter().map(|h| h.name.as_str())) {
        hosts_by_ip.insert(sim.lookup(name).to_string(), name.to_string());
    }
    // Read before the world is torn down: dropping it drops whatever the
    // server still holds open, which is the end of the simulation, not an
    // event in it.
    let http = server.http_log.records();
    server.http_log.seal();
    drop(sim);

    let trace = sink.take();
    let observations = Observations {
        layers,
        http,
        asgi: server.asgi_log.records(),
        requests: log.records(),
        trace: trace.clone(),
        open_streams,
        sessions,
        departures: log.departures(),
        quiet_until: log.quiet_until(),
        hang_after: scenario.hang_after,
        hosts_by_ip,
        faults: applied.clone(),
        client_hosts,
        end: EndState {
            at: virtual_time,
            quiescent,
            server_running,
            server_incarnation: server.incarnation.get().saturating_sub(1),
            server_in_flight,
            server_idle_since: idle_since,
            settle,
            hosts_running,
            cut_links: oracles::cut_links(&applied),
        },
    };
    let mut notes = Vec::new();
    if let Some(f) = applied
        .iter()
        .find(|f| matches!(f.kind, FaultKind::Slow { .. }))
    {
        let why = if !models_cost {
            Some(format!("{stack_name} models no processing time"))
        } else if scenario.server.cost == servers::CostMode::Zero {
            Some("the scenario's [server] cost is \"zero\"".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            notes.push(format!(
                "{} had nothing to slow: {why}, so a busy host changes nothing here",
                f.kind
            ));
        }
    }
    let mut failures = oracles::check_all(&observations);
    failures.retain(|f| !not_judged.iter().any(|(o, _)| *o == f.oracle));
    Ok(Outcome {
        scenario: scenario.name.clone(),
        seed,
        stack: stack_name.to_string(),
        failures,
        not_judged,
        notes,
        trace_hash: trace_hash(&trace),
        trace,
        virtual_time,
        steps,
        wall: Duration::ZERO,
        end,
        schedule,
        links: scenario.links.clone(),
        observations,
        realised: realised.clone(),
    })
}

fn server_idle(sim: &mut turmoil::Sim<'_>, server: &ServerHost) -> bool {
    if !sim.is_host_running(SERVER_HOST) {
        return true;
    }
    // A running process that does not listen is starting or shutting down.
    if !server.listening.get() {
        return false;
    }
    let current = server.incarnation.get().saturating_sub(1);
    let running = server.asgi_log.running_in(current) + server.http_log.open_in(current);
    let handlers = server.probe.get().map(|p| p.in_flight()).unwrap_or(0);
    running == 0 && handlers == 0
}

fn apply(
    sim: &mut turmoil::Sim<'_>,
    kind: &FaultKind,
    signals: &Signals,
    load: &Load,
    abandon: &BTreeMap<String, Rc<Notify>>,
) {
    match kind {
        FaultKind::Crash { host } => sim.crash(host.as_str()),
        FaultKind::Restart { host } => sim.bounce(host.as_str()),
        FaultKind::Partition { a, b } => sim.partition(a.as_str(), b.as_str()),
        FaultKind::Repair { a, b } => sim.repair(a.as_str(), b.as_str()),
        FaultKind::PartitionOneway { from, to } => sim.partition_oneway(from.as_str(), to.as_str()),
        FaultKind::RepairOneway { from, to } => sim.repair_oneway(from.as_str(), to.as_str()),
        FaultKind::Hold { a, b } => sim.hold(a.as_str(), b.as_str()),
        FaultKind::Release { a, b } => sim.release(a.as_str(), b.as_str()),
        FaultKind::Abandon { client } => {
            if let Some(n) = abandon.get(client) {
                n.notify_waiters();
            }
        }
        FaultKind::Shutdown { .. } => signals.raise(Signal::Terminate),
        FaultKind::Slow { factor, .. } => load.set(*factor),
    }
}
