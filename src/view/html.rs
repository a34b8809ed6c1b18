//! `run --html` / `drive --html`: one self-contained page per run.
//!
//! Everything is inline — style, script, data — so the file opens from disk
//! or an artifact store with no network access. The layout is plain HTML
//! positioned in percent of a track, so that zooming is a change of one
//! width and text never stretches; a script (optional: without it the page
//! still shows everything at the eliding axis) adds zoom, the switch between
//! the eliding and the proportional axis, the trace filters, and a click on
//! a mark that scrolls the trace to its time.
//!
//! Every drawn element carries `data-kind` and `data-at` (its virtual time
//! as the reports print it), so a test can read the page as a person sees
//! it — CI opens it in headless Chromium and checks the DOM.

use std::fmt::Write as _;
use std::time::Duration;

use super::RunView;
use super::timeline::{self, Axis, Kind, Timeline};
use crate::time::fmt_duration;

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A percentage for a style.
fn pct(x: f64) -> String {
    format!("{:.3}%", (x * 100.0).clamp(0.0, 100.0))
}

/// Seconds, for the script.
fn secs(t: Duration) -> String {
    format!("{:.6}", t.as_secs_f64())
}

/// The shared style of every mcpsim page.
pub const STYLE: &str = r#"
:root { --label: 300px; --fg: #1d2430; --muted: #667085; --line: #e4e7ec; --bg: #ffffff; }
* { box-sizing: border-box; }
body { font: 13px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--fg);
       background: var(--bg); margin: 0; padding: 18px 22px 40px; }
