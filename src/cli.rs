//! The command line (`mcpsim run`, `mcpsim list`). Parsing and printing only;
//! the work is the library's.
//!
//! Exit codes: 0 every oracle held; 1 a failure was found; 2 bad input (one
//! line naming file:line and field, or the flag); 3 an internal error.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::{Error, InputError};
use crate::{oracles, report, scenario, servers, sim};

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
            let first = text.lines().next().unwrap_or("bad arguments").trim();
            eprintln!("{first} (see mcpsim --help)");
            return 2;
        }
    };
    match execute(cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
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
        } => run(&scenario, seed, server, json, trace),
        Cmd::List => {
            list();
            Ok(0)
        }
    }
}

fn pick_stack(flag: Option<String>, sc: &scenario::Scenario) -> Result<String, Error> {
    let name = flag.unwrap_or_else(|| sc.stack.clone());
    if servers::stack(&name).is_none() {
        return Err(InputError::msg(format!(
            "unknown stack \"{name}\" (known: {})",
            servers::stack_names().join(", ")
        ))
        .field("--server")
        .into());
    }
    Ok(name)
}

fn run(
    arg: &str,
    seed: u64,
    server: Option<String>,
    json: bool,
    trace: Option<PathBuf>,
) -> Result<i32, Error> {
    let sc = scenario::load(arg)?;
    let stack = pick_stack(server, &sc)?;
    let outcome = sim::run(&sc, seed, &stack)?;
    if let Some(path) = trace {
        let mut f = std::fs::File::create(&path).map_err(|e| {
            InputError::msg(format!("{}: cannot write: {e}", path.display())).field("--trace")
        })?;
        for l in &outcome.trace {
            writeln!(f, "{}", l.json()).map_err(|e| {
                InputError::msg(format!("{}: cannot write: {e}", path.display())).field("--trace")
            })?;
        }
    }
    if json {
        println!("{}", report::json(&outcome));
    } else {
        print!("{}", report::human(&outcome, arg));
    }
    Ok(if outcome.passed() { 0 } else { 1 })
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
