//! OTLP metrics over HTTP: `POST /v1/metrics` (served on the OTLP/HTTP port, 4318 by default,
//! and on the main port), and the ingest step shared with the gRPC service ([`crate::otlp_grpc`]).
//!
//! Answers as the OTLP/HTTP specification says: 200 with an `ExportMetricsServiceResponse` in
//! the request's encoding, whose `partial_success` counts and describes the refused points (the
//! translator's and the store's); 400 for an undecodable body, 413 past
//! `server.max_request_body_bytes` / `max_decompressed_body_bytes` or
//! `limits.max_samples_per_request`, 415 for another content type or encoding, 503 when the
//! store cannot take writes; every error body is a `google.rpc.Status` in the request's
//! encoding. Content types `application/x-protobuf` and `application/json`; `Content-Encoding:
//! gzip` (or none). The tenant is `X-Scope-OrgID`. The translation rules are in
//! `docs/otlp-metrics.md`.

use crate::remote_write::read_body;
use crate::state::tenant_of;
use crate::{ApiError, AppState};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use periscope_ingest::otlp_metrics::{decode_metrics_request, export_response_for, rpc_status, translate};
use periscope_ingest::otlp_traces::{decode_trace_request, translate_traces};
use periscope_ingest::{gzip_capped, DecodeLimits, OtlpEncoding, TranslateOptions};
use periscope_model::{Classify, ErrorClass, TenantId};
use periscope_storage::AppendReport;

/// The route every OTLP metrics exporter posts to.
pub const METRICS_PATH: &str = "/v1/metrics";
/// The route every OTLP trace exporter posts to.
pub const TRACES_PATH: &str = "/v1/traces";
/// The route every OTLP log exporter posts to.
pub const LOGS_PATH: &str = "/v1/logs";

/// gRPC status codes used in `google.rpc.Status` bodies and gRPC answers.
pub(crate) mod code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
}

/// The gRPC code that matches an HTTP status of ours (OTLP maps them the same way).
pub(crate) fn grpc_code(status: StatusCode) -> i32 {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => code::INVALID_ARGUMENT,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => code::RESOURCE_EXHAUSTED,
        StatusCode::SERVICE_UNAVAILABLE => code::UNAVAILABLE,
        _ => code::INTERNAL,
    }
}

/// What an accepted export answers: the refused points and why.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub rejected: u64,
    pub message: String,
}

pub(crate) async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    handle_signal(state, headers, body, Signal::Metrics).await
}

/// `POST /v1/traces`: as `/v1/metrics`, with an `ExportTraceServiceResponse` whose partial
/// success counts the refused spans.
pub(crate) async fn handle_traces(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    handle_signal(state, headers, body, Signal::Traces).await
}

/// `POST /v1/logs`: as `/v1/metrics`, with an `ExportLogsServiceResponse` whose partial
/// success counts the refused log records.
pub(crate) async fn handle_logs(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    handle_signal(state, headers, body, Signal::Logs).await
}

/// The OTLP signals served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    Metrics,
    Traces,
    Logs,
}

async fn handle_signal(state: AppState, headers: HeaderMap, body: Body, signal: Signal) -> Response {
    let encoding = match content_type(&headers) {
        Ok(e) => e,
        Err(e) => return refuse(&state, e, OtlpEncoding::Json),
    };
    let exported = match read_export(&state, &headers, body).await {
        Ok((tenant, bytes, gzip)) => match signal {
            Signal::Metrics => ingest(&state, tenant, bytes, gzip, encoding, "otlp_http").await,
            Signal::Traces => ingest_traces(&state, tenant, bytes, gzip, encoding, "otlp_http").await,
            Signal::Logs => ingest_logs(&state, tenant, bytes, gzip, encoding, "otlp_http").await,
        },
        Err(e) => Err(e),
    };
    let key = match signal {
        Signal::Metrics => "rejectedDataPoints",
        Signal::Traces => "rejectedSpans",
        Signal::Logs => "rejectedLogRecords",
    };
    match exported {
        Ok(out) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, encoding.content_type())],
            export_response_for(encoding, key, out.rejected, &out.message),
        )
            .into_response(),
        Err(e) => refuse(&state, e, encoding),
    }
}

fn refuse(state: &AppState, e: ApiError, encoding: OtlpEncoding) -> Response {
    state.metrics.reject(e.reason);
    if e.status.is_server_error() {
        tracing::warn!(status = %e.status, reason = e.reason, message = %e.message, "OTLP export failed");
    } else {
        tracing::debug!(status = %e.status, reason = e.reason, message = %e.message, "OTLP export refused");
    }
    let body = rpc_status(encoding, grpc_code(e.status), &e.message);
    (e.status, [(header::CONTENT_TYPE, encoding.content_type())], body).into_response()
}

fn unsupported(reason: &'static str, message: String) -> ApiError {
    ApiError { status: StatusCode::UNSUPPORTED_MEDIA_TYPE, reason, message }
}

