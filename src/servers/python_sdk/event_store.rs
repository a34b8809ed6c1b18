//! The event store of python-sdk's streamable-HTTP example,
//! `InMemoryEventStore` (examples/servers/simple-streamablehttp, v1.20.0) —
//! what a python-sdk server uses for resumability.
//!
//! One store per process, shared by every session. Event ids are `uuid4()`
//! (from the process's id source), so they say nothing about the stream they
//! belong to; each stream keeps its last 100 events; `replay_events_after`
//! finds the stream of the given id and replays the events after it on that
//! stream, returning the stream id. An unknown id logs a warning and replays
//! nothing. Neither method awaits anything but the replay callback, so storing
//! is never a checkpoint.
//!
//! mcp 2.3 also stores priming events (`store_event(stream_id, None)`: the
//! interface's `message: JSONRPCMessage | None`); they take a place in the
//! stream's 100 like any event, and a replay skips them — the store is the
//! application's (`interop/real_server_2.py` has the same one).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use crate::servers::Ids;

use super::pydict::PyDict;
use super::transport::EventMessage;
use crate::mcp::Message;

#[derive(Debug, Clone)]
struct Entry {
    event_id: String,
    stream_id: String,
    /// `None`: a priming event.
    message: Option<Message>,
}

/// `InMemoryEventStore(max_events_per_stream=100)`.
pub struct InMemoryEventStore {
    max_per_stream: usize,
    streams: RefCell<PyDict<VecDeque<Entry>>>,
    /// How often each stream's deque has changed: a replay iterating it
    /// across an await fails if it changed meanwhile (Python's deque iterator
    /// raises `RuntimeError: deque mutated during iteration`).
    changes: RefCell<BTreeMap<String, u64>>,
    index: RefCell<BTreeMap<String, Entry>>,
    ids: Rc<RefCell<Ids>>,
}

/// `str(uuid4())`.
pub fn uuid4(ids: &RefCell<Ids>) -> String {
    let mut b = [0u8; 16];
    ids.borrow_mut().fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl InMemoryEventStore {
    /// A store drawing its ids from `ids`.
    pub fn new(ids: Rc<RefCell<Ids>>) -> Self {
        Self {
            max_per_stream: 100,
            streams: RefCell::new(PyDict::default()),
            changes: RefCell::new(BTreeMap::new()),
            index: RefCell::new(BTreeMap::new()),
            ids,
        }
    }

    /// `await store_event(stream_id, message)` (`None`: a priming event).
    pub fn store_event(&self, stream_id: &str, message: Option<&Message>) -> String {
        let event_id = uuid4(&self.ids);
        let entry = Entry {
            event_id: event_id.clone(),
            stream_id: stream_id.to_string(),
            message: message.cloned(),
        };
        let mut streams = self.streams.borrow_mut();
        let mut q = streams.get(stream_id).unwrap_or_default();
        if q.len() == self.max_per_stream
            && let Some(oldest) = q.pop_front()
        {
            self.index.borrow_mut().remove(&oldest.event_id);
        }
        q.push_back(entry.clone());
        streams.insert(stream_id.to_string(), q);
        *self
            .changes
            .borrow_mut()
            .entry(stream_id.to_string())
            .or_default() += 1;
        self.index.borrow_mut().insert(event_id.clone(), entry);
        event_id
    }

    /// `await replay_events_after(last_event_id, send_callback)`: the events
    /// to replay (the caller awaits the callback for each, in order, and asks
    /// [`Self::changed_since`] after each, as the deque's iterator would), the
    /// stream id and the stream's change count; `None` for an unknown id.
    pub fn events_after(&self, last_event_id: &str) -> Option<(String, Vec<EventMessage>, u64)> {
        let Some(last) = self.index.borrow().get(last_event_id).cloned() else {
            tracing::warn!(target: "mcp_simple_streamablehttp.event_store", "Event ID {last_event_id} not found in store");
            return None;
        };
        let q = self
            .streams
            .borrow()
            .get(&last.stream_id)
            .unwrap_or_default();
        let mut found = false;
        let mut out = Vec::new();
        for e in q {
            if found {
                // Priming events have nothing to replay.
                if let Some(message) = &e.message {
                    out.push(EventMessage {
                        message: message.clone(),
                        event_id: Some(e.event_id.clone()),
                    });
                }
            } else if e.event_id == last_event_id {
                found = true;
            }
        }
        let changes = self
            .changes
            .borrow()
            .get(&last.stream_id)
            .copied()
            .unwrap_or(0);
        Some((last.stream_id, out, changes))
    }

    /// Has `stream_id`'s deque changed since it had `changes` changes?
    pub fn changed_since(&self, stream_id: &str, changes: u64) -> bool {
        self.changes.borrow().get(stream_id).copied().unwrap_or(0) != changes
    }
}
