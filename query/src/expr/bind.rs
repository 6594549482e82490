//! Binding expressions: sqlparser `Expr` -> typed [`BExpr`].
//!
//! Names resolve against a [`Scope`] (unquoted identifiers fold to lower case, as in PostgreSQL).
//! Untyped string literals and `$n` parameters take the type their context needs: a literal is
//! converted once, here (so `'[1,2,3]'` next to a vector becomes a vector constant and a malformed
//! one fails with `22P02` before any row is read); a parameter gets a run-time cast and its type is
//! recorded in [`ParamTypes`]. In an aggregate query the binder runs in *aggregate mode*: GROUP BY
//! expressions and aggregate calls become references into the aggregate's output row.

use std::cell::RefCell;

use sqlparser::ast::{
    self as ast, BinaryOperator, CastKind, DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, UnaryOperator, Value as AstValue,
};
use vela_engine::catalog::Value;

use super::aggregate::{AggCall, AggFunc};
use super::cast::{cast_value, castable};
use super::functions::{common_type, ScalarFunc};
use super::{BExpr, BinaryOp, Scope, UnaryOp};
use crate::dialect::L1_OPERATOR;
use crate::engine::Engine;
use crate::error::{QueryError, Result};
use crate::plan::optimizer::optimize;
use crate::plan::{InitPlan, SubPlan, SubqueryKind};
use crate::select::{bind_query, BindContext};
use crate::types::{resolve_ast_type, SqlType};

/// Largest `$n` accepted.
pub const MAX_PARAMS: usize = 65_535;

/// A bound expression and its type.
#[derive(Debug, Clone, PartialEq)]
pub struct Typed {
    pub expr: BExpr,
    pub ty: SqlType,
}

impl Typed {
    fn new(expr: BExpr, ty: SqlType) -> Self {
        Typed { expr, ty }
    }
}

/// The types inferred for `$1..$n` (Unknown where context gave none), and the statement's
/// subqueries: init plans (uncorrelated subqueries) and subplans (correlated ones) bound so far,
/// each numbered statement-wide in binding order (an inner subquery is pushed before the one
/// containing it, so each init plan may use those before it).
/// [`crate::select::plan_query`] takes them into a [`crate::plan::Plan::InitPlans`] root.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamTypes {
    pub types: Vec<SqlType>,
    pub init_plans: Vec<InitPlan>,
    pub sub_plans: Vec<SubPlan>,
}

impl ParamTypes {
    fn note(&mut self, index: usize, ty: SqlType) {
        if self.types.len() <= index {
            self.types.resize(index + 1, SqlType::Unknown);
        }
        if let Some(slot) = self.types.get_mut(index) {
            if *slot == SqlType::Unknown {
                *slot = ty;
            }
        }
    }
}

/// Aggregate mode: GROUP BY expressions and the aggregate calls found so far.
#[derive(Debug, Clone, Default)]
pub struct AggState {
    /// The scope aggregate arguments and GROUP BY expressions bind against.
    pub input: Scope,
    pub group_asts: Vec<Expr>,
    pub groups: Vec<Typed>,
    pub calls: Vec<AggCall>,
    call_asts: Vec<Expr>,
}

impl AggState {
    /// Aggregate state over `input` grouping by `group_asts`.
    pub fn new(input: Scope, group_asts: Vec<Expr>, params: &mut ParamTypes) -> Result<Self> {
        let mut groups = Vec::with_capacity(group_asts.len());
        for g in &group_asts {
            let mut b = Binder::new(&input, params);
            groups.push(b.bind(g)?);
        }
        Ok(AggState {
            input,
            group_asts,
            groups,
            calls: Vec::new(),
            call_asts: Vec::new(),
        })
    }
}

/// The names of an enclosing query, seen from a subquery bound inside it: a name the subquery's
/// own FROM does not have resolves here (a correlated reference), else in the next enclosing
/// query. Each outer value the subquery reads becomes one of its arguments: `args` holds how
/// the enclosing query computes it (a column of its row, or, for a value from further out, its
/// own [`BExpr::Outer`]) and its name for EXPLAIN; inside the subquery it reads as
/// `BExpr::Outer(n)`.
pub struct OuterFrame<'f> {
    scope: &'f Scope,
    /// The enclosing query's aggregate state when the subquery is in its select list, HAVING
    /// or ORDER BY: an outer name must then be one of its GROUP BY columns.
    agg: Option<&'f AggState>,
    parent: Option<&'f OuterFrame<'f>>,
    args: RefCell<Vec<(BExpr, String)>>,
}

