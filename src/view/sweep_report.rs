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
const MAX_LISTED: usize = 100;
/// Signatures given a strip of their own per drawn fault.
const MAX_STRIPS: usize = 8;
/// Colours for the signatures, in the page's order.
const COLOURS: [&str; MAX_STRIPS] = [
    "#d92d20", "#f79009", "#7a5af8", "#0086c9", "#c11574", "#344054", "#b54708", "#6172f3",
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

/// One drawn fault across the seeds: each seed's first time for it and the
/// indices (in the page's order) of every signature the seed shows.
struct Drawn {
    label: String,
    points: Vec<(Duration, Vec<usize>)>,
}

/// The faults whose time varies between seeds, most seeds first.
fn drawn(rows: &[SeedRow], order: &BTreeMap<String, usize>) -> Vec<Drawn> {
    let mut by_label: BTreeMap<&str, Vec<(Duration, Vec<usize>)>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.error.is_none()) {
        let sigs: Vec<usize> = r
            .signatures()
            .iter()
            .filter_map(|s| order.get(s).copied())
            .collect();
        let mut seen: Vec<&str> = Vec::new();
        for (label, at) in &r.faults {
            if seen.contains(&label.as_str()) {
                continue;
            }
            seen.push(label);
            by_label.entry(label).or_default().push((*at, sigs.clone()));
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
    COLOURS[i % COLOURS.len()]
}

/// A time rounded to the millisecond, for axis labels.
fn ms(t: Duration) -> String {
    fmt_duration(Duration::from_millis(
        t.as_secs_f64().mul_add(1000.0, 0.5) as u64
    ))
}

/// One drawn fault as an SVG: on top, how many seeds drew it in each bin of
/// its time; below, a strip per signature (and one for passing seeds) whose
/// bar in each bin is the share of that bin's seeds showing it. Where a
/// strip's bars stand is the signature's race window.
fn strips(d: &Drawn, names: &[String]) -> String {
    let lo = d.points.iter().map(|p| p.0).min().unwrap_or_default();
    let hi = d.points.iter().map(|p| p.0).max().unwrap_or_default();
    let span = (hi - lo).as_secs_f64().max(1e-9);
    let bin_of = |at: Duration| {
        (((at - lo).as_secs_f64() / span) * BINS as f64).min(BINS as f64 - 1.0) as usize
    };
    // Rows: the signatures (at most MAX_STRIPS), then "pass".
    let shown = names.len().min(MAX_STRIPS);
    let mut total = vec![0u64; BINS];
    let mut pass = vec![0u64; BINS];
    let mut with = vec![vec![0u64; BINS]; shown];
    for (at, sigs) in &d.points {
        let b = bin_of(*at);
        total[b] += 1;
        if sigs.is_empty() {
            pass[b] += 1;
        }
        for &g in sigs.iter().filter(|&&g| g < shown) {
            with[g][b] += 1;
        }
    }
    let top = total.iter().copied().max().unwrap_or(1).max(1);
    let (label_w, w, row_h, head_h) = (150.0, 900.0, 34.0, 60.0);
    let plot_w = w - label_w - 12.0;
    let bw = plot_w / BINS as f64;
    let height = head_h + row_h * (shown + 1) as f64 + 26.0;
    let mut s = format!(
        r#"<svg class="hist" viewBox="0 0 {w} {height}" width="{w}" height="{height}" role="img" aria-label="outcomes against the time of {}">"#,
        esc(&d.label)
    );
    let x_of = |b: usize| label_w + b as f64 * bw;
    // The seeds per bin, and each bin's figures for the DOM and the tooltip.
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#667085" text-anchor="end">seeds drawn</text>"##,
        label_w - 8.0,
        head_h - 8.0
    );
    for b in 0..BINS {
        let from = lo + Duration::from_secs_f64(span * b as f64 / BINS as f64);
        let to = lo + Duration::from_secs_f64(span * (b + 1) as f64 / BINS as f64);
        let failed = total[b] - pass[b];
        let bh = (head_h - 24.0) * total[b] as f64 / top as f64;
        let _ = write!(
            s,
            r##"<g class="bin" data-from="{:.6}" data-to="{:.6}" data-pass="{}" data-fail="{failed}"><title>{} to {}: {} seeds, {} pass, {failed} fail</title><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#98a2b3"/></g>"##,
            from.as_secs_f64(),
            to.as_secs_f64(),
            pass[b],
            ms(from),
            ms(to),
            total[b],
            pass[b],
            x_of(b),
            head_h - 4.0 - bh,
            (bw - 1.0).max(1.0)
        );
    }
    let row = |s: &mut String, i: usize, name: &str, fill: &str, counts: &[u64]| {
        let base = head_h + row_h * (i + 1) as f64;
        let _ = write!(
            s,
            r##"<line x1="{label_w}" y1="{base:.1}" x2="{:.1}" y2="{base:.1}" stroke="#e4e7ec"/><text x="{:.1}" y="{:.1}" font-size="11.5" fill="#1d2430" text-anchor="end">{}</text>"##,
            w - 12.0,
            label_w - 8.0,
            base - 10.0,
            esc(name)
        );
        for b in 0..BINS {
            if counts[b] == 0 {
                continue;
            }
            let share = counts[b] as f64 / total[b].max(1) as f64;
            let bh = (row_h - 6.0) * share;
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{fill}"><title>{:.0}% of {} seeds</title></rect>"#,
                x_of(b),
                base - bh,
                (bw - 1.0).max(1.0),
                100.0 * share,
                total[b]
            );
        }
    };
    for (g, counts) in with.iter().enumerate() {
        // The oracle's name: a signature is "oracle @ layer · …" or "oracle · …".
        let oracle = names[g].split([' ', '@', '·']).next().unwrap_or(&names[g]);
        row(
            &mut s,
            g,
            &format!("#{} {oracle}", g + 1),
            colour(g),
            counts,
        );
    }
    row(&mut s, shown, "pass", "#12b76a", &pass);
    let axis = head_h + row_h * (shown + 1) as f64 + 16.0;
    for i in 0..=4 {
        let t = lo + Duration::from_secs_f64(span * i as f64 / 4.0);
        let x = label_w + plot_w * i as f64 / 4.0;
        let _ = write!(
            s,
            r##"<text x="{x:.1}" y="{axis:.1}" font-size="11" fill="#667085" text-anchor="{}">{}</text>"##,
            if i == 4 { "end" } else { "middle" },
            ms(t)
        );
    }
    let _ = write!(
        s,
        r##"<text x="{label_w}" y="12" font-size="11" fill="#667085">{top} seeds in the fullest bin; each strip: the share of a bin's seeds with that signature</text></svg>"##
    );
    s
}

