//! Spans in other formats than OTLP, into the trace store: Zipkin v2 (`POST /api/v2/spans`,
//! a JSON array) and Jaeger's collector protocol (`POST /api/traces` with
//! `application/x-thrift`, a binary-protocol `Batch`). Answered `202 Accepted` as Zipkin and
//! Jaeger answer; `400` naming the span and field of the first invalid span (nothing of that
//! request is stored), `413` past the body limits, `404` when the server stores no traces.
//! Mappings: `periscope_ingest::{zipkin, jaeger_thrift}`, `docs/traces.md`.

use crate::otlp::{decompressed, read_export};
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use periscope_ingest::jaeger_thrift::decode_jaeger_batch;
use periscope_ingest::zipkin::decode_zipkin_spans;
use periscope_ingest::IngestError;
use periscope_model::SpanBatch;

/// The route Zipkin reporters post to.
pub const SPANS_PATH: &str = "/api/v2/spans";

/// A span decoder of one format.
type Decode = fn(&[u8]) -> Result<SpanBatch, IngestError>;

pub(crate) async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    answer(&state, ingest(&state, &headers, body, "zipkin", decode_zipkin_spans).await)
}

/// `POST /api/traces` with `application/x-thrift`: Jaeger's collector endpoint.
pub(crate) async fn jaeger_thrift(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let ct = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-thrift") {
        let e = ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            reason: "bad_content_type",
            message: format!("unsupported Content-Type {ct:?}: Jaeger batches are application/x-thrift"),
        };
        return answer(&state, Err(e));
    }
    answer(&state, ingest(&state, &headers, body, "jaeger_thrift", decode_jaeger_batch).await)
}

fn answer(state: &AppState, r: Result<(), ApiError>) -> Response {
    match r {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => {
            state.metrics.reject(e.reason);
            e.into_response()
        }
    }
}

async fn ingest(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    protocol: &'static str,
    decode: Decode,
) -> Result<(), ApiError> {
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
        metrics.ingest(protocol, "bytes_received", bytes.len() as u64);
        let raw = decompressed(bytes, gzip, max_decoded)?;
        let batch = decode(&raw).map_err(|e| ApiError::from_error("bad_spans", &e))?;
        metrics.ingest(protocol, "spans", batch.spans.len() as u64);
        store.append_spans(&tenant, &batch).map_err(|e| ApiError::from_error("store", &e))?;
        if let Some(sm) = &span_metrics {
            sm.record(&tenant, &batch);
        }
        Ok(())
    })
    .await
    .map_err(|e| ApiError::internal(format!("{protocol} ingest task failed: {e}")))?
}
