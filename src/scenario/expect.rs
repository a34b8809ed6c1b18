//! `[expect]`: what each stack does on a scenario over a range of seeds.
//!
//! ```toml
//! [expect]
//! seeds = "0..20"
//! "python-sdk-1.20" = { fails = ["missing-final-body"] }   # every seed fails, only with these
//! "python-sdk-1.20+fixed" = "pass"                          # every seed passes
//! "python-sdk-1.20+seed-fix" = { sometimes = ["missing-final-body"] }  # some seeds fail, only with these
//! ```
//!
//! `fails` and `sometimes` also require every listed oracle to fire on at
//! least one seed, so an expectation cannot silently outlive the failure it
//! was written for.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Serialize;
use toml::Spanned;

use super::parse::Ctx;
use crate::error::InputError;
use crate::oracles;
use crate::servers;

/// A half-open range of seeds, written `A..B`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedRange {
    /// First seed.
    pub start: u64,
    /// One past the last seed.
    pub end: u64,
}

impl SeedRange {
    /// Parse `A..B` (B exclusive, A < B).
    pub fn parse(s: &str) -> Result<SeedRange, String> {
        let (a, b) = s
            .split_once("..")
            .ok_or_else(|| format!("\"{s}\": use A..B, e.g. 0..100"))?;
        let start: u64 = a
            .trim()
            .parse()
            .map_err(|_| format!("\"{a}\" is not a seed"))?;
        let end: u64 = b
            .trim()
            .parse()
            .map_err(|_| format!("\"{b}\" is not a seed"))?;
        if start >= end {
            return Err(format!("\"{s}\" is empty"));
        }
        Ok(SeedRange { start, end })
    }

    /// The seeds.
    pub fn iter(&self) -> Range<u64> {
        self.start..self.end
    }
}

/// What one stack is expected to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Every seed passes.
    Pass,
    /// Every seed fails, with only these oracles, each at least once.
    Fails(Vec<String>),
    /// Some seeds fail and some pass; failures only with these oracles,
    /// each at least once.
    Sometimes(Vec<String>),
}

/// The `[expect]` table.
#[derive(Debug, Clone, Serialize)]
pub struct Expectations {
    /// The seeds the expectations hold over.
    pub seeds: SeedRange,
    /// Per stack name.
    pub stacks: BTreeMap<String, Expect>,
}

pub(super) fn parse(c: &Ctx, t: &Spanned<toml::Table>) -> Result<Expectations, InputError> {
    let span = t.span();
    let mut seeds = None;
    let mut stacks = BTreeMap::new();
    for (k, v) in t.get_ref() {
        let field = format!("expect.{k}");
        if k == "seeds" {
            let s = v
                .as_str()
                .ok_or(())
                .or_else(|_| c.err(span.clone(), &field, "use a string \"A..B\""))?;
            seeds = Some(SeedRange::parse(s).or_else(|m| c.err(span.clone(), &field, m))?);
            continue;
        }
        if servers::stack(k).is_none() {
            return c.err(
                span.clone(),
                &field,
                format!(
                    "unknown stack (known: {})",
                    servers::stack_names().join(", ")
                ),
            );
        }
        let e = match v {
            toml::Value::String(s) if s == "pass" => Expect::Pass,
            toml::Value::Table(tab)
                if let (1, Some((kind, list))) = (tab.len(), tab.iter().next()) =>
            {
                let names: Vec<String> = list
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                if names.is_empty() {
                    return c.err(
                        span.clone(),
                        format!("{field}.{kind}"),
                        "list at least one oracle",
                    );
                }
                for n in &names {
                    if !oracles::NAMES.contains(&n.as_str()) {
                        return c.err(
                            span.clone(),
                            format!("{field}.{kind}"),
                            format!(
                                "unknown oracle \"{n}\" (known: {})",
                                oracles::NAMES.join(", ")
                            ),
                        );
                    }
                }
                match kind.as_str() {
                    "fails" => Expect::Fails(names),
                    "sometimes" => Expect::Sometimes(names),
                    other => {
                        return c.err(
                            span.clone(),
                            &field,
                            format!("\"{other}\": use fails or sometimes"),
                        );
                    }
                }
            }
            _ => {
                return c.err(
                    span.clone(),
                    &field,
                    "use \"pass\", { fails = [...] } or { sometimes = [...] }",
                );
            }
        };
        stacks.insert(k.clone(), e);
    }
    let seeds = match seeds {
        Some(s) => s,
        None => {
            return c.err(
                span,
                "expect.seeds",
                "say over which seeds, e.g. seeds = \"0..20\"",
            );
        }
    };
    Ok(Expectations { seeds, stacks })
}

