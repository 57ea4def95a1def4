//! OTLP traces: `ExportTraceServiceRequest` (protobuf or OTLP/JSON) → [`ExportTraceRequest`],
//! the full span model of `opentelemetry/proto/trace/v1/trace.proto` (v1.x): resource and
//! scope, ids, trace state, parent, flags, name, kind, times, attributes, events, links,
//! status and every dropped count.
//!
//! The common messages (`Resource`, `InstrumentationScope`, `KeyValue`, `AnyValue`) and the
//! wire rules are the metrics decoder's (`otlp_metrics::{model, proto, json}`): unknown fields
//! skipped, wrong wire types and truncation errors naming the message and byte offset, UTF-8
//! checked, `AnyValue` depth bounded, ids of 0 or 16 / 8 bytes (hex in OTLP/JSON).
//!
//! Decoding checks the encoding only. Whether a span can be stored — non-zero ids, end not
//! before start, sane times — is [`check_span`]'s verdict, per span, so one bad span never
//! costs the rest of a request (they become the OTLP `partial_success`).

use serde::Deserialize;

use crate::error::{WireError, WireType};
use crate::otlp_metrics::json;
use crate::otlp_metrics::model::{AnyValue, KeyValue, Resource, Scope};
use crate::otlp_metrics::proto::{
    fixed64, fixed64_always, fixed64_field, id, key_value, key_values, msg, nested, resource, scope, str_field, string,
    varint32, varint_field, Sub, R,
};
use crate::otlp_metrics::OtlpEncoding;
use crate::wire::{put_tag, Reader};
use crate::IngestError;
use periscope_model::{
    AttrValue, Attribute, Span as ModelSpan, SpanBatch, SpanEvent, SpanKind, SpanLink, SpanOrigin, StatusCode,
};
use std::sync::Arc;

/// `ExportTraceServiceRequest`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExportTraceRequest {
    /// `resource_spans = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub resource_spans: Vec<ResourceSpans>,
}

/// `ResourceSpans`: the spans of one resource (a service instance).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceSpans {
    /// `resource = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub resource: Resource,
    /// `scope_spans = 2`.
    #[serde(deserialize_with = "json::nullable")]
    pub scope_spans: Vec<ScopeSpans>,
    /// `schema_url = 3`.
    #[serde(deserialize_with = "json::nullable")]
    pub schema_url: String,
}

/// `ScopeSpans`: the spans of one instrumentation scope.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScopeSpans {
    /// `scope = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub scope: Scope,
    /// `spans = 2`.
    #[serde(deserialize_with = "json::nullable")]
    pub spans: Vec<Span>,
    /// `schema_url = 3`.
    #[serde(deserialize_with = "json::nullable")]
    pub schema_url: String,
}

/// `Span`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Span {
    /// `trace_id = 1`: 16 bytes (hex in OTLP/JSON); empty when absent.
    #[serde(deserialize_with = "json::trace_id")]
    pub trace_id: Vec<u8>,
    /// `span_id = 2`: 8 bytes; empty when absent.
    #[serde(deserialize_with = "json::span_id")]
    pub span_id: Vec<u8>,
    /// `trace_state = 3` (W3C `tracestate`).
    #[serde(deserialize_with = "json::nullable")]
    pub trace_state: String,
    /// `parent_span_id = 4`: 8 bytes, empty for a root span.
    #[serde(deserialize_with = "json::span_id")]
    pub parent_span_id: Vec<u8>,
    /// `flags = 16` (W3C trace flags in the low byte, remote-parent bits above).
    #[serde(deserialize_with = "json::nullable")]
    pub flags: u32,
    /// `name = 5`.
    #[serde(deserialize_with = "json::nullable")]
    pub name: String,
    /// `kind = 6`: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    #[serde(deserialize_with = "json::nullable")]
    pub kind: i32,
    /// `start_time_unix_nano = 7`.
    #[serde(deserialize_with = "json::u64_any")]
    pub start_time_unix_nano: u64,
    /// `end_time_unix_nano = 8`.
    #[serde(deserialize_with = "json::u64_any")]
    pub end_time_unix_nano: u64,
    /// `attributes = 9`.
    #[serde(deserialize_with = "json::nullable")]
    pub attributes: Vec<KeyValue>,
    /// `dropped_attributes_count = 10`.
    #[serde(deserialize_with = "json::nullable")]
    pub dropped_attributes_count: u32,
    /// `events = 11`.
    #[serde(deserialize_with = "json::nullable")]
    pub events: Vec<Event>,
    /// `dropped_events_count = 12`.
    #[serde(deserialize_with = "json::nullable")]
    pub dropped_events_count: u32,
    /// `links = 13`.
    #[serde(deserialize_with = "json::nullable")]
    pub links: Vec<Link>,
    /// `dropped_links_count = 14`.
    #[serde(deserialize_with = "json::nullable")]
    pub dropped_links_count: u32,
    /// `status = 15`.
    #[serde(deserialize_with = "json::nullable")]
    pub status: Status,
}

