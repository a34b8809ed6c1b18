//! `mcpsim bench --serve`: `mcpsim serve` under load on loopback.
//!
//! Each stack runs as its own `mcpsim serve` process, so that its memory and
//! descriptors can be read from /proc while it works. Load comes from this
//! process: a number of kept-alive connections, each running MCP sessions
//! back to back — initialize, notifications/initialized, tools/list, DELETE —
//! for a fixed time. The figures: rounds and requests per second, latency
//! p50/p99 per request, errors (a failed connection, a status other than the
//! one the protocol asks for) and the server's RSS and open descriptors
//! sampled once a second.
//!
//! The baseline, measured first with the same client and the same number of
//! connections: a bare hyper server in this process that answers every
//! request with a fixed JSON body (202 and nothing to a notification; it
//! gives no session, so its rounds have no DELETE). The ratio against it says what the stack
//! costs over HTTP itself on this machine, in this minute.
//!
//! Nothing here runs inside a simulation: wall-clock time and threads are
//! the point.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::error::{Error, InputError};

/// What `bench --serve` runs.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Stacks to serve, one after another.
    pub stacks: Vec<String>,
    /// How long each stack (and the baseline) is loaded.
    pub duration: Duration,
    /// Kept-alive connections at once.
    pub connections: usize,
}

/// The four requests of a round, in order.
const KINDS: [&str; 4] = ["initialize", "initialized", "tools/list", "DELETE"];

/// What one load run saw.
#[derive(Default)]
struct Tally {
    rounds: u64,
    /// Latency of each request that was answered, by kind.
    latency: [Vec<Duration>; 4],
    /// Failures, by what failed.
    errors: std::collections::BTreeMap<String, u64>,
}

impl Tally {
    fn requests(&self) -> usize {
        self.latency.iter().map(Vec::len).sum()
    }

    fn error(&mut self, what: String) {
        *self.errors.entry(what).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        self.rounds += other.rounds;
        for (a, b) in self.latency.iter_mut().zip(other.latency) {
            a.extend(b);
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
}

/// The `p`th percentile of `v` (sorted here), in ms.
fn percentile(v: &mut [Duration], p: usize) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let i = (v.len() * p / 100).min(v.len() - 1);
    v[i].as_secs_f64() * 1e3
}

/// Run the load benchmark and print its figures.
pub fn run(opts: &LoadOptions, out: &mut dyn Write) -> Result<(), Error> {
    for s in &opts.stacks {
        if crate::servers::stack(s).is_none() {
            return Err(InputError::msg(format!(
                "unknown server stack \"{s}\" (one of: {})",
                crate::servers::stack_names().join(", ")
            ))
            .field("--server")
            .into());
        }
    }
    let p = |out: &mut dyn Write, s: String| {
        let _ = writeln!(out, "{s}");
        let _ = out.flush();
    };
    p(
        out,
        format!(
            "mcpsim bench --serve — {} connection(s), {:.0}s per stack, loopback, one round = {}",
            opts.connections,
            opts.duration.as_secs_f64(),
            KINDS.join(" + ")
        ),
    );
    let base = {
        let (addr, stop) = bare_server()?;
        let t = load(addr, opts)?;
        stop.store(true, Ordering::Relaxed);
        t
    };
    let base_rps = base.requests() as f64 / opts.duration.as_secs_f64();
    p(
        out,
        format!(
            "baseline     bare hyper (a fixed JSON answer to every request): {base_rps:.0} requests/s, errors {}",
            errors(&base)
        ),
    );
    for stack in &opts.stacks {
        let server = Served::start(stack)?;
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (pid, samples, stop) = (server.child.id(), samples.clone(), stop.clone());
            std::thread::spawn(move || sample(pid, &samples, &stop))
        };
        let mut t = load(server.addr, opts)?;
        stop.store(true, Ordering::Relaxed);
        let _ = sampler.join();
        let secs = opts.duration.as_secs_f64();
        let rps = t.requests() as f64 / secs;
        p(
            out,
            format!(
                "serve        {stack}: {} rounds = {:.0} rounds/s, {rps:.0} requests/s = {:.2}x the baseline; errors {}",
                t.rounds,
                t.rounds as f64 / secs,
                rps / base_rps.max(1.0),
                errors(&t)
            ),
        );
        let mut all: Vec<Duration> = t.latency.iter().flatten().copied().collect();
        let mut line = format!(
            "             latency ms p50/p99: all {:.2}/{:.2}",
            percentile(&mut all, 50),
            percentile(&mut all, 99)
        );
        for (kind, v) in KINDS.iter().zip(t.latency.iter_mut()) {
            line.push_str(&format!(
                ", {kind} {:.2}/{:.2}",
                percentile(v, 50),
                percentile(v, 99)
            ));
        }
        p(out, line);
        let samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
        let rss: Vec<String> = samples
            .iter()
            .map(|(kib, _)| format!("{:.1}", *kib as f64 / 1024.0))
            .collect();
        let fds = samples.iter().map(|(_, f)| *f).max().unwrap_or(0);
        p(
            out,
            format!(
                "             RSS MiB each second: {}; open descriptors at most {fds}",
                if rss.is_empty() {
                    "not read (no /proc)".to_string()
                } else {
                    rss.join(" ")
                }
            ),
        );
    }
    Ok(())
}

