//! The Prometheus HTTP API under `/api/v1`: queries, series and label lookups, metadata,
//! status pages and targets, answered as Prometheus 3 answers them so that Grafana and
//! `promtool` work unchanged.
//!
//! Design constraints:
//! - Parameters are read as Go's `r.FormValue` reads them (`params.rs`): a form-encoded POST
//!   body and the query string, every repeated `match[]` kept. Error messages, `errorType`s
//!   and status codes are Prometheus's (`invalid parameter "start": cannot parse "x" to a
//!   valid timestamp` is a 400 `bad_data`; an execution error is a 422, a timeout a 503).
//! - The engine and the stores are synchronous: every query and lookup runs in
//!   `spawn_blocking`, and query results are rendered to JSON on that thread too (`json.rs`,
//!   by hand, byte-compatible with Prometheus's encoders).
//! - A query stops when its client goes away: the handler holds a guard that sets the
//!   query's [`CancelToken`] when axum drops the handler's future.
//! - Handlers stay thin: parse, call, map the error.

pub(crate) mod json;
pub(crate) mod params;
pub(crate) use params::parse_form;
mod query;
mod series;
mod status;

#[cfg(test)]
mod api_test;

pub use status::{ActiveTarget, DroppedTarget, TargetsSnapshot, TargetsSource};

use crate::AppState;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use periscope_model::{Classify, ErrorClass, TenantId, TimeRange};
use periscope_promql::{CancelToken, QueryError};
use periscope_storage::{MetricStore, Querier, Queryable, StoreError};

/// The routes of the query API, to merge into the main router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/query", get(query::instant).post(query::instant))
        .route("/api/v1/query_range", get(query::range).post(query::range))
        .route("/api/v1/query_exemplars", get(query::exemplars).post(query::exemplars))
        .route("/api/v1/format_query", get(query::format).post(query::format))
        .route("/api/v1/parse_query", get(query::parse).post(query::parse))
        .route("/api/v1/series", get(series::series).post(series::series))
        .route("/api/v1/labels", get(series::label_names).post(series::label_names))
        .route("/api/v1/label/{name}/values", get(series::label_values))
        .route("/api/v1/metadata", get(series::metadata))
        .route("/api/v1/targets", get(status::targets))
        .route("/api/v1/status/buildinfo", get(status::buildinfo))
        .route("/api/v1/status/config", get(status::config))
        .route("/api/v1/status/flags", get(status::flags))
        .route("/api/v1/status/runtimeinfo", get(status::runtimeinfo))
        .route("/api/v1/status/tsdb", get(status::tsdb))
}

/// An error answered as Prometheus answers one:
/// `{"status":"error","errorType":"bad_data","error":"..."}`.
#[derive(Debug)]
pub(crate) struct PromError {
    status: StatusCode,
    error_type: &'static str,
    message: String,
}

impl PromError {
    /// An error of `error_type` with the status Prometheus gives it.
    fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        let status = match error_type {
            "bad_data" => StatusCode::BAD_REQUEST,
            "execution" => StatusCode::UNPROCESSABLE_ENTITY,
            // Prometheus 3 answers a query whose client went away with 499 (nginx's "client
            // closed request"); nobody reads it, but logs and metrics do.
            "canceled" => StatusCode::from_u16(499).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "timeout" | "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            "not_found" => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        PromError { status, error_type, message: message.into() }
    }

    /// An error with an explicit status (a body over the size limit is a 413).
    fn with_status(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> Self {
        PromError { status, error_type, message: message.into() }
    }

    /// A 400 `bad_data`.
    fn bad_data(message: impl Into<String>) -> Self {
        Self::new("bad_data", message)
    }

    /// `invalid parameter "name": why` (Prometheus's `invalidParamError`).
    fn invalid_param(name: &str, why: impl std::fmt::Display) -> Self {
        Self::bad_data(format!("invalid parameter {name:?}: {why}"))
    }

    /// A 500 `internal`.
    fn internal(message: impl Into<String>) -> Self {
        Self::new("internal", message)
    }

    /// A failed query, by the `errorType` the engine gives it.
    fn from_query(e: &QueryError) -> Self {
        Self::new(e.error_type(), e.to_string())
    }

    /// A failed lookup: Prometheus answers `execution` for a querier's errors; a store that
    /// is closed or unavailable is a 503, a broken one a 500.
    fn from_store(e: &StoreError) -> Self {
        let error_type = match e.class() {
            ErrorClass::Unavailable => "unavailable",
            ErrorClass::Internal => "internal",
            _ => "execution",
        };
        Self::new(error_type, periscope_model::error_chain(e))
    }
}

impl IntoResponse for PromError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, error_type = self.error_type, message = %self.message, "query API error");
        }
        let mut body = String::with_capacity(self.message.len() + 64);
        body.push_str("{\"status\":\"error\",\"errorType\":");
        json::write_str(&mut body, self.error_type);
        body.push_str(",\"error\":");
        json::write_str(&mut body, &self.message);
        body.push('}');
        (self.status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

/// A 200 with a JSON body.
fn json_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A success answer whose `data` is already JSON.
fn success(data: &str, warnings: &[String], infos: &[String]) -> Response {
    json_response(json::success_body(data, warnings, infos))
}

/// A success answer with a `serde_json` value as `data`.
fn success_value(data: &serde_json::Value) -> Response {
    success(&data.to_string(), &[], &[])
}

/// The tenant of a request, as a `bad_data` error when the header is invalid.
fn tenant(headers: &HeaderMap) -> Result<TenantId, PromError> {
    crate::state::tenant_of(headers).map_err(|e| PromError::with_status(e.status, "bad_data", e.message))
}

/// Runs `f` on a blocking thread.
async fn blocking<T, F>(f: F) -> Result<T, PromError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, PromError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| PromError::internal(format!("query task failed: {e}")))?
}

/// Cancels its query when dropped: kept alive by the handler's future, so a client that goes
/// away (axum drops the future) stops the query on its blocking thread.
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A store seen as a [`Queryable`] (a delegating adapter instead of trait upcasting, which
/// needs Rust 1.86 while the workspace supports 1.85).
struct AsQueryable<'a>(&'a dyn MetricStore);

impl Queryable for AsQueryable<'_> {
    fn querier(&self, tenant: &TenantId, range: TimeRange) -> Result<Box<dyn Querier>, StoreError> {
        self.0.querier(tenant, range)
    }

    fn metadata(
        &self,
        tenant: &TenantId,
        metric: Option<&str>,
    ) -> Result<Vec<periscope_model::MetricMetadata>, StoreError> {
        self.0.metadata(tenant, metric)
    }
}

/// Now, in milliseconds since the epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The warning Prometheus adds when `limit` cut a result.
const TRUNCATED: &str = "results truncated due to limit";
