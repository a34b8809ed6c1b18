//! Scenario text → validated [`Scenario`]: TOML parsing with spans, then
//! validation of every field, each problem one [`InputError`] naming the file,
//! the line and the field.

use std::time::Duration;

use serde_json::Value;
use toml::Spanned;

use super::file::{RawFault, RawScenario, RawSleep, RawStep, RawTarget};
use super::{
    Behaviour, ClientSpec, Elicitation, FaultKind, FaultSpec, IdStrategy, Latency, Regression,
    SERVER_HOST, Scenario, When, expect,
};
use crate::client::script::{Action, Step};
use crate::error::InputError;
use crate::mcp::LATEST_PROTOCOL_VERSION;
use crate::servers::{self, ServerConfig};
use crate::time::parse_duration;

/// The most logical clients a scenario may have (the swarm's own bound).
pub const MAX_CLIENTS: usize = 200;
/// The most client hosts a scenario may spread them over.
pub const MAX_CLIENT_HOSTS: usize = 32;

pub(super) struct Ctx<'a> {
    pub(super) text: &'a str,
    pub(super) file: &'a str,
}

impl Ctx<'_> {
    pub(super) fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1
    }

    pub(super) fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) -> Result<T, InputError> {
        Err(InputError {
            file: Some(self.file.to_string()),
            line: Some(self.line(span.start)),
            field: Some(field.into()),
            message: msg.into(),
        })
    }

    pub(super) fn duration(
        &self,
        s: &Spanned<String>,
        field: &str,
    ) -> Result<Duration, InputError> {
        parse_duration(s.get_ref()).or_else(|m| self.err(s.span(), field, m))
    }
}

/// A load factor as written: `20`, `2.5` or `"20"` (see [`servers::Factor`]).
pub(super) fn factor_value(v: &toml::Value) -> Result<servers::Factor, String> {
    let text = match v {
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) if f.is_finite() => f.to_string(),
        toml::Value::String(s) => s.clone(),
        other => {
            return Err(format!(
                "{other} is not a factor (use a number from 1 to 1000, e.g. 20 or 2.5)"
            ));
        }
    };
    servers::Factor::parse(&text)
}

/// A duration that must be more than zero: a client timeout of 0 gives up
/// before any answer can arrive, so the run would judge nothing.
fn positive(c: &Ctx, s: &Spanned<String>, field: &str) -> Result<Duration, InputError> {
    let d = c.duration(s, field)?;
    if d.is_zero() {
        return c.err(s.span(), field, "must be more than 0");
    }
    Ok(d)
}

/// Parse and validate scenario text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Scenario, InputError> {
    super::shape::check(&Ctx { text, file })?;
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| {
            text[..s.start.min(text.len())]
                .bytes()
                .filter(|b| *b == b'\n')
                .count()
                + 1
        });
        InputError {
            file: Some(file.to_string()),
            line,
            field: None,
            message: e.message().trim().to_string(),
        }
    })?;
    let c = Ctx { text, file };
    validate(&c, raw)
}

pub(super) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
}