impl OuterFrame<'_> {
    /// Whether an enclosing query has a FROM item called `q`.
    fn has_qualifier(&self, q: &str) -> bool {
        let scope = self.agg.map_or(self.scope, |a| &a.input);
        scope
            .columns
            .iter()
            .any(|c| c.qualifier.as_deref() == Some(q))
            || self.parent.is_some_and(|p| p.has_qualifier(q))
    }

    /// The argument number of the outer column `qualifier.name`, added on first use; `None` if
    /// no enclosing query has it.
    fn resolve(&self, qualifier: Option<&str>, name: &str) -> Result<Option<(usize, SqlType)>> {
        let display = match qualifier {
            Some(q) => format!("{q}.{name}"),
            None => name.to_string(),
        };
        let here = match self.agg {
            Some(agg) => match lookup(&agg.input, qualifier, name)? {
                Some((i, c)) => {
                    let j = agg
                        .groups
                        .iter()
                        .position(|g| g.expr == BExpr::Column(i))
                        .ok_or_else(|| {
                            QueryError::Grouping(format!(
                                "subquery uses ungrouped column \"{display}\" from outer query"
                            ))
                        })?;
                    Some((BExpr::Column(j), c.ty, outer_display(c)))
                }
                None => None,
            },
            None => lookup(self.scope, qualifier, name)?
                .map(|(i, c)| (BExpr::Column(i), c.ty, outer_display(c))),
        };
        let found = match (here, self.parent) {
            (Some(f), _) => Some(f),
            (None, Some(parent)) => parent
                .resolve(qualifier, name)?
                .map(|(k, ty)| (BExpr::Outer(k), ty, display)),
            (None, None) => None,
        };
        let Some((expr, ty, display)) = found else {
            return Ok(None);
        };
        let mut args = self.args.borrow_mut();
        let k = match args.iter().position(|(e, _)| *e == expr) {
            Some(k) => k,
            None => {
                args.push((expr, display));
                args.len() - 1
            }
        };
        Ok(Some((k, ty)))
    }
}

/// An outer column's name in EXPLAIN: qualified when it has a qualifier.
fn outer_display(c: &super::ScopeColumn) -> String {
    match &c.qualifier {
        Some(q) => format!("{q}.{}", c.name),
        None => c.name.clone(),
    }
}

/// The position and column of `qualifier.name` in `scope`; `42702` when several match.
fn lookup<'s>(
    scope: &'s Scope,
    qualifier: Option<&str>,
    name: &str,
) -> Result<Option<(usize, &'s super::ScopeColumn)>> {
    let mut found = None;
    for (i, c) in scope.columns.iter().enumerate() {
        let qualifier_ok = match qualifier {
            None => true,
            Some(q) => c.qualifier.as_deref() == Some(q),
        };
        if qualifier_ok && c.name == name {
            if found.is_some() {
                return Err(QueryError::AmbiguousColumn(match qualifier {
                    Some(q) => format!("{q}.{name}"),
                    None => name.to_string(),
                }));
            }
            found = Some((i, c));
        }
    }
    Ok(found)
}

/// A bound subquery: an init plan's slot, or a correlated subplan's slot and the arguments it
/// is run with.
enum BoundSubquery {
    Init(usize),
    Correlated { slot: usize, args: Vec<BExpr> },
}

impl BoundSubquery {
    /// The expression reading a scalar subquery's value or EXISTS's boolean.
    fn value(self) -> BExpr {
        match self {
            BoundSubquery::Init(slot) => BExpr::Subquery(slot),
            BoundSubquery::Correlated { slot, args } => BExpr::SubPlan { slot, args },
        }
    }
}

/// Binds expressions against one scope.
pub struct Binder<'a> {
    scope: &'a Scope,
    params: &'a mut ParamTypes,
    agg: Option<&'a mut AggState>,
    /// The catalog, for binding subqueries; without it a subquery is `0A000`.
    engine: Option<&'a dyn Engine>,
    /// The enclosing queries' names, when this binds inside a subquery.
    outer: Option<&'a OuterFrame<'a>>,
}

/// The name of an identifier as PostgreSQL folds it.
pub fn ident_name(id: &Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    }
}

/// Whether an AST expression calls an aggregate function anywhere (outside subqueries).
pub fn has_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Function(f) => {
            let name = f.name.to_string();
            AggFunc::from_name(&name).is_some()
                || match &f.args {
                    FunctionArguments::List(l) => l.args.iter().any(|a| match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => has_aggregate(e),
                        _ => false,
                    }),
                    _ => false,
                }
        }
        Expr::BinaryOp { left, right, .. } => has_aggregate(left) || has_aggregate(right),
        Expr::UnaryOp { expr, .. }
        | Expr::Nested(expr)
        | Expr::Cast { expr, .. }
        | Expr::IsNull(expr)
        | Expr::IsNotNull(expr) => has_aggregate(expr),
        Expr::Between {
            expr, low, high, ..
        } => has_aggregate(expr) || has_aggregate(low) || has_aggregate(high),
        Expr::In {
            expr,
            target: ast::InTarget::List(list),
            ..
        } => has_aggregate(expr) || list.iter().any(has_aggregate),
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            operand.as_deref().is_some_and(has_aggregate)
                || conditions
                    .iter()
                    .any(|c| has_aggregate(&c.condition) || has_aggregate(&c.result))
                || else_result.as_deref().is_some_and(has_aggregate)
        }
        _ => false,
    }
}

impl<'a> Binder<'a> {
    /// A binder over `scope` recording parameter types in `params`.
    pub fn new(scope: &'a Scope, params: &'a mut ParamTypes) -> Self {
        Binder {
            scope,
            params,
            agg: None,
            engine: None,
            outer: None,
        }
    }

