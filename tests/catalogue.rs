//! Every catalogue scenario (sims/*.toml) meets its `[expect]` on every stack
//! it names, over its seed range. Expectations are what the model does; each
//! expected failure is explained in FINDINGS.md.

use mcpsim::scenario::{self, SeedVerdict};
use mcpsim::sim;

#[test]
fn catalogue_meets_its_expectations() {
    let names = scenario::catalogue_names();
    assert!(names.len() >= 5, "catalogue: {names:?}");
    let mut problems = Vec::new();
    let mut judged = 0;
    for name in &names {
        let sc = scenario::load(name).unwrap_or_else(|e| panic!("{e}"));
        let Some(exp) = &sc.expect else { continue };
        for (stack, expect) in &exp.stacks {
            let verdicts: Vec<SeedVerdict> = exp
                .seeds
                .iter()
                .map(|seed| {
                    let o = sim::run(&sc, seed, stack)
                        .unwrap_or_else(|e| panic!("{name} {stack} {seed}: {e}"));
                    let mut oracles: Vec<String> =
                        o.failures.iter().map(|f| f.oracle.to_string()).collect();
                    oracles.sort();
                    oracles.dedup();
                    SeedVerdict { seed, oracles }
                })
                .collect();
            judged += 1;
            if let Err(why) = expect.judge(&verdicts) {
                problems.push(format!("{name} on {stack}: {why}"));
            }
        }
    }
    assert!(judged >= 15, "only {judged} expectations judged");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
