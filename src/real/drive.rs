//! `mcpsim drive`: a scenario's schedule, replayed against a real server.
//!
//! The scenario is realised for the seed exactly as `run` would realise it —
//! the same clients, scripts, drawn sleeps and fault times — and stretched by
//! `--time-scale`. Each client host then runs the same client code as in the
//! simulator, on real sockets, through a [`FaultProxy`] of its own; the
//! schedule's faults land on the wall clock:
//!
//! * crash / restart of a client host — its proxy resets every connection
//!   (RST both ways) and the host's tasks die with it; a restart starts its
//!   clients again as the next incarnation;
//! * abandon — the client closes the response it is reading (FIN);
//! * hold / release, partition / repair (both ways or one) — on the proxy;
//! * shutdown / crash / restart of the server — only when `drive` runs the
//!   server itself (`--server-cmd`): SIGTERM, SIGKILL, and a new process.
//!   Against a server it does not own, such a fault is skipped and the
//!   report says so.
//!
//! The client-side oracles judge what the clients saw, as in the simulator.
//! The server-side ones read what the target exposes ([`super::observe`]):
//! without it they are listed as not judged, never passed.
//!
//! A real run is not deterministic — the server's own timing is real — so
//! the report says what happened this time, nothing more.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::Level;

use super::log::RealLog;
use super::net::TcpConnector;
use super::observe::{self, OBSERVATIONS_PATH, Observed};
use super::proxy::{Direction, FaultProxy};
use crate::client::{self, ClientEnv, ClientLog};
use crate::error::{Error, InputError};
use crate::oracles::{self, AppliedFault, EndState, Failure, Observations};
use crate::scenario::{ClientSpec, FaultKind, SERVER_HOST, Scenario};
use crate::servers::Layers;
use crate::sim::EndReason;
use crate::sim::schedule::{ScheduledFault, expand};

/// Oracles that need the server's own records.
const SERVER_SIDE: [&str; 4] = [
    "missing-final-body",
    "protocol-violation",
    "server-error-log",
    "leak",
];

/// How long a connection waits for a server drive restarted to listen again.
const RESTART_PATIENCE: Duration = Duration::from_secs(15);

/// What to drive, against what.
#[derive(Debug, Clone)]
pub struct DriveOptions {
    /// The scenario as loaded (it is realised here).
    pub scenario: Scenario,
    /// The seed that realises it.
    pub seed: u64,
    /// The MCP endpoint, `http://HOST:PORT/PATH`.
    pub target: String,
    /// Where the server's observations are (`None`: the target's
    /// [`OBSERVATIONS_PATH`]).
    pub observe: Option<String>,
    /// Do not read server observations at all.
    pub no_observe: bool,
    /// A command that starts the server (run with `sh -c 'exec …'`): `drive`
    /// then owns the process and can shut it down, kill and restart it.
    pub server_cmd: Option<String>,
    /// Every duration of the scenario is multiplied by this.
    pub time_scale: f64,
    /// Print events up to this level on stderr as they happen.
    pub log: Option<Level>,
}

/// A fault the real world could not apply.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedFault {
    /// The fault.
    pub fault: ScheduledFault,
    /// Why.
    pub why: String,
}

