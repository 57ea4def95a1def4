//! Zipkin v2 JSON (`POST /api/v2/spans`, `../shared/peer-tests/zipkin/zipkin2-api.yaml`) →
//! [`SpanBatch`], mapped as the OpenTelemetry specification's Zipkin transformation reads
//! backwards, with the attribute names of a current OpenTelemetry Collector (its beta
//! semantic-convention gates on):
//!
//! - ids: lower-case hex as the schema requires (upper case is refused, as Zipkin refuses it);
//!   a 64-bit trace id is left-padded with zero bytes to 16 bytes, so it names the same trace
//!   as its zero-padded 128-bit form.
//! - `timestamp`/`duration` µs → start/end ns (no `duration`: end = start); a span without
//!   `timestamp` is refused (a span needs a start time).
//! - `kind` → the same span kind, absent → internal.
//! - `localEndpoint.serviceName` → resource `service.name`; its address and port →
//!   `network.local.address`/`network.local.port`; the remote endpoint's →
//!   `network.peer.address`/`network.peer.port`, its service → `service.peer.name`.
//! - `tags` → attributes (string values; a number or boolean that the schema does not allow is
//!   kept as its JSON text), except: `otel.status_code` (`OK`/`ERROR`) and
//!   `otel.status_description` → the status; `error` → status ERROR, its value the
//!   description unless it is empty or `true`; `otel.scope.name`/`version` (or the older
//!   `otel.library.*`) → the scope; `otel.dropped_*_count` → dropped counts.
//! - `annotations` → events (µs → ns, `value` → name).
//!
//! The body must be a JSON array; any invalid span fails the whole request with an error
//! naming the span's position and the field, so that nothing is half stored.

use crate::IngestError;
use periscope_model::{
    parse_trace_id, AttrValue, Attribute, Span, SpanBatch, SpanEvent, SpanKind, SpanOrigin, StatusCode,
};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ZSpan {
    trace_id: Option<String>,
    id: Option<String>,
    parent_id: Option<String>,
    name: Option<String>,
    kind: Option<String>,
    timestamp: Option<i64>,
    duration: Option<i64>,
    local_endpoint: Option<Endpoint>,
    remote_endpoint: Option<Endpoint>,
    annotations: Vec<Annotation>,
    tags: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Deserialize, PartialEq, Eq, Hash, Clone)]
#[serde(rename_all = "camelCase", default)]
struct Endpoint {
    service_name: Option<String>,
    ipv4: Option<String>,
    ipv6: Option<String>,
    port: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Annotation {
    timestamp: Option<i64>,
    value: Option<String>,
}

/// A Zipkin span id (16 lower-case hex digits).
fn parse_span_id(s: &str) -> Option<[u8; 8]> {
    if s.len() != 16 || !s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
        return None;
    }
    let mut id = [0u8; 8];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    (id != [0; 8]).then_some(id)
}

