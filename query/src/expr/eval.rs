//! Evaluation of bound expressions over one row, with SQL's three-valued logic.
//!
//! NULL propagates through operators and functions; `AND`/`OR` follow Kleene logic; integer
//! arithmetic is checked (`22003` on overflow), division and modulo by zero are `22012`. Values
//! compare with [`compare_values`], which is also the sort order (NULLs are placed by the sort).

use std::cmp::Ordering;
use std::sync::Arc;

use vela_engine::catalog::Value;

use super::cast::{cast_value, value_to_text};
use super::{BExpr, BinaryOp, UnaryOp};
use crate::error::{QueryError, Result};
use crate::vector;

/// The result of an init plan (an uncorrelated subquery run once before the query).
#[derive(Debug, Clone, PartialEq)]
pub enum SubqueryValue {
    /// A scalar subquery's value (NULL for no row) or EXISTS's boolean.
    Scalar(Value),
    /// The first column of every row, for `IN (SELECT ...)`.
    List(Vec<Value>),
}

/// Runs correlated subplans for [`eval`] (the executor implements it; expressions cannot reach
/// the engine themselves).
pub trait SubPlanRunner: Sync {
    /// The result of subplan `slot` run with `args` as its outer values.
    fn run_subplan(&self, slot: usize, args: Vec<Value>) -> Result<Arc<SubqueryValue>>;
}

/// What an expression can read besides the row: the statement's parameters, the values of its
/// init plans, the enclosing row's values inside a correlated subplan, and the runner of
/// correlated subplans.
#[derive(Clone, Copy)]
pub struct EvalContext<'a> {
    pub params: &'a [Value],
    pub subqueries: &'a [SubqueryValue],
    /// [`BExpr::Outer`] values: the arguments of the subplan being run (empty outside one).
    pub outer: &'a [Value],
    /// Runs [`BExpr::SubPlan`]s; `None` where none can occur (constants, EXECUTE arguments).
    pub runner: Option<&'a dyn SubPlanRunner>,
}

impl<'a> EvalContext<'a> {
    /// A context with these parameters (and no subquery values).
    pub fn new(params: &'a [Value]) -> Self {
        Self::with_subqueries(params, &[])
    }

    /// A context with these parameters and init-plan values.
    pub fn with_subqueries(params: &'a [Value], subqueries: &'a [SubqueryValue]) -> Self {
        EvalContext {
            params,
            subqueries,
            outer: &[],
            runner: None,
        }
    }
}

/// Runs correlated subplan `slot` for `row`: its arguments evaluated over the row.
fn run_subplan(
    slot: usize,
    args: &[BExpr],
    row: &[Value],
    ctx: &EvalContext<'_>,
) -> Result<Arc<SubqueryValue>> {
    let runner = ctx
        .runner
        .ok_or_else(|| QueryError::Internal(format!("no runner for SubPlan {}", slot + 1)))?;
    let values = args
        .iter()
        .map(|a| eval(a, row, ctx))
        .collect::<Result<Vec<_>>>()?;
    runner.run_subplan(slot, values)
}

