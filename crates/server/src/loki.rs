//! Loki's push API: `POST /loki/api/v1/push` (and the legacy `/api/prom/push`). JSON when
//! `Content-Type` is `application/json` (gzip by `Content-Encoding`), else the snappy
//! `logproto.PushRequest` Promtail sends. Answered as Loki answers: `204` when every entry was
//! stored; `400` with the reasons when entries were refused (the others are stored), `429`
//! when the tenant's stream limit refused some; `400` for a malformed body naming the stream
//! and entry; `413` past the body limits. Mapping: `periscope_ingest::loki_push`,
//! `docs/logs.md`.

use crate::otlp::{decompressed, read_export};
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use periscope_ingest::log_trace_ids::fill_trace_ids;
use periscope_ingest::loki_push::{decode_loki_push_json, decode_loki_push_proto};
use periscope_ingest::snappy_capped;
use periscope_model::{Classify, ErrorClass};
use periscope_storage::LogRejectReason;

/// The push route.
pub const PUSH_PATH: &str = "/loki/api/v1/push";
/// Loki's legacy push route.
pub const LEGACY_PUSH_PATH: &str = "/api/prom/push";

pub(crate) async fn push(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match push_inner(&state, &headers, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            state.metrics.reject(e.reason);
            e.into_response()
        }
    }
}

/// Finds trace ids in lines (`logs.trace_id_fields`), appends the batch and counts what
/// was stored and refused under `protocol`; blocking.
pub(crate) fn store_logs(
    state: &AppState,
    tenant: &periscope_model::TenantId,
    batch: &mut periscope_model::LogBatch,
    protocol: &'static str,
) -> Result<periscope_storage::LogAppendReport, ApiError> {
    let Some(store) = &state.logs else { return Err(no_log_store()) };
    let found = fill_trace_ids(batch, &state.config.logs.trace_id_fields);
    let report = store.append_logs(tenant, batch).map_err(|e| ApiError::from_error("store", &e))?;
    let m = &state.metrics;
    m.ingest(protocol, "entries", report.entries_appended);
    m.ingest(protocol, "entries_duplicate", report.duplicates_ignored);
    m.ingest(protocol, "streams_created", report.streams_created);
    m.ingest(protocol, "trace_ids_found", found as u64);
    m.ingest(protocol, "entries_rejected", report.rejected.iter().map(|r| r.1).sum());
    Ok(report)
}

/// The answer of a server without a log store.
pub(crate) fn no_log_store() -> ApiError {
    ApiError { status: StatusCode::NOT_FOUND, reason: "no_log_store", message: "this server stores no logs".into() }
}

async fn push_inner(state: &AppState, headers: &HeaderMap, body: Body) -> Result<(), ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
    if state.logs.is_none() {
        return Err(no_log_store());
    }
    let (tenant, bytes, gzip) = read_export(state, headers, body).await?;
    let max_decoded = state.config.server.max_decompressed_body_bytes.as_usize();
    let state = state.clone();
    tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
        state.metrics.ingest("loki_push", "bytes_received", bytes.len() as u64);
        let batch = if json {
            let raw = decompressed(bytes, gzip, max_decoded)?;
            decode_loki_push_json(&raw)
        } else {
            let raw = snappy_capped(&bytes, max_decoded).map_err(|e| {
                let reason = if e.class() == ErrorClass::TooLarge { "decoded_too_large" } else { "bad_snappy" };
                ApiError::from_error(reason, &e)
            })?;
            decode_loki_push_proto(&raw)
        }
        .map_err(|e| ApiError::from_error("bad_logs", &e))?;
        let mut batch = batch;
        let report = store_logs(&state, &tenant, &mut batch, "loki_push")?;
        let refused: u64 = report.rejected.iter().map(|r| r.1).sum();
        if refused == 0 {
            return Ok(());
        }
        let limited = report.rejected.iter().any(|r| r.0 == LogRejectReason::StreamLimit);
        let message = report
            .rejected
            .iter()
            .map(|(reason, n, msg)| format!("{n} entries refused ({}): {msg}", reason.as_str()))
            .collect::<Vec<_>>()
            .join("\n");
        Err(ApiError {
            status: if limited { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::BAD_REQUEST },
            reason: if limited { "stream_limit" } else { "entries_refused" },
            message,
        })
    })
    .await
    .map_err(|e| ApiError::internal(format!("Loki push task failed: {e}")))?
}