/// What a drive saw.
pub struct DriveOutcome {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// The target URL.
    pub target: String,
    /// The time scale.
    pub time_scale: f64,
    /// What the server said it is.
    pub server: Option<String>,
    /// The schedule, scaled.
    pub schedule: Vec<ScheduledFault>,
    /// Faults skipped, with the reason.
    pub skipped: Vec<SkippedFault>,
    /// Oracles that could not be judged, with the reason.
    pub not_judged: Vec<(&'static str, String)>,
    /// What the judged oracles found.
    pub failures: Vec<Failure>,
    /// How the run ended.
    pub end: EndReason,
    /// Wall-clock time from start to end.
    pub elapsed: Duration,
    /// Remarks (what was left out of the observations, where server logs are).
    pub notes: Vec<String>,
    /// What the oracles read.
    pub observations: Observations,
    /// The scenario as driven (realised and scaled).
    pub realised: Scenario,
}

impl DriveOutcome {
    /// Did every judged oracle hold?
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// Was the scenario reproduced whole (no fault skipped)?
    pub fn complete(&self) -> bool {
        self.skipped.is_empty()
    }
}

/// Where the target is.
struct Target {
    addr: SocketAddr,
    authority: String,
    path: String,
}

fn parse_target(url: &str, field: &str) -> Result<(String, u16, String), InputError> {
    let bad = |why: &str| InputError::msg(format!("\"{url}\": {why}")).field(field.to_string());
    let uri: http::Uri = url.parse().map_err(|e| bad(&format!("not a URL ({e})")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(s) => return Err(bad(&format!("scheme {s} is not supported (http only)"))),
        None => return Err(bad("no scheme (write http://HOST:PORT/PATH)")),
    }
    let host = uri.host().ok_or_else(|| bad("no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(80);
    let path = match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("") => "/".to_string(),
        Some(p) => p.to_string(),
    };
    Ok((host, port, path))
}

async fn resolve(url: &str, field: &str) -> Result<Target, InputError> {
    let (host, port, path) = parse_target(url, field)?;
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            InputError::msg(format!("\"{url}\": cannot resolve {host}")).field(field.to_string())
        })?;
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok(Target {
        addr,
        authority,
        path,
    })
}

/// One client host: its proxy, clients and current process.
struct Host {
    name: String,
    clients: Vec<ClientSpec>,
    abandon: BTreeMap<String, Rc<Notify>>,
    proxy: FaultProxy,
    incarnation: u32,
    process: Option<JoinHandle<()>>,
    running: Rc<Cell<bool>>,
}

/// What every client host shares.
struct Shared {
    authority: String,
    path: String,
    start: Instant,
    log: ClientLog,
    seed: u64,
}

impl Host {
    /// Start the host's clients (a new process: a fresh `LocalSet` whose tasks
    /// all die when it is aborted).
    fn start(&mut self, shared: &Rc<Shared>) {
        let inc = self.incarnation;
        let running = self.running.clone();
        running.set(true);
        let connector = Rc::new(TcpConnector {
            addr: self.proxy.addr(),
        });
        let seeds = crate::rng::Seeds::new(shared.seed);
        let mut envs = Vec::new();
        for c in &self.clients {
            let start = shared.start;
            let env = ClientEnv {
                name: c.name.clone(),
                incarnation: inc,
                connector: connector.clone(),
                authority: shared.authority.clone(),
                path: shared.path.clone(),
                clock: Rc::new(move || start.elapsed()),
                log: shared.log.clone(),
                workload: seeds.stream(&format!("workload/{}/{inc}", c.name)),
                abandon: self.abandon[&c.name].clone(),
                done: Rc::new(Cell::new(false)),
                behaviour: c.behaviour.clone(),
            };
            envs.push((env, Rc::new(c.steps.clone())));
        }
        self.process = Some(tokio::task::spawn_local(async move {
            let process = tokio::task::LocalSet::new();
            process
                .run_until(async {
                    let running: Vec<_> = envs
                        .into_iter()
                        .map(|(env, steps)| crate::task::spawn("client", client::run(env, steps)))
                        .collect();
                    for r in running {
                        let _ = r.await;
                    }
                })
                .await;
            running.set(false);
        }));
    }

    /// Kill the host: every connection reset, every task gone.
    fn kill(&mut self) {
        self.proxy.crash();
        if let Some(p) = self.process.take() {
            p.abort();
        }
        self.running.set(false);
    }
}

/// A server process `drive` owns.
struct ManagedServer {
    /// Restarted, and not yet seen listening.
    starting: bool,
    cmd: String,
    settings: Vec<(String, String)>,
    dir: PathBuf,
    incarnation: u32,
    child: Option<tokio::process::Child>,
    /// The host's load (`slow` faults), for whichever process runs.
    throttle: super::throttle::Throttle,
}

impl ManagedServer {
    fn observations_file(&self, inc: u32) -> PathBuf {
        self.dir.join(format!("observations-{inc}.json"))
    }

    fn log_file(&self, inc: u32) -> PathBuf {
        self.dir.join(format!("server-{inc}.log"))
    }