/// Evaluates `expr` over `row`.
pub fn eval(expr: &BExpr, row: &[Value], ctx: &EvalContext<'_>) -> Result<Value> {
    match expr {
        BExpr::Column(i) => row
            .get(*i)
            .cloned()
            .ok_or_else(|| QueryError::Internal(format!("column #{i} out of range"))),
        BExpr::Literal(v) => Ok(v.clone()),
        BExpr::Param(i) => ctx
            .params
            .get(*i)
            .cloned()
            .ok_or(QueryError::UndefinedParameter(i + 1)),
        BExpr::Subquery(i) => match ctx.subqueries.get(*i) {
            Some(SubqueryValue::Scalar(v)) => Ok(v.clone()),
            _ => Err(QueryError::Internal(format!(
                "init plan {} has no scalar value",
                i + 1
            ))),
        },
        BExpr::InSubquery {
            expr,
            slot,
            negated,
        } => {
            let Some(SubqueryValue::List(list)) = ctx.subqueries.get(*slot) else {
                return Err(QueryError::Internal(format!(
                    "init plan {} has no row list",
                    slot + 1
                )));
            };
            let v = eval(expr, row, ctx)?;
            in_values(&v, list.iter(), *negated)
        }
        BExpr::Outer(k) => ctx
            .outer
            .get(*k)
            .cloned()
            .ok_or_else(|| QueryError::Internal(format!("outer value {} out of range", k + 1))),
        BExpr::SubPlan { slot, args } => match &*run_subplan(*slot, args, row, ctx)? {
            SubqueryValue::Scalar(v) => Ok(v.clone()),
            SubqueryValue::List(_) => Err(QueryError::Internal(format!(
                "SubPlan {} has no scalar value",
                slot + 1
            ))),
        },
        BExpr::InSubPlan {
            expr,
            slot,
            args,
            negated,
        } => {
            let v = eval(expr, row, ctx)?;
            match &*run_subplan(*slot, args, row, ctx)? {
                SubqueryValue::List(list) => in_values(&v, list.iter(), *negated),
                SubqueryValue::Scalar(_) => Err(QueryError::Internal(format!(
                    "SubPlan {} has no row list",
                    slot + 1
                ))),
            }
        }
        BExpr::Unary(op, e) => eval_unary(*op, eval(e, row, ctx)?),
        BExpr::Binary(op, l, r) => eval_binary(*op, l, r, row, ctx),
        BExpr::IsNull { expr, negated } => {
            let is_null = eval(expr, row, ctx)? == Value::Null;
            Ok(Value::Boolean(is_null != *negated))
        }
        BExpr::InList {
            expr,
            list,
            negated,
        } => {
            let v = eval(expr, row, ctx)?;
            if v == Value::Null {
                return Ok(Value::Null);
            }
            let mut saw_null = false;
            for item in list {
                let item = eval(item, row, ctx)?;
                if item == Value::Null {
                    saw_null = true;
                } else if compare_values(&v, &item)? == Ordering::Equal {
                    return Ok(Value::Boolean(!negated));
                }
            }
            Ok(if saw_null {
                Value::Null
            } else {
                Value::Boolean(*negated)
            })
        }
        BExpr::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let v = eval(expr, row, ctx)?;
            let lo = eval(low, row, ctx)?;
            let hi = eval(high, row, ctx)?;
            let ge = cmp_op(&v, &lo, |o| o != Ordering::Less)?;
            let le = cmp_op(&v, &hi, |o| o != Ordering::Greater)?;
            let both = and3(ge, le);
            Ok(if *negated { not3(both) } else { both })
        }
        BExpr::Like {
            expr,
            pattern,
            negated,
            case_insensitive,
        } => {
            let (v, p) = (eval(expr, row, ctx)?, eval(pattern, row, ctx)?);
            match (v, p) {
                (Value::Text(s), Value::Text(p)) => {
                    let m = if *case_insensitive {
                        like_match(&s.to_lowercase(), &p.to_lowercase())
                    } else {
                        like_match(&s, &p)
                    };
                    Ok(Value::Boolean(m != *negated))
                }
                (Value::Null, _) | (_, Value::Null) => Ok(Value::Null),
                _ => Err(QueryError::Internal("LIKE on non-text".into())),
            }
        }
        BExpr::Cast(e, ty) => cast_value(eval(e, row, ctx)?, *ty),
        BExpr::Func(f, args) => {
            let values = args
                .iter()
                .map(|a| eval(a, row, ctx))
                .collect::<Result<Vec<_>>>()?;
            f.eval(values)
        }
        BExpr::Case {
            branches,
            otherwise,
        } => {
            for (when, then) in branches {
                if eval(when, row, ctx)? == Value::Boolean(true) {
                    return eval(then, row, ctx);
                }
            }
            match otherwise {
                Some(o) => eval(o, row, ctx),
                None => Ok(Value::Null),
            }
        }
    }
}

