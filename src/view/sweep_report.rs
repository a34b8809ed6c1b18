//! A sweep's report: one HTML page (`sweep --html`, `merge --html`) and JUnit
//! XML (`sweep --junit`, `merge --junit`) for CI dashboards.
//!
//! Both draw the sweep's [`SeedRow`]s, the rows its summary counted, so the
//! page, the XML and the printed summary never disagree. The page holds the
//! signatures with their counts and first seeds (each with its replay
//! command) and, for every fault the scenario draws at a time that varies
//! from seed to seed, the seeds' outcomes plotted against that time: the
//! race window is where the failures are. It decides nothing itself.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::html::{STYLE, esc};
use crate::explore::seed_row::SeedRow;
use crate::explore::sweep::SweepResults;
use crate::report::replay_command;
use crate::time::fmt_duration;

/// What a sweep report is about.
pub struct SweepView<'a> {
    /// The scenario as the sweep was given it (file or name in sims/).
    pub scenario: &'a str,
    /// The stack.
    pub stack: &'a str,
    /// The seeds swept, as written (`A..B`, and the shard if one).
    pub seeds: String,
    /// The results, with their rows.
    pub results: &'a SweepResults,
}

/// Bins of a race-window histogram.
const BINS: usize = 48;
/// Faults drawn per page, the most common first.
const MAX_FAULTS: usize = 6;
/// Failing seeds listed on the page.
const MAX_LISTED: usize = 200;
/// Colours for the most common signatures; the rest share the last.
const COLOURS: [&str; 6] = [
    "#d92d20", "#f79009", "#7a5af8", "#0086c9", "#c11574", "#667085",
];

/// JUnit XML: a test suite of one test case per seed (`seed N`), a failure
/// per signature (its detail and the replay command), an error for a seed
/// mcpsim could not judge.
pub fn junit(v: &SweepView) -> String {
    let rows = &v.results.rows;
    let failed = rows
        .iter()
        .filter(|r| r.error.is_none() && !r.passed())
        .count();
    let errors = rows.iter().filter(|r| r.error.is_some()).count();
    let time: f64 = rows.iter().map(|r| r.wall_ms).sum::<f64>() / 1000.0;
    let suite = format!("mcpsim sweep {} on {}", v.scenario, v.stack);
    let class = format!("mcpsim.{}.{}", v.scenario, v.stack);
    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<testsuites name="mcpsim" tests="{}" failures="{failed}" errors="{errors}" time="{time:.3}">"#,
        rows.len()
    );
    let _ = writeln!(
        s,
        r#"  <testsuite name="{}" tests="{}" failures="{failed}" errors="{errors}" skipped="0" time="{time:.3}">"#,
        esc(&suite),
        rows.len()
    );
    let _ = writeln!(
        s,
        r#"    <properties><property name="seeds" value="{}"/><property name="stack" value="{}"/></properties>"#,
        esc(&v.seeds),
        esc(v.stack)
    );
    for r in rows {
        let replay = replay_command(v.scenario, r.seed, v.stack);
        let _ = write!(
            s,
            r#"    <testcase classname="{}" name="seed {}" time="{:.4}">"#,
            esc(&class),
            r.seed,
            r.wall_ms / 1000.0
        );
        if let Some(e) = &r.error {
            let _ = write!(
                s,
                "\n      <error message=\"mcpsim could not judge this seed\" type=\"internal\">{}</error>\n    ",
                esc(e)
            );
        } else if !r.passed() {
            s.push('\n');
            for sig in r.signatures() {
                let details: Vec<String> = r
                    .failures
                    .iter()
                    .filter(|f| f.signature == sig)
                    .map(|f| format!("{} at {} on {}: {}", f.oracle, f.at, f.host, f.detail))
                    .collect();
                let kind = r
                    .failures
                    .iter()
                    .find(|f| f.signature == sig)
                    .map_or("determinism", |f| f.oracle.as_str());
                let _ = writeln!(
                    s,
                    "      <failure message=\"{}\" type=\"{}\">{}\nreplay: {}</failure>",
                    esc(&sig),
                    esc(kind),
                    esc(&details.join("\n")),
                    esc(&replay)
                );
            }
            let _ = write!(
                s,
                "      <system-out>trace {} · virtual {}</system-out>\n    ",
                esc(&r.trace_hash),
                esc(&r.virtual_time)
            );
        }
        let _ = writeln!(s, "</testcase>");
    }
    let _ = writeln!(s, "  </testsuite>");
    let _ = writeln!(s, "</testsuites>");
    s
}

/// One drawn fault across the seeds: each seed's first time for it and
/// outcome (the index of its first signature in the page's order, or none).
struct Drawn {
    label: String,
    points: Vec<(Duration, Option<usize>)>,
}

