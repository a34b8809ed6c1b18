//! sse-starlette's `EventSourceResponse` and `AppStatus`
//! (`sse_starlette/sse.py`, `event.py`): 3.0.3 for python-sdk 1.20, 3.7.0
//! for 2.3.
//!
//! `__call__` runs one task group with `_stream_response`, `_ping`,
//! `_listen_for_exit_signal` and `_listen_for_disconnect`, each wrapped so
//! that when it *returns* it cancels the whole group, plus the data sender
//! (the MCP SSE writer), unwrapped. `_stream_response` sends the response
//! start at once and the final `more_body: False` message only after its
//! iterator is exhausted, under `_send_lock`. So whichever wrapped task
//! returns first decides: a client disconnect (`_listen_for_disconnect`)
//! cancels `_stream_response` while it waits for its next event, and no
//! final body is ever sent. All of this is the same in 3.0.3 and 3.7.0.
//!
//! `AppStatus` is the process-wide shutdown flag, set by the patched uvicorn
//! `handle_exit`. How a shutdown reaches a response differs:
//! * 3.0.3: each response's `_listen_for_exit_signal` creates its own exit
//!   event inside its own task context, which a signal handler running in the
//!   loop's base context never sees, so a stream that is already waiting is
//!   not woken; only a stream that starts after the flag is set exits at once.
//!   (The maintainers' own account of ≤ 3.0.4 agrees: streams "kept" going
//!   through shutdown.)
//! * 3.1+ (3.7.0): `_listen_for_exit_signal` registers an event with the
//!   loop's `_ShutdownState` and starts one `_shutdown_watcher` task per loop
//!   (`loop.create_task`, in no task group), which polls the flag every 0.5 s
//!   and, once it is set, sets every registered event: every open response
//!   ends at the first poll after SIGTERM, its final body unsent.
//!
//! 3.7.0 also closes the body iterator when encoding or a send fails
//! (shielded, bounded by `cleanup_timeout`), and leaves a one-exception group
//! bare (`collapse_excgroups`). What changes between the two is asked of
//! [`Release`].

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use super::anyio::{Cx, Event, Exc, Lock, MemoryRecv, PyResult, task_group};
use super::cost::Step;
use super::release::Release;
use crate::asgi::{Incoming, LocalBoxFuture, Outgoing, Receive, Send};
use crate::time::fmt_duration;

/// `sse_starlette.event.ServerSentEvent`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSentEvent {
    /// `data:` (split on line breaks into several `data:` lines).
    pub data: Option<String>,
    /// `event:`.
    pub event: Option<String>,
    /// `id:`.
    pub id: Option<String>,
    /// `retry:` in milliseconds.
    pub retry: Option<u64>,
    /// A `: comment` line.
    pub comment: Option<String>,
}

fn split_lines(s: &str) -> Vec<&str> {
    // Python's re.split(r"\r\n|\r|\n", s)
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        match rest.find(['\r', '\n']) {
            None => {
                out.push(rest);
                return out;
            }
            Some(i) => {
                out.push(&rest[..i]);
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
        }
    }
}

impl ServerSentEvent {
    /// `encode()` with separator `sep`.
    pub fn encode(&self, sep: &str) -> Bytes {
        let mut b = String::new();
        if let Some(c) = &self.comment {
            for chunk in split_lines(c) {
                b.push_str(&format!(": {chunk}{sep}"));
            }
        }
        if let Some(id) = &self.id {
            b.push_str(&format!("id: {}{sep}", id.replace(['\r', '\n'], "")));
        }
        if let Some(ev) = &self.event {
            b.push_str(&format!("event: {}{sep}", ev.replace(['\r', '\n'], "")));
        }
        if let Some(d) = &self.data {
            for chunk in split_lines(d) {
                b.push_str(&format!("data: {chunk}{sep}"));
            }
        }
        if let Some(r) = self.retry {
            b.push_str(&format!("retry: {r}{sep}"));
        }
        b.push_str(sep);
        Bytes::from(b)
    }
}

