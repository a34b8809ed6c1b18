//! The command line. Parsing and printing only; the work is the library's.
//!
//! Exit codes: 0 every oracle held; 1 a failure was found (for a sweep: on
//! any seed); 2 bad input (one line naming file:line and field, or the flag);
//! 3 an internal error of mcpsim itself.

use std::ffi::OsString;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::{Error, InputError};
use crate::explore::determinism::{self, Child};
use crate::explore::{bisect, sweep};
use crate::scenario::{self, SeedRange};
use crate::time::fmt_duration;
use crate::{bench, oracles, report, servers, sim};

#[derive(Debug, Parser)]
#[command(
    name = "mcpsim",
    version,
    about = "Deterministic simulation of MCP's Streamable HTTP transport: one seed, one exact run."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run one scenario with one seed and judge it.
    Run {
        /// A scenario file, or the name of one in sims/.
        scenario: String,
        /// The seed (every random choice of the run derives from it).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// The server stack (default: the scenario's).
        #[arg(long)]
        server: Option<String>,
        /// Print one JSON object instead of the human report.
        #[arg(long)]
        json: bool,
        /// Write the trace to FILE as JSON lines.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// Write the run as one self-contained HTML page (timeline, failures,
        /// trace, replay command).
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Write the run as a Mermaid sequence diagram (bounded in size).
        #[arg(long, value_name = "FILE")]
        mermaid: Option<PathBuf>,
        /// Write the run as Chrome trace-event JSON (Perfetto, chrome://tracing).
        #[arg(long, value_name = "FILE")]
        perfetto: Option<PathBuf>,
        /// Write what the oracles read as one JSON object: every client
        /// request, every ASGI call and HTTP exchange the server's tracking
        /// layers recorded, the faults, the end state.
        #[arg(long, value_name = "FILE")]
        observations: Option<PathBuf>,
        /// Also run the seed again in this process and in a child process, and
        /// report the first trace line where they differ.
        #[arg(long)]
        check_determinism: bool,
        /// Print the realised scenario (every random part fixed for the seed)
        /// as TOML instead of running it.
        #[arg(long)]
        print_scenario: bool,
        /// Multiply every duration of the realised scenario by this (as
        /// `drive --time-scale` does, to compare a real run with the model's).
        #[arg(long, default_value_t = 1.0, conflicts_with = "check_determinism")]
        time_scale: f64,
    },
    /// Run a range of seeds on all cores and group the failures.
    Sweep {
        /// A scenario file, or the name of one in sims/.
        scenario: String,
        /// Seeds A..B (B excluded).
        #[arg(long)]
        seeds: String,
        /// Worker threads (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// The server stack (default: the scenario's).
        #[arg(long)]
        server: Option<String>,
        /// Only the seeds s with s mod N = K.
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// One JSON object per seed on stdout (summary on stderr).
        #[arg(long)]
        json: bool,
        /// Stop after the first failing seed.
        #[arg(long)]
        fail_fast: bool,
        /// Check every seed's determinism too.
        #[arg(long)]
        check_determinism: bool,
        /// Write the sweep's report as one self-contained HTML page.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Write JUnit XML: one test case per seed, a failure per signature.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Combine the `--json` output of `sweep --shard K/N` runs into the
    /// summary (and reports) of one sweep of the whole range. Exit 2 if the
    /// files do not cover the range exactly once.
    Merge {
        /// Files of `sweep --json` output.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write the merged report as one self-contained HTML page.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Write the merged JUnit XML.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Shrink a failing seed to the smallest exact schedule that still fails,
    /// and find each remaining fault's race window.
    Bisect {
        /// A scenario file, or the name of one in sims/.
        scenario: String,
        /// The failing seed.
        #[arg(long)]
        seed: u64,
        /// The server stack (default: the scenario's).
        #[arg(long)]
        server: Option<String>,
        /// Where to write the regression scenario (default:
        /// sims/regressions/<scenario>-<seed>.toml).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The failure signature to keep (default: the run's first).
        #[arg(long)]
        signature: Option<String>,
    },
    /// Measure mcpsim's speed and print the figures.
    Bench {
        /// Seeds for the throughput figure.
        #[arg(long, default_value_t = 2000)]
        seeds: u64,
        /// Worker threads (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Instead: load `mcpsim serve` on loopback (sessions opened, used and
        /// DELETEd back to back) and print throughput, latency, errors and the
        /// server's RSS, against a bare hyper server.
        #[arg(long)]
        serve: bool,
        /// With --serve: a stack to load (repeat for more; default native and
        /// python-sdk-2.3).
        #[arg(long = "server", value_name = "STACK")]
        servers: Vec<String>,
        /// With --serve: how long each stack is loaded.
        #[arg(long, default_value = "10s")]
        duration: String,
        /// With --serve: kept-alive connections at once.
        #[arg(long, default_value_t = 8)]
        connections: usize,
    },
    /// Fuzz the scenario format: mutate every shipped scenario (and make
    /// some from scratch) with a seeded mutator, and check that each case is
    /// rejected with one bounded line or realises and runs; print the counts
    /// by outcome. Exit 1 if any case broke the contract.
    Fuzz {
        /// How many cases.
        #[arg(long, default_value_t = 10_000)]
        cases: u64,
        /// The first case's number (cases are seeds: case N replays).
        #[arg(long, default_value_t = 0)]
        first: u64,
    },
    /// Serve a stack on a real TCP port (for real clients, the official
    /// conformance suite, curl). Under `drive --server-cmd`, the scenario's
    /// server settings arrive as MCPSIM_* variables and add to the flags.
    Serve {
        /// The server stack.
        #[arg(long, default_value = "native")]
        server: String,
        /// Where to listen (port 0: any free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:8000")]
        listen: String,
        /// No sessions: a fresh transport for every request.
        #[arg(long)]
        stateless: bool,
        /// Answer requests with one JSON body instead of an SSE stream.
        #[arg(long)]
        json_response: bool,
        /// Keep an event store, so broken streams can be resumed.
        #[arg(long)]
        event_store: bool,
        /// The most verbose log level on stderr (error, warn, info, debug, trace).
        #[arg(long, default_value = "info")]
        log: String,
        /// Also serve what the oracles read of the stack (its ASGI records, WARN+
        /// log, sessions and streams) on this address, for `mcpsim drive --observe`.
        #[arg(long, value_name = "ADDR")]
        observe: Option<String>,
        /// Connections open at once; the next waits for one to close.
        #[arg(long, default_value_t = 1024)]
        max_connections: usize,
        /// Close a connection whose first request head has not arrived this
        /// long after it was accepted, or a later head this long after its
        /// first byte.
        #[arg(long, default_value = "10s")]
        head_timeout: String,
        /// Close a connection whose request body has not all arrived this long
        /// after the end of its head.
        #[arg(long, default_value = "60s")]
        body_timeout: String,
        /// Close a connection on which nothing was read or written this long.
        #[arg(long, default_value = "600s")]
        idle_timeout: String,
        /// A model's processing time: "calibrated" (charged as real sleeps, as
        /// in simulation) or "zero".
        #[arg(long, default_value = "calibrated")]
        cost: String,
        /// The seed of the model's cost draws (default: $MCPSIM_SEED, or 0).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Replay a scenario's schedule against a real server over loopback:
    /// its clients through a fault proxy, its faults on the wall clock.
    Drive {
        /// A scenario file, or the name of one in sims/.
        scenario: String,
        /// The seed that realises the scenario (as for `run`).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// The server's MCP endpoint, e.g. http://127.0.0.1:8000/mcp.
        #[arg(long)]
        target: String,
        /// Where the server serves its observations (default: the target's
        /// /__mcpsim/observations).
        #[arg(long, value_name = "URL")]
        observe: Option<String>,
        /// Read no server observations: judge the client side only.
        #[arg(long, conflicts_with = "observe")]
        no_observe: bool,
        /// Start the server with this command (sh -c 'exec CMD') and own it,
        /// so that server faults (shutdown, crash, restart) can be applied.
        #[arg(long, value_name = "CMD")]
        server_cmd: Option<String>,
        /// Multiply every duration of the scenario (faults, sleeps, timeouts,
        /// the tools' seconds) by this.
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
        /// Print one JSON object instead of the human report.
        #[arg(long)]
        json: bool,
        /// Write the run as one self-contained HTML page.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Print events up to this level on stderr as they happen.
        #[arg(long)]
        log: Option<String>,
    },
    /// List the scenarios, server stacks and oracles.
    List,
}

/// Run the command line; returns the exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return 0;
            }
            // One line: clap's first line, without its usage block.
            let text = e.to_string();
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let mut first = lines.next().unwrap_or("bad arguments").to_string();
            // "the following required arguments were not provided:" names
            // them on the next line.
            if first.ends_with(':')
                && let Some(next) = lines.next()
            {
                first = format!("{first} {next}");
            }
            let first = first.as_str();
            // A flag's value can be anything a user pasted: bounded.
            let first = crate::error::bounded(first, crate::error::MAX_MESSAGE_CHARS);
            eprintln!("{first} (see mcpsim --help)");
            return 2;
        }
    };
    match execute(cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            // Internal errors carry what a run saw; bounded like the rest.
            eprintln!(
                "error: {}",
                crate::error::bounded(&e.to_string(), 4 * crate::error::MAX_MESSAGE_CHARS)
            );
            e.exit_code()
        }
    }
}

