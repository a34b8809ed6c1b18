//! The shape a scenario file must have before its fields are read.
//!
//! serde reads a struct from a TOML array by position and drops what is
//! left over, so `latency = ["1ms", "20ms", "extra", 42]` would pass for
//! `{ min = "1ms", max = "20ms" }` and `initialize = ["x"]` for `{ protocol =
//! "x" }`. Nothing a user wrote may be lost silently: this check walks the
//! parsed document, with every value's span, and rejects an array where a
//! table belongs, and anything but strings in a list of names — each as one
//! line naming the file, the line and the field — before serde sees it.

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::parse::Ctx;
use crate::error::InputError;

/// The keys whose value is a table, at the top level of a scenario.
const TABLES: [&str; 6] = [
    "server",
    "network",
    "expect",
    "swarm",
    "chaos",
    "regression",
];
/// The keys whose value is an array of tables.
const TABLE_ARRAYS: [&str; 2] = ["client", "fault"];
/// Within a script step, the actions whose value is a table.
const STEP_TABLES: [&str; 5] = ["initialize", "vanish", "listen", "goodbye", "ping"];

/// The format's size limits, enforced on the whole document before anything
/// is read (the README lists them with the field-level ones).
pub const MAX_STRING_CHARS: usize = 4096;
/// The most entries an array (a script, the faults, a list) may have.
pub const MAX_ARRAY_LEN: usize = 1000;
/// The most keys one table may have.
pub const MAX_TABLE_KEYS: usize = 1000;
/// The deepest tables and arrays may nest (a step's `args` included).
pub const MAX_DEPTH: usize = 16;

