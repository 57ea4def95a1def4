//! Jaeger's collector protocol: a `jaeger.thrift` `Batch` in Thrift's binary protocol (what
//! `POST /api/traces` with `application/x-thrift` carries; OpenTelemetry Go's Jaeger exporter
//! with `WithCollectorEndpoint` sends it) → [`SpanBatch`].
//!
//! ```text
//! Batch   { 1: Process process; 2: list<Span> spans; 3: i64 seqNo; 4: ClientStats stats }
//! Process { 1: string serviceName; 2: list<Tag> tags }
//! Span    { 1: i64 traceIdLow; 2: i64 traceIdHigh; 3: i64 spanId; 4: i64 parentSpanId;
//!           5: string operationName; 6: list<SpanRef> references; 7: i32 flags;
//!           8: i64 startTime (µs); 9: i64 duration (µs); 10: list<Tag> tags; 11: list<Log> logs }
//! SpanRef { 1: i32 refType (0 CHILD_OF, 1 FOLLOWS_FROM); 2: i64 traceIdLow; 3: i64 traceIdHigh;
//!           4: i64 spanId }
//! Tag     { 1: string key; 2: i32 vType (0 string, 1 double, 2 bool, 3 long, 4 binary);
//!           3: string vStr; 4: double vDouble; 5: bool vBool; 6: i64 vLong; 7: binary vBinary }
//! Log     { 1: i64 timestamp (µs); 2: list<Tag> fields }
//! ```
//!
//! Mapped as OpenTelemetry Collector's Jaeger receiver maps it: ids big-endian (high half
//! first), the parent from `parentSpanId` or else a `CHILD_OF` reference of the same trace,
//! other references as links; the process's `serviceName` as `service.name` and its tags as
//! resource attributes; the tags `span.kind`, `otel.status_code`, `otel.status_description`,
//! `error`, `w3c.tracestate`, `otel.scope.name`/`otel.library.name` (and versions) taken into
//! the span's fields; logs as events named by their `event` field. Unknown fields are
//! skipped; nesting, list sizes and string lengths are checked against the bytes left.

use crate::IngestError;
use periscope_model::{AttrValue, Attribute, Span, SpanBatch, SpanEvent, SpanKind, SpanLink, SpanOrigin, StatusCode};
use std::sync::Arc;

const T_STOP: u8 = 0;
const T_BOOL: u8 = 2;
const T_BYTE: u8 = 3;
const T_DOUBLE: u8 = 4;
const T_I16: u8 = 6;
const T_I32: u8 = 8;
const T_I64: u8 = 10;
const T_STRING: u8 = 11;
const T_STRUCT: u8 = 12;
const T_MAP: u8 = 13;
const T_SET: u8 = 14;
const T_LIST: u8 = 15;

/// Deepest struct nesting followed when skipping unknown fields.
const MAX_DEPTH: usize = 32;

