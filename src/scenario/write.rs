//! Writing a scenario back as TOML — for `mcpsim bisect`'s regression files
//! and for scenarios built in code. `parse(to_toml(s))` gives `s` back.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Elicitation, Expect, FaultKind, IdStrategy, SERVER_HOST, Scenario, When};
use crate::client::script::{Action, Step};
use crate::time::fmt_duration;

fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn d(x: std::time::Duration) -> String {
    q(&fmt_duration(x))
}

fn json_to_toml(v: &Value) -> Option<toml::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Array(a) => toml::Value::Array(a.iter().filter_map(json_to_toml).collect()),
        Value::Object(o) => toml::Value::Table(
            o.iter()
                .filter_map(|(k, v)| json_to_toml(v).map(|t| (k.clone(), t)))
                .collect(),
        ),
    })
}

fn inline(v: &Value) -> String {
    match json_to_toml(v) {
        Some(t @ toml::Value::Table(_)) => {
            let s = t.to_string();
            if s.trim().is_empty() { "{}".into() } else { s }
        }
        Some(t) => t.to_string(),
        None => "{}".into(),
    }
}

fn step(s: &Step) -> String {
    let mut parts = Vec::new();
    match &s.action {
        Action::Initialize { protocol } => {
            parts.push(format!("initialize = {{ protocol = {} }}", q(protocol)))
        }
        Action::Notify { method, params } => {
            parts.push(format!("notify = {}", q(method)));
            if let Some(p) = params {
                parts.push(format!("params = {}", inline(p)));
            }
        }
        Action::Request { method, params } => {
            let tool = params.as_ref().and_then(|p| {
                let o = p.as_object()?;
                let name = o.get("name")?.as_str()?;
                let only = o.keys().all(|k| k == "name" || k == "arguments");
                (method == "tools/call" && only).then_some((name, o.get("arguments")))
            });
            match tool {
                Some((name, args)) => {
                    parts.push(format!("call = {}", q(name)));
                    if let Some(a) = args {
                        parts.push(format!("args = {}", inline(a)));
                    }
                }
                None => {
                    parts.push(format!("request = {}", q(method)));
                    if let Some(p) = params {
                        parts.push(format!("params = {}", inline(p)));
                    }
                }
            }
        }
        Action::Sleep { min, max } if min == max => parts.push(format!("sleep = {}", d(*min))),
        Action::Sleep { min, max } => parts.push(format!("sleep = [{}, {}]", d(*min), d(*max))),
        Action::Vanish => parts.push("vanish = {}".into()),
        Action::Listen => parts.push("listen = {}".into()),
        Action::Goodbye => parts.push("goodbye = {}".into()),
    }
    if let Some(a) = s.abandon_after {
        parts.push(format!("abandon_after = {}", d(a)));
    }
    if let Some(a) = s.cancel_after {
        parts.push(format!("cancel_after = {}", d(a)));
    }
    if let Some(t) = s.timeout {
        parts.push(format!("timeout = {}", d(t)));
    }
    if s.progress {
        parts.push("progress = true".into());
    }
    if !s.with_session {
        parts.push("session = false".into());
    }
    format!("{{ {} }}", parts.join(", "))
}

fn link(a: &str, b: &str) -> String {
    if b == SERVER_HOST {
        q(a)
    } else {
        format!("[{}, {}]", q(a), q(b))
    }
}

