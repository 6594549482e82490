//! Bound expressions: the AST's expressions resolved against a scope, typed, ready to evaluate.
//!
//! - [`bind`]: sqlparser `Expr` -> [`BExpr`] with a [`SqlType`], resolving column names against a
//!   [`Scope`], typing untyped literals and `$n` parameters by context (as PostgreSQL does), and
//!   folding vector literals once at bind time.
//! - [`eval`]: evaluates a [`BExpr`] over one row with SQL's three-valued logic.
//! - [`cast`]: value conversions (`::vector`, `::bigint`, timestamps, ...).
//! - [`functions`]: scalar functions (`l2_distance`, `vector_dims`, `lower`, ...).
//! - [`aggregate`]: `count/sum/avg/min/max` and their accumulators.

pub mod aggregate;
pub mod bind;
pub mod cast;
pub mod eval;
pub mod functions;

use std::fmt;

use vela_engine::catalog::Value;
use vela_engine::Metric;

use crate::types::SqlType;
pub use functions::ScalarFunc;

/// A column visible to expressions: its qualifier (table or alias), name and type.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeColumn {
    pub qualifier: Option<String>,
    pub name: String,
    pub ty: SqlType,
}

/// The columns an expression may reference, in input-row order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    pub columns: Vec<ScopeColumn>,
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Not,
}

/// Binary operators, pgvector's distances included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
    Concat,
    /// `<->`
    L2Distance,
    /// `<=>`
    CosineDistance,
    /// `<#>`
    NegInnerProduct,
    /// `<+>`
    L1Distance,
}

impl BinaryOp {
    /// The index metric a distance operator corresponds to.
    pub fn metric(self) -> Option<Metric> {
        match self {
            BinaryOp::L2Distance => Some(Metric::L2),
            BinaryOp::CosineDistance => Some(Metric::Cosine),
            BinaryOp::NegInnerProduct => Some(Metric::InnerProduct),
            BinaryOp::L1Distance => Some(Metric::L1),
            _ => None,
        }
    }

    /// SQL spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
            BinaryOp::Concat => "||",
            BinaryOp::L2Distance => "<->",
            BinaryOp::CosineDistance => "<=>",
            BinaryOp::NegInnerProduct => "<#>",
            BinaryOp::L1Distance => "<+>",
        }
    }
}

/// A bound, typed expression over an input row.
#[derive(Debug, Clone, PartialEq)]
pub enum BExpr {
    /// The input row's value at this position.
    Column(usize),
    Literal(Value),
    /// `$n`, zero-based.
    Param(usize),
    Unary(UnaryOp, Box<BExpr>),
    Binary(BinaryOp, Box<BExpr>, Box<BExpr>),
    IsNull {
        expr: Box<BExpr>,
        negated: bool,
    },
    InList {
        expr: Box<BExpr>,
        list: Vec<BExpr>,
        negated: bool,
    },
    Between {
        expr: Box<BExpr>,
        low: Box<BExpr>,
        high: Box<BExpr>,
        negated: bool,
    },
    Like {
        expr: Box<BExpr>,
        pattern: Box<BExpr>,
        negated: bool,
        case_insensitive: bool,
    },
    Cast(Box<BExpr>, SqlType),
    Func(ScalarFunc, Vec<BExpr>),
    Case {
        branches: Vec<(BExpr, BExpr)>,
        otherwise: Option<Box<BExpr>>,
    },
    /// The value of init plan `n` (zero-based): an uncorrelated scalar subquery or EXISTS, run
    /// once before the query (see [`crate::plan::Plan::InitPlans`]). Constant for the statement,
    /// like a parameter.
    Subquery(usize),
    /// `expr [NOT] IN (SELECT ...)` against the rows of init plan `slot`.
    InSubquery {
        expr: Box<BExpr>,
        slot: usize,
        negated: bool,
    },
    /// The value of the enclosing query's row that a correlated subquery reads: argument `n`
    /// (zero-based) of the [`crate::plan::SubPlan`] this expression runs in. Constant for one
    /// run of the subplan, like a parameter.
    Outer(usize),
    /// A correlated scalar subquery or EXISTS: subplan `slot` (statement-wide, zero-based) run
    /// with `args` (evaluated over the current row) as its [`BExpr::Outer`] values. Runs once
    /// per distinct argument tuple (the results are cached for the statement).
    SubPlan {
        slot: usize,
        args: Vec<BExpr>,
    },
    /// `expr [NOT] IN (SELECT ...)` against the rows of correlated subplan `slot`.
    InSubPlan {
        expr: Box<BExpr>,
        slot: usize,
        args: Vec<BExpr>,
        negated: bool,
    },
}

impl BExpr {
    /// Whether the expression reads no input column (a constant or a parameter expression).
    pub fn is_row_independent(&self) -> bool {
        let mut independent = true;
        self.visit(&mut |e| {
            if matches!(e, BExpr::Column(_)) {
                independent = false;
            }
        });
        independent
    }

    /// Whether the expression runs a correlated subplan (which reads the engine, so it must not
    /// be evaluated inside an engine call, as a pushed-down filter is).
    pub fn has_subplan(&self) -> bool {
        let mut found = false;
        self.visit(&mut |e| {
            if matches!(e, BExpr::SubPlan { .. } | BExpr::InSubPlan { .. }) {
                found = true;
            }
        });
        found
    }

    /// Appends the positions of the input columns this expression reads (a subplan's
    /// arguments included), unsorted and possibly repeated.
    pub fn columns_into(&self, out: &mut Vec<usize>) {
        self.visit(&mut |e| {
            if let BExpr::Column(i) = e {
                out.push(*i);
            }
        });
    }

