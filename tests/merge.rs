//! `sweep --shard K/N --json` on several machines, then `mcpsim merge`: the
//! same summary, page and JUnit as one sweep, and bad input when the shards
//! do not cover the range exactly once.

use std::path::PathBuf;
use std::process::{Command, Output};

fn mcpsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcpsim"))
        .args(args)
        .output()
        .expect("run mcpsim")
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("mcpsim-merge-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// `sweep … --shard k/n --json` into a file; its path.
fn shard(range: &str, k: u64, n: u64) -> String {
    let o = mcpsim(&[
        "sweep",
        "slow-tool-disconnect",
        "--seeds",
        range,
        "--shard",
        &format!("{k}/{n}"),
        "--json",
    ]);
    assert!(o.status.code().is_some_and(|c| c <= 1), "{o:?}");
    let p = dir().join(format!("shard-{range}-{k}-{n}.jsonl"));
    std::fs::write(&p, &o.stdout).expect("write shard");
    p.display().to_string()
}

/// A summary without what it cost (" — wall …" or " — merged from …").
fn without_cost(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| l.split(" — ").next().unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

fn testcases(xml: &str) -> usize {
    xml.matches("<testcase ").count()
}

#[test]
fn four_shards_merged_are_one_sweep() {
    let d = dir();
    let whole_xml = d.join("whole.xml").display().to_string();
    let whole = mcpsim(&[
        "sweep",
        "slow-tool-disconnect",
        "--seeds",
        "0..120",
        "--junit",
        &whole_xml,
    ]);
    let files: Vec<String> = (0..4).map(|k| shard("0..120", k, 4)).collect();
    let merged_xml = d.join("merged.xml").display().to_string();
    let merged_html = d.join("merged.html").display().to_string();
    let mut args = vec!["merge"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--junit", &merged_xml, "--html", &merged_html]);
    let merged = mcpsim(&args);
    assert_eq!(merged.status.code(), whole.status.code(), "{merged:?}");
    assert_eq!(without_cost(&merged.stdout), without_cost(&whole.stdout));
    assert!(String::from_utf8_lossy(&merged.stdout).contains("— merged from 4 files"));
    // The sweep fails on some seeds and passes on others: a real comparison.
    let text = String::from_utf8_lossy(&whole.stdout).to_string();
    assert!(text.contains("missing-final-body"), "{text}");
    let (w, m) = (
        std::fs::read_to_string(&whole_xml).expect("whole junit"),
        std::fs::read_to_string(&merged_xml).expect("merged junit"),
    );
    assert_eq!(testcases(&w), 120);
    assert_eq!(testcases(&m), 120);
    assert_eq!(
        w.matches("<failure ").count(),
        m.matches("<failure ").count()
    );
    let page = std::fs::read_to_string(&merged_html).expect("merged page");
    assert!(
        page.contains(r#"data-fault="crash c1""#),
        "the drawn crash is plotted"
    );
    assert!(page.contains(r#"<tr class="signature""#));
}

#[test]
fn shards_that_do_not_cover_the_range_are_bad_input() {
    let files: Vec<String> = (0..4).map(|k| shard("0..40", k, 4)).collect();
    // One shard missing.
    let o = mcpsim(&["merge", &files[0], &files[1], &files[2]]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("10 seeds missing (3, 7, 11, 15, 19, …)"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    // One shard twice.
    let o = mcpsim(&[
        "merge", &files[0], &files[1], &files[2], &files[3], &files[3],
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("10 seeds more than once (3, 7, 11, 15, 19, …)")
    );
    // A shard of another range.
    let other = shard("0..80", 3, 4);
    let o = mcpsim(&["merge", &files[0], &files[1], &files[2], &other]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(":1: sweep.seeds: \"0..80\", where "), "{err}");
}

#[test]
fn a_line_that_is_not_a_sweep_line_is_named_by_file_and_line() {
    let p = dir().join("bad.jsonl");
    let run = mcpsim(&["run", "missing-body", "--seed", "1", "--json"]);
    std::fs::write(&p, &run.stdout).expect("write");
    let o = mcpsim(&["merge", &p.display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.jsonl:1: field \"sweep\": missing"),
        "{err}"
    );
    std::fs::write(&p, "{not json\n").expect("write");
    let o = mcpsim(&["merge", &p.display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.jsonl:1: not a JSON line"));
}
