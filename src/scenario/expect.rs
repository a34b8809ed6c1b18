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

use super::Ctx;
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
            toml::Value::Table(tab) if tab.len() == 1 => {
                let (kind, list) = tab.iter().next().expect("one entry");
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