fn execute(cmd: Cmd) -> Result<i32, Error> {
    match cmd {
        Cmd::Run {
            scenario,
            seed,
            server,
            json,
            trace,
            html,
            mermaid,
            perfetto,
            observations,
            check_determinism,
            print_scenario,
            time_scale,
        } => {
            let k = crate::real::drive::check_time_scale(time_scale)?;
            if print_scenario {
                let sc = scenario::load(&scenario)?;
                print!("{}", sc.realise(seed).time_scaled(k)?.to_toml());
                return Ok(0);
            }
            let pictures = Pictures {
                html,
                mermaid,
                perfetto,
                observations,
            };
            run(
                &scenario,
                seed,
                server,
                json,
                trace,
                &pictures,
                check_determinism,
                k,
            )
        }
        Cmd::Sweep {
            scenario,
            seeds,
            jobs,
            server,
            shard,
            json,
            fail_fast,
            check_determinism,
            html,
            junit,
        } => run_sweep(
            &scenario,
            &seeds,
            jobs,
            server,
            shard,
            json,
            fail_fast,
            check_determinism,
            &Reports { html, junit },
        ),
        Cmd::Merge { files, html, junit } => run_merge(&files, &Reports { html, junit }),
        Cmd::Bisect {
            scenario,
            seed,
            server,
            out,
            signature,
        } => run_bisect(&scenario, seed, server, out, signature),
        Cmd::Fuzz { cases, first } => run_fuzz(first, cases),
        Cmd::Bench {
            seeds,
            jobs,
            serve: false,
            ..
        } => {
            bench::run(seeds, jobs.unwrap_or_else(cores), &mut std::io::stdout())?;
            Ok(0)
        }
        Cmd::Bench {
            serve: true,
            servers,
            duration,
            connections,
            ..
        } => {
            let duration = match crate::time::parse_duration(&duration) {
                Ok(d)
                    if d >= std::time::Duration::from_secs(1)
                        && d <= std::time::Duration::from_secs(600) =>
                {
                    d
                }
                Ok(_) => return Err(InputError::msg("use 1s to 600s").field("--duration").into()),
                Err(m) => return Err(InputError::msg(m).field("--duration").into()),
            };
            if connections == 0 || connections > 1000 {
                return Err(InputError::msg("use 1 to 1000")
                    .field("--connections")
                    .into());
            }
            let stacks = if servers.is_empty() {
                vec!["native".to_string(), "python-sdk-2.3".to_string()]
            } else {
                servers
            };
            let opts = bench::serve::LoadOptions {
                stacks,
                duration,
                connections,
            };
            bench::serve::run(&opts, &mut std::io::stdout())?;
            Ok(0)
        }
        Cmd::Serve {
            server,
            listen,
            stateless,
            json_response,
            event_store,
            log,
            observe,
            max_connections,
            head_timeout,
            body_timeout,
            idle_timeout,
            cost,
            seed,
        } => {
            let observe = observe.map(|o| socket_addr(&o, "--observe")).transpose()?;
            let cost =
                servers::CostMode::parse(&cost).map_err(|m| InputError::msg(m).field("--cost"))?;
            let seed = match seed {
                Some(s) => s,
                None => match std::env::var("MCPSIM_SEED") {
                    Ok(v) => v.parse().map_err(|_| {
                        InputError::msg(format!("\"{v}\" is not a seed")).field("MCPSIM_SEED")
                    })?,
                    Err(_) => 0,
                },
            };
            let listen = socket_addr(&listen, "--listen")?;
            let limit = |v: &str, flag: &str| -> Result<std::time::Duration, Error> {
                match crate::time::parse_duration(v) {
                    Ok(d) if !d.is_zero() && d <= std::time::Duration::from_secs(86_400) => Ok(d),
                    Ok(_) => Err(InputError::msg("must be more than 0 and at most 24h")
                        .field(flag.to_string())
                        .into()),
                    Err(m) => Err(InputError::msg(m).field(flag.to_string()).into()),
                }
            };
            if max_connections == 0 || max_connections > 1_000_000 {
                return Err(InputError::msg("use 1 to 1000000")
                    .field("--max-connections")
                    .into());
            }
            let limits = crate::real::net::Limits {
                max_connections,
                head_timeout: limit(&head_timeout, "--head-timeout")?,
                body_timeout: limit(&body_timeout, "--body-timeout")?,
                idle_timeout: limit(&idle_timeout, "--idle-timeout")?,
            };
            let log = log_level(&log)?;
            let mut config = servers::ServerConfig {
                stateless,
                json_response,
                event_store,
                cost,
                ..Default::default()
            };
            drive_settings(&mut config)?;
            crate::real::serve::serve(crate::real::serve::ServeOptions {
                stack: server,
                listen,
                config,
                log,
                observe,
                limits,
                seed,
            })
        }
        Cmd::Drive {
            scenario,
            seed,
            target,
            observe,
            no_observe,
            server_cmd,
            time_scale,
            json,
            html,
            log,
        } => {
            let log = log.as_deref().map(log_level).transpose()?;
            let replay = format!(
                "mcpsim drive {scenario} --seed {seed} --target {target} --time-scale {time_scale}"
            );
            let outcome = crate::real::drive::drive(crate::real::drive::DriveOptions {
                scenario: scenario::load(&scenario)?,
                seed,
                target,
                observe,
                no_observe,
                server_cmd,
                time_scale,
                log,
            })?;
            if let Some(path) = &html {
                let view = crate::view::RunView::of_drive(&outcome, replay);
                write_file(path, "--html", &crate::view::html::render(&view))?;
            }
            if json {
                println!("{}", crate::real::report::json(&outcome));
            } else {
                print!("{}", crate::real::report::human(&outcome));
            }
            Ok(if outcome.passed() { 0 } else { 1 })
        }
        Cmd::List => {
            list();
            Ok(0)
        }
    }
}

