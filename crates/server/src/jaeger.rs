//! Jaeger's query HTTP API (what Jaeger UI and Grafana's Jaeger data source call), over the
//! [`TraceStore`](periscope_storage::TraceStore):
//!
//! - `GET /api/services`, `GET /api/services/{service}/operations`,
//!   `GET /api/operations?service=&spanKind=`
//! - `GET /api/traces/{traceID}`
//! - `GET /api/traces?service=&operation=&tags=&minDuration=&maxDuration=&start=&end=&limit=&lookback=`
//! - `GET /api/dependencies?endTs=&lookback=` (milliseconds), and Periscope's own
//!   `GET /api/periscope/service-graph` with each edge's rate, error ratio and mean latency
//!
//! Answers are Jaeger's envelope `{"data":…,"total":…,"limit":0,"offset":0,"errors":null}`,
//! spans in Jaeger's UI model as OpenTelemetry's Jaeger translator renders them: times in
//! microseconds, the parent as a `CHILD_OF` reference and links as `FOLLOWS_FROM`, events as
//! logs, resource attributes as the process's tags, and the tags `span.kind`,
//! `otel.status_code`, `otel.status_description`, `error`, `otel.scope.name`,
//! `otel.scope.version`, `w3c.tracestate` added. Errors: 400 naming the bad parameter, 404 for
//! an unknown trace, with Jaeger's `errors` list.

use crate::api::json::{write_str as json_str, write_str_array};
use crate::{ApiError, AppState};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use periscope_model::{
    hex_id, parse_trace_id, AttrValue, Attribute, Span, SpanKind, StatusCode as SpanStatus, TraceId,
};
use periscope_storage::{TraceQuery, TraceStore};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// The Jaeger query routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/services", get(services))
        .route("/api/services/{service}/operations", get(service_operations))
        .route("/api/operations", get(operations))
        .route("/api/traces", get(search).post(crate::zipkin::jaeger_thrift))
        .route("/api/traces/{id}", get(trace))
        .route("/api/dependencies", get(dependencies))
        .route("/api/periscope/service-graph", get(service_graph))
}

