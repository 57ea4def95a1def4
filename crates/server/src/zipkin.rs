//! Spans in other formats than OTLP, into the trace store: Zipkin v2 (`POST /api/v2/spans`,
//! a JSON array), Jaeger's collector protocol (`POST /api/traces` with
//! `application/x-thrift`, a binary-protocol `Batch`, on the main port and the collector
//! port) and the Jaeger agent's UDP datagrams. HTTP is answered `202 Accepted` as Zipkin and
//! Jaeger answer; `400` naming the span and field of the first invalid span (nothing of that
//! request is stored), `413` past the body limits, `404` when the server stores no traces.
//! UDP cannot answer: a bad datagram is dropped, counted in
//! `periscope_http_rejected_requests_total{reason="bad_spans"}` and logged at debug level.
//! Mappings: `periscope_ingest::{zipkin, jaeger_thrift}`, `docs/traces.md`.

use crate::otlp::{decompressed, read_export};
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use periscope_ingest::jaeger_thrift::{decode_agent_datagram, decode_jaeger_batch, AgentProtocol};
use periscope_ingest::span_limits::{apply_span_limits, Refused, SpanLimits};
use periscope_ingest::zipkin::decode_zipkin_spans;
use periscope_ingest::IngestError;
use periscope_model::{SpanBatch, TenantId};
use std::future::Future;

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
    let state = state.clone();
    tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
        state.metrics.ingest(protocol, "bytes_received", bytes.len() as u64);
        let raw = decompressed(bytes, gzip, max_decoded)?;
        let batch = decode(&raw).map_err(|e| ApiError::from_error("bad_spans", &e))?;
        store_batch(&state, store.as_ref(), &tenant, batch, protocol)
    })
    .await
    .map_err(|e| ApiError::internal(format!("{protocol} ingest task failed: {e}")))?
}

/// Applies `traces.limits` to a batch, counting what was clamped; returns the spans refused.
pub(crate) fn limit_spans(state: &AppState, batch: &mut SpanBatch, protocol: &'static str) -> Vec<Refused> {
    let l = &state.config.traces.limits;
    let limits = SpanLimits {
        max_attributes: l.max_attributes,
        max_attribute_value_bytes: l.max_attribute_value_bytes.as_usize(),
        max_events: l.max_events,
        max_links: l.max_links,
        max_future_ns: i64::try_from(l.max_future.as_std().as_nanos()).unwrap_or(i64::MAX),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    let (c, refused) = apply_span_limits(batch, &limits, now);
    let m = &state.metrics;
    m.clamp("attribute_values_truncated", c.values_truncated);
    m.clamp("attributes_dropped", c.attributes_dropped);
    m.clamp("events_dropped", c.events_dropped);
    m.clamp("links_dropped", c.links_dropped);
    m.ingest(protocol, "spans_rejected", refused.len() as u64);
    refused
}

/// Applies the limits (a refused span fails the whole batch, naming it), appends the batch
/// and feeds span metrics; blocking.
fn store_batch(
    state: &AppState,
    store: &dyn periscope_storage::TraceStore,
    tenant: &TenantId,
    mut batch: SpanBatch,
    protocol: &'static str,
) -> Result<(), ApiError> {
    if let Some(r) = limit_spans(state, &mut batch, protocol).first() {
        return Err(ApiError { status: StatusCode::BAD_REQUEST, reason: "bad_spans", message: r.to_string() });
    }
    let batch = &batch;
    state.metrics.ingest(protocol, "spans", batch.spans.len() as u64);
    store.append_spans(tenant, batch).map_err(|e| ApiError::from_error("store", &e))?;
    if let Some(sm) = &state.span_metrics {
        sm.record(tenant, batch);
    }
    Ok(())
}

/// Serves Jaeger's collector port: `POST /api/traces`, as on the main port.
pub async fn serve_jaeger_collector(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = axum::Router::new().route("/api/traces", axum::routing::post(jaeger_thrift)).with_state(state);
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

/// Largest datagram read; a Jaeger agent's packets are at most 65 000 bytes.
const MAX_DATAGRAM: usize = 65_536;

/// Serves a Jaeger agent UDP port: each datagram is one `emitBatch`, stored into the default
/// tenant (UDP carries no tenant header) before the next is read.
pub async fn serve_jaeger_agent(
    socket: tokio::net::UdpSocket,
    protocol: AgentProtocol,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let name = match protocol {
        AgentProtocol::Compact => "jaeger_agent_compact",
        AgentProtocol::Binary => "jaeger_agent_binary",
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    tokio::pin!(shutdown);
    loop {
        let n = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, _)) => n,
                // Errors reported for an earlier send (ICMP) do not stop the port.
                Err(e) => {
                    tracing::debug!(error = %e, "jaeger agent receive failed");
                    continue;
                }
            },
            _ = &mut shutdown => return Ok(()),
        };
        let Some(store) = state.traces.clone() else { continue };
        let datagram = buf[..n].to_vec();
        let st = state.clone();
        let stored = tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
            st.metrics.ingest(name, "bytes_received", datagram.len() as u64);
            let batch =
                decode_agent_datagram(&datagram, protocol).map_err(|e| ApiError::from_error("bad_spans", &e))?;
            store_batch(&st, store.as_ref(), &TenantId::default_tenant(), batch, name)
        })
        .await;
        match stored {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                state.metrics.reject(e.reason);
                tracing::debug!(protocol = name, error = %e.message, "jaeger agent datagram dropped");
            }
            Err(e) => tracing::error!(error = %e, "jaeger agent ingest task failed"),
        }
    }
}
