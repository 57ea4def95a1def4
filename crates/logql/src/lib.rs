//! LogQL, Loki's query language: the parser ([`parse`]) into [`ast`], the log pipeline
//! ([`pipeline`]) and the engine of log queries over the `LogStore` trait ([`engine`]).
//! Metric queries parse; their evaluation comes next (`docs/STATUS.md`).

pub mod ast;
pub mod engine;
mod lexer;
pub mod metric;
mod parser;
pub mod pipeline;
pub mod template;

pub use lexer::unquote;
pub use parser::{parse, parse_selector};

/// A syntax error, at a 1-based line and column, worded as Loki words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse error at line {line}, col {col}: {msg}")]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub msg: String,
}

#[cfg(test)]
mod parser_test;