fn errors(t: &Tally) -> String {
    if t.errors.is_empty() {
        return "0".into();
    }
    let total: u64 = t.errors.values().sum();
    let parts: Vec<String> = t.errors.iter().map(|(k, v)| format!("{v} {k}")).collect();
    format!("{total} ({})", parts.join(", "))
}

/// A `mcpsim serve` child process.
struct Served {
    child: Child,
    addr: SocketAddr,
}

impl Served {
    fn start(stack: &str) -> Result<Self, Error> {
        let exe = std::env::current_exe()
            .map_err(|e| Error::Internal(format!("the mcpsim executable: {e}")))?;
        let mut child = Command::new(exe)
            .args(["serve", "--server", stack, "--listen", "127.0.0.1:0"])
            .args(["--log", "error"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::Internal(format!("start mcpsim serve: {e}")))?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        let addr = line
            .rsplit("http://")
            .next()
            .and_then(|s| s.trim().strip_suffix("/mcp"))
            .and_then(|s| s.parse().ok());
        match addr {
            Some(addr) => Ok(Self { child, addr }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(Error::Internal(format!(
                    "mcpsim serve --server {stack} printed no address: {:?}",
                    line.trim()
                )))
            }
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Read `pid`'s RSS (KiB) and open descriptors once a second until `stop`.
/// A wall-clock thread on purpose: it watches a real process on loopback,
/// outside any simulation.
fn sample(pid: u32, samples: &Mutex<Vec<(u64, usize)>>, stop: &AtomicBool) {
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next {
            let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                });
            let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count());
            if let (Some(rss), Ok(fds)) = (rss, fds)
                && let Ok(mut s) = samples.lock()
            {
                s.push((rss, fds));
            }
            next += Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A bare hyper server on its own thread; set the flag to stop it.
fn bare_server() -> Result<(SocketAddr, Arc<AtomicBool>), Error> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::Internal(format!("bind the baseline server: {e}")))?;
    let addr = std_listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("baseline address: {e}")))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| Error::Internal(format!("baseline socket: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                return;
            };
            while !flag.load(Ordering::Relaxed) {
                let Ok(Ok((s, _))) =
                    tokio::time::timeout(Duration::from_millis(100), listener.accept()).await
                else {
                    continue;
                };
                let _ = s.set_nodelay(true);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|req: hyper::Request<_>| async move {
                        let body = BodyExt::collect(req.into_body())
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        // A notification is accepted, as MCP asks (202).
                        let note = body.windows(14).any(|w| w == b"notifications/");
                        let res = if note {
                            hyper::Response::builder()
                                .status(202)
                                .body(Full::new(Bytes::new()))
                        } else {
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from_static(
                                    br#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
                                )))
                        };
                        Ok::<_, std::convert::Infallible>(res.unwrap_or_default())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
    });
    Ok((addr, stop))
}

