//! Maps error classes to HTTP statuses; the only place that does.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use periscope_model::{Classify, ErrorClass};

/// An error answered to a client: a status, a reason label for self-metrics and a message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Short machine-friendly reason, the `reason` label of the rejected-requests counter.
    pub reason: &'static str,
    pub message: String,
}

impl ApiError {
    /// An error of `class` with a message.
    pub fn from_class(class: ErrorClass, reason: &'static str, message: impl Into<String>) -> Self {
        let status = match class {
            ErrorClass::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorClass::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorClass::NotFound => StatusCode::NOT_FOUND,
            ErrorClass::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorClass::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError { status, reason, message: message.into() }
    }

    /// From any classified error, with its causes in the message.
    pub fn from_error<E: Classify + std::error::Error>(reason: &'static str, e: &E) -> Self {
        Self::from_class(e.class(), reason, error_chain(e))
    }

    /// A bug or unexpected failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::from_class(ErrorClass::Internal, "internal", message)
    }
}

pub(crate) use periscope_model::error_chain;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.message;
        body.push('\n');
        (self.status, [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
    }
}
