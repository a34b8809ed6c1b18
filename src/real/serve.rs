//! `mcpsim serve`: one server stack on a real TCP port.
//!
//! The server code is the simulation's, unchanged: it gets a tokio listener
//! instead of a turmoil one, the wall clock, ids from the OS CSPRNG, and the
//! process's Ctrl-C / SIGTERM as its [`Signal::Terminate`] — so the python-sdk
//! model shuts down as uvicorn does (stop accepting, let open responses
//! finish), and a second Ctrl-C quits at once.

use std::cell::Cell;
use std::io::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use tracing::Level;

use super::log::RealLog;
use super::net::TcpListener;
use crate::error::{Error, InputError};
use crate::servers::{self, Ids, ProbeSlot, ServerConfig, ServerEnv, Signal, Signals};

/// What to serve, and where.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The stack's name (`mcpsim list`).
    pub stack: String,
    /// Where to listen (port 0: any free port).
    pub listen: SocketAddr,
    /// The server's configuration (stateless, JSON answers, event store, …).
    pub config: ServerConfig,
    /// The most verbose log level printed on stderr.
    pub log: Level,
}

/// Serve until the stack exits (after Ctrl-C or SIGTERM). Prints
/// `listening on http://ADDR/mcp` on stdout once the port is open.
pub fn serve(opts: ServeOptions) -> Result<i32, Error> {
    let stack = servers::stack(&opts.stack).ok_or_else(|| {
        InputError::msg(format!(
            "unknown server stack \"{}\" (one of: {})",
            opts.stack,
            servers::stack_names().join(", ")
        ))
        .field("--server")
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("tokio runtime: {e}")))?;
    let log = RealLog::new(opts.log, "server");
    let _guard = tracing::subscriber::set_default(log);
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|e| {
                InputError::msg(format!("cannot listen on {}: {e}", opts.listen)).field("--listen")
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Internal(format!("local address: {e}")))?;
        let signals = Signals::default();
        tokio::task::spawn_local(forward_signals(signals.clone()));
        let start = Instant::now();
        let env = ServerEnv {
            listener: Box::new(TcpListener(listener)),
            ids: Ids::Os,
            signals,
            asgi_log: Default::default(),
            clock: Rc::new(move || start.elapsed()),
            probe: ProbeSlot::default(),
            incarnation: 0,
            listening: Rc::new(Cell::new(false)),
            config: opts.config,
        };
        println!(
            "mcpsim serve: {} listening on http://{addr}/mcp",
            stack.name()
        );
        let _ = std::io::stdout().flush();
        stack.run(env).await;
        tracing::info!(target: "mcpsim::serve", "server process exited");
        Ok(0)
    })
}

/// The first Ctrl-C or SIGTERM asks the server to shut down gracefully; the
/// next one ends the process at once.
async fn forward_signals(signals: Signals) {
    let mut asked = false;
    loop {
        if !next_signal().await {
            return;
        }
        if asked {
            eprintln!("mcpsim serve: second signal, quitting now");
            std::process::exit(130);
        }
        asked = true;
        tracing::info!(target: "mcpsim::serve", "signal received: shutting down (again to quit now)");
        signals.raise(Signal::Terminate);
    }
}

/// Wait for Ctrl-C or SIGTERM; false if signals cannot be watched.
async fn next_signal() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return tokio::signal::ctrl_c().await.is_ok();
        };
        tokio::select! {
            biased;
            r = tokio::signal::ctrl_c() => r.is_ok(),
            r = term.recv() => r.is_some(),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.is_ok()
    }
}
