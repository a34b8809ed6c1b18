//! `mcpsim bench`: how fast mcpsim is, as figures, never as pass/fail.
//!
//! Every ratio is against a baseline measured in the same process, in the same
//! minute: a bare turmoil simulation with the same hosts, tick and number of
//! steps (idle software, no subscriber) stands for "the cost of simulating at
//! all", and everything mcpsim adds is the overhead over it. Wall-clock time
//! is read here, outside every simulation, and only to report.
//!
//! [`serve`] (`bench --serve`) is the other benchmark: `mcpsim serve` on
//! loopback under load, against a bare hyper server.

pub mod serve;

use std::io::Write;
use std::time::{Duration, Instant};

use crate::error::{Error, InputError};
use crate::explore::sweep::{self, SweepConfig};
use crate::scenario::{self, Scenario};
use crate::sim;

const STACK: &str = "python-sdk-1.20";

/// A bare turmoil run: `hosts` idle hosts, `steps` ticks.
fn bare(hosts: &[String], tick: Duration, steps: u64) -> Result<Duration, Error> {
    let mut sim = turmoil::Builder::new()
        .tick_duration(tick)
        .simulation_duration(Duration::from_secs(365 * 24 * 3600))
        .build();
    for h in hosts {
        sim.host(h.as_str(), || async {
            std::future::pending::<()>().await;
            Ok(())
        });
    }
    let start = Instant::now();
    for _ in 0..steps {
        sim.step()
            .map_err(|e| Error::Internal(format!("bare turmoil run failed: {e}")))?;
    }
    Ok(start.elapsed())
}

fn scenario(text: &str) -> Result<Scenario, Error> {
    scenario::parse(text, "<bench>").map_err(Error::from)
}

/// `clients` logical clients on one host, each calling a `seconds` tool.
fn load_scenario(clients: usize, seconds: u64) -> Result<Scenario, Error> {
    let mut t = format!(
        "name = \"bench-{clients}x{seconds}s\"\nduration = \"{}s\"\n[network]\nlatency = {{ min = \"1ms\", max = \"20ms\" }}\n",
        seconds + 5
    );
    for i in 0..clients {
        t.push_str(&format!(
            "[[client]]\nname = \"c{i}\"\nhost = \"h\"\nscript = [ {{ initialize = {{}} }}, {{ notify = \"notifications/initialized\" }}, {{ call = \"slow_operation\", args = {{ seconds = {seconds} }} }} ]\n"
        ));
    }
    scenario(&t)
}

struct Timed {
    wall: Duration,
    steps: u64,
    virtual_time: Duration,
}