fn err(msg: impl Into<String>) -> IngestError {
    IngestError::JaegerThrift(msg.into())
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], IngestError> {
        let end = self.pos.checked_add(n).ok_or_else(|| err("length overflow"))?;
        let s = self.b.get(self.pos..end).ok_or_else(|| err(format!("truncated at byte {}", self.pos)))?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, IngestError> {
        Ok(self.take(1)?[0])
    }

    fn i16(&mut self) -> Result<i16, IngestError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, IngestError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64, IngestError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(a))
    }

    fn binary(&mut self) -> Result<&'a [u8], IngestError> {
        let n = self.i32()?;
        let n = usize::try_from(n).map_err(|_| err(format!("negative length {n}")))?;
        self.take(n)
    }

    fn string(&mut self, what: &str) -> Result<String, IngestError> {
        std::str::from_utf8(self.binary()?).map(str::to_owned).map_err(|_| err(format!("{what} is not UTF-8")))
    }

    /// A list header of elements of type `want`; the count is checked against the bytes left.
    fn list(&mut self, want: u8, what: &str) -> Result<usize, IngestError> {
        let ty = self.u8()?;
        let n = self.i32()?;
        if ty != want {
            return Err(err(format!("{what}: list of type {ty}, expected {want}")));
        }
        let n = usize::try_from(n).map_err(|_| err(format!("{what}: negative list size")))?;
        if n > self.b.len() - self.pos {
            return Err(err(format!("{what}: list of {n} elements in {} bytes", self.b.len() - self.pos)));
        }
        Ok(n)
    }

    /// A field header: its type and id, `None` at the struct's end.
    fn field(&mut self) -> Result<Option<(u8, i16)>, IngestError> {
        let ty = self.u8()?;
        if ty == T_STOP {
            return Ok(None);
        }
        Ok(Some((ty, self.i16()?)))
    }

    fn skip(&mut self, ty: u8, depth: usize) -> Result<(), IngestError> {
        if depth > MAX_DEPTH {
            return Err(err("nested too deep"));
        }
        match ty {
            T_BOOL | T_BYTE => drop(self.take(1)?),
            T_I16 => drop(self.take(2)?),
            T_I32 => drop(self.take(4)?),
            T_DOUBLE | T_I64 => drop(self.take(8)?),
            T_STRING => drop(self.binary()?),
            T_STRUCT => {
                while let Some((t, _)) = self.field()? {
                    self.skip(t, depth + 1)?;
                }
            }
            T_MAP => {
                let (k, v) = (self.u8()?, self.u8()?);
                let n = self.i32()?;
                let n = usize::try_from(n).map_err(|_| err("negative map size"))?;
                for _ in 0..n {
                    self.skip(k, depth + 1)?;
                    self.skip(v, depth + 1)?;
                }
            }
            T_SET | T_LIST => {
                let t = self.u8()?;
                let n = self.i32()?;
                let n = usize::try_from(n).map_err(|_| err("negative list size"))?;
                if n > self.b.len() - self.pos {
                    return Err(err("list larger than the message"));
                }
                for _ in 0..n {
                    self.skip(t, depth + 1)?;
                }
            }
            other => return Err(err(format!("unknown field type {other}"))),
        }
        Ok(())
    }

    fn expect(&mut self, got: u8, want: u8, what: &str) -> Result<(), IngestError> {
        if got == want {
            Ok(())
        } else {
            Err(err(format!("{what} has type {got}, expected {want}")))
        }
    }
}

fn tag(r: &mut Reader<'_>) -> Result<Attribute, IngestError> {
    let (mut key, mut vtype) = (String::new(), 0i32);
    let (mut s, mut d, mut b, mut l, mut bin) = (None, None, None, None, None);
    while let Some((ty, id)) = r.field()? {
        match (id, ty) {
            (1, T_STRING) => key = r.string("Tag.key")?,
            (2, T_I32) => vtype = r.i32()?,
            (3, T_STRING) => s = Some(r.string("Tag.vStr")?),
            (4, T_DOUBLE) => d = Some(f64::from_bits(r.i64()? as u64)),
            (5, T_BOOL) => b = Some(r.u8()? != 0),
            (6, T_I64) => l = Some(r.i64()?),
            (7, T_STRING) => bin = Some(r.binary()?.to_vec()),
            _ => r.skip(ty, 1)?,
        }
    }
    let value = match vtype {
        0 => AttrValue::Str(s.unwrap_or_default()),
        1 => AttrValue::Double(d.unwrap_or_default()),
        2 => AttrValue::Bool(b.unwrap_or_default()),
        3 => AttrValue::Int(l.unwrap_or_default()),
        4 => AttrValue::Bytes(bin.unwrap_or_default()),
        other => return Err(err(format!("tag {key:?} has unknown type {other}"))),
    };
    Ok(Attribute { key, value })
}

fn tags(r: &mut Reader<'_>) -> Result<Vec<Attribute>, IngestError> {
    let n = r.list(T_STRUCT, "tags")?;
    (0..n).map(|_| tag(r)).collect()
}

fn id_bytes(high: i64, low: i64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&high.to_be_bytes());
    id[8..].copy_from_slice(&low.to_be_bytes());
    id
}

