//! The scenario format under a seeded mutator: a few hundred cases here
//! (`mcpsim fuzz --cases 10000` runs more, FINDINGS.md has its counts). Each
//! case is a shipped scenario mutated, or a document made from scratch; each
//! must be rejected with one bounded line, or realise into a scenario mcpsim
//! accepts again and run to a verdict within its duration — never a panic
//! or an internal error.

use mcpsim::explore::fuzz::{self, Outcome};

#[test]
fn every_mutant_is_one_bounded_error_line_or_a_valid_run() {
    let counts = fuzz::fuzz(0, 300, |_, _| {});
    assert!(
        counts.broken.is_empty(),
        "{} of {} cases broke the contract:\n{}",
        counts.broken.len(),
        counts.total(),
        counts
            .broken
            .iter()
            .map(|(c, w)| format!("  case {c}: {w}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The mutator reaches both sides of the contract.
    assert!(counts.rejected > 50, "{counts:?}");
    assert!(counts.ran + counts.realised > 20, "{counts:?}");
}

#[test]
fn the_issue_shapes_are_rejected_with_one_line() {
    // The shapes the hardening issue found accepted: each is one line naming
    // the file, the line and the field.
    let base = "name = \"x\"\nduration = \"2s\"\n[[client]]\nname = \"c1\"\n";
    let cases = [
        (
            format!(
                "{base}script = [{{ initialize = {{}} }}]\n[network]\nlatency = [\"1ms\", \"20ms\", \"extra\", 42]\n"
            ),
            "network.latency",
        ),
        (
            format!("{base}script = [{{ initialize = [\"not-a-version\", \"x\"] }}]\n"),
            "client[0].script[0].initialize",
        ),
        (
            format!(
                "{base}script = [{{ initialize = {{}} }}]\n[expect]\nseeds = \"0..2\"\n\"native\" = {{ fails = [\"leak\", 3] }}\n"
            ),
            "expect.native.fails[1]",
        ),
        (
            format!(
                "{base}origin = \"http://x\\r\\nEvil: 1\"\nscript = [{{ initialize = {{}} }}]\n"
            ),
            "client[0].origin",
        ),
        (
            format!("{base}read_timeout = \"0s\"\nscript = [{{ initialize = {{}} }}]\n"),
            "client[0].read_timeout",
        ),
        (
            format!(
                "{base}script = [{{ initialize = {{}} }}]\n[regression]\nstack = [\"native\"]\n"
            ),
            "t.toml:7: invalid type: sequence",
        ),
        (
            format!(
                "{base}script = [{{ initialize = {{}} }}]\norigin2 = \"{}\"\n",
                "y".repeat(1_000_000)
            ),
            "origin2",
        ),
    ];
    for (text, field) in &cases {
        let e = mcpsim::scenario::parse(text, "t.toml").expect_err(field);
        let line = e.to_string();
        assert!(line.starts_with("t.toml:"), "{line}");
        assert!(line.contains(field), "{field}: {line}");
        assert!(
            !line.contains('\n') && line.chars().count() < fuzz::MAX_ERROR_CHARS,
            "{line}"
        );
    }
    // 201 clients: past the format's limit, not into turmoil's backlog.
    let mut many = String::from("name = \"x\"\nduration = \"2s\"\n");
    for i in 0..201 {
        many.push_str(&format!(
            "[[client]]\nname = \"c{i}\"\nhost = \"h\"\nscript = [{{ initialize = {{}} }}]\n"
        ));
    }
    let e = mcpsim::scenario::parse(&many, "t.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("client[200]") && e.contains("at most 200"),
        "{e}"
    );
    // A swarm whose hosts outnumber its clients realises into a scenario
    // mcpsim accepts, and runs.
    let sw = "name = \"sw\"\nduration = \"3s\"\n[swarm]\nclients = [1, 1]\nhosts = [8, 8]\nfaults = [3, 3]\n";
    let sc = mcpsim::scenario::parse(sw, "t.toml").unwrap();
    for seed in 0..20 {
        let again = mcpsim::scenario::parse(&sc.realise(seed).to_toml(), "r.toml");
        assert!(again.is_ok(), "seed {seed}: {:?}", again.err());
        assert!(mcpsim::sim::run(&sc, seed, "native").is_ok(), "seed {seed}");
    }
    assert!(matches!(fuzz::judge(sw), Outcome::Ran));
}
