//! `POST /api/v1/write`: Prometheus remote_write 1.0 (snappy-compressed protobuf).
//!
//! Answers as Prometheus's receiver does: 204 when stored; 400 with the reason for a body that
//! does not decode or a series that is invalid (Prometheus's sender does not retry 4xx); 413
//! for a body over `server.max_request_body_bytes` or over `max_decompressed_body_bytes`
//! once decoded; 503 when the store cannot take writes (the sender retries 5xx). Samples the
//! store refuses one by one (out of order, duplicate, series limit) never abort the rest of
//! the batch: the rest is stored and the answer is 400 naming the first refusal and the counts.

use crate::state::tenant_of;
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use periscope_ingest::{decode_write_request, snappy_capped, DecodeLimits};
use periscope_model::{Classify, ErrorClass};
use periscope_storage::AppendReport;

pub(crate) async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match write(&state, &headers, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            state.metrics.reject(e.reason);
            if e.status.is_server_error() {
                tracing::warn!(status = %e.status, reason = e.reason, message = %e.message, "remote_write failed");
            } else {
                tracing::debug!(status = %e.status, reason = e.reason, message = %e.message, "remote_write refused");
            }
            e.into_response()
        }
    }
}

/// Reads a request body up to `limit` bytes; longer bodies are a 413 naming the setting.
pub(crate) async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    let too_large = || {
        ApiError::from_class(
            ErrorClass::TooLarge,
            "body_too_large",
            format!("request body exceeds the limit of {limit} bytes (server.max_request_body_bytes)"),
        )
    };
    let announced =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let msg = crate::error::error_chain(&e);
        if msg.contains("length limit exceeded") {
            too_large()
        } else {
            ApiError::from_class(ErrorClass::InvalidInput, "body_read", format!("cannot read request body: {msg}"))
        }
    })
}

async fn write(state: &AppState, headers: &HeaderMap, body: Body) -> Result<(), ApiError> {
    let tenant = tenant_of(headers)?;
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        if !enc.as_bytes().eq_ignore_ascii_case(b"snappy") {
            return Err(ApiError::from_class(
                ErrorClass::InvalidInput,
                "bad_encoding",
                format!("unsupported Content-Encoding {:?}: remote_write bodies must be snappy-compressed", enc),
            ));
        }
    }
    let server = &state.config.server;
    let bytes = read_body(headers, body, server.max_request_body_bytes.as_usize()).await?;
    let max_decoded = server.max_decompressed_body_bytes.as_usize();
    let limits = state.config.tenant_limits(tenant.as_str());
    let decode_limits = DecodeLimits {
        max_series_per_request: 0,
        max_labels_per_series: limits.max_label_names_per_series,
        max_label_name_length: limits.max_label_name_length,
        max_label_value_length: limits.max_label_value_length,
    };
    let store = state.store.clone();
    let metrics = state.metrics.clone();
    let limiter = state.limiter.clone();
    let compressed_len = bytes.len() as u64;
    let joined = tokio::task::spawn_blocking(move || -> Result<AppendReport, ApiError> {
        let raw = snappy_capped(&bytes, max_decoded).map_err(|e| {
            let reason = if e.class() == ErrorClass::TooLarge { "decoded_too_large" } else { "bad_snappy" };
            ApiError::from_error(reason, &e)
        })?;
        drop(bytes);
        let (batch, report) =
            decode_write_request(&raw, &decode_limits).map_err(|e| ApiError::from_error("bad_protobuf", &e))?;
        drop(raw);
        metrics.ingest("remote_write", "bytes_compressed", compressed_len);
        metrics.ingest("remote_write", "series", report.series as u64);
        metrics.ingest("remote_write", "samples", report.samples as u64);
        metrics.ingest("remote_write", "exemplars", report.exemplars as u64);
        metrics.ingest("remote_write", "metadata", report.metadata as u64);
        metrics.ingest("remote_write", "histograms", report.histograms as u64);
        metrics.ingest("remote_write", "exemplars_dropped", report.exemplars_dropped as u64);
        crate::admission::admit(&limiter, &tenant, &limits, (report.samples + report.histograms) as u64)?;
        store.append(&tenant, &batch).map_err(|e| ApiError::from_error("store", &e))
    })
    .await
    .map_err(|e| ApiError::internal(format!("write task failed: {e}")))?;
    let report = joined?;
    if report.rejected.is_empty() {
        return Ok(());
    }
    let counts: Vec<String> = report.rejected.iter().map(|(r, n)| format!("{}: {n}", r.as_str())).collect();
    Err(ApiError::from_class(
        ErrorClass::InvalidInput,
        "samples_rejected",
        format!(
            "{}; {} rejected ({}), {} samples stored",
            report.first_rejection.as_deref().unwrap_or("samples rejected"),
            report.rejected_total(),
            counts.join(", "),
            report.samples_appended
        ),
    ))
}
