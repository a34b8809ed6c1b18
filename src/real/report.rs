//! How a drive is reported: what the real server did, call by call, what the
//! clients saw, and what the oracles make of it — as text or as one JSON
//! object (`drive --json`).

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::drive::DriveOutcome;
use crate::client::BodyEnd;
use crate::time::fmt_duration;

fn verdict(o: &DriveOutcome) -> &'static str {
    if o.passed() { "pass" } else { "fail" }
}

/// `drive --json`.
pub fn json(o: &DriveOutcome) -> Value {
    json!({
        "scenario": o.scenario,
        "seed": o.seed,
        "target": o.target,
        "server": o.server,
        "time_scale": o.time_scale,
        "verdict": verdict(o),
        "complete": o.complete(),
        "failures": crate::report::failures_json(&o.failures),
        "not_judged": o.not_judged.iter().map(|(n, why)| json!({"oracle": n, "why": why})).collect::<Vec<_>>(),
        "faults": o.observations.faults.iter().map(|f| json!({
            "at": fmt_duration(f.at),
            "fault": f.kind.to_string(),
        })).collect::<Vec<_>>(),
        "skipped": o.skipped.iter().map(|s| json!({
            "at": fmt_duration(s.fault.at),
            "fault": s.fault.kind.to_string(),
            "why": s.why,
        })).collect::<Vec<_>>(),
        "end": o.end,
        "elapsed": fmt_duration(o.elapsed),
        "server_calls": o.observations.asgi,
        "requests": o.observations.requests,
        "notes": o.notes,
    })
}

fn end_text(e: &Option<BodyEnd>) -> String {
    match e {
        None => "no end (still open, or its host died)".into(),
        Some(BodyEnd::Complete) => "complete".into(),
        Some(BodyEnd::Truncated(d)) => format!("truncated ({d})"),
        Some(BodyEnd::Failed(d)) => format!("failed ({d})"),
        Some(other) => format!("{other:?}").to_lowercase(),
    }
}

/// The human report.
pub fn human(o: &DriveOutcome) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} {} seed {} against {}{} — {:?} after {}, time scale {}",
        verdict(o).to_uppercase(),
        o.scenario,
        o.seed,
        o.target,
        o.server
            .as_ref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default(),
        o.end,
        fmt_duration(o.elapsed),
        o.time_scale
    );
    let _ = writeln!(
        s,
        "  times are wall-clock seconds since the first client started"
    );
    for f in &o.observations.faults {
        let _ = writeln!(s, "  fault {} {}", fmt_duration(f.at), f.kind);
    }
    for k in &o.skipped {
        let _ = writeln!(
            s,
            "  SKIPPED fault {} {}: {}",
            fmt_duration(k.fault.at),
            k.fault.kind,
            k.why
        );
    }
    if !o.observations.asgi.is_empty() {
        let _ = writeln!(s, "  what the server did (its ASGI records):");
    }
    for c in &o.observations.asgi {
        let mut line = format!(
            "    {:>8} #{} {} {} {}",
            fmt_duration(c.called_at),
            c.incarnation,
            c.method,
            c.rpc.as_deref().unwrap_or(&c.path),
            c.client
        );
        match &c.start {
            None => line.push_str(" · no response start"),
            Some(st) => {
                let _ = write!(
                    line,
                    " · {} {} at {}",
                    st.status,
                    st.content_type.as_deref().unwrap_or("-"),
                    fmt_duration(st.at)
                );
                let _ = write!(line, " · {} partial bod", c.partial_bodies);
                line.push_str(if c.partial_bodies == 1 { "y" } else { "ies" });
                match c.final_body_at {
                    Some(t) => {
                        let _ = write!(line, " · final body at {}", fmt_duration(t));
                    }
                    None => line.push_str(" · NO final body"),
                }
            }
        }
        if let Some(t) = c.disconnect_received_at {
            let _ = write!(line, " · http.disconnect at {}", fmt_duration(t));
        }
        match &c.returned {
            None => line.push_str(" · still running"),
            Some(r) => {
                let _ = write!(line, " · returned at {}", fmt_duration(r.at));
                if let Some(e) = &r.error {
                    let _ = write!(line, " raising {e}");
                }
                if r.host_saw_disconnect {
                    line.push_str(" (host saw the disconnect)");
                }
            }
        }
        let _ = writeln!(s, "{line}");
    }
    if !o.observations.requests.is_empty() {
        let _ = writeln!(s, "  what the clients saw:");
    }
    for r in &o.observations.requests {
        let _ = writeln!(
            s,
            "    {:>8} {}#{} {} {} → {} · {}{}",
            fmt_duration(r.sent_at),
            r.client,
            r.incarnation,
            r.http,
            r.what,
            r.status
                .map(|x| x.to_string())
                .unwrap_or_else(|| "-".into()),
            end_text(&r.end),
            r.response
                .as_ref()
                .map(|a| format!(" · answer at {}: {}", fmt_duration(a.at), a.summary))
                .unwrap_or_default()
        );
    }
    s.push_str(&crate::report::failure_lines(&o.failures));
    for (n, why) in &o.not_judged {
        let _ = writeln!(s, "  not judged: {n} ({why})");
    }
    for n in &o.notes {
        let _ = writeln!(s, "  note: {n}");
    }
    s
}