fn envelope(data: &str, total: usize) -> Response {
    let body = format!("{{\"data\":{data},\"total\":{total},\"limit\":0,\"offset\":0,\"errors\":null}}");
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// An error answer in Jaeger's envelope.
#[derive(Debug)]
struct JaegerError {
    status: StatusCode,
    msg: String,
}

impl IntoResponse for JaegerError {
    fn into_response(self) -> Response {
        let mut m = String::new();
        json_str(&mut m, &self.msg);
        let body = format!(
            "{{\"data\":null,\"total\":0,\"limit\":0,\"offset\":0,\"errors\":[{{\"code\":{},\"msg\":{m}}}]}}",
            self.status.as_u16()
        );
        (self.status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

fn jaeger_error(status: StatusCode, msg: &str) -> JaegerError {
    JaegerError { status, msg: msg.to_string() }
}

/// A handler's answer: the response, or an error in Jaeger's envelope.
type Answer = Result<Response, JaegerError>;

fn answer(a: Answer) -> Response {
    a.unwrap_or_else(IntoResponse::into_response)
}

fn store(state: &AppState) -> Result<Arc<dyn TraceStore>, JaegerError> {
    state.traces.clone().ok_or_else(|| jaeger_error(StatusCode::NOT_FOUND, "this server stores no traces"))
}

fn tenant(headers: &HeaderMap) -> Result<periscope_model::TenantId, JaegerError> {
    crate::state::tenant_of(headers).map_err(|e: ApiError| jaeger_error(e.status, &e.message))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, JaegerError> + Send + 'static,
) -> Result<T, JaegerError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(jaeger_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("query task failed: {e}"))))
}

fn store_error(e: periscope_storage::StoreError) -> JaegerError {
    jaeger_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
}

fn string_list(items: &[String]) -> String {
    let mut out = String::new();
    write_str_array(&mut out, items);
    out
}

async fn services(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let run = || -> Answer {
        let (store, tenant) = (store(&state)?, tenant(&headers)?);
        let list = store.services(&tenant).map_err(store_error)?;
        Ok(envelope(&string_list(&list), list.len()))
    };
    answer(run())
}

async fn service_operations(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(service): Path<String>,
) -> Response {
    let run = || -> Answer {
        let (store, tenant) = (store(&state)?, tenant(&headers)?);
        let mut names: Vec<String> =
            store.operations(&tenant, &service).map_err(store_error)?.into_iter().map(|(n, _)| n).collect();
        names.dedup();
        Ok(envelope(&string_list(&names), names.len()))
    };
    answer(run())
}

fn params(raw: Option<&str>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(q) = raw {
        crate::api::parse_form(q.as_bytes(), &mut out);
    }
    out
}

async fn operations(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let run = || -> Answer {
        let (store, tenant) = (store(&state)?, tenant(&headers)?);
        let p = params(raw.as_deref());
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let Some(service) = get("service").filter(|s| !s.is_empty()) else {
            return Err(jaeger_error(StatusCode::BAD_REQUEST, "parameter 'service' is required"));
        };
        let kind = get("spanKind").filter(|k| !k.is_empty());
        let ops = store.operations(&tenant, service).map_err(store_error)?;
        let mut out = String::from("[");
        let mut n = 0;
        for (name, k) in ops.iter().filter(|(_, k)| kind.is_none_or(|want| want == k.as_str())) {
            if n > 0 {
                out.push(',');
            }
            out.push_str("{\"name\":");
            json_str(&mut out, name);
            out.push_str(",\"spanKind\":");
            json_str(&mut out, if *k == SpanKind::Unspecified { "" } else { k.as_str() });
            out.push('}');
            n += 1;
        }
        out.push(']');
        Ok(envelope(&out, n))
    };
    answer(run())
}

/// A Jaeger trace id: 16 hex digits when the high half is zero, 32 otherwise.
fn jaeger_trace_id(id: &TraceId) -> String {
    if id[..8].iter().all(|b| *b == 0) {
        hex_id(&id[8..])
    } else {
        hex_id(id)
    }
}

fn tag(out: &mut String, key: &str, v: &AttrValue) {
    out.push_str("{\"key\":");
    json_str(out, key);
    match v {
        AttrValue::Bool(b) => {
            let _ = write!(out, ",\"type\":\"bool\",\"value\":{b}}}");
        }
        AttrValue::Int(i) => {
            let _ = write!(out, ",\"type\":\"int64\",\"value\":{i}}}");
        }
        AttrValue::Double(d) if d.is_finite() => {
            let _ = write!(out, ",\"type\":\"float64\",\"value\":{d}}}");
        }
        AttrValue::Bytes(b) => {
            out.push_str(",\"type\":\"binary\",\"value\":");
            json_str(out, &periscope_ingest::base64_encode(b));
            out.push('}');
        }
        other => {
            out.push_str(",\"type\":\"string\",\"value\":");
            json_str(out, &attr_text(other));
            out.push('}');
        }
    }
}

/// An attribute value as text (arrays and maps as JSON, as the OTel translator writes them).
fn attr_text(v: &AttrValue) -> String {
    match v {
        AttrValue::Empty => String::new(),
        AttrValue::Str(s) => s.clone(),
        AttrValue::Bool(b) => b.to_string(),
        AttrValue::Int(i) => i.to_string(),
        AttrValue::Double(d) => d.to_string(),
        AttrValue::Bytes(b) => periscope_ingest::base64_encode(b),
        AttrValue::Array(a) => {
            let mut s = String::from("[");
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                match x {
                    AttrValue::Str(t) => json_str(&mut s, t),
                    other => s.push_str(&attr_text(other)),
                }
            }
            s.push(']');
            s
        }
        AttrValue::Map(m) => {
            let mut s = String::from("{");
            for (i, a) in m.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                json_str(&mut s, &a.key);
                s.push(':');
                match &a.value {
                    AttrValue::Str(t) => json_str(&mut s, t),
                    other => s.push_str(&attr_text(other)),
                }
            }
            s.push('}');
            s
        }
    }
}

fn tags(out: &mut String, attrs: impl Iterator<Item = (String, AttrValue)>) {
    out.push('[');
    for (i, (k, v)) in attrs.enumerate() {
        if i > 0 {
            out.push(',');
        }
        tag(out, &k, &v);
    }
    out.push(']');
}

