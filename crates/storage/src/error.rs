use periscope_model::{Classify, ErrorClass};

/// Errors of a storage engine, as the query and ingest side see them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("store is closed")]
    Closed,
    #[error("store is unavailable: {0}")]
    Unavailable(String),
    #[error("{context}")]
    Internal {
        context: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    /// An internal failure with its cause.
    pub fn internal(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Internal { context: context.into(), source: Some(Box::new(source)) }
    }
}

impl Classify for StoreError {
    fn class(&self) -> ErrorClass {
        match self {
            StoreError::Invalid(_) => ErrorClass::InvalidInput,
            StoreError::Closed | StoreError::Unavailable(_) => ErrorClass::Unavailable,
            StoreError::Internal { .. } => ErrorClass::Internal,
        }
    }
}