fn time_runs(sc: &Scenario, seeds: std::ops::Range<u64>) -> Result<Timed, Error> {
    let mut t = Timed {
        wall: Duration::ZERO,
        steps: 0,
        virtual_time: Duration::ZERO,
    };
    for seed in seeds {
        let start = Instant::now();
        let o = sim::run(sc, seed, STACK)?;
        t.wall += start.elapsed();
        t.steps += o.steps;
        t.virtual_time += o.virtual_time;
    }
    Ok(t)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// Run the benchmark and print its figures to `out`.
pub fn run(seeds: u64, jobs: usize, out: &mut dyn Write) -> Result<(), Error> {
    if seeds == 0 {
        return Err(InputError::msg("must be at least 1")
            .field("--seeds")
            .into());
    }
    let p = |out: &mut dyn Write, s: String| {
        let _ = writeln!(out, "{s}");
    };
    let std = scenario::load("slow-tool-disconnect")?;
    p(
        out,
        format!(
            "mcpsim bench — {} core(s) used, {seeds} seeds, stack {STACK}",
            jobs
        ),
    );

    // 1. Throughput on all cores.
    let cfg = SweepConfig {
        stack: crate::servers::stack(STACK)
            .ok_or_else(|| crate::error::Error::Internal(format!("no stack {STACK}")))?,
        seeds: sweep::Seeds::new(0..seeds, None),
        jobs,
        fail_fast: false,
        check_determinism: false,
        child: None,
        keep: false,
        rows: false,
    };
    let r = sweep::sweep(&std, &cfg, |_| {});
    let rate = seeds as f64 / r.wall.as_secs_f64();
    p(
        out,
        format!(
            "throughput   slow-tool-disconnect: {seeds} seeds in {:.2}s = {rate:.0} seeds/s on {jobs} thread(s)   [target >= 500 seeds/s: {}]",
            r.wall.as_secs_f64(),
            verdict(rate >= 500.0)
        ),
    );

    // 2. Overhead against bare turmoil, single thread.
    let sample = seeds.min(200);
    let t = time_runs(&std, 0..sample)?;
    let hosts = vec!["server".to_string(), "c1".to_string()];
    let b = bare(&hosts, std.tick, t.steps)?;
    let ratio = t.wall.as_secs_f64() / b.as_secs_f64();
    p(
        out,
        format!(
            "overhead     {sample} runs, {} steps: mcpsim {:.1} ms, bare turmoil (2 idle hosts, same tick and steps) {:.1} ms: {ratio:.2}x   [target <= 1.5x: {}]",
            t.steps,
            t.wall.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3,
            verdict(ratio <= 1.5)
        ),
    );
    p(
        out,
        format!(
            "             per step: mcpsim {:.2} us, bare turmoil {:.2} us",
            t.wall.as_secs_f64() * 1e6 / t.steps as f64,
            b.as_secs_f64() * 1e6 / t.steps as f64
        ),
    );

    // 3. Virtual time against real time.
    let speed = t.virtual_time.as_secs_f64() / t.wall.as_secs_f64();
    p(
        out,
        format!(
            "speed        {:.1}s virtual in {:.2}s wall = {speed:.0}x real time (one thread)   [target >= 1000x: {}]",
            t.virtual_time.as_secs_f64(),
            t.wall.as_secs_f64(),
            verdict(speed >= 1000.0)
        ),
    );

    // 4. Logical clients.
    let mut base = None;
    for n in [1usize, 10, 100] {
        let sc = load_scenario(n, 2)?;
        let t = time_runs(&sc, 0..5)?;
        let per_run = t.wall / 5;
        let b = *base.get_or_insert(per_run);
        let x = per_run.as_secs_f64() / b.as_secs_f64();
        let note = if n == 100 {
            format!("   [target <= 10x one: {}]", verdict(x <= 10.0))
        } else {
            String::new()
        };
        p(
            out,
            format!(
                "clients      {n:>3} logical clients on one host: {:.2} ms per run ({x:.1}x one client){note}",
                per_run.as_secs_f64() * 1e3
            ),
        );
    }

    // 5. What the cost model costs: the same runs with `[server] cost` on
    // (the default) and off, one thread, in this minute.
    for (name, n) in [("slow-tool-disconnect", sample), ("swarm", sample.min(50))] {
        let on = scenario::load(name)?;
        let mut off = on.clone();
        off.server.cost = crate::servers::CostMode::Zero;
        let t_off = time_runs(&off, 0..n)?;
        let t_on = time_runs(&on, 0..n)?;
        let rate = |t: &Timed| n as f64 / t.wall.as_secs_f64();
        p(
            out,
            format!(
                "cost model   {name}, {n} seeds on one thread: calibrated {:.0} seeds/s, zero {:.0} seeds/s: {:.2}x the zero-cost time ({} vs {} steps)",
                rate(&t_on),
                rate(&t_off),
                t_on.wall.as_secs_f64() / t_off.wall.as_secs_f64(),
                t_on.steps,
                t_off.steps
            ),
        );
    }

    // 6. Virtual duration.
    for secs in [10u64, 100, 1000] {
        let sc = load_scenario(1, secs)?;
        let t = time_runs(&sc, 0..1)?;
        p(
            out,
            format!(
                "duration     a {secs}s tool call: {:.1} ms wall for {:.1}s virtual ({:.1} us per virtual ms)",
                t.wall.as_secs_f64() * 1e3,
                t.virtual_time.as_secs_f64(),
                t.wall.as_secs_f64() * 1e6 / t.virtual_time.as_millis().max(1) as f64
            ),
        );
    }
    Ok(())
}