/// One trace in Jaeger's UI model.
fn write_trace(out: &mut String, id: &TraceId, spans: &[Span]) {
    // One process per distinct origin (resource).
    let mut processes: Vec<&Arc<periscope_model::SpanOrigin>> = Vec::new();
    let mut proc_index: Vec<usize> = Vec::with_capacity(spans.len());
    for s in spans {
        let i = match processes.iter().position(|o| o.resource == s.origin.resource) {
            Some(i) => i,
            None => {
                processes.push(&s.origin);
                processes.len() - 1
            }
        };
        proc_index.push(i);
    }
    let tid = jaeger_trace_id(id);
    out.push_str("{\"traceID\":");
    json_str(out, &tid);
    out.push_str(",\"spans\":[");
    for (n, (s, p)) in spans.iter().zip(&proc_index).enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str("{\"traceID\":");
        json_str(out, &tid);
        out.push_str(",\"spanID\":");
        json_str(out, &hex_id(&s.span_id));
        let _ = write!(out, ",\"flags\":{}", s.flags & 0xff);
        out.push_str(",\"operationName\":");
        json_str(out, &s.name);
        out.push_str(",\"references\":[");
        let mut first = true;
        let mut reference = |out: &mut String, kind: &str, trace: &TraceId, span: &[u8; 8]| {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{{\"refType\":\"{kind}\",\"traceID\":");
            json_str(out, &jaeger_trace_id(trace));
            out.push_str(",\"spanID\":");
            json_str(out, &hex_id(span));
            out.push('}');
        };
        if let Some(parent) = &s.parent_span_id {
            reference(out, "CHILD_OF", &s.trace_id, parent);
        }
        for l in &s.links {
            reference(out, "FOLLOWS_FROM", &l.trace_id, &l.span_id);
        }
        let _ = write!(out, "],\"startTime\":{},\"duration\":{}", s.start_ns / 1000, s.duration_ns() / 1000);
        out.push_str(",\"tags\":");
        let mut extra: Vec<(String, AttrValue)> =
            s.attributes.iter().map(|a| (a.key.clone(), a.value.clone())).collect();
        if s.kind != SpanKind::Unspecified {
            extra.push(("span.kind".into(), AttrValue::Str(s.kind.as_str().into())));
        }
        match s.status {
            SpanStatus::Ok => extra.push(("otel.status_code".into(), AttrValue::Str("OK".into()))),
            SpanStatus::Error => {
                extra.push(("otel.status_code".into(), AttrValue::Str("ERROR".into())));
                extra.push(("error".into(), AttrValue::Bool(true)));
            }
            SpanStatus::Unset => {}
        }
        if !s.status_message.is_empty() {
            extra.push(("otel.status_description".into(), AttrValue::Str(s.status_message.clone())));
        }
        if !s.origin.scope_name.is_empty() {
            extra.push(("otel.scope.name".into(), AttrValue::Str(s.origin.scope_name.clone())));
        }
        if !s.origin.scope_version.is_empty() {
            extra.push(("otel.scope.version".into(), AttrValue::Str(s.origin.scope_version.clone())));
        }
        if !s.trace_state.is_empty() {
            extra.push(("w3c.tracestate".into(), AttrValue::Str(s.trace_state.clone())));
        }
        tags(out, extra.into_iter());
        out.push_str(",\"logs\":[");
        for (i, e) in s.events.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{{\"timestamp\":{},\"fields\":", e.time_ns / 1000);
            let fields = std::iter::once(("event".to_string(), AttrValue::Str(e.name.clone())))
                .chain(e.attributes.iter().map(|a| (a.key.clone(), a.value.clone())));
            tags(out, fields);
            out.push('}');
        }
        let _ = write!(out, "],\"processID\":\"p{}\",\"warnings\":null}}", p + 1);
    }
    out.push_str("],\"processes\":{");
    for (i, o) in processes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"p{}\":{{\"serviceName\":", i + 1);
        json_str(out, o.service_name());
        out.push_str(",\"tags\":");
        tags(
            out,
            o.resource
                .iter()
                .filter(|a: &&Attribute| a.key != periscope_model::SERVICE_NAME)
                .map(|a| (a.key.clone(), a.value.clone())),
        );
        out.push('}');
    }
    // The trace's logs (`/api/periscope/traces/<id>/logs`), for UIs that follow it; Jaeger's
    // clients ignore the extra member.
    let _ = write!(out, "}},\"warnings\":null,\"periscope\":{{\"logs\":\"/api/periscope/traces/{tid}/logs\"}}}}");
}

async fn trace(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(tid) = parse_trace_id(&id) else {
        let msg = format!("malformed parameter traceID: {id:?} is not a hex trace id");
        return jaeger_error(StatusCode::BAD_REQUEST, &msg).into_response();
    };
    let run = move || -> Answer {
        let (store, tenant) = (store(&state)?, tenant(&headers)?);
        let spans = store.trace(&tenant, &tid).map_err(store_error)?;
        if spans.is_empty() {
            return Err(jaeger_error(StatusCode::NOT_FOUND, "trace not found"));
        }
        let mut out = String::from("[");
        write_trace(&mut out, &tid, &spans);
        out.push(']');
        Ok(envelope(&out, 1))
    };
    answer(blocking(run).await)
}