/// `Span.Event`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Event {
    /// `time_unix_nano = 1`.
    #[serde(deserialize_with = "json::u64_any")]
    pub time_unix_nano: u64,
    /// `name = 2`.
    #[serde(deserialize_with = "json::nullable")]
    pub name: String,
    /// `attributes = 3`.
    #[serde(deserialize_with = "json::nullable")]
    pub attributes: Vec<KeyValue>,
    /// `dropped_attributes_count = 4`.
    #[serde(deserialize_with = "json::nullable")]
    pub dropped_attributes_count: u32,
}

/// `Span.Link`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Link {
    /// `trace_id = 1`.
    #[serde(deserialize_with = "json::trace_id")]
    pub trace_id: Vec<u8>,
    /// `span_id = 2`.
    #[serde(deserialize_with = "json::span_id")]
    pub span_id: Vec<u8>,
    /// `trace_state = 3`.
    #[serde(deserialize_with = "json::nullable")]
    pub trace_state: String,
    /// `attributes = 4`.
    #[serde(deserialize_with = "json::nullable")]
    pub attributes: Vec<KeyValue>,
    /// `dropped_attributes_count = 5`.
    #[serde(deserialize_with = "json::nullable")]
    pub dropped_attributes_count: u32,
    /// `flags = 6`.
    #[serde(deserialize_with = "json::nullable")]
    pub flags: u32,
}

/// `Status`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Status {
    /// `message = 2`.
    #[serde(deserialize_with = "json::nullable")]
    pub message: String,
    /// `code = 3`: 0 unset, 1 ok, 2 error.
    #[serde(deserialize_with = "json::nullable")]
    pub code: i32,
}

/// Decodes a (decompressed) `ExportTraceServiceRequest` body.
pub fn decode_trace_request(body: &[u8], encoding: OtlpEncoding) -> Result<ExportTraceRequest, IngestError> {
    match encoding {
        OtlpEncoding::Protobuf => decode_proto(body),
        OtlpEncoding::Json => serde_json::from_slice(body).map_err(IngestError::OtlpJson),
    }
}

fn decode_proto(body: &[u8]) -> R<ExportTraceRequest> {
    let mut req = ExportTraceRequest::default();
    let mut r = Reader::new(body, 0, "ExportTraceServiceRequest");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => req.resource_spans.push(resource_spans(msg(&mut r, wt, "resource_spans")?)?),
            _ => r.skip(field, wt)?,
        }
    }
    Ok(req)
}

