//! The library API as a user's test would use it (the README shows this file).

use std::time::Duration;

use mcpsim::Simulation;
use mcpsim::client::script::Step;
use mcpsim::scenario::{FaultKind, Scenario};
use serde_json::json;

#[test]
fn a_catalogue_scenario_fails_on_the_released_stack_and_not_with_the_fix()
-> Result<(), mcpsim::error::Error> {
    let sim = Simulation::named("missing-body")?;
    sim.clone()
        .stack("python-sdk-1.20")
        .run(1)?
        .assert_fails_with("missing-final-body");
    sim.clone()
        .stack("python-sdk-1.20+fixed")
        .run(1)?
        .assert_no("missing-final-body");
    sim.stack("native").run(1)?.assert_passes();
    Ok(())
}

#[test]
fn a_scenario_built_in_code_swept_over_seeds() -> Result<(), mcpsim::error::Error> {
    let sc = Scenario::builder("crash-window")
        .duration(Duration::from_secs(6))
        .client(
            "c1",
            vec![
                Step::initialize(),
                Step::call("slow_operation", json!({"seconds": 2})),
            ],
        )
        .fault_within(
            Duration::ZERO,
            Duration::from_secs(3),
            FaultKind::Crash { host: "c1".into() },
        )
        .build()?;
    let released = Simulation::new(sc.clone())
        .stack("python-sdk-1.20")
        .sweep(0..40)?;
    released.assert_some_fail_with("missing-final-body");
    assert!(!released.failing_seeds().is_empty());
    Simulation::new(sc.clone())
        .stack("python-sdk-1.20+fixed")
        .sweep(0..40)?
        .assert_none_fail_with("missing-final-body");
    Simulation::new(sc)
        .stack("native")
        .sweep(0..40)?
        .assert_all_pass();
    Ok(())
}

#[test]
fn a_built_scenario_is_validated_like_a_file() {
    let err = Scenario::builder("bad")
        .client("c1", vec![Step::initialize()])
        .fault_at(
            Duration::from_secs(1),
            FaultKind::Crash {
                host: "nobody".into(),
            },
        )
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("unknown host \"nobody\""), "{err}");
}

#[test]
#[should_panic(expected = "MCPSIM_SEED=")]
fn a_failed_assertion_says_how_to_replay() {
    let sc = Scenario::builder("fails")
        .client(
            "c1",
            vec![
                Step::initialize(),
                Step::call("slow_operation", json!({"seconds": 2})),
            ],
        )
        .fault_at(
            Duration::from_millis(1250),
            FaultKind::Crash { host: "c1".into() },
        )
        .build()
        .unwrap();
    Simulation::new(sc).run(1).unwrap().assert_passes();
}
