//! `run --mermaid`: the run as a Mermaid sequence diagram, for a bug report.
//!
//! GitHub renders Mermaid in issues and pull requests, so a failing seed can
//! travel as a picture beside its replay command. Participants are the
//! clients and two server layers — the HTTP host (uvicorn, hyper) and the
//! application behind it — so #1437 reads as it happens: the app starts a
//! response, the host passes it a disconnect, the app returns without its
//! final body. Messages carry their virtual times; faults and failures are
//! notes.
//!
//! A diagram is bounded: past [`MAX_MESSAGES`] messages, only the start of
//! the run and the stretches around each fault and failure are kept, and
//! every cut says how many messages it left out. Text is reduced to what
//! Mermaid's grammar takes literally (no `;`, `#`, `%`, `<`, `>`).

use std::fmt::Write as _;
use std::time::Duration;

use super::RunView;
use super::timeline::{Kind, event_label, short};
use crate::scenario::{FaultKind, SERVER_HOST};
use crate::time::fmt_duration;

/// Messages kept before a diagram is cut down to the parts that matter.
pub const MAX_MESSAGES: usize = 60;

/// One line of the diagram, in time order.
struct Item {
    at: Duration,
    /// Notes (faults, failures) are always kept; messages may be elided.
    note: bool,
    text: String,
}

/// Text as Mermaid's sequence grammar takes it literally, at most `n` chars.
fn clean(s: &str, n: usize) -> String {
    short(s, n)
        .replace(';', ",")
        .replace('#', "no. ")
        .replace('%', " pct")
        .replace('<', "‹")
        .replace('>', "›")
}