/// `AppStatus`: the process-wide shutdown flag, and (3.1+) the loop's
/// `_ShutdownState` (see the module docs).
pub struct AppStatus {
    should_exit: Cell<bool>,
    started: tokio::time::Instant,
    release: Release,
    /// `_ShutdownState.watcher_started`.
    watcher_started: Cell<bool>,
    /// `_ShutdownState.events`, keyed by registration.
    events: RefCell<BTreeMap<u64, Event>>,
    next_event: Cell<u64>,
}

impl AppStatus {
    /// The module state of one process, for `release`'s sse-starlette.
    pub fn new(release: Release) -> Self {
        Self {
            should_exit: Cell::new(false),
            started: tokio::time::Instant::now(),
            release,
            watcher_started: Cell::new(false),
            events: RefCell::new(BTreeMap::new()),
            next_event: Cell::new(0),
        }
    }

    /// The patched `handle_exit`: sets `should_exit` (3.7:
    /// `if AppStatus.enable_automatic_graceful_drain:`, on by default). In
    /// 3.0.3 the exit event it then looks up belongs to the signal handler's
    /// context, not to any stream; 3.7 leaves waking the streams to the
    /// watcher. It calls uvicorn's own `handle_exit` after, which sets
    /// `server.should_exit` — the watcher's second source, set in the same
    /// instant, so the model watches the first alone.
    pub fn handle_exit(&self) {
        self.should_exit.set(true);
    }

    /// `AppStatus.should_exit`.
    pub fn should_exit(&self) -> bool {
        self.should_exit.get()
    }

    /// `_ensure_watcher_started_on_this_loop()` (3.1+).
    fn ensure_watcher_started(self: &Rc<Self>, period: Duration) {
        if self.watcher_started.replace(true) {
            return;
        }
        let me = self.clone();
        // `loop.create_task(_shutdown_watcher())`: a task of the loop, in no
        // task group; it lives until it has broadcast, or the process ends.
        super::event_loop::spawn("sse_starlette._shutdown_watcher", async move {
            while !me.should_exit.get() {
                super::event_loop::sleep(period).await;
            }
            // Shutdown detected - broadcast to all waiting events.
            let events: Vec<Event> = me.events.borrow().values().cloned().collect();
            for e in events {
                e.set();
            }
            // finally: state.watcher_started = False
            me.watcher_started.set(false);
        });
    }
}

/// The data sender callable (the MCP `sse_writer`).
pub type DataSender = Box<dyn FnOnce(Cx) -> LocalBoxFuture<'static, PyResult<()>>>;

struct Shared {
    status: u16,
    raw_headers: Vec<(String, String)>,
    body_iterator: Rc<MemoryRecv<ServerSentEvent>>,
    ping_interval: Duration,
    send_timeout: Option<Duration>,
    sep: &'static str,
    active: Cell<bool>,
    send_lock: Lock,
    app_status: Rc<AppStatus>,
    start_sent: Cell<bool>,
    final_sent: Cell<bool>,
}

/// `sse_starlette.EventSourceResponse`.
pub struct EventSourceResponse {
    shared: Rc<Shared>,
    data_sender: Option<DataSender>,
    guard_final_body: bool,
}

/// `DEFAULT_PING_INTERVAL`.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(15);

impl EventSourceResponse {
    /// `EventSourceResponse(content, headers=..., data_sender_callable=...)`
    /// with the defaults (status 200, ping 15 s, no send timeout, `\r\n`).
    /// `guard_final_body` selects the `+fixed` variant.
    pub fn new(
        content: Rc<MemoryRecv<ServerSentEvent>>,
        headers: Vec<(String, String)>,
        data_sender: Option<DataSender>,
        app_status: Rc<AppStatus>,
        guard_final_body: bool,
    ) -> Self {
        // MutableHeaders: lower-case names; setdefault Cache-Control; force
        // Connection and X-Accel-Buffering; init_headers adds no
        // content-length (no body) and keeps the given content-type.
        let mut raw: Vec<(String, String)> = Vec::new();
        let mut set = |k: &str, v: &str, only_default: bool| {
            let k = k.to_ascii_lowercase();
            match raw.iter_mut().find(|(n, _)| *n == k) {
                Some(_) if only_default => {}
                Some((_, old)) => *old = v.to_string(),
                None => raw.push((k, v.to_string())),
            }
        };
        for (k, v) in &headers {
            set(k, v, false);
        }
        set("cache-control", "no-store", true);
        set("connection", "keep-alive", false);
        set("x-accel-buffering", "no", false);
        set("content-type", "text/event-stream; charset=utf-8", true);
        Self {
            shared: Rc::new(Shared {
                status: 200,
                raw_headers: raw,
                body_iterator: content,
                ping_interval: DEFAULT_PING_INTERVAL,
                send_timeout: None,
                sep: "\r\n",
                active: Cell::new(true),
                send_lock: Lock::new(),
                app_status,
                start_sent: Cell::new(false),
                final_sent: Cell::new(false),
            }),
            data_sender,
            guard_final_body,
        }
    }

