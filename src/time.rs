//! Durations as people write them in scenarios and read them in reports:
//! `"1.250s"`, `"500ms"`, `"2s"`, `"1m"`, `"250us"`.
//!
//! Formatting is exact and stable (it feeds the trace hash): whole
//! milliseconds print with three decimals (`"1.250s"`), anything finer with
//! six (`"1.250300s"`).

use std::time::Duration;

use serde::Serializer;

/// Parse `"<number><unit>"` with unit `us`, `ms`, `s` or `m`. Returns a message
/// suitable for an input error on failure.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("\"{text}\" has no unit (use us, ms, s or m, e.g. \"1.5s\")"))?;
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!("\"{text}\" does not start with a number"));
    }
    let scale_ns: u128 = match unit.trim() {
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        other => {
            return Err(format!(
                "\"{text}\": unknown unit \"{other}\" (use us, ms, s or m)"
            ));
        }
    };
    // Exact decimal arithmetic: "1.250s" must be exactly 1250 ms.
    let (int_part, frac_part) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if frac_part.contains('.') || (int_part.is_empty() && frac_part.is_empty()) {
        return Err(format!("\"{text}\" is not a number"));
    }
    let int: u128 = if int_part.is_empty() {
        0
    } else {
        int_part
            .parse()
            .map_err(|_| format!("\"{text}\" is not a number"))?
    };
    let mut ns = int
        .checked_mul(scale_ns)
        .ok_or_else(|| format!("\"{text}\" is too large"))?;
    let mut place = scale_ns;
    for d in frac_part.chars() {
        place /= 10;
        let digit = d
            .to_digit(10)
            .ok_or_else(|| format!("\"{text}\" is not a number"))? as u128;
        if place == 0 {
            if digit != 0 {
                return Err(format!("\"{text}\" is finer than a nanosecond"));
            }
            continue;
        }
        ns += digit * place;
    }
    let ns = u64::try_from(ns).map_err(|_| format!("\"{text}\" is too large"))?;
    Ok(Duration::from_nanos(ns))
}

/// `"1.250s"` (or `"1.250300s"` below millisecond resolution).
pub fn fmt_duration(d: Duration) -> String {
    let micros = d.as_micros();
    if micros.is_multiple_of(1000) {
        let ms = micros / 1000;
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    } else {
        format!("{}.{:06}s", micros / 1_000_000, micros % 1_000_000)
    }
}

/// serde helper: a duration as [`fmt_duration`] text.
pub fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&fmt_duration(*d))
}

/// serde helper for `Option<Duration>`.
pub fn ser_opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&fmt_duration(*d)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        assert_eq!(parse_duration("1.250s"), Ok(Duration::from_millis(1250)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("2 hours").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1.2.3s").is_err());
    }

    #[test]
    fn formats_stably() {
        assert_eq!(fmt_duration(Duration::from_millis(1250)), "1.250s");
        assert_eq!(fmt_duration(Duration::ZERO), "0.000s");
        assert_eq!(fmt_duration(Duration::from_micros(1_250_300)), "1.250300s");
    }
}