    /// Lets the binder bind subqueries (`(SELECT ...)`, `IN (SELECT ...)`, `EXISTS (...)`)
    /// against `engine`'s catalog.
    pub fn with_engine(mut self, engine: &'a dyn Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Lets names that are not in the scope resolve in the enclosing queries (`outer`, when
    /// this binds inside a subquery).
    pub fn with_outer(mut self, outer: Option<&'a OuterFrame<'a>>) -> Self {
        self.outer = outer;
        self
    }

    /// A binder in aggregate mode.
    pub fn with_aggregates(
        scope: &'a Scope,
        params: &'a mut ParamTypes,
        agg: &'a mut AggState,
    ) -> Self {
        Binder {
            scope,
            params,
            agg: Some(agg),
            engine: None,
            outer: None,
        }
    }

    /// Binds and coerces to `target` (e.g. a WHERE clause to boolean).
    pub fn bind_as(&mut self, e: &Expr, target: SqlType, context: &str) -> Result<BExpr> {
        let t = self.bind(e)?;
        coerce(t, target, self.params).map_err(|_| {
            QueryError::mismatch(format!("argument of {context} must be type {target}"))
        })
    }

    /// Binds one expression.
    pub fn bind(&mut self, e: &Expr) -> Result<Typed> {
        if let Some(agg) = self.agg.as_deref_mut() {
            if let Some(i) = agg.group_asts.iter().position(|g| g == e) {
                let ty = agg.groups.get(i).map_or(SqlType::Unknown, |g| g.ty);
                return Ok(Typed::new(BExpr::Column(i), ty));
            }
        }
        match e {
            Expr::Identifier(id) => self.column(None, &ident_name(id)),
            Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [q, c] => self.column(Some(&ident_name(q)), &ident_name(c)),
                [_, q, c] => self.column(Some(&ident_name(q)), &ident_name(c)),
                _ => Err(QueryError::unsupported(format!("column reference {e}"))),
            },
            Expr::Value(v) => self.literal(&v.value),
            Expr::Nested(inner) => self.bind(inner),
            Expr::UnaryOp { op, expr } => self.unary(*op, expr),
            Expr::BinaryOp { left, op, right } => {
                let op = binary_op(op)?;
                let l = self.bind(left)?;
                let r = self.bind(right)?;
                bind_binary(op, l, r, self.params)
            }
            Expr::IsNull(inner) | Expr::IsNotNull(inner) => {
                let t = self.bind(inner)?;
                Ok(Typed::new(
                    BExpr::IsNull {
                        expr: Box::new(t.expr),
                        negated: matches!(e, Expr::IsNotNull(_)),
                    },
                    SqlType::Boolean,
                ))
            }
            Expr::IsTrue(inner)
            | Expr::IsFalse(inner)
            | Expr::IsNotTrue(inner)
            | Expr::IsNotFalse(inner) => {
                let t = self.bind_as(inner, SqlType::Boolean, "IS TRUE")?;
                let want = matches!(e, Expr::IsTrue(_) | Expr::IsNotFalse(_));
                let eq = BExpr::Binary(
                    BinaryOp::Eq,
                    Box::new(t),
                    Box::new(BExpr::Literal(Value::Boolean(want))),
                );
                let null_ok = matches!(e, Expr::IsNotTrue(_) | Expr::IsNotFalse(_));
                Ok(Typed::new(
                    BExpr::Func(
                        ScalarFunc::Coalesce,
                        vec![eq, BExpr::Literal(Value::Boolean(null_ok))],
                    ),
                    SqlType::Boolean,
                ))
            }
            Expr::In {
                expr,
                target: ast::InTarget::List(list),
                negated,
                global: false,
            } => self.in_list(expr, list, *negated),
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let items = [self.bind(expr)?, self.bind(low)?, self.bind(high)?];
                let ty = comparable_type(&items.iter().map(|t| t.ty).collect::<Vec<_>>())?;
                let [a, b, c] = items;
                Ok(Typed::new(
                    BExpr::Between {
                        expr: Box::new(coerce(a, ty, self.params)?),
                        low: Box::new(coerce(b, ty, self.params)?),
                        high: Box::new(coerce(c, ty, self.params)?),
                        negated: *negated,
                    },
                    SqlType::Boolean,
                ))
            }
            Expr::Like {
                negated,
                any: false,
                expr,
                pattern,
                escape_char: None,
            } => self.like(expr, pattern, *negated, false),
            Expr::ILike {
                negated,
                any: false,
                expr,
                pattern,
                escape_char: None,
            } => self.like(expr, pattern, *negated, true),
            Expr::Cast {
                kind: CastKind::Cast | CastKind::DoubleColon,
                expr,
                data_type,
                format: None,
            } => {
                let target = resolve_ast_type(data_type)?;
                let t = self.bind(expr)?;
                cast_to(t, target, self.params)
            }
            Expr::TypedString(ts) => {
                let target = resolve_ast_type(&ts.data_type)?;
                let t = self.literal(&ts.value.value)?;
                cast_to(t, target, self.params)
            }
            Expr::Function(f) => self.function(f),
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let one = Expr::value(AstValue::Number("1".into(), false));
                let from = substring_from.as_deref().unwrap_or(&one).clone();
                let mut args = vec![(**expr).clone(), from];
                if let Some(n) = substring_for {
                    args.push((**n).clone());
                }
                self.call("substr", &args)
            }
            Expr::Trim {
                expr,
                trim_where,
                trim_what,
                trim_characters,
            } => {
                let name = match trim_where {
                    None | Some(ast::TrimWhereField::Both) => "btrim",
                    Some(ast::TrimWhereField::Leading) => "ltrim",
                    Some(ast::TrimWhereField::Trailing) => "rtrim",
                };
                let mut args = vec![(**expr).clone()];
                match (trim_what, trim_characters.as_deref()) {
                    (Some(w), None) => args.push((**w).clone()),
                    (None, Some([c])) => args.push(c.clone()),
                    (None, None) => {}
                    _ => return Err(QueryError::unsupported(format!("expression {e}"))),
                }
                self.call(name, &args)
            }
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.case(operand.as_deref(), conditions, else_result.as_deref()),
            Expr::Subquery(q) => {
                let (sub, ty) = self.subquery(q, SubqueryKind::Scalar)?;
                Ok(Typed::new(sub.value(), ty))
            }
            Expr::Exists { subquery, negated } => {
                let (sub, _) = self.subquery(subquery, SubqueryKind::Exists)?;
                let e = sub.value();
                let e = if *negated {
                    BExpr::Unary(UnaryOp::Not, Box::new(e))
                } else {
                    e
                };
                Ok(Typed::new(e, SqlType::Boolean))
            }
            Expr::In {
                expr,
                target: ast::InTarget::Subquery(subquery),
                negated,
                global: false,
            } => {
                let head = self.bind(expr)?;
                let (sub, ty) = self.subquery(subquery, SubqueryKind::In)?;
                let common = comparable_type(&[head.ty, ty])?;
                if common != ty && !(common.is_numeric() && ty.is_numeric()) {
                    return Err(QueryError::UndefinedFunction(format!(
                        "operator does not exist: {} = {ty}",
                        head.ty
                    )));
                }
                let expr = Box::new(coerce(head, common, self.params)?);
                let e = match sub {
                    BoundSubquery::Init(slot) => BExpr::InSubquery {
                        expr,
                        slot,
                        negated: *negated,
                    },
                    BoundSubquery::Correlated { slot, args } => BExpr::InSubPlan {
                        expr,
                        slot,
                        args,
                        negated: *negated,
                    },
                };
                Ok(Typed::new(e, SqlType::Boolean))
            }
            Expr::In { .. } => Err(QueryError::unsupported(format!("expression {e}"))),
            other => Err(QueryError::unsupported(format!("expression {other}"))),
        }
    }

    /// Binds a subquery as its own plan, with this binder's names (and those of the queries
    /// around it) visible as outer references. Uncorrelated, it becomes one of the statement's
    /// init plans; correlated, one of its subplans, with the outer values it reads as arguments.
    /// Returns it and (for a scalar or IN subquery) its column's type.
    fn subquery(&mut self, q: &ast::Query, kind: SubqueryKind) -> Result<(BoundSubquery, SqlType)> {
        let Some(engine) = self.engine else {
            return Err(QueryError::unsupported("a subquery in this clause"));
        };
        let frame = OuterFrame {
            scope: self.scope,
            agg: self.agg.as_deref(),
            parent: self.outer,
            args: RefCell::default(),
        };
        let mut ctx = BindContext {
            engine,
            params: &mut *self.params,
            outer: Some(&frame),
        };
        let bound = bind_query(q, &mut ctx);
        let args = frame.args.into_inner();
        let bound = match bound {
            Ok(b) => b,
            Err(e) => return Err(self.correlated(e)),
        };
        let ty = match kind {
            SubqueryKind::Exists => SqlType::Boolean,
            SubqueryKind::Scalar | SubqueryKind::In => match bound.columns.as_slice() {
                [c] => match c.ty {
                    // As in PostgreSQL, an untyped subquery column resolves to text.
                    SqlType::Unknown | SqlType::Null => SqlType::Text,
                    t => t,
                },
                [] | [_, _, ..] => {
                    return Err(QueryError::Syntax {
                        message: if bound.columns.is_empty() {
                            "subquery must return a column".into()
                        } else {
                            "subquery must return only one column".into()
                        },
                        line: 0,
                        column: 0,
                    })
                }
            },
        };
        let plan = optimize(bound.root);
        if args.is_empty() {
            self.params.init_plans.push(InitPlan { plan, kind });
            return Ok((BoundSubquery::Init(self.params.init_plans.len() - 1), ty));
        }
        let (args, arg_names) = args.into_iter().unzip();
        self.params.sub_plans.push(SubPlan {
            plan,
            kind,
            arg_names,
        });
        let slot = self.params.sub_plans.len() - 1;
        Ok((BoundSubquery::Correlated { slot, args }, ty))
    }

    /// A subquery's name-resolution error that names a column of the outer query where outer
    /// references cannot be resolved (inside an aggregate's argument, a GROUP BY or a LIMIT of
    /// the subquery): `0A000` rather than "does not exist".
    fn correlated(&self, e: QueryError) -> QueryError {
        let outer: Vec<&super::ScopeColumn> = self
            .scope
            .columns
            .iter()
            .chain(
                self.agg
                    .as_deref()
                    .into_iter()
                    .flat_map(|a| a.input.columns.iter()),
            )
            .collect();
        let hit = match &e {
            QueryError::UndefinedColumn(display) => match display.split_once('.') {
                Some((q, n)) => outer
                    .iter()
                    .any(|c| c.qualifier.as_deref() == Some(q) && c.name == n),
                None => outer.iter().any(|c| c.name == *display),
            },
            QueryError::UndefinedTable(msg) if msg.contains("missing FROM-clause entry") => {
                let q = msg.split('"').next().unwrap_or_default();
                outer.iter().any(|c| c.qualifier.as_deref() == Some(q))
            }
            _ => false,
        };
        if hit {
            let what = match &e {
                QueryError::UndefinedColumn(d) => format!("column {d}"),
                QueryError::UndefinedTable(m) => {
                    format!("table {}", m.split('"').next().unwrap_or_default())
                }
                _ => String::new(),
            };
            QueryError::unsupported(format!(
                "a correlated subquery (it references the outer query's {what})"
            ))
        } else {
            e
        }
    }

    /// A column of the enclosing queries, as this subquery's argument.
    fn outer_column(&self, qualifier: Option<&str>, name: &str) -> Result<Option<Typed>> {
        let Some(frame) = self.outer else {
            return Ok(None);
        };
        Ok(frame
            .resolve(qualifier, name)?
            .map(|(k, ty)| Typed::new(BExpr::Outer(k), ty)))
    }

    fn column(&mut self, qualifier: Option<&str>, name: &str) -> Result<Typed> {
        let display = match qualifier {
            Some(q) => format!("{q}.{name}"),
            None => name.to_string(),
        };
        if let Some(agg) = self.agg.as_deref() {
            // A column of the enclosing query is a constant here; one of this query's own
            // rows must be grouped.
            if lookup(&agg.input, qualifier, name)?.is_none() {
                if let Some(t) = self.outer_column(qualifier, name)? {
                    return Ok(t);
                }
            }
            return Err(QueryError::Grouping(format!(
                "column \"{display}\" must appear in the GROUP BY clause or be used in an aggregate function"
            )));
        }
        match lookup(self.scope, qualifier, name)? {
            Some((i, c)) => Ok(Typed::new(BExpr::Column(i), c.ty)),
            None => {
                if let Some(t) = self.outer_column(qualifier, name)? {
                    return Ok(t);
                }
                if let Some(q) = qualifier {
                    if !self
                        .scope
                        .columns
                        .iter()
                        .any(|c| c.qualifier.as_deref() == Some(q))
                        && !self.outer.is_some_and(|f| f.has_qualifier(q))
                    {
                        return Err(QueryError::UndefinedTable(format!(
                            "{q}\" (missing FROM-clause entry for table \"{q}"
                        )));
                    }
                }
                Err(QueryError::UndefinedColumn(display))
            }
        }
    }

    fn literal(&mut self, v: &AstValue) -> Result<Typed> {
        Ok(match v {
            AstValue::Number(text, _) => {
                if let Ok(i) = text.parse::<i64>() {
                    Typed::new(BExpr::Literal(Value::BigInt(i)), SqlType::BigInt)
                } else {
                    let d: f64 = text.parse().map_err(|_| {
                        QueryError::InvalidTextRepresentation(format!(
                            "invalid input syntax for type numeric: \"{text}\""
                        ))
                    })?;
                    if !d.is_finite() {
                        return Err(QueryError::NumericOutOfRange(format!(
                            "\"{text}\" is out of range for type double precision"
                        )));
                    }
                    Typed::new(BExpr::Literal(Value::Double(d)), SqlType::Double)
                }
            }
            AstValue::SingleQuotedString(s)
            | AstValue::EscapedStringLiteral(s)
            | AstValue::UnicodeStringLiteral(s) => {
                Typed::new(BExpr::Literal(Value::Text(s.clone())), SqlType::Unknown)
            }
            AstValue::DollarQuotedString(s) => Typed::new(
                BExpr::Literal(Value::Text(s.value.clone())),
                SqlType::Unknown,
            ),
            AstValue::Boolean(b) => {
                Typed::new(BExpr::Literal(Value::Boolean(*b)), SqlType::Boolean)
            }
            AstValue::Null => Typed::new(BExpr::Literal(Value::Null), SqlType::Null),
            AstValue::Placeholder(p) => {
                let index = p
                    .strip_prefix('$')
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| (1..=MAX_PARAMS).contains(n))
                    .ok_or_else(|| {
                        QueryError::unsupported(format!(
                            "parameter placeholder {p} (use $1, $2, ...)"
                        ))
                    })?;
                self.params.note(index - 1, SqlType::Unknown);
                let ty = self
                    .params
                    .types
                    .get(index - 1)
                    .copied()
                    .unwrap_or(SqlType::Unknown);
                if ty == SqlType::Unknown {
                    Typed::new(BExpr::Param(index - 1), SqlType::Unknown)
                } else {
                    Typed::new(BExpr::Cast(Box::new(BExpr::Param(index - 1)), ty), ty)
                }
            }
            other => return Err(QueryError::unsupported(format!("literal {other}"))),
        })
    }

    fn unary(&mut self, op: UnaryOperator, expr: &Expr) -> Result<Typed> {
        let t = self.bind(expr)?;
        match op {
            UnaryOperator::Not => {
                let e = coerce(t, SqlType::Boolean, self.params)
                    .map_err(|_| QueryError::mismatch("argument of NOT must be type boolean"))?;
                Ok(Typed::new(
                    BExpr::Unary(UnaryOp::Not, Box::new(e)),
                    SqlType::Boolean,
                ))
            }
            UnaryOperator::Minus | UnaryOperator::Plus => {
                let ty = match t.ty {
                    SqlType::BigInt | SqlType::Double => t.ty,
                    SqlType::Unknown | SqlType::Null => SqlType::Double,
                    other => {
                        return Err(QueryError::UndefinedFunction(format!(
                            "operator does not exist: {op} {other}"
                        )))
                    }
                };
                let e = coerce(t, ty, self.params)?;
                if op == UnaryOperator::Plus {
                    return Ok(Typed::new(e, ty));
                }
                // Fold negative literals so `-9223372036854775808` and `LIMIT -1` work.
                if let BExpr::Literal(v) = &e {
                    let folded = match v {
                        Value::BigInt(i) => i.checked_neg().map(Value::BigInt),
                        Value::Double(d) => Some(Value::Double(-d)),
                        _ => None,
                    };
                    if let Some(v) = folded {
                        return Ok(Typed::new(BExpr::Literal(v), ty));
                    }
                }
                Ok(Typed::new(BExpr::Unary(UnaryOp::Neg, Box::new(e)), ty))
            }
            other => Err(QueryError::unsupported(format!("operator {other}"))),
        }
    }

    fn in_list(&mut self, expr: &Expr, list: &[Expr], negated: bool) -> Result<Typed> {
        let head = self.bind(expr)?;
        let items = list
            .iter()
            .map(|e| self.bind(e))
            .collect::<Result<Vec<_>>>()?;
        let mut types = vec![head.ty];
        types.extend(items.iter().map(|t| t.ty));
        let ty = comparable_type(&types)?;
        let list = items
            .into_iter()
            .map(|t| coerce(t, ty, self.params))
            .collect::<Result<Vec<_>>>()?;
        Ok(Typed::new(
            BExpr::InList {
                expr: Box::new(coerce(head, ty, self.params)?),
                list,
                negated,
            },
            SqlType::Boolean,
        ))
    }

    fn like(&mut self, expr: &Expr, pattern: &Expr, negated: bool, ci: bool) -> Result<Typed> {
        let op = if ci { "ILIKE" } else { "LIKE" };
        let a = self.bind(expr)?;
        let p = self.bind(pattern)?;
        let bad = |a: SqlType, b: SqlType| {
            QueryError::UndefinedFunction(format!("operator does not exist: {a} ~~ {b} ({op})"))
        };
        let (ta, tp) = (a.ty, p.ty);
        let a = coerce(a, SqlType::Text, self.params).map_err(|_| bad(ta, tp))?;
        let p = coerce(p, SqlType::Text, self.params).map_err(|_| bad(ta, tp))?;
        Ok(Typed::new(
            BExpr::Like {
                expr: Box::new(a),
                pattern: Box::new(p),
                negated,
                case_insensitive: ci,
            },
            SqlType::Boolean,
        ))
    }

    fn case(
        &mut self,
        operand: Option<&Expr>,
        conditions: &[ast::CaseWhen],
        else_result: Option<&Expr>,
    ) -> Result<Typed> {
        let operand = operand.map(|o| self.bind(o)).transpose()?;
        let mut whens = Vec::new();
        let mut thens = Vec::new();
        for c in conditions {
            let w = match &operand {
                Some(o) => {
                    let rhs = self.bind(&c.condition)?;
                    coerce(
                        bind_binary(BinaryOp::Eq, o.clone(), rhs, self.params)?,
                        SqlType::Boolean,
                        self.params,
                    )?
                }
                None => self.bind_as(&c.condition, SqlType::Boolean, "CASE/WHEN")?,
            };
            whens.push(w);
            thens.push(self.bind(&c.result)?);
        }
        let otherwise = else_result.map(|e| self.bind(e)).transpose()?;
        let mut types: Vec<SqlType> = thens.iter().map(|t| t.ty).collect();
        if let Some(o) = &otherwise {
            types.push(o.ty);
        }
        let ty = common_type(&types)
            .ok_or_else(|| QueryError::mismatch("CASE types cannot be matched"))?;
        let mut branches = Vec::new();
        for (w, t) in whens.into_iter().zip(thens) {
            branches.push((w, coerce(t, ty, self.params)?));
        }
        let otherwise = otherwise
            .map(|o| coerce(o, ty, self.params).map(Box::new))
            .transpose()?;
        Ok(Typed::new(
            BExpr::Case {
                branches,
                otherwise,
            },
            ty,
        ))
    }

    fn function(&mut self, f: &ast::Function) -> Result<Typed> {
        let name = f.name.to_string().to_ascii_lowercase();
        if f.over.is_some() {
            return Err(QueryError::unsupported("window functions"));
        }
        if f.filter.is_some() || !f.within_group.is_empty() {
            return Err(QueryError::unsupported(format!(
                "{name} with FILTER or WITHIN GROUP"
            )));
        }
        let (args, distinct, star) = match &f.args {
            FunctionArguments::None => (Vec::new(), false, false),
            FunctionArguments::Subquery(_) => {
                return Err(QueryError::unsupported("subqueries in expressions"))
            }
            FunctionArguments::List(list) => {
                if !list.clauses.is_empty() {
                    return Err(QueryError::unsupported(format!("clauses in {name}(...)")));
                }
                let distinct =
                    matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
                let mut args = Vec::new();
                let mut star = false;
                for a in &list.args {
                    match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(e.clone()),
                        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => star = true,
                        _ => {
                            return Err(QueryError::unsupported(format!(
                                "named or qualified arguments in {name}(...)"
                            )))
                        }
                    }
                }
                (args, distinct, star)
            }
        };
        if let Some(func) = AggFunc::from_name(&name) {
            return self.aggregate(func, &args, distinct, star, &Expr::Function(f.clone()));
        }
        if star || distinct {
            return Err(QueryError::UndefinedFunction(format!(
                "function {name}(*) does not exist"
            )));
        }
        self.call(&name, &args)
    }

    /// Binds a scalar function call `name(args)`.
    fn call(&mut self, name: &str, args: &[Expr]) -> Result<Typed> {
        let bound = args
            .iter()
            .map(|a| self.bind(a))
            .collect::<Result<Vec<_>>>()?;
        let types: Vec<SqlType> = bound.iter().map(|t| t.ty).collect();
        let sig = ScalarFunc::resolve(name, &types)?;
        let mut out = Vec::with_capacity(bound.len());
        for (t, target) in bound.into_iter().zip(&sig.args) {
            out.push(coerce(t, *target, self.params)?);
        }
        Ok(Typed::new(BExpr::Func(sig.func, out), sig.result))
    }

    fn aggregate(
        &mut self,
        func: AggFunc,
        args: &[Expr],
        distinct: bool,
        star: bool,
        whole: &Expr,
    ) -> Result<Typed> {
        let Some(agg) = self.agg.as_deref_mut() else {
            return Err(QueryError::Grouping(format!(
                "aggregate functions are not allowed here ({}())",
                func.name()
            )));
        };
        if let Some(i) = agg.call_asts.iter().position(|a| a == whole) {
            let ty = agg.calls.get(i).map_or(SqlType::Unknown, |c| c.ty);
            return Ok(Typed::new(BExpr::Column(agg.groups.len() + i), ty));
        }
        let (func, arg, arg_ty) = match (func, star, args) {
            (AggFunc::Count, true, []) => (AggFunc::CountStar, None, SqlType::BigInt),
            (_, false, [a]) => {
                if has_aggregate(a) {
                    return Err(QueryError::Grouping(
                        "aggregate function calls cannot be nested".into(),
                    ));
                }
                let input = agg.input.clone();
                let mut inner = Binder::new(&input, self.params);
                inner.engine = self.engine;
                let t = inner.bind(a)?;
                let ty = t.ty;
                let target = func.result_type(ty)?;
                // sum/avg of an untyped literal: treat it as a number.
                let e = if ty.is_untyped() && matches!(func, AggFunc::Sum | AggFunc::Avg) {
                    coerce(t, SqlType::Double, self.params)?
                } else {
                    t.expr
                };
                let _ = target;
                (func, Some(e), ty)
            }
            _ => {
                return Err(QueryError::UndefinedFunction(format!(
                    "function {}() with {} arguments does not exist",
                    func.name(),
                    args.len()
                )))
            }
        };
        let ty = func.result_type(arg_ty)?;
        let agg = self
            .agg
            .as_deref_mut()
            .ok_or_else(|| QueryError::Internal("aggregate state vanished".into()))?;
        agg.calls.push(AggCall {
            func,
            arg,
            distinct,
            ty,
        });
        agg.call_asts.push(whole.clone());
        Ok(Typed::new(
            BExpr::Column(agg.groups.len() + agg.calls.len() - 1),
            ty,
        ))
    }
}