/// `opts.connections` connections running rounds against `addr` for
/// `opts.duration`.
fn load(addr: SocketAddr, opts: &LoadOptions) -> Result<Tally, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("tokio runtime: {e}")))?;
    let until = Instant::now() + opts.duration;
    Ok(rt.block_on(async move {
        let tasks: Vec<_> = (0..opts.connections)
            .map(|_| tokio::spawn(connection(addr, until)))
            .collect();
        let mut total = Tally::default();
        for t in tasks {
            match t.await {
                Ok(t) => total.merge(t),
                Err(e) => total.error(format!("load task: {e}")),
            }
        }
        total
    }))
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Sender, String> {
    let s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = s.set_nodelay(true);
    let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .map_err(|_| "handshake".to_string())?;
    tokio::spawn(conn);
    Ok(tx)
}

/// One connection's rounds until `until`; on a failure it reconnects.
async fn connection(addr: SocketAddr, until: Instant) -> Tally {
    let mut t = Tally::default();
    // With its port, as every HTTP client sends it (2.3 answers 421 otherwise).
    let host = addr.to_string();
    let mut tx: Option<Sender> = None;
    let mut id = 0u64;
    while Instant::now() < until {
        let sender = match tx.as_mut() {
            Some(s) => s,
            None => match connect(addr).await {
                Ok(s) => tx.insert(s),
                Err(e) => {
                    t.error(e);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        match round(sender, &host, &mut id, &mut t).await {
            Ok(()) => t.rounds += 1,
            Err(e) => {
                t.error(e);
                tx = None;
            }
        }
    }
    t
}

/// initialize, notifications/initialized, tools/list, DELETE on one session.
async fn round(tx: &mut Sender, host: &str, id: &mut u64, t: &mut Tally) -> Result<(), String> {
    let mut c = Client {
        tx,
        host,
        session: None,
        version: None,
    };
    *id += 1;
    let init = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"mcpsim-bench","version":"1"}}}}}}"#
    );
    let (status, headers, body) = c.send("POST", init, 0, t).await?;
    expect(0, status, 200)?;
    c.session = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // What the server agreed to (1.20 knows no 2025-11-25).
    c.version = body
        .split("\"protocolVersion\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .map(str::to_string);
    let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string();
    let (status, ..) = c.send("POST", note, 1, t).await?;
    expect(1, status, 202)?;
    *id += 1;
    let list = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#);
    let (status, ..) = c.send("POST", list, 2, t).await?;
    expect(2, status, 200)?;
    if c.session.is_some() {
        let (status, ..) = c.send("DELETE", String::new(), 3, t).await?;
        expect(3, status, 200)?;
    }
    Ok(())
}

fn expect(kind: usize, got: u16, want: u16) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{} answered {got}", KINDS[kind]))
    }
}

/// One connection, and the session a round opened on it.
struct Client<'a> {
    tx: &'a mut Sender,
    host: &'a str,
    session: Option<String>,
    version: Option<String>,
}

impl Client<'_> {
    /// One request, its answer read to the end; the latency is recorded.
    async fn send(
        &mut self,
        method: &str,
        body: String,
        kind: usize,
        t: &mut Tally,
    ) -> Result<(u16, http::HeaderMap, String), String> {
        let (tx, host) = (&mut *self.tx, self.host);
        let (session, version) = (self.session.as_deref(), self.version.as_deref());
        let mut req = hyper::Request::builder()
            .method(method)
            .uri("/mcp")
            .header("host", host)
            .header("accept", "application/json, text/event-stream");
        if method == "POST" {
            req = req.header("content-type", "application/json");
        }
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        if let Some(v) = version {
            req = req.header("mcp-protocol-version", v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("request: {e}"))?;
        let start = Instant::now();
        tx.ready()
            .await
            .map_err(|_| format!("{} on a closed connection", KINDS[kind]))?;
        let res = tx
            .send_request(req)
            .await
            .map_err(|_| format!("{} unanswered", KINDS[kind]))?;
        let status = res.status().as_u16();
        let (parts, body) = res.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|_| format!("{} body cut off", KINDS[kind]))?
            .to_bytes();
        t.latency[kind].push(start.elapsed());
        Ok((
            status,
            parts.headers,
            String::from_utf8_lossy(&body).into_owned(),
        ))
    }
}