    fn spawn(&mut self) -> Result<(), Error> {
        let inc = self.incarnation;
        let log = std::fs::File::create(self.log_file(inc))
            .map_err(|e| Error::Internal(format!("server log file: {e}")))?;
        let err = log
            .try_clone()
            .map_err(|e| Error::Internal(format!("server log file: {e}")))?;
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(format!("exec {}", self.cmd))
            .env("MCPSIM_OBSERVATIONS_FILE", self.observations_file(inc))
            .env("MCPSIM_INCARNATION", inc.to_string());
        for (k, v) in &self.settings {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                Error::Input(
                    InputError::msg(format!("cannot start \"{}\": {e}", self.cmd))
                        .field("--server-cmd"),
                )
            })?;
        self.throttle.set_pid(child.id().unwrap_or(0));
        self.child = Some(child);
        Ok(())
    }

    fn running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGTERM: the server's own graceful shutdown.
    fn terminate(&mut self) {
        // A stopped process takes its SIGTERM when it next runs.
        self.throttle.resume_now();
        if let Some(pid) = self.child.as_ref().and_then(|c| c.id()) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    /// SIGKILL, and wait for the process to be gone.
    async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    async fn restart(&mut self) -> Result<(), Error> {
        self.kill().await;
        self.incarnation += 1;
        self.spawn()
    }
}

/// The scenario's server settings, as environment variables for
/// `--server-cmd` (a setting left at its default is not set).
fn server_settings(c: &crate::servers::ServerConfig) -> Vec<(String, String)> {
    let mut v = Vec::new();
    let flag = |b: bool| if b { "1" } else { "0" }.to_string();
    v.push(("MCPSIM_STATELESS".into(), flag(c.stateless)));
    v.push(("MCPSIM_JSON_RESPONSE".into(), flag(c.json_response)));
    v.push(("MCPSIM_EVENT_STORE".into(), flag(c.event_store)));
    if c.cost != crate::servers::CostMode::default() {
        v.push(("MCPSIM_COST".into(), c.cost.name().into()));
    }
    if let Some(d) = c.graceful_timeout {
        v.push((
            "MCPSIM_GRACEFUL_TIMEOUT".into(),
            d.as_secs_f64().to_string(),
        ));
    }
    if let Some(d) = c.session_idle_timeout {
        v.push((
            "MCPSIM_SESSION_IDLE_TIMEOUT".into(),
            d.as_secs_f64().to_string(),
        ));
    }
    if let Some(a) = &c.dns_rebinding {
        v.push(("MCPSIM_ALLOWED_HOSTS".into(), a.hosts.join(",")));
        v.push(("MCPSIM_ALLOWED_ORIGINS".into(), a.origins.join(",")));
    }
    v
}

/// Wait until `addr` accepts connections (a started server is listening).
async fn wait_listening(addr: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Can this machine send from 127.0.0.2 (Linux can; macOS, by default, not)?
fn own_loopback_addresses() -> bool {
    std::net::TcpListener::bind((Ipv4Addr::new(127, 0, 0, 2), 0)).is_ok()
}

/// A `--time-scale` value, or why not.
pub fn check_time_scale(k: f64) -> Result<f64, InputError> {
    if k > 0.0 && k <= 1000.0 {
        Ok(k)
    } else {
        Err(InputError::msg(format!("{k}: must be in (0, 1000]")).field("--time-scale"))
    }
}

/// Drive a scenario against a real server.
pub fn drive(opts: DriveOptions) -> Result<DriveOutcome, Error> {
    check_time_scale(opts.time_scale)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("tokio runtime: {e}")))?;
    let log = RealLog::new(Level::DEBUG, "drive").keep().echo(opts.log);
    let guard = tracing::subscriber::set_default(log.clone());
    let local = tokio::task::LocalSet::new();
    let out = local.block_on(&rt, run(opts, log));
    drop(guard);
    out
}

