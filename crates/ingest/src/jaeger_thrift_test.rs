#![allow(clippy::unwrap_used)]

use super::*;
use periscope_model::hex_id;

/// A minimal Thrift writer for building batches, in the binary protocol or (with
/// `compact`) the compact one. Each writer writes one struct's fields.
#[derive(Default)]
struct W {
    out: Vec<u8>,
    compact: bool,
    last: i16,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(out: &mut Vec<u8>, v: i64) {
    varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// The compact protocol's code for a binary type code.
fn compact_type(ty: u8) -> u8 {
    match ty {
        T_BOOL => 1,
        T_BYTE => 3,
        T_I16 => 4,
        T_I32 => 5,
        T_I64 => 6,
        T_DOUBLE => 7,
        T_STRING => 8,
        T_LIST => 9,
        T_SET => 10,
        T_MAP => 11,
        T_STRUCT => 12,
        other => panic!("type {other}"),
    }
}

impl W {
    fn compact() -> W {
        W { compact: true, ..W::default() }
    }
    fn like(&self) -> W {
        W { compact: self.compact, ..W::default() }
    }
    /// A compact field header of compact type `c`.
    fn compact_field(&mut self, c: u8, id: i16) {
        match id - self.last {
            d @ 1..=15 => self.out.push((d as u8) << 4 | c),
            _ => {
                self.out.push(c);
                zigzag(&mut self.out, id.into());
            }
        }
        self.last = id;
    }
    fn field(&mut self, ty: u8, id: i16) -> &mut Self {
        if self.compact {
            self.compact_field(compact_type(ty), id);
        } else {
            self.out.push(ty);
            self.out.extend_from_slice(&id.to_be_bytes());
        }
        self
    }
    fn int(&mut self, v: i64, width: usize) {
        if self.compact {
            zigzag(&mut self.out, v);
        } else {
            self.out.extend_from_slice(&v.to_be_bytes()[8 - width..]);
        }
    }
    fn i32(&mut self, id: i16, v: i32) -> &mut Self {
        self.field(T_I32, id).int(v.into(), 4);
        self
    }
    fn i64(&mut self, id: i16, v: i64) -> &mut Self {
        self.field(T_I64, id).int(v, 8);
        self
    }
    fn bool(&mut self, id: i16, v: bool) -> &mut Self {
        if self.compact {
            // The value is the header's type: 1 true, 2 false.
            self.compact_field(if v { 1 } else { 2 }, id);
        } else {
            self.field(T_BOOL, id).out.push(v as u8);
        }
        self
    }
    fn double(&mut self, id: i16, v: f64) -> &mut Self {
        self.field(T_DOUBLE, id);
        let b = if self.compact { v.to_bits().to_le_bytes() } else { v.to_bits().to_be_bytes() };
        self.out.extend_from_slice(&b);
        self
    }
    fn len(&mut self, n: usize) {
        if self.compact {
            varint(&mut self.out, n as u64);
        } else {
            self.out.extend_from_slice(&(n as i32).to_be_bytes());
        }
    }
    fn str(&mut self, id: i16, s: &str) -> &mut Self {
        self.field(T_STRING, id).len(s.len());
        self.out.extend_from_slice(s.as_bytes());
        self
    }
    fn list(&mut self, id: i16, items: &[Vec<u8>]) -> &mut Self {
        self.field(T_LIST, id);
        if self.compact {
            if items.len() < 15 {
                self.out.push((items.len() as u8) << 4 | 12);
            } else {
                self.out.push(0xf0 | 12);
                varint(&mut self.out, items.len() as u64);
            }
        } else {
            self.out.push(T_STRUCT);
            self.out.extend_from_slice(&(items.len() as i32).to_be_bytes());
        }
        for i in items {
            self.out.extend_from_slice(i);
        }
        self
    }
    fn strukt(&mut self, id: i16, body: &[u8]) -> &mut Self {
        self.field(T_STRUCT, id).out.extend_from_slice(body);
        self
    }
    fn stop(&mut self) -> Vec<u8> {
        self.out.push(T_STOP);
        self.last = 0;
        std::mem::take(&mut self.out)
    }
}

fn str_tag(w: &W, k: &str, v: &str) -> Vec<u8> {
    w.like().str(1, k).i32(2, 0).str(3, v).stop()
}

fn bool_tag(w: &W, k: &str, v: bool) -> Vec<u8> {
    w.like().str(1, k).i32(2, 2).bool(5, v).stop()
}

fn long_tag(w: &W, k: &str, v: i64) -> Vec<u8> {
    w.like().str(1, k).i32(2, 3).i64(6, v).stop()
}

fn double_tag(w: &W, k: &str, v: f64) -> Vec<u8> {
    w.like().str(1, k).i32(2, 1).double(4, v).stop()
}

/// A two-span batch in `w`'s protocol.
fn batch_in(mut w: W) -> Vec<u8> {
    let process = w.like().str(1, "go-svc").list(2, &[str_tag(&w, "host.name", "h1")]).stop();
    let root = w
        .like()
        .i64(1, 0x0102)
        .i64(2, 0x0a0b)
        .i64(3, 7)
        .i64(4, 0)
        .str(5, "root")
        .i32(7, 1)
        .i64(8, 1_700_000_000_000_000)
        .i64(9, 1500)
        .list(
            10,
            &[
                str_tag(&w, "span.kind", "server"),
                long_tag(&w, "http.status_code", 500),
                bool_tag(&w, "error", true),
                str_tag(&w, "otel.library.name", "lib"),
                double_tag(&w, "ratio", -0.25),
                bool_tag(&w, "cached", false),
            ],
        )
        .list(
            11,
            &[w.like()
                .i64(1, 1_700_000_000_000_100)
                .list(2, &[str_tag(&w, "event", "retry"), long_tag(&w, "attempt", 2)])
                .stop()],
        )
        .stop();
    let reference = w.like().i32(1, 0).i64(2, 0x0102).i64(3, 0x0a0b).i64(4, 7).stop();
    let child = w
        .like()
        .i64(1, 0x0102)
        .i64(2, 0x0a0b)
        .i64(3, 8)
        .str(5, "child")
        .list(6, &[reference])
        .i64(8, 1_700_000_000_000_200)
        .i64(9, 300)
        .list(10, &[str_tag(&w, "span.kind", "client")])
        .stop();
    w.strukt(1, &process).list(2, &[root, child]).i64(3, 42); // seqNo, not read
    w.stop()
}

fn batch() -> Vec<u8> {
    batch_in(W::default())
}

/// An `Agent.emitBatch` oneway message around a compact-protocol batch.
fn compact_datagram() -> Vec<u8> {
    let mut d = vec![0x82, 4 << 5 | 1];
    varint(&mut d, 9); // seqid
    varint(&mut d, "emitBatch".len() as u64);
    d.extend_from_slice(b"emitBatch");
    d.extend_from_slice(&W::compact().strukt(1, &batch_in(W::compact())).stop());
    d
}

/// The same in the binary protocol (strict header).
fn binary_datagram() -> Vec<u8> {
    let mut d = (0x8001_0004u32 as i32).to_be_bytes().to_vec();
    d.extend_from_slice(&9i32.to_be_bytes());
    d.extend_from_slice(b"emitBatch");
    d.extend_from_slice(&9i32.to_be_bytes());
    d.extend_from_slice(&W::default().strukt(1, &batch()).stop());
    d
}

fn check_batch(b: &SpanBatch) {
    assert_eq!(b.spans.len(), 2);
    let root = &b.spans[0];
    assert_eq!(hex_id(&root.trace_id), "0000000000000a0b0000000000000102");
    assert_eq!(hex_id(&root.span_id), "0000000000000007");
    assert_eq!(root.parent_span_id, None);
    assert_eq!((root.kind, root.status), (SpanKind::Server, StatusCode::Error));
    assert_eq!((root.start_ns, root.end_ns), (1_700_000_000_000_000_000, 1_700_000_000_001_500_000));
    assert_eq!(
        root.attributes,
        vec![
            Attribute { key: "http.status_code".into(), value: AttrValue::Int(500) },
            Attribute { key: "ratio".into(), value: AttrValue::Double(-0.25) },
            Attribute { key: "cached".into(), value: AttrValue::Bool(false) },
        ]
    );
    assert_eq!(root.origin.scope_name, "lib");
    assert_eq!(root.service_name(), "go-svc");
    assert!(root.origin.resource.contains(&Attribute::str("host.name", "h1")));
    assert_eq!(root.events[0].name, "retry");
    assert_eq!(root.events[0].time_ns, 1_700_000_000_000_100_000);
    assert_eq!(root.events[0].attributes, vec![Attribute { key: "attempt".into(), value: AttrValue::Int(2) }]);
    let child = &b.spans[1];
    assert_eq!(child.parent_span_id, Some(7i64.to_be_bytes()), "CHILD_OF reference as the parent");
    assert!(child.links.is_empty());
    assert_eq!(child.kind, SpanKind::Client);
}

#[test]
fn agent_datagrams_map_like_the_collector_body() {
    check_batch(&decode_agent_datagram(&compact_datagram(), AgentProtocol::Compact).unwrap());
    check_batch(&decode_agent_datagram(&binary_datagram(), AgentProtocol::Binary).unwrap());
    // The wrong protocol, another method, truncation: errors.
    assert!(decode_agent_datagram(&compact_datagram(), AgentProtocol::Binary).is_err());
    assert!(decode_agent_datagram(&binary_datagram(), AgentProtocol::Compact).is_err());
    let mut zipkin = vec![0x82, 4 << 5 | 1, 0, 15];
    zipkin.extend_from_slice(b"emitZipkinBatch");
    zipkin.push(0);
    let e = decode_agent_datagram(&zipkin, AgentProtocol::Compact).unwrap_err().to_string();
    assert!(e.contains("emitZipkinBatch"), "{e}");
    let full = compact_datagram();
    for cut in [0, 3, 20, full.len() / 2, full.len() - 1] {
        assert!(decode_agent_datagram(&full[..cut], AgentProtocol::Compact).is_err(), "cut at {cut}");
    }
    // Long field-id gaps and long lists use the compact protocol's escape forms.
    let tags: Vec<Vec<u8>> = (0..20).map(|i| str_tag(&W::compact(), &format!("k{i}"), "v")).collect();
    let span = W::compact().i64(1, 1).i64(3, 2).i64(8, 1).list(10, &tags).i64(40, 5).stop();
    let b = W::compact().list(2, &[span]).stop();
    let mut d = vec![0x82, 0x21, 0, 9];
    d.extend_from_slice(b"emitBatch");
    d.extend_from_slice(&W::compact().strukt(1, &b).stop());
    let got = decode_agent_datagram(&d, AgentProtocol::Compact).unwrap();
    assert_eq!(got.spans[0].attributes.len(), 20);
}

#[test]
fn a_batch_maps_as_the_collector_maps_it() {
    check_batch(&decode_jaeger_batch(&batch()).unwrap());
}

#[test]
fn bad_batches_are_errors() {
    let full = batch();
    for cut in [1, 10, full.len() / 2, full.len() - 1] {
        assert!(decode_jaeger_batch(&full[..cut]).is_err(), "cut at {cut}");
    }
    // A zero span id.
    let span = W::default().i64(1, 1).i64(3, 0).i64(8, 1).stop();
    let e = decode_jaeger_batch(&W::default().list(2, &[span]).stop()).unwrap_err().to_string();
    assert!(e.contains("span 0"), "{e}");
    // A list claiming more elements than bytes.
    let mut w = W::default();
    w.field(T_LIST, 2).out.extend_from_slice(&[T_STRUCT, 0x7f, 0xff, 0xff, 0xff]);
    assert!(decode_jaeger_batch(&w.stop()).is_err());
    // Structs nested past the limit.
    let mut deep = vec![T_STOP];
    for _ in 0..100 {
        deep = W::default().strukt(9, &deep).stop();
    }
    let e = decode_jaeger_batch(&deep).unwrap_err().to_string();
    assert!(e.contains("nested too deep"), "{e}");
}

proptest::proptest! {
    #[test]
    fn garbage_and_mutations_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), flip in 0usize..1000) {
        let _ = decode_jaeger_batch(&body);
        let mut b = batch();
        let i = flip % b.len();
        b[i] ^= 0xa5;
        let _ = decode_jaeger_batch(&b);
        let _ = decode_agent_datagram(&body, AgentProtocol::Compact);
        let mut d = compact_datagram();
        let i = flip % d.len();
        d[i] ^= 0x5a;
        let _ = decode_agent_datagram(&d, AgentProtocol::Compact);
    }
}