/// `v [NOT] IN (items)` with SQL's NULL rules: NULL when `v` is NULL (and there are items), or
/// when no item matches and some item is NULL; against no items it is false (true for NOT IN).
fn in_values<'v>(
    v: &Value,
    items: impl Iterator<Item = &'v Value>,
    negated: bool,
) -> Result<Value> {
    let mut items = items.peekable();
    if *v == Value::Null {
        // NULL IN (empty set) is false, as in PostgreSQL; against any row it is unknown.
        return Ok(if items.peek().is_none() {
            Value::Boolean(negated)
        } else {
            Value::Null
        });
    }
    let mut saw_null = false;
    for item in items {
        if *item == Value::Null {
            saw_null = true;
        } else if compare_values(v, item)? == Ordering::Equal {
            return Ok(Value::Boolean(!negated));
        }
    }
    Ok(if saw_null {
        Value::Null
    } else {
        Value::Boolean(negated)
    })
}

/// Evaluates a predicate: true only when the value is boolean `true` (NULL and false reject).
pub fn eval_predicate(expr: &BExpr, row: &[Value], ctx: &EvalContext<'_>) -> Result<bool> {
    Ok(eval(expr, row, ctx)? == Value::Boolean(true))
}

fn eval_unary(op: UnaryOp, v: Value) -> Result<Value> {
    Ok(match (op, v) {
        (_, Value::Null) => Value::Null,
        (UnaryOp::Not, Value::Boolean(b)) => Value::Boolean(!b),
        (UnaryOp::Neg, Value::BigInt(i)) => Value::BigInt(
            i.checked_neg()
                .ok_or_else(|| QueryError::NumericOutOfRange("bigint out of range".into()))?,
        ),
        (UnaryOp::Neg, Value::Double(d)) => Value::Double(-d),
        (op, v) => return Err(QueryError::Internal(format!("{op:?} on {v:?}"))),
    })
}

fn and3(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Boolean(false), _) | (_, Value::Boolean(false)) => Value::Boolean(false),
        (Value::Boolean(true), Value::Boolean(true)) => Value::Boolean(true),
        _ => Value::Null,
    }
}

fn or3(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Boolean(true), _) | (_, Value::Boolean(true)) => Value::Boolean(true),
        (Value::Boolean(false), Value::Boolean(false)) => Value::Boolean(false),
        _ => Value::Null,
    }
}

fn not3(a: Value) -> Value {
    match a {
        Value::Boolean(b) => Value::Boolean(!b),
        other => other,
    }
}

fn cmp_op(a: &Value, b: &Value, f: fn(Ordering) -> bool) -> Result<Value> {
    if *a == Value::Null || *b == Value::Null {
        return Ok(Value::Null);
    }
    Ok(Value::Boolean(f(compare_values(a, b)?)))
}