/// The scenario's `[server]` settings that `drive --server-cmd` passes in
/// `MCPSIM_*` variables (see `real::drive`): each one set adds to the flags.
fn drive_settings(c: &mut servers::ServerConfig) -> Result<(), InputError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let on = |name: &str| var(name).is_some_and(|v| v == "1");
    let seconds = |name: &str| -> Result<Option<std::time::Duration>, InputError> {
        var(name)
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(std::time::Duration::from_secs_f64)
                    .ok_or_else(|| {
                        InputError::msg(format!("\"{v}\" is not a number of seconds")).field(name)
                    })
            })
            .transpose()
    };
    c.stateless |= on("MCPSIM_STATELESS");
    c.json_response |= on("MCPSIM_JSON_RESPONSE");
    c.event_store |= on("MCPSIM_EVENT_STORE");
    c.graceful_timeout = seconds("MCPSIM_GRACEFUL_TIMEOUT")?.or(c.graceful_timeout);
    c.session_idle_timeout = seconds("MCPSIM_SESSION_IDLE_TIMEOUT")?.or(c.session_idle_timeout);
    let list = |name: &str| -> Option<Vec<String>> {
        std::env::var(name).ok().map(|v| {
            v.split(',')
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect()
        })
    };
    if let Some(v) = var("MCPSIM_COST") {
        c.cost =
            servers::CostMode::parse(&v).map_err(|m| InputError::msg(m).field("MCPSIM_COST"))?;
    }
    let (hosts, origins) = (list("MCPSIM_ALLOWED_HOSTS"), list("MCPSIM_ALLOWED_ORIGINS"));
    if hosts.is_some() || origins.is_some() {
        c.dns_rebinding = Some(servers::AllowList {
            hosts: hosts.unwrap_or_default(),
            origins: origins.unwrap_or_default(),
        });
    }
    Ok(())
}