/// Maps sqlparser's operator to ours; pgvector's operators included.
fn binary_op(op: &BinaryOperator) -> Result<BinaryOp> {
    Ok(match op {
        BinaryOperator::Plus => BinaryOp::Add,
        BinaryOperator::Minus => BinaryOp::Sub,
        BinaryOperator::Multiply => BinaryOp::Mul,
        BinaryOperator::Divide => BinaryOp::Div,
        BinaryOperator::Modulo => BinaryOp::Mod,
        BinaryOperator::Eq => BinaryOp::Eq,
        BinaryOperator::NotEq => BinaryOp::NotEq,
        BinaryOperator::Lt => BinaryOp::Lt,
        BinaryOperator::LtEq => BinaryOp::LtEq,
        BinaryOperator::Gt => BinaryOp::Gt,
        BinaryOperator::GtEq => BinaryOp::GtEq,
        BinaryOperator::And => BinaryOp::And,
        BinaryOperator::Or => BinaryOp::Or,
        BinaryOperator::StringConcat => BinaryOp::Concat,
        BinaryOperator::LtDashGt => BinaryOp::L2Distance,
        BinaryOperator::Spaceship => BinaryOp::CosineDistance,
        BinaryOperator::Custom(s) if s == "<#>" => BinaryOp::NegInnerProduct,
        BinaryOperator::Custom(s) if s == L1_OPERATOR => BinaryOp::L1Distance,
        other => {
            return Err(QueryError::UndefinedFunction(format!(
                "operator does not exist: {other}"
            )))
        }
    })
}