/// The shape `ResourceSpans` and `ScopeSpans` share: a head message (field 1), repeated
/// items (field 2) and a schema URL (field 3).
pub(crate) fn group<H: Default, T>(
    (b, off): Sub<'_>,
    names: [&'static str; 3],
    head: fn(Sub<'_>, &mut H) -> R<()>,
    item: fn(Sub<'_>) -> R<T>,
) -> R<(H, Vec<T>, String)> {
    let [message, head_field, items_field] = names;
    let (mut h, mut items, mut schema_url) = (H::default(), Vec::new(), String::new());
    let mut r = Reader::new(b, off, message);
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => head(msg(&mut r, wt, head_field)?, &mut h)?,
            2 => items.push(item(msg(&mut r, wt, items_field)?)?),
            3 => schema_url = string(&mut r, wt, message, "schema_url")?,
            _ => r.skip(field, wt)?,
        }
    }
    Ok((h, items, schema_url))
}

fn resource_spans(sub: Sub<'_>) -> R<ResourceSpans> {
    let (resource, scope_spans, schema_url) =
        group(sub, ["ResourceSpans", "resource", "scope_spans"], resource, scope_spans)?;
    Ok(ResourceSpans { resource, scope_spans, schema_url })
}

fn scope_spans(sub: Sub<'_>) -> R<ScopeSpans> {
    let (scope, spans, schema_url) = group(sub, ["ScopeSpans", "scope", "spans"], scope, span)?;
    Ok(ScopeSpans { scope, spans, schema_url })
}

/// A `fixed32` field.
fn fixed32(r: &mut Reader<'_>, wt: WireType, field: &'static str) -> Result<u32, WireError> {
    r.expect(wt, WireType::Fixed32, field)?;
    r.fixed32()
}

fn span((b, off): Sub<'_>) -> R<Span> {
    let mut s = Span::default();
    let mut r = Reader::new(b, off, "Span");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => s.trace_id = id(&mut r, wt, "trace_id", 16)?,
            2 => s.span_id = id(&mut r, wt, "span_id", 8)?,
            3 => s.trace_state = string(&mut r, wt, "Span", "trace_state")?,
            4 => s.parent_span_id = id(&mut r, wt, "parent_span_id", 8)?,
            16 => s.flags = fixed32(&mut r, wt, "flags")?,
            5 => s.name = string(&mut r, wt, "Span", "name")?,
            6 => s.kind = varint32(&mut r, wt, "kind")? as i32,
            7 => s.start_time_unix_nano = fixed64(&mut r, wt, "start_time_unix_nano")?,
            8 => s.end_time_unix_nano = fixed64(&mut r, wt, "end_time_unix_nano")?,
            9 => s.attributes.push(key_value(msg(&mut r, wt, "attributes")?, 0)?),
            10 => s.dropped_attributes_count = varint32(&mut r, wt, "dropped_attributes_count")?,
            11 => s.events.push(event(msg(&mut r, wt, "events")?)?),
            12 => s.dropped_events_count = varint32(&mut r, wt, "dropped_events_count")?,
            13 => s.links.push(link(msg(&mut r, wt, "links")?)?),
            14 => s.dropped_links_count = varint32(&mut r, wt, "dropped_links_count")?,
            15 => status(msg(&mut r, wt, "status")?, &mut s.status)?,
            _ => r.skip(field, wt)?,
        }
    }
    Ok(s)
}

fn event((b, off): Sub<'_>) -> R<Event> {
    let mut e = Event::default();
    let mut r = Reader::new(b, off, "Span.Event");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => e.time_unix_nano = fixed64(&mut r, wt, "time_unix_nano")?,
            2 => e.name = string(&mut r, wt, "Span.Event", "name")?,
            3 => e.attributes.push(key_value(msg(&mut r, wt, "attributes")?, 0)?),
            4 => e.dropped_attributes_count = varint32(&mut r, wt, "dropped_attributes_count")?,
            _ => r.skip(field, wt)?,
        }
    }
    Ok(e)
}

fn link((b, off): Sub<'_>) -> R<Link> {
    let mut l = Link::default();
    let mut r = Reader::new(b, off, "Span.Link");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => l.trace_id = id(&mut r, wt, "trace_id", 16)?,
            2 => l.span_id = id(&mut r, wt, "span_id", 8)?,
            3 => l.trace_state = string(&mut r, wt, "Span.Link", "trace_state")?,
            4 => l.attributes.push(key_value(msg(&mut r, wt, "attributes")?, 0)?),
            5 => l.dropped_attributes_count = varint32(&mut r, wt, "dropped_attributes_count")?,
            6 => l.flags = fixed32(&mut r, wt, "flags")?,
            _ => r.skip(field, wt)?,
        }
    }
    Ok(l)
}

fn status((b, off): Sub<'_>, out: &mut Status) -> R<()> {
    let mut r = Reader::new(b, off, "Status");
    while let Some((field, wt)) = r.field()? {
        match field {
            2 => out.message = string(&mut r, wt, "Status", "message")?,
            3 => out.code = varint32(&mut r, wt, "code")? as i32,
            _ => r.skip(field, wt)?,
        }
    }
    Ok(())
}

