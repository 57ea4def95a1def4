use periscope_model::{Classify, ErrorClass};
use periscope_storage::StoreError;
use std::path::PathBuf;

/// Errors of the metrics engine.
#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    #[error("write-ahead log of tenant {tenant}")]
    Wal {
        tenant: String,
        #[source]
        source: periscope_wal::WalError,
    },
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("replay of {path} failed at segment {segment}")]
    Replay {
        path: PathBuf,
        segment: u32,
        #[source]
        source: crate::record::RecordError,
    },
    #[error("block of tenant {tenant}")]
    Block {
        tenant: String,
        #[source]
        source: crate::block::BlockError,
    },
    #[error("store is closed")]
    Closed,
}

impl Classify for TsdbError {
    fn class(&self) -> ErrorClass {
        match self {
            TsdbError::Wal { source, .. } => source.class(),
            TsdbError::Closed => ErrorClass::Unavailable,
            _ => ErrorClass::Internal,
        }
    }
}

impl From<TsdbError> for StoreError {
    fn from(e: TsdbError) -> Self {
        match e.class() {
            ErrorClass::Unavailable => StoreError::Unavailable(error_chain(&e)),
            _ => StoreError::internal("metrics engine", e),
        }
    }
}

pub(crate) use periscope_model::error_chain;
