//! Scalar functions: pgvector's (`l2_distance`, `cosine_distance`, `inner_product`, `l1_distance`,
//! `vector_dims`, `vector_norm`) and a few of PostgreSQL's (`abs`, `lower`, `upper`, `length`,
//! `substr`, `left`, `right`, `btrim`/`ltrim`/`rtrim`, `concat`, `round`, `floor`, `ceil`,
//! `sqrt`, `coalesce`; `substring(x FROM a FOR b)` and `trim(... FROM x)` bind to these). Each resolves at bind time to a signature: the
//! types its arguments are coerced to and its result type. Unknown names and wrong argument counts
//! are `42883`, as in PostgreSQL.

use vela_engine::catalog::Value;

use super::cast::value_to_text;
use crate::error::{QueryError, Result};
use crate::types::SqlType;
use crate::vector;

/// A resolved scalar function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarFunc {
    L2Distance,
    CosineDistance,
    InnerProduct,
    L1Distance,
    VectorDims,
    VectorNorm,
    Abs,
    Lower,
    Upper,
    Length,
    Round,
    Floor,
    Ceil,
    Sqrt,
    Coalesce,
    /// `substr(s, from [, count])`, 1-based, as PostgreSQL.
    Substr,
    Left,
    Right,
    /// `btrim(s [, chars])`: both ends.
    BTrim,
    LTrim,
    RTrim,
    /// `concat(...)`: text of each non-NULL argument.
    Concat,
    /// `round(x, digits)`.
    RoundTo,
}

/// A function's argument types (after coercion) and result type.
pub struct Signature {
    pub func: ScalarFunc,
    pub args: Vec<SqlType>,
    pub result: SqlType,
}