/// What one seed did, for judging an expectation.
#[derive(Debug, Clone)]
pub struct SeedVerdict {
    /// The seed.
    pub seed: u64,
    /// The oracles that fired (empty: pass).
    pub oracles: Vec<String>,
}

impl Expect {
    /// Does a range of seeds meet this expectation? `Err` says how not.
    pub fn judge(&self, verdicts: &[SeedVerdict]) -> Result<(), String> {
        let failing: Vec<&SeedVerdict> =
            verdicts.iter().filter(|v| !v.oracles.is_empty()).collect();
        let fired: std::collections::BTreeSet<&str> = failing
            .iter()
            .flat_map(|v| v.oracles.iter().map(String::as_str))
            .collect();
        let first =
            |pred: &dyn Fn(&SeedVerdict) -> bool| verdicts.iter().find(|v| pred(v)).map(|v| v.seed);
        match self {
            Expect::Pass => match failing.first() {
                None => Ok(()),
                Some(v) => Err(format!(
                    "expected every seed to pass; seed {} fails ({})",
                    v.seed,
                    v.oracles.join(", ")
                )),
            },
            Expect::Fails(allowed) | Expect::Sometimes(allowed) => {
                if let Expect::Fails(_) = self
                    && let Some(s) = first(&|v| v.oracles.is_empty())
                {
                    return Err(format!("expected every seed to fail; seed {s} passes"));
                }
                if let Expect::Sometimes(_) = self {
                    if failing.is_empty() {
                        return Err("expected some seeds to fail; none does".into());
                    }
                    if failing.len() == verdicts.len() {
                        return Err("expected some seeds to pass; none does".into());
                    }
                }
                if let Some(extra) = fired.iter().find(|o| !allowed.iter().any(|a| a == *o)) {
                    let s = first(&|v| v.oracles.iter().any(|o| o == extra)).unwrap_or_default();
                    return Err(format!("unexpected oracle {extra} (first on seed {s})"));
                }
                if let Some(missing) = allowed.iter().find(|a| !fired.contains(a.as_str())) {
                    return Err(format!("expected oracle {missing} never fired"));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(seed: u64, oracles: &[&str]) -> SeedVerdict {
        SeedVerdict {
            seed,
            oracles: oracles.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn judge_can_fail_every_way() {
        let mixed = [v(0, &[]), v(1, &["leak"])];
        assert!(
            Expect::Pass
                .judge(&mixed)
                .unwrap_err()
                .contains("seed 1 fails")
        );
        assert!(
            Expect::Fails(vec!["leak".into()])
                .judge(&mixed)
                .unwrap_err()
                .contains("seed 0 passes")
        );
        assert!(Expect::Sometimes(vec!["leak".into()]).judge(&mixed).is_ok());
        assert!(
            Expect::Sometimes(vec!["hang".into()])
                .judge(&mixed)
                .unwrap_err()
                .contains("unexpected oracle leak")
        );
        assert!(
            Expect::Sometimes(vec!["leak".into(), "hang".into()])
                .judge(&mixed)
                .unwrap_err()
                .contains("hang never fired")
        );
        assert!(
            Expect::Sometimes(vec!["leak".into()])
                .judge(&[v(0, &[])])
                .is_err()
        );
        assert!(
            Expect::Sometimes(vec!["leak".into()])
                .judge(&[v(0, &["leak"])])
                .is_err()
        );
        assert!(SeedRange::parse("5..5").is_err() && SeedRange::parse("0..3").is_ok());
    }
}
