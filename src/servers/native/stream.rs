//! A session's streams and their event log: the heart of resumption.
//!
//! Every SSE stream the server opens — one per POST request, plus the
//! standalone GET stream (stream 0) — gets a number, and every event on it
//! an id `<stream>-<seq>` that names the stream. A client that lost a stream
//! comes back with `GET` and `Last-Event-ID: <stream>-<seq>`, and gets exactly
//! the events of that stream after `seq`, then the live ones.
//!
//! Exactly once follows from one rule: an event is appended to the log and
//! handed to the attached connection (if any) in one step, and a resumption
//! replays from the log and attaches in one step. No await separates them, so
//! no event can fall between the replay and the live feed, or land in both.
//!
//! Disconnection is not cancellation: when the connection goes, the writer is
//! detached and the stream lives on in the log. Memory is bounded: a stream
//! keeps its last [`MAX_EVENTS`] events, a session at most [`MAX_STREAMS`]
//! streams, and a finished stream is forgotten [`RETENTION`] after its answer.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

/// Events kept per stream.
pub const MAX_EVENTS: usize = 128;
/// Streams kept per session (the oldest finished ones go first).
pub const MAX_STREAMS: usize = 64;
/// How long a finished stream stays resumable.
pub const RETENTION: Duration = Duration::from_secs(60);
/// What the client is asked to wait before it reconnects (`retry:`).
pub const RETRY_MS: u64 = 250;
/// Frames queued for one connection; a connection further behind than this
/// is cut loose (it can resume from the log).
const QUEUE: usize = 2 * MAX_EVENTS + 8;

/// The standalone GET stream's number.
pub const STANDALONE: u64 = 0;

/// The feed of one response body.
pub type Feed = mpsc::Receiver<Bytes>;

/// One logged event.
struct Logged {
    seq: u64,
    frame: Bytes,
}

/// One stream.
struct Stream {
    events: VecDeque<Logged>,
    next_seq: u64,
    writer: Option<mpsc::Sender<Bytes>>,
    /// When its answer went out: nothing more will be added.
    finished_at: Option<Duration>,
}

impl Stream {
    fn new() -> Self {
        Self {
            events: VecDeque::new(),
            next_seq: 1,
            writer: None,
            finished_at: None,
        }
    }

    /// Hand a frame to the connection; a gone or hopelessly slow one is
    /// detached.
    fn deliver(&mut self, frame: Bytes) {
        if let Some(w) = &self.writer
            && w.try_send(frame).is_err()
        {
            self.writer = None;
        }
    }
}

/// What a resumption found.
pub enum Resume {
    /// The stream, replayed and attached.
    Attached(Feed),
    /// No such stream (never, or no longer, held).
    Unknown,
}

/// The streams of one session.
pub struct EventLog {
    streams: BTreeMap<u64, Stream>,
    next_stream: u64,
    /// Give events ids (and keep them): off for stateless requests.
    resumable: bool,
}

/// Frame an SSE event.
fn frame(id: Option<&str>, data: &str, retry: bool) -> Bytes {
    let mut s = String::with_capacity(data.len() + 48);
    if let Some(id) = id {
        s.push_str("id: ");
        s.push_str(id);
        s.push('\n');
    }
    if retry {
        s.push_str(&format!("retry: {RETRY_MS}\n"));
    }
    s.push_str("event: message\n");
    for line in data.split('\n') {
        s.push_str("data: ");
        s.push_str(line);
        s.push('\n');
    }
    s.push('\n');
    Bytes::from(s)
}

/// Parse an event id `<stream>-<seq>`.
pub fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (s, q) = id.split_once('-')?;
    Some((s.parse().ok()?, q.parse().ok()?))
}

impl EventLog {
    /// An empty log.
    pub fn new(resumable: bool) -> Self {
        let mut streams = BTreeMap::new();
        streams.insert(STANDALONE, Stream::new());
        Self {
            streams,
            next_stream: 1,
            resumable,
        }
    }

    /// Open a request stream; returns its number and the feed for the
    /// response body, primed with an event that carries an id (so even a
    /// stream that breaks before anything else can be resumed).
    pub fn open(&mut self, now: Duration) -> (u64, Feed) {
        let n = self.next_stream;
        self.next_stream += 1;
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut s = Stream::new();
        s.writer = Some(tx);
        self.streams.insert(n, s);
        self.prune(now);
        if self.resumable {
            self.prime(n);
        }
        (n, rx)
    }

    fn prime(&mut self, n: u64) {
        if let Some(s) = self.streams.get_mut(&n) {
            // The priming event is logged like any other, so a resumption
            // from it replays what came after.
            let seq = s.next_seq;
            s.next_seq += 1;
            let f = frame(Some(&format!("{n}-{seq}")), "", true);
            s.events.push_back(Logged {
                seq,
                frame: f.clone(),
            });
            s.deliver(f);
        }
    }

    /// Attach a new connection to the standalone stream (replacing any
    /// earlier one: a client that asks again has lost the old one, even if
    /// the server cannot tell).
    pub fn listen(&mut self) -> Feed {
        let (tx, rx) = mpsc::channel(QUEUE);
        let resumable = self.resumable;
        if let Some(s) = self.streams.get_mut(&STANDALONE) {
            s.writer = Some(tx);
        }
        if resumable {
            self.prime(STANDALONE);
        }
        rx
    }