/// The encoding named by `Content-Type` (parameters such as `charset` are ignored).
fn content_type(headers: &HeaderMap) -> Result<OtlpEncoding, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/x-protobuf") || essence.eq_ignore_ascii_case("application/protobuf") {
        Ok(OtlpEncoding::Protobuf)
    } else if essence.eq_ignore_ascii_case("application/json") {
        Ok(OtlpEncoding::Json)
    } else {
        Err(unsupported(
            "bad_content_type",
            format!("unsupported Content-Type {ct:?}: OTLP/HTTP takes application/x-protobuf or application/json"),
        ))
    }
}

/// The tenant, body and compression of an OTLP/HTTP export.
pub(crate) async fn read_export(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(TenantId, Bytes, bool), ApiError> {
    let tenant = tenant_of(headers)?;
    let gzip = match headers.get(header::CONTENT_ENCODING) {
        None => false,
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"gzip") => true,
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"identity") => false,
        Some(v) => {
            return Err(unsupported(
                "bad_encoding",
                format!("unsupported Content-Encoding {v:?}: OTLP/HTTP bodies are gzip or uncompressed"),
            ))
        }
    };
    let bytes = read_body(headers, body, state.config.server.max_request_body_bytes.as_usize()).await?;
    Ok((tenant, bytes, gzip))
}

/// The body, gunzipped within `server.max_decompressed_body_bytes` when `gzip`.
pub(crate) fn decompressed(body: Bytes, gzip: bool, max_decoded: usize) -> Result<Bytes, ApiError> {
    if !gzip {
        return Ok(body);
    }
    let raw = gzip_capped(&body, max_decoded).map_err(|e| {
        let reason = if e.class() == ErrorClass::TooLarge { "decoded_too_large" } else { "bad_gzip" };
        let mut err = ApiError::from_error(reason, &e);
        if reason == "decoded_too_large" {
            err.message.push_str(" (server.max_decompressed_body_bytes)");
        }
        err
    })?;
    Ok(Bytes::from(raw))
}

/// Decompresses, decodes, translates and stores one log export, on a blocking thread.
/// Refused records (no time) and entries the store refuses are the partial success.
pub(crate) async fn ingest_logs(
    state: &AppState,
    tenant: TenantId,
    body: Bytes,
    gzip: bool,
    encoding: OtlpEncoding,
    protocol: &'static str,
) -> Result<Outcome, ApiError> {
    if state.logs.is_none() {
        return Err(crate::loki::no_log_store());
    }
    let max_decoded = state.config.server.max_decompressed_body_bytes.as_usize();
    let state = state.clone();
    tokio::task::spawn_blocking(move || -> Result<Outcome, ApiError> {
        state.metrics.ingest(protocol, "bytes_received", body.len() as u64);
        let raw = decompressed(body, gzip, max_decoded)?;
        let req = periscope_ingest::otlp_logs::decode_logs_request(&raw, encoding)
            .map_err(|e| ApiError::from_error("bad_otlp", &e))?;
        drop(raw);
        let (mut batch, report) = periscope_ingest::otlp_logs::translate_logs(&req);
        drop(req);
        let mut out = Outcome { rejected: report.rejected_records as u64, message: report.error_message() };
        let stored = crate::loki::store_logs(&state, &tenant, &mut batch, protocol)?;
        out.rejected += stored.rejected.iter().map(|r| r.1).sum::<u64>();
        for (reason, n, msg) in &stored.rejected {
            if !out.message.is_empty() {
                out.message.push_str("; ");
            }
            out.message.push_str(&format!("{n} log records refused ({}): {msg}", reason.as_str()));
        }
        state.metrics.ingest(protocol, "log_records_rejected", out.rejected);
        Ok(out)
    })
    .await
    .map_err(|e| ApiError::internal(format!("OTLP ingest task failed: {e}")))?
}

/// Decompresses, decodes, translates and stores one trace export, on a blocking thread.
pub(crate) async fn ingest_traces(
    state: &AppState,
    tenant: TenantId,
    body: Bytes,
    gzip: bool,
    encoding: OtlpEncoding,
    protocol: &'static str,
) -> Result<Outcome, ApiError> {
    let Some(store) = state.traces.clone() else {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            reason: "no_trace_store",
            message: "this server stores no traces".into(),
        });
    };
    let max_decoded = state.config.server.max_decompressed_body_bytes.as_usize();
    let metrics = state.metrics.clone();
    let span_metrics = state.span_metrics.clone();
    let state = state.clone();
    tokio::task::spawn_blocking(move || -> Result<Outcome, ApiError> {
        metrics.ingest(protocol, "bytes_received", body.len() as u64);
        let raw = decompressed(body, gzip, max_decoded)?;
        let req = decode_trace_request(&raw, encoding).map_err(|e| ApiError::from_error("bad_otlp", &e))?;
        drop(raw);
        let (mut batch, mut report) = translate_traces(&req);
        drop(req);
        metrics.ingest(protocol, "spans_rejected", report.rejected_spans as u64);
        for r in crate::zipkin::limit_spans(&state, &mut batch, protocol) {
            report.rejected_spans += 1;
            report.spans -= 1;
            if report.messages.len() < periscope_ingest::otlp_traces::MAX_MESSAGES {
                report.messages.push(format!("span {:?}: {}", r.name, r.reason));
            }
        }
        metrics.ingest(protocol, "spans", report.spans as u64);
        store.append_spans(&tenant, &batch).map_err(|e| ApiError::from_error("store", &e))?;
        if let Some(sm) = &span_metrics {
            sm.record(&tenant, &batch);
        }
        Ok(Outcome { rejected: report.rejected_spans as u64, message: report.error_message() })
    })
    .await
    .map_err(|e| ApiError::internal(format!("OTLP ingest task failed: {e}")))?
}

