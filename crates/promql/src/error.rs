//! Query errors, with the `errorType` Prometheus's HTTP API gives each kind.

use periscope_model::{Classify, ErrorClass};
use periscope_storage::StoreError;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query text does not parse or does not type-check (`bad_data`).
    #[error("{0}")]
    Parse(String),
    /// A request parameter is invalid (`bad_data`).
    #[error("{0}")]
    BadData(String),
    /// The query failed while it ran: many-to-many matching, duplicate label sets, ...
    /// (`execution`).
    #[error("{0}")]
    Execution(String),
    /// More samples than `max_samples` would be held in memory (`execution`).
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
    /// The query ran longer than its timeout (`timeout`).
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The client went away or the server is shutting down (`canceled`).
    #[error("query was canceled in {0}")]
    Canceled(&'static str),
    /// The store failed (`internal` or `unavailable`).
    #[error("{0}")]
    Storage(#[from] StoreError),
}

impl QueryError {
    /// The `errorType` of Prometheus's API for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::Parse(_) | QueryError::BadData(_) => "bad_data",
            QueryError::Execution(_) | QueryError::TooManySamples(_) => "execution",
            QueryError::Timeout(_) => "timeout",
            QueryError::Canceled(_) => "canceled",
            QueryError::Storage(e) => match e.class() {
                ErrorClass::Unavailable => "unavailable",
                ErrorClass::InvalidInput => "bad_data",
                _ => "internal",
            },
        }
    }
}

impl Classify for QueryError {
    fn class(&self) -> ErrorClass {
        match self {
            QueryError::Parse(_) | QueryError::BadData(_) => ErrorClass::InvalidInput,
            QueryError::Execution(_) | QueryError::TooManySamples(_) => ErrorClass::InvalidInput,
            QueryError::Timeout(_) | QueryError::Canceled(_) => ErrorClass::Unavailable,
            QueryError::Storage(e) => e.class(),
        }
    }
}