struct RawSpan {
    trace: [u8; 16],
    span_id: i64,
    parent: i64,
    name: String,
    refs: Vec<(i32, [u8; 16], i64)>,
    flags: i32,
    start_us: i64,
    duration_us: i64,
    tags: Vec<Attribute>,
    logs: Vec<(i64, Vec<Attribute>)>,
}

fn span(r: &mut Reader<'_>) -> Result<RawSpan, IngestError> {
    let (mut low, mut high) = (0i64, 0i64);
    let mut s = RawSpan {
        trace: [0; 16],
        span_id: 0,
        parent: 0,
        name: String::new(),
        refs: Vec::new(),
        flags: 0,
        start_us: 0,
        duration_us: 0,
        tags: Vec::new(),
        logs: Vec::new(),
    };
    while let Some((ty, id)) = r.field()? {
        match (id, ty) {
            (1, T_I64) => low = r.i64()?,
            (2, T_I64) => high = r.i64()?,
            (3, T_I64) => s.span_id = r.i64()?,
            (4, T_I64) => s.parent = r.i64()?,
            (5, T_STRING) => s.name = r.string("Span.operationName")?,
            (6, T_LIST) => {
                let n = r.list(T_STRUCT, "references")?;
                for _ in 0..n {
                    let (mut kind, mut rl, mut rh, mut rs) = (0, 0, 0, 0);
                    while let Some((t, fid)) = r.field()? {
                        match (fid, t) {
                            (1, T_I32) => kind = r.i32()?,
                            (2, T_I64) => rl = r.i64()?,
                            (3, T_I64) => rh = r.i64()?,
                            (4, T_I64) => rs = r.i64()?,
                            _ => r.skip(t, 1)?,
                        }
                    }
                    s.refs.push((kind, id_bytes(rh, rl), rs));
                }
            }
            (7, T_I32) => s.flags = r.i32()?,
            (8, T_I64) => s.start_us = r.i64()?,
            (9, T_I64) => s.duration_us = r.i64()?,
            (10, T_LIST) => s.tags = tags(r)?,
            (11, T_LIST) => {
                let n = r.list(T_STRUCT, "logs")?;
                for _ in 0..n {
                    let (mut ts, mut fields) = (0i64, Vec::new());
                    while let Some((t, fid)) = r.field()? {
                        match (fid, t) {
                            (1, T_I64) => ts = r.i64()?,
                            (2, T_LIST) => fields = tags(r)?,
                            _ => r.skip(t, 1)?,
                        }
                    }
                    s.logs.push((ts, fields));
                }
            }
            _ => r.skip(ty, 1)?,
        }
    }
    s.trace = id_bytes(high, low);
    Ok(s)
}

fn text(v: &AttrValue) -> String {
    v.as_text().unwrap_or_default()
}