/// A non-negative Go duration (`1.5s`, `100ms`, `2m`, `300us`) in nanoseconds, as Jaeger's
/// parameters take them (surrounding spaces ignored).
fn go_duration_ns(s: &str) -> Option<i64> {
    periscope_model::parse_go_duration(s.trim()).filter(|d| *d >= 0)
}

fn bad(param: &str, value: &str, why: &str) -> JaegerError {
    jaeger_error(StatusCode::BAD_REQUEST, &format!("malformed parameter {param}: {value:?} {why}"))
}

/// The search query of `GET /api/traces`, as Jaeger's query service reads it.
fn search_query(p: &[(String, String)], now_us: i64) -> Result<TraceQuery, JaegerError> {
    let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let mut q = TraceQuery { service: get("service").map(str::to_string), ..Default::default() };
    q.operation = get("operation").map(str::to_string);
    let int = |k: &str| -> Result<Option<i64>, JaegerError> {
        get(k).map(|v| v.parse::<i64>().map_err(|_| bad(k, v, "is not an integer"))).transpose()
    };
    let lookback = match get("lookback") {
        Some(v) if v != "custom" => Some(go_duration_ns(v).ok_or_else(|| bad("lookback", v, "is not a duration"))?),
        _ => None,
    };
    let end_us = int("end")?.unwrap_or(now_us);
    let start_us = match (int("start")?, lookback) {
        (Some(s), _) => s,
        (None, Some(lb)) => end_us.saturating_sub(lb / 1000),
        (None, None) => end_us.saturating_sub(3_600_000_000),
    };
    q.start_ns = start_us.saturating_mul(1000);
    q.end_ns = end_us.saturating_mul(1000);
    if let Some(l) = int("limit")? {
        q.limit = usize::try_from(l).map_err(|_| bad("limit", &l.to_string(), "is negative"))?;
    }
    for (k, field) in [("minDuration", &mut q.min_duration_ns), ("maxDuration", &mut q.max_duration_ns)] {
        if let Some(v) = get(k) {
            *field = Some(go_duration_ns(v).ok_or_else(|| bad(k, v, "is not a duration"))?);
        }
    }
    let mut tags: Vec<(String, String)> = Vec::new();
    if let Some(t) = get("tags") {
        let map: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(t).map_err(|_| bad("tags", t, "is not a JSON object"))?;
        for (k, v) in map {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            tags.push((k, v));
        }
    }
    for (n, v) in p {
        if n == "tag" {
            let (k, val) = v.split_once(':').ok_or_else(|| bad("tag", v, "is not key:value"))?;
            tags.push((k.to_string(), val.to_string()));
        }
    }
    for (k, v) in tags {
        if k == "error" {
            q.error = Some(v == "true");
        } else if k == "span.kind" {
            q.kind = [SpanKind::Internal, SpanKind::Server, SpanKind::Client, SpanKind::Producer, SpanKind::Consumer]
                .into_iter()
                .find(|x| x.as_str() == v);
        } else {
            q.tags.push((k, v));
        }
    }
    Ok(q)
}

async fn search(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let p = params(raw.as_deref());
    let now_us =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0);
    let q = match search_query(&p, now_us) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let ids: Vec<TraceId> = p.iter().filter(|(k, _)| k == "traceID").filter_map(|(_, v)| parse_trace_id(v)).collect();
    let run = move || -> Answer {
        let (store, tenant) = (store(&state)?, tenant(&headers)?);
        let ids = if ids.is_empty() { store.search(&tenant, &q).map_err(store_error)? } else { ids };
        let mut out = String::from("[");
        let mut n = 0;
        for id in &ids {
            let spans = store.trace(&tenant, id).map_err(store_error)?;
            if spans.is_empty() {
                continue;
            }
            if n > 0 {
                out.push(',');
            }
            write_trace(&mut out, id, &spans);
            n += 1;
        }
        out.push(']');
        Ok(envelope(&out, n))
    };
    answer(blocking(run).await)
}

