//! Regressions first: every file in sims/regressions/ (written by
//! `mcpsim bisect`) must still fail with its recorded signature on the stack it
//! names, with its seed, and still pass on every stack it passed on when it was
//! written. (Named to sort first: cargo runs test targets by name.)

use mcpsim::scenario;
use mcpsim::sim;

#[test]
fn every_recorded_regression_still_reproduces() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sims/regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("sims/regressions exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no regression files in {}",
        dir.display()
    );
    let mut problems = Vec::new();
    for path in &files {
        let sc = scenario::load(&path.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
        let reg = sc
            .regression
            .clone()
            .unwrap_or_else(|| panic!("{} has no [regression] table", path.display()));
        assert!(sc.is_exact(), "{} has random parts left", path.display());
        let o = sim::run(&sc, reg.seed, &reg.stack)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if !o.failures.iter().any(|f| f.signature == reg.signature) {
            problems.push(format!(
                "{}: no longer fails with {:?} on {} (got {:?})",
                path.display(),
                reg.signature,
                reg.stack,
                o.failures.iter().map(|f| &f.signature).collect::<Vec<_>>()
            ));
        }
        for other in &reg.fixed_on {
            let o = sim::run(&sc, reg.seed, other)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if o.failures.iter().any(|f| f.signature == reg.signature) {
                problems.push(format!(
                    "{}: fails with {:?} on {other} again",
                    path.display(),
                    reg.signature
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
