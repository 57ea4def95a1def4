//! The binary form of span batches, as WAL records hold them (`docs/format/traces.md`).
//!
//! ```text
//! batch  := uvarint norigins | origin* | uvarint nspans | span*
//! origin := attrs resource | str resource_schema_url | str scope_name | str scope_version
//!           | attrs scope_attributes | str scope_schema_url
//! span   := uvarint origin | 16 bytes trace_id | 8 bytes span_id | u8 has_parent [8 bytes]
//!           | str trace_state | uvarint flags | str name | u8 kind | varint start_ns
//!           | uvarint duration_ns | attrs | uvarint dropped_attributes
//!           | uvarint nevents (varint time_ns, str name, attrs, uvarint dropped)*
//!           | uvarint dropped_events
//!           | uvarint nlinks (16 trace_id, 8 span_id, str state, attrs, uvarint dropped,
//!             uvarint flags)* | uvarint dropped_links | u8 status | str status_message
//! attrs  := uvarint n | (str key | value)*
//! value  := u8 tag (0 empty, 1 str, 2 bool, 3 int, 4 double, 5 bytes, 6 array, 7 map) | body
//! str    := uvarint len | UTF-8 bytes
//! ```
//!
//! Spans of one origin share it (one `Arc` after decoding). Decoding checks every length and
//! count against the bytes left, UTF-8, tags and nesting depth: a damaged record is an error,
//! never a panic or a huge allocation.

use periscope_model::{AttrValue, Attribute, Span, SpanEvent, SpanKind, SpanLink, SpanOrigin, StatusCode};
use std::collections::HashMap;
use std::sync::Arc;

/// Deepest attribute nesting accepted (OTLP decoders accept 32).
const MAX_DEPTH: usize = 32;

pub use periscope_wal::codec::CodecError;
pub(crate) use periscope_wal::codec::{put_str, put_uvarint, put_varint, Cur};

fn put_value(buf: &mut Vec<u8>, v: &AttrValue) {
    match v {
        AttrValue::Empty => buf.push(0),
        AttrValue::Str(s) => {
            buf.push(1);
            put_str(buf, s);
        }
        AttrValue::Bool(b) => {
            buf.push(2);
            buf.push(*b as u8);
        }
        AttrValue::Int(i) => {
            buf.push(3);
            put_varint(buf, *i);
        }
        AttrValue::Double(d) => {
            buf.push(4);
            buf.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        AttrValue::Bytes(b) => {
            buf.push(5);
            put_uvarint(buf, b.len() as u64);
            buf.extend_from_slice(b);
        }
        AttrValue::Array(a) => {
            buf.push(6);
            put_uvarint(buf, a.len() as u64);
            for x in a {
                put_value(buf, x);
            }
        }
        AttrValue::Map(m) => {
            buf.push(7);
            put_attrs(buf, m);
        }
    }
}

pub(crate) fn put_attrs(buf: &mut Vec<u8>, attrs: &[Attribute]) {
    put_uvarint(buf, attrs.len() as u64);
    for a in attrs {
        put_str(buf, &a.key);
        put_value(buf, &a.value);
    }
}

pub(crate) fn put_origin(buf: &mut Vec<u8>, o: &SpanOrigin) {
    put_attrs(buf, &o.resource);
    put_str(buf, &o.resource_schema_url);
    put_str(buf, &o.scope_name);
    put_str(buf, &o.scope_version);
    put_attrs(buf, &o.scope_attributes);
    put_str(buf, &o.scope_schema_url);
}

pub(crate) fn put_events(buf: &mut Vec<u8>, events: &[SpanEvent]) {
    put_uvarint(buf, events.len() as u64);
    for e in events {
        put_varint(buf, e.time_ns);
        put_str(buf, &e.name);
        put_attrs(buf, &e.attributes);
        put_uvarint(buf, e.dropped_attributes as u64);
    }
}

pub(crate) fn put_links(buf: &mut Vec<u8>, links: &[SpanLink]) {
    put_uvarint(buf, links.len() as u64);
    for l in links {
        buf.extend_from_slice(&l.trace_id);
        buf.extend_from_slice(&l.span_id);
        put_str(buf, &l.trace_state);
        put_attrs(buf, &l.attributes);
        put_uvarint(buf, l.dropped_attributes as u64);
        put_uvarint(buf, l.flags as u64);
    }
}

/// Writes the table of the distinct origins (by pointer) of a record; returns each item's
/// index into it.
pub(crate) fn put_origins<'a>(buf: &mut Vec<u8>, all: impl Iterator<Item = &'a Arc<SpanOrigin>>) -> Vec<usize> {
    let mut index: HashMap<*const SpanOrigin, usize> = HashMap::new();
    let mut origins: Vec<&SpanOrigin> = Vec::new();
    let refs = all
        .map(|o| {
            *index.entry(Arc::as_ptr(o)).or_insert_with(|| {
                origins.push(o);
                origins.len() - 1
            })
        })
        .collect();
    put_uvarint(buf, origins.len() as u64);
    for o in origins {
        put_origin(buf, o);
    }
    refs
}

