//! Jaeger's Thrift protocols → [`SpanBatch`]: a `jaeger.thrift` `Batch` in Thrift's binary
//! protocol (what `POST /api/traces` with `application/x-thrift` carries; OpenTelemetry Go's
//! Jaeger exporter with `WithCollectorEndpoint` sends it), and the agent's UDP datagrams: an
//! `Agent.emitBatch` message in the compact protocol (port 6831, `WithAgentEndpoint` and the
//! legacy Jaeger clients) or the binary protocol (port 6832).
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
//! Agent   { oneway void emitBatch(1: Batch batch) }
//! ```
//!
//! Mapped as OpenTelemetry Collector's Jaeger receiver maps it: ids big-endian (high half
//! first), the parent from `parentSpanId` or else a `CHILD_OF` reference of the same trace,
//! other references as links; the process's `serviceName` as `service.name` and its tags as
//! resource attributes; the tags `span.kind`, `otel.status_code`, `otel.status_description`,
//! `error`, `w3c.tracestate`, `otel.scope.name`/`otel.library.name` (and versions) taken into
//! the span's fields; logs as events named by their `event` field. Unknown fields are
//! skipped; nesting, list sizes and string lengths are checked against the bytes left.
//!
//! Both protocols are read through [`Proto`], which hands the decoder the binary protocol's
//! type codes whatever the wire uses, so the `Batch` mapping exists once.

use crate::IngestError;
use periscope_model::{AttrValue, Attribute, Span, SpanBatch, SpanEvent, SpanKind, SpanLink, SpanOrigin, StatusCode};
use std::sync::Arc;

// The binary protocol's type codes; the compact reader translates its own into these.
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

/// Deepest nesting of structs and containers followed.
const MAX_DEPTH: usize = 32;

fn err(msg: impl Into<String>) -> IngestError {
    IngestError::JaegerThrift(msg.into())
}

/// Bytes read front to back, every read checked against the end.
struct Bytes<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], IngestError> {
        let end = self.pos.checked_add(n).ok_or_else(|| err("length overflow"))?;
        let s = self.b.get(self.pos..end).ok_or_else(|| err(format!("truncated at byte {}", self.pos)))?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, IngestError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], IngestError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn left(&self) -> usize {
        self.b.len() - self.pos
    }

    /// A container's element count, which cannot exceed the bytes left (every element takes
    /// at least one byte).
    fn count(&self, n: i64, what: &str) -> Result<usize, IngestError> {
        let n = usize::try_from(n).map_err(|_| err(format!("{what}: negative size {n}")))?;
        if n > self.left() {
            return Err(err(format!("{what}: {n} elements in {} bytes", self.left())));
        }
        Ok(n)
    }

    /// An unsigned LEB128 varint of at most 10 bytes.
    fn varint(&mut self) -> Result<u64, IngestError> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(err("varint longer than 10 bytes"))
    }

    fn zigzag(&mut self) -> Result<i64, IngestError> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }
}

/// One Thrift protocol as the decoder sees it: binary-protocol type codes, struct nesting
/// made explicit (the compact protocol's field ids are deltas within a struct).
trait Proto<'a> {
    fn bytes(&mut self) -> &mut Bytes<'a>;
    /// Enters a struct; nesting beyond [`MAX_DEPTH`] is an error.
    fn begin(&mut self) -> Result<(), IngestError>;
    /// The next field's type and id; `None` at the struct's end, which leaves it.
    fn field(&mut self) -> Result<Option<(u8, i16)>, IngestError>;
    fn bool(&mut self) -> Result<bool, IngestError>;
    fn i16(&mut self) -> Result<i16, IngestError>;
    fn i32(&mut self) -> Result<i32, IngestError>;
    fn i64(&mut self) -> Result<i64, IngestError>;
    fn double(&mut self) -> Result<f64, IngestError>;
    fn binary(&mut self) -> Result<&'a [u8], IngestError>;
    /// A list or set header: the element type and count.
    fn list(&mut self, what: &str) -> Result<(u8, usize), IngestError>;
    /// A map header: key type, value type and count.
    fn map(&mut self) -> Result<(u8, u8, usize), IngestError>;
}