/// Decompresses, decodes, translates and stores one export, on a blocking thread. Shared by
/// OTLP/HTTP and OTLP/gRPC (which decompresses in tonic and passes `gzip: false`).
pub(crate) async fn ingest(
    state: &AppState,
    tenant: TenantId,
    body: Bytes,
    gzip: bool,
    encoding: OtlpEncoding,
    protocol: &'static str,
) -> Result<Outcome, ApiError> {
    let max_decoded = state.config.server.max_decompressed_body_bytes.as_usize();
    let limits = state.config.tenant_limits(tenant.as_str());
    let opts = TranslateOptions {
        limits: DecodeLimits {
            max_series_per_request: 0,
            max_labels_per_series: limits.max_label_names_per_series,
            max_label_name_length: limits.max_label_name_length,
            max_label_value_length: limits.max_label_value_length,
        },
        promote_resource_attributes: state.config.otlp.promote_resource_attributes.clone(),
        promote_scope_metadata: state.config.otlp.promote_scope_metadata,
    };
    let store = state.store.clone();
    let metrics = state.metrics.clone();
    let limiter = state.limiter.clone();
    let joined = tokio::task::spawn_blocking(move || -> Result<Outcome, ApiError> {
        metrics.ingest(protocol, "bytes_received", body.len() as u64);
        let raw = decompressed(body, gzip, max_decoded)?;
        let req = decode_metrics_request(&raw, encoding).map_err(|e| ApiError::from_error("bad_otlp", &e))?;
        drop(raw);
        let (batch, report) = translate(&req, &opts);
        drop(req);
        metrics.ingest(protocol, "data_points", report.data_points as u64);
        metrics.ingest(protocol, "data_points_rejected", report.rejected_points as u64);
        metrics.ingest(protocol, "exponential_histogram_points_skipped", report.exponential_histogram_points as u64);
        metrics.ingest(protocol, "series", report.series as u64);
        metrics.ingest(protocol, "samples", report.samples as u64);
        metrics.ingest(protocol, "exemplars", report.exemplars as u64);
        metrics.ingest(protocol, "exemplars_dropped", report.exemplars_dropped as u64);
        metrics.ingest(protocol, "metadata", report.metadata as u64);
        crate::admission::admit(&limiter, &tenant, &limits, report.samples as u64)?;
        let stored = if batch.series.is_empty() && batch.metadata.is_empty() {
            AppendReport::default()
        } else {
            store.append(&tenant, &batch).map_err(|e| ApiError::from_error("store", &e))?
        };
        let mut messages = Vec::new();
        let translated = report.error_message();
        if !translated.is_empty() {
            messages.push(translated);
        }
        if !stored.rejected.is_empty() {
            let counts: Vec<String> = stored.rejected.iter().map(|(r, n)| format!("{}: {n}", r.as_str())).collect();
            messages.push(format!(
                "{}; {} samples rejected by the store ({})",
                stored.first_rejection.as_deref().unwrap_or("samples rejected"),
                stored.rejected_total(),
                counts.join(", ")
            ));
        }
        Ok(Outcome { rejected: report.rejected_points as u64 + stored.rejected_total(), message: messages.join("; ") })
    })
    .await
    .map_err(|e| ApiError::internal(format!("OTLP ingest task failed: {e}")))?;
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_and_codes() {
        let mut h = HeaderMap::new();
        assert_eq!(content_type(&h).unwrap_err().status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        for (ct, want) in [
            ("application/x-protobuf", OtlpEncoding::Protobuf),
            ("application/json; charset=utf-8", OtlpEncoding::Json),
            ("Application/JSON", OtlpEncoding::Json),
        ] {
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            assert_eq!(content_type(&h).unwrap(), want, "{ct}");
        }
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(content_type(&h).is_err());
        assert_eq!(grpc_code(StatusCode::BAD_REQUEST), code::INVALID_ARGUMENT);
        assert_eq!(grpc_code(StatusCode::PAYLOAD_TOO_LARGE), code::RESOURCE_EXHAUSTED);
        assert_eq!(grpc_code(StatusCode::SERVICE_UNAVAILABLE), code::UNAVAILABLE);
    }
}
