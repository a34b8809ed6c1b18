//! The timeline of a run: a lane per host, a row per HTTP exchange as that
//! host saw it, and marks at virtual times — the one picture every renderer
//! (HTML, Mermaid, Perfetto) draws its own way.
//!
//! The server lane is built from what the server's tracking layer recorded:
//! ASGI calls for the Python stacks (response start, final body, the
//! disconnect the app received, its return — or the return *without* the
//! final body, which is #1437 itself), else HTTP exchanges for hyper-served
//! stacks (head, how the body ended, whether the peer had vanished). A client
//! lane is built from the client's own records: what it sent, each SSE event,
//! the answer, and how the body ended. Nothing here judges: the oracles did
//! that, and their failures are drawn where they say they happened.
//!
//! [`Axis`] maps virtual time onto a strip. Long idle stretches (a 30-second
//! tool, a wait for a timeout) would squeeze the interesting milliseconds of a
//! 100-second run into a pixel, so the eliding axis gives a stretch with
//! nothing in it a fixed small width and says how long it was.

use std::time::Duration;

use crate::client::BodyEnd;
use crate::oracles::Observations;
use crate::scenario::SERVER_HOST;
use crate::servers::tower::tracking::EndHow;
use crate::time::fmt_duration;

/// What a mark stands for (also its CSS class and its Perfetto category).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A client sent a request.
    Sent,
    /// The server started its response (`http.response.start`, or the head).
    Start,
    /// The final body: the response ended properly.
    FinalBody,
    /// The application returned, or the body ended, without the final body.
    MissingFinalBody,
    /// The application received `http.disconnect`.
    Disconnect,
    /// An SSE event reached a client.
    Event,
    /// The JSON-RPC answer reached a client.
    Answer,
    /// A JSON-RPC error (or HTTP error status) reached a client.
    Error,
    /// An exchange ended as it should.
    End,
    /// An exchange ended broken (truncated, failed, dropped, stalled).
    Broken,
}

impl Kind {
    /// The name used for CSS classes, legends and categories.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sent => "sent",
            Kind::Start => "start",
            Kind::FinalBody => "final-body",
            Kind::MissingFinalBody => "missing-final-body",
            Kind::Disconnect => "disconnect",
            Kind::Event => "event",
            Kind::Answer => "answer",
            Kind::Error => "error",
            Kind::End => "end",
            Kind::Broken => "broken",
        }
    }
}

/// Something that happened at one virtual time on one row.
#[derive(Debug, Clone)]
pub struct Mark {
    /// When.
    pub at: Duration,
    /// What kind of thing.
    pub kind: Kind,
    /// A short description.
    pub label: String,
}

/// One HTTP exchange as one host saw it.
#[derive(Debug, Clone)]
pub struct Row {
    /// "POST tools/call slow_operation", with the client or peer.
    pub label: String,
    /// When it began.
    pub from: Duration,
    /// When it ended (`None`: still open when the run ended).
    pub to: Option<Duration>,
    /// What happened along it, in time order.
    pub marks: Vec<Mark>,
    /// Extra facts (status, partial bodies, incarnation).
    pub note: String,
}

/// One host and its exchanges.
#[derive(Debug, Clone)]
pub struct Lane {
    /// The host's name.
    pub host: String,
    /// Its exchanges, in the order they began.
    pub rows: Vec<Row>,
}

/// Every lane of a run.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// The run's end (virtual time).
    pub end: Duration,
    /// The server's lane first, then each client host's, by name.
    pub lanes: Vec<Lane>,
}

/// Build the timeline from what the oracles read.
pub fn build(obs: &Observations, end: Duration) -> Timeline {
    let mut lanes = vec![Lane {
        host: SERVER_HOST.to_string(),
        rows: server_rows(obs),
    }];
    let mut hosts: Vec<&String> = obs.client_hosts.values().collect();
    hosts.sort();
    hosts.dedup();
    for host in hosts {
        let rows = obs
            .requests
            .iter()
            .filter(|r| obs.client_hosts.get(&r.client) == Some(host))
            .map(client_row)
            .collect();
        lanes.push(Lane {
            host: host.clone(),
            rows,
        });
    }
    for lane in &mut lanes {
        lane.rows.sort_by_key(|r| r.from);
        for r in &mut lane.rows {
            r.marks.sort_by_key(|m| m.at);
        }
    }
    Timeline { end, lanes }
}