/// Thrift's binary protocol: fixed-width big-endian integers, `i32` lengths.
struct Binary<'a> {
    b: Bytes<'a>,
    depth: usize,
}

impl<'a> Binary<'a> {
    fn new(b: &'a [u8]) -> Self {
        Binary { b: Bytes { b, pos: 0 }, depth: 0 }
    }
}

impl<'a> Proto<'a> for Binary<'a> {
    fn bytes(&mut self) -> &mut Bytes<'a> {
        &mut self.b
    }
    fn begin(&mut self) -> Result<(), IngestError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err("nested too deep"));
        }
        Ok(())
    }
    fn field(&mut self) -> Result<Option<(u8, i16)>, IngestError> {
        let ty = self.b.u8()?;
        if ty == T_STOP {
            self.depth = self.depth.saturating_sub(1);
            return Ok(None);
        }
        Ok(Some((ty, self.i16()?)))
    }
    fn bool(&mut self) -> Result<bool, IngestError> {
        Ok(self.b.u8()? != 0)
    }
    fn i16(&mut self) -> Result<i16, IngestError> {
        Ok(i16::from_be_bytes(self.b.array()?))
    }
    fn i32(&mut self) -> Result<i32, IngestError> {
        Ok(i32::from_be_bytes(self.b.array()?))
    }
    fn i64(&mut self) -> Result<i64, IngestError> {
        Ok(i64::from_be_bytes(self.b.array()?))
    }
    fn double(&mut self) -> Result<f64, IngestError> {
        Ok(f64::from_bits(u64::from_be_bytes(self.b.array()?)))
    }
    fn binary(&mut self) -> Result<&'a [u8], IngestError> {
        let n = self.i32()?;
        let n = usize::try_from(n).map_err(|_| err(format!("negative length {n}")))?;
        self.b.take(n)
    }
    fn list(&mut self, what: &str) -> Result<(u8, usize), IngestError> {
        let ty = self.b.u8()?;
        let n = self.i32()?;
        Ok((ty, self.b.count(n.into(), what)?))
    }
    fn map(&mut self) -> Result<(u8, u8, usize), IngestError> {
        let (k, v) = (self.b.u8()?, self.b.u8()?);
        let n = self.i32()?;
        Ok((k, v, self.b.count(n.into(), "map")?))
    }
}

/// Thrift's compact protocol: zigzag varints, field ids as deltas, booleans folded into
/// field headers, little-endian doubles.
struct Compact<'a> {
    b: Bytes<'a>,
    /// The last field id read in each open struct.
    last: Vec<i16>,
    /// A boolean field's value, carried by its header.
    pending_bool: Option<bool>,
}

impl<'a> Compact<'a> {
    fn new(b: &'a [u8]) -> Self {
        Compact { b: Bytes { b, pos: 0 }, last: Vec::new(), pending_bool: None }
    }

    /// A compact type code as the binary protocol's.
    fn ty(c: u8) -> Result<u8, IngestError> {
        Ok(match c {
            1 | 2 => T_BOOL,
            3 => T_BYTE,
            4 => T_I16,
            5 => T_I32,
            6 => T_I64,
            7 => T_DOUBLE,
            8 => T_STRING,
            9 => T_LIST,
            10 => T_SET,
            11 => T_MAP,
            12 => T_STRUCT,
            other => return Err(err(format!("unknown compact type {other}"))),
        })
    }
}