fn eval_binary(
    op: BinaryOp,
    l: &BExpr,
    r: &BExpr,
    row: &[Value],
    ctx: &EvalContext<'_>,
) -> Result<Value> {
    // Distances on a column and a constant are the hot path of vector queries: compare in place
    // without cloning the row's vector.
    if op.metric().is_some() {
        if let (BExpr::Column(i), BExpr::Literal(Value::Vector(q))) = (l, r) {
            return match row.get(*i) {
                Some(Value::Vector(v)) => distance(op, v, q).map(Value::Double),
                Some(Value::Null) => Ok(Value::Null),
                _ => Err(QueryError::Internal(
                    "distance on a non-vector column".into(),
                )),
            };
        }
    }
    let a = eval(l, row, ctx)?;
    match op {
        BinaryOp::And if a == Value::Boolean(false) => return Ok(a),
        BinaryOp::Or if a == Value::Boolean(true) => return Ok(a),
        _ => {}
    }
    let b = eval(r, row, ctx)?;
    match op {
        BinaryOp::And => return Ok(and3(a, b)),
        BinaryOp::Or => return Ok(or3(a, b)),
        _ => {}
    }
    if a == Value::Null || b == Value::Null {
        return Ok(Value::Null);
    }
    match op {
        BinaryOp::Eq => cmp_op(&a, &b, |o| o == Ordering::Equal),
        BinaryOp::NotEq => cmp_op(&a, &b, |o| o != Ordering::Equal),
        BinaryOp::Lt => cmp_op(&a, &b, |o| o == Ordering::Less),
        BinaryOp::LtEq => cmp_op(&a, &b, |o| o != Ordering::Greater),
        BinaryOp::Gt => cmp_op(&a, &b, |o| o == Ordering::Greater),
        BinaryOp::GtEq => cmp_op(&a, &b, |o| o != Ordering::Less),
        BinaryOp::Concat => Ok(Value::Text(value_to_text(&a) + &value_to_text(&b))),
        BinaryOp::L2Distance
        | BinaryOp::CosineDistance
        | BinaryOp::NegInnerProduct
        | BinaryOp::L1Distance => match (&a, &b) {
            (Value::Vector(x), Value::Vector(y)) => distance(op, x, y).map(Value::Double),
            _ => Err(QueryError::Internal("distance on non-vectors".into())),
        },
        _ => arithmetic(op, a, b),
    }
}

fn distance(op: BinaryOp, a: &[f32], b: &[f32]) -> Result<f64> {
    match op {
        BinaryOp::L2Distance => vector::l2_distance(a, b),
        BinaryOp::CosineDistance => vector::cosine_distance(a, b),
        BinaryOp::NegInnerProduct => vector::inner_product(a, b).map(|d| -d),
        _ => vector::l1_distance(a, b),
    }
}

fn arithmetic(op: BinaryOp, a: Value, b: Value) -> Result<Value> {
    let overflow = || QueryError::NumericOutOfRange("bigint out of range".into());
    Ok(match (a, b) {
        (Value::BigInt(x), Value::BigInt(y)) => Value::BigInt(match op {
            BinaryOp::Add => x.checked_add(y).ok_or_else(overflow)?,
            BinaryOp::Sub => x.checked_sub(y).ok_or_else(overflow)?,
            BinaryOp::Mul => x.checked_mul(y).ok_or_else(overflow)?,
            BinaryOp::Div | BinaryOp::Mod if y == 0 => return Err(QueryError::DivisionByZero),
            BinaryOp::Div => x.checked_div(y).ok_or_else(overflow)?,
            BinaryOp::Mod => x.checked_rem(y).unwrap_or(0),
            _ => return Err(QueryError::Internal(format!("{op:?} on bigint"))),
        }),
        (Value::Vector(x), Value::Vector(y)) => Value::Vector(match op {
            BinaryOp::Add => vector::elementwise(&x, &y, |p, q| p + q)?,
            BinaryOp::Sub => vector::elementwise(&x, &y, |p, q| p - q)?,
            BinaryOp::Mul => vector::elementwise(&x, &y, |p, q| p * q)?,
            _ => return Err(QueryError::Internal(format!("{op:?} on vectors"))),
        }),
        (x, y) => {
            let (Some(x), Some(y)) = (as_f64(&x), as_f64(&y)) else {
                return Err(QueryError::Internal(format!("{op:?} on {x:?}, {y:?}")));
            };
            let v = match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div | BinaryOp::Mod if y == 0.0 => {
                    return Err(QueryError::DivisionByZero)
                }
                BinaryOp::Div => x / y,
                BinaryOp::Mod => x % y,
                _ => return Err(QueryError::Internal(format!("{op:?} on double"))),
            };
            if v.is_infinite() && x.is_finite() && y.is_finite() {
                return Err(QueryError::NumericOutOfRange(
                    "value out of range: overflow".into(),
                ));
            }
            Value::Double(v)
        }
    })
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::BigInt(i) => Some(*i as f64),
        Value::Double(d) => Some(*d),
        _ => None,
    }
}