/// An address flag (`--listen`, `--observe`).
fn socket_addr(s: &str, flag: &str) -> Result<std::net::SocketAddr, InputError> {
    s.parse().map_err(|e| {
        InputError::msg(format!(
            "\"{s}\" is not an address like 127.0.0.1:8000 ({e})"
        ))
        .field(flag)
    })
}

/// A `--log` level.
fn log_level(s: &str) -> Result<tracing::Level, InputError> {
    crate::real::log::level(s).ok_or_else(|| {
        InputError::msg(format!(
            "\"{s}\" is not a level (error, warn, info, debug, trace)"
        ))
        .field("--log")
    })
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn pick_stack(flag: Option<String>, sc: &scenario::Scenario) -> Result<servers::StackRef, Error> {
    let name = flag.unwrap_or_else(|| sc.stack.clone());
    servers::stack(&name).ok_or_else(|| {
        InputError::msg(format!(
            "unknown stack \"{name}\" (known: {})",
            servers::stack_names().join(", ")
        ))
        .field("--server")
        .into()
    })
}

fn child(arg: &str) -> Result<Child, Error> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::Internal(format!("cannot find mcpsim's own binary: {e}")))?;
    Ok(Child {
        exe,
        scenario_arg: arg.to_string(),
    })
}

/// The pictures `run` may write besides its report.
struct Pictures {
    html: Option<PathBuf>,
    mermaid: Option<PathBuf>,
    perfetto: Option<PathBuf>,
    observations: Option<PathBuf>,
}

