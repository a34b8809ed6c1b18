//! A session's streams and their event log: the heart of resumption.
//!
//! Every SSE stream the server opens — one per POST request, plus the
//! standalone GET stream (stream 0) — gets a number, and every event on it
//! an id `<stream>-<seq>` that names the stream. A client that lost a stream
//! comes back with `GET` and `Last-Event-ID: <stream>-<seq>`, and gets exactly
//! the events of that stream after `seq`, then the live ones.
//!
//! Exactly once follows from two rules. An event is appended to the log and
//! handed to the attached connection (if any) in one step, and a resumption
//! replays from the log and attaches in one step: no await separates them, so
//! no event falls between the replay and the live feed or lands in both. And
//! a connection that is replaced stops at once — whatever it still had
//! queued is dropped, not written — so the same event never goes out on two
//! connections.
//!
//! Disconnection is not cancellation: when the connection goes, the writer is
//! detached and the stream lives on in the log. A stream whose answer went
//! out to no connection stays resumable for [`RETENTION`]; the session is not
//! reaped while it holds one.
//!
//! Memory is bounded: a stream keeps its last [`MAX_EVENTS`] events (a
//! connection further behind than that is cut loose, so what it missed is
//! still in the log when it resumes), a session at most [`MAX_STREAMS`]
//! streams — answered streams whose answer reached a connection are
//! forgotten first, and a request that would need to evict an undelivered
//! answer is refused instead.
//!
//! Priming (2025-11-25): a new stream opens with an event that carries only an
//! id, so that even a stream that breaks before its first message can be
//! resumed. Clients of older versions may not expect an empty event, so it is
//! sent only to sessions that negotiated 2025-11-25 or later.

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

/// Events kept per stream.
pub const MAX_EVENTS: usize = 128;
/// Streams kept per session.
pub const MAX_STREAMS: usize = 64;
/// How long an answer that reached no connection stays resumable.
pub const RETENTION: Duration = Duration::from_secs(60);
/// What the client is asked to wait before it reconnects (`retry:`).
pub const RETRY_MS: u64 = 250;
/// Frames queued for one connection. No larger than what a stream keeps, so a
/// connection cut loose for falling behind can still resume without a gap;
/// no smaller, so a whole replay fits.
const QUEUE: usize = MAX_EVENTS;

/// The standalone GET stream's number.
pub const STANDALONE: u64 = 0;

/// The frames of one response body; it ends when the stream lets go of the
/// connection, and at once when another connection takes the stream over.
pub struct Feed {
    /// Frames to write.
    pub rx: mpsc::Receiver<Bytes>,
    /// Set when the stream moved to another connection.
    pub superseded: Rc<Cell<bool>>,
}

struct Writer {
    tx: mpsc::Sender<Bytes>,
    superseded: Rc<Cell<bool>>,
}

fn connection() -> (Writer, Feed) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let superseded = Rc::new(Cell::new(false));
    (
        Writer {
            tx,
            superseded: superseded.clone(),
        },
        Feed { rx, superseded },
    )
}

/// One logged event.
struct Logged {
    seq: u64,
    frame: Bytes,
}

/// One stream.
struct Stream {
    events: VecDeque<Logged>,
    next_seq: u64,
    writer: Option<Writer>,
    /// When it got its answer (or was cancelled): nothing more will be added.
    finished_at: Option<Duration>,
    /// Did its last event reach a connection (or is there nothing to deliver)?
    delivered: bool,
}

impl Stream {
    fn new() -> Self {
        Self {
            events: VecDeque::new(),
            next_seq: 1,
            writer: None,
            finished_at: None,
            delivered: true,
        }
    }

    /// Log a frame (keeping the last [`MAX_EVENTS`]) and hand it to the
    /// connection; returns whether a connection took it.
    fn push(&mut self, frame: Bytes, logged: bool) -> bool {
        let seq = self.next_seq;
        self.next_seq += 1;
        if logged {
            self.events.push_back(Logged {
                seq,
                frame: frame.clone(),
            });
            while self.events.len() > MAX_EVENTS {
                self.events.pop_front();
            }
        }
        self.deliver(frame)
    }

    /// A gone or hopelessly slow connection is detached (its body ends after
    /// what it has queued; the client can resume from its last event).
    fn deliver(&mut self, frame: Bytes) -> bool {
        match &self.writer {
            Some(w) if w.tx.try_send(frame).is_ok() => true,
            Some(_) => {
                self.writer = None;
                false
            }
            None => false,
        }
    }