impl ScalarFunc {
    /// The SQL name.
    pub fn name(self) -> &'static str {
        match self {
            ScalarFunc::L2Distance => "l2_distance",
            ScalarFunc::CosineDistance => "cosine_distance",
            ScalarFunc::InnerProduct => "inner_product",
            ScalarFunc::L1Distance => "l1_distance",
            ScalarFunc::VectorDims => "vector_dims",
            ScalarFunc::VectorNorm => "vector_norm",
            ScalarFunc::Abs => "abs",
            ScalarFunc::Lower => "lower",
            ScalarFunc::Upper => "upper",
            ScalarFunc::Length => "length",
            ScalarFunc::Round => "round",
            ScalarFunc::Floor => "floor",
            ScalarFunc::Ceil => "ceil",
            ScalarFunc::Sqrt => "sqrt",
            ScalarFunc::Coalesce => "coalesce",
            ScalarFunc::Substr => "substr",
            ScalarFunc::Left => "left",
            ScalarFunc::Right => "right",
            ScalarFunc::BTrim => "btrim",
            ScalarFunc::LTrim => "ltrim",
            ScalarFunc::RTrim => "rtrim",
            ScalarFunc::Concat => "concat",
            ScalarFunc::RoundTo => "round",
        }
    }

    /// Resolves `name(args)`; `arg_types` are the arguments' bound types.
    pub fn resolve(name: &str, arg_types: &[SqlType]) -> Result<Signature> {
        let vector = SqlType::Vector(None);
        let n = arg_types.len();
        let no_such = || {
            let args: Vec<String> = arg_types.iter().map(|t| t.to_string()).collect();
            QueryError::UndefinedFunction(format!(
                "function {name}({}) does not exist",
                args.join(", ")
            ))
        };
        let vec_arg = |t: SqlType| t.is_vector() || t.is_untyped();
        let num_arg = |t: SqlType| t.is_numeric() || t.is_untyped();
        let text_arg = |t: SqlType| t == SqlType::Text || t.is_untyped();
        let int_arg = |t: SqlType| t == SqlType::BigInt || t.is_untyped();
        let sig = |func, args: Vec<SqlType>, result| Signature { func, args, result };
        let lower = name.to_ascii_lowercase();
        Ok(match (lower.as_str(), arg_types) {
            ("l2_distance", [a, b]) if vec_arg(*a) && vec_arg(*b) => sig(
                ScalarFunc::L2Distance,
                vec![vector, vector],
                SqlType::Double,
            ),
            ("cosine_distance", [a, b]) if vec_arg(*a) && vec_arg(*b) => sig(
                ScalarFunc::CosineDistance,
                vec![vector, vector],
                SqlType::Double,
            ),
            ("inner_product", [a, b]) if vec_arg(*a) && vec_arg(*b) => sig(
                ScalarFunc::InnerProduct,
                vec![vector, vector],
                SqlType::Double,
            ),
            ("l1_distance", [a, b]) if vec_arg(*a) && vec_arg(*b) => sig(
                ScalarFunc::L1Distance,
                vec![vector, vector],
                SqlType::Double,
            ),
            ("vector_dims", [a]) if vec_arg(*a) => {
                sig(ScalarFunc::VectorDims, vec![vector], SqlType::BigInt)
            }
            ("vector_norm", [a]) if vec_arg(*a) => {
                sig(ScalarFunc::VectorNorm, vec![vector], SqlType::Double)
            }
            ("abs", [a]) if num_arg(*a) => {
                let t = if *a == SqlType::BigInt {
                    SqlType::BigInt
                } else {
                    SqlType::Double
                };
                sig(ScalarFunc::Abs, vec![t], t)
            }
            ("lower", [a]) if text_arg(*a) => {
                sig(ScalarFunc::Lower, vec![SqlType::Text], SqlType::Text)
            }
            ("upper", [a]) if text_arg(*a) => {
                sig(ScalarFunc::Upper, vec![SqlType::Text], SqlType::Text)
            }
            ("length" | "char_length", [a]) if text_arg(*a) => {
                sig(ScalarFunc::Length, vec![SqlType::Text], SqlType::BigInt)
            }
            ("round", [a, d]) if num_arg(*a) && int_arg(*d) => sig(
                ScalarFunc::RoundTo,
                vec![SqlType::Double, SqlType::BigInt],
                SqlType::Double,
            ),
            ("substr" | "substring", [a, f]) if text_arg(*a) && int_arg(*f) => sig(
                ScalarFunc::Substr,
                vec![SqlType::Text, SqlType::BigInt],
                SqlType::Text,
            ),
            ("substr" | "substring", [a, f, c]) if text_arg(*a) && int_arg(*f) && int_arg(*c) => {
                sig(
                    ScalarFunc::Substr,
                    vec![SqlType::Text, SqlType::BigInt, SqlType::BigInt],
                    SqlType::Text,
                )
            }
            ("left" | "right", [a, n]) if text_arg(*a) && int_arg(*n) => sig(
                if lower == "left" {
                    ScalarFunc::Left
                } else {
                    ScalarFunc::Right
                },
                vec![SqlType::Text, SqlType::BigInt],
                SqlType::Text,
            ),
            ("btrim" | "ltrim" | "rtrim", args)
                if matches!(args.len(), 1 | 2) && args.iter().all(|t| text_arg(*t)) =>
            {
                let func = match lower.as_str() {
                    "btrim" => ScalarFunc::BTrim,
                    "ltrim" => ScalarFunc::LTrim,
                    _ => ScalarFunc::RTrim,
                };
                sig(func, vec![SqlType::Text; args.len()], SqlType::Text)
            }
            ("concat", args) if !args.is_empty() => {
                let types = args
                    .iter()
                    .map(|t| if t.is_untyped() { SqlType::Text } else { *t })
                    .collect();
                sig(ScalarFunc::Concat, types, SqlType::Text)
            }
            ("round", [a]) if num_arg(*a) => {
                sig(ScalarFunc::Round, vec![SqlType::Double], SqlType::Double)
            }
            ("floor", [a]) if num_arg(*a) => {
                sig(ScalarFunc::Floor, vec![SqlType::Double], SqlType::Double)
            }
            ("ceil" | "ceiling", [a]) if num_arg(*a) => {
                sig(ScalarFunc::Ceil, vec![SqlType::Double], SqlType::Double)
            }
            ("sqrt", [a]) if num_arg(*a) => {
                sig(ScalarFunc::Sqrt, vec![SqlType::Double], SqlType::Double)
            }
            ("coalesce", args) if !args.is_empty() => {
                let ty = common_type(args).ok_or_else(|| {
                    QueryError::mismatch("COALESCE types cannot be matched".to_string())
                })?;
                sig(ScalarFunc::Coalesce, vec![ty; args.len()], ty)
            }
            _ => return Err(no_such()),
        })
        .inspect(|s| debug_assert_eq!(s.args.len(), n))
    }

    /// Evaluates the function on already-coerced arguments.
    pub fn eval(self, args: Vec<Value>) -> Result<Value> {
        if self == ScalarFunc::Coalesce {
            return Ok(args
                .into_iter()
                .find(|v| *v != Value::Null)
                .unwrap_or(Value::Null));
        }
        if self == ScalarFunc::Concat {
            let mut out = String::new();
            for v in &args {
                if *v != Value::Null {
                    out.push_str(&value_to_text(v));
                }
            }
            return Ok(Value::Text(out));
        }
        if args.contains(&Value::Null) {
            return Ok(Value::Null);
        }
        let wrong = || QueryError::Internal(format!("bad arguments to {}", self.name()));
        let two_vectors = |args: &[Value]| match args {
            [Value::Vector(a), Value::Vector(b)] => Ok((a.clone(), b.clone())),
            _ => Err(wrong()),
        };
        Ok(match self {
            ScalarFunc::L2Distance => {
                let (a, b) = two_vectors(&args)?;
                Value::Double(vector::l2_distance(&a, &b)?)
            }
            ScalarFunc::CosineDistance => {
                let (a, b) = two_vectors(&args)?;
                Value::Double(vector::cosine_distance(&a, &b)?)
            }
            ScalarFunc::InnerProduct => {
                let (a, b) = two_vectors(&args)?;
                Value::Double(vector::inner_product(&a, &b)?)
            }
            ScalarFunc::L1Distance => {
                let (a, b) = two_vectors(&args)?;
                Value::Double(vector::l1_distance(&a, &b)?)
            }
            ScalarFunc::VectorDims => match args.first() {
                Some(Value::Vector(a)) => Value::BigInt(a.len() as i64),
                _ => return Err(wrong()),
            },
            ScalarFunc::VectorNorm => match args.first() {
                Some(Value::Vector(a)) => Value::Double(vector::norm(a)),
                _ => return Err(wrong()),
            },
            ScalarFunc::Abs => {
                match args.first() {
                    Some(Value::BigInt(i)) => Value::BigInt(i.checked_abs().ok_or_else(|| {
                        QueryError::NumericOutOfRange("bigint out of range".into())
                    })?),
                    Some(Value::Double(d)) => Value::Double(d.abs()),
                    _ => return Err(wrong()),
                }
            }
            ScalarFunc::Lower | ScalarFunc::Upper | ScalarFunc::Length => match args.first() {
                Some(Value::Text(s)) => match self {
                    ScalarFunc::Lower => Value::Text(s.to_lowercase()),
                    ScalarFunc::Upper => Value::Text(s.to_uppercase()),
                    _ => Value::BigInt(s.chars().count() as i64),
                },
                _ => return Err(wrong()),
            },
            ScalarFunc::Round | ScalarFunc::Floor | ScalarFunc::Ceil | ScalarFunc::Sqrt => {
                let Some(Value::Double(d)) = args.first() else {
                    return Err(wrong());
                };
                Value::Double(match self {
                    ScalarFunc::Round => d.round(),
                    ScalarFunc::Floor => d.floor(),
                    ScalarFunc::Ceil => d.ceil(),
                    _ => {
                        if *d < 0.0 {
                            return Err(QueryError::InvalidParameterValue(
                                "cannot take square root of a negative number".into(),
                            ));
                        }
                        d.sqrt()
                    }
                })
            }
            ScalarFunc::Substr => match args.as_slice() {
                [Value::Text(s), Value::BigInt(from)] => Value::Text(substr(s, *from, None)?),
                [Value::Text(s), Value::BigInt(from), Value::BigInt(count)] => {
                    Value::Text(substr(s, *from, Some(*count))?)
                }
                _ => return Err(wrong()),
            },
            ScalarFunc::Left | ScalarFunc::Right => match args.as_slice() {
                [Value::Text(s), Value::BigInt(n)] => {
                    let len = s.chars().count() as i64;
                    // A negative n counts from the other end: all but the last (first) |n|.
                    let keep = if *n >= 0 {
                        (*n).min(len)
                    } else {
                        len.saturating_add(*n).max(0)
                    };
                    let keep = usize::try_from(keep).unwrap_or(0);
                    let len = usize::try_from(len).unwrap_or(0);
                    Value::Text(if self == ScalarFunc::Left {
                        s.chars().take(keep).collect()
                    } else {
                        s.chars().skip(len - keep).collect()
                    })
                }
                _ => return Err(wrong()),
            },
            ScalarFunc::BTrim | ScalarFunc::LTrim | ScalarFunc::RTrim => {
                let (s, chars) = match args.as_slice() {
                    [Value::Text(s)] => (s, " "),
                    [Value::Text(s), Value::Text(c)] => (s, c.as_str()),
                    _ => return Err(wrong()),
                };
                let set = |c: char| chars.contains(c);
                Value::Text(
                    match self {
                        ScalarFunc::BTrim => s.trim_matches(set),
                        ScalarFunc::LTrim => s.trim_start_matches(set),
                        _ => s.trim_end_matches(set),
                    }
                    .to_string(),
                )
            }
            ScalarFunc::RoundTo => match args.as_slice() {
                [Value::Double(d), Value::BigInt(digits)] => {
                    let digits = (*digits).clamp(-400, 400) as i32;
                    let scale = 10f64.powi(digits);
                    let scaled = d * scale;
                    Value::Double(if scaled.is_finite() && scale.is_finite() && scale > 0.0 {
                        scaled.round() / scale
                    } else if digits > 0 {
                        *d
                    } else {
                        0.0
                    })
                }
                _ => return Err(wrong()),
            },
            ScalarFunc::Coalesce | ScalarFunc::Concat => return Err(wrong()),
        })
    }
}

