use std::path::PathBuf;

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("record of {len} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge { len: usize, max: usize },
    #[error("segment {path} has a bad header")]
    BadHeader { path: PathBuf },
    #[error("write-ahead log is closed")]
    Closed,
    #[error("a previous fsync of the write-ahead log failed: {0}")]
    SyncFailed(String),
}

impl WalError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        WalError::Io { op, path: path.into(), source }
    }
}

impl periscope_model::Classify for WalError {
    fn class(&self) -> periscope_model::ErrorClass {
        use periscope_model::ErrorClass;
        match self {
            WalError::RecordTooLarge { .. } => ErrorClass::TooLarge,
            WalError::Closed => ErrorClass::Unavailable,
            WalError::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => ErrorClass::Unavailable,
            _ => ErrorClass::Internal,
        }
    }
}
