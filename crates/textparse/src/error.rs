//! The one error type of the crate. Every rejection names the 1-based line where the fault was
//! seen; the variant says how much context was needed to see it (the same L/T/F split the
//! OpenMetrics conformance suite uses), so callers can count rejections by kind.

use periscope_model::{Classify, ErrorClass};

/// Why an exposition was rejected.
///
/// Messages are lowercase, without a trailing period, and name what is wrong and, where there is
/// one, the metric or family: `line 3: invalid value "abc" for metric "foo"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The line alone breaks the format's grammar (names, labels, quotes, values, timestamps,
    /// exemplar syntax, metadata syntax, blank or stray comment lines).
    #[error("line {line}: {msg}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// The line is well-formed but not allowed for its family's declared type (strict
    /// OpenMetrics only): negative counters, missing `le`/`quantile`, exemplars where none may
    /// be, info/stateset values, UNIT on info/stateset.
    #[error("line {line}: {msg}")]
    Type {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A rule across lines is broken: repeated or late metadata, clashing or interleaved
    /// families and series, decreasing timestamps, inconsistent histograms, a missing
    /// `# EOF` or data after it. The line is where the fault became visible (for a rule that is
    /// checked when a family ends, the line that ended it).
    #[error("line {line}: {msg}")]
    Family {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
}

impl ParseError {
    pub(crate) fn syntax(line: usize, msg: impl Into<String>) -> Self {
        ParseError::Syntax { line, msg: msg.into() }
    }

    pub(crate) fn typ(line: usize, msg: impl Into<String>) -> Self {
        ParseError::Type { line, msg: msg.into() }
    }

    pub(crate) fn family(line: usize, msg: impl Into<String>) -> Self {
        ParseError::Family { line, msg: msg.into() }
    }

    /// The 1-based line number where the fault was seen.
    pub fn line(&self) -> usize {
        match self {
            ParseError::Syntax { line, .. } | ParseError::Type { line, .. } | ParseError::Family { line, .. } => *line,
        }
    }

    /// The message without the line prefix.
    pub fn message(&self) -> &str {
        match self {
            ParseError::Syntax { msg, .. } | ParseError::Type { msg, .. } | ParseError::Family { msg, .. } => msg,
        }
    }
}

impl Classify for ParseError {
    fn class(&self) -> ErrorClass {
        ErrorClass::InvalidInput
    }
}
