//! pgvector's `vector` type: text input and output, distances and element-wise arithmetic, with
//! pgvector's rules and messages.
//!
//! Input (`vector_in`): optional whitespace, `[`, comma-separated floats (whitespace around each
//! allowed), `]`, optional whitespace. Empty vectors, NaN, infinities, out-of-range floats, junk
//! and more than 16,000 dimensions are rejected with pgvector's messages and codes. Distances are
//! computed in `f64` and returned as `double precision`, as pgvector does: `<->` L2, `<=>` cosine
//! distance (NaN when a norm is zero), `<#>` negative inner product, `<+>` L1.

use vela_engine::catalog::MAX_VECTOR_DIM;

use crate::error::{QueryError, Result};

/// Parses pgvector's text form, `'[1,2,3]'`.
pub fn parse_vector(text: &str) -> Result<Vec<f32>> {
    let invalid = |detail: &str| {
        QueryError::InvalidTextRepresentation(format!(
            "invalid input syntax for type vector: \"{text}\"{detail}"
        ))
    };
    let trimmed = text.trim_start();
    let Some(body) = trimmed.strip_prefix('[') else {
        return Err(invalid(" (Vector contents must start with \"[\".)"));
    };
    let Some(close) = memchr::memchr(b']', body.as_bytes()) else {
        return Err(invalid(""));
    };
    let (inner, rest) = body.split_at(close);
    if !rest.get(1..).unwrap_or("").trim().is_empty() {
        return Err(invalid(" (Junk after closing right brace.)"));
    }
    if inner.trim().is_empty() {
        return Err(QueryError::DataException(
            "vector must have at least 1 dimension".into(),
        ));
    }
    if let Some(values) = parse_elements_fast(inner.as_bytes()) {
        return Ok(values);
    }
    parse_elements(inner, &invalid)
}

/// The elements between the brackets (not all space), one at a time, with pgvector's checks.
fn parse_elements(inner: &str, invalid: &dyn Fn(&str) -> QueryError) -> Result<Vec<f32>> {
    let mut values = Vec::new();
    // One pass over the bytes: elements end at ',' (ASCII, so every cut is a char boundary)
    // and lose pgvector's whitespace (C `isspace`, all ASCII) on both sides.
    let bytes = inner.as_bytes();
    let mut start = 0;
    while start <= bytes.len() {
        let rest = bytes.get(start..).unwrap_or_default();
        let end = rest
            .iter()
            .position(|&b| b == b',')
            .map_or(bytes.len(), |p| start + p);
        let (mut from, mut to) = (start, end);
        while from < to && is_c_space(bytes[from]) {
            from += 1;
        }
        while to > from && is_c_space(bytes[to - 1]) {
            to -= 1;
        }
        let element = inner.get(from..to).ok_or_else(|| invalid(""))?;
        start = end + 1;
        if values.len() >= MAX_VECTOR_DIM as usize {
            return Err(QueryError::ProgramLimitExceeded(format!(
                "vector cannot have more than {MAX_VECTOR_DIM} dimensions"
            )));
        }
        if element.is_empty() || element == "+" {
            return Err(invalid(""));
        }
        let value = parse_f32(element).ok_or_else(|| invalid(""))?;
        if value.is_nan() {
            return Err(QueryError::DataException(
                "NaN not allowed in vector".into(),
            ));
        }
        if value.is_infinite() {
            if element.to_ascii_lowercase().contains("inf") {
                return Err(QueryError::DataException(
                    "infinite value not allowed in vector".into(),
                ));
            }
            return Err(QueryError::NumericOutOfRange(format!(
                "\"{element}\" is out of range for type vector"
            )));
        }
        values.push(value);
    }
    Ok(values)
}

