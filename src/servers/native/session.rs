//! A session: its event log, the requests it has in flight, the requests the
//! server has asked of its client, and when its client was last heard from.
//!
//! A session ends three ways: DELETE from its client, idle reaping (nothing
//! heard for the idle timeout and nothing in flight), or the process's end.
//! Ending it aborts its work and closes its connections at once, so nothing
//! outlives it.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::stream::EventLog;
use crate::mcp::Message;

/// A request id as a key: its JSON text, so `1` and `"1"` stay apart.
fn id_key(id: &serde_json::Value) -> String {
    id.to_string()
}

/// A request being worked on.
struct InFlight {
    /// Its stream (`None`: answered as JSON).
    stream: Option<u64>,
    task: AbortHandle,
    /// Which registration this is: a cancelled task is dropped later than it
    /// is unregistered, and must not unregister a new request that reuses
    /// its id.
    token: u64,
}

/// One session (or, for a stateless server, one request's context).
pub struct Session {
    /// Its id (`None`: stateless).
    pub id: Option<String>,
    /// Its streams.
    pub log: RefCell<EventLog>,
    /// The protocol version negotiated.
    pub protocol: RefCell<Option<String>>,
    in_flight: RefCell<BTreeMap<String, InFlight>>,
    pending: RefCell<BTreeMap<i64, oneshot::Sender<Message>>>,
    next_request: Cell<i64>,
    next_token: Cell<u64>,
    /// The client's capabilities, from its `initialize`.
    pub client_capabilities: RefCell<Option<serde_json::Value>>,
    /// The least severe log level the client wants (`logging/setLevel`;
    /// `None`: none asked, everything is sent).
    pub log_level: RefCell<Option<String>>,
    last_heard: Cell<Duration>,
    closed: Cell<bool>,
    ended: tokio::sync::Notify,
}

impl Session {
    /// A new session, heard from at `now`.
    pub fn new(id: Option<String>, now: Duration) -> Self {
        let resumable = id.is_some();
        Self {
            id,
            log: RefCell::new(EventLog::new(resumable)),
            protocol: RefCell::new(None),
            in_flight: RefCell::new(BTreeMap::new()),
            pending: RefCell::new(BTreeMap::new()),
            next_request: Cell::new(0),
            next_token: Cell::new(0),
            client_capabilities: RefCell::new(None),
            log_level: RefCell::new(None),
            last_heard: Cell::new(now),
            closed: Cell::new(false),
            ended: tokio::sync::Notify::new(),
        }
    }

    /// Resolves once the session has ended (its reaper stops waiting then,
    /// and lets the session's memory go at once).
    pub async fn ended(&self) {
        if self.closed.get() {
            return;
        }
        self.ended.notified().await;
    }

    /// The client was heard from.
    pub fn touch(&self, now: Duration) {
        self.last_heard.set(now);
    }

    /// When it was last heard from.
    pub fn last_heard(&self) -> Duration {
        self.last_heard.get()
    }

    /// Requests in flight.
    pub fn busy(&self) -> usize {
        self.in_flight.borrow().len()
    }

    /// Has it ended?
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Is a request with this id in flight?
    pub fn has_in_flight(&self, id: &serde_json::Value) -> bool {
        self.in_flight.borrow().contains_key(&id_key(id))
    }

    /// A token for the next registration.
    pub fn next_token(&self) -> u64 {
        let t = self.next_token.get();
        self.next_token.set(t + 1);
        t
    }

    /// Register a request's task.
    pub fn register(
        &self,
        id: &serde_json::Value,
        stream: Option<u64>,
        task: AbortHandle,
        token: u64,
    ) {
        self.in_flight.borrow_mut().insert(
            id_key(id),
            InFlight {
                stream,
                task,
                token,
            },
        );
    }

    /// Registration `token` of request `id` is over (answered, or its task
    /// dropped); a later registration of the same id stays.
    pub fn unregister(&self, id: &serde_json::Value, token: u64) {
        let mut f = self.in_flight.borrow_mut();
        if f.get(&id_key(id)).is_some_and(|x| x.token == token) {
            f.remove(&id_key(id));
        }
    }

    /// `notifications/cancelled`: stop the request and end its stream
    /// without an answer. Unknown or finished requests are ignored (the
    /// cancellation raced the answer).
    pub fn cancel(&self, id: &serde_json::Value, now: Duration) -> bool {
        let Some(f) = self.in_flight.borrow_mut().remove(&id_key(id)) else {
            return false;
        };
        f.task.abort();
        if let Some(n) = f.stream {
            self.log.borrow_mut().finish(n, now);
        }
        true
    }

    /// A new id for a request to the client.
    pub fn next_request_id(&self) -> i64 {
        let id = self.next_request.get();
        self.next_request.set(id + 1);
        id
    }

    /// Wait for the client's answer to request `id`.
    pub fn expect_answer(&self, id: i64) -> oneshot::Receiver<Message> {
        let (tx, rx) = oneshot::channel();
        self.pending.borrow_mut().insert(id, tx);
        rx
    }

    /// Give up waiting for the answer to `id`.
    pub fn forget_answer(&self, id: i64) {
        self.pending.borrow_mut().remove(&id);
    }

    /// The client answered a request of ours; `false` if nobody waits for it
    /// (late, or never asked).
    pub fn resolve(&self, answer: Message) -> bool {
        let Some(id) = answer.id().and_then(serde_json::Value::as_i64) else {
            return false;
        };
        match self.pending.borrow_mut().remove(&id) {
            Some(tx) => tx.send(answer).is_ok(),
            None => false,
        }
    }

    /// End the session: abort its work, drop what it waits for, close its
    /// connections.
    pub fn close(&self) {
        self.closed.set(true);
        self.ended.notify_waiters();
        let flights = std::mem::take(&mut *self.in_flight.borrow_mut());
        for f in flights.into_values() {
            f.task.abort();
        }
        self.pending.borrow_mut().clear();
        self.log.borrow_mut().close_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cancelled_task_dropped_late_leaves_a_new_request_with_its_id_alone() {
        let s = Session::new(Some("s".into()), Duration::ZERO);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        tokio::task::LocalSet::new().block_on(&rt, async {
            let id = json!(7);
            let first = s.next_token();
            let h1 = tokio::task::spawn_local(std::future::pending::<()>());
            s.register(&id, None, h1.abort_handle(), first);
            assert!(s.cancel(&id, Duration::ZERO));
            let second = s.next_token();
            let h2 = tokio::task::spawn_local(std::future::pending::<()>());
            s.register(&id, None, h2.abort_handle(), second);
            // The first task's guard runs only now, when tokio drops it.
            s.unregister(&id, first);
            assert_eq!(s.busy(), 1);
            assert!(
                s.cancel(&id, Duration::ZERO),
                "the new request can still be cancelled"
            );
        });
    }
}