h1 { font-size: 19px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 26px 0 8px; }
.verdict-fail { color: #b42318; } .verdict-pass { color: #067647; }
.sub { color: var(--muted); }
pre, code { font: 12px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
pre.replay { background: #f2f4f7; border: 1px solid var(--line); padding: 7px 10px; border-radius: 6px;
             display: inline-block; margin: 8px 0 0; white-space: pre-wrap; }
.controls { margin: 14px 0 6px; display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
.controls button { font: inherit; padding: 2px 10px; border: 1px solid #c9ced6; border-radius: 5px; background: #fff;
                   cursor: pointer; }
.legend { display: flex; gap: 12px; flex-wrap: wrap; color: var(--muted); }
.legend span { display: inline-flex; align-items: center; gap: 4px; }
.scroll { overflow-x: auto; border: 1px solid var(--line); border-radius: 8px; }
#tl { position: relative; width: 100%; min-width: 900px; }
.row { display: flex; min-height: 22px; border-top: 1px solid #f2f4f7; }
.row:hover { background: #f9fafb; }
.label { flex: 0 0 var(--label); width: var(--label); padding: 2px 8px; position: sticky; left: 0; z-index: 3;
         background: inherit; background-color: #fff; overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
         border-right: 1px solid var(--line); }
.label small { color: var(--muted); margin-left: 6px; }
.track { position: relative; flex: 1 1 auto; }
.lanehead { background: #f8f9fb; border-top: 2px solid #d0d5dd; min-height: 26px; }
.lanehead .label { background-color: #f8f9fb; font-weight: 600; }
.faultrow { min-height: 24px; border-top: 1px solid var(--line); } .faultrow .label { color: var(--muted); }
.axis { min-height: 24px; position: sticky; top: 0; z-index: 2; }
.axis .label { color: var(--muted); }
.tick { position: absolute; top: 4px; transform: translateX(-50%); color: var(--muted); font-size: 11px;
        white-space: nowrap; }
.tick.edge-left { transform: none; } .tick.edge-right { transform: translateX(-100%); }
.tick.edge-left::after { left: 0; } .tick.edge-right::after { left: 100%; }
.tick::after { content: ""; position: absolute; left: 50%; top: 16px; height: 4px; border-left: 1px solid #98a2b3; }
.underlay { position: absolute; top: 0; bottom: 0; left: var(--label); right: 0; pointer-events: none; z-index: 0; }
.gap { position: absolute; top: 0; bottom: 0; pointer-events: none;
       background: repeating-linear-gradient(135deg, #f2f4f7 0 6px, #fafbfc 6px 12px); }
.gap span { position: absolute; top: 5px; left: 50%; transform: translateX(-50%); font-size: 11px; color: var(--muted); white-space: nowrap; }
.bar { position: absolute; top: 8px; height: 6px; border-radius: 3px; background: #b2ccff; min-width: 2px; z-index: 1; }
.bar.open { background: repeating-linear-gradient(90deg, #b2ccff 0 6px, transparent 6px 10px); }
.mark { position: absolute; top: 4px; width: 10px; height: 14px; margin-left: -5px; z-index: 2; cursor: pointer;
        border-radius: 2px; }
.mark.k-sent { background: #475467; width: 4px; margin-left: -2px; }
.mark.k-start { background: #2e90fa; }
.mark.k-event { background: #7a5af8; width: 6px; margin-left: -3px; }
.mark.k-answer { background: #12b76a; }
.mark.k-error { background: #f79009; }
.mark.k-final-body { background: #067647; clip-path: polygon(0 0, 100% 50%, 0 100%); }
.mark.k-end { background: #98a2b3; width: 4px; margin-left: -2px; }
.mark.k-disconnect { background: #f04438; width: 4px; margin-left: -2px; }
.mark.k-broken { background: #f04438; clip-path: polygon(50% 0, 100% 100%, 0 100%); }
.mark.k-missing-final-body { background: none; width: auto; margin-left: -6px; top: 1px; color: #b42318;
        font-weight: 700; white-space: nowrap; font-size: 12px; }
.overlay { position: absolute; top: 0; bottom: 0; left: var(--label); right: 0; pointer-events: none; z-index: 4; }
.fault { position: absolute; top: 0; bottom: 0; border-left: 2px solid #f79009; }
.fault span { position: absolute; bottom: 3px; left: 3px; background: #fffaeb; color: #93370d; border: 1px solid #fedf89;
              border-radius: 4px; padding: 0 5px; font-size: 11px; white-space: nowrap; pointer-events: auto; }
.failline { position: absolute; top: 0; bottom: 0; border-left: 2px dashed #f04438; }
a.failure { position: absolute; top: 4px; z-index: 5; color: #fff; background: #d92d20; border-radius: 4px;
            padding: 0 6px; font-size: 11.5px; white-space: nowrap; text-decoration: none; }
a.failure.right { transform: translateX(-100%); }
.failure-detail { border-left: 4px solid #d92d20; background: #fef3f2; padding: 6px 10px; margin: 8px 0;
                  border-radius: 0 6px 6px 0; }
.failure-detail:target { outline: 2px solid #d92d20; }
.failure-detail .sig { color: var(--muted); font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
.nj { color: var(--muted); }
table { border-collapse: collapse; width: 100%; }
td, th { padding: 1px 8px; text-align: left; vertical-align: top; border-bottom: 1px solid #f2f4f7; }
#trace td { font: 12px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap; }
#trace tr.l-ERROR td { color: #b42318; } #trace tr.l-WARN td { color: #b54708; }
#trace tr.flash td { background: #fff3c4; }
table.summary td, table.summary th { font-size: 13px; padding: 3px 10px; }
"#;

/// The script of a run page.
const SCRIPT: &str = r#"
(function () {
  const tl = document.getElementById('tl');
  let zoom = 1;
  const setZoom = z => { zoom = Math.min(64, Math.max(1, z)); tl.style.width = (zoom * 100) + '%';
                         document.getElementById('zoom-level').textContent = zoom + '×'; };
  document.getElementById('zoom-in').onclick = () => setZoom(zoom * 2);
  document.getElementById('zoom-out').onclick = () => setZoom(zoom / 2);
  document.getElementById('zoom-reset').onclick = () => setZoom(1);
  const axes = JSON.parse(document.getElementById('axes').textContent);
  const xOf = (segs, t) => { for (const s of segs) { if (t <= s[1]) { const span = s[1] - s[0];
      const f = span > 0 ? (t - s[0]) / span : 0; return s[2] + f * (s[3] - s[2]); } } return 1; };
  const place = name => {
    const segs = axes[name];
    for (const el of tl.querySelectorAll('[data-t]')) {
      const a = xOf(segs, parseFloat(el.dataset.t));
      el.style.left = (100 * a).toFixed(3) + '%';
      if (el.dataset.t2 !== undefined) {
        el.style.width = Math.max(0, 100 * (xOf(segs, parseFloat(el.dataset.t2)) - a)).toFixed(3) + '%';
      }
    }
    for (const el of tl.querySelectorAll('.axis-set')) { el.hidden = el.dataset.axis !== name; }
  };
  const elide = document.getElementById('elide');
  if (elide) { elide.onchange = () => place(elide.checked ? 'eliding' : 'linear'); }
  const rows = Array.from(document.querySelectorAll('#trace tbody tr'));
  const rank = { ERROR: 1, WARN: 2, INFO: 3, DEBUG: 4, TRACE: 5 };
  const filter = () => {
    const host = document.getElementById('f-host').value;
    const level = document.getElementById('f-level').value;
    const target = document.getElementById('f-target').value.trim();
    let shown = 0;
    for (const r of rows) {
      const ok = (host === '' || r.dataset.host === host) && (level === '' || rank[r.dataset.level] <= rank[level])
        && (target === '' || r.dataset.target.includes(target));
      r.hidden = !ok; if (ok) shown++;
    }
    document.getElementById('f-count').textContent = shown + ' of ' + rows.length + ' lines';
  };
  for (const id of ['f-host', 'f-level', 'f-target']) { document.getElementById(id).oninput = filter; }
  filter();
  for (const m of tl.querySelectorAll('.mark, .fault span')) {
    m.onclick = () => {
      const t = parseFloat(m.dataset.t || m.parentElement.dataset.t);
      const r = rows.find(r => !r.hidden && parseFloat(r.dataset.t) >= t - 1e-9);
      if (r) { r.scrollIntoView({ block: 'center' }); r.classList.add('flash');
               setTimeout(() => r.classList.remove('flash'), 1500); }
    };
  }
})();
"#;

/// The axis segments as the script reads them: `[from, to, x0, x1]`.
fn axis_json(a: &Axis) -> String {
    let segs: Vec<String> = a
        .segments
        .iter()
        .map(|s| format!("[{},{},{:.6},{:.6}]", secs(s.from), secs(s.to), s.x0, s.x1))
        .collect();
    format!("[{}]", segs.join(","))
}

/// One axis's ticks (in the axis row) or its idle stretches (under the
/// lanes), in a set the script shows or hides when the axis changes.
/// The least distance between two tick labels, as a fraction of the track.
const MIN_TICK_GAP: f64 = 0.06;

fn axis_set(out: &mut String, name: &str, a: &Axis, hidden: bool, gaps: bool) {
    let _ = write!(
        out,
        r#"<div class="axis-set" data-axis="{name}"{}>"#,
        if hidden { " hidden" } else { "" }
    );
    if gaps {
        for s in a.segments.iter().filter(|s| s.elided) {
            let _ = write!(
                out,
                r#"<div class="gap" style="left:{};width:{}"><span>⋯ {} idle</span></div>"#,
                pct(s.x0),
                pct(s.x1 - s.x0),
                fmt_duration(s.to - s.from)
            );
        }
    } else {
        // A label is some 60 px wide: drop a tick too close to the last one
        // kept (a short stretch between two idle ones has many), and keep the
        // first and last labels inside the track.
        let mut last: Option<f64> = None;
        for t in a.ticks(10) {
            let x = a.x(t);
            if last.is_some_and(|l| x - l < MIN_TICK_GAP) {
                continue;
            }
            last = Some(x);
            let align = if x < 0.02 {
                " edge-left"
            } else if x > 0.98 {
                " edge-right"
            } else {
                ""
            };
            let _ = write!(
                out,
                r#"<span class="tick{align}" style="left:{}">{}</span>"#,
                pct(x),
                fmt_duration(t)
            );
        }
    }
    out.push_str("</div>");
}

/// The page of one run.
pub fn render(v: &RunView) -> String {
    let tl = v.timeline();
    let faults = &v.observations.faults;
    let extra = faults
        .iter()
        .map(|f| f.at)
        .chain(v.failures.iter().map(|f| f.at));
    let times = timeline::times(&tl, extra);
    let eliding = Axis::eliding(&times, tl.end);
    let linear = Axis::linear(tl.end);
    let elides = eliding.segments.iter().any(|s| s.elided);

    let mut s = String::new();
    let verdict = if v.passed() { "PASS" } else { "FAIL" };
    let title = format!("{verdict} {} seed {} on {}", v.scenario, v.seed, v.stack);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(&title)
    );
    let _ = writeln!(
        s,
        r#"<h1 id="verdict" class="verdict-{}" data-verdict="{}">{}</h1>"#,
        verdict.to_lowercase(),
        verdict.to_lowercase(),
        esc(&title)
    );
    let _ = writeln!(
        s,
        r#"<div class="sub">{} · ended at {} (virtual){} · {} failure{}{}</div>"#,
        esc(&v.kind),
        fmt_duration(tl.end),
        v.trace_hash
            .map(|h| format!(" · trace {}", esc(h)))
            .unwrap_or_default(),
        v.failures.len(),
        if v.failures.len() == 1 { "" } else { "s" },
        if v.not_judged.is_empty() {
            String::new()
        } else {
            format!(" · {} oracles not judged", v.not_judged.len())
        }
    );
    let _ = writeln!(
        s,
        r#"<pre class="replay" id="replay">{}</pre>"#,
        esc(&v.replay)
    );

    // Controls and legend.
    let _ = write!(
        s,
        r#"<div class="controls"><button id="zoom-out" title="zoom out">−</button><span id="zoom-level">1×</span><button id="zoom-in" title="zoom in">+</button><button id="zoom-reset">reset</button>"#
    );
    if elides {
        s.push_str(
            r#"<label><input type="checkbox" id="elide" checked> elide idle stretches</label>"#,
        );
    }
    s.push_str(r#"<div class="legend">"#);
    for k in [
        Kind::Sent,
        Kind::Start,
        Kind::Event,
        Kind::Answer,
        Kind::Error,
        Kind::FinalBody,
        Kind::Disconnect,
        Kind::End,
        Kind::Broken,
    ] {
        let _ = write!(
            s,
            r#"<span><i class="mark k-{}" style="position:static;display:inline-block;margin:0"></i>{}</span>"#,
            k.name(),
            k.name().replace('-', " ")
        );
    }
    s.push_str(r#"<span><b style="color:#b42318">✗</b>missing final body</span><span><i style="display:inline-block;width:0;height:14px;border-left:2px solid #f79009"></i>fault</span></div></div>"#);

    // The timeline.
    s.push_str(r#"<div class="scroll"><div id="tl">"#);
    s.push_str(r#"<div class="row axis"><div class="label">virtual time</div><div class="track">"#);
    axis_set(&mut s, "eliding", &eliding, false, false);
    if elides {
        axis_set(&mut s, "linear", &linear, true, false);
    }
    s.push_str("</div></div>\n");
    if elides {
        s.push_str(r#"<div class="underlay">"#);
        axis_set(&mut s, "eliding", &eliding, false, true);
        s.push_str("</div>");
    }
    for lane in &tl.lanes {
        lane_html(&mut s, v, &tl, lane, &eliding);
    }
    // A row of its own for the faults' labels, so that none covers an exchange.
    if !faults.is_empty() {
        s.push_str(r#"<div class="row faultrow"><div class="label">faults</div><div class="track"></div></div>"#);
    }
    // Faults and failures across the lanes.
    s.push_str(r#"<div class="overlay">"#);
    for f in faults {
        let _ = write!(
            s,
            r#"<div class="fault" data-kind="fault" data-at="{at}" data-t="{t}" style="left:{x}"><span title="fault at {at}">⚡ {what} · {at}</span></div>"#,
            at = fmt_duration(f.at),
            t = secs(f.at),
            x = pct(eliding.x(f.at)),
            what = esc(&f.kind.to_string()),
        );
    }
    for f in v.failures {
        let _ = write!(
            s,
            r#"<div class="failline" data-t="{}" style="left:{}"></div>"#,
            secs(f.at),
            pct(eliding.x(f.at))
        );
    }
    s.push_str("</div></div></div>\n");

    // Failures.
    let _ = writeln!(
        s,
        r#"<h2 id="failures">Failures ({})</h2>"#,
        v.failures.len()
    );
    if v.failures.is_empty() {
        s.push_str("<p>Every judged oracle held.</p>\n");
    }
    for (i, f) in v.failures.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<div class="failure-detail" id="failure-{i}" data-oracle="{o}" data-at="{at}"><b>✗ {o}</b> at {at} on {h}<br>{d}<br><span class="sig">signature: {sig}</span></div>"#,
            o = esc(f.oracle),
            at = fmt_duration(f.at),
            h = esc(&f.host),
            d = esc(&f.detail),
            sig = esc(&f.signature),
        );
    }
    if !v.not_judged.is_empty() {
        s.push_str(r#"<h2 id="not-judged">Not judged</h2><ul class="nj">"#);
        for (n, why) in &v.not_judged {
            let _ = write!(s, "<li><b>{}</b>: {}</li>", esc(n), esc(why));
        }
        s.push_str("</ul>\n");
    }

    trace_html(&mut s, v);
    let _ = write!(
        s,
        r#"<script type="application/json" id="axes">{{"eliding":{},"linear":{}}}</script><script>{SCRIPT}</script></body></html>"#,
        axis_json(&eliding),
        axis_json(&linear)
    );
    s.push('\n');
    s
}

fn lane_html(s: &mut String, v: &RunView, tl: &Timeline, lane: &timeline::Lane, axis: &Axis) {
    let _ = write!(
        s,
        r#"<section class="lane" data-host="{h}"><div class="row lanehead"><div class="label" title="{h}">{h}{what}<small>{n} exchange{pl}</small></div><div class="track">"#,
        h = esc(&lane.host),
        what = if lane.host == crate::scenario::SERVER_HOST {
            format!(" · {}", esc(&v.stack))
        } else {
            String::new()
        },
        n = lane.rows.len(),
        pl = if lane.rows.len() == 1 { "" } else { "s" },
    );
    for (i, f) in v.failures.iter().enumerate() {
        if f.host != lane.host {
            continue;
        }
        let x = axis.x(f.at);
        let _ = write!(
            s,
            r##"<a class="failure{r}" href="#failure-{i}" data-kind="failure" data-oracle="{o}" data-at="{at}" data-t="{t}" style="left:{x}" title="{sig}">✗ {o} · {at}</a>"##,
            r = if x > 0.75 { " right" } else { "" },
            o = esc(f.oracle),
            at = fmt_duration(f.at),
            t = secs(f.at),
            x = pct(x),
            sig = esc(&f.signature),
        );
    }
    s.push_str("</div></div>\n");
    for r in &lane.rows {
        let to = r.to.unwrap_or(tl.end);
        let _ = write!(
            s,
            r#"<div class="row exchange"><div class="label" title="{l}{nt}">{l}<small>{n}</small></div><div class="track"><div class="bar{open}" data-t="{t}" data-t2="{t2}" style="left:{x};width:{w}" title="{from} → {until}"></div>"#,
            l = esc(&r.label),
            nt = if r.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", esc(&r.note))
            },
            n = esc(&r.note),
            open = if r.to.is_none() { " open" } else { "" },
            t = secs(r.from),
            t2 = secs(to),
            x = pct(axis.x(r.from)),
            w = pct(axis.x(to) - axis.x(r.from)),
            from = fmt_duration(r.from),
            until =
                r.to.map(fmt_duration)
                    .unwrap_or_else(|| "still open at the end".to_string()),
        );
        for m in &r.marks {
            let text = if m.kind == Kind::MissingFinalBody {
                "✗ no final body"
            } else {
                ""
            };
            let _ = write!(
                s,
                r#"<span class="mark k-{k}" data-kind="{k}" data-at="{at}" data-t="{t}" style="left:{x}" title="{at} {label}">{text}</span>"#,
                k = m.kind.name(),
                at = fmt_duration(m.at),
                t = secs(m.at),
                x = pct(axis.x(m.at)),
                label = esc(&m.label),
            );
        }
        s.push_str("</div></div>\n");
    }
    s.push_str("</section>\n");
}

fn trace_html(s: &mut String, v: &RunView) {
    let mut hosts: Vec<&str> = v.trace.iter().map(|l| l.host.as_str()).collect();
    hosts.sort();
    hosts.dedup();
    let _ = write!(
        s,
        r#"<h2 id="trace-title">Trace</h2><div class="controls">host <select id="f-host"><option value="">all</option>"#
    );
    for h in hosts {
        let _ = write!(s, r#"<option value="{0}">{0}</option>"#, esc(h));
    }
    s.push_str(r#"</select> level up to <select id="f-level"><option value="">all</option><option>ERROR</option><option>WARN</option><option>INFO</option><option selected>DEBUG</option><option>TRACE</option></select> target contains <input id="f-target" size="24"> <span id="f-count" class="sub"></span></div>"#);
    s.push_str(r#"<table id="trace"><thead><tr><th>time</th><th>host</th><th>level</th><th>target</th><th>message</th></tr></thead><tbody>"#);
    for l in v.trace {
        let mut msg = l.msg.clone();
        for (k, val) in &l.fields {
            let _ = write!(msg, " {k}={val}");
        }
        let _ = write!(
            s,
            r#"<tr class="l-{lv}" data-t="{t}" data-host="{h}" data-level="{lv}" data-target="{tg}"><td>{at}</td><td>{h}</td><td>{lv}</td><td>{tg}</td><td>{m}</td></tr>"#,
            lv = esc(&l.level),
            t = secs(l.t),
            h = esc(&l.host),
            tg = esc(&l.target),
            at = fmt_duration(l.t),
            m = esc(&msg),
        );
        s.push('\n');
    }
    s.push_str("</tbody></table>\n");
}