/// C's `isspace` in the "C" locale: what pgvector skips around an element.
fn is_c_space(b: u8) -> bool {
    b <= b' ' && matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// `element.parse::<f32>()`, faster: short plain decimals go through [`parse_f32_fast`], other
/// decimal text through lexical-core's exact parser (correctly rounded, as `str::parse` is);
/// what neither takes — NaN and infinity spellings, malformed text — goes to `str::parse`, so
/// the result is always `str::parse`'s (`tests::parse_f32_equals_str_parse` compares them).
fn parse_f32(element: &str) -> Option<f32> {
    if let Some(v) = parse_f32_fast(element.as_bytes()) {
        return Some(v);
    }
    match lexical_core::parse::<f32>(element.as_bytes()) {
        Ok(v) => Some(v),
        Err(_) => element.parse().ok(),
    }
}

/// Powers of ten exactly representable in an `f64` (up to 10^22).
const EXACT_POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The correctly rounded `f32` of `[+-]?digits[.digits]` with at most 19 digits in all (no
/// exponent) whose digits, read as an integer, are at most 2^53; `None` for anything else
/// (the caller's exact parser takes it). See [`decimal_to_f32`].
fn parse_f32_fast(text: &[u8]) -> Option<f32> {
    let (value, end) = read_decimal(text, 0)?;
    (end == text.len()).then_some(value)
}

/// Reads `[+-]?digits[.digits]` at `text[at..]` as [`decimal_to_f32`] takes it; returns the
/// value and where the text read ends. `None` if there is no digit, more than 19, or
/// [`decimal_to_f32`] refuses.
#[inline]
fn read_decimal(text: &[u8], mut at: usize) -> Option<(f32, usize)> {
    let negative = text.get(at) == Some(&b'-');
    if matches!(text.get(at), Some(b'-' | b'+')) {
        at += 1;
    }
    // Wrapping: past 19 digits the value is wrong, and refused below.
    let mut digits = 0u64;
    let start = at;
    at = read_digits(text, at, &mut digits);
    let mut count = at - start;
    let mut fraction = 0;
    if text.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        at = read_digits(text, at, &mut digits);
        fraction = at - start;
        count += fraction;
    }
    if count == 0 || count > 19 {
        return None;
    }
    Some((decimal_to_f32(digits, fraction, negative)?, at))
}

/// Appends the run of ASCII digits at `text[at..]` to `digits` (wrapping) and returns where it
/// ends.
#[inline]
fn read_digits(text: &[u8], at: usize, digits: &mut u64) -> usize {
    let mut n = 0;
    for &b in text.get(at..).unwrap_or_default() {
        let d = b.wrapping_sub(b'0');
        if d >= 10 {
            break;
        }
        *digits = digits.wrapping_mul(10).wrapping_add(u64::from(d));
        n += 1;
    }
    at + n
}

/// `±digits / 10^fraction` correctly rounded to `f32`, for `digits` <= 2^53 and `fraction` <= 19
/// (so the value is 0 or within [1e-19, 2^53], a normal `f32`); `None` otherwise, or when the
/// shortcut could round wrongly.
///
/// Why it is exact: `digits` and `10^fraction` are exact `f64`s, so their quotient is the
/// value `t` correctly rounded to `f64`, `x`. Rounding `x` to `f32` gives `t`'s `f32` unless
/// an `f32` rounding midpoint lies between `t` and `x` or on `x`; one strictly between would be
/// an `f64` nearer to `t` than `x`, which cannot be, so only `x` itself being a midpoint (its 29
/// low mantissa bits `1000...0`: for a normal `f32` those are exactly the bits rounding drops)
/// is refused.
fn decimal_to_f32(digits: u64, fraction: usize, negative: bool) -> Option<f32> {
    if digits > 1 << 53 {
        return None;
    }
    let x = digits as f64 / *EXACT_POW10.get(fraction)?;
    if x.to_bits() & ((1 << 29) - 1) == 1 << 28 {
        return None;
    }
    let y = x as f32;
    Some(if negative { -y } else { y })
}

/// The elements of a vector's text between the brackets when every one is a plain decimal
/// that [`decimal_to_f32`] takes (with C-space around it); `None` for anything else, left to
/// the general loop of [`parse_vector`] (which then gives the same values, or the error).
fn parse_elements_fast(inner: &[u8]) -> Option<Vec<f32>> {
    // Room for elements of ~8 bytes without growing (the general loop's vectors grow from
    // empty); the dimension limit is left to the general loop's error.
    let mut values = Vec::with_capacity((inner.len() / 8 + 4).min(MAX_VECTOR_DIM as usize));
    let mut at = 0;
    loop {
        if values.len() >= MAX_VECTOR_DIM as usize {
            return None;
        }
        while inner.get(at).is_some_and(|&b| is_c_space(b)) {
            at += 1;
        }
        let (value, end) = read_decimal(inner, at)?;
        values.push(value);
        at = end;
        while inner.get(at).is_some_and(|&b| is_c_space(b)) {
            at += 1;
        }
        match inner.get(at) {
            None => return Some(values),
            Some(b',') => at += 1,
            Some(_) => return None,
        }
    }
}

/// pgvector's text form of a vector: `[1,2.5,-3]` (shortest round-trip float text).
pub fn format_vector(v: &[f32]) -> String {
    let mut out = String::with_capacity(v.len() * 4 + 2);
    out.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format_float(f64::from(*x), true));
    }
    out.push(']');
    out
}

