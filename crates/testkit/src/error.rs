//! Errors of the test kit.

use std::path::PathBuf;

/// Why a PromQL test script or the known-failures list could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// A line of a script does not follow the format (a bug of the file or of the runner).
    #[error("{file}:{line}: {message}")]
    Script { file: String, line: usize, message: String },
    /// A line of the known-failures list is malformed.
    #[error("{file}:{line}: {message}")]
    KnownFailures { file: String, line: usize, message: String },
    /// A file could not be read or written.
    #[error("cannot access {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