impl<'a> Proto<'a> for Compact<'a> {
    fn bytes(&mut self) -> &mut Bytes<'a> {
        &mut self.b
    }
    fn begin(&mut self) -> Result<(), IngestError> {
        if self.last.len() >= MAX_DEPTH {
            return Err(err("nested too deep"));
        }
        self.last.push(0);
        Ok(())
    }
    fn field(&mut self) -> Result<Option<(u8, i16)>, IngestError> {
        let h = self.b.u8()?;
        if h == 0 {
            self.last.pop();
            return Ok(None);
        }
        let (delta, c) = (h >> 4, h & 0x0f);
        let last = self.last.last_mut().ok_or_else(|| err("field outside a struct"))?;
        let id = if delta == 0 {
            let id = self.b.zigzag()?;
            i16::try_from(id).map_err(|_| err(format!("field id {id} out of range")))?
        } else {
            last.checked_add(i16::from(delta)).ok_or_else(|| err("field id out of range"))?
        };
        *last = id;
        let ty = Self::ty(c)?;
        if ty == T_BOOL {
            self.pending_bool = Some(c == 1);
        }
        Ok(Some((ty, id)))
    }
    fn bool(&mut self) -> Result<bool, IngestError> {
        // A field's value came with its header; a list element is a byte (1 is true).
        match self.pending_bool.take() {
            Some(v) => Ok(v),
            None => Ok(self.b.u8()? == 1),
        }
    }
    fn i16(&mut self) -> Result<i16, IngestError> {
        let v = self.b.zigzag()?;
        i16::try_from(v).map_err(|_| err(format!("i16 {v} out of range")))
    }
    fn i32(&mut self) -> Result<i32, IngestError> {
        let v = self.b.zigzag()?;
        i32::try_from(v).map_err(|_| err(format!("i32 {v} out of range")))
    }
    fn i64(&mut self) -> Result<i64, IngestError> {
        self.b.zigzag()
    }
    fn double(&mut self) -> Result<f64, IngestError> {
        Ok(f64::from_bits(u64::from_le_bytes(self.b.array()?)))
    }
    fn binary(&mut self) -> Result<&'a [u8], IngestError> {
        let n = self.b.varint()?;
        let n = usize::try_from(n).map_err(|_| err(format!("length {n} out of range")))?;
        self.b.take(n)
    }
    fn list(&mut self, what: &str) -> Result<(u8, usize), IngestError> {
        let h = self.b.u8()?;
        let ty = Self::ty(h & 0x0f)?;
        let n = match h >> 4 {
            15 => i64::try_from(self.b.varint()?).unwrap_or(i64::MAX),
            n => i64::from(n),
        };
        Ok((ty, self.b.count(n, what)?))
    }
    fn map(&mut self) -> Result<(u8, u8, usize), IngestError> {
        let n = i64::try_from(self.b.varint()?).unwrap_or(i64::MAX);
        let n = self.b.count(n, "map")?;
        if n == 0 {
            return Ok((T_STOP, T_STOP, 0));
        }
        let kv = self.b.u8()?;
        Ok((Self::ty(kv >> 4)?, Self::ty(kv & 0x0f)?, n))
    }
}

fn string<'a>(p: &mut impl Proto<'a>, what: &str) -> Result<String, IngestError> {
    std::str::from_utf8(p.binary()?).map(str::to_owned).map_err(|_| err(format!("{what} is not UTF-8")))
}

/// A list header whose elements must be of type `want`.
fn list_of<'a>(p: &mut impl Proto<'a>, want: u8, what: &str) -> Result<usize, IngestError> {
    let (ty, n) = p.list(what)?;
    if ty != want && n > 0 {
        return Err(err(format!("{what}: list of type {ty}, expected {want}")));
    }
    Ok(n)
}

/// Reads a struct, handing each field to `f`.
fn read_struct<'a, P: Proto<'a>>(
    p: &mut P,
    mut f: impl FnMut(&mut P, u8, i16) -> Result<(), IngestError>,
) -> Result<(), IngestError> {
    p.begin()?;
    while let Some((ty, id)) = p.field()? {
        f(p, ty, id)?;
    }
    Ok(())
}

fn skip<'a>(p: &mut impl Proto<'a>, ty: u8, depth: usize) -> Result<(), IngestError> {
    if depth > MAX_DEPTH {
        return Err(err("nested too deep"));
    }
    match ty {
        T_BOOL => drop(p.bool()?),
        T_BYTE => drop(p.bytes().u8()?),
        T_I16 => drop(p.i16()?),
        T_I32 => drop(p.i32()?),
        T_I64 => drop(p.i64()?),
        T_DOUBLE => drop(p.double()?),
        T_STRING => drop(p.binary()?),
        T_STRUCT => read_struct(p, |p, t, _| skip(p, t, depth + 1))?,
        T_MAP => {
            let (k, v, n) = p.map()?;
            for _ in 0..n {
                skip(p, k, depth + 1)?;
                skip(p, v, depth + 1)?;
            }
        }
        T_SET | T_LIST => {
            let (t, n) = p.list("list")?;
            for _ in 0..n {
                skip(p, t, depth + 1)?;
            }
        }
        other => return Err(err(format!("unknown field type {other}"))),
    }
    Ok(())
}