fn fixed32_field(out: &mut Vec<u8>, number: u32, v: u32) {
    if v != 0 {
        put_tag(out, number, WireType::Fixed32);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn bytes_field(out: &mut Vec<u8>, number: u32, b: &[u8]) {
    if !b.is_empty() {
        crate::wire::put_bytes(out, number, b);
    }
}

/// Encodes a request as protobuf (what an SDK sends; used by tests and benchmarks).
pub fn encode_trace_request(req: &ExportTraceRequest) -> Vec<u8> {
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        nested(&mut out, 1, |o| {
            nested(o, 1, |o| key_values(o, 1, &rs.resource.attributes));
            for ss in &rs.scope_spans {
                nested(o, 2, |o| {
                    nested(o, 1, |o| {
                        str_field(o, 1, &ss.scope.name);
                        str_field(o, 2, &ss.scope.version);
                        key_values(o, 3, &ss.scope.attributes);
                    });
                    for s in &ss.spans {
                        nested(o, 2, |o| encode_span(o, s));
                    }
                    str_field(o, 3, &ss.schema_url);
                });
            }
            str_field(o, 3, &rs.schema_url);
        });
    }
    out
}

fn encode_span(o: &mut Vec<u8>, s: &Span) {
    bytes_field(o, 1, &s.trace_id);
    bytes_field(o, 2, &s.span_id);
    str_field(o, 3, &s.trace_state);
    bytes_field(o, 4, &s.parent_span_id);
    str_field(o, 5, &s.name);
    varint_field(o, 6, s.kind as u32 as u64);
    fixed64_always(o, 7, s.start_time_unix_nano);
    fixed64_always(o, 8, s.end_time_unix_nano);
    key_values(o, 9, &s.attributes);
    varint_field(o, 10, s.dropped_attributes_count as u64);
    for e in &s.events {
        nested(o, 11, |o| {
            fixed64_field(o, 1, e.time_unix_nano);
            str_field(o, 2, &e.name);
            key_values(o, 3, &e.attributes);
            varint_field(o, 4, e.dropped_attributes_count as u64);
        });
    }
    varint_field(o, 12, s.dropped_events_count as u64);
    for l in &s.links {
        nested(o, 13, |o| {
            bytes_field(o, 1, &l.trace_id);
            bytes_field(o, 2, &l.span_id);
            str_field(o, 3, &l.trace_state);
            key_values(o, 4, &l.attributes);
            varint_field(o, 5, l.dropped_attributes_count as u64);
            fixed32_field(o, 6, l.flags);
        });
    }
    varint_field(o, 14, s.dropped_links_count as u64);
    if s.status != Status::default() {
        nested(o, 15, |o| {
            str_field(o, 2, &s.status.message);
            varint_field(o, 3, s.status.code as u32 as u64);
        });
    }
    fixed32_field(o, 16, s.flags);
}

/// Latest start time accepted: year 2262 (the last nanosecond an `i64` holds); later times
/// are not a clock's.
pub const MAX_TIME_UNIX_NANO: u64 = i64::MAX as u64;

/// Whether a decoded span can be stored, and why not: a 16-byte trace id and an 8-byte span
/// id, neither all zero (W3C: invalid), a parent id of 0 or 8 bytes (all zero counts as none),
/// a start time set and within `i64` nanoseconds, an end not before the start, a kind and
/// status code the specification defines.
pub fn check_span(s: &Span) -> Result<(), String> {
    let zero = |b: &[u8]| b.iter().all(|x| *x == 0);
    if s.trace_id.len() != 16 || zero(&s.trace_id) {
        return Err("span has an invalid trace_id (must be 16 bytes, not all zero)".into());
    }
    if s.span_id.len() != 8 || zero(&s.span_id) {
        return Err("span has an invalid span_id (must be 8 bytes, not all zero)".into());
    }
    if s.start_time_unix_nano == 0 {
        return Err("span has no start_time_unix_nano".into());
    }
    if s.start_time_unix_nano > MAX_TIME_UNIX_NANO || s.end_time_unix_nano > MAX_TIME_UNIX_NANO {
        return Err("span time is beyond the year 2262".into());
    }
    if s.end_time_unix_nano < s.start_time_unix_nano {
        return Err(format!(
            "span end_time_unix_nano {} is before start_time_unix_nano {}",
            s.end_time_unix_nano, s.start_time_unix_nano
        ));
    }
    if !(0..=5).contains(&s.kind) {
        return Err(format!("span has an unknown kind {}", s.kind));
    }
    if !(0..=2).contains(&s.status.code) {
        return Err(format!("span has an unknown status code {}", s.status.code));
    }
    Ok(())
}

/// What [`translate_traces`] kept and refused: the OTLP `partial_success` of the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtlpTracesReport {
    /// Spans in the request.
    pub received: usize,
    /// Spans in the batch.
    pub spans: usize,
    /// Spans refused ([`check_span`]): the `rejected_spans` of the answer.
    pub rejected_spans: usize,
    /// The first problems, in request order (at most [`MAX_MESSAGES`]).
    pub messages: Vec<String>,
}