/// PostgreSQL's `substr(s, from, count)`: characters `from .. from + count - 1` (1-based) that
/// exist; a negative count is `22011`.
fn substr(s: &str, from: i64, count: Option<i64>) -> Result<String> {
    let end = match count {
        Some(c) if c < 0 => {
            return Err(QueryError::SubstringError(
                "negative substring length not allowed".into(),
            ))
        }
        Some(c) => from.saturating_add(c),
        None => i64::MAX,
    };
    let start = from.max(1);
    if end <= start {
        return Ok(String::new());
    }
    let skip = usize::try_from(start - 1).unwrap_or(usize::MAX);
    let take = usize::try_from(end - start).unwrap_or(usize::MAX);
    Ok(s.chars().skip(skip).take(take).collect())
}

/// The common type of a list of types (CASE, COALESCE, IN, VALUES columns); `None` when they
/// cannot be unified.
pub fn common_type(types: &[SqlType]) -> Option<SqlType> {
    let mut acc = SqlType::Null;
    for &t in types {
        acc = match (acc, t) {
            (a, b) if a == b => a,
            (SqlType::Null, b) => b,
            (a, SqlType::Null) => a,
            (SqlType::Unknown, b) => b,
            (a, SqlType::Unknown) => a,
            (SqlType::BigInt, SqlType::Double) | (SqlType::Double, SqlType::BigInt) => {
                SqlType::Double
            }
            (SqlType::Vector(a), SqlType::Vector(b)) => {
                SqlType::Vector(if a == b { a } else { None })
            }
            _ => return None,
        };
    }
    Some(if acc == SqlType::Unknown {
        SqlType::Text
    } else {
        acc
    })
}
