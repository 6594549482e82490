//! Scalar functions: pgvector's (`l2_distance`, `cosine_distance`, `inner_product`, `l1_distance`,
//! `vector_dims`, `vector_norm`) and a few of PostgreSQL's (`abs`, `lower`, `upper`, `length`,
//! `round`, `floor`, `ceil`, `sqrt`, `coalesce`). Each resolves at bind time to a signature: the
//! types its arguments are coerced to and its result type. Unknown names and wrong argument counts
//! are `42883`, as in PostgreSQL.

use vela_engine::catalog::Value;

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
            ScalarFunc::Coalesce => return Err(wrong()),
        })
    }
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
