//! Aggregate functions: `count(*)`, `count(x)`, `sum`, `avg`, `min`, `max` (with `DISTINCT`), and
//! pgvector's `sum(vector)` / `avg(vector)` (element-wise). Each call owns an [`Accumulator`] per
//! group; NULL inputs are skipped, and `sum/avg/min/max` of no rows is NULL while `count` is 0.

use std::cmp::Ordering;

use vela_engine::catalog::Value;

use super::eval::compare_values;
use super::BExpr;
use crate::error::{QueryError, Result};
use crate::types::SqlType;

/// Which aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    CountStar,
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

impl AggFunc {
    /// Recognises an aggregate function name.
    pub fn from_name(name: &str) -> Option<AggFunc> {
        Some(match name.to_ascii_lowercase().as_str() {
            "count" => AggFunc::Count,
            "sum" => AggFunc::Sum,
            "avg" => AggFunc::Avg,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            _ => return None,
        })
    }

    /// The SQL name.
    pub fn name(self) -> &'static str {
        match self {
            AggFunc::CountStar | AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Avg => "avg",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
        }
    }

    /// The result type for an argument type; `42883` when the aggregate does not apply.
    pub fn result_type(self, arg: SqlType) -> Result<SqlType> {
        let bad = || {
            QueryError::UndefinedFunction(format!("function {}({arg}) does not exist", self.name()))
        };
        Ok(match self {
            AggFunc::CountStar | AggFunc::Count => SqlType::BigInt,
            AggFunc::Sum => match arg {
                SqlType::BigInt => SqlType::BigInt,
                SqlType::Double | SqlType::Unknown | SqlType::Null => SqlType::Double,
                SqlType::Vector(d) => SqlType::Vector(d),
                _ => return Err(bad()),
            },
            AggFunc::Avg => match arg {
                SqlType::BigInt | SqlType::Double | SqlType::Unknown | SqlType::Null => {
                    SqlType::Double
                }
                SqlType::Vector(d) => SqlType::Vector(d),
                _ => return Err(bad()),
            },
            AggFunc::Min | AggFunc::Max => match arg {
                SqlType::Vector(_) => return Err(bad()),
                SqlType::Unknown | SqlType::Null => SqlType::Text,
                t => t,
            },
        })
    }
}

/// One aggregate call of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct AggCall {
    pub func: AggFunc,
    /// The argument, bound against the aggregate's input; `None` for `count(*)`.
    pub arg: Option<BExpr>,
    pub distinct: bool,
    pub ty: SqlType,
}

/// Running state of one aggregate call for one group.
#[derive(Debug, Clone)]
pub struct Accumulator {
    func: AggFunc,
    count: i64,
    int_sum: i128,
    float_sum: f64,
    vec_sum: Option<Vec<f64>>,
    best: Option<Value>,
    seen: Option<Vec<Value>>,
}

impl Accumulator {
    /// A fresh accumulator.
    pub fn new(call: &AggCall) -> Self {
        Accumulator {
            func: call.func,
            count: 0,
            int_sum: 0,
            float_sum: 0.0,
            vec_sum: None,
            best: None,
            seen: call.distinct.then(Vec::new),
        }
    }

    /// Feeds one input value (`Value::Boolean(true)` for `count(*)`).
    pub fn update(&mut self, v: Value) -> Result<()> {
        if v == Value::Null {
            return Ok(());
        }
        if let Some(seen) = &mut self.seen {
            if seen.contains(&v) {
                return Ok(());
            }
            seen.push(v.clone());
        }
        self.count += 1;
        match (self.func, v) {
            (AggFunc::CountStar | AggFunc::Count, _) => {}
            (AggFunc::Sum | AggFunc::Avg, Value::BigInt(i)) => {
                self.int_sum += i128::from(i);
                self.float_sum += i as f64;
            }
            (AggFunc::Sum | AggFunc::Avg, Value::Double(d)) => self.float_sum += d,
            (AggFunc::Sum | AggFunc::Avg, Value::Vector(v)) => {
                let sum = self.vec_sum.get_or_insert_with(|| vec![0.0; v.len()]);
                if sum.len() != v.len() {
                    return Err(QueryError::DataException(format!(
                        "expected {} dimensions, not {}",
                        sum.len(),
                        v.len()
                    )));
                }
                for (s, x) in sum.iter_mut().zip(&v) {
                    *s += f64::from(*x);
                }
            }
            (AggFunc::Min | AggFunc::Max, v) => {
                let replace = match &self.best {
                    None => true,
                    Some(b) => {
                        let o = compare_values(&v, b)?;
                        (self.func == AggFunc::Min && o == Ordering::Less)
                            || (self.func == AggFunc::Max && o == Ordering::Greater)
                    }
                };
                if replace {
                    self.best = Some(v);
                }
            }
            (f, v) => return Err(QueryError::Internal(format!("{f:?} of {v:?}"))),
        }
        Ok(())
    }

    /// The aggregate's value.
    pub fn finish(&self, ty: SqlType) -> Result<Value> {
        if matches!(self.func, AggFunc::CountStar | AggFunc::Count) {
            return Ok(Value::BigInt(self.count));
        }
        if self.count == 0 {
            return Ok(Value::Null);
        }
        Ok(match self.func {
            AggFunc::Sum | AggFunc::Avg => {
                if let Some(sum) = &self.vec_sum {
                    let div = if self.func == AggFunc::Avg {
                        self.count as f64
                    } else {
                        1.0
                    };
                    let out: Vec<f32> = sum.iter().map(|s| (s / div) as f32).collect();
                    if out.iter().any(|x| !x.is_finite()) {
                        return Err(QueryError::NumericOutOfRange(
                            "value out of range: overflow".into(),
                        ));
                    }
                    Value::Vector(out)
                } else if self.func == AggFunc::Avg {
                    Value::Double(self.float_sum / self.count as f64)
                } else if ty == SqlType::BigInt {
                    Value::BigInt(
                        i64::try_from(self.int_sum).map_err(|_| {
                            QueryError::NumericOutOfRange("bigint out of range".into())
                        })?,
                    )
                } else {
                    Value::Double(self.float_sum)
                }
            }
            _ => self.best.clone().unwrap_or(Value::Null),
        })
    }
}