fn lower_hex(s: &str) -> bool {
    s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

fn endpoint_attrs(e: &Endpoint, side: &str, out: &mut Vec<Attribute>) {
    if let Some(ip) = e.ipv4.as_ref().or(e.ipv6.as_ref()).filter(|s| !s.is_empty()) {
        out.push(Attribute::str(format!("network.{side}.address"), ip.clone()));
    }
    if let Some(p) = e.port.filter(|p| *p > 0) {
        out.push(Attribute { key: format!("network.{side}.port"), value: AttrValue::Int(p) });
    }
}

/// Decodes a Zipkin v2 JSON body.
pub fn decode_zipkin_spans(body: &[u8]) -> Result<SpanBatch, IngestError> {
    let spans: Vec<ZSpan> = serde_json::from_slice(body).map_err(IngestError::ZipkinJson)?;
    let bad = |i: usize, msg: String| IngestError::ZipkinInvalid(format!("span {i}: {msg}"));
    // Spans of one service and scope share an origin.
    type OriginKey = (Option<String>, Option<String>, Option<String>);
    let mut origins: HashMap<OriginKey, Arc<SpanOrigin>> = HashMap::new();
    let mut out = SpanBatch::default();
    for (i, z) in spans.into_iter().enumerate() {
        let tid = z.trace_id.as_deref().ok_or_else(|| bad(i, "traceId is required".into()))?;
        if !(tid.len() == 16 || tid.len() == 32) || !lower_hex(tid) {
            return Err(bad(i, format!("traceId {tid:?} must be 16 or 32 lower-case hex digits")));
        }
        let trace_id = parse_trace_id(tid).ok_or_else(|| bad(i, "traceId must not be all zero".into()))?;
        let id = z.id.as_deref().ok_or_else(|| bad(i, "id is required".into()))?;
        let span_id = parse_span_id(id)
            .ok_or_else(|| bad(i, format!("id {id:?} must be 16 lower-case hex digits, not all zero")))?;
        let parent_span_id = match z.parent_id.as_deref() {
            None | Some("") => None,
            // An all-zero parent is no parent, as in OTLP.
            Some(p) if p.len() == 16 && p.bytes().all(|c| c == b'0') => None,
            Some(p) => Some(
                parse_span_id(p).ok_or_else(|| bad(i, format!("parentId {p:?} must be 16 lower-case hex digits")))?,
            ),
        };
        let kind = match z.kind.as_deref() {
            None => SpanKind::Internal,
            Some("CLIENT") => SpanKind::Client,
            Some("SERVER") => SpanKind::Server,
            Some("PRODUCER") => SpanKind::Producer,
            Some("CONSUMER") => SpanKind::Consumer,
            Some(k) => return Err(bad(i, format!("kind {k:?} is not CLIENT, SERVER, PRODUCER or CONSUMER"))),
        };
        let ts = z.timestamp.ok_or_else(|| bad(i, "timestamp is required (a span needs a start time)".into()))?;
        let start_ns =
            ts.checked_mul(1000).filter(|t| *t > 0).ok_or_else(|| bad(i, format!("timestamp {ts} is out of range")))?;
        let duration = z.duration.unwrap_or(0);
        if duration < 0 {
            return Err(bad(i, format!("duration {duration} is negative")));
        }
        let end_ns = duration
            .checked_mul(1000)
            .and_then(|d| start_ns.checked_add(d))
            .ok_or_else(|| bad(i, format!("duration {duration} is out of range")))?;
        let mut span = Span {
            trace_id,
            span_id,
            parent_span_id,
            name: z.name.unwrap_or_default(),
            kind,
            start_ns,
            end_ns,
            ..Default::default()
        };
        let (mut scope_name, mut scope_version) = (None, None);
        let mut status_code: Option<StatusCode> = None;
        let mut description: Option<String> = None;
        let mut error: Option<String> = None;
        for (k, v) in z.tags {
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            let count = || text.parse::<u32>().ok();
            match k.as_str() {
                "otel.status_code" => {
                    status_code = match text.as_str() {
                        "OK" => Some(StatusCode::Ok),
                        "ERROR" => Some(StatusCode::Error),
                        "UNSET" | "" => None,
                        other => return Err(bad(i, format!("tag otel.status_code {other:?} is not OK or ERROR"))),
                    }
                }
                "otel.status_description" => description = Some(text),
                "error" => error = Some(text),
                "otel.scope.name" | "otel.library.name" => scope_name = Some(text),
                "otel.scope.version" | "otel.library.version" => scope_version = Some(text),
                "otel.dropped_attributes_count" if count().is_some() => span.dropped_attributes = count().unwrap_or(0),
                "otel.dropped_events_count" if count().is_some() => span.dropped_events = count().unwrap_or(0),
                "otel.dropped_links_count" if count().is_some() => span.dropped_links = count().unwrap_or(0),
                _ => span.attributes.push(Attribute::str(k, text)),
            }
        }
        if let Some(e) = error {
            status_code = Some(StatusCode::Error);
            if description.is_none() && !e.is_empty() && e != "true" {
                description = Some(e);
            }
        }
        span.status = status_code.unwrap_or_default();
        if span.status == StatusCode::Error {
            span.status_message = description.unwrap_or_default();
        }
        let local = z.local_endpoint.unwrap_or_default();
        endpoint_attrs(&local, "local", &mut span.attributes);
        if let Some(remote) = &z.remote_endpoint {
            endpoint_attrs(remote, "peer", &mut span.attributes);
            if let Some(svc) = remote.service_name.as_ref().filter(|s| !s.is_empty()) {
                if !span.attributes.iter().any(|a| a.key == "service.peer.name" || a.key == "peer.service") {
                    span.attributes.push(Attribute::str("service.peer.name", svc.clone()));
                }
            }
        }
        for (j, a) in z.annotations.into_iter().enumerate() {
            let (Some(t), Some(value)) = (a.timestamp, a.value) else {
                return Err(bad(i, format!("annotation {j} needs timestamp and value")));
            };
            let time_ns =
                t.checked_mul(1000).ok_or_else(|| bad(i, format!("annotation {j} timestamp {t} is out of range")))?;
            span.events.push(SpanEvent { time_ns, name: value, ..Default::default() });
        }
        let key = (local.service_name.clone().filter(|s| !s.is_empty()), scope_name, scope_version);
        span.origin = origins
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(SpanOrigin {
                    resource: key.0.iter().map(|s| Attribute::str(periscope_model::SERVICE_NAME, s.clone())).collect(),
                    scope_name: key.1.clone().unwrap_or_default(),
                    scope_version: key.2.clone().unwrap_or_default(),
                    ..Default::default()
                })
            })
            .clone();
        out.spans.push(span);
    }
    Ok(out)
}

#[cfg(test)]
#[path = "zipkin_test.rs"]
mod tests;