    /// `await response(scope, receive, send)`.
    pub async fn call(self, cx: &Cx, receive: Rc<dyn Receive>, send: Rc<dyn Send>) -> PyResult<()> {
        let shared = self.shared.clone();
        let data_sender = self.data_sender;
        let result = task_group(cx, async |_cx, tg| {
            let scope = tg.cancel_scope().clone();
            let cancel_on_finish = move |r: PyResult<()>| {
                r?;
                scope.cancel();
                Ok(())
            };
            {
                let (s, send, fin) = (shared.clone(), send.clone(), cancel_on_finish.clone());
                tg.start_soon("_stream_response", move |cx| async move {
                    fin(stream_response(&cx, &s, &*send).await)
                });
            }
            {
                let (s, send, fin) = (shared.clone(), send.clone(), cancel_on_finish.clone());
                tg.start_soon("_ping", move |cx| async move {
                    fin(ping(&cx, &s, &*send).await)
                });
            }
            {
                let (s, fin) = (shared.clone(), cancel_on_finish.clone());
                tg.start_soon("_listen_for_exit_signal", move |cx| async move {
                    fin(listen_for_exit_signal(&cx, &s.app_status).await)
                });
            }
            if let Some(ds) = data_sender {
                tg.start_soon("data_sender_callable", ds);
            }
            {
                let (s, fin) = (shared.clone(), cancel_on_finish.clone());
                tg.start_soon("_listen_for_disconnect", move |cx| async move {
                    fin(listen_for_disconnect(&cx, &s, &*receive).await)
                });
            }
            Ok(())
        })
        .await;
        // 3.7: `with collapse_excgroups():` around the group.
        let result = match result {
            Err(e) if shared.app_status.release.collapses_exception_groups() => Err(collapse(e)),
            other => other,
        };
        if self.guard_final_body && shared.start_sent.get() && !shared.final_sent.get() {
            // The fix: complete the response whatever ended the group. Shielded,
            // because the scope around us may be cancelled and every checkpoint
            // in it would raise.
            let shielded = cx.enter(&cx.open_scope(true));
            shared.active.set(false);
            shared.final_sent.set(true);
            let _ = send
                .send(
                    &shielded,
                    Outgoing::Body {
                        body: Bytes::new(),
                        more_body: false,
                    },
                )
                .await;
        }
        result
    }
}

/// `collapse_excgroups()`: unwrap groups of one exception.
fn collapse(mut e: Exc) -> Exc {
    while let Exc::Group(members) = &e
        && members.len() == 1
    {
        e = members[0].clone();
    }
    e
}