pub(crate) fn put_parent(buf: &mut Vec<u8>, parent: Option<[u8; 8]>) {
    match parent {
        Some(p) => {
            buf.push(1);
            buf.extend_from_slice(&p);
        }
        None => buf.push(0),
    }
}

/// Appends the encoding of `spans` to `buf`.
pub(crate) fn encode(buf: &mut Vec<u8>, spans: &[&Span]) {
    let refs = put_origins(buf, spans.iter().map(|s| &s.origin));
    put_uvarint(buf, spans.len() as u64);
    for (s, o) in spans.iter().zip(refs) {
        put_uvarint(buf, o as u64);
        buf.extend_from_slice(&s.trace_id);
        buf.extend_from_slice(&s.span_id);
        put_parent(buf, s.parent_span_id);
        put_str(buf, &s.trace_state);
        put_uvarint(buf, s.flags as u64);
        put_str(buf, &s.name);
        buf.push(s.kind.otlp_code() as u8);
        put_varint(buf, s.start_ns);
        put_uvarint(buf, s.duration_ns().max(0) as u64);
        put_attrs(buf, &s.attributes);
        put_uvarint(buf, s.dropped_attributes as u64);
        put_events(buf, &s.events);
        put_uvarint(buf, s.dropped_events as u64);
        put_links(buf, &s.links);
        put_uvarint(buf, s.dropped_links as u64);
        buf.push(s.status.otlp_code() as u8);
        put_str(buf, &s.status_message);
    }
}

/// The span-specific reads: attribute values, origins, parents, events and links, and the
/// rest column.
pub(crate) trait SpanRead {
    /// Skips a value without building it.
    fn skip_value(&mut self, depth: usize) -> Result<(), CodecError>;
    fn value(&mut self, depth: usize) -> Result<AttrValue, CodecError>;
    fn attrs(&mut self, depth: usize) -> Result<Vec<Attribute>, CodecError>;
    /// A record's origin table.
    fn origins(&mut self) -> Result<Vec<Arc<SpanOrigin>>, CodecError>;
    fn parent(&mut self) -> Result<Option<[u8; 8]>, CodecError>;
    fn origin(&mut self) -> Result<SpanOrigin, CodecError>;
    fn events(&mut self) -> Result<Vec<SpanEvent>, CodecError>;
    fn links(&mut self) -> Result<Vec<SpanLink>, CodecError>;
    /// The rest column's fields of one span.
    fn rest(&mut self) -> Result<crate::headspan::Rest, CodecError>;
}