/// The host a server-side peer address (`ip:port`) belongs to.
fn peer_host(obs: &Observations, peer: &str) -> String {
    let ip = peer.rsplit_once(':').map_or(peer, |(ip, _)| ip);
    obs.hosts_by_ip
        .get(ip)
        .cloned()
        .unwrap_or_else(|| peer.to_string())
}

fn mark(at: Duration, kind: Kind, label: impl Into<String>) -> Mark {
    Mark {
        at,
        kind,
        label: label.into(),
    }
}

fn incarnation_note(incarnation: u32) -> String {
    if incarnation == 0 {
        String::new()
    } else {
        format!("process start {}", incarnation + 1)
    }
}

fn server_rows(obs: &Observations) -> Vec<Row> {
    let mut rows = Vec::new();
    // ASGI records are the Python stacks' layer of record: #1437 lives there.
    for c in &obs.asgi {
        let mut marks = Vec::new();
        if let Some(s) = &c.start {
            marks.push(mark(
                s.at,
                Kind::Start,
                format!(
                    "http.response.start {} {}",
                    s.status,
                    s.content_type.as_deref().unwrap_or("")
                ),
            ));
        }
        if let Some(t) = c.final_body_at {
            marks.push(mark(t, Kind::FinalBody, "final http.response.body"));
        }
        if let Some(t) = c.disconnect_received_at {
            marks.push(mark(t, Kind::Disconnect, "receive() → http.disconnect"));
        }
        if let Some(r) = &c.returned {
            let what = r
                .error
                .as_deref()
                .map_or("app returned".to_string(), |e| format!("app raised {e}"));
            if c.start.is_some() && c.final_body_at.is_none() {
                marks.push(mark(
                    r.at,
                    Kind::MissingFinalBody,
                    format!("{what} without the final http.response.body"),
                ));
            } else {
                marks.push(mark(r.at, Kind::End, what));
            }
        }
        rows.push(Row {
            label: exchange_label(&c.method, &c.path, c.rpc.as_deref()),
            from: c.called_at,
            to: c.returned.as_ref().map(|r| r.at),
            marks,
            note: server_note(
                obs,
                &c.client,
                c.partial_bodies,
                "partial bodies",
                c.incarnation,
            ),
        });
    }
    if !obs.asgi.is_empty() {
        return rows;
    }
    for x in &obs.http {
        let mut marks = Vec::new();
        if let Some(s) = &x.start {
            marks.push(mark(
                s.at,
                Kind::Start,
                format!(
                    "response head {} {}",
                    s.status,
                    s.content_type.as_deref().unwrap_or("")
                ),
            ));
        }
        if let Some(e) = &x.end {
            let (kind, label) = match &e.how {
                EndHow::Complete => (Kind::FinalBody, "body complete".to_string()),
                EndHow::Error(m) if !e.peer_gone => (
                    Kind::MissingFinalBody,
                    format!("body failed while the peer was connected: {m}"),
                ),
                EndHow::Dropped if !e.peer_gone => (
                    Kind::MissingFinalBody,
                    "body dropped while the peer was connected".to_string(),
                ),
                EndHow::Error(m) => (
                    Kind::Broken,
                    format!("body failed after the peer vanished: {m}"),
                ),
                EndHow::Dropped => (
                    Kind::Broken,
                    "body dropped after the peer vanished".to_string(),
                ),
                EndHow::NoResponse(m) => (Kind::Broken, format!("no response: {m}")),
            };
            marks.push(mark(e.at, kind, label));
        }
        rows.push(Row {
            label: exchange_label(&x.method, &x.path, x.rpc.as_deref()),
            from: x.received_at,
            to: x.end.as_ref().map(|e| e.at),
            marks,
            note: server_note(obs, &x.client, x.frames, "data frames", x.incarnation),
        });
    }
    rows
}

/// "POST /mcp tools/call slow_operation": a server-side exchange's label.
fn exchange_label(method: &str, path: &str, rpc: Option<&str>) -> String {
    format!("{method} {path} {}", rpc.unwrap_or(""))
        .trim_end()
        .to_string()
}