/// The type both sides of a comparison are brought to.
fn comparable_type(types: &[SqlType]) -> Result<SqlType> {
    let ty = common_type(types).ok_or_else(|| {
        let names: Vec<String> = types.iter().map(|t| t.to_string()).collect();
        QueryError::UndefinedFunction(format!("operator does not exist: {}", names.join(" = ")))
    })?;
    Ok(ty)
}

/// Types a binary operator application.
pub fn bind_binary(op: BinaryOp, l: Typed, r: Typed, params: &mut ParamTypes) -> Result<Typed> {
    let no_op = |l: SqlType, r: SqlType| {
        QueryError::UndefinedFunction(format!("operator does not exist: {l} {} {r}", op.symbol()))
    };
    let (lt, rt) = (l.ty, r.ty);
    let pair =
        |l: Typed, r: Typed, ty: SqlType, params: &mut ParamTypes| -> Result<(BExpr, BExpr)> {
            Ok((coerce(l, ty, params)?, coerce(r, ty, params)?))
        };
    let make = |a: BExpr, b: BExpr, ty| Typed::new(BExpr::Binary(op, Box::new(a), Box::new(b)), ty);
    match op {
        BinaryOp::And | BinaryOp::Or => {
            let b = SqlType::Boolean;
            let ok = |t: SqlType| t == b || t.is_untyped();
            if !ok(lt) || !ok(rt) {
                let bad = if ok(lt) { rt } else { lt };
                return Err(QueryError::mismatch(format!(
                    "argument of {} must be type boolean, not type {bad}",
                    op.symbol()
                )));
            }
            let (a, c) = pair(l, r, b, params)?;
            Ok(make(a, c, b))
        }
        BinaryOp::Eq
        | BinaryOp::NotEq
        | BinaryOp::Lt
        | BinaryOp::LtEq
        | BinaryOp::Gt
        | BinaryOp::GtEq => {
            let ty = common_type(&[lt, rt]).ok_or_else(|| no_op(lt, rt))?;
            let (a, c) = pair(l, r, ty, params)?;
            Ok(make(a, c, SqlType::Boolean))
        }
        BinaryOp::Concat => {
            if lt.is_vector() || rt.is_vector() {
                return Err(no_op(lt, rt));
            }
            let a = if lt == SqlType::Text || lt.is_untyped() {
                coerce(l, SqlType::Text, params)?
            } else {
                BExpr::Cast(Box::new(l.expr), SqlType::Text)
            };
            let c = if rt == SqlType::Text || rt.is_untyped() {
                coerce(r, SqlType::Text, params)?
            } else {
                BExpr::Cast(Box::new(r.expr), SqlType::Text)
            };
            Ok(make(a, c, SqlType::Text))
        }
        BinaryOp::L2Distance
        | BinaryOp::CosineDistance
        | BinaryOp::NegInnerProduct
        | BinaryOp::L1Distance => {
            let vec_ok = |t: SqlType| t.is_vector() || t.is_untyped();
            if !vec_ok(lt) || !vec_ok(rt) || (lt.is_untyped() && rt.is_untyped()) {
                return Err(no_op(lt, rt));
            }
            // Untyped operands become `vector` without a dimension, so a mismatch is pgvector's
            // "different vector dimensions" rather than a cast error.
            let (a, c) = pair(l, r, SqlType::Vector(None), params)?;
            Ok(make(a, c, SqlType::Double))
        }
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => {
            if lt.is_vector() || rt.is_vector() {
                let vec_ok = |t: SqlType| t.is_vector() || t.is_untyped();
                if !vec_ok(lt) || !vec_ok(rt) || matches!(op, BinaryOp::Div | BinaryOp::Mod) {
                    return Err(no_op(lt, rt));
                }
                let ty = common_type(&[lt, rt]).ok_or_else(|| no_op(lt, rt))?;
                let (a, c) = pair(l, r, SqlType::Vector(None), params)?;
                return Ok(make(a, c, ty));
            }
            let num_ok = |t: SqlType| t.is_numeric() || t.is_untyped();
            if !num_ok(lt) || !num_ok(rt) {
                return Err(no_op(lt, rt));
            }
            let ty = match (lt, rt) {
                (SqlType::BigInt, SqlType::BigInt) => SqlType::BigInt,
                (SqlType::BigInt, u) | (u, SqlType::BigInt) if u.is_untyped() => SqlType::BigInt,
                _ => SqlType::Double,
            };
            let (a, c) = pair(l, r, ty, params)?;
            Ok(make(a, c, ty))
        }
    }
}

