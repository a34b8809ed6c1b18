//! A Server-Sent Events parser (the WHATWG "event stream interpretation"),
//! fed bytes as they arrive.
//!
//! Lines end in CRLF, LF or CR — including a CR at the end of one chunk and
//! its LF at the start of the next. `data:` lines accumulate with `\n`; a blank
//! line dispatches the event if it has data; `id:` sets the last event id (and
//! sticks across events); `retry:` takes digits only; lines starting with `:`
//! are comments.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` (default "message").
    pub event: String,
    /// The joined `data:` lines.
    pub data: String,
    /// The last event id at dispatch time: the stream's last-event-id
    /// buffer, which an event without an `id:` line inherits (what a client
    /// resumes from).
    pub id: Option<String>,
    /// Did this event carry its own `id:` line? An event without one has no
    /// id of its own, only the inherited buffer (rmcp sends its `initialize`
    /// response that way, after a priming event with id `0`).
    pub own_id: bool,
    /// A `retry:` value seen with this event, in milliseconds.
    pub retry: Option<u64>,
}

/// Incremental parser state.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    skip_lf: bool,
    event: String,
    data: String,
    has_data: bool,
    last_id: Option<String>,
    /// An `id:` line was seen since the last dispatch.
    id_seen: bool,
    retry: Option<u64>,
}

impl SseParser {
    /// A fresh parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.skip_lf {
                self.skip_lf = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' => {
                    self.skip_lf = true;
                    self.end_line(&mut out);
                }
                b'\n' => self.end_line(&mut out),
                _ => self.line.push(b),
            }
        }
        out
    }

    /// Bytes of an incomplete line or event still buffered (a stream that
    /// ends here ended mid-event).
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty() || self.has_data
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
        if line.is_empty() {
            if self.has_data {
                let mut data = std::mem::take(&mut self.data);
                if data.ends_with('\n') {
                    data.pop();
                }
                out.push(SseEvent {
                    event: if self.event.is_empty() {
                        "message".into()
                    } else {
                        std::mem::take(&mut self.event)
                    },
                    data,
                    id: self.last_id.clone(),
                    own_id: std::mem::take(&mut self.id_seen),
                    retry: self.retry.take(),
                });
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            self.id_seen = false;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()),
            None => (line.clone(), String::new()),
        };
        match field.as_str() {
            "event" => self.event = value,
            "data" => {
                self.data.push_str(&value);
                self.data.push('\n');
                self.has_data = true;
            }
            "id" if !value.contains('\0') => {
                self.last_id = Some(value);
                self.id_seen = true;
            }
            "retry" if !value.is_empty() && value.bytes().all(|c| c.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_across_chunk_boundaries() {
        let mut p = SseParser::new();
        let mut all = p.feed(b"event: message\r");
        all.extend(p.feed(b"\ndata: {\"a\":1}\r\n"));
        assert!(p.has_partial());
        all.extend(p.feed(b"\r\n: ping\r\n\r\nid: 7\ndata: x\ndata: y\n\n"));
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].event, "message");
        assert_eq!(all[0].data, "{\"a\":1}");
        assert_eq!(all[1].id.as_deref(), Some("7"));
        assert_eq!(all[1].data, "x\ny");
        assert!(!p.has_partial());
    }

    #[test]
    fn an_event_with_empty_data_is_dispatched_but_no_data_is_not() {
        let mut p = SseParser::new();
        let ev = p.feed(b"event: close\r\ndata: \r\n\r\nid: 1\r\n\r\n");
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].event, "close");
        assert_eq!(ev[0].data, "");
    }
}