/// Who sent a server-side exchange, how many body pieces it had (`what`:
/// partial bodies for ASGI, data frames for HTTP), and which process start.
fn server_note(
    obs: &Observations,
    peer: &str,
    pieces: u32,
    what: &str,
    incarnation: u32,
) -> String {
    let mut note = vec![format!("from {}", peer_host(obs, peer))];
    if pieces > 0 {
        note.push(format!("{pieces} {what}"));
    }
    note.push(incarnation_note(incarnation));
    join_note(note)
}

fn join_note(parts: Vec<String>) -> String {
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a client body ended, as a mark.
pub fn end_mark(at: Duration, end: &BodyEnd) -> Mark {
    let (kind, label) = match end {
        BodyEnd::Complete => (Kind::End, "body complete".to_string()),
        BodyEnd::Truncated(m) => (Kind::Broken, format!("truncated: {m}")),
        BodyEnd::Abandoned => (Kind::End, "abandoned by the client".to_string()),
        BodyEnd::Cancelled => (Kind::End, "cancelled by the client".to_string()),
        BodyEnd::TimedOut => (Kind::Broken, "timed out".to_string()),
        BodyEnd::LeftOpen => (Kind::End, "left open; closed by the client".to_string()),
        BodyEnd::Stalled => (Kind::Broken, "stalled; closed by the client".to_string()),
        BodyEnd::Failed(m) => (Kind::Broken, format!("failed: {m}")),
    };
    mark(at, kind, label)
}

/// What reached a client: an SSE event (name, id, JSON-RPC kind), or a
/// JSON body, which the client records as an event named "json".
pub fn event_label(e: &crate::client::EventRecord) -> String {
    let what = if e.kind == "other" {
        "no JSON-RPC message"
    } else {
        e.kind.as_str()
    };
    if e.event == "json" && e.id.is_none() {
        return format!("JSON body: {what}");
    }
    let id =
        e.id.as_deref()
            .map(|i| format!(" id {i}"))
            .unwrap_or_default();
    format!("SSE {}{id}: {what}", e.event)
}

fn client_row(r: &crate::client::RequestRecord) -> Row {
    let mut marks = vec![mark(
        r.sent_at,
        Kind::Sent,
        format!("{} {}", r.http, r.what),
    )];
    for e in &r.events {
        marks.push(mark(e.at, Kind::Event, event_label(e)));
    }
    if let Some(a) = &r.response {
        let kind = if a.is_error {
            Kind::Error
        } else {
            Kind::Answer
        };
        let mut label = if a.is_error { "error" } else { "answer" }.to_string();
        if !a.summary.is_empty() {
            label.push_str(": ");
            label.push_str(&short(&a.summary, 80));
        }
        marks.push(mark(a.at, kind, label));
    }
    if let (Some(t), Some(end)) = (r.ended_at, &r.end) {
        marks.push(end_mark(t, end));
    }
    let mut note = Vec::new();
    if let Some(s) = r.status {
        note.push(format!(
            "HTTP {s} {}",
            r.content_type.as_deref().unwrap_or("")
        ));
    }
    note.push(incarnation_note(r.incarnation));
    Row {
        label: format!("{} {} {}", r.client, r.http, r.what),
        from: r.sent_at,
        to: r.ended_at,
        marks,
        note: join_note(note),
    }
}

/// At most `n` characters of `s`, with an ellipsis if cut.
pub fn short(s: &str, n: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() <= n {
        line.to_string()
    } else {
        let cut: String = line.chars().take(n.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// One stretch of the axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Virtual time at its start.
    pub from: Duration,
    /// Virtual time at its end.
    pub to: Duration,
    /// Where it starts on the strip, 0..1.
    pub x0: f64,
    /// Where it ends on the strip, 0..1.
    pub x1: f64,
    /// Was this idle stretch squeezed?
    pub elided: bool,
}

/// Virtual time → position on a strip (0..1), piecewise linear.
#[derive(Debug, Clone)]
pub struct Axis {
    /// The stretches, in order, covering 0..end.
    pub segments: Vec<Segment>,
}

impl Axis {
    /// Time in proportion: 0 at the left edge, `end` at the right.
    pub fn linear(end: Duration) -> Self {
        Self {
            segments: vec![Segment {
                from: Duration::ZERO,
                to: end.max(Duration::from_millis(1)),
                x0: 0.0,
                x1: 1.0,
                elided: false,
            }],
        }
    }

    /// An axis on which every stretch with nothing in it longer than an
    /// eighth of the run (and than half a second) takes the width of a
    /// thirty-second of the run: what happens stays readable however long
    /// the quiet between.
    pub fn eliding(times: &[Duration], end: Duration) -> Self {
        let end = end.max(Duration::from_millis(1));
        let mut ts: Vec<Duration> = times.iter().copied().filter(|t| *t <= end).collect();
        ts.push(Duration::ZERO);
        ts.push(end);
        ts.sort();
        ts.dedup();
        let threshold = (end / 8).max(Duration::from_millis(500));
        let squeezed = (end / 32).as_secs_f64();
        // (from, to, weight, elided)
        let mut pieces: Vec<(Duration, Duration, f64, bool)> = Vec::new();
        for w in ts.windows(2) {
            let (a, b) = (w[0], w[1]);
            let gap = b - a;
            if gap > threshold {
                pieces.push((a, b, squeezed, true));
            } else {
                match pieces.last_mut() {
                    Some(last) if !last.3 => {
                        last.1 = b;
                        last.2 += gap.as_secs_f64();
                    }
                    _ => pieces.push((a, b, gap.as_secs_f64(), false)),
                }
            }
        }
        let total: f64 = pieces.iter().map(|p| p.2).sum::<f64>().max(1e-9);
        let mut x = 0.0;
        let segments = pieces
            .into_iter()
            .map(|(from, to, w, elided)| {
                let x0 = x;
                x += w / total;
                Segment {
                    from,
                    to,
                    x0,
                    x1: x,
                    elided,
                }
            })
            .collect();
        Self { segments }
    }

    /// Where `t` falls, 0..1.
    pub fn x(&self, t: Duration) -> f64 {
        for s in &self.segments {
            if t <= s.to {
                let span = (s.to - s.from).as_secs_f64();
                let f = if span > 0.0 {
                    (t.saturating_sub(s.from)).as_secs_f64() / span
                } else {
                    0.0
                };
                return s.x0 + f * (s.x1 - s.x0);
            }
        }
        1.0
    }

    /// Tick times: about `n` round values over the stretches not elided.
    pub fn ticks(&self, n: usize) -> Vec<Duration> {
        let shown: f64 = self
            .segments
            .iter()
            .filter(|s| !s.elided)
            .map(|s| (s.to - s.from).as_secs_f64())
            .sum();
        let raw = shown / n.max(1) as f64;
        let step = nice_step(raw);
        let mut out = Vec::new();
        for s in self.segments.iter().filter(|s| !s.elided) {
            let mut k = (s.from.as_secs_f64() / step).ceil();
            while k * step <= s.to.as_secs_f64() + 1e-9 {
                out.push(Duration::from_secs_f64(k * step));
                k += 1.0;
            }
        }
        out.dedup();
        out
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1e-4);
    let p = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= raw {
            return m * p;
        }
    }
    10.0 * p
}

/// Every time the timeline or the faults and failures name (for the axis).
pub fn times(t: &Timeline, extra: impl IntoIterator<Item = Duration>) -> Vec<Duration> {
    let mut out: Vec<Duration> = extra.into_iter().collect();
    for lane in &t.lanes {
        for r in &lane.rows {
            out.push(r.from);
            out.extend(r.to);
            out.extend(r.marks.iter().map(|m| m.at));
        }
    }
    out
}

/// A time as the reports print it.
pub fn at(t: Duration) -> String {
    fmt_duration(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_idle_stretch_is_squeezed_and_order_is_kept() {
        let ms = Duration::from_millis;
        let times = [ms(100), ms(200), ms(90_000), ms(90_050)];
        let axis = Axis::eliding(&times, ms(100_000));
        assert!(axis.segments.iter().any(|s| s.elided));
        // What happens within 100 ms at the start takes a visible share.
        assert!(axis.x(ms(200)) - axis.x(ms(100)) > 0.001);
        let xs: Vec<f64> = times.iter().map(|t| axis.x(*t)).collect();
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
        assert!((axis.x(ms(100_000)) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_busy_run_is_drawn_in_proportion() {
        let ms = Duration::from_millis;
        let axis = Axis::eliding(&[ms(100), ms(400), ms(800)], ms(1000));
        assert_eq!(axis.segments.len(), 1);
        assert!((axis.x(ms(500)) - 0.5).abs() < 1e-9);
    }
}