/// The time range of a dependencies query: `endTs` (ms, default now) and `lookback` (ms,
/// default 24 h), as Jaeger's `/api/dependencies` takes them; in nanoseconds.
fn dependency_range(p: &[(String, String)], now_ms: i64) -> Result<(i64, i64), JaegerError> {
    let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let int = |k: &str| -> Result<Option<i64>, JaegerError> {
        get(k).map(|v| v.parse::<i64>().map_err(|_| bad(k, v, "is not an integer"))).transpose()
    };
    let end = int("endTs")?.unwrap_or(now_ms);
    let lookback = int("lookback")?.unwrap_or(86_400_000);
    if lookback < 0 {
        return Err(bad("lookback", &lookback.to_string(), "is negative"));
    }
    Ok((end.saturating_sub(lookback).saturating_mul(1_000_000), end.saturating_mul(1_000_000)))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `GET /api/dependencies?endTs=&lookback=`: Jaeger's dependency links.
async fn dependencies(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let p = params(raw.as_deref());
    let (start, end) = match dependency_range(&p, now_ms()) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let run = move || -> Answer {
        let (store, tenant) = (store(&state)?, tenant(&headers)?);
        let links = store.dependencies(&tenant, start, end).map_err(store_error)?;
        let mut out = String::from("[");
        for (i, l) in links.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"parent\":");
            json_str(&mut out, &l.parent);
            out.push_str(",\"child\":");
            json_str(&mut out, &l.child);
            let _ = write!(out, ",\"callCount\":{}}}", l.call_count);
        }
        out.push(']');
        Ok(envelope(&out, links.len()))
    };
    answer(blocking(run).await)
}

/// `GET /api/periscope/service-graph?endTs=&lookback=`: the service map with each edge's
/// calls, errors, rate (per second over the range), error ratio and mean latency (ms).
async fn service_graph(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let p = params(raw.as_deref());
    let (start, end) = match dependency_range(&p, now_ms()) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let run = move || -> Answer {
        let (store, tenant) = (store(&state)?, tenant(&headers)?);
        let links = store.dependencies(&tenant, start, end).map_err(store_error)?;
        let secs = ((end - start) as f64 / 1e9).max(1e-9);
        let mut services: Vec<&str> = links.iter().flat_map(|l| [l.parent.as_str(), l.child.as_str()]).collect();
        services.sort_unstable();
        services.dedup();
        let mut out = String::from("{\"services\":");
        write_str_array(&mut out, &services);
        out.push_str(",\"edges\":[");
        for (i, l) in links.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"parent\":");
            json_str(&mut out, &l.parent);
            out.push_str(",\"child\":");
            json_str(&mut out, &l.child);
            let calls = l.call_count.max(1) as f64;
            let _ = write!(
                out,
                ",\"calls\":{},\"errors\":{},\"rate\":{},\"errorRatio\":{},\"meanLatencyMs\":{}}}",
                l.call_count,
                l.error_count,
                l.call_count as f64 / secs,
                l.error_count as f64 / calls,
                l.duration_sum_ns as f64 / calls / 1e6
            );
        }
        out.push_str("]}");
        Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
    };
    answer(blocking(run).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_queries() {
        assert_eq!(go_duration_ns("1.5s"), Some(1_500_000_000));
        assert_eq!(go_duration_ns("100ms"), Some(100_000_000));
        assert_eq!(go_duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration_ns("300us"), Some(300_000));
        assert_eq!(go_duration_ns("5x"), None);
        assert_eq!(go_duration_ns(""), None);
        let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
        };
        let q = search_query(
            &p(&[
                ("service", "users"),
                ("tags", r#"{"http.status_code":"500","error":"true"}"#),
                ("minDuration", "10ms"),
                ("start", "1000"),
                ("end", "2000"),
                ("limit", "5"),
                ("tag", "span.kind:server"),
            ]),
            0,
        )
        .unwrap();
        assert_eq!(q.service.as_deref(), Some("users"));
        assert_eq!(q.tags, vec![("http.status_code".to_string(), "500".to_string())]);
        assert_eq!((q.error, q.kind, q.min_duration_ns), (Some(true), Some(SpanKind::Server), Some(10_000_000)));
        assert_eq!((q.start_ns, q.end_ns, q.limit), (1_000_000, 2_000_000, 5));
        let q = search_query(&p(&[("lookback", "1h")]), 7_200_000_000).unwrap();
        assert_eq!((q.start_ns, q.end_ns), (3_600_000_000_000, 7_200_000_000_000));
        for bad in [("minDuration", "fast"), ("limit", "x"), ("tags", "{"), ("tag", "nocolon")] {
            assert!(search_query(&p(&[bad]), 0).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn jaeger_ids() {
        let mut id = [0u8; 16];
        id[15] = 0xab;
        assert_eq!(jaeger_trace_id(&id), "00000000000000ab");
        id[0] = 1;
        assert_eq!(jaeger_trace_id(&id), "010000000000000000000000000000ab");
    }
}