    /// Take the stream over for a new connection.
    fn attach(&mut self, w: Writer) {
        if let Some(old) = self.writer.replace(w) {
            old.superseded.set(true);
        }
    }
}

/// What a resumption found.
pub enum Resume {
    /// The stream, replayed and attached (`gap`: events after the given one
    /// were already evicted from the log).
    Attached {
        /// The new connection's frames.
        feed: Feed,
        /// Events the log no longer held.
        gap: bool,
    },
    /// No such stream (never, or no longer, held).
    Unknown,
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

/// The streams of one session.
pub struct EventLog {
    streams: BTreeMap<u64, Stream>,
    next_stream: u64,
    /// Give events ids and keep them: off for stateless requests.
    resumable: bool,
    /// Open streams with a priming event (2025-11-25 sessions).
    priming: bool,
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
            priming: false,
        }
    }

    /// Prime new streams from now on (the session negotiated 2025-11-25 or
    /// later).
    pub fn set_priming(&mut self, on: bool) {
        self.priming = on && self.resumable;
    }

    fn prime(&mut self, n: u64) {
        if !self.priming {
            return;
        }
        if let Some(s) = self.streams.get_mut(&n) {
            let id = format!("{n}-{}", s.next_seq);
            s.push(frame(Some(&id), "", true), true);
        }
    }

    /// Open a request stream; returns its number and the feed for the
    /// response body. `None`: the session holds [`MAX_STREAMS`] streams whose
    /// answers no connection has taken yet.
    pub fn open(&mut self, now: Duration) -> Option<(u64, Feed)> {
        self.prune(now);
        if self.streams.len() > MAX_STREAMS {
            return None;
        }
        let n = self.next_stream;
        self.next_stream += 1;
        let (w, feed) = connection();
        let mut s = Stream::new();
        s.attach(w);
        self.streams.insert(n, s);
        self.prime(n);
        Some((n, feed))
    }

    /// Attach a new connection to the standalone stream, replacing any
    /// earlier one: a client that asks again has lost the old one, even if
    /// the server cannot tell.
    pub fn listen(&mut self) -> Feed {
        let (w, feed) = connection();
        if let Some(s) = self.streams.get_mut(&STANDALONE) {
            s.attach(w);
        }
        self.prime(STANDALONE);
        feed
    }

    /// Append a message to stream `n` and deliver it; returns its event id.
    /// A message for a stream that is finished or gone goes to the standalone
    /// stream.
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
        let id = resumable.then(|| format!("{n}-{}", s.next_seq));
        s.push(frame(id.as_deref(), json, false), resumable);
        id
    }

    /// Send the answer on request stream `n` and finish it. An answer never
    /// goes anywhere but its own stream: if that is finished already (the
    /// request was cancelled), it is dropped, as the spec asks.
    pub fn answer(&mut self, n: u64, json: &str, now: Duration) {
        let resumable = self.resumable;
        let Some(s) = self.streams.get_mut(&n).filter(|s| s.finished_at.is_none()) else {
            return;
        };
        let id = resumable.then(|| format!("{n}-{}", s.next_seq));
        let delivered = s.push(frame(id.as_deref(), json, false), resumable);
        self.finish(n, now);
        if let Some(s) = self.streams.get_mut(&n) {
            s.delivered = delivered;
        }
    }

    /// Stream `n` is done (answered or cancelled): end the connection's body
    /// after what was sent, keep the log for resumption.
    pub fn finish(&mut self, n: u64, now: Duration) {
        if let Some(s) = self.streams.get_mut(&n)
            && s.finished_at.is_none()
        {
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
        let Some(s) = self.streams.get_mut(&n).filter(|_| self.resumable) else {
            return Resume::Unknown;
        };
        let (w, feed) = connection();
        let gap = s.events.front().is_some_and(|e| e.seq > seq + 1);
        let mut taken = true;
        for e in s.events.iter().filter(|e| e.seq > seq) {
            // The queue holds as many frames as a stream keeps.
            taken &= w.tx.try_send(e.frame.clone()).is_ok();
        }
        if s.finished_at.is_none() {
            s.attach(w);
        } else {
            // Replayed to a live connection: the answer has gone out now.
            s.delivered |= taken;
            if let Some(old) = s.writer.take() {
                old.superseded.set(true);
            }
        }
        Resume::Attached { feed, gap }
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

    /// Until when an answer that reached no connection is kept for its
    /// client (`None`: none is).
    pub fn undelivered_until(&self) -> Option<Duration> {
        self.streams
            .values()
            .filter(|s| !s.delivered)
            .filter_map(|s| s.finished_at)
            .map(|t| t + RETENTION)
            .max()
    }

    /// Forget finished streams past their retention, then — while over the
    /// cap — the oldest answered streams whose answer reached a connection.
    fn prune(&mut self, now: Duration) {
        self.streams
            .retain(|n, s| *n == STANDALONE || s.finished_at.is_none_or(|t| now < t + RETENTION));
        while self.streams.len() > MAX_STREAMS {
            let oldest = self
                .streams
                .iter()
                .find(|(n, s)| **n != STANDALONE && s.finished_at.is_some() && s.delivered)
                .map(|(n, _)| *n);
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

    fn drain(feed: &mut Feed) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(b) = feed.rx.try_recv() {
            out.push(String::from_utf8_lossy(&b).into_owned());
        }
        out
    }

    fn resumed(r: Resume) -> (Feed, bool) {
        match r {
            Resume::Attached { feed, gap } => (feed, gap),
            Resume::Unknown => panic!("unknown stream"),
        }
    }

    #[test]
    fn a_resumption_replays_exactly_what_followed_then_goes_live() {
        let t = Duration::ZERO;
        let mut log = EventLog::new(true);
        log.set_priming(true);
        let (n, mut feed) = log.open(t).expect("room");
        assert!(drain(&mut feed)[0].starts_with(&format!("id: {n}-1\nretry: 250\n")));
        log.send(n, "{\"a\":1}");
        drop(feed); // the connection is gone
        log.send(n, "{\"a\":2}");
        let (mut again, gap) = resumed(log.resume(n, 2, t));
        assert!(!gap);
        log.answer(n, "{\"a\":3}", t);
        let got = drain(&mut again);
        assert_eq!(got.len(), 2);
        assert!(got[0].contains("id: 1-3\n") && got[0].contains("\"a\":2"));
        assert!(got[1].contains("id: 1-4\n") && got[1].contains("\"a\":3"));
        // Finished: the feed ends (the sender is gone).
        assert!(matches!(
            again.rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn a_replaced_connection_stops_at_once() {
        let t = Duration::ZERO;
        let mut log = EventLog::new(true);
        let (n, old) = log.open(t).expect("room");
        log.send(n, "{\"a\":1}");
        let (_new, _) = resumed(log.resume(n, 0, t));
        assert!(
            old.superseded.get(),
            "the old body must not write what it still has queued"
        );
    }

    #[test]
    fn an_undelivered_answer_outlives_the_cap_and_a_delivered_one_does_not() {
        let t = Duration::from_secs(1);
        let mut log = EventLog::new(true);
        let (lost, feed) = log.open(t).expect("room");
        drop(feed);
        log.answer(lost, "{\"lost\":true}", t);
        for _ in 0..(MAX_STREAMS * 2) {
            let (m, _f) = log.open(t).expect("room: delivered streams make way");
            log.answer(m, "{}", t);
        }
        assert!(log.streams.len() <= MAX_STREAMS + 1);
        let (mut feed, _) = resumed(log.resume(lost, 0, t));
        assert!(drain(&mut feed).iter().any(|f| f.contains("lost")));
        assert_eq!(log.undelivered_until(), None, "replayed: delivered now");
        assert!(matches!(
            log.resume(lost, 0, t + RETENTION),
            Resume::Unknown
        ));
    }

    #[test]
    fn memory_is_bounded_and_a_gap_is_reported() {
        let mut log = EventLog::new(true);
        let (n, feed) = log.open(Duration::ZERO).expect("room");
        drop(feed);
        for i in 0..(MAX_EVENTS * 3) {
            log.send(n, &i.to_string());
        }
        for _ in 0..1000 {
            log.listen();
        }
        assert!(log.streams.values().all(|s| s.events.len() <= MAX_EVENTS));
        let (_f, gap) = resumed(log.resume(n, 1, Duration::ZERO));
        assert!(gap);
    }
}