    /// Calls `f` on this expression and every subexpression (a subplan's arguments included,
    /// not the expressions inside its plan).
    pub fn visit(&self, f: &mut dyn FnMut(&BExpr)) {
        f(self);
        match self {
            BExpr::Column(_)
            | BExpr::Literal(_)
            | BExpr::Param(_)
            | BExpr::Subquery(_)
            | BExpr::Outer(_) => {}
            BExpr::Unary(_, e) | BExpr::Cast(e, _) => e.visit(f),
            BExpr::InSubquery { expr, .. } => expr.visit(f),
            BExpr::SubPlan { args, .. } => args.iter().for_each(|e| e.visit(f)),
            BExpr::InSubPlan { expr, args, .. } => {
                expr.visit(f);
                args.iter().for_each(|e| e.visit(f));
            }
            BExpr::IsNull { expr, .. } => expr.visit(f),
            BExpr::Binary(_, l, r) => {
                l.visit(f);
                r.visit(f);
            }
            BExpr::InList { expr, list, .. } => {
                expr.visit(f);
                list.iter().for_each(|e| e.visit(f));
            }
            BExpr::Between {
                expr, low, high, ..
            } => {
                expr.visit(f);
                low.visit(f);
                high.visit(f);
            }
            BExpr::Like { expr, pattern, .. } => {
                expr.visit(f);
                pattern.visit(f);
            }
            BExpr::Func(_, args) => args.iter().for_each(|e| e.visit(f)),
            BExpr::Case {
                branches,
                otherwise,
            } => {
                for (w, t) in branches {
                    w.visit(f);
                    t.visit(f);
                }
                if let Some(o) = otherwise {
                    o.visit(f);
                }
            }
        }
    }

    /// Splits a conjunction into its conjuncts.
    pub fn conjuncts(self) -> Vec<BExpr> {
        match self {
            BExpr::Binary(BinaryOp::And, l, r) => {
                let mut out = l.conjuncts();
                out.extend(r.conjuncts());
                out
            }
            other => vec![other],
        }
    }

    /// Joins conjuncts back with AND; `None` for an empty list.
    pub fn conjunction(parts: Vec<BExpr>) -> Option<BExpr> {
        parts
            .into_iter()
            .reduce(|a, b| BExpr::Binary(BinaryOp::And, Box::new(a), Box::new(b)))
    }
}

/// Renders an expression for EXPLAIN, naming columns through `names`.
pub struct ExprDisplay<'a> {
    pub expr: &'a BExpr,
    pub names: &'a [String],
}

impl fmt::Display for ExprDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn with<'b>(expr: &'b BExpr, names: &'b [String]) -> ExprDisplay<'b> {
            ExprDisplay { expr, names }
        }
        let names = self.names;
        let sub = |e| with(e, names);
        match self.expr {
            BExpr::Column(i) => match self.names.get(*i) {
                Some(n) => f.write_str(n),
                None => write!(f, "#{i}"),
            },
            BExpr::Literal(v) => f.write_str(&eval::literal_sql(v)),
            BExpr::Param(i) => write!(f, "${}", i + 1),
            BExpr::Subquery(i) => write!(f, "(InitPlan {}).col1", i + 1),
            BExpr::Outer(k) => write!(f, "$outer{}", k + 1),
            BExpr::SubPlan { slot, .. } => write!(f, "(SubPlan {})", slot + 1),
            BExpr::InSubPlan {
                expr,
                slot,
                negated,
                ..
            } => write!(
                f,
                "({} {}IN (SubPlan {}))",
                sub(expr),
                if *negated { "NOT " } else { "" },
                slot + 1
            ),
            BExpr::InSubquery {
                expr,
                slot,
                negated,
            } => write!(
                f,
                "({} {}IN (InitPlan {}))",
                sub(expr),
                if *negated { "NOT " } else { "" },
                slot + 1
            ),
            BExpr::Unary(UnaryOp::Neg, e) => write!(f, "(- {})", sub(e)),
            BExpr::Unary(UnaryOp::Not, e) => write!(f, "(NOT {})", sub(e)),
            BExpr::Binary(op, l, r) => write!(f, "({} {} {})", sub(l), op.symbol(), sub(r)),
            BExpr::IsNull { expr, negated } => {
                write!(
                    f,
                    "({} IS {}NULL)",
                    sub(expr),
                    if *negated { "NOT " } else { "" }
                )
            }
            BExpr::InList {
                expr,
                list,
                negated,
            } => {
                write!(
                    f,
                    "({} {}IN (",
                    sub(expr),
                    if *negated { "NOT " } else { "" }
                )?;
                for (i, e) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", sub(e))?;
                }
                f.write_str("))")
            }
            BExpr::Between {
                expr,
                low,
                high,
                negated,
            } => write!(
                f,
                "({} {}BETWEEN {} AND {})",
                sub(expr),
                if *negated { "NOT " } else { "" },
                sub(low),
                sub(high)
            ),
            BExpr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => write!(
                f,
                "({} {}{} {})",
                sub(expr),
                if *negated { "NOT " } else { "" },
                if *case_insensitive { "ILIKE" } else { "LIKE" },
                sub(pattern)
            ),
            BExpr::Cast(e, ty) => write!(f, "{}::{}", sub(e), ty),
            BExpr::Func(func, args) => {
                write!(f, "{}(", func.name())?;
                for (i, e) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", sub(e))?;
                }
                f.write_str(")")
            }
            BExpr::Case {
                branches,
                otherwise,
            } => {
                f.write_str("CASE")?;
                for (w, t) in branches {
                    write!(f, " WHEN {} THEN {}", sub(w), sub(t))?;
                }
                if let Some(o) = otherwise {
                    write!(f, " ELSE {}", sub(o))?;
                }
                f.write_str(" END")
            }
        }
    }
}