async fn stream_response(cx: &Cx, s: &Shared, send: &dyn Send) -> PyResult<()> {
    send.send(
        cx,
        Outgoing::Start {
            status: s.status,
            headers: s.raw_headers.clone(),
        },
    )
    .await?;
    s.start_sent.set(true);
    while let Some(data) = s.body_iterator.next(cx).await? {
        // `chunk = ensure_bytes(data, self.sep)`.
        super::event_loop::charge(Step::SseChunk).await;
        let chunk = data.encode(s.sep);
        tracing::debug!(target: "sse_starlette.sse", "chunk: {:?}", String::from_utf8_lossy(&chunk));
        let (scope, r) = cx
            .move_on_after(s.send_timeout, async |cx| {
                send.send(
                    cx,
                    Outgoing::Body {
                        body: chunk,
                        more_body: true,
                    },
                )
                .await
            })
            .await;
        let timed_out = r.is_ok() && scope.cancel_called();
        if (r.is_err() || timed_out) && s.app_status.release.closes_iterator_on_send_failure() {
            // 3.7: `except BaseException:` close the iterator (a memory
            // stream's `aclose()`, which never waits) before re-raising.
            s.body_iterator.close();
        }
        r?;
        if timed_out {
            // 3.0.3 closes the iterator here too, on a send timeout only.
            s.body_iterator.close();
            return Err(super::anyio::Exc::Other {
                class: "SendTimeoutError",
                msg: String::new(),
            });
        }
    }
    s.send_lock
        .with(cx, async |cx| {
            s.active.set(false);
            s.final_sent.set(true);
            send.send(
                cx,
                Outgoing::Body {
                    body: Bytes::new(),
                    more_body: false,
                },
            )
            .await?;
            // The lock released, `cancel_on_finish` cancels the response's
            // group and its tasks unwind: work after the final body.
            super::event_loop::charge(Step::Finish).await;
            Ok(())
        })
        .await
}

async fn listen_for_disconnect(cx: &Cx, s: &Shared, receive: &dyn Receive) -> PyResult<()> {
    while s.active.get() {
        if receive.receive(cx).await? == Incoming::Disconnect {
            s.active.set(false);
            tracing::debug!(target: "sse_starlette.sse", "Got event: http.disconnect. Stop streaming.");
            break;
        }
    }
    Ok(())
}

async fn listen_for_exit_signal(cx: &Cx, app_status: &Rc<AppStatus>) -> PyResult<()> {
    if app_status.should_exit() {
        return Ok(());
    }
    let Some(period) = app_status.release.shutdown_watcher_period() else {
        // 3.0.3: get_or_create_exit_event(): a fresh event in this task's own
        // context, which nothing will set.
        let exit_event = Event::new();
        if app_status.should_exit() {
            return Ok(());
        }
        return exit_event.wait(cx).await;
    };
    // 3.7: register with the loop's shutdown state and wait for the watcher.
    app_status.ensure_watcher_started(period);
    let event = Event::new();
    let key = app_status.next_event.get();
    app_status.next_event.set(key + 1);
    app_status.events.borrow_mut().insert(key, event.clone());
    // try: (double-check after registration) … finally: events.discard(event)
    let r = if app_status.should_exit() {
        Ok(())
    } else {
        event.wait(cx).await
    };
    app_status.events.borrow_mut().remove(&key);
    // `_listen_for_exit_signal_with_grace`: mcp passes no shutdown_event and
    // no grace period, so it returns at once.
    r
}

async fn ping(cx: &Cx, s: &Shared, send: &dyn Send) -> PyResult<()> {
    while s.active.get() {
        cx.sleep(s.ping_interval).await?;
        // The real comment carries datetime.now(); virtual time keeps runs
        // reproducible.
        let ping = ServerSentEvent {
            comment: Some(format!(
                "ping - {}",
                fmt_duration(s.app_status.started.elapsed())
            )),
            ..Default::default()
        }
        .encode(s.sep);
        s.send_lock
            .with(cx, async |cx| {
                if s.active.get() {
                    send.send(
                        cx,
                        Outgoing::Body {
                            body: ping,
                            more_body: true,
                        },
                    )
                    .await?;
                }
                Ok(())
            })
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_sse_starlette() {
        let e = ServerSentEvent {
            event: Some("message".into()),
            data: Some("{\"a\":1}".into()),
            ..Default::default()
        };
        assert_eq!(
            &e.encode("\r\n")[..],
            b"event: message\r\ndata: {\"a\":1}\r\n\r\n"
        );
        let multi = ServerSentEvent {
            data: Some("a\nb".into()),
            id: Some("7".into()),
            ..Default::default()
        };
        assert_eq!(
            &multi.encode("\r\n")[..],
            b"id: 7\r\ndata: a\r\ndata: b\r\n\r\n"
        );
        let close = ServerSentEvent {
            event: Some("close".into()),
            data: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(&close.encode("\r\n")[..], b"event: close\r\ndata: \r\n\r\n");
    }
}