/// Write `text` to `path`, or say which flag's file could not be written.
fn write_file(path: &std::path::Path, flag: &str, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|e| {
        InputError::msg(format!("{}: cannot write: {e}", path.display()))
            .field(flag.to_string())
            .into()
    })
}

#[allow(clippy::too_many_arguments)]
fn run(
    arg: &str,
    seed: u64,
    server: Option<String>,
    json: bool,
    trace: Option<PathBuf>,
    pictures: &Pictures,
    check_determinism: bool,
    time_scale: f64,
) -> Result<i32, Error> {
    let mut sc = scenario::load(arg)?;
    if time_scale != 1.0 {
        // Realising an exact scenario again changes nothing: the scaled one
        // runs with the same seed.
        crate::real::drive::check_time_scale(time_scale)?;
        sc = sc.realise(seed).time_scaled(time_scale)?;
    }
    let stack = pick_stack(server, &sc)?;
    let (outcome, divergence) = if check_determinism {
        let child = child(arg)?;
        let (o, d) = determinism::check(&sc, seed, &stack, Some(&child))?;
        (o, Some(d))
    } else {
        (sim::run_on(&sc, seed, &stack)?, None)
    };
    if let Some(path) = trace {
        let write_err = |e: std::io::Error| {
            InputError::msg(format!("{}: cannot write: {e}", path.display())).field("--trace")
        };
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).map_err(write_err)?);
        for l in &outcome.trace {
            writeln!(f, "{}", l.json()).map_err(write_err)?;
        }
        f.flush().map_err(write_err)?;
    }
    let replay = if time_scale == 1.0 {
        report::replay_command(arg, seed, stack.name())
    } else {
        format!(
            "{} --time-scale {time_scale}",
            report::replay_command(arg, seed, stack.name())
        )
    };
    let view = crate::view::RunView::of_run(&outcome, replay);
    if let Some(path) = &pictures.html {
        write_file(path, "--html", &crate::view::html::render(&view))?;
    }
    if let Some(path) = &pictures.mermaid {
        write_file(path, "--mermaid", &crate::view::mermaid::render(&view))?;
    }
    if let Some(path) = &pictures.observations {
        let text = serde_json::to_string(&outcome.observations)
            .map_err(|e| Error::Internal(format!("observations as JSON: {e}")))?;
        write_file(path, "--observations", &text)?;
    }
    if let Some(path) = &pictures.perfetto {
        write_file(
            path,
            "--perfetto",
            &crate::view::perfetto::render(&view).to_string(),
        )?;
    }
    let diverged = matches!(divergence, Some(Some(_)));
    if json {
        let mut v = report::json(&outcome);
        if let Some(d) = &divergence {
            v["deterministic"] = serde_json::Value::Bool(d.is_none());
            if let Some(d) = d {
                v["divergence"] = serde_json::to_value(d).unwrap_or_default();
            }
        }
        println!("{v}");
    } else {
        if time_scale == 1.0 {
            print!("{}", report::human(&outcome, arg));
        } else {
            let replay = format!(
                "{} --time-scale {time_scale}",
                report::replay_command(arg, seed, stack.name())
            );
            print!("{}", report::human_with(&outcome, &replay));
        }
        match &divergence {
            Some(None) => println!(
                "deterministic: the same trace ({}) twice in this process and once in a child process",
                outcome.trace_hash
            ),
            Some(Some(d)) => println!("NOT DETERMINISTIC: {d}"),
            None => {}
        }
    }
    Ok(if outcome.passed() && !diverged { 0 } else { 1 })
}

