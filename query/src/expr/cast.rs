//! Value conversions: explicit casts (`x::vector(3)`, `CAST(x AS BIGINT)`), the implicit ones the
//! binder inserts (bigint -> double, untyped text -> the type context wants), and assignment to a
//! column on INSERT/UPDATE. Failures carry PostgreSQL's codes: `22P02` for unparsable text, `22003`
//! for out-of-range numbers, `22000` for a vector of the wrong dimension.

use vela_engine::catalog::Value;

use crate::error::{QueryError, Result};
use crate::types::SqlType;
use crate::vector;

/// Converts a value to `target`. NULL stays NULL.
pub fn cast_value(value: Value, target: SqlType) -> Result<Value> {
    let cannot =
        |v: &Value| QueryError::mismatch(format!("cannot cast type {} to {target}", value_type(v)));
    Ok(match (value, target) {
        (Value::Null, _) => Value::Null,
        (v, SqlType::Unknown | SqlType::Null) => v,
        (Value::Text(s), SqlType::Text) => Value::Text(s),
        (v, SqlType::Text) => Value::Text(value_to_text(&v)),
        (Value::BigInt(i), SqlType::BigInt) => Value::BigInt(i),
        (Value::BigInt(i), SqlType::Double) => Value::Double(i as f64),
        (Value::BigInt(i), SqlType::Boolean) => Value::Boolean(i != 0),
        (Value::Double(d), SqlType::Double) => Value::Double(d),
        (Value::Double(d), SqlType::BigInt) => Value::BigInt(double_to_bigint(d)?),
        (Value::Boolean(b), SqlType::Boolean) => Value::Boolean(b),
        (Value::Boolean(b), SqlType::BigInt) => Value::BigInt(i64::from(b)),
        (Value::Timestamp(t), SqlType::Timestamp) => Value::Timestamp(t),
        (Value::Text(s), SqlType::BigInt) => Value::BigInt(parse_bigint(&s)?),
        (Value::Text(s), SqlType::Double) => Value::Double(parse_double(&s)?),
        (Value::Text(s), SqlType::Boolean) => Value::Boolean(parse_bool(&s)?),
        (Value::Text(s), SqlType::Timestamp) => Value::Timestamp(parse_timestamp(&s)?),
        (Value::Text(s), SqlType::Vector(dim)) => {
            let v = vector::parse_vector(&s)?;
            if let Some(dim) = dim {
                vector::check_expected_dim(dim, &v)?;
            }
            Value::Vector(v)
        }
        (Value::Vector(v), SqlType::Vector(dim)) => {
            if let Some(dim) = dim {
                vector::check_expected_dim(dim, &v)?;
            }
            Value::Vector(v)
        }
        (v, _) => return Err(cannot(&v)),
    })
}

/// Whether an explicit cast between these types can ever succeed (checked at bind time).
pub fn castable(from: SqlType, to: SqlType) -> bool {
    use SqlType as T;
    if from == to || from.is_untyped() || to == T::Text {
        return true;
    }
    matches!(
        (from, to),
        (T::BigInt, T::Double | T::Boolean)
            | (T::Double, T::BigInt)
            | (T::Boolean, T::BigInt)
            | (T::Text, _)
            | (T::Vector(_), T::Vector(_))
    )
}

/// The SQL type of a runtime value.
pub fn value_type(v: &Value) -> SqlType {
    match v {
        Value::Null => SqlType::Null,
        Value::BigInt(_) => SqlType::BigInt,
        Value::Double(_) => SqlType::Double,
        Value::Text(_) => SqlType::Text,
        Value::Boolean(_) => SqlType::Boolean,
        Value::Timestamp(_) => SqlType::Timestamp,
        Value::Vector(v) => SqlType::Vector(u32::try_from(v.len()).ok()),
    }
}

/// PostgreSQL's text output of a value (`t`/`f` for booleans, `[1,2]` for vectors).
pub fn value_to_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::BigInt(i) => i.to_string(),
        Value::Double(d) => vector::format_float(*d, false),
        Value::Text(s) => s.clone(),
        Value::Boolean(b) => if *b { "true" } else { "false" }.into(),
        Value::Timestamp(t) => format_timestamp(*t),
        Value::Vector(v) => vector::format_vector(v),
    }
}

fn double_to_bigint(d: f64) -> Result<i64> {
    let r = d.round();
    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&r) {
        return Err(QueryError::NumericOutOfRange("bigint out of range".into()));
    }
    Ok(r as i64)
}