fn validate(c: &Ctx, raw: RawScenario) -> Result<Scenario, InputError> {
    if !valid_name(raw.name.get_ref()) {
        return c.err(raw.name.span(), "name", "use letters, digits, '-' and '_'");
    }
    let duration = c.duration(&raw.duration, "duration")?;
    if duration.is_zero() || duration > Duration::from_secs(3600) {
        return c.err(
            raw.duration.span(),
            "duration",
            "must be more than 0 and at most 1 hour",
        );
    }
    let tick = match &raw.tick {
        Some(t) => {
            let d = c.duration(t, "tick")?;
            // tokio's timer counts whole milliseconds: a finer tick would let
            // host clocks run ahead of simulated time.
            if d.subsec_nanos() % 1_000_000 != 0
                || d < Duration::from_millis(1)
                || d > Duration::from_millis(100)
            {
                return c.err(t.span(), "tick", "must be a whole number of milliseconds from 1ms to 100ms (tokio's timer resolution is 1ms)");
            }
            d
        }
        None => Duration::from_millis(1),
    };
    let hang_after = match &raw.hang_after {
        Some(h) => {
            let d = c.duration(h, "hang_after")?;
            if d < Duration::from_secs(1) {
                return c.err(h.span(), "hang_after", "must be at least 1s");
            }
            d
        }
        None => crate::scenario::DEFAULT_HANG_AFTER,
    };

    let mut stack = servers::python_sdk::DEFAULT_STACK.to_string();
    let mut server = ServerConfig::default();
    if let Some(s) = &raw.server {
        if let Some(st) = &s.stack {
            if servers::stack(st.get_ref()).is_none() {
                return c.err(
                    st.span(),
                    "server.stack",
                    format!(
                        "unknown stack \"{}\" (known: {})",
                        st.get_ref(),
                        servers::stack_names().join(", ")
                    ),
                );
            }
            stack = st.get_ref().clone();
        }
        if let Some(m) = &s.mode {
            server.stateless = match m.get_ref().as_str() {
                "stateful" => false,
                "stateless" => true,
                other => {
                    return c.err(
                        m.span(),
                        "server.mode",
                        format!("\"{other}\": use \"stateful\" or \"stateless\""),
                    );
                }
            };
        }
        if let Some(r) = &s.response {
            server.json_response = match r.get_ref().as_str() {
                "sse" => false,
                "json" => true,
                other => {
                    return c.err(
                        r.span(),
                        "server.response",
                        format!("\"{other}\": use \"sse\" or \"json\""),
                    );
                }
            };
        }
        if let Some(es) = &s.event_store {
            server.event_store = *es.get_ref();
        }
        if s.allowed_hosts.is_some() || s.allowed_origins.is_some() {
            server.dns_rebinding = Some(crate::servers::AllowList {
                hosts: s.allowed_hosts.clone().unwrap_or_default(),
                origins: s.allowed_origins.clone().unwrap_or_default(),
            });
        }
        if let Some(g) = &s.graceful_timeout {
            server.graceful_timeout = Some(c.duration(g, "server.graceful_timeout")?);
        }
        if let Some(m) = &s.cost {
            server.cost = servers::CostMode::parse(m.get_ref())
                .or_else(|e| c.err(m.span(), "server.cost", e))?;
        }
        if let Some(t) = &s.session_idle_timeout {
            let d = c.duration(t, "server.session_idle_timeout")?;
            if d < Duration::from_secs(1) {
                return c.err(
                    t.span(),
                    "server.session_idle_timeout",
                    "must be at least 1s",
                );
            }
            server.session_idle_timeout = Some(d);
        }
    }

    let swarm = match &raw.swarm {
        Some(sw) => {
            if !raw.client.is_empty() || !raw.fault.is_empty() {
                return c.err(
                    sw.span(),
                    "swarm",
                    "a [swarm] scenario draws its clients and faults from the seed: remove its [[client]] and [[fault]] tables",
                );
            }
            let spec = super::swarm::parse(c, sw)?;
            if spec.modes.is_some()
                && let Some(s) = &raw.server
                && (s.mode.is_some() || s.response.is_some() || s.event_store.is_some())
            {
                return c.err(
                    sw.span(),
                    "swarm.modes",
                    "the swarm draws the server's mode: remove mode, response and event_store from [server]",
                );
            }
            Some(spec)
        }
        None => None,
    };
    let chaos = match &raw.chaos {
        Some(ch) => {
            if swarm.is_some() {
                return c.err(
                    ch.span(),
                    "chaos",
                    "a [swarm] scenario draws its faults already: remove [chaos]",
                );
            }
            Some(super::chaos::parse(c, ch, duration)?)
        }
        None => None,
    };
    if raw.client.is_empty() && swarm.is_none() {
        return Err(InputError {
            file: Some(c.file.to_string()),
            line: None,
            field: Some("client".into()),
            message: "a scenario needs at least one [[client]]".into(),
        });
    }
    let mut clients: Vec<ClientSpec> = Vec::new();
    for (i, rc) in raw.client.iter().enumerate() {
        let field = format!("client[{i}]");
        let rc_in = rc.get_ref();
        let name = rc_in.name.get_ref().clone();
        if !valid_name(&name) || name == SERVER_HOST {
            return c.err(
                rc_in.name.span(),
                format!("{field}.name"),
                format!("\"{name}\": use letters, digits, '-', '_' (and not \"server\")"),
            );
        }
        if clients.iter().any(|x| x.name == name) {
            return c.err(
                rc_in.name.span(),
                format!("{field}.name"),
                format!("duplicate client name \"{name}\""),
            );
        }
        let host = match &rc_in.host {
            Some(h) => {
                if !valid_name(h.get_ref()) || h.get_ref() == SERVER_HOST {
                    return c.err(
                        h.span(),
                        format!("{field}.host"),
                        "use letters, digits, '-', '_' (and not \"server\")",
                    );
                }
                h.get_ref().clone()
            }
            None => name.clone(),
        };
        let mut steps = Vec::new();
        for (j, rs) in rc_in.script.iter().enumerate() {
            steps.push(step(c, rs, &format!("{field}.script[{j}]"))?);
        }
        if steps.is_empty() {
            return c.err(rc.span(), format!("{field}.script"), "the script is empty");
        }
        let ids = match &rc_in.ids {
            None => IdStrategy::Counter,
            Some(v) => match v.get_ref().as_str() {
                "counter" => IdStrategy::Counter,
                "constant" => IdStrategy::Constant,
                other => {
                    return c.err(
                        v.span(),
                        format!("{field}.ids"),
                        format!("\"{other}\": use \"counter\" or \"constant\""),
                    );
                }
            },
        };
        let elicitation = match &rc_in.elicitation {
            None => Elicitation::Accept,
            Some(v) => match v.get_ref().as_str() {
                "accept" => Elicitation::Accept,
                "decline" => Elicitation::Decline,
                "ignore" => Elicitation::Ignore,
                other => {
                    return c.err(
                        v.span(),
                        format!("{field}.elicitation"),
                        format!("\"{other}\": use \"accept\", \"decline\" or \"ignore\""),
                    );
                }
            },
        };
        clients.push(ClientSpec {
            name,
            host,
            behaviour: Behaviour {
                ids,
                resume: rc_in.resume.unwrap_or(false),
                reinit: rc_in.reinit.unwrap_or(false),
                elicitation,
                origin: match &rc_in.origin {
                    // A value no HTTP request can carry (CR/LF, other
                    // control characters) would make every request fail
                    // inside the client, not exercise the server.
                    Some(o) if http::HeaderValue::from_str(o.get_ref()).is_err() => {
                        return c.err(
                            o.span(),
                            format!("{field}.origin"),
                            "not a valid HTTP header value (control characters, CR or LF)",
                        );
                    }
                    Some(o) => Some(o.get_ref().clone()),
                    None => None,
                },
                read_timeout: match &rc_in.read_timeout {
                    Some(t) => Some(positive(c, t, &format!("{field}.read_timeout"))?),
                    None => None,
                },
            },
            steps,
        });
    }

    // What one simulation can hold: the server's listen backlog is 1024 and
    // turmoil's cost grows with the cube of the hosts.
    if let Some(extra) = raw.client.get(MAX_CLIENTS) {
        return c.err(
            extra.span(),
            format!("client[{MAX_CLIENTS}]"),
            format!("at most {MAX_CLIENTS} clients"),
        );
    }
    let mut client_hosts: Vec<&str> = clients.iter().map(|cl| cl.host.as_str()).collect();
    client_hosts.sort();
    client_hosts.dedup();
    if client_hosts.len() > MAX_CLIENT_HOSTS {
        return c.err(
            raw.client[0].span(),
            "client",
            format!(
                "{} client hosts: at most {MAX_CLIENT_HOSTS}",
                client_hosts.len()
            ),
        );
    }

    let latency = match raw.network.as_ref().and_then(|n| n.latency.as_ref()) {
        Some(l) => {
            let (min, max) = (
                parse_duration(&l.get_ref().min)
                    .or_else(|m| c.err(l.span(), "network.latency.min", m))?,
                parse_duration(&l.get_ref().max)
                    .or_else(|m| c.err(l.span(), "network.latency.max", m))?,
            );
            if min > max {
                return c.err(l.span(), "network.latency", "min is larger than max");
            }
            if max > Duration::from_secs(10) {
                return c.err(l.span(), "network.latency.max", "at most 10s");
            }
            Latency { min, max }
        }
        None => Latency {
            min: Duration::from_millis(1),
            max: Duration::from_millis(20),
        },
    };

    let mut links = std::collections::BTreeMap::new();
    if let Some(l) = raw.network.as_ref().and_then(|n| n.links.as_ref()) {
        for (host, d) in l.get_ref() {
            let field = format!("network.links.{host}");
            if !clients.iter().any(|cl| &cl.host == host) {
                return c.err(l.span(), field, format!("\"{host}\" is not a client host"));
            }
            let d = parse_duration(d).or_else(|m| c.err(l.span(), &field, m))?;
            if d.as_nanos() % tick.as_nanos() != 0 {
                return c.err(
                    l.span(),
                    field,
                    "must be a whole number of ticks (messages move once per tick)",
                );
            }
            links.insert(host.clone(), d);
        }
    }

    let regression = match &raw.regression {
        None => None,
        Some(r) => {
            let rr = r.get_ref();
            for st in std::iter::once(&rr.stack).chain(rr.fixed_on.iter()) {
                if servers::stack(st).is_none() {
                    return c.err(
                        r.span(),
                        "regression",
                        format!(
                            "unknown stack \"{st}\" (known: {})",
                            servers::stack_names().join(", ")
                        ),
                    );
                }
            }
            if rr.signature.trim().is_empty() {
                return c.err(r.span(), "regression.signature", "is empty");
            }
            Some(Regression {
                stack: rr.stack.clone(),
                seed: rr.seed,
                signature: rr.signature.clone(),
                fixed_on: rr.fixed_on.clone(),
            })
        }
    };

    let mut faults = Vec::new();
    for (i, rf) in raw.fault.iter().enumerate() {
        faults.push(fault(c, rf, &format!("fault[{i}]"), duration, &clients)?);
    }

    let expect = match &raw.expect {
        Some(t) => Some(expect::parse(c, t)?),
        None => None,
    };

    Ok(Scenario {
        name: raw.name.into_inner(),
        about: raw.about.unwrap_or_default(),
        source: c.file.to_string(),
        duration,
        tick,
        hang_after,
        stack,
        server,
        clients,
        latency,
        links,
        faults,
        expect,
        swarm,
        chaos,
        regression,
    })
}

fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

fn step(c: &Ctx, rs: &Spanned<RawStep>, field: &str) -> Result<Step, InputError> {
    let s = rs.get_ref();
    let span = rs.span();
    let actions = [
        s.initialize.is_some(),
        s.notify.is_some(),
        s.call.is_some(),
        s.request.is_some(),
        s.sleep.is_some(),
        s.vanish.is_some(),
        s.listen.is_some(),
        s.goodbye.is_some(),
        s.ping.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if actions != 1 {
        return c.err(
            span,
            field,
            "a step needs exactly one of: initialize, notify, call, request, ping, sleep, listen, goodbye, vanish",
        );
    }
    let params = s.params.as_ref().map(toml_to_json);
    let action = if let Some(init) = &s.initialize {
        Action::Initialize {
            protocol: init
                .protocol
                .clone()
                .unwrap_or_else(|| LATEST_PROTOCOL_VERSION.to_string()),
        }
    } else if let Some(m) = &s.notify {
        Action::Notify {
            method: m.clone(),
            params,
        }
    } else if let Some(tool) = &s.call {
        let args = match &s.args {
            None => Value::Object(Default::default()),
            Some(v @ toml::Value::Table(_)) => toml_to_json(v),
            Some(_) => {
                return c.err(
                    span,
                    format!("{field}.args"),
                    "must be a table, e.g. { seconds = 2 }",
                );
            }
        };
        Action::Request {
            method: "tools/call".into(),
            params: Some(serde_json::json!({"name": tool, "arguments": args})),
        }
    } else if let Some(m) = &s.request {
        Action::Request {
            method: m.clone(),
            params,
        }
    } else if let Some(v) = &s.vanish {
        if !v.is_empty() {
            return c.err(
                span,
                format!("{field}.vanish"),
                "takes no options: { vanish = {} }",
            );
        }
        Action::Vanish
    } else if let Some(v) = &s.listen {
        if !v.is_empty() {
            return c.err(
                span,
                format!("{field}.listen"),
                "takes no options: { listen = {} }",
            );
        }
        Action::Listen
    } else if let Some(v) = &s.goodbye {
        if !v.is_empty() {
            return c.err(
                span,
                format!("{field}.goodbye"),
                "takes no options: { goodbye = {} }",
            );
        }
        Action::Goodbye
    } else if let Some(v) = &s.ping {
        if !v.is_empty() {
            return c.err(
                span,
                format!("{field}.ping"),
                "takes no options: { ping = {} }",
            );
        }
        Action::Request {
            method: "ping".into(),
            params: None,
        }
    } else if let Some(sl) = &s.sleep {
        let (min, max) = match sl.get_ref() {
            RawSleep::Fixed(d) => {
                let d =
                    parse_duration(d).or_else(|m| c.err(sl.span(), format!("{field}.sleep"), m))?;
                (d, d)
            }
            RawSleep::Range(r) if r.len() == 2 => {
                let a = parse_duration(&r[0])
                    .or_else(|m| c.err(sl.span(), format!("{field}.sleep"), m))?;
                let b = parse_duration(&r[1])
                    .or_else(|m| c.err(sl.span(), format!("{field}.sleep"), m))?;
                if a > b {
                    return c.err(
                        sl.span(),
                        format!("{field}.sleep"),
                        "the range's first bound is larger than its second",
                    );
                }
                (a, b)
            }
            RawSleep::Range(_) => {
                return c.err(
                    sl.span(),
                    format!("{field}.sleep"),
                    "use \"100ms\" or [\"10ms\", \"100ms\"]",
                );
            }
        };
        Action::Sleep { min, max }
    } else {
        return c.err(span, field, "a step needs exactly one action");
    };
    if s.args.is_some() && s.call.is_none() {
        return c.err(
            span,
            format!("{field}.args"),
            "args go with call (use params with request/notify)",
        );
    }
    if s.params.is_some() && s.request.is_none() && s.notify.is_none() {
        return c.err(
            span,
            format!("{field}.params"),
            "params go with request or notify",
        );
    }
    let is_request = matches!(action, Action::Request { .. } | Action::Initialize { .. });
    let abandon_after = match &s.abandon_after {
        Some(a) if !is_request => {
            return c.err(
                a.span(),
                format!("{field}.abandon_after"),
                "only a request (initialize, call, request) has a response to abandon",
            );
        }
        Some(a) => Some(c.duration(a, &format!("{field}.abandon_after"))?),
        None => None,
    };
    let cancel_after = match &s.cancel_after {
        Some(a) if !is_request && !matches!(action, Action::Notify { .. }) => {
            return c.err(
                a.span(),
                format!("{field}.cancel_after"),
                "only a request or notification can be cancelled",
            );
        }
        Some(a) => Some(c.duration(a, &format!("{field}.cancel_after"))?),
        None => None,
    };
    let timeout = match &s.timeout {
        Some(t) if !matches!(action, Action::Request { .. }) => {
            return c.err(
                t.span(),
                format!("{field}.timeout"),
                "only a request (call, request, ping) can time out",
            );
        }
        Some(t) => Some(positive(c, t, &format!("{field}.timeout"))?),
        None => None,
    };
    if s.progress == Some(true) && !matches!(action, Action::Request { .. }) {
        return c.err(
            span,
            format!("{field}.progress"),
            "only a request can ask for progress",
        );
    }
    if s.session.is_some() && !matches!(action, Action::Request { .. } | Action::Notify { .. }) {
        return c.err(
            span,
            format!("{field}.session"),
            "session goes with notify, call or request",
        );
    }
    Ok(Step {
        action,
        abandon_after,
        cancel_after,
        timeout,
        progress: s.progress.unwrap_or(false),
        with_session: s.session.unwrap_or(true),
        line: c.line(span.start),
    })
}

fn fault(
    c: &Ctx,
    rf: &Spanned<RawFault>,
    field: &str,
    duration: Duration,
    clients: &[ClientSpec],
) -> Result<FaultSpec, InputError> {
    let f = rf.get_ref();
    let span = rf.span();
    let when =
        match (&f.at, &f.window) {
            (Some(at), None) => {
                let d = c.duration(at, &format!("{field}.at"))?;
                if d >= duration {
                    return c.err(
                        at.span(),
                        format!("{field}.at"),
                        "is not before the scenario's duration",
                    );
                }
                When::At(d)
            }
            (None, Some(w)) => {
                if w.get_ref().len() != 2 {
                    return c.err(
                        w.span(),
                        format!("{field}.window"),
                        "use [\"from\", \"to\"]",
                    );
                }
                let from = parse_duration(&w.get_ref()[0])
                    .or_else(|m| c.err(w.span(), format!("{field}.window"), m))?;
                let to = parse_duration(&w.get_ref()[1])
                    .or_else(|m| c.err(w.span(), format!("{field}.window"), m))?;
                if from > to {
                    return c.err(w.span(), format!("{field}.window"), "from is after to");
                }
                if to >= duration {
                    return c.err(
                        w.span(),
                        format!("{field}.window"),
                        "ends at or after the scenario's duration",
                    );
                }
                When::Window(from, to)
            }
            _ => return c.err(
                span,
                field,
                "give exactly one of `at` (an exact time) or `window` (a time drawn from the seed)",
            ),
        };
    let hosts: Vec<&str> = std::iter::once(SERVER_HOST)
        .chain(clients.iter().map(|cl| cl.host.as_str()))
        .collect();
    let host_of = |s: &Spanned<String>, k: &str| -> Result<String, InputError> {
        let name = s.get_ref();
        if let Some(cl) = clients.iter().find(|cl| &cl.name == name) {
            return Ok(cl.host.clone());
        }
        if hosts.contains(&name.as_str()) {
            return Ok(name.clone());
        }
        c.err(
            s.span(),
            format!("{field}.{k}"),
            format!("unknown host \"{name}\" (hosts: {})", hosts.join(", ")),
        )
    };
    let pair = |t: &Spanned<RawTarget>, k: &str| -> Result<(String, String), InputError> {
        let names: Vec<String> = match t.get_ref() {
            RawTarget::One(a) => vec![a.clone(), SERVER_HOST.to_string()],
            RawTarget::Pair(v) if v.len() == 2 => v.clone(),
            RawTarget::Pair(_) => {
                return c.err(
                    t.span(),
                    format!("{field}.{k}"),
                    "use a host (linked to the server) or [\"a\", \"b\"]",
                );
            }
        };
        let mut out = Vec::new();
        for n in names {
            out.push(host_of(&Spanned::new(t.span(), n), k)?);
        }
        if out[0] == out[1] {
            return c.err(
                t.span(),
                format!("{field}.{k}"),
                "a link needs two different hosts",
            );
        }
        Ok((out[0].clone(), out[1].clone()))
    };
    let mut kinds: Vec<FaultKind> = Vec::new();
    if let Some(h) = &f.crash {
        kinds.push(FaultKind::Crash {
            host: host_of(h, "crash")?,
        });
    }
    if let Some(h) = &f.restart {
        kinds.push(FaultKind::Restart {
            host: host_of(h, "restart")?,
        });
    }
    if let Some(t) = &f.partition {
        let (a, b) = pair(t, "partition")?;
        kinds.push(FaultKind::Partition { a, b });
    }
    if let Some(t) = &f.repair {
        let (a, b) = pair(t, "repair")?;
        kinds.push(FaultKind::Repair { a, b });
    }
    if let Some(t) = &f.partition_oneway {
        let (from, to) = pair(t, "partition_oneway")?;
        kinds.push(FaultKind::PartitionOneway { from, to });
    }
    if let Some(t) = &f.repair_oneway {
        let (from, to) = pair(t, "repair_oneway")?;
        kinds.push(FaultKind::RepairOneway { from, to });
    }
    if let Some(t) = &f.hold {
        let (a, b) = pair(t, "hold")?;
        kinds.push(FaultKind::Hold { a, b });
    }
    if let Some(t) = &f.release {
        let (a, b) = pair(t, "release")?;
        kinds.push(FaultKind::Release { a, b });
    }
    if let Some(cl) = &f.abandon {
        if !clients.iter().any(|x| &x.name == cl.get_ref()) {
            let names: Vec<&str> = clients.iter().map(|x| x.name.as_str()).collect();
            return c.err(
                cl.span(),
                format!("{field}.abandon"),
                format!(
                    "unknown client \"{}\" (clients: {})",
                    cl.get_ref(),
                    names.join(", ")
                ),
            );
        }
        kinds.push(FaultKind::Abandon {
            client: cl.get_ref().clone(),
        });
    }
    if let Some(s) = &f.shutdown {
        if s.get_ref() != SERVER_HOST {
            return c.err(
                s.span(),
                format!("{field}.shutdown"),
                "only \"server\" can be shut down",
            );
        }
        let restart_after = match &f.restart_after {
            Some(r) => Some(c.duration(r, &format!("{field}.restart_after"))?),
            None => None,
        };
        kinds.push(FaultKind::Shutdown { restart_after });
    } else if let Some(r) = &f.restart_after {
        return c.err(
            r.span(),
            format!("{field}.restart_after"),
            "goes with shutdown",
        );
    }
    if let Some(s) = &f.slow {
        if s.get_ref() != SERVER_HOST {
            return c.err(
                s.span(),
                format!("{field}.slow"),
                "only \"server\" can be slowed (its processing time is what a busy host stretches)",
            );
        }
        let Some(v) = &f.factor else {
            return c.err(
                s.span(),
                format!("{field}.factor"),
                "a slow fault needs a factor (e.g. factor = 20: every step of the server takes 20 times as long)",
            );
        };
        let factor =
            factor_value(v.get_ref()).or_else(|m| c.err(v.span(), format!("{field}.factor"), m))?;
        kinds.push(FaultKind::Slow {
            host: SERVER_HOST.to_string(),
            factor,
        });
    } else if let Some(v) = &f.factor {
        return c.err(v.span(), format!("{field}.factor"), "goes with slow");
    }
    if kinds.len() != 1 {
        return c.err(
            span,
            field,
            "give exactly one fault kind: crash, restart, partition, repair, partition_oneway, repair_oneway, hold, release, abandon, shutdown, slow",
        );
    }
    let kind = kinds.remove(0);
    let lasting = match &f.lasting {
        Some(l) => {
            if kind.healing().is_none() {
                return c.err(
                    l.span(),
                    format!("{field}.for"),
                    "`for` goes with crash, partition, partition_oneway, hold or slow (above 1)",
                );
            }
            Some(c.duration(l, &format!("{field}.for"))?)
        }
        None => None,
    };
    Ok(FaultSpec {
        when,
        kind,
        lasting,
        line: c.line(span.start),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{FaultKind, When};

    const OK: &str = r#"
name = "t"
duration = "5s"
[[client]]
name = "c1"
script = [
  { initialize = {} },
  { call = "slow_operation", args = { seconds = 2 } },
]
[[fault]]
at = "1.250s"
crash = "c1"
"#;

    #[test]
    fn parses_a_valid_scenario() {
        let s = parse(OK, "t.toml").expect("valid");
        assert_eq!(s.clients[0].steps.len(), 2);
        assert_eq!(s.faults[0].when, When::At(Duration::from_millis(1250)));
        assert_eq!(s.faults[0].kind, FaultKind::Crash { host: "c1".into() });
        assert_eq!(s.faults[0].line, 10);
    }

    fn err_of(text: &str) -> String {
        parse(text, "t.toml").expect_err("invalid").to_string()
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = err_of(&OK.replace("crash = \"c1\"", "crash = \"c9\""));
        assert!(
            e.starts_with("t.toml:12: fault[0].crash: unknown host \"c9\""),
            "{e}"
        );
        let e = err_of(&OK.replace("\"1.250s\"", "\"soon\""));
        assert!(e.starts_with("t.toml:11: fault[0].at:"), "{e}");
        let e = err_of(&OK.replace("duration = \"5s\"", "duration = \"5s\"\ncolour = 3"));
        assert!(e.starts_with("t.toml:4:") && e.contains("colour"), "{e}");
        let e = err_of(
            "name = \"x\"\nduration = \"1s\"\n[[client]]\nname = \"c\"\nscript = [ { sleep = \"1s\", call = \"x\" } ]\n",
        );
        assert!(
            e.starts_with("t.toml:5: client[0].script[0]: a step needs exactly one"),
            "{e}"
        );
        let e = err_of(
            "name = \"x\"\nduration = \"1s\"\n[server]\nstack = \"nope\"\n[[client]]\nname = \"c\"\nscript = [ { sleep = \"1s\" } ]\n",
        );
        assert!(
            e.starts_with("t.toml:4: server.stack: unknown stack \"nope\""),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }

    /// The cost switch and a busy host: each mistake one line naming it.
    #[test]
    fn cost_and_slow_faults_are_checked() {
        let slow = |extra: &str| {
            OK.replace(
                "crash = \"c1\"",
                &format!("slow = \"server\"\nfactor = 20\nfor = \"1s\"{extra}"),
            )
        };
        let s = parse(&slow(""), "t.toml").expect("valid");
        assert_eq!(
            s.faults[0].kind,
            FaultKind::Slow {
                host: "server".into(),
                factor: servers::Factor(2000)
            }
        );
        assert_eq!(
            s.faults[0].kind.healing().map(|k| k.to_string()),
            Some("slow server ×1 (load ends)".into())
        );
        let e = err_of(&OK.replace("crash = \"c1\"", "slow = \"c1\"\nfactor = 2"));
        assert!(
            e.starts_with("t.toml:12: fault[0].slow: only \"server\""),
            "{e}"
        );
        let e = err_of(&OK.replace("crash = \"c1\"", "slow = \"server\""));
        assert!(
            e.starts_with("t.toml:12: fault[0].factor: a slow fault needs a factor"),
            "{e}"
        );
        let e = err_of(&OK.replace("crash = \"c1\"", "slow = \"server\"\nfactor = 0.5"));
        assert!(
            e.starts_with("t.toml:13: fault[0].factor:") && e.contains("from 1 to 1000"),
            "{e}"
        );
        let e = err_of(&OK.replace("crash = \"c1\"", "crash = \"c1\"\nfactor = 3"));
        assert!(
            e.starts_with("t.toml:13: fault[0].factor: goes with slow"),
            "{e}"
        );
        let e = err_of(&OK.replace(
            "duration = \"5s\"",
            "duration = \"5s\"\n[server]\ncost = \"cheap\"",
        ));
        assert!(
            e.starts_with("t.toml:5: server.cost: \"cheap\": use \"calibrated\" or \"zero\""),
            "{e}"
        );
    }
}

#[cfg(test)]
mod round_trip {
    use crate::scenario::{catalogue_names, load, parse};

    fn same(a: &crate::scenario::Scenario, b: &crate::scenario::Scenario) -> bool {
        let mut a = serde_json::to_value(a).unwrap();
        let mut b = serde_json::to_value(b).unwrap();
        a["source"] = serde_json::Value::Null;
        b["source"] = serde_json::Value::Null;
        a == b
    }

    /// A switched-off cost model, a busy host and a chaos menu with its own
    /// load bounds come back as written.
    #[test]
    fn cost_slow_and_load_round_trip() {
        let text = "name = \"x\"\nduration = \"5s\"\n[server]\ncost = \"zero\"\n[[client]]\nname = \"c1\"\nscript = [ { initialize = {} } ]\n[[fault]]\nat = \"1s\"\nslow = \"server\"\nfactor = 2.5\nfor = \"1s\"\n[chaos]\nfaults = [1, 1]\nkinds = [\"slow\"]\nload = [3, 7.25]\n";
        let sc = parse(text, "t.toml").unwrap();
        assert_eq!(sc.server.cost, crate::servers::CostMode::Zero);
        for s in [sc.clone(), sc.realise(3)] {
            let back = parse(&s.to_toml(), "written.toml").unwrap();
            assert!(same(&s, &back), "{}", s.to_toml());
        }
    }

    #[test]
    fn writing_and_parsing_gives_the_scenario_back() {
        for name in catalogue_names() {
            let sc = load(&name).unwrap();
            for s in [sc.clone(), sc.realise(7)] {
                let text = s.to_toml();
                let back =
                    parse(&text, "written.toml").unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
                assert!(same(&s, &back), "{name} did not round-trip:\n{text}");
            }
        }
    }
}