async fn run(opts: DriveOptions, log: RealLog) -> Result<DriveOutcome, Error> {
    // The log's start and the wall clock, read together.
    let epoch_at_log_start = observe::epoch_now() - log.start().elapsed().as_secs_f64();
    let realised = opts
        .scenario
        .realise(opts.seed)
        .time_scaled(opts.time_scale)?;
    let schedule = expand(&realised)?;
    let target = resolve(&opts.target, "--target").await?;
    let observe_at = match (&opts.observe, opts.no_observe) {
        (_, true) => None,
        (Some(url), false) => {
            let t = resolve(url, "--observe").await?;
            Some((t.addr, t.authority, t.path))
        }
        (None, false) => Some((
            target.addr,
            target.authority.clone(),
            OBSERVATIONS_PATH.to_string(),
        )),
    };
    let mut notes = Vec::new();

    let mut server = match &opts.server_cmd {
        None => None,
        Some(cmd) => {
            let dir = std::env::temp_dir().join(format!(
                "mcpsim-drive-{}-{}",
                std::process::id(),
                (epoch_at_log_start * 1e6) as u64
            ));
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::Internal(format!("{}: {e}", dir.display())))?;
            let mut m = ManagedServer {
                starting: false,
                cmd: cmd.clone(),
                settings: server_settings(&realised.server),
                dir,
                incarnation: 0,
                child: None,
                throttle: super::throttle::Throttle::new(),
            };
            m.spawn()?;
            if !wait_listening(target.addr, Duration::from_secs(30)).await {
                return Err(InputError::msg(format!(
                    "the server started by --server-cmd did not listen on {} within 30 s (its output: {})",
                    target.addr,
                    m.log_file(0).display()
                ))
                .field("--server-cmd")
                .into());
            }
            notes.push(format!("server output: {}", m.dir.display()));
            Some(m)
        }
    };
    if server.is_none() && tokio::net::TcpStream::connect(target.addr).await.is_err() {
        return Err(InputError::msg(format!(
            "nothing listens on {} ({})",
            target.addr, opts.target
        ))
        .field("--target")
        .into());
    }
    // Observations are read from this run's start: take the start now that the
    // server is up, so that a slow-starting server does not eat the schedule.
    // Sessions the server already holds belong to another run.
    let older: Vec<String> = match &observe_at {
        Some((addr, auth, path)) => observe::fetch(*addr, auth, path)
            .await
            .ok()
            .flatten()
            .map(|d| d.session_ids())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let start = Instant::now();
    let epoch0 = epoch_at_log_start + (start - log.start()).as_secs_f64();

    let shared = Rc::new(Shared {
        authority: target.authority.clone(),
        path: target.path.clone(),
        start,
        log: ClientLog::default(),
        seed: opts.seed,
    });
    let distinct =
        target.addr.ip().is_loopback() && target.addr.is_ipv4() && own_loopback_addresses();
    let mut hosts: Vec<Host> = Vec::new();
    let mut hosts_by_ip = BTreeMap::new();
    let mut client_hosts = BTreeMap::new();
    for (i, name) in realised.client_hosts().into_iter().enumerate() {
        let mut b = FaultProxy::builder(target.addr)
            .latency(realised.links.get(&name).copied().unwrap_or_default());
        if distinct && i < 250 {
            let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8));
            b = b.source(ip);
            hosts_by_ip.insert(ip.to_string(), name.clone());
        }
        let proxy = b
            .start()
            .await
            .map_err(|e| Error::Internal(format!("fault proxy for {name}: {e}")))?;
        let clients: Vec<ClientSpec> = realised
            .clients
            .iter()
            .filter(|c| c.host == name)
            .cloned()
            .collect();
        for c in &clients {
            client_hosts.insert(c.name.clone(), name.clone());
        }
        hosts.push(Host {
            abandon: clients
                .iter()
                .map(|c| (c.name.clone(), Rc::new(Notify::new())))
                .collect(),
            name,
            clients,
            proxy,
            incarnation: 0,
            process: None,
            running: Rc::new(Cell::new(false)),
        });
    }
    if !distinct {
        notes.push(
            "client hosts share one source address: the server's records cannot tell them apart"
                .into(),
        );
    }
    if realised.server != crate::servers::ServerConfig::default() {
        notes.push(if server.is_some() {
            "the scenario's [server] settings went to --server-cmd as MCPSIM_* variables: the server must apply them".into()
        } else {
            "the scenario has [server] settings: a target drive does not start must be started with them".into()
        });
    }
    for h in &mut hosts {
        h.start(&shared);
    }

    // The loop.
    let max_link = realised.links.values().copied().max().unwrap_or_default();
    // The real world's slack on top of the simulator's four trips: a real
    // server notices a closed socket and unwinds in its own time.
    let settle = max_link * 4 + Duration::from_millis(500);
    let mut applied: Vec<AppliedFault> = Vec::new();
    let mut skipped: Vec<SkippedFault> = Vec::new();
    let mut next = 0;
    let mut quiet_since: Option<Duration> = None;
    let mut idle_since: Option<Duration> = None;
    let mut last_poll: Option<Duration> = None;
    // As in the simulator: after a SIGTERM the run is not over until the
    // server process has exited (or a crash or restart replaced it).
    let mut shutdown_pending = false;
    let end = loop {
        let now = start.elapsed();
        while next < schedule.len() && schedule[next].at <= now {
            let f = schedule[next].clone();
            next += 1;
            match apply(&f.kind, &mut hosts, &shared, server.as_mut()).await {
                Ok(()) => {
                    match &f.kind {
                        FaultKind::Shutdown { .. } => shutdown_pending = true,
                        FaultKind::Crash { host } | FaultKind::Restart { host }
                            if host == SERVER_HOST =>
                        {
                            shutdown_pending = false
                        }
                        _ => {}
                    }
                    tracing::info!(target: "mcpsim::fault", "{}", f.kind);
                    applied.push(AppliedFault {
                        at: start.elapsed(),
                        kind: f.kind.clone(),
                    });
                }
                Err(why) => {
                    tracing::warn!(target: "mcpsim::fault", "skipped {}: {why}", f.kind);
                    skipped.push(SkippedFault { fault: f, why });
                }
            }
        }
        if now >= realised.duration {
            break EndReason::Duration;
        }
        if let Some(m) = server.as_mut()
            && m.starting
            && tokio::net::TcpStream::connect(target.addr).await.is_ok()
        {
            m.starting = false;
            for h in &hosts {
                h.proxy.set_patience(Duration::ZERO);
            }
        }
        if shutdown_pending && !server.as_mut().is_some_and(|s| s.running()) {
            shutdown_pending = false;
        }
        // A restarted server is up at once in the simulator; here the run is
        // not over before the new process listens (and can be observed).
        let restarting = server.as_ref().is_some_and(|s| s.starting);
        let clients_done = next == schedule.len()
            && !shutdown_pending
            && !restarting
            && hosts.iter().all(|h| !h.running.get());
        // The server is asked only once nothing else is left to happen.
        let due = last_poll.is_none_or(|t| now >= t + Duration::from_millis(100));
        let idle = if !clients_done {
            false
        } else if !due {
            idle_since.is_some()
        } else {
            last_poll = Some(now);
            let server_up = server.as_mut().is_none_or(|s| s.running());
            match (&observe_at, server_up) {
                (_, false) | (None, _) => true,
                (Some((addr, auth, path)), true) => match observe::fetch(*addr, auth, path).await {
                    Ok(Some(doc)) => {
                        let o = doc.observed(epoch0, &older, 0);
                        let busy = o.calls.iter().any(|c| c.returned.is_none())
                            || o.probe.as_ref().is_some_and(|p| p.in_flight > 0);
                        !busy
                    }
                    _ => true,
                },
            }
        };
        match (idle, idle_since) {
            (true, None) => idle_since = Some(now),
            (false, _) => idle_since = None,
            _ => {}
        }
        match (idle && clients_done, quiet_since) {
            (true, None) => quiet_since = Some(now),
            (true, Some(t)) if now >= t + settle => break EndReason::Quiescent,
            (false, _) => quiet_since = None,
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let at = start.elapsed();
    let mut hosts_running = BTreeMap::new();
    for h in &mut hosts {
        hosts_running.insert(h.name.clone(), h.running.get());
        if let Some(p) = h.process.take() {
            p.abort();
        }
    }

    // What the server saw: every incarnation's file when drive owns the
    // server, else what the target serves now.
    let server_running = server.as_mut().is_none_or(|s| s.running());
    let mut docs: Vec<(u32, Observed)> = Vec::new();
    let mut unobserved: Option<String> = None;
    if let Some(m) = &server {
        // A process still running may be mid-write: ask it directly first.
        let current = m.incarnation;
        for inc in 0..=current {
            let from_http = if inc == current && server_running {
                match &observe_at {
                    Some((addr, auth, path)) => {
                        observe::fetch(*addr, auth, path).await.ok().flatten()
                    }
                    None => None,
                }
            } else {
                None
            };
            let doc = match from_http {
                Some(d) => Some(d),
                None => std::fs::read(m.observations_file(inc))
                    .ok()
                    .and_then(|b| observe::Document::parse(&b).ok()),
            };
            match doc {
                Some(d) => docs.push((inc, d.observed(epoch0, &older, inc))),
                None => {
                    unobserved = Some(format!(
                        "server incarnation {inc} left no observations ({})",
                        m.observations_file(inc).display()
                    ))
                }
            }
        }
    } else if let Some((addr, auth, path)) = &observe_at {
        match observe::fetch(*addr, auth, path).await {
            Ok(Some(d)) => docs.push((0, d.observed(epoch0, &older, 0))),
            Ok(None) => {
                unobserved = Some(format!("the target serves no observations at {path} (404)"))
            }
            Err(e) => unobserved = Some(e),
        }
    } else {
        unobserved = Some("--no-observe".into());
    }
    if let Some(m) = server.as_mut() {
        m.kill().await;
    }
    let quiescent = end == EndReason::Quiescent;
    // The probe is the running process's, never an earlier incarnation's: a
    // process that is gone holds nothing.
    let current = server.as_ref().map_or(0, |m| m.incarnation);
    let mut asgi = Vec::new();
    let mut http = Vec::new();
    let mut has_exchanges = false;
    let mut server_log = Vec::new();
    let mut has_log = false;
    let mut probe = None;
    let mut layers: Option<Layers> = None;
    let mut described = None;
    for (inc, o) in docs.iter().cloned() {
        asgi.extend(o.calls);
        http.extend(o.exchanges);
        has_exchanges |= o.has_exchanges;
        server_log.extend(o.log);
        has_log |= o.has_log;
        layers = layers.or(o.layers);
        described = described.or(o.server);
        if inc == current && server_running {
            probe = o.probe;
        }
    }
    let observed = !docs.is_empty();
    if let Some(p) = &probe
        && p.older_sessions > 0
    {
        notes.push(format!(
            "{} session(s) made before this run began left out",
            p.older_sessions
        ));
    }
    if let Some(t) = probe.as_ref().and_then(|p| p.session_idle_timeout) {
        notes.push(format!(
            "the server reaps a session idle for {} (leak judges by the expiry it reports)",
            crate::time::fmt_duration(t)
        ));
    }
    let mut not_judged: Vec<(&'static str, String)> = Vec::new();
    if let Some(why) = &unobserved {
        notes.push(format!("server observations: {why}"));
    }
    if !observed {
        for o in SERVER_SIDE {
            not_judged.push((o, "the server's records were not observed".into()));
        }
    } else {
        if !has_log {
            not_judged.push(("server-error-log", "the target serves no log".into()));
        }
        if asgi.is_empty() && has_exchanges {
            not_judged.push((
                "protocol-violation",
                "the target's records are HTTP exchanges: it has no ASGI messages to order".into(),
            ));
        }
        if probe.is_none() {
            not_judged.push((
                "leak",
                if server_running {
                    "the target serves no probe".into()
                } else {
                    "the server was not running at the end".into()
                },
            ));
        }
    }

    let mut trace = log.lines();
    trace.retain(|l| l.t >= start - log.start());
    for l in &mut trace {
        l.t -= start - log.start();
    }
    trace.extend(server_log);
    trace.sort_by_key(|l| l.t);
    let server_in_flight = probe.as_ref().map(|p| p.in_flight).unwrap_or(0);
    let observations = Observations {
        layers: layers.unwrap_or(Layers {
            http_host: "target".into(),
            sse: "target".into(),
            transport: "target".into(),
        }),
        http,
        asgi,
        requests: shared.log.records(),
        trace,
        open_streams: probe.as_ref().and_then(|p| p.open_streams.clone()),
        sessions: probe
            .as_ref()
            .filter(|_| quiescent)
            .map(|p| p.sessions.clone()),
        departures: shared.log.departures(),
        quiet_until: shared.log.quiet_until(),
        hang_after: realised.hang_after,
        hosts_by_ip,
        faults: applied.clone(),
        client_hosts,
        end: EndState {
            at,
            quiescent,
            server_running,
            server_incarnation: current,
            server_in_flight,
            server_idle_since: idle_since,
            settle,
            hosts_running,
            cut_links: oracles::cut_links(&applied),
        },
    };
    let mut failures = oracles::check_all(&observations);
    failures.retain(|f| !not_judged.iter().any(|(o, _)| *o == f.oracle));
    Ok(DriveOutcome {
        scenario: realised.name.clone(),
        seed: opts.seed,
        target: opts.target,
        time_scale: opts.time_scale,
        server: described,
        schedule,
        skipped,
        not_judged,
        failures,
        end,
        elapsed: at,
        notes,
        observations,
        realised,
    })
}

/// Apply one fault, or say why the real world cannot.
async fn apply(
    kind: &FaultKind,
    hosts: &mut [Host],
    shared: &Rc<Shared>,
    server: Option<&mut ManagedServer>,
) -> Result<(), String> {
    let host = |name: &str, hosts: &mut [Host]| -> Option<usize> {
        hosts.iter().position(|h| h.name == name)
    };
    // The client host at one end of a link whose other end is the server.
    let link = |a: &str, b: &str, hosts: &mut [Host]| -> Result<(usize, bool), String> {
        match (a == SERVER_HOST, b == SERVER_HOST) {
            (false, true) => host(a, hosts).map(|i| (i, true)),
            (true, false) => host(b, hosts).map(|i| (i, false)),
            _ => None,
        }
        .ok_or_else(|| format!("no proxied link between {a} and {b}"))
    };
    match kind {
        FaultKind::Crash { host: h } if h == SERVER_HOST => {
            owned(server)?.kill().await;
        }
        FaultKind::Restart { host: h } if h == SERVER_HOST => {
            let m = owned(server)?;
            m.restart().await.map_err(|e| e.to_string())?;
            // The simulator's restart is instant; a real one is not. Until the
            // new process listens, connections wait for it instead of being
            // refused.
            for h in hosts.iter() {
                h.proxy.set_patience(RESTART_PATIENCE);
            }
            m.starting = true;
        }
        FaultKind::Shutdown { .. } => owned(server)?.terminate(),
        FaultKind::Crash { host: h } => {
            let i = host(h, hosts).ok_or_else(|| format!("no host {h}"))?;
            hosts[i].kill();
        }
        FaultKind::Restart { host: h } => {
            let i = host(h, hosts).ok_or_else(|| format!("no host {h}"))?;
            hosts[i].kill();
            hosts[i].incarnation += 1;
            hosts[i].start(shared);
        }
        FaultKind::Abandon { client } => {
            let n = hosts
                .iter()
                .find_map(|h| h.abandon.get(client))
                .ok_or_else(|| format!("no client {client}"))?;
            n.notify_waiters();
        }
        FaultKind::Hold { a, b } => {
            let (i, _) = link(a, b, hosts)?;
            hosts[i].proxy.hold();
        }
        FaultKind::Release { a, b } => {
            let (i, _) = link(a, b, hosts)?;
            hosts[i].proxy.release();
        }
        FaultKind::Partition { a, b } => {
            let (i, _) = link(a, b, hosts)?;
            hosts[i].proxy.partition();
        }
        FaultKind::Repair { a, b } => {
            let (i, _) = link(a, b, hosts)?;
            hosts[i].proxy.repair();
        }
        FaultKind::PartitionOneway { from, to } => {
            let (i, from_client) = link(from, to, hosts)?;
            hosts[i].proxy.partition_oneway(direction(from_client));
        }
        FaultKind::RepairOneway { from, to } => {
            let (i, from_client) = link(from, to, hosts)?;
            hosts[i].proxy.repair_oneway(direction(from_client));
        }
        FaultKind::Slow { factor, .. } => {
            owned(server)?.throttle.set_factor(*factor);
        }
    }
    Ok(())
}

fn owned(server: Option<&mut ManagedServer>) -> Result<&mut ManagedServer, String> {
    server.ok_or_else(|| "a server fault needs a server drive owns (--server-cmd)".to_string())
}

fn direction(from_client: bool) -> Direction {
    if from_client {
        Direction::ToTarget
    } else {
        Direction::FromTarget
    }
}

#[cfg(test)]
mod tests {
    use super::parse_target;

    #[test]
    fn targets_parse_or_say_why() {
        assert_eq!(
            parse_target("http://127.0.0.1:8000/mcp", "--target").unwrap(),
            ("127.0.0.1".into(), 8000, "/mcp".into())
        );
        assert_eq!(
            parse_target("http://[::1]:9/x", "--target").unwrap(),
            ("::1".into(), 9, "/x".into())
        );
        assert!(parse_target("https://a/mcp", "--target").is_err());
        assert!(parse_target("127.0.0.1:8000", "--target").is_err());
    }
}
