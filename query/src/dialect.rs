//! Vela's SQL dialect: PostgreSQL's, plus pgvector's `<+>` (L1 distance) operator.
//!
//! sqlparser's `PostgreSqlDialect` already parses `<->` (`LtDashGt`), `<=>` (`Spaceship`) and
//! `<#>` (`Custom("<#>")`), but tokenizes `<+>` as three tokens `<`, `+`, `>`. [`VelaDialect`]
//! wraps `PostgreSqlDialect` (delegating every method it overrides, and reporting its `TypeId` so the
//! parser's PostgreSQL-specific paths stay on) and recognises the three *adjacent* tokens as one
//! infix operator with PostgreSQL's "other operator" precedence, producing
//! `BinaryOperator::Custom("<+>")`. The SQL text is never rewritten.

use std::any::TypeId;

use sqlparser::ast::{BinaryOperator, Expr};
use sqlparser::dialect::{BindPlaceholderStyle, Dialect, PostgreSqlDialect, Precedence};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan};

/// The custom operator name the parser produces for pgvector's L1 distance.
pub const L1_OPERATOR: &str = "<+>";

/// PostgreSQL's dialect with pgvector's `<+>` operator.
#[derive(Debug, Default, Clone, Copy)]
pub struct VelaDialect {
    inner: PostgreSqlDialect,
}

macro_rules! delegate_bool {
    ($($name:ident,)*) => {
        $(fn $name(&self) -> bool { self.inner.$name() })*
    };
}

/// Whether the next three tokens are `<`, `+`, `>` written without spaces between them.
fn next_is_l1_operator(parser: &Parser) -> bool {
    let lt: &TokenWithSpan = parser.peek_nth_token_ref(0);
    let plus = parser.peek_nth_token_ref(1);
    let gt = parser.peek_nth_token_ref(2);
    matches!(
        (&lt.token, &plus.token, &gt.token),
        (Token::Lt, Token::Plus, Token::Gt)
    ) && lt.span.end == plus.span.start
        && plus.span.end == gt.span.start
}

impl Dialect for VelaDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<PostgreSqlDialect>()
    }

    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        if next_is_l1_operator(parser) {
            return Some(Ok(self.prec_value(Precedence::PgOther)));
        }
        self.inner.get_next_precedence(parser)
    }

    fn parse_infix(
        &self,
        parser: &mut Parser,
        expr: &Expr,
        precedence: u8,
    ) -> Option<Result<Expr, ParserError>> {
        if !next_is_l1_operator(parser) {
            return self.inner.parse_infix(parser, expr, precedence);
        }
        for _ in 0..3 {
            parser.advance_token();
        }
        Some(
            parser
                .parse_subexpr(precedence)
                .map(|right| Expr::BinaryOp {
                    left: Box::new(expr.clone()),
                    op: BinaryOperator::Custom(L1_OPERATOR.to_string()),
                    right: Box::new(right),
                }),
        )
    }

    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        self.inner.identifier_quote_style(identifier)
    }
    fn ordered_bind_placeholder_style(&self) -> Option<BindPlaceholderStyle> {
        self.inner.ordered_bind_placeholder_style()
    }
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        self.inner.is_delimited_identifier_start(ch)
    }
    fn is_identifier_start(&self, ch: char) -> bool {
        self.inner.is_identifier_start(ch)
    }
    fn is_identifier_part(&self, ch: char) -> bool {
        self.inner.is_identifier_part(ch)
    }
    fn is_reserved_for_identifier(&self, kw: Keyword) -> bool {
        self.inner.is_reserved_for_identifier(kw)
    }
    fn is_table_alias(&self, kw: &Keyword, parser: &mut Parser) -> bool {
        self.inner.is_table_alias(kw, parser)
    }
    fn supports_string_literal_column_alias(&self, explicit: bool) -> bool {
        self.inner.supports_string_literal_column_alias(explicit)
    }
    fn supports_string_literal_table_alias(&self, explicit: bool) -> bool {
        self.inner.supports_string_literal_table_alias(explicit)
    }
    fn is_custom_operator_part(&self, ch: char) -> bool {
        self.inner.is_custom_operator_part(ch)
    }
    fn prec_value(&self, prec: Precedence) -> u8 {
        self.inner.prec_value(prec)
    }
    fn is_interval_qualifier(&self, kw: Keyword) -> bool {
        self.inner.is_interval_qualifier(kw)
    }
    fn is_custom_type_typed_string(&self, first_keyword: Keyword, qualified: bool) -> bool {
        self.inner
            .is_custom_type_typed_string(first_keyword, qualified)
    }

    delegate_bool! {
        supports_cte_materialization,
        supports_unicode_string_literal,
        supports_filter_during_aggregation,
        supports_group_by_expr,
        supports_drop_group,
        supports_alter_user_as_alter_role,
        supports_create_group,
        supports_create_role_if_not_exists,
        allow_extract_custom,
        allow_extract_single_quotes,
        supports_create_index_with_clause,
        supports_sql_option_without_value,
        supports_explain_with_utility_options,
        supports_listen_notify,
        supports_exclude_constraint,
        supports_factorial_operator,
        supports_bitwise_shift_operators,
        supports_tilde_like_match_operator,
        supports_comparison_in_between_low_bound,
        supports_comment_on,
        supports_load_extension,
        supports_named_fn_args_with_colon_operator,
        supports_named_fn_args_with_expr_name,
        supports_named_fn_args_with_assignment_operator,
        supports_empty_projections,
        supports_nested_comments,
        supports_copy_from_stdin_data,
        supports_string_escape_constant,
        supports_numeric_literal_underscores,
        supports_non_decimal_integer_literals,
        supports_array_typedef_with_brackets,
        supports_geometric_types,
        supports_order_by_using_operator,
        supports_set_names,
        supports_alter_column_type_using,
        supports_left_associative_joins_without_parens,
        supports_notnull_operator,
        supports_interval_options,
        supports_insert_table_alias,
        supports_create_table_like_parenthesized,
        supports_select_wildcard_with_alias,
        supports_comma_separated_trim,
        supports_xml_expressions,
        supports_aliased_function_args,
        supports_comment_optimizer_hint,
        supports_add_column_if_not_exists,
        supports_attach_partition_of,
        supports_detach_partition_of,
        supports_table_inheritance_markers,
        supports_column_generic_options,
    }
}
