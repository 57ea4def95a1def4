//! Error classes: every library error says which class it belongs to; only the server maps a
//! class to an HTTP status.

/// What kind of failure an error is, independent of where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The client sent something wrong; retrying the same request cannot help.
    InvalidInput,
    /// The request is too large for a configured limit.
    TooLarge,
    /// What was asked for does not exist.
    NotFound,
    /// A limit on rate or on the number of series was reached; retrying later may help.
    RateLimited,
    /// The service cannot serve now (starting, shutting down, disk full); retry later.
    Unavailable,
    /// A bug or an unexpected I/O failure.
    Internal,
}

impl ErrorClass {
    /// Whether a client may usefully send the same request again.
    pub fn retryable(self) -> bool {
        matches!(self, ErrorClass::RateLimited | ErrorClass::Unavailable | ErrorClass::Internal)
    }
}

/// Implemented by every library error type of the workspace.
pub trait Classify {
    /// The class of this error.
    fn class(&self) -> ErrorClass;
}

/// An error and its chain of causes on one line, `outer: cause: root cause`, for messages that
/// reach clients and logs.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
