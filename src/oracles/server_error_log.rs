//! `server-error-log`: the server stack logged an error (uvicorn's
//! "ASGI callable returned without completing response.", an exception
//! logged by the transport, ...).

use super::{Failure, Observations, Oracle};

pub(super) struct ServerErrorLog;

impl Oracle for ServerErrorLog {
    fn name(&self) -> &'static str {
        "server-error-log"
    }

    fn about(&self) -> &'static str {
        "the server stack logged an ERROR line"
    }

    fn check(&self, obs: &Observations) -> Vec<Failure> {
        obs.trace
            .iter()
            .filter(|l| l.host == "server" && l.level == "ERROR" && !l.target.starts_with("mcpsim"))
            .map(|l| {
                let first = l.msg.lines().next().unwrap_or("").to_string();
                Failure {
                    oracle: "server-error-log",
                    at: l.t,
                    host: l.host.clone(),
                    detail: format!("{}: {}", l.target, l.msg.replace('\n', " | ")),
                    signature: format!("server-error-log · {}: {}", l.target, generic(&first)),
                }
            })
            .collect()
    }
}

/// A log line with its particulars taken out (hex runs of 8 or more,
/// numbers, JSON objects), so that one kind of error makes one signature.
fn generic(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut word = String::new();
    let mut depth = 0usize;
    let flush = |word: &mut String, out: &mut String| {
        let hexy = word.len() >= 8 && word.chars().all(|c| c.is_ascii_hexdigit());
        let number = !word.is_empty() && word.chars().all(|c| c.is_ascii_digit());
        if hexy {
            out.push('…');
        } else if number {
            out.push('N');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in line.chars() {
        if depth > 0 || c == '{' {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                out.push_str("{…}");
            }
            continue;
        }
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_leave_the_signature() {
        assert_eq!(
            super::generic(
                "Session ae5e821e02c9491aa5fc581eb22ecf7e crashed: unhandled errors in a TaskGroup (1 sub-exception)"
            ),
            "Session … crashed: unhandled errors in a TaskGroup (N sub-exception)"
        );
        assert_eq!(
            super::generic("unknown request ID: {\"id\":0,\"result\":{\"action\":\"decline\"}}"),
            "unknown request ID: {…}"
        );
    }
}