impl Scenario {
    /// The scenario as TOML text.
    pub fn to_toml(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "name = {}", q(&self.name));
        if !self.about.is_empty() {
            let _ = writeln!(o, "about = {}", q(&self.about));
        }
        let _ = writeln!(o, "duration = {}", d(self.duration));
        let _ = writeln!(o, "tick = {}", d(self.tick));
        if self.hang_after != super::DEFAULT_HANG_AFTER {
            let _ = writeln!(o, "hang_after = {}", d(self.hang_after));
        }
        let _ = writeln!(o, "\n[server]\nstack = {}", q(&self.stack));
        // A swarm that draws the mode must not have it written as well.
        let drawn = self.swarm.as_ref().is_some_and(|sw| sw.modes.is_some());
        if !drawn {
            let mode = if self.server.stateless {
                "stateless"
            } else {
                "stateful"
            };
            let response = if self.server.json_response {
                "json"
            } else {
                "sse"
            };
            let _ = writeln!(o, "mode = {}", q(mode));
            let _ = writeln!(o, "response = {}", q(response));
        }
        if let Some(t) = self.server.session_idle_timeout {
            let _ = writeln!(o, "session_idle_timeout = {}", d(t));
        }
        if let Some(g) = self.server.graceful_timeout {
            let _ = writeln!(o, "graceful_timeout = {}", d(g));
        }
        if self.server.event_store && !drawn {
            let _ = writeln!(o, "event_store = true");
        }
        if self.server.cost != crate::servers::CostMode::default() {
            let _ = writeln!(o, "cost = {}", q(self.server.cost.name()));
        }
        if let Some(a) = &self.server.dns_rebinding {
            let list = |v: &Vec<String>| v.iter().map(|x| q(x)).collect::<Vec<_>>().join(", ");
            let _ = writeln!(o, "allowed_hosts = [{}]", list(&a.hosts));
            let _ = writeln!(o, "allowed_origins = [{}]", list(&a.origins));
        }
        for c in &self.clients {
            let _ = writeln!(
                o,
                "\n[[client]]\nname = {}\nhost = {}",
                q(&c.name),
                q(&c.host)
            );
            let b = &c.behaviour;
            if b.ids == IdStrategy::Constant {
                let _ = writeln!(o, "ids = \"constant\"");
            }
            if b.resume {
                let _ = writeln!(o, "resume = true");
            }
            if b.reinit {
                let _ = writeln!(o, "reinit = true");
            }
            match b.elicitation {
                Elicitation::Accept => {}
                Elicitation::Decline => {
                    let _ = writeln!(o, "elicitation = \"decline\"");
                }
                Elicitation::Ignore => {
                    let _ = writeln!(o, "elicitation = \"ignore\"");
                }
            }
            if let Some(t) = b.read_timeout {
                let _ = writeln!(o, "read_timeout = {}", d(t));
            }
            if let Some(origin) = &b.origin {
                let _ = writeln!(o, "origin = {}", q(origin));
            }
            let _ = writeln!(o, "script = [");
            for s in &c.steps {
                let _ = writeln!(o, "  {},", step(s));
            }
            let _ = writeln!(o, "]");
        }
        let _ = writeln!(
            o,
            "\n[network]\nlatency = {{ min = {}, max = {} }}",
            d(self.latency.min),
            d(self.latency.max)
        );
        if !self.links.is_empty() {
            let links: Vec<String> = self
                .links
                .iter()
                .map(|(h, l)| format!("{h} = {}", d(*l)))
                .collect();
            let _ = writeln!(o, "links = {{ {} }}", links.join(", "));
        }
        if let Some(sw) = &self.swarm {
            let _ = writeln!(o, "\n[swarm]");
            if let Some(m) = &sw.modes {
                let modes: Vec<String> = m.iter().map(|k| q(k)).collect();
                let _ = writeln!(o, "modes = [{}]", modes.join(", "));
            }
            let _ = writeln!(o, "clients = [{}, {}]", sw.clients.0, sw.clients.1);
            let _ = writeln!(o, "hosts = [{}, {}]", sw.hosts.0, sw.hosts.1);
            let _ = writeln!(o, "steps = [{}, {}]", sw.steps.0, sw.steps.1);
            let _ = writeln!(o, "faults = [{}, {}]", sw.faults.0, sw.faults.1);
            let kinds: Vec<String> = sw.kinds.iter().map(|k| q(k)).collect();
            let _ = writeln!(o, "kinds = [{}]", kinds.join(", "));
            let _ = writeln!(o, "slow = [{}, {}]", d(sw.slow.0), d(sw.slow.1));
            let _ = writeln!(
                o,
                "latency_max = [{}, {}]",
                d(sw.latency_max.0),
                d(sw.latency_max.1)
            );
            if sw.load != super::swarm::DEFAULT_LOAD {
                let _ = writeln!(o, "load = [{}, {}]", sw.load.0, sw.load.1);
            }
        }
        if let Some(ch) = &self.chaos {
            let _ = writeln!(o, "\n[chaos]");
            let _ = writeln!(o, "faults = [{}, {}]", ch.faults.0, ch.faults.1);
            let kinds: Vec<String> = ch.kinds.iter().map(|k| q(k)).collect();
            let _ = writeln!(o, "kinds = [{}]", kinds.join(", "));
            let _ = writeln!(o, "window = [{}, {}]", d(ch.window.0), d(ch.window.1));
            if ch.load != super::swarm::DEFAULT_LOAD {
                let _ = writeln!(o, "load = [{}, {}]", ch.load.0, ch.load.1);
            }
        }
        for f in &self.faults {
            let _ = writeln!(o, "\n[[fault]]");
            match f.when {
                When::At(t) => {
                    let _ = writeln!(o, "at = {}", d(t));
                }
                When::Window(a, b) => {
                    let _ = writeln!(o, "window = [{}, {}]", d(a), d(b));
                }
            }
            let line = match &f.kind {
                FaultKind::Crash { host } => format!("crash = {}", q(host)),
                FaultKind::Restart { host } => format!("restart = {}", q(host)),
                FaultKind::Partition { a, b } => format!("partition = {}", link(a, b)),
                FaultKind::Repair { a, b } => format!("repair = {}", link(a, b)),
                FaultKind::PartitionOneway { from, to } => {
                    format!("partition_oneway = [{}, {}]", q(from), q(to))
                }
                FaultKind::RepairOneway { from, to } => {
                    format!("repair_oneway = [{}, {}]", q(from), q(to))
                }
                FaultKind::Hold { a, b } => format!("hold = {}", link(a, b)),
                FaultKind::Release { a, b } => format!("release = {}", link(a, b)),
                FaultKind::Abandon { client } => format!("abandon = {}", q(client)),
                FaultKind::Shutdown { restart_after } => {
                    let mut s = format!("shutdown = {}", q(SERVER_HOST));
                    if let Some(r) = restart_after {
                        let _ = write!(s, "\nrestart_after = {}", d(*r));
                    }
                    s
                }
                FaultKind::Slow { host, factor } => {
                    format!("slow = {}\nfactor = {factor}", q(host))
                }
            };
            let _ = writeln!(o, "{line}");
            if let Some(l) = f.lasting {
                let _ = writeln!(o, "for = {}", d(l));
            }
        }
        if let Some(r) = &self.regression {
            let passes: Vec<String> = r.fixed_on.iter().map(|s| q(s)).collect();
            let _ = writeln!(
                o,
                "\n[regression]\nstack = {}\nseed = {}\nsignature = {}\nfixed_on = [{}]",
                q(&r.stack),
                r.seed,
                q(&r.signature),
                passes.join(", ")
            );
        }
        if let Some(e) = &self.expect {
            let _ = writeln!(
                o,
                "\n[expect]\nseeds = {}",
                q(&format!("{}..{}", e.seeds.start, e.seeds.end))
            );
            for (stack, ex) in &e.stacks {
                let list = |v: &Vec<String>| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
                let v = match ex {
                    Expect::Pass => "\"pass\"".to_string(),
                    Expect::Fails(v) => format!("{{ fails = [{}] }}", list(v)),
                    Expect::Sometimes(v) => format!("{{ sometimes = [{}] }}", list(v)),
                };
                let _ = writeln!(o, "{} = {v}", q(stack));
            }
        }
        o
    }
}
