//! The HTTP and OTLP/gRPC front of Periscope. It wires decoders and stores together and owns no
//! logic of its own: parse the request, call the pure decoder, call the store (on a blocking
//! thread), map the error class to a status.
//!
//! Status codes follow the peers: 204 for a stored remote_write, 400 for bad data with the
//! reason, 413 for a body over a limit, 503 when the store cannot take writes; every refusal is
//! counted in `periscope_http_rejected_requests_total{reason}`. OTLP (`otlp.rs` for HTTP on
//! its own port and the main one, `otlp_grpc.rs` for gRPC) answers as the OTLP specification
//! says: 200/OK with `partial_success`, and `google.rpc.Status` bodies for refusals. The
//! Prometheus query API (`api.rs`: `/api/v1/query`, `query_range`, `series`, `labels`, status
//! pages, targets) answers with Prometheus's JSON, `errorType`s and status codes.

mod admission;
mod api;
mod error;
mod jaeger;
mod loki;
mod loki_query;
mod otlp;
mod otlp_grpc;
mod process;
mod remote_write;
mod self_metrics;
pub mod spanmetrics;
mod state;
mod zipkin;

pub use admission::IngestLimiter;
pub use api::{ActiveTarget, DroppedTarget, TargetsSnapshot, TargetsSource};
pub use error::ApiError;
pub use otlp_grpc::serve as serve_otlp_grpc;
pub use periscope_ingest::jaeger_thrift::AgentProtocol;
pub use self_metrics::SelfMetrics;
pub use state::{engine_options, AppState, MetricsSource};
pub use zipkin::{serve_jaeger_agent, serve_jaeger_collector};

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The router of the main HTTP port.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/write", post(remote_write::handle))
        .route(otlp::METRICS_PATH, post(otlp::handle))
        .route(otlp::TRACES_PATH, post(otlp::handle_traces))
        .route(otlp::LOGS_PATH, post(otlp::handle_logs))
        .route(zipkin::SPANS_PATH, post(zipkin::handle))
        .route(loki::PUSH_PATH, post(loki::push))
        .route(loki::LEGACY_PUSH_PATH, post(loki::push))
        .route("/loki/api/v1/query_range", get(loki_query::query_range).post(loki_query::query_range))
        .route("/loki/api/v1/query", get(loki_query::query).post(loki_query::query))
        .route("/loki/api/v1/labels", get(loki_query::labels).post(loki_query::labels))
        .route("/loki/api/v1/label/{name}/values", get(loki_query::label_values).post(loki_query::label_values))
        .route("/loki/api/v1/series", get(loki_query::series).post(loki_query::series))
        .route("/loki/api/v1/index/stats", get(loki_query::index_stats).post(loki_query::index_stats))
        .route("/loki/api/v1/index/volume", get(loki_query::index_volume).post(loki_query::index_volume))
        .route("/loki/api/v1/detected_fields", get(loki_query::detected_fields))
        .route("/api/periscope/traces/{id}/logs", get(loki_query::trace_logs))
        .merge(api::routes())
        .merge(jaeger::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` completes, then lets in-flight
/// requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

/// The router of the OTLP/HTTP port: `/v1/metrics`, `/v1/traces` and `/v1/logs`.
pub fn otlp_http_router(state: AppState) -> Router {
    Router::new()
        .route(otlp::METRICS_PATH, post(otlp::handle))
        .route(otlp::TRACES_PATH, post(otlp::handle_traces))
        .route(otlp::LOGS_PATH, post(otlp::handle_logs))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Serves [`otlp_http_router`] on `listener` until `shutdown` completes.
pub async fn serve_otlp_http(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, otlp_http_router(state)).with_graceful_shutdown(shutdown).await
}

async fn healthy() -> &'static str {
    "Periscope is Healthy.\n"
}

async fn ready(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "Periscope is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let store = state.store.clone();
    let self_metrics = state.metrics.clone();
    let sources = state.metrics_sources.clone();
    let text = tokio::task::spawn_blocking(move || {
        let mut out = String::with_capacity(16 * 1024);
        self_metrics.write(&mut out);
        store.write_metrics(&mut out);
        for source in sources.iter() {
            source(&mut out);
        }
        process::write_metrics(&mut out);
        out
    })
    .await;
    match text {
        Ok(text) => {
            ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
        }
        Err(e) => ApiError::internal(format!("metrics task failed: {e}")).into_response(),
    }
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

/// Counts every request and its latency by route.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "other".into());
    let method = req.method().clone();
    let started = Instant::now();
    let resp = next.run(req).await;
    state.metrics.observe_request(&route, method.as_str(), resp.status().as_u16(), started.elapsed());
    resp
}
