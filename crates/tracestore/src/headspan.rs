//! A span as the head keeps it: the fields searches filter on, and everything else encoded
//! in one buffer (attributes, then the rest) in the block columns' own formats
//! (`docs/format/traces.md`). About a third of the memory of the decoded model, one
//! allocation instead of one per string, and written into a block's attribute and rest
//! columns as bytes.

use crate::codec::{
    put_attrs, put_events, put_links, put_origins, put_parent, put_str, put_uvarint, put_varint, CodecError, Cur,
    SpanRead,
};
use periscope_model::{Span, SpanKind, SpanOrigin, StatusCode, TraceId};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HeadSpan {
    pub(crate) span_id: [u8; 8],
    pub(crate) parent: Option<[u8; 8]>,
    pub(crate) kind: SpanKind,
    pub(crate) status: StatusCode,
    pub(crate) start_ns: i64,
    pub(crate) end_ns: i64,
    pub(crate) name: Box<str>,
    pub(crate) origin: Arc<SpanOrigin>,
    /// Bytes of `body` holding the attributes.
    attrs_len: u32,
    /// `attrs` then `rest` as in a block's columns 6 and 7.
    body: Box<[u8]>,
}

/// The rest of a span as a block's column 7 holds it.
pub(crate) fn put_rest(r: &mut Vec<u8>, s: &Span) {
    put_str(r, &s.trace_state);
    put_uvarint(r, s.flags.into());
    put_uvarint(r, s.dropped_attributes.into());
    put_events(r, &s.events);
    put_uvarint(r, s.dropped_events.into());
    put_links(r, &s.links);
    put_uvarint(r, s.dropped_links.into());
    put_str(r, &s.status_message);
}

/// The fields of the rest column.
pub(crate) struct Rest {
    pub(crate) trace_state: String,
    pub(crate) flags: u32,
    pub(crate) dropped_attributes: u32,
    pub(crate) events: Vec<periscope_model::SpanEvent>,
    pub(crate) dropped_events: u32,
    pub(crate) links: Vec<periscope_model::SpanLink>,
    pub(crate) dropped_links: u32,
    pub(crate) status_message: String,
}

impl HeadSpan {
    pub(crate) fn new(s: &Span) -> HeadSpan {
        let mut body = Vec::new();
        put_attrs(&mut body, &s.attributes);
        let attrs_len = body.len() as u32;
        put_rest(&mut body, s);
        HeadSpan {
            span_id: s.span_id,
            parent: s.parent_span_id,
            kind: s.kind,
            status: s.status,
            start_ns: s.start_ns,
            end_ns: s.end_ns,
            name: s.name.as_str().into(),
            origin: s.origin.clone(),
            attrs_len,
            body: body.into_boxed_slice(),
        }
    }

    pub(crate) fn service_name(&self) -> &str {
        self.origin.service_name()
    }

    pub(crate) fn duration_ns(&self) -> i64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// The attribute bytes (a block's column 6 entry).
    pub(crate) fn attrs_bytes(&self) -> &[u8] {
        &self.body[..self.attrs_len as usize]
    }

    /// The rest bytes (a block's column 7 entry).
    pub(crate) fn rest_bytes(&self) -> &[u8] {
        &self.body[self.attrs_len as usize..]
    }

    /// The whole span. The bytes were encoded by [`HeadSpan::new`], so decoding cannot fail
    /// but for a bug; such a span comes back without attributes rather than a panic.
    pub(crate) fn to_span(&self, trace_id: TraceId) -> Span {
        let attributes = Cur::new(self.attrs_bytes()).attrs(0).unwrap_or_default();
        let rest = Cur::new(self.rest_bytes()).rest().ok();
        let mut s = Span {
            trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent,
            name: self.name.to_string(),
            kind: self.kind,
            start_ns: self.start_ns,
            end_ns: self.end_ns,
            attributes,
            status: self.status,
            origin: self.origin.clone(),
            ..Default::default()
        };
        if let Some(r) = rest {
            s.trace_state = r.trace_state;
            s.flags = r.flags;
            s.dropped_attributes = r.dropped_attributes;
            s.events = r.events;
            s.dropped_events = r.dropped_events;
            s.links = r.links;
            s.dropped_links = r.dropped_links;
            s.status_message = r.status_message;
        }
        s
    }
}

/// A bit per tag (at most 64) that the attributes in `bytes` hold, values compared as text;
/// values of other keys are skipped without being built.
pub(crate) fn attr_tag_bits(c: &mut Cur<'_>, tags: &[(String, String)]) -> Result<u64, CodecError> {
    let mut bits = 0u64;
    let na = c.count(2)?;
    for _ in 0..na {
        let key = c.str_ref()?;
        let wanted = tags.iter().take(64).enumerate().filter(|(_, (k, _))| k == key).fold(0u64, |m, (t, _)| m | 1 << t);
        if wanted == 0 {
            c.skip_value(0)?;
            continue;
        }
        let text = c.value(0)?.as_text();
        for (t, (_, v)) in tags.iter().take(64).enumerate() {
            if wanted & (1 << t) != 0 && text.as_deref() == Some(v.as_str()) {
                bits |= 1 << t;
            }
        }
    }
    Ok(bits)
}