/// Decodes a binary-protocol `Batch`. Spans whose ids are zero or whose times are out of
/// range fail the request with the span's position.
pub fn decode_jaeger_batch(body: &[u8]) -> Result<SpanBatch, IngestError> {
    let mut r = Reader { b: body, pos: 0 };
    let (mut service, mut process_tags, mut raw) = (String::new(), Vec::new(), Vec::new());
    while let Some((ty, id)) = r.field()? {
        match (id, ty) {
            (1, _) => {
                r.expect(ty, T_STRUCT, "Batch.process")?;
                while let Some((t, fid)) = r.field()? {
                    match (fid, t) {
                        (1, T_STRING) => service = r.string("Process.serviceName")?,
                        (2, T_LIST) => process_tags = tags(&mut r)?,
                        _ => r.skip(t, 1)?,
                    }
                }
            }
            (2, _) => {
                r.expect(ty, T_LIST, "Batch.spans")?;
                let n = r.list(T_STRUCT, "spans")?;
                for _ in 0..n {
                    raw.push(span(&mut r)?);
                }
            }
            _ => r.skip(ty, 0)?,
        }
    }
    let mut resource = vec![Attribute::str(periscope_model::SERVICE_NAME, service)];
    resource.extend(process_tags);
    let base = SpanOrigin { resource, ..Default::default() };
    let mut origins: Vec<Arc<SpanOrigin>> = Vec::new();
    let mut out = SpanBatch::default();
    for (i, s) in raw.into_iter().enumerate() {
        let bad = |msg: &str| err(format!("span {i} ({:?}): {msg}", s.name));
        if s.trace == [0; 16] || s.span_id == 0 {
            return Err(bad("trace and span ids must not be zero"));
        }
        let start_ns = s.start_us.checked_mul(1000).filter(|t| *t > 0).ok_or_else(|| bad("startTime out of range"))?;
        let end_ns = s
            .duration_us
            .checked_mul(1000)
            .filter(|d| *d >= 0)
            .and_then(|d| start_ns.checked_add(d))
            .ok_or_else(|| bad("duration out of range"))?;
        let mut span = Span {
            trace_id: s.trace,
            span_id: s.span_id.to_be_bytes(),
            name: s.name.clone(),
            kind: SpanKind::Internal,
            flags: s.flags as u32,
            start_ns,
            end_ns,
            ..Default::default()
        };
        if s.parent != 0 {
            span.parent_span_id = Some(s.parent.to_be_bytes());
        }
        for (kind, trace, sid) in s.refs {
            if kind == 0 && trace == s.trace && span.parent_span_id.is_none() && sid != 0 {
                span.parent_span_id = Some(sid.to_be_bytes());
            } else if Some(sid.to_be_bytes()) != span.parent_span_id || trace != s.trace {
                span.links.push(SpanLink { trace_id: trace, span_id: sid.to_be_bytes(), ..Default::default() });
            }
        }
        let (mut scope_name, mut scope_version, mut error) = (String::new(), String::new(), false);
        let mut status: Option<StatusCode> = None;
        for a in s.tags {
            match a.key.as_str() {
                "span.kind" => {
                    span.kind = match text(&a.value).as_str() {
                        "client" => SpanKind::Client,
                        "server" => SpanKind::Server,
                        "producer" => SpanKind::Producer,
                        "consumer" => SpanKind::Consumer,
                        _ => SpanKind::Internal,
                    }
                }
                "otel.status_code" => {
                    status = match text(&a.value).as_str() {
                        "OK" => Some(StatusCode::Ok),
                        "ERROR" => Some(StatusCode::Error),
                        _ => None,
                    }
                }
                "otel.status_description" => span.status_message = text(&a.value),
                "error" => error = matches!(a.value, AttrValue::Bool(true)) || text(&a.value) == "true",
                "w3c.tracestate" => span.trace_state = text(&a.value),
                "otel.scope.name" | "otel.library.name" => scope_name = text(&a.value),
                "otel.scope.version" | "otel.library.version" => scope_version = text(&a.value),
                _ => span.attributes.push(a),
            }
        }
        span.status = match (status, error) {
            (Some(s), _) => s,
            (None, true) => StatusCode::Error,
            (None, false) => StatusCode::Unset,
        };
        if span.status != StatusCode::Error {
            span.status_message.clear();
        }
        for (ts, fields) in s.logs {
            let mut name = String::new();
            let mut attributes = Vec::new();
            for f in fields {
                if f.key == "event" && name.is_empty() {
                    name = text(&f.value);
                } else {
                    attributes.push(f);
                }
            }
            let time_ns = ts.checked_mul(1000).ok_or_else(|| bad("log timestamp out of range"))?;
            span.events.push(SpanEvent { time_ns, name, attributes, dropped_attributes: 0 });
        }
        let origin = match origins.iter().find(|o| o.scope_name == scope_name && o.scope_version == scope_version) {
            Some(o) => o.clone(),
            None => {
                let o = Arc::new(SpanOrigin { scope_name, scope_version, ..base.clone() });
                origins.push(o.clone());
                o
            }
        };
        span.origin = origin;
        out.spans.push(span);
    }
    Ok(out)
}

#[cfg(test)]
#[path = "jaeger_thrift_test.rs"]
mod tests;