/// Total order of two non-NULL values of comparable types (numbers compare across int/double;
/// NaN sorts above every number, as in PostgreSQL; vectors compare element-wise, then by length).
pub fn compare_values(a: &Value, b: &Value) -> Result<Ordering> {
    Ok(match (a, b) {
        (Value::BigInt(x), Value::BigInt(y)) => x.cmp(y),
        (Value::Text(x), Value::Text(y)) => x.cmp(y),
        (Value::Boolean(x), Value::Boolean(y)) => x.cmp(y),
        (Value::Timestamp(x), Value::Timestamp(y)) => x.cmp(y),
        (Value::Vector(x), Value::Vector(y)) => {
            for (p, q) in x.iter().zip(y) {
                match p.total_cmp(q) {
                    Ordering::Equal => {}
                    o => return Ok(o),
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        (x, y) => match (as_f64(x), as_f64(y)) {
            (Some(p), Some(q)) => p.total_cmp(&q),
            _ => {
                return Err(QueryError::Internal(format!(
                    "comparison of {x:?} and {y:?}"
                )))
            }
        },
    })
}

/// SQL `LIKE` with `%`, `_` and `\` as the escape character; iterative, no recursion.
pub fn like_match(s: &str, pattern: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut si, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('%') => {
                star = Some((pi, si));
                pi += 1;
                continue;
            }
            Some('_') => {
                si += 1;
                pi += 1;
                continue;
            }
            Some('\\') if p.get(pi + 1) == s.get(si) && pi + 1 < p.len() => {
                si += 1;
                pi += 2;
                continue;
            }
            Some(c) if *c != '\\' && Some(c) == s.get(si) => {
                si += 1;
                pi += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p.get(pi..).unwrap_or(&[]).iter().all(|c| *c == '%')
}

/// A value written as a SQL literal (EXPLAIN output).
pub fn literal_sql(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::BigInt(_) | Value::Double(_) | Value::Boolean(_) => value_to_text(v),
        other => format!("'{}'", value_to_text(other).replace('\'', "''")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        assert!(like_match("hello", "h%o"));
        assert!(like_match("hello", "_ello"));
        assert!(like_match("hello", "%"));
        assert!(!like_match("hello", "h%x"));
        assert!(like_match("50%", "50\\%"));
        assert!(!like_match("500", "50\\%"));
        assert!(like_match("", "%"));
        assert!(!like_match("", "_"));
    }

    #[test]
    fn three_valued_logic() {
        assert_eq!(
            and3(Value::Null, Value::Boolean(false)),
            Value::Boolean(false)
        );
        assert_eq!(or3(Value::Null, Value::Boolean(true)), Value::Boolean(true));
        assert_eq!(and3(Value::Null, Value::Boolean(true)), Value::Null);
    }

    #[test]
    fn arithmetic_errors() {
        let e = arithmetic(BinaryOp::Div, Value::BigInt(1), Value::BigInt(0)).unwrap_err();
        assert_eq!(e.code(), "22012");
        let e = arithmetic(BinaryOp::Div, Value::Double(1.0), Value::BigInt(0)).unwrap_err();
        assert_eq!(e.code(), "22012");
        let e = arithmetic(BinaryOp::Add, Value::BigInt(i64::MAX), Value::BigInt(1)).unwrap_err();
        assert_eq!(e.code(), "22003");
        let e = arithmetic(BinaryOp::Div, Value::BigInt(i64::MIN), Value::BigInt(-1)).unwrap_err();
        assert_eq!(e.code(), "22003");
    }
}