impl SpanRead for Cur<'_> {
    /// Skips a value without building it.
    fn skip_value(&mut self, depth: usize) -> Result<(), CodecError> {
        if depth > MAX_DEPTH {
            return Err(CodecError("attributes nested too deep"));
        }
        match self.u8()? {
            0 => {}
            1 | 5 => {
                let n = self.count(1)?;
                self.bytes(n)?;
            }
            2 => drop(self.u8()?),
            3 => drop(self.uvarint()?),
            4 => drop(self.bytes(8)?),
            6 => {
                for _ in 0..self.count(1)? {
                    self.skip_value(depth + 1)?;
                }
            }
            7 => {
                for _ in 0..self.count(2)? {
                    self.str_ref()?;
                    self.skip_value(depth + 1)?;
                }
            }
            _ => return Err(CodecError("unknown value tag")),
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<AttrValue, CodecError> {
        if depth > MAX_DEPTH {
            return Err(CodecError("attributes nested too deep"));
        }
        Ok(match self.u8()? {
            0 => AttrValue::Empty,
            1 => AttrValue::Str(self.str()?),
            2 => AttrValue::Bool(self.u8()? != 0),
            3 => AttrValue::Int(self.varint()?),
            4 => AttrValue::Double(f64::from_bits(u64::from_le_bytes(self.array::<8>()?))),
            5 => {
                let n = self.count(1)?;
                AttrValue::Bytes(self.bytes(n)?.to_vec())
            }
            6 => {
                let n = self.count(1)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.value(depth + 1)?);
                }
                AttrValue::Array(v)
            }
            7 => AttrValue::Map(self.attrs(depth + 1)?),
            _ => return Err(CodecError("unknown value tag")),
        })
    }

    fn attrs(&mut self, depth: usize) -> Result<Vec<Attribute>, CodecError> {
        let n = self.count(2)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let key = self.str()?;
            v.push(Attribute { key, value: self.value(depth)? });
        }
        Ok(v)
    }

    fn origins(&mut self) -> Result<Vec<Arc<SpanOrigin>>, CodecError> {
        let n = self.count(6)?;
        (0..n).map(|_| self.origin().map(Arc::new)).collect()
    }

    fn parent(&mut self) -> Result<Option<[u8; 8]>, CodecError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.array::<8>()?)),
            _ => Err(CodecError("bad parent flag")),
        }
    }

    fn origin(&mut self) -> Result<SpanOrigin, CodecError> {
        Ok(SpanOrigin {
            resource: self.attrs(0)?,
            resource_schema_url: self.str()?,
            scope_name: self.str()?,
            scope_version: self.str()?,
            scope_attributes: self.attrs(0)?,
            scope_schema_url: self.str()?,
        })
    }

    fn events(&mut self) -> Result<Vec<SpanEvent>, CodecError> {
        let n = self.count(4)?;
        let mut events = Vec::with_capacity(n);
        for _ in 0..n {
            events.push(SpanEvent {
                time_ns: self.varint()?,
                name: self.str()?,
                attributes: self.attrs(0)?,
                dropped_attributes: self.u32()?,
            });
        }
        Ok(events)
    }

    fn links(&mut self) -> Result<Vec<SpanLink>, CodecError> {
        let n = self.count(28)?;
        let mut links = Vec::with_capacity(n);
        for _ in 0..n {
            links.push(SpanLink {
                trace_id: self.array::<16>()?,
                span_id: self.array::<8>()?,
                trace_state: self.str()?,
                attributes: self.attrs(0)?,
                dropped_attributes: self.u32()?,
                flags: self.u32()?,
            });
        }
        Ok(links)
    }

    fn rest(&mut self) -> Result<crate::headspan::Rest, CodecError> {
        Ok(crate::headspan::Rest {
            trace_state: self.str()?,
            flags: self.u32()?,
            dropped_attributes: self.u32()?,
            events: self.events()?,
            dropped_events: self.u32()?,
            links: self.links()?,
            dropped_links: self.u32()?,
            status_message: self.str()?,
        })
    }
}