/// The faults whose time varies between seeds, most seeds first.
fn drawn(rows: &[SeedRow], order: &BTreeMap<String, usize>) -> Vec<Drawn> {
    let mut by_label: BTreeMap<&str, Vec<(Duration, Option<usize>)>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.error.is_none()) {
        let outcome = r
            .signatures()
            .iter()
            .filter_map(|s| order.get(s).copied())
            .min();
        let mut seen: Vec<&str> = Vec::new();
        for (label, at) in &r.faults {
            if seen.contains(&label.as_str()) {
                continue;
            }
            seen.push(label);
            by_label.entry(label).or_default().push((*at, outcome));
        }
    }
    let mut out: Vec<Drawn> = by_label
        .into_iter()
        .filter(|(_, p)| p.iter().any(|(at, _)| *at != p[0].0))
        .map(|(label, points)| Drawn {
            label: label.to_string(),
            points,
        })
        .collect();
    out.sort_by(|a, b| {
        b.points
            .len()
            .cmp(&a.points.len())
            .then(a.label.cmp(&b.label))
    });
    out.truncate(MAX_FAULTS);
    out
}

fn colour(i: usize) -> &'static str {
    COLOURS[i.min(COLOURS.len() - 1)]
}

/// An SVG histogram of one drawn fault: per bin of its time, the seeds that
/// passed (grey, below) and those that failed, stacked by signature.
fn histogram(d: &Drawn, groups: usize) -> String {
    let lo = d.points.iter().map(|p| p.0).min().unwrap_or_default();
    let hi = d.points.iter().map(|p| p.0).max().unwrap_or_default();
    let span = (hi - lo).as_secs_f64().max(1e-9);
    let bin_of = |at: Duration| {
        (((at - lo).as_secs_f64() / span) * BINS as f64).min(BINS as f64 - 1.0) as usize
    };
    // counts[bin][0] = passes, counts[bin][1 + g] = seeds whose first signature is g.
    let mut counts = vec![vec![0u64; groups + 1]; BINS];
    for (at, outcome) in &d.points {
        counts[bin_of(*at)][outcome.map_or(0, |g| g + 1)] += 1;
    }
    let top = counts
        .iter()
        .map(|c| c.iter().sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1);
    let (w, h, pad) = (880.0, 150.0, 30.0);
    let bw = (w - 2.0 * pad) / BINS as f64;
    let mut s = format!(
        r#"<svg class="hist" viewBox="0 0 {w} {}" width="{w}" height="{}" role="img" aria-label="outcomes against the time of {}">"#,
        h + 34.0,
        h + 34.0,
        esc(&d.label)
    );
    for (b, c) in counts.iter().enumerate() {
        let from = lo + Duration::from_secs_f64(span * b as f64 / BINS as f64);
        let to = lo + Duration::from_secs_f64(span * (b + 1) as f64 / BINS as f64);
        let x = pad + b as f64 * bw;
        let mut y = h;
        let failed: u64 = c[1..].iter().sum();
        let _ = write!(
            s,
            r#"<g class="bin" data-from="{:.6}" data-to="{:.6}" data-pass="{}" data-fail="{failed}"><title>{}–{}: {} pass, {failed} fail</title>"#,
            from.as_secs_f64(),
            to.as_secs_f64(),
            c[0],
            fmt_duration(from),
            fmt_duration(to),
            c[0]
        );
        for (k, n) in c.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let bh = (h - 8.0) * *n as f64 / top as f64;
            y -= bh;
            let fill = if k == 0 { "#d0d5dd" } else { colour(k - 1) };
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{bh:.1}" fill="{fill}"/>"#,
                (bw - 1.0).max(1.0)
            );
        }
        s.push_str("</g>");
    }
    let _ = write!(
        s,
        r##"<line x1="{pad}" y1="{h}" x2="{}" y2="{h}" stroke="#98a2b3"/>"##,
        w - pad
    );
    for i in 0..=4 {
        let t = lo + Duration::from_secs_f64(span * i as f64 / 4.0);
        let x = pad + (w - 2.0 * pad) * i as f64 / 4.0;
        let _ = write!(
            s,
            r##"<text x="{x:.1}" y="{}" font-size="11" fill="#667085" text-anchor="middle">{}</text>"##,
            h + 16.0,
            fmt_duration(t)
        );
    }
    let _ = write!(
        s,
        r##"<text x="{pad}" y="12" font-size="11" fill="#667085">{top} seeds</text></svg>"##
    );
    s
}

/// Per signature: the span of this fault's time over the seeds that show it.
fn windows(d: &Drawn, groups: &[String]) -> String {
    let mut s = String::from("<ul class=\"windows\">");
    for (g, sig) in groups.iter().enumerate() {
        let times: Vec<Duration> = d
            .points
            .iter()
            .filter(|p| p.1 == Some(g))
            .map(|p| p.0)
            .collect();
        let (Some(lo), Some(hi)) = (times.iter().min(), times.iter().max()) else {
            continue;
        };
        let _ = write!(
            s,
            r#"<li data-signature="{}"><span class="swatch" style="background:{}"></span>{} seeds with <code>{}</code> first: {} at {}–{}</li>"#,
            esc(sig),
            colour(g),
            times.len(),
            esc(sig),
            esc(&d.label),
            fmt_duration(*lo),
            fmt_duration(*hi)
        );
    }
    let passed = d.points.iter().filter(|p| p.1.is_none()).count();
    let _ = write!(
        s,
        r#"<li><span class="swatch" style="background:#d0d5dd"></span>{passed} seeds pass</li></ul>"#
    );
    s
}