/// Per signature: the span of this fault's time over the seeds that show it.
fn windows(d: &Drawn, names: &[String]) -> String {
    let mut s = String::from("<ul class=\"windows\">");
    for (g, sig) in names.iter().enumerate().take(MAX_STRIPS) {
        let times: Vec<Duration> = d
            .points
            .iter()
            .filter(|p| p.1.contains(&g))
            .map(|p| p.0)
            .collect();
        let (Some(lo), Some(hi)) = (times.iter().min(), times.iter().max()) else {
            continue;
        };
        let _ = write!(
            s,
            r#"<li data-signature="{}"><span class="swatch" style="background:{}"></span>#{} <code>{}</code>: {} seeds, with {} at {} to {}</li>"#,
            esc(sig),
            colour(g),
            g + 1,
            esc(sig),
            times.len(),
            esc(&d.label),
            fmt_duration(*lo),
            fmt_duration(*hi)
        );
    }
    let passed = d.points.iter().filter(|p| p.1.is_empty()).count();
    let _ = write!(
        s,
        r#"<li><span class="swatch" style="background:#12b76a"></span>{passed} seeds pass</li></ul>"#
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
                r#"<tr class="signature" data-signature="{}" data-count="{}"><td class="n">{}</td><td class="n">{:.1}%</td><td>{}{}</td><td>{}{}<br><code>{}</code></td></tr>"#,
                esc(&g.signature),
                g.count,
                g.count,
                100.0 * g.count as f64 / r.judged.max(1) as f64,
                // A colour only for the signatures that have a strip.
                if i < MAX_STRIPS {
                    format!(
                        r#"<span class="swatch" style="background:{}"></span>"#,
                        colour(i)
                    )
                } else {
                    r#"<span class="swatch"></span>"#.to_string()
                },
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
            strips(d, &names),
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
