//! The pictures of a run (`run --html`, `--mermaid`, `--perfetto`) show what
//! the oracles found, where they found it: read back from the rendered text.

use mcpsim::view::{RunView, html, mermaid, perfetto};
use mcpsim::{Simulation, scenario};

fn missing_body() -> mcpsim::sim::Outcome {
    let sc = scenario::load("missing-body").expect("sims/missing-body.toml loads");
    Simulation::new(sc).run(1).expect("the run completes")
}

#[test]
fn the_html_page_marks_the_crash_and_the_missing_final_body_at_their_times() {
    let o = missing_body();
    let mfb = o
        .failures
        .iter()
        .find(|f| f.oracle == "missing-final-body")
        .expect("missing-body seed 1 on python-sdk-1.20 fails with missing-final-body");
    let crash = o.schedule.first().expect("the scenario crashes c1");
    let page = html::render(&RunView::of_run(&o, "replay".into()));
    let at = |t| mcpsim::time::fmt_duration(t);
    assert!(page.contains(r#"<section class="lane" data-host="server">"#));
    assert!(page.contains(r#"<section class="lane" data-host="c1">"#));
    assert!(page.contains(&format!(r#"data-kind="fault" data-at="{}""#, at(crash.at))));
    assert!(page.contains(&format!(
        r#"data-kind="missing-final-body" data-at="{}""#,
        at(mfb.at)
    )));
    assert!(page.contains(&format!(
        r#"data-kind="failure" data-oracle="missing-final-body" data-at="{}""#,
        at(mfb.at)
    )));
    // Self-contained: nothing is fetched when the page opens.
    for needle in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!page.contains(needle), "the page refers out: {needle}");
    }
}

#[test]
fn the_mermaid_diagram_has_the_failure_and_stays_bounded() {
    let o = missing_body();
    let d = mermaid::render(&RunView::of_run(&o, "replay".into()));
    assert!(d.starts_with("sequenceDiagram\n"));
    assert!(d.contains("✗ 1.264s missing-final-body") || d.contains("missing-final-body"));
    assert!(d.contains("Note over C0,H: ⚡"));
    // A long run is cut to its parts around faults and failures.
    let sc = scenario::load("swarm").expect("sims/swarm.toml loads");
    let long = Simulation::new(sc).run(3).expect("the run completes");
    let d = mermaid::render(&RunView::of_run(&long, "replay".into()));
    let lines = d
        .lines()
        .filter(|l| l.contains("->>") || l.contains("-->>"))
        .count();
    assert!(lines <= mermaid::MAX_MESSAGES + 16 * (long.schedule.len() + long.failures.len() + 1));
    for l in d.lines().skip(1) {
        assert!(
            !l.contains(';') && !l.contains('#'),
            "unsafe for Mermaid: {l}"
        );
    }
}

#[test]
fn the_perfetto_trace_has_a_process_per_host_and_the_fault_and_failure() {
    let o = missing_body();
    let p = perfetto::render(&RunView::of_run(&o, "replay".into()));
    let ev = p["traceEvents"].as_array().expect("traceEvents");
    let names: Vec<&str> = ev
        .iter()
        .filter(|e| e["name"] == "process_name")
        .filter_map(|e| e["args"]["name"].as_str())
        .collect();
    assert_eq!(names, ["server", "c1"]);
    assert!(ev.iter().any(|e| e["cat"] == "fault" && e["ph"] == "i"));
    assert!(
        ev.iter()
            .any(|e| e["cat"] == "failure" && e["name"] == "failure: missing-final-body")
    );
    assert!(
        ev.iter()
            .filter(|e| e["ph"] == "X")
            .all(|e| e["dur"].as_f64().is_some_and(|d| d >= 0.0))
    );
}