/// Brings an expression to `target` implicitly: untyped literals are converted now, parameters
/// get a run-time cast, bigint widens to double. Anything else is a `42804`.
pub fn coerce(t: Typed, target: SqlType, params: &mut ParamTypes) -> Result<BExpr> {
    match (t.ty, target) {
        (a, b) if a == b => Ok(t.expr),
        (_, SqlType::Unknown) => Ok(t.expr),
        (SqlType::Vector(_), SqlType::Vector(None)) => Ok(t.expr),
        (SqlType::Vector(_), SqlType::Vector(Some(_))) => Ok(BExpr::Cast(Box::new(t.expr), target)),
        (SqlType::Null, _) => Ok(BExpr::Literal(Value::Null)),
        (SqlType::Unknown, _) => match t.expr {
            BExpr::Literal(v) => Ok(BExpr::Literal(cast_value(v, target)?)),
            BExpr::Param(i) => {
                params.note(i, target);
                Ok(BExpr::Cast(Box::new(BExpr::Param(i)), target))
            }
            other => Ok(BExpr::Cast(Box::new(other), target)),
        },
        (SqlType::BigInt, SqlType::Double) => Ok(match t.expr {
            BExpr::Literal(Value::BigInt(i)) => BExpr::Literal(Value::Double(i as f64)),
            other => BExpr::Cast(Box::new(other), SqlType::Double),
        }),
        (from, to) => Err(QueryError::mismatch(format!(
            "value of type {from} cannot be used as type {to}"
        ))),
    }
}

/// An explicit cast, checked for possibility at bind time; constants are folded.
pub fn cast_to(t: Typed, target: SqlType, params: &mut ParamTypes) -> Result<Typed> {
    if !castable(t.ty, target) {
        return Err(QueryError::mismatch(format!(
            "cannot cast type {} to {target}",
            t.ty
        )));
    }
    let expr = match t.expr {
        BExpr::Literal(v) => BExpr::Literal(cast_value(v, target)?),
        BExpr::Param(i) => {
            params.note(i, target);
            BExpr::Cast(Box::new(BExpr::Param(i)), target)
        }
        other => BExpr::Cast(Box::new(other), target),
    };
    Ok(Typed::new(expr, target))
}

/// Binds a constant expression (no columns), e.g. a LIMIT or a VALUES cell.
pub fn bind_constant(e: &Expr, params: &mut ParamTypes) -> Result<Typed> {
    let empty = Scope::default();
    Binder::new(&empty, params).bind(e)
}