/// Formats a float like PostgreSQL: integers without a fraction, `NaN`, `Infinity`.
pub fn format_float(x: f64, single: bool) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if single {
        format!("{}", x as f32)
    } else {
        format!("{x}")
    }
}

/// Checks that a vector has the dimension a column or cast expects.
pub fn check_expected_dim(expected: u32, v: &[f32]) -> Result<()> {
    if v.len() != expected as usize {
        return Err(QueryError::DataException(format!(
            "expected {expected} dimensions, not {}",
            v.len()
        )));
    }
    Ok(())
}

/// Checks that two operands have the same dimension (pgvector's `CheckDims`).
pub fn check_same_dims(a: &[f32], b: &[f32]) -> Result<()> {
    if a.len() != b.len() {
        return Err(QueryError::DataException(format!(
            "different vector dimensions {} and {}",
            a.len(),
            b.len()
        )));
    }
    Ok(())
}

/// Euclidean distance, `<->`.
pub fn l2_distance(a: &[f32], b: &[f32]) -> Result<f64> {
    check_same_dims(a, b)?;
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let d = f64::from(*x) - f64::from(*y);
            d * d
        })
        .sum();
    Ok(sum.sqrt())
}

/// Inner product (`inner_product`); `<#>` is its negation.
pub fn inner_product(a: &[f32], b: &[f32]) -> Result<f64> {
    check_same_dims(a, b)?;
    Ok(a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum())
}

/// Cosine distance, `<=>`: `1 - cos`, NaN when either norm is zero, clamped to `[0, 2]`.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> Result<f64> {
    check_same_dims(a, b)?;
    let mut dot = 0.0f64;
    let mut na = 0.0f64;
    let mut nb = 0.0f64;
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    let similarity = dot / (na * nb).sqrt();
    if similarity.is_nan() {
        return Ok(f64::NAN);
    }
    Ok(1.0 - similarity.clamp(-1.0, 1.0))
}

/// Manhattan distance, `<+>`.
pub fn l1_distance(a: &[f32], b: &[f32]) -> Result<f64> {
    check_same_dims(a, b)?;
    Ok(a.iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs())
        .sum())
}

/// Euclidean norm (`vector_norm`).
pub fn norm(a: &[f32]) -> f64 {
    a.iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt()
}