/// The diagram of one run.
pub fn render(v: &RunView) -> String {
    let obs = v.observations;
    let layers = &obs.layers;
    let asgi = !obs.asgi.is_empty();
    // Participants: clients in the order they first appear, then the server.
    let mut clients: Vec<String> = Vec::new();
    for r in &obs.requests {
        if !clients.contains(&r.client) {
            clients.push(r.client.clone());
        }
    }
    let id_of = |client: &str| -> String {
        let i = clients.iter().position(|c| c == client).unwrap_or(0);
        format!("C{i}")
    };
    let mut items: Vec<Item> = Vec::new();
    let msg = |items: &mut Vec<Item>, at: Duration, text: String| {
        items.push(Item {
            at,
            note: false,
            text,
        })
    };
    for r in &obs.requests {
        let c = id_of(&r.client);
        msg(
            &mut items,
            r.sent_at,
            format!(
                "{c}->>H: {} {} {}",
                fmt_duration(r.sent_at),
                r.http,
                clean(&r.what, 48)
            ),
        );
        for e in &r.events {
            msg(
                &mut items,
                e.at,
                format!(
                    "H-->>{c}: {} {}",
                    fmt_duration(e.at),
                    clean(&event_label(e), 90)
                ),
            );
        }
        if let Some(a) = &r.response
            && r.events.is_empty()
        {
            msg(
                &mut items,
                a.at,
                format!(
                    "H-->>{c}: {} {}",
                    fmt_duration(a.at),
                    if a.is_error { "error" } else { "answer" }
                ),
            );
        }
        if let (Some(t), Some(end)) = (r.ended_at, &r.end) {
            let m = super::timeline::end_mark(t, end);
            if m.kind == Kind::Broken {
                msg(
                    &mut items,
                    t,
                    format!("Note over {c}: {} {}", fmt_duration(t), clean(&m.label, 60)),
                );
            }
        }
    }
    // The server: the application's side of each exchange.
    let tl = super::timeline::build(obs, v.end);
    if let Some(server) = tl.lanes.iter().find(|l| l.host == SERVER_HOST) {
        for row in &server.rows {
            for m in &row.marks {
                let at = fmt_duration(m.at);
                let what = clean(&row.label, 36);
                let text = match m.kind {
                    Kind::Start => format!("A->>H: {at} {} ({what})", clean(&m.label, 64)),
                    Kind::FinalBody => format!("A->>H: {at} {} ({what})", clean(&m.label, 64)),
                    Kind::Disconnect => format!("H-->>A: {at} http.disconnect ({what})"),
                    Kind::MissingFinalBody => {
                        format!("Note over A: {at} ✗ {} ({what})", clean(&m.label, 60))
                    }
                    Kind::Broken => format!("Note over A: {at} {} ({what})", clean(&m.label, 60)),
                    _ => continue,
                };
                msg(&mut items, m.at, text);
            }
        }
    }
    let over = |host: &str| -> String {
        let ids: Vec<String> = clients
            .iter()
            .filter(|c| obs.client_hosts.get(*c).map(String::as_str) == Some(host))
            .map(|c| id_of(c))
            .collect();
        match ids.first() {
            Some(first) => format!("{first},H"),
            None => "H".to_string(),
        }
    };
    for f in &obs.faults {
        let place = match &f.kind {
            FaultKind::Crash { host } | FaultKind::Restart { host } if host == SERVER_HOST => {
                "H,A".to_string()
            }
            FaultKind::Crash { host } | FaultKind::Restart { host } => over(host),
            FaultKind::Partition { a, b }
            | FaultKind::Repair { a, b }
            | FaultKind::Hold { a, b }
            | FaultKind::Release { a, b }
            | FaultKind::PartitionOneway { from: a, to: b }
            | FaultKind::RepairOneway { from: a, to: b } => {
                over(if a == SERVER_HOST { b } else { a })
            }
            FaultKind::Abandon { client } => id_of(client),
            FaultKind::Shutdown { .. } | FaultKind::Slow { .. } => "H,A".to_string(),
        };
        items.push(Item {
            at: f.at,
            note: true,
            text: format!(
                "Note over {place}: ⚡ {} {}",
                fmt_duration(f.at),
                clean(&f.kind.to_string(), 60)
            ),
        });
    }
    for f in v.failures {
        let place = if f.host == SERVER_HOST {
            "A".to_string()
        } else {
            over(&f.host)
        };
        items.push(Item {
            at: f.at,
            note: true,
            text: format!(
                "Note over {place}: ✗ {} {} — {}",
                fmt_duration(f.at),
                f.oracle,
                clean(&f.signature, 90)
            ),
        });
    }
    items.sort_by_key(|i| i.at);

    let mut out = String::new();
    let _ = writeln!(out, "sequenceDiagram");
    let _ = writeln!(
        out,
        "    %% mcpsim {} — {} seed {} on {}",
        clean(&v.kind, 60),
        clean(v.scenario, 60),
        v.seed,
        clean(&v.stack, 40)
    );
    let _ = writeln!(out, "    %% replay: {}", clean(&v.replay, 200));
    for (i, c) in clients.iter().enumerate() {
        let host = obs.client_hosts.get(c).cloned().unwrap_or_default();
        let alias = if host.is_empty() || host == *c {
            clean(c, 30)
        } else {
            format!("{} on {}", clean(c, 30), clean(&host, 30))
        };
        let _ = writeln!(out, "    participant C{i} as {alias}");
    }
    let (h, a) = if asgi {
        (layers.http_host.to_string(), format!("{} app", layers.sse))
    } else if !obs.http.is_empty() {
        (layers.http_host.to_string(), "service".to_string())
    } else {
        ("server".to_string(), "app".to_string())
    };
    let _ = writeln!(out, "    participant H as {} (server)", clean(&h, 40));
    let _ = writeln!(out, "    participant A as {}", clean(&a, 40));

    for line in bounded(&items) {
        let _ = writeln!(out, "    {line}");
    }
    out
}

/// The lines to print: every item if few, else the notes, the start of the
/// run, and the stretches before and after each note, with each cut said.
fn bounded(items: &[Item]) -> Vec<String> {
    let messages = items.iter().filter(|i| !i.note).count();
    if messages <= MAX_MESSAGES {
        return items.iter().map(|i| i.text.clone()).collect();
    }
    let mut keep = vec![false; items.len()];
    let mut kept = 0usize;
    for (i, it) in items.iter().enumerate() {
        if !it.note && kept < 16 {
            keep[i] = true;
            kept += 1;
        }
    }
    for (i, it) in items.iter().enumerate() {
        if it.note {
            keep[i] = true;
            let from = i.saturating_sub(10);
            let to = (i + 5).min(items.len());
            for k in keep.iter_mut().take(to).skip(from) {
                *k = true;
            }
        }
    }
    let mut out = Vec::new();
    let mut cut = 0usize;
    for (i, it) in items.iter().enumerate() {
        if keep[i] {
            if cut > 0 {
                out.push(format!("Note over H: … {cut} messages left out …"));
                cut = 0;
            }
            out.push(it.text.clone());
        } else {
            cut += 1;
        }
    }
    if cut > 0 {
        out.push(format!("Note over H: … {cut} messages left out …"));
    }
    out
}