/// The reports a sweep or a merge may write besides its summary.
struct Reports {
    html: Option<PathBuf>,
    junit: Option<PathBuf>,
}

impl Reports {
    fn wanted(&self) -> bool {
        self.html.is_some() || self.junit.is_some()
    }

    fn write(&self, v: &crate::view::sweep_report::SweepView) -> Result<(), Error> {
        use crate::view::sweep_report;
        if let Some(path) = &self.html {
            write_file(path, "--html", &sweep_report::html(v))?;
        }
        if let Some(path) = &self.junit {
            write_file(path, "--junit", &sweep_report::junit(v))?;
        }
        Ok(())
    }
}

/// A sweep's exit code: 3 if a seed could not be judged, 1 if one failed.
fn sweep_exit(r: &sweep::SweepResults) -> i32 {
    if !r.errors.is_empty() {
        3
    } else if r.failed > 0 {
        1
    } else {
        0
    }
}

fn run_merge(files: &[PathBuf], reports: &Reports) -> Result<i32, Error> {
    let m = crate::explore::merge::merge(files)?;
    reports.write(&crate::view::sweep_report::SweepView {
        scenario: &m.scenario,
        stack: &m.stack,
        seeds: format!("{}..{}", m.seeds.start, m.seeds.end),
        results: &m.results,
    })?;
    print!("{}", m.results.summary(&m.scenario, &m.stack));
    Ok(sweep_exit(&m.results))
}

#[allow(clippy::too_many_arguments)]
fn run_sweep(
    arg: &str,
    seeds: &str,
    jobs: Option<usize>,
    server: Option<String>,
    shard: Option<String>,
    json: bool,
    fail_fast: bool,
    check_determinism: bool,
    reports: &Reports,
) -> Result<i32, Error> {
    let range = SeedRange::parse(seeds).map_err(|m| InputError::msg(m).field("--seeds"))?;
    let shard = shard
        .map(|s| sweep::parse_shard(&s).map_err(|m| InputError::msg(m).field("--shard")))
        .transpose()?;
    if jobs == Some(0) {
        return Err(InputError::msg("must be at least 1").field("--jobs").into());
    }
    let sc = scenario::load(arg)?;
    let stack = pick_stack(server, &sc)?;
    let cfg = sweep::SweepConfig {
        stack: stack.clone(),
        seeds: sweep::Seeds::new(range.iter(), shard),
        jobs: jobs.unwrap_or_else(cores),
        fail_fast,
        check_determinism,
        child: if check_determinism {
            Some(child(arg)?)
        } else {
            None
        },
        keep: false,
        rows: reports.wanted(),
    };
    // Each --json line names its sweep, so that `mcpsim merge` can check
    // that shards belong together and cover the range.
    let sweep_id = crate::explore::merge::sweep_id(arg, stack.name(), &range, shard);
    let bar = if json || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(cfg.seeds.len());
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} seeds  {per_sec}  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    };
    let mut failing = 0usize;
    let mut stdout = std::io::stdout().lock();
    let results = sweep::sweep(&sc, &cfg, |r| {
        bar.inc(1);
        match r {
            Ok(r) => {
                if !r.passed() {
                    failing += 1;
                    bar.set_message(format!("{failing} failing"));
                }
                if json {
                    let mut line = r.json.clone();
                    line["sweep"] = sweep_id.clone();
                    let _ = writeln!(stdout, "{line}");
                }
            }
            Err(e) => {
                bar.println(format!("internal error on seed {}: {}", e.seed, e.error));
                if json {
                    let mut line = crate::explore::seed_row::SeedRow::error_json(
                        &sc.name,
                        stack.name(),
                        e.seed,
                        &e.error,
                    );
                    line["sweep"] = sweep_id.clone();
                    let _ = writeln!(stdout, "{line}");
                }
            }
        }
    });
    bar.finish_and_clear();
    let summary = results.summary(arg, stack.name());
    if json {
        eprint!("{summary}");
    } else {
        let _ = write!(stdout, "{summary}");
    }
    reports.write(&crate::view::sweep_report::SweepView {
        scenario: arg,
        stack: stack.name(),
        seeds: match shard {
            Some((k, n)) => format!("{seeds} shard {k}/{n}"),
            None => seeds.to_string(),
        },
        results: &results,
    })?;
    Ok(sweep_exit(&results))
}