fn expect(got: u8, want: u8, what: &str) -> Result<(), IngestError> {
    if got == want {
        Ok(())
    } else {
        Err(err(format!("{what} has type {got}, expected {want}")))
    }
}

fn tag<'a>(p: &mut impl Proto<'a>) -> Result<Attribute, IngestError> {
    let (mut key, mut vtype) = (String::new(), 0i32);
    let (mut s, mut d, mut b, mut l, mut bin) = (None, None, None, None, None);
    read_struct(p, |p, ty, id| {
        match (id, ty) {
            (1, T_STRING) => key = string(p, "Tag.key")?,
            (2, T_I32) => vtype = p.i32()?,
            (3, T_STRING) => s = Some(string(p, "Tag.vStr")?),
            (4, T_DOUBLE) => d = Some(p.double()?),
            (5, T_BOOL) => b = Some(p.bool()?),
            (6, T_I64) => l = Some(p.i64()?),
            (7, T_STRING) => bin = Some(p.binary()?.to_vec()),
            _ => skip(p, ty, 1)?,
        }
        Ok(())
    })?;
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

fn tags<'a>(p: &mut impl Proto<'a>) -> Result<Vec<Attribute>, IngestError> {
    let n = list_of(p, T_STRUCT, "tags")?;
    (0..n).map(|_| tag(p)).collect()
}

fn id_bytes(high: i64, low: i64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&high.to_be_bytes());
    id[8..].copy_from_slice(&low.to_be_bytes());
    id
}

#[derive(Default)]
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

fn span<'a>(p: &mut impl Proto<'a>) -> Result<RawSpan, IngestError> {
    let (mut low, mut high) = (0i64, 0i64);
    let mut s = RawSpan::default();
    read_struct(p, |p, ty, id| {
        match (id, ty) {
            (1, T_I64) => low = p.i64()?,
            (2, T_I64) => high = p.i64()?,
            (3, T_I64) => s.span_id = p.i64()?,
            (4, T_I64) => s.parent = p.i64()?,
            (5, T_STRING) => s.name = string(p, "Span.operationName")?,
            (6, T_LIST) => {
                let n = list_of(p, T_STRUCT, "references")?;
                for _ in 0..n {
                    let (mut kind, mut rl, mut rh, mut rs) = (0, 0, 0, 0);
                    read_struct(p, |p, t, fid| {
                        match (fid, t) {
                            (1, T_I32) => kind = p.i32()?,
                            (2, T_I64) => rl = p.i64()?,
                            (3, T_I64) => rh = p.i64()?,
                            (4, T_I64) => rs = p.i64()?,
                            _ => skip(p, t, 1)?,
                        }
                        Ok(())
                    })?;
                    s.refs.push((kind, id_bytes(rh, rl), rs));
                }
            }
            (7, T_I32) => s.flags = p.i32()?,
            (8, T_I64) => s.start_us = p.i64()?,
            (9, T_I64) => s.duration_us = p.i64()?,
            (10, T_LIST) => s.tags = tags(p)?,
            (11, T_LIST) => {
                let n = list_of(p, T_STRUCT, "logs")?;
                for _ in 0..n {
                    let (mut ts, mut fields) = (0i64, Vec::new());
                    read_struct(p, |p, t, fid| {
                        match (fid, t) {
                            (1, T_I64) => ts = p.i64()?,
                            (2, T_LIST) => fields = tags(p)?,
                            _ => skip(p, t, 1)?,
                        }
                        Ok(())
                    })?;
                    s.logs.push((ts, fields));
                }
            }
            _ => skip(p, ty, 1)?,
        }
        Ok(())
    })?;
    s.trace = id_bytes(high, low);
    Ok(s)
}

fn text(v: &AttrValue) -> String {
    v.as_text().unwrap_or_default()
}