/// Decodes a record written by [`encode`].
pub(crate) fn decode(b: &[u8]) -> Result<Vec<Span>, CodecError> {
    let mut c = Cur::new(b);
    let origins = c.origins()?;
    let nspans = c.count(40)?;
    let mut spans = Vec::with_capacity(nspans);
    for _ in 0..nspans {
        let origin = origins.get(c.uvarint()? as usize).ok_or(CodecError("unknown origin"))?.clone();
        let trace_id = c.array::<16>()?;
        let span_id = c.array::<8>()?;
        let parent_span_id = c.parent()?;
        let trace_state = c.str()?;
        let flags = c.u32()?;
        let name = c.str()?;
        let kind = SpanKind::from_otlp(c.u8()? as i32).ok_or(CodecError("unknown span kind"))?;
        let start_ns = c.varint()?;
        let duration = i64::try_from(c.uvarint()?).map_err(|_| CodecError("duration too large"))?;
        let end_ns = start_ns.checked_add(duration).ok_or(CodecError("end time overflows"))?;
        let attributes = c.attrs(0)?;
        let dropped_attributes = c.u32()?;
        let events = c.events()?;
        let dropped_events = c.u32()?;
        let links = c.links()?;
        let dropped_links = c.u32()?;
        let status = StatusCode::from_otlp(c.u8()? as i32).ok_or(CodecError("unknown status"))?;
        let status_message = c.str()?;
        spans.push(Span {
            trace_id,
            span_id,
            parent_span_id,
            trace_state,
            flags,
            name,
            kind,
            start_ns,
            end_ns,
            attributes,
            dropped_attributes,
            events,
            dropped_events,
            links,
            dropped_links,
            status,
            status_message,
            origin,
        });
    }
    if c.left() != 0 {
        return Err(CodecError("trailing bytes"));
    }
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn span(trace: u8, id: u8, origin: &Arc<SpanOrigin>) -> Span {
        Span {
            trace_id: [trace; 16],
            span_id: [id; 8],
            parent_span_id: (id > 1).then_some([id - 1; 8]),
            trace_state: "k=v".into(),
            flags: 1,
            name: format!("op{id}"),
            kind: SpanKind::Server,
            start_ns: 1_700_000_000_000_000_000 + id as i64 * 1000,
            end_ns: 1_700_000_000_000_500_000 + id as i64 * 1000,
            attributes: vec![
                Attribute::str("http.route", "/api/users"),
                Attribute { key: "n".into(), value: AttrValue::Int(-5) },
                Attribute {
                    key: "nested".into(),
                    value: AttrValue::Map(vec![Attribute {
                        key: "a".into(),
                        value: AttrValue::Array(vec![
                            AttrValue::Double(1.5),
                            AttrValue::Bool(true),
                            AttrValue::Bytes(vec![0, 255]),
                            AttrValue::Empty,
                        ]),
                    }]),
                },
            ],
            dropped_attributes: 1,
            events: vec![SpanEvent { time_ns: 5, name: "e".into(), attributes: vec![], dropped_attributes: 2 }],
            dropped_events: 3,
            links: vec![SpanLink {
                trace_id: [9; 16],
                span_id: [8; 8],
                trace_state: String::new(),
                attributes: vec![],
                dropped_attributes: 0,
                flags: 7,
            }],
            dropped_links: 4,
            status: StatusCode::Error,
            status_message: "boom".into(),
            origin: origin.clone(),
        }
    }

    #[test]
    fn round_trip_shares_origins() {
        let a = Arc::new(SpanOrigin { resource: vec![Attribute::str("service.name", "a")], ..Default::default() });
        let b = Arc::new(SpanOrigin { scope_name: "lib".into(), ..Default::default() });
        let spans = [span(1, 1, &a), span(1, 2, &b), span(2, 3, &a)];
        let mut buf = Vec::new();
        encode(&mut buf, &spans.iter().collect::<Vec<_>>());
        let back = decode(&buf).unwrap();
        assert_eq!(back, spans);
        assert!(Arc::ptr_eq(&back[0].origin, &back[2].origin));
        assert!(decode(&buf[..buf.len() - 1]).is_err());
    }

    proptest! {
        #[test]
        fn garbage_and_mutations_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), flip in any::<usize>()) {
            let _ = decode(&bytes);
            let o = Arc::new(SpanOrigin::default());
            let mut buf = Vec::new();
            encode(&mut buf, &[&span(1, 2, &o)]);
            let i = flip % buf.len();
            buf[i] ^= 0x5a;
            let _ = decode(&buf);
        }
    }
}