/// Check `text`'s shape (its syntax is checked by the caller's parse).
pub(super) fn check(c: &Ctx) -> Result<(), InputError> {
    let Ok(doc) = DeTable::parse(c.text) else {
        // A syntax error: the typed parse reports it with its position.
        return Ok(());
    };
    let root = doc.get_ref();
    for (k, v) in root.iter() {
        limits(c, v, k.get_ref().as_ref(), 1)?;
    }
    if root.len() > MAX_TABLE_KEYS {
        return c.err(
            doc.span(),
            "(file)",
            format!("more than {MAX_TABLE_KEYS} keys"),
        );
    }
    let doc = root;
    for (k, v) in doc.iter() {
        let key = k.get_ref().as_ref();
        if TABLES.contains(&key) {
            let t = table(c, v, key)?;
            match key {
                "network" => {
                    for (nk, nv) in t.iter() {
                        let nk = nk.get_ref().as_ref();
                        if matches!(nk, "latency" | "links") {
                            table(c, nv, &format!("network.{nk}"))?;
                        }
                    }
                }
                "server" => {
                    for (sk, sv) in t.iter() {
                        let sk = sk.get_ref().as_ref();
                        if matches!(sk, "allowed_hosts" | "allowed_origins") {
                            strings(c, sv, &format!("server.{sk}"))?;
                        }
                    }
                }
                "expect" => {
                    for (stack, e) in t.iter() {
                        let stack = stack.get_ref().as_ref();
                        if let DeValue::Table(inner) = e.get_ref() {
                            for (kind, list) in inner.iter() {
                                strings(c, list, &format!("expect.{stack}.{}", kind.get_ref()))?;
                            }
                        }
                    }
                }
                "chaos" | "swarm" => {
                    for (sk, sv) in t.iter() {
                        let sk = sk.get_ref().as_ref();
                        if matches!(sk, "kinds" | "window" | "slow" | "latency_max" | "modes") {
                            strings(c, sv, &format!("{key}.{sk}"))?;
                        }
                    }
                }
                "regression" => {
                    for (rk, rv) in t.iter() {
                        if rk.get_ref().as_ref() == "fixed_on" {
                            strings(c, rv, "regression.fixed_on")?;
                        }
                    }
                }
                _ => {}
            }
        } else if TABLE_ARRAYS.contains(&key) {
            for (i, item) in array(c, v, key)?.iter().enumerate() {
                let field = format!("{key}[{i}]");
                let t = table(c, item, &field)?;
                if key == "client" {
                    for (ck, cv) in t.iter() {
                        if ck.get_ref().as_ref() == "script" {
                            script(c, cv, &format!("{field}.script"))?;
                        }
                    }
                } else {
                    for (fk, fv) in t.iter() {
                        let fk = fk.get_ref().as_ref();
                        if matches!(fv.get_ref(), DeValue::Array(_)) {
                            strings(c, fv, &format!("{field}.{fk}"))?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Every string, array and table within the limits, however deep.
fn limits(c: &Ctx, v: &Spanned<DeValue>, field: &str, depth: usize) -> Result<(), InputError> {
    if depth > MAX_DEPTH {
        return c.err(
            v.span(),
            field,
            format!("nested deeper than {MAX_DEPTH} levels"),
        );
    }
    match v.get_ref() {
        DeValue::String(s) if s.chars().count() > MAX_STRING_CHARS => c.err(
            v.span(),
            field,
            format!("a string longer than {MAX_STRING_CHARS} characters"),
        ),
        DeValue::Array(a) => {
            if a.len() > MAX_ARRAY_LEN {
                return c.err(
                    v.span(),
                    field,
                    format!("more than {MAX_ARRAY_LEN} entries"),
                );
            }
            for (i, item) in a.iter().enumerate() {
                limits(c, item, &format!("{field}[{i}]"), depth + 1)?;
            }
            Ok(())
        }
        DeValue::Table(t) => {
            if t.len() > MAX_TABLE_KEYS {
                return c.err(v.span(), field, format!("more than {MAX_TABLE_KEYS} keys"));
            }
            for (k, item) in t.iter() {
                let key = k.get_ref();
                if key.chars().count() > MAX_STRING_CHARS {
                    return c.err(
                        k.span(),
                        field,
                        format!("a key longer than {MAX_STRING_CHARS} characters"),
                    );
                }
                limits(c, item, &format!("{field}.{key}"), depth + 1)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn script(c: &Ctx, v: &Spanned<DeValue>, field: &str) -> Result<(), InputError> {
    for (j, step) in array(c, v, field)?.iter().enumerate() {
        let f = format!("{field}[{j}]");
        let t = table(c, step, &f)?;
        for (sk, sv) in t.iter() {
            let sk = sk.get_ref().as_ref();
            if STEP_TABLES.contains(&sk) {
                table(c, sv, &format!("{f}.{sk}"))?;
            } else if sk == "sleep" && matches!(sv.get_ref(), DeValue::Array(_)) {
                strings(c, sv, &format!("{f}.sleep"))?;
            }
        }
    }
    Ok(())
}

fn kind(v: &DeValue) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn table<'a, 'i>(
    c: &Ctx,
    v: &'a Spanned<DeValue<'i>>,
    field: &str,
) -> Result<&'a DeTable<'i>, InputError> {
    match v.get_ref() {
        DeValue::Table(t) => Ok(t),
        other => c.err(
            v.span(),
            field,
            format!(
                "expected a table ({{ key = value, … }}), found {}",
                kind(other)
            ),
        ),
    }
}

fn array<'a, 'i>(
    c: &Ctx,
    v: &'a Spanned<DeValue<'i>>,
    field: &str,
) -> Result<&'a DeArray<'i>, InputError> {
    match v.get_ref() {
        DeValue::Array(a) => Ok(a),
        other => c.err(
            v.span(),
            field,
            format!("expected an array, found {}", kind(other)),
        ),
    }
}

fn strings(c: &Ctx, v: &Spanned<DeValue>, field: &str) -> Result<(), InputError> {
    let Ok(items) = array(c, v, field) else {
        // Not an array: the field's own check says what it wants.
        return Ok(());
    };
    for (i, item) in items.iter().enumerate() {
        if !matches!(item.get_ref(), DeValue::String(_)) {
            return c.err(
                item.span(),
                format!("{field}[{i}]"),
                format!("expected a string, found {}", kind(item.get_ref())),
            );
        }
    }
    Ok(())
}
