//! `mcpsim serve`: one server stack on a real TCP port.
//!
//! The server code is the simulation's, unchanged: it gets a tokio listener
//! instead of a turmoil one, the wall clock, ids from the OS CSPRNG, and the
//! process's Ctrl-C / SIGTERM as its [`Signal::Terminate`] — so the python-sdk
//! model shuts down as uvicorn does (stop accepting, let open responses
//! finish), and a second Ctrl-C quits at once.
//!
//! With `--observe ADDR` it also serves, on that second address, what the
//! simulator's oracles read of the stack — its tracking layer's records, its
//! WARN+ log, its probe — as [`super::observe`]'s document, so `mcpsim drive`
//! can judge the model over real TCP whole.

use std::cell::Cell;
use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use tracing::Level;

use super::log::RealLog;
use super::net::TcpListener;
use crate::asgi::tracking::AsgiLog;
use crate::error::{Error, InputError};
use crate::servers::{
    self, Ids, Layers, Load, ProbeSlot, Processing, ServerConfig, ServerEnv, Signal, Signals,
};

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
    /// Where to serve the observations document (`None`: nowhere).
    pub observe: Option<SocketAddr>,
    /// What a connection may cost (see [`super::net`]).
    pub limits: super::net::Limits,
    /// The seed of the stack's cost draws (a model with a cost model charges
    /// its processing time as real sleeps; `config.cost` switches it off).
    pub seed: u64,
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
    // Observed, the log keeps WARN and above whatever is printed.
    let log = match opts.observe {
        None => RealLog::new(opts.log, "server"),
        Some(_) => RealLog::new(opts.log.max(Level::WARN), "server")
            .keep()
            .echo(Some(opts.log)),
    };
    let _guard = tracing::subscriber::set_default(log.clone());
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
        let start = log.start();
        // Unobserved, nobody reads the records of returned calls: forget them,
        // or a long-running server grows by one record per request.
        let asgi_log = match opts.observe {
            None => AsgiLog::forgetting(),
            Some(_) => AsgiLog::default(),
        };
        let http_clock: crate::servers::tower::HttpClock =
            std::sync::Arc::new(move || start.elapsed());
        let http_log = match opts.observe {
            None => crate::servers::HttpLog::forgetting(http_clock),
            Some(_) => crate::servers::HttpLog::new(http_clock),
        };
        let probe = ProbeSlot::default();
        let mut observed = None;
        if let Some(at) = opts.observe {
            let observer = Rc::new(Observer {
                server: format!(
                    "mcpsim serve --server {} (the model, on real TCP)",
                    stack.name()
                ),
                layers: stack.layers(),
                asgi_log: asgi_log.clone(),
                http_log: http_log.clone(),
                probe: probe.clone(),
                log: log.clone(),
                epoch_start: super::observe::epoch_now() - start.elapsed().as_secs_f64(),
            });
            let l = tokio::net::TcpListener::bind(at).await.map_err(|e| {
                InputError::msg(format!("cannot listen on {at}: {e}")).field("--observe")
            })?;
            tokio::task::spawn_local(serve_observations(l, observer.clone()));
            observed = Some(observer);
        }
        let env = ServerEnv {
            listener: Box::new(TcpListener::new(listener, opts.limits)),
            ids: Ids::Os,
            signals,
            http_log,
            asgi_log,
            clock: Rc::new(move || start.elapsed()),
            probe,
            incarnation: 0,
            listening: Rc::new(Cell::new(false)),
            processing: Processing {
                mode: opts.config.cost,
                rng: crate::rng::Seeds::new(opts.seed).stream("server-cost/0"),
                tick: std::time::Duration::from_millis(1),
                load: Load::default(),
            },
            config: opts.config,
        };
        println!(
            "mcpsim serve: {} listening on http://{addr}/mcp",
            stack.name()
        );
        let _ = std::io::stdout().flush();
        stack.run(env).await;
        tracing::info!(target: "mcpsim::serve", "server process exited");
        // Under `drive --server-cmd`, what this process saw outlives it.
        if let (Some(o), Some(path)) = (observed, std::env::var_os("MCPSIM_OBSERVATIONS_FILE"))
            && let Err(e) = std::fs::write(&path, o.document())
        {
            tracing::warn!(target: "mcpsim::serve", "cannot write observations: {e}");
        }
        Ok(0)
    })
}

/// What `--observe` reads from.
struct Observer {
    server: String,
    layers: Layers,
    asgi_log: AsgiLog,
    http_log: crate::servers::HttpLog,
    probe: ProbeSlot,
    log: RealLog,
    /// Epoch seconds at the records' zero.
    epoch_start: f64,
}

impl Observer {
    fn document(&self) -> String {
        let probe = self.probe.get();
        super::observe::document(
            &self.server,
            &self.layers,
            &self.asgi_log.records(),
            &self.http_log.records(),
            &self.log.lines(),
            probe.as_deref(),
            self.epoch_start,
        )
        .to_string()
    }
}

/// Answer every request on `listener` with the observations document.
async fn serve_observations(listener: tokio::net::TcpListener, observer: Rc<Observer>) {
    while let Ok((stream, _)) = listener.accept().await {
        let observer = observer.clone();
        let svc = hyper::service::service_fn(move |_req| {
            let body = observer.document();
            async move {
                let mut resp = hyper::Response::new(Full::new(Bytes::from(body)));
                resp.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("application/json"),
                );
                Ok::<_, Infallible>(resp)
            }
        });
        tokio::task::spawn_local(
            hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc),
        );
    }
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