    /// Append a message to stream `n` and deliver it; returns its event id.
    /// A message for a stream no longer held goes to the standalone stream.
    pub fn send(&mut self, n: u64, json: &str) -> Option<String> {
        let n = if self
            .streams
            .get(&n)
            .is_some_and(|s| s.finished_at.is_none())
        {
            n
        } else {
            STANDALONE
        };
        let resumable = self.resumable;
        let s = self.streams.get_mut(&n)?;
        let seq = s.next_seq;
        s.next_seq += 1;
        let id = resumable.then(|| format!("{n}-{seq}"));
        let f = frame(id.as_deref(), json, false);
        if resumable {
            s.events.push_back(Logged {
                seq,
                frame: f.clone(),
            });
            if s.events.len() > MAX_EVENTS {
                s.events.pop_front();
            }
        }
        s.deliver(f);
        id
    }

    /// Send the answer on request stream `n` and finish it. An answer never
    /// goes anywhere but its own stream: if that is finished already (the
    /// request was cancelled), it is dropped, as the spec asks.
    pub fn answer(&mut self, n: u64, json: &str, now: Duration) {
        if self.streams.get(&n).is_none_or(|s| s.finished_at.is_some()) {
            return;
        }
        self.send(n, json);
        self.finish(n, now);
    }

    /// Stream `n` is done (answered or cancelled): end the connection's
    /// body after what was sent, keep the log for resumption.
    pub fn finish(&mut self, n: u64, now: Duration) {
        if let Some(s) = self.streams.get_mut(&n) {
            s.finished_at = Some(now);
            s.writer = None;
            if !self.resumable {
                self.streams.remove(&n);
            }
        }
    }

    /// Resume stream `n` after event `seq`: replay what followed, then
    /// attach (or, for a finished stream, end).
    pub fn resume(&mut self, n: u64, seq: u64, now: Duration) -> Resume {
        self.prune(now);
        let Some(s) = self.streams.get_mut(&n) else {
            return Resume::Unknown;
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        for e in s.events.iter().filter(|e| e.seq > seq) {
            // The queue holds more than a stream keeps: this cannot fail.
            let _ = tx.try_send(e.frame.clone());
        }
        if s.finished_at.is_none() {
            s.writer = Some(tx);
        }
        Resume::Attached(rx)
    }

    /// Close every connection (DELETE, reaping, shutdown).
    pub fn close_all(&mut self) {
        for s in self.streams.values_mut() {
            s.writer = None;
        }
    }

    /// Close the standalone stream's connection.
    pub fn close_standalone(&mut self) {
        if let Some(s) = self.streams.get_mut(&STANDALONE) {
            s.writer = None;
        }
    }

    /// Request streams still waiting for their answer.
    pub fn unfinished(&self) -> Vec<u64> {
        self.streams
            .iter()
            .filter(|(n, s)| **n != STANDALONE && s.finished_at.is_none())
            .map(|(n, _)| *n)
            .collect()
    }

    /// Forget finished streams past their retention, and the oldest
    /// finished ones beyond the cap.
    fn prune(&mut self, now: Duration) {
        self.streams
            .retain(|n, s| *n == STANDALONE || s.finished_at.is_none_or(|t| now < t + RETENTION));
        while self.streams.len() > MAX_STREAMS {
            let oldest = self
                .streams
                .iter()
                .filter(|(n, s)| **n != STANDALONE && s.finished_at.is_some())
                .map(|(n, _)| *n)
                .next();
            match oldest {
                Some(n) => {
                    self.streams.remove(&n);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(rx: &mut Feed) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(b) = rx.try_recv() {
            out.push(String::from_utf8_lossy(&b).into_owned());
        }
        out
    }

    #[test]
    fn a_resumption_replays_exactly_what_followed_then_goes_live() {
        let t = Duration::ZERO;
        let mut log = EventLog::new(true);
        let (n, mut rx) = log.open(t);
        assert!(drain(&mut rx)[0].starts_with(&format!("id: {n}-1\nretry: 250\n")));
        log.send(n, "{\"a\":1}");
        drop(rx); // the connection is gone
        log.send(n, "{\"a\":2}");
        let Resume::Attached(mut again) = log.resume(n, 2, t) else {
            panic!("unknown")
        };
        log.answer(n, "{\"a\":3}", t);
        let got = drain(&mut again);
        assert_eq!(got.len(), 2);
        assert!(got[0].contains("id: 1-3\n") && got[0].contains("\"a\":2"));
        assert!(got[1].contains("id: 1-4\n") && got[1].contains("\"a\":3"));
        // Finished: the feed ends (the sender is gone).
        assert!(matches!(
            again.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn finished_streams_are_forgotten_after_retention() {
        let mut log = EventLog::new(true);
        let (n, _rx) = log.open(Duration::ZERO);
        log.finish(n, Duration::from_secs(1));
        assert!(matches!(
            log.resume(n, 0, Duration::from_secs(30)),
            Resume::Attached(_)
        ));
        assert!(matches!(
            log.resume(n, 0, Duration::from_secs(62)),
            Resume::Unknown
        ));
    }

    #[test]
    fn memory_is_bounded() {
        let mut log = EventLog::new(true);
        let (n, _rx) = log.open(Duration::ZERO);
        for i in 0..(MAX_EVENTS * 3) {
            log.send(n, &i.to_string());
        }
        log.finish(n, Duration::ZERO);
        for _ in 0..(MAX_STREAMS * 2) {
            let (m, _r) = log.open(Duration::ZERO);
            log.finish(m, Duration::ZERO);
        }
        assert!(log.streams.len() <= MAX_STREAMS);
        assert!(log.streams.values().all(|s| s.events.len() <= MAX_EVENTS));
    }
}