/// Reads a `Batch` struct: the process and the spans as sent.
fn batch<'a>(p: &mut impl Proto<'a>) -> Result<(String, Vec<Attribute>, Vec<RawSpan>), IngestError> {
    let (mut service, mut process_tags, mut raw) = (String::new(), Vec::new(), Vec::new());
    read_struct(p, |p, ty, id| {
        match id {
            1 => {
                expect(ty, T_STRUCT, "Batch.process")?;
                read_struct(p, |p, t, fid| {
                    match (fid, t) {
                        (1, T_STRING) => service = string(p, "Process.serviceName")?,
                        (2, T_LIST) => process_tags = tags(p)?,
                        _ => skip(p, t, 1)?,
                    }
                    Ok(())
                })?;
            }
            2 => {
                expect(ty, T_LIST, "Batch.spans")?;
                let n = list_of(p, T_STRUCT, "spans")?;
                for _ in 0..n {
                    raw.push(span(p)?);
                }
            }
            _ => skip(p, ty, 0)?,
        }
        Ok(())
    })?;
    Ok((service, process_tags, raw))
}

/// Decodes a binary-protocol `Batch` (the collector's HTTP body). Spans whose ids are zero
/// or whose times are out of range fail the request with the span's position.
pub fn decode_jaeger_batch(body: &[u8]) -> Result<SpanBatch, IngestError> {
    let (service, process_tags, raw) = batch(&mut Binary::new(body))?;
    map_batch(service, process_tags, raw)
}

/// The Thrift protocol of an agent's UDP port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentProtocol {
    /// Port 6831: what Jaeger clients and OpenTelemetry Go's `WithAgentEndpoint` send.
    Compact,
    /// Port 6832.
    Binary,
}

/// Decodes one agent datagram: an `Agent.emitBatch` call (type call or oneway) whose
/// argument is a `Batch`. Other methods (`emitZipkinBatch`, Zipkin's Thrift spans) are
/// errors naming them.
pub fn decode_agent_datagram(datagram: &[u8], protocol: AgentProtocol) -> Result<SpanBatch, IngestError> {
    fn args<'a>(p: &mut impl Proto<'a>, name: &str) -> Result<SpanBatch, IngestError> {
        if name != "emitBatch" {
            return Err(err(format!("agent method {name:?} is not supported (only emitBatch)")));
        }
        let mut found = None;
        read_struct(p, |p, ty, id| {
            if id == 1 {
                expect(ty, T_STRUCT, "emitBatch.batch")?;
                found = Some(batch(p)?);
            } else {
                skip(p, ty, 0)?;
            }
            Ok(())
        })?;
        let (service, process_tags, raw) = found.ok_or_else(|| err("emitBatch without a batch"))?;
        map_batch(service, process_tags, raw)
    }
    let check_type = |ty: u8| match ty {
        1 | 4 => Ok(()),
        other => Err(err(format!("message type {other} is not a call"))),
    };
    match protocol {
        AgentProtocol::Compact => {
            let mut p = Compact::new(datagram);
            if p.b.u8()? != 0x82 {
                return Err(err("not a compact-protocol message (first byte is not 0x82)"));
            }
            let vt = p.b.u8()?;
            if vt & 0x1f != 1 {
                return Err(err(format!("compact protocol version {} (expected 1)", vt & 0x1f)));
            }
            check_type(vt >> 5)?;
            p.b.varint()?;
            let name = string(&mut p, "method name")?;
            args(&mut p, &name)
        }
        AgentProtocol::Binary => {
            let mut p = Binary::new(datagram);
            let head = p.i32()?;
            let name = if head < 0 {
                // Strict: version 1 and the type in the first word, then the name.
                if (head as u32) & 0xffff_0000 != 0x8001_0000 {
                    return Err(err(format!("binary protocol header {head:#x} (expected version 1)")));
                }
                check_type(head as u8)?;
                string(&mut p, "method name")?
            } else {
                // Old style: the name's length first, then the name and the type.
                let n = usize::try_from(head).map_err(|_| err("bad method name length"))?;
                let name = std::str::from_utf8(p.b.take(n)?).map_err(|_| err("method name is not UTF-8"))?.to_owned();
                check_type(p.b.u8()?)?;
                name
            };
            p.i32()?;
            args(&mut p, &name)
        }
    }
}

fn map_batch(service: String, process_tags: Vec<Attribute>, raw: Vec<RawSpan>) -> Result<SpanBatch, IngestError> {
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