/// Element-wise arithmetic on two vectors, with pgvector's overflow check.
pub fn elementwise(a: &[f32], b: &[f32], op: fn(f32, f32) -> f32) -> Result<Vec<f32>> {
    check_same_dims(a, b)?;
    let out: Vec<f32> = a.iter().zip(b).map(|(x, y)| op(*x, *y)).collect();
    if out.iter().any(|x| !x.is_finite()) {
        return Err(QueryError::NumericOutOfRange(
            "value out of range: overflow".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pgvector_literals() {
        assert_eq!(parse_vector("[1,2,3]").unwrap(), vec![1.0, 2.0, 3.0]);
        assert_eq!(
            parse_vector("  [ 1 , -2.5 ,3e1 ]  ").unwrap(),
            vec![1.0, -2.5, 30.0]
        );
        assert_eq!(parse_vector("[1.5]").unwrap(), vec![1.5]);
        assert_eq!(
            parse_vector("[\t1,\n2 ,\r3\x0b,\x0c4]").unwrap(),
            vec![1.0, 2.0, 3.0, 4.0]
        );
        assert_eq!(parse_vector("[1,2,]").unwrap_err().code(), "22P02");
        assert_eq!(parse_vector("[,1]").unwrap_err().code(), "22P02");
        // Only C's whitespace surrounds an element, as in pgvector.
        assert_eq!(parse_vector("[1,\u{a0}2]").unwrap_err().code(), "22P02");
    }

    #[test]
    fn rejects_bad_literals_with_pgvector_codes() {
        let code = |s: &str| parse_vector(s).unwrap_err().code();
        assert_eq!(code("1,2"), "22P02");
        assert_eq!(code("[1,2"), "22P02");
        assert_eq!(code("[1,,2]"), "22P02");
        assert_eq!(code("[1,a]"), "22P02");
        assert_eq!(code("[1,2] x"), "22P02");
        assert_eq!(code("[]"), "22000");
        assert_eq!(code("[ ]"), "22000");
        assert_eq!(code("[NaN]"), "22000");
        assert_eq!(code("[1,inf]"), "22000");
        assert_eq!(code("[-Infinity]"), "22000");
        assert_eq!(code("[1e39]"), "22003");
        assert_eq!(code(""), "22P02");
        let big = format!("[{}]", vec!["1"; 16_001].join(","));
        assert_eq!(code(&big), "54000");
        assert!(parse_vector("[1,a]")
            .unwrap_err()
            .to_string()
            .contains("invalid input syntax for type vector"));
    }

    /// `parse_f32` must be `str::parse::<f32>` exactly: the same `Some`/`None` and the same
    /// bits (any NaN for NaN).
    fn assert_parse_f32_matches(s: &str) {
        let expected = s.parse::<f32>().ok();
        let got = parse_f32(s);
        match (got, expected) {
            (Some(a), Some(b)) if a.is_nan() && b.is_nan() => {}
            (Some(a), Some(b)) => assert_eq!(a.to_bits(), b.to_bits(), "{s:?}: {a} vs {b}"),
            (a, b) => assert_eq!(a, b, "{s:?}"),
        }
    }

    #[test]
    fn parse_f32_equals_str_parse_on_edge_cases() {
        for s in [
            "0",
            "-0",
            "+0",
            "1",
            "+1",
            "-1",
            "1.",
            ".5",
            "+.5",
            "-.5",
            ".",
            "+",
            "-",
            "",
            "1e5",
            "1E5",
            "1e+5",
            "1e-5",
            "1e",
            "1e+",
            "e5",
            ".e5",
            "1.e5",
            "1.5e",
            "1_0",
            "0x10",
            "0x1p3",
            "1,5",
            " 1",
            "1 ",
            "1..2",
            "1e5.5",
            "--1",
            "+-1",
            "00001.5000",
            "nan",
            "NaN",
            "NAN",
            "-nan",
            "+nan",
            "nan(1)",
            "inf",
            "-inf",
            "+inf",
            "Inf",
            "INF",
            "infinity",
            "Infinity",
            "-Infinity",
            "infinit",
            "infinityx",
            "1e38",
            "3.4028235e38",
            "3.4028236e38",
            "3.5e38",
            "1e39",
            "-1e39",
            "1e-38",
            "1e-45",
            "1.4e-45",
            "7e-46",
            "1e-46",
            "1e-400",
            "1e400",
            "1e99999999999",
            "1e-99999999999",
            "1.17549435e-38",
            "0.000000000000000000000000000000000000000000001",
            "16777217",
            "16777216.5",
            "0.1",
            "0.2",
            "0.3",
            "3.14159265358979323846264338327950288",
            "123456789012345678901234567890",
            "9007199254740993",
            "1.00000005960464477539062",
            "1.000000059604644775390625",
            "1.0000000596046447753906251",
            "٣",
            "１",
        ] {
            assert_parse_f32_matches(s);
        }
    }

    /// The fast path alone, where it answers, is `str::parse`'s value; and it answers for the
    /// usual shapes of vector elements (so the tests above do exercise it).
    fn assert_fast_matches(s: &str) -> bool {
        match parse_f32_fast(s.as_bytes()) {
            None => false,
            Some(v) => {
                let want: f32 = s.parse().expect("the fast path took invalid text");
                assert_eq!(v.to_bits(), want.to_bits(), "{s:?}: {v} vs {want}");
                true
            }
        }
    }

    #[test]
    fn fast_path_takes_plain_decimals() {
        for s in [
            "0",
            "-0",
            "+0",
            "1",
            "-1.5",
            "0.1",
            "0.30000001",
            "-0.12345678",
            "123.456",
            "1.",
            ".5",
            "-.5",
            "9007199254740992",
            "0.9007199254740992",
            "0.000000000000000001",
        ] {
            assert!(assert_fast_matches(s), "{s}");
        }
        for s in [
            "",
            "+",
            "-",
            ".",
            "1e5",
            "1..2",
            "1.2.3",
            " 1",
            "1 ",
            "nan",
            "inf",
            "0x1",
            "9007199254740993",
            "16777217",
            "12345678901234567890",
            "0.00000000000000000001",
            "1_0",
            "--1",
        ] {
            assert!(!assert_fast_matches(s), "{s}");
        }
        // An f32 midpoint whose f64 is exact: refused, left to the exact parser.
        let mid = (f64::from(1.0f32) + f64::from(f32::from_bits(1.0f32.to_bits() + 1))) / 2.0;
        let text = format!("{mid}");
        assert!(!assert_fast_matches(&text), "{text}");
        assert_parse_f32_matches(&text);
    }

    /// The general loop's elements, for comparing the fast path with.
    fn general(inner: &str) -> Result<Vec<f32>> {
        parse_elements(inner, &|d: &str| {
            QueryError::InvalidTextRepresentation(format!("invalid: {d}"))
        })
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn fast_elements_take_usual_vectors() {
        for inner in [
            "1,2,3",
            " 0.5 ,\t-0.25,\n+3.0 ",
            "0.83529437,0.12,-0.000001,1234567.8",
            "-0,0,.5,5.",
            "0.1234567890123456",
        ] {
            let fast = parse_elements_fast(inner.as_bytes()).unwrap_or_else(|| panic!("{inner:?}"));
            assert_eq!(
                bits(&fast),
                bits(&general(inner).expect("general")),
                "{inner:?}"
            );
        }
        for inner in [
            "1,,2",
            "1,2,",
            ",1",
            "1 2",
            "1e3",
            "nan",
            "inf",
            "+",
            "-",
            "1,+",
            "1;2",
            "0x1",
            "12345678901234567890",
            "0.123456789012345678",
            "16777217",
            "1.2.3",
            "1,2]",
        ] {
            assert_eq!(parse_elements_fast(inner.as_bytes()), None, "{inner:?}");
        }
        // The dimension limit is left to the general loop's error.
        let many = vec!["1"; MAX_VECTOR_DIM as usize + 1].join(",");
        assert_eq!(parse_elements_fast(many.as_bytes()), None);
        let most = vec!["1"; MAX_VECTOR_DIM as usize].join(",");
        assert_eq!(
            parse_elements_fast(most.as_bytes()).map(|v| v.len()),
            Some(MAX_VECTOR_DIM as usize)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

        /// Vector texts of float elements written every usual way, with spaces and junk: where
        /// the fast path answers, the general loop gives the same bits.
        #[test]
        fn fast_elements_equal_the_general_loop(
            elements in proptest::collection::vec(
                (proptest::num::u32::ANY, 0usize..6, "[ \t]{0,2}", "[ \t]{0,2}"),
                1..20,
            ),
            junk in proptest::option::of((0usize..200, "[-+.,e0-9 x]{1,3}")),
        ) {
            let mut inner = String::new();
            for (i, (b, style, pre, post)) in elements.iter().enumerate() {
                let x = f32::from_bits(*b);
                let x = if x.is_finite() { x } else { 1.5 };
                let text = match style {
                    0 => format!("{x}"),
                    1 => format!("{x:.3}"),
                    2 => format!("{:.9}", x / 1e30),
                    3 => format!("{}", (x / 3e37) as f64),
                    4 => format!("{:.8}", x.fract()),
                    _ => format!("{x:e}"),
                };
                if i > 0 {
                    inner.push(',');
                }
                inner.push_str(pre);
                inner.push_str(&text);
                inner.push_str(post);
            }
            if let Some((at, j)) = junk {
                let mut at = at % (inner.len() + 1);
                while !inner.is_char_boundary(at) {
                    at -= 1;
                }
                inner.insert_str(at, &j);
            }
            if let Some(fast) = parse_elements_fast(inner.as_bytes()) {
                let want = general(&inner);
                proptest::prop_assert!(want.is_ok(), "{:?}: {:?}", inner, want);
                proptest::prop_assert_eq!(bits(&fast), bits(&want.unwrap()), "{:?}", inner);
            }
        }

        /// Plain decimals of up to 19 digits, and every f32 printed with a few fraction
        /// digits: the fast path, where it answers, equals `str::parse`.
        #[test]
        fn fast_path_equals_str_parse(
            s in "[+-]?[0-9]{0,12}(\\.[0-9]{0,12})?",
            bits in proptest::num::u32::ANY,
            digits in 0usize..12,
        ) {
            assert_fast_matches(&s);
            let x = f32::from_bits(bits);
            if x.is_finite() {
                assert_fast_matches(&format!("{x:.digits$}"));
                assert_fast_matches(&format!("{x}"));
                let next = f32::from_bits(bits.wrapping_add(1));
                if next.is_finite() {
                    let mid = (f64::from(x) + f64::from(next)) / 2.0;
                    assert_fast_matches(&format!("{mid}"));
                    assert_fast_matches(&format!("{mid:.digits$}"));
                }
            }
        }

        /// Decimal text of every shape (signs, digits around the point, exponents) and junk.
        #[test]
        fn parse_f32_equals_str_parse(
            s in "[+-]?[0-9]{0,25}(\\.[0-9]{0,25})?([eE][+-]?[0-9]{0,4})?|[0-9eE.+a-z_ -]{0,12}"
        ) {
            assert_parse_f32_matches(&s);
        }

        /// Every f32 (random bits) in the forms it is usually written in, and midpoints
        /// between neighbours (the hardest rounding cases).
        #[test]
        fn parse_f32_equals_str_parse_on_floats(bits in proptest::num::u32::ANY) {
            let x = f32::from_bits(bits);
            for s in [format!("{x}"), format!("{x:e}"), format!("{x:.3}"), format!("{x:.12e}")] {
                assert_parse_f32_matches(&s);
            }
            let next = f32::from_bits(bits.wrapping_add(1));
            if x.is_finite() && next.is_finite() {
                let mid = (f64::from(x) + f64::from(next)) / 2.0;
                for s in [format!("{mid:e}"), format!("{mid:.20e}"), format!("{:e}", mid * (1.0 + 1e-16))] {
                    assert_parse_f32_matches(&s);
                }
            }
        }
    }

    #[test]
    fn distances_match_hand_computed_values() {
        let a = [1.0, 2.0, 3.0];
        let b = [4.0, 6.0, 3.0];
        assert_eq!(l2_distance(&a, &b).unwrap(), 5.0); // sqrt(9 + 16 + 0)
        assert_eq!(l1_distance(&a, &b).unwrap(), 7.0); // 3 + 4 + 0
        assert_eq!(inner_product(&a, &b).unwrap(), 25.0); // 4 + 12 + 9
        let c = cosine_distance(&[1.0, 0.0], &[0.0, 1.0]).unwrap();
        assert_eq!(c, 1.0);
        let c = cosine_distance(&[1.0, 1.0], &[2.0, 2.0]).unwrap();
        assert!(c.abs() < 1e-12);
        assert!(cosine_distance(&[0.0, 0.0], &[1.0, 1.0]).unwrap().is_nan());
        assert_eq!(norm(&[3.0, 4.0]), 5.0);
        let err = l2_distance(&[1.0, 2.0, 3.0], &[1.0, 2.0]).unwrap_err();
        assert_eq!(err.to_string(), "different vector dimensions 3 and 2");
        assert_eq!(err.code(), "22000");
    }

    #[test]
    fn elementwise_and_formatting() {
        let sum = elementwise(&[1.0, 2.0], &[0.5, -2.0], |x, y| x + y).unwrap();
        assert_eq!(format_vector(&sum), "[1.5,0]");
        let err = elementwise(&[f32::MAX], &[f32::MAX], |x, y| x + y).unwrap_err();
        assert_eq!(err.code(), "22003");
    }
}