/// Problems described in a report; later ones are only counted.
pub const MAX_MESSAGES: usize = 8;

impl OtlpTracesReport {
    /// One line for the OTLP `partial_success.error_message`, empty when nothing was wrong.
    pub fn error_message(&self) -> String {
        let mut s = self.messages.join("; ");
        if self.rejected_spans > self.messages.len() {
            s.push_str(&format!("; and {} more", self.rejected_spans - self.messages.len()));
        }
        s
    }
}

fn attr_value(v: &AnyValue) -> AttrValue {
    match v {
        AnyValue::Empty => AttrValue::Empty,
        AnyValue::String(s) => AttrValue::Str(s.clone()),
        AnyValue::Bool(b) => AttrValue::Bool(*b),
        AnyValue::Int(i) => AttrValue::Int(*i),
        AnyValue::Double(d) => AttrValue::Double(*d),
        AnyValue::Bytes(b) => AttrValue::Bytes(b.clone()),
        AnyValue::Array(a) => AttrValue::Array(a.iter().map(attr_value).collect()),
        AnyValue::KvList(kvs) => AttrValue::Map(attributes(kvs)),
    }
}

fn attributes(kvs: &[KeyValue]) -> Vec<Attribute> {
    kvs.iter().map(|kv| Attribute { key: kv.key.clone(), value: attr_value(&kv.value) }).collect()
}

fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    if b.len() == N {
        a.copy_from_slice(b);
    }
    a
}

/// A decoded request as spans of the model; spans [`check_span`] refuses are counted and
/// described in the report, the rest kept. Never fails.
pub fn translate_traces(req: &ExportTraceRequest) -> (SpanBatch, OtlpTracesReport) {
    let mut report = OtlpTracesReport::default();
    let mut batch = SpanBatch::default();
    for rs in &req.resource_spans {
        for ss in &rs.scope_spans {
            let origin = Arc::new(SpanOrigin {
                resource: attributes(&rs.resource.attributes),
                resource_schema_url: rs.schema_url.clone(),
                scope_name: ss.scope.name.clone(),
                scope_version: ss.scope.version.clone(),
                scope_attributes: attributes(&ss.scope.attributes),
                scope_schema_url: ss.schema_url.clone(),
            });
            for s in &ss.spans {
                report.received += 1;
                if let Err(e) = check_span(s) {
                    report.rejected_spans += 1;
                    if report.messages.len() < MAX_MESSAGES {
                        report.messages.push(format!("span {:?}: {e}", s.name));
                    }
                    continue;
                }
                let parent = (s.parent_span_id.len() == 8 && s.parent_span_id.iter().any(|b| *b != 0))
                    .then(|| array::<8>(&s.parent_span_id));
                batch.spans.push(ModelSpan {
                    trace_id: array(&s.trace_id),
                    span_id: array(&s.span_id),
                    parent_span_id: parent,
                    trace_state: s.trace_state.clone(),
                    flags: s.flags,
                    name: s.name.clone(),
                    kind: SpanKind::from_otlp(s.kind).unwrap_or_default(),
                    start_ns: s.start_time_unix_nano as i64,
                    end_ns: s.end_time_unix_nano as i64,
                    attributes: attributes(&s.attributes),
                    dropped_attributes: s.dropped_attributes_count,
                    events: s
                        .events
                        .iter()
                        .map(|e| SpanEvent {
                            time_ns: e.time_unix_nano.min(MAX_TIME_UNIX_NANO) as i64,
                            name: e.name.clone(),
                            attributes: attributes(&e.attributes),
                            dropped_attributes: e.dropped_attributes_count,
                        })
                        .collect(),
                    dropped_events: s.dropped_events_count,
                    links: s
                        .links
                        .iter()
                        .map(|l| SpanLink {
                            trace_id: array(&l.trace_id),
                            span_id: array(&l.span_id),
                            trace_state: l.trace_state.clone(),
                            attributes: attributes(&l.attributes),
                            dropped_attributes: l.dropped_attributes_count,
                            flags: l.flags,
                        })
                        .collect(),
                    dropped_links: s.dropped_links_count,
                    status: StatusCode::from_otlp(s.status.code).unwrap_or_default(),
                    status_message: s.status.message.clone(),
                    origin: origin.clone(),
                });
            }
        }
    }
    report.spans = batch.spans.len();
    (batch, report)
}

#[cfg(test)]
#[path = "otlp_traces_test.rs"]
mod tests;