fn parse_bigint(s: &str) -> Result<i64> {
    s.trim().parse().map_err(|_| {
        QueryError::InvalidTextRepresentation(format!(
            "invalid input syntax for type bigint: \"{s}\""
        ))
    })
}

fn parse_double(s: &str) -> Result<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "nan" => return Ok(f64::NAN),
        "infinity" | "inf" | "+infinity" => return Ok(f64::INFINITY),
        "-infinity" | "-inf" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    match t.parse::<f64>() {
        Ok(d) if d.is_finite() => Ok(d),
        Ok(_) => Err(QueryError::NumericOutOfRange(format!(
            "\"{t}\" is out of range for type double precision"
        ))),
        Err(_) => Err(QueryError::InvalidTextRepresentation(format!(
            "invalid input syntax for type double precision: \"{s}\""
        ))),
    }
}

fn parse_bool(s: &str) -> Result<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "yes" | "y" | "on" | "1" => Ok(true),
        "f" | "false" | "no" | "n" | "off" | "0" => Ok(false),
        _ => Err(QueryError::InvalidTextRepresentation(format!(
            "invalid input syntax for type boolean: \"{s}\""
        ))),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses `YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]]` into microseconds since the epoch.
pub fn parse_timestamp(s: &str) -> Result<i64> {
    let bad = || {
        QueryError::InvalidTextRepresentation(format!(
            "invalid input syntax for type timestamp: \"{s}\""
        ))
    };
    let t = s.trim();
    let (date, time) = match t.split_once([' ', 'T']) {
        Some((d, tm)) => (d, tm.trim()),
        None => (t, ""),
    };
    let mut dp = date.split('-');
    let num = |p: Option<&str>| -> Result<i64> {
        p.filter(|x| !x.is_empty() && x.len() <= 6 && x.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|x| x.parse().ok())
            .ok_or_else(bad)
    };
    let (y, m, d) = (num(dp.next())?, num(dp.next())?, num(dp.next())?);
    if dp.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let (mut hh, mut mm, mut ss, mut micros) = (0, 0, 0, 0);
    if !time.is_empty() {
        let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
        let mut tp = hms.split(':');
        hh = num(tp.next())?;
        mm = num(tp.next())?;
        ss = match tp.next() {
            Some(x) => num(Some(x))?,
            None => 0,
        };
        if tp.next().is_some() || hh > 23 || mm > 59 || ss > 60 {
            return Err(bad());
        }
        if !frac.is_empty() {
            if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            micros = frac.parse::<i64>().map_err(|_| bad())? * 10i64.pow(6 - frac.len() as u32);
        }
    }
    let days = days_from_civil(y, m, d);
    Ok(((days * 24 + hh) * 60 + mm) * 60_000_000 + ss * 1_000_000 + micros)
}

/// Formats microseconds since the epoch as PostgreSQL does: `2024-01-02 03:04:05[.123456]`.
pub fn format_timestamp(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let base = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if frac == 0 {
        base
    } else {
        format!("{base}.{}", format!("{frac:06}").trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for s in [
            "1970-01-01 00:00:00",
            "2024-02-29 13:45:07.25",
            "1969-12-31 23:59:59",
        ] {
            let t = parse_timestamp(s).unwrap();
            assert_eq!(format_timestamp(t), s);
        }
        assert_eq!(parse_timestamp("1970-01-02").unwrap(), 86_400_000_000);
        assert_eq!(parse_timestamp("2024-13-01").unwrap_err().code(), "22P02");
        assert_eq!(parse_timestamp("garbage").unwrap_err().code(), "22P02");
    }

    #[test]
    fn casts_follow_postgres() {
        assert_eq!(
            cast_value(Value::Text(" 42 ".into()), SqlType::BigInt).unwrap(),
            Value::BigInt(42)
        );
        assert_eq!(
            cast_value(Value::Double(2.5), SqlType::BigInt).unwrap(),
            Value::BigInt(3)
        );
        assert_eq!(
            cast_value(Value::Double(1e300), SqlType::BigInt)
                .unwrap_err()
                .code(),
            "22003"
        );
        assert_eq!(
            cast_value(Value::Text("x".into()), SqlType::BigInt)
                .unwrap_err()
                .code(),
            "22P02"
        );
        let err = cast_value(Value::Text("[1,2]".into()), SqlType::Vector(Some(3))).unwrap_err();
        assert_eq!(err.to_string(), "expected 3 dimensions, not 2");
        assert_eq!(
            cast_value(Value::Vector(vec![1.0, 2.5]), SqlType::Text).unwrap(),
            Value::Text("[1,2.5]".into())
        );
    }
}
