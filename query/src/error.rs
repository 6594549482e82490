//! The query layer's error enum: one variant per kind of failure, each with a SQLSTATE code.
//!
//! Codes follow PostgreSQL (and pgvector, for vector input and arithmetic) so that a pgvector user
//! sees the same class of error they know: `42601` syntax error, `42703` undefined column, `22P02`
//! malformed literal, `22000` vector dimension mismatch, `0A000` unsupported feature, and so on.
//! Variants for *bad input* are kept apart from [`QueryError::Internal`] ("this is a bug") and
//! [`QueryError::Engine`] (whatever the engine reported, with the code the glue chose), so a bad
//! query never looks like a corrupt database. `Display` is the message alone; [`QueryError::report`]
//! gives the `ERROR 42703: column "emb" does not exist` form a shell prints.

use thiserror::Error;

/// Result alias used throughout `vela-query`.
pub type Result<T, E = QueryError> = std::result::Result<T, E>;

/// Every error the SQL front end returns.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The text does not parse (42601). `line`/`column` are 1-based; 0 when unknown.
    #[error("syntax error at line {line}, column {column}: {message}")]
    Syntax {
        message: String,
        line: u64,
        column: u64,
    },
    /// A column name does not resolve (42703).
    #[error("column \"{0}\" does not exist")]
    UndefinedColumn(String),
    /// A column name resolves to more than one input column (42702).
    #[error("column reference \"{0}\" is ambiguous")]
    AmbiguousColumn(String),
    /// A table name does not resolve (42P01).
    #[error("relation \"{0}\" does not exist")]
    UndefinedTable(String),
    /// CREATE TABLE of an existing name (42P07).
    #[error("relation \"{0}\" already exists")]
    DuplicateTable(String),
    /// An index, setting or prepared statement that does not exist (42704).
    #[error("{0}")]
    UndefinedObject(String),
    /// An index or prepared statement name already used (42710).
    #[error("{0}")]
    DuplicateObject(String),
    /// A function or operator that does not exist for these argument types (42883).
    #[error("{0}")]
    UndefinedFunction(String),
    /// A value of one type where another is required (42804).
    #[error("{0}")]
    DatatypeMismatch(String),
    /// Aggregates and GROUP BY used inconsistently (42803).
    #[error("{0}")]
    Grouping(String),
    /// A `$n` that no parameter was supplied for (42P02).
    #[error("there is no parameter ${0}")]
    UndefinedParameter(usize),
    /// Other semantically invalid SQL (42P10, 42601-like): e.g. a bad ORDER BY position.
    #[error("{0}")]
    InvalidReference(String),
    /// Malformed literal text, such as a bad vector literal (22P02).
    #[error("{0}")]
    InvalidTextRepresentation(String),
    /// A data exception such as a vector dimension mismatch (22000), as pgvector reports it.
    #[error("{0}")]
    DataException(String),
    /// A value out of its type's range (22003).
    #[error("{0}")]
    NumericOutOfRange(String),
    /// Division by zero (22012).
    #[error("division by zero")]
    DivisionByZero,
    /// A negative substring length (22011).
    #[error("{0}")]
    SubstringError(String),
    /// A scalar subquery returned more than one row (21000).
    #[error("{0}")]
    CardinalityViolation(String),
    /// A parameter or setting value out of range (22023).
    #[error("{0}")]
    InvalidParameterValue(String),
    /// LIMIT or OFFSET is negative (2201W / 2201X).
    #[error("{message}")]
    InvalidRowCount { code: &'static str, message: String },
    /// NULL into a NOT NULL column (23502).
    #[error(
        "null value in column \"{column}\" of relation \"{table}\" violates not-null constraint"
    )]
    NotNullViolation { table: String, column: String },
    /// A duplicate primary key (23505).
    #[error("duplicate key value violates unique constraint \"{table}_pkey\": Key ({column})=({key}) already exists")]
    UniqueViolation {
        table: String,
        column: String,
        key: String,
    },
    /// BEGIN inside a transaction, or COMMIT outside one, where this is an error (25001/25P01).
    #[error("{message}")]
    TransactionState { code: &'static str, message: String },
    /// A statement, expression or result beyond a fixed limit (54000).
    #[error("{0}")]
    ProgramLimitExceeded(String),
    /// Valid SQL that Vela does not support (0A000).
    #[error("{0} is not supported")]
    FeatureNotSupported(String),
    /// A failed `COPY`: a file that cannot be read or written, a file that does not fit the
    /// table, a bad value in a row (the message names the file, row and column), or a batch the
    /// engine rejected; the message also says how many rows were committed before it (see
    /// [`crate::copy`]). The code is PostgreSQL's for the cause: `58P01` no such file, `42809`
    /// a directory, `22P04` corrupt or malformed file, `42804` schema mismatch, `22000` bad
    /// vector, `23502` NULL key, `23505` duplicate key, `58030` other I/O.
    #[error("{message}")]
    Copy { code: &'static str, message: String },
    /// An error reported by the engine, with the SQLSTATE code the glue assigned.
    #[error("{message}")]
    Engine { code: &'static str, message: String },
    /// A bug in Vela: an invariant of the query layer does not hold (XX000).
    #[error("internal error (this is a bug): {0}")]
    Internal(String),
}

impl QueryError {
    /// The SQLSTATE code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::Syntax { .. } => "42601",
            QueryError::UndefinedColumn(_) => "42703",
            QueryError::AmbiguousColumn(_) => "42702",
            QueryError::UndefinedTable(_) => "42P01",
            QueryError::DuplicateTable(_) => "42P07",
            QueryError::UndefinedObject(_) => "42704",
            QueryError::DuplicateObject(_) => "42710",
            QueryError::UndefinedFunction(_) => "42883",
            QueryError::DatatypeMismatch(_) => "42804",
            QueryError::Grouping(_) => "42803",
            QueryError::UndefinedParameter(_) => "42P02",
            QueryError::InvalidReference(_) => "42P10",
            QueryError::InvalidTextRepresentation(_) => "22P02",
            QueryError::DataException(_) => "22000",
            QueryError::NumericOutOfRange(_) => "22003",
            QueryError::DivisionByZero => "22012",
            QueryError::InvalidParameterValue(_) => "22023",
            QueryError::CardinalityViolation(_) => "21000",
            QueryError::SubstringError(_) => "22011",
            QueryError::InvalidRowCount { code, .. } => code,
            QueryError::NotNullViolation { .. } => "23502",
            QueryError::UniqueViolation { .. } => "23505",
            QueryError::TransactionState { code, .. } => code,
            QueryError::ProgramLimitExceeded(_) => "54000",
            QueryError::FeatureNotSupported(_) => "0A000",
            QueryError::Copy { code, .. } => code,
            QueryError::Engine { code, .. } => code,
            QueryError::Internal(_) => "XX000",
        }
    }

    /// `ERROR <code>: <message>`, the form psql-like shells print.
    pub fn report(&self) -> String {
        format!("ERROR {}: {}", self.code(), self)
    }

    /// Shorthand for [`QueryError::FeatureNotSupported`].
    pub fn unsupported(what: impl Into<String>) -> Self {
        QueryError::FeatureNotSupported(what.into())
    }

    /// Shorthand for [`QueryError::DatatypeMismatch`].
    pub fn mismatch(what: impl Into<String>) -> Self {
        QueryError::DatatypeMismatch(what.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_carries_code_and_message() {
        let e = QueryError::UndefinedColumn("emb".into());
        assert_eq!(e.report(), "ERROR 42703: column \"emb\" does not exist");
        assert_eq!(QueryError::DivisionByZero.code(), "22012");
        let e = QueryError::Syntax {
            message: "Expected: an expression".into(),
            line: 2,
            column: 7,
        };
        assert_eq!(e.code(), "42601");
        assert!(e.to_string().contains("line 2, column 7"));
    }
}