/// Calls `f` with every (key, value as text) of the attributes in `bytes` whose value has a
/// text form.
pub(crate) fn attr_pairs(bytes: &[u8], mut f: impl FnMut(&str, &str)) -> Result<(), CodecError> {
    let mut c = Cur::new(bytes);
    let na = c.count(2)?;
    for _ in 0..na {
        let key = c.str_ref()?;
        if let Some(text) = c.value(0)?.as_text() {
            f(key, &text);
        }
    }
    Ok(())
}

/// Appends a checkpoint record of head spans (`docs/format/traces.md`): like a WAL record,
/// but each span's attributes and rest are the head's bytes as they are.
pub(crate) fn encode_checkpoint(buf: &mut Vec<u8>, spans: &[(TraceId, Arc<HeadSpan>)]) {
    let refs = put_origins(buf, spans.iter().map(|(_, s)| &s.origin));
    put_uvarint(buf, spans.len() as u64);
    for ((id, s), o) in spans.iter().zip(refs) {
        put_uvarint(buf, o as u64);
        buf.extend_from_slice(id);
        buf.extend_from_slice(&s.span_id);
        put_parent(buf, s.parent);
        put_str(buf, &s.name);
        buf.push(s.kind.otlp_code() as u8 | (s.status.otlp_code() as u8) << 4);
        put_varint(buf, s.start_ns);
        put_uvarint(buf, s.duration_ns().max(0) as u64);
        put_uvarint(buf, s.attrs_len.into());
        put_uvarint(buf, s.body.len() as u64);
        buf.extend_from_slice(&s.body);
    }
}

/// Decodes a record written by [`encode_checkpoint`]; the bodies are checked to parse.
pub(crate) fn decode_checkpoint(b: &[u8]) -> Result<Vec<(TraceId, HeadSpan)>, CodecError> {
    let mut c = Cur::new(b);
    let origins = c.origins()?;
    let n = c.count(30)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let origin = origins.get(c.uvarint()? as usize).ok_or(CodecError("unknown origin"))?.clone();
        let id = c.array::<16>()?;
        let span_id = c.array::<8>()?;
        let parent = c.parent()?;
        let name: Box<str> = c.str_ref()?.into();
        let ks = c.u8()?;
        let kind = SpanKind::from_otlp((ks & 0x0f).into()).ok_or(CodecError("unknown span kind"))?;
        let status = StatusCode::from_otlp((ks >> 4).into()).ok_or(CodecError("unknown status"))?;
        let start_ns = c.varint()?;
        let duration = i64::try_from(c.uvarint()?).map_err(|_| CodecError("duration too large"))?;
        let end_ns = start_ns.checked_add(duration).ok_or(CodecError("end time overflows"))?;
        let attrs_len = c.u32()?;
        let len = c.count(1)?;
        let body: Box<[u8]> = c.bytes(len)?.into();
        let split = body.get(..attrs_len as usize).ok_or(CodecError("attributes longer than the body"))?;
        let mut check = Cur::new(split);
        check.attrs(0)?;
        if check.left() != 0 {
            return Err(CodecError("attribute length disagrees"));
        }
        let mut check = Cur::new(&body[attrs_len as usize..]);
        check.rest()?;
        if check.left() != 0 {
            return Err(CodecError("trailing bytes after a span's rest"));
        }
        out.push((id, HeadSpan { span_id, parent, kind, status, start_ns, end_ns, name, origin, attrs_len, body }));
    }
    if c.left() != 0 {
        return Err(CodecError("trailing bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_model::{AttrValue, Attribute, SpanEvent};
    use proptest::prelude::*;

    fn span() -> (TraceId, Arc<HeadSpan>) {
        let s = Span {
            trace_id: [7; 16],
            span_id: [1; 8],
            parent_span_id: Some([2; 8]),
            name: "op".into(),
            start_ns: 1_700_000_000_000_000_000,
            end_ns: 1_700_000_000_000_001_000,
            attributes: vec![Attribute::str("k", "v"), Attribute { key: "n".into(), value: AttrValue::Int(3) }],
            events: vec![SpanEvent { time_ns: 5, name: "e".into(), attributes: vec![], dropped_attributes: 1 }],
            status_message: "m".into(),
            ..Default::default()
        };
        (s.trace_id, Arc::new(HeadSpan::new(&s)))
    }

    #[test]
    fn checkpoint_records_round_trip() {
        let (id, s) = span();
        let mut buf = Vec::new();
        encode_checkpoint(&mut buf, &[(id, s.clone())]);
        let back = decode_checkpoint(&buf).unwrap_or_default();
        assert_eq!(back.len(), 1);
        assert_eq!((back[0].0, &back[0].1), (id, &*s));
        assert_eq!(back[0].1.to_span(id), s.to_span(id));
        assert!(decode_checkpoint(&buf[..buf.len() - 1]).is_err());
    }

    proptest! {
        #[test]
        fn garbage_and_mutations_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), flip in any::<usize>()) {
            let _ = decode_checkpoint(&bytes);
            let mut buf = Vec::new();
            encode_checkpoint(&mut buf, &[span()]);
            let i = flip % buf.len();
            buf[i] ^= 0x5a;
            let _ = decode_checkpoint(&buf);
        }
    }
}
