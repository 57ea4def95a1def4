//! Zipkin v2: `POST /api/v2/spans` (JSON array of spans, gzip or not) into the trace store,
//! answered `202 Accepted` as Zipkin answers; `400` naming the span and field of the first
//! invalid span (nothing of that request is stored), `413` past the body limits, `404` when
//! the server stores no traces. Mapping: `periscope_ingest::zipkin`, `docs/traces.md`.

use crate::otlp::{decompressed, read_export};
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use periscope_ingest::zipkin::decode_zipkin_spans;

/// The route Zipkin reporters post to.
pub const SPANS_PATH: &str = "/api/v2/spans";

pub(crate) async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match ingest(&state, &headers, body).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => {
            state.metrics.reject(e.reason);
            e.into_response()
        }
    }
}

async fn ingest(state: &AppState, headers: &HeaderMap, body: Body) -> Result<(), ApiError> {
    let Some(store) = state.traces.clone() else {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            reason: "no_trace_store",
            message: "this server stores no traces".into(),
        });
    };
    let (tenant, bytes, gzip) = read_export(state, headers, body).await?;
    let max_decoded = state.config.server.max_decompressed_body_bytes.as_usize();
    let (metrics, span_metrics) = (state.metrics.clone(), state.span_metrics.clone());
    tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
        metrics.ingest("zipkin", "bytes_received", bytes.len() as u64);
        let raw = decompressed(bytes, gzip, max_decoded)?;
        let batch = decode_zipkin_spans(&raw).map_err(|e| ApiError::from_error("bad_zipkin", &e))?;
        metrics.ingest("zipkin", "spans", batch.spans.len() as u64);
        store.append_spans(&tenant, &batch).map_err(|e| ApiError::from_error("store", &e))?;
        if let Some(sm) = &span_metrics {
            sm.record(&tenant, &batch);
        }
        Ok(())
    })
    .await
    .map_err(|e| ApiError::internal(format!("Zipkin ingest task failed: {e}")))?
}
