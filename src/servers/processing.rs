//! The time a server process spends on its own work, and a busy host.
//!
//! Virtual time in a simulation moves only when something waits: on the
//! network, on a timer. Code between two awaits takes no virtual time at
//! all, where a real interpreter takes milliseconds — and those
//! milliseconds are windows in which a client can close, a partition can
//! land, a shutdown can arrive. A stack that models its own processing time
//! (the Python model does: [`crate::servers::python_sdk::cost`]) draws each
//! cost from [`Processing::rng`], the run's `server-cost/<incarnation>`
//! stream, and multiplies it by the host's [`Load`], which the harness raises
//! for a `slow` fault (a busy host) and lowers when it ends. A stack without
//! a cost model ignores all of this; the harness then reports a `slow` fault
//! on it as having nothing to slow ([`crate::servers::ServerStack::models_cost`]).
//!
//! Nothing here reads the wall clock: in simulation the costs advance
//! virtual time, under `mcpsim serve` they are real sleeps.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Whether a stack that models its processing time charges it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CostMode {
    /// Each modelled step costs what the real stack was measured to take
    /// (the default: it is the more faithful model, FINDINGS §19).
    #[default]
    Calibrated,
    /// Nothing costs time: the model as it was before it had costs, where
    /// only waiting moves virtual time.
    Zero,
}

impl CostMode {
    /// The word used in scenario files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            CostMode::Calibrated => "calibrated",
            CostMode::Zero => "zero",
        }
    }

    /// Parse `"calibrated"` or `"zero"`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "calibrated" => Ok(CostMode::Calibrated),
            "zero" => Ok(CostMode::Zero),
            other => Err(format!("\"{other}\": use \"calibrated\" or \"zero\"")),
        }
    }
}

/// A load factor in hundredths: `Factor(2000)` is ×20, `Factor(100)` no
/// load. Integer, so that a cost times a factor is the same on every machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Factor(pub u32);

impl Factor {
    /// No load: ×1.
    pub const ONE: Factor = Factor(100);
    /// The largest factor a scenario may ask for.
    pub const MAX: Factor = Factor(100_000);

    /// Parse a factor as written (`20`, `2.5`, `1.25`): at least 1, at most
    /// 1000, at most two decimals.
    pub fn parse(text: &str) -> Result<Factor, String> {
        let t = text.trim();
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        let bad =
            || format!("\"{text}\" is not a factor (use a number from 1 to 1000, e.g. 20 or 2.5)");
        if int.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || int.len() > 4
        {
            return Err(bad());
        }
        if frac.len() > 2 {
            return Err(format!("\"{text}\": at most two decimals"));
        }
        let whole: u32 = int.parse().map_err(|_| bad())?;
        let hundredths: u32 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
        let f = Factor(whole * 100 + hundredths);
        if f < Factor::ONE || f > Factor::MAX {
            return Err(format!("\"{text}\": use a factor from 1 to 1000"));
        }
        Ok(f)
    }

    /// `d` times the factor, rounded down to the nanosecond.
    pub fn apply(self, d: Duration) -> Duration {
        let ns = d.as_nanos() * u128::from(self.0) / 100;
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

impl std::fmt::Display for Factor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{whole}"),
            x if x % 10 == 0 => write!(f, "{whole}.{}", x / 10),
            x => write!(f, "{whole}.{x:02}"),
        }
    }
}

/// How busy the host is: what its process's costs are multiplied by. One per
/// server host, shared by every process that host runs, so that a busy host
/// stays busy across a restart.
#[derive(Debug, Clone)]
pub struct Load(Rc<Cell<Factor>>);

impl Default for Load {
    fn default() -> Self {
        Load(Rc::new(Cell::new(Factor::ONE)))
    }
}

impl Load {
    /// The factor now.
    pub fn factor(&self) -> Factor {
        self.0.get()
    }

    /// Set by the harness (a `slow` fault, and its end).
    pub fn set(&self, f: Factor) {
        self.0.set(f);
    }
}

/// What a process needs to charge its processing time.
pub struct Processing {
    /// Calibrated or zero.
    pub mode: CostMode,
    /// The draws: the run's `server-cost/<incarnation>` stream.
    pub rng: ChaCha8Rng,
    /// The grid virtual time moves on (the scenario's tick; 1 ms for real).
    pub tick: Duration,
    /// The host's load.
    pub load: Load,
}

impl Default for Processing {
    /// Nothing charged (what a process that took its processing elsewhere
    /// leaves behind).
    fn default() -> Self {
        Processing {
            mode: CostMode::Zero,
            rng: crate::rng::Seeds::new(0).stream("server-cost/none"),
            tick: Duration::from_millis(1),
            load: Load::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_parse_and_print_exactly() {
        assert_eq!(Factor::parse("20"), Ok(Factor(2000)));
        assert_eq!(Factor::parse("2.5"), Ok(Factor(250)));
        assert_eq!(Factor::parse("1.25"), Ok(Factor(125)));
        assert_eq!(Factor::parse("1"), Ok(Factor::ONE));
        assert!(Factor::parse("0.5").is_err());
        assert!(Factor::parse("1.255").is_err());
        assert!(Factor::parse("1001").is_err());
        assert!(Factor::parse("-2").is_err());
        assert!(Factor::parse("x").is_err());
        assert!(Factor::parse("").is_err());
        assert_eq!(Factor(2000).to_string(), "20");
        assert_eq!(Factor(250).to_string(), "2.5");
        assert_eq!(Factor(125).to_string(), "1.25");
        assert_eq!(
            Factor(250).apply(Duration::from_micros(400)),
            Duration::from_micros(1000)
        );
    }
}