const PAGE_STYLE: &str = r#"
table.sigs { border-collapse: collapse; margin: 6px 0; }
table.sigs td, table.sigs th { border-top: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
table.sigs td.n { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
ul.windows { list-style: none; padding: 0; margin: 4px 0 0; } ul.windows li { margin: 2px 0; }
svg.hist { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 8px; }
"#;

/// The sweep's page: self-contained, no network access when opened.
pub fn html(v: &SweepView) -> String {
    let r = v.results;
    let groups = r.groups();
    let order: BTreeMap<String, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.signature.clone(), i))
        .collect();
    let names: Vec<String> = groups.iter().map(|g| g.signature.clone()).collect();
    let title = format!("mcpsim sweep — {} on {}", v.scenario, v.stack);
    let summary = r.summary(v.scenario, v.stack);
    let first_line = summary.lines().next().unwrap_or_default();
    let verdict = if r.failed == 0 && r.errors.is_empty() {
        "verdict-pass"
    } else {
        "verdict-fail"
    };
    let mut s = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}{PAGE_STYLE}</style></head><body>\n",
        esc(&title)
    );
    let _ = writeln!(
        s,
        r#"<h1>{}</h1><div class="sub">seeds {} · <span id="summary" class="{verdict}" data-judged="{}" data-failed="{}" data-errors="{}">{}</span></div>"#,
        esc(&title),
        esc(&v.seeds),
        r.judged,
        r.failed,
        r.errors.len(),
        esc(first_line)
    );
    s.push_str("<h2>Signatures</h2>\n");
    if groups.is_empty() {
        s.push_str("<p>No seed failed.</p>\n");
    } else {
        s.push_str("<table class=\"sigs\"><tr><th>seeds</th><th>share</th><th>signature</th><th>first seeds and replay</th></tr>\n");
        for (i, g) in groups.iter().enumerate() {
            let first: Vec<String> = g.first.iter().map(u64::to_string).collect();
            let replay = replay_command(v.scenario, g.first.first().copied().unwrap_or(0), v.stack);
            let _ = writeln!(
                s,
                r#"<tr class="signature" data-signature="{}" data-count="{}"><td class="n">{}</td><td class="n">{:.1}%</td><td><span class="swatch" style="background:{}"></span>{}</td><td>{}{}<br><code>{}</code></td></tr>"#,
                esc(&g.signature),
                g.count,
                g.count,
                100.0 * g.count as f64 / r.judged.max(1) as f64,
                colour(i),
                esc(&g.signature),
                first.join(", "),
                if g.count > g.first.len() as u64 {
                    ", …"
                } else {
                    ""
                },
                esc(&replay)
            );
        }
        s.push_str("</table>\n");
    }
    if !r.errors.is_empty() {
        s.push_str("<h2>Seeds mcpsim could not judge</h2><ul>\n");
        for e in &r.errors {
            let _ = writeln!(
                s,
                "<li class=\"internal-error\">seed {}: {}</li>",
                e.seed,
                esc(&e.error)
            );
        }
        s.push_str("</ul>\n");
    }
    let drawn = drawn(&r.rows, &order);
    s.push_str("<h2>Outcomes against each drawn fault time</h2>\n");
    if drawn.is_empty() {
        s.push_str("<p>No fault of this sweep is drawn at a time that varies between seeds.</p>\n");
    }
    for d in &drawn {
        let _ = writeln!(
            s,
            r#"<section class="drawn" data-fault="{}"><h3>{} <small class="sub">({} seeds)</small></h3>{}{}</section>"#,
            esc(&d.label),
            esc(&d.label),
            d.points.len(),
            histogram(d, names.len()),
            windows(d, &names)
        );
    }
    let failing: Vec<&SeedRow> = r
        .rows
        .iter()
        .filter(|x| x.error.is_none() && !x.passed())
        .collect();
    if !failing.is_empty() {
        let _ = writeln!(
            s,
            "<h2>Failing seeds</h2><table class=\"sigs\"><tr><th>seed</th><th>signatures</th><th>replay</th></tr>"
        );
        for x in failing.iter().take(MAX_LISTED) {
            let _ = writeln!(
                s,
                r#"<tr class="failing-seed" data-seed="{}"><td class="n">{}</td><td>{}</td><td><code>{}</code></td></tr>"#,
                x.seed,
                x.seed,
                esc(&x.signatures().join(" · ")),
                esc(&replay_command(v.scenario, x.seed, v.stack))
            );
        }
        s.push_str("</table>\n");
        if failing.len() > MAX_LISTED {
            let _ = writeln!(
                s,
                "<p class=\"sub\">{} more failing seeds are in the JUnit report and the --json lines.</p>",
                failing.len() - MAX_LISTED
            );
        }
    }
    s.push_str("</body></html>\n");
    s
}