fn run_fuzz(first: u64, cases: u64) -> Result<i32, Error> {
    if cases == 0 || cases > 10_000_000 {
        return Err(InputError::msg(format!("{cases}: use 1 to 10000000"))
            .field("--cases")
            .into());
    }
    if first.checked_add(cases).is_none() {
        return Err(InputError::msg("the cases' numbers overflow")
            .field("--first")
            .into());
    }
    let start = std::time::Instant::now();
    let counts = crate::explore::fuzz::fuzz(first, cases, |case, o| {
        if let crate::explore::fuzz::Outcome::Broken(why) = o {
            eprintln!("case {case}: {}", crate::error::bounded(why, 300));
        }
    });
    println!(
        "fuzz: {} cases ({first}..{}) in {:.1}s: {} rejected with one line, {} ran, {} realised (too long to run), {} broke the contract",
        counts.total(),
        first + cases,
        start.elapsed().as_secs_f64(),
        counts.rejected,
        counts.ran,
        counts.realised,
        counts.broken.len()
    );
    for (case, why) in counts.broken.iter().take(20) {
        println!("  case {case}: {}", crate::error::bounded(why, 300));
    }
    Ok(if counts.broken.is_empty() { 0 } else { 1 })
}

fn run_bisect(
    arg: &str,
    seed: u64,
    server: Option<String>,
    out: Option<PathBuf>,
    signature: Option<String>,
) -> Result<i32, Error> {
    let sc = scenario::load(arg)?;
    let stack = pick_stack(server, &sc)?;
    let report = bisect::bisect(&sc, seed, &stack, signature.as_deref(), &mut |p| {
        eprintln!("bisect: {p}")
    })?;
    let path =
        out.unwrap_or_else(|| PathBuf::from(format!("sims/regressions/{}-{seed}.toml", sc.name)));
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            InputError::msg(format!("{}: cannot create: {e}", dir.display())).field("--out")
        })?;
    }
    std::fs::write(&path, report.file_text()).map_err(|e| {
        InputError::msg(format!("{}: cannot write: {e}", path.display())).field("--out")
    })?;
    let steps: usize = report.minimal.clients.iter().map(|c| c.steps.len()).sum();
    println!("signature: {}", report.signature);
    println!(
        "shrunk: {} faults -> {}, {} script steps -> {} (1-minimal)",
        report.original.0,
        report.minimal.faults.len(),
        report.original.1,
        steps
    );
    println!(
        "{:<40} {:>10} {:>10} {:>10}",
        "fault", "seed's at", "earliest", "latest"
    );
    for w in &report.windows {
        println!(
            "{:<40} {:>10} {:>10} {:>10}",
            w.fault,
            fmt_duration(w.at),
            fmt_duration(w.earliest),
            fmt_duration(w.latest)
        );
    }
    if let Some(r) = &report.minimal.regression {
        println!(
            "absent on: {}",
            if r.fixed_on.is_empty() {
                "none".into()
            } else {
                r.fixed_on.join(", ")
            }
        );
    }
    println!("runs: {}", report.runs);
    println!("wrote: {}", path.display());
    println!(
        "replay: {}",
        report::replay_command(&path.display().to_string(), seed, stack.name())
    );
    Ok(0)
}

fn list() {
    println!("scenarios:");
    for name in scenario::catalogue_names() {
        match scenario::load(&name) {
            Ok(s) => println!("  {name:<24} {}", s.about),
            Err(e) => println!("  {name:<24} (invalid: {e})"),
        }
    }
    println!("server stacks:");
    for s in servers::stacks() {
        println!("  {:<26} {}", s.name(), s.about());
    }
    println!("oracles:");
    for o in oracles::all() {
        println!("  {:<20} {}", o.name(), o.about());
    }
}
